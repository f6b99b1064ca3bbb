"""Columnar results: a dict of equal-length numpy arrays with a DataFrame view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._schema import LAZY_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: A decoder adds a readable column beside a coded one: a function of the codes (the new column
#: is ``{name}_name``), or ``(new_name, function)``.
Decoder = Union[Callable[[np.ndarray], Any], Tuple[str, Callable[[np.ndarray], Any]]]


class Table:
    """Equal-length numpy columns built in Rust, handed over without per-row Python objects.

    ``table["size"]`` is a numpy array, ``len(table)`` the number of rows, and
    ``table.to_pandas()`` a DataFrame (pandas is imported only then). The arrays Rust built
    are shared, not copied, and are read-only.

    Some columns are *lazy*: named in ``columns`` but computed only when first read (e.g. the
    ``heap`` column of ``Dump.blocks()``, or its leak-triage columns, which run a pass over the
    whole dump), then kept.

    Example:
        >>> import numpy as np
        >>> t = Table("demo", {"a": np.arange(3, dtype=np.uint64)}, lazy={"b": lambda: np.zeros(3)})
        >>> len(t), t.columns, t.computed
        (3, ['a', 'b'], ['a'])
        >>> float(t["b"].sum()), t.computed
        (0.0, ['a', 'b'])
    """

    def __init__(
        self,
        name: str,
        columns: Mapping[str, np.ndarray],
        decoders: Optional[Mapping[str, Decoder]] = None,
        lazy: Optional[Mapping[str, Callable[[], np.ndarray]]] = None,
        order: Optional[Sequence[str]] = None,
        pandas: Optional[Mapping[str, Callable[[], Any]]] = None,
    ) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of {name} differ in length: {sorted(lengths)}")
        self.name = name
        self._columns: Dict[str, np.ndarray] = dict(columns)
        self._decoders: Dict[str, Decoder] = dict(decoders or {})
        self._lazy: Dict[str, Callable[[], np.ndarray]] = {k: v for k, v in (lazy or {}).items() if k not in self._columns}
        self._pandas: Dict[str, Callable[[], Any]] = dict(pandas or {})
        names = list(order) if order is not None else list(self._columns) + list(self._lazy)
        missing = [n for n in names if n not in self._columns and n not in self._lazy]
        if missing:
            raise ValueError(f"{name}: no column or lazy column named {missing}")
        self._order: List[str] = names
        self._len = lengths.pop() if lengths else None

    @property
    def columns(self) -> List[str]:
        """Column names, in order (lazy ones included, computed or not)."""
        return list(self._order)

    @property
    def computed(self) -> List[str]:
        """The columns already in memory, in order."""
        return [c for c in self._order if c in self._columns]

    def __getitem__(self, column: str) -> np.ndarray:
        got = self._columns.get(column)
        if got is not None:
            return got
        make = self._lazy.get(column)
        if make is None:
            raise KeyError(column)
        values = make()
        if self._len is not None and len(values) != self._len:
            raise ValueError(f"lazy column {column!r} of {self.name} has {len(values)} rows, not {self._len}")
        self._columns[column] = values
        if self._len is None:
            self._len = len(values)
        return values

    def __contains__(self, column: object) -> bool:
        return column in self._order

    def __len__(self) -> int:
        if self._len is not None:
            return self._len
        return len(self[self._order[0]]) if self._order else 0

    def items(self) -> Iterator[Tuple[str, np.ndarray]]:
        """(name, array) pairs, every column (lazy ones are computed)."""
        return iter([(c, self[c]) for c in self._order])

    def to_dict(self) -> Dict[str, np.ndarray]:
        """The columns as a plain dict (arrays are shared, not copied; lazy ones are computed)."""
        return dict(self.items())

    def select(self, mask: np.ndarray, name: Optional[str] = None) -> "Table":
        """The rows where ``mask`` is true, as a new table of the computed columns; lazy columns
        stay lazy (computed on the whole table, then masked)."""
        lazy = {c: (lambda c=c: self[c][mask]) for c in self._order if c not in self._columns}
        return Table(name or self.name, {c: v[mask] for c, v in self._columns.items()}, self._decoders, lazy, self._order)

    def slice(self, start: int, stop: int) -> "Table":
        """Rows ``start:stop`` as a Table of views (no copy); lazy columns are computed on the
        whole table and then sliced."""
        sub = {n: c[start:stop] for n, c in self._columns.items()}
        lazy = {n: (lambda n=n: self[n][start:stop]) for n in self._lazy if n not in self._columns}
        pandas = {n: (lambda f=f: _slice_pandas(f(), start, stop)) for n, f in self._pandas.items()}
        return Table(self.name, sub, self._decoders, lazy, self._order, pandas)

    def to_pandas(self, columns: Optional[Sequence[str]] = None, *, hex: bool = False) -> "pd.DataFrame":
        """A DataFrame with one column per array (``columns`` picks and orders them; default
        all, lazy ones computed; shared with the table where pandas allows), plus readable
        columns where the table has decoders (e.g. ``kind_name`` beside ``kind``, as
        categoricals).

        ``hex=True`` is for looking, not computing: the address columns (:data:`ADDRESS_COLUMNS`)
        become strings such as ``0x21f4ae00040`` (a categorical column, such as ``heap`` of the
        blocks, gets hex categories). The default keeps them ``uint64``, to filter, join and
        sort on. A notebook shows a Table (``_repr_html_``) with hex addresses.

        Example:
            >>> t = Table("demo", {"address": np.array([0x1000, 0x2010], dtype=np.uint64)})
            >>> t.to_pandas(hex=True)["address"].tolist()
            ['0x1000', '0x2010']
        """
        import pandas as pd

        data: Dict[str, Any] = {}
        for name in self._order if columns is None else columns:
            data[name] = self._pandas[name]() if name in self._pandas else self[name]
            if hex and name in ADDRESS_COLUMNS:
                data[name] = _hex_column(data[name])
            decoder = self._decoders.get(name)
            if decoder is not None:
                out, fn = decoder if isinstance(decoder, tuple) else (f"{name}_name", decoder)
                data[out] = fn(self[name])
        return pd.DataFrame(data, copy=False)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` over the same memory where Arrow allows it (numeric columns are
        wrapped without a copy; booleans are bit-packed by Arrow). Needs pyarrow."""
        import pyarrow as pa

        return pa.table({n: pa.array(self[n]) for n in self._order})

    def __repr__(self) -> str:
        return f"<Table {self.name}: {len(self)} rows x {len(self._order)} columns {self.columns}>"

    def _repr_html_(self) -> str:
        view = self.slice(0, min(len(self), 20))
        df = view.to_pandas([c for c in self._order if c in self._columns or c not in _TRIAGE_LAZY], hex=True)
        head = df._repr_html_()  # type: ignore[operator]
        more = f"<p>{len(self)} rows</p>" if len(self) > 20 else ""
        return f"<p><b>{self.name}</b></p>{head}{more}"


#: Columns that hold addresses, wherever they appear (blocks, regions, types, LFH subsegments,
#: stack frames and problems, coverage, unreferenced blocks): ``to_pandas(hex=True)`` and the
#: notebook view show them in hex.
ADDRESS_COLUMNS = frozenset({
    "address", "user_address", "heap", "segment", "parent", "stack_trace_entry", "base", "allocation_base",
    "vftable", "type_descriptor", "zone", "user_blocks", "first", "trace_entry", "block", "teb", "stack_start",
    "stack_end", "end", "root", "normal_heap",
})


def _hex_column(values: Any) -> Any:
    """An address column as hex strings (a categorical keeps its codes, with hex categories)."""
    import pandas as pd

    if isinstance(values, pd.Categorical):
        return values.rename_categories([f"{int(v):#x}" for v in values.categories])
    out = np.empty(len(values), dtype=object)
    out[:] = [f"{int(v):#x}" for v in np.asarray(values).tolist()]
    return out


#: Lazy columns whose first read runs a pass over the whole dump (the leak-triage columns of the
#: block schema): a notebook preview shows them only once they have been computed.
_TRIAGE_LAZY = frozenset(LAZY_COLUMNS)


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
