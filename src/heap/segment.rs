//! Segments, uncommitted ranges (UCRs) and the entry walk (§5, §7, §12.3).
//!
//! ## The walk
//!
//! A heap's segments are the heap itself (its `_HEAP` starts with a `_HEAP_SEGMENT`, §4) and
//! every `_HEAP_SEGMENT` on `_HEAP.SegmentList` (node − `SegmentListEntry` offset; the list
//! includes the heap's own segment). For each segment:
//!
//! 1. Its header is checked: `SegmentSignature` 0xFFEEFFEE, `Heap` back-pointer, and
//!    `LastValidEntry ≤ BaseAddress + NumberOfPages × 0x1000` (\[MPF\], §12.3.2). The span walked is
//!    `[segment, LastValidEntry)`. Spans that overlap an already-walked segment (of any heap) are
//!    not walked again, so a hostile heap list cannot make the walk revisit memory.
//! 2. Its UCRs come from `UCRSegmentList` (descriptor = node − `SegmentEntry` offset, §7, \[DHU\]);
//!    descriptors outside the span or overlapping each other are dropped with a record.
//! 3. The span minus the UCRs gives committed ranges. Each is walked from its start, header by
//!    header, `p += Size × granularity`, starting **at the segment's own address**: the first
//!    block is the segment-header block (see [`crate::heap::columns`]), whose `Size` reaches
//!    `FirstEntry` (checked). A header that is not captured, fails its checksum, has Size 0 or
//!    runs past the range becomes a corruption record and an `Unparsed` row, and the walk
//!    resynchronises (below). `PreviousSize` is checked against the previous block's `Size`
//!    (except for the first block of a range) and a mismatch is recorded without stopping.
//!
//! The committed bytes of a range are taken as one slice of the dump (`contiguous_at`) and
//! decoded in place; `AddressSpace::read` is the fallback only at the edges of captured ranges.
//! A first pass counts the blocks so that the columns are reserved once per range. List walks
//! (segments, UCRs) are bounded per list and by the report's node budget (`list`).
//!
//! ## Folklore: resynchronising after a bad header
//!
//! *Situation.* After a header with a bad checksum (or Size 0, or a Size that runs past the
//! range), the next header's position is unknown. Block starts are not page-aligned, so
//! restarting at the next page boundary finds a header only by luck.
//!
//! *Handling.* Scan forward granule by granule (block headers are granule-aligned) for a position
//! where [`RESYNC_CHAIN`] consecutive headers decode with valid checksums, non-zero sizes, each
//! `PreviousSize` equal to the size before it, all inside the range (or a chain that ends exactly
//! at the range end). A false match needs a run of bytes that decode under the heap's random key
//! into a self-consistent chain. The bytes skipped become one `Unparsed` row carrying the
//! corruption code, so coverage still holds. The scan is linear in the bytes of the range and
//! skips what is not captured. *Residual risk:* stale headers inside a large coalesced free block
//! can form a valid chain; blocks found that way lie inside the region that was already known to
//! be damaged.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use super::columns::{BlockKind, BlockRow, NotDecoded};
use super::corruption::{CorruptionKind, Recorder};
use super::entry::{plain_user_span, ust_user_span, DecodedEntry, UserSpan, UNUSED_BYTES_OVERFLOW};
use super::lfh::{LfhPlan, Special, SubsegmentUpdate};
use super::list::walk_list;
use super::page_heap;
use super::rows::{Placed, RowSink};
use super::HeapCtx;
use crate::layouts::nt_heap::{entry_flags, HEAP_SEGMENT_SIGNATURE, PAGE_SIZE};
use crate::memory::AddressSpace;
use crate::prefetch::{prefetch, CACHE_LINE, PREFETCH_DISTANCE};
use crate::target::Arch;

/// Upper bound on segments per heap (a growable heap adds segments of doubling size; thousands
/// would already be extraordinary).
pub const MAX_SEGMENTS: usize = 0x1_0000;
/// Upper bound on UCR descriptors per segment.
pub const MAX_UCRS_PER_SEGMENT: usize = 0x10_0000;
/// Consecutive consistent headers needed to resynchronise after a bad one.
pub const RESYNC_CHAIN: usize = 4;

