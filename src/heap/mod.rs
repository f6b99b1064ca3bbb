//! NT heap walking: from the PEB's heap list to every block, as columns.
//!
//! [`walk`] is the entry point: it finds the heaps ([`discover()`]), and for each NT heap chooses a
//! `_HEAP` layout row (by build, validated against the dump, §12.9), reads its segments and
//! uncommitted ranges ([`segment`]), walks every block of every committed range
//! ([`segment`], [`entry`]), then its large blocks ([`virtual_alloc`]). Blocks go into one
//! [`BlockColumns`] table; each heap's [`HeapInfo`] describes the heap, its segments and virtual
//! blocks, and its `!heap -s` numbers ([`summary`]).
//!
//! Walking never fails because of what it finds in the heap: bad checksums, pointers outside the
//! dump, uncaptured pages, looping lists and impossible sizes become [`Corruption`] records and
//! the walk goes on where it can. Every list walk is bounded and detects cycles; every
//! allocation is bounded by bytes actually present in the dump; segments already walked are not
//! walked again and list nodes are drawn from one budget per report, so the whole walk is linear
//! in the size of the dump however the heap lists are crafted. [`walk`] fails only when the
//! process's PEB cannot be read at all (then there is no heap list to start from).
//!
//! Besides the NT back end, the walk decodes the LFH front end ([`lfh`]: UserBlocks containers and
//! the blocks inside them), segment heaps ([`segment_heap`]) and page heaps ([`page_heap`]); rows
//! nest (a container, then its children, see docs/block-model.md). The stack traces that `+ust`
//! blocks point to are read by [`crate::stacks`] from the `_RTL_STACK_TRACE_ENTRY` addresses in
//! [`HeapReport::traces`].

pub mod columns;
pub mod corruption;
pub mod coverage;
pub mod discover;
pub mod entry;
pub mod lfh;
mod list;
mod nt;
mod ordered;
pub mod page_heap;
mod rows;
pub mod segment;
pub mod segment_heap;
pub mod summary;
pub mod virtual_alloc;

#[cfg(test)]
pub(crate) mod testing;

use std::ops::Range;

pub use columns::{
    AnyColumn, AnyColumnRef, BlockColumns, BlockKind, BlockRefs, BlockRow, ColumnSpec, NotDecoded, Traces,
    BLOCK_SCHEMA, DERIVED_COLUMNS,
};
pub use corruption::{Corruption, CorruptionKind};
pub use coverage::{PebHeaps, Scope, Warning};
pub use discover::{discover, ChosenBy, Discovery, HeapKind, HeapRef, LayoutChoice};
pub use segment::{SegmentInfo, UcrRange};
pub use summary::{summary_table, HeapSummary};
pub use virtual_alloc::VirtualBlockInfo;

use crate::dump::Dump;
use crate::error::Result;
use crate::layouts::nt_heap::HeapLayout;
use crate::limits::{Cancel, Limits};
use crate::memory::AddressSpace;
use crate::target::Arch;
use corruption::Recorder;
use entry::EntryDecoder;
use list::NodeBudget;
use rows::RowSink;
use segment::SpanGuard;

/// What happened to a listed heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapStatus {
    /// An NT heap whose segments and virtual blocks were walked (possibly with corruption records).
    Walked,
    /// The heap's first bytes are not in the dump.
    HeaderNotCaptured,
    /// Not an NT heap (segment heap or unknown signature): listed only.
    NotWalked,
    /// An NT heap for which no layout row validates.
    NoLayout,
}

impl HeapStatus {
    /// `walked`, `not_captured`, `not_walked` or `no_layout`.
    pub const fn name(self) -> &'static str {
        match self {
            HeapStatus::Walked => "walked",
            HeapStatus::HeaderNotCaptured => "not_captured",
            HeapStatus::NotWalked => "not_walked",
            HeapStatus::NoLayout => "no_layout",
        }
    }
}

/// The `_HEAP_COUNTERS` fields read (§4.1 end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapCounters {
    /// `TotalMemoryReserved`.
    pub total_memory_reserved: u64,
    /// `TotalMemoryCommitted`.
    pub total_memory_committed: u64,
    /// `TotalMemoryLargeUCR`.
    pub total_memory_large_ucr: u64,
    /// `TotalSizeInVirtualBlocks`.
    pub total_size_in_virtual_blocks: u64,
    /// `TotalSegments`.
    pub total_segments: u32,
    /// `TotalUCRs`.
    pub total_ucrs: u32,
}

