//! NT heap (`ntdll` back end) structure offsets: `_HEAP`, `_HEAP_SEGMENT`, `_HEAP_ENTRY`,
//! `_HEAP_UCR_DESCRIPTOR`, `_HEAP_VIRTUAL_ALLOC_ENTRY` and the `_HEAP_COUNTERS` fields the walker
//! uses, per layout epoch and architecture (§1, §4–§8 of the layout reference).
//!
//! Only `_HEAP`'s tail (from `Signature` on) moves between epochs. `_HEAP_SEGMENT` (§5),
//! `_HEAP_ENTRY` (§6.1), `_HEAP_UCR_DESCRIPTOR` (§7) and `_HEAP_VIRTUAL_ALLOC_ENTRY` (§8) have one
//! shape per architecture from Windows 7 SP1 to Windows 11, so each row reuses the per-arch
//! constants below.
//!
//! Where the reference marks a value **INFERRED** or **UNCONFIRMED**, the comment next to it says
//! so, and fields with no value at all are `None`. The heap walker does not trust any row blindly:
//! it checks the row against the dump (§12.9) and falls back to trying every row of the
//! architecture (see `crate::heap::discover`).

use super::{builds, BuildRange, LayoutRow};
use crate::target::Arch;

/// `_HEAP_SEGMENT.SegmentSignature` (also `_HEAP.SegmentSignature`) of an NT heap (§4, §5, §12.1).
pub const HEAP_SEGMENT_SIGNATURE: u32 = 0xFFEE_FFEE;
/// `_HEAP.Signature` (§4).
pub const HEAP_SIGNATURE: u32 = 0xEEFF_EEFF;
/// `_SEGMENT_HEAP.Signature`, at the same offset as `SegmentSignature` (§10, \[MPF\] dispatch).
pub const SEGMENT_HEAP_SIGNATURE: u32 = 0xDDEE_DDEE;
/// `_HEAP.EncodeFlagMask` bit that turns on header encoding (§6.3, \[DHU\]
/// `HeapEncodeFlagMakeEncodingEnabled`).
pub const HEAP_ENCODE_FLAG_MAKE_ENCODING_ENABLED: u32 = 0x0010_0000;
/// Page size used by `NumberOfPages` / `NumberOfUnCommittedPages` (§5, \[MPF\]).
pub const PAGE_SIZE: u64 = 0x1000;

/// `_HEAP_ENTRY.Flags` bits (§6.2: \[ROS heap.h\], \[DHU heap_entry.h\], \[SYR\], \[HST\]).
pub mod entry_flags {
    /// HEAP_ENTRY_BUSY: the block is allocated.
    pub const BUSY: u8 = 0x01;
    /// HEAP_ENTRY_EXTRA_PRESENT: a `_HEAP_ENTRY_EXTRA` ends the block (§6.5).
    pub const EXTRA_PRESENT: u8 = 0x02;
    /// HEAP_ENTRY_FILL_PATTERN.
    pub const FILL_PATTERN: u8 = 0x04;
    /// HEAP_ENTRY_VIRTUAL_ALLOC: on a busy block inside a segment, an internal allocation, in
    /// practice an LFH UserBlocks container (§6.2, §12.3.6, \[MPF\]).
    pub const VIRTUAL_ALLOC: u8 = 0x08;
    /// HEAP_ENTRY_LAST_ENTRY.
    pub const LAST_ENTRY: u8 = 0x10;
    /// HEAP_ENTRY_SETTABLE_FLAG1..3 (mask, \[ROS\], \[DHU\] FlagUserMask 0xE0).
    pub const SETTABLE_MASK: u8 = 0xE0;
}

/// `_HEAP_ENTRY` (§6.1; identical Win7 SP1 → Win11 per \[NTD\], \[R2W\], \[NTK\]).
///
/// The 8 bytes that carry Size/Flags/SmallTagIndex/PreviousSize/SegmentOffset/UnusedBytes are
/// the *encoded group*: the whole header on x86, bytes 8..16 on x64 (bytes 0..8 of an x64 header
/// are `PreviousBlockPrivateData`, which belongs to the previous block's data). The field offsets
/// below are relative to the start of that group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLayout {
    /// Block granule in bytes: `Size` and `PreviousSize` count these (8 x86, 16 x64).
    pub granularity: u64,
    /// `sizeof(_HEAP_ENTRY)`; the user data of a back-end block starts here (§6.4).
    pub header_size: u64,
    /// Offset of the encoded 8-byte group inside the header (0 x86, 8 x64; §6.3).
    pub group: u16,
    /// `Size` (u16, granules, header included), relative to the group.
    pub size: u16,
    /// `Flags` (u8), relative to the group.
    pub flags: u16,
    /// `SmallTagIndex` (u8): the checksum `b0 ^ b1 ^ b2` when encoded (§6.3), relative to the group.
    pub small_tag_index: u16,
    /// `PreviousSize` (u16, granules), relative to the group.
    pub previous_size: u16,
    /// `SegmentOffset` / `LFHFlags` / extended-view `EntryOffset` (u8), relative to the group.
    pub segment_offset: u16,
    /// `UnusedBytes` (u8), relative to the group (§6.4).
    pub unused_bytes: u16,
}

