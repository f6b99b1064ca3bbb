//! Who allocated it: the `+ust` allocation stack of every heap block, deduplicated.
//!
//! With `+ust` (gflags "Create user mode stack trace database", §3) every busy block carries a
//! pointer to an `_RTL_STACK_TRACE_ENTRY` (§11.3); the heap walker keeps it, for the rows that
//! have one, in [`crate::heap::HeapReport::traces`]. [`StackTable::collect`] reads each distinct
//! entry once ([`entry::read_entry`], §11.1, §12.8), and gives each distinct *frame sequence* one
//! dense stack id per dump, so two entries with the same frames (the database deduplicates by
//! hash, but a dump may hold copies) get the same id. Blocks without a trace get −1.
//!
//! The pointer width of an entry is the block's heap's: the 32-bit heaps of a WOW64 process have
//! x86 entries inside an x64 dump.
//!
//! A trace entry that is not in the dump, or whose frame count is impossible, is not an error: the
//! block gets −1 and a [`StackProblem`] names the entry, the first block pointing at it, how many
//! blocks do, and why. Work is proportional to the number of blocks (one hash lookup each) plus the
//! number of distinct entries (one read each); nothing is allocated per block beyond the id
//! column.
//!
//! Symbolization is separate ([`crate::symbols`]): stacks are addresses here. [`stack_keys`] joins
//! both into the per-stack text keys that compare stacks across dumps.

pub mod entry;

use std::collections::HashMap;

use crate::dump::Dump;
use crate::heap::{BlockKind, HeapReport};
use crate::memory::AddressSpace;
use crate::symbols::Symbolizer;
use crate::target::Arch;

pub use entry::{read_entry, CountField, EntryError, EntryRead, TraceEntryLayout, MAX_FRAMES};

/// The column the stack table adds to the block columns (`Dump.blocks()`), described like the
/// walk's own ([`crate::heap::BLOCK_SCHEMA`]).
pub const STACK_ID_COLUMN: crate::heap::ColumnSpec = crate::heap::ColumnSpec {
    name: "stack_id",
    dtype: "int32",
    doc: "The row's allocation stack in `Dump.stacks()`, −1 when it has none (no `+ust` trace, or one that \
          could not be read).",
};

/// What was wrong with a trace entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum StackProblemKind {
    /// The entry's count fields or frames are not in the dump (or the pointer is outside it).
    NotCaptured = 1,
    /// Neither `Index` nor `Depth` is in 1..=32 (§11.1).
    BadFrameCount = 2,
    /// `Index` was out of range and `Depth` in range: the stack was read with `Depth` frames (see
    /// the folklore note in [`entry`]). The stack is kept; this row only flags it.
    DepthFallback = 3,
    /// The table reached `u32::MAX` frames; later new stacks are not stored.
    TableFull = 4,
    /// A page-heap trace whose `Depth` was out of range and `Index` in range: read with `Index`
    /// frames. The stack is kept; this row only flags it.
    IndexFallback = 5,
}

impl StackProblemKind {
    /// Every kind, by code − 1.
    pub const ALL: [StackProblemKind; 5] = [
        StackProblemKind::NotCaptured,
        StackProblemKind::BadFrameCount,
        StackProblemKind::DepthFallback,
        StackProblemKind::TableFull,
        StackProblemKind::IndexFallback,
    ];

    /// The stable non-zero code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// A stable name: `not_captured`, `bad_frame_count`, `depth_fallback`, `table_full`.
    pub const fn name(self) -> &'static str {
        match self {
            StackProblemKind::NotCaptured => "not_captured",
            StackProblemKind::BadFrameCount => "bad_frame_count",
            StackProblemKind::DepthFallback => "depth_fallback",
            StackProblemKind::TableFull => "table_full",
            StackProblemKind::IndexFallback => "index_fallback",
        }
    }
}

/// One trace entry that could not be used as it is. One record per distinct entry (per
/// architecture), however many blocks point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackProblem {
    /// Address of the `_RTL_STACK_TRACE_ENTRY`.
    pub trace_entry: u64,
    /// The heap of the first block pointing at it.
    pub heap: u64,
    /// Header address of the first block (in walk order) pointing at it.
    pub block: u64,
    /// How many blocks point at it.
    pub block_count: u32,
    /// What was wrong.
    pub kind: StackProblemKind,
    /// The stack id the blocks got: −1, except for [`StackProblemKind::DepthFallback`].
    pub stack_id: i32,
    /// The evidence (values read, the address that is missing).
    pub detail: String,
}

