//! Segment heap structure offsets (§10, §1.3 of the layout reference): `_SEGMENT_HEAP`,
//! `_HEAP_SEG_CONTEXT`, page segments and range descriptors, VS subsegments and chunks,
//! segment-heap LFH subsegments and the large-allocation tree, per build row, x64 only.
//!
//! The `_SEGMENT_HEAP` layout changes almost every release (§10.1); each row below is one
//! column of that table. Fields the reference marks INFERRED or UNCONFIRMED say so next to the
//! value, and fields it does not give at all are `None`: the walker then finds them by validating
//! candidates against the heap (§12.9; see `crate::heap::segment_heap`). No x86 `_SEGMENT_HEAP`
//! offsets are known for any build (§10.1, §13), so there are no x86 rows and a 32-bit segment
//! heap is reported as not walked.

use super::{BuildRange, LayoutRow};
use crate::target::Arch;

/// `_SEGMENT_HEAP.Signature` (§10).
pub const SEGMENT_HEAP_SIGNATURE: u32 = 0xDDEE_DDEE;
/// The page-segment signature constant C of S1 before build 26100 (§10.2, §10.6).
pub const PAGE_SEGMENT_C_PRE_24H2: u64 = 0xA2E6_4EAD_A2E6_4EAD;
/// Build from which C is 0 (§10.2: 24H2 and 25H2).
pub const BUILD_24H2: u32 = 26100;
/// VS subsegment signature rule: `(Signature & 0x7FFF) == ((Size ^ 0x2BED) & 0x7FFF)` (§10.3).
pub const VS_SIGNATURE_XOR: u16 = 0x2BED;
/// Bytes of a page segment's header (`_HEAP_PAGE_SEGMENT`, §10.2: sizeof 0x2000).
pub const PAGE_SEGMENT_HEADER: u64 = 0x2000;
/// Descriptors per page segment (§10.2: `DescArray[256]`).
pub const DESCRIPTORS_PER_SEGMENT: u64 = 256;
/// Size of one `_HEAP_PAGE_RANGE_DESCRIPTOR` (§10.2).
pub const DESCRIPTOR_SIZE: u64 = 0x20;

/// `_HEAP_PAGE_RANGE_DESCRIPTOR.RangeFlags` bits (§10.2, CONFIRMED).
pub mod range_flags {
    /// The range is allocated.
    pub const ALLOCATED: u8 = 0x01;
    /// The descriptor is the first of its range.
    pub const FIRST: u8 = 0x02;
    /// Mask of the range type: `< 8` page range, `8` LFH subsegment, `0xC` VS subsegment.
    pub const TYPE_MASK: u8 = 0x0C;
    /// LFH subsegment.
    pub const LFH: u8 = 0x08;
    /// VS subsegment.
    pub const VS: u8 = 0x0C;
}

/// How the segment-heap LFH stores its busy bitmap (§10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfhBitmap {
    /// Through 23H2: 2 bits per block at `S + offset`: bit 2i allocated, bit 2i+1 trailer present.
    TwoBits,
    /// 24H2+: one u64 per 32 blocks at `S + offset`: low dword allocated bits, high dword trailer bits.
    Words,
}

/// How `shift(S)` of L1 is computed (§10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfhShift {
    /// Through 23H2: `(u32)S >> 12`.
    TruncateThenShift,
    /// 24H2+: `(u32)(S >> 12)`.
    ShiftThenTruncate,
}

/// Offsets in a `_HEAP_SEG_CONTEXT` (relative to the context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegContextLayout {
    /// `SegmentMask` (u64).
    pub segment_mask: Option<u16>,
    /// `UnitShift` (u8).
    pub unit_shift: Option<u16>,
    /// `FirstDescriptorIndex` (u8).
    pub first_descriptor_index: Option<u16>,
    /// `Heap` back-pointer.
    pub heap: Option<u16>,
    /// `SegmentListHead` (LIST_ENTRY of page segments, `ListEntry` at segment + 0).
    pub segment_list_head: Option<u16>,
    /// `SegmentCount` (u64).
    pub segment_count: Option<u16>,
}

