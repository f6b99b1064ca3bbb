//! Blocks as columns (struct of arrays), one row per heap block, filled as the walk goes.
//!
//! Each column is a plain `Vec` so that the Python layer can move it into a numpy array without a
//! copy. Rows are appended in walk order: heap by heap, and within a heap segment by segment in
//! address order, then the heap's virtual blocks in list order. [`crate::heap::HeapInfo::blocks`]
//! and [`crate::heap::SegmentInfo::blocks`] give each heap's and segment's row range.
//!
//! ## What a row is
//!
//! Every committed byte of a walked segment, from the segment's own address to its
//! `LastValidEntry`, belongs to exactly one row or to one uncommitted range (UCR). The block that
//! holds the `_HEAP` / `_HEAP_SEGMENT` structure is a row of its own ([`BlockKind::SegmentHeader`]):
//! it is a real, encoded, busy `_HEAP_ENTRY` whose `Size` reaches `FirstEntry` (UnusedBytes 1 in
//! the Win7 fixture). WinDbg's `!heap -a` lists a segment's entries from `FirstEntry` and so
//! leaves it out (not checked against a transcript here); we keep it, with no user data, so that
//! the coverage invariant holds from the segment base. Bytes that could not be parsed after a
//! corruption are one [`BlockKind::Unparsed`] row per gap, so the invariant survives corruption.
//! Virtual blocks are outside segments and not part of the invariant.

use std::ops::Range;

/// What a row describes. Stored in [`BlockColumns::kind`] as its `u8` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlockKind {
    /// An ordinary back-end block of a segment, busy or free.
    Backend = 0,
    /// A large block on `_HEAP.VirtualAllocdBlocks` (its own `VirtualAlloc` region, §8).
    Virtual = 1,
    /// A busy segment block with `HEAP_ENTRY_VIRTUAL_ALLOC` (0x08): an LFH UserBlocks container
    /// (§6.2, §12.3.6). The LFH blocks inside are not walked (yet).
    LfhContainer = 2,
    /// The block at a segment's start that holds the `_HEAP` or `_HEAP_SEGMENT` header itself.
    SegmentHeader = 3,
    /// A busy block the heap manager allocated for itself: one that holds a UCR descriptor of the
    /// heap's segment lists, or the allocation `_HEAP.UCRIndex` points into.
    Internal = 4,
    /// Bytes that could not be parsed as blocks (after a bad header, or not captured); see
    /// [`BlockColumns::corrupt`] for why.
    Unparsed = 5,
}

impl BlockKind {
    /// Every kind, by code.
    pub const ALL: [BlockKind; 6] = [
        BlockKind::Backend,
        BlockKind::Virtual,
        BlockKind::LfhContainer,
        BlockKind::SegmentHeader,
        BlockKind::Internal,
        BlockKind::Unparsed,
    ];

    /// The code stored in [`BlockColumns::kind`].
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// A stable lower-case name: `backend`, `virtual`, `lfh_container`, `segment_header`,
    /// `internal`, `unparsed`.
    pub const fn name(self) -> &'static str {
        match self {
            BlockKind::Backend => "backend",
            BlockKind::Virtual => "virtual",
            BlockKind::LfhContainer => "lfh_container",
            BlockKind::SegmentHeader => "segment_header",
            BlockKind::Internal => "internal",
            BlockKind::Unparsed => "unparsed",
        }
    }

    /// The kind with `code`, if any.
    pub fn from_code(code: u8) -> Option<BlockKind> {
        BlockKind::ALL.get(usize::from(code)).copied()
    }
}

/// One row, as passed to [`BlockColumns::push`] and returned by [`BlockColumns::row`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRow {
    /// Address of the owning `_HEAP`.
    pub heap: u64,
    /// Address of the owning `_HEAP_SEGMENT` (the heap itself for its first segment); 0 for
    /// virtual blocks.
    pub segment: u64,
    /// Address of the block's `_HEAP_ENTRY` (x64: including its 8 `PreviousBlockPrivateData`
    /// bytes). For a virtual block, its `BusyBlock` (`_HEAP_VIRTUAL_ALLOC_ENTRY` + 0x18 / + 0x30),
    /// as WinDbg lists it; the entry itself is in [`crate::heap::VirtualBlockInfo::address`].
    /// For an unparsed row, the first byte not parsed.
    pub address: u64,
    /// Address of the user data; 0 when there is none (free, segment-header and unparsed rows).
    pub user_address: u64,
    /// Block size in bytes, header included (`Size × granularity`); for a virtual block its
    /// `CommitSize` (counted from the `_HEAP_VIRTUAL_ALLOC_ENTRY`); for an unparsed row the bytes
    /// skipped.
    pub size: u64,
    /// Bytes the user asked for; 0 when there is no user data.
    pub user_size: u64,
    /// Allocated (`HEAP_ENTRY_BUSY`).
    pub busy: bool,
    /// [`BlockKind`] code.
    pub kind: u8,
    /// Decoded `_HEAP_ENTRY.Flags` (for a virtual block: of its `BusyBlock`).
    pub flags: u8,
    /// The unused-byte count: for busy blocks with user data, `size − user_size` (the decoded
    /// `UnusedBytes`, its 0x3F overflow value, or the `+ust` overhead); for a virtual block the
    /// decoded `BusyBlock.Size`; otherwise the raw decoded `UnusedBytes` field (1 on a
    /// segment-header block, 3 on the block before an uncommitted range per \[HST\]); 0 for unparsed.
    pub unused_bytes: u32,
    /// 0, or the [`crate::heap::CorruptionKind`] code of a problem found with this row.
    pub corrupt: u8,
    /// Address of the block's `_RTL_STACK_TRACE_ENTRY` under `+ust`; 0 if none.
    pub stack_trace_entry: u64,
}

