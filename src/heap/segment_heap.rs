//! The segment heap (Windows 10 1709 → Windows 11), x64, without symbols (§10, §12.7).
//!
//! ## The walk
//!
//! A `_SEGMENT_HEAP` (signature 0xDDEEDDEE at +0x10) has two back-end contexts
//! (`SegContexts[2]`, §10.1), each with a list of page segments (1 MB of 4 KB units for context
//! 0, 16 MB of 64 KB units for context 1, §10.2). A page segment starts with its header pages
//! (256 range descriptors of 0x20 bytes); the descriptors from `FirstDescriptorIndex` on describe
//! the segment's ranges: free ranges, page ranges handed to the caller, VS subsegments (§10.3)
//! and LFH subsegments (§10.4). Allocations too large for either context are in the
//! `LargeAllocMetadata` red-black tree (§10.5). Rows (docs/block-model.md): per segment its header,
//! then one row per range in address order, VS and LFH subsegments as containers of their chunks
//! and blocks; then the large blocks by address.
//!
//! ## Which layout row
//!
//! The row of the dump's build is tried first; it is accepted when, for both contexts, the heap
//! back-pointer is the heap and the page segments on the context's list all give one `HeapKey`
//! through S1 (§12.9). Otherwise every row is tried and the validating row nearest the build is
//! taken. For 1709 and 1803 the reference gives no `_HEAP_SEG_CONTEXT` field offsets, so the heap
//! back-pointer and the segment list head are found inside the context by the same checks: the
//! back-pointer is the first qword equal to the heap, the list head the first `LIST_ENTRY` whose
//! `Flink` is a segment-aligned page segment whose `Blink` leads back (*derived*).
//!
//! ## Folklore: the keys without symbols
//!
//! *Situation.* Page-segment signatures, VS chunk headers and LFH block offsets are encoded with
//! two per-process random keys kept in `ntdll!RtlpHpHeapGlobals` (§10): `HeapKey` and `LfhKey`.
//!
//! *Example.* A page segment at 0x1f0d4b00000 of context 0x1f0d4a00140 on build 22631 stores
//! `Signature = seg ^ ctx ^ HeapKey ^ 0xA2E64EADA2E64EAD` (S1); every segment of the process must
//! give the same `HeapKey`, and every VS chunk header then decodes into sizes that chain exactly
//! through its subsegment (S3). For `LfhKey` nothing in memory is a known plaintext: each LFH
//! subsegment S with block count BC in a range of R bytes admits the keys
//! `u32(S+0x28) ^ shift(S) ^ (FBO << 16 | BS)` for every block size BS (multiple of 16) and first
//! block offset FBO (multiple of 16, past the bitmap, `FBO + BS·BC ≤ R`) (L1, L2, §10.6 steps
//! 6–8).
//!
//! *Handling.* `HeapKey` is taken from S1 and checked against every segment and chunk. `LfhKey`
//! is the intersection of the candidate sets of every LFH subsegment of the process; when a
//! subsegment has slack after its blocks, shifted FBO values also fit, so several keys can
//! survive: they differ only in the FBO half, and the one that puts every subsegment's first
//! block nearest its bitmap is taken (the allocator places the blocks right after the bitmap,
//! *derived*; recorded as the tie-break in [`SegmentHeapInfo::lfh_key_note`]). With ntdll's PDB
//! both keys are also read through `RtlpHpHeapGlobals` and checked against these.

use std::collections::HashSet;

use super::columns::{BlockKind, BlockRow, NotDecoded};
use super::corruption::{CorruptionKind, Recorder};
use super::discover::ChosenBy;
use super::lfh::KeySource;
use super::list::{walk_list, NodeBudget};
use super::rows::{Chunk, Placed, RowSink};
use crate::layouts::segment_heap::{
    descriptor, large, range_flags, seg_lfh, trailer, vs, LfhBitmap, LfhShift, SegmentHeapLayout, DEFAULT_GEOMETRY,
    DESCRIPTORS_PER_SEGMENT, DESCRIPTOR_SIZE, PAGE_SEGMENT_C_PRE_24H2, SEGMENT_HEAP_LAYOUTS, VS_SIGNATURE_XOR,
};
use crate::layouts::{select, LayoutRow};
use crate::memory::AddressSpace;
use crate::target::Arch;

/// Upper bound on page segments per context.
pub const MAX_SEGMENTS: usize = 0x1_0000;
/// Upper bound on large blocks per heap.
pub const MAX_LARGE_BLOCKS: usize = 0x10_0000;
/// Upper bound on LfhKey candidates kept while intersecting (per subsegment).
pub const MAX_LFH_KEY_CANDIDATES: usize = 1 << 22;

/// One back-end context of a segment heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegContextInfo {
    /// Address of the `_HEAP_SEG_CONTEXT`.
    pub address: u64,
    /// log2 of the unit size.
    pub unit_shift: u8,
    /// The first descriptor of a segment that describes a range.
    pub first_descriptor_index: u8,
    /// Bytes of a page segment (256 units).
    pub segment_size: u64,
    /// The page segments, in list order.
    pub segments: Vec<u64>,
    /// `SegmentCount`, when its offset is known.
    pub segment_count_field: Option<u64>,
    /// Reserved bytes: segments × segment size.
    pub reserved: u64,
    /// Committed bytes of the segments, from the dump's MemoryInfoList (`None` without one).
    pub committed: Option<u64>,
}

/// Totals of one kind of segment-heap allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindTotals {
    /// Busy blocks.
    pub count: u64,
    /// Σ user size of the busy blocks.
    pub user_bytes: u64,
    /// Free blocks (VS chunks, LFH blocks, free ranges).
    pub free_count: u64,
    /// Σ size of the free blocks.
    pub free_bytes: u64,
    /// Containers (VS or LFH subsegments).
    pub containers: u64,
}

impl KindTotals {
    /// Add `o`'s counts (bytes saturating).
    fn add(&mut self, o: &KindTotals) {
        self.count += o.count;
        self.user_bytes = self.user_bytes.saturating_add(o.user_bytes);
        self.free_count += o.free_count;
        self.free_bytes = self.free_bytes.saturating_add(o.free_bytes);
        self.containers += o.containers;
    }
}

