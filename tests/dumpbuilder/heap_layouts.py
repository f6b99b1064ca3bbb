"""Offset tables for the NT heap structures the heap builder writes.

Transcribed by hand from /work/shared/docs/windows-heap-layouts.md ("the doc");
every number carries the doc section it comes from.  Source tags in brackets
([NTD], [R2W], [HST], ...) are the doc's own source tags (its section 0).
Where the doc marks a value UNCONFIRMED or INFERRED the comment says so, and
where this file derives a value the doc does not give, the comment says
"DERIVED HERE" and shows the arithmetic.

Layout epochs (doc section 1 column headings):

    win7        Windows 7 SP1 (build 7601)
    win8        Windows 8 / 8.1 (9200, 9600)
    win10_1507  Windows 10 1507..1803 (10240..17134)
    win10_1809  Windows 10 1809..22H2 and Windows 11 (17763 and later)
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCHS = ("win7", "win8", "win10_1507", "win10_1809")
HEAP_ARCHES = ("x86", "x64")


def epoch_for_build(build: int) -> str:
    """The doc's column for an OS build number (section 1)."""
    if build < 9200:
        return "win7"
    if build < 10240:
        return "win8"
    if build < 17763:
        return "win10_1507"
    return "win10_1809"


# ---------------------------------------------------------------------------
# _HEAP_ENTRY (doc 6.1; identical Win7 SP1 -> Win11 per [NTD], [R2W], [NTK]).
# On x64 the first 8 bytes (PreviousBlockPrivateData) belong to the previous
# block's data area; the 8 bytes that carry Size..UnusedBytes start at +8.
# Within that 8-byte group the offsets are the same on both arches:
#   +0 Size (u16, granules)  +2 Flags (u8)  +3 SmallTagIndex (u8)
#   +4 PreviousSize (u16)    +6 SegmentOffset (u8)  +7 UnusedBytes (u8)
# Extended view (doc 6.1): +4 UnusedBytesLength (u16), +6 EntryOffset (u8),
# +7 ExtendedBlockSignature (u8) -- the same group, other names.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryLayout:
    arch: str
    ptr: int
    granularity: int       # doc 1.1/1.2 "Heap-entry granularity": 8 x86, 16 x64
    header_size: int       # sizeof(_HEAP_ENTRY): 8 x86, 0x10 x64 (doc 6.1)
    group: int             # where the 8-byte Size..UnusedBytes group sits: 0 x86, 8 x64 (doc 6.1)
    free_list: int         # _HEAP_FREE_ENTRY.FreeList: 0x08 x86, 0x10 x64 (doc 6.1)
    free_entry_size: int   # sizeof(_HEAP_FREE_ENTRY): 0x10 x86, 0x20 x64 (doc 6.1)
    # +ust per-block header (doc 11.3, [HST] Win7/8/8.1, [DHU] later builds):
    ust_trace_pointer: int  # header + 0x08 x86 / + 0x10 x64
    ust_extra: int          # u16 "extra" at header + 0x14 x86 / + 0x2c x64
    ust_user: int           # user data at header + 0x18 x86 / + 0x30 x64


ENTRY_X86 = EntryLayout(arch="x86", ptr=4, granularity=8, header_size=8, group=0,
                        free_list=0x08, free_entry_size=0x10,
                        ust_trace_pointer=0x08, ust_extra=0x14, ust_user=0x18)
ENTRY_X64 = EntryLayout(arch="x64", ptr=8, granularity=16, header_size=0x10, group=8,
                        free_list=0x10, free_entry_size=0x20,
                        ust_trace_pointer=0x10, ust_extra=0x2C, ust_user=0x30)


# ---------------------------------------------------------------------------
# _HEAP_SEGMENT (doc 5; "stable Win7 -> Win11": [NTD], [R2W], [NTK], [MPF], [HST]).
# The first 0x40 (x86) / 0x70 (x64) bytes of a _HEAP are this structure (doc 4).
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentLayout:
    entry: int
    segment_signature: int
    segment_flags: int
    segment_list_entry: int
    heap: int
    base_address: int
    number_of_pages: int
    first_entry: int
    last_valid_entry: int
    number_of_uncommitted_pages: int
    number_of_uncommitted_ranges: int
    segment_allocator_back_trace_index: int
    reserved: int
    ucr_segment_list: int
    size: int


