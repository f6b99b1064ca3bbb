"""Columnar results: a dict of equal-length numpy arrays with a DataFrame view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: A decoder adds a readable column beside a coded one: a function of the codes (the new column
#: is ``{name}_name``), or ``(new_name, function)``.
Decoder = Union[Callable[[np.ndarray], Any], Tuple[str, Callable[[np.ndarray], Any]]]


class Table:
    """Equal-length numpy columns built in Rust, handed over without per-row Python objects.

    ``table["size"]`` is a numpy array, ``len(table)`` the number of rows, and
    ``table.to_pandas()`` a DataFrame (pandas is imported only then).

    Some columns can be *lazy*: named in ``columns`` but computed only when first read (the
    leak-triage columns of ``Dump.blocks()`` run a pass over the whole dump), then kept.

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
    ) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of {name} differ in length: {sorted(lengths)}")
        self.name = name
        self._columns: Dict[str, np.ndarray] = dict(columns)
        self._decoders: Dict[str, Decoder] = dict(decoders or {})
        self._lazy: Dict[str, Callable[[], np.ndarray]] = {k: v for k, v in (lazy or {}).items() if k not in self._columns}
        self._order: List[str] = list(self._columns) + list(self._lazy)

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
        if self._columns and len(values) != len(self):
            raise ValueError(f"lazy column {column!r} of {self.name} has {len(values)} rows, not {len(self)}")
        self._columns[column] = values
        return values

    def __contains__(self, column: object) -> bool:
        return column in self._order

    def __len__(self) -> int:
        if not self._columns and self._lazy:
            self[self._order[0]]
        return len(next(iter(self._columns.values()))) if self._columns else 0

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
        return Table(name or self.name, {c: v[mask] for c, v in self._columns.items()}, self._decoders, lazy)

    def to_pandas(self, columns: Optional[Sequence[str]] = None) -> "pd.DataFrame":
        """A DataFrame with one column per array (``columns`` picks and orders them; default
        all, lazy ones computed), plus readable columns where the table has decoders (e.g.
        ``state_name`` beside ``state``)."""
        import pandas as pd

        data: Dict[str, Any] = {}
        for name in self._order if columns is None else columns:
            col = self[name]
            data[name] = col
            decoder = self._decoders.get(name)
            if decoder is not None:
                out, fn = decoder if isinstance(decoder, tuple) else (f"{name}_name", decoder)
                data[out] = fn(col)
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        return f"<Table {self.name}: {len(self)} rows x {len(self._order)} columns {self.columns}>"

    def _repr_html_(self) -> str:
        df = self.to_pandas(self.computed)
        head = df.head(20)._repr_html_()  # type: ignore[operator]
        more = f"<p>{len(df)} rows</p>" if len(df) > 20 else ""
        return f"<p><b>{self.name}</b></p>{head}{more}"