/// What the walk found in one segment heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeapInfo {
    /// The layout row used.
    pub layout: Option<&'static str>,
    /// How it was chosen.
    pub chosen_by: Option<ChosenBy>,
    /// Why the heap was not walked, when it was not.
    pub not_walked: Option<String>,
    /// `RtlpHpHeapGlobals.HeapKey`.
    pub heap_key: Option<u64>,
    /// Where it came from.
    pub heap_key_source: KeySource,
    /// The low 32 bits of `RtlpHpHeapGlobals.LfhKey`, when the process has LFH subsegments.
    pub lfh_key: Option<u32>,
    /// Where it came from (`NotNeeded` without LFH subsegments).
    pub lfh_key_source: KeySource,
    /// How the LfhKey was chosen (tie-break, disagreement), or why it is missing.
    pub lfh_key_note: String,
    /// The two back-end contexts.
    pub contexts: Vec<SegContextInfo>,
    /// VS chunks.
    pub vs: KindTotals,
    /// LFH blocks.
    pub lfh: KindTotals,
    /// Page ranges handed to the caller (free ranges in the free columns).
    pub page_ranges: KindTotals,
    /// Large blocks.
    pub large: KindTotals,
    /// `LargeReservedPages` × 0x1000, when readable.
    pub large_reserved: Option<u64>,
    /// `LargeCommittedPages` × 0x1000, when readable.
    pub large_committed: Option<u64>,
    /// The rows of each page segment, in walk order: `(rows, segment)`.
    pub segment_rows: Vec<(std::ops::Range<usize>, u64)>,
}

fn at(base: u64, off: u64) -> u64 {
    base.wrapping_add(off)
}

/// One LFH subsegment as the key search needs it.
#[derive(Debug, Clone, Copy)]
struct LfhSeed {
    s: u64,
    range: u64,
    block_count: u16,
    encoded: u32,
}

/// A segment heap read far enough to know its layout, contexts, segments and HeapKey.
#[derive(Debug, Clone)]
pub(crate) struct SegPlan {
    row: &'static LayoutRow<SegmentHeapLayout>,
    chosen_by: ChosenBy,
    heap_key: u64,
    contexts: Vec<(SegContextInfo, u64)>, // (context, list head)
    list_problems: Vec<(u64, CorruptionKind, String)>,
    lfh_seeds: Vec<LfhSeed>,
}

/// Why a segment heap cannot be planned.
pub(crate) fn plan(
    mem: &AddressSpace,
    heap: u64,
    arch: Arch,
    build: u32,
    budget: &NodeBudget,
) -> Result<SegPlan, String> {
    if arch != Arch::X64 {
        return Err("not supported for x86: the x86 _SEGMENT_HEAP offsets are not known for any build (§10.1)".into());
    }
    let mut why = Vec::new();
    if let Ok(row) = select(SEGMENT_HEAP_LAYOUTS, "_SEGMENT_HEAP", arch, build) {
        match try_row(mem, heap, row, budget) {
            Ok(p) => return Ok(SegPlan { chosen_by: ChosenBy::Build, ..p }),
            Err(e) => why.push(format!("{}: {e}", row.name)),
        }
    } else {
        why.push(format!("no segment-heap layout row for build {build}"));
    }
    let mut ok: Vec<SegPlan> = Vec::new();
    for row in SEGMENT_HEAP_LAYOUTS.iter().filter(|r| !r.builds.contains(build)) {
        match try_row(mem, heap, row, budget) {
            Ok(p) => ok.push(p),
            Err(e) => why.push(format!("{}: {e}", row.name)),
        }
    }
    let candidates = ok.len();
    let dist = |r: &LayoutRow<SegmentHeapLayout>| {
        if build < r.builds.first {
            r.builds.first - build
        } else {
            build.saturating_sub(r.builds.last)
        }
    };
    ok.into_iter()
        .min_by_key(|p| dist(p.row))
        .map(|p| SegPlan { chosen_by: ChosenBy::Validation { candidates }, ..p })
        .ok_or_else(|| format!("no segment-heap layout validates: {}", why.join("; ")))
}

/// Geometry of context `i`: (unit shift, first descriptor index), from the context when its
/// offsets are known and the values are plausible, else the Win11 defaults (§10.2).
fn geometry(mem: &AddressSpace, l: &SegmentHeapLayout, ctx: u64, i: usize) -> (u8, u8) {
    let (d_shift, d_first) = DEFAULT_GEOMETRY[i];
    let shift =
        l.ctx.unit_shift.and_then(|o| mem.read_u8(at(ctx, u64::from(o))).ok()).filter(|s| (12..=20).contains(s));
    let first = l
        .ctx
        .first_descriptor_index
        .and_then(|o| mem.read_u8(at(ctx, u64::from(o))).ok())
        .filter(|f| (1..64).contains(f));
    (shift.unwrap_or(d_shift), first.unwrap_or(d_first))
}

/// The heap back-pointer check of context `ctx` (§12.9).
fn heap_pointer_ok(mem: &AddressSpace, l: &SegmentHeapLayout, ctx: u64, heap: u64) -> bool {
    match l.ctx.heap {
        Some(o) => mem.read_u64(at(ctx, u64::from(o))).ok() == Some(heap),
        // 1709/1803: the first qword of the context equal to the heap (derived).
        None => (0..u64::from(l.seg_context_stride)).step_by(8).any(|o| mem.read_u64(at(ctx, o)).ok() == Some(heap)),
    }
}

/// Whether `seg` may be a page segment of a context whose segments are `size` bytes: aligned, and
/// its list links captured.
fn is_segment(mem: &AddressSpace, seg: u64, size: u64) -> bool {
    seg != 0 && seg % size == 0 && mem.read_u64(at(seg, 8)).is_ok()
}