SEGMENT_X86 = SegmentLayout(
    entry=0x00,
    segment_signature=0x08,                   # doc 5 / doc 1.2 row "_HEAP.SegmentSignature"
    segment_flags=0x0C,
    segment_list_entry=0x10,
    heap=0x18,
    base_address=0x1C,
    number_of_pages=0x20,
    first_entry=0x24,
    last_valid_entry=0x28,
    number_of_uncommitted_pages=0x2C,
    number_of_uncommitted_ranges=0x30,
    segment_allocator_back_trace_index=0x34,
    reserved=0x36,
    ucr_segment_list=0x38,
    size=0x40,
)
SEGMENT_X64 = SegmentLayout(
    entry=0x00,
    segment_signature=0x10,                   # doc 5 / doc 1.1
    segment_flags=0x14,
    segment_list_entry=0x18,
    heap=0x28,
    base_address=0x30,
    number_of_pages=0x38,
    first_entry=0x40,
    last_valid_entry=0x48,
    number_of_uncommitted_pages=0x50,
    number_of_uncommitted_ranges=0x54,
    segment_allocator_back_trace_index=0x58,
    reserved=0x5A,
    ucr_segment_list=0x60,
    size=0x70,
)


# ---------------------------------------------------------------------------
# _HEAP_UCR_DESCRIPTOR (doc 7, stable; [NTD], [R2W], [NTK]).
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class UcrLayout:
    list_entry: int      # links _HEAP.UCRList
    segment_entry: int   # links _HEAP_SEGMENT.UCRSegmentList
    address: int
    size_field: int      # bytes
    size: int


UCR_X86 = UcrLayout(list_entry=0x00, segment_entry=0x08, address=0x10, size_field=0x14, size=0x18)
UCR_X64 = UcrLayout(list_entry=0x00, segment_entry=0x10, address=0x20, size_field=0x28, size=0x30)


# ---------------------------------------------------------------------------
# _HEAP_VIRTUAL_ALLOC_ENTRY (doc 8; [NTD] 8.1/2004/1903, [R2W], [NTK]; the
# Win7 values come from [HST] only -- the Win7 PDB has no such type).
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class VirtualAllocLayout:
    entry: int            # LIST_ENTRY in _HEAP.VirtualAllocdBlocks
    extra_stuff: int      # _HEAP_ENTRY_EXTRA
    commit_size: int      # SIZE_T, bytes, includes this header
    reserve_size: int     # SIZE_T
    busy_block: int       # _HEAP_ENTRY, encoded
    size: int             # sizeof == user data offset without +ust
    ust_trace_pointer: int  # doc 11.3 / 12.5: VAE + 0x20 x86, + 0x40 x64 ([HST])
    ust_user: int           # doc 11.3 / 12.5: VAE + 0x30 x86, + 0x60 x64 ([HST])


VAE_X86 = VirtualAllocLayout(entry=0x00, extra_stuff=0x08, commit_size=0x10, reserve_size=0x14,
                             busy_block=0x18, size=0x20, ust_trace_pointer=0x20, ust_user=0x30)
VAE_X64 = VirtualAllocLayout(entry=0x00, extra_stuff=0x10, commit_size=0x20, reserve_size=0x28,
                             busy_block=0x30, size=0x40, ust_trace_pointer=0x40, ust_user=0x60)


# ---------------------------------------------------------------------------
# _RTL_STACK_TRACE_ENTRY (doc 11.1, "same shape Win7 -> Win11"; [R2W], [NTK], [NTD]).
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StackTraceLayout:
    hash_chain: int
    trace_count: int     # u16: TraceCount:11 | BlockDepth:5
    index_high: int
    index: int           # u16; +ust readers take the frame count from here (doc 11.1 quirk)
    depth: int           # u16; page-heap readers use this one
    back_trace: int      # ptr[32]
    size: int


STACK_X86 = StackTraceLayout(hash_chain=0x00, trace_count=0x04, index_high=0x06, index=0x08,
                             depth=0x0A, back_trace=0x0C, size=0x8C)
