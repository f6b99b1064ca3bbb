"""One dump's user allocations, the one block representation every analysis reads, whether the
dump was opened here (:class:`ntheap.Dump`) or read by a batch scan (:func:`ntheap.scan`).

An :class:`Allocations` is a :class:`ntheap.Table` of the ``is_allocation`` rows (heap, address,
user_address, user_size, kind, stack_id, type_id, content) plus the two tables its ids refer to:
the dump's :class:`ntheap.StackTable` (frames with module, symbol and offset) and its C++ types
(``Dump.types()``). Ids are local to a dump; the grouping keys of :mod:`ntheap.keys` are what
compare across dumps. :func:`frame` lays many of them out as one DataFrame
(``ScanResult.blocks``).
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from .frames import FrameClassifier
from .scanjob import expand_paths, run_scan
from .stacks import StackTable
from .table import Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

PathLike = Union[str, "os.PathLike[str]"]
#: The columns of an :class:`Allocations` table.
ALLOCATION_COLUMNS = ["heap", "address", "user_address", "user_size", "kind", "stack_id", "type_id", "content"]
BLOCK_KIND_NAMES: Dict[int, str] = dict(_core.BLOCK_KINDS)
CONTENT_NAMES: Dict[int, str] = dict(_core.CONTENT_CLASSES)
#: Columns of :func:`frame` (``ScanResult.blocks``).
FRAME_COLUMNS = ["dump", "time", "heap", "address", "user_address", "user_size", "kind", "kind_name", "stack_id", "stack_key",
                 "top_frame", "type_id", "type", "content"]
_TYPE_FIELDS = ("id", "name", "decorated", "module")


def _objects(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


class Allocations:
    """The busy user allocations of one dump with the stacks and types their ids refer to.

    Attributes:
        path, time, pid: which dump, when (UTC, or None) and of which process.
        process_create_time, main_module: when the process started (UTC, or None) and its
            executable's file name (or None): with ``pid``, what says two dumps are one process.
        table: :class:`ntheap.Table` with :data:`ALLOCATION_COLUMNS`.
        stacks: the dump's :class:`ntheap.StackTable` (empty without +ust).
        types: ``Dump.types()`` columns: id, name, decorated, module.
        coverage: the dump's ``Dump.coverage()`` rows (scope, heap, what, count, bytes,
            message): what the allocations do not cover.
        heaps_listed, heaps_walked: how many heaps the dump lists, and how many were read.

    Example:
        >>> a = Allocations.from_dump(ntheap.Dump("samples/leaky-x64-1.dmp"))  # doctest: +SKIP
        >>> len(a), int(a.table["user_size"].sum())  # doctest: +SKIP
    """

    def __init__(self, path: str, time: Optional[_dt.datetime], pid: Optional[int], table: Table, stacks: StackTable,
                 types: Dict[str, np.ndarray], *, coverage: Sequence[Tuple[str, int, str, int, int, str]] = (),
                 process_create_time: Optional[_dt.datetime] = None, main_module: Optional[str] = None,
                 heaps_listed: Optional[int] = None, heaps_walked: Optional[int] = None) -> None:
        self.path = path
        self.time = time
        self.pid = pid
        self.table = table
        self.stacks = stacks
        self.types = types
        self.coverage = list(coverage)
        self.process_create_time = process_create_time
        self.main_module = main_module
        self.heaps_listed = heaps_listed
        #: None when unknown (hand-made allocations): taken as "some heap was read".
        self.heaps_walked = heaps_walked

    @classmethod
    def from_dump(cls, dump: "Dump") -> "Allocations":
        """Read a dump's allocations, stacks and C++ types (runs the type and content passes)."""
        blocks = dump.blocks()
        keep = np.asarray(blocks["is_allocation"])
        table = Table("allocations", {c: np.asarray(blocks[c])[keep] for c in ALLOCATION_COLUMNS})
        t = dump.types()
        heaps = dump.heaps
        return cls(str(dump.path), dump.timestamp, dump.pid, table, dump.stacks(), {f: t[f] for f in _TYPE_FIELDS},
                   coverage=dump._coverage_rows(True), process_create_time=dump.process_create_time,
                   main_module=dump.modules[0].name if dump.modules else None, heaps_listed=len(heaps),
                   heaps_walked=sum(1 for h in heaps if h.status == "walked"))

    @classmethod
    def from_record(cls, record: Dict[str, Any]) -> "Allocations":
        """Build from one record of ``_core.ScanJob.results()`` (which must have no error)."""
        blocks = record["blocks"]  # the scan keeps the user allocations only
        ts = record.get("timestamp_unix")
        time = None if ts is None else _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)
        made = cls.from_columns(record["path"], time, record.get("pid"), dict(blocks), record.get("stack_keys") or (),
                                record.get("types"))
        if record.get("stacks") is not None:
            made.stacks = StackTable(record["stacks"])
        made.coverage = [tuple(r) for r in record.get("coverage") or ()]
        created = record.get("process_create_time_unix")
        made.process_create_time = None if created is None else _dt.datetime.fromtimestamp(created, _dt.timezone.utc)
        made.main_module = record.get("main_module")
        made.heaps_listed = record.get("heaps_listed")
        made.heaps_walked = record.get("heaps_walked")
        return made

    #: The earlier name of :meth:`from_record`.
    from_scan_record = from_record

    @classmethod
    def from_columns(cls, path: str, time: Optional[_dt.datetime], pid: Optional[int], columns: Dict[str, np.ndarray],
                     stack_keys: Sequence[str] = (), types: Optional[Dict[str, Any]] = None) -> "Allocations":
        """Build from plain columns (hand-made data, or blocks saved elsewhere): the columns of
        :data:`ALLOCATION_COLUMNS` (type_id and content may be left out: no type, no class),
        the stack keys the stack ids refer to, and the types the type ids refer to (id, name,
        decorated, module)."""
        n = len(columns["user_size"])
        cols = dict(columns)
        cols.setdefault("type_id", np.full(n, -1, dtype=np.int32))
        cols.setdefault("content", np.zeros(n, dtype=np.uint8))
        t = types or {"id": np.zeros(0, dtype=np.int32), "name": [], "decorated": [], "module": []}
        return cls(path, time, pid, Table("allocations", {c: np.asarray(cols[c]) for c in ALLOCATION_COLUMNS}),
                   StackTable.from_keys(list(stack_keys)), {k: _objects(v) if k != "id" else np.asarray(v) for k, v in t.items()})

    @property
    def columns(self) -> Dict[str, np.ndarray]:
        """The table's columns as a dict (arrays shared)."""
        return self.table.to_dict()

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"<Allocations {self.name}: {len(self)} blocks, {len(self.stacks)} stacks, {len(self.types['id'])} types>"

    @property
    def name(self) -> str:
        """The dump's file name."""
        return os.path.basename(self.path)

    @property
    def stack_keys(self) -> np.ndarray:
        """The key of each stack id (its frame texts joined with "\\n")."""
        return self.stacks.keys()

    def key_codes(self) -> "tuple[np.ndarray, np.ndarray]":
        """``(codes, keys)`` of the stack grouping (see :func:`ntheap.keys.group`)."""
        from .keys import group

        g = group(self, "stack")
        return g.codes, g.keys


