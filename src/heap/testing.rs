//! Test support: a sparse in-memory address space and a synthetic NT heap builder.
//!
//! The builder writes `_HEAP`, `_HEAP_SEGMENT`, entries, UCR descriptors and virtual blocks with
//! **literal offsets transcribed from the layout reference** (§4–§8, §11.3), not from
//! `crate::layouts`, so that a wrong number in the layout table makes tests fail instead of
//! agreeing with itself.

use std::sync::Arc;

use super::columns::{BlockKind, BlockRow, NotDecoded};
use crate::mapped::FileBytes;
use crate::memory::{AddressSpace, CapturedRange};
use crate::target::Arch;

/// Sparse memory: regions of bytes at virtual addresses.
#[derive(Debug, Clone, Default)]
pub(crate) struct Space {
    regions: Vec<(u64, Vec<u8>)>,
}

impl Space {
    pub(crate) fn new(va: u64, len: usize) -> Self {
        let mut s = Space::default();
        s.add(va, len);
        s
    }

    pub(crate) fn add(&mut self, va: u64, len: usize) {
        self.regions.push((va, vec![0; len]));
    }

    fn slot(&mut self, va: u64, len: usize) -> &mut [u8] {
        for (base, bytes) in &mut self.regions {
            if va >= *base && va + len as u64 <= *base + bytes.len() as u64 {
                let o = (va - *base) as usize;
                return &mut bytes[o..o + len];
            }
        }
        panic!("test space has no region for {va:#x}+{len:#x}");
    }

    pub(crate) fn put(&mut self, va: u64, data: &[u8]) {
        self.slot(va, data.len()).copy_from_slice(data);
    }

    pub(crate) fn get(&mut self, va: u64, len: usize) -> Vec<u8> {
        self.slot(va, len).to_vec()
    }

    pub(crate) fn put_u8(&mut self, va: u64, v: u8) {
        self.put(va, &[v]);
    }

    pub(crate) fn put_u16(&mut self, va: u64, v: u16) {
        self.put(va, &v.to_le_bytes());
    }

    pub(crate) fn put_u32(&mut self, va: u64, v: u32) {
        self.put(va, &v.to_le_bytes());
    }

    pub(crate) fn put_u64(&mut self, va: u64, v: u64) {
        self.put(va, &v.to_le_bytes());
    }

    pub(crate) fn put_ptr(&mut self, arch: Arch, va: u64, v: u64) {
        match arch {
            Arch::X86 => self.put_u32(va, v as u32),
            Arch::X64 => self.put_u64(va, v),
        }
    }

    /// The captured address space (regions laid out back to back in a file, in the order added).
    pub(crate) fn build(&self) -> AddressSpace {
        let (file, ranges) = self.file_and_ranges();
        AddressSpace::new(Arc::new(FileBytes::Owned(file)), ranges).0
    }

    /// The file [`Self::build`] indexes, and its ranges, for tests that add ranges of their own.
    pub(crate) fn file_and_ranges(&self) -> (Vec<u8>, Vec<CapturedRange>) {
        let mut file = Vec::new();
        let mut ranges = Vec::new();
        for (va, bytes) in &self.regions {
            ranges.push(CapturedRange { va: *va, len: bytes.len() as u64, file_offset: file.len() as u64 });
            file.extend_from_slice(bytes);
        }
        (file, ranges)
    }
}

/// Which `_HEAP` column of §4 to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Epoch {
    Win7,
    Win10_1809,
}

impl Epoch {
    pub(crate) fn build(self) -> u32 {
        match self {
            Epoch::Win7 => 7601,
            Epoch::Win10_1809 => 19041,
        }
    }
}

/// Literal `_HEAP` offsets (§4.1 / §4.2) for the builder.
struct HeapOffsets {
    flags: u64,
    encode_flag_mask: u64,
    key: u64,
    signature: u64,
    total_free_size: u64,
    ucr_index: u64,
    virtual_allocd_blocks: u64,
    segment_list: u64,
    lock_variable: u64,
    front_end_heap_type: u64,
    counters: u64,
}