/// One uncommitted range of a segment (`_HEAP_UCR_DESCRIPTOR`, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UcrRange {
    /// First uncommitted byte (`Address`).
    pub address: u64,
    /// Size in bytes (`Size`).
    pub size: u64,
    /// Address of the descriptor itself.
    pub descriptor: u64,
}

/// One segment of an NT heap, as read from its `_HEAP_SEGMENT` (§5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Address of the `_HEAP_SEGMENT` (the heap's own address for its first segment).
    pub address: u64,
    /// `BaseAddress`.
    pub base: u64,
    /// `FirstEntry`.
    pub first_entry: u64,
    /// `LastValidEntry`.
    pub last_valid_entry: u64,
    /// `NumberOfPages`.
    pub number_of_pages: u32,
    /// `NumberOfUnCommittedPages`.
    pub uncommitted_pages: u32,
    /// `NumberOfUnCommittedRanges`.
    pub uncommitted_ranges: u32,
    /// `NumberOfPages × 0x1000`.
    pub reserved_bytes: u64,
    /// `(NumberOfPages − NumberOfUnCommittedPages) × 0x1000` (0 if the header is inconsistent).
    pub committed_bytes: u64,
    /// The UCRs found on `UCRSegmentList`, sorted by address (invalid descriptors dropped).
    pub ucrs: Vec<UcrRange>,
    /// Rows of [`crate::heap::BlockColumns`] that belong to this segment.
    pub blocks: Range<usize>,
    /// Whether the entries were walked (false when the header failed its checks or the segment
    /// overlaps one already walked).
    pub walked: bool,
}

/// Spans of segments already walked in this report, to refuse overlapping ones.
#[derive(Debug, Default)]
pub(crate) struct SpanGuard {
    spans: BTreeMap<u64, (u64, u64)>, // start → (end, heap)
}

impl SpanGuard {
    /// The (start, end, heap) of a walked span overlapping `start..end`, if any; otherwise claim it.
    fn claim(&mut self, start: u64, end: u64, heap: u64) -> Option<(u64, u64, u64)> {
        if let Some((&s, &(e, h))) = self.spans.range(..end).next_back() {
            if e > start {
                return Some((s, e, h));
            }
        }
        self.spans.insert(start, (end, heap));
        None
    }
}

fn sub_link(node: u64, offset: u16) -> Option<u64> {
    node.checked_sub(u64::from(offset))
}

/// The segment addresses of a heap: itself first, then `SegmentList` order, deduplicated.
pub(crate) fn segment_addresses(ctx: &HeapCtx<'_>, rec: &mut Recorder<'_>) -> Vec<u64> {
    let l = ctx.layout;
    let head = ctx.heap.wrapping_add(u64::from(l.heap.segment_list));
    let w = walk_list(ctx.mem, ctx.arch, head, MAX_SEGMENTS, ctx.budget, "_HEAP.SegmentList");
    for p in &w.problems {
        rec.record(p.address, p.kind, p.detail.clone());
    }
    let mut out = vec![ctx.heap];
    // A set, not `out.contains`: a crafted list of MAX_SEGMENTS nodes would make that quadratic.
    let mut seen: HashSet<u64> = HashSet::from([ctx.heap]);
    for node in w.nodes {
        match sub_link(node, l.segment.segment_list_entry) {
            Some(seg) if seen.insert(seg) => out.push(seg),
            Some(_) => {}
            None => {
                rec.record(node, CorruptionKind::BadLink, format!("SegmentList node {node:#x} is below its offset"))
            }
        }
    }
    out
}