/// `_HEAP_SEGMENT` (§5; stable Win7 → Win11). The first `sizeof` bytes of a `_HEAP` are the
/// `_HEAP_SEGMENT` of the heap's first segment (§4), so these offsets apply to `_HEAP` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLayout {
    /// `SegmentSignature` (u32, 0xFFEEFFEE).
    pub segment_signature: u16,
    /// `SegmentFlags` (u32).
    pub segment_flags: u16,
    /// `SegmentListEntry` (LIST_ENTRY linking `_HEAP.SegmentList`).
    pub segment_list_entry: u16,
    /// `Heap` (ptr to the owning `_HEAP`; a heap's own points to itself).
    pub heap: u16,
    /// `BaseAddress` (ptr).
    pub base_address: u16,
    /// `NumberOfPages` (u32): the segment reserves `NumberOfPages × 0x1000` bytes.
    pub number_of_pages: u16,
    /// `FirstEntry` (ptr): the first block after the segment header.
    pub first_entry: u16,
    /// `LastValidEntry` (ptr): end of the reserved segment range.
    pub last_valid_entry: u16,
    /// `NumberOfUnCommittedPages` (u32).
    pub number_of_uncommitted_pages: u16,
    /// `NumberOfUnCommittedRanges` (u32).
    pub number_of_uncommitted_ranges: u16,
    /// `UCRSegmentList` (LIST_ENTRY of `_HEAP_UCR_DESCRIPTOR.SegmentEntry`).
    pub ucr_segment_list: u16,
    /// `sizeof(_HEAP_SEGMENT)`.
    pub size: u16,
}

/// `_HEAP_UCR_DESCRIPTOR` (§7; stable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UcrLayout {
    /// `ListEntry` (links `_HEAP.UCRList`).
    pub list_entry: u16,
    /// `SegmentEntry` (links `_HEAP_SEGMENT.UCRSegmentList`); descriptor = link − this.
    pub segment_entry: u16,
    /// `Address` (ptr): first uncommitted byte.
    pub address: u16,
    /// `Size` (SIZE_T, bytes).
    pub size: u16,
    /// `sizeof(_HEAP_UCR_DESCRIPTOR)`.
    pub struct_size: u16,
}

/// `_HEAP_VIRTUAL_ALLOC_ENTRY` (§8) and where a virtual block's user data starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualAllocLayout {
    /// `Entry` (LIST_ENTRY on `_HEAP.VirtualAllocdBlocks`).
    pub entry: u16,
    /// `ExtraStuff` (`_HEAP_ENTRY_EXTRA`).
    pub extra_stuff: u16,
    /// `CommitSize` (SIZE_T, bytes, includes this header).
    pub commit_size: u16,
    /// `ReserveSize` (SIZE_T).
    pub reserve_size: u16,
    /// `BusyBlock` (`_HEAP_ENTRY`, encoded with the heap key; its `Size` holds the unused-byte
    /// count, not granules, §8).
    pub busy_block: u16,
    /// `sizeof(_HEAP_VIRTUAL_ALLOC_ENTRY)` = offset of the user data without `+ust`.
    pub struct_size: u16,
}

/// The per-block `+ust` header (§11.3; \[HST\] Win7/8/8.1, \[DHU\] later builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UstLayout {
    /// Pointer to the block's `_RTL_STACK_TRACE_ENTRY`, from the back-end block header.
    pub trace_pointer: u16,
    /// u16 total overhead ("extra") count, from the back-end block header.
    pub extra: u16,
    /// User data, from the back-end block header.
    pub user_data: u16,
    /// Pointer to the trace, from a `_HEAP_VIRTUAL_ALLOC_ENTRY`.
    pub virtual_trace_pointer: u16,
    /// User data, from a `_HEAP_VIRTUAL_ALLOC_ENTRY`.
    pub virtual_user_data: u16,
}