STACK_X64 = StackTraceLayout(hash_chain=0x00, trace_count=0x08, index_high=0x0A, index=0x0C,
                             depth=0x0E, back_trace=0x10, size=0x110)


# ---------------------------------------------------------------------------
# _HEAP_COUNTERS: the first six fields (doc 4.1, paragraph after the table).
# x64 ([NTD] 8.1+, [R2W]; Win7 x64 "same first six fields"):
#   TotalMemoryReserved 0x00, TotalMemoryCommitted 0x08, TotalMemoryLargeUCR 0x10,
#   TotalSizeInVirtualBlocks 0x18 (u64 each), TotalSegments 0x20, TotalUCRs 0x24 (u32).
# x86 ([NTD] 8.1 x86, 2004 x86): four u32 at 0x0/0x4/0x8/0xc, TotalSegments 0x10,
#   TotalUCRs 0x14.  Win7 x86 and Win10 1507-1803 x86 counters were not read
#   (UNCONFIRMED): the same shape is assumed.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CountersLayout:
    total_memory_reserved: int
    total_memory_committed: int
    total_memory_large_ucr: int
    total_size_in_virtual_blocks: int
    total_segments: int
    total_ucrs: int
    size_fields: int  # width of the first four (4 x86, 8 x64)


COUNTERS_X86 = CountersLayout(0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 4)
COUNTERS_X64 = CountersLayout(0x00, 0x08, 0x10, 0x18, 0x20, 0x24, 8)


# ---------------------------------------------------------------------------
# _HEAP (doc 4.1 x64, 4.2 x86).  Segment part (0x00..0x40 / 0x00..0x70) is in
# SegmentLayout above.  None = the field does not exist in that epoch.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HeapLayout:
    arch: str
    epoch: str
    flags: int
    force_flags: int
    compatibility_flags: int
    encode_flag_mask: int
    encoding: int                 # _HEAP_ENTRY-sized: 8 bytes x86, 16 bytes x64
    pointer_key: int | None       # Win7 only
    interceptor: int
    virtual_memory_threshold: int
    signature: int
    segment_reserve: int
    segment_commit: int
    decommit_free_block_threshold: int
    decommit_total_free_threshold: int
    total_free_size: int
    maximum_allocation_size: int
    process_heaps_list_index: int
    header_validate_length: int
    header_validate_copy: int
    next_available_tag_index: int
    maximum_tag_index: int
    tag_entries: int
    ucr_list: int
    align_round: int
    align_mask: int
    virtual_allocd_blocks: int
    segment_list: int
    allocator_back_trace_index: int
    non_dedicated_list_length: int
    blocks_index: int
    ucr_index: int
    pseudo_tag_entries: int
    free_lists: int
    lock_variable: int
    commit_routine: int
    stack_trace_init_var: int | None   # Win10+
    commit_limit_data: int | None      # 1809+
    front_end_heap: int
    front_heap_lock_count: int
    front_end_heap_type: int
    requested_front_end_heap_type: int | None  # Win8+
    counters: int
    tuning_parameters: int
    size: int

    def table(self) -> dict[str, int]:
        """The offsets as a plain dict (for the expected JSON)."""
        out = {}
        for k, v in self.__dict__.items():
            if isinstance(v, int) and not isinstance(v, bool) and v is not None:
                out[k] = v
        return out