/// Everything the segment-heap walker needs for one build row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeapLayout {
    /// `_SEGMENT_HEAP.LargeAllocMetadata` (`_RTL_RB_TREE` root).
    pub large_alloc_metadata: u16,
    /// The qword whose bit 0 is the large tree's `Encoded` flag.
    pub large_tree_encoded: u16,
    /// `_SEGMENT_HEAP.SegContexts[0]`.
    pub seg_contexts: u16,
    /// Stride of `SegContexts`.
    pub seg_context_stride: u16,
    /// `_SEGMENT_HEAP.VsContext`.
    pub vs_context: u16,
    /// The `_HEAP_SEG_CONTEXT` fields.
    pub ctx: SegContextLayout,
    /// The VsContext's page-aligned-user-data flag: (offset from the VsContext, width in bytes);
    /// bit 0 of that field (§10.3). `None`: unknown for the build.
    pub vs_page_align_flag: Option<(u16, u8)>,
    /// Offset of `_HEAP_VS_SUBSEGMENT.Signature` (u16).
    pub vs_signature: u16,
    /// Offset of `UnitOffset` in a non-first range descriptor.
    pub desc_unit_offset: u16,
    /// Segment-heap LFH bitmap: format and offset from the subsegment.
    pub lfh_bitmap: (LfhBitmap, u16),
    /// Segment-heap LFH shift form.
    pub lfh_shift: LfhShift,
    /// Mask of the unused count in an LFH block trailer.
    pub lfh_trailer_mask: u16,
    /// The page-segment signature constant C (§10.2).
    pub page_segment_c: u64,
}

/// `_HEAP_PAGE_RANGE_DESCRIPTOR` offsets, relative to the descriptor (§10.2; Win11 \[NTK\], \[BLG\]).
pub mod descriptor {
    /// `UnusedBytes` (u32) of a page-range allocation's first descriptor ([BIN RtlpHpSizeHeap]).
    pub const UNUSED_BYTES: u64 = 0x04;
    /// `RangeFlags` (u8).
    pub const RANGE_FLAGS: u64 = 0x18;
    /// `UnitSize` (u8) of a range's first descriptor.
    pub const UNIT_SIZE: u64 = 0x1f;
}

/// `_HEAP_VS_SUBSEGMENT` and chunk offsets (§10.3, x64).
pub mod vs {
    /// `Size` (u16): `(bytes − 0x30) >> 4`.
    pub const SIZE: u64 = 0x20;
    /// The first chunk header, from the subsegment.
    pub const FIRST_CHUNK: u64 = 0x30;
    /// Chunk header size; the user data follows it.
    pub const CHUNK_HEADER: u64 = 0x10;
    /// The user data of a page-aligned chunk starts here instead.
    pub const CHUNK_HEADER_PAGE_ALIGNED: u64 = 0x20;
    /// `dword(hdr + 8)` bit: an unused-bytes trailer is present.
    pub const UNUSED_BYTES_BIT: u32 = 0x100;
    /// Granule of `UnsafeSize`.
    pub const GRANULE: u64 = 16;
    /// Unused-count mask of a VS trailer.
    pub const TRAILER_MASK: u16 = 0x1FFF;
}

/// `_HEAP_LFH_SUBSEGMENT` offsets (§10.4, x64).
pub mod seg_lfh {
    /// `FreeCount` (u16).
    pub const FREE_COUNT: u64 = 0x20;
    /// `BlockCount` (u16).
    pub const BLOCK_COUNT: u64 = 0x22;
    /// `BlockOffsets` (encoded u32).
    pub const BLOCK_OFFSETS: u64 = 0x28;
}

/// `_HEAP_LARGE_ALLOC_DATA` offsets (§10.5, x64) and the `_RTL_BALANCED_NODE` links.
pub mod large {
    /// `TreeNode.Left`.
    pub const LEFT: u64 = 0x00;
    /// `TreeNode.Right`.
    pub const RIGHT: u64 = 0x08;
    /// `VirtualAddress` (UnusedBytes in its low 16 bits).
    pub const VIRTUAL_ADDRESS: u64 = 0x18;
    /// The bitfield qword holding `AllocatedPages` from bit 12.
    pub const BITFIELD: u64 = 0x20;
}

/// Trailer bits of VS and LFH blocks (§10.3, §10.4).
pub mod trailer {
    /// Exactly one unused byte.
    pub const ONE_BYTE: u16 = 0x8000;
    /// Extra (UST) data present.
    pub const EXTRA: u16 = 0x4000;
}

