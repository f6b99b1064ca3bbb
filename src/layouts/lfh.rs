//! Low Fragmentation Heap (NT heap front end) structure offsets: `_LFH_HEAP`, `_LFH_BLOCK_ZONE`,
//! `_HEAP_SUBSEGMENT`, `_HEAP_USERDATA_HEADER` and the LFH block header, per layout epoch and
//! architecture (§9 of the layout reference).
//!
//! Two models exist. Windows 7 SP1 lays blocks out right after a fixed-size UserBlocks header with
//! a stride of `BlockSize` granules and keeps no bitmap. Windows 8.1 to 11 store the first-block
//! offset and stride XOR-encoded with the per-process `RtlpLFHKey` (§9.6), keep a busy bitmap in
//! the UserBlocks header, and encode each block's `SubSegmentCode` with the same key (§9.7).
//! Windows 8.0 is neither: its block encoding is **UNCONFIRMED** (§9.7, §13). Its row
//! ([`LfhModel::Undecoded`]) finds the zones and subsegments, so that zones and containers are
//! named, and the containers are reported as not decoded.

use super::{BuildRange, LayoutRow};
use crate::target::Arch;

/// `_HEAP_USERDATA_HEADER.Signature` (§9.5; \[MPF\], \[SYR\]).
pub const USERDATA_SIGNATURE: u32 = 0xF0E0_D0C0;
/// `UnusedBytes` of a busy LFH block under `+ust` (§9.7, §11.3; \[HST\], \[DHU\] `LfhFlagUstBusy`).
pub const UNUSED_BYTES_UST_BUSY: u8 = 0xC2;
/// `UnusedBytes` value meaning "the real count is stored after the block" (§9.7).
pub const UNUSED_BYTES_OVERFLOW: u8 = 0xBF;
/// The bits of `UnusedBytes` that hold the unused count; zero on a free block (§9.7 busy test).
pub const UNUSED_BYTES_COUNT_MASK: u8 = 0x3F;
/// `_HEAP_SUBSEGMENT.Flags` bits of a guard-page ("debug") subsegment (§9.4, single source).
pub const SUBSEGMENT_GUARD_FLAGS: u16 = 0x3;

/// Which block layout the epoch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LfhModel {
    /// Windows 7 SP1: fixed first-block offset, stride `BlockSize × granularity`, busy by the
    /// block header's `UnusedBytes`, no key.
    Win7,
    /// Windows 8.1 → 11: key-encoded offsets and block codes, busy bitmap.
    Encoded,
    /// Windows 8.0: zones and subsegments are known, the blocks are not decoded (its block
    /// encoding is **UNCONFIRMED**, §9.7, §13).
    Undecoded,
}

/// How a zone says how many subsegments it holds (§9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneCount {
    /// Win7/8.0: `FreePointer` (ptr) at this offset marks the end of the used subsegments.
    FreePointer(u16),
    /// Win8.1+: `NextIndex` (u32) at this offset; subsegments in use = `min(NextIndex, cap)`.
    NextIndex {
        /// Offset of `NextIndex`.
        offset: u16,
        /// Most subsegments a zone holds.
        cap: u32,
    },
}