/// The list head of context `ctx` (§10.1; found by validation when the offset is unknown).
fn list_head(mem: &AddressSpace, l: &SegmentHeapLayout, ctx: u64, segment_size: u64) -> Option<u64> {
    if let Some(o) = l.ctx.segment_list_head {
        return Some(at(ctx, u64::from(o)));
    }
    let mut empty = None;
    for o in (0..u64::from(l.seg_context_stride).saturating_sub(8)).step_by(8) {
        let head = at(ctx, o);
        let (Ok(f), Ok(b)) = (mem.read_u64(head), mem.read_u64(at(head, 8))) else { continue };
        if f == head && b == head {
            empty.get_or_insert(head);
        } else if is_segment(mem, f, segment_size) && mem.read_u64(at(f, 8)).ok() == Some(head) {
            return Some(head);
        }
    }
    empty
}

/// Validate `row` against the heap (§12.9) and read what the walk needs.
fn try_row(
    mem: &AddressSpace,
    heap: u64,
    row: &'static LayoutRow<SegmentHeapLayout>,
    budget: &NodeBudget,
) -> Result<SegPlan, String> {
    let l = &row.layout;
    let mut contexts = Vec::new();
    let mut keys: Vec<(u64, u64, u64)> = Vec::new(); // (segment, ctx, signature)
    let mut list_problems = Vec::new();
    for i in 0..2 {
        let ctx = heap + u64::from(l.seg_contexts) + i as u64 * u64::from(l.seg_context_stride);
        if !heap_pointer_ok(mem, l, ctx, heap) {
            return Err(format!("SegContexts[{i}] at {ctx:#x} does not point back at the heap"));
        }
        let (shift, first) = geometry(mem, l, ctx, i);
        let unit = 1u64 << shift;
        let segment_size = unit * DESCRIPTORS_PER_SEGMENT;
        let head =
            list_head(mem, l, ctx, segment_size).ok_or(format!("SegContexts[{i}]: no segment list head found"))?;
        let w = walk_list(mem, Arch::X64, head, MAX_SEGMENTS, budget, &format!("SegContexts[{i}].SegmentListHead"));
        list_problems.extend(w.problems.into_iter().map(|p| (p.address, p.kind, p.detail)));
        let mut segments = Vec::new();
        for seg in w.nodes {
            if seg % segment_size != 0 {
                return Err(format!("SegContexts[{i}]: list node {seg:#x} is not {segment_size:#x}-aligned"));
            }
            let sig = mem.read_u64(at(seg, 0x10)).map_err(|_| format!("page segment {seg:#x} not captured"))?;
            keys.push((seg, ctx, sig));
            segments.push(seg);
        }
        let segment_count_field = l.ctx.segment_count.and_then(|o| mem.read_u64(at(ctx, u64::from(o))).ok());
        if let Some(n) = segment_count_field.filter(|&n| n != segments.len() as u64) {
            list_problems.push((
                ctx,
                CorruptionKind::Inconsistent,
                format!("SegContexts[{i}]: SegmentCount {n}, {} page segments on the list", segments.len()),
            ));
        }
        let reserved = segment_size.saturating_mul(segments.len() as u64);
        contexts.push((
            SegContextInfo {
                address: ctx,
                unit_shift: shift,
                first_descriptor_index: first,
                segment_size,
                segments,
                segment_count_field,
                reserved,
                committed: None,
            },
            head,
        ));
    }
    // S1: one HeapKey for every segment; try the row's C first, then the other one.
    let heap_key =
        [l.page_segment_c, if l.page_segment_c == 0 { PAGE_SEGMENT_C_PRE_24H2 } else { 0 }].into_iter().find_map(|c| {
            let mut k = keys.iter().map(|&(seg, ctx, sig)| sig ^ seg ^ ctx ^ c);
            let first = k.next()?;
            k.all(|x| x == first).then_some(first)
        });
    let heap_key = match (heap_key, keys.is_empty()) {
        (Some(k), _) => k,
        (None, true) => 0, // no segment: nothing to decode with the key
        (None, false) => return Err("the page segments' signatures give no single HeapKey (S1)".into()),
    };
    let mut plan =
        SegPlan { row, chosen_by: ChosenBy::Build, heap_key, contexts, list_problems, lfh_seeds: Vec::new() };
    plan.lfh_seeds = plan.collect_lfh_seeds(mem);
    Ok(plan)
}

/// A first range descriptor.
#[derive(Debug, Clone, Copy)]
struct Range {
    index: u64,
    units: u64,
    flags: u8,
    descriptor: u64,
}

impl SegPlan {
    /// The ranges of a segment, with the unparsed stretches between them.
    fn ranges(&self, mem: &AddressSpace, seg: u64, ctx: &SegContextInfo) -> Vec<Result<Range, (u64, u64, u64)>> {
        let mut out = Vec::new();
        let mut i = u64::from(ctx.first_descriptor_index);
        while i < DESCRIPTORS_PER_SEGMENT {
            let d = seg + i * DESCRIPTOR_SIZE;
            let flags = mem.read_u8(at(d, descriptor::RANGE_FLAGS)).unwrap_or(0);
            let units = u64::from(mem.read_u8(at(d, descriptor::UNIT_SIZE)).unwrap_or(0));
            if flags & range_flags::FIRST == 0 || units == 0 || i + units > DESCRIPTORS_PER_SEGMENT {
                // Resume at the next first descriptor (§12.7: never trust UnitSize of others).
                let next = (i + 1..DESCRIPTORS_PER_SEGMENT)
                    .find(|&j| {
                        mem.read_u8(at(seg + j * DESCRIPTOR_SIZE, descriptor::RANGE_FLAGS))
                            .is_ok_and(|f| f & range_flags::FIRST != 0)
                    })
                    .unwrap_or(DESCRIPTORS_PER_SEGMENT);
                out.push(Err((i, next, d)));
                i = next;
                continue;
            }
            out.push(Ok(Range { index: i, units, flags, descriptor: d }));
            i += units;
        }
        out
    }

    fn collect_lfh_seeds(&self, mem: &AddressSpace) -> Vec<LfhSeed> {
        let mut seeds = Vec::new();
        for (ctx, _) in &self.contexts {
            let unit = 1u64 << ctx.unit_shift;
            for &seg in &ctx.segments {
                for r in self.ranges(mem, seg, ctx).into_iter().flatten() {
                    if r.flags & range_flags::ALLOCATED != 0 && r.flags & range_flags::TYPE_MASK == range_flags::LFH {
                        let s = seg + r.index * unit;
                        if let (Ok(bc), Ok(e)) =
                            (mem.read_u16(at(s, seg_lfh::BLOCK_COUNT)), mem.read_u32(at(s, seg_lfh::BLOCK_OFFSETS)))
                        {
                            seeds.push(LfhSeed { s, range: r.units * unit, block_count: bc, encoded: e });
                        }
                    }
                }
            }
        }
        seeds
    }
}