/// The `_HEAP_COUNTERS` fields used for the `!heap -s` numbers, relative to `_HEAP.Counters`
/// (§4.1 end: x64 SIZE_T fields, x86 u32 fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountersLayout {
    /// `TotalMemoryReserved` (SIZE_T).
    pub total_memory_reserved: u16,
    /// `TotalMemoryCommitted` (SIZE_T).
    pub total_memory_committed: u16,
    /// `TotalMemoryLargeUCR` (SIZE_T).
    pub total_memory_large_ucr: u16,
    /// `TotalSizeInVirtualBlocks` (SIZE_T).
    pub total_size_in_virtual_blocks: u16,
    /// `TotalSegments` (u32).
    pub total_segments: u16,
    /// `TotalUCRs` (u32).
    pub total_ucrs: u16,
}

/// `RTL_CRITICAL_SECTION` / `RTL_CRITICAL_SECTION_DEBUG` fields (winnt.h, public SDK; not in the
/// layout reference). Used for `!heap -s`'s "Lock cont." column; see `crate::heap::summary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriticalSectionLayout {
    /// `RTL_CRITICAL_SECTION.DebugInfo` (ptr).
    pub debug_info: u16,
    /// `RTL_CRITICAL_SECTION_DEBUG.CriticalSection` (ptr back to the critical section).
    pub debug_critical_section: u16,
    /// `RTL_CRITICAL_SECTION_DEBUG.ContentionCount` (u32).
    pub debug_contention_count: u16,
}

/// The `_HEAP` fields past the embedded `_HEAP_SEGMENT` (§4.1 x64, §4.2 x86).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapFields {
    /// `Flags` (u32).
    pub flags: u16,
    /// `ForceFlags` (u32).
    pub force_flags: u16,
    /// `EncodeFlagMask` (u32).
    pub encode_flag_mask: u16,
    /// `Encoding` (`_HEAP_ENTRY`: 8 bytes x86, 16 bytes x64).
    pub encoding: u16,
    /// The 8 key bytes XORed into an entry's encoded group: `Encoding` on x86, `Encoding + 8` on
    /// x64 (§6.3, \[MPF\] form).
    pub encoding_key: u16,
    /// `Signature` (u32, 0xEEFFEEFF).
    pub signature: u16,
    /// `TotalFreeSize` (SIZE_T, granules).
    pub total_free_size: u16,
    /// `UCRIndex` (ptr): the heap's UCR index allocation, a busy block of the first segment.
    pub ucr_index: u16,
    /// `VirtualAllocdBlocks` (LIST_ENTRY).
    pub virtual_allocd_blocks: u16,
    /// `SegmentList` (LIST_ENTRY).
    pub segment_list: u16,
    /// `LockVariable` (ptr to the heap lock).
    pub lock_variable: u16,
    /// `FrontEndHeap` (ptr).
    pub front_end_heap: u16,
    /// `FrontEndHeapType` (u8: 0 none, 1 look-aside, 2 LFH).
    pub front_end_heap_type: u16,
    /// `Counters` (`_HEAP_COUNTERS`), when its offset is known for the epoch.
    pub counters: Option<u16>,
    /// `sizeof(_HEAP)`, when known.
    pub size: Option<u16>,
}

/// Everything the NT heap walker needs for one (epoch, architecture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapLayout {
    /// `_HEAP_ENTRY`.
    pub entry: EntryLayout,
    /// `_HEAP_SEGMENT` (and the head of `_HEAP`).
    pub segment: SegmentLayout,
    /// The rest of `_HEAP`.
    pub heap: HeapFields,
    /// `_HEAP_COUNTERS` fields (relative to `heap.counters`).
    pub counters: CountersLayout,
    /// `_HEAP_UCR_DESCRIPTOR`.
    pub ucr: UcrLayout,
    /// `_HEAP_VIRTUAL_ALLOC_ENTRY`.
    pub virtual_alloc: VirtualAllocLayout,
    /// `+ust` per-block header.
    pub ust: UstLayout,
    /// Critical-section fields for the lock-contention count.
    pub critical_section: CriticalSectionLayout,
}

// ---- per-architecture constants shared by every epoch ------------------------------------------

/// §6.1 \[NTD\], \[R2W\], \[NTK\]: x86 header = the 8-byte group itself.
const ENTRY_X86: EntryLayout = EntryLayout {
    granularity: 8,
    header_size: 8,
    group: 0x0,
    size: 0x0,            // §6.1 Size @0x00
    flags: 0x2,           // §6.1 Flags @0x02
    small_tag_index: 0x3, // §6.1 SmallTagIndex @0x03
    previous_size: 0x4,   // §6.1 PreviousSize @0x04
    segment_offset: 0x6,  // §6.1 SegmentOffset @0x06
    unused_bytes: 0x7,    // §6.1 UnusedBytes @0x07
};