const CTX_2004: SegContextLayout = SegContextLayout {
    segment_mask: Some(0x00),           // §10.1 _HEAP_SEG_CONTEXT 2004 [NTD]
    unit_shift: Some(0x08),             // §10.1
    first_descriptor_index: Some(0x0a), // §10.1
    heap: Some(0x38),                   // §10.1
    segment_list_head: Some(0x48),      // §10.1
    segment_count: Some(0x58),          // §10.1
};

const CTX_1809: SegContextLayout = SegContextLayout {
    segment_mask: None,                 // §10.1: UNCONFIRMED for 1809/1903
    unit_shift: Some(0x08),             // §10.1 [NTD 1809/1903]
    first_descriptor_index: Some(0x0a), // §10.1
    heap: Some(0x90),                   // §10.1
    segment_list_head: Some(0x20),      // §10.1
    segment_count: None,                // §10.1: UNCONFIRMED
};

/// 1709 / 1803: the reference gives no `_HEAP_SEG_CONTEXT` field offsets (§10.1, §13); every
/// field is found by validation.
const CTX_UNKNOWN: SegContextLayout = SegContextLayout {
    segment_mask: None,
    unit_shift: None,
    first_descriptor_index: None,
    heap: None,
    segment_list_head: None,
    segment_count: None,
};

const fn win10(
    large: u16,
    seg_contexts: u16,
    stride: u16,
    vs_context: u16,
    ctx: SegContextLayout,
    vs_flag: Option<(u16, u8)>,
) -> SegmentHeapLayout {
    SegmentHeapLayout {
        large_alloc_metadata: large,
        large_tree_encoded: large + 8, // §10.1: the Encoded bit is bit 0 of Root+8 (INFERRED before Win11)
        seg_contexts,
        seg_context_stride: stride,
        vs_context,
        ctx,
        vs_page_align_flag: vs_flag,
        vs_signature: 0x22,                      // §10.3: +0x22 through 23H2
        desc_unit_offset: 0x1f,                  // §10.2: shares +0x1f before 24H2 (single source)
        lfh_bitmap: (LfhBitmap::TwoBits, 0x30),  // §10.4 through 23H2
        lfh_shift: LfhShift::TruncateThenShift,  // §10.4 through 23H2
        lfh_trailer_mask: 0x3FFF,                // §10.4 through 23H2
        page_segment_c: PAGE_SEGMENT_C_PRE_24H2, // §10.2 (assumed for Win10, §13)
    }
}