# ---- x64 (doc 4.1) --------------------------------------------------------
HEAP_X64_WIN7 = HeapLayout(
    arch="x64", epoch="win7",
    flags=0x070,                          # doc 4.1 [NTD Win7_SP1 x64]
    force_flags=0x074,
    compatibility_flags=0x078,
    encode_flag_mask=0x07C,               # doc 1.1 / 4.1
    encoding=0x080,                       # doc 1.1 / 4.1 (16 bytes)
    pointer_key=0x090,                    # doc 4.1 (Win7 only)
    interceptor=0x098,
    virtual_memory_threshold=0x09C,
    signature=0x0A0,                      # doc 1.1 (Win7 differs from later: 0xa0)
    segment_reserve=0x0A8,
    segment_commit=0x0B0,
    decommit_free_block_threshold=0x0B8,
    decommit_total_free_threshold=0x0C0,
    total_free_size=0x0C8,
    maximum_allocation_size=0x0D0,
    process_heaps_list_index=0x0D8,
    header_validate_length=0x0DA,
    header_validate_copy=0x0E0,
    next_available_tag_index=0x0E8,
    maximum_tag_index=0x0EA,
    tag_entries=0x0F0,
    ucr_list=0x0F8,
    align_round=0x108,
    align_mask=0x110,
    virtual_allocd_blocks=0x118,          # doc 1.1 (bold: Win7 0x118)
    segment_list=0x128,                   # doc 1.1 (bold: Win7 0x128)
    allocator_back_trace_index=0x138,
    non_dedicated_list_length=0x13C,
    blocks_index=0x140,
    ucr_index=0x148,
    pseudo_tag_entries=0x150,
    free_lists=0x158,
    lock_variable=0x168,
    commit_routine=0x170,
    stack_trace_init_var=None,
    commit_limit_data=None,
    front_end_heap=0x178,                 # doc 1.1
    front_heap_lock_count=0x180,
    front_end_heap_type=0x182,            # doc 1.1
    requested_front_end_heap_type=None,
    counters=0x188,
    tuning_parameters=0x1F8,
    size=0x208,                           # doc 1.1 sizeof(_HEAP)
)

# Win8/8.1 x64: [NTD Win8.1 x64]; Win8.0 x64 "not read directly", assumed equal
# per [TRM] grouping (doc 1.1) -- UNCONFIRMED for 8.0.
HEAP_X64_WIN8 = HeapLayout(
    arch="x64", epoch="win8",
    flags=0x070, force_flags=0x074, compatibility_flags=0x078,
    encode_flag_mask=0x07C, encoding=0x080,      # doc 4.1
    pointer_key=None,                            # removed after Win7 (doc 4.1 "—")
    interceptor=0x090,
    virtual_memory_threshold=0x094,
    signature=0x098,                             # doc 1.1
    segment_reserve=0x0A0,
    segment_commit=0x0A8,
    decommit_free_block_threshold=0x0B0,
    decommit_total_free_threshold=0x0B8,
    total_free_size=0x0C0,
    maximum_allocation_size=0x0C8,
    process_heaps_list_index=0x0D0,
    header_validate_length=0x0D2,
    header_validate_copy=0x0D8,
    next_available_tag_index=0x0E0,
    maximum_tag_index=0x0E2,
    tag_entries=0x0E8,
    ucr_list=0x0F0,
    align_round=0x100,
    align_mask=0x108,
    virtual_allocd_blocks=0x110,                 # doc 1.1
    segment_list=0x120,                          # doc 1.1
    allocator_back_trace_index=0x130,
    non_dedicated_list_length=0x134,
    blocks_index=0x138,
    ucr_index=0x140,
    pseudo_tag_entries=0x148,
    free_lists=0x150,
    lock_variable=0x160,
    commit_routine=0x168,
    stack_trace_init_var=None,
    commit_limit_data=None,
    front_end_heap=0x170,                        # doc 1.1 (bold: 8/8.1 0x170)
    front_heap_lock_count=0x178,
    front_end_heap_type=0x17A,                   # doc 1.1 (bold: 8/8.1 0x17a)
    requested_front_end_heap_type=0x17B,
    counters=0x210,
    tuning_parameters=0x288,
    size=0x298,
)