/// Read one segment header and its UCR list. `None` (with a record) when the header is unreadable.
pub(crate) fn read_segment(ctx: &HeapCtx<'_>, address: u64, rec: &mut Recorder<'_>) -> Option<SegmentInfo> {
    let mem = ctx.mem;
    let a = ctx.arch;
    let s = &ctx.layout.segment;
    let f = |o: u16| address.wrapping_add(u64::from(o));
    let fields = (|| {
        Some((
            mem.read_u32(f(s.segment_signature)).ok()?,
            mem.read_ptr(a, f(s.heap)).ok()?,
            mem.read_ptr(a, f(s.base_address)).ok()?,
            mem.read_u32(f(s.number_of_pages)).ok()?,
            mem.read_ptr(a, f(s.first_entry)).ok()?,
            mem.read_ptr(a, f(s.last_valid_entry)).ok()?,
            mem.read_u32(f(s.number_of_uncommitted_pages)).ok()?,
            mem.read_u32(f(s.number_of_uncommitted_ranges)).ok()?,
        ))
    })();
    let Some((signature, heap, base, pages, first_entry, last_valid_entry, ucp, ucr)) = fields else {
        rec.record(address, CorruptionKind::NotCaptured, format!("_HEAP_SEGMENT header at {address:#x} not captured"));
        return None;
    };
    let reserved_bytes = u64::from(pages) * PAGE_SIZE;
    let mut info = SegmentInfo {
        address,
        base,
        first_entry,
        last_valid_entry,
        number_of_pages: pages,
        uncommitted_pages: ucp,
        uncommitted_ranges: ucr,
        reserved_bytes,
        committed_bytes: u64::from(pages.saturating_sub(ucp)) * PAGE_SIZE,
        ucrs: Vec::new(),
        blocks: 0..0,
        walked: false,
    };
    if signature != HEAP_SEGMENT_SIGNATURE {
        rec.record(
            address,
            CorruptionKind::BadSignature,
            format!("segment {address:#x}: SegmentSignature {signature:#x}, expected {HEAP_SEGMENT_SIGNATURE:#x}"),
        );
        return Some(info);
    }
    if heap != ctx.heap {
        rec.record(address, CorruptionKind::Inconsistent, format!("segment {address:#x}: Heap field is {heap:#x}"));
    }
    if ucp > pages {
        rec.record(
            address,
            CorruptionKind::Inconsistent,
            format!("segment {address:#x}: {ucp:#x} uncommitted pages of {pages:#x}"),
        );
    }
    // UCRs (§7): descriptor = node − SegmentEntry offset.
    let u = &ctx.layout.ucr;
    let head = f(s.ucr_segment_list);
    let w = walk_list(mem, a, head, MAX_UCRS_PER_SEGMENT, ctx.budget, "_HEAP_SEGMENT.UCRSegmentList");
    for p in &w.problems {
        rec.record(p.address, p.kind, p.detail.clone());
    }
    for node in w.nodes {
        let Some(d) = sub_link(node, u.segment_entry) else { continue };
        let at = |o: u16| d.wrapping_add(u64::from(o));
        match (mem.read_ptr(a, at(u.address)), mem.read_ptr(a, at(u.size))) {
            (Ok(address), Ok(size)) => info.ucrs.push(UcrRange { address, size, descriptor: d }),
            _ => rec.record(d, CorruptionKind::NotCaptured, format!("UCR descriptor {d:#x} not captured")),
        }
    }
    info.ucrs.sort_by_key(|r| r.address);
    Some(info)
}

/// The end of the span to walk, or `None` (with a record) when the header makes no sense.
fn span_end(info: &SegmentInfo, rec: &mut Recorder<'_>) -> Option<u64> {
    let seg = info.address;
    let limit = info.base.checked_add(info.reserved_bytes);
    let ok = |e: u64| e > seg && limit.is_none_or(|l| e <= l);
    if ok(info.last_valid_entry) {
        if !(seg < info.first_entry && info.first_entry <= info.last_valid_entry) {
            rec.record(
                seg,
                CorruptionKind::OutOfSegment,
                format!("segment {seg:#x}: FirstEntry {:#x} outside the segment", info.first_entry),
            );
        }
        return Some(info.last_valid_entry);
    }
    rec.record(
        seg,
        CorruptionKind::OutOfSegment,
        format!(
            "segment {seg:#x}: LastValidEntry {:#x} outside BaseAddress {:#x} + {:#x} pages",
            info.last_valid_entry, info.base, info.number_of_pages
        ),
    );
    None
}