/// One heap of the report.
#[derive(Debug, Clone)]
pub struct HeapInfo {
    /// The heap's address (its handle).
    pub address: u64,
    /// NT, segment or unknown.
    pub kind: HeapKind,
    /// Pointer width of the heap (x86 for the 32-bit heaps of a WOW64 process).
    pub arch: Arch,
    /// Listed by the 32-bit PEB of a WOW64 process.
    pub wow64_32bit: bool,
    /// Position in its PEB's `ProcessHeaps` (`None` when found through a page heap).
    pub index: Option<usize>,
    /// It is its PEB's `ProcessHeap`.
    pub is_process_heap: bool,
    /// Whether and how far it was walked.
    pub status: HeapStatus,
    /// The u32 at +0x08 (x86) / +0x10 (x64) that identified the kind, when captured.
    pub signature_word: Option<u32>,
    /// The layout row used (NT heaps that validated).
    pub layout: Option<LayoutChoice>,
    /// `_HEAP.Flags`.
    pub flags: u32,
    /// `_HEAP.ForceFlags`.
    pub force_flags: u32,
    /// `_HEAP.Signature` is 0xEEFFEEFF at the chosen row's offset.
    pub signature_ok: bool,
    /// `EncodeFlagMask & 0x100000`: headers are encoded with `_HEAP.Encoding`.
    pub encoding_enabled: bool,
    /// `+ust` (from the heap's PEB): busy blocks carry a stack-trace header (§11.3).
    pub ust: bool,
    /// `_HEAP.FrontEndHeap`.
    pub front_end_heap: u64,
    /// `_HEAP.FrontEndHeapType` (0 none, 1 look-aside, 2 LFH).
    pub front_end_type: Option<u8>,
    /// `_HEAP.TotalFreeSize` in bytes.
    pub total_free_size: Option<u64>,
    /// `_HEAP.Counters`, when the epoch's offset is known.
    pub counters: Option<HeapCounters>,
    /// Heap-lock contention (see [`summary`]).
    pub lock_contention: Option<u32>,
    /// The segments, the heap's own first.
    pub segments: Vec<SegmentInfo>,
    /// The `VirtualAllocdBlocks` entries, in list order.
    pub virtual_blocks: Vec<VirtualBlockInfo>,
    /// For each of `virtual_blocks`, its row in [`HeapReport::blocks`].
    pub virtual_rows: Vec<usize>,
    /// The LFH front end, when `FrontEndHeapType` is 2.
    pub lfh: Option<lfh::LfhInfo>,
    /// For a page heap: what its root says.
    pub page_heap: Option<page_heap::PageHeapInfo>,
    /// For the `NormalHeap` of a page heap: that page heap's handle.
    pub page_heap_owner: Option<u64>,
    /// For a segment heap that was walked: its contexts, keys and totals.
    pub segment_heap: Option<segment_heap::SegmentHeapInfo>,
    /// Why a heap of a known kind was not walked, when it was not.
    pub not_walked: Option<String>,
    /// This heap's rows in [`HeapReport::blocks`].
    pub blocks: Range<usize>,
    /// Corruption records for this heap, including any beyond the stored cap.
    pub corruption_count: usize,
    /// Free back-end blocks the walk met: (count, bytes).
    pub free_blocks: (u64, u64),
    /// `!heap -s` numbers.
    pub summary: HeapSummary,
}

impl HeapInfo {
    fn listed(r: &HeapRef) -> HeapInfo {
        HeapInfo {
            address: r.address,
            kind: HeapKind::Unknown,
            arch: r.arch,
            wow64_32bit: r.wow64_32bit,
            index: r.index,
            is_process_heap: r.is_process_heap,
            status: HeapStatus::HeaderNotCaptured,
            signature_word: None,
            layout: None,
            flags: 0,
            force_flags: 0,
            signature_ok: false,
            encoding_enabled: false,
            ust: r.ust,
            front_end_heap: 0,
            front_end_type: None,
            total_free_size: None,
            counters: None,
            lock_contention: None,
            segments: Vec::new(),
            virtual_blocks: Vec::new(),
            virtual_rows: Vec::new(),
            lfh: None,
            page_heap: None,
            page_heap_owner: r.page_heap_owner,
            segment_heap: None,
            not_walked: None,
            blocks: 0..0,
            corruption_count: 0,
            free_blocks: (0, 0),
            summary: HeapSummary::default(),
        }
    }
}

