"""Many dumps at once: the Rust batch scanner (:mod:`ntheap.scanjob`) behind a DataFrame result.

The scan runs in Rust threads with the GIL released; Python only polls its progress. A dump
that cannot be read becomes a row in :attr:`ScanResult.errors` and the others go on. Each
readable dump becomes an :class:`ntheap.allocations.Allocations`, the same representation a
:class:`ntheap.Dump` gives, so every analysis takes either.
"""

from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _core
from .allocations import FRAME_COLUMNS, Allocations, frame
from .coverage import COVERAGE_COLUMNS
from .frames import NO_STACK, FrameClassifier
from .scanjob import expand_paths, run_scan

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PathLike = Union[str, "os.PathLike[str]"]

#: Columns of :attr:`ScanResult.blocks`.
BLOCK_COLUMNS = FRAME_COLUMNS
SUMMARY_COLUMNS = ["path", "time", "pid", "blocks", "bytes", "stacks", "error_kind", "error"]
__all__ = ["BLOCK_COLUMNS", "SUMMARY_COLUMNS", "ScanResult", "expand_paths", "run_scan", "scan"]


def _stack_count(a: Allocations) -> int:
    """Distinct stack keys that hold blocks (without the no-stack group)."""
    sid = np.asarray(a.table["stack_id"])
    keys = a.stacks.keys()
    mark = np.zeros(len(keys) + 1, dtype=bool)  # the last slot: stack id -1
    mark[sid] = True
    return len({keys[i] for i in np.flatnonzero(mark[:-1])} - {NO_STACK})


