"""Many dumps at once: the Rust batch scanner (``_core.ScanJob``) behind a DataFrame result.

The scan runs in Rust threads with the GIL released; Python only polls its progress. A dump
that cannot be read becomes a row in :attr:`ScanResult.errors` and the others go on.
"""

from __future__ import annotations

import html
import os
import sys
import time as _time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from . import _core
from .analysis import DumpAllocations, FrameClassifier, NO_STACK
from ._dump import BLOCK_KIND_NAMES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PathLike = Union[str, "os.PathLike[str]"]

BLOCK_COLUMNS = ["dump", "time", "heap", "address", "user_address", "user_size", "kind", "kind_name", "stack_id", "stack_key", "top_frame"]
SUMMARY_COLUMNS = ["path", "time", "pid", "blocks", "bytes", "stacks", "error_kind", "error"]
_POLL_SECONDS = 0.1


def expand_paths(items: Iterable[PathLike]) -> List[str]:
    """Paths as given, with each folder replaced by the ``*.dmp`` files in it (sorted by name)."""
    out: List[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(str(c) for c in sorted(p.iterdir()) if c.suffix.lower() == ".dmp" and c.is_file())
        else:
            out.append(str(p))
    return out


def run_scan(paths: Sequence[str], *, workers: Optional[int] = None, progress: Optional[bool] = True,
             symbol_path: Optional[str] = None) -> List[Dict[str, Any]]:
    """The raw records of ``_core.ScanJob`` for ``paths`` (input order), with a tqdm progress bar
    on stderr while it runs: always when ``progress`` is true, only when stderr is a terminal
    when it is None, never when it is false."""
    job = _core.ScanJob(list(paths), workers, symbol_path)
    if progress is not False and job.total:
        from tqdm import tqdm

        with tqdm(total=job.total, unit="dump", desc="ntheap scan", file=sys.stderr, leave=False,
                  disable=None if progress is None else False) as bar:
            shown = 0
            while not job.finished():
                done = job.done()
                if done > shown:
                    bar.update(done - shown)
                    shown = done
                _time.sleep(_POLL_SECONDS)
            bar.update(job.total - shown)
    return list(job.results())


def blocks_frame(allocs: Sequence[DumpAllocations], classifier: Optional[FrameClassifier] = None) -> "pd.DataFrame":
    """One DataFrame of the busy allocations of several dumps (columns :data:`BLOCK_COLUMNS`).

    ``dump``, ``kind_name``, ``stack_key`` and ``top_frame`` are categoricals, so a stack shared
    by a million blocks is stored once.
    """
    import pandas as pd

    classifier = classifier or FrameClassifier()
    paths = [a.path for a in allocs]
    dump_index = pd.Index(list(dict.fromkeys(paths)), dtype=object)
    parts: Dict[str, List[np.ndarray]] = {c: [] for c in ("heap", "address", "user_address", "user_size", "kind", "stack_id")}
    dump_codes: List[np.ndarray] = []
    key_codes: List[np.ndarray] = []
    times: List[np.ndarray] = []
    local = [a.key_codes() for a in allocs]
    # All dumps' keys factorized together ("" first, so the no-stack group is code 0).
    pooled = np.concatenate([np.array([NO_STACK], dtype=object)] + [keys for _, keys in local])
    pool_codes, pool = pd.factorize(pooled)
    start = 1
    for i, (a, (codes, keys)) in enumerate(zip(allocs, local)):
        remap = pool_codes[start:start + len(keys)].astype(np.int64)
        start += len(keys)
        key_codes.append(remap[codes] if len(codes) else np.zeros(0, dtype=np.int64))
        dump_codes.append(np.full(len(a), i, dtype=np.int32))
        stamp = np.datetime64(int(a.time.timestamp()), "s") if a.time is not None else np.datetime64("NaT")
        times.append(np.full(len(a), stamp, dtype="datetime64[ns]"))
        for c in parts:
            parts[c].append(a.columns[c])

    def cat(arrs: List[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(arrs).astype(dtype, copy=False) if arrs else np.zeros(0, dtype=dtype)

    all_keys = np.asarray(pool, dtype=object)
    labels = np.array(classifier.labels(all_keys)[0], dtype=object)
    label_codes, label_values = pd.factorize(labels)
    kcodes = cat(key_codes, np.int64)
    kinds = cat(parts["kind"], np.uint8)
    kind_cats = [BLOCK_KIND_NAMES[c] for c in sorted(BLOCK_KIND_NAMES)]
    return pd.DataFrame(
        {
            "dump": pd.Categorical.from_codes(dump_index.get_indexer(paths)[cat(dump_codes, np.int32)], categories=dump_index),
            "time": pd.DatetimeIndex(cat(times, "datetime64[ns]")).tz_localize("UTC"),
            "heap": cat(parts["heap"], np.uint64),
            "address": cat(parts["address"], np.uint64),
            "user_address": cat(parts["user_address"], np.uint64),
            "user_size": cat(parts["user_size"], np.uint64),
            "kind": kinds,
            "kind_name": pd.Categorical.from_codes(kinds.astype(np.int64), categories=pd.Index(kind_cats, dtype=object)),
            "stack_id": cat(parts["stack_id"], np.int32),
            "stack_key": pd.Categorical.from_codes(kcodes, categories=pd.Index(all_keys, dtype=object)),
            "top_frame": pd.Categorical.from_codes(label_codes[kcodes], categories=pd.Index(np.asarray(label_values, dtype=object), dtype=object)),
        },
        columns=BLOCK_COLUMNS,
    )


def _stack_count(a: DumpAllocations) -> int:
    """Distinct stack keys that hold blocks (code 0 is the no-stack group)."""
    codes = a.key_codes()[0]
    return int(len(np.unique(codes[codes != 0])))


class ScanResult:
    """What :func:`scan` found: every dump's busy allocations in one DataFrame, a summary row per
    dump, and the dumps that could not be read.

    Attributes:
        blocks: one row per busy user allocation of every readable dump (columns
            :data:`BLOCK_COLUMNS`; ``dump`` is the path, ``stack_key`` the symbolized stack).
        summary: one row per dump in input order: path, time, pid, blocks, bytes, stacks,
            error_kind, error (None when the dump was read).
        errors: the rows of ``summary`` whose dump could not be read.

    Example:
        >>> res = ntheap.scan("samples/")  # doctest: +SKIP
        >>> res.blocks.groupby(["time", "top_frame"], observed=True).user_size.sum()  # doctest: +SKIP
    """

    def __init__(self, records: Sequence[Dict[str, Any]], classifier: Optional[FrameClassifier] = None) -> None:
        import pandas as pd

        self._records = list(records)
        self._allocs: Dict[int, DumpAllocations] = {
            i: DumpAllocations.from_scan_record(r) for i, r in enumerate(self._records) if r.get("error") is None
        }
        self.blocks: pd.DataFrame = blocks_frame(list(self._allocs.values()), classifier)
        rows = []
        for i, r in enumerate(self._records):
            a = self._allocs.get(i)
            rows.append(
                {
                    "path": r["path"],
                    "time": pd.Timestamp(a.time) if a is not None and a.time is not None else pd.NaT,
                    "pid": r.get("pid"),
                    "blocks": len(a) if a is not None else 0,
                    "bytes": int(a.columns["user_size"].sum()) if a is not None else 0,
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

    def __len__(self) -> int:
        return len(self._records)

    @property
    def paths(self) -> List[str]:
        """Every dump path, in input order."""
        return [r["path"] for r in self._records]

    def allocations(self) -> List[DumpAllocations]:
        """The readable dumps' allocations, in input order."""
        return [self._allocs[i] for i in sorted(self._allocs)]

    def failed_records(self) -> List[Dict[str, Any]]:
        """The raw records of the dumps that could not be read."""
        return [r for i, r in enumerate(self._records) if i not in self._allocs]

    def growth(self, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.growth` over the readable dumps."""
        from .analysis import growth

        kwargs.setdefault("errors", "ignore")
        return growth(self.allocations(), **kwargs)

    def diff(self, old: Union[int, str] = 0, new: Union[int, str] = -1, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.diff` between two readable dumps, by position or path (default: the
        first and the last)."""
        from .analysis import diff

        return diff(self._pick(old), self._pick(new), **kwargs)

    def top_stacks(self, dump: Union[int, str] = -1, **kwargs: Any) -> "pd.DataFrame":
        """:func:`ntheap.top_stacks` of one readable dump, by position or path (default: the last)."""
        from .analysis import top_stacks

        return top_stacks(self._pick(dump), **kwargs)

    def _pick(self, which: Union[int, str]) -> DumpAllocations:
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


def scan(paths: Union[PathLike, Iterable[PathLike]], workers: Optional[int] = None, progress: Optional[bool] = True,
         symbol_path: Optional[str] = None) -> ScanResult:
    """Read many dumps in parallel (Rust threads, GIL released) into one :class:`ScanResult`.

    ``paths`` is a path, a folder (every ``*.dmp`` in it, by name) or a list of either.
    ``workers`` caps the threads (default: one per core). A tqdm progress bar goes to stderr
    while the scan runs when ``progress`` is true (None: only when stderr is a terminal). A dump that fails is reported in
    ``.errors`` with its exception's class name and message; the others go on.

    Example:
        >>> res = ntheap.scan("samples/")  # doctest: +SKIP
        >>> res.summary  # doctest: +SKIP
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    return ScanResult(run_scan(expand_paths(items), workers=workers, progress=progress, symbol_path=symbol_path))