/// Everything a walk found.
#[derive(Debug, Clone, Default)]
pub struct HeapReport {
    /// Every listed heap, native PEB first, then WOW64 32-bit.
    pub heaps: Vec<HeapInfo>,
    /// Every block of every walked heap.
    pub blocks: BlockColumns,
    /// Every problem found (capped per heap, see [`corruption::MAX_RECORDS_PER_HEAP`]).
    pub corruption: Vec<Corruption>,
    /// The LFH key of each process half that has LFH containers.
    pub lfh_keys: Vec<LfhKeyReport>,
    /// The `_RTL_STACK_TRACE_ENTRY` of the rows that have one.
    pub traces: Traces,
    /// What the report does not cover, and why (see [`coverage`]).
    pub warnings: Vec<Warning>,
    /// What the PEB(s) say about the heap list.
    pub pebs: Vec<PebHeaps>,
    /// Heaps not walked because the walk reached [`Limits::max_rows`].
    pub rows_capped: u64,
    /// The row cap the walk ran under.
    pub max_rows: u64,
    /// Runs of rows that belong to one segment (NT: a `_HEAP_SEGMENT`; segment heap: a page
    /// segment), ascending and disjoint: `(rows, segment address)`. A row in no run has no
    /// segment (virtual blocks, large blocks, page-heap blocks).
    pub segment_runs: Vec<(Range<usize>, u64)>,
}

impl HeapReport {
    /// The heap at `address` (the first one, if a dump lists the same address on both PEBs).
    pub fn heap(&self, address: u64) -> Option<&HeapInfo> {
        self.heaps.iter().find(|h| h.address == address)
    }

    /// The heap (its index in [`Self::heaps`]) that row `row` belongs to.
    pub fn heap_of_row(&self, row: usize) -> Option<usize> {
        let i = self.heaps.partition_point(|h| h.blocks.end <= row);
        self.heaps.get(i).filter(|h| h.blocks.contains(&row)).map(|_| i)
    }

    /// The segment address of row `row` (0 when it is in no segment).
    pub fn segment_of_row(&self, row: usize) -> u64 {
        let i = self.segment_runs.partition_point(|r| r.0.end <= row);
        self.segment_runs.get(i).filter(|r| r.0.contains(&row)).map_or(0, |r| r.1)
    }

    /// Every row's heap, as an index into [`Self::heaps`] (`u16::MAX`: a row of no heap).
    pub fn heap_codes(&self) -> Vec<u16> {
        let mut v = vec![u16::MAX; self.rows()];
        for (i, h) in self.heaps.iter().enumerate() {
            if let Some(s) = v.get_mut(h.blocks.clone()) {
                s.fill(u16::try_from(i).unwrap_or(u16::MAX));
            }
        }
        v
    }

    /// Every row's segment, as 1 + an index into [`Self::segment_runs`] (0: in no segment).
    pub fn segment_codes(&self) -> Vec<u32> {
        let mut v = vec![0u32; self.rows()];
        for (i, (rows, _)) in self.segment_runs.iter().enumerate() {
            if let Some(s) = v.get_mut(rows.clone()) {
                s.fill(u32::try_from(i + 1).unwrap_or(0));
            }
        }
        v
    }

    /// The `!heap -s` style table of [`summary_table`].
    pub fn summary_table(&self) -> String {
        summary_table(self)
    }

    /// Number of rows of the walk (also when [`Self::blocks`] has been moved elsewhere).
    pub fn rows(&self) -> usize {
        self.heaps.iter().map(|h| h.blocks.end).max().unwrap_or(0).max(self.blocks.len())
    }
}

/// What the per-heap walkers share.
pub(crate) struct HeapCtx<'a> {
    pub(crate) mem: &'a AddressSpace,
    pub(crate) heap: u64,
    pub(crate) arch: Arch,
    pub(crate) layout: &'static HeapLayout,
    pub(crate) decoder: EntryDecoder,
    pub(crate) ust: bool,
    pub(crate) budget: &'a NodeBudget,
    /// The heap is a page heap's `NormalHeap`: busy blocks may carry light-page-heap data.
    pub(crate) dph_normal: bool,
}

/// What the heap walks of one report share, so that hostile heap lists cannot multiply the work:
/// segments already walked (by span) and the list-node budget.
pub(crate) struct WalkState {
    pub(crate) guard: SpanGuard,
    pub(crate) budget: NodeBudget,
    /// Polled between heaps and between committed ranges.
    pub(crate) cancel: Cancel,
    /// Bytes per piece when a heap's committed ranges are walked in parallel.
    pub(crate) piece_bytes: u64,
}