/// The stacks of one dump: per-block ids and the distinct frame sequences in CSR form.
///
/// Stack `i` has frames `frames[offsets[i] .. offsets[i+1]]`, innermost (the allocator) first;
/// `depth[i]` is their number and `trace_entry[i]` the first entry (in walk order) found with them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackTable {
    /// The rows with a trace entry ([`HeapReport::traces`]), ascending.
    pub rows: Vec<u32>,
    /// The stack id of each of those rows (−1 when the entry could not be used).
    pub ids: Vec<i32>,
    /// `n_stacks + 1` offsets into `frames`.
    pub offsets: Vec<u32>,
    /// All frames, stack after stack.
    pub frames: Vec<u64>,
    /// Frames per stack.
    pub depth: Vec<u16>,
    /// The first trace entry seen for each stack.
    pub trace_entry: Vec<u64>,
    /// Number of distinct trace entries read.
    pub entries_read: usize,
    /// Entries that could not be used as they are.
    pub problems: Vec<StackProblem>,
    /// Trace entries whose frames were cut at the depth cap (`Limits::max_stack_depth`).
    pub truncated: usize,
    /// The depth cap this table was read with (0: none).
    pub max_depth: u16,
}

/// What the cache remembers per (entry address, arch).
#[derive(Clone, Copy)]
struct Seen {
    stack_id: i32,
    problem: Option<u32>,
}

impl StackTable {
    /// Number of distinct stacks.
    pub fn len(&self) -> usize {
        self.depth.len()
    }

    /// Whether there are no stacks.
    pub fn is_empty(&self) -> bool {
        self.depth.is_empty()
    }

