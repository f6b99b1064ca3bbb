//! Appending rows to the block columns.
//!
//! The walkers produce rows one at a time and push each straight into the columns (one store
//! per column; a staging buffer of rows measured slower). A [`RowSink`] also knows the index the
//! next row will get, which is what a container needs to give its children as their `parent`,
//! and keeps the sparse stack-trace column beside the rows.

use super::columns::{BlockColumns, BlockRow, Traces};
use super::corruption::{Corruption, Recorder};

/// A writer of rows into one [`BlockColumns`] (and the rows' traces into [`Traces`]).
pub(crate) struct RowSink<'c> {
    cols: &'c mut BlockColumns,
    traces: &'c mut Traces,
}

impl<'c> RowSink<'c> {
    pub(crate) fn new(cols: &'c mut BlockColumns, traces: &'c mut Traces) -> Self {
        RowSink { cols, traces }
    }

    /// Append a row whose `_RTL_STACK_TRACE_ENTRY` is `trace` (0: none); returns its index.
    #[inline]
    pub(crate) fn push_traced(&mut self, row: BlockRow, trace: u64) -> usize {
        let i = self.push(row);
        if trace != 0 {
            if let Ok(r) = u32::try_from(i) {
                self.traces.rows.push(r);
                self.traces.entries.push(trace);
            }
        }
        i
    }

    /// The row index the next [`Self::push`] gets.
    #[inline]
    pub(crate) fn next_index(&self) -> usize {
        self.cols.len()
    }

    /// Append a row; returns its index.
    #[inline]
    pub(crate) fn push(&mut self, row: BlockRow) -> usize {
        let i = self.next_index();
        self.cols.push(&row);
        i
    }

    /// Change a row already pushed.
    pub(crate) fn update(&mut self, index: usize, f: impl FnOnce(&mut BlockRow)) {
        if let Some(mut r) = self.cols.row(index) {
            f(&mut r);
            self.cols.set_row(index, &r);
        }
    }

    /// Append the rows (and traces) of a walk that wrote into its own columns; returns the
    /// index its first row got.
    pub(crate) fn append(&mut self, cols: &BlockColumns, traces: &Traces) -> usize {
        let offset = self.cols.append(cols);
        for (r, e) in traces.iter() {
            if let Ok(row) = u32::try_from(r + offset) {
                self.traces.rows.push(row);
                self.traces.entries.push(e);
            }
        }
        offset
    }

    /// The columns written so far.
    pub(crate) fn columns(&self) -> &BlockColumns {
        self.cols
    }
}

/// The rows, traces and records of one piece of a heap walked on its own (see
/// `super::ordered`), and `E`, what else its walker learnt. Reused from piece to piece.
#[derive(Default)]
pub(crate) struct Chunk<E> {
    cols: BlockColumns,
    traces: Traces,
    records: Vec<Corruption>,
    record_total: usize,
    pub(crate) extra: E,
}

impl<E> Chunk<E> {
    /// Empty it (keeping its memory) and walk a piece of heap `heap` into it with `walk`.
    pub(crate) fn fill<R>(&mut self, heap: u64, walk: impl FnOnce(&mut RowSink<'_>, &mut Recorder<'_>) -> R) -> R {
        self.cols.clear();
        self.traces.clear();
        self.records.clear();
        let mut rec = Recorder::new(heap, &mut self.records);
        let out = walk(&mut RowSink::new(&mut self.cols, &mut self.traces), &mut rec);
        self.record_total = rec.total;
        out
    }

    /// Append its rows to `sink` and its records to `rec`; returns the index its first row got.
    pub(crate) fn append_to(&mut self, sink: &mut RowSink<'_>, rec: &mut Recorder<'_>) -> usize {
        let offset = sink.append(&self.cols, &self.traces);
        rec.replay(&mut self.records, self.record_total);
        offset
    }
}

/// A container row already pushed: where it is, what it is, and the bytes its children tile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    /// Its row index.
    pub(crate) index: usize,
    /// The row as pushed.
    pub(crate) row: BlockRow,
    /// `[start, end)` that its children and overhead rows tile.
    pub(crate) extent: (u64, u64),
}

impl Placed {
    /// A child row of `kind` covering `[address, address + size)`, with level + 1 and the
    /// container as parent; not busy (overhead is bookkeeping; the caller sets a block's own
    /// state).
    pub(crate) fn child(&self, kind: super::columns::BlockKind, address: u64, size: u64) -> BlockRow {
        let mut r = BlockRow::top(kind, false);
        r.address = address;
        r.size = size;
        r.parent = i32::try_from(self.index).unwrap_or(i32::MAX);
        r.level = self.row.level.saturating_add(1);
        r
    }
}