impl WalkState {
    pub(crate) fn new(mem: &AddressSpace, limits: &Limits, cancel: Cancel) -> Self {
        WalkState {
            guard: SpanGuard::default(),
            budget: NodeBudget::for_space(mem, limits.max_list_nodes),
            cancel,
            piece_bytes: nt::PIECE_BYTES,
        }
    }
}

/// How far a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WalkDepth {
    /// Every block of every heap (the default).
    #[default]
    Blocks,
    /// A survey whose cost does not grow with the number of blocks: for NT heaps the `_HEAP`
    /// header and counters, the segment headers and their uncommitted ranges, and the
    /// `VirtualAllocdBlocks` list, but no block and no LFH container. Everything `!heap -s` prints
    /// except "List length" (see [`HeapSummary::free_blocks`]). Segment heaps and page heaps are
    /// walked as at [`WalkDepth::Blocks`]: their `!heap -s` figures are block counts.
    Headers,
}

/// Options of a walk.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// A debugger symbol path whose local directories may hold ntdll's PDB: with a PDB whose
    /// GUID and age match, front-end keys are also read through their symbols
    /// (`ntdll!RtlpLFHKey`), and checked against the keys recovered from the dump.
    pub symbol_path: Option<String>,
    /// How far to walk.
    pub depth: WalkDepth,
    /// Caps on the work.
    pub limits: Limits,
    /// Set by the caller to stop the walk ([`crate::Error::Interrupted`]).
    pub cancel: Cancel,
}

/// The LFH key of one half of the process (its own ntdll).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfhKeyReport {
    /// The 32-bit half of a WOW64 process.
    pub wow64_32bit: bool,
    /// Its pointer width.
    pub arch: Arch,
    /// The key and how it was found.
    pub key: lfh::ProcessKey,
}

/// Walk every heap of `dump`.
pub fn walk(dump: &Dump) -> Result<HeapReport> {
    walk_with(dump, &WalkOptions::default())
}

/// Walk every heap of `dump` with `options`.
pub fn walk_with(dump: &Dump, options: &WalkOptions) -> Result<HeapReport> {
    walk_dump(dump, options, nt::PIECE_BYTES)
}

/// [`walk_with`], walking in parallel in pieces of `piece_bytes` (see [`WalkState::piece_bytes`]).
pub(crate) fn walk_dump(dump: &Dump, options: &WalkOptions, piece_bytes: u64) -> Result<HeapReport> {
    let d = discover(dump)?;
    let build = dump.target().version.build;
    let mem = dump.memory();
    let mut report = HeapReport {
        corruption: d.problems,
        pebs: d.pebs.clone(),
        max_rows: options.limits.max_rows,
        ..HeapReport::default()
    };
    let mut state = WalkState::new(mem, &options.limits, options.cancel.clone());
    state.piece_bytes = piece_bytes;
    let listed = discover::with_page_heaps(mem, &d.heaps, &state.budget, &mut report.corruption);
    let symbol = |arch: Arch, name: &str| {
        options.symbol_path.as_deref().and_then(|p| crate::symbols::ntdll_global(dump, p, arch, name))
    };
    for wow in [false, true] {
        let heaps: Vec<&HeapRef> = listed.iter().filter(|h| h.wow64_32bit == wow).collect();
        let Some(first) = heaps.first() else { continue };
        let arch = first.arch;
        let globals = symbol(arch, "RtlpHpHeapGlobals");
        let symbols = Symbols {
            lfh_key: symbol(arch, "RtlpLFHKey").and_then(|a| mem.read_u32(a).ok()),
            seg_heap_key: globals.and_then(|a| mem.read_ptr(arch, a).ok()),
            // RtlpHpHeapGlobals.LfhKey: +8 on x64, +4 on x86 (§10).
            seg_lfh_key: globals.and_then(|a| mem.read_u32(a.wrapping_add(arch.ptr_size())).ok()),
        };
        let half = Half::prepare(mem, &heaps, build, &symbols, dump.info().regions.as_deref(), &state, options.depth);
        if let (Some(s), Some(r)) = (half.lfh_key.symbol, half.lfh_key.recovered) {
            if s != r {
                report.corruption.push(Corruption::new(
                    0,
                    0,
                    CorruptionKind::Inconsistent,
                    format!(
                        "{arch} RtlpLFHKey: the symbol gives {s:#010x}, the dump's containers {r:#010x}; using {:#010x}",
                        half.lfh_key.key.unwrap_or(0)
                    ),
                ));
            }
        }
        report.corruption.extend(half.problems.iter().cloned());
        for h in &heaps {
            crate::limits::test_pause(&options.cancel);
            options.cancel.check("walking the heaps")?;
            if report.blocks.len() as u64 >= options.limits.max_rows {
                report.rows_capped += 1;
                let mut info = HeapInfo::listed(h);
                info.status = HeapStatus::NotWalked;
                info.not_walked = Some(format!("the walk reached its cap of {} rows", options.limits.max_rows));
                info.blocks = report.blocks.len()..report.blocks.len();
                report.heaps.push(info);
                continue;
            }
            walk_into(mem, h, &half, &mut report, &mut state);
        }
        if half.lfh_candidates > 0 || half.lfh_key.symbol.is_some() {
            report.lfh_keys.push(LfhKeyReport { wow64_32bit: wow, arch, key: half.lfh_key.clone() });
        }
    }
    options.cancel.check("walking the heaps")?;
    report.warnings = coverage::container_gaps(dump.info());
    report.warnings.extend(coverage::survey_gaps(&report, mem, dump.info().regions.as_deref()));
    report.warnings.extend(coverage::walk_gaps(&report));
    Ok(report)
}

