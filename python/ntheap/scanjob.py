"""The Rust batch scanner (``_core.ScanJob``) as a function: many dumps read in parallel on Rust
threads with the GIL released, while Python only polls the progress. The raw records it returns
become :class:`ntheap.allocations.Allocations` (one per readable dump)."""

from __future__ import annotations

import os
import sys
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


def show_progress(progress: Optional[bool]) -> bool:
    """Whether to draw a progress bar: always when ``progress`` is true, never when it is false,
    and when it is None (the default everywhere) only when stderr is a terminal."""
    if progress is None:
        return sys.stderr is not None and sys.stderr.isatty()
    return bool(progress)


def run_scan(paths: Sequence[str], *, workers: Optional[int] = None, progress: Optional[bool] = None,
             symbol_path: Optional[str] = None, image_path: Optional[str] = None,
             limits: Optional[_core.Limits] = None) -> List[Dict[str, Any]]:
    """The raw records of ``_core.ScanJob`` for ``paths`` (input order), with a tqdm progress bar
    on stderr while it runs (see :func:`show_progress`). Ctrl-C cancels the Rust work and raises
    ``KeyboardInterrupt``."""
    job = _core.ScanJob(list(paths), workers, symbol_path, image_path, limits)
    try:
        if show_progress(progress) and job.total:
            from tqdm import tqdm

            with tqdm(total=job.total, unit="dump", desc="ntheap scan", file=sys.stderr, leave=False) as bar:
                shown = 0
                while not job.wait(_POLL_SECONDS):
                    done = job.done()
                    if done > shown:
                        bar.update(done - shown)
                        shown = done
                bar.update(job.total - shown)
        else:
            # Waits of a bounded length, so that Ctrl-C reaches this thread between them.
            while not job.wait(_POLL_SECONDS):
                pass
    except KeyboardInterrupt:
        job.cancel()
        job.results()  # wait for the workers to stop
        raise
    return list(job.results())
