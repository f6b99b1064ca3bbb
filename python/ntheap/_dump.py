"""``ntheap.Dump``: the object a user opens."""

from __future__ import annotations

import datetime as _dt
from functools import partial
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, cast

import numpy as np

from . import _core
from .stacks import StackTable
from ._schema import BLOCK_COLUMNS, LAZY_COLUMNS
from .table import Table, categorical
from .winconst import MEM_STATE, MEM_TYPE, decode, decode_protect

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

_UTC = _dt.timezone.utc
BLOCK_KIND_NAMES: Dict[int, str] = dict(_core.BLOCK_KINDS)
CORRUPTION_NAMES: Dict[int, str] = dict(_core.CORRUPTION_KINDS)
NOT_DECODED_NAMES: Dict[int, str] = dict(_core.NOT_DECODED)
CONTENT_NAMES: Dict[int, str] = dict(_core.CONTENT_CLASSES)
REACHED_BY_NAMES: Dict[int, str] = dict(_core.REACHED_BY)


def _utc(seconds: Optional[int]) -> Optional[_dt.datetime]:
    return None if seconds is None else _dt.datetime.fromtimestamp(seconds, _UTC)


class Dump(_core.Dump):
    """A Windows process dump (minidump), opened without reading it into memory.

    The file is memory-mapped; opening costs time proportional to its stream directory and
    memory-range count, not to its size.

    ``Dump(path, symbol_path=None, image_path=None, workers=None, limits=None)``: ``symbol_path`` is a debugger symbol path
    (``srv*C:\\symbols*https://...;D:\\pdbs``) searched for the modules' PDBs; by default the
    ``_NT_SYMBOL_PATH`` environment variable. Only local directories are read, never a server.
    Without a matching PDB, frames are named from the modules' exports, else as module+offset.
    ``image_path`` lists local directories (``;``-separated) of the process's binaries, read
    where the dump lacks an image page that C++ type names need (like WinDbg's ``.exepath``).
    ``workers`` caps the threads this dump's walk and passes use (default: all cores; the
    segments of a big heap are walked in parallel). ``limits`` (:class:`ntheap.Limits`) caps the
    work: rows per walk, nodes per list, frames per stack, PDB size; a cap that is hit shows in
    ``coverage()``. Ctrl-C interrupts a walk or pass in progress (``KeyboardInterrupt``); nothing
    half-computed is kept.

    Nothing is walked at open. ``heaps``, ``heap_summary()`` and the ``heap -s``/``heap -h``
    views read headers, counters and short lists (a cost independent of the number of blocks);
    ``blocks()`` and everything that needs blocks walk the dump once, on first use, and keep
    the result (``is_walked``).

    Example:
        >>> import ntheap
        >>> dump = ntheap.Dump("samples/leaky-x64-1.dmp")  # doctest: +SKIP
        >>> dump.arch, dump.os_version, dump.peb.global_flags  # doctest: +SKIP
        ('x64', '10.0.19045', ['ust'])
        >>> dump.read_u32(dump.peb.process_heap + 0x10) == 0xFFEEFFEE  # doctest: +SKIP
        True

    Reads of memory the dump did not capture raise :class:`ntheap.MemoryNotCaptured`.
    """

    @property
    def timestamp(self) -> _dt.datetime:
        """When the dump was written (timezone-aware, UTC)."""
        value = _utc(self.timestamp_unix)
        assert value is not None
        return value

    @property
    def process_create_time(self) -> Optional[_dt.datetime]:
        """When the process started (UTC), if the dump's MiscInfo stream records it."""
        return _utc(self.process_create_time_unix)

    @property
    def process_uptime(self) -> Optional[_dt.timedelta]:
        """How long the process had run when the dump was written, if known."""
        start = self.process_create_time
        return None if start is None else self.timestamp - start

    def regions(self) -> Table:
        """Every MemoryInfoList entry (``!address`` regions) as numpy columns.

        Columns: base, size, state, type, protect, allocation_base, allocation_protect and
        captured (how many of the region's bytes the dump holds). ``to_pandas()`` adds
        state_name, type_name, protect_name and allocation_protect_name.

        Raises :class:`ntheap.MissingStreamError` when the dump has no MemoryInfoList.
        """
        cols = self._region_columns()
        order = ["base", "size", "state", "type", "protect", "allocation_base", "allocation_protect", "captured"]
        return Table(
            "regions",
            {k: cols[k] for k in order},
            decoders={
                "state": decode(MEM_STATE),
                "type": decode(MEM_TYPE),
                "protect": decode_protect,
                "allocation_protect": decode_protect,
            },
        )

    def regions_df(self) -> "pd.DataFrame":
        """``regions().to_pandas()``."""
        return self.regions().to_pandas()

    def modules_df(self) -> "pd.DataFrame":
        """Loaded modules as a DataFrame (one row per module)."""
        import pandas as pd

        fields = ["name", "base", "end", "size", "version", "timestamp", "checksum", "pdb_name", "pdb_guid", "pdb_age", "path"]
        frame = pd.DataFrame([{f: getattr(m, f) for f in fields} for m in self.modules], columns=fields)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s", utc=True)
        return frame

    def threads_df(self) -> "pd.DataFrame":
        """Threads as a DataFrame (one row per thread)."""
        import pandas as pd

        fields = ["id", "teb", "stack_start", "stack_end", "stack_size", "suspend_count"]
        return pd.DataFrame([{f: getattr(t, f) for f in fields} for t in self.threads], columns=fields)

    def heap(self, address: int) -> _core.Heap:
        """The heap whose handle is ``address``.

        Raises :class:`ntheap.NoSuchHeapError` (a :class:`ntheap.DumpError`) naming the heaps the
        dump lists when none has that address."""
        heaps = self.heaps
        for h in heaps:
            if h.address == address:
                return h
        if heaps:
            listed = ", ".join(f"{h.address:#x}" for h in heaps)
            where = f"the dump lists {len(heaps)} heap{'s' if len(heaps) != 1 else ''}: {listed}"
        else:
            where = "the dump lists no heap"
        err = _core.NoSuchHeapError(f"no heap at {address:#x}: {where}")
        err.address = address  # type: ignore[attr-defined]
        raise err

    def blocks(self) -> Table:
        """Every block of every heap front end, as numpy columns built in Rust (no per-block
        objects): NT back end, virtual blocks, LFH, page heap, segment heap.

        Rows nest: an LFH UserBlocks container is followed by its blocks (``parent``, ``level``).
        ``is_allocation`` marks the rows that are something the program asked for; every
        analysis counts exactly those. The leak-triage columns (``type_id``, ``content``,
        ``reachable``, ``reached_by``, ``direct_roots``, ``depth``) are computed on first access,
        once per dump (``table.computed`` lists what is in memory). The columns and kinds are listed in
        ``ntheap.BLOCK_COLUMNS`` and in docs/block-model.md; ``to_pandas()`` adds kind_name,
        corruption_name and not_decoded_name.

        Example:
            >>> df = dump.blocks().to_pandas()  # doctest: +SKIP
            >>> df[df.is_allocation].groupby("kind_name").user_size.sum()  # doctest: +SKIP
        """
        return block_table(self._block_source())

    def types(self) -> Table:
        """The C++ types that name this dump's allocations (MSVC RTTI, leak-triage.md §1).

        One row per type: id (what ``blocks()["type_id"]`` holds), name (undecorated, e.g.
        ``contoso::net::Session``; empty when the demangler rejects it), decorated
        (``.?AVSession@net@contoso@@``), module, vftable (the complete object's vftable that
        named it), type_descriptor, is_struct and arch. A block is named only when its first
        word is a vftable whose whole RTTI chain checks out (§1.4); corrupt RTTI names nothing.
        The pass runs once per dump, on first use.

        Example:
            >>> df = dump.blocks().to_pandas(["user_size", "is_allocation", "type_id"])  # doctest: +SKIP
            >>> df[df.type_id >= 0].groupby("type_id").user_size.sum()  # doctest: +SKIP
            >>> dump.types().to_pandas()  # doctest: +SKIP
        """
        cols = self._type_columns()
        return Table(
            "types",
            {
                "id": cols["id"],
                "name": _objects(cols["name"]),
                "decorated": _objects(cols["decorated"]),
                "module": _objects(cols["module"]),
                "vftable": cols["vftable"],
                "type_descriptor": cols["type_descriptor"],
                "is_struct": cols["is_struct"],
                "arch": _objects(cols["arch"]),
            },
        )

    def unreferenced(self, preview: int = 32) -> Table:
        """The allocations nothing points to (leak-triage.md §2, like WinDbg's ``!heap -l``).

        Runs the mark phase once per dump: every captured byte outside the heaps (stacks, globals,
        TEBs, other memory) and every thread register is a root; references are followed through
        reachable allocations. One row per unreferenced allocation, in block order: row (its row in
        ``blocks()``), heap, address, user_address, user_size, kind, type_id, type (the C++ type,
        or None), decorated, content (``content_name``), stack_id (-1 without +ust) and preview
        (the first ``preview`` bytes as text or hex; computed on first access).

        A block reported here is a strong leak candidate; a reachable block may still leak (a
        word that merely looks like a pointer keeps it alive). ``triage_stats()["warnings"]``
        says what made the root set incomplete.

        Example:
            >>> leaks = dump.unreferenced().to_pandas()  # doctest: +SKIP
            >>> leaks.groupby("type", dropna=False).user_size.agg(["count", "sum"])  # doctest: +SKIP
        """
        blocks = self.blocks()
        rows = np.nonzero(blocks["is_allocation"] & ~blocks["reachable"])[0]
        type_id = blocks["type_id"][rows]
        names, decorated = _type_names(self._type_columns())
        user = blocks["user_address"][rows]
        size = blocks["user_size"][rows]

        def previews() -> np.ndarray:
            return _objects(self._previews(user.tolist(), size.tolist(), preview)) if preview else _objects([""] * len(rows))

        return Table(
            "unreferenced",
            {
                "row": rows.astype(np.int64),
                "heap": blocks["heap"][rows],
                "address": blocks["address"][rows],
                "user_address": user,
                "user_size": size,
                "kind": blocks["kind"][rows],
                "type_id": type_id,
                "type": names[type_id + 1],
                "decorated": decorated[type_id + 1],
                "content": blocks["content"][rows],
                "stack_id": blocks["stack_id"][rows],
            },
            lazy={"preview": previews},
            decoders={"kind": decode(BLOCK_KIND_NAMES), "content": decode(CONTENT_NAMES)},
        )

    def stacks(self) -> StackTable:
        """The +ust allocation stacks: one entry per distinct frame sequence, symbolized.

        Blocks refer to them by ``blocks()["stack_id"]``. Without +ust the table is empty and
        every stack_id is -1. Trace entries that are missing from the dump or malformed are in
        ``stacks().problems()``.

        Example:
            >>> df = dump.blocks().to_pandas()  # doctest: +SKIP
            >>> top = df[df.stack_id >= 0].groupby("stack_id").user_size.sum().nlargest(5)  # doctest: +SKIP
            >>> [dump.stacks().text(i)[:3] for i in top.index]  # doctest: +SKIP
        """
        return StackTable(self._stack_columns())

    def corruption(self, walk: bool = True) -> Table:
        """Everything the heap walk found wrong: heap, address, kind (code), kind_name, detail.

        ``walk=False``: without walking the blocks, only what reading the headers and lists
        found (all records once the dump has been walked)."""
        cols = self._corruption_columns(walk)
        kinds = cols["kind"]
        cols["kind_name"] = np.array([CORRUPTION_NAMES.get(int(k), str(k)) for k in kinds], dtype=object)
        cols["detail"] = np.array(cols["detail"], dtype=object)
        return Table("corruption", cols)

    def coverage(self, walk: bool = True) -> Table:
        """What the heap views do not cover, and why: one row per gap, the machine-readable form of
        every "warning:" the views and the command line print.

        Columns: scope ("dump" or "heap"), heap (0 for the dump), what (a stable tag, e.g.
        ``not_captured:heap_header``, ``no_nt_heap``, ``not_walked:unknown_signature``,
        ``not_decoded:no_key``, ``unparsed:bad_checksum``, ``truncated:max_rows``,
        ``container:memory_range``; all are listed in docs/coverage.md), count (structures
        affected), bytes (bytes affected, 0 when unknown) and message (what to tell the user,
        with what they can do). Empty when the answer is complete.

        ``walk=False``: without walking the blocks, what headers, lists and the memory map tell
        (heap memory not captured, no Windows heap, heaps not walked, caps hit); everything once
        the dump has been walked. ``walk=True`` (the default) walks first and adds what the
        blocks tell (containers not decoded, stretches that could not be parsed). A dump whose
        heap list cannot be read at all gives one ``not_read:heap_list`` row saying why.

        Example:
            >>> for m in dump.coverage(walk=False)["message"]: print(m)  # doctest: +SKIP
            0 of 3 heaps' headers are in the dump (...): take a full-memory dump (e.g. `procdump -ma`, ...)
        """
        from .coverage import coverage_table

        return coverage_table(self._coverage_rows(walk))

    def heap_summary(self, walk: bool = False) -> "pd.DataFrame":
        """One row per heap with the columns of WinDbg's ``!heap -s`` (sizes in bytes, not KB).

        Read from headers, counters and short lists, at a cost that does not grow with the
        number of blocks. ``list_length`` and ``corruption_count`` need the block walk: None
        until the dump has been walked (``blocks()``, or ``walk=True``).

        Example:
            >>> dump.heap_summary()[["heap", "committed", "virtual_block_bytes"]]  # doctest: +SKIP
        """
        from .heapviews import heap_summary

        return heap_summary(self, walk)

    def address_summary(self) -> "pd.DataFrame":
        """WinDbg's ``!address -summary``: usage, state and type rows with region count, size,
        % of busy and % of total."""
        from .address import address_summary

        return address_summary(self)

    def _repr_html_(self) -> str:
        from .report import info_html

        return info_html(self)