/// Key values read through ntdll's symbols (`None` without a matching PDB).
#[derive(Debug, Clone, Copy, Default)]
struct Symbols {
    lfh_key: Option<u32>,
    seg_heap_key: Option<u64>,
    seg_lfh_key: Option<u32>,
}

/// What the walk of one process half knows before it walks any heap: its heaps share one ntdll,
/// so one `RtlpLFHKey` and one set of segment-heap keys, recovered from all of them together.
struct Half<'a> {
    build: u32,
    lfh_key: lfh::ProcessKey,
    lfh_candidates: usize,
    seg_plans: std::collections::HashMap<u64, std::result::Result<segment_heap::SegPlan, String>>,
    seg_keys: segment_heap::SegmentKeys,
    regions: Option<&'a [crate::dump::Region]>,
    problems: Vec<Corruption>,
    depth: WalkDepth,
}

impl<'a> Half<'a> {
    fn prepare(
        mem: &AddressSpace,
        heaps: &[&HeapRef],
        build: u32,
        symbols: &Symbols,
        regions: Option<&'a [crate::dump::Region]>,
        state: &WalkState,
        depth: WalkDepth,
    ) -> Half<'a> {
        // The LFH key is needed only to decode containers, which a survey does not.
        let candidates: Vec<lfh::KeyCandidate> = match depth {
            WalkDepth::Blocks => heaps.iter().flat_map(|h| nt::lfh_key_candidates(mem, h, build, state)).collect(),
            WalkDepth::Headers => Vec::new(),
        };
        let lfh_key = lfh::resolve_key(&candidates, symbols.lfh_key);
        let seg_plans: std::collections::HashMap<_, _> = heaps
            .iter()
            .filter(|h| matches!(discover::classify(mem, h.address, h.arch), Some((HeapKind::Segment, _))))
            .map(|h| (h.address, segment_heap::plan(mem, h.address, h.arch, build, &state.budget)))
            .collect();
        let plans: Vec<&segment_heap::SegPlan> = seg_plans.values().filter_map(|p| p.as_ref().ok()).collect();
        let (seg_keys, problems) = segment_heap::resolve_keys(&plans, symbols.seg_heap_key, symbols.seg_lfh_key);
        Half { build, lfh_key, lfh_candidates: candidates.len(), seg_plans, seg_keys, regions, problems, depth }
    }
}

/// Walk one heap of `mem` (a report with one heap). `build` is the OS build used to pick the
/// layout row; keys are recovered from this heap alone.
pub fn walk_heap(mem: &AddressSpace, heap: &HeapRef, build: u32) -> HeapReport {
    walk_heap_in_pieces(mem, heap, build, nt::PIECE_BYTES)
}