class ScanResult:
    """What :func:`scan` found: every dump's busy allocations in one DataFrame, a summary row per
    dump, and the dumps that could not be read.

    Attributes:
        blocks: one row per busy user allocation of every readable dump (columns
            :data:`BLOCK_COLUMNS`; ``dump`` is the path, ``stack_key`` the symbolized stack).
        summary: one row per dump in input order: path, time, pid, blocks, bytes, stacks,
            error_kind, error (None when the dump was read).
        errors: the rows of ``summary`` whose dump could not be read.
        coverage: what the readable dumps' heaps do not cover: one row per dump and gap, with
            path and the columns of ``Dump.coverage()`` (scope, heap, what, count, bytes,
            message); empty when every answer is complete.

    Example:
        >>> res = ntheap.scan("samples/")  # doctest: +SKIP
        >>> res.blocks.groupby(["time", "top_frame"], observed=True).user_size.sum()  # doctest: +SKIP
    """

    def __init__(self, records: Sequence[Dict[str, Any]], classifier: Optional[FrameClassifier] = None,
                 workers: Optional[int] = None) -> None:
        import pandas as pd

        self._records = list(records)
        self._allocs: Dict[int, Allocations] = {
            i: Allocations.from_record(r) for i, r in enumerate(self._records) if r.get("error") is None
        }
        self.blocks: pd.DataFrame = frame(list(self._allocs.values()), classifier, workers)
        rows = []
        for i, r in enumerate(self._records):
            a = self._allocs.get(i)
            rows.append(
                {
                    "path": r["path"],
                    "time": pd.Timestamp(a.time) if a is not None and a.time is not None else pd.NaT,
                    "pid": r.get("pid"),
                    "blocks": len(a) if a is not None else 0,
                    "bytes": int(a.table["user_size"].sum()) if a is not None else 0,
                    "stacks": _stack_count(a) if a is not None else 0,
                    "error_kind": r.get("error_kind") if a is None else None,
                    "error": r.get("error") if a is None else None,
                }
            )
        summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        summary["time"] = pd.to_datetime(summary["time"], utc=True)
        summary["pid"] = summary["pid"].astype("Int64")
        self.summary: pd.DataFrame = summary
        self.errors: pd.DataFrame = summary.loc[summary["error"].notna(), ["path", "error_kind", "error"]].reset_index(drop=True)
        gaps = [(a.path, *row) for a in self._allocs.values() for row in a.coverage]
        self.coverage: pd.DataFrame = pd.DataFrame(gaps, columns=["path", *COVERAGE_COLUMNS])

    def __len__(self) -> int:
        return len(self._records)

    @property
    def paths(self) -> List[str]:
        """Every dump path, in input order."""
        return [r["path"] for r in self._records]

    def allocations(self) -> List[Allocations]:
        """The readable dumps' allocations, in input order."""
        return [self._allocs[i] for i in sorted(self._allocs)]

    def series_warnings(self) -> List[str]:
        """What makes comparing the readable dumps doubtful, taken in time order: dumps of
        different processes (pid, start time or main module differ). Empty when they agree."""
        from .coverage import series_warnings

        order = sorted(self.allocations(), key=lambda a: (a.time is None, a.time.timestamp() if a.time else 0.0))
        return series_warnings(order)

    def failed_records(self) -> List[Dict[str, Any]]:
        """The raw records of the dumps that could not be read."""
        return [r for i, r in enumerate(self._records) if i not in self._allocs]

    def growth(self, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.growth` over the readable dumps."""
        from .timeline import growth

        kwargs.setdefault("errors", "ignore")
        return growth(self.allocations(), **kwargs)

    def diff(self, old: Union[int, str] = 0, new: Union[int, str] = -1, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.diff` between two readable dumps, by position or path (default: the
        first and the last)."""
        from .timeline import diff

        return diff(self._pick(old), self._pick(new), **kwargs)

    def top_stacks(self, dump: Union[int, str] = -1, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.top_stacks` of one readable dump, by position or path (default: the last)."""
        from .aggregate import top_stacks

        return top_stacks(self._pick(dump), **kwargs)

    def top_types(self, dump: Union[int, str] = -1, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.top_types` of one readable dump, by position or path (default: the last)."""
        from .aggregate import top_types

        return top_types(self._pick(dump), **kwargs)

    def _pick(self, which: Union[int, str]) -> Allocations:
        ok = self.allocations()
        if isinstance(which, int):
            if not ok:
                raise IndexError("no dump of this scan could be read")
            return ok[which]
        for a in ok:
            if a.path == str(which) or os.path.basename(a.path) == str(which):
                return a
        raise KeyError(f"{which!r} is not a readable dump of this scan")

    def to_parquet(self, path: Union[str, "os.PathLike[str]"], **kwargs: Any) -> str:
        """Write :attr:`blocks` to a Parquet file (needs pyarrow: ``pip install ntheap[parquet]``).

        Read it back with ``pandas.read_parquet(path)``; the categorical columns stay
        dictionary-encoded, so each stack key is stored once per row group.
        """
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError("ScanResult.to_parquet needs pyarrow: pip install 'ntheap[parquet]'") from None
        self.blocks.to_parquet(path, index=False, engine="pyarrow", **kwargs)
        return str(path)

    def __repr__(self) -> str:
        ok = len(self) - len(self.errors)
        return f"<ScanResult: {len(self)} dumps ({ok} read, {len(self.errors)} failed), {len(self.blocks)} busy blocks>"

    def _repr_html_(self) -> str:
        shown = self.summary.copy()
        shown["path"] = [os.path.basename(p) for p in shown["path"]]
        table = shown.to_html(index=False, na_rep="", escape=True)
        head = html.escape(self.__repr__())
        return f"<p><b>{head}</b></p>{table}"


def scan(paths: Union[PathLike, Iterable[PathLike]], workers: Optional[int] = None, progress: Optional[bool] = None,
         symbol_path: Optional[str] = None, image_path: Optional[str] = None,
         limits: Optional["_core.Limits"] = None) -> ScanResult:
    """Read many dumps in parallel (Rust threads, GIL released) into one :class:`ScanResult`.

    ``paths`` is a path, a folder (every ``*.dmp`` in it, by name) or a list of either.
    ``workers`` caps the threads (default: one per core). Each dump's allocations get their
    stack, C++ type and content class (``image_path`` and ``limits`` as in :class:`ntheap.Dump`). A tqdm
    progress bar goes to stderr while the scan runs when ``progress`` is true (None, the default: only when stderr is a
    terminal). A dump that fails is reported in ``.errors`` with its exception's class name and message; the others go
    on. What each readable dump's heaps do not cover is in ``.coverage``. Ctrl-C stops the scan (``KeyboardInterrupt``).

    Example:
        >>> res = ntheap.scan("samples/")  # doctest: +SKIP
        >>> res.summary  # doctest: +SKIP
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return ScanResult(run_scan(expand_paths(items), workers=workers, progress=progress, symbol_path=symbol_path,
                               image_path=image_path, limits=limits), workers=workers)