def lfh_subsegment_table(columns: Mapping[str, Any]) -> Table:
    """An LFH's subsegments as a Table whose DataFrame names the not_decoded reasons."""
    return Table("lfh_subsegments", dict(columns), decoders={"not_decoded": decode(NOT_DECODED_NAMES)})


def block_table(source: "_core.BlockSource", start: int = 0, stop: Optional[int] = None) -> Table:
    """The block columns of a dump as a Table (rows ``start:stop``): the stored columns are the
    dump's own read-only arrays (no copy), ``heap``, ``segment``, ``stack_trace_entry`` and
    ``stack_id`` are computed on first use, so are the leak-triage columns (by their passes,
    once per dump), and the DataFrame names kinds, corruption, not-decoded reasons, content
    classes and how blocks were reached as categoricals, names C++ types beside ``type_id``, and
    shows ``heap``/``segment`` as categoricals of addresses."""
    import_pd = _lazy_pandas
    columns = source.columns()
    cache: Dict[str, np.ndarray] = {}

    def codes(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = source.heap_codes() if name == "heap" else source.segment_codes()
        return cache[name]

    def addresses(name: str) -> np.ndarray:
        values = source.heaps() if name == "heap" else source.segments()
        return np.asarray(values, dtype=np.uint64)

    def as_categorical(name: str) -> Any:
        pd = import_pd()
        cats = addresses(name)
        uniq, inverse = np.unique(cats, return_inverse=True)
        return pd.Categorical.from_codes(inverse.astype(np.int32)[codes(name)], categories=uniq)

    table = Table(
        "blocks",
        cast(Dict[str, np.ndarray], columns),
        decoders={
            "kind": categorical(BLOCK_KIND_NAMES),
            "corruption": categorical(CORRUPTION_NAMES),
            "not_decoded": categorical(NOT_DECODED_NAMES),
            "content": categorical(CONTENT_NAMES),
            "reached_by": categorical(REACHED_BY_NAMES),
            "type_id": ("type", lambda ids: _type_names(source.type_columns())[0][ids.astype(np.int64) + 1]),
        },
        lazy={
            "heap": lambda: addresses("heap")[codes("heap")],
            "segment": lambda: addresses("segment")[codes("segment")],
            "stack_trace_entry": source.stack_trace_entry,
            "stack_id": source.stack_id,
            **{name: partial(source.triage_column, name) for name in LAZY_COLUMNS},
        },
        order=BLOCK_COLUMNS,
        pandas={"heap": lambda: as_categorical("heap"), "segment": lambda: as_categorical("segment")},
    )
    return table if start == 0 and stop is None else table.slice(start, len(table) if stop is None else stop)


def _lazy_pandas() -> Any:
    import pandas as pd

    return pd


def _objects(values: Any) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def _type_names(cols: Mapping[str, Any]) -> "tuple[np.ndarray, np.ndarray]":
    """(display names, decorated names) indexed by type id + 1: index 0 (type id -1) is None; a
    type the demangler rejected shows its decorated name."""
    names = [None] + [n or d for n, d in zip(cols["name"], cols["decorated"])]
    decorated = [None] + list(cols["decorated"])
    return _objects(names), _objects(decorated)
