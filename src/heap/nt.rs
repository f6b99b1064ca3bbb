//! One NT heap: its `_HEAP` header, its front end (the LFH, [`super::lfh`]), its segments and
//! their blocks ([`super::segment`]), and its virtual blocks ([`super::virtual_alloc`]).
//!
//! Order of work: the header (flags, encoding key, counters, `FrontEndHeap`), then the LFH plan
//! (zones, subsegments, where each container's blocks are), then the segments in order, then the
//! virtual blocks. Structures the heap manager keeps inside its own busy blocks (UCR descriptors,
//! the UCR index, LFH zones, the `_LFH_HEAP`, UserBlocks) are known by address before the segment
//! walk meets the blocks holding them, so each such block gets its kind on the spot and a
//! container's children follow it directly.

use super::columns::BlockKind;
use super::corruption::{CorruptionKind, Recorder};
use super::entry::EntryDecoder;
use super::lfh::{self, KeyCandidate, LfhCtx, LfhPlan, ProcessKey, Special};
use super::rows::{Chunk, Placed, RowSink};
use super::segment::{self, EntryWalker, SegmentInfo};
use super::summary;
use super::virtual_alloc;
use super::{discover, HeapCounters, HeapCtx, HeapInfo, HeapRef, WalkDepth, WalkState};
use crate::layouts::nt_heap::{HeapLayout, HEAP_ENCODE_FLAG_MAKE_ENCODING_ENABLED};
use crate::memory::AddressSpace;

/// Bytes of a committed range per piece of a parallel walk (a few MiB: enough work per piece to
/// hide the bookkeeping, small enough that a piece's rows stay in the caches until committed and
/// that the threads stay balanced).
pub(crate) const PIECE_BYTES: u64 = 4 << 20;

/// How far past a piece's nominal end the walk looks for a block start to cut at.
const BOUNDARY_SEARCH: u64 = 64 << 10;

/// A piece of committed range `job`: `[start, end)`, cut at (candidate) block starts.
#[derive(Debug, Clone, Copy)]
struct Piece {
    job: usize,
    start: u64,
    end: u64,
}

/// What the walk of one piece learnt besides its rows: LFH statistics, free blocks, how it ended.
#[derive(Default)]
struct PieceEnd {
    lfh_updates: Vec<super::lfh::SubsegmentUpdate>,
    free: (u64, u64),
    end: Option<segment::RangeEnd>,
}

/// `FrontEndHeapType` of the LFH (§4.1).
const FRONT_END_LFH: u8 = 2;

/// The LFH of heap `r`, if it has one: `(FrontEndHeap, layout)`.
fn front_end(mem: &AddressSpace, r: &HeapRef, l: &HeapLayout) -> Option<u64> {
    let at = |o: u16| r.address.wrapping_add(u64::from(o));
    let fe_type = mem.read_u8(at(l.heap.front_end_heap_type)).ok()?;
    let fe = mem.read_ptr(r.arch, at(l.heap.front_end_heap)).ok()?;
    (fe_type == FRONT_END_LFH && fe != 0).then_some(fe)
}

/// The LFH key candidates of one heap (pass one of the walk, §9.9), without records.
pub(crate) fn lfh_key_candidates(mem: &AddressSpace, r: &HeapRef, build: u32, state: &WalkState) -> Vec<KeyCandidate> {
    let Some((super::HeapKind::Nt, _)) = discover::classify(mem, r.address, r.arch) else { return Vec::new() };
    let Ok(choice) = discover::choose_layout(mem, r.address, r.arch, build) else { return Vec::new() };
    let Some(fe) = front_end(mem, r, &choice.row.layout) else { return Vec::new() };
    let c = LfhCtx { mem, arch: r.arch, heap: r.address, front_end_heap: fe, ust: r.ust, budget: &state.budget };
    lfh::key_candidates(&c, build)
}