/// Offsets of one LFH epoch (all relative to the structure named in each group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LfhLayout {
    /// Block layout model.
    pub model: LfhModel,
    /// `_LFH_HEAP.SubSegmentZones` (LIST_ENTRY of zones; zone = node, `ListEntry` at 0).
    pub lfh_sub_segment_zones: u16,
    /// `_LFH_HEAP.Heap` (back-pointer to the `_HEAP`).
    pub lfh_heap: u16,
    /// How the zone counts its subsegments.
    pub zone_count: ZoneCount,
    /// Offset of the first `_HEAP_SUBSEGMENT` in a zone.
    pub zone_first_subsegment: u16,
    /// `sizeof(_HEAP_SUBSEGMENT)`: the stride of the zone's array.
    pub subsegment_size: u16,
    /// `_HEAP_SUBSEGMENT.UserBlocks` (ptr).
    pub ss_user_blocks: u16,
    /// `_HEAP_SUBSEGMENT.AggregateExchg`: its first u16 (`Depth`) is the free-block count.
    pub ss_aggregate_exchg: u16,
    /// `_HEAP_SUBSEGMENT.BlockSize` (u16, granules, header included).
    pub ss_block_size: u16,
    /// `_HEAP_SUBSEGMENT.Flags` (u16).
    pub ss_flags: u16,
    /// `_HEAP_SUBSEGMENT.BlockCount` (u16).
    pub ss_block_count: u16,
    /// `_HEAP_SUBSEGMENT.SizeIndex` (u8).
    pub ss_size_index: u16,
    /// `_HEAP_USERDATA_HEADER.Signature` (u32 0xF0E0D0C0).
    pub ub_signature: u16,
    /// Win7: offset of the first block (= `sizeof(_HEAP_USERDATA_HEADER)`).
    pub ub_first_block: u16,
    /// 8.1+: `EncodedOffsets` (u32).
    pub ub_encoded_offsets: u16,
    /// 8.1+: `BusyBitmap.SizeOfBitMap` (u32 x86 / u64 x64).
    pub ub_bitmap_size: u16,
    /// 8.1+: `BusyBitmap.Buffer` (ptr).
    pub ub_bitmap_buffer: u16,
    /// 8.1+: the inline bitmap words.
    pub ub_bitmap_data: u16,
    /// Granule of `BlockSize` (8 x86, 16 x64).
    pub granularity: u64,
    /// Size of an LFH block header; the user data starts here (no `+ust`).
    pub block_header: u64,
    /// Offset of `SubSegmentCode` (u32) in a block header.
    pub block_code: u16,
    /// Offset of `UnusedBytes` (u8) in a block header.
    pub block_unused_bytes: u16,
    /// `+ust` header in an LFH block (§11.3): trace pointer.
    pub ust_trace_pointer: u16,
    /// `+ust` header: the u16 overhead count.
    pub ust_extra: u16,
    /// `+ust` header: user data offset.
    pub ust_user_data: u16,
}

