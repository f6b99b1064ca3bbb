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
//! Out of scope for now: the LFH front end (its UserBlocks containers are reported as
//! [`BlockKind::LfhContainer`] rows), segment heaps (listed, not walked) and page heap. The stack
//! traces that `+ust` blocks point to are read by [`crate::stacks`] from the
//! `_RTL_STACK_TRACE_ENTRY` addresses in [`BlockColumns::stack_trace_entry`].

pub mod columns;
pub mod corruption;
pub mod discover;
pub mod entry;
mod list;
pub mod segment;
pub mod summary;
pub mod virtual_alloc;

#[cfg(test)]
pub(crate) mod testing;

use std::ops::Range;

pub use columns::{BlockColumns, BlockKind, BlockRow};
pub use corruption::{Corruption, CorruptionKind};
pub use discover::{discover, ChosenBy, Discovery, HeapKind, HeapRef, LayoutChoice};
pub use segment::{SegmentInfo, UcrRange};
pub use summary::{summary_table, HeapSummary};
pub use virtual_alloc::VirtualBlockInfo;

use crate::dump::Dump;
use crate::error::Result;
use crate::layouts::nt_heap::{HeapLayout, HEAP_ENCODE_FLAG_MAKE_ENCODING_ENABLED};
use crate::memory::AddressSpace;
use crate::target::Arch;
use corruption::Recorder;
use entry::EntryDecoder;
use list::NodeBudget;
use segment::{EntryWalker, SpanGuard};

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
    /// Position in its PEB's `ProcessHeaps`.
    pub index: usize,
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
    /// This heap's rows in [`HeapReport::blocks`].
    pub blocks: Range<usize>,
    /// Corruption records for this heap, including any beyond the stored cap.
    pub corruption_count: usize,
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
            blocks: 0..0,
            corruption_count: 0,
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
}

impl HeapReport {
    /// The heap at `address` (the first one, if a dump lists the same address on both PEBs).
    pub fn heap(&self, address: u64) -> Option<&HeapInfo> {
        self.heaps.iter().find(|h| h.address == address)
    }

    /// The `!heap -s` style table of [`summary_table`].
    pub fn summary_table(&self) -> String {
        summary_table(self)
    }

    /// For each of `heap`'s [`HeapInfo::virtual_blocks`], its row in [`Self::blocks`]. The walker
    /// appends one [`BlockKind::Virtual`] row per entry, in list order, so the k-th virtual row of
    /// the heap belongs to the k-th entry; `None` where that row is missing or is for another
    /// address.
    pub fn virtual_block_rows(&self, heap: &HeapInfo) -> Vec<Option<usize>> {
        let b = &self.blocks;
        let virt = BlockKind::Virtual.code();
        let mut rows = (heap.blocks.start.min(b.len())..heap.blocks.end.min(b.len())).filter(|&i| b.kind[i] == virt);
        heap.virtual_blocks.iter().map(|v| rows.next().filter(|&r| b.address[r] == v.header_address)).collect()
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
}

/// What the heap walks of one report share, so that hostile heap lists cannot multiply the work:
/// segments already walked (by span) and the list-node budget.
pub(crate) struct WalkState {
    pub(crate) guard: SpanGuard,
    pub(crate) budget: NodeBudget,
}

impl WalkState {
    pub(crate) fn new(mem: &AddressSpace) -> Self {
        WalkState { guard: SpanGuard::default(), budget: NodeBudget::for_space(mem) }
    }
}

/// Walk every heap of `dump`.
pub fn walk(dump: &Dump) -> Result<HeapReport> {
    let d = discover(dump)?;
    let build = dump.target().version.build;
    let mut report = HeapReport { corruption: d.problems, ..HeapReport::default() };
    let mut state = WalkState::new(dump.memory());
    for h in &d.heaps {
        walk_into(dump.memory(), h, build, &mut report, &mut state);
    }
    Ok(report)
}

/// Walk one heap of `mem` (a report with one heap). `build` is the OS build used to pick the
/// layout row.
pub fn walk_heap(mem: &AddressSpace, heap: &HeapRef, build: u32) -> HeapReport {
    let mut report = HeapReport::default();
    walk_into(mem, heap, build, &mut report, &mut WalkState::new(mem));
    report
}

fn walk_into(mem: &AddressSpace, r: &HeapRef, build: u32, report: &mut HeapReport, state: &mut WalkState) {
    let HeapReport { heaps, blocks, corruption } = report;
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
                HeapKind::Segment => {}
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
                        walk_nt(mem, r, &choice.row.layout, &mut info, blocks, &mut rec, state);
                    }
                },
            }
        }
    }
    info.corruption_count = rec.total;
    info.blocks = first_row..blocks.len();
    info.summary = HeapSummary::compute(&info, blocks);
    heaps.push(info);
}

fn walk_nt(
    mem: &AddressSpace,
    r: &HeapRef,
    l: &'static HeapLayout,
    info: &mut HeapInfo,
    blocks: &mut BlockColumns,
    rec: &mut Recorder<'_>,
    state: &mut WalkState,
) {
    let WalkState { guard, budget } = state;
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
    let key = if info.encoding_enabled {
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
        decoder: EntryDecoder::new(&l.entry, key),
        ust: r.ust,
        budget,
    };
    info.lock_contention = summary::lock_contention(&ctx);

    let addresses = segment::segment_addresses(&ctx, rec);
    let mut segments: Vec<SegmentInfo> =
        addresses.into_iter().filter_map(|s| segment::read_segment(&ctx, s, rec)).collect();
    // Heap-internal allocations: blocks holding UCR descriptors, and the UCR index.
    let mut internal: Vec<u64> = segments.iter().flat_map(|s| s.ucrs.iter().map(|u| u.descriptor)).collect();
    if let Ok(p) = mem.read_ptr(a, at(h.ucr_index)) {
        if p != 0 {
            internal.push(p);
        }
    }
    internal.sort_unstable();
    internal.dedup();
    let mut walker = EntryWalker::new(&ctx, &internal);
    for s in &mut segments {
        walker.walk_segment(s, guard, blocks, rec);
    }
    info.segments = segments;
    info.virtual_blocks = virtual_alloc::walk_virtual_blocks(&ctx, blocks, rec);
}

#[cfg(test)]
mod tests;