# Win10 1507-1803 x64: 1607 [R2W], 1803 [NTD]; 1507/1511 INFERRED in the doc
# from [TRM] grouping.  Adds StackTraceInitVar at 0x170 (doc 4.1).
HEAP_X64_WIN10_1507 = HeapLayout(
    arch="x64", epoch="win10_1507",
    flags=0x070, force_flags=0x074, compatibility_flags=0x078,
    encode_flag_mask=0x07C, encoding=0x080,
    pointer_key=None,
    interceptor=0x090,
    virtual_memory_threshold=0x094,
    signature=0x098,
    segment_reserve=0x0A0,
    segment_commit=0x0A8,
    decommit_free_block_threshold=0x0B0,
    decommit_total_free_threshold=0x0B8,
    total_free_size=0x0C0,
    maximum_allocation_size=0x0C8,
    process_heaps_list_index=0x0D0,
    header_validate_length=0x0D2,
    header_validate_copy=0x0D8,
    next_available_tag_index=0x0E0,
    maximum_tag_index=0x0E2,
    tag_entries=0x0E8,
    ucr_list=0x0F0,
    align_round=0x100,
    align_mask=0x108,
    virtual_allocd_blocks=0x110,
    segment_list=0x120,
    allocator_back_trace_index=0x130,
    non_dedicated_list_length=0x134,
    blocks_index=0x138,
    ucr_index=0x140,
    pseudo_tag_entries=0x148,
    free_lists=0x150,
    lock_variable=0x160,
    commit_routine=0x168,
    stack_trace_init_var=0x170,                  # doc 4.1 (Win10 only)
    commit_limit_data=None,
    front_end_heap=0x178,                        # doc 1.1
    front_heap_lock_count=0x180,
    front_end_heap_type=0x182,                   # doc 1.1
    requested_front_end_heap_type=0x183,
    counters=0x218,
    tuning_parameters=0x290,
    size=0x2A0,
)

# Win10 1809+ and Win11 x64: 1809 [NTD], 20H1 kernel [NTD], Win11 [NTK]; the
# builds in between "not read individually" (doc 1.1: strictly UNCONFIRMED per
# build, high confidence).  CommitLimitData (0x20 bytes) at 0x178 (doc 4.1).
HEAP_X64_WIN10_1809 = HeapLayout(
    arch="x64", epoch="win10_1809",
    flags=0x070, force_flags=0x074, compatibility_flags=0x078,
    encode_flag_mask=0x07C, encoding=0x080,
    pointer_key=None,
    interceptor=0x090,
    virtual_memory_threshold=0x094,
    signature=0x098,
    segment_reserve=0x0A0,
    segment_commit=0x0A8,
    decommit_free_block_threshold=0x0B0,
    decommit_total_free_threshold=0x0B8,
    total_free_size=0x0C0,
    maximum_allocation_size=0x0C8,
    process_heaps_list_index=0x0D0,
    header_validate_length=0x0D2,
    header_validate_copy=0x0D8,
    next_available_tag_index=0x0E0,
    maximum_tag_index=0x0E2,
    tag_entries=0x0E8,
    ucr_list=0x0F0,
    align_round=0x100,
    align_mask=0x108,
    virtual_allocd_blocks=0x110,
    segment_list=0x120,
    allocator_back_trace_index=0x130,
    non_dedicated_list_length=0x134,
    blocks_index=0x138,
    ucr_index=0x140,
    pseudo_tag_entries=0x148,
    free_lists=0x150,
    lock_variable=0x160,
    commit_routine=0x168,
    stack_trace_init_var=0x170,
    commit_limit_data=0x178,                     # doc 4.1 note on CommitLimitData
    front_end_heap=0x198,                        # doc 1.1 (bold)
    front_heap_lock_count=0x1A0,
    front_end_heap_type=0x1A2,                   # doc 1.1 (bold)
    requested_front_end_heap_type=0x1A3,
    counters=0x238,
    tuning_parameters=0x2B0,
    size=0x2C0,
)

