"""Offset tables for the Windows 10/11 segment heap (x64) the segment-heap builder writes.

Transcribed by hand from /work/shared/docs/windows-heap-layouts.md ("the doc"),
sections 1.3 and 10.1-10.6; nothing here is imported from, or copied out of, the
project's reader.  Source tags in brackets ([NTD], [R2W], [NTK], [BIN], [MPF],
[DHU], ...) are the doc's own (its section 0).  Every field carries a status:

    CONFIRMED      two or more independent sources agree (the doc says so)
    SINGLE         exactly one source (the doc's "single source")
    DOC            the doc gives the value for this build from one tagged source
                   without a CONFIRMED marker (usually one [NTD] header)
    INFERRED       the doc marks it INFERRED
    UNCONFIRMED    the doc marks it UNCONFIRMED
    BUILDER_GUESS  the doc gives NO offset for this build; the value is this
                   builder's guess (stated next to it), so a reader that relies on
                   it relies on the builder, not on Windows

Rows (one per layout column of doc 10.1; the builds mapped onto a row are in
ROW_BUILDS):

    win10_1709       16299               [NTD Win10_1709_RS3]
    win10_1803       17134               [NTD Win10_1803_RS4]
    win10_1809       17763               [NTD 1809]
    win10_1903       18362, 18363        [NTD 1903] (differs from 1809 in LfhContext only)
    win10_2004       19041..19045        [NTD Win10_2004_20H1]; 20H2-22H2 INFERRED
    win11_21h2_23h2  22000, 22621, 22631 [BIN 11-21H2/22H2/23H2] + [NTK]
    win11_24h2       26100               [BIN 11-24H2] + [NTK]

Builds without a row (Windows 10 1607 with its older single-segment-list form,
insider builds between rows, 25H2, and every x86 build) are not written by
SegmentHeap; see segheap.write_segment_heap_stub / write_segment_heap_1607.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Optional

# ---------------------------------------------------------------------------
# Constants (doc 10, 10.2-10.5)
# ---------------------------------------------------------------------------
SEGMENT_HEAP_SIGNATURE = 0xDDEEDDEE   # doc 10 / 12.1.3: u32 at +0x10 (x64), +0x08 (x86) [MPF], [SI]
SEGMENT_HEAP_SIGNATURE_OFFSET_X64 = 0x10
SEGMENT_HEAP_SIGNATURE_OFFSET_X86 = 0x08

# doc 10.2 "Signature, CONFIRMED": Signature = seg ^ ctx ^ HeapKey ^ C.
# C = 0xA2E64EADA2E64EAD in 21H2/22H2/23H2 [BIN RtlpHpSegHeapAddSegment], 0 in 24H2/25H2
# [BIN 11-24H2/25H2]; [MPF] splits at build 26100.  For Win10 builds the non-zero C rests on
# [MPF]/[DHU] only (doc 13 "2004 behaviour assumption": assumed, not seen in 2004 code).
PAGE_SEGMENT_C_OLD = 0xA2E64EADA2E64EAD
PAGE_SEGMENT_C_24H2 = 0

# doc 10.2 RangeFlags (CONFIRMED: [BIN RtlpHpSizeHeap] + [MPF] 0x0B/0x0F + [R2C]):
RANGE_ALLOCATED = 0x01      # bit 0 = allocated
RANGE_FIRST = 0x02          # bit 1 = first descriptor of a range
RANGE_TYPE_MASK = 0x0C      # (flags & 0xC): 8 = LFH subsegment, 0xC = VS subsegment, < 8 = page range
RANGE_TYPE_LFH = 0x08
RANGE_TYPE_VS = 0x0C
FLAGS_PAGE_RANGE = RANGE_FIRST | RANGE_ALLOCATED              # 0x03 ([MPF] "3")
FLAGS_LFH = RANGE_TYPE_LFH | RANGE_FIRST | RANGE_ALLOCATED    # 0x0B ([MPF])
FLAGS_VS = RANGE_TYPE_VS | RANGE_FIRST | RANGE_ALLOCATED      # 0x0F ([MPF])
FLAGS_FREE = RANGE_FIRST    # 0x02: BUILDER_GUESS (doc: free = bit 0 clear; bit 1 as for any first
                            # descriptor; the doc names no value for free ranges)

# doc 10.2: TreeSignature of an allocated range's first descriptor (SINGLE: [BIN 11-23H2
# RtlpHpSegFreeRangeRemove, RtlpHpSegPageRangeSplit; 11-23H2/11-24H2 RtlpHpSegFreeRangeInsert]).
TREE_SIGNATURE = 0xCCDDCCDD

# doc 10.3: VS subsegment signature rule (CONFIRMED [BIN 11-24H2 RtlpHpVsSubsegmentCreate] +
# [MPF]/[DHU]): Size = (bytes - 0x30) >> 4; Signature = ((Size ^ 0x2BED) & 0x7FFF) | FullCommit << 15.
VS_SIGNATURE_XOR = 0x2BED
VS_FIRST_CHUNK = 0x30               # first chunk header at subsegment + 0x30 (x64; [BIN] + [MPF])
VS_CHUNK_HEADER = 0x10              # sizeof(_HEAP_VS_CHUNK_HEADER) x64 ([R2W])
VS_GRANULE = 16                     # UnsafeSize unit, x64 (doc 10.3 "x 16 (x64)")
VS_PAGE_ALIGNED_USER = 0x20         # user pointer hdr + 0x20 in the page-aligned variant (doc 10.3)
VS_UNUSED_BYTES_BIT = 0x100         # dword(hdr + 8) & 0x100 (doc 10.3 trailer, CONFIRMED)
VS_TRAILER_MASK = 0x1FFF            # doc 10.3: 13 bits for VS ([NTD] _HEAP_VS_UNUSED_BYTES_INFO)
TRAILER_ONE_BYTE = 0x8000           # bit 15 => exactly one unused byte (doc 10.3 / 10.4)
TRAILER_EXTRA = 0x4000              # bit 14 => extra (UST) data present (doc 10.3 / 10.4)

# doc 10.5: _HEAP_LARGE_ALLOC_DATA x64 ([NTD 1809 x64], [R2W 1607]).
LARGE_NODE_LEFT = 0x00
LARGE_NODE_RIGHT = 0x08
LARGE_NODE_PARENT = 0x10            # ParentValue: (parent [^ node]) | colour bits 0-1 (bit 0 = red)
LARGE_VIRTUAL_ADDRESS = 0x18        # VirtualAddress; UnusedBytes:16 aliased into the low bits
LARGE_BITFIELD = 0x20               # ExtraPresent:1 ... AllocatedPages at bit 12 (x64 :52)
LARGE_ALLOCATED_PAGES_SHIFT = 12
LARGE_NODE_SIZE = 0x28
LARGE_ALIGN = 0x10000               # block address = VirtualAddress & ~0xFFFF (doc 10.5)

# _RTL_BALANCED_NODE / _RTL_RB_TREE (doc 10.5): node Left 0, Right 8, ParentValue 0x10;
# tree Root at +0, Encoded:1 / Min at +8.  Free range descriptors carry the same node in
# their bytes 0x00-0x17 (doc 10.2).
RB_LEFT, RB_RIGHT, RB_PARENT = 0x00, 0x08, 0x10
RB_ROOT, RB_MIN = 0x00, 0x08
RB_RED = 0x1

# doc 10.2: _HEAP_PAGE_SEGMENT x64: ListEntry 0x00, Signature u64 0x10; sizeof 0x2000; DescArray[256]
# of 0x20-byte descriptors overlays it ([R2W], [NTK], [BLG]).
PAGE_SEGMENT_LIST_ENTRY = 0x00
PAGE_SEGMENT_SIGNATURE = 0x10
PAGE_SEGMENT_HEADER_BYTES = 0x2000
DESCRIPTOR_SIZE = 0x20
DESCRIPTORS_PER_SEGMENT = 256

# doc 10.2 "Geometry, x64 Win11" (SINGLE: [BIN 21H2-24H2 RtlpHpHeapCreate] sizes,
# [BIN 11-23H2/11-24H2 RtlpHpSegContextInitialize] formulas).  The Win10 rows use the same
# geometry: UNCONFIRMED ([MPF] assumes 256 descriptors and <= 1 MB segments; context 1 of Win10
# is not described by any source).
SEGMENT_SIZES = (0x100000, 0x1000000)   # context 0: 1 MB, context 1: 16 MB


@dataclass(frozen=True)
class Geometry:
    """Derived from the segment size with the doc 10.2 formulas."""

    segment_size: int

    @property
    def unit(self) -> int:
        return self.segment_size // DESCRIPTORS_PER_SEGMENT          # 4 KB / 64 KB

    @property
    def unit_shift(self) -> int:
        return self.unit.bit_length() - 1                             # 12 / 16

    @property
    def pages_per_unit_shift(self) -> int:
        return (self.unit // 0x1000).bit_length() - 1                 # 0 / 4

    @property
    def first_descriptor_index(self) -> int:
        return (self.unit + 0x1FFF) // self.unit                      # 2 / 1

    @property
    def segment_mask(self) -> int:
        return ~(self.segment_size - 1) & 0xFFFFFFFFFFFFFFFF

    @property
    def max_allocation_size(self) -> int:
        # doc 10.2: "MaxAllocationSize (+0x10) = 0x7F000 / 0x7F0000 (computed from the formula)"
        return 0x7F000 if self.segment_size == 0x100000 else 0x7F0000


GEOMETRY = tuple(Geometry(s) for s in SEGMENT_SIZES)


# ---------------------------------------------------------------------------
# Layout rows
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SegContextLayout:
    """_HEAP_SEG_CONTEXT (x64), doc 10.1 second table.  None = not written (offset unknown)."""

    segment_mask: int
    unit_shift: int
    pages_per_unit_shift: int
    first_descriptor_index: int
    max_allocation_size: int
    lfh_context: Optional[int]
    vs_context: Optional[int]
    heap: int
    segment_list_head: int
    segment_count: int
    free_page_ranges: int          # _RTL_RB_TREE; Encoded bit = bit 0 of the next qword


@dataclass(frozen=True)
class VsContextLayout:
    """_HEAP_VS_CONTEXT fields the builder writes (doc 10.3, 10.6 S4)."""

    known: bool                       # False: nothing of the VsContext is written
    subsegment_list: Optional[int]    # encoded LIST_ENTRY head (doc 10.3)
    backend_ctx: Optional[int]        # BackendCtx = ctx ^ &VsContext (doc 10.6 S4)
    callbacks: tuple[int, ...]        # function ^ &VsContext ^ HeapKey (doc 10.6 S4)
    page_align_flag: Optional[int]    # where bit 0 = page-align large allocations (doc 10.3)
    page_align_flag_width: int        # 4 (u32) or 1 (byte)


@dataclass(frozen=True)
class SegHeapLayout:
    row: str
    builds: tuple[int, ...]
    # _SEGMENT_HEAP (doc 10.1 first table)
    signature: int
    large_tree: int                   # LargeAllocMetadata (_RTL_RB_TREE Root)
    large_tree_encoded: int           # the qword whose bit 0 is Encoded (Root + 8)
    large_reserved_pages: int
    large_committed_pages: int
    seg_contexts: int
    seg_context_stride: int
    vs_context: int
    lfh_context: int
    sizeof: Optional[int]
    ctx: SegContextLayout
    vs: VsContextLayout
    # _HEAP_PAGE_SEGMENT signature constant (doc 10.2)
    page_segment_c: int
    # _HEAP_PAGE_RANGE_DESCRIPTOR (doc 10.2)
    desc_tree_signature: int
    desc_unused_bytes: int            # u32
    desc_range_flags: int             # u8
    desc_unit_size: int               # u8, first descriptor
    desc_unit_offset: int             # u8, the other descriptors of a range
    # _HEAP_VS_SUBSEGMENT (doc 10.3)
    vs_size: int                      # u16
    vs_signature: int                 # u16
    # _HEAP_LFH_SUBSEGMENT (doc 10.4)
    lfh_free_count: int               # u16
    lfh_block_count: int              # u16
    lfh_block_offsets: int            # encoded u32
    lfh_bitmap: int
    lfh_bitmap_format: str            # "2bit" (2 bits per block) | "u64x32" (one u64 per 32 blocks)
    lfh_shift_form: str               # "u32_then_shift": (u32)S >> 12 | "shift_then_u32": (u32)(S >> 12)
    lfh_trailer_mask: int
    lfh_pow2_round: bool              # FBO rounded up to a multiple of a power-of-two BlockSize
    # _HEAP_LFH_CONTEXT fields (doc 10.2 size routing, 10.6 L2; 23H2 only)
    lfh_ctx_max_block_size: Optional[int]     # u16, "presumably Config.MaxBlockSize"
    lfh_ctx_withhold: Optional[int]           # byte, bit 0 "presumably WitholdPageCrossingBlocks"
    status: dict = field(default_factory=dict, compare=False, hash=False)

    def table(self) -> dict:
        """The offsets as plain data for the expected JSON (with their status)."""
        out: dict = {}
        for f in fields(self):
            if f.name in ("status", "ctx", "vs", "builds"):
                continue
            out[f.name] = getattr(self, f.name)
        out["builds"] = list(self.builds)
        out["seg_context"] = {f.name: getattr(self.ctx, f.name) for f in fields(self.ctx)}
        out["vs_context_fields"] = {f.name: (list(getattr(self.vs, f.name))
                                      if isinstance(getattr(self.vs, f.name), tuple)
                                      else getattr(self.vs, f.name)) for f in fields(self.vs)}
        out["status"] = dict(self.status)
        return out


# ---- _HEAP_SEG_CONTEXT rows -------------------------------------------------
# 2004 and Win11: doc 10.1 table, [NTD 2004] / [BIN RtlpHpSizeHeap, RtlpHpSegHeapAddSegment,
# RtlpHpSegContextInitialize, RtlpHpSegFreeRangeInsert] + [NTK].  Stride 0xc0.
_CTX_2004 = SegContextLayout(segment_mask=0x00, unit_shift=0x08, pages_per_unit_shift=0x09,
                             first_descriptor_index=0x0A, max_allocation_size=0x10,
                             lfh_context=0x18, vs_context=0x20, heap=0x38,
                             segment_list_head=0x48, segment_count=0x58, free_page_ranges=0x60)
# 1809 / 1903 ([NTD], stride 0x98): UnitShift 0x08, FirstDescriptorIndex 0x0a, SegmentListHead
# 0x20 and Heap 0x90 are in the doc; SegmentMask, PagesPerUnitShift, MaxAllocationSize,
# SegmentCount, FreePageRanges and the Lfh/VsContext pointers are UNCONFIRMED (no offset given).
# BUILDER_GUESS: SegmentMask 0x00, PagesPerUnitShift 0x09, MaxAllocationSize 0x10 as in 2004;
# SegmentCount right after SegmentListHead (0x30) and FreePageRanges right after SegmentCount
# (0x38), the order 2004 has.  Lfh/VsContext pointers: not written.
_CTX_1809 = SegContextLayout(segment_mask=0x00, unit_shift=0x08, pages_per_unit_shift=0x09,
                             first_descriptor_index=0x0A, max_allocation_size=0x10,
                             lfh_context=None, vs_context=None, heap=0x90,
                             segment_list_head=0x20, segment_count=0x30, free_page_ranges=0x38)


def _ctx_1709_1803(stride: int) -> SegContextLayout:
    # 1709 / 1803: the doc gives NO _HEAP_SEG_CONTEXT field offset (doc 1.3 "UNCONFIRMED",
    # doc 13 "its field offsets in 1709/1803").  BUILDER_GUESS: the 1809 front part above, and
    # the Heap back-pointer as the last qword of the structure (stride - 8), as in 1809 where
    # Heap 0x90 is the last qword of the 0x98-byte structure.
    return SegContextLayout(segment_mask=0x00, unit_shift=0x08, pages_per_unit_shift=0x09,
                            first_descriptor_index=0x0A, max_allocation_size=0x10,
                            lfh_context=None, vs_context=None, heap=stride - 8,
                            segment_list_head=0x20, segment_count=0x30, free_page_ranges=0x38)


# ---- _HEAP_VS_CONTEXT rows ---------------------------------------------------
_VS_UNKNOWN = VsContextLayout(known=False, subsegment_list=None, backend_ctx=None, callbacks=(),
                              page_align_flag=None, page_align_flag_width=0)
# 2004: SubsegmentList +0x20 [NTD 2004]; BackendCtx +0x80, callbacks +0x88..+0xA8 [NTD] with the
# encoding INFERRED from 23H2 (doc 10.6 S4, doc 13); Config u32 +0xB0 bit 0 PageAlignLargeAllocs
# (doc 10.3: an ntdiff header of the same 0xC0-byte layout, build not recorded).
_VS_2004 = VsContextLayout(known=True, subsegment_list=0x20, backend_ctx=0x80,
                           callbacks=(0x88, 0x90, 0x98, 0xA0, 0xA8),
                           page_align_flag=0xB0, page_align_flag_width=4)
# 21H2-23H2: the same offsets, [BIN 11-23H2 RtlpHpVsContextInitialize, RtlpHpVsSubsegmentWalk].
_VS_23H2 = _VS_2004
# 24H2: 0x60-byte VsContext, flag = bit 0 of the byte at +4, BackendCtx +0x08, callbacks
# +0x10..+0x38, no subsegment list [BIN 11-24H2 RtlpHpVsContextInitialize, RtlpHpSizeHeap,
# RtlpHpVsSubsegmentWalk] + [NTK].
_VS_24H2 = VsContextLayout(known=True, subsegment_list=None, backend_ctx=0x08,
                           callbacks=(0x10, 0x18, 0x20, 0x28, 0x30, 0x38),
                           page_align_flag=0x04, page_align_flag_width=1)

# Descriptor / VS / LFH leaf fields shared by every row before 24H2.
_OLD_LEAVES = dict(
    page_segment_c=PAGE_SEGMENT_C_OLD,
    desc_tree_signature=0x00, desc_unused_bytes=0x04, desc_range_flags=0x18, desc_unit_size=0x1F,
    desc_unit_offset=0x1F,
    vs_size=0x20, vs_signature=0x22,
    lfh_free_count=0x20, lfh_block_count=0x22, lfh_block_offsets=0x28, lfh_bitmap=0x30,
    lfh_bitmap_format="2bit", lfh_shift_form="u32_then_shift", lfh_trailer_mask=0x3FFF,
    lfh_pow2_round=False, lfh_ctx_max_block_size=None, lfh_ctx_withhold=None,
)

_LEAF_STATUS_WIN10 = {
    "page_segment_c": "UNCONFIRMED for Win10 (doc 13: rests on [MPF] build < 26100, [DHU]; not "
                      "seen in Win10 code); the S1 equation itself is CONFIRMED for Win11 only",
    "desc_*": "UNCONFIRMED for Win10: the builder uses the Win11 21H2-23H2 descriptor (RangeFlags "
              "0x18, UnusedBytes u32 0x04, TreeSignature 0x00, UnitSize/UnitOffset byte 0x1f; doc "
              "10.2 [NTK]/[BLG]/[BIN 11-23H2]); doc 1.3 marks UnitOffset UNCONFIRMED for 1607-2004",
    "vs_signature": "0x22 'through 23H2' (doc 10.3: [R2W] 1607 and Win11 <= 23H2); for this build "
                    "INFERRED",
    "lfh_block_offsets": "0x28 in 1607, 1809, Win11 (doc 10.4); INFERRED for builds between",
    "lfh_bitmap": "+0x30, 2 bits per block (doc 1.3: 1709/1803 INFERRED, 1809 [NTD], 2004 same)",
    "lfh_shift_form": "(u32)S >> 12 before 26100: [MPF]'s split; for Win10 assumed (doc 13)",
    "lfh_trailer_mask": "0x3FFF through 23H2 [BIN 21H2-23H2]; for Win10 assumed",
    "geometry": "context 0 1 MB / context 1 16 MB segments, 256 descriptors: Win11 SINGLE [BIN]; "
                "Win10 UNCONFIRMED (same geometry assumed)",
    "vs_chunk_header": "CONFIRMED decode (doc 10.3)",
    "large_alloc_data": "[NTD 1809 x64], [R2W 1607]; VirtualAddress/AllocatedPages decode CONFIRMED "
                        "for Win11 [BIN] + [DHU]",
}


def _row_1709() -> SegHeapLayout:
    st = dict(_LEAF_STATUS_WIN10)
    st.update({
        "signature": "DOC [NTD Win10_1709_RS3]",
        "large_tree": "DOC [NTD Win10_1709_RS3] 0x50",
        "large_tree_encoded": "INFERRED (doc 10.1: 0x58)",
        "large_reserved_pages": "DOC 0x60", "large_committed_pages": "DOC 0x68",
        "seg_contexts": "DOC 0x70, stride 0x68",
        "vs_context": "DOC 0x168", "lfh_context": "DOC 0x1e0", "sizeof": "DOC 0x6c0",
        "seg_context.*": "BUILDER_GUESS for every field (doc gives no 1709 _HEAP_SEG_CONTEXT offset): "
                         "1809 front part (mask 0x00, UnitShift 0x08, PagesPerUnitShift 0x09, "
                         "FirstDescriptorIndex 0x0a, MaxAllocationSize 0x10, SegmentListHead 0x20, "
                         "SegmentCount 0x30, FreePageRanges 0x38), Heap = stride - 8 = 0x60; "
                         "Lfh/VsContext pointers not written",
        "vs_context.*": "layout unknown for this build: nothing written inside the VsContext",
    })
    return SegHeapLayout(
        row="win10_1709", builds=(16299,), signature=0x10, large_tree=0x50, large_tree_encoded=0x58,
        large_reserved_pages=0x60, large_committed_pages=0x68, seg_contexts=0x70,
        seg_context_stride=0x68, vs_context=0x168, lfh_context=0x1E0, sizeof=0x6C0,
        ctx=_ctx_1709_1803(0x68), vs=_VS_UNKNOWN, status=st, **_OLD_LEAVES)


def _row_1803() -> SegHeapLayout:
    st = dict(_LEAF_STATUS_WIN10)
    st.update({
        "signature": "DOC [NTD Win10_1803_RS4]",
        "large_tree": "DOC 0x50", "large_tree_encoded": "INFERRED 0x58",
        "large_reserved_pages": "INFERRED 0x60", "large_committed_pages": "INFERRED 0x68",
        "seg_contexts": "DOC 0x70; stride 0x78 INFERRED",
        "vs_context": "DOC 0x188", "lfh_context": "DOC 0x200", "sizeof": "DOC 0x6f0",
        "seg_context.*": "BUILDER_GUESS for every field (doc gives no 1803 _HEAP_SEG_CONTEXT offset): "
                         "as 1709, Heap = stride - 8 = 0x70",
        "vs_context.*": "layout unknown for this build: nothing written inside the VsContext",
    })
    return SegHeapLayout(
        row="win10_1803", builds=(17134,), signature=0x10, large_tree=0x50, large_tree_encoded=0x58,
        large_reserved_pages=0x60, large_committed_pages=0x68, seg_contexts=0x70,
        seg_context_stride=0x78, vs_context=0x188, lfh_context=0x200, sizeof=0x6F0,
        ctx=_ctx_1709_1803(0x78), vs=_VS_UNKNOWN, status=st, **_OLD_LEAVES)


def _row_1809(lfh: int, builds: tuple[int, ...], row: str, sizeof: int) -> SegHeapLayout:
    st = dict(_LEAF_STATUS_WIN10)
    st.update({
        "signature": "DOC [NTD 1809/1903]",
        "large_tree": "DOC 0x88", "large_tree_encoded": "INFERRED 0x90",
        "large_reserved_pages": "DOC 0x98", "large_committed_pages": "DOC 0xa0",
        "seg_contexts": "DOC 0xa8, stride 0x98",
        "vs_context": "DOC 0x220", "lfh_context": f"DOC {lfh:#x}", "sizeof": f"DOC {sizeof:#x}",
        "seg_context.unit_shift": "DOC [NTD] 0x08",
        "seg_context.first_descriptor_index": "DOC [NTD] 0x0a",
        "seg_context.segment_list_head": "DOC [NTD] 0x20",
        "seg_context.heap": "DOC [NTD] 0x90",
        "seg_context.segment_mask": "UNCONFIRMED; BUILDER_GUESS 0x00 (as 2004)",
        "seg_context.pages_per_unit_shift": "UNCONFIRMED; BUILDER_GUESS 0x09 (as 2004)",
        "seg_context.max_allocation_size": "UNCONFIRMED; BUILDER_GUESS 0x10 (as 2004)",
        "seg_context.segment_count": "UNCONFIRMED; BUILDER_GUESS 0x30 (after SegmentListHead, as "
                                     "in 2004)",
        "seg_context.free_page_ranges": "UNCONFIRMED; BUILDER_GUESS 0x38 (after SegmentCount, as "
                                        "in 2004)",
        "seg_context.lfh_context/vs_context": "UNCONFIRMED: not written",
        "vs_context.*": "layout unknown for this build: nothing written inside the VsContext",
    })
    return SegHeapLayout(
        row=row, builds=builds, signature=0x10, large_tree=0x88, large_tree_encoded=0x90,
        large_reserved_pages=0x98, large_committed_pages=0xA0, seg_contexts=0xA8,
        seg_context_stride=0x98, vs_context=0x220, lfh_context=lfh, sizeof=sizeof,
        ctx=_CTX_1809, vs=_VS_UNKNOWN, status=st, **_OLD_LEAVES)


def _row_2004() -> SegHeapLayout:
    st = dict(_LEAF_STATUS_WIN10)
    st.update({
        "signature": "DOC [NTD Win10_2004_20H1]",
        "large_tree": "DOC 0x48 (lock 0x40)", "large_tree_encoded": "INFERRED 0x50",
        "large_reserved_pages": "INFERRED 0x58", "large_committed_pages": "INFERRED 0x60",
        "seg_contexts": "DOC 0x100, stride 0xc0 (also an unattributed decompile)",
        "vs_context": "DOC 0x280", "lfh_context": "DOC 0x340", "sizeof": "DOC 0x800",
        "seg_context.*": "DOC [NTD 2004] for every field",
        "vs_context.subsegment_list": "DOC [NTD 2004] +0x20; XOR encoding CONFIRMED for 23H2 only "
                                      "(INFERRED here); Blink encoding: BUILDER_GUESS (same rule)",
        "vs_context.backend_ctx/callbacks": "offsets DOC [NTD]; encoding INFERRED from 23H2 "
                                            "(doc 10.6 S4, doc 13)",
        "vs_context.page_align_flag": "u32 +0xB0 bit 0 (Config.PageAlignLargeAllocs in an ntdiff "
                                      "header of this 0xC0 layout, build not recorded): INFERRED",
        "builds_20h2_22h2": "INFERRED to share this row (doc 10.1)",
    })
    return SegHeapLayout(
        row="win10_2004", builds=(19041, 19042, 19043, 19044, 19045), signature=0x10,
        large_tree=0x48, large_tree_encoded=0x50, large_reserved_pages=0x58,
        large_committed_pages=0x60, seg_contexts=0x100, seg_context_stride=0xC0,
        vs_context=0x280, lfh_context=0x340, sizeof=0x800, ctx=_CTX_2004, vs=_VS_2004, status=st,
        **_OLD_LEAVES)


def _row_23h2() -> SegHeapLayout:
    leaves = dict(_OLD_LEAVES)
    # doc 10.2 size routing / 10.6 L2 (23H2, SINGLE [BIN 11-23H2 RtlpHpAllocateHeapInternal,
    # RtlpHpLfhSubsegmentInitialize]): u16 at LfhContext+0x3C (presumably Config.MaxBlockSize);
    # bit 0 of LfhContext+0x3E (presumably WitholdPageCrossingBlocks).
    leaves.update(lfh_ctx_max_block_size=0x3C, lfh_ctx_withhold=0x3E)
    st = {
        "signature": "CONFIRMED",
        "large_tree": "0x48 [BIN RtlpHpSizeHeap] + [NTK]", "large_tree_encoded": "0x50 [BIN]",
        "large_reserved_pages": "0x58 [NTK] (24H2 PDB; 21H2-23H2 assumed equal)",
        "large_committed_pages": "0x60 [NTK] (24H2 PDB; 21H2-23H2 assumed equal)",
        "seg_contexts": "0x140, stride 0xc0: CONFIRMED [BIN]+[NTK]",
        "vs_context": "0x2c0 CONFIRMED", "lfh_context": "0x380 [BIN 11-21H2/22H2/23H2 RtlpHpHeapCreate]",
        "sizeof": "0x840 [BIN 11-21H2/23H2 RtlpHpHeapAllocate]; 22H2 INFERRED",
        "seg_context.*": "[BIN RtlpHpSizeHeap, RtlpHpSegHeapAddSegment, RtlpHpSegContextInitialize,"
                         " RtlpHpSegFreeRangeInsert] + [NTK]",
        "page_segment_c": "0xA2E64EADA2E64EAD [BIN 11-21H2/22H2/23H2 RtlpHpSegHeapAddSegment]",
        "desc_*": "RangeFlags 0x18, UnitSize 0x1f CONFIRMED; UnitOffset shares 0x1f on non-first "
                  "descriptors: SINGLE [BIN 11-23H2 RtlpHpSizeHeap] (21H2/22H2 per the research pass);"
                  " TreeSignature SINGLE; UnusedBytes u32 +4 [BIN RtlpHpSizeHeap]",
        "vs_signature": "0x22 [R2W]/[NTK] ('through 23H2')",
        "vs_context.*": "SubsegmentList +0x20 (XOR-encoded, CONFIRMED [BIN 11-23H2] + [DHU]; Blink "
                        "encoding BUILDER_GUESS), BackendCtx +0x80, callbacks +0x88..+0xA8, flag u32 "
                        "+0xB0 bit 0 [BIN 11-23H2]",
        "lfh_*": "BlockOffsets 0x28, bitmap 0x30 2 bits/block, (u32)S >> 12, trailer mask 0x3FFF: "
                 "CONFIRMED / [BIN 21H2-23H2]",
        "lfh_ctx_max_block_size/withhold": "SINGLE [BIN 11-23H2]; meaning 'presumably'",
        "geometry": "SINGLE [BIN]",
        "large_alloc_data": _LEAF_STATUS_WIN10["large_alloc_data"],
    }
    return SegHeapLayout(
        row="win11_21h2_23h2", builds=(22000, 22621, 22631), signature=0x10, large_tree=0x48,
        large_tree_encoded=0x50, large_reserved_pages=0x58, large_committed_pages=0x60,
        seg_contexts=0x140, seg_context_stride=0xC0, vs_context=0x2C0, lfh_context=0x380,
        sizeof=0x840, ctx=_CTX_2004, vs=_VS_23H2, status=st, **leaves)


def _row_24h2() -> SegHeapLayout:
    st = {
        "signature": "CONFIRMED",
        "large_tree": "0x48", "large_tree_encoded": "0x50 [BIN]",
        "large_reserved_pages": "0x58 [NTK]", "large_committed_pages": "0x60 [NTK]",
        "seg_contexts": "0x140, stride 0xc0: CONFIRMED",
        "vs_context": "0x2c0 CONFIRMED", "lfh_context": "0x340 [BIN 11-24H2 RtlpHpHeapCreate] + [NTK]",
        "sizeof": "UNCONFIRMED (0xa00 [NTK] vs 0x900 zeroed by [BIN]); not needed",
        "seg_context.*": "as 21H2-23H2",
        "page_segment_c": "0 [BIN 11-24H2/25H2 RtlpHpSegHeapAddSegment] + [MPF] split at 26100",
        "desc_*": "UnitOffset +0x1a, UnitSize +0x1f: CONFIRMED [BIN 11-24H2] + [NTK]",
        "vs_signature": "0x24 ([R2W], [NTK] agree)",
        "vs_context.*": "0x60-byte VsContext: flag byte +4 bit 0, BackendCtx +0x08, callbacks "
                        "+0x10..+0x38, no subsegment list [BIN 11-24H2] + [NTK]",
        "lfh_bitmap": "+0x40, one u64 per 32 blocks (low dword allocated, high dword trailer), bits "
                      "past BlockCount pre-set: SINGLE [BIN 24H2/25H2]",
        "lfh_shift_form": "(u32)(S >> 12) [BIN 11-24H2/25H2] + [MPF] split at 26100",
        "lfh_trailer_mask": "0x3FF [BIN RtlpHpLfhSubsegmentSizeBlockInternal 24H2]",
        "lfh_pow2_round": "FBO rounded up to a multiple of a power-of-two BlockSize, exact fit "
                          "[BIN 11-24H2 RtlpHpLfhSubsegmentInitialize]",
        "geometry": "SINGLE [BIN]",
        "large_alloc_data": _LEAF_STATUS_WIN10["large_alloc_data"],
    }
    return SegHeapLayout(
        row="win11_24h2", builds=(26100,), signature=0x10, large_tree=0x48, large_tree_encoded=0x50,
        large_reserved_pages=0x58, large_committed_pages=0x60, seg_contexts=0x140,
        seg_context_stride=0xC0, vs_context=0x2C0, lfh_context=0x340, sizeof=None, ctx=_CTX_2004,
        vs=_VS_24H2, page_segment_c=PAGE_SEGMENT_C_24H2,
        desc_tree_signature=0x00, desc_unused_bytes=0x04, desc_range_flags=0x18, desc_unit_size=0x1F,
        desc_unit_offset=0x1A, vs_size=0x20, vs_signature=0x24,
        lfh_free_count=0x20, lfh_block_count=0x22, lfh_block_offsets=0x28, lfh_bitmap=0x40,
        lfh_bitmap_format="u64x32", lfh_shift_form="shift_then_u32", lfh_trailer_mask=0x3FF,
        lfh_pow2_round=True, lfh_ctx_max_block_size=None, lfh_ctx_withhold=None, status=st)


SEGHEAP_LAYOUTS: dict[str, SegHeapLayout] = {r.row: r for r in (
    _row_1709(), _row_1803(),
    _row_1809(0x298, (17763,), "win10_1809", 0x710),
    _row_1809(0x2A0, (18362, 18363), "win10_1903", 0x790),
    _row_2004(), _row_23h2(), _row_24h2(),
)}
ROW_BUILDS = {b: r.row for r in SEGHEAP_LAYOUTS.values() for b in r.builds}


def row_for_build(build: int) -> Optional[str]:
    """The doc 10.1 column of an x64 build, or None (no row: 1607, insider builds, 25H2...)."""
    return ROW_BUILDS.get(build)


def seg_layout(row: str) -> SegHeapLayout:
    try:
        return SEGHEAP_LAYOUTS[row]
    except KeyError:
        raise ValueError(f"no segment-heap layout row {row!r}; known: {sorted(SEGHEAP_LAYOUTS)}") from None


# ---------------------------------------------------------------------------
# Windows 10 1607 (14393): the "older form" (doc 10.1 first column [R2W], doc 10.1 "Older form")
# Written only for the "no row" scenario; a reader is expected NOT to walk it.
# ---------------------------------------------------------------------------
LAYOUT_1607 = dict(
    signature=0x10,               # [R2W]
    large_tree=0x38,              # [R2W]
    large_tree_encoded=0x40,      # INFERRED (doc 10.1)
    large_reserved_pages=0x48,    # [R2W]
    large_committed_pages=0x50,   # [R2W]
    segment_list_head=0x60,       # [R2W] "SegmentListHead (single)"
    vs_context=0xB0,              # [R2W]
    lfh_context=0x120,            # [R2W]
)