/// All blocks of a walk, one `Vec` per field. All columns have the same length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockColumns {
    /// See [`BlockRow::heap`].
    pub heap: Vec<u64>,
    /// See [`BlockRow::segment`].
    pub segment: Vec<u64>,
    /// See [`BlockRow::address`].
    pub address: Vec<u64>,
    /// See [`BlockRow::user_address`].
    pub user_address: Vec<u64>,
    /// See [`BlockRow::size`].
    pub size: Vec<u64>,
    /// See [`BlockRow::user_size`].
    pub user_size: Vec<u64>,
    /// See [`BlockRow::busy`].
    pub busy: Vec<bool>,
    /// See [`BlockRow::kind`] and [`BlockKind`].
    pub kind: Vec<u8>,
    /// See [`BlockRow::flags`].
    pub flags: Vec<u8>,
    /// See [`BlockRow::unused_bytes`].
    pub unused_bytes: Vec<u32>,
    /// See [`BlockRow::corrupt`].
    pub corrupt: Vec<u8>,
    /// See [`BlockRow::stack_trace_entry`].
    pub stack_trace_entry: Vec<u64>,
}

impl BlockColumns {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.address.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.address.is_empty()
    }

    /// Make room for `additional` more rows in every column.
    pub fn reserve(&mut self, additional: usize) {
        self.heap.reserve(additional);
        self.segment.reserve(additional);
        self.address.reserve(additional);
        self.user_address.reserve(additional);
        self.size.reserve(additional);
        self.user_size.reserve(additional);
        self.busy.reserve(additional);
        self.kind.reserve(additional);
        self.flags.reserve(additional);
        self.unused_bytes.reserve(additional);
        self.corrupt.reserve(additional);
        self.stack_trace_entry.reserve(additional);
    }

    /// Append one row.
    #[inline]
    pub fn push(&mut self, r: &BlockRow) {
        self.heap.push(r.heap);
        self.segment.push(r.segment);
        self.address.push(r.address);
        self.user_address.push(r.user_address);
        self.size.push(r.size);
        self.user_size.push(r.user_size);
        self.busy.push(r.busy);
        self.kind.push(r.kind);
        self.flags.push(r.flags);
        self.unused_bytes.push(r.unused_bytes);
        self.corrupt.push(r.corrupt);
        self.stack_trace_entry.push(r.stack_trace_entry);
    }

    /// Append rows in bulk: one reserve and one tight loop per column (the walker buffers rows
    /// and flushes them here; much cheaper than 12 `Vec::push` calls per row).
    pub fn extend_rows(&mut self, rows: &[BlockRow]) {
        self.heap.extend(rows.iter().map(|r| r.heap));
        self.segment.extend(rows.iter().map(|r| r.segment));
        self.address.extend(rows.iter().map(|r| r.address));
        self.user_address.extend(rows.iter().map(|r| r.user_address));
        self.size.extend(rows.iter().map(|r| r.size));
        self.user_size.extend(rows.iter().map(|r| r.user_size));
        self.busy.extend(rows.iter().map(|r| r.busy));
        self.kind.extend(rows.iter().map(|r| r.kind));
        self.flags.extend(rows.iter().map(|r| r.flags));
        self.unused_bytes.extend(rows.iter().map(|r| r.unused_bytes));
        self.corrupt.extend(rows.iter().map(|r| r.corrupt));
        self.stack_trace_entry.extend(rows.iter().map(|r| r.stack_trace_entry));
    }

    /// Row `i`, if it exists.
    pub fn row(&self, i: usize) -> Option<BlockRow> {
        (i < self.len()).then(|| BlockRow {
            heap: self.heap[i],
            segment: self.segment[i],
            address: self.address[i],
            user_address: self.user_address[i],
            size: self.size[i],
            user_size: self.user_size[i],
            busy: self.busy[i],
            kind: self.kind[i],
            flags: self.flags[i],
            unused_bytes: self.unused_bytes[i],
            corrupt: self.corrupt[i],
            stack_trace_entry: self.stack_trace_entry[i],
        })
    }

    /// The rows of `range`, as structs (for tests and small reports).
    pub fn rows(&self, range: Range<usize>) -> impl Iterator<Item = BlockRow> + '_ {
        range.filter_map(|i| self.row(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_have_unique_names() {
        for (i, k) in BlockKind::ALL.iter().enumerate() {
            assert_eq!(usize::from(k.code()), i);
            assert_eq!(BlockKind::from_code(k.code()), Some(*k));
        }
        assert_eq!(BlockKind::from_code(6), None);
        let mut names: Vec<_> = BlockKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BlockKind::ALL.len());
    }

    #[test]
    fn push_and_read_back() {
        let mut c = BlockColumns::default();
        assert!(c.is_empty());
        let r = BlockRow {
            heap: 1,
            segment: 2,
            address: 3,
            user_address: 4,
            size: 5,
            user_size: 6,
            busy: true,
            kind: BlockKind::Internal.code(),
            flags: 7,
            unused_bytes: 8,
            corrupt: 0,
            stack_trace_entry: 9,
        };
        c.reserve(2);
        c.push(&r);
        c.extend_rows(&[BlockRow { address: 10, corrupt: 3, ..r }]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.row(0), Some(r));
        assert_eq!(c.row(1).unwrap().corrupt, 3);
        assert_eq!(c.rows(0..5).count(), 2);
        assert_eq!(c.row(2), None);
    }
}