# ---- x86 (doc 4.2) --------------------------------------------------------
# Win7 x86: [R2W Win7x86 ntdll!_HEAP.raw] + [HST].
HEAP_X86_WIN7 = HeapLayout(
    arch="x86", epoch="win7",
    flags=0x40,                                  # doc 4.2
    force_flags=0x44,
    compatibility_flags=0x48,
    encode_flag_mask=0x4C,                       # doc 1.2
    encoding=0x50,                               # doc 1.2 (8 bytes; [HST] hard-codes 0x50)
    pointer_key=0x58,                            # Win7 only
    interceptor=0x5C,
    virtual_memory_threshold=0x60,
    signature=0x64,                              # doc 1.2 (bold: Win7 0x64)
    segment_reserve=0x68,
    segment_commit=0x6C,
    decommit_free_block_threshold=0x70,
    decommit_total_free_threshold=0x74,
    total_free_size=0x78,
    maximum_allocation_size=0x7C,
    process_heaps_list_index=0x80,
    header_validate_length=0x82,
    header_validate_copy=0x84,
    next_available_tag_index=0x88,
    maximum_tag_index=0x8A,
    tag_entries=0x8C,
    ucr_list=0x90,
    align_round=0x98,
    align_mask=0x9C,
    virtual_allocd_blocks=0xA0,                  # doc 1.2 (bold; [HST] 0xa0)
    segment_list=0xA8,                           # doc 1.2 (bold)
    allocator_back_trace_index=0xB0,
    non_dedicated_list_length=0xB4,
    blocks_index=0xB8,
    ucr_index=0xBC,
    pseudo_tag_entries=0xC0,
    free_lists=0xC4,
    lock_variable=0xCC,
    commit_routine=0xD0,
    stack_trace_init_var=None,
    commit_limit_data=None,
    front_end_heap=0xD4,                         # doc 1.2 ([HST] 0xd4)
    front_heap_lock_count=0xD8,
    front_end_heap_type=0xDA,                    # doc 1.2 ([HST] 0xda)
    requested_front_end_heap_type=None,
    counters=0xDC,
    tuning_parameters=0x130,
    size=0x138,                                  # doc 1.2: "derived: TuningParameters 0x130 + 8"
)

# Win8/8.1 x86: [NTD Win8.1 x86] + [HST] ("Win8 and later" up to 8.1).
HEAP_X86_WIN8 = HeapLayout(
    arch="x86", epoch="win8",
    flags=0x40, force_flags=0x44, compatibility_flags=0x48,
    encode_flag_mask=0x4C, encoding=0x50,
    pointer_key=None,
    interceptor=0x58,
    virtual_memory_threshold=0x5C,
    signature=0x60,                              # doc 1.2
    segment_reserve=0x64,
    segment_commit=0x68,
    decommit_free_block_threshold=0x6C,
    decommit_total_free_threshold=0x70,
    total_free_size=0x74,
    maximum_allocation_size=0x78,
    process_heaps_list_index=0x7C,
    header_validate_length=0x7E,
    header_validate_copy=0x80,
    next_available_tag_index=0x84,
    maximum_tag_index=0x86,
    tag_entries=0x88,
    ucr_list=0x8C,
    align_round=0x94,
    align_mask=0x98,
    virtual_allocd_blocks=0x9C,                  # doc 1.2 ([HST] 0x9c)
    segment_list=0xA4,                           # doc 1.2
    allocator_back_trace_index=0xAC,
    non_dedicated_list_length=0xB0,
    blocks_index=0xB4,
    ucr_index=0xB8,
    pseudo_tag_entries=0xBC,
    free_lists=0xC0,
    lock_variable=0xC8,
    commit_routine=0xCC,
    stack_trace_init_var=None,
    commit_limit_data=None,
    front_end_heap=0xD0,                         # doc 1.2 (bold; [HST] 0xd0)
    front_heap_lock_count=0xD4,
    front_end_heap_type=0xD6,                    # doc 1.2 (bold; [HST] 0xd6)
    requested_front_end_heap_type=0xD7,
    counters=0x1E0,
    tuning_parameters=0x23C,
    size=0x248,
)