/// Drop UCRs outside `[seg, end)` or overlapping, check the totals against the header, and
/// return the committed ranges.
fn committed_ranges(info: &mut SegmentInfo, end: u64, rec: &mut Recorder<'_>) -> Vec<(u64, u64)> {
    let seg = info.address;
    let mut kept: Vec<UcrRange> = Vec::with_capacity(info.ucrs.len());
    for u in std::mem::take(&mut info.ucrs) {
        let u_end = u.address.checked_add(u.size);
        let inside = u.address > seg && u_end.is_some_and(|e| e <= end);
        let overlaps = kept.last().is_some_and(|k| k.address + k.size > u.address);
        if inside && !overlaps {
            kept.push(u);
        } else {
            rec.record(
                u.descriptor,
                CorruptionKind::BadUcr,
                format!(
                    "segment {seg:#x}: UCR {:#x}+{:#x} {} (span ends at {end:#x})",
                    u.address,
                    u.size,
                    if inside { "overlaps the previous one" } else { "lies outside the segment" }
                ),
            );
        }
    }
    info.ucrs = kept;
    let ucr_bytes: u64 = info.ucrs.iter().map(|u| u.size).sum();
    if ucr_bytes != u64::from(info.uncommitted_pages) * PAGE_SIZE
        || info.ucrs.len() as u64 != u64::from(info.uncommitted_ranges)
    {
        rec.record(
            seg,
            CorruptionKind::Inconsistent,
            format!(
                "segment {seg:#x}: UCR list has {} ranges, {ucr_bytes:#x} bytes; header says {} ranges, {:#x} pages",
                info.ucrs.len(),
                info.uncommitted_ranges,
                info.uncommitted_pages
            ),
        );
    }
    let mut ranges = Vec::with_capacity(info.ucrs.len() + 1);
    let mut cur = seg;
    for u in &info.ucrs {
        if u.address > cur {
            ranges.push((cur, u.address));
        }
        cur = cur.max(u.address + u.size);
    }
    if cur < end {
        ranges.push((cur, end));
    }
    ranges
}

/// Reads header-sized pieces of memory, from one cached contiguous slice when it can.
struct Cursor<'a> {
    mem: &'a AddressSpace,
    base: u64,
    bytes: &'a [u8],
    /// Offset in `bytes` of the next cache line to prefetch (see `crate::prefetch`).
    pf: usize,
}

impl<'a> Cursor<'a> {
    fn new(mem: &'a AddressSpace) -> Self {
        Cursor { mem, base: 0, bytes: &[], pf: 0 }
    }

    /// `n ≤ 16` bytes at `addr` (in the first `n` bytes of the result), or `None` if they are not
    /// all captured.
    #[inline]
    fn fetch(&mut self, addr: u64, n: usize) -> Option<[u8; 16]> {
        let off = addr.wrapping_sub(self.base);
        if addr >= self.base && off < self.bytes.len() as u64 {
            let o = off as usize;
            // Keep the prefetch cursor PREFETCH_DISTANCE ahead, hinting every line it passes.
            let mut pf = self.pf.max(o);
            while pf < o + PREFETCH_DISTANCE {
                prefetch(self.bytes, pf);
                pf += CACHE_LINE;
            }
            self.pf = pf;
            // Hot path: a fixed 16-byte copy (one load, no call, no partial store), whatever `n`.
            if let Some(b) = self.bytes.get(o..o + 16) {
                return Some(b.try_into().expect("16 bytes"));
            }
        }
        self.fetch_slow(addr, n)
    }

    #[cold]
    fn fetch_slow(&mut self, addr: u64, n: usize) -> Option<[u8; 16]> {
        let mut out = [0u8; 16];
        if let Some(b) = self.mem.contiguous_at(addr) {
            self.base = addr;
            self.bytes = b;
            self.pf = 0;
            if b.len() >= n {
                out[..n].copy_from_slice(&b[..n]);
                return Some(out);
            }
        }
        // Straddles two captured ranges that touch in memory but not in the file.
        let b = self.mem.read(addr, n as u64).ok()?;
        out[..n].copy_from_slice(&b);
        Some(out)
    }