/// Walk the NT heap `r` with layout `l` into `sink`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn walk_nt(
    mem: &AddressSpace,
    r: &HeapRef,
    l: &'static HeapLayout,
    build: u32,
    key: &ProcessKey,
    info: &mut HeapInfo,
    sink: &mut RowSink<'_>,
    rec: &mut Recorder<'_>,
    state: &mut WalkState,
    depth: WalkDepth,
) {
    let WalkState { guard, budget, cancel, piece_bytes } = state;
    let piece_bytes = *piece_bytes;
    let a = r.arch;
    let at = |o: u16| r.address.wrapping_add(u64::from(o));
    let h = &l.heap;
    info.signature_ok = true; // checked by the layout validation
    info.flags = mem.read_u32(at(h.flags)).unwrap_or(0);
    info.force_flags = mem.read_u32(at(h.force_flags)).unwrap_or(0);
    info.front_end_heap = mem.read_ptr(a, at(h.front_end_heap)).unwrap_or(0);
    info.front_end_type = mem.read_u8(at(h.front_end_heap_type)).ok();
    info.total_free_size = mem.read_ptr(a, at(h.total_free_size)).ok().map(|g| g.saturating_mul(l.entry.granularity));
    info.counters = h.counters.and_then(|c| {
        let c0 = at(c);
        let f = |o: u16| c0.wrapping_add(u64::from(o));
        let k = &l.counters;
        Some(HeapCounters {
            total_memory_reserved: mem.read_ptr(a, f(k.total_memory_reserved)).ok()?,
            total_memory_committed: mem.read_ptr(a, f(k.total_memory_committed)).ok()?,
            total_memory_large_ucr: mem.read_ptr(a, f(k.total_memory_large_ucr)).ok()?,
            total_size_in_virtual_blocks: mem.read_ptr(a, f(k.total_size_in_virtual_blocks)).ok()?,
            total_segments: mem.read_u32(f(k.total_segments)).ok()?,
            total_ucrs: mem.read_u32(f(k.total_ucrs)).ok()?,
        })
    });
    let mask = mem.read_u32(at(h.encode_flag_mask)).unwrap_or(0);
    info.encoding_enabled = mask & HEAP_ENCODE_FLAG_MAKE_ENCODING_ENABLED != 0;
    let key_bytes = if info.encoding_enabled {
        match mem.read_array::<8>(at(h.encoding_key)) {
            Ok(k) => Some(k),
            Err(_) => {
                rec.record(
                    at(h.encoding_key),
                    CorruptionKind::NotCaptured,
                    "_HEAP.Encoding not captured; entries not walked",
                );
                return;
            }
        }
    } else {
        None
    };
    let ctx = HeapCtx {
        mem,
        heap: r.address,
        arch: a,
        layout: l,
        decoder: EntryDecoder::new(&l.entry, key_bytes),
        ust: r.ust,
        budget,
        dph_normal: r.page_heap_owner.is_some(),
    };
    info.lock_contention = summary::lock_contention(&ctx);

    let lfh_plan: Option<LfhPlan> = front_end(mem, r, l).filter(|_| depth == WalkDepth::Blocks).map(|fe| {
        let c = LfhCtx { mem, arch: a, heap: r.address, front_end_heap: fe, ust: r.ust, budget };
        lfh::plan(&c, build, key, rec)
    });

    let addresses = segment::segment_addresses(&ctx, rec);
    let mut segments: Vec<SegmentInfo> =
        addresses.into_iter().filter_map(|s| segment::read_segment(&ctx, s, rec)).collect();
    // Structures inside the heap's own busy blocks: UCR descriptors and the UCR index (internal),
    // and the LFH's zones, `_LFH_HEAP` and UserBlocks.
    let mut specials: Vec<(u64, Special)> =
        segments.iter().flat_map(|s| s.ucrs.iter().map(|u| (u.descriptor, Special::Internal))).collect();
    if let Ok(p) = mem.read_ptr(a, at(h.ucr_index)) {
        if p != 0 {
            specials.push((p, Special::Internal));
        }
    }
    if let Some(p) = &lfh_plan {
        specials.extend(p.specials());
    }
    specials.sort_unstable_by_key(|s| s.0);
    specials.dedup();
    // Which committed ranges to walk (sequential: records, the overlap guard), then the walk
    // itself: range by range into `sink`, or in parallel into one chunk per range, appended in
    // order (rows, traces, records and LFH statistics are the same either way).
    let jobs: Vec<(usize, u64, u64)> = segments
        .iter_mut()
        .enumerate()
        .filter_map(|(i, s)| Some((i, segment::prepare_segment(s, r.address, guard, rec)?)))
        .flat_map(|(i, ranges)| ranges.into_iter().map(move |(a, b)| (i, a, b)))
        .collect();
    if depth == WalkDepth::Headers {
        let at = sink.next_index();
        for s in &mut segments {
            s.blocks = at..at;
        }
        info.segments = segments;
        info.virtual_blocks = virtual_alloc::walk_virtual_blocks(&ctx, rec);
        return;
    }
    let committed: u64 = jobs.iter().map(|j| j.2 - j.1).sum();
    // In parallel when there are at least two pieces' worth of bytes and more than one thread.
    let parallel = committed >= piece_bytes.saturating_mul(2) && rayon::current_num_threads() > 1;
    let mut first_row: Vec<Option<usize>> = vec![None; segments.len()];
    let mut end_row: Vec<usize> = vec![0; segments.len()];
    let plan = lfh_plan.as_ref();
    let mut updates = Vec::new();
    let pieces = if parallel { cut_pieces(&ctx, &specials, plan, &jobs, piece_bytes) } else { Vec::new() };
    if pieces.len() > 1 {
        // Pieces walked on every thread, committed in order. A piece is taken as walked when the
        // piece before it in its range ended cleanly (no resynchronisation, so exactly at this
        // piece's start) and this piece's first PreviousSize matches that piece's last Size:
        // then a walk of the whole range would have produced the same rows. Otherwise the rest
        // of the range is walked again here, as the sequential walk would have.
        let mut last: Vec<Option<segment::RangeEnd>> = vec![None; jobs.len()];
        let mut redone = vec![false; jobs.len()];
        let mut free = (0u64, 0u64);
        let work = |k: usize, c: &mut Chunk<PieceEnd>| {
            let p = pieces[k];
            let mut walker = EntryWalker::new(&ctx, &specials, plan);
            let end = c.fill(r.address, |csink, crec| {
                walker.walk_range(segments[jobs[p.job].0].address, p.start, p.end, None, csink, crec)
            });
            c.extra = PieceEnd { lfh_updates: walker.lfh_updates, free: walker.free, end: Some(end) };
        };
        let commit = |k: usize, c: &mut Chunk<PieceEnd>| {
            let p = pieces[k];
            let (i, _, range_end) = jobs[p.job];
            if redone[p.job] {
                return;
            }
            let before = last[p.job];
            let end = c.extra.end.expect("every piece is walked before it is committed");
            let joins = before.is_none_or(|b| b.last_size.is_some() && b.last_size == end.first_previous_size);
            let offset;
            if !end.resynced && joins {
                offset = c.append_to(sink, rec);
                updates.extend(c.extra.lfh_updates.drain(..).map(|u| (u, offset)));
                free = (free.0 + c.extra.free.0, free.1.saturating_add(c.extra.free.1));
                last[p.job] = Some(end);
            } else {
                offset = sink.next_index();
                let mut walker = EntryWalker::new(&ctx, &specials, plan);
                let prev = before.and_then(|b| b.last_size);
                walker.walk_range(segments[i].address, p.start, range_end, prev, sink, rec);
                updates.extend(walker.lfh_updates.drain(..).map(|u| (u, 0)));
                free = (free.0 + walker.free.0, free.1.saturating_add(walker.free.1));
                redone[p.job] = true;
            }
            first_row[i].get_or_insert(offset);
            end_row[i] = sink.next_index();
        };
        super::ordered::run_ordered(pieces.len(), work, commit, || cancel.is_set());
        info.free_blocks = free;
    } else {
        let mut walker = EntryWalker::new(&ctx, &specials, plan);
        for &(i, a, b) in &jobs {
            if cancel.is_set() {
                break; // the caller discards the walk
            }
            let offset = sink.next_index();
            walker.walk_range(segments[i].address, a, b, None, sink, rec);
            first_row[i].get_or_insert(offset);
            end_row[i] = sink.next_index();
        }
        updates.extend(walker.lfh_updates.drain(..).map(|u| (u, 0)));
        info.free_blocks = walker.free;
    }
    for (i, s) in segments.iter_mut().enumerate() {
        s.blocks = match first_row[i] {
            Some(f) => f..end_row[i],
            None => sink.next_index()..sink.next_index(),
        };
        if let Some(f) = first_row[i] {
            let first = sink.columns().row(f);
            segment::check_header_block(s, first, rec);
        }
    }
    info.segments = segments;
    let mut walker = EntryWalker::new(&ctx, &specials, plan);
    let virtual_blocks = virtual_alloc::walk_virtual_blocks(&ctx, rec);
    for v in &virtual_blocks {
        let mut row = virtual_alloc::row(v);
        let extent = (v.address, v.address.saturating_add(v.commit_size));
        // Every virtual block has HEAP_ENTRY_VIRTUAL_ALLOC in its BusyBlock, so unlike in a
        // segment the flag says nothing: only a structure inside makes it special.
        let special = specials_in(&specials, extent);
        if let Some(s) = special {
            row.set_kind(segment::special_kind(Some(s)));
        }
        let index = sink.push_traced(row, v.stack_trace_entry);
        info.virtual_rows.push(index);
        if row.kind == BlockKind::LfhContainer.code() {
            walker.container(special, &Placed { index, row, extent }, sink, rec);
        }
    }
    info.virtual_blocks = virtual_blocks;
    updates.extend(walker.lfh_updates.drain(..).map(|u| (u, 0)));
    if let Some(mut p) = lfh_plan {
        for (u, offset) in &updates {
            p.apply(u, *offset);
        }
        for (ub, ss) in p.unmet() {
            rec.record(
                ub,
                CorruptionKind::BadLfhContainer,
                format!("UserBlocks {ub:#x} of subsegment {ss:#x} is not in any busy block the walk met"),
            );
        }
        info.lfh = Some(p.info);
    }
}

