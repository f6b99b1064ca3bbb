"""Columnar results: a dict of equal-length numpy arrays with a DataFrame view."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Mapping, Optional

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


class Table:
    """Equal-length numpy columns built in Rust, handed over without per-row Python objects.

    ``table["size"]`` is a numpy array, ``len(table)`` the number of rows, and
    ``table.to_pandas()`` a DataFrame (pandas is imported only then).

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
    ) -> None:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of {name} differ in length: {sorted(lengths)}")
        self.name = name
        self._columns: Dict[str, np.ndarray] = dict(columns)
        self._decoders: Dict[str, Callable[[np.ndarray], Any]] = dict(decoders or {})

    @property
    def columns(self) -> List[str]:
        """Column names, in order."""
        return list(self._columns)

    def __getitem__(self, column: str) -> np.ndarray:
        return self._columns[column]

    def __contains__(self, column: object) -> bool:
        return column in self._columns

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array) pairs."""
        return iter(self._columns.items())

    def to_dict(self) -> Dict[str, np.ndarray]:
        """The columns as a plain dict (arrays are shared, not copied)."""
        return dict(self._columns)

    def to_pandas(self) -> "pd.DataFrame":
        """A DataFrame with one column per array, plus readable columns where the table has
        decoders (e.g. ``state_name`` beside ``state``)."""
        import pandas as pd

        data: Dict[str, Any] = {}
        for name, col in self._columns.items():
            data[name] = col
            if name in self._decoders:
                data[f"{name}_name"] = self._decoders[name](col)
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        return f"<Table {self.name}: {len(self)} rows x {len(self._columns)} columns {self.columns}>"

    def _repr_html_(self) -> str:
        df = self.to_pandas()
        head = df.head(20)._repr_html_()  # type: ignore[operator]
        more = f"<p>{len(df)} rows</p>" if len(df) > 20 else ""
        return f"<p><b>{self.name}</b></p>{head}{more}"