    fn ptr(&mut self, arch: Arch, addr: u64) -> Option<u64> {
        let n = arch.ptr_size() as usize;
        let b = self.fetch(addr, n)?;
        Some(match arch {
            Arch::X86 => u64::from(u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))),
            Arch::X64 => u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
        })
    }

    fn u16(&mut self, addr: u64) -> Option<u16> {
        let b = self.fetch(addr, 2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
}

/// The first captured address at or after `addr`, if any.
fn next_captured(mem: &AddressSpace, addr: u64) -> Option<u64> {
    let ranges = mem.ranges();
    let i = ranges.partition_point(|r| r.end() <= addr);
    ranges.get(i).map(|r| r.va.max(addr))
}

#[cold]
fn bad_header(d: &DecodedEntry, size_bytes: u64, end: u64) -> (CorruptionKind, String) {
    if !d.checksum_ok {
        let expect = (d.size as u8) ^ ((d.size >> 8) as u8) ^ d.flags;
        (
            CorruptionKind::BadChecksum,
            format!(
                "decoded header Size {:#x} Flags {:#x} SmallTagIndex {:#x} != {expect:#x}",
                d.size, d.flags, d.small_tag_index
            ),
        )
    } else if d.size == 0 {
        (CorruptionKind::ZeroSize, "decoded header has Size 0".to_string())
    } else {
        (
            CorruptionKind::OutOfSegment,
            format!("block of {size_bytes:#x} bytes runs past the committed range end {end:#x}"),
        )
    }
}

#[cold]
fn bad_previous_size(rec: &mut Recorder<'_>, p: u64, got: u16, expected: u16) -> u8 {
    rec.record(
        p,
        CorruptionKind::BadPreviousSize,
        format!("PreviousSize {got:#x}, previous block has Size {expected:#x}"),
    );
    CorruptionKind::BadPreviousSize.code()
}

#[cold]
fn bad_unused(rec: &mut Recorder<'_>, p: u64, d: &DecodedEntry, unused: u64, size_bytes: u64) -> u8 {
    rec.record(
        p,
        CorruptionKind::BadUnusedBytes,
        format!("UnusedBytes {:#x} ({unused:#x}) exceed the block's {size_bytes:#x} bytes", d.unused_bytes),
    );
    CorruptionKind::BadUnusedBytes.code()
}

/// How a walk of a range (or a piece of one) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RangeEnd {
    /// `PreviousSize` of the block at the start, when its header decoded.
    pub(crate) first_previous_size: Option<u16>,
    /// `Size` of the last block walked, when the walk ended on a good block.
    pub(crate) last_size: Option<u16>,
    /// Whether a bad header made the walk resynchronise (then it ended where the resync put it,
    /// which for a piece need not be where a walk of the whole range would have gone).
    pub(crate) resynced: bool,
}

/// Walks the committed ranges of segments of one heap into the columns.
pub(crate) struct EntryWalker<'c, 'a> {
    ctx: &'c HeapCtx<'a>,
    cursor: Cursor<'a>,
    /// Sorted addresses of structures that make the busy block holding them special (UCR
    /// descriptors, the UCR index, LFH zones, the `_LFH_HEAP`, LFH UserBlocks).
    specials: &'c [(u64, Special)],
    /// The heap's LFH, whose containers get their children when the walk meets them.
    lfh: Option<&'c LfhPlan>,
    /// What the walk learnt about LFH subsegments (rows relative to the sink of the walk).
    pub(crate) lfh_updates: Vec<SubsegmentUpdate>,
    /// Free back-end blocks met: (count, bytes), for `!heap -s`.
    pub(crate) free: (u64, u64),
}

/// Decide whether segment `info` (header already read) is walked, and return its committed
/// ranges: `None` (with a record) when its header makes no sense or it overlaps a segment
/// already walked.
pub(crate) fn prepare_segment(
    info: &mut SegmentInfo,
    heap: u64,
    guard: &mut SpanGuard,
    rec: &mut Recorder<'_>,
) -> Option<Vec<(u64, u64)>> {
    let end = span_end(info, rec)?;
    if let Some((s, e, h)) = guard.claim(info.address, end, heap) {
        rec.record(
            info.address,
            CorruptionKind::OutOfSegment,
            format!(
                "segment {:#x}..{end:#x} overlaps segment {s:#x}..{e:#x} of heap {h:#x}; not walked again",
                info.address
            ),
        );
        return None;
    }
    let ranges = committed_ranges(info, end, rec);
    info.walked = true;
    Some(ranges)
}

/// The segment-header block of a walked segment, `first` (its first row), should end exactly at
/// `FirstEntry`.
pub(crate) fn check_header_block(info: &SegmentInfo, first: Option<BlockRow>, rec: &mut Recorder<'_>) {
    if let Some(r) = first {
        if r.kind == BlockKind::SegmentHeader.code() && r.address + r.size != info.first_entry {
            rec.record(
                info.address,
                CorruptionKind::Inconsistent,
                format!(
                    "segment header block ends at {:#x}, FirstEntry is {:#x}",
                    r.address + r.size,
                    info.first_entry
                ),
            );
        }
    }
}

