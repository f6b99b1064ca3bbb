"""What an answer does not cover, and whether a series of dumps belongs together.

Every view states when its answer is partial or empty: the rows of ``Dump.coverage()`` (computed
in the Rust core, tags in docs/coverage.md) are the one machine-readable form, and the command
line's exit statuses follow from them:

* 0: a full answer;
* 1: an answer with gaps the user should know about (coverage rows, dumps that could not be
  read while others could, dumps of different processes or out of time order, a series too
  short for growth);
* 2: no answer (bad arguments, a file that cannot be read as a dump, or a dump in which not one
  heap could be read, for a command about heaps).
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .table import Table

if TYPE_CHECKING:  # pragma: no cover
    from .allocations import Allocations

#: Columns of ``Dump.coverage()``.
COVERAGE_COLUMNS = ["scope", "heap", "what", "count", "bytes", "message"]
#: Exit statuses of the ``ntheap`` command.
FULL, GAPS, NO_ANSWER = 0, 1, 2

CoverageRow = Tuple[str, int, str, int, int, str]


def coverage_table(rows: Sequence[CoverageRow]) -> Table:
    """Coverage rows as a :class:`ntheap.Table` (columns :data:`COVERAGE_COLUMNS`)."""

    def objects(i: int) -> np.ndarray:
        out = np.empty(len(rows), dtype=object)
        out[:] = [r[i] for r in rows]
        return out

    return Table(
        "coverage",
        {
            "scope": objects(0),
            "heap": np.array([r[1] for r in rows], dtype=np.uint64),
            "what": objects(2),
            "count": np.array([r[3] for r in rows], dtype=np.uint64),
            "bytes": np.array([r[4] for r in rows], dtype=np.uint64),
            "message": objects(5),
        },
    )


def _when(t: Optional[_dt.datetime]) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "time unknown"


def series_warnings(allocs: Sequence["Allocations"]) -> List[str]:
    """What makes comparing ``allocs`` (in the order given, oldest first) doubtful: dumps of
    different processes (pid, process start time or main module differ) and dumps out of time
    order. Empty when the series is consistent."""
    out: List[str] = []
    if len(allocs) < 2:
        return out

    differ: List[str] = []

    def compare(label: str, values: Iterable[Any]) -> None:
        seen = sorted({str(v) for v in values if v is not None})
        if len(seen) > 1:
            differ.append(f"{label} {', '.join(seen)}")

    compare("pids", (a.pid for a in allocs))
    compare("process start times", (_when(a.process_create_time) if a.process_create_time else None for a in allocs))
    compare("main modules", (a.main_module.lower() if a.main_module else None for a in allocs))
    if differ:
        out.append(f"the dumps come from different processes ({'; '.join(differ)})")
    for before, after in zip(allocs, allocs[1:]):
        if before.time is not None and after.time is not None and after.time < before.time:
            out.append(f"{after.name} ({_when(after.time)}) was written before {before.name} ({_when(before.time)}), "
                       "which is given first: the change is measured in the order given")
    return out


def gap_messages(a: "Allocations", prefix: bool = False) -> List[str]:
    """The coverage messages of one dump's allocations (``prefix``: each starts with its name)."""
    head = f"{a.name}: " if prefix else ""
    return [head + r[5] for r in a.coverage]


def no_heap_read(a: "Allocations") -> bool:
    """Whether not one heap of the dump could be read (its allocations say nothing)."""
    return a.heaps_walked == 0


def status(*, failed: int = 0, read: int = 1, gaps: bool = False, no_heaps: bool = False) -> int:
    """The exit status: :data:`NO_ANSWER` when nothing was read or no heap of what was read;
    :data:`GAPS` when some dumps failed or the answer has gaps; else :data:`FULL`."""
    if read == 0 or no_heaps:
        return NO_ANSWER
    if failed or gaps:
        return GAPS
    return FULL


def folder_note(paths: Sequence[str]) -> Optional[str]:
    """Why a list of dump paths is empty (a folder without .dmp files), or None."""
    folders = [p for p in paths if os.path.isdir(p)]
    if folders:
        return f"no .dmp file in {', '.join(folders)}"
    return None