/// Every known LFH layout. x86 rows first, then x64; each architecture sorted by build.
pub static LFH_LAYOUTS: &[LayoutRow<LfhLayout>] = &[
    LayoutRow {
        name: "Win7 SP1 x86 LFH",
        arch: Arch::X86,
        builds: BuildRange { first: super::builds::WIN7, last: 7601 },
        source: "§9.1 Win7 x86 column [R2W Win7x86], [HST]; §9.2 [R2W]; §9.4 [R2W], [HST], [MPF]; §9.5 [R2W]; \
                 §9.6 Win7 placement [HST], [DHU]",
        layout: LfhLayout {
            model: LfhModel::Win7,
            lfh_sub_segment_zones: 0x18,              // §9.1
            lfh_heap: 0x24,                           // §9.1
            zone_count: ZoneCount::FreePointer(0x08), // §9.2
            zone_first_subsegment: 0x10,              // §9.2
            subsegment_size: 0x20,                    // §9.4 sizeof
            ss_user_blocks: 0x04,                     // §9.4
            ss_aggregate_exchg: 0x08,                 // §9.4 (Depth u16 @0)
            ss_block_size: 0x10,                      // §9.4
            ss_flags: 0x12,                           // §9.4
            ss_block_count: 0x14,                     // §9.4
            ss_size_index: 0x16,                      // §9.4
            ub_signature: 0x0c,                       // §9.5
            ub_first_block: 0x10,                     // §9.5 sizeof, §9.6
            ub_encoded_offsets: 0,                    // none on Win7
            ub_bitmap_size: 0,                        // none on Win7
            ub_bitmap_buffer: 0,                      // none on Win7
            ub_bitmap_data: 0,                        // none on Win7
            granularity: 8,                           // §1.2
            block_header: 8,                          // §6.1
            block_code: 0x0,                          // §6.1 SubSegmentCode @0x00
            block_unused_bytes: 0x7,                  // §6.1 UnusedBytes @0x07
            ust_trace_pointer: 0x08,                  // §11.3
            ust_extra: 0x14,                          // §11.3
            ust_user_data: 0x18,                      // §11.3
        },
    },
    LayoutRow {
        name: "Win8.0 x86 LFH (blocks not decoded)",
        arch: Arch::X86,
        builds: BuildRange { first: super::builds::WIN8, last: super::builds::WIN8 },
        source: "§9.1 Win8+ x86; §9.2 Win7/Win8.0 x86 zone (FreePointer, [HST] only, UNCONFIRMED by a PDB); \
                 §9.4 Win8+ x86; blocks not decoded (§9.7 Win8.0 encoding UNCONFIRMED)",
        layout: LfhLayout {
            model: LfhModel::Undecoded,
            lfh_sub_segment_zones: 0x04,              // §9.1 Win8+
            lfh_heap: 0x0c,                           // §9.1 Win8+
            zone_count: ZoneCount::FreePointer(0x08), // §9.2 Win8.0 column
            zone_first_subsegment: 0x10,              // §9.2
            subsegment_size: 0x28,                    // §9.4 Win8+ sizeof
            ss_user_blocks: 0x04,                     // §9.4
            ss_aggregate_exchg: 0x10,                 // §9.4
            ss_block_size: 0x14,                      // §9.4
            ss_flags: 0x16,                           // §9.4
            ss_block_count: 0x18,                     // §9.4
            ss_size_index: 0x1a,                      // §9.4
            ub_signature: 0,                          // not read: blocks not decoded
            ub_first_block: 0,
            ub_encoded_offsets: 0,
            ub_bitmap_size: 0,
            ub_bitmap_buffer: 0,
            ub_bitmap_data: 0,
            granularity: 8,  // §1.2
            block_header: 8, // §6.1
            block_code: 0x0, // §6.1
            block_unused_bytes: 0x7,
            ust_trace_pointer: 0x08, // §11.3
            ust_extra: 0x14,
            ust_user_data: 0x18,
        },
    },
    LayoutRow {
        name: "Win8.1+ x86 LFH",
        arch: Arch::X86,
        builds: BuildRange { first: 9600, last: u32::MAX },
        source: "§9.1 Win8+ x86 [NTD], [HST]; §9.2 Win8.1+ x86 [HST] (zone cap UNCONFIRMED); §9.4 Win8+ x86 [NTD], \
                 [HST]; §9.5 Win8.1+ x86 [NTD]; §9.6 E1, §9.7 x86 code form",
        layout: LfhLayout {
            model: LfhModel::Encoded,
            lfh_sub_segment_zones: 0x04, // §9.1
            lfh_heap: 0x0c,              // §9.1
            // §9.2: NextIndex @+8. The x86 cap is UNCONFIRMED; (0x3F0 − 0x10) / 0x28 = 24 subsegments
            // fit a zone of the x64 zone's byte size. Each slot is validated anyway.
            zone_count: ZoneCount::NextIndex { offset: 0x08, cap: 24 },
            zone_first_subsegment: 0x10, // §9.2
            subsegment_size: 0x28,       // §9.4 sizeof
            ss_user_blocks: 0x04,        // §9.4
            ss_aggregate_exchg: 0x10,    // §9.4
            ss_block_size: 0x14,         // §9.4
            ss_flags: 0x16,              // §9.4
            ss_block_count: 0x18,        // §9.4
            ss_size_index: 0x1a,         // §9.4
            ub_signature: 0x0c,          // §9.5
            ub_first_block: 0,           // encoded (§9.6)
            ub_encoded_offsets: 0x10,    // §9.5
            ub_bitmap_size: 0x14,        // §9.5 BusyBitmap (RTL_BITMAP.SizeOfBitMap)
            ub_bitmap_buffer: 0x18,      // §9.5 RTL_BITMAP.Buffer
            ub_bitmap_data: 0x1c,        // §9.5 BitmapData
            granularity: 8,              // §1.2
            block_header: 8,             // §9.7
            block_code: 0x0,             // §9.7 x86: code = dword at blk+0
            block_unused_bytes: 0x7,     // §6.1
            ust_trace_pointer: 0x08,     // §11.3
            ust_extra: 0x14,             // §11.3
            ust_user_data: 0x18,         // §11.3
        },
    },
    LayoutRow {
        name: "Win7 SP1 x64 LFH",
        arch: Arch::X64,
        builds: BuildRange { first: super::builds::WIN7, last: 7601 },
        source: "§9.1 Win7 x64 [NTD]; §9.2 Win7 x64 (FreePointer @0x10, array @0x20); §9.4 Win7 x64 [NTD], [MPF]; \
                 §9.5 Win7 x64 [NTD]; §9.6 Win7 placement",
        layout: LfhLayout {
            model: LfhModel::Win7,
            lfh_sub_segment_zones: 0x28,              // §9.1
            lfh_heap: 0x40,                           // §9.1
            zone_count: ZoneCount::FreePointer(0x10), // §9.2
            zone_first_subsegment: 0x20,              // §9.2
            subsegment_size: 0x30,                    // §9.4 sizeof
            ss_user_blocks: 0x08,                     // §9.4
            ss_aggregate_exchg: 0x10,                 // §9.4
            ss_block_size: 0x18,                      // §9.4
            ss_flags: 0x1a,                           // §9.4
            ss_block_count: 0x1c,                     // §9.4
            ss_size_index: 0x1e,                      // §9.4
            ub_signature: 0x18,                       // §9.5 (u64; the signature is its low dword)
            ub_first_block: 0x20,                     // §9.5 sizeof, §9.6
            ub_encoded_offsets: 0,                    // none on Win7
            ub_bitmap_size: 0,                        // none on Win7
            ub_bitmap_buffer: 0,                      // none on Win7
            ub_bitmap_data: 0,                        // none on Win7
            granularity: 16,                          // §1.1
            block_header: 16,                         // §6.1
            block_code: 0x8,                          // §6.1 SubSegmentCode @0x08
            block_unused_bytes: 0xf,                  // §6.1 UnusedBytes @0x0f
            ust_trace_pointer: 0x10,                  // §11.3
            ust_extra: 0x2c,                          // §11.3
            ust_user_data: 0x30,                      // §11.3
        },
    },
    LayoutRow {
        name: "Win8.0 x64 LFH (blocks not decoded)",
        arch: Arch::X64,
        builds: BuildRange { first: super::builds::WIN8, last: super::builds::WIN8 },
        source: "§9.1 Win8+ x64; §9.2 Win7/Win8.0 x64 zone (FreePointer, [HST] only, UNCONFIRMED by a PDB); \
                 §9.4 Win8+ x64; blocks not decoded (§9.7 Win8.0 encoding UNCONFIRMED)",
        layout: LfhLayout {
            model: LfhModel::Undecoded,
            lfh_sub_segment_zones: 0x08,              // §9.1 Win8+
            lfh_heap: 0x18,                           // §9.1 Win8+
            zone_count: ZoneCount::FreePointer(0x10), // §9.2 Win8.0 column
            zone_first_subsegment: 0x20,              // §9.2
            subsegment_size: 0x40,                    // §9.4 Win8+ sizeof
            ss_user_blocks: 0x08,                     // §9.4
            ss_aggregate_exchg: 0x20,                 // §9.4
            ss_block_size: 0x24,                      // §9.4
            ss_flags: 0x26,                           // §9.4
            ss_block_count: 0x28,                     // §9.4
            ss_size_index: 0x2a,                      // §9.4
            ub_signature: 0,                          // not read: blocks not decoded
            ub_first_block: 0,
            ub_encoded_offsets: 0,
            ub_bitmap_size: 0,
            ub_bitmap_buffer: 0,
            ub_bitmap_data: 0,
            granularity: 16,  // §1.1
            block_header: 16, // §6.1
            block_code: 0x8,  // §6.1
            block_unused_bytes: 0xf,
            ust_trace_pointer: 0x10, // §11.3
            ust_extra: 0x2c,
            ust_user_data: 0x30,
        },
    },
    LayoutRow {
        name: "Win8.1+ x64 LFH",
        arch: Arch::X64,
        builds: BuildRange { first: 9600, last: u32::MAX },
        source: "§9.1 Win8+ x64 [NTD], [R2W], [NTK]; §9.2 Win8.1+ x64 [R2W], [NTK], cap 15 [BIN]; §9.4 Win8+ x64 \
                 [NTD], [R2W], [NTK], [BIN]; §9.5 Win8.1+ x64 [NTD], [R2W], [NTK], [BIN]; §9.6 E1, §9.7 E2 [BIN]",
        layout: LfhLayout {
            model: LfhModel::Encoded,
            lfh_sub_segment_zones: 0x08,                                // §9.1
            lfh_heap: 0x18,                                             // §9.1
            zone_count: ZoneCount::NextIndex { offset: 0x10, cap: 15 }, // §9.2 min(NextIndex, 15) [BIN]
            zone_first_subsegment: 0x20,                                // §9.2
            subsegment_size: 0x40,                                      // §9.4 sizeof
            ss_user_blocks: 0x08,                                       // §9.4
            ss_aggregate_exchg: 0x20,                                   // §9.4
            ss_block_size: 0x24,                                        // §9.4
            ss_flags: 0x26,                                             // §9.4
            ss_block_count: 0x28,                                       // §9.4
            ss_size_index: 0x2a,                                        // §9.4
            ub_signature: 0x14,                                         // §9.5
            ub_first_block: 0,                                          // encoded (§9.6)
            ub_encoded_offsets: 0x18,                                   // §9.5
            ub_bitmap_size: 0x20,                                       // §9.5 RTL_BITMAP_EX.SizeOfBitMap (u64)
            ub_bitmap_buffer: 0x28,                                     // §9.5 RTL_BITMAP_EX.Buffer
            ub_bitmap_data: 0x30,                                       // §9.5 BitmapData
            granularity: 16,                                            // §1.1
            block_header: 16,                                           // §9.7
            block_code: 0x8,                                            // §9.7 SubSegmentCode @+0x08
            block_unused_bytes: 0xf,                                    // §9.7 UnusedBytes @+0x0f
            ust_trace_pointer: 0x10,                                    // §11.3
            ust_extra: 0x2c,                                            // §11.3
            ust_user_data: 0x30,                                        // §11.3
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layouts::{rows_for, select};

    #[test]
    fn table_is_well_formed() {
        super::super::check_table(LFH_LAYOUTS);
        for r in LFH_LAYOUTS {
            let l = &r.layout;
            let ptr = r.arch.ptr_size() as u16;
            assert_eq!(u64::from(ptr) * 2, l.granularity, "{}", r.name);
            assert_eq!(l.block_header, l.granularity, "{}", r.name);
            assert!(l.ss_block_count + 2 <= l.subsegment_size, "{}", r.name);
            assert_eq!(l.ust_user_data, 3 * l.block_header as u16, "{}: §11.3 user data after 3 granules", r.name);
            if l.model == LfhModel::Encoded {
                assert!(l.ub_encoded_offsets > l.ub_signature && l.ub_bitmap_data > l.ub_bitmap_buffer, "{}", r.name);
                assert_eq!(l.ub_bitmap_buffer, l.ub_bitmap_size + ptr, "{}", r.name);
            }
        }
    }

    #[test]
    fn windows_8_0_is_not_decoded() {
        for arch in [Arch::X86, Arch::X64] {
            assert_eq!(select(LFH_LAYOUTS, "_LFH_HEAP", arch, 9200).unwrap().layout.model, LfhModel::Undecoded);
            assert!(select(LFH_LAYOUTS, "_LFH_HEAP", arch, 8000).is_err());
            assert_eq!(select(LFH_LAYOUTS, "_LFH_HEAP", arch, 7601).unwrap().layout.model, LfhModel::Win7);
            assert_eq!(select(LFH_LAYOUTS, "_LFH_HEAP", arch, 26100).unwrap().layout.model, LfhModel::Encoded);
            assert_eq!(rows_for(LFH_LAYOUTS, arch).count(), 3);
        }
    }
}