/// Every known segment-heap layout (x64 only), sorted by build.
pub static SEGMENT_HEAP_LAYOUTS: &[LayoutRow<SegmentHeapLayout>] = &[
    LayoutRow {
        name: "Win10 1709 x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: 16299, last: 16299 },
        source: "§10.1 1709 column [NTD Win10_1709_RS3]: LargeAllocMetadata 0x50, SegContexts 0x70 (stride 0x68), \
                 VsContext 0x168; Encoded bit INFERRED; _HEAP_SEG_CONTEXT fields UNCONFIRMED (found by validation)",
        layout: win10(0x50, 0x70, 0x68, 0x168, CTX_UNKNOWN, None),
    },
    LayoutRow {
        name: "Win10 1803 x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: 17134, last: 17134 },
        source: "§10.1 1803 column [NTD Win10_1803_RS4]: LargeAllocMetadata 0x50, SegContexts 0x70 (stride 0x78 \
                 INFERRED), VsContext 0x188; _HEAP_SEG_CONTEXT fields UNCONFIRMED (found by validation)",
        layout: win10(0x50, 0x70, 0x78, 0x188, CTX_UNKNOWN, None),
    },
    LayoutRow {
        name: "Win10 1809-1909 x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: 17763, last: 18363 },
        source: "§10.1 1809 & 1903 column [NTD]: LargeAllocMetadata 0x88, SegContexts 0xa8 (stride 0x98), VsContext \
                 0x220; _HEAP_SEG_CONTEXT UnitShift 0x08, FirstDescriptorIndex 0x0a, Heap 0x90, SegmentListHead 0x20",
        layout: win10(0x88, 0xa8, 0x98, 0x220, CTX_1809, None),
    },
    LayoutRow {
        name: "Win10 2004-22H2 x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: 19041, last: 19045 },
        source: "§10.1 2004 column [NTD Win10_2004_20H1] (20H2–22H2 INFERRED): LargeAllocMetadata 0x48, SegContexts \
                 0x100 (stride 0xc0), VsContext 0x280; _HEAP_SEG_CONTEXT 2004 [NTD]; VsContext Config +0xB0 bit 0 \
                 (§10.3, [NTD 2004])",
        layout: win10(0x48, 0x100, 0xc0, 0x280, CTX_2004, Some((0xb0, 4))),
    },
    LayoutRow {
        name: "Win11 21H2-23H2 x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: 22000, last: 22631 },
        source: "§10.1 Win11 column [BIN RtlpHpSizeHeap, RtlpHpHeapCreate] + [NTK]: LargeAllocMetadata 0x48 (Encoded \
                 0x50), SegContexts 0x140 (stride 0xc0), VsContext 0x2c0; §10.3 VS flag u32 VsContext+0xB0 bit 0 \
                 [BIN 11-23H2]; C = 0xA2E64EADA2E64EAD [BIN 11-21H2/22H2/23H2]",
        layout: win10(0x48, 0x140, 0xc0, 0x2c0, CTX_2004, Some((0xb0, 4))),
    },
    LayoutRow {
        name: "Win11 24H2+ x64 segment heap",
        arch: Arch::X64,
        builds: BuildRange { first: BUILD_24H2, last: u32::MAX },
        source: "§10.1 Win11 column, 24H2: as 21H2–23H2; §10.2 C = 0 and UnitOffset at +0x1a [BIN 11-24H2]; §10.3 VS \
                 Signature at +0x24, flag bit 0 of the byte at VsContext+4 [BIN 11-24H2]; §10.4 bitmap at +0x40 (one \
                 u64 per 32 blocks, single source), shift (u32)(S >> 12), trailer mask 0x3FF [BIN 11-24H2/25H2]",
        layout: SegmentHeapLayout {
            large_alloc_metadata: 0x48,             // §10.1 [BIN] + [NTK]
            large_tree_encoded: 0x50,               // §10.1 [BIN]
            seg_contexts: 0x140,                    // §10.1 CONFIRMED
            seg_context_stride: 0xc0,               // §10.1 CONFIRMED
            vs_context: 0x2c0,                      // §10.1 CONFIRMED
            ctx: CTX_2004,                          // §10.1 Win11 21H2–25H2 column = 2004 offsets
            vs_page_align_flag: Some((0x04, 1)),    // §10.3 24H2: bit 0 of the byte at VsContext+4
            vs_signature: 0x24,                     // §10.3 24H2
            desc_unit_offset: 0x1a,                 // §10.2 24H2+
            lfh_bitmap: (LfhBitmap::Words, 0x40),   // §10.4 24H2+
            lfh_shift: LfhShift::ShiftThenTruncate, // §10.4 24H2+
            lfh_trailer_mask: 0x3FF,                // §10.4 24H2+
            page_segment_c: 0,                      // §10.2 24H2, 25H2
        },
    },
];

/// Per-context geometry when the context does not say (§10.2, Win11 x64, single source):
/// (unit shift, first descriptor index) of context 0 (1 MB segments, 4 KB units) and context 1
/// (16 MB segments, 64 KB units).
pub const DEFAULT_GEOMETRY: [(u8, u8); 2] = [(12, 2), (16, 1)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        super::super::check_table(SEGMENT_HEAP_LAYOUTS);
        for r in SEGMENT_HEAP_LAYOUTS {
            let l = &r.layout;
            assert_eq!(r.arch, Arch::X64, "{}: no x86 offsets are known (§10.1)", r.name);
            assert!(l.seg_contexts + 2 * l.seg_context_stride <= l.vs_context, "{}", r.name);
            assert!(l.large_alloc_metadata < l.seg_contexts, "{}", r.name);
            assert_eq!(l.page_segment_c == 0, r.builds.first >= BUILD_24H2, "{}", r.name);
        }
        // Geometry: first index = units covered by the 0x2000-byte header (§10.2).
        for (shift, first) in DEFAULT_GEOMETRY {
            let unit = 1u64 << shift;
            assert_eq!((unit + 0x1FFF) / unit, u64::from(first));
        }
    }
}
