"""Columnar results: a dict of equal-length numpy arrays with a DataFrame view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class Table:
    """Equal-length numpy columns built in Rust, handed over without per-row Python objects.

    ``table["size"]`` is a numpy array, ``len(table)`` the number of rows, and
    ``table.to_pandas()`` a DataFrame (pandas is imported only then). Some columns are
    computed on first use (``lazy``) and kept; the arrays Rust built are shared, not copied,
    and are read-only.

    Example:
        >>> import numpy as np
        >>> t = Table("demo", {"a": np.arange(3, dtype=np.uint64)})
        >>> len(t), t.columns
        (3, ['a'])
    """

    def __init__(
        self,
        name: str,
        columns: Mapping[str, np.ndarray],
        decoders: Optional[Mapping[str, Callable[[np.ndarray], Any]]] = None,
        lazy: Optional[Mapping[str, Callable[[], np.ndarray]]] = None,
        order: Optional[Sequence[str]] = None,
        pandas: Optional[Mapping[str, Callable[[], Any]]] = None,
    ) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of {name} differ in length: {sorted(lengths)}")
        self.name = name
        self._columns: Dict[str, np.ndarray] = dict(columns)
        self._lazy: Dict[str, Callable[[], np.ndarray]] = dict(lazy or {})
        self._decoders: Dict[str, Callable[[np.ndarray], Any]] = dict(decoders or {})
        self._pandas: Dict[str, Callable[[], Any]] = dict(pandas or {})
        names = list(order) if order is not None else list(self._columns) + [k for k in self._lazy if k not in self._columns]
        missing = [n for n in names if n not in self._columns and n not in self._lazy]
        if missing:
            raise ValueError(f"{name}: no column or lazy column named {missing}")
        self._order = names
        self._len = lengths.pop() if lengths else None

    @property
    def columns(self) -> List[str]:
        """Column names, in order."""
        return list(self._order)

    def __getitem__(self, column: str) -> np.ndarray:
        col = self._columns.get(column)
        if col is None:
            if column not in self._lazy:
                raise KeyError(column)
            col = self._lazy[column]()
            self._columns[column] = col
        return col

    def __contains__(self, column: object) -> bool:
        return column in self._order

    def __len__(self) -> int:
        if self._len is not None:
            return self._len
        return len(self[self._order[0]]) if self._order else 0

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) pairs (lazy columns are computed)."""
        return ((n, self[n]) for n in self._order)

    def to_dict(self) -> Dict[str, np.ndarray]:
        """The columns as a plain dict (arrays are shared, not copied; lazy ones computed)."""
        return dict(self.items())

    def to_pandas(self) -> "pd.DataFrame":
        """A DataFrame with one column per array (shared with the table where pandas allows),
        plus readable columns where the table has decoders (e.g. ``kind_name`` beside
        ``kind``, as categoricals)."""
        import pandas as pd

        data: Dict[str, Any] = {}
        for name in self._order:
            data[name] = self._pandas[name]() if name in self._pandas else self[name]
            if name in self._decoders:
                data[f"{name}_name"] = self._decoders[name](self[name])
        return pd.DataFrame(data, copy=False)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` over the same memory where Arrow allows it (numeric columns are
        wrapped without a copy; booleans are bit-packed by Arrow). Needs pyarrow."""
        import pyarrow as pa

        return pa.table({n: pa.array(self[n]) for n in self._order})

    def slice(self, start: int, stop: int) -> "Table":
        """Rows ``start:stop`` as a Table of views (no copy); lazy columns are computed on the
        whole table and then sliced."""
        sub = {n: c[start:stop] for n, c in self._columns.items()}
        lazy = {n: (lambda n=n: self[n][start:stop]) for n in self._lazy if n not in self._columns}
        pandas = {n: (lambda f=f: _slice_pandas(f(), start, stop)) for n, f in self._pandas.items()}
        return Table(self.name, sub, self._decoders, lazy, self._order, pandas)

    def __repr__(self) -> str:
        return f"<Table {self.name}: {len(self)} rows x {len(self._order)} columns {self.columns}>"

    def _repr_html_(self) -> str:
        df = self.slice(0, min(len(self), 20)).to_pandas()
        head = df._repr_html_()  # type: ignore[operator]
        more = f"<p>{len(self)} rows</p>" if len(self) > 20 else ""
        return f"<p><b>{self.name}</b></p>{head}{more}"


def _slice_pandas(values: Any, start: int, stop: int) -> Any:
    return values[start:stop]


def categorical(names: Mapping[int, str]) -> Callable[[np.ndarray], Any]:
    """A decoder that names small non-negative integer codes as a pandas Categorical (codes
    without a name become their hex value, 0 without a name becomes ""). Linear in the rows."""

    def run(col: np.ndarray) -> Any:
        import pandas as pd

        codes = np.asarray(col)
        if len(codes) == 0:
            return pd.Categorical([], categories=[])
        present = np.flatnonzero(np.bincount(codes.astype(np.intp, copy=False)))
        labels = [names.get(int(v), f"{int(v):#x}" if v else "") for v in present]
        categories = list(dict.fromkeys(labels))
        index = {label: i for i, label in enumerate(categories)}
        lut = np.full(int(present[-1]) + 1, -1, dtype=np.int16)
        lut[present] = [index[label] for label in labels]
        return pd.Categorical.from_codes(lut[codes], categories=categories)

    return run