/// §6.1 \[NTD\], \[R2W\], \[NTK\]: x64 header = PreviousBlockPrivateData (8) + the 8-byte group at +8.
const ENTRY_X64: EntryLayout = EntryLayout {
    granularity: 16,
    header_size: 16,
    group: 0x8,           // §6.1: Size @0x08, i.e. the group starts at +8
    size: 0x0,            // §6.1 Size @0x08
    flags: 0x2,           // §6.1 Flags @0x0a
    small_tag_index: 0x3, // §6.1 SmallTagIndex @0x0b
    previous_size: 0x4,   // §6.1 PreviousSize @0x0c
    segment_offset: 0x6,  // §6.1 SegmentOffset @0x0e
    unused_bytes: 0x7,    // §6.1 UnusedBytes @0x0f
};

/// §5 x86 column (\[NTD\] Win8.1 x86, \[R2W\] Win7x86, \[MPF\], \[HST\]).
const SEGMENT_X86: SegmentLayout = SegmentLayout {
    segment_signature: 0x08,
    segment_flags: 0x0c,
    segment_list_entry: 0x10,
    heap: 0x18,
    base_address: 0x1c,
    number_of_pages: 0x20,
    first_entry: 0x24,
    last_valid_entry: 0x28,
    number_of_uncommitted_pages: 0x2c,
    number_of_uncommitted_ranges: 0x30,
    ucr_segment_list: 0x38,
    size: 0x40,
};

/// §5 x64 column (\[NTD\] Win7 x64 / 8.1 x64, \[R2W\] Win10x64, \[NTK\], \[MPF\]).
const SEGMENT_X64: SegmentLayout = SegmentLayout {
    segment_signature: 0x10,
    segment_flags: 0x14,
    segment_list_entry: 0x18,
    heap: 0x28,
    base_address: 0x30,
    number_of_pages: 0x38,
    first_entry: 0x40,
    last_valid_entry: 0x48,
    number_of_uncommitted_pages: 0x50,
    number_of_uncommitted_ranges: 0x54,
    ucr_segment_list: 0x60,
    size: 0x70,
};

/// §7 x86 (\[NTD\] 8.1 x86 and 20H2 x86 kernel excerpt, \[R2W\]).
const UCR_X86: UcrLayout =
    UcrLayout { list_entry: 0x00, segment_entry: 0x08, address: 0x10, size: 0x14, struct_size: 0x18 };
/// §7 x64 (\[NTD\] Win7 x64 / 8.1 x64, \[R2W\], \[NTK\]).
const UCR_X64: UcrLayout =
    UcrLayout { list_entry: 0x00, segment_entry: 0x10, address: 0x20, size: 0x28, struct_size: 0x30 };

/// §8 x86 (\[NTD\] 8.1 x86 / 2004 x86, \[HST\] 0x10/0x18/0x20, \[MPF\] 0x10/0x14/0x18). The Win7 SP1
/// PDB in \[NTD\] has no `_HEAP_VIRTUAL_ALLOC_ENTRY`; for Win7 these come from \[HST\] only.
const VIRTUAL_ALLOC_X86: VirtualAllocLayout = VirtualAllocLayout {
    entry: 0x00,
    extra_stuff: 0x08,
    commit_size: 0x10,
    reserve_size: 0x14,
    busy_block: 0x18,
    struct_size: 0x20,
};
/// §8 x64 (\[NTD\] 8.1 x64 / 1903 x64 excerpt, \[R2W\] Win10x64, \[NTK\], \[HST\] 0x20/0x30/0x40,
/// \[MPF\] 0x20/0x28/0x30). Win7 from \[HST\] only, as for x86.
const VIRTUAL_ALLOC_X64: VirtualAllocLayout = VirtualAllocLayout {
    entry: 0x00,
    extra_stuff: 0x10,
    commit_size: 0x20,
    reserve_size: 0x28,
    busy_block: 0x30,
    struct_size: 0x40,
};

/// §11.3 x86 (\[HST\] Win7/8/8.1, \[DHU\] later builds).
const UST_X86: UstLayout = UstLayout {
    trace_pointer: 0x08,
    extra: 0x14,
    user_data: 0x18,
    virtual_trace_pointer: 0x20,
    virtual_user_data: 0x30,
};
/// §11.3 x64 (\[HST\] Win7/8/8.1, \[DHU\] later builds).
const UST_X64: UstLayout = UstLayout {
    trace_pointer: 0x10,
    extra: 0x2c,
    user_data: 0x30,
    virtual_trace_pointer: 0x40,
    virtual_user_data: 0x60,
};

