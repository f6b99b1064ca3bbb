"""The Rust batch scanner (``_core.ScanJob``) as a function: many dumps read in parallel on Rust
threads with the GIL released, while Python only polls the progress. The raw records it returns
become :class:`ntheap.allocations.Allocations` (one per readable dump)."""

from __future__ import annotations

import os
import sys
import time as _time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

from . import _core

PathLike = Union[str, "os.PathLike[str]"]
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
             symbol_path: Optional[str] = None, image_path: Optional[str] = None) -> List[Dict[str, Any]]:
    """The raw records of ``_core.ScanJob`` for ``paths`` (input order), with a tqdm progress bar
    on stderr while it runs: always when ``progress`` is true, only when stderr is a terminal
    when it is None, never when it is false."""
    job = _core.ScanJob(list(paths), workers, symbol_path, image_path)
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