#: The earlier name of :class:`Allocations`.
DumpAllocations = Allocations


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


def is_pathlike(x: object) -> bool:
    """A path (str or os.PathLike)."""
    return isinstance(x, (str, os.PathLike))


def collect(items: Sequence[Any], *, symbol_path: Optional[str] = None, progress: Optional[bool] = False,
            errors: str = "raise", workers: Optional[int] = None) -> List[Allocations]:
    """Turn dumps, paths, :class:`Allocations` and ScanResults into :class:`Allocations`, in
    the given order.

    Paths are read together by one batch scan. ``errors``: "raise" (the first failed dump raises
    its exception), "warn" (skip it with a :class:`DumpSkippedWarning`) or "ignore" (skip it).
    """
    if errors not in ("raise", "warn", "ignore"):
        raise ValueError(f"errors must be 'raise', 'warn' or 'ignore', not {errors!r}")
    slots: List[Any] = []
    paths: List[str] = []
    for item in items:
        if hasattr(item, "allocations") and hasattr(item, "failed_records"):  # a ScanResult
            slots.extend(item.allocations())
            slots.extend(item.failed_records())
        elif is_pathlike(item):
            for p in expand_paths([item]):
                slots.append(len(paths))
                paths.append(p)
        elif isinstance(item, Allocations):
            slots.append(item)
        elif hasattr(item, "blocks") and hasattr(item, "stacks"):
            slots.append(Allocations.from_dump(item))
        else:
            raise TypeError(f"expected a Dump, a path or a ScanResult, not {type(item).__name__}")
    records = run_scan(paths, workers=workers, progress=progress, symbol_path=symbol_path) if paths else []
    out: List[Allocations] = []
    for slot in slots:
        rec = records[slot] if isinstance(slot, int) else slot
        if isinstance(rec, Allocations):
            out.append(rec)
            continue
        if rec.get("error") is None:
            out.append(Allocations.from_record(rec))
            continue
        if errors == "raise":
            raise rebuild_error(rec)
        if errors == "warn":
            import warnings

            warnings.warn(DumpSkippedWarning(f"skipped {rec['path']}: {rec.get('error_kind')}: {rec['error']}"), stacklevel=3)
    return out