/// §4.1 end: x86 `_HEAP_COUNTERS` are u32s at 0x0/0x4/0x8/0xc, TotalSegments 0x10, TotalUCRs 0x14
/// (\[NTD\] Win8.1 x86, Win10 2004 x86). For Win7 x86 the field order is INFERRED from those; the
/// Win7 SP1 WOW64 fixture agrees (TotalMemoryReserved = segment pages × 0x1000,
/// TotalSizeInVirtualBlocks = the one virtual block's CommitSize).
const COUNTERS_X86: CountersLayout = CountersLayout {
    total_memory_reserved: 0x00,
    total_memory_committed: 0x04,
    total_memory_large_ucr: 0x08,
    total_size_in_virtual_blocks: 0x0c,
    total_segments: 0x10,
    total_ucrs: 0x14,
};
/// §4.1 end: x64 SIZE_T fields 0x00/0x08/0x10/0x18, TotalSegments 0x20, TotalUCRs 0x24
/// (\[NTD\], \[R2W\]; "Win7 x64 has the same first six fields").
const COUNTERS_X64: CountersLayout = CountersLayout {
    total_memory_reserved: 0x00,
    total_memory_committed: 0x08,
    total_memory_large_ucr: 0x10,
    total_size_in_virtual_blocks: 0x18,
    total_segments: 0x20,
    total_ucrs: 0x24,
};

/// winnt.h `RTL_CRITICAL_SECTION` (DebugInfo first) and `RTL_CRITICAL_SECTION_DEBUG`
/// {WORD Type; WORD CreatorBackTraceIndex; PRTL_CRITICAL_SECTION CriticalSection;
/// LIST_ENTRY ProcessLocksList; DWORD EntryCount; DWORD ContentionCount; ...}, 32-bit packing.
const CRITICAL_SECTION_X86: CriticalSectionLayout =
    CriticalSectionLayout { debug_info: 0x00, debug_critical_section: 0x04, debug_contention_count: 0x14 };
/// The same winnt.h structures with 64-bit pointers (CriticalSection aligned to 8).
const CRITICAL_SECTION_X64: CriticalSectionLayout =
    CriticalSectionLayout { debug_info: 0x00, debug_critical_section: 0x08, debug_contention_count: 0x24 };

const fn x86(heap: HeapFields) -> HeapLayout {
    HeapLayout {
        entry: ENTRY_X86,
        segment: SEGMENT_X86,
        heap,
        counters: COUNTERS_X86,
        ucr: UCR_X86,
        virtual_alloc: VIRTUAL_ALLOC_X86,
        ust: UST_X86,
        critical_section: CRITICAL_SECTION_X86,
    }
}

const fn x64(heap: HeapFields) -> HeapLayout {
    HeapLayout {
        entry: ENTRY_X64,
        segment: SEGMENT_X64,
        heap,
        counters: COUNTERS_X64,
        ucr: UCR_X64,
        virtual_alloc: VIRTUAL_ALLOC_X64,
        ust: UST_X64,
        critical_section: CRITICAL_SECTION_X64,
    }
}