# Win10 1507-1803 x86: the whole column is INFERRED in the doc (1.2: removing the
# 0x10-byte CommitLimitData from the 2004 layout).  Counters, TuningParameters and
# sizeof are UNCONFIRMED in the doc; DERIVED HERE the same way: the 1809 layout
# minus 0x10 -> Counters 0x1f4-0x10 = 0x1e4, TuningParameters 0x250-0x10 = 0x240,
# sizeof 0x258-0x10 = 0x248.  (Cross-check: FrontEndHeapStatusBitmap 0xe2 + 257
# = 0x1e3, next 4-aligned offset 0x1e4; the same arithmetic gives 8.1's 0x1e0
# and 1809's 0x1f4.)
HEAP_X86_WIN10_1507 = HeapLayout(
    arch="x86", epoch="win10_1507",
    flags=0x40, force_flags=0x44, compatibility_flags=0x48,
    encode_flag_mask=0x4C, encoding=0x50,
    pointer_key=None,
    interceptor=0x58,
    virtual_memory_threshold=0x5C,
    signature=0x60,                              # doc 1.2
    segment_reserve=0x64,
    segment_commit=0x68,
    decommit_free_block_threshold=0x6C,
    decommit_total_free_threshold=0x70,
    total_free_size=0x74,
    maximum_allocation_size=0x78,
    process_heaps_list_index=0x7C,
    header_validate_length=0x7E,
    header_validate_copy=0x80,
    next_available_tag_index=0x84,
    maximum_tag_index=0x86,
    tag_entries=0x88,
    ucr_list=0x8C,
    align_round=0x94,
    align_mask=0x98,
    virtual_allocd_blocks=0x9C,
    segment_list=0xA4,
    allocator_back_trace_index=0xAC,
    non_dedicated_list_length=0xB0,
    blocks_index=0xB4,
    ucr_index=0xB8,
    pseudo_tag_entries=0xBC,
    free_lists=0xC0,
    lock_variable=0xC8,
    commit_routine=0xCC,
    stack_trace_init_var=0xD0,                   # doc 4.2 (INFERRED)
    commit_limit_data=None,
    front_end_heap=0xD4,                         # doc 1.2 (INFERRED)
    front_heap_lock_count=0xD8,                  # INFERRED
    front_end_heap_type=0xDA,                    # doc 1.2 (INFERRED)
    requested_front_end_heap_type=0xDB,          # INFERRED
    counters=0x1E4,                              # UNCONFIRMED in doc; DERIVED HERE
    tuning_parameters=0x240,                     # UNCONFIRMED in doc; DERIVED HERE
    size=0x248,                                  # UNCONFIRMED in doc; DERIVED HERE
)

# Win10 1809+ x86: [NTD Win10_2004_20H1 x86]; other builds of the range not read
# individually (doc 1.2).  Windows 11 has no native x86; its WOW64 ntdll was
# not examined (UNCONFIRMED; the doc expects this column).
HEAP_X86_WIN10_1809 = HeapLayout(
    arch="x86", epoch="win10_1809",
    flags=0x40, force_flags=0x44, compatibility_flags=0x48,
    encode_flag_mask=0x4C, encoding=0x50,
    pointer_key=None,
    interceptor=0x58,
    virtual_memory_threshold=0x5C,
    signature=0x60,
    segment_reserve=0x64,
    segment_commit=0x68,
    decommit_free_block_threshold=0x6C,
    decommit_total_free_threshold=0x70,
    total_free_size=0x74,
    maximum_allocation_size=0x78,
    process_heaps_list_index=0x7C,
    header_validate_length=0x7E,
    header_validate_copy=0x80,
    next_available_tag_index=0x84,
    maximum_tag_index=0x86,
    tag_entries=0x88,
    ucr_list=0x8C,
    align_round=0x94,
    align_mask=0x98,
    virtual_allocd_blocks=0x9C,
    segment_list=0xA4,
    allocator_back_trace_index=0xAC,
    non_dedicated_list_length=0xB0,
    blocks_index=0xB4,
    ucr_index=0xB8,
    pseudo_tag_entries=0xBC,
    free_lists=0xC0,
    lock_variable=0xC8,
    commit_routine=0xCC,
    stack_trace_init_var=0xD0,                   # doc 4.2
    commit_limit_data=0xD4,                      # doc 4.2 (0x10 bytes)
    front_end_heap=0xE4,                         # doc 1.2 (bold)
    front_heap_lock_count=0xE8,
    front_end_heap_type=0xEA,                    # doc 1.2 (bold)
    requested_front_end_heap_type=0xEB,
    counters=0x1F4,
    tuning_parameters=0x250,
    size=0x258,
)

