"""``ntheap.dask``: dump series too large for one process, as a dask DataFrame.

Needs dask (``pip install 'ntheap[dask]'``). Each dump is one partition, read where the task
runs (a worker thread or process of a ``dask.distributed`` cluster), so only paths travel to
the workers and only the reductions you ask for travel back::

    import ntheap.dask
    from dask.distributed import Client

    client = Client()                                   # or a cluster's address
    ddf = ntheap.dask.read_blocks("dumps/")             # one partition per dump
    per_stack = ddf.groupby(["time", "top_frame"], observed=True).user_size.sum().compute()

The columns are those of :attr:`ntheap.ScanResult.blocks` (:data:`ntheap.allocations.FRAME_COLUMNS`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Optional, Sequence, Union

try:
    import dask.dataframe as _dd
except ImportError as _e:  # pragma: no cover - exercised only without the extra
    raise ImportError("ntheap.dask needs dask: pip install 'ntheap[dask]'") from _e

from .allocations import Allocations, frame, rebuild_error
from .frames import FrameClassifier
from .scanjob import expand_paths, run_scan

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["read_blocks", "read_one"]

PathLike = Union[str, "os.PathLike[str]"]


def _meta() -> "pd.DataFrame":
    """An empty partition with the real dtypes (categoricals with unknown categories)."""
    from dask.dataframe.utils import clear_known_categories

    return clear_known_categories(frame([]))


def read_one(path: str, symbol_path: Optional[str] = None, errors: str = "raise",
             allocator_frames: Optional[Sequence[str]] = None) -> "pd.DataFrame":
    """The busy allocations of one dump as a pandas DataFrame (one partition of
    :func:`read_blocks`). With ``errors="ignore"`` a dump that cannot be read gives an empty
    frame instead of raising."""
    (record,) = run_scan([path], workers=1, progress=False, symbol_path=symbol_path)
    if record.get("error") is not None:
        if errors == "ignore":
            return frame([])
        raise rebuild_error(record)
    return frame([Allocations.from_record(record)], FrameClassifier(allocator_frames))


def read_blocks(paths: Union[PathLike, Iterable[PathLike]], *, symbol_path: Optional[str] = None,
                errors: str = "raise", allocator_frames: Optional[Sequence[str]] = None) -> Any:
    """A lazy dask DataFrame of the busy allocations of many dumps, one partition per dump.

    ``paths`` is a path, a folder (every ``*.dmp`` in it) or a list of either. Nothing is read
    until you compute. ``errors="ignore"`` turns a dump that cannot be read into an empty
    partition; the default raises its exception when that partition is computed (use
    :func:`ntheap.scan` to list the failures).

    Example:
        >>> ddf = ntheap.dask.read_blocks(sorted(glob.glob("samples/leaky-*.dmp")))  # doctest: +SKIP
        >>> ddf.groupby("dump", observed=True).user_size.sum().compute()  # doctest: +SKIP
    """
    if errors not in ("raise", "ignore"):
        raise ValueError(f"errors must be 'raise' or 'ignore', not {errors!r}")
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files = expand_paths(items)
    if not files:
        raise ValueError("read_blocks: no dump files given")
    frames = list(allocator_frames) if allocator_frames is not None else None
    return _dd.from_map(
        read_one,
        files,
        symbol_path=symbol_path,
        errors=errors,
        allocator_frames=frames,
        meta=_meta(),
        label="ntheap-read-blocks",
        enforce_metadata=False,
    )
