"""SegmentHeap: writes a Windows 10/11 segment heap (x64) into a DumpBuilder.

    h = SegmentHeap(b, 0x1F0D4A00000, build=22631, seed=7)
    s = h.add_segment(0, 0x1F0D4B00000)                 # context 0: 1 MB, 4 KB units
    s.vs(0x4000, [("b", 0x48), ("f", 0x200), ("pa", 0x17F3), ("b", 0x5A0)])
    s.lfh(1, 0x100, [0x100, 0xF0, None])                 # units, BlockSize, requests cycled
    s.page_range(0x21234); s.free(3)                     # the rest of the segment: free
    t = h.add_segment(1, 0x1F0D5000000)                 # context 1: 16 MB, 64 KB units
    t.page_range(0x84321)
    h.add_large(0x1F0D7000000, 0x800123)
    h.finish()
    h.expected()    # plain data: keys, contexts, rows per docs/block-model.md, summary

Offsets come from segheap_layouts.py (one row per doc 10.1 column, every value with its
status).  What the builder chose where windows-heap-layouts.md ("the doc") leaves room is
stated in CONVENTIONS, which goes into the expected JSON; the list of UNCONFIRMED /
INFERRED / BUILDER_GUESS items each row relies on is in the row's ``status`` table, also in
the JSON (heap record ``layout.status``).

Bulk mode (benchmarks; not a fixture): BulkSegmentHeap writes one large segment heap with
millions of VS chunks and LFH blocks quickly.  It builds the bytes of one 1 MB context-0
segment once as a template whose address-dependent words (VS chunk headers, which are
XOR-ed with their own address, and LFH BlockOffsets, XOR-ed with S >> 12) are written for a
segment at address 0, and then derives every segment from it with two big-integer XORs
(``template ^ seg * M64 ^ c * M32``, where M64 / M32 have a 1 at each such word), so the
per-segment cost does not depend on the number of blocks.  See
segheap_scenarios.write_big_segment_heap_dump for the process around it and the truth
dict it returns (counts and bytes only).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from . import structs as fmt
from .builder import PAGE, DumpBuilder, pattern
from .segheap_layouts import (
    DESCRIPTOR_SIZE,
    DESCRIPTORS_PER_SEGMENT,
    FLAGS_FREE,
    FLAGS_LFH,
    FLAGS_PAGE_RANGE,
    FLAGS_VS,
    GEOMETRY,
    LARGE_ALIGN,
    LARGE_ALLOCATED_PAGES_SHIFT,
    LARGE_BITFIELD,
    LARGE_NODE_LEFT,
    LARGE_NODE_RIGHT,
    LARGE_VIRTUAL_ADDRESS,
    LAYOUT_1607,
    PAGE_SEGMENT_C_OLD,
    PAGE_SEGMENT_HEADER_BYTES,
    PAGE_SEGMENT_LIST_ENTRY,
    PAGE_SEGMENT_SIGNATURE,
    RANGE_FIRST,
    RB_LEFT,
    RB_MIN,
    RB_PARENT,
    RB_RED,
    RB_RIGHT,
    RB_ROOT,
    SEGMENT_HEAP_SIGNATURE,
    SEGMENT_HEAP_SIGNATURE_OFFSET_X64,
    SEGMENT_HEAP_SIGNATURE_OFFSET_X86,
    TRAILER_ONE_BYTE,
    TREE_SIGNATURE,
    VS_CHUNK_HEADER,
    VS_FIRST_CHUNK,
    VS_GRANULE,
    VS_PAGE_ALIGNED_USER,
    VS_SIGNATURE_XOR,
    VS_TRAILER_MASK,
    VS_UNUSED_BYTES_BIT,
    Geometry,
    SegHeapLayout,
    row_for_build,
    seg_layout,
)

M64 = 0xFFFFFFFFFFFFFFFF
MIN_VS_CHUNK = 0x20          # smallest VS chunk the builder writes (header + 0x10)
MIN_VS_FREE = 0x30           # smallest free VS chunk (header + an _RTL_BALANCED_NODE, rounded)
METADATA_NODE_STRIDE = 0x30  # _HEAP_LARGE_ALLOC_DATA (0x28) slots, 16-byte aligned

CONVENTIONS = {
    "scope": "x64 only; rows per docs/block-model.md 'Segment heap'; offsets per build row in "
             "segheap_layouts.py (heap record 'layout', with a status per field)",
    "confidence": "what the bytes rely on beyond CONFIRMED doc items (details per field in each "
                  "heap's layout.status): Win10 rows (1709-2004) use the Win11 21H2-23H2 range "
                  "descriptor, page-segment constant 0xA2E64EADA2E64EAD, LFH shift (u32)S>>12, "
                  "bitmap +0x30 2 bits/block, trailer mask 0x3FFF and the Win11 geometry: "
                  "UNCONFIRMED/INFERRED for Win10; 1709/1803 _HEAP_SEG_CONTEXT fields and 1809 "
                  "SegmentMask/PagesPerUnitShift/MaxAllocationSize/SegmentCount/FreePageRanges: "
                  "BUILDER_GUESS (no doc offset); 1803 stride 0x78, Large* fields of 1709/1803/"
                  "2004 and the Encoded-bit offsets before Win11: INFERRED; 2004 VsContext "
                  "encodings and flag: INFERRED from 23H2; 21H2-23H2 UnitOffset at +0x1f, "
                  "TreeSignature, LfhContext+0x3C/+0x3E, geometry: SINGLE; 24H2 LFH bitmap "
                  "format: SINGLE; whether Windows ever sets the Encoded bit of the large or "
                  "free-range tree: UNCONFIRMED (fixtures use both)",
    "heap_region": "the _SEGMENT_HEAP sits at the start of its own 64 KB reservation; page 0 holds "
                   "it, page 1 holds the _HEAP_LARGE_ALLOC_DATA nodes (Windows takes them from a "
                   "metadata allocator the doc does not describe); neither gets a row",
    "keys": "HeapKey = random u64, LfhKey = random u32, both from the scenario seed; "
            "RtlpHpHeapGlobals is not written (no symbols): readers recover the keys (doc 10.6)",
    "geometry": "context 0: 1 MB segments, 4 KB units, FirstDescriptorIndex 2; context 1: 16 MB "
                "segments, 64 KB units, FirstDescriptorIndex 1 (doc 10.2 formulas, Win11 SINGLE "
                "[BIN]; used for the Win10 rows too, UNCONFIRMED there)",
    "seg_context_pointers": "where the row has LfhContext/VsContext pointer offsets (2004+), "
                            "both contexts point at the heap's embedded LfhContext and VsContext",
    "page_segment": "header = ListEntry (plain LIST_ENTRY on SegContext.SegmentListHead, "
                    "creation order) + Signature (S1); SegmentCommitState/UnusedWatermark are not "
                    "written; only the 0x2000 header bytes of a context-1 segment's first 64 KB "
                    "unit are committed",
    "descriptors": "first descriptor: RangeFlags 0x03 page range, 0x0B LFH, 0x0F VS (doc 10.2 "
                   "[MPF]), 0x02 free (BUILDER_GUESS); UnitSize at +0x1f; allocated: bytes "
                   "0x00-0x17 zero then TreeSignature 0xCCDDCCDD, UnusedBytes u32 +4 (page ranges "
                   "only, else 0); free: the FreePageRanges red-black node in bytes 0x00-0x17. "
                   "Other descriptors of a range: RangeFlags = first's & ~0x02 (bit 1 clear), "
                   "UnitOffset (distance to the first) at +0x1f before 24H2, at +0x1a from 24H2 "
                   "(+0x1f left 0). CommittedPageCount, Key, ExtraPresent: 0",
    "free_ranges": "every unit not in an allocated range is in a free range (so top-level rows "
                   "tile each segment); free ranges are decommitted (MEM_RESERVE, not captured); "
                   "FreePageRanges tree keyed by (UnitSize, address), balanced, red-black coloured",
    "rb_trees": "balanced by middle split; nodes of the deepest level red when the tree is not "
                "perfect, all others black (bit 0 of ParentValue = red); plain: Min = leftmost "
                "node; encoded (doc 10.5): root ^ &tree, child ^ node, (parent ^ node) | colour, "
                "Min = (min ^ &tree) | 1 (1 when empty)",
    "page_range_alloc": "UnitSize = ceil(request / unit), UnusedBytes = UnitSize*unit - request; "
                        "ceil(request / 0x1000) pages committed from the range start, the rest of "
                        "the last unit reserved; only the first page is captured (the reader needs "
                        "only the descriptor)",
    "vs_subsegment": "subsegment bytes = its range (no bytes after the subsegment); Size = "
                     "(bytes - 0x30) >> 4, Signature = ((Size ^ 0x2BED) & 0x7FFF) | FullCommit<<15 "
                     "at the row's offset; FullCommit 1 unless a page is decommitted; ListEntry "
                     "links: on the encoded VsContext.SubsegmentList where the row has one (2004, "
                     "21H2-23H2; Blinks encoded like Flinks, BUILDER_GUESS), else 0; CommitBitmap, "
                     "CommitLock, OwnerSlotRef: 0 (semantics not in the doc)",
    "vs_chunks": "chunks tile [S+0x30, S+bytes) by UnsafeSize*16; busy chunk = max(0x20, "
                 "align16(request + 0x10)) (+0x10 more in the page-aligned variant); MemoryCost 0; "
                 "UnsafePrevSize = previous chunk's UnsafeSize (0 for the first); Allocated 1/0; "
                 "EncodedSegmentPageOffset real value = (hdr - S) >> 12, the header's page in its "
                 "subsegment (meaning not in the doc: BUILDER_GUESS); SkipDuringWalk 0; no two free "
                 "chunks touch; free chunks >= 0x30, bodies zero (no VS free-chunk tree is "
                 "written: its layout is not in the doc)",
    "vs_trailer": "unused = user area - request; 0: UnusedBytes bit clear; 1: bit set and byte 0x80 "
                  "at user_end - 1 (the u16 at user_end - 2 then has bit 15); >= 2: bit set and "
                  "u16 unused at user_end - 2 (bits 14/15 clear); user_end = hdr + chunk bytes",
    "vs_page_aligned": "where the row knows the VsContext flag (2004, 21H2-23H2: u32 +0xB0 bit 0; "
                       "24H2: byte +4 bit 0) it is set, and a chunk is the page-aligned variant "
                       "exactly when (hdr + 0x20) & 0xFFF == 0: user = hdr + 0x20, user area = "
                       "chunk - 0x20; no other busy chunk then has hdr + 0x10 or hdr + 0x20 "
                       "page-aligned. Rows without a known flag location never use the variant",
    "vs_context_s4": "BackendCtx = &SegContexts[0] ^ &VsContext; callbacks = function ^ &VsContext "
                     "^ HeapKey with functions inside ntdll's .text (24H2: the last of the six "
                     "slots is 0, an absent optional callback); 1709-1903: nothing written inside "
                     "the VsContext (layout unknown)",
    "lfh_subsegment": "range = subsegment; FBO = align16(bitmap offset + 8*ceil(BlockCount/32)); "
                      "24H2 and power-of-two BlockSize: FBO rounded up to a multiple of BlockSize "
                      "(then FBO + BlockSize*BlockCount == range bytes); 21H2-23H2: LfhContext+0x3E "
                      "bit 0 clear, so no rounding; BlockCount = the most blocks that fit; "
                      "FreeCount = free blocks; other header fields 0",
    "lfh_bitmap": "2bit rows: bit 2i allocated, 2i+1 trailer present, u64 words, bits past "
                  "BlockCount 0; 24H2: one u64 per 32 blocks, low dword allocated, high dword "
                  "trailer, bits past BlockCount in the last low dword set",
    "lfh_trailer": "unused = BlockSize - request; same 0 / 1 / >=2 forms as VS at block_end; the "
                   "builder keeps unused within the row's mask (0x3FFF, 24H2 0x3FF)",
    "large": "block 64 KB aligned; AllocatedPages = ceil(request / 0x1000); UnusedBytes = "
             "AllocatedPages*0x1000 - request in VirtualAddress bits 0-15; reservation = "
             "AllocatedPages pages rounded up to 64 KB (rest MEM_RESERVE); LargeReservedPages / "
             "LargeCommittedPages = sums of those; first page captured only; tree keyed by "
             "address; ExtraPresent / guard fields 0",
    "committed_bytes": "per context: bytes of its segments in MEM_COMMIT regions (a committed page "
                       "left out of the dump still counts, a decommitted one does not)",
    "rows": "keys: address, size, kind, busy, user_address, user_size, unused_bytes, flags (0), "
            "segment (0 for large blocks), parent (address of the container row, 0 at top level), "
            "level, is_allocation, not_decoded (null), stack_trace_entry (0), corrupt (null or "
            "the corruption kind). Rows without user data (free rows, containers, headers, "
            "overhead, unparsed) have user_address 0, user_size 0, unused_bytes 0; busy rows "
            "with user data have unused_bytes = size - user_size",
    "busy": "segment_header, vs_subsegment, seg_lfh_subsegment: busy; overhead: not busy "
            "(bookkeeping, as in lfh.py and pageheap.py); free_range, free vs_block / "
            "seg_lfh_block, unparsed: not busy",
    "damage": "a committed page absent from the dump inside a VS subsegment starts at a chunk "
              "header: rows stop there and one unparsed row (corrupt not_captured) covers the rest "
              "of the subsegment; a decommitted page lies inside a free chunk's body (the walk "
              "does not read it); a first descriptor with UnitSize 0: one unparsed row (corrupt "
              "zero_size) from its unit up to the next descriptor with RangeFlags bit 1, where the "
              "walk resumes; a looping list or tree link: every node reported once, one list_loop "
              "record at the link",
}


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


class _Pages:
    """Sparse page-granular bytes of everything the heap writes."""

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def write(self, address: int, data: bytes) -> None:
        pos, n = 0, len(data)
        while pos < n:
            a = address + pos
            page = a & ~(PAGE - 1)
            buf = self.pages.get(page)
            if buf is None:
                buf = self.pages[page] = bytearray(PAGE)
            k = min(n - pos, page + PAGE - a)
            buf[a - page:a - page + k] = data[pos:pos + k]
            pos += k

    def pack(self, address: int, form: str, *values: int) -> None:
        self.write(address, struct.pack(form, *values))

    def read(self, address: int, n: int) -> bytes:
        out = bytearray()
        pos = address
        while pos < address + n:
            page = pos & ~(PAGE - 1)
            buf = self.pages.get(page, bytes(PAGE))
            k = min(address + n - pos, page + PAGE - pos)
            out += buf[pos - page:pos - page + k]
            pos += k
        return bytes(out)

    def bytes_of(self, start: int, end: int) -> bytes:
        return self.read(start, end - start)


# ---------------------------------------------------------------------------
@dataclass
class VsChunk:
    offset: int                 # header offset in the subsegment
    size: int                   # bytes (UnsafeSize * 16)
    busy: bool
    request: int = 0
    page_aligned: bool = False
    stale: bool = False         # free chunk whose body keeps old headers and data

    @property
    def user_offset(self) -> int:
        return self.offset + (VS_PAGE_ALIGNED_USER if self.page_aligned else VS_CHUNK_HEADER)

    @property
    def unused(self) -> int:
        return self.size - (self.user_offset - self.offset) - self.request


@dataclass
class LfhBlock:
    busy: bool
    request: int = 0


@dataclass
class Range:
    """A page range: its first descriptor and the units it covers."""

    segment: "PageSegment"
    index: int
    units: int
    kind: str                     # page_range | free_range | vs_subsegment | seg_lfh_subsegment
    request: int = 0              # page_range
    capture: str = "head"         # page_range: "head" | "full"
    chunks: list[VsChunk] = field(default_factory=list)
    full_commit: bool = True
    block_size: int = 0
    first_block_offset: int = 0
    blocks: list[LfhBlock] = field(default_factory=list)
    corrupt_unit_size: bool = False

    @property
    def address(self) -> int:
        return self.segment.address + self.index * self.segment.geo.unit

    @property
    def nbytes(self) -> int:
        return self.units * self.segment.geo.unit

    @property
    def end(self) -> int:
        return self.address + self.nbytes

    @property
    def allocated(self) -> bool:
        return self.kind != "free_range"

    @property
    def flags(self) -> int:
        return {"page_range": FLAGS_PAGE_RANGE, "free_range": FLAGS_FREE,
                "vs_subsegment": FLAGS_VS, "seg_lfh_subsegment": FLAGS_LFH}[self.kind]

    @property
    def unused_bytes(self) -> int:
        return self.nbytes - self.request if self.kind == "page_range" else 0

    @property
    def descriptor(self) -> int:
        return self.segment.address + DESCRIPTOR_SIZE * self.index

    @property
    def vs_size_field(self) -> int:
        return (self.nbytes - VS_FIRST_CHUNK) >> 4


@dataclass
class LargeBlock:
    address: int
    request: int
    capture: str
    node: int = 0

    @property
    def pages(self) -> int:
        return -(-self.request // PAGE)

    @property
    def size(self) -> int:
        return self.pages * PAGE

    @property
    def unused(self) -> int:
        return self.size - self.request

    @property
    def reserve(self) -> int:
        return _align(self.size, LARGE_ALIGN)


@dataclass
class Corruption:
    address: int
    kind: str
    detail: str
    extra: dict = field(default_factory=dict)

    def record(self) -> dict:
        return dict({"address": self.address, "kind": self.kind, "detail": self.detail}, **self.extra)


# ---------------------------------------------------------------------------
class PageSegment:
    """One _HEAP_PAGE_SEGMENT of a context; ranges are placed in ascending unit order."""

    def __init__(self, heap: "SegmentHeap", ctx: int, address: int):
        self.heap = heap
        self.ctx = ctx
        self.geo: Geometry = GEOMETRY[ctx]
        if address % self.geo.segment_size:
            raise ValueError(f"a context-{ctx} segment must be {self.geo.segment_size:#x} aligned")
        self.address = address
        self.ranges: list[Range] = []
        self.next_index = self.geo.first_descriptor_index
        self.closed = False

    @property
    def size(self) -> int:
        return self.geo.segment_size

    @property
    def end(self) -> int:
        return self.address + self.size

    def _take(self, units: int) -> int:
        if self.closed:
            raise RuntimeError("segment already closed")
        if units <= 0 or units > 0xFF:
            raise ValueError("a range needs 1..255 units (UnitSize is a byte)")
        if self.next_index + units > DESCRIPTORS_PER_SEGMENT:
            raise ValueError(f"segment {self.address:#x} is full")
        i = self.next_index
        self.next_index += units
        return i

    def page_range(self, request: int, capture: str = "head") -> Range:
        """A page range handed to the caller directly ((RangeFlags & 0xC) < 8)."""
        if request <= 0 or capture not in ("head", "full"):
            raise ValueError("bad page range")
        units = -(-request // self.geo.unit)
        r = Range(self, self._take(units), units, "page_range", request=request, capture=capture)
        self.ranges.append(r)
        return r

    def free(self, units: int) -> Range:
        if self.ranges and self.ranges[-1].kind == "free_range":
            raise ValueError("two free ranges would touch (they coalesce)")
        r = Range(self, self._take(units), units, "free_range")
        self.ranges.append(r)
        return r

    def vs(self, nbytes: int, plan: Sequence[tuple]) -> Range:
        """A VS subsegment of ``nbytes`` (a multiple of the unit).  Plan items: ("b", request)
        busy, ("pa", request) busy page-aligned variant (a free chunk is inserted before it so
        that hdr + 0x20 is page-aligned), ("f", bytes) free, ("stale", bytes) free with stale
        old headers in its body.  The rest of the subsegment becomes one free chunk."""
        if self.ctx != 0:
            raise ValueError("VS subsegments come from context 0")
        if nbytes % self.geo.unit or nbytes < 0x1000:
            raise ValueError("VS subsegment bytes must be whole units")
        units = nbytes // self.geo.unit
        r = Range(self, self._take(units), units, "vs_subsegment")
        pos = VS_FIRST_CHUNK
        chunks: list[VsChunk] = []

        def add_free(size: int, stale: bool = False) -> None:
            nonlocal pos
            if chunks and not chunks[-1].busy:
                chunks[-1].size += size
                chunks[-1].stale |= stale
            else:
                chunks.append(VsChunk(pos, size, False, stale=stale))
            pos += size

        for item in plan:
            op = item[0]
            if op == "b":
                size = max(MIN_VS_CHUNK, _align(item[1] + VS_CHUNK_HEADER, VS_GRANULE))
                chunks.append(VsChunk(pos, size, True, item[1]))
                pos += size
            elif op == "pa":
                if not self.heap.page_align:
                    raise ValueError("the page-aligned variant needs a row with a known flag")
                hdr = _align(pos + VS_PAGE_ALIGNED_USER, PAGE) - VS_PAGE_ALIGNED_USER
                if 0 < hdr - pos < MIN_VS_FREE:
                    hdr += PAGE
                if hdr > pos:
                    add_free(hdr - pos)
                size = _align(item[1] + VS_PAGE_ALIGNED_USER, VS_GRANULE)
                chunks.append(VsChunk(pos, size, True, item[1], page_aligned=True))
                pos += size
            elif op in ("f", "stale"):
                if item[1] % VS_GRANULE or item[1] < MIN_VS_FREE:
                    raise ValueError("free VS chunks are >= 0x30 bytes, 16-byte multiples")
                add_free(item[1], stale=op == "stale")
            else:
                raise ValueError(f"plan item {item!r}")
            if pos > nbytes:
                raise ValueError("VS plan does not fit the subsegment")
        rest = nbytes - pos
        if rest:
            if rest < MIN_VS_FREE and (not chunks or chunks[-1].busy):
                raise ValueError(f"{rest:#x} bytes left: too small for a free chunk")
            add_free(rest)
        r.chunks = chunks
        self.ranges.append(r)
        return r

    def lfh(self, units: int, block_size: int, fill: Sequence[Optional[int]]) -> Range:
        """An LFH subsegment of ``units`` units holding as many ``block_size`` blocks as fit;
        block i is busy with request fill[i % len(fill)] (None = free)."""
        if self.ctx != 0:
            raise ValueError("LFH subsegments come from context 0")
        L = self.heap.layout
        if block_size % 16 or block_size <= 0 or block_size > 0x4000:
            raise ValueError("BlockSize must be a multiple of 16, at most 0x4000")
        nbytes = units * self.geo.unit
        pow2 = L.lfh_pow2_round and block_size & (block_size - 1) == 0

        def fbo_for(n: int) -> int:
            f = _align(L.lfh_bitmap + 8 * -(-n // 32), 16)
            return _align(f, block_size) if pow2 else f

        n = (nbytes - L.lfh_bitmap) // block_size
        while n > 0 and fbo_for(n) + n * block_size > nbytes:
            n -= 1
        if n <= 0 or n > 0xFFFF:
            raise ValueError("no LFH block fits")
        fbo = fbo_for(n)
        if pow2:
            assert fbo + n * block_size == nbytes      # doc 10.6 L2 (24H2 assertion)
        r = Range(self, self._take(units), units, "seg_lfh_subsegment", block_size=block_size,
                  first_block_offset=fbo)
        for i in range(n):
            req = fill[i % len(fill)] if fill else None
            if req is None:
                r.blocks.append(LfhBlock(False))
            else:
                unused = block_size - req
                if not 0 <= unused <= L.lfh_trailer_mask or (unused >= 2 and unused & 0xC000):
                    raise ValueError(f"request {req:#x} leaves {unused:#x} unused bytes, outside "
                                     f"the trailer mask {L.lfh_trailer_mask:#x}")
                r.blocks.append(LfhBlock(True, req))
        self.ranges.append(r)
        return r

    def close(self) -> None:
        """The units not yet used become free ranges (at most 255 units each)."""
        if self.closed:
            return
        left = DESCRIPTORS_PER_SEGMENT - self.next_index
        last = self.ranges[-1] if self.ranges else None
        if left and last is not None and last.kind == "free_range" and last.units < 0xFF:
            grow = min(left, 0xFF - last.units)       # a free range at the end absorbs the rest
            last.units += grow
            self.next_index += grow
            left -= grow
        while left > 0:
            # Two free ranges only touch when together they would exceed 255 units.
            take = min(left, 0xFF)
            self.ranges.append(Range(self, self.next_index, take, "free_range"))
            self.next_index += take
            left -= take
        self.closed = True


# ---------------------------------------------------------------------------
def rb_shape(nodes: Sequence[int]) -> tuple[int, dict[int, list[int]]]:
    """Balanced red-black shape over ``nodes`` (already in key order):
    (root, {node: [left, right, parent, red]})."""
    info: dict[int, list[int]] = {}
    depth: dict[int, int] = {}

    def build(lo: int, hi: int, parent: int, d: int) -> int:
        if lo >= hi:
            return 0
        mid = (lo + hi) // 2
        node = nodes[mid]
        info[node] = [0, 0, parent, 0]
        depth[node] = d
        info[node][0] = build(lo, mid, node, d + 1)
        info[node][1] = build(mid + 1, hi, node, d + 1)
        return node

    root = build(0, len(nodes), 0, 0)
    if nodes:
        deepest = max(depth.values())
        if len(nodes) != (1 << (deepest + 1)) - 1:
            for node, d in depth.items():
                if d == deepest:
                    info[node][3] = RB_RED
        _check_rb(root, info)
    return root, info


def _check_rb(root: int, info: dict[int, list[int]]) -> None:
    assert info[root][3] == 0, "red root"

    def black_height(n: int) -> int:
        if n == 0:
            return 1
        left, right, _p, red = info[n]
        if red:
            assert not (left and info[left][3]) and not (right and info[right][3]), "red-red"
        hl, hr = black_height(left), black_height(right)
        assert hl == hr, "black heights differ"
        return hl + (0 if red else 1)

    black_height(root)


def write_rb_tree(mem: _Pages, tree: int, nodes: Sequence[int], encoded: bool,
                  override: Optional[dict[tuple[int, str], int]] = None) -> dict:
    """An _RTL_RB_TREE at ``tree`` over nodes in key order (node +0 Left, +8 Right, +0x10
    ParentValue; tree +0 Root, +8 Encoded:1/Min), doc 10.5.  ``override`` {(node, "left"|
    "right"): target} stores a raw (looping) link instead of the real child."""
    root, info = rb_shape(nodes)
    mn = nodes[0] if nodes else 0
    if encoded:
        mem.pack(tree + RB_ROOT, "<Q", (root ^ tree) if root else 0)
        mem.pack(tree + RB_MIN, "<Q", ((mn ^ tree) | 1) if mn else 1)
    else:
        mem.pack(tree + RB_ROOT, "<Q", root)
        mem.pack(tree + RB_MIN, "<Q", mn)
    for n, (left, right, parent, red) in info.items():
        def enc(v: int) -> int:
            return (v ^ n) if (encoded and v) else v
        for name, off, v in (("left", RB_LEFT, left), ("right", RB_RIGHT, right)):
            if override and (n, name) in override:
                v = override[(n, name)]
            mem.pack(n + off, "<Q", enc(v))
        mem.pack(n + RB_PARENT, "<Q", enc(parent) | red)
    return {"address": tree, "encoded": encoded, "root": root, "min": mn,
            "nodes": list(nodes),
            "shape": {n: {"left": v[0], "right": v[1], "parent": v[2], "red": bool(v[3])}
                      for n, v in info.items()}}


# ---------------------------------------------------------------------------
class SegmentHeap:
    """A segment heap (_SEGMENT_HEAP, two _HEAP_SEG_CONTEXTs, page segments, large blocks)."""

    def __init__(self, builder: DumpBuilder, address: int, *, build: int, seed: int,
                 ntdll: tuple[int, int] | None = None, fill_tag: int = 0xD1,
                 large_encoded: bool = False, free_tree_encoded: bool = False,
                 page_align: Optional[bool] = None, memory_list: str = "mem64",
                 process_heaps_index: int = 1):
        if builder.arch != "x64":
            raise ValueError("SegmentHeap writes x64 heaps only (x86 offsets are unknown, doc 10.1)")
        row = row_for_build(build)
        if row is None:
            raise ValueError(f"build {build} has no segment-heap layout row")
        if address % LARGE_ALIGN:
            raise ValueError("the heap starts a 64 KB aligned reservation")
        self.b = builder
        self.address = address
        self.build = build
        self.layout: SegHeapLayout = seg_layout(row)
        self.seed = seed
        rng = random.Random(seed)
        self.heap_key = rng.getrandbits(64) or 1
        self.lfh_key = rng.getrandbits(32) or 1
        self.ntdll = ntdll
        self.fill_tag = fill_tag & 0xFF
        self.large_encoded = large_encoded
        self.free_tree_encoded = free_tree_encoded
        known_flag = self.layout.vs.page_align_flag is not None
        self.page_align = known_flag if page_align is None else (page_align and known_flag)
        self.memory_list = memory_list
        self.process_heaps_index = process_heaps_index
        self.segments: list[list[PageSegment]] = [[], []]
        self.large: list[LargeBlock] = []
        self.corruptions: list[Corruption] = []
        self._segment_loop: Optional[tuple[int, int, int]] = None
        self._large_loop: Optional[tuple[int, str, int]] = None
        self.dropped: list[int] = []       # committed, not captured
        self.decommitted: list[int] = []   # inside a free VS chunk
        self.metadata = address + PAGE
        self.finished = False
        self._callbacks: list[int] = []
        self._trees: dict[str, Any] = {}
        self.mem = _Pages()

    # ------------------------------------------------------------ addresses
    def ctx_address(self, i: int) -> int:
        L = self.layout
        return self.address + L.seg_contexts + i * L.seg_context_stride

    @property
    def vs_context(self) -> int:
        return self.address + self.layout.vs_context

    @property
    def lfh_context(self) -> int:
        return self.address + self.layout.lfh_context

    def signature_of(self, seg: PageSegment) -> int:
        return self.signature_at(seg.address, seg.ctx)

    def signature_at(self, address: int, ctx: int) -> int:
        """doc 10.2 / 10.6 S1: seg ^ ctx ^ HeapKey ^ C."""
        return address ^ self.ctx_address(ctx) ^ self.heap_key ^ self.layout.page_segment_c

    def _ctx_segment_addresses(self, ctx: int) -> list[int]:
        return [s.address for s in self.segments[ctx]]

    def _vs_subsegment_addresses(self) -> list[int]:
        return [r.address for r in self._vs_subsegments()]

    def _spans(self) -> list[tuple[int, int]]:
        spans = [(self.address, self.address + LARGE_ALIGN)]
        spans += [(s.address, s.end) for s in self.all_segments()]
        spans += [(lb.address, lb.address + lb.reserve) for lb in self.large]
        return spans

    # ------------------------------------------------------------ inputs
    def add_segment(self, ctx: int, address: int) -> PageSegment:
        if self.finished:
            raise RuntimeError("heap already written")
        s = PageSegment(self, ctx, address)
        self.segments[ctx].append(s)
        return s

    def add_large(self, address: int, request: int, capture: str = "head") -> LargeBlock:
        if address % LARGE_ALIGN:
            raise ValueError("large blocks are 64 KB aligned")
        if request <= GEOMETRY[1].max_allocation_size:
            raise ValueError("a large allocation is larger than context 1's MaxAllocationSize")
        lb = LargeBlock(address, request, capture)
        self.large.append(lb)
        return lb

    # ------------------------------------------------------------ damage
    def loop_segment_list(self, ctx: int, from_index: int, to_index: int) -> None:
        """Flink of segment ``from`` points back at segment ``to`` (to <= from)."""
        if to_index > from_index:
            raise ValueError("only backward loops (every segment stays reachable)")
        self._segment_loop = (ctx, from_index, to_index)

    def loop_large_tree(self, node_index: int, link: str, to_index: int) -> None:
        """A null child link (``link`` "left"/"right") of large node ``node_index`` (address
        order) points at node ``to_index`` instead."""
        self._large_loop = (node_index, link, to_index)

    def corrupt_unit_size(self, r: Range) -> None:
        """Zero the UnitSize byte of an allocated range's first descriptor."""
        if not r.allocated:
            raise ValueError("corrupt an allocated range")
        r.corrupt_unit_size = True

    def drop_page(self, address: int) -> None:
        """A committed page left out of the dump (inside a VS subsegment, at a chunk header)."""
        if address % PAGE:
            raise ValueError("page aligned")
        self.dropped.append(address)

    def decommit_page(self, address: int) -> None:
        """Decommit a page lying inside a free VS chunk's body (MEM_RESERVE, FullCommit 0)."""
        if address % PAGE:
            raise ValueError("page aligned")
        self.decommitted.append(address)

    # ------------------------------------------------------------ helpers
    def all_segments(self) -> list[PageSegment]:
        return self.segments[0] + self.segments[1]

    def _range_at(self, address: int) -> Optional[Range]:
        for s in self.all_segments():
            if s.address <= address < s.end:
                for r in s.ranges:
                    if r.address <= address < r.end:
                        return r
        return None

    def _committed_pages(self, r: Range) -> int:
        if r.kind == "free_range":
            return 0
        if r.kind == "page_range":
            return -(-r.request // PAGE)
        return r.nbytes // PAGE

    def _vs_subsegments(self) -> list[Range]:
        return [r for s in self.segments[0] for r in s.ranges if r.kind == "vs_subsegment"]

    def _lfh_subsegments(self) -> list[Range]:
        return [r for s in self.segments[0] for r in s.ranges if r.kind == "seg_lfh_subsegment"]

    # ------------------------------------------------------------ checks
    def _validate(self) -> None:
        spans = sorted(self._spans())
        for (a0, a1), (b0, _b1) in zip(spans, spans[1:]):
            assert a1 <= b0, f"segment-heap reservations overlap at {b0:#x}"
        for s in self.all_segments():
            pos = s.geo.first_descriptor_index
            for r in s.ranges:
                assert r.index == pos and r.units >= 1
                pos += r.units
            assert pos == DESCRIPTORS_PER_SEGMENT, "ranges must tile the segment"
            for a, b in zip(s.ranges, s.ranges[1:]):
                assert not (a.kind == b.kind == "free_range" and a.units + b.units <= 0xFF)
        for r in self._vs_subsegments():
            pos = VS_FIRST_CHUNK
            for i, c in enumerate(r.chunks):
                assert c.offset == pos and c.size % VS_GRANULE == 0 and c.size >= MIN_VS_CHUNK
                assert c.size >> 4 <= 0xFFFF
                if not c.busy:
                    assert c.size >= MIN_VS_FREE
                    assert i == 0 or r.chunks[i - 1].busy, "free chunks touch"
                else:
                    assert c.unused >= 0 and c.unused <= VS_TRAILER_MASK
                    hdr = r.address + c.offset
                    if self.page_align:
                        aligned = (hdr + VS_PAGE_ALIGNED_USER) % PAGE == 0
                        assert aligned == c.page_aligned, f"ambiguous VS chunk at {hdr:#x}"
                        assert (hdr + VS_CHUNK_HEADER) % PAGE != 0, f"ambiguous VS chunk at {hdr:#x}"
                    else:
                        assert not c.page_aligned
                pos += c.size
            assert pos == r.nbytes
        for page in self.decommitted:
            r = self._range_at(page)
            assert r is not None and r.kind == "vs_subsegment", "decommit inside a VS subsegment"
            c = next(c for c in r.chunks if r.address + c.offset <= page < r.address + c.offset + c.size)
            assert not c.busy and r.address + c.offset + MIN_VS_FREE <= page
            assert page + PAGE <= r.address + c.offset + c.size, "decommitted page in a free body"
            r.full_commit = False
        for page in self.dropped:
            r = self._range_at(page)
            assert r is not None and r.kind == "vs_subsegment", "dropped page inside a VS subsegment"
            assert any(r.address + c.offset == page for c in r.chunks), "dropped page at a chunk"
            assert page > r.address, "the subsegment header must stay readable"

    # ------------------------------------------------------------ writing
    def finish(self) -> None:
        if self.finished:
            raise RuntimeError("finish() called twice")
        for s in self.all_segments():
            s.close()
        self.large.sort(key=lambda lb: lb.address)
        self._validate()
        self.finished = True
        mem = self.mem
        L = self.layout
        for i, lb in enumerate(self.large):
            lb.node = self.metadata + i * METADATA_NODE_STRIDE
        assert len(self.large) * METADATA_NODE_STRIDE <= PAGE

        # _SEGMENT_HEAP
        h = self.address
        mem.pack(h + L.signature, "<I", SEGMENT_HEAP_SIGNATURE)
        override = None
        if self._large_loop is not None:
            i, link, j = self._large_loop
            override = {(self.large[i].node, link): self.large[j].node}
        nodes = [lb.node for lb in self.large]
        self._trees["large"] = write_rb_tree(mem, h + L.large_tree, nodes, self.large_encoded,
                                             override)
        if override is not None:
            (n, link), t = next(iter(override.items()))
            assert self._trees["large"]["shape"][n][link] == 0, "loop must replace a null link"
            self.corruptions.append(Corruption(
                n + (LARGE_NODE_LEFT if link == "left" else LARGE_NODE_RIGHT), "list_loop",
                f"LargeAllocMetadata: {link} child of node {n:#x} points back at node {t:#x} "
                f"(should be null)", {"list": "LargeAllocMetadata", "target": t}))
        assert L.large_tree_encoded == L.large_tree + 8
        mem.pack(h + L.large_reserved_pages, "<Q", sum(lb.reserve for lb in self.large) // PAGE)
        mem.pack(h + L.large_committed_pages, "<Q", sum(lb.pages for lb in self.large))
        for lb in self.large:
            mem.pack(lb.node + LARGE_VIRTUAL_ADDRESS, "<Q", lb.address | lb.unused)
            mem.pack(lb.node + LARGE_BITFIELD, "<Q", lb.pages << LARGE_ALLOCATED_PAGES_SHIFT)
            n = lb.size if lb.capture == "full" else PAGE
            mem.write(lb.address, pattern(lb.address, min(n, lb.request), self.fill_tag ^ 0x40))

        # _HEAP_SEG_CONTEXTs
        C = L.ctx
        for i in (0, 1):
            ca, geo = self.ctx_address(i), GEOMETRY[i]
            mem.pack(ca + C.segment_mask, "<Q", geo.segment_mask)
            mem.pack(ca + C.unit_shift, "<B", geo.unit_shift)
            mem.pack(ca + C.pages_per_unit_shift, "<B", geo.pages_per_unit_shift)
            mem.pack(ca + C.first_descriptor_index, "<B", geo.first_descriptor_index)
            mem.pack(ca + C.max_allocation_size, "<I", geo.max_allocation_size)
            if C.lfh_context is not None:
                mem.pack(ca + C.lfh_context, "<Q", self.lfh_context)
            if C.vs_context is not None:
                mem.pack(ca + C.vs_context, "<Q", self.vs_context)
            mem.pack(ca + C.heap, "<Q", h)
            mem.pack(ca + C.segment_count, "<Q", len(self._ctx_segment_addresses(i)))
            self._write_segment_list(i)
            free = [r for s in self.segments[i] for r in s.ranges if r.kind == "free_range"]
            free.sort(key=lambda r: (r.units, r.address))
            self._trees[f"free{i}"] = write_rb_tree(mem, ca + C.free_page_ranges,
                                                    [r.descriptor for r in free],
                                                    self.free_tree_encoded)

        # Page segments and their ranges.
        for s in self.all_segments():
            mem.pack(s.address + PAGE_SEGMENT_SIGNATURE, "<Q", self.signature_of(s))
            for r in s.ranges:
                self._write_descriptors(r)
                if r.kind == "page_range":
                    n = r.nbytes if r.capture == "full" else PAGE
                    mem.write(r.address, pattern(r.address, min(n, r.request), self.fill_tag ^ 0x20))
                elif r.kind == "vs_subsegment":
                    self._write_vs(r)
                elif r.kind == "seg_lfh_subsegment":
                    self._write_lfh(r)

        self._write_vs_context()
        self._write_lfh_context()
        self._emit()

    def _write_segment_list(self, i: int) -> None:
        mem, head = self.mem, self.ctx_address(i) + self.layout.ctx.segment_list_head
        nodes = [a + PAGE_SEGMENT_LIST_ENTRY for a in self._ctx_segment_addresses(i)]
        chain = [head] + nodes + [head]
        for a, b in zip(chain, chain[1:]):
            mem.pack(a, "<Q", b)
            mem.pack(b + 8, "<Q", a)
        if self._segment_loop is not None and self._segment_loop[0] == i:
            _, f, t = self._segment_loop
            a, tgt = nodes[f], nodes[t]
            mem.pack(a, "<Q", tgt)
            self.corruptions.append(Corruption(
                a, "list_loop",
                f"SegContexts[{i}].SegmentListHead: Flink of page segment {a:#x} points back at "
                f"segment {tgt:#x} (not at the list head)",
                {"list": f"SegContexts[{i}].SegmentListHead", "target": tgt}))

    def _write_descriptors(self, r: Range) -> None:
        mem, L = self.mem, self.layout
        d = r.descriptor
        flags = r.flags
        if r.allocated:
            mem.pack(d + L.desc_tree_signature, "<I", TREE_SIGNATURE)
            mem.pack(d + L.desc_unused_bytes, "<I", r.unused_bytes)
        mem.pack(d + L.desc_range_flags, "<B", flags)
        mem.pack(d + L.desc_unit_size, "<B", 0 if r.corrupt_unit_size else r.units)
        rest = flags & ~RANGE_FIRST
        for k in range(1, r.units):
            dk = d + k * DESCRIPTOR_SIZE
            mem.pack(dk + L.desc_range_flags, "<B", rest)
            mem.pack(dk + L.desc_unit_offset, "<B", k)
        if r.corrupt_unit_size:
            nxt = r.index + r.units
            self.corruptions.append(Corruption(
                d, "zero_size",
                f"range descriptor {r.index} of page segment {r.segment.address:#x}: first "
                f"descriptor (RangeFlags {flags:#04x}, TreeSignature {TREE_SIGNATURE:#x}) with "
                f"UnitSize 0; descriptors {r.index + 1}..{nxt - 1} are not first descriptors, the "
                f"walk resumes at descriptor {nxt}",
                {"segment": r.segment.address, "descriptor_index": r.index,
                 "resume_index": nxt, "resume_address": r.end}))

    def _vs_header(self, hdr: int, c: VsChunk, prev_units: int, sub: int) -> None:
        key = self.heap_key
        sizes = ((c.size >> 4) << 16) | (prev_units << 32) | ((1 if c.busy else 0) << 48)
        spo = ((hdr - sub) >> 12) & 0xFF
        enc_spo = spo ^ (hdr & 0xFF) ^ (key & 0xFF)
        bits = enc_spo | (VS_UNUSED_BYTES_BIT if c.busy and c.unused else 0)
        self.mem.pack(hdr, "<QII", sizes ^ hdr ^ key, bits, 0)

    def _trailer(self, end: int, unused: int, mask: int) -> None:
        if unused == 0:
            return
        if unused == 1:
            self.mem.pack(end - 1, "<B", TRAILER_ONE_BYTE >> 8)
        else:
            assert unused <= mask
            self.mem.pack(end - 2, "<H", unused)

    def _write_vs(self, r: Range) -> None:
        mem, L, S = self.mem, self.layout, r.address
        size = r.vs_size_field
        mem.pack(S + L.vs_size, "<H", size)
        mem.pack(S + L.vs_signature, "<H",
                 ((size ^ VS_SIGNATURE_XOR) & 0x7FFF) | (int(r.full_commit) << 15))
        prev = 0
        for c in r.chunks:
            hdr = S + c.offset
            self._vs_header(hdr, c, prev, S)
            prev = c.size >> 4
            if c.busy:
                user = S + c.user_offset
                mem.write(user, pattern(user, c.request, self.fill_tag))
                self._trailer(hdr + c.size, c.unused, VS_TRAILER_MASK)
            elif c.stale:
                # Old chunks that were coalesced into this free one: their encoded headers
                # (valid for their old address) and user bytes are still there.
                # (Bytes that land on a decommitted page are simply never captured.)
                at = hdr + 0x30
                old_prev = 0
                while at + 0x60 <= hdr + c.size:
                    old = VsChunk(at - S, 0x50, True, 0x3C)
                    self._vs_header(at, old, old_prev, S)
                    mem.write(at + 0x10, pattern(at + 0x10, 0x3C, 0xEE))
                    old_prev = 0x5
                    at += 0x50

    def _write_lfh(self, r: Range) -> None:
        mem, L, S = self.mem, self.layout, r.address
        n, bs, fbo = len(r.blocks), r.block_size, r.first_block_offset
        mem.pack(S + L.lfh_free_count, "<H", sum(1 for b in r.blocks if not b.busy))
        mem.pack(S + L.lfh_block_count, "<H", n)
        mem.pack(S + L.lfh_block_offsets, "<I", self.lfh_encoded_offsets(S, fbo, bs))
        words = [0] * -(-n // 32)            # both formats: one u64 per 32 blocks (doc 10.6.7)
        for i, blk in enumerate(r.blocks):
            trailer = blk.busy and blk.request < bs
            if L.lfh_bitmap_format == "2bit":
                w, bit = divmod(2 * i, 64)
                words[w] |= (int(blk.busy) << bit) | (int(trailer) << (bit + 1))
            else:
                w, j = divmod(i, 32)
                words[w] |= (int(blk.busy) << j) | (int(trailer) << (32 + j))
        if L.lfh_bitmap_format == "u64x32" and n % 32:
            words[-1] |= (0xFFFFFFFF << (n % 32)) & 0xFFFFFFFF     # bits past BlockCount pre-set
        assert L.lfh_bitmap + 8 * len(words) <= fbo
        mem.write(S + L.lfh_bitmap, struct.pack(f"<{len(words)}Q", *words))
        for i, blk in enumerate(r.blocks):
            at = S + fbo + i * bs
            if blk.busy:
                mem.write(at, pattern(at, blk.request, self.fill_tag ^ 0x10))
                self._trailer(at + bs, bs - blk.request, L.lfh_trailer_mask)

    def lfh_encoded_offsets(self, S: int, fbo: int, bs: int) -> int:
        """doc 10.4 / 10.6 L1: (FBO << 16 | BS) ^ (u32)LfhKey ^ shift(S)."""
        if self.layout.lfh_shift_form == "u32_then_shift":
            shift = (S & 0xFFFFFFFF) >> 12
        else:
            shift = (S >> 12) & 0xFFFFFFFF
        return ((fbo << 16) | bs) ^ (self.lfh_key & 0xFFFFFFFF) ^ shift

    def _callback_functions(self) -> list[int]:
        V = self.layout.vs
        if not V.known or self.ntdll is None:
            return []
        base, size = self.ntdll
        # Inside ntdll's image; the small stand-in ntdll of tests/pdb gets offsets that fit it.
        first = 0x2F1A0 if size > 0x40000 else 0x1000
        step = 0x1C4 if size > 0x40000 else 0x40
        out = [base + first + step * i for i in range(len(V.callbacks))]
        if len(out) == 6:
            out[-1] = 0                       # an absent optional callback stays 0
        assert all(base <= f < base + size for f in out if f)
        return out

    def _write_vs_context(self) -> None:
        V, mem, vc = self.layout.vs, self.mem, self.vs_context
        if not V.known:
            return
        if V.backend_ctx is not None:
            mem.pack(vc + V.backend_ctx, "<Q", self.ctx_address(0) ^ vc)
        self._callbacks = self._callback_functions()
        for off, fn in zip(V.callbacks, self._callbacks):
            mem.pack(vc + off, "<Q", (fn ^ vc ^ self.heap_key) if fn else 0)
        if V.page_align_flag is not None and self.page_align:
            mem.pack(vc + V.page_align_flag, "<I" if V.page_align_flag_width == 4 else "<B", 1)
        if V.subsegment_list is not None:
            head = vc + V.subsegment_list
            nodes = self._vs_subsegment_addresses()
            chain = [head] + nodes + [head]
            for a, b in zip(chain, chain[1:]):
                mem.pack(a, "<Q", b ^ a)
                mem.pack(b + 8, "<Q", a ^ b)

    def _write_lfh_context(self) -> None:
        L, lc = self.layout, self.lfh_context
        if L.lfh_ctx_max_block_size is not None:
            self.mem.pack(lc + L.lfh_ctx_max_block_size, "<H", 0x4000)
        if L.lfh_ctx_withhold is not None:
            self.mem.pack(lc + L.lfh_ctx_withhold, "<B", 0)

    # ------------------------------------------------------------ memory and regions
    def _page_states(self) -> list[tuple[int, int, dict[int, bool], bool]]:
        """(reservation base, size, {committed page: captured}, is_segment) per reservation."""
        out = []
        heap_pages = {self.address: True, self.metadata: True}
        out.append((self.address, LARGE_ALIGN, heap_pages, False))
        dropped, decommitted = set(self.dropped), set(self.decommitted)
        for s in self.all_segments():
            pages: dict[int, bool] = {}
            for p in range(s.address, s.address + PAGE_SEGMENT_HEADER_BYTES, PAGE):
                pages[p] = True
            for r in s.ranges:
                n = self._committed_pages(r)
                for k in range(n):
                    p = r.address + k * PAGE
                    if p in decommitted:
                        continue
                    if r.kind == "page_range":
                        cap = r.capture == "full" or k == 0
                    else:
                        cap = p not in dropped
                    pages[p] = cap
            out.append((s.address, s.size, pages, True))
        for lb in self.large:
            pages = {lb.address + k * PAGE: (lb.capture == "full" or k == 0) for k in range(lb.pages)}
            out.append((lb.address, lb.reserve, pages, False))
        return out

    def _emit(self) -> None:
        rw = dict(type=fmt.MEM_PRIVATE, allocation_protect=fmt.PAGE_READWRITE)
        self._committed_by_segment: dict[int, int] = {}
        for base, size, pages, is_seg in self._page_states():
            if is_seg:
                self._committed_by_segment[base] = len(pages) * PAGE
            # Regions: runs of committed / reserved pages.
            pos, end = base, base + size
            while pos < end:
                state = pos in pages
                q = pos
                while q < end and (q in pages) == state:
                    q += PAGE
                if state:
                    self.b.add_region(pos, q - pos, state=fmt.MEM_COMMIT, protect=fmt.PAGE_READWRITE,
                                      allocation_base=base, **rw)
                else:
                    self.b.add_region(pos, q - pos, state=fmt.MEM_RESERVE, protect=0,
                                      allocation_base=base, **rw)
                pos = q
            # Captured bytes: runs of captured pages.
            cap = sorted(p for p, c in pages.items() if c)
            i = 0
            while i < len(cap):
                j = i
                while j + 1 < len(cap) and cap[j + 1] == cap[j] + PAGE:
                    j += 1
                self.b.add_memory(cap[i], self.mem.bytes_of(cap[i], cap[j] + PAGE),
                                  list=self.memory_list)
                i = j + 1
        for page in self.dropped:
            r = self._range_at(page)
            assert r is not None
            self.corruptions.append(Corruption(
                page, "not_captured",
                f"committed page of VS subsegment {r.address:#x} (page segment "
                f"{r.segment.address:#x}) absent from the dump; it holds the chunk header at "
                f"{page:#x}", {"segment": r.segment.address, "subsegment": r.address,
                               "size": PAGE}))

    # ------------------------------------------------------------ expected
    def _captured(self, address: int, n: int) -> bool:
        page = address & ~(PAGE - 1)
        while page < address + n:
            if page in self.dropped:
                return False
            page += PAGE
        return True

    @staticmethod
    def row(kind: str, address: int, size: int, *, busy: bool, segment: int, parent: int = 0,
            level: int = 0, user_address: int = 0, user_size: int = 0, unused_bytes: int = 0,
            is_allocation: bool = False, corrupt: Optional[str] = None) -> dict:
        return {"address": address, "size": size, "kind": kind, "busy": busy,
                "user_address": user_address, "user_size": user_size,
                "unused_bytes": unused_bytes, "flags": 0, "segment": segment, "parent": parent,
                "level": level, "is_allocation": is_allocation, "not_decoded": None,
                "stack_trace_entry": 0, "corrupt": corrupt}

    def _range_rows(self, r: Range) -> list[dict]:
        R = self.row
        seg = r.segment.address
        if r.corrupt_unit_size:
            return [R("unparsed", r.address, r.nbytes, busy=False, segment=seg, corrupt="zero_size")]
        if r.kind == "free_range":
            return [R("free_range", r.address, r.nbytes, busy=False, segment=seg)]
        if r.kind == "page_range":
            return [R("page_range", r.address, r.nbytes, busy=True, segment=seg,
                      user_address=r.address, user_size=r.request, unused_bytes=r.unused_bytes,
                      is_allocation=True)]
        S = r.address
        out = [R(r.kind, S, r.nbytes, busy=True, segment=seg)]
        kid = dict(segment=seg, parent=S, level=1)
        if r.kind == "vs_subsegment":
            out.append(R("overhead", S, VS_FIRST_CHUNK, busy=False, **kid))
            for c in r.chunks:
                hdr = S + c.offset
                if not self._captured(hdr, VS_CHUNK_HEADER):
                    out.append(R("unparsed", hdr, r.end - hdr, busy=False, corrupt="not_captured",
                                 **kid))
                    break
                if c.busy:
                    assert c.unused < 2 or self._captured(hdr + c.size - 2, 2)
                    out.append(R("vs_block", hdr, c.size, busy=True, user_address=S + c.user_offset,
                                 user_size=c.request, unused_bytes=c.size - c.request,
                                 is_allocation=True, **kid))
                else:
                    out.append(R("vs_block", hdr, c.size, busy=False, **kid))
            return out
        fbo, bs = r.first_block_offset, r.block_size
        out.append(R("overhead", S, fbo, busy=False, **kid))
        for i, blk in enumerate(r.blocks):
            at = S + fbo + i * bs
            if blk.busy:
                out.append(R("seg_lfh_block", at, bs, busy=True, user_address=at,
                             user_size=blk.request, unused_bytes=bs - blk.request,
                             is_allocation=True, **kid))
            else:
                out.append(R("seg_lfh_block", at, bs, busy=False, **kid))
        tail = S + fbo + len(r.blocks) * bs
        if tail < r.end:
            out.append(R("overhead", tail, r.end - tail, busy=False, **kid))
        return out

    def rows(self) -> list[dict]:
        out = []
        for ctx in (0, 1):
            for s in self.segments[ctx]:
                fdi = s.geo.first_descriptor_index
                out.append(self.row("segment_header", s.address, fdi * s.geo.unit, busy=True,
                                    segment=s.address))
                for r in s.ranges:
                    out += self._range_rows(r)
        for lb in self.large:
            out.append(self.row("large_block", lb.address, lb.size, busy=True, segment=0,
                                user_address=lb.address, user_size=lb.request,
                                unused_bytes=lb.unused, is_allocation=True))
        return out

    def summary(self, rows: list[dict]) -> dict:
        def stat(kind: str) -> dict:
            busy = [r for r in rows if r["kind"] == kind and r["is_allocation"]]
            free = [r for r in rows if r["kind"] == kind and not r["busy"]]
            return {"count": len(busy), "user_bytes": sum(r["user_size"] for r in busy),
                    "free_count": len(free), "free_bytes": sum(r["size"] for r in free)}

        ctxs = []
        for i in (0, 1):
            segs = self.segments[i]
            ctxs.append({"index": i, "segments": len(segs),
                         "reserved_bytes": sum(s.size for s in segs),
                         "committed_bytes": sum(self._committed_by_segment[s.address] for s in segs)})
        free_ranges = [r for r in rows if r["kind"] == "free_range"]
        large_reserved = sum(lb.reserve for lb in self.large)
        large_committed = sum(lb.size for lb in self.large)
        return {
            "seg_contexts": ctxs,
            "vs": dict(stat("vs_block"), subsegments=sum(1 for r in rows if r["kind"] == "vs_subsegment")),
            "lfh": dict(stat("seg_lfh_block"),
                        subsegments=sum(1 for r in rows if r["kind"] == "seg_lfh_subsegment")),
            "page_range": {"count": sum(1 for r in rows if r["kind"] == "page_range"),
                           "user_bytes": sum(r["user_size"] for r in rows if r["kind"] == "page_range")},
            "large": {"count": len(self.large), "user_bytes": sum(lb.request for lb in self.large),
                      "reserved_bytes": large_reserved, "committed_bytes": large_committed},
            "free_ranges": {"count": len(free_ranges), "bytes": sum(r["size"] for r in free_ranges)},
            "unparsed": {"count": sum(1 for r in rows if r["kind"] == "unparsed"),
                         "bytes": sum(r["size"] for r in rows if r["kind"] == "unparsed")},
            "reserved_bytes": sum(c["reserved_bytes"] for c in ctxs) + large_reserved,
            "committed_bytes": sum(c["committed_bytes"] for c in ctxs) + large_committed,
            "allocation_count": sum(1 for r in rows if r["is_allocation"]),
            "busy_user_bytes_all": sum(r["user_size"] for r in rows if r["is_allocation"]),
        }

    def expected(self) -> dict:
        if not self.finished:
            raise RuntimeError("call finish() first")
        L = self.layout
        rows = self.rows()
        seg_ctx = []
        for i in (0, 1):
            geo, ca = GEOMETRY[i], self.ctx_address(i)
            tree = self._trees[f"free{i}"]
            segs = self.segments[i]
            seg_ctx.append({
                "index": i, "address": ca, "segment_size": geo.segment_size, "unit_size": geo.unit,
                "segment_mask": geo.segment_mask, "unit_shift": geo.unit_shift,
                "pages_per_unit_shift": geo.pages_per_unit_shift,
                "first_descriptor_index": geo.first_descriptor_index,
                "max_allocation_size": geo.max_allocation_size,
                "heap": self.address,
                "segment_list_head": ca + L.ctx.segment_list_head,
                "segments": [s.address for s in segs], "segment_count": len(segs),
                "segment_signatures": [self.signature_of(s) for s in segs],
                "reserved": sum(s.size for s in segs),
                "committed": sum(self._committed_by_segment[s.address] for s in segs),
                "free_page_ranges": {"address": tree["address"], "encoded": tree["encoded"],
                                     "root": tree["root"], "min": tree["min"],
                                     "descriptors": tree["nodes"]},
            })
        V = L.vs
        vs_subs = self._vs_subsegments()
        vs_ctx: dict[str, Any] = {
            "address": self.vs_context, "layout_known": V.known,
            "page_align_flag": ({"offset": V.page_align_flag, "width": V.page_align_flag_width,
                                 "bit": 0, "set": self.page_align}
                                if V.page_align_flag is not None else None),
            "backend_ctx": ({"offset": V.backend_ctx, "stored": self.ctx_address(0) ^ self.vs_context,
                             "decoded": self.ctx_address(0)} if V.backend_ctx is not None else None),
            "callbacks": [{"offset": off, "function": fn,
                           "stored": (fn ^ self.vs_context ^ self.heap_key) if fn else 0}
                          for off, fn in zip(V.callbacks, self._callbacks)],
            "subsegment_list": ({"head": self.vs_context + V.subsegment_list, "encoded": True,
                                 "entries": [r.address for r in vs_subs]}
                                if V.subsegment_list is not None else None),
            "subsegments": [{"address": r.address, "bytes": r.nbytes, "size_field": r.vs_size_field,
                             "signature": ((r.vs_size_field ^ VS_SIGNATURE_XOR) & 0x7FFF)
                             | (int(r.full_commit) << 15),
                             "full_commit": r.full_commit, "chunks": len(r.chunks)}
                            for r in vs_subs],
        }
        lfh_fields = {}
        if L.lfh_ctx_max_block_size is not None:
            lfh_fields["max_block_size"] = {"offset": L.lfh_ctx_max_block_size, "value": 0x4000}
        if L.lfh_ctx_withhold is not None:
            lfh_fields["withhold_page_crossing_blocks"] = {"offset": L.lfh_ctx_withhold, "value": 0}
        lfh_ctx = {
            "address": self.lfh_context, "fields": lfh_fields,
            "subsegments": [{"address": r.address, "bytes": r.nbytes, "block_size": r.block_size,
                             "first_block_offset": r.first_block_offset,
                             "block_count": len(r.blocks),
                             "free_count": sum(1 for b in r.blocks if not b.busy),
                             "encoded_offsets": self.lfh_encoded_offsets(r.address,
                                                                         r.first_block_offset,
                                                                         r.block_size)}
                            for r in self._lfh_subsegments()],
        }
        lt = self._trees["large"]
        return {
            "address": self.address, "type": "segment", "arch": "x64", "build": self.build,
            "build_row": L.row, "walked": True, "status": "walked", "not_walked_reason": None,
            "signature": SEGMENT_HEAP_SIGNATURE, "signature_offset": L.signature,
            "heap_key": self.heap_key, "lfh_key": self.lfh_key & 0xFFFFFFFF,
            "page_segment_constant": L.page_segment_c,
            "layout": L.table(),
            "seg_contexts": seg_ctx,
            "vs_context": vs_ctx,
            "lfh_context": lfh_ctx,
            "large_alloc_metadata": {"address": lt["address"], "encoded": lt["encoded"],
                                     "root": lt["root"], "min": lt["min"],
                                     "large_reserved_pages": sum(lb.reserve for lb in self.large) // PAGE,
                                     "large_committed_pages": sum(lb.pages for lb in self.large)},
            "large_blocks": [{"node": lb.node, "address": lb.address,
                              "virtual_address": lb.address | lb.unused, "size": lb.size,
                              "allocated_pages": lb.pages, "unused_bytes": lb.unused,
                              "user_size": lb.request, "reserved": lb.reserve}
                             for lb in self.large],
            "rows": rows,
            "corruption": [c.record() for c in self.corruptions],
            "summary": self.summary(rows),
        }


# ---------------------------------------------------------------------------
def _stub_region(builder: DumpBuilder, address: int, data: bytes, memory_list: str) -> None:
    builder.add_memory(address, data, list=memory_list)
    builder.add_region(address, len(data), state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                       protect=fmt.PAGE_READWRITE, allocation_base=address,
                       allocation_protect=fmt.PAGE_READWRITE)


def write_segment_heap_stub_x86(builder: DumpBuilder, address: int, *,
                                memory_list: str = "mem64") -> dict:
    """One committed page with 0xDDEEDDEE at +0x08 (doc 10 / 12.1.3, x86): nothing else of an
    x86 _SEGMENT_HEAP is written because no build's x86 offsets are known (doc 10.1, 13)."""
    buf = bytearray(PAGE)
    struct.pack_into("<I", buf, SEGMENT_HEAP_SIGNATURE_OFFSET_X86, SEGMENT_HEAP_SIGNATURE)
    _stub_region(builder, address, bytes(buf), memory_list)
    return {"address": address, "type": "segment", "arch": "x86", "build": builder.os_version[2],
            "build_row": None, "walked": False, "status": "not_walked",
            "reason_code": "x86_not_supported",
            "not_walked_reason": "not supported for x86: the x86 _SEGMENT_HEAP offsets are not known "
                                 "for any build (windows-heap-layouts.md 10.1, 13)",
            "signature": SEGMENT_HEAP_SIGNATURE, "signature_offset": SEGMENT_HEAP_SIGNATURE_OFFSET_X86,
            "rows": [], "corruption": []}


def write_segment_heap_1607(builder: DumpBuilder, address: int, segment: int, *, seed: int,
                            memory_list: str = "mem64") -> dict:
    """A Windows 10 1607-form segment heap (doc 10.1 first column, [R2W]): Signature, an empty
    LargeAllocMetadata tree, the single SegmentListHead at +0x60 holding one 1 MB page segment
    signed in the 'older form' X ^ RtlpHeapKey ^ (seg >> 20) ^ C with X = the heap (doc 10.1:
    'probably the heap; UNCONFIRMED') and C = 0xA2E64EADA2E64EAD (UNCONFIRMED for this form).
    No descriptors are written.  Build 14393 has no layout row: a reader must not walk it."""
    rng = random.Random(seed)
    key = rng.getrandbits(64) or 1
    L = LAYOUT_1607
    heap = bytearray(PAGE)
    struct.pack_into("<I", heap, L["signature"], SEGMENT_HEAP_SIGNATURE)
    struct.pack_into("<QQ", heap, L["segment_list_head"], segment, segment)
    _stub_region(builder, address, bytes(heap), memory_list)
    seg = bytearray(PAGE_SEGMENT_HEADER_BYTES)
    head = address + L["segment_list_head"]
    sig = address ^ key ^ (segment >> 20) ^ PAGE_SEGMENT_C_OLD
    struct.pack_into("<QQQ", seg, 0, head, head, sig)
    builder.add_memory(segment, bytes(seg), list=memory_list)
    builder.add_region(segment, len(seg), state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                       protect=fmt.PAGE_READWRITE, allocation_base=segment,
                       allocation_protect=fmt.PAGE_READWRITE)
    builder.add_region(segment + len(seg), GEOMETRY[0].segment_size - len(seg),
                       state=fmt.MEM_RESERVE, type=fmt.MEM_PRIVATE, protect=0,
                       allocation_base=segment, allocation_protect=fmt.PAGE_READWRITE)
    return {"address": address, "type": "segment", "arch": "x64", "build": builder.os_version[2],
            "build_row": None, "walked": False, "status": "not_walked",
            "reason_code": "no_layout_row",
            "not_walked_reason": f"no segment-heap layout row for build {builder.os_version[2]}: "
                                 "Windows 10 1607 keeps one SegmentListHead at +0x60 instead of "
                                 "SegContexts[2] and signs page segments in an 'other form' whose "
                                 "inputs are UNCONFIRMED (windows-heap-layouts.md 1.3, 10.1), so no "
                                 "layout can be validated (12.9)",
            "signature": SEGMENT_HEAP_SIGNATURE, "signature_offset": SEGMENT_HEAP_SIGNATURE_OFFSET_X64,
            "form_1607": {"segment_list_head": head, "segment": segment,
                          "segment_signature": sig, "heap_key": key,
                          "layout": dict(L)},
            "rows": [], "corruption": []}


# ---------------------------------------------------------------------------
# Bulk mode
BULK_VS_PLAN = [("b", 0x18), ("b", 0x30), ("b", 0x48), ("f", 0x40), ("b", 0x60), ("b", 0x25),
                ("b", 0x1), ("b", 0x3A), ("b", 0x70)]
BULK_LFH = [(0x20, [0x20, 0x18, 0x1F, None]), (0x30, [0x30, 0x2A, None, 0x21]),
            (0x40, [0x40, 0x3F, 0x31, None]), (0x60, [0x55, None, 0x60]),
            (0x80, [0x80, 0x7F, 0x70, None]), (0x20, [0x20, None, 0x11]),
            (0x40, [0x38, 0x40, None, 0x3E]), (0x30, [0x2F, 0x30, 0x24, None])]
BULK_VS_SUBSEGMENTS = 8          # of 16 units (0x10000 bytes) each
BULK_LFH_UNITS = (16,) * 7 + (14,)


class BulkSegmentHeap(SegmentHeap):
    """A segment heap whose context 0 holds ``n`` identical 1 MB page segments packed with VS
    subsegments (8 x 64 KB) and LFH subsegments (8, block sizes 0x20..0x80), written from one
    template by big-integer XOR (see the module docstring); context 1 gets one segment with
    two page ranges, and ``large`` [(address, request)] become large blocks.  No per-row
    expected output: write() returns a truth dict of counts and bytes."""

    def __init__(self, builder: DumpBuilder, address: int, *, build: int, seed: int,
                 allocations: int, first_segment: int, ctx1_segment: int,
                 large: Sequence[tuple[int, int]] = (), ntdll: tuple[int, int] | None = None):
        super().__init__(builder, address, build=build, seed=seed, ntdll=ntdll, fill_tag=0xB5,
                         page_align=False)
        self.first_segment = first_segment
        # The template segment: built like any other, but never registered in self.segments.
        t = PageSegment(self, 0, first_segment)
        per_rep = sum(max(MIN_VS_CHUNK, _align(x[1] + VS_CHUNK_HEADER, VS_GRANULE))
                      if x[0] == "b" else x[1] for x in BULK_VS_PLAN)
        reps = (0x10000 - VS_FIRST_CHUNK - MIN_VS_FREE) // per_rep
        for _ in range(BULK_VS_SUBSEGMENTS):
            t.vs(0x10000, BULK_VS_PLAN * reps)
        for units, (bs, fill) in zip(BULK_LFH_UNITS, BULK_LFH):
            t.lfh(units, bs, fill)
        t.close()
        assert all(r.kind != "free_range" for r in t.ranges), "bulk segments are full"
        self.template = t
        rows = [self.row("segment_header", t.address, 2 * t.geo.unit, busy=True, segment=t.address)]
        for r in t.ranges:
            rows += self._range_rows(r)
        self._template_rows = rows
        per_segment = sum(1 for r in rows if r["is_allocation"])
        self.n_segments = -(-allocations // per_segment)
        self.bulk_segments = [first_segment + i * GEOMETRY[0].segment_size
                              for i in range(self.n_segments)]
        c1 = self.add_segment(1, ctx1_segment)
        c1.page_range(0x84321)
        c1.free(3)
        c1.page_range(0x100000)
        for a, req in large:
            self.add_large(a, req)

    # ---- hooks into SegmentHeap.finish
    def _ctx_segment_addresses(self, ctx: int) -> list[int]:
        return self.bulk_segments if ctx == 0 else super()._ctx_segment_addresses(ctx)

    def _vs_subsegment_addresses(self) -> list[int]:
        offs = [r.address - self.first_segment for r in self.template.ranges
                if r.kind == "vs_subsegment"]
        return [s + o for s in self.bulk_segments for o in offs]

    def _spans(self) -> list[tuple[int, int]]:
        size = GEOMETRY[0].segment_size
        return super()._spans() + [(s, s + size) for s in self.bulk_segments]

    def expected(self) -> dict:
        raise NotImplementedError("a bulk heap has no per-row expected output; use write()")

    # ---- the template
    def _template_bytes(self) -> tuple[bytes, int, int, list[int]]:
        """(template bytes of the first segment, header-qword mask, BlockOffsets mask, offsets
        of the VS subsegments)."""
        t, T = self.template, self.first_segment
        saved, self.mem = self.mem, _Pages()
        try:
            for r in t.ranges:
                self._write_descriptors(r)
                if r.kind == "vs_subsegment":
                    self._write_vs(r)
                else:
                    self._write_lfh(r)
            tmpl = bytearray(self.mem.bytes_of(T, T + t.size))
        finally:
            self.mem = saved
        m64 = bytearray(t.size)
        m32 = bytearray(t.size)
        vs_offs = []
        for r in t.ranges:
            if r.kind == "vs_subsegment":
                vs_offs.append(r.address - T)
                for c in r.chunks:
                    m64[r.address - T + c.offset] = 1
            else:
                m32[r.address - T + self.layout.lfh_block_offsets] = 1
        # Intra-segment links of the encoded VS subsegment list do not depend on the segment
        # address ((T|a) ^ (T|b) == a ^ b); the links that leave the segment are patched later.
        if self.layout.vs.subsegment_list is not None:
            for a, b_ in zip(vs_offs, vs_offs[1:]):
                struct.pack_into("<Q", tmpl, a, a ^ b_)
                struct.pack_into("<Q", tmpl, b_ + 8, a ^ b_)
        return (bytes(tmpl), int.from_bytes(m64, "little"), int.from_bytes(m32, "little"), vs_offs)

    def _shift(self, S: int) -> int:
        if self.layout.lfh_shift_form == "u32_then_shift":
            return (S & 0xFFFFFFFF) >> 12
        return (S >> 12) & 0xFFFFFFFF

    def write(self) -> dict:
        """finish() the heap-level structures, then write every bulk segment; the truth dict."""
        self.finish()
        tmpl, m64, m32, vs_offs = self._template_bytes()
        T, size = self.first_segment, len(tmpl)
        tint = int.from_bytes(tmpl, "little")
        segs = self.bulk_segments
        head_ctx = self.ctx_address(0) + self.layout.ctx.segment_list_head
        vs_list = self.layout.vs.subsegment_list
        vs_head = self.vs_context + vs_list if vs_list is not None else 0
        rw = dict(type=fmt.MEM_PRIVATE, allocation_protect=fmt.PAGE_READWRITE)
        for i, A in enumerate(segs):
            v = tint ^ ((T ^ A) * m64) ^ ((self._shift(T) ^ self._shift(A)) * m32)
            data = bytearray(v.to_bytes(size, "little"))
            prev = segs[i - 1] if i else head_ctx
            nxt = segs[i + 1] if i + 1 < len(segs) else head_ctx
            struct.pack_into("<QQQ", data, 0, nxt, prev, self.signature_at(A, 0))
            if vs_list is not None and vs_offs:
                first, last = A + vs_offs[0], A + vs_offs[-1]
                before = (segs[i - 1] + vs_offs[-1]) if i else vs_head
                after = (segs[i + 1] + vs_offs[0]) if i + 1 < len(segs) else vs_head
                struct.pack_into("<Q", data, vs_offs[0] + 8, before ^ first)
                struct.pack_into("<Q", data, vs_offs[-1], after ^ last)
            self.b.add_memory(A, bytes(data), list=self.memory_list)
            self.b.add_region(A, size, state=fmt.MEM_COMMIT, protect=fmt.PAGE_READWRITE,
                              allocation_base=A, **rw)
        return self.truth()

    def truth(self) -> dict:
        n = self.n_segments
        tr = self._template_rows
        normal = []
        for s in self.segments[1]:
            normal.append(self.row("segment_header", s.address, s.geo.unit, busy=True,
                                   segment=s.address))
            for r in s.ranges:
                normal += self._range_rows(r)
        large = [self.row("large_block", lb.address, lb.size, busy=True, segment=0,
                          user_address=lb.address, user_size=lb.request, unused_bytes=lb.unused,
                          is_allocation=True) for lb in self.large]

        def count(kind: str, busy: Optional[bool] = None, key: str = "") -> int:
            def f(rows: list[dict]) -> int:
                sel = [r for r in rows if r["kind"] == kind and (busy is None or r["busy"] == busy)]
                return sum(r[key] for r in sel) if key else len(sel)
            return n * f(tr) + f(normal) + f(large)

        kinds = sorted({r["kind"] for r in tr + normal + large})
        seg_size = GEOMETRY[0].segment_size
        alloc = [r for r in tr if r["is_allocation"]]
        alloc_n = n * len(alloc) + sum(1 for r in normal + large if r["is_allocation"])
        user = (n * sum(r["user_size"] for r in alloc)
                + sum(r["user_size"] for r in normal + large if r["is_allocation"]))
        return {
            "heap": self.address, "build": self.build, "build_row": self.layout.row,
            "heap_key": self.heap_key, "lfh_key": self.lfh_key & 0xFFFFFFFF,
            "seg_contexts": [
                {"index": 0, "segments": n, "first_segment": self.first_segment,
                 "reserved_bytes": n * seg_size, "committed_bytes": n * seg_size},
                {"index": 1, "segments": len(self.segments[1]),
                 "addresses": [s.address for s in self.segments[1]],
                 "reserved_bytes": sum(s.size for s in self.segments[1]),
                 "committed_bytes": sum(self._committed_by_segment[s.address]
                                        for s in self.segments[1])}],
            "vs": {"count": count("vs_block", True), "user_bytes": count("vs_block", True, "user_size"),
                   "free_count": count("vs_block", False), "free_bytes": count("vs_block", False, "size"),
                   "subsegments": count("vs_subsegment")},
            "lfh": {"count": count("seg_lfh_block", True),
                    "user_bytes": count("seg_lfh_block", True, "user_size"),
                    "free_count": count("seg_lfh_block", False),
                    "subsegments": count("seg_lfh_subsegment")},
            "page_range": {"count": count("page_range"),
                           "user_bytes": count("page_range", None, "user_size")},
            "large": {"count": len(self.large), "user_bytes": sum(lb.request for lb in self.large)},
            "free_ranges": {"count": count("free_range"), "bytes": count("free_range", None, "size")},
            "rows": {k: count(k) for k in kinds},
            "rows_total": n * len(tr) + len(normal) + len(large),
            "allocation_count": alloc_n,
            "busy_user_bytes_all": user,
            "template": {"vs_subsegment_bytes": 0x10000, "vs_plan": [list(x) for x in BULK_VS_PLAN],
                         "lfh": [{"units": u, "block_size": bs} for u, (bs, _f) in
                                 zip(BULK_LFH_UNITS, BULK_LFH)],
                         "note": "user bytes of every bulk segment are the first segment's "
                                 "(their pattern words name the first segment's addresses)"},
        }