fn heap_offsets(arch: Arch, epoch: Epoch) -> HeapOffsets {
    match (arch, epoch) {
        (Arch::X86, Epoch::Win7) => HeapOffsets {
            flags: 0x40,
            encode_flag_mask: 0x4c,
            key: 0x50,
            signature: 0x64,
            total_free_size: 0x78,
            ucr_index: 0xbc,
            virtual_allocd_blocks: 0xa0,
            segment_list: 0xa8,
            lock_variable: 0xcc,
            front_end_heap_type: 0xda,
            counters: 0xdc,
        },
        (Arch::X86, Epoch::Win10_1809) => HeapOffsets {
            flags: 0x40,
            encode_flag_mask: 0x4c,
            key: 0x50,
            signature: 0x60,
            total_free_size: 0x74,
            ucr_index: 0xb8,
            virtual_allocd_blocks: 0x9c,
            segment_list: 0xa4,
            lock_variable: 0xc8,
            front_end_heap_type: 0xea,
            counters: 0x1f4,
        },
        (Arch::X64, Epoch::Win7) => HeapOffsets {
            flags: 0x70,
            encode_flag_mask: 0x7c,
            key: 0x88,
            signature: 0xa0,
            total_free_size: 0xc8,
            ucr_index: 0x148,
            virtual_allocd_blocks: 0x118,
            segment_list: 0x128,
            lock_variable: 0x168,
            front_end_heap_type: 0x182,
            counters: 0x188,
        },
        (Arch::X64, Epoch::Win10_1809) => HeapOffsets {
            flags: 0x70,
            encode_flag_mask: 0x7c,
            key: 0x88,
            signature: 0x98,
            total_free_size: 0xc0,
            ucr_index: 0x140,
            virtual_allocd_blocks: 0x110,
            segment_list: 0x120,
            lock_variable: 0x160,
            front_end_heap_type: 0x1a2,
            counters: 0x238,
        },
    }
}

/// One block of a synthetic segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSpec {
    pub(crate) granules: u16,
    pub(crate) busy: bool,
    /// Requested bytes (busy blocks).
    pub(crate) user_size: u64,
    /// Extra flag bits (e.g. 0x08 for an LFH container).
    pub(crate) extra_flags: u8,
    /// `+ust` trace pointer (busy blocks, when the heap has ust).
    pub(crate) trace: u64,
}

impl BlockSpec {
    pub(crate) fn busy(granules: u16, user_size: u64) -> Self {
        BlockSpec { granules, busy: true, user_size, extra_flags: 0, trace: 0 }
    }

    pub(crate) fn free(granules: u16) -> Self {
        BlockSpec { granules, busy: false, user_size: 0, extra_flags: 0, trace: 0 }
    }
}

/// One synthetic segment. The first segment of a heap is the heap itself.
#[derive(Debug, Clone)]
pub(crate) struct SegSpec {
    pub(crate) address: u64,
    pub(crate) pages: u32,
    pub(crate) committed_pages: u32,
    pub(crate) blocks: Vec<BlockSpec>,
}

/// One synthetic virtual block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VirtSpec {
    pub(crate) address: u64,
    pub(crate) commit: u64,
    pub(crate) user_size: u64,
    pub(crate) trace: u64,
}

/// A synthetic heap.
#[derive(Debug, Clone)]
pub(crate) struct HeapSpec {
    pub(crate) arch: Arch,
    pub(crate) epoch: Epoch,
    pub(crate) key: Option<[u8; 8]>,
    pub(crate) ust: bool,
    pub(crate) segments: Vec<SegSpec>,
    pub(crate) virtual_blocks: Vec<VirtSpec>,
}

/// What the builder wrote, for assertions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Expected {
    pub(crate) rows: Vec<BlockRow>,
    /// Each row's segment (0 for virtual blocks) and +ust trace entry (0 if none).
    pub(crate) segments: Vec<u64>,
    pub(crate) traces: Vec<u64>,
    pub(crate) free_bytes: u64,
    /// (address, size) of each segment's UCR, per segment.
    pub(crate) ucrs: Vec<Vec<(u64, u64)>>,
}

impl HeapSpec {
    /// A heap at `base` with one segment of `pages` pages, `committed` of them committed.
    pub(crate) fn simple(
        arch: Arch,
        epoch: Epoch,
        base: u64,
        pages: u32,
        committed: u32,
        blocks: Vec<BlockSpec>,
    ) -> Self {
        HeapSpec {
            arch,
            epoch,
            key: Some([0x5a, 0xc3, 0x17, 0x88, 0x21, 0x9e, 0x44, 0x06]),
            ust: false,
            segments: vec![SegSpec { address: base, pages, committed_pages: committed, blocks }],
            virtual_blocks: Vec::new(),
        }
    }