impl<'c, 'a> EntryWalker<'c, 'a> {
    pub(crate) fn new(ctx: &'c HeapCtx<'a>, specials: &'c [(u64, Special)], lfh: Option<&'c LfhPlan>) -> Self {
        EntryWalker { ctx, cursor: Cursor::new(ctx.mem), specials, lfh, lfh_updates: Vec::new(), free: (0, 0) }
    }

    fn gap_row(&self, segment: u64, from: u64, to: u64, kind: CorruptionKind) -> BlockRow {
        let _ = segment;
        let mut r = BlockRow::top(BlockKind::Unparsed, false);
        r.address = from;
        r.size = to - from;
        r.corruption = kind.code();
        r
    }

    /// Walk the blocks of `[start, end)`, a committed range of `segment` or a piece of one;
    /// `prev` is the `Size` of the block before `start` when it is known (a piece that follows
    /// another), checked against the first block's `PreviousSize`.
    ///
    /// The loop body is the hot path of the whole crate: one 16-byte load, one XOR, a few tests
    /// and one buffered row per block. Everything that only happens on corrupt or unusual blocks
    /// (and on the few blocks that hold heap structures) lives in `#[cold]` helpers.
    pub(crate) fn walk_range(
        &mut self,
        segment: u64,
        start: u64,
        end: u64,
        prev: Option<u16>,
        sink: &mut RowSink<'_>,
        rec: &mut Recorder<'_>,
    ) -> RangeEnd {
        let dec = self.ctx.decoder;
        let g = dec.granularity();
        let hs = dec.header_size();
        let hsz = hs as usize;
        let plain = !self.ctx.ust;
        let mut special_i = self.specials.partition_point(|&(a, _)| a < start);
        self.ctx.mem.populate(start, end);
        let mut p = start;
        let mut prev_size: Option<u16> = prev;
        let mut out = RangeEnd { first_previous_size: None, last_size: None, resynced: false };
        while p < end {
            let Some(hdr) = self.cursor.fetch(p, hsz) else {
                let detail = format!("block header at {p:#x} not captured");
                p = self.skip_bad(segment, p, end, CorruptionKind::NotCaptured, detail, sink, rec);
                prev_size = None;
                out.resynced = true;
                continue;
            };
            let d = dec.decode(&hdr[..hsz]);
            let size_bytes = u64::from(d.size) * g;
            if !d.checksum_ok || d.size == 0 || size_bytes > end - p {
                let (kind, detail) = bad_header(&d, size_bytes, end);
                p = self.skip_bad(segment, p, end, kind, detail, sink, rec);
                prev_size = None;
                out.resynced = true;
                continue;
            }
            if p == start {
                out.first_previous_size = Some(d.previous_size);
            }
            let mut corrupt = 0u8;
            if prev_size.is_some_and(|ps| ps != d.previous_size) {
                corrupt = bad_previous_size(rec, p, d.previous_size, prev_size.unwrap_or(0));
            }
            let busy = d.flags & entry_flags::BUSY != 0;
            let block_end = p + size_bytes;
            // Structures inside this block (consumed whether or not it is busy).
            let mut special = None;
            while special_i < self.specials.len() && self.specials[special_i].0 < block_end {
                if self.specials[special_i].0 >= p {
                    let s = self.specials[special_i].1;
                    special = Some(special.map_or(s, |o: Special| o.max(s)));
                }
                special_i += 1;
            }
            let kind = if p == segment {
                BlockKind::SegmentHeader
            } else if !busy {
                self.free = (self.free.0 + 1, self.free.1.saturating_add(size_bytes));
                BlockKind::Backend
            } else if special.is_some() || d.flags & entry_flags::VIRTUAL_ALLOC != 0 {
                special_kind(special)
            } else {
                BlockKind::Backend
            };
            let mut trace = 0;
            let mut row = if !busy || kind == BlockKind::SegmentHeader {
                // No user data: free blocks, and the block holding the segment's own header.
                let mut r = BlockRow::top(kind, busy);
                r.unused_bytes = u32::from(d.unused_bytes);
                r
            } else {
                let unused = u64::from(d.unused_bytes);
                // Common case inline: no +ust, no 0x3F overflow, a sane count (§6.4).
                let span =
                    if plain && d.unused_bytes & UNUSED_BYTES_OVERFLOW != UNUSED_BYTES_OVERFLOW && unused <= size_bytes
                    {
                        UserSpan {
                            user_address: p.wrapping_add(hs),
                            user_size: size_bytes - unused,
                            unused,
                            stack_trace_entry: 0,
                            bad_unused: false,
                        }
                    } else {
                        self.user_span(&d, p, size_bytes, kind)
                    };
                if span.bad_unused {
                    corrupt = bad_unused(rec, p, &d, span.unused, size_bytes);
                }
                let mut r = BlockRow::top(kind, busy);
                r.user_address = span.user_address;
                r.user_size = span.user_size;
                r.unused_bytes = u32::try_from(span.unused).unwrap_or(u32::MAX);
                trace = span.stack_trace_entry;
                r
            };
            row.address = p;
            row.size = size_bytes;
            row.flags = d.flags;
            row.corruption = corrupt;
            if self.ctx.dph_normal && kind == BlockKind::Backend && busy {
                self.light_page_heap(&mut row);
            }
            let index = sink.push_traced(row, trace);
            if row.block_kind().is_container() {
                self.container(special, &Placed { index, row, extent: (p, block_end) }, sink, rec);
            }
            prev_size = Some(d.size);
            p = block_end;
        }
        out.last_size = prev_size;
        out
    }

