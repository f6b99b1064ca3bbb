"""One dump's allocations totalled by key: what UMDH, ``!heap -stat`` and a type census answer.

Only user allocations count (the ``is_allocation`` rows, defined once in the core, see
``docs/block-model.md``); sizes are the requested (user) sizes. Each function takes an
:class:`ntheap.Dump`, a path or an :class:`ntheap.allocations.Allocations`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from .allocations import one
from .frames import FrameClassifier
from .keys import group

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def _check_rank(by: str) -> None:
    if by not in ("bytes", "count"):
        raise ValueError(f"by must be 'bytes' or 'count', not {by!r}")


def top_stacks(dump: Any, by: str = "bytes", n: Optional[int] = 20, *,
               allocator_frames: Optional[Sequence[str]] = None, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes and allocation count per allocation stack, biggest first: UMDH's per-BackTrace
    totals for one dump.

    Columns: stack_id (-1: blocks without a stack), count, bytes, pct (of all busy user bytes),
    top_frame (the first frame past the allocator), module (of that frame), stack_key (all
    frames, innermost first, one per line). ``by`` is "bytes" or "count" (ties: the other one,
    then the stack key); ``n=None`` keeps every stack. ``dump`` is an :class:`ntheap.Dump` or a path.

    Example:
        >>> ntheap.top_stacks(ntheap.Dump("samples/leaky-4.dmp"), n=5)  # doctest: +SKIP
    """
    import pandas as pd

    _check_rank(by)
    a = one(dump, symbol_path)
    classifier = FrameClassifier(allocator_frames)
    group(a, "stack", classifier)  # validates the ids
    sid = np.asarray(a.table["stack_id"]).astype(np.int64)
    nkeys = len(a.stacks)
    count = np.bincount(sid + 1, minlength=nkeys + 1)
    size = np.bincount(sid + 1, weights=np.asarray(a.table["user_size"]).astype(np.float64), minlength=nkeys + 1).astype(np.int64)
    ids = np.nonzero(count)[0]
    tops, mods = a.stacks.callers(classifier)
    keys = np.concatenate([np.array([""], dtype=object), np.asarray(a.stacks.keys(), dtype=object)])[ids]
    top = np.array(["(no stack)", *tops], dtype=object)[ids]
    module = np.array(["(no stack)", *mods], dtype=object)[ids]
    total = int(size.sum())
    df = pd.DataFrame(
        {
            "stack_id": (ids - 1).astype(np.int32),
            "count": count[ids].astype(np.int64),
            "bytes": size[ids],
            "pct": 100.0 * size[ids] / total if total else np.zeros(len(ids)),
            "top_frame": pd.array(top, dtype=object),
            "module": pd.array(module, dtype=object),
            "stack_key": pd.array(keys, dtype=object),
        }
    )
    other = "count" if by == "bytes" else "bytes"
    df = df.sort_values([by, other, "stack_key", "stack_id"], ascending=[False, False, True, True], kind="stable", ignore_index=True)
    return df if n is None else df.head(n).reset_index(drop=True)


def top_keys(dump: Any, key: str = "type", by: str = "bytes", n: Optional[int] = 20, *,
             allocator_frames: Optional[Sequence[str]] = None, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes and allocation count per grouping key (see :mod:`ntheap.keys`), biggest
    first. Columns: the key column, the label column, module, count, bytes, pct."""
    import pandas as pd

    from .keys import check_by

    _check_rank(by)
    key_col, label_col = check_by(key)
    a = one(dump, symbol_path)
    g = group(a, key, FrameClassifier(allocator_frames))
    nk = len(g.keys)
    count = np.bincount(g.codes, minlength=nk).astype(np.int64)
    size = np.bincount(g.codes, weights=np.asarray(a.table["user_size"]).astype(np.float64), minlength=nk).astype(np.int64)
    total = int(size.sum())
    df = pd.DataFrame(
        {
            key_col: pd.array(g.keys, dtype=object),
            label_col: pd.array(g.labels, dtype=object),
            "module": pd.array(g.modules, dtype=object),
            "count": count,
            "bytes": size,
            "pct": 100.0 * size / total if total else np.zeros(nk),
        }
    )
    other = "count" if by == "bytes" else "bytes"
    df = df.sort_values([by, other, key_col], ascending=[False, False, True], kind="stable", ignore_index=True)
    return df if n is None else df.head(n).reset_index(drop=True)


def top_types(dump: Any, by: str = "bytes", n: Optional[int] = 20, *, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes and count per C++ type (MSVC RTTI, leak-triage.md §1), the blocks without a
    type grouped by content class (§3), as §2.4 groups them; works without +ust.

    Columns: type_key (the decorated name, or the content class), type (undecorated, or the
    class in parentheses), module (of the type's image), count, bytes, pct.

    Example:
        >>> ntheap.top_types(ntheap.Dump("app.dmp"), n=10)  # doctest: +SKIP
    """
    return top_keys(dump, "type", by, n, symbol_path=symbol_path)


def top_content(dump: Any, by: str = "bytes", n: Optional[int] = None, *, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes and count per content class (leak-triage.md §3: object, ascii, utf16,
    pointer_array, zero, other). Columns: content_key, content, module (empty), count, bytes,
    pct.

    Example:
        >>> ntheap.top_content(ntheap.Dump("app.dmp"))  # doctest: +SKIP
    """
    return top_keys(dump, "content", by, n, symbol_path=symbol_path)


def size_histogram(dump: Any, *, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy blocks by user size, like ``!heap -stat -h``: size, count, total (size × count) and
    pct (of all busy user bytes), biggest total first."""
    import pandas as pd

    a = one(dump, symbol_path)
    sizes, counts = np.unique(np.asarray(a.table["user_size"]).astype(np.int64), return_counts=True)
    totals = sizes * counts
    grand = int(totals.sum())
    df = pd.DataFrame(
        {
            "size": sizes,
            "count": counts.astype(np.int64),
            "total": totals,
            "pct": 100.0 * totals / grand if grand else np.zeros(len(sizes)),
        }
    )
    return df.sort_values(["total", "size"], ascending=[False, False], kind="stable", ignore_index=True)


def top_modules(dump: Any, by: str = "bytes", n: Optional[int] = None, *,
                allocator_frames: Optional[Sequence[str]] = None, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes per module that asked for them: each stack counts towards the module of its
    first frame past the allocator (see ``ntheap.ALLOCATOR_FRAMES``).

    Columns: module, stacks (distinct stacks), count, bytes, pct. ``(no stack)`` collects blocks
    without a stack, ``(jit or unknown)`` stacks whose caller frame lies outside every module
    (JIT-compiled code, or memory the dump does not describe).
    """
    _check_rank(by)
    per_stack = top_stacks(dump, n=None, allocator_frames=allocator_frames, symbol_path=symbol_path)
    g = per_stack.groupby("module", sort=False).agg(stacks=("stack_id", "size"), count=("count", "sum"), bytes=("bytes", "sum"))
    total = int(g["bytes"].sum())
    g["pct"] = 100.0 * g["bytes"] / total if total else 0.0
    other = "count" if by == "bytes" else "bytes"
    g = g.reset_index().sort_values([by, other, "module"], ascending=[False, False, True], kind="stable", ignore_index=True)
    g["stacks"] = g["stacks"].astype(np.int64)
    return g if n is None else g.head(n).reset_index(drop=True)