HEAP_LAYOUTS: dict[tuple[str, str], HeapLayout] = {
    ("x64", "win7"): HEAP_X64_WIN7,
    ("x64", "win8"): HEAP_X64_WIN8,
    ("x64", "win10_1507"): HEAP_X64_WIN10_1507,
    ("x64", "win10_1809"): HEAP_X64_WIN10_1809,
    ("x86", "win7"): HEAP_X86_WIN7,
    ("x86", "win8"): HEAP_X86_WIN8,
    ("x86", "win10_1507"): HEAP_X86_WIN10_1507,
    ("x86", "win10_1809"): HEAP_X86_WIN10_1809,
}


@dataclass(frozen=True)
class ArchLayouts:
    entry: EntryLayout
    segment: SegmentLayout
    ucr: UcrLayout
    vae: VirtualAllocLayout
    stack: StackTraceLayout
    counters: CountersLayout
    segment_heap_signature: int  # where a _SEGMENT_HEAP keeps 0xDDEEDDEE (doc 10)


ARCH_LAYOUTS = {
    "x86": ArchLayouts(ENTRY_X86, SEGMENT_X86, UCR_X86, VAE_X86, STACK_X86, COUNTERS_X86, 0x08),
    "x64": ArchLayouts(ENTRY_X64, SEGMENT_X64, UCR_X64, VAE_X64, STACK_X64, COUNTERS_X64, 0x10),
}


def heap_layout(arch: str, epoch: str) -> HeapLayout:
    try:
        return HEAP_LAYOUTS[(arch, epoch)]
    except KeyError:
        raise ValueError(f"no heap layout for arch={arch!r} epoch={epoch!r}; "
                         f"arches {HEAP_ARCHES}, epochs {EPOCHS}") from None


# ---------------------------------------------------------------------------
# Constants (values with their doc section).
# ---------------------------------------------------------------------------
SEGMENT_SIGNATURE = 0xFFEEFFEE        # doc 4/5: _HEAP(_SEGMENT).SegmentSignature
HEAP_SIGNATURE = 0xEEFFEEFF           # doc 4: _HEAP.Signature
SEGMENT_HEAP_SIGNATURE = 0xDDEEDDEE   # doc 10: _SEGMENT_HEAP.Signature
ENCODE_FLAG_MASK = 0x00100000         # doc 6.3 [DHU] HeapEncodeFlagMakeEncodingEnabled
FLG_USER_STACK_TRACE_DB = 0x00001000  # doc 3 (ust)

# _HEAP_ENTRY.Flags (doc 6.2: [ROS], [DHU], [SYR], [HST]).
HEAP_ENTRY_BUSY = 0x01
HEAP_ENTRY_EXTRA_PRESENT = 0x02
HEAP_ENTRY_FILL_PATTERN = 0x04
HEAP_ENTRY_VIRTUAL_ALLOC = 0x08
HEAP_ENTRY_LAST_ENTRY = 0x10

# _HEAP_ENTRY.UnusedBytes special values for back-end headers (doc 6.4, [SYR];
# only 3 is corroborated, by [HST]; 1 and 4 are UNCONFIRMED beyond [SYR]).
UNUSED_SEGMENT_HEADER = 0x01
UNUSED_LAST_BEFORE_UCR = 0x03
UNUSED_VIRTUAL_BLOCK = 0x04

# _HEAP.Flags bits.  The doc does not research these (doc 3: "their individual
# bit values were not researched, UNCONFIRMED").  Values from the public
# HeapCreate documentation (HEAP_NO_SERIALIZE 1, HEAP_GROWABLE 2) and the
# public NT headers' heap class field (HEAP_CLASS_1 0x1000 = private heap) and
# HEAP_CAPTURE_STACK_BACKTRACES 0x08000000; no expected value depends on them.
HEAP_NO_SERIALIZE = 0x00000001
HEAP_GROWABLE = 0x00000002
HEAP_CLASS_1 = 0x00001000
HEAP_CAPTURE_STACK_BACKTRACES = 0x08000000
PROCESS_HEAP_FLAGS = HEAP_GROWABLE                  # process heap: 0x00000002
PRIVATE_HEAP_FLAGS = HEAP_CLASS_1 | HEAP_GROWABLE   # HeapCreate(0, 0, 0): 0x00001002

# FrontEndHeapType (doc 4.1): 0 none, 2 LFH.
FRONT_END_NONE = 0
FRONT_END_LFH = 2