    /// The first block start in `[from, to)` of the range ending at `end`: a position where
    /// [`RESYNC_CHAIN`] consistent headers begin (a candidate; the walk of the piece before it
    /// confirms it by ending exactly there).
    pub(crate) fn boundary(&mut self, from: u64, to: u64, end: u64) -> Option<u64> {
        self.chain_start(from, to, end)
    }

    /// In a page heap's `NormalHeap`: a busy block whose user data starts with a
    /// `_DPH_BLOCK_INFORMATION` stamp is a `dph_normal` container.
    #[cold]
    fn light_page_heap(&self, row: &mut BlockRow) {
        if row.user_address != 0 && page_heap::is_normal_block(self.ctx.mem, self.ctx.arch, row.user_address) {
            row.set_kind(BlockKind::DphNormal);
        }
    }

    /// A container row was pushed at `index`: append its children, or say why not.
    #[cold]
    #[inline(never)]
    pub(crate) fn container(
        &mut self,
        special: Option<Special>,
        at: &Placed,
        sink: &mut RowSink<'_>,
        rec: &mut Recorder<'_>,
    ) {
        let mem = self.ctx.mem;
        let why = if at.row.kind == BlockKind::DphNormal.code() {
            page_heap::emit_normal_children(mem, self.ctx.arch, at.row.user_address, at, sink, rec)
        } else {
            match (special, self.lfh) {
                (Some(Special::Container(i)), Some(lfh)) => {
                    let (why, update) = lfh.emit_children(mem, i, at, sink, rec);
                    self.lfh_updates.extend(update);
                    why
                }
                (_, Some(lfh)) => Some(lfh.orphan_reason()),
                (_, None) => Some(NotDecoded::Orphan),
            }
        };
        if let Some(why) = why {
            sink.update(at.index, |r| r.not_decoded = why.code());
        }
    }

