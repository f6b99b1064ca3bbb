"""Leak analysis over heap blocks and their +ust allocation stacks: what UMDH and
``!heap -stat`` answer, as DataFrames.

The unit of analysis is a *stack key*: the symbolized frame texts of one allocation stack
joined with "\\n", innermost first (``Dump.stacks().keys()``). Stack ids are local to a dump;
keys are comparable across dumps, so :func:`diff` and :func:`growth` match stacks by key.

Only user allocations count: the rows whose ``is_allocation`` column is true (busy back-end,
virtual, LFH, page-heap and segment-heap blocks; the rule is defined once, in the core, see
``docs/block-model.md``). Segment headers, the heap's own internal blocks, LFH zones and
containers are heap bookkeeping, not something a program asked for. Sizes are the requested
(user) sizes, as UMDH reports them.

Blocks without a stack (no +ust, or the trace database did not record one) are one group with
the stack key ``""`` and the label ``(no stack)``, so totals always add up to the heap's busy
bytes.

Where allocation frames end
---------------------------
The frames nearest the allocation are the allocator itself (``ntdll!RtlpAllocateHeapInternal``,
``ucrtbase!_malloc_base``, ``operator new``). The frame a person wants to see is the first one
past them: the code that asked for memory. :data:`ALLOCATOR_FRAMES` lists the patterns that
mark a frame as allocator code. A pattern is matched, ignoring case, against a frame written
as ``module!symbol`` (offset removed) or, for a frame without a symbol, ``module+0xOFFSET``;
``*`` matches any run of characters and nothing else is special (so decorated names such as
``??2@YAPEAX_K@Z`` are written as they are). A pattern without ``!`` or ``+`` matches that
symbol in any module. Extend the list for your own allocator wrappers::

    ntheap.ALLOCATOR_FRAMES.append("myapp!CPool::Alloc*")

or pass ``allocator_frames=`` to a single call.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump
    from .scan import ScanResult

#: Patterns of frames that belong to the allocator (see the module doc for the syntax).
ALLOCATOR_FRAMES: List[str] = [
    # ntdll: the NT heap's entry points and their internal and debug-heap variants.
    "ntdll!RtlAllocateHeap",
    "ntdll!RtlpAllocateHeap",
    "ntdll!RtlpAllocateHeapInternal",
    "ntdll!RtlDebugAllocateHeap",
    "ntdll!RtlpAllocateHeapRaiseException",
    "ntdll!RtlReAllocateHeap",
    "ntdll!RtlpReAllocateHeap",
    "ntdll!RtlpReAllocateHeapInternal",
    "ntdll!RtlDebugReAllocateHeap",
    "ntdll!RtlpAllocateUserBlock*",
    "ntdll!RtlpLowFragHeapAlloc*",
    # kernel32 / kernelbase wrappers.
    "kernel*!HeapAlloc",
    "kernel*!HeapReAlloc",
    "kernel*!LocalAlloc",
    "kernel*!LocalReAlloc",
    "kernel*!GlobalAlloc",
    "kernel*!GlobalReAlloc",
    # The C runtime, in ucrtbase, msvcrt*, or linked statically into any module.
    "malloc",
    "_malloc_base",
    "_malloc_dbg",
    "calloc",
    "_calloc_base",
    "_calloc_impl",
    "_calloc_dbg",
    "realloc",
    "_realloc_base",
    "_realloc_dbg",
    "_recalloc",
    "_recalloc_base",
    "_aligned_malloc",
    "_aligned_offset_malloc",
    "_aligned_realloc",
    "_heap_alloc",
    "_heap_alloc_dbg*",
    "_nh_malloc_dbg*",
    "heap_alloc_dbg_internal",
    # operator new / new[], undecorated and decorated (x64 and x86, plain and nothrow).
    "operator new",
    "operator new[]",
    "operator new(*",
    "operator new[](*",
    "??2@YAPEAX_K@Z",
    "??2@YAPAXI@Z",
    "??_U@YAPEAX_K@Z",
    "??_U@YAPAXI@Z",
    "??2@YAPEAX_KAEBUnothrow_t@std@@@Z",
    "??_U@YAPEAX_KAEBUnothrow_t@std@@@Z",
    # The C++ standard library's allocation helpers.
    "std::_Allocate*",
    "std::allocator<*>::allocate",
    # Frames without a symbol inside the system allocator modules.
    "ntdll+*",
    "kernelbase+*",
    "kernel32+*",
    "ucrtbase+*",
    "ucrtbased+*",
    "msvcrt*+*",
    "vcruntime*+*",
]

NO_STACK = ""
NO_STACK_LABEL = "(no stack)"
UNKNOWN_MODULE = "(jit or unknown)"

_OFFSET = re.compile(r"\+(?:0x)?[0-9a-f`]+$", re.IGNORECASE)
_ADDRESS = re.compile(r"(?:0x)?[0-9a-f`]+", re.IGNORECASE)
_EXTENSIONS = (".dll", ".exe", ".sys", ".drv", ".ocx")

PathLike = Union[str, "os.PathLike[str]"]


# ---------------------------------------------------------------------------------------------
# Frames


def split_frame(text: str) -> Tuple[str, str]:
    """``(module, symbol)`` of one frame text, ``""`` for either part that is not known.

    Example:
        >>> split_frame("ucrtbase!_malloc_base+0x36")
        ('ucrtbase', '_malloc_base')
        >>> split_frame("leaky+0x1a40")
        ('leaky', '')
        >>> split_frame("0x00007ff6`12345678")
        ('', '')
    """
    t = text.strip()
    if "!" in t:
        module, symbol = t.split("!", 1)
        symbol = _OFFSET.sub("", symbol)
    else:
        module, symbol = _OFFSET.sub("", t), ""
        if _looks_like_address(module):
            return "", ""  # JIT code or memory that no module covers
    module = re.split(r"[\\/]", module)[-1]
    if module.lower().endswith(_EXTENSIONS):
        module = module[: module.rfind(".")]
    return module, symbol


def _looks_like_address(text: str) -> bool:
    low = text.lower()
    return bool(_ADDRESS.fullmatch(low)) and (low.startswith("0x") or "`" in low or len(low) >= 8)


def _pattern(p: str) -> str:
    if "!" not in p and "+" not in p:
        p = "*!" + p
    return ".*".join(re.escape(part) for part in p.split("*"))


class FrameClassifier:
    """Decides which frames are allocator code and labels stacks by their first other frame.

    Results are cached per frame text, so labelling many stacks that share frames is cheap.
    """

    def __init__(self, allocator_frames: Optional[Sequence[str]] = None) -> None:
        patterns = ALLOCATOR_FRAMES if allocator_frames is None else allocator_frames
        # One alternation: a frame is matched once, whatever the number of patterns.
        self._match = re.compile("|".join(f"(?:{_pattern(p)})" for p in patterns) or r"(?!)", re.IGNORECASE | re.DOTALL).fullmatch
        self._frames: Dict[str, bool] = {}
        self._stacks: Dict[str, Tuple[str, str]] = {}

    def is_allocator(self, frame: str) -> bool:
        """Whether ``frame`` (one frame text) matches an allocator pattern."""
        hit = self._frames.get(frame)
        if hit is None:
            module, symbol = split_frame(frame)
            if not module and not symbol:
                hit = False
            else:
                if symbol:
                    probe = f"{module}!{symbol}"
                else:
                    m = _OFFSET.search(frame.strip())
                    probe = f"{module}{m.group(0) if m else '+'}"
                hit = self._match(probe) is not None
            self._frames[frame] = hit
        return hit

    def caller(self, stack_key: str) -> Tuple[str, str]:
        """``(frame text, module)`` of the first non-allocator frame of a stack key.

        A stack made only of allocator frames is labelled by its innermost frame.
        """
        hit = self._stacks.get(stack_key)
        if hit is None:
            frames = [f for f in stack_key.split("\n") if f.strip()] if stack_key else []
            if not frames:
                hit = (NO_STACK_LABEL, NO_STACK_LABEL)
            else:
                chosen = next((f for f in frames if not self.is_allocator(f)), frames[0])
                hit = (chosen.strip(), split_frame(chosen)[0] or UNKNOWN_MODULE)
            self._stacks[stack_key] = hit
        return hit

    def labels(self, stack_keys: Iterable[str]) -> Tuple[List[str], List[str]]:
        """Caller frame texts and modules of many stack keys."""
        pairs = [self.caller(k) for k in stack_keys]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def top_frame(stack_key: str, allocator_frames: Optional[Sequence[str]] = None) -> str:
    """The first frame of a stack key that is not allocator code (``"(no stack)"`` for ``""``).

    Example:
        >>> top_frame("ntdll!RtlAllocateHeap+0x4f\\nucrtbase!_malloc_base+0x36\\nleaky!Session::Open+0x20")
        'leaky!Session::Open+0x20'
    """
    return FrameClassifier(allocator_frames).caller(stack_key)[0]


# ---------------------------------------------------------------------------------------------
# One dump's busy allocations, whatever it came from


@dataclass
class DumpAllocations:
    """The busy user allocations of one dump with the stack keys their ids refer to.

    ``columns`` holds equal-length numpy arrays: heap, address, user_address, user_size, kind,
    stack_id. ``stack_keys[i]`` is the key of stack id ``i``; id -1 means no stack.
    """

    path: str
    time: Optional[_dt.datetime]
    pid: Optional[int]
    columns: Dict[str, np.ndarray]
    stack_keys: np.ndarray

    @classmethod
    def from_dump(cls, dump: "Dump") -> "DumpAllocations":
        """Read a dump's blocks and stacks (busy user allocations only)."""
        table = dump.blocks()
        keep = np.asarray(table["is_allocation"])
        cols = {c: np.asarray(table[c])[keep] for c in ("heap", "address", "user_address", "user_size", "kind", "stack_id")}
        keys = np.array(list(dump.stacks().keys()), dtype=object)
        return cls(str(dump.path), dump.timestamp, dump.pid, cols, keys)

    @classmethod
    def from_scan_record(cls, record: Dict[str, Any]) -> "DumpAllocations":
        """Build from one record of ``_core.ScanJob.results()`` (which must have no error)."""
        blocks = record["blocks"]  # the scan keeps the user allocations only
        cols = {c: np.asarray(blocks[c]) for c in ("heap", "address", "user_address", "user_size", "kind", "stack_id")}
        ts = record.get("timestamp_unix")
        time = None if ts is None else _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
        return cls(record["path"], time, record.get("pid"), cols, np.asarray(record["stack_keys"], dtype=object))

    def __len__(self) -> int:
        return len(self.columns["user_size"])

    @property
    def name(self) -> str:
        """The dump's file name."""
        return os.path.basename(self.path)

    def key_codes(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(codes, keys)``: per block an index into ``keys``, which has ``""`` first and then
        each distinct stack key once (two ids with the same text share a code)."""
        sid = self.columns["stack_id"].astype(np.int64)
        n = len(self.stack_keys)
        if len(sid) and (int(sid.max()) >= n or int(sid.min()) < -1):
            bad = sid[(sid >= n) | (sid < -1)][0]
            raise ValueError(f"{self.path}: block refers to stack id {bad}, but the dump has {n} stacks")
        import pandas as pd

        uniq_codes, uniq = pd.factorize(np.concatenate([np.array([NO_STACK], dtype=object), self.stack_keys]))
        return uniq_codes[sid + 1], np.asarray(uniq, dtype=object)


DumpLike = Union["Dump", DumpAllocations, PathLike]


def _is_pathlike(x: object) -> bool:
    return isinstance(x, (str, os.PathLike))


def allocations(items: Sequence[Any], *, symbol_path: Optional[str] = None, progress: Optional[bool] = False,
                errors: str = "raise", workers: Optional[int] = None) -> List[DumpAllocations]:
    """Turn dumps, paths and ScanResults into :class:`DumpAllocations`, in the given order.

    Paths are read together by one batch scan. ``errors``: "raise" (the first failed dump raises
    its exception), "warn" (skip it with a :class:`DumpSkippedWarning`) or "ignore" (skip it).
    """
    if errors not in ("raise", "warn", "ignore"):
        raise ValueError(f"errors must be 'raise', 'warn' or 'ignore', not {errors!r}")
    from .scan import ScanResult, expand_paths, run_scan

    slots: List[Any] = []
    paths: List[str] = []
    for item in items:
        if isinstance(item, ScanResult):
            slots.extend(item.allocations())
            for rec in item.failed_records():
                slots.append(rec)
        elif _is_pathlike(item):
            for p in expand_paths([item]):
                slots.append(len(paths))
                paths.append(p)
        elif isinstance(item, DumpAllocations):
            slots.append(item)
        elif hasattr(item, "blocks") and hasattr(item, "stacks"):
            slots.append(DumpAllocations.from_dump(item))
        else:
            raise TypeError(f"expected a Dump, a path or a ScanResult, not {type(item).__name__}")
    records = run_scan(paths, workers=workers, progress=progress, symbol_path=symbol_path) if paths else []
    out: List[DumpAllocations] = []
    for slot in slots:
        rec = records[slot] if isinstance(slot, int) else slot
        if isinstance(rec, DumpAllocations):
            out.append(rec)
            continue
        if rec.get("error") is None:
            out.append(DumpAllocations.from_scan_record(rec))
            continue
        if errors == "raise":
            raise rebuild_error(rec)
        if errors == "warn":
            import warnings

            warnings.warn(DumpSkippedWarning(f"skipped {rec['path']}: {rec.get('error_kind')}: {rec['error']}"), stacklevel=3)
    return out


class DumpSkippedWarning(UserWarning):
    """A dump in a series could not be read and was left out."""


def rebuild_error(record: Dict[str, Any]) -> BaseException:
    """The exception a failed scan record carries (a copy, so that raising it again starts a
    fresh traceback), with the dump's path in ``path``."""
    import copy

    exc = record.get("exception")
    if isinstance(exc, BaseException):
        return copy.copy(exc)
    # A record made by hand (tests, older pickles) without the exception object.
    return _core.DumpError(f"{record['path']}: {record.get('error_kind')}: {record['error']}")


def _one(dump: DumpLike, symbol_path: Optional[str] = None) -> DumpAllocations:
    if isinstance(dump, DumpAllocations):
        return dump
    if isinstance(dump, (str, os.PathLike)):
        from ._dump import Dump

        return DumpAllocations.from_dump(Dump(dump, symbol_path=symbol_path))
    return DumpAllocations.from_dump(dump)


# ---------------------------------------------------------------------------------------------
# One dump


def top_stacks(dump: DumpLike, by: str = "bytes", n: Optional[int] = 20, *,
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

    if by not in ("bytes", "count"):
        raise ValueError(f"by must be 'bytes' or 'count', not {by!r}")
    a = _one(dump, symbol_path)
    sid = a.columns["stack_id"].astype(np.int64)
    nkeys = len(a.stack_keys)
    a.key_codes()  # validates the ids
    count = np.bincount(sid + 1, minlength=nkeys + 1)
    size = np.bincount(sid + 1, weights=a.columns["user_size"].astype(np.float64), minlength=nkeys + 1).astype(np.int64)
    ids = np.nonzero(count)[0]
    keys = np.concatenate([np.array([NO_STACK], dtype=object), a.stack_keys])[ids]
    top, module = FrameClassifier(allocator_frames).labels(keys)
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


def size_histogram(dump: DumpLike, *, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy blocks by user size, like ``!heap -stat -h``: size, count, total (size × count) and
    pct (of all busy user bytes), biggest total first."""
    import pandas as pd

    a = _one(dump, symbol_path)
    sizes, counts = np.unique(a.columns["user_size"].astype(np.int64), return_counts=True)
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


def top_modules(dump: DumpLike, by: str = "bytes", n: Optional[int] = None, *,
                allocator_frames: Optional[Sequence[str]] = None, symbol_path: Optional[str] = None) -> "pd.DataFrame":
    """Busy bytes per module that asked for them: each stack counts towards the module of its
    first frame past the allocator (see :data:`ALLOCATOR_FRAMES`).

    Columns: module, stacks (distinct stacks), count, bytes, pct. ``(no stack)`` collects blocks
    without a stack, ``(jit or unknown)`` stacks whose caller frame lies outside every module
    (JIT-compiled code, or memory the dump does not describe).
    """
    if by not in ("bytes", "count"):
        raise ValueError(f"by must be 'bytes' or 'count', not {by!r}")
    per_stack = top_stacks(dump, n=None, allocator_frames=allocator_frames, symbol_path=symbol_path)
    g = per_stack.groupby("module", sort=False).agg(stacks=("stack_id", "size"), count=("count", "sum"), bytes=("bytes", "sum"))
    total = int(g["bytes"].sum())
    g["pct"] = 100.0 * g["bytes"] / total if total else 0.0
    other = "count" if by == "bytes" else "bytes"
    g = g.reset_index().sort_values([by, other, "module"], ascending=[False, False, True], kind="stable", ignore_index=True)
    g["stacks"] = g["stacks"].astype(np.int64)
    return g if n is None else g.head(n).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Several dumps

DIFF_COLUMNS = ["top_frame", "bytes_before", "bytes_after", "bytes_delta", "count_before", "count_after", "count_delta", "stack_key"]


def diff(old: Any, new: Any, *, allocator_frames: Optional[Sequence[str]] = None,
         symbol_path: Optional[str] = None, progress: Optional[bool] = False) -> "pd.DataFrame":
    """What changed between two dumps of one process, per allocation stack (UMDH's compare).

    Stacks are matched by their key (the symbolized frames), not by id. Columns: top_frame,
    bytes_before, bytes_after, bytes_delta, count_before, count_after, count_delta, stack_key;
    one row per stack present in either dump, largest growth in bytes first. ``old`` and ``new``
    are :class:`ntheap.Dump` objects or paths.

    Example:
        >>> d = ntheap.diff("samples/leaky-1.dmp", "samples/leaky-4.dmp")  # doctest: +SKIP
        >>> d[d.bytes_delta > 0].head()  # doctest: +SKIP
    """
    import pandas as pd

    before, after = allocations([old, new], symbol_path=symbol_path, progress=progress)
    keys, byt, cnt = _key_matrix([before, after])
    df = pd.DataFrame(
        {
            "bytes_before": byt[0],
            "bytes_after": byt[1],
            "count_before": cnt[0],
            "count_after": cnt[1],
            "stack_key": pd.array(keys, dtype=object),
        }
    )
    df["bytes_delta"] = df["bytes_after"] - df["bytes_before"]
    df["count_delta"] = df["count_after"] - df["count_before"]
    df["top_frame"] = pd.array(FrameClassifier(allocator_frames).labels(df["stack_key"])[0], dtype=object)
    df = df.sort_values(["bytes_delta", "count_delta", "stack_key"], ascending=[False, False, True], kind="stable", ignore_index=True)
    return df[DIFF_COLUMNS]


GROWTH_COLUMNS = ["time", "dump", "stack_key", "top_frame", "bytes", "count"]


def growth(dumps: Any, *, allocator_frames: Optional[Sequence[str]] = None, symbol_path: Optional[str] = None,
           progress: Optional[bool] = True, errors: str = "warn", workers: Optional[int] = None) -> "pd.DataFrame":
    """Bytes and count per allocation stack in each dump of a series: a tidy DataFrame, ordered
    by dump time (then by the order given), with stacks matched by key across dumps.

    Columns: time (UTC), dump (path), stack_key, top_frame, bytes, count; dump, stack_key and
    top_frame are categoricals (each key is stored once however many dumps there are; group
    with ``observed=True``). Every stack seen in any dump has a row in every dump (0 where it holds nothing), so a plot shows it appear and
    disappear; within a dump, the stacks that grew most from the first dump to the last come
    first. ``dumps`` is a sequence of :class:`ntheap.Dump` objects, paths or folders (every
    ``*.dmp`` in it), or a :class:`ntheap.ScanResult`. Paths are read in parallel by
    :func:`ntheap.scan`. A dump that cannot be read is left out with a
    :class:`DumpSkippedWarning` (``errors="raise"`` raises instead, "ignore" is silent).

    Example:
        >>> g = ntheap.growth(sorted(glob.glob("samples/leaky-*.dmp")))  # doctest: +SKIP
        >>> g.pivot_table(index="top_frame", columns="time", values="bytes", aggfunc="sum")  # doctest: +SKIP
    """
    import pandas as pd

    if _is_pathlike(dumps) or not isinstance(dumps, Iterable):
        dumps = [dumps]
    snaps = allocations(list(dumps), symbol_path=symbol_path, progress=progress, errors=errors, workers=workers)
    order = sorted(range(len(snaps)), key=lambda i: (snaps[i].time is None, snaps[i].time or _EPOCH, i))
    snaps = [snaps[i] for i in order]
    if not snaps:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in _GROWTH_DTYPES.items()})
    key_arr, byt, cnt = _key_matrix(snaps)
    # Most grown first, then biggest in the last dump, then by key.
    key_rank = np.argsort(np.argsort(key_arr, kind="stable"), kind="stable")
    rank = np.lexsort((key_rank, -byt[-1], -(byt[-1] - byt[0])))
    key_arr, byt, cnt = key_arr[rank], byt[:, rank], cnt[:, rank]
    labels = np.asarray(FrameClassifier(allocator_frames).labels(key_arr)[0], dtype=object)
    nd, nk = len(snaps), len(key_arr)
    times = pd.DatetimeIndex([pd.NaT if s.time is None else pd.Timestamp(s.time) for s in snaps]).tz_convert("UTC") \
        if any(s.time is not None for s in snaps) else pd.DatetimeIndex([pd.NaT] * nd, tz="UTC")
    paths = pd.Index(list(dict.fromkeys(s.path for s in snaps)), dtype=object)
    label_codes, label_values = pd.factorize(labels)
    return pd.DataFrame(
        {
            "time": np.repeat(times, nk),
            "dump": pd.Categorical.from_codes(np.repeat(paths.get_indexer([s.path for s in snaps]), nk), categories=paths),
            "stack_key": pd.Categorical.from_codes(np.tile(np.arange(nk), nd), categories=pd.Index(key_arr, dtype=object)),
            "top_frame": pd.Categorical.from_codes(np.tile(label_codes, nd), categories=pd.Index(np.asarray(label_values, dtype=object), dtype=object)),
            "bytes": byt.reshape(-1),
            "count": cnt.reshape(-1),
        }
    )


def _key_matrix(snaps: Sequence[DumpAllocations]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keys, bytes, counts)``: every stack key of the dumps once, and per dump (rows) and
    key (columns) the bytes and block counts, zeros where a dump lacks the stack."""
    import pandas as pd

    parts = [s.key_codes() for s in snaps]
    offsets = np.cumsum([0] + [len(keys) for _, keys in parts])
    pooled = np.concatenate([keys for _, keys in parts]) if parts else np.zeros(0, dtype=object)
    pool_codes, pool = pd.factorize(pooled)  # every distinct key once, hashed in C
    nk = len(pool)
    byt = np.zeros((len(snaps), nk), dtype=np.int64)
    cnt = np.zeros((len(snaps), nk), dtype=np.int64)
    for i, ((codes, _), s) in enumerate(zip(parts, snaps)):
        ids = pool_codes[offsets[i]:offsets[i + 1]][codes]
        cnt[i] = np.bincount(ids, minlength=nk)
        byt[i] = np.bincount(ids, weights=s.columns["user_size"].astype(np.float64), minlength=nk).astype(np.int64)
    seen = (cnt > 0).any(axis=0)
    return np.asarray(pool, dtype=object)[seen], byt[:, seen], cnt[:, seen]


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_GROWTH_DTYPES = {"time": "datetime64[ns, UTC]", "dump": "category", "stack_key": "category", "top_frame": "category", "bytes": np.int64, "count": np.int64}


GROWING_COLUMNS = ["stack_key", "top_frame", "bytes_first", "bytes_last", "bytes_delta", "count_first", "count_last",
                   "count_delta", "bytes_per_hour", "count_per_hour", "never_fell"]


def growing_stacks(growth_df: "pd.DataFrame", top: Optional[int] = 5) -> "pd.DataFrame":
    """The stacks of a :func:`growth` frame that gained bytes from the first dump to the last,
    most first.

    Columns: stack_key, top_frame, bytes_first, bytes_last, bytes_delta, count_first, count_last,
    count_delta, bytes_per_hour and count_per_hour (least-squares slopes over the dump times;
    NaN when fewer than two dumps have distinct known times) and never_fell (the bytes did not
    drop from any dump to the next: the signature of a leak rather than a cache). ``top=None``
    keeps all of them.
    """
    import pandas as pd

    if growth_df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in GROWING_COLUMNS})
    dump_codes, dumps = pd.factorize(growth_df["dump"])
    key_codes, keys = pd.factorize(growth_df["stack_key"])
    bv = np.zeros((len(keys), len(dumps)), dtype=np.int64)
    cv = np.zeros((len(keys), len(dumps)), dtype=np.int64)
    np.add.at(bv, (key_codes, dump_codes), growth_df["bytes"].to_numpy(np.int64))
    np.add.at(cv, (key_codes, dump_codes), growth_df["count"].to_numpy(np.int64))
    first_row = np.unique(key_codes, return_index=True)[1]
    labels = growth_df["top_frame"].to_numpy(object)[first_row]
    times = growth_df.drop_duplicates("dump").set_index("dump")["time"].reindex(dumps)
    out = pd.DataFrame(
        {
            "stack_key": pd.array(np.asarray(keys, dtype=object), dtype=object),
            "top_frame": pd.array(labels, dtype=object),
            "bytes_first": bv[:, 0],
            "bytes_last": bv[:, -1],
            "bytes_delta": bv[:, -1] - bv[:, 0],
            "count_first": cv[:, 0],
            "count_last": cv[:, -1],
            "count_delta": cv[:, -1] - cv[:, 0],
            "bytes_per_hour": _slope_per_hour(times, bv),
            "count_per_hour": _slope_per_hour(times, cv),
            "never_fell": (np.diff(bv, axis=1) >= 0).all(axis=1),
        }
    )
    out = out[out["bytes_delta"] > 0].sort_values(["bytes_delta", "count_delta", "stack_key"], ascending=[False, False, True], kind="stable", ignore_index=True)
    return out if top is None else out.head(top).reset_index(drop=True)


def _slope_per_hour(times: "pd.Series", values: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``values`` against the dump times, per hour."""
    known = times.notna().to_numpy()
    if known.sum() < 2:
        return np.full(len(values), np.nan)
    hours = np.array([t.timestamp() for t in times[known]], dtype=np.float64) / 3600.0
    hours -= hours.mean()
    denom = float((hours**2).sum())
    if denom == 0.0:
        return np.full(len(values), np.nan)
    y = values[:, known].astype(np.float64)
    return ((y - y.mean(axis=1, keepdims=True)) @ hours) / denom