def one(dump: Any, symbol_path: Optional[str] = None) -> Allocations:
    """An :class:`Allocations` from a Dump, a path or an Allocations."""
    if isinstance(dump, Allocations):
        return dump
    if is_pathlike(dump):
        from ._dump import Dump

        return Allocations.from_dump(Dump(dump, symbol_path=symbol_path))
    return Allocations.from_dump(dump)


class _Categories:
    """The categories of one categorical column built dump by dump: each dump maps its distinct
    values to codes here, once per distinct value, never once per row. Categories are in the
    order the dumps bring them; None is missing (-1)."""

    def __init__(self) -> None:
        self.values: List[Any] = []
        self._index: Dict[Any, int] = {}

    def codes(self, values: Sequence[Any]) -> np.ndarray:
        """The category code of each of ``values`` (new ones are added in order)."""
        out = np.empty(len(values), dtype=np.int32)
        for j, v in enumerate(values):
            if v is None:
                out[j] = -1
                continue
            g = self._index.get(v)
            if g is None:
                g = self._index[v] = len(self.values)
                self.values.append(v)
            out[j] = g
        return out

    def categorical(self, codes: np.ndarray) -> "pd.Categorical":
        return _from_codes(codes, self.values)


def _from_codes(codes: np.ndarray, categories: Sequence[Any]) -> "pd.Categorical":
    """A categorical of ``codes`` (already known to be in range) over ``categories``."""
    import pandas as pd

    dtype = pd.CategoricalDtype(pd.Index(list(categories), dtype=object))
    try:
        return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)
    except TypeError:  # pandas < 2.1 has no ``validate``
        return pd.Categorical.from_codes(codes, dtype=dtype)


def _joined(arrs: Sequence[np.ndarray]) -> Optional[np.ndarray]:
    """The one array that ``arrs`` are consecutive slices of, in order and covering it whole
    (as a batch scan hands them out), or None."""
    if not arrs:
        return None
    base = arrs[0].base
    if not isinstance(base, np.ndarray) or base.ndim != 1 or not base.flags.c_contiguous:
        return None
    at = base.__array_interface__["data"][0]
    for a in arrs:
        if a.base is not base or a.dtype != base.dtype or a.__array_interface__["data"][0] != at:
            return None
        at += a.nbytes
    return base if at == base.__array_interface__["data"][0] + base.nbytes else None


def _stack_tables(a: Allocations, classifier: FrameClassifier, used_ids: np.ndarray, stack_key: _Categories,
                  top_frame: _Categories) -> "Tuple[np.ndarray, np.ndarray]":
    """Per stack id of ``a`` (and a last entry for no stack, id -1): its ``stack_key`` and
    ``top_frame`` codes, as :func:`ntheap.keys.group` by "stack" names them. ``used_ids`` says
    which ids (and, last, -1) rows use; only their keys become categories, in stack id order."""
    from .keys import stack_keys

    key_codes, uniq, per_key_labels, _ = stack_keys(a, classifier)
    used = np.zeros(len(uniq), dtype=bool)
    used[key_codes[np.roll(used_ids, 1)]] = True
    keys = [uniq[k] if used[k] else None for k in range(len(uniq))]
    labels = [per_key_labels[k] if used[k] else None for k in range(len(uniq))]
    # Rolled back so that entry i is stack id i, and the last one is "no stack".
    by_key = np.roll(stack_key.codes(keys)[key_codes], -1)
    by_top = np.roll(top_frame.codes(labels)[key_codes], -1)
    return np.ascontiguousarray(by_key, dtype=np.int32), np.ascontiguousarray(by_top, dtype=np.int32)


def _type_table(a: Allocations, used_slots: np.ndarray, type_name: _Categories) -> np.ndarray:
    """Per type slot of ``a`` (its type ids, then one per content class for blocks without a
    type): the ``type`` code of the label :func:`ntheap.keys.group` by "type" gives (the class
    name, or "(content class)"). Only slots rows use become categories, in slot order."""
    from .keys import type_key

    n_types = len(a.types["decorated"])
    label_of_key: Dict[str, str] = {}
    labels: List[Optional[str]] = [None] * len(used_slots)
    for slot in np.flatnonzero(used_slots):
        k = int(slot)
        key, label, _ = type_key(a, k) if k < n_types else type_key(a, -1, k - n_types)
        # The same class in two images is two type ids but one key (its decorated name).
        labels[k] = label_of_key.setdefault(key, label)
    return type_name.codes(labels)