    /// Record a bad header at `p`, resynchronise, emit the unparsed gap; returns where to go on.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn skip_bad(
        &mut self,
        segment: u64,
        p: u64,
        end: u64,
        kind: CorruptionKind,
        detail: String,
        sink: &mut RowSink<'_>,
        rec: &mut Recorder<'_>,
    ) -> u64 {
        let g = self.ctx.decoder.granularity();
        let next = self.resync(p.saturating_add(g), end);
        let to = next.unwrap_or(end);
        let how = match next {
            Some(q) => format!("resynchronised at {q:#x} after {:#x} bytes", q - p),
            None => format!("no consistent header found up to {end:#x}; rest of the range unparsed"),
        };
        rec.record(p, kind, format!("{detail}; {how}"));
        let gap = self.gap_row(segment, p, to, kind);
        sink.push(gap);
        to
    }

    /// User address/size of a busy block (§6.4, §11.3).
    #[cold]
    fn user_span(&mut self, d: &DecodedEntry, p: u64, size_bytes: u64, kind: BlockKind) -> UserSpan {
        let ctx = self.ctx;
        let dec = ctx.decoder;
        // +ust: every busy block carries the trace header (INFERRED for the heap's own
        // allocations: zones, UserBlocks, UCR blocks are allocated through the same path).
        if ctx.ust && !matches!(kind, BlockKind::SegmentHeader) {
            let u = &ctx.layout.ust;
            let trace = self.cursor.ptr(ctx.arch, p.wrapping_add(u64::from(u.trace_pointer)));
            let extra = self.cursor.u16(p.wrapping_add(u64::from(u.extra)));
            if let (Some(trace), Some(extra)) = (trace, extra) {
                if let Some(s) = ust_user_span(ctx.arch, size_bytes, p, u64::from(u.user_data), extra, trace) {
                    return s;
                }
            }
        }
        let cursor = &mut self.cursor;
        plain_user_span(ctx.arch, d, p, dec.granularity(), dec.header_size(), || cursor.ptr(Arch::X64, p + size_bytes))
    }

    /// The first position in `[from, end)` where [`RESYNC_CHAIN`] consistent headers start.
    fn resync(&mut self, from: u64, end: u64) -> Option<u64> {
        self.chain_start(from, end, end)
    }

    /// The first captured, granule-aligned position in `[from, limit)` where [`RESYNC_CHAIN`]
    /// consistent headers of the range ending at `end` start.
    fn chain_start(&mut self, from: u64, limit: u64, end: u64) -> Option<u64> {
        let g = self.ctx.decoder.granularity();
        let mut q = from.checked_add(g - 1)? / g * g;
        while q < limit.min(end) {
            match next_captured(self.ctx.mem, q) {
                Some(c) if c == q => {}
                Some(c) => {
                    q = c.checked_add(g - 1)? / g * g;
                    continue;
                }
                None => return None,
            }
            if self.chain_ok(q, end) {
                return Some(q);
            }
            q = q.checked_add(g)?;
        }
        None
    }

    fn chain_ok(&mut self, q: u64, end: u64) -> bool {
        let dec = self.ctx.decoder;
        let g = dec.granularity();
        let hsz = dec.header_size() as usize;
        let mut at = q;
        let mut prev: Option<u16> = None;
        for _ in 0..RESYNC_CHAIN {
            let Some(hdr) = self.cursor.fetch(at, hsz) else { return false };
            let d = dec.decode(&hdr[..hsz]);
            if !d.checksum_ok || d.size == 0 || prev.is_some_and(|p| p != d.previous_size) {
                return false;
            }
            let Some(next) = at.checked_add(u64::from(d.size) * g).filter(|&n| n <= end) else { return false };
            if next == end {
                return true;
            }
            prev = Some(d.size);
            at = next;
        }
        true
    }
}

/// The kind of a busy block that holds `special` (or has `HEAP_ENTRY_VIRTUAL_ALLOC`).
pub(crate) fn special_kind(special: Option<Special>) -> BlockKind {
    match special {
        Some(Special::Internal) => BlockKind::Internal,
        Some(Special::Zone) => BlockKind::LfhZone,
        Some(Special::LfhHeap) => BlockKind::LfhHeap,
        // A VIRTUAL_ALLOC block with no structure in it: an LFH container nothing points at.
        Some(Special::Container(_)) | None => BlockKind::LfhContainer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_guard_refuses_overlaps() {
        let mut g = SpanGuard::default();
        assert_eq!(g.claim(0x1000, 0x2000, 1), None);
        assert_eq!(g.claim(0x3000, 0x4000, 1), None);
        assert_eq!(g.claim(0x2000, 0x3000, 2), None);
        assert_eq!(g.claim(0x1800, 0x1900, 3), Some((0x1000, 0x2000, 1)));
        assert_eq!(g.claim(0x0, 0x1001, 3), Some((0x1000, 0x2000, 1)));
        assert_eq!(g.claim(0x3fff, 0x9000, 3), Some((0x3000, 0x4000, 1)));
    }
}
