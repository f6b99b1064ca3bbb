"""NtHeap: writes Windows NT (back-end) heaps into a DumpBuilder.

    db = StackTraceDatabase(b, 0x00600000, arch="x86")          # only for +ust
    h = NtHeap(b, 0x00250000, arch="x86", epoch="win7", seed=7, ust=True, stack_db=db,
               reserve=0x20000, committed=[(0, 0x6000), (0x8000, 0x2000)])
    s0 = h.segments[0]
    s0.busy(0x20, stack=[0x77D81234, 0x00401A2B]); s0.free(0x40); s0.busy(0)
    s1 = h.add_segment(0x03A00000, reserve=0x10000, committed=[(0, 0x3000)])
    h.add_virtual(0x04000000, 0x80001, reserve=0x100000, capture="head")
    h.finish(); db.finish()
    h.expected()   # plain data: segments, every entry, virtual blocks, totals, walk

Offsets come from heap_layouts.py (one table per layout epoch, each offset
citing windows-heap-layouts.md).  Conventions chosen where the reference leaves
room (each is also stated in CONVENTIONS, which goes into the expected JSON):

* Blocks are placed one after another from FirstEntry.  Every committed run of
  a segment ends with a free block (the builder adds or extends one), flagged
  HEAP_ENTRY_LAST_ENTRY; when an uncommitted range follows it, its UnusedBytes
  is 3 as well (doc 6.4 / 12.3.5 / 14).  The first block after an uncommitted
  range has PreviousSize 0.
* Every segment starts with a busy entry covering its header structure
  (_HEAP for the first segment, _HEAP_SEGMENT otherwise): Flags BUSY,
  UnusedBytes 1 (doc 6.4 "1 = segment header", UNCONFIRMED beyond [SYR]).
* The _HEAP_UCR_DESCRIPTORs of the whole heap live in one busy block placed
  right after the heap header in the first segment (kind "internal"): its user
  data is an array of ucr_capacity descriptors, used ones first.
* Busy block size (doc 6.4 / 14): Size = ceil((requested + overhead - borrow) /
  granularity) granules, at least 2 (room for a _HEAP_FREE_ENTRY); overhead is
  the header (8 / 0x10) or with +ust the header plus the trace area (0x18 /
  0x30, doc 11.3); borrow is 8 on x64 (a block may use the next header's
  PreviousBlockPrivateData) and 0 on x86.  UnusedBytes = Size*gran - requested;
  with +ust the u16 "extra" holds the same number.  Overflow (0x3F) never occurs.
* Virtual blocks: CommitSize = requested + header (0x20/0x40, +ust 0x30/0x60)
  rounded up to a page; BusyBlock.Size = CommitSize - requested ([HST]/[DHU]);
  BusyBlock.Flags = BUSY|VIRTUAL_ALLOC (UNCONFIRMED), UnusedBytes 4 ([SYR],
  UNCONFIRMED), PreviousSize 0.
* All free blocks of a heap are on one circular _HEAP.FreeLists list in
  address order (Windows sorts by size; readers must not rely on order).
* Every segment, the heap's first one included, is on _HEAP.SegmentList.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from . import structs as fmt
from .builder import PAGE, DumpBuilder, pattern
from .heap_layouts import (
    ARCH_LAYOUTS,
    ENCODE_FLAG_MASK,
    EPOCHS,
    FRONT_END_NONE,
    HEAP_ARCHES,
    HEAP_ENTRY_BUSY,
    HEAP_ENTRY_LAST_ENTRY,
    HEAP_ENTRY_VIRTUAL_ALLOC,
    HEAP_SIGNATURE,
    PROCESS_HEAP_FLAGS,
    SEGMENT_HEAP_SIGNATURE,
    SEGMENT_SIGNATURE,
    UNUSED_LAST_BEFORE_UCR,
    UNUSED_SEGMENT_HEADER,
    UNUSED_VIRTUAL_BLOCK,
    HeapLayout,
    heap_layout,
)

SEGMENT_ALIGN = 0x10000        # VirtualAlloc reservation granularity; [HST] relies on it (doc 12.3.1)
MAX_SIZE_FIELD = 0xFFFF        # _HEAP_ENTRY.Size is a u16 (doc 6.1)
BAD_CHECKSUM_XOR = 0x5A        # what corrupt_checksum() XORs into SmallTagIndex
MAX_FRAMES = 31                # [DHU] requires 0 < depth < 32 (doc 11.3)

# x86 / x64 default tuning values written into _HEAP (not read by any walker in
# the doc; plausible numbers, documented here so nobody mistakes them for facts).
_DEFAULTS = {
    "x86": dict(virtual_memory_threshold=0xFE00,    # granules: 0x7F000 bytes
                segment_reserve=0x100000, segment_commit=0x2000,
                decommit_free_block_threshold=0x800, decommit_total_free_threshold=0x2000,
                maximum_allocation_size=0x7FFDEFFF, align_round=0xF, align_mask=0xFFFFFFF8),
    "x64": dict(virtual_memory_threshold=0xFF00,    # granules: 0xFF000 bytes
                segment_reserve=0x100000, segment_commit=0x2000,
                decommit_free_block_threshold=0x400, decommit_total_free_threshold=0x1000,
                maximum_allocation_size=0x7FFFFFFDEFFF, align_round=0x1F,
                align_mask=0xFFFFFFFFFFFFFFF0),
}

CONVENTIONS = {
    "block_address": "address of the _HEAP_ENTRY (x64: including the 8 PreviousBlockPrivateData "
                     "bytes); size = Size field * granularity, header included",
    "segment_header": "each segment starts with a busy entry covering _HEAP (first segment) or "
                      "_HEAP_SEGMENT; Flags BUSY, UnusedBytes 1; kind segment_header, "
                      "user_address/user_size reported as 0",
    "internal": "the heap's _HEAP_UCR_DESCRIPTORs sit in the user data of one busy block right "
                "after the heap header (kind internal; recognisable because the UCR descriptors "
                "reachable from the segments' UCRSegmentList lie inside it)",
    "busy_size": "Size = max(2, ceil((requested + overhead - borrow) / gran)); overhead 8/0x10, "
                 "+ust 0x18/0x30; borrow 0 x86, 8 x64; UnusedBytes = Size*gran - requested",
    "ust_block": "+ust busy block: trace pointer at header+0x08/+0x10, u16 extra (= UnusedBytes) "
                 "at +0x14/+0x2c, user data at +0x18/+0x30, user_size = Size*gran - extra; "
                 "pointer 0 when the block has no stack",
    "run_end": "the last entry of every committed run is free and has Flags LAST_ENTRY (0x10); "
               "if an uncommitted range follows, UnusedBytes is 3",
    "after_ucr": "the first entry after an uncommitted range has PreviousSize 0",
    "virtual_block": "CommitSize = round_up(requested + 0x20/0x40 (+ust 0x30/0x60), 0x1000); "
                     "BusyBlock.Size = CommitSize - requested; Flags BUSY|VIRTUAL_ALLOC "
                     "(UNCONFIRMED); UnusedBytes 4; user_size = CommitSize - BusyBlock.Size "
                     "([HST]/[DHU]); user_size_mpf_convention additionally subtracts 0x20/0x40",
    "free_lists": "one circular list through _HEAP.FreeLists and every free entry "
                  "(+0x08/+0x10), address order",
    "segment_list": "every segment, the heap's own first one included, is on _HEAP.SegmentList "
                    "via SegmentListEntry",
    "ucr_lists": "each descriptor is on its segment's UCRSegmentList (SegmentEntry) and on "
                 "_HEAP.UCRList (ListEntry)",
    "counters": "TotalMemoryReserved/Committed count segments only; TotalSizeInVirtualBlocks = "
                "sum of CommitSize; TotalFreeSize in granules (UNCONFIRMED units)",
    "encoding": "EncodeFlagMask 0x100000; x86 XOR all 8 header bytes with _HEAP.Encoding; x64 XOR "
                "bytes 8..15 with Encoding bytes 8..15 (Encoding bytes 0..7 are zero); "
                "SmallTagIndex = b0^b1^b2 of the decoded group",
    "rows": "every block record carries the docs/block-model.md columns parent (the address of "
            "the containing row, 0 at top level), level (0 top level, 1 inside a container), "
            "is_allocation (busy backend, every virtual, busy lfh_block; never segment_header, "
            "internal, lfh_heap, lfh_zone, lfh_container, overhead) and not_decoded (null, or "
            "the reason name on a container whose inside is not decoded); blocks[] is sorted "
            "by (address, level), which puts each container right before its children; "
            "totals.busy_user_bytes_all = sum of user_size over is_allocation rows",
    "walk": "what a walker following windows-heap-layouts.md 12.3/12.5 reports: it stops a "
            "segment at the first entry that fails its checksum or is not captured, and stops a "
            "list at a repeated node or an unreadable link",
}


# Row kinds whose busy rows are allocations the program asked for (docs/block-model.md
# "Kinds": backend when busy, virtual always, lfh_block when busy; every other kind --
# segment_header, internal, lfh_heap, lfh_zone, lfh_container, overhead -- never).
ALLOCATION_KINDS = ("backend", "virtual", "lfh_block")


def is_allocation(kind: str, busy: bool) -> bool:
    return busy and kind in ALLOCATION_KINDS


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _ptr_fmt(ptr: int) -> str:
    return "<I" if ptr == 4 else "<Q"


# ---------------------------------------------------------------------------
class _Canvas:
    """The bytes one heap writes, as a few address-keyed buffers."""

    def __init__(self, ptr: int):
        self.ptr = ptr
        self.pfmt = _ptr_fmt(ptr)
        self.bufs: list[tuple[int, int, bytearray]] = []

    def add(self, start: int, size: int) -> bytearray:
        for s, e, _b in self.bufs:
            if start < e and s < start + size:
                raise ValueError(f"heap memory overlaps itself at {start:#x}")
        buf = bytearray(size)
        self.bufs.append((start, start + size, buf))
        return buf

    def locate(self, address: int, n: int) -> tuple[bytearray, int]:
        for s, e, b in self.bufs:
            if s <= address and address + n <= e:
                return b, address - s
        raise AssertionError(f"heap write outside its own memory: {address:#x}+{n:#x}")

    def write(self, address: int, data: bytes) -> None:
        b, o = self.locate(address, len(data))
        b[o:o + len(data)] = data

    def pack(self, address: int, form: str, *values: int) -> None:
        b, o = self.locate(address, struct.calcsize(form))
        struct.pack_into(form, b, o, *values)

    def pointer(self, address: int, value: int) -> None:
        self.pack(address, self.pfmt, value)

    def read(self, address: int, n: int) -> bytes:
        b, o = self.locate(address, n)
        return bytes(b[o:o + n])


def entry_group(size: int, flags: int, previous_size: int, segment_offset: int,
                unused: int, bad_checksum: bool = False) -> bytes:
    """The decoded 8-byte Size..UnusedBytes group of a _HEAP_ENTRY (doc 6.1)
    with SmallTagIndex = Size_lo ^ Size_hi ^ Flags (doc 6.3, 14)."""
    if not 0 <= size <= MAX_SIZE_FIELD:
        raise ValueError(f"Size {size:#x} does not fit the u16 field")
    tag = (size & 0xFF) ^ (size >> 8) ^ flags
    if bad_checksum:
        tag ^= BAD_CHECKSUM_XOR
    return struct.pack("<HBBHBB", size, flags, tag, previous_size, segment_offset, unused)


def busy_block_size(arch: str, request: int, ust: bool = False) -> tuple[int, int]:
    """(Size in granules, UnusedBytes) of a busy back-end block of ``request`` bytes.

    doc 6.4 / 14: Size = ceil((N + header) / gran), where x64 may use the next
    header's 8 PreviousBlockPrivateData bytes; with +ust the header is followed
    by the trace area, user data at +0x18 / +0x30 (doc 11.3).  At least 2
    granules, so the block can become a _HEAP_FREE_ENTRY (0x10 / 0x20 bytes)."""
    e = ARCH_LAYOUTS[arch].entry
    g = e.granularity
    overhead = e.ust_user if ust else e.header_size
    borrow = 8 if arch == "x64" else 0
    size = max(2, -(-(request + overhead - borrow) // g))
    if size > MAX_SIZE_FIELD:
        raise ValueError(f"{request:#x} bytes is too large for a segment block")
    unused = size * g - request
    assert unused < 0x3F  # never the 0x3F overflow form (doc 6.4)
    return size, unused


def _xor8(group: bytes, key: bytes) -> bytes:
    return (int.from_bytes(group, "little") ^ int.from_bytes(key, "little")).to_bytes(8, "little")


# ---------------------------------------------------------------------------
@dataclass
class TraceEntry:
    address: int
    frames: tuple[int, ...]
    refs: int
    captured: bool = True
    index: int | None = None   # u16 written to Index; None: the frame count (doc 14)


class StackTraceDatabase:
    """A region of _RTL_STACK_TRACE_ENTRYs (doc 11.1) that +ust blocks point at.

    Entries are variable length (header + Depth frames, 16-byte aligned), the
    way the trace database allocates them; identical stacks share one entry
    unless add(new_entry=True) asks for a separate one (two entries, same
    frames).  Index and Depth both hold the frame count (doc 11.1 quirk / doc
    14), unless add(index=...) gives Index another value (page-heap traces, whose
    readers count with Depth); TraceCount (low 11 bits of the u16 bitfield) is the number of blocks
    that point at the entry; HashChain is 0.  No _STACK_TRACE_DATABASE header is
    written (doc 11.2: not needed, no signature).

    add(captured=False) places an entry in a second area ``lost_offset`` bytes
    above ``address``: committed (a MEM_COMMIT region) but left out of the dump,
    for blocks whose trace cannot be read."""

    def __init__(self, builder: DumpBuilder, address: int, arch: str, *,
                 memory_list: str = "mem64", lost_offset: int = 0x100000):
        if arch not in HEAP_ARCHES:
            raise ValueError(f"arch must be one of {HEAP_ARCHES}")
        if address % PAGE or lost_offset % PAGE:
            raise ValueError("stack trace area must be page aligned")
        self.b = builder
        self.address = address
        self.arch = arch
        self.ptr = 4 if arch == "x86" else 8
        self.lay = ARCH_LAYOUTS[arch].stack
        self.memory_list = memory_list
        self.lost_offset = lost_offset
        self._entries: list[TraceEntry] = []
        self._by_frames: dict[tuple[int, ...], TraceEntry] = {}
        self._by_address: dict[int, TraceEntry] = {}
        self._next = address
        self._next_lost = address + lost_offset
        self.finished = False

    def _entry_size(self, depth: int) -> int:
        return _align(self.lay.back_trace + depth * self.ptr, 16)

    def add(self, frames: Sequence[int], *, new_entry: bool = False, captured: bool = True,
            refs: int = 1, index: int | None = None) -> int:
        """Address of the entry for ``frames`` (return addresses, innermost first).
        ``refs`` blocks are counted as pointing at it (0 reserves the entry).
        ``index``: the u16 to write into Index instead of the frame count (page-heap
        traces, doc 11.1: their readers take the count from Depth); entries are only
        shared between calls giving the same frames and the same index."""
        if self.finished:
            raise RuntimeError("stack trace database already written")
        key = tuple(int(f) for f in frames)
        if not 1 <= len(key) <= MAX_FRAMES:
            raise ValueError(f"a stack needs 1..{MAX_FRAMES} frames, got {len(key)}")
        limit = 1 << (8 * self.ptr)
        if any(not 0 <= f < limit for f in key):
            raise ValueError("frame address does not fit the pointer size")
        if index is not None and not 0 <= index <= 0xFFFF:
            raise ValueError("Index is a u16")
        shared = not new_entry and captured
        share_key = key if index is None else (key, index)
        hit = self._by_frames.get(share_key) if shared else None
        if hit is not None:
            hit.refs += refs
            return hit.address
        if captured:
            at = self._next
            self._next = at + self._entry_size(len(key))
        else:
            at = self._next_lost
            self._next_lost = at + self._entry_size(len(key))
        e = TraceEntry(at, key, refs, captured, index)
        self._entries.append(e)
        self._by_address[at] = e
        if shared:
            self._by_frames[share_key] = e
        return at

    def entry(self, address: int) -> TraceEntry:
        try:
            return self._by_address[address]
        except KeyError:
            raise ValueError(f"no trace entry at {address:#x}") from None

    def ref(self, address: int, n: int = 1) -> None:
        """Count ``n`` more blocks pointing at the entry at ``address``."""
        self.entry(address).refs += n

    def is_captured(self, address: int) -> bool:
        e = self._by_address.get(address)
        return e is None or e.captured

    @property
    def size(self) -> int:
        # Room for a full-size entry after the last one, so a reader that reads
        # sizeof(_RTL_STACK_TRACE_ENTRY) from any entry stays inside the region.
        return _align(self._next - self.address + self.lay.size, PAGE)

    @property
    def lost_size(self) -> int:
        used = self._next_lost - self.address - self.lost_offset
        return _align(used + self.lay.size, PAGE) if used else 0

    def _pack(self, buf: bytearray, off: int, e: TraceEntry) -> None:
        L = self.lay
        pf = _ptr_fmt(self.ptr)
        depth = len(e.frames)
        struct.pack_into(pf, buf, off + L.hash_chain, 0)
        struct.pack_into("<H", buf, off + L.trace_count, min(e.refs, 0x7FF))  # BlockDepth 0
        struct.pack_into("<H", buf, off + L.index_high, 0)
        struct.pack_into("<H", buf, off + L.index, depth if e.index is None else e.index)
        struct.pack_into("<H", buf, off + L.depth, depth)
        for i, f in enumerate(e.frames):
            struct.pack_into(pf, buf, off + L.back_trace + i * self.ptr, f)

    def finish(self) -> None:
        if self.finished:
            raise RuntimeError("finish() called twice")
        self.finished = True
        if self.size > self.lost_offset:
            raise ValueError("trace entries run into the uncaptured area; raise lost_offset")
        buf = bytearray(self.size)
        for e in self._entries:
            if e.captured:
                self._pack(buf, e.address - self.address, e)
        self.b.add_memory(self.address, bytes(buf), list=self.memory_list)
        rw = dict(type=fmt.MEM_PRIVATE, allocation_base=self.address,
                  allocation_protect=fmt.PAGE_READWRITE)
        self.b.add_region(self.address, len(buf), state=fmt.MEM_COMMIT,
                          protect=fmt.PAGE_READWRITE, **rw)
        if self.lost_size:
            lost = self.address + self.lost_offset
            if lost > self.address + len(buf):
                self.b.add_region(self.address + len(buf), lost - self.address - len(buf),
                                  state=fmt.MEM_RESERVE, protect=0, **rw)
            # Committed, never captured: the entries' bytes exist only in the process.
            self.b.add_region(lost, self.lost_size, state=fmt.MEM_COMMIT,
                              protect=fmt.PAGE_READWRITE, **rw)

    def expected(self) -> dict:
        entries = []
        for e in self._entries:
            rec = {"address": e.address, "depth": len(e.frames),
                   "trace_count": min(e.refs, 0x7FF), "frames": list(e.frames)}
            if not e.captured:
                rec["captured"] = False
            if e.index is not None:
                rec["index"] = e.index
            entries.append(rec)
        out = {
            "address": self.address,
            "arch": self.arch,
            "size": self.size,
            "entry_layout": {"index": self.lay.index, "depth": self.lay.depth,
                             "back_trace": self.lay.back_trace, "sizeof": self.lay.size},
            "entries": entries,
        }
        if self.lost_size:
            out["uncaptured_area"] = {"address": self.address + self.lost_offset,
                                      "size": self.lost_size}
        return out


# ---------------------------------------------------------------------------
@dataclass
class Block:
    """One _HEAP_ENTRY in a segment (decoded values)."""

    address: int
    size: int                 # Size field, granules
    granularity: int
    busy: bool
    kind: str                 # "segment_header" | "backend" | "internal" | "lfh_heap" | "lfh_zone" | "lfh_container"
    segment: int
    flags: int = 0
    unused: int = 0
    previous_size: int = 0
    request: int = 0          # requested bytes of a busy block
    frames: tuple[int, ...] = ()
    trace: int = 0
    ust: bool = False
    tag: int = 0
    bad_checksum: bool = False
    data: bytes | None = None  # user bytes to write instead of pattern() (exactly `request` bytes)

    @property
    def nbytes(self) -> int:
        return self.size * self.granularity

    @property
    def end(self) -> int:
        return self.address + self.nbytes


@dataclass
class TileItem:
    offset: int
    size: int          # granules
    busy: bool
    request: int
    unused: int
    frames: tuple[int, ...] = ()
    trace: int = 0


@dataclass
class BulkRun:
    """``count`` back-to-back copies of a tile of entries (for very large heaps)."""

    address: int
    segment: int
    items: list[TileItem]
    tile_bytes: int
    count: int
    first_previous_size: int
    granularity: int

    @property
    def end(self) -> int:
        return self.address + self.tile_bytes * self.count

    @property
    def nbytes(self) -> int:
        return self.tile_bytes * self.count

    @property
    def blocks(self) -> int:
        return len(self.items) * self.count


Item = Union[Block, BulkRun]


@dataclass
class Ucr:
    address: int
    size: int
    segment: int
    descriptor: int = 0


@dataclass
class VirtualBlock:
    address: int              # the _HEAP_VIRTUAL_ALLOC_ENTRY (page aligned)
    request: int
    commit_size: int
    reserve_size: int
    frames: tuple[int, ...]
    trace: int
    capture: str              # "full" | "head"
    tag: int
    header_address: int
    user_address: int
    kind: str = "virtual"     # "virtual" | "lfh_heap" (Windows 7 keeps _LFH_HEAP in one, lfh.py)

    @property
    def busy_size(self) -> int:
        return self.commit_size - self.request


@dataclass
class Corruption:
    address: int
    kind: str
    detail: str
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
class Segment:
    """One heap segment: [base, base+reserve), committed runs, blocks."""

    def __init__(self, heap: NtHeap, index: int, base: int, reserve: int,
                 committed: Sequence[tuple[int, int]]):
        self.heap = heap
        self.index = index
        self.base = base
        self.reserve = reserve
        g = heap.entry.granularity
        self.g = g
        if base % SEGMENT_ALIGN:
            raise ValueError(f"segment base {base:#x} is not 64 KiB aligned")
        if reserve <= 0 or reserve % PAGE:
            raise ValueError("segment reserve must be a positive multiple of the page size")
        runs: list[tuple[int, int]] = []
        prev_end = None
        for off, size in committed:
            if off % PAGE or size % PAGE or size <= 0:
                raise ValueError("committed ranges must be page aligned and non-empty")
            if prev_end is None:
                if off != 0:
                    raise ValueError("the first committed range must start at the segment base")
            elif off <= prev_end:
                raise ValueError("committed ranges must be sorted and separated by uncommitted pages")
            if off + size > reserve:
                raise ValueError("committed range past the segment's reservation")
            runs.append((base + off, base + off + size))
            prev_end = off + size
        if not runs:
            raise ValueError("a segment needs at least one committed range")
        self.runs = runs
        self.ucrs: list[Ucr] = []
        for (_s, e), nxt in zip(runs, runs[1:] + [(base + reserve, None)]):
            if nxt[0] > e:
                self.ucrs.append(Ucr(e, nxt[0] - e, index))
        self.items: list[Item] = []
        self.run = 0
        self._run_first_item = 0
        self._closed_runs: set[int] = set()
        self.cursor = base
        self.prev = 0
        self.closed = False
        hsize = heap.layout.size + heap.header_extra if index == 0 else heap.seg.size
        hsize = _align(hsize, g)
        if base + hsize + heap.min_free > runs[0][1]:
            raise ValueError("first committed range too small for the segment header")
        self.header = self._append(Block(base, hsize // g, g, True, "segment_header", index,
                                         flags=HEAP_ENTRY_BUSY, unused=UNUSED_SEGMENT_HEADER,
                                         previous_size=0))
        self.first_entry = self.cursor

    # ------------------------------------------------------------ placement
    @property
    def end(self) -> int:
        return self.base + self.reserve

    @property
    def committed_bytes(self) -> int:
        return sum(e - s for s, e in self.runs)

    @property
    def uncommitted_bytes(self) -> int:
        return sum(u.size for u in self.ucrs)

    @property
    def blocks(self) -> list[Block]:
        return [i for i in self.items if isinstance(i, Block)]

    def _append(self, item: Item) -> Item:
        self.items.append(item)
        self.cursor = item.end
        if isinstance(item, Block):
            self.prev = item.size
        else:
            self.prev = item.items[-1].size
        return item

    def _make_room(self, nbytes: int) -> None:
        if self.closed:
            raise RuntimeError("segment already closed")
        while self.runs[self.run][1] - self.cursor < nbytes + self.heap.min_free:
            if self.run + 1 >= len(self.runs):
                raise ValueError(f"segment {self.base:#x} is full ({nbytes:#x} bytes more asked)")
            self._close_run()
            self.run += 1
            self.cursor = self.runs[self.run][0]
            self.prev = 0
            self._run_first_item = len(self.items)

    def busy_size(self, request: int) -> tuple[int, int]:
        """(Size in granules, UnusedBytes) for a busy block of ``request`` bytes."""
        return self.heap.busy_size(request)

    def busy(self, request: int, stack: Sequence[int] | None = None, *,
             kind: str = "backend", trace: int | None = None,
             flags: int = HEAP_ENTRY_BUSY, data: bytes | None = None) -> Block:
        """A busy block of ``request`` user bytes (optionally with a +ust stack;
        ``trace``: point at this existing trace entry, see StackTraceDatabase.add;
        ``data``: the user bytes, exactly ``request`` of them, instead of the pattern;
        Block.data may be replaced until the heap is finished).
        ``kind``/``flags``: front ends (lfh.py) allocate their own structures here with
        kinds lfh_heap / lfh_zone / lfh_container and, where the reference says so,
        HEAP_ENTRY_VIRTUAL_ALLOC in Flags."""
        if request < 0:
            raise ValueError("negative request")
        if data is not None and len(data) != request:
            raise ValueError("data must hold exactly the requested number of bytes")
        if not flags & HEAP_ENTRY_BUSY:
            raise ValueError("a busy block needs HEAP_ENTRY_BUSY in its flags")
        size, unused = self.heap.busy_size(request)
        frames, trace = self.heap._trace_for(stack, trace)
        self._make_room(size * self.g)
        blk = Block(self.cursor, size, self.g, True, kind, self.index, flags=flags,
                    unused=unused, previous_size=self.prev, request=request, frames=frames,
                    trace=trace, ust=self.heap.ust, tag=self.heap.fill_tag,
                    data=None if data is None else bytes(data))
        self._append(blk)
        return blk

    def free(self, nbytes: int) -> Block:
        """A free block of ``nbytes`` (header included)."""
        if nbytes % self.g or nbytes < self.heap.min_free:
            raise ValueError(f"free block size must be a multiple of {self.g:#x} and >= "
                             f"{self.heap.min_free:#x}")
        if nbytes // self.g > MAX_SIZE_FIELD:
            raise ValueError("free block too large for one entry")
        self._make_room(nbytes)
        blk = Block(self.cursor, nbytes // self.g, self.g, False, "backend", self.index,
                    previous_size=self.prev)
        self._append(blk)
        return blk

    def next_run(self) -> None:
        """Close the current committed run (free filler) and continue in the next one."""
        if self.run + 1 >= len(self.runs):
            raise ValueError("no further committed range in this segment")
        self._close_run()
        self.run += 1
        self.cursor = self.runs[self.run][0]
        self.prev = 0
        self._run_first_item = len(self.items)

    def bulk(self, tile: Sequence[tuple], count: int) -> BulkRun:
        """``count`` copies of ``tile``: items ("busy", request[, stack]) or ("free", nbytes).
        The whole run must fit the current committed range."""
        if count <= 0 or not tile:
            raise ValueError("empty bulk run")
        items: list[TileItem] = []
        off = 0
        for t in tile:
            if t[0] == "busy":
                size, unused = self.heap.busy_size(t[1])
                frames, trace = self.heap._trace_for(t[2] if len(t) > 2 else None)
                items.append(TileItem(off, size, True, t[1], unused, frames, trace))
            elif t[0] == "free":
                if t[1] % self.g or t[1] < self.heap.min_free:
                    raise ValueError("bad free size in tile")
                size = t[1] // self.g
                items.append(TileItem(off, size, False, 0, 0))
            else:
                raise ValueError(f"tile item {t!r}")
            off += size * self.g
        # Trace references: each tile item's trace is used `count` times.
        if self.heap.stack_db is not None:
            for it in items:
                if it.trace:
                    self.heap.stack_db.ref(it.trace, count - 1)
        tile_bytes = off
        self._make_room(tile_bytes * count)
        run = BulkRun(self.cursor, self.index, items, tile_bytes, count, self.prev, self.g)
        self._append(run)
        return run

    def _filler(self, nbytes: int) -> None:
        n = nbytes // self.g
        while n > 0:
            take = n if n <= MAX_SIZE_FIELD else 0xFFF0
            self._append(Block(self.cursor, take, self.g, False, "backend", self.index,
                               previous_size=self.prev))
            n -= take

    def _close_run(self) -> None:
        if self.run in self._closed_runs:
            return
        self._closed_runs.add(self.run)
        run_end = self.runs[self.run][1]
        remaining = run_end - self.cursor
        last = self.items[-1] if len(self.items) > self._run_first_item else None
        if remaining:
            if (isinstance(last, Block) and not last.busy and last.kind == "backend"
                    and last.size + remaining // self.g <= MAX_SIZE_FIELD):
                last.size += remaining // self.g       # coalesce with the free block before
                self.cursor = last.end
                self.prev = last.size
            else:
                self._filler(remaining)
        last = self.items[-1]
        assert isinstance(last, Block) and not last.busy, "a committed run must end with a free entry"
        assert last.end == run_end
        last.flags |= HEAP_ENTRY_LAST_ENTRY
        if run_end < self.end:
            last.unused = UNUSED_LAST_BEFORE_UCR

    def close(self) -> None:
        if self.closed:
            return
        self._close_run()
        while self.run + 1 < len(self.runs):
            self.run += 1
            self.cursor = self.runs[self.run][0]
            self.prev = 0
            self._run_first_item = len(self.items)
            self._close_run()
        self.closed = True

    def run_of(self, address: int) -> int:
        for i, (s, e) in enumerate(self.runs):
            if s <= address < e:
                return i
        return -1


# ---------------------------------------------------------------------------
class NtHeap:
    """An NT heap (_HEAP + segments + virtual blocks) written into a DumpBuilder."""

    def __init__(self, builder: DumpBuilder, address: int, *, arch: str | None = None,
                 epoch: str, seed: int, flags: int = PROCESS_HEAP_FLAGS, force_flags: int = 0,
                 ust: bool = False, stack_db: StackTraceDatabase | None = None,
                 reserve: int = 0x100000, committed: Sequence[tuple[int, int]] = ((0, 0x4000),),
                 ucr_capacity: int = 8, process_heaps_index: int = 1, encode: bool = True,
                 header_extra: int = 0, memory_list: str = "mem64", fill_tag: int = 0xB0,
                 virtual_memory_threshold: int | None = None, total_free_size: int | None = None):
        arch = arch or builder.arch
        if arch not in HEAP_ARCHES:
            raise ValueError(f"arch must be one of {HEAP_ARCHES}")
        if epoch not in EPOCHS:
            raise ValueError(f"epoch must be one of {EPOCHS}")
        if ust and stack_db is not None and stack_db.arch != arch:
            raise ValueError("stack database arch differs from the heap's")
        self.b = builder
        self.address = address
        self.arch = arch
        self.epoch = epoch
        self.layout: HeapLayout = heap_layout(arch, epoch)
        al = ARCH_LAYOUTS[arch]
        self.entry, self.seg, self.ucr, self.vae, self.counters_layout = (
            al.entry, al.segment, al.ucr, al.vae, al.counters)
        self.ptr = self.entry.ptr
        self.pfmt = _ptr_fmt(self.ptr)
        self.flags = flags
        self.force_flags = force_flags
        self.ust = ust
        self.stack_db = stack_db
        self.encode = encode
        self.header_extra = header_extra
        self.memory_list = memory_list
        self.fill_tag = fill_tag & 0xFF
        self.process_heaps_index = process_heaps_index
        self.seed = seed
        self.min_free = 2 * self.entry.granularity
        self.tuning = dict(_DEFAULTS[arch])
        if virtual_memory_threshold is not None:
            self.tuning["virtual_memory_threshold"] = virtual_memory_threshold
        self._total_free_override = total_free_size
        rng = random.Random(seed)
        # doc 6.3 / 14: random 8-byte key; x64 keeps bytes 0..7 of Encoding zero.
        key = bytes(rng.randrange(256) for _ in range(8))
        self.key = key if encode else bytes(8)
        self.encoding_field = (self.key if arch == "x86" else bytes(8) + self.key)
        self.pointer_key = rng.getrandbits(8 * self.ptr)
        self.segments: list[Segment] = []
        self.virtual_blocks: list[VirtualBlock] = []
        self.corruptions: list[Corruption] = []
        self._segment_loop: tuple[int, int] | None = None
        self._virtual_loop: tuple[int, int] | None = None
        self._virtual_break: tuple[int, int] | None = None
        self.dropped_pages: list[int] = []
        self._silent_drops: set[int] = set()
        self.lfh: Any = None          # an lfh.Lfh front end attaches itself here
        self.finished = False
        self.ucr_capacity = ucr_capacity
        seg0 = Segment(self, 0, address, reserve, committed)
        self.segments.append(seg0)
        self.ucr_holder: Block | None = None
        if ucr_capacity:
            self.ucr_holder = seg0.busy(ucr_capacity * self.ucr.size, kind="internal")

    # ------------------------------------------------------------ inputs
    def busy_size(self, request: int) -> tuple[int, int]:
        return busy_block_size(self.arch, request, self.ust)

    def front_end(self) -> tuple[int, int]:
        """(_HEAP.FrontEndHeap, FrontEndHeapType): (0, 0) without a front end."""
        if self.lfh is None:
            return 0, FRONT_END_NONE
        return self.lfh.front_end_heap, self.lfh.front_end_type

    def _trace_for(self, stack: Sequence[int] | None,
                   trace: int | None = None) -> tuple[tuple[int, ...], int]:
        if trace is not None:
            if not self.ust or self.stack_db is None:
                raise ValueError("a trace entry needs a +ust heap with stack_db")
            e = self.stack_db.entry(trace)
            if stack is not None and tuple(int(f) for f in stack) != e.frames:
                raise ValueError("stack differs from the frames of the given trace entry")
            self.stack_db.ref(trace)
            return e.frames, trace
        if not stack:
            return (), 0
        if not self.ust:
            raise ValueError("stacks need a +ust heap (ust=True)")
        if self.stack_db is None:
            raise ValueError("a +ust heap with stacks needs stack_db")
        trace = self.stack_db.add(stack)
        return tuple(int(f) for f in stack), trace

    def add_segment(self, base: int, reserve: int,
                    committed: Sequence[tuple[int, int]] = ((0, 0x1000),)) -> Segment:
        if self.finished:
            raise RuntimeError("heap already written")
        s = Segment(self, len(self.segments), base, reserve, committed)
        self.segments.append(s)
        return s

    def add_virtual(self, address: int, request: int, *, reserve: int | None = None,
                    stack: Sequence[int] | None = None, capture: str = "full",
                    tag: int | None = None, trace: int | None = None,
                    kind: str = "virtual") -> VirtualBlock:
        """A large block in its own VirtualAlloc region, on _HEAP.VirtualAllocdBlocks.
        capture="head" captures only the first page (the rest stays MEM_COMMIT but
        absent from the dump, to keep fixtures small)."""
        if self.finished:
            raise RuntimeError("heap already written")
        if address % SEGMENT_ALIGN:
            raise ValueError("virtual blocks start on a 64 KiB boundary")
        if capture not in ("full", "head"):
            raise ValueError("capture is 'full' or 'head'")
        user_off = self.vae.ust_user if self.ust else self.vae.size
        commit = _align(request + user_off, PAGE)
        reserve = _align(reserve if reserve is not None else commit, PAGE)
        if reserve < commit:
            raise ValueError("reserve smaller than the committed size")
        frames, trace = self._trace_for(stack, trace)
        vb = VirtualBlock(address, request, commit, reserve, frames, trace, capture,
                          self.fill_tag if tag is None else tag,
                          address + self.vae.busy_block, address + user_off, kind)
        self.virtual_blocks.append(vb)
        return vb

    # ------------------------------------------------------------ corruption
    def corrupt_checksum(self, block: Block) -> None:
        """Write ``block`` with a wrong SmallTagIndex (Size/Flags stay intact)."""
        block.bad_checksum = True
        good = (block.size & 0xFF) ^ (block.size >> 8) ^ block.flags
        self.corruptions.append(Corruption(
            block.address, "bad_checksum",
            f"SmallTagIndex decodes to {good ^ BAD_CHECKSUM_XOR:#04x}, expected {good:#04x} "
            f"(Size {block.size:#x}, Flags {block.flags:#x} intact)",
            {"segment": self.segments[block.segment].base}))

    def loop_segment_list(self, from_segment: int, to_segment: int) -> None:
        """SegmentListEntry.Flink of segment ``from`` points back at segment ``to``."""
        self._segment_loop = (from_segment, to_segment)

    def loop_virtual_list(self, from_index: int, to_index: int) -> None:
        self._virtual_loop = (from_index, to_index)

    def break_virtual_link(self, index: int, target: int) -> None:
        """Virtual block ``index``'s Flink points at ``target`` (not in the dump)."""
        self._virtual_break = (index, target)

    def drop_page(self, address: int, *, record: bool = True) -> None:
        """Leave one committed segment page out of the dump (region stays MEM_COMMIT).
        record=False: no heap corruption record (a front end that loses only the
        inside of one of its blocks reports that itself, e.g. lfh.py's not_captured
        containers)."""
        if address % PAGE:
            raise ValueError("page address must be page aligned")
        self.dropped_pages.append(address)
        if not record:
            self._silent_drops.add(address)

    # ------------------------------------------------------------ derived
    def all_ucrs(self) -> list[Ucr]:
        return [u for s in self.segments for u in s.ucrs]

    def _free_blocks(self) -> Iterator[Block]:
        for s in self.segments:
            for it in s.items:
                if isinstance(it, Block) and not it.busy:
                    yield it

    def _user(self, blk: Block) -> tuple[int, int]:
        """(user_address, user_size) of a busy segment block as a reader computes it."""
        e = self.entry
        if blk.kind == "segment_header" or not blk.busy:
            return 0, 0
        if self.ust:
            return blk.address + e.ust_user, blk.nbytes - blk.unused
        return blk.address + e.header_size, blk.nbytes - blk.unused

    # ------------------------------------------------------------ checks
    def _self_check(self) -> None:
        g = self.entry.granularity
        for s in self.segments:
            spans: list[tuple[int, int, str]] = []
            for it in s.items:
                spans.append((it.address, it.end, "entry"))
            for u in s.ucrs:
                spans.append((u.address, u.address + u.size, "ucr"))
            spans.sort()
            pos = s.base
            for lo, hi, what in spans:
                assert lo == pos, f"coverage gap/overlap in segment {s.base:#x} at {pos:#x} ({what} at {lo:#x})"
                assert hi > lo
                if what == "entry":
                    r = s.run_of(lo)
                    assert r >= 0 and hi <= s.runs[r][1], f"entry {lo:#x} leaves its committed range"
                pos = hi
            assert pos == s.end, f"segment {s.base:#x} not covered to its end"
            # PreviousSize chain and run endings.
            prev_size, prev_end = 0, None
            for it in s.items:
                size0_prev = it.first_previous_size if isinstance(it, BulkRun) else it.previous_size
                if prev_end == it.address:
                    assert size0_prev == prev_size, f"PreviousSize chain broken at {it.address:#x}"
                else:
                    assert size0_prev == 0, f"entry after an uncommitted range at {it.address:#x}"
                prev_end = it.end
                prev_size = it.items[-1].size if isinstance(it, BulkRun) else it.size
                if isinstance(it, Block):
                    assert it.address % g == 0
            for _s, e in s.runs:
                last = next(i for i in reversed(s.items) if i.end == e)
                assert isinstance(last, Block) and not last.busy and last.flags & HEAP_ENTRY_LAST_ENTRY
        # Virtual blocks stay outside every segment and each other.
        spans2 = [(s.base, s.end) for s in self.segments]
        spans2 += [(v.address, v.address + v.reserve_size) for v in self.virtual_blocks]
        spans2.sort()
        for (a0, a1), (b0, _b1) in zip(spans2, spans2[1:]):
            assert a1 <= b0, f"heap ranges overlap at {b0:#x}"
        assert len(self.all_ucrs()) <= self.ucr_capacity, (
            f"{len(self.all_ucrs())} uncommitted ranges but room for {self.ucr_capacity} descriptors")

    # ------------------------------------------------------------ writing
    def _group(self, size: int, flags: int, prev: int, unused: int, bad: bool = False) -> bytes:
        return _xor8(entry_group(size, flags, prev, 0, unused, bad), self.key)

    def _write_block(self, c: _Canvas, blk: Block) -> None:
        e = self.entry
        c.write(blk.address + e.group,
                self._group(blk.size, blk.flags, blk.previous_size, blk.unused, blk.bad_checksum))
        if blk.kind == "segment_header":
            return
        if blk.busy:
            if self.ust:
                c.pointer(blk.address + e.ust_trace_pointer, blk.trace)
                c.pack(blk.address + e.ust_extra, "<H", blk.unused)
            user, size = self._user(blk)
            if blk.kind == "backend" and size:
                if blk.data is not None:
                    assert len(blk.data) == size, f"block {blk.address:#x}: data is not {size:#x} bytes"
                    c.write(user, blk.data)
                else:
                    c.write(user, pattern(user, size, blk.tag))

    def _list(self, c: _Canvas, head: int, nodes: Sequence[int]) -> None:
        """Circular LIST_ENTRY through ``nodes`` (addresses of LIST_ENTRYs)."""
        prev = head
        for n in nodes:
            c.pointer(prev, n)                 # prev.Flink
            c.pointer(n + self.ptr, prev)      # n.Blink
            prev = n
        c.pointer(prev, head)
        c.pointer(head + self.ptr, prev)

    def _write_heap_header(self, c: _Canvas) -> None:
        L, h, p = self.layout, self.address, self.pfmt
        c.pack(h + L.flags, "<I", self.flags)
        c.pack(h + L.force_flags, "<I", self.force_flags)
        c.pack(h + L.compatibility_flags, "<I", 0)
        c.pack(h + L.encode_flag_mask, "<I", ENCODE_FLAG_MASK if self.encode else 0)
        c.write(h + L.encoding, self.encoding_field)
        if L.pointer_key is not None:
            c.pack(h + L.pointer_key, p, self.pointer_key)
        c.pack(h + L.interceptor, "<I", 0)
        c.pack(h + L.virtual_memory_threshold, "<I", self.tuning["virtual_memory_threshold"])
        c.pack(h + L.signature, "<I", HEAP_SIGNATURE)
        c.pack(h + L.segment_reserve, p, self.tuning["segment_reserve"])
        c.pack(h + L.segment_commit, p, self.tuning["segment_commit"])
        c.pack(h + L.decommit_free_block_threshold, p, self.tuning["decommit_free_block_threshold"])
        c.pack(h + L.decommit_total_free_threshold, p, self.tuning["decommit_total_free_threshold"])
        c.pack(h + L.total_free_size, p, self.total_free_size())
        c.pack(h + L.maximum_allocation_size, p, self.tuning["maximum_allocation_size"])
        c.pack(h + L.process_heaps_list_index, "<H", self.process_heaps_index)
        c.pack(h + L.header_validate_length, "<H", L.size)
        c.pack(h + L.header_validate_copy, p, 0)
        c.pack(h + L.next_available_tag_index, "<H", 0)
        c.pack(h + L.maximum_tag_index, "<H", 0)
        c.pack(h + L.tag_entries, p, 0)
        c.pack(h + L.align_round, p, self.tuning["align_round"])
        c.pack(h + L.align_mask, p, self.tuning["align_mask"])
        c.pack(h + L.allocator_back_trace_index, "<H", 0)
        c.pack(h + L.non_dedicated_list_length, "<I", 0)
        c.pack(h + L.blocks_index, p, 0)
        c.pack(h + L.ucr_index, p, 0)
        c.pack(h + L.pseudo_tag_entries, p, 0)
        c.pack(h + L.lock_variable, p, 0)
        c.pack(h + L.commit_routine, p, 0)
        fe_heap, fe_type = self.front_end()
        c.pack(h + L.front_end_heap, p, fe_heap)
        c.pack(h + L.front_heap_lock_count, "<H", 0)
        c.pack(h + L.front_end_heap_type, "<B", fe_type)
        if L.requested_front_end_heap_type is not None:
            c.pack(h + L.requested_front_end_heap_type, "<B", fe_type)
        cl, base = self.counters_layout, h + L.counters
        cf = "<I" if cl.size_fields == 4 else "<Q"
        cnt = self.counters()
        c.pack(base + cl.total_memory_reserved, cf, cnt["total_memory_reserved"])
        c.pack(base + cl.total_memory_committed, cf, cnt["total_memory_committed"])
        c.pack(base + cl.total_memory_large_ucr, cf, cnt["total_memory_large_ucr"])
        c.pack(base + cl.total_size_in_virtual_blocks, cf, cnt["total_size_in_virtual_blocks"])
        c.pack(base + cl.total_segments, "<I", cnt["total_segments"])
        c.pack(base + cl.total_ucrs, "<I", cnt["total_ucrs"])

    def _write_segment_fields(self, c: _Canvas, s: Segment) -> None:
        S, b, p = self.seg, s.base, self.pfmt
        c.pack(b + S.segment_signature, "<I", SEGMENT_SIGNATURE)
        c.pack(b + S.segment_flags, "<I", 0)
        c.pack(b + S.heap, p, self.address)
        c.pack(b + S.base_address, p, s.base)
        c.pack(b + S.number_of_pages, "<I", s.reserve // PAGE)
        c.pack(b + S.first_entry, p, s.first_entry)
        c.pack(b + S.last_valid_entry, p, s.end)
        c.pack(b + S.number_of_uncommitted_pages, "<I", s.uncommitted_bytes // PAGE)
        c.pack(b + S.number_of_uncommitted_ranges, "<I", len(s.ucrs))
        c.pack(b + S.segment_allocator_back_trace_index, "<H", 0)
        c.pack(b + S.reserved, "<H", 0)

    def _write_bulk(self, c: _Canvas, run: BulkRun) -> None:
        e = self.entry
        g = run.granularity
        n = run.tile_bytes
        tile = bytearray(n)
        fill = bytes([self.fill_tag]) * (n + 8)
        user_off = e.ust_user if self.ust else e.header_size
        spill = 0   # x64: bytes of the tile's last item that live in the next entry's first 8 bytes
        for it in run.items:
            if it.busy:
                lo = it.offset + user_off
                hi = lo + it.size * g - it.unused
                if hi <= n:
                    tile[lo:hi] = fill[lo:hi]
                else:
                    tile[lo:] = fill[lo:n]
                    spill = hi - n
                    tile[:spill] = fill[:spill]
        last_size = run.items[-1].size
        for k, it in enumerate(run.items):
            prev = last_size if k == 0 else run.items[k - 1].size
            flags = HEAP_ENTRY_BUSY if it.busy else 0
            tile[it.offset + e.group:it.offset + e.group + 8] = self._group(it.size, flags, prev,
                                                                            it.unused)
            if it.busy and self.ust:
                struct.pack_into(self.pfmt, tile, it.offset + e.ust_trace_pointer, it.trace)
                struct.pack_into("<H", tile, it.offset + e.ust_extra, it.unused)
        buf, off = c.locate(run.address, run.nbytes)
        before = bytes(buf[off:off + e.group])     # x64: data of the entry before the run
        buf[off:off + run.nbytes] = bytes(tile) * run.count
        buf[off:off + e.group] = before
        if spill:
            buf[off + run.nbytes:off + run.nbytes + spill] = fill[:spill]
        # The first header of the first copy follows whatever came before the run.
        it0 = run.items[0]
        flags0 = HEAP_ENTRY_BUSY if it0.busy else 0
        buf[off + e.group:off + e.group + 8] = self._group(it0.size, flags0, run.first_previous_size,
                                                           it0.unused)

    def _free_nodes(self) -> Iterator[int]:
        fl = self.entry.free_list
        for s in self.segments:
            for it in s.items:
                if isinstance(it, Block):
                    if not it.busy:
                        yield it.address + fl
                else:
                    offs = [t.offset + fl for t in it.items if not t.busy]
                    if not offs:
                        continue
                    for rep in range(it.count):
                        base = it.address + rep * it.tile_bytes
                        for o in offs:
                            yield base + o

    def _write_free_list(self, c: _Canvas) -> None:
        head = self.address + self.layout.free_lists
        p, ptr = self.pfmt, self.ptr
        hb, ho = c.locate(head, 2 * ptr)
        prev_b, prev_o, prev_a = hb, ho, head
        cache: tuple[int, int, bytearray] | None = None
        for node in self._free_nodes():
            if cache is None or not (cache[0] <= node and node + 2 * ptr <= cache[1]):
                for s_, e_, b_ in c.bufs:
                    if s_ <= node and node + 2 * ptr <= e_:
                        cache = (s_, e_, b_)
                        break
                else:
                    raise AssertionError(f"free entry outside the heap at {node:#x}")
            nb, no = cache[2], node - cache[0]
            struct.pack_into(p, prev_b, prev_o, node)
            struct.pack_into(p, nb, no + ptr, prev_a)
            prev_b, prev_o, prev_a = nb, no, node
        struct.pack_into(p, prev_b, prev_o, head)
        struct.pack_into(p, hb, ho + ptr, prev_a)

    def finish(self) -> None:
        if self.finished:
            raise RuntimeError("finish() called twice")
        for s in self.segments:
            s.close()
        self.finished = True
        # UCR descriptors, in segment order then address order.
        ucrs = self.all_ucrs()
        if ucrs and self.ucr_holder is None:
            raise ValueError("uncommitted ranges need ucr_capacity > 0")
        if self.ucr_holder is not None:
            start, _ = self._user(self.ucr_holder)
            for i, u in enumerate(ucrs):
                u.descriptor = start + i * self.ucr.size
        self._self_check()
        dropped_in: list[tuple[int, int]] = []
        for page in self.dropped_pages:
            owner = next((sg for sg in self.segments if sg.run_of(page) >= 0), None)
            if owner is None:
                raise ValueError(f"dropped page {page:#x} is not committed segment memory")
            if owner.run_of(page) == 0 and page == owner.base:
                raise ValueError("dropping a segment's header page makes the segment unreadable")
            dropped_in.append((page, owner.base))

        c = _Canvas(self.ptr)
        for s in self.segments:
            c.add(s.base, s.runs[-1][1] - s.base)
        for v in self.virtual_blocks:
            c.add(v.address, v.commit_size if v.capture == "full" else PAGE)

        # Entries first (x64 user data may run into the next header's first 8 bytes,
        # which the header write leaves alone).
        for s in self.segments:
            for it in s.items:
                if isinstance(it, Block):
                    self._write_block(c, it)
                else:
                    self._write_bulk(c, it)
        # Header structures.
        self._write_heap_header(c)
        for s in self.segments:
            self._write_segment_fields(c, s)
        # UCR descriptors.
        U = self.ucr
        for u in ucrs:
            c.pack(u.descriptor + U.address, self.pfmt, u.address)
            c.pack(u.descriptor + U.size_field, self.pfmt, u.size)
        # Virtual blocks.
        V = self.vae
        for v in self.virtual_blocks:
            c.pack(v.address + V.commit_size, self.pfmt, v.commit_size)
            c.pack(v.address + V.reserve_size, self.pfmt, v.reserve_size)
            c.write(v.header_address + self.entry.group,
                    self._group(v.busy_size, HEAP_ENTRY_BUSY | HEAP_ENTRY_VIRTUAL_ALLOC, 0,
                                UNUSED_VIRTUAL_BLOCK))
            if self.ust:
                c.pointer(v.address + V.ust_trace_pointer, v.trace)
            avail = (v.commit_size if v.capture == "full" else PAGE) - (v.user_address - v.address)
            n = min(v.request, avail)
            if n > 0 and v.kind == "virtual":
                c.write(v.user_address, pattern(v.user_address, n, v.tag))
        # Lists.
        L = self.layout
        self._list(c, self.address + L.segment_list,
                   [s.base + self.seg.segment_list_entry for s in self.segments])
        self._list(c, self.address + L.ucr_list, [u.descriptor + U.list_entry for u in ucrs])
        for s in self.segments:
            self._list(c, s.base + self.seg.ucr_segment_list,
                       [u.descriptor + U.segment_entry for u in s.ucrs])
        self._list(c, self.address + L.virtual_allocd_blocks,
                   [v.address + V.entry for v in self.virtual_blocks])
        self._write_free_list(c)
        self._apply_list_corruptions(c)
        # Front end structures live in the user data of blocks written above.
        if self.lfh is not None:
            self.lfh.write(c)

        # Memory and regions.
        rw = dict(type=fmt.MEM_PRIVATE, allocation_protect=fmt.PAGE_READWRITE)
        dropped = set(self.dropped_pages)
        for s in self.segments:
            buf = c.locate(s.base, 1)[0]
            for lo, hi in s.runs:
                self.b.add_region(lo, hi - lo, state=fmt.MEM_COMMIT, protect=fmt.PAGE_READWRITE,
                                  allocation_base=s.base, **rw)
                pos = lo
                for page in sorted(p for p in dropped if lo <= p < hi):
                    if page > pos:
                        self.b.add_memory(pos, bytes(buf[pos - s.base:page - s.base]), list=self.memory_list)
                    pos = page + PAGE
                if pos < hi:
                    self.b.add_memory(pos, bytes(buf[pos - s.base:hi - s.base]), list=self.memory_list)
            for u in s.ucrs:
                self.b.add_region(u.address, u.size, state=fmt.MEM_RESERVE, protect=0,
                                  allocation_base=s.base, **rw)
        for v in self.virtual_blocks:
            buf = c.locate(v.address, 1)[0]
            self.b.add_memory(v.address, bytes(buf), list=self.memory_list)
            self.b.add_region(v.address, v.commit_size, state=fmt.MEM_COMMIT,
                              protect=fmt.PAGE_READWRITE, allocation_base=v.address, **rw)
            if v.reserve_size > v.commit_size:
                self.b.add_region(v.address + v.commit_size, v.reserve_size - v.commit_size,
                                  state=fmt.MEM_RESERVE, protect=0, allocation_base=v.address, **rw)
        for page, seg in dropped_in:
            if page in self._silent_drops:
                continue
            self.corruptions.append(Corruption(
                page, "not_captured",
                f"committed page of segment {seg:#x} absent from the dump (region is MEM_COMMIT)",
                {"segment": seg, "size": PAGE}))

    def _apply_list_corruptions(self, c: _Canvas) -> None:
        if self._segment_loop is not None:
            i, j = self._segment_loop
            a = self.segments[i].base + self.seg.segment_list_entry
            t = self.segments[j].base + self.seg.segment_list_entry
            c.pointer(a, t)
            self.corruptions.append(Corruption(
                a, "list_loop",
                f"SegmentListEntry.Flink of segment {self.segments[i].base:#x} points back at "
                f"segment {self.segments[j].base:#x} (not at _HEAP.SegmentList)",
                {"list": "SegmentList", "target": t}))
        V = self.vae
        if self._virtual_loop is not None:
            i, j = self._virtual_loop
            a = self.virtual_blocks[i].address + V.entry
            t = self.virtual_blocks[j].address + V.entry
            c.pointer(a, t)
            self.corruptions.append(Corruption(
                a, "list_loop",
                f"VirtualAllocdBlocks: Flink of block {a:#x} points back at block {t:#x}",
                {"list": "VirtualAllocdBlocks", "target": t}))
        if self._virtual_break is not None:
            i, t = self._virtual_break
            a = self.virtual_blocks[i].address + V.entry
            if self.b.region_containing(t) is not None:
                raise ValueError("break_virtual_link target must be outside every region")
            c.pointer(a, t)
            self.corruptions.append(Corruption(
                a, "pointer_outside_dump",
                f"VirtualAllocdBlocks: Flink of block {a:#x} is {t:#x}, an address the dump "
                f"does not capture",
                {"list": "VirtualAllocdBlocks", "target": t}))

    # ------------------------------------------------------------ expected
    def total_free_size(self) -> int:
        if self._total_free_override is not None:
            return self._total_free_override
        total = 0
        for s in self.segments:
            for it in s.items:
                if isinstance(it, Block):
                    total += 0 if it.busy else it.size
                else:
                    total += it.count * sum(t.size for t in it.items if not t.busy)
        return total

    def counters(self) -> dict[str, int]:
        return {
            "total_memory_reserved": sum(s.reserve for s in self.segments),
            "total_memory_committed": sum(s.committed_bytes for s in self.segments),
            "total_memory_large_ucr": 0,
            "total_size_in_virtual_blocks": sum(v.commit_size for v in self.virtual_blocks),
            "total_segments": len(self.segments),
            "total_ucrs": len(self.all_ucrs()),
        }

    def _block_record(self, blk: Block) -> dict:
        user, size = self._user(blk)
        rec = {
            "address": blk.address,
            "segment": self.segments[blk.segment].base,
            "size": blk.nbytes,
            "size_field": blk.size,
            "previous_size": blk.previous_size,
            "busy": blk.busy,
            "flags": blk.flags,
            "unused_bytes": blk.unused,
            "kind": blk.kind,
            "user_address": user,
            "user_size": size,
            "checksum_ok": not blk.bad_checksum,
            "stack_trace_entry": blk.trace,
            "frames": list(blk.frames),
        }
        if self.ust and blk.busy and blk.kind != "segment_header":
            rec["ust_extra"] = blk.unused
        self._mark_lost_trace(rec)
        return rec

    def _mark_lost_trace(self, rec: dict) -> None:
        """A trace entry the dump does not hold: no frames can be reported."""
        t = rec["stack_trace_entry"]
        if t and self.stack_db is not None and not self.stack_db.is_captured(t):
            rec["frames"] = []
            rec["trace_captured"] = False

    def _virtual_record(self, v: VirtualBlock) -> dict:
        rec = {
            "address": v.address,
            "header_address": v.header_address,
            "user_address": v.user_address,
            "commit_size": v.commit_size,
            "reserve_size": v.reserve_size,
            "busy_block_size": v.busy_size,
            "flags": HEAP_ENTRY_BUSY | HEAP_ENTRY_VIRTUAL_ALLOC,
            "unused_bytes": UNUSED_VIRTUAL_BLOCK,
            "user_size": v.commit_size - v.busy_size,
            "user_size_mpf_convention": v.commit_size - v.busy_size - self.vae.size,
            "stack_trace_entry": v.trace,
            "frames": list(v.frames),
            "captured_bytes": v.commit_size if v.capture == "full" else PAGE,
        }
        self._mark_lost_trace(rec)
        return rec

    def _walk(self) -> dict:
        """What a walker per doc 12.3/12.5 reports, given the corruptions."""
        seg_order = list(range(len(self.segments)))
        if self._segment_loop is not None:
            seg_order = seg_order[:self._segment_loop[0] + 1]
        stops: dict[int, int] = {}   # segment index -> first address not reported
        for s in self.segments:
            for blk in s.blocks:
                if blk.bad_checksum:
                    stops[s.index] = min(stops.get(s.index, blk.end), blk.address)
            for page in self.dropped_pages:
                if s.run_of(page) < 0:
                    continue
                for it in s.items:
                    # x86 reads bytes 0..8 of the entry, x64 bytes 0..16: both lie in
                    # one page because entries are granule aligned.
                    if page <= it.address < page + PAGE:
                        stops[s.index] = min(stops.get(s.index, it.address), it.address)
                        break
        blocks: list[int] = []
        busy_n = busy_bytes = free_n = free_bytes = 0
        for i in seg_order:
            s = self.segments[i]
            stop = stops.get(i)
            for it in s.items:
                if stop is not None and it.address >= stop:
                    break
                if isinstance(it, BulkRun):
                    continue
                blocks.append(it.address)
                if it.kind == "backend":
                    if it.busy:
                        busy_n += 1
                        busy_bytes += self._user(it)[1]
                    else:
                        free_n += 1
                        free_bytes += it.nbytes
        vorder = list(range(len(self.virtual_blocks)))
        if self._virtual_loop is not None:
            vorder = vorder[:self._virtual_loop[0] + 1]
        if self._virtual_break is not None:
            vorder = vorder[:self._virtual_break[0] + 1]
        return {
            "segments": [self.segments[i].base for i in seg_order],
            "blocks": blocks,
            "virtual_blocks": [self.virtual_blocks[i].address for i in vorder],
            "busy_count": busy_n,
            "busy_user_bytes": busy_bytes,
            "free_count": free_n,
            "free_bytes": free_bytes,
            "virtual_user_bytes": sum(self.virtual_blocks[i].request for i in vorder),
        }

    def summary(self) -> dict:
        """Counts and byte totals over every entry (cheap even for bulk heaps)."""
        n_entries = busy_n = busy_bytes = free_n = free_bytes = internal_n = 0
        for s in self.segments:
            for it in s.items:
                if isinstance(it, Block):
                    n_entries += 1
                    if it.kind == "internal":
                        internal_n += 1
                    elif it.kind == "backend":
                        if it.busy:
                            busy_n += 1
                            busy_bytes += self._user(it)[1]
                        else:
                            free_n += 1
                            free_bytes += it.nbytes
                else:
                    n_entries += it.blocks
                    for t in it.items:
                        if t.busy:
                            busy_n += it.count
                            busy_bytes += it.count * (t.size * it.granularity - t.unused)
                        else:
                            free_n += it.count
                            free_bytes += it.count * t.size * it.granularity
        return {
            "segment_entries": n_entries,
            "segment_headers": len(self.segments),
            "internal": internal_n,
            "busy_count": busy_n,
            "busy_user_bytes": busy_bytes,
            "free_count": free_n,
            "free_bytes": free_bytes,
            "virtual_count": len(self.virtual_blocks),
            "virtual_user_bytes": sum(v.request for v in self.virtual_blocks),
            "virtual_commit_bytes": sum(v.commit_size for v in self.virtual_blocks),
        }

    def expected(self, *, per_block: bool = True) -> dict:
        if not self.finished:
            raise RuntimeError("call finish() first")
        L = self.layout
        sm = self.summary()
        segs = []
        for s in self.segments:
            segs.append({
                "address": s.base,
                "base": s.base,
                "first_entry": s.first_entry,
                "last_valid_entry": s.end,
                "number_of_pages": s.reserve // PAGE,
                "reserved": s.reserve,
                "committed": s.committed_bytes,
                "committed_ranges": [{"address": lo, "size": hi - lo} for lo, hi in s.runs],
                "uncommitted_pages": s.uncommitted_bytes // PAGE,
                "uncommitted_ranges": [{"address": u.address, "size": u.size,
                                        "descriptor": u.descriptor} for u in s.ucrs],
                "entry_bytes": sum(it.nbytes for it in s.items),
                "ucr_bytes": s.uncommitted_bytes,
                "header_size": s.header.nbytes,
            })
        out: dict[str, Any] = {
            "address": self.address,
            "type": "nt",
            "arch": self.arch,
            "epoch": self.epoch,
            "granularity": self.entry.granularity,
            "segment_signature": SEGMENT_SIGNATURE,
            "signature": HEAP_SIGNATURE,
            "signature_offset": L.signature,
            "signature_ok": True,
            "flags": self.flags,
            "force_flags": self.force_flags,
            "encode_flag_mask": ENCODE_FLAG_MASK if self.encode else 0,
            "encoding_enabled": self.encode,
            "encoding": int.from_bytes(self.key, "little"),
            "virtual_memory_threshold": self.tuning["virtual_memory_threshold"],
            "front_end_heap": 0,
            "front_end_heap_type": FRONT_END_NONE,
            "process_heaps_list_index": self.process_heaps_index,
            "total_free_size": self.total_free_size(),
            "counters": self.counters(),
            "ust": self.ust,
            "layout": L.table(),
            "segments": segs,
            "ucr_count": len(self.all_ucrs()),
            "ucr_holder": self.ucr_holder.address if self.ucr_holder else 0,
            "virtual_blocks": [self._virtual_record(v) for v in self.virtual_blocks],
            "summary": sm,
            "free": {"count": sm["free_count"], "bytes": sm["free_bytes"]},
            "busy": {"count": sm["busy_count"], "user_bytes": sm["busy_user_bytes"]},
            "totals": {
                "reserved": sum(s.reserve for s in self.segments),
                "committed": sum(s.committed_bytes for s in self.segments),
                "virtual_bytes": sm["virtual_commit_bytes"],
                "virtual_reserved": sum(v.reserve_size for v in self.virtual_blocks),
                "virtual_user_bytes": sm["virtual_user_bytes"],
                "free_bytes": sm["free_bytes"],
                "busy_user_bytes": sm["busy_user_bytes"],
                "busy_user_bytes_all": (sm["busy_user_bytes"]
                                        + sum(v.request for v in self.virtual_blocks
                                              if v.kind == "virtual")
                                        + (self.lfh.busy_user_bytes() if self.lfh else 0)),
            },
            "coverage": {"ok": True,
                         "segments": [{"address": s.base,
                                       "entry_bytes": sum(it.nbytes for it in s.items),
                                       "ucr_bytes": s.uncommitted_bytes,
                                       "reserved": s.reserve} for s in self.segments]},
            "corruption": [dict({"address": k.address, "kind": k.kind, "detail": k.detail}, **k.extra)
                           for k in self.corruptions],
        }
        out["front_end_heap"], out["front_end_heap_type"] = self.front_end()
        out["lfh"] = self.lfh.expected() if self.lfh is not None else None
        if self.layout.pointer_key is not None:
            out["pointer_key"] = self.pointer_key
        if per_block:
            recs = [self._block_record(b) for s in self.segments for b in s.blocks]
            recs += [dict(self._virtual_record(v), address=v.header_address,
                          vae_address=v.address, size=v.commit_size, size_field=v.busy_size,
                          previous_size=0, busy=True, kind=v.kind, checksum_ok=True,
                          segment=None) for v in self.virtual_blocks]
            if self.lfh is not None:
                recs += self.lfh.rows(recs)
            for r in recs:
                r.setdefault("parent", 0)
                r.setdefault("level", 0)
                r.setdefault("not_decoded", None)
                r["is_allocation"] = is_allocation(r["kind"], r["busy"])
            # Ascending address, a container before its children (its first child, an
            # overhead row, starts at the container's own address): pre-order.
            recs.sort(key=lambda r: (r["address"], r["level"]))
            if any(isinstance(it, BulkRun) for s in self.segments for it in s.items):
                raise ValueError("per-block expected output of a bulk heap; use per_block=False")
            alloc_bytes = sum(r["user_size"] for r in recs if r["is_allocation"])
            assert alloc_bytes == out["totals"]["busy_user_bytes_all"], (
                f"heap {self.address:#x}: rows give {alloc_bytes:#x} allocated bytes, "
                f"totals {out['totals']['busy_user_bytes_all']:#x}")
            out["blocks"] = recs
            out["free_list"] = [b.address for b in self._free_blocks()]
            out["walk"] = self._walk()
        else:
            out["bulk_runs"] = [
                {"address": it.address, "segment": s.base, "count": it.count,
                 "tile_bytes": it.tile_bytes,
                 "tile": [{"offset": t.offset, "size": t.size * it.granularity, "busy": t.busy,
                           "user_size": (t.size * it.granularity - t.unused) if t.busy else 0,
                           "unused_bytes": t.unused, "stack_trace_entry": t.trace}
                          for t in it.items]}
                for s in self.segments for it in s.items if isinstance(it, BulkRun)]
            out["explicit_blocks"] = [self._block_record(b) for s in self.segments for b in s.blocks]
        return out


# ---------------------------------------------------------------------------
def write_segment_heap_stub(builder: DumpBuilder, address: int, arch: str,
                            size: int = PAGE, memory_list: str = "mem64") -> dict:
    """A committed page whose +0x08/+0x10 holds 0xDDEEDDEE (doc 10): a segment
    heap a walker must list but not walk (nothing else of _SEGMENT_HEAP is written)."""
    off = ARCH_LAYOUTS[arch].segment_heap_signature
    buf = bytearray(size)
    struct.pack_into("<I", buf, off, SEGMENT_HEAP_SIGNATURE)
    builder.add_memory(address, bytes(buf), list=memory_list)
    builder.add_region(address, size, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                       protect=fmt.PAGE_READWRITE, allocation_base=address,
                       allocation_protect=fmt.PAGE_READWRITE)
    return {"address": address, "type": "segment", "arch": arch,
            "segment_signature": SEGMENT_HEAP_SIGNATURE, "signature_offset": off, "walked": False}


def write_not_a_heap(builder: DumpBuilder, address: int, arch: str, tag: int = 0x6E,
                     memory_list: str = "mem64") -> dict:
    """A captured page that is neither an NT heap nor a segment heap."""
    data = pattern(address, PAGE, tag)
    off = ARCH_LAYOUTS[arch].segment_heap_signature
    value = struct.unpack_from("<I", data, off)[0]
    assert value not in (SEGMENT_SIGNATURE, SEGMENT_HEAP_SIGNATURE, HEAP_SIGNATURE)
    builder.add_memory(address, data, list=memory_list)
    builder.add_region(address, PAGE, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                       protect=fmt.PAGE_READWRITE, allocation_base=address,
                       allocation_protect=fmt.PAGE_READWRITE)
    return {"address": address, "type": "unknown", "arch": arch,
            "segment_signature": value, "signature_offset": off, "walked": False}