    pub(crate) fn heap(&self) -> u64 {
        self.segments[0].address
    }

    fn gran(&self) -> u64 {
        match self.arch {
            Arch::X86 => 8,
            Arch::X64 => 16,
        }
    }

    /// Encode one header group (§6.3) at `at` (x64: bytes 8..15, with bytes 0..7 left alone).
    fn put_entry(&self, s: &mut Space, at: u64, size: u16, flags: u8, prev: u16, unused: u8) {
        let sz = size.to_le_bytes();
        let pv = prev.to_le_bytes();
        let mut g = [sz[0], sz[1], flags, sz[0] ^ sz[1] ^ flags, pv[0], pv[1], 0, unused];
        if let Some(k) = self.key {
            for (b, k) in g.iter_mut().zip(k) {
                *b ^= k;
            }
        } else {
            g[3] = 0;
        }
        let group_at = match self.arch {
            Arch::X86 => at,
            Arch::X64 => at + 8,
        };
        s.put(group_at, &g);
    }

    /// Write everything into a fresh [`Space`].
    pub(crate) fn write(&self) -> (Space, Expected) {
        let mut s = Space::default();
        for seg in &self.segments {
            s.add(seg.address, seg.committed_pages as usize * 0x1000);
        }
        for v in &self.virtual_blocks {
            s.add(v.address, v.commit as usize);
        }
        let exp = self.write_into(&mut s);
        (s, exp)
    }

