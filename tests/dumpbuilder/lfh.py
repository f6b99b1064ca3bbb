"""Lfh: the Low Fragmentation Heap front end of an NtHeap (windows-heap-layouts.md section 9).

    h = NtHeap(b, 0x21F4AE00000, arch="x64", epoch="win10_1809", seed=7, ...)
    key = lfh_key(0x1234)                       # one RtlpLFHKey per ntdll (per process side)
    lfh = Lfh(h, build=19041, key=key, seed=8)  # allocates the _LFH_HEAP, sets FrontEndHeap
    z = lfh.zone()                              # an _LFH_BLOCK_ZONE in a back-end block
    lfh.subsegment(z, 0x30, [("b", 0x18), ("f",), ("b", 0x20, stack)])   # one UserBlocks
    lfh.retired(z, 0x40, 12)                    # a descriptor whose UserBlocks is 0
    h.finish()                                  # NtHeap calls lfh.write() and lfh.rows()

Three models, by OS build (lfh_model_for_build):

    win7   Windows 7 SP1 (7601): zones with FreePointer/Limit, no bitmap, blocks from
           UserBlocks + sizeof(_HEAP_USERDATA_HEADER), stride BlockSize * granularity.
    win80  Windows 8.0 (9200): the 8.0 header shape (plain FirstAllocationOffset/BlockStride,
           bitmap) -- a reader has no block encoding for it, so every container is expected
           as not_decoded "unsupported_build".  x64 only (the doc has no 8.0 x86 header).
    win81  Windows 8.1 (9600) .. Windows 11: NextIndex zones, EncodedOffsets (section 9.6 E1),
           SubSegmentCode (section 9.7 E2), u16 block index, busy bitmap.

Every offset and constant below is transcribed from windows-heap-layouts.md ("the doc") with
the section it comes from; source tags in brackets ([NTD], [R2W], [HST], [BIN], ...) are the
doc's own (its section 0).  Nothing here is taken from the project's reader.  Where the doc says
UNCONFIRMED / INFERRED / single source the comment says so, and CONVENTIONS (which goes into
every LFH scenario's JSON as ``lfh_conventions``) repeats every choice the builder made where
the doc leaves room.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .builder import PAGE, pattern
from .heap import Block, Corruption, NtHeap, VirtualBlock, _Canvas
from .heap_layouts import HEAP_ENTRY_BUSY, HEAP_ENTRY_VIRTUAL_ALLOC

MODELS = ("win7", "win80", "win81")


def lfh_model_for_build(build: int) -> str:
    """doc 9 column headings: Win7 (< 9200), Win8.0 (9200), Win8.1 .. Win11 (>= 9600)."""
    if build < 9200:
        return "win7"
    if build < 9600:
        return "win80"
    return "win81"


# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------
FRONT_END_LFH = 2                 # doc 4.1: FrontEndHeapType 2 = LFH ([MPF], [DHU], [HST])
USERDATA_SIGNATURE = 0xF0E0D0C0   # doc 9.5: _HEAP_USERDATA_HEADER.Signature ([MPF], [SYR], [BIN])
LFH_MARK = 0x80                   # doc 6.4 / 9.7: UnusedBytes bit 0x80 = LFH block ([HST], [DHU])
LFH_FREE = 0x80                   # doc 9.7: free block UnusedBytes 0x80 (at init: single source
                                  # [BIN]; after a free: UNCONFIRMED, "expected 0x80")
LFH_OVERFLOW = 0xBF               # doc 9.7: busy with unused >= 0x3F ([BIN]); real count elsewhere
OVERFLOW_AT = 0x3F                # doc 9.7: "0x80 + unused if unused < 0x3F, else 0xBF"
LFH_UST_BUSY = 0xC2               # doc 9.7 / 11.3: +ust busy LFH block ([HST], [DHU] LfhFlagUstBusy)
ZONE_BYTES = 0x3F0                # doc 9.2: a Win11 x64 zone is a 0x3F0-byte allocation
                                  # ([BIN 11-24H2 RtlpLowFragHeapAllocateFromZone], single source)
GUARD_FLAGS = (1, 2)              # doc 9.4: guard-page subsegments have Flags & 3 != 0
                                  # ([BIN RtlpSubSegmentDebugInitialize], single source)


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class LfhHeapLayout:
    """_LFH_HEAP, the fields a walker reads (doc 9.1)."""

    sub_segment_zones: int           # LIST_ENTRY of _LFH_BLOCK_ZONE.ListEntry
    zone_block_size: int | None      # Win7 only
    heap: int                        # back-pointer to the _HEAP
    size: int                        # bytes the builder allocates for it (see each row)


# doc 9.1 table: [R2W Win7x86], [NTD] excerpts, [HST] (x86 0x18 Win7, 0x4 Win8+),
# [R2W Win10x64], [NTK].
# Sizes: Win7 x86 DERIVED HERE from doc 9.1/9.3: LocalData[1] at 0x310 + sizeof(_HEAP_LOCAL_DATA)
# 0x3418 = 0x3728.  Win7 x64: LocalData offset UNCONFIRMED in the doc; 0x6A00 (>= the 0x6030-byte
# _HEAP_LOCAL_DATA plus the fields before it) is the builder's choice.  Win8+ x64: 0xcf0 is [NTK]'s
# Win11 sizeof (= 1607's LocalData 0xcc0 + 0x30, doc 9.1/9.3); for 8.0/8.1 UNCONFIRMED, same size
# used.  Win8+ x86: not in the doc (UNCONFIRMED); 0x700 is the builder's choice.
LFH_HEAP_WIN7_X86 = LfhHeapLayout(sub_segment_zones=0x18, zone_block_size=0x20, heap=0x24, size=0x3728)
LFH_HEAP_WIN7_X64 = LfhHeapLayout(sub_segment_zones=0x28, zone_block_size=0x38, heap=0x40, size=0x6A00)
LFH_HEAP_WIN8_X86 = LfhHeapLayout(sub_segment_zones=0x04, zone_block_size=None, heap=0x0C, size=0x700)
LFH_HEAP_WIN8_X64 = LfhHeapLayout(sub_segment_zones=0x08, zone_block_size=None, heap=0x18, size=0xCF0)


@dataclass(frozen=True)
class ZoneLayout:
    """_LFH_BLOCK_ZONE (doc 9.2)."""

    list_entry: int
    free_pointer: int | None         # Win7 / Win8.0: end of the used descriptors
    limit: int | None                # Win7 / Win8.0
    next_index: int | None           # Win8.1+: int32, descriptors handed out
    first: int                       # offset of the first _HEAP_SUBSEGMENT


# doc 9.2: Win7 x86 [R2W]; Win8.1+ x64 [R2W Win10x64], [NTK], first at +0x20 per [HST], [DHU];
# x86 8.1 [HST] (NextIndex +8, array +0x10).  The Win8.0 row is from [HST]'s version switch,
# UNCONFIRMED by a PDB.
ZONE_WIN7_X86 = ZoneLayout(list_entry=0x00, free_pointer=0x08, limit=0x0C, next_index=None, first=0x10)
ZONE_WIN7_X64 = ZoneLayout(list_entry=0x00, free_pointer=0x10, limit=0x18, next_index=None, first=0x20)
ZONE_WIN81_X86 = ZoneLayout(list_entry=0x00, free_pointer=None, limit=None, next_index=0x08, first=0x10)
ZONE_WIN81_X64 = ZoneLayout(list_entry=0x00, free_pointer=None, limit=None, next_index=0x10, first=0x20)


@dataclass(frozen=True)
class SubsegmentLayout:
    """_HEAP_SUBSEGMENT (doc 9.4)."""

    local_info: int
    user_blocks: int
    delay_free_list: int | None      # Win8+
    aggregate_exchg: int
    aggregate_size: int              # _INTERLOCK_SEQ: 8 bytes Win7, 4 bytes Win8+
    block_size: int                  # u16, granules, header included
    flags: int                       # u16
    block_count: int                 # u16
    size_index: int                  # u8
    affinity_index: int              # u8
    sfree_list_entry: int
    size: int


# doc 9.4 table: [R2W Win7x86], [NTD Win7 x64, 8.1 x64/x86], [R2W Win10x64], [NTK]; [HST] x86
# values; [MPF] Win7.  Lock (0x1c/0x28 Win7, 0x20 x86 8+, 0x38 8.1 / 0x2c 1607+ x64) is not written.
SUBSEG_WIN7_X86 = SubsegmentLayout(0x00, 0x04, None, 0x08, 8, 0x10, 0x12, 0x14, 0x16, 0x17, 0x18, 0x20)
SUBSEG_WIN7_X64 = SubsegmentLayout(0x00, 0x08, None, 0x10, 8, 0x18, 0x1A, 0x1C, 0x1E, 0x1F, 0x20, 0x30)
SUBSEG_WIN8_X86 = SubsegmentLayout(0x00, 0x04, 0x08, 0x10, 4, 0x14, 0x16, 0x18, 0x1A, 0x1B, 0x1C, 0x28)
SUBSEG_WIN8_X64 = SubsegmentLayout(0x00, 0x08, 0x10, 0x20, 4, 0x24, 0x26, 0x28, 0x2A, 0x2B, 0x30, 0x40)


@dataclass(frozen=True)
class UserDataLayout:
    """_HEAP_USERDATA_HEADER (doc 9.5), the start of every UserBlocks container."""

    subsegment: int
    reserved: int
    size_index: int
    signature: int
    signature_width: int             # 4, or 8 (Win7 x64: u64)
    encoded_offsets: int | None      # Win8.1+
    first_allocation_offset: int | None   # Win8.0: plain u16
    block_stride: int | None              # Win8.0: plain u16
    busy_bitmap: int | None          # RTL_BITMAP (x86) / RTL_BITMAP_EX (x64): SizeOfBitMap, Buffer
    bitmap_data: int | None          # inline bitmap words
    bitmap_word: int                 # bytes per bitmap word (see CONVENTIONS "bitmap")
    size: int


# doc 9.5 table: [R2W Win7x86], [NTD Win7 x64], [NTD Win8 x64 Standalone], [NTD Win8.1 x64/x86],
# [NTD 2004 x86], [R2W Win10x64], [NTK].  The Win8.0 x64 column is a single [NTD] standalone
# header; Win8.0 x86 is UNCONFIRMED in the doc (not modelled).
UD_WIN7_X86 = UserDataLayout(0x00, 0x04, 0x08, 0x0C, 4, None, None, None, None, None, 4, 0x10)
UD_WIN7_X64 = UserDataLayout(0x00, 0x08, 0x10, 0x18, 8, None, None, None, None, None, 8, 0x20)
UD_WIN80_X64 = UserDataLayout(0x00, 0x08, 0x10, 0x14, 4, None, 0x18, 0x1A, 0x20, 0x30, 8, 0x38)
UD_WIN81_X86 = UserDataLayout(0x00, 0x04, 0x08, 0x0C, 4, 0x10, None, None, 0x14, 0x1C, 4, 0x20)
UD_WIN81_X64 = UserDataLayout(0x00, 0x08, 0x10, 0x14, 4, 0x18, None, None, 0x20, 0x30, 8, 0x38)


@dataclass(frozen=True)
class BlockLayout:
    """An LFH block header (doc 6.1 _HEAP_ENTRY and doc 9.7).  ``group`` is where the 8-byte
    Size..UnusedBytes group sits (x86 +0, x64 +8); inside it: +0 u32 SubSegmentCode,
    +4 u8 (not written by ntdll: [BIN]), +5 u16 block index, +7 UnusedBytes."""

    group: int
    header: int                      # user data offset without +ust: 8 x86, 0x10 x64
    granularity: int                 # 8 x86, 16 x64 (doc 1.1 / 1.2)
    code_shift: int                  # E2: blk >> 3 x86, blk >> 4 x64 (doc 9.7)
    offset_shift: int                # E2: (blk - UB) << 13 x86, << 12 x64 (doc 9.7)
    overflow_width: int              # doc 9.7: real unused count u32 x86 / u64 x64
    tail: int                        # bytes past the last block a container must hold (CONVENTIONS)
    ust_min_extra: int               # doc 11.3: [HST] rejects extra < 0x18 x86, extra + 8 < 0x30 x64


BLOCK_X86 = BlockLayout(group=0, header=8, granularity=8, code_shift=3, offset_shift=13,
                        overflow_width=4, tail=0, ust_min_extra=0x18)
BLOCK_X64 = BlockLayout(group=8, header=0x10, granularity=16, code_shift=4, offset_shift=12,
                        overflow_width=8, tail=8, ust_min_extra=0x28)


@dataclass(frozen=True)
class LfhLayouts:
    model: str
    lfh_heap: LfhHeapLayout
    zone: ZoneLayout
    subsegment: SubsegmentLayout
    userdata: UserDataLayout
    block: BlockLayout
    zone_capacity: int | None        # Win8.1+: descriptors per 0x3F0-byte zone


# Win8.1+ zone capacity: x64 15 ([BIN 11-24H2]: i < 15, 0x20 + 15 * 0x40 = 0x3E0 <= 0x3F0).
# x86: UNCONFIRMED (doc 9.2 / 13).  Builder's choice: the x86 zone is also a 0x3F0-byte
# allocation and holds as many 0x28-byte descriptors as fit after +0x10:
# (0x3F0 - 0x10) // 0x28 = 24 -- the same rule that gives x64's 15 ((0x3F0 - 0x20) // 0x40).
LFH_LAYOUTS: dict[tuple[str, str], LfhLayouts] = {
    ("x86", "win7"): LfhLayouts("win7", LFH_HEAP_WIN7_X86, ZONE_WIN7_X86, SUBSEG_WIN7_X86,
                                UD_WIN7_X86, BLOCK_X86, None),
    ("x64", "win7"): LfhLayouts("win7", LFH_HEAP_WIN7_X64, ZONE_WIN7_X64, SUBSEG_WIN7_X64,
                                UD_WIN7_X64, BLOCK_X64, None),
    # Win8.0: _LFH_HEAP and _HEAP_SUBSEGMENT per the "Win8+" columns (doc 9.1, 9.4); the zone
    # has the Win7/Win8.0 shape (doc 9.2, [HST], UNCONFIRMED); _HEAP_USERDATA_HEADER per the
    # Win8.0 x64 column (doc 9.5).
    ("x64", "win80"): LfhLayouts("win80", LFH_HEAP_WIN8_X64, ZONE_WIN7_X64, SUBSEG_WIN8_X64,
                                 UD_WIN80_X64, BLOCK_X64, None),
    ("x86", "win81"): LfhLayouts("win81", LFH_HEAP_WIN8_X86, ZONE_WIN81_X86, SUBSEG_WIN8_X86,
                                 UD_WIN81_X86, BLOCK_X86, (ZONE_BYTES - 0x10) // 0x28),
    ("x64", "win81"): LfhLayouts("win81", LFH_HEAP_WIN8_X64, ZONE_WIN81_X64, SUBSEG_WIN8_X64,
                                 UD_WIN81_X64, BLOCK_X64, (ZONE_BYTES - 0x20) // 0x40),
}
assert LFH_LAYOUTS[("x64", "win81")].zone_capacity == 15
assert LFH_LAYOUTS[("x86", "win81")].zone_capacity == 24


def lfh_layouts(arch: str, model: str) -> LfhLayouts:
    try:
        return LFH_LAYOUTS[(arch, model)]
    except KeyError:
        raise ValueError(f"no LFH layout for arch={arch!r} model={model!r}") from None


# ---------------------------------------------------------------------------
# Formulas
# ---------------------------------------------------------------------------
def lfh_key(seed: int) -> int:
    """A per-process RtlpLFHKey (doc 9.6 / 9.9 E5: random per process, only the low 32 bits
    enter the encodings).  Never 0 and never with a zero half, so E1/E2 visibly change."""
    rng = random.Random(seed)
    while True:
        k = rng.getrandbits(32)
        if k & 0xFFFF and k >> 16:
            return k


def encoded_offsets(first: int, stride: int, lfh: int, ub: int, key: int) -> int:
    """doc 9.6 / 9.9 E1: EO = (First | Stride << 16) ^ (u32)LFH ^ (u32)UB ^ K
    ([BIN RtlpSubSegmentInitialize]; [HST], [DHU], [MPF], [SYR], [R2C])."""
    assert 0 <= first < 0x10000 and 0 < stride < 0x10000
    return ((first | stride << 16) ^ lfh ^ ub ^ key) & 0xFFFFFFFF


def subsegment_code(arch: str, heap: int, key: int, blk: int, ub: int) -> int:
    """doc 9.7 / 9.9 E2: x64 code = (u32)Heap ^ K ^ (u32)(blk >> 4) ^ ((blk - UB) << 12) (dword at
    blk+8; CONFIRMED); x86 code = Heap ^ K ^ (blk >> 3) ^ ((blk - UB) << 13) (dword at blk+0;
    CONFIRMED: [SYR] + an unattributed x86 decompile)."""
    lay = BLOCK_X64 if arch == "x64" else BLOCK_X86
    off = blk - ub
    assert off > 0 and off % lay.granularity == 0
    assert off << lay.offset_shift < 1 << 32, "container too large for the code's offset field"
    return (heap ^ key ^ (blk >> lay.code_shift) ^ (off << lay.offset_shift)) & 0xFFFFFFFF


def first_offset(arch: str, ub_size: int, stride: int) -> int:
    """Offset of the first block in a Win8.1+ container.

    x64, doc 9.6 (single source [BIN RtlpSubSegmentInitialize], 21H2 and 24H2):
        First = ((((UBsize - 0x40) / Stride + 31) >> 3) + 0x40) & ~0xF
    x86: UNCONFIRMED in the doc (9.6, 9.9 step 7, 13).  Builder's choice, the x64 formula with
    the x86 header size (0x20 instead of 0x40, 8-byte granules):
        First = ((((UBsize - 0x20) / Stride + 31) >> 3) + 0x20) & ~0x7
    """
    if arch == "x64":
        return ((((ub_size - 0x40) // stride + 31) >> 3) + 0x40) & ~0xF
    return ((((ub_size - 0x20) // stride + 31) >> 3) + 0x20) & ~0x7


def block_count(arch: str, ub_size: int, first: int, stride: int) -> int:
    """Blocks a Win8.1+ container of UBsize bytes holds: x64 doc 9.6 (blocks are laid out while
    blk + Stride + 8 <= UB + UBsize, [BIN]); x86 builder's choice blk + Stride <= UB + UBsize
    (no next-header bytes are borrowed on x86, doc 6.4)."""
    tail = (BLOCK_X64 if arch == "x64" else BLOCK_X86).tail
    return max(0, (ub_size - first - tail) // stride)


def guard_stride(block_size_field: int) -> int:
    """doc 9.4 [BIN RtlpGetReservedBlockSize] (single source): R = (BlockSize*16 + 0x1000) & ~0xFFF,
    stride = R + 0x1000 (page-rounded block plus one guard page)."""
    return guard_reserved(block_size_field) + PAGE


def guard_reserved(block_size_field: int) -> int:
    return (block_size_field * 16 + 0x1000) & ~0xFFF


def _align(v: int, to: int) -> int:
    return (v + to - 1) // to * to


CONVENTIONS = {
    "models": "win7 = build 7601; win80 = build 9200 (not decodable: no block encoding in the "
              "doc, every container not_decoded unsupported_build, lfh.key null); win81 = "
              "builds 9600 .. 26100 (doc 9.6 E1 / 9.7 E2)",
    "key": "one RtlpLFHKey per ntdll, seeded random u32 with both halves non-zero; all heaps of "
           "one process side share it; a WOW64 process has one for its 64-bit and one for its "
           "32-bit ntdll; lfh.key is null on Windows 7 (the walk needs no key) and on 8.0",
    "lfh_heap": "win81 / win80: the _LFH_HEAP is the user data of a busy back-end block of the "
                "heap's first segment (Flags BUSY); win7: of a virtual block on "
                "VirtualAllocdBlocks (FrontEndHeap = VAE + 0x20/0x40, +ust 0x30/0x60); the row "
                "holding it has kind lfh_heap (only its first page is in the dump; the rest "
                "of the virtual block is MEM_COMMIT but not captured).  Bytes allocated: x86 Win7 0x3728 (0x310 + "
                "0x3418, derived), x64 Win7 0x6A00 (UNCONFIRMED), x64 8+ 0xCF0 ([NTK] sizeof), "
                "x86 8+ 0x700 (UNCONFIRMED)",
    "zones": "win81: a zone is an ordinary busy back-end block (Flags BUSY) of 0x3F0 user bytes; "
             "capacity x64 15 (doc 9.2), x86 24 = (0x3F0 - 0x10) // 0x28 (UNCONFIRMED, builder's "
             "choice); NextIndex = descriptors handed out (may exceed the capacity: a reader "
             "uses min(NextIndex, capacity)).  win7 / win80: Flags BUSY|VIRTUAL_ALLOC, 0x3F0 "
             "user bytes too (UNCONFIRMED), FreePointer = the address after the last used "
             "descriptor, Limit = the address after the last whole descriptor slot; Win7 "
             "_LFH_HEAP.ZoneBlockSize = 0x3F0 (meaning UNCONFIRMED).  Zones are on "
             "_LFH_HEAP.SubSegmentZones in creation order",
    "containers": "each UserBlocks is the user data of a busy back-end block of a segment (kind "
                  "lfh_container): win81 / win80 Flags BUSY|VIRTUAL_ALLOC, win7 the same (0x09); "
                  "_HEAP_USERDATA_HEADER.SubSegment points at the descriptor, Signature "
                  "0xF0E0D0C0, SizeIndex = the descriptor's",
    "ub_size": "win81 / win80: UBsize (the value in the section 9.6 First formula) = the "
               "container's back-end user size (doc 9.6 'first candidate'), the smallest such "
               "size that holds BlockCount blocks, plus an optional slack in granules",
    "first": "win81 x64: section 9.6 formula; win81 x86 (UNCONFIRMED): ((((UBsize - 0x20) / "
             "Stride + 31) >> 3) + 0x20) & ~7; win80: the x64 formula written plainly into "
             "FirstAllocationOffset/BlockStride; win7: sizeof(_HEAP_USERDATA_HEADER) (0x10/0x20)",
    "block_count": "win81 x64: blocks while blk + Stride + 8 <= UB + UBsize (doc 9.6); x86: "
                   "while blk + Stride <= UB + UBsize (builder's choice); win7 / guard-page: "
                   "the given count",
    "guard_pages": "x64 win81 only: Flags 1 or 2, BlockSize = (user block + 0x10) / 16, stride "
                   "= ((BlockSize*16 + 0x1000) & ~0xFFF) + 0x1000 (doc 9.4, single source); P "
                   "= first page boundary at or after the end of the header and bitmap; first "
                   "block P + R - BlockSize*16 - 0x10 (Flags 1) or P + 0x1000 (Flags 2) (doc "
                   "9.6, single source); EncodedOffsets hold that (First, Stride); the guard "
                   "pages are ordinary captured zero bytes (no PAGE_NOACCESS region)",
    "bitmap": "win81 / win80: RTL_BITMAP(_EX) SizeOfBitMap = BlockCount, Buffer = the inline "
              "BitmapData; words of 8 bytes (x64, doc 9.5) / 4 bytes (x86, RTL_BITMAP's ULONG "
              "buffer: builder's choice); bit i set = block i busy; bits from BlockCount to the "
              "end of the last word set (doc 9.5 [BIN])",
    "block_header": "win81: SubSegmentCode per E2 at blk+0 (x86) / blk+8 (x64), block index u16 "
                    "at +5 / +0x0d, the byte before it 0; win7 / win80: SubSegmentCode is an "
                    "opaque seeded u32 (Win7 [SYR] form single source, 8.0 UNCONFIRMED: no "
                    "reader may use it), index bytes 0 (win7) / the index (win80)",
    "unused_bytes": "busy: 0x80 | unused (unused = BlockSize*gran - request, >= 8; x64 borrows "
                    "the next header's 8 bytes); win81 busy with unused >= 0x3F: 0xBF and the "
                    "real count as u64 at blk + BlockSize*16 (x64) / u32 at blk + 8*BlockSize "
                    "- 4 (x86) (doc 9.7); free: 0x80 (doc 9.7, after a free UNCONFIRMED); +ust "
                    "busy: 0xC2 with the section 11.3 header (trace pointer +0x08/+0x10, u16 "
                    "extra +0x14/+0x2c, user data +0x18/+0x30, user size BlockSize*gran - extra, "
                    "extra >= 0x18 x86 / 0x28 x64)",
    "aggregate_exchg": "win81 / win80: u32 = free count | (seeded hint < 0x8000) << 16 (doc 9.4 "
                       "[BIN]); win7: Depth u16 = free count, FreeEntryOffset 0, Sequence a "
                       "seeded u32",
    "retired": "a retired descriptor keeps its stale BlockSize/BlockCount (so a 'stop at "
               "BlockSize == 0' rule does not end the zone early), UserBlocks 0, free count = "
               "BlockCount, Flags 0; it sits between live descriptors",
    "rows": "children of an lfh_container (level 1, parent = the container row's address): "
            "overhead [row, UB + First) (what 'header'); per block an lfh_block [blk, blk + "
            "BlockSize*gran); for guard-page subsegments an overhead 'gap' [blk + "
            "BlockSize*16, blk + Stride) after every block; overhead 'slack' [UB + First + "
            "n*Stride, row end) when not empty.  Overhead rows: busy false (not an "
            "allocation; docs/block-model.md gives containers alone the 'enclosing block is "
            "busy' rule), flags 0, "
            "unused_bytes 0, no user data.  lfh_block rows: flags 0; busy: user_address blk + "
            "8/0x10 (+ust 0x18/0x30), user_size, unused_bytes = size - user_size; free: "
            "user_address 0, user_size 0, unused_bytes = the raw byte (0x80); unused_raw = the "
            "raw UnusedBytes byte; overflow true for the 0xBF form",
    "not_decoded": "win80 containers: unsupported_build (no corruption record); a container "
                   "whose EncodedOffsets and block codes use another key: corrupt, with a heap "
                   "corruption record of kind lfh_bad_encoding; a container whose UserBlocks "
                   "pages are left out of the dump (region kept MEM_COMMIT): not_captured, with "
                   "a heap corruption record of kind not_captured (as for a missing segment "
                   "page; size = the missing bytes); the back-end walk is not affected.  Both "
                   "records: address = UserBlocks, container = the row address, subsegment, "
                   "user_blocks, segment.  A container that is not decoded has no children and "
                   "its blocks count nowhere (busy_user_bytes_all, size_classes)",
    "subsegments": "lfh.subsegments[] in zone order then slot order, retired ones included; "
                   "block_size = BlockSize * granularity; first/stride/busy_count are the "
                   "builder's truth (for a not_decoded container a reader cannot confirm them); "
                   "free_count_field = the free count in AggregateExchg",
    "size_classes": "per block size in bytes over the decoded, non-retired subsegments: "
                    "subsegments, blocks, busy, busy_user_bytes",
    "relies_on": [
        "doc 1.2 / 4.2: Win10 1507-1803 x86 FrontEndHeap 0xd4 / FrontEndHeapType 0xda are "
        "INFERRED (lfh_win10_1607_x86)",
        "doc 1.1: Win8.0 x64 _HEAP assumed equal to 8.1, UNCONFIRMED (lfh_win8_x64); 1903-22H2 "
        "and Win11 21H2-23H2 _HEAP not read individually (19041 and 26100 use the 1809+ row)",
        "doc 9.1: sizeof(_LFH_HEAP) except Win7 x86 (derived) and Win11 x64 ([NTK]) is "
        "UNCONFIRMED; only the lfh_heap block's size depends on it",
        "doc 9.2: the 0x3F0-byte zone and its cap of 15 are single source ([BIN], Win11 x64) "
        "and are used for 8.1 .. 10 too; the x86 cap (24 here) and the x86 zone size are "
        "UNCONFIRMED; the Win8.0 zone shape is [HST] only, UNCONFIRMED; Win7 / 8.0 zone size "
        "and the meaning of Limit and ZoneBlockSize are the builder's choice",
        "doc 9.4: the guard-page stride is single source ([BIN])",
        "doc 9.5: the Win8.0 x64 _HEAP_USERDATA_HEADER is one [NTD] standalone header",
        "doc 9.6: the x64 First formula is single source ([BIN], Win11) and is used for 8.1 .. "
        "10 too; UBsize = the back-end user size is UNCONFIRMED; the x86 First formula is "
        "UNCONFIRMED (builder's choice); the guard-page first-block rule is single source",
        "doc 9.7: free UnusedBytes 0x80 at initialisation is single source ([BIN]), after a "
        "free UNCONFIRMED; the x86 overflow location (u32 at blk + 8*BlockSize - 4) comes from "
        "[BIN], which covers x64 binaries only; the Win7 SubSegmentCode ([SYR] only) and the "
        "Win8.0 block encoding (UNCONFIRMED) are not modelled (opaque values)",
        "doc 9.7 / 11.3: the +ust LFH form (0xC2, header layout) is [HST] / [DHU]",
        "doc 9.5: x86 bitmap words of 4 bytes are the builder's choice",
    ],
}


# ---------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------
@dataclass
class LfhBlock:
    index: int
    address: int
    busy: bool
    request: int
    raw: int                          # UnusedBytes byte as written
    unused: int                       # the real unused count (busy) / extra (+ust)
    overflow: bool
    frames: tuple[int, ...] = ()
    trace: int = 0
    user_address: int = 0
    user_size: int = 0


@dataclass
class Zone:
    address: int                      # the _LFH_BLOCK_ZONE (user data of ``block``)
    block: Block
    capacity: int
    slots: list["Subsegment"] = field(default_factory=list)
    extra_next_index: int = 0         # win81: NextIndex beyond the used slots (failed attempts)

    @property
    def next_index(self) -> int:
        return len(self.slots) + self.extra_next_index


@dataclass
class Subsegment:
    address: int
    zone: Zone
    slot: int
    block_size_field: int             # BlockSize, granules
    flags: int
    retired: bool
    block_count: int
    size_index: int
    hint: int
    sequence: int = 0
    container: Block | None = None
    ub: int = 0
    ub_size: int = 0
    first: int = 0
    stride: int = 0
    blocks: list[LfhBlock] = field(default_factory=list)
    not_decoded: str | None = None
    write_key: int | None = None      # win81: the key E1/E2 use for this container
    dropped: bool = False

    @property
    def busy_count(self) -> int:
        return sum(1 for b in self.blocks if b.busy) if not self.retired else 0

    @property
    def free_count(self) -> int:
        return self.block_count - self.busy_count


BlockSpec = Sequence[Any]   # ("b", request[, stack]) | ("f",)


class Lfh:
    """The LFH front end of one NtHeap.  Constructing it allocates the _LFH_HEAP and makes it
    the heap's FrontEndHeap (FrontEndHeapType 2)."""

    def __init__(self, heap: NtHeap, *, build: int, key: int | None, seed: int,
                 virtual_address: int | None = None, segment: int = 0):
        if heap.lfh is not None:
            raise ValueError("heap already has a front end")
        if heap.finished:
            raise RuntimeError("heap already written")
        self.heap = heap
        self.arch = heap.arch
        self.build = build
        self.model = lfh_model_for_build(build)
        self.L = lfh_layouts(self.arch, self.model)
        if self.model == "win81":
            if key is None:
                raise ValueError("a Windows 8.1+ LFH needs its process's RtlpLFHKey")
            self.key: int | None = key & 0xFFFFFFFF
        else:
            self.key = None           # Win7: no key needed; Win8.0: not decodable
        self.rng = random.Random(seed)
        self.zones: list[Zone] = []
        self.subsegments: list[Subsegment] = []
        self.lfh_block: Block | VirtualBlock
        if self.model == "win7":
            if virtual_address is None:
                raise ValueError("Windows 7 keeps the _LFH_HEAP in a virtual block: "
                                 "give virtual_address")
            # Only the first page is captured (the fields a walker reads are in it).
            v = heap.add_virtual(virtual_address, self.L.lfh_heap.size, kind="lfh_heap",
                                 capture="head")
            self.lfh_block = v
            self.address = v.user_address
        else:
            blk = heap.segments[segment].busy(self.L.lfh_heap.size, kind="lfh_heap")
            self.lfh_block = blk
            self.address = heap._user(blk)[0]
        heap.lfh = self

    # ------------------------------------------------------------ front end
    @property
    def front_end_heap(self) -> int:
        return self.address

    @property
    def front_end_type(self) -> int:
        return FRONT_END_LFH

    @property
    def ptr(self) -> int:
        return self.heap.ptr

    def _seg(self, segment: int):
        return self.heap.segments[segment]

    def _user_offset(self) -> int:
        e = self.heap.entry
        return e.ust_user if self.heap.ust else e.header_size

    # ------------------------------------------------------------ zones
    def zone(self, segment: int = 0) -> Zone:
        """A new _LFH_BLOCK_ZONE (appended to SubSegmentZones) in a back-end block."""
        Z, S = self.L.zone, self.L.subsegment
        if self.model == "win81":
            flags = HEAP_ENTRY_BUSY
        else:
            flags = HEAP_ENTRY_BUSY | HEAP_ENTRY_VIRTUAL_ALLOC
        blk = self._seg(segment).busy(ZONE_BYTES, kind="lfh_zone", flags=flags)
        address = self.heap._user(blk)[0]
        capacity = (ZONE_BYTES - Z.first) // S.size
        if self.L.zone_capacity is not None:
            assert capacity == self.L.zone_capacity
        z = Zone(address, blk, capacity)
        self.zones.append(z)
        return z

    def overfill(self, zone: Zone, attempts: int) -> None:
        """win81: NextIndex counts ``attempts`` more requests than the zone has slots
        (doc 9.2: failed attempts keep incrementing; a reader uses min(NextIndex, 15))."""
        if self.model != "win81":
            raise ValueError("NextIndex exists on Windows 8.1+ only")
        if len(zone.slots) != zone.capacity:
            raise ValueError("only a full zone sees failed attempts")
        zone.extra_next_index = attempts

    def _slot(self, zone: Zone) -> tuple[int, int]:
        if len(zone.slots) >= zone.capacity:
            raise ValueError(f"zone {zone.address:#x} is full ({zone.capacity} descriptors)")
        i = len(zone.slots)
        return i, zone.address + self.L.zone.first + i * self.L.subsegment.size

    def _size_index(self, block_size_field: int) -> int:
        # Plausible bucket number (not read by any walker in the doc).
        return min(block_size_field - 1, 0x7F)

    # ------------------------------------------------------------ subsegments
    def retired(self, zone: Zone, block_bytes: int, block_count: int) -> Subsegment:
        """A descriptor whose UserBlocks were released: UserBlocks 0, stale BlockSize/Count."""
        g = self.heap.entry.granularity
        if block_bytes % g or block_bytes < 2 * g:
            raise ValueError("block size must be a multiple of the granularity, >= 2 granules")
        i, at = self._slot(zone)
        ss = Subsegment(at, zone, i, block_bytes // g, 0, True, block_count,
                        self._size_index(block_bytes // g), 0,
                        sequence=self.rng.getrandbits(32))
        zone.slots.append(ss)
        self.subsegments.append(ss)
        return ss

    def subsegment(self, zone: Zone, block_bytes: int, blocks: Sequence[BlockSpec] | None = None, *,
                   segment: int = 0, slack: int = 0, guard: int = 0,
                   page_aligned_pages: int = 0, fill: Sequence[BlockSpec] | None = None,
                   not_captured: bool = False, write_key: int | None = None) -> Subsegment:
        """A live subsegment and its UserBlocks container (a busy back-end block of
        ``segment``).  ``block_bytes`` = BlockSize * granularity (the user block plus its
        header); ``blocks``: one spec per block, ("b", request[, stack]) or ("f",).

        guard=1/2: a guard-page subsegment (x64 win81).  page_aligned_pages=k: the container's
        UserBlocks start on a page boundary and span exactly k pages (the block count follows
        from the size; ``fill`` specs are cycled over the blocks).  not_captured: leave those
        pages out of the dump (needs page_aligned_pages).  write_key: write E1/E2 with this key
        instead of the process's (a mis-keyed container, expected not_decoded "corrupt")."""
        heap, A = self.heap, self.arch
        g = heap.entry.granularity
        bl = self.L.block
        U = self.L.userdata
        if block_bytes % g or block_bytes < 2 * g:
            raise ValueError("block size must be a multiple of the granularity, >= 2 granules")
        bs_field = block_bytes // g
        seg = self._seg(segment)
        i, at = self._slot(zone)
        uoff = self._user_offset()

        if guard:
            if self.model != "win81" or A != "x64" or guard not in GUARD_FLAGS:
                raise ValueError("guard-page subsegments: x64 Windows 8.1+, Flags 1 or 2")
            if blocks is None:
                raise ValueError("give the blocks of a guard-page subsegment")
            n = len(blocks)
            stride = guard_stride(bs_field)
            r = guard_reserved(bs_field)
            ub = seg.cursor + uoff
            hdr_end = U.bitmap_data + _align(n, 64) // 8
            p_boundary = _align(ub + hdr_end, PAGE)
            first_blk = (p_boundary + r - bs_field * 16 - 0x10) if guard & 1 else p_boundary + PAGE
            first = first_blk - ub
            ub_size = first + n * stride + bl.tail + slack
        elif page_aligned_pages:
            if fill is None:
                raise ValueError("page_aligned_pages needs fill specs")
            pad = (-(seg.cursor + uoff)) % PAGE
            if pad and pad < heap.min_free:
                pad += PAGE
            if pad:
                seg.free(pad)
            ub = seg.cursor + uoff
            assert ub % PAGE == 0
            # The container ends exactly at ub + k pages (so the next block header is on the
            # next, captured page): back-end Size*gran = uoff + k*PAGE.
            want_bytes = uoff + page_aligned_pages * PAGE
            borrow = 8 if A == "x64" else 0
            ub_size = want_bytes - uoff + borrow
            size, _unused = heap.busy_size(ub_size)
            assert size * g == want_bytes, (hex(size * g), hex(want_bytes))
            stride = block_bytes
            first = self._first(ub_size, stride, 0)
            n = self._count(ub_size, first, stride)
            blocks = [fill[k % len(fill)] for k in range(n)]
        else:
            if blocks is None or not blocks:
                raise ValueError("a subsegment needs blocks")
            n = len(blocks)
            stride = block_bytes
            ub_size = self._ub_size_for(n, stride)
            first = self._first(ub_size, stride, n)
            if slack:
                if slack % g:
                    raise ValueError("slack must be a multiple of the granularity")
                ub_size += slack
                first2 = self._first(ub_size, stride, n)
                if first2 != first or self._count(ub_size, first, stride) != n:
                    raise ValueError("slack too large: it would change First or the block count")
            ub = seg.cursor + uoff

        if not_captured and not page_aligned_pages:
            raise ValueError("not_captured needs page_aligned_pages")
        if self.model == "win81" and not guard:
            assert self._count(ub_size, first, stride) == n
        assert n >= 1 and first + n * stride <= ub_size

        # The bitmap must fit before the first block (doc 9.6: First leaves room for it).
        if U.bitmap_data is not None:
            wbits = 8 * U.bitmap_word
            assert U.bitmap_data + _align(n, wbits) // 8 <= first, "bitmap runs into the blocks"
        else:
            assert first == U.size

        flags = HEAP_ENTRY_BUSY | HEAP_ENTRY_VIRTUAL_ALLOC
        blk = seg.busy(ub_size, kind="lfh_container", flags=flags)
        if heap._user(blk)[0] != ub:
            raise ValueError("the container did not land where its layout was computed (the "
                             "committed range is too small); give the segment more room")
        assert heap._user(blk)[1] == ub_size

        ss = Subsegment(at, zone, i, bs_field, guard, False, n, self._size_index(bs_field),
                        self.rng.randrange(0x8000), sequence=self.rng.getrandbits(32),
                        container=blk, ub=ub, ub_size=ub_size, first=first, stride=stride)
        ss.blocks = self._make_blocks(ss, blocks)
        if write_key is not None:
            if self.model != "win81" or write_key == self.key:
                raise ValueError("write_key: a different key on a Windows 8.1+ LFH")
            ss.write_key = write_key & 0xFFFFFFFF
            ss.not_decoded = "corrupt"
            heap.corruptions.append(Corruption(
                ub, "lfh_bad_encoding",
                f"UserBlocks {ub:#x}: EncodedOffsets and every SubSegmentCode were written with "
                f"key {ss.write_key:#010x}, not the process's RtlpLFHKey {self.key:#010x}",
                {"container": blk.address, "user_blocks": ub, "subsegment": at,
                 "segment": seg.base}))
        elif self.model == "win81":
            ss.write_key = self.key
        if self.model == "win80":
            ss.not_decoded = "unsupported_build"
        if not_captured:
            ss.dropped = True
            ss.not_decoded = "not_captured"
            for k in range(page_aligned_pages):
                heap.drop_page(ub + k * PAGE, record=False)
            heap.corruptions.append(Corruption(
                ub, "not_captured",
                f"UserBlocks {ub:#x}..{ub + page_aligned_pages * PAGE:#x} of the LFH container "
                f"at {blk.address:#x} are absent from the dump (region is MEM_COMMIT)",
                {"container": blk.address, "user_blocks": ub, "subsegment": at,
                 "segment": seg.base, "size": page_aligned_pages * PAGE}))
        zone.slots.append(ss)
        self.subsegments.append(ss)
        return ss

    def _first(self, ub_size: int, stride: int, n: int) -> int:
        if self.model == "win7":
            return self.L.userdata.size
        return first_offset(self.arch, ub_size, stride)

    def _count(self, ub_size: int, first: int, stride: int) -> int:
        return block_count(self.arch, ub_size, first, stride)

    def _ub_size_for(self, n: int, stride: int) -> int:
        """The smallest UBsize (in granules) whose layout holds exactly n blocks."""
        g = self.heap.entry.granularity
        tail = self.L.block.tail
        if self.model == "win7":
            return self.L.userdata.size + n * stride + tail
        ub = _align(self.L.userdata.size + n * stride + tail, g)
        while True:
            first = first_offset(self.arch, ub, stride)
            c = block_count(self.arch, ub, first, stride)
            if c == n:
                return ub
            assert c < n, "UBsize search overshot"
            ub += g

    def _make_blocks(self, ss: Subsegment, specs: Sequence[BlockSpec]) -> list[LfhBlock]:
        heap = self.heap
        bl = self.L.block
        g = bl.granularity
        size = ss.block_size_field * g
        out = []
        for k, spec in enumerate(specs):
            at = ss.ub + ss.first + k * ss.stride
            if spec[0] == "f":
                out.append(LfhBlock(k, at, False, 0, LFH_FREE, 0, False))
                continue
            if spec[0] != "b":
                raise ValueError(f"block spec {spec!r}")
            request = spec[1]
            stack = spec[2] if len(spec) > 2 else None
            frames, trace = heap._trace_for(stack)
            unused = size - request
            if heap.ust:
                e = heap.entry
                if unused < bl.ust_min_extra:
                    raise ValueError(f"+ust LFH block of {size:#x} bytes: request {request:#x} "
                                     f"leaves {unused:#x} < {bl.ust_min_extra:#x} bytes of "
                                     f"header (doc 11.3)")
                out.append(LfhBlock(k, at, True, request, LFH_UST_BUSY, unused, False, frames,
                                    trace, at + e.ust_user, request))
                continue
            if unused < 8:
                raise ValueError(f"LFH block of {size:#x} bytes cannot hold {request:#x} bytes")
            overflow = unused >= OVERFLOW_AT
            if overflow and self.model != "win81":
                raise ValueError("the 0xBF overflow form is modelled on Windows 8.1+ only")
            raw = LFH_OVERFLOW if overflow else LFH_MARK | unused
            out.append(LfhBlock(k, at, True, request, raw, unused, overflow, (), 0,
                                at + bl.header, request))
        return out

    # ------------------------------------------------------------ writing
    def write(self, c: _Canvas) -> None:
        """Called by NtHeap.finish() once the back-end blocks are on the canvas."""
        heap, L, p = self.heap, self.L, self.heap.pfmt
        H, Z, S, U, bl = L.lfh_heap, L.zone, L.subsegment, L.userdata, L.block
        # _LFH_HEAP: the zone list and the back-pointer (doc 9.1).
        heap._list(c, self.address + H.sub_segment_zones,
                   [z.address + Z.list_entry for z in self.zones])
        c.pointer(self.address + H.heap, heap.address)
        if H.zone_block_size is not None:
            c.pack(self.address + H.zone_block_size, "<I", ZONE_BYTES)
        # Zones (doc 9.2).
        for z in self.zones:
            if Z.next_index is not None:
                c.pack(z.address + Z.next_index, "<I", z.next_index)
            else:
                c.pointer(z.address + Z.free_pointer,
                          z.address + Z.first + len(z.slots) * S.size)
                c.pointer(z.address + Z.limit, z.address + Z.first + z.capacity * S.size)
        for ss in self.subsegments:
            self._write_subsegment(c, ss)
            if ss.container is not None:
                self._write_container(c, ss)

    def _write_subsegment(self, c: _Canvas, ss: Subsegment) -> None:
        S, p = self.L.subsegment, self.heap.pfmt
        a = ss.address
        c.pointer(a + S.local_info, 0)
        c.pointer(a + S.user_blocks, 0 if ss.retired else ss.ub)
        if S.delay_free_list is not None:
            c.pointer(a + S.delay_free_list, 0)
        free = ss.block_count if ss.retired else ss.free_count
        if S.aggregate_size == 8:
            # Win7 _INTERLOCK_SEQ {Depth u16, FreeEntryOffset u16, Sequence u32} (doc 9.4).
            c.pack(a + S.aggregate_exchg, "<HHI", free, 0, ss.sequence)
        else:
            # Win8+ {Depth u16, Hint:15 / Lock:1} (doc 9.4; [BIN]: free count | hint << 16).
            c.pack(a + S.aggregate_exchg, "<I", free | (ss.hint & 0x7FFF) << 16)
        c.pack(a + S.block_size, "<H", ss.block_size_field)
        c.pack(a + S.flags, "<H", ss.flags)
        c.pack(a + S.block_count, "<H", ss.block_count)
        c.pack(a + S.size_index, "<B", ss.size_index)
        c.pack(a + S.affinity_index, "<B", 0)

    def _write_container(self, c: _Canvas, ss: Subsegment) -> None:
        heap, A, U, bl = self.heap, self.arch, self.L.userdata, self.L.block
        ub = ss.ub
        c.pointer(ub + U.subsegment, ss.address)
        c.pointer(ub + U.reserved, 0)
        c.pack(ub + U.size_index, "<B", ss.size_index)
        c.pack(ub + U.signature, "<I" if U.signature_width == 4 else "<Q", USERDATA_SIGNATURE)
        if U.encoded_offsets is not None:
            assert ss.write_key is not None
            c.pack(ub + U.encoded_offsets, "<I",
                   encoded_offsets(ss.first, ss.stride, self.address & 0xFFFFFFFF,
                                   ub & 0xFFFFFFFF, ss.write_key))
        if U.first_allocation_offset is not None:
            c.pack(ub + U.first_allocation_offset, "<H", ss.first)
            c.pack(ub + U.block_stride, "<H", ss.stride)
        if U.busy_bitmap is not None:
            w = U.bitmap_word
            wbits = 8 * w
            n = ss.block_count
            nwords = _align(n, wbits) // wbits
            c.pack(ub + U.busy_bitmap, "<I" if w == 4 else "<Q", n)          # SizeOfBitMap
            c.pointer(ub + U.busy_bitmap + w, ub + U.bitmap_data)             # Buffer
            bits = 0
            for b in ss.blocks:
                if b.busy:
                    bits |= 1 << b.index
            for k in range(n, nwords * wbits):
                bits |= 1 << k
            c.write(ub + U.bitmap_data, bits.to_bytes(nwords * w, "little"))
        g = bl.granularity
        size = ss.block_size_field * g
        # User data first (x64: it may run 8 bytes into the next block's first header bytes).
        for b in ss.blocks:
            if b.busy and b.user_size:
                c.write(b.user_address, pattern(b.user_address, b.user_size, heap.fill_tag))
        for b in ss.blocks:
            if self.model == "win81":
                code = subsegment_code(A, heap.address & 0xFFFFFFFF, ss.write_key,
                                       b.address, ub)
                index = b.index
            else:
                code = self.rng.getrandbits(32)     # opaque (see CONVENTIONS block_header)
                index = b.index if self.model == "win80" else 0
            c.pack(b.address + bl.group, "<IBHB", code, 0, index, b.raw)
            if b.busy and heap.ust:
                e = heap.entry
                c.pointer(b.address + e.ust_trace_pointer, b.trace)
                c.pack(b.address + e.ust_extra, "<H", b.unused)
            if b.overflow:
                if A == "x64":
                    c.pack(b.address + size, "<Q", b.unused)
                else:
                    c.pack(b.address + size - 4, "<I", b.unused)

    # ------------------------------------------------------------ expected
    def _decoded(self, ss: Subsegment) -> bool:
        return ss.container is not None and ss.not_decoded is None

    def busy_user_bytes(self) -> int:
        return sum(b.user_size for ss in self.subsegments if self._decoded(ss)
                   for b in ss.blocks if b.busy)

    def rows(self, recs: list[dict]) -> list[dict]:
        """The level-1 rows of every container; sets not_decoded on the container records."""
        heap = self.heap
        g = self.L.block.granularity
        by_addr = {r["address"]: r for r in recs}
        out: list[dict] = []
        for ss in self.subsegments:
            if ss.container is None:
                continue
            blk = ss.container
            rec = by_addr[blk.address]
            assert rec["kind"] == "lfh_container"
            rec["not_decoded"] = ss.not_decoded
            if ss.not_decoded is not None:
                continue
            p, end = blk.address, blk.end
            seg = heap.segments[blk.segment].base
            size = ss.block_size_field * g

            def overhead(lo: int, hi: int, what: str) -> dict:
                return {"address": lo, "segment": seg, "size": hi - lo, "busy": False,
                        "flags": 0, "unused_bytes": 0, "kind": "overhead", "user_address": 0,
                        "user_size": 0, "stack_trace_entry": 0, "frames": [], "parent": p,
                        "level": 1, "not_decoded": None, "what": what}

            kids = [overhead(p, ss.ub + ss.first, "header")]
            for b in ss.blocks:
                r = {"address": b.address, "segment": seg, "size": size, "busy": b.busy,
                     "flags": 0, "kind": "lfh_block", "parent": p, "level": 1,
                     "not_decoded": None, "block_index": b.index, "subsegment": ss.address,
                     "unused_raw": b.raw, "overflow": b.overflow,
                     "stack_trace_entry": b.trace, "frames": list(b.frames)}
                if b.busy:
                    r.update(user_address=b.user_address, user_size=b.user_size,
                             unused_bytes=size - b.user_size)
                    if heap.ust:
                        r["ust_extra"] = b.unused
                else:
                    r.update(user_address=0, user_size=0, unused_bytes=b.raw)
                heap._mark_lost_trace(r)
                kids.append(r)
                if ss.stride > size:
                    kids.append(overhead(b.address + size, b.address + ss.stride, "gap"))
            tail = ss.ub + ss.first + ss.block_count * ss.stride
            if tail < end:
                kids.append(overhead(tail, end, "slack"))
            # Tiling rule (docs/block-model.md): the children tile [p, p + size) exactly.
            pos = p
            for k in kids:
                assert k["address"] == pos and k["size"] > 0, (
                    f"container {p:#x}: row at {k['address']:#x}, expected {pos:#x}")
                pos += k["size"]
            assert pos == end, f"container {p:#x}: rows end at {pos:#x}, container at {end:#x}"
            out += kids
        return out

    def expected(self) -> dict:
        g = self.L.block.granularity
        blk = self.lfh_block
        row = blk.header_address if isinstance(blk, VirtualBlock) else blk.address
        subs = []
        for ss in self.subsegments:
            subs.append({
                "address": ss.address,
                "zone": ss.zone.address,
                "slot": ss.slot,
                "user_blocks": 0 if ss.retired else ss.ub,
                "container_address": ss.container.address if ss.container is not None else 0,
                "ub_size": ss.ub_size,
                "block_size": ss.block_size_field * g,
                "block_size_field": ss.block_size_field,
                "stride": None if ss.retired else ss.stride,
                "first": None if ss.retired else ss.first,
                "block_count": ss.block_count,
                "busy_count": ss.busy_count,
                "free_count_field": ss.block_count if ss.retired else ss.free_count,
                "flags": ss.flags,
                "retired": ss.retired,
                "not_decoded": ss.not_decoded,
                "busy_user_bytes": sum(b.user_size for b in ss.blocks if b.busy),
            })
        classes: dict[int, dict] = {}
        for ss in self.subsegments:
            if not self._decoded(ss):
                continue
            bs = ss.block_size_field * g
            c = classes.setdefault(bs, {"block_size": bs, "subsegments": 0, "blocks": 0,
                                        "busy": 0, "busy_user_bytes": 0})
            c["subsegments"] += 1
            c["blocks"] += ss.block_count
            c["busy"] += ss.busy_count
            c["busy_user_bytes"] += sum(b.user_size for b in ss.blocks if b.busy)
        zones = []
        for z in self.zones:
            d = {"address": z.address, "block": z.block.address, "capacity": z.capacity,
                 "used": len(z.slots)}
            if self.L.zone.next_index is not None:
                d["next_index"] = z.next_index
            else:
                d["free_pointer"] = z.address + self.L.zone.first + len(z.slots) * self.L.subsegment.size
                d["limit"] = z.address + self.L.zone.first + z.capacity * self.L.subsegment.size
            zones.append(d)
        decoded = [ss for ss in self.subsegments if self._decoded(ss)]
        return {
            "model": self.model,
            "front_end_heap": self.address,
            "front_end_heap_type": FRONT_END_LFH,
            "lfh_heap_row": row,
            "heap": self.heap.address,
            "key": self.key,
            "zones": [z.address for z in self.zones],
            "zone_details": zones,
            "subsegments": subs,
            "size_classes": [classes[k] for k in sorted(classes)],
            "containers": sum(1 for ss in self.subsegments if ss.container is not None),
            "containers_not_decoded": sum(1 for ss in self.subsegments
                                          if ss.container is not None and ss.not_decoded),
            "busy_count": sum(ss.busy_count for ss in decoded),
            "free_count": sum(ss.free_count for ss in decoded),
            "busy_user_bytes": self.busy_user_bytes(),
        }