fn shift(form: LfhShift, s: u64) -> u32 {
    match form {
        LfhShift::TruncateThenShift => (s as u32) >> 12,
        LfhShift::ShiftThenTruncate => (s >> 12) as u32,
    }
}

fn bitmap_end(l: &SegmentHeapLayout, block_count: u16) -> u64 {
    // Both formats use 8 bytes per 32 blocks (§10.6 step 7).
    u64::from(l.lfh_bitmap.1) + 8 * u64::from(block_count).div_ceil(32)
}

/// The LfhKey of the process from the LFH subsegments of all its segment heaps (§10.6 steps
/// 6–9; *derived*), and a note on how it was chosen.
pub(crate) fn recover_lfh_key(plans: &[&SegPlan]) -> (Option<u32>, String) {
    let mut seeds: Vec<(&SegmentHeapLayout, LfhSeed)> =
        plans.iter().flat_map(|p| p.lfh_seeds.iter().map(move |s| (&p.row.layout, *s))).collect();
    if seeds.is_empty() {
        return (None, "no LFH subsegment".into());
    }
    // Start from the subsegment with the fewest candidates.
    seeds.sort_by_key(|(_, s)| s.range / u64::from(s.block_count.max(1)));
    let candidates = |l: &SegmentHeapLayout, s: &LfhSeed| -> Vec<(u32, u16)> {
        let bc = u64::from(s.block_count);
        let mut v = Vec::new();
        if bc == 0 {
            return v;
        }
        let min_fbo = bitmap_end(l, s.block_count).div_ceil(16) * 16;
        let base = s.encoded ^ shift(l.lfh_shift, s.s);
        let mut bs = 16u64;
        while bs <= 0x4000 && min_fbo + bs * bc <= s.range {
            let mut fbo = min_fbo;
            while fbo + bs * bc <= s.range && fbo <= 0xFFFF {
                v.push((base ^ ((fbo as u32) << 16 | bs as u32), fbo as u16));
                if v.len() >= MAX_LFH_KEY_CANDIDATES {
                    return v;
                }
                fbo += 16;
            }
            bs += 16;
        }
        v
    };
    // Each candidate of the subsegment with the fewest is decoded against the others; only the
    // count of keys that fit them all and the best one (least Σ FBO, then least key) are kept.
    // A crafted subsegment (one block in a range of gigabytes, fuzz input
    // `tests/fixtures/fuzz/dump_all/segheap-key-candidates.dmp`) lists MAX_LFH_KEY_CANDIDATES
    // keys; a map of them per subsegment, as this intersection first kept, needed 200 MiB at once
    // from a 70 KiB dump.
    let (l0, s0) = &seeds[0];
    let mut fitting = 0usize;
    let mut best: Option<(u64, u32)> = None;
    'key: for (k, f0) in candidates(l0, s0) {
        let mut sum = u64::from(f0);
        for (l, s) in &seeds[1..] {
            match fbo_if_fits(l, s, k) {
                Some(f) => sum += f,
                None => continue 'key,
            }
        }
        fitting += 1;
        if best.is_none_or(|b| (sum, k) < b) {
            best = Some((sum, k));
        }
    }
    match (fitting, best) {
        (1, Some((_, k))) => (Some(k), format!("the only key that fits all {} LFH subsegments", seeds.len())),
        (n, Some((_, k))) => (
            Some(k),
            format!(
                "{n} keys fit all {} LFH subsegments; taken: the one that puts every first block nearest its \
                 bitmap (derived tie-break)",
                seeds.len()
            ),
        ),
        _ => (None, format!("no key fits all {} LFH subsegments (§10.6 steps 6–8)", seeds.len())),
    }
}

/// The first block offset that `key` decodes subsegment `s` to, if that layout is one of the
/// candidates `recover_lfh_key` lists for `s` (block size 16..=0x4000 in steps of 16, first block
/// 16-aligned after the bitmap, every block inside the range).
fn fbo_if_fits(l: &SegmentHeapLayout, s: &LfhSeed, key: u32) -> Option<u64> {
    let d = s.encoded ^ key ^ shift(l.lfh_shift, s.s);
    let (bs, fbo) = (u64::from(d & 0xFFFF), u64::from(d >> 16));
    let bc = u64::from(s.block_count);
    let min_fbo = bitmap_end(l, s.block_count).div_ceil(16) * 16;
    let fits = bc > 0
        && (16..=0x4000).contains(&bs)
        && bs % 16 == 0
        && fbo >= min_fbo
        && fbo % 16 == 0
        && fbo + bs * bc <= s.range;
    fits.then_some(fbo)
}

/// Whether `key` decodes every LFH subsegment of `plans` into a layout that fits (L1, L2).
fn lfh_key_fits(plans: &[&SegPlan], key: u32) -> bool {
    plans.iter().all(|p| {
        let l = &p.row.layout;
        p.lfh_seeds.iter().all(|s| {
            let d = s.encoded ^ key ^ shift(l.lfh_shift, s.s);
            let (bs, fbo) = (u64::from(d & 0xFFFF), u64::from(d >> 16));
            bs >= 16
                && bs % 16 == 0
                && fbo >= bitmap_end(l, s.block_count)
                && fbo + bs * u64::from(s.block_count) <= s.range
        })
    })
}