/// [`walk_heap`], cutting committed ranges into pieces of `piece_bytes` when the rayon pool has
/// more than one thread.
pub(crate) fn walk_heap_in_pieces(mem: &AddressSpace, heap: &HeapRef, build: u32, piece_bytes: u64) -> HeapReport {
    let mut report = HeapReport { max_rows: Limits::default().max_rows, ..HeapReport::default() };
    let mut state = WalkState::new(mem, &Limits::default(), Cancel::new());
    state.piece_bytes = piece_bytes;
    let half = Half::prepare(mem, &[heap], build, &Symbols::default(), None, &state, WalkDepth::Blocks);
    walk_into(mem, heap, &half, &mut report, &mut state);
    report.warnings = coverage::survey_gaps(&report, mem, None);
    report.warnings.extend(coverage::walk_gaps(&report));
    report
}

fn walk_into(mem: &AddressSpace, r: &HeapRef, half: &Half<'_>, report: &mut HeapReport, state: &mut WalkState) {
    let build = half.build;
    let HeapReport { heaps, blocks, corruption, traces, segment_runs, .. } = report;
    let mut info = HeapInfo::listed(r);
    let first_row = blocks.len();
    let mut rec = Recorder::new(r.address, corruption);
    match discover::classify(mem, r.address, r.arch) {
        None => {
            rec.record(
                r.address,
                CorruptionKind::NotCaptured,
                format!("{} heap header at {:#x} not captured", r.arch, r.address),
            );
        }
        Some((kind, sig)) => {
            info.kind = kind;
            info.signature_word = Some(sig);
            info.status = HeapStatus::NotWalked;
            match kind {
                HeapKind::Segment => match half.seg_plans.get(&r.address) {
                    Some(Ok(plan)) => {
                        info.status = HeapStatus::Walked;
                        let mut sink = RowSink::new(blocks, traces);
                        let s = segment_heap::walk(
                            mem,
                            r.address,
                            plan,
                            &half.seg_keys,
                            half.regions,
                            &state.budget,
                            state.piece_bytes,
                            &mut sink,
                            &mut rec,
                        );
                        info.segment_heap = Some(s);
                    }
                    Some(Err(why)) => {
                        rec.record(r.address, CorruptionKind::NoLayout, format!("segment heap not walked: {why}"));
                        info.not_walked = Some(why.clone());
                    }
                    None => {}
                },
                HeapKind::Page => match page_heap::root_of(mem, r.address, r.arch) {
                    Err(why) => {
                        rec.record(r.address, CorruptionKind::NotCaptured, format!("page heap not walked: {why}"));
                    }
                    Ok(root) => {
                        info.status = HeapStatus::Walked;
                        let mut sink = RowSink::new(blocks, traces);
                        let p = page_heap::walk(mem, r.address, root, r.arch, &state.budget, &mut sink, &mut rec);
                        info.flags = mem
                            .read_u32(
                                r.address
                                    .wrapping_add(u64::from(crate::layouts::page_heap::layout(r.arch).fake_heap_flags)),
                            )
                            .unwrap_or(0);
                        info.page_heap = Some(p);
                    }
                },
                HeapKind::Unknown => {
                    rec.record(r.address, CorruptionKind::BadSignature, format!("unknown heap signature {sig:#x}"));
                }
                HeapKind::Nt => match discover::choose_layout(mem, r.address, r.arch, build) {
                    Err(why) => {
                        info.status = HeapStatus::NoLayout;
                        rec.record(r.address, CorruptionKind::NoLayout, format!("no _HEAP layout validates: {why}"));
                    }
                    Ok(choice) => {
                        info.status = HeapStatus::Walked;
                        info.layout = Some(choice);
                        let mut sink = RowSink::new(blocks, traces);
                        nt::walk_nt(
                            mem,
                            r,
                            &choice.row.layout,
                            build,
                            &half.lfh_key,
                            &mut info,
                            &mut sink,
                            &mut rec,
                            state,
                            half.depth,
                        );
                    }
                },
            }
        }
    }
    info.corruption_count = rec.total;
    info.blocks = first_row..blocks.len();
    segment_runs.extend(info.segments.iter().filter(|s| !s.blocks.is_empty()).map(|s| (s.blocks.clone(), s.address)));
    if let Some(s) = &info.segment_heap {
        segment_runs.extend(s.segment_rows.iter().filter(|r| !r.0.is_empty()).cloned());
    }
    // A survey walks segment heaps and page heaps all the same (see `WalkDepth::Headers`).
    let walked = info.status == HeapStatus::Walked && (half.depth == WalkDepth::Blocks || info.kind != HeapKind::Nt);
    info.summary = HeapSummary::compute(&info, walked);
    heaps.push(info);
}

#[cfg(test)]
mod tests;