    pub(crate) fn write_into(&self, s: &mut Space) -> Expected {
        let a = self.arch;
        let x64 = a == Arch::X64;
        let p = a.ptr_size();
        let g = self.gran();
        let h = self.heap();
        let off = heap_offsets(a, self.epoch);
        let mut exp = Expected::default();

        // _HEAP_SEGMENT offsets, §5.
        let (
            seg_sig,
            seg_list_entry,
            seg_heap,
            seg_base,
            seg_pages,
            seg_first,
            seg_last,
            seg_ucp,
            seg_ucr,
            seg_ucr_list,
        ) = if x64 {
            (0x10, 0x18, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x54, 0x60)
        } else {
            (0x08, 0x10, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x38)
        };
        // _HEAP_UCR_DESCRIPTOR, §7: SegmentEntry, Address, Size.
        let (ucr_seg_entry, ucr_addr, ucr_size) = if x64 { (0x10, 0x20, 0x28) } else { (0x08, 0x10, 0x14) };

        // Heap fields.
        s.put_u32(h + off.flags, 0x2);
        s.put_u32(h + off.signature, 0xEEFF_EEFF);
        if let Some(k) = self.key {
            s.put_u32(h + off.encode_flag_mask, 0x0010_0000);
            s.put(h + off.key, &k);
        }
        s.put_u8(h + off.front_end_heap_type, 0);
        s.put_ptr(a, h + off.ucr_index, 0);
        s.put_ptr(a, h + off.lock_variable, 0);

        // Segment list: heap.SegmentList → seg0.SegmentListEntry → seg1... → back.
        let list_head = h + off.segment_list;
        let links: Vec<u64> = self.segments.iter().map(|sg| sg.address + seg_list_entry).collect();
        for (i, &l) in links.iter().enumerate() {
            let next = links.get(i + 1).copied().unwrap_or(list_head);
            let prev = if i == 0 { list_head } else { links[i - 1] };
            s.put_ptr(a, l, next);
            s.put_ptr(a, l + p, prev);
        }
        s.put_ptr(a, list_head, links.first().copied().unwrap_or(list_head));
        s.put_ptr(a, list_head + p, links.last().copied().unwrap_or(list_head));

        let mut total_free_granules = 0u64;
        let mut reserved = 0u64;
        let mut committed_total = 0u64;
        for (si, seg) in self.segments.iter().enumerate() {
            let sa = seg.address;
            let header_granules: u16 = match (si, x64) {
                (0, false) => 0xb1, // 0x588 bytes, as in the Win7 x86 fixture
                (0, true) => 0xa8,  // 0xa80 bytes, as in the Win7 x64 fixture
                (_, false) => 8,    // sizeof(_HEAP_SEGMENT) 0x40
                (_, true) => 7,     // sizeof(_HEAP_SEGMENT) 0x70
            };
            let commit_end = sa + u64::from(seg.committed_pages) * 0x1000;
            let seg_end = sa + u64::from(seg.pages) * 0x1000;
            let has_ucr = seg.committed_pages < seg.pages;
            // The block holding the UCR descriptor: header (+ the +ust header) + descriptor.
            let ucr_block_granules: u16 = match (has_ucr, self.ust) {
                (false, _) => 0,
                (true, false) => 4,
                (true, true) => 6,
            };
            reserved += seg_end - sa;
            committed_total += commit_end - sa;

            s.put_u32(sa + seg_sig, 0xFFEE_FFEE);
            s.put_ptr(a, sa + seg_heap, h);
            s.put_ptr(a, sa + seg_base, sa);
            s.put_u32(sa + seg_pages, seg.pages);
            s.put_ptr(a, sa + seg_first, sa + u64::from(header_granules) * g);
            s.put_ptr(a, sa + seg_last, seg_end);
            s.put_u32(sa + seg_ucp, seg.pages - seg.committed_pages);
            s.put_u32(sa + seg_ucr, u32::from(has_ucr));

            let mut rows = Vec::new();
            let mut at = sa;
            let mut prev = 0u16;
            let mut push = |s: &mut Space,
                            at: &mut u64,
                            prev: &mut u16,
                            b: BlockSpec,
                            kind: BlockKind,
                            unused_override: Option<u8>| {
                let size_bytes = u64::from(b.granules) * g;
                let flags = if b.busy { 0x01 | b.extra_flags } else { b.extra_flags };
                let (unused, user_address, user_size, trace) = if !b.busy {
                    (0u64, 0, 0, 0)
                } else if kind == BlockKind::SegmentHeader {
                    (1u64, 0, 0, 0)
                } else if self.ust && matches!(kind, BlockKind::Backend | BlockKind::Internal) {
                    // §11.3: trace ptr at +0x08/+0x10, u16 extra at +0x14/+0x2c, data at +0x18/+0x30.
                    let (tp, ex, ud) = if x64 { (0x10, 0x2c, 0x30) } else { (0x08, 0x14, 0x18) };
                    let extra = size_bytes - b.user_size;
                    s.put_ptr(a, *at + tp, b.trace);
                    s.put_u16(*at + ex, extra as u16);
                    (extra, *at + ud, b.user_size, b.trace)
                } else {
                    (size_bytes - b.user_size, *at + g, b.user_size, 0)
                };
                let ust_header = self.ust && matches!(kind, BlockKind::Backend | BlockKind::Internal);
                let ub = unused_override.unwrap_or(if b.busy && !ust_header { unused as u8 } else { 0 });
                self.put_entry(s, *at, b.granules, flags, *prev, ub);
                rows.push((
                    sa,
                    trace,
                    BlockRow {
                        address: *at,
                        user_address,
                        size: size_bytes,
                        user_size,
                        busy: b.busy,
                        kind: kind.code(),
                        flags,
                        unused_bytes: unused as u32,
                        corruption: 0,
                        parent: -1,
                        level: 0,
                        is_allocation: kind.is_allocation(b.busy),
                        // A VIRTUAL_ALLOC block with no LFH pointing at it (§6.2).
                        not_decoded: if kind == BlockKind::LfhContainer { NotDecoded::Orphan.code() } else { 0 },
                    },
                ));
                *prev = b.granules;
                *at += size_bytes;
            };
            let header_bytes = u64::from(header_granules) * g;
            let header = BlockSpec::busy(header_granules, header_bytes - 1);
            push(s, &mut at, &mut prev, header, BlockKind::SegmentHeader, Some(1));
            for b in &seg.blocks {
                if !b.busy {
                    total_free_granules += u64::from(b.granules);
                    exp.free_bytes += u64::from(b.granules) * g;
                }
                let kind =
                    if b.busy && b.extra_flags & 0x08 != 0 { BlockKind::LfhContainer } else { BlockKind::Backend };
                push(s, &mut at, &mut prev, *b, kind, None);
            }
            let fill_end = commit_end - u64::from(ucr_block_granules) * g;
            assert!(at <= fill_end, "synthetic segment {sa:#x}: blocks overflow the committed pages");
            if at < fill_end {
                let gr = ((fill_end - at) / g) as u16;
                total_free_granules += u64::from(gr);
                exp.free_bytes += u64::from(gr) * g;
                push(s, &mut at, &mut prev, BlockSpec::free(gr), BlockKind::Backend, None);
            }
            let ucr_list_head = sa + seg_ucr_list;
            let mut seg_ucrs = Vec::new();
            if has_ucr {
                // The last committed block holds the descriptor (UnusedBytes 3, §6.4 / §14).
                let desc_size = if x64 { 0x30 } else { 0x18 };
                let (d, ucr_user) = if self.ust {
                    (at + if x64 { 0x30 } else { 0x18 }, desc_size)
                } else {
                    (at + g, u64::from(ucr_block_granules) * g - 3)
                };
                let ucr_block = BlockSpec::busy(ucr_block_granules, ucr_user);
                push(s, &mut at, &mut prev, ucr_block, BlockKind::Internal, Some(3));
                s.put_ptr(a, d, d); // ListEntry (heap UCRList; not walked)
                s.put_ptr(a, d + p, d);
                s.put_ptr(a, d + ucr_seg_entry, ucr_list_head);
                s.put_ptr(a, d + ucr_seg_entry + p, ucr_list_head);
                s.put_ptr(a, d + ucr_addr, commit_end);
                s.put_ptr(a, d + ucr_size, seg_end - commit_end);
                s.put_ptr(a, ucr_list_head, d + ucr_seg_entry);
                s.put_ptr(a, ucr_list_head + p, d + ucr_seg_entry);
                seg_ucrs.push((commit_end, seg_end - commit_end));
            } else {
                s.put_ptr(a, ucr_list_head, ucr_list_head);
                s.put_ptr(a, ucr_list_head + p, ucr_list_head);
            }
            assert_eq!(at, commit_end);
            for (seg, trace, row) in rows {
                exp.rows.push(row);
                exp.segments.push(seg);
                exp.traces.push(trace);
            }
            exp.ucrs.push(seg_ucrs);
        }
        s.put_ptr(a, h + off.total_free_size, total_free_granules);

        // Virtual blocks, §8: CommitSize 0x10/0x20, ReserveSize 0x14/0x28, BusyBlock 0x18/0x30.
        let vhead = h + off.virtual_allocd_blocks;
        let vlinks: Vec<u64> = self.virtual_blocks.iter().map(|v| v.address).collect();
        for (i, v) in self.virtual_blocks.iter().enumerate() {
            let next = vlinks.get(i + 1).copied().unwrap_or(vhead);
            let prev = if i == 0 { vhead } else { vlinks[i - 1] };
            s.put_ptr(a, v.address, next);
            s.put_ptr(a, v.address + p, prev);
            let (cs, rs, bb) = if x64 { (0x20, 0x28, 0x30) } else { (0x10, 0x14, 0x18) };
            s.put_ptr(a, v.address + cs, v.commit);
            s.put_ptr(a, v.address + rs, v.commit);
            self.put_entry(s, v.address + bb, (v.commit - v.user_size) as u16, 0x0b, 0, 4);
            let (user_address, trace) = if self.ust {
                let (tp, ud) = if x64 { (0x40, 0x60) } else { (0x20, 0x30) };
                s.put_ptr(a, v.address + tp, v.trace);
                (v.address + ud, v.trace)
            } else {
                (v.address + if x64 { 0x40 } else { 0x20 }, 0)
            };
            exp.segments.push(0);
            exp.traces.push(trace);
            exp.rows.push(BlockRow {
                address: v.address + bb,
                user_address,
                size: v.commit,
                user_size: v.user_size,
                busy: true,
                kind: BlockKind::Virtual.code(),
                flags: 0x0b,
                unused_bytes: (v.commit - v.user_size) as u32,
                corruption: 0,
                parent: -1,
                level: 0,
                is_allocation: true,
                not_decoded: 0,
            });
        }
        s.put_ptr(a, vhead, vlinks.first().copied().unwrap_or(vhead));
        s.put_ptr(a, vhead + p, vlinks.last().copied().unwrap_or(vhead));

        // _HEAP_COUNTERS (§4.1 end): reserved, committed, large UCR, virtual, segments, UCRs.
        let c = h + off.counters;
        let (w, segs_at) = if x64 { (8, 0x20) } else { (4, 0x10) };
        s.put_ptr(a, c, reserved);
        s.put_ptr(a, c + w, committed_total);
        s.put_ptr(a, c + 2 * w, 0);
        s.put_ptr(a, c + 3 * w, self.virtual_blocks.iter().map(|v| v.commit).sum());
        s.put_u32(c + segs_at, self.segments.len() as u32);
        exp
    }
}