/// Cut the committed ranges `jobs` into pieces of about `piece_bytes`, each starting at a block
/// start found by [`EntryWalker::boundary`] (a range with no such start near a cut is not cut
/// there).
fn cut_pieces(
    ctx: &HeapCtx<'_>,
    specials: &[(u64, Special)],
    plan: Option<&LfhPlan>,
    jobs: &[(usize, u64, u64)],
    piece_bytes: u64,
) -> Vec<Piece> {
    let piece_bytes = piece_bytes.max(1);
    let mut walker = EntryWalker::new(ctx, specials, plan);
    let mut pieces = Vec::new();
    for (job, &(_, a, b)) in jobs.iter().enumerate() {
        let mut start = a;
        let mut cut = a.saturating_add(piece_bytes);
        while cut.saturating_add(piece_bytes / 2) < b {
            match walker.boundary(cut, cut.saturating_add(BOUNDARY_SEARCH), b) {
                Some(q) if q > start => {
                    pieces.push(Piece { job, start, end: q });
                    start = q;
                    cut = q.saturating_add(piece_bytes);
                }
                _ => cut = cut.saturating_add(piece_bytes),
            }
        }
        pieces.push(Piece { job, start, end: b });
    }
    pieces
}

/// The strongest special whose address lies in `[start, end)`.
fn specials_in(specials: &[(u64, Special)], (start, end): (u64, u64)) -> Option<Special> {
    let i = specials.partition_point(|s| s.0 < start);
    specials[i..].iter().take_while(|s| s.0 < end).map(|s| s.1).reduce(Special::max)
}