/// The segment-heap keys of one process half: `LfhKey` recovered from all its LFH subsegments
/// and checked against the symbol's value when there is one; `HeapKey`s must agree across heaps.
pub(crate) fn resolve_keys(
    plans: &[&SegPlan],
    symbol_heap_key: Option<u64>,
    symbol_lfh_key: Option<u32>,
) -> (SegmentKeys, Vec<super::corruption::Corruption>) {
    use super::corruption::Corruption;
    let mut problems = Vec::new();
    let mut heap_keys: Vec<u64> =
        plans.iter().filter(|p| p.contexts.iter().any(|c| !c.0.segments.is_empty())).map(|p| p.heap_key).collect();
    heap_keys.sort_unstable();
    heap_keys.dedup();
    if heap_keys.len() > 1 {
        problems.push(Corruption::new(
            0,
            0,
            CorruptionKind::Inconsistent,
            format!("the segment heaps of one process give different HeapKeys: {heap_keys:#x?}"),
        ));
    }
    let seeds: usize = plans.iter().map(|p| p.lfh_seeds.len()).sum();
    let (recovered, note) = if seeds > 0 { recover_lfh_key(plans) } else { (None, "no LFH subsegment".into()) };
    let symbol_fits = symbol_lfh_key.filter(|&k| seeds == 0 || lfh_key_fits(plans, k));
    let (lfh_key, source) = match (symbol_lfh_key, symbol_fits, recovered) {
        (Some(s), Some(_), Some(r)) if s == r => (Some(s), KeySource::SymbolAndRecovered),
        (Some(s), Some(_), _) => (Some(s), KeySource::Symbol),
        (Some(s), None, r) => {
            problems.push(Corruption::new(
                0,
                0,
                CorruptionKind::Inconsistent,
                format!(
                    "RtlpHpHeapGlobals.LfhKey: the symbol gives {s:#010x}, which does not fit the LFH subsegments; using {}",
                    r.map_or("none".to_string(), |r| format!("{r:#010x}"))
                ),
            ));
            (r, if r.is_some() { KeySource::Recovered } else { KeySource::None })
        }
        (None, _, Some(r)) => (Some(r), KeySource::Recovered),
        (None, _, None) => (None, KeySource::None),
    };
    (SegmentKeys { symbol_heap_key, lfh_key, lfh_key_source: source, lfh_key_note: note }, problems)
}

/// Walks one planned segment heap into rows.
pub(crate) struct SegWalk<'a> {
    mem: &'a AddressSpace,
    heap: u64,
    plan: &'a SegPlan,
    lfh_key: Option<u32>,
    page_aligned_variant: bool,
    info: SegmentHeapInfo,
}

/// The keys of the segment heaps of one process, as resolved before the walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentKeys {
    /// `HeapKey` read through the symbol, if a matching PDB gave one.
    pub symbol_heap_key: Option<u64>,
    /// `LfhKey` used, if any.
    pub lfh_key: Option<u32>,
    /// Where it came from.
    pub lfh_key_source: KeySource,
    /// How it was chosen, or why it is missing.
    pub lfh_key_note: String,
}

/// What the walk of one page segment learnt besides its rows.
#[derive(Default)]
struct SegmentEnd {
    /// VS, LFH and page-range totals of the segment.
    totals: [KindTotals; 3],
    /// The segment's rows, relative to its chunk.
    segment_rows: Vec<(std::ops::Range<usize>, u64)>,
}

/// Walk the segment heap `heap` with its plan into `sink`. Its page segments are walked on every
/// thread of the rayon pool when there is more than one and they hold at least two pieces'
/// worth (`piece_bytes`) of memory, each into its own buffer, appended in order: the rows are
/// those of a walk segment by segment.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk(
    mem: &AddressSpace,
    heap: u64,
    plan: &SegPlan,
    keys: &SegmentKeys,
    regions: Option<&[crate::dump::Region]>,
    budget: &NodeBudget,
    piece_bytes: u64,
    sink: &mut RowSink<'_>,
    rec: &mut Recorder<'_>,
) -> SegmentHeapInfo {
    let l = &plan.row.layout;
    for (a, k, d) in &plan.list_problems {
        rec.record(*a, *k, d.clone());
    }
    let vs_context = heap + u64::from(l.vs_context);
    let page_aligned_variant = l.vs_page_align_flag.is_some_and(|(o, w)| {
        let a = at(vs_context, u64::from(o));
        match w {
            1 => mem.read_u8(a).is_ok_and(|v| v & 1 != 0),
            _ => mem.read_u32(a).is_ok_and(|v| v & 1 != 0),
        }
    });
    let heap_key_source = match keys.symbol_heap_key {
        Some(k) if k == plan.heap_key => KeySource::SymbolAndRecovered,
        Some(k) => {
            rec.record(
                heap,
                CorruptionKind::Inconsistent,
                format!(
                    "RtlpHpHeapGlobals.HeapKey: the symbol gives {k:#018x}, the page segments {:#018x}; using the latter",
                    plan.heap_key
                ),
            );
            KeySource::Recovered
        }
        None => KeySource::Recovered,
    };
    let mut w = SegWalk {
        mem,
        heap,
        plan,
        lfh_key: keys.lfh_key,
        page_aligned_variant,
        info: SegmentHeapInfo {
            layout: Some(plan.row.name),
            chosen_by: Some(plan.chosen_by),
            not_walked: None,
            heap_key: Some(plan.heap_key),
            heap_key_source,
            lfh_key: keys.lfh_key,
            lfh_key_source: if plan.lfh_seeds.is_empty() { KeySource::NotNeeded } else { keys.lfh_key_source },
            lfh_key_note: keys.lfh_key_note.clone(),
            contexts: Vec::new(),
            vs: KindTotals::default(),
            lfh: KindTotals::default(),
            page_ranges: KindTotals::default(),
            large: KindTotals::default(),
            large_reserved: None,
            large_committed: None,
            segment_rows: Vec::new(),
        },
    };
    let jobs: Vec<(&SegContextInfo, u64)> =
        plan.contexts.iter().flat_map(|(ctx, _)| ctx.segments.iter().map(move |&s| (ctx, s))).collect();
    let bytes: u64 = jobs.iter().map(|(c, _)| c.segment_size).fold(0, u64::saturating_add);
    if jobs.len() > 1 && bytes >= piece_bytes.saturating_mul(2) && rayon::current_num_threads() > 1 {
        let blank = w.info.clone();
        let work = |k: usize, c: &mut Chunk<SegmentEnd>| {
            let (ctx, seg) = jobs[k];
            let mut cw = SegWalk { mem, heap, plan, lfh_key: w.lfh_key, page_aligned_variant, info: blank.clone() };
            c.fill(heap, |csink, crec| cw.segment(seg, ctx, csink, crec));
            c.extra = SegmentEnd {
                totals: [cw.info.vs, cw.info.lfh, cw.info.page_ranges],
                segment_rows: cw.info.segment_rows,
            };
        };
        let info = &mut w.info;
        let commit = |_: usize, c: &mut Chunk<SegmentEnd>| {
            let offset = c.append_to(sink, rec);
            let [vs, lfh, pages] = c.extra.totals;
            info.vs.add(&vs);
            info.lfh.add(&lfh);
            info.page_ranges.add(&pages);
            info.segment_rows
                .extend(c.extra.segment_rows.drain(..).map(|(r, s)| (r.start + offset..r.end + offset, s)));
        };
        super::ordered::run_ordered(jobs.len(), work, commit, || false);
    } else {
        for &(ctx, seg) in &jobs {
            w.segment(seg, ctx, sink, rec);
        }
    }
    for (ctx, _) in &plan.contexts {
        let mut c = ctx.clone();
        c.committed = regions.map(|r| committed_in(r, &c.segments, c.segment_size));
        w.info.contexts.push(c);
    }
    w.large_blocks(budget, sink, rec);
    let large_root = heap + u64::from(l.large_alloc_metadata);
    w.info.large_reserved = mem.read_u64(large_root + 0x10).ok().map(|p| p.saturating_mul(0x1000));
    w.info.large_committed = mem.read_u64(large_root + 0x18).ok().map(|p| p.saturating_mul(0x1000));
    w.info
}