def frame(allocs: Sequence[Allocations], classifier: Optional[FrameClassifier] = None,
          workers: Optional[int] = None) -> "pd.DataFrame":
    """One DataFrame of the allocations of several dumps (columns :data:`FRAME_COLUMNS`).

    ``dump``, ``kind_name``, ``stack_key``, ``top_frame``, ``type`` and ``content`` are
    categoricals, so a stack or a type shared by a million blocks is stored once. Categories are
    in the order the dumps bring them (within a dump: stacks by id, types by id then content
    class). The allocations of a batch scan are slices of one array per column, which are used
    as they are; other allocations are concatenated. The passes over every row run in Rust
    threads (``workers``: how many; None: one per core).
    """
    import pandas as pd

    classifier = classifier or FrameClassifier()
    paths = [a.path for a in allocs]
    dump_index = pd.Index(list(dict.fromkeys(paths)), dtype=object)
    counts = np.array([len(a) for a in allocs], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    total = int(starts[-1])
    cols: Dict[str, np.ndarray] = {}
    for c in ALLOCATION_COLUMNS:
        parts = [np.asarray(a.table[c]) for a in allocs]
        joined = parts[0] if len(parts) == 1 else _joined(parts)
        if joined is None:
            joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
        cols[c] = joined
    stack_key, top_frame, type_name = _Categories(), _Categories(), _Categories()
    sid = np.ascontiguousarray(cols["stack_id"], dtype=np.int32)
    tid = np.ascontiguousarray(cols["type_id"], dtype=np.int32)
    content_all = np.ascontiguousarray(cols["content"], dtype=np.uint8)
    bounds = [int(x) for x in starts]
    try:
        marks = _core.frame_marks(sid, tid, content_all, bounds, [len(a.stacks) for a in allocs],
                                  [len(a.types["decorated"]) for a in allocs], workers)
    except ValueError as e:
        where, _, what = str(e).partition(": ")
        if where.startswith("dump ") and where[5:].isdigit():
            raise ValueError(f"{allocs[int(where[5:])].path}: {what}") from None
        raise
    stack_luts, top_luts, type_luts = [], [], []
    for a, (used_ids, used_slots) in zip(allocs, marks):
        by_key, by_top = _stack_tables(a, classifier, used_ids, stack_key, top_frame)
        stack_luts.append(by_key)
        top_luts.append(by_top)
        type_luts.append(_type_table(a, used_slots, type_name))
    key_codes, top_codes, type_codes = _core.frame_codes(
        sid, tid, content_all, bounds, stack_luts, top_luts, type_luts,
        (len(stack_key.values), len(top_frame.values), len(type_name.values)), workers)
    stamps = np.array([np.datetime64(int(a.time.timestamp()), "s") if a.time is not None else np.datetime64("NaT")
                       for a in allocs], dtype="datetime64[ns]")
    dump_codes = dump_index.get_indexer(paths).astype(np.int8 if len(dump_index) <= 127 else np.int32)

    def typed(c: str, dtype: Any) -> np.ndarray:
        return cols[c].astype(dtype, copy=False) if total else np.zeros(0, dtype=dtype)

    kinds = typed("kind", np.uint8)
    content = typed("content", np.uint8)
    kind_cats = [BLOCK_KIND_NAMES[c] for c in sorted(BLOCK_KIND_NAMES)]
    content_cats = [CONTENT_NAMES[c] for c in sorted(CONTENT_NAMES)]

    def small(codes: np.ndarray, n: int) -> "pd.Categorical":
        # uint8 codes seen as int8 without a copy, when every code is a category.
        if len(codes) and int(codes.max()) >= n:
            raise ValueError(f"code {int(codes.max())} has no name (known: {n})")
        return codes.view(np.int8) if n <= 127 else codes.astype(np.int16)

    return pd.DataFrame(
        {
            "dump": _from_codes(np.repeat(dump_codes, counts), dump_index),
            # Nanoseconds since the epoch read as UTC: no localization pass over the rows.
            "time": pd.Series(np.repeat(stamps, counts).view(np.int64), copy=False).astype(pd.DatetimeTZDtype("ns", "UTC")),
            "heap": typed("heap", np.uint64),
            "address": typed("address", np.uint64),
            "user_address": typed("user_address", np.uint64),
            "user_size": typed("user_size", np.uint64),
            "kind": kinds,
            "kind_name": _from_codes(small(kinds, len(kind_cats)), kind_cats),
            "stack_id": typed("stack_id", np.int32),
            "stack_key": stack_key.categorical(key_codes),
            "top_frame": top_frame.categorical(top_codes),
            "type_id": typed("type_id", np.int32),
            "type": type_name.categorical(type_codes),
            "content": _from_codes(small(content, len(content_cats)), content_cats),
        },
        columns=FRAME_COLUMNS,
        copy=False,
    )