/// Every known NT heap layout. x86 rows first, then x64; each architecture sorted by build.
pub static NT_HEAP_LAYOUTS: &[LayoutRow<HeapLayout>] = &[
    // ---------------------------------------------------------------- x86 (§1.2, §4.2)
    LayoutRow {
        name: "Win7 SP1 x86",
        arch: Arch::X86,
        builds: BuildRange { first: builds::WIN7, last: 7601 },
        source: "§1.2, §4.2 Win7 SP1 column: [R2W Win7x86 ntdll!_HEAP.raw], [HST] hard-coded 0x50/0xa0/0xd4/0xda; \
                 sizeof 0x138 derived (TuningParameters 0x130 + 8)",
        layout: x86(HeapFields {
            flags: 0x40,                 // §4.2 Flags
            force_flags: 0x44,           // §4.2 ForceFlags
            encode_flag_mask: 0x4c,      // §4.2 EncodeFlagMask
            encoding: 0x50,              // §4.2 Encoding (8 bytes) [HST]
            encoding_key: 0x50,          // §6.3: x86 XORs all 8 header bytes with heap+0x50
            signature: 0x64,             // §4.2 Signature (Win7 only at 0x64)
            total_free_size: 0x78,       // §4.2 TotalFreeSize
            ucr_index: 0xbc,             // §4.2 UCRIndex
            virtual_allocd_blocks: 0xa0, // §4.2 VirtualAllocdBlocks [HST]
            segment_list: 0xa8,          // §4.2 SegmentList
            lock_variable: 0xcc,         // §4.2 LockVariable
            front_end_heap: 0xd4,        // §4.2 FrontEndHeap [HST]
            front_end_heap_type: 0xda,   // §4.2 FrontEndHeapType [HST]
            counters: Some(0xdc),        // §4.2 Counters
            size: Some(0x138),           // §4.2 sizeof: derived, not read from a PDB
        }),
    },
    LayoutRow {
        name: "Win8/8.1 x86",
        arch: Arch::X86,
        builds: BuildRange { first: builds::WIN8, last: 9600 },
        source:
            "§1.2, §4.2 Win8/8.1 column: [NTD Win8.1 x86 ALL_SORTED.h], [HST] (0x9c, 0xd0, 0xd6 for Win8 and later); \
                 Win8.0 itself not read from a PDB",
        layout: x86(HeapFields {
            flags: 0x40,                 // §4.2 Flags
            force_flags: 0x44,           // §4.2 ForceFlags
            encode_flag_mask: 0x4c,      // §4.2 EncodeFlagMask
            encoding: 0x50,              // §4.2 Encoding
            encoding_key: 0x50,          // §6.3
            signature: 0x60,             // §4.2 Signature
            total_free_size: 0x74,       // §4.2 TotalFreeSize
            ucr_index: 0xb8,             // §4.2 UCRIndex
            virtual_allocd_blocks: 0x9c, // §4.2 VirtualAllocdBlocks
            segment_list: 0xa4,          // §4.2 SegmentList
            lock_variable: 0xc8,         // §4.2 LockVariable
            front_end_heap: 0xd0,        // §4.2 FrontEndHeap
            front_end_heap_type: 0xd6,   // §4.2 FrontEndHeapType
            counters: Some(0x1e0),       // §4.2 Counters [NTD Win8.1 x86]
            size: Some(0x248),           // §4.2 sizeof
        }),
    },
    LayoutRow {
        name: "Win10 1507-1803 x86",
        arch: Arch::X86,
        builds: BuildRange { first: builds::WIN10_1507, last: 17134 },
        source: "§1.2, §4.2 Win10 1507–1803 column: INFERRED (the 2004 x86 layout [NTD Win10_2004_20H1 x86] minus the \
                 0x10-byte CommitLimitData); Counters and sizeof UNCONFIRMED",
        layout: x86(HeapFields {
            flags: 0x40,                 // §4.2 Flags
            force_flags: 0x44,           // §4.2 ForceFlags
            encode_flag_mask: 0x4c,      // §4.2 EncodeFlagMask
            encoding: 0x50,              // §4.2 Encoding
            encoding_key: 0x50,          // §6.3
            signature: 0x60,             // §4.2 Signature
            total_free_size: 0x74,       // §4.2 TotalFreeSize
            ucr_index: 0xb8,             // §4.2 UCRIndex
            virtual_allocd_blocks: 0x9c, // §4.2 VirtualAllocdBlocks
            segment_list: 0xa4,          // §4.2 SegmentList
            lock_variable: 0xc8,         // §4.2 LockVariable
            front_end_heap: 0xd4,        // §4.2 FrontEndHeap: INFERRED
            front_end_heap_type: 0xda,   // §4.2 FrontEndHeapType: INFERRED
            counters: None,              // §4.2 Counters: UNCONFIRMED
            size: None,                  // §4.2 sizeof: UNCONFIRMED
        }),
    },
    LayoutRow {
        name: "Win10 1809+ x86",
        arch: Arch::X86,
        builds: BuildRange { first: builds::WIN10_1809, last: u32::MAX },
        source:
            "§1.2, §4.2 Win10 1809+ column: [NTD Win10_2004_20H1 x86]; other 1809–22H2 builds not read individually; \
                 the Win11 WOW64 32-bit ntdll is UNCONFIRMED (expected to match)",
        layout: x86(HeapFields {
            flags: 0x40,                 // §4.2 Flags
            force_flags: 0x44,           // §4.2 ForceFlags
            encode_flag_mask: 0x4c,      // §4.2 EncodeFlagMask
            encoding: 0x50,              // §4.2 Encoding
            encoding_key: 0x50,          // §6.3
            signature: 0x60,             // §4.2 Signature
            total_free_size: 0x74,       // §4.2 TotalFreeSize
            ucr_index: 0xb8,             // §4.2 UCRIndex
            virtual_allocd_blocks: 0x9c, // §4.2 VirtualAllocdBlocks
            segment_list: 0xa4,          // §4.2 SegmentList
            lock_variable: 0xc8,         // §4.2 LockVariable
            front_end_heap: 0xe4,        // §4.2 FrontEndHeap
            front_end_heap_type: 0xea,   // §4.2 FrontEndHeapType
            counters: Some(0x1f4),       // §4.2 Counters [NTD 2004 x86]
            size: Some(0x258),           // §4.2 sizeof
        }),
    },
    // ---------------------------------------------------------------- x64 (§1.1, §4.1)
    LayoutRow {
        name: "Win7 SP1 x64",
        arch: Arch::X64,
        builds: BuildRange { first: builds::WIN7, last: 7601 },
        source: "§1.1, §4.1 Win7 SP1 column: [NTD Win7_SP1 x64 ntdll ALL_SORTED.h]",
        layout: x64(HeapFields {
            flags: 0x70,                  // §4.1 Flags
            force_flags: 0x74,            // §4.1 ForceFlags
            encode_flag_mask: 0x7c,       // §4.1 EncodeFlagMask
            encoding: 0x80,               // §4.1 Encoding (16 bytes)
            encoding_key: 0x88,           // §6.3 [MPF]: Encoding bytes 8..15 XOR the entry's bytes 8..15
            signature: 0xa0,              // §4.1 Signature (Win7 only at 0xa0)
            total_free_size: 0xc8,        // §4.1 TotalFreeSize
            ucr_index: 0x148,             // §4.1 UCRIndex
            virtual_allocd_blocks: 0x118, // §4.1 VirtualAllocdBlocks
            segment_list: 0x128,          // §4.1 SegmentList
            lock_variable: 0x168,         // §4.1 LockVariable
            front_end_heap: 0x178,        // §4.1 FrontEndHeap
            front_end_heap_type: 0x182,   // §4.1 FrontEndHeapType
            counters: Some(0x188),        // §4.1 Counters
            size: Some(0x208),            // §4.1 sizeof
        }),
    },
    LayoutRow {
        name: "Win8/8.1 x64",
        arch: Arch::X64,
        builds: BuildRange { first: builds::WIN8, last: 9600 },
        source:
            "§1.1, §4.1 Win8/8.1 column: [NTD Win8.1 x64 ALL_SORTED.h]; Win8.0 x64 assumed equal per [TRM] grouping \
                 (not read directly)",
        layout: x64(HeapFields {
            flags: 0x70,                  // §4.1 Flags
            force_flags: 0x74,            // §4.1 ForceFlags
            encode_flag_mask: 0x7c,       // §4.1 EncodeFlagMask
            encoding: 0x80,               // §4.1 Encoding
            encoding_key: 0x88,           // §6.3 [MPF]
            signature: 0x98,              // §4.1 Signature
            total_free_size: 0xc0,        // §4.1 TotalFreeSize
            ucr_index: 0x140,             // §4.1 UCRIndex
            virtual_allocd_blocks: 0x110, // §4.1 VirtualAllocdBlocks
            segment_list: 0x120,          // §4.1 SegmentList
            lock_variable: 0x160,         // §4.1 LockVariable
            front_end_heap: 0x170,        // §4.1 FrontEndHeap
            front_end_heap_type: 0x17a,   // §4.1 FrontEndHeapType
            counters: Some(0x210),        // §4.1 Counters
            size: Some(0x298),            // §4.1 sizeof
        }),
    },
    LayoutRow {
        name: "Win10 1507-1803 x64",
        arch: Arch::X64,
        builds: BuildRange { first: builds::WIN10_1507, last: 17134 },
        source: "§1.1, §4.1 Win10 1507–1803 column: [R2W Win10x64] (1607, build INFERRED), [NTD Win10_1803_RS4 x64]; \
                 1507/1511 INFERRED from [TRM]",
        layout: x64(HeapFields {
            flags: 0x70,                  // §4.1 Flags
            force_flags: 0x74,            // §4.1 ForceFlags
            encode_flag_mask: 0x7c,       // §4.1 EncodeFlagMask
            encoding: 0x80,               // §4.1 Encoding
            encoding_key: 0x88,           // §6.3 [MPF]
            signature: 0x98,              // §4.1 Signature
            total_free_size: 0xc0,        // §4.1 TotalFreeSize
            ucr_index: 0x140,             // §4.1 UCRIndex
            virtual_allocd_blocks: 0x110, // §4.1 VirtualAllocdBlocks
            segment_list: 0x120,          // §4.1 SegmentList
            lock_variable: 0x160,         // §4.1 LockVariable
            front_end_heap: 0x178,        // §4.1 FrontEndHeap (after StackTraceInitVar 0x170)
            front_end_heap_type: 0x182,   // §4.1 FrontEndHeapType
            counters: Some(0x218),        // §4.1 Counters
            size: Some(0x2a0),            // §4.1 sizeof
        }),
    },
    LayoutRow {
        name: "Win10 1809+/Win11 x64",
        arch: Arch::X64,
        builds: BuildRange { first: builds::WIN10_1809, last: u32::MAX },
        source:
            "§1.1, §4.1 1809+/Win11 column: [NTD Win10_1809_RS5 x64], [NTD Win10_20H1_18885 ntoskrnl _HEAP], [NTK] \
                 (~26100); 1903–22H2 and Win11 21H2–23H2 ntdll not read individually (strictly UNCONFIRMED per build)",
        layout: x64(HeapFields {
            flags: 0x70,                  // §4.1 Flags
            force_flags: 0x74,            // §4.1 ForceFlags
            encode_flag_mask: 0x7c,       // §4.1 EncodeFlagMask
            encoding: 0x80,               // §4.1 Encoding
            encoding_key: 0x88,           // §6.3 [MPF]
            signature: 0x98,              // §4.1 Signature
            total_free_size: 0xc0,        // §4.1 TotalFreeSize
            ucr_index: 0x140,             // §4.1 UCRIndex
            virtual_allocd_blocks: 0x110, // §4.1 VirtualAllocdBlocks
            segment_list: 0x120,          // §4.1 SegmentList
            lock_variable: 0x160,         // §4.1 LockVariable
            front_end_heap: 0x198,        // §4.1 FrontEndHeap (after CommitLimitData 0x178)
            front_end_heap_type: 0x1a2,   // §4.1 FrontEndHeapType
            counters: Some(0x238),        // §4.1 Counters
            size: Some(0x2c0),            // §4.1 sizeof
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layouts::{rows_for, select};

    #[test]
    fn table_is_well_formed() {
        super::super::check_table(NT_HEAP_LAYOUTS);
    }

    #[test]
    fn offsets_fit_their_structures() {
        for row in NT_HEAP_LAYOUTS {
            let l = &row.layout;
            let ptr = row.arch.ptr_size() as u16;
            let s = &l.segment;
            for off in [
                s.segment_signature,
                s.segment_flags,
                s.segment_list_entry,
                s.heap,
                s.base_address,
                s.number_of_pages,
                s.first_entry,
                s.last_valid_entry,
                s.number_of_uncommitted_pages,
                s.number_of_uncommitted_ranges,
                s.ucr_segment_list,
            ] {
                assert!(off < s.size, "{}: segment field {off:#x} outside sizeof {:#x}", row.name, s.size);
            }
            // `_HEAP` fields all lie past the embedded `_HEAP_SEGMENT` and inside `sizeof(_HEAP)`.
            let h = &l.heap;
            let fields = [
                h.flags,
                h.force_flags,
                h.encode_flag_mask,
                h.encoding,
                h.encoding_key,
                h.signature,
                h.total_free_size,
                h.ucr_index,
                h.virtual_allocd_blocks,
                h.segment_list,
                h.lock_variable,
                h.front_end_heap,
                h.front_end_heap_type,
            ];
            for off in fields {
                assert!(off >= s.size, "{}: heap field {off:#x} inside the segment header", row.name);
                if let Some(size) = h.size {
                    assert!(off < size, "{}: heap field {off:#x} outside sizeof {size:#x}", row.name);
                }
            }
            if let (Some(c), Some(size)) = (h.counters, h.size) {
                assert!(c + l.counters.total_ucrs + 4 <= size, "{}: counters overflow _HEAP", row.name);
            }
            assert_eq!(h.encoding_key, h.encoding + l.entry.group, "{}: key bytes = group bytes of Encoding", row.name);
            assert_eq!(l.entry.header_size, l.entry.granularity);
            assert_eq!(u64::from(l.entry.group) + 8, l.entry.header_size);
            assert_eq!(l.ucr.segment_entry, 2 * ptr);
            assert_eq!(l.virtual_alloc.struct_size, l.virtual_alloc.busy_block + l.entry.header_size as u16);
            assert_eq!(l.ust.virtual_user_data, l.ust.virtual_trace_pointer + 2 * l.entry.header_size as u16);
        }
    }

    #[test]
    fn selects_epochs_by_build() {
        let sig = |arch, build| select(NT_HEAP_LAYOUTS, "_HEAP", arch, build).map(|r| r.layout.heap.signature);
        assert_eq!(sig(Arch::X64, 7601).unwrap(), 0xa0);
        assert_eq!(sig(Arch::X86, 7601).unwrap(), 0x64);
        assert_eq!(sig(Arch::X64, 9600).unwrap(), 0x98);
        assert_eq!(sig(Arch::X86, 22631).unwrap(), 0x60);
        // Insider builds between epochs are not covered: the walker validates instead.
        assert!(sig(Arch::X64, 17600).is_err());
        assert!(sig(Arch::X86, 2600).is_err());
        let fe = |build| select(NT_HEAP_LAYOUTS, "_HEAP", Arch::X64, build).unwrap().layout.heap.front_end_heap_type;
        assert_eq!([fe(7601), fe(9600), fe(16299), fe(26100)], [0x182, 0x17a, 0x182, 0x1a2]);
        assert_eq!(rows_for(NT_HEAP_LAYOUTS, Arch::X86).count(), 4);
        assert_eq!(rows_for(NT_HEAP_LAYOUTS, Arch::X64).count(), 4);
    }
}