/// Committed bytes of `segments` (each `size` bytes) per the MemoryInfoList.
fn committed_in(regions: &[crate::dump::Region], segments: &[u64], size: u64) -> u64 {
    const MEM_COMMIT: u32 = 0x1000;
    let mut total = 0u64;
    for &s in segments {
        let e = s.saturating_add(size);
        let i = regions.partition_point(|r| r.base.saturating_add(r.size) <= s);
        for r in regions[i..].iter().take_while(|r| r.base < e) {
            if r.state == MEM_COMMIT {
                let (a, b) = (r.base.max(s), r.base.saturating_add(r.size).min(e));
                total = total.saturating_add(b.saturating_sub(a));
            }
        }
    }
    total
}

impl SegWalk<'_> {
    fn row(&self, kind: BlockKind, busy: bool, segment: u64, address: u64, size: u64) -> BlockRow {
        let _ = segment;
        let mut r = BlockRow::top(kind, busy);
        r.address = address;
        r.size = size;
        r
    }

    fn segment(&mut self, seg: u64, ctx: &SegContextInfo, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) {
        let unit = 1u64 << ctx.unit_shift;
        let header = u64::from(ctx.first_descriptor_index) * unit;
        let first_row = sink.push(self.row(BlockKind::SegmentHeader, true, seg, seg, header));
        for r in self.plan.ranges(self.mem, seg, ctx) {
            match r {
                Err((from, to, d)) => {
                    let kind = if self.mem.read_u8(at(d, descriptor::UNIT_SIZE)).ok() == Some(0) {
                        CorruptionKind::ZeroSize
                    } else {
                        CorruptionKind::BadSignature
                    };
                    rec.record(
                        d,
                        kind,
                        format!(
                            "page segment {seg:#x}: range descriptor {from} is not a usable first descriptor; \
                             units {from}..{to} unparsed"
                        ),
                    );
                    let mut row = self.row(BlockKind::Unparsed, false, seg, seg + from * unit, (to - from) * unit);
                    row.corruption = kind.code();
                    sink.push(row);
                }
                Ok(r) => self.range(seg, unit, r, sink, rec),
            }
        }
        self.info.segment_rows.push((first_row..sink.next_index(), seg));
    }

    fn range(&mut self, seg: u64, unit: u64, r: Range, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) {
        let start = seg + r.index * unit;
        let size = r.units * unit;
        if r.flags & range_flags::ALLOCATED == 0 {
            let row = self.row(BlockKind::FreeRange, false, seg, start, size);
            self.info.page_ranges.free_count += 1;
            self.info.page_ranges.free_bytes = self.info.page_ranges.free_bytes.saturating_add(size);
            sink.push(row);
            return;
        }
        match r.flags & range_flags::TYPE_MASK {
            range_flags::LFH | range_flags::VS => {
                let vs_kind = r.flags & range_flags::TYPE_MASK == range_flags::VS;
                let kind = if vs_kind { BlockKind::VsSubsegment } else { BlockKind::SegLfhSubsegment };
                let row = self.row(kind, true, seg, start, size);
                let index = sink.push(row);
                let at_ = Placed { index, row, extent: (start, start + size) };
                let why = if vs_kind {
                    self.info.vs.containers += 1;
                    self.vs_children(&at_, sink, rec)
                } else {
                    self.info.lfh.containers += 1;
                    self.lfh_children(&at_, sink, rec)
                };
                if let Some(why) = why {
                    sink.update(index, |r| r.not_decoded = why.code());
                }
            }
            _ => {
                let mut row = self.row(BlockKind::PageRange, true, seg, start, size);
                row.user_address = start;
                match self.mem.read_u32(at(r.descriptor, descriptor::UNUSED_BYTES)).map(u64::from) {
                    Ok(u) if u <= size => {
                        row.user_size = size - u;
                        row.unused_bytes = u as u32;
                    }
                    other => {
                        rec.record(
                            r.descriptor,
                            CorruptionKind::BadUnusedBytes,
                            format!("page range {start:#x}: UnusedBytes {other:?} for {size:#x} bytes"),
                        );
                        row.corruption = CorruptionKind::BadUnusedBytes.code();
                    }
                }
                self.info.page_ranges.count += 1;
                self.info.page_ranges.user_bytes = self.info.page_ranges.user_bytes.saturating_add(row.user_size);
                sink.push(row);
            }
        }
    }

    /// The chunks of a VS subsegment (§10.3).
    fn vs_children(&mut self, at_: &Placed, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) -> Option<NotDecoded> {
        let mem = self.mem;
        let l = &self.plan.row.layout;
        let (s, end) = at_.extent;
        let (Ok(size), Ok(sig)) = (mem.read_u16(at(s, vs::SIZE)), mem.read_u16(at(s, u64::from(l.vs_signature))))
        else {
            rec.record(s, CorruptionKind::NotCaptured, format!("VS subsegment {s:#x} header not captured"));
            return Some(NotDecoded::NotCaptured);
        };
        let sub_end = s + vs::FIRST_CHUNK + u64::from(size) * vs::GRANULE;
        if sig & 0x7FFF != (size ^ VS_SIGNATURE_XOR) & 0x7FFF || sub_end > end {
            rec.record(
                s,
                CorruptionKind::BadSignature,
                format!(
                    "VS subsegment {s:#x}: Size {size:#x}, Signature {sig:#x} (§10.3 rule fails or runs past {end:#x})"
                ),
            );
            return Some(NotDecoded::Corrupt);
        }
        sink.push(at_.child(BlockKind::Overhead, s, vs::FIRST_CHUNK));
        let key = self.plan.heap_key;
        let mut p = s + vs::FIRST_CHUNK;
        while p < sub_end {
            let Ok(hdr) = mem.read_array::<16>(p) else {
                rec.record(p, CorruptionKind::NotCaptured, format!("VS chunk header at {p:#x} not captured"));
                let mut u = at_.child(BlockKind::Unparsed, p, sub_end - p);
                u.corruption = CorruptionKind::NotCaptured.code();
                sink.push(u);
                p = sub_end;
                break;
            };
            let sizes = u64::from_le_bytes(hdr[..8].try_into().expect("8 bytes")) ^ p ^ key;
            let chunk = ((sizes >> 16) & 0xFFFF) * vs::GRANULE;
            let allocated = (sizes >> 48) & 0xFF != 0;
            if chunk == 0 || chunk > sub_end - p {
                rec.record(
                    p,
                    CorruptionKind::BadChecksum,
                    format!("VS chunk header at {p:#x} decodes to {chunk:#x} bytes (subsegment ends at {sub_end:#x})"),
                );
                let mut u = at_.child(BlockKind::Unparsed, p, sub_end - p);
                u.corruption = CorruptionKind::BadChecksum.code();
                sink.push(u);
                p = sub_end;
                break;
            }
            let mut r = at_.child(BlockKind::VsBlock, p, chunk);
            r.busy = allocated;
            r.is_allocation = BlockKind::VsBlock.is_allocation(allocated);
            if allocated {
                let header = if self.page_aligned_variant && (p + vs::CHUNK_HEADER_PAGE_ALIGNED) % 0x1000 == 0 {
                    vs::CHUNK_HEADER_PAGE_ALIGNED
                } else {
                    vs::CHUNK_HEADER
                };
                let area = chunk.saturating_sub(header);
                let flags = u32::from_le_bytes(hdr[8..12].try_into().expect("4 bytes"));
                let unused =
                    if flags & vs::UNUSED_BYTES_BIT != 0 { self.trailer(p + chunk, vs::TRAILER_MASK) } else { Some(0) };
                r.user_address = p + header;
                match unused {
                    Some(u) if u <= area => r.user_size = area - u,
                    _ => {
                        rec.record(
                            p,
                            CorruptionKind::BadUnusedBytes,
                            format!("VS chunk {p:#x}: trailer unreadable or too large"),
                        );
                        r.corruption = CorruptionKind::BadUnusedBytes.code();
                    }
                }
                r.unused_bytes = u32::try_from(chunk - r.user_size).unwrap_or(u32::MAX);
                self.info.vs.count += 1;
                self.info.vs.user_bytes = self.info.vs.user_bytes.saturating_add(r.user_size);
            } else {
                self.info.vs.free_count += 1;
                self.info.vs.free_bytes = self.info.vs.free_bytes.saturating_add(chunk);
            }
            sink.push(r);
            p += chunk;
        }
        if end > p {
            sink.push(at_.child(BlockKind::Overhead, p, end - p));
        }
        None
    }

    /// The unused count of a block ending at `end` from its u16 trailer (§10.3, §10.4): `None`
    /// when not captured; UST extra data (bit 14) counts as no unused bytes (its layout is
    /// **UNCONFIRMED**, §11.3).
    fn trailer(&self, end: u64, mask: u16) -> Option<u64> {
        let t = self.mem.read_u16(end.checked_sub(2)?).ok()?;
        Some(if t & trailer::ONE_BYTE != 0 {
            1
        } else if t & trailer::EXTRA != 0 {
            0
        } else {
            u64::from(t & mask)
        })
    }

    /// The blocks of an LFH subsegment (§10.4).
    fn lfh_children(&mut self, at_: &Placed, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) -> Option<NotDecoded> {
        let mem = self.mem;
        let l = &self.plan.row.layout;
        let (s, end) = at_.extent;
        let Some(key) = self.lfh_key else { return Some(NotDecoded::NoKey) };
        let (Ok(bc), Ok(e)) = (mem.read_u16(at(s, seg_lfh::BLOCK_COUNT)), mem.read_u32(at(s, seg_lfh::BLOCK_OFFSETS)))
        else {
            rec.record(s, CorruptionKind::NotCaptured, format!("LFH subsegment {s:#x} header not captured"));
            return Some(NotDecoded::NotCaptured);
        };
        let d = e ^ key ^ shift(l.lfh_shift, s);
        let (bs, fbo) = (u64::from(d & 0xFFFF), u64::from(d >> 16));
        let n = u64::from(bc);
        if bs < 16 || fbo < bitmap_end(l, bc) || fbo + bs * n > end - s {
            rec.record(
                s,
                CorruptionKind::BadLfhContainer,
                format!("LFH subsegment {s:#x}: BlockOffsets decode to BlockSize {bs:#x}, FirstBlockOffset {fbo:#x} for {n} blocks in {:#x} bytes", end - s),
            );
            return Some(NotDecoded::Corrupt);
        }
        let (format, off) = l.lfh_bitmap;
        let bits = match format {
            LfhBitmap::TwoBits => mem.read(at(s, u64::from(off)), (2 * n).div_ceil(8)).ok().map(|b| {
                (0..n as usize)
                    .map(|i| (b[i / 4] >> (2 * (i % 4)) & 1 == 1, b[i / 4] >> (2 * (i % 4) + 1) & 1 == 1))
                    .collect::<Vec<_>>()
            }),
            LfhBitmap::Words => mem.read(at(s, u64::from(off)), 8 * n.div_ceil(32)).ok().map(|b| {
                (0..n as usize)
                    .map(|i| {
                        let w = u64::from_le_bytes(b[8 * (i / 32)..][..8].try_into().expect("8 bytes"));
                        (w >> (i % 32) & 1 == 1, w >> (32 + i % 32) & 1 == 1)
                    })
                    .collect::<Vec<_>>()
            }),
        };
        let Some(bits) = bits else {
            rec.record(s, CorruptionKind::NotCaptured, format!("LFH subsegment {s:#x} bitmap not captured"));
            return Some(NotDecoded::NotCaptured);
        };
        sink.push(at_.child(BlockKind::Overhead, s, fbo));
        for (i, &(busy, has_trailer)) in bits.iter().enumerate() {
            let blk = s + fbo + i as u64 * bs;
            let mut r = at_.child(BlockKind::SegLfhBlock, blk, bs);
            r.busy = busy;
            r.is_allocation = BlockKind::SegLfhBlock.is_allocation(busy);
            if busy {
                let unused = if has_trailer { self.trailer(blk + bs, l.lfh_trailer_mask) } else { Some(0) };
                r.user_address = blk;
                match unused {
                    Some(u) if u < bs => r.user_size = bs - u,
                    _ => {
                        rec.record(
                            blk,
                            CorruptionKind::BadUnusedBytes,
                            format!("LFH block {blk:#x}: trailer unreadable or too large"),
                        );
                        r.corruption = CorruptionKind::BadUnusedBytes.code();
                    }
                }
                r.unused_bytes = u32::try_from(bs - r.user_size).unwrap_or(u32::MAX);
                self.info.lfh.count += 1;
                self.info.lfh.user_bytes = self.info.lfh.user_bytes.saturating_add(r.user_size);
            } else {
                self.info.lfh.free_count += 1;
                self.info.lfh.free_bytes = self.info.lfh.free_bytes.saturating_add(bs);
            }
            sink.push(r);
        }
        let blocks_end = s + fbo + n * bs;
        if end > blocks_end {
            sink.push(at_.child(BlockKind::Overhead, blocks_end, end - blocks_end));
        }
        None
    }

    /// The large blocks (§10.5): an in-order walk of the (possibly encoded) red-black tree.
    fn large_blocks(&mut self, budget: &NodeBudget, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) {
        let mem = self.mem;
        let l = &self.plan.row.layout;
        let root_at = self.heap + u64::from(l.large_alloc_metadata);
        let encoded = mem.read_u64(self.heap + u64::from(l.large_tree_encoded)).is_ok_and(|v| v & 1 != 0);
        let decode = |stored: u64, from: u64| if encoded && stored != 0 { stored ^ from } else { stored };
        let Ok(stored_root) = mem.read_u64(root_at) else {
            rec.record(root_at, CorruptionKind::NotCaptured, "LargeAllocMetadata not captured");
            return;
        };
        let mut seen: HashSet<u64> = HashSet::new();
        let mut rows = Vec::new();
        let mut stack = vec![decode(stored_root, root_at)];
        while let Some(n) = stack.pop() {
            if n == 0 {
                continue;
            }
            if !seen.insert(n) {
                rec.record(n, CorruptionKind::ListLoop, format!("LargeAllocMetadata: node {n:#x} is reached twice"));
                continue;
            }
            if seen.len() > MAX_LARGE_BLOCKS || !budget.take() {
                rec.record(n, CorruptionKind::ListTooLong, "LargeAllocMetadata: too many nodes");
                break;
            }
            let fields = (|| {
                Some((
                    mem.read_u64(at(n, large::LEFT)).ok()?,
                    mem.read_u64(at(n, large::RIGHT)).ok()?,
                    mem.read_u64(at(n, large::VIRTUAL_ADDRESS)).ok()?,
                    mem.read_u64(at(n, large::BITFIELD)).ok()?,
                ))
            })();
            let Some((left, right, va, bits)) = fields else {
                rec.record(n, CorruptionKind::NotCaptured, format!("_HEAP_LARGE_ALLOC_DATA {n:#x} not captured"));
                continue;
            };
            stack.push(decode(right, n));
            stack.push(decode(left, n));
            let address = va & !0xFFFF;
            let unused = va & 0xFFFF;
            let size = (bits >> 12).saturating_mul(0x1000);
            let mut r = self.row(BlockKind::LargeBlock, true, 0, address, size);
            r.user_address = address;
            if unused <= size {
                r.user_size = size - unused;
            } else {
                rec.record(
                    n,
                    CorruptionKind::BadUnusedBytes,
                    format!("large block {address:#x}: {unused:#x} unused of {size:#x}"),
                );
                r.corruption = CorruptionKind::BadUnusedBytes.code();
            }
            r.unused_bytes = u32::try_from(unused).unwrap_or(u32::MAX);
            self.info.large.count += 1;
            self.info.large.user_bytes = self.info.large.user_bytes.saturating_add(r.user_size);
            rows.push(r);
        }
        rows.sort_by_key(|r| r.address);
        for r in rows {
            sink.push(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_forms_differ_above_bit_31() {
        let s = 0x1f0_d4b0_8000u64;
        assert_eq!(shift(LfhShift::TruncateThenShift, s), (s as u32) >> 12);
        assert_eq!(shift(LfhShift::ShiftThenTruncate, s), (s >> 12) as u32);
        assert_ne!(shift(LfhShift::TruncateThenShift, s), shift(LfhShift::ShiftThenTruncate, s));
        // They agree in bits 0–19 (§10.4).
        assert_eq!(shift(LfhShift::TruncateThenShift, s) & 0xF_FFFF, shift(LfhShift::ShiftThenTruncate, s) & 0xF_FFFF);
    }
}