    /// The frames of stack `id`, innermost first (empty for −1 or an unknown id).
    pub fn frames_of(&self, id: i32) -> &[u64] {
        let Ok(i) = usize::try_from(id) else { return &[] };
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.frames[a as usize..b as usize],
            _ => &[],
        }
    }

    /// The stack id of block row `row` (−1 when it has none or the row does not exist).
    pub fn stack_of_row(&self, row: usize) -> i32 {
        u32::try_from(row).ok().and_then(|r| self.rows.binary_search(&r).ok()).map_or(-1, |i| self.ids[i])
    }

    /// Every row's stack id as one column of `n` rows (−1 where none).
    pub fn stack_id_column(&self, n: usize) -> Vec<i32> {
        let mut v = vec![-1; n];
        for (&r, &id) in self.rows.iter().zip(&self.ids) {
            if let Some(x) = v.get_mut(r as usize) {
                *x = id;
            }
        }
        v
    }

    /// Every distinct frame address of the table, sorted.
    pub fn distinct_frames(&self) -> Vec<u64> {
        let mut v = self.frames.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Read the trace entry of every block of `report` that has one.
    pub fn collect(mem: &AddressSpace, report: &HeapReport) -> StackTable {
        Self::collect_with(mem, report, MAX_FRAMES)
    }

    /// [`Self::collect`], keeping at most `max_depth` frames of each stack (the innermost ones);
    /// [`Self::truncated`] counts the trace entries cut.
    pub fn collect_with(mem: &AddressSpace, report: &HeapReport, max_depth: u16) -> StackTable {
        let cols = &report.blocks;
        let mut t = StackTable { offsets: vec![0], max_depth: max_depth.max(1), ..StackTable::default() };
        let mut seen: HashMap<(u64, Arch, CountField), Seen> = HashMap::new();
        let mut by_frames: HashMap<Box<[u64]>, i32> = HashMap::new();
        let mut buf = Vec::with_capacity(usize::from(MAX_FRAMES));
        for (row, te) in report.traces.iter() {
            {
                let Some(h) = report.heap_of_row(row).map(|i| &report.heaps[i]) else { continue };
                if row >= cols.len() {
                    continue;
                }
                // Page-heap traces count their frames in `Depth`, +ust traces in `Index` (§11.1).
                let prefer = match BlockKind::from_code(cols.kind[row]) {
                    Some(BlockKind::DphBlock | BlockKind::DphNormalBlock) => CountField::Depth,
                    _ => CountField::Index,
                };
                let s = match seen.get(&(te, h.arch, prefer)) {
                    Some(s) => {
                        if let Some(p) = s.problem {
                            let p = &mut t.problems[p as usize];
                            p.block_count = p.block_count.saturating_add(1);
                        }
                        *s
                    }
                    None => {
                        let at = (h.address, cols.address[row]);
                        let s = t.read_new(mem, h.arch, te, prefer, at, &mut buf, &mut by_frames);
                        seen.insert((te, h.arch, prefer), s);
                        s
                    }
                };
                t.rows.push(row as u32);
                t.ids.push(s.stack_id);
            }
        }
        t.entries_read = seen.len();
        t
    }

    #[allow(clippy::too_many_arguments)]
    fn read_new(
        &mut self,
        mem: &AddressSpace,
        arch: Arch,
        te: u64,
        prefer: CountField,
        (heap, block): (u64, u64),
        buf: &mut Vec<u64>,
        by_frames: &mut HashMap<Box<[u64]>, i32>,
    ) -> Seen {
        let problem = |kind, stack_id, detail| StackProblem {
            trace_entry: te,
            heap,
            block,
            block_count: 1,
            kind,
            stack_id,
            detail,
        };
        let (found, note) = match read_entry(mem, arch, te, prefer, buf) {
            Err(EntryError::NotCaptured { address }) => {
                let d = format!("{arch} _RTL_STACK_TRACE_ENTRY {te:#x}: bytes at {address:#x} are not in the dump");
                return self.push_problem(problem(StackProblemKind::NotCaptured, -1, d));
            }
            Err(EntryError::BadCount { index, depth }) => {
                let d = format!(
                    "{arch} _RTL_STACK_TRACE_ENTRY {te:#x}: Index {index:#x} and Depth {depth:#x} are both outside 1..={MAX_FRAMES}"
                );
                return self.push_problem(problem(StackProblemKind::BadFrameCount, -1, d));
            }
            Ok(r) => (r, (r.field != prefer).then_some(r)),
        };
        if self.max_depth > 0 && buf.len() > usize::from(self.max_depth) {
            buf.truncate(usize::from(self.max_depth));
            self.truncated += 1;
        }
        let stack_id = match by_frames.get(buf.as_slice()) {
            Some(&id) => id,
            None => {
                let end = self.frames.len() + buf.len();
                let (Ok(end), Ok(id)) = (u32::try_from(end), i32::try_from(self.depth.len())) else {
                    let d =
                        format!("{te:#x}: {} stacks / {} frames already stored", self.depth.len(), self.frames.len());
                    return self.push_problem(problem(StackProblemKind::TableFull, -1, d));
                };
                self.frames.extend_from_slice(buf);
                self.offsets.push(end);
                self.depth.push(found.count.min(self.max_depth));
                self.trace_entry.push(te);
                by_frames.insert(buf.as_slice().into(), id);
                id
            }
        };
        match note {
            None => Seen { stack_id, problem: None },
            Some(r) if r.field == CountField::Depth => {
                let d = format!(
                    "{arch} _RTL_STACK_TRACE_ENTRY {te:#x}: Index {:#x} is outside 1..={MAX_FRAMES}; used Depth {:#x}",
                    r.index, r.depth
                );
                self.push_problem(problem(StackProblemKind::DepthFallback, stack_id, d))
            }
            Some(r) => {
                let d = format!(
                    "{arch} page-heap _RTL_STACK_TRACE_ENTRY {te:#x}: Depth {:#x} is outside 1..={MAX_FRAMES}; used Index {:#x}",
                    r.depth, r.index
                );
                self.push_problem(problem(StackProblemKind::IndexFallback, stack_id, d))
            }
        }
    }

    fn push_problem(&mut self, p: StackProblem) -> Seen {
        let stack_id = p.stack_id;
        let index = u32::try_from(self.problems.len()).ok();
        if index.is_some() {
            self.problems.push(p);
        }
        Seen { stack_id, problem: index }
    }
}

/// Per-block stack ids (aligned with `report.blocks`) and one text key per stack: its frames
/// symbolized with `symbol_path` (else `_NT_SYMBOL_PATH`, see [`Symbolizer::new`]) and joined
/// with `\n`, innermost first. The key is what identifies "the same stack" across dumps.
pub fn stack_keys(dump: &Dump, report: &HeapReport, symbol_path: Option<&str>) -> (StackTable, Vec<String>) {
    let table = StackTable::collect(dump.memory(), report);
    let sym = Symbolizer::new(dump, symbol_path);
    let keys = sym.stack_keys(&table);
    (table, keys)
}

#[cfg(test)]
mod tests;
