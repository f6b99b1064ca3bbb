//! Blocks as columns (struct of arrays), one row per block of every front end, declared once.
//!
//! The block schema is written once, in [`block_columns!`](crate::heap::columns): that one
//! declaration generates [`BlockRow`] (one row as a struct), [`BlockColumns`] (one `Vec` per
//! field), their bulk operations, and [`BLOCK_SCHEMA`] (name, dtype, doc of every column), from
//! which the Python layer builds its numpy arrays and the test suite checks the `.pyi` stubs and
//! `docs/block-model.md`. Adding a column is one line here.
//!
//! Each column is a plain `Vec` so that the Python layer can move it into a numpy array without a
//! copy. Facts that repeat over runs of rows are not stored per row: a row's heap and segment
//! follow from [`crate::heap::HeapInfo::blocks`] and [`crate::heap::HeapReport::segment_runs`],
//! and the few rows with an `_RTL_STACK_TRACE_ENTRY` are in [`Traces`]. The Python layer turns
//! them back into columns on demand (`heap`, `segment`, `stack_trace_entry`). Rows are appended in walk order: heap by heap, and within a heap segment by segment in
//! address order, then the heap's virtual blocks in list order. A container row is immediately
//! followed by its descendants (pre-order), see `docs/block-model.md`.
//! [`crate::heap::HeapInfo::blocks`] and [`crate::heap::SegmentInfo::blocks`] give each heap's
//! and segment's row range (children included).
//!
//! ## What a row is
//!
//! Every committed byte of a walked segment, from the segment's own address to its
//! `LastValidEntry`, belongs to exactly one top-level row or to one uncommitted range (UCR). The
//! block that holds the `_HEAP` / `_HEAP_SEGMENT` structure is a row of its own
//! ([`BlockKind::SegmentHeader`]): it is a real, encoded, busy `_HEAP_ENTRY` whose `Size` reaches
//! `FirstEntry`. Bytes that could not be parsed after a corruption are one [`BlockKind::Unparsed`]
//! row per gap, so the invariant survives corruption. Below the top level, the children of a
//! container and its [`BlockKind::Overhead`] rows tile the container exactly.
//!
//! ## What a user allocation is
//!
//! [`BlockKind::is_allocation`] is the one definition: a busy row of a kind that is handed to
//! the program (back-end block, virtual block, LFH block, page-heap block, segment-heap block).
//! Containers, zones, segment headers, heap-internal blocks and overhead never are. The walkers
//! store it in the `is_allocation` column; nothing else re-derives it.

use std::ops::Range;

/// What a row describes. Stored in [`BlockColumns::kind`] as its `u8` code; codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlockKind {
    /// An ordinary back-end block of a segment, busy or free.
    Backend = 0,
    /// A large block on `_HEAP.VirtualAllocdBlocks` (its own `VirtualAlloc` region, §8).
    Virtual = 1,
    /// A busy block whose user data is an LFH UserBlocks container (§9.5); its children are the
    /// container's [`BlockKind::Overhead`] and [`BlockKind::LfhBlock`] rows.
    LfhContainer = 2,
    /// The block at a segment's start that holds the `_HEAP` or `_HEAP_SEGMENT` header itself
    /// (segment heap: a page segment's header pages).
    SegmentHeader = 3,
    /// A busy block the heap manager allocated for itself: one that holds a UCR descriptor of the
    /// heap's segment lists, or the allocation `_HEAP.UCRIndex` points into.
    Internal = 4,
    /// Bytes that could not be parsed as blocks (after a bad header, or not captured); see
    /// [`BlockColumns::corruption`] for why.
    Unparsed = 5,
    /// A busy block holding an `_LFH_BLOCK_ZONE` (an array of `_HEAP_SUBSEGMENT`s, §9.2).
    LfhZone = 6,
    /// A busy block (back-end or virtual) holding the `_LFH_HEAP` itself.
    LfhHeap = 7,
    /// One block of an LFH UserBlocks container, busy or free (§9.6, §9.7).
    LfhBlock = 8,
    /// A container's own bookkeeping bytes: headers, bitmaps, padding, guard pages, slack.
    Overhead = 9,
    /// A full-page page-heap block (`_DPH_HEAP_BLOCK`, §11.4), busy or freed.
    DphBlock = 10,
    /// A busy `NormalHeap` block carrying light-page-heap data (`_DPH_BLOCK_INFORMATION`);
    /// container of one [`BlockKind::DphNormalBlock`].
    DphNormal = 11,
    /// The program's allocation inside a [`BlockKind::DphNormal`] container.
    DphNormalBlock = 12,
    /// Segment heap: a page range handed to the caller directly (§10.2).
    PageRange = 13,
    /// Segment heap: a free page range.
    FreeRange = 14,
    /// Segment heap: a VS subsegment (§10.3); container of [`BlockKind::VsBlock`] rows.
    VsSubsegment = 15,
    /// Segment heap: one VS chunk, busy or free.
    VsBlock = 16,
    /// Segment heap: an LFH subsegment (§10.4); container of [`BlockKind::SegLfhBlock`] rows.
    SegLfhSubsegment = 17,
    /// Segment heap: one LFH block, busy or free.
    SegLfhBlock = 18,
    /// Segment heap: a large allocation (§10.5).
    LargeBlock = 19,
}

impl BlockKind {
    /// Every kind, by code.
    pub const ALL: [BlockKind; 20] = [
        BlockKind::Backend,
        BlockKind::Virtual,
        BlockKind::LfhContainer,
        BlockKind::SegmentHeader,
        BlockKind::Internal,
        BlockKind::Unparsed,
        BlockKind::LfhZone,
        BlockKind::LfhHeap,
        BlockKind::LfhBlock,
        BlockKind::Overhead,
        BlockKind::DphBlock,
        BlockKind::DphNormal,
        BlockKind::DphNormalBlock,
        BlockKind::PageRange,
        BlockKind::FreeRange,
        BlockKind::VsSubsegment,
        BlockKind::VsBlock,
        BlockKind::SegLfhSubsegment,
        BlockKind::SegLfhBlock,
        BlockKind::LargeBlock,
    ];

    /// The code stored in [`BlockColumns::kind`].
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// A stable lower-case name (`backend`, `virtual`, `lfh_container`, …, as in
    /// `docs/block-model.md`).
    pub const fn name(self) -> &'static str {
        match self {
            BlockKind::Backend => "backend",
            BlockKind::Virtual => "virtual",
            BlockKind::LfhContainer => "lfh_container",
            BlockKind::SegmentHeader => "segment_header",
            BlockKind::Internal => "internal",
            BlockKind::Unparsed => "unparsed",
            BlockKind::LfhZone => "lfh_zone",
            BlockKind::LfhHeap => "lfh_heap",
            BlockKind::LfhBlock => "lfh_block",
            BlockKind::Overhead => "overhead",
            BlockKind::DphBlock => "dph_block",
            BlockKind::DphNormal => "dph_normal",
            BlockKind::DphNormalBlock => "dph_normal_block",
            BlockKind::PageRange => "page_range",
            BlockKind::FreeRange => "free_range",
            BlockKind::VsSubsegment => "vs_subsegment",
            BlockKind::VsBlock => "vs_block",
            BlockKind::SegLfhSubsegment => "seg_lfh_subsegment",
            BlockKind::SegLfhBlock => "seg_lfh_block",
            BlockKind::LargeBlock => "large_block",
        }
    }

    /// The kind with `code`, if any.
    pub fn from_code(code: u8) -> Option<BlockKind> {
        BlockKind::ALL.get(usize::from(code)).copied()
    }

    /// Whether a row of this kind, busy or not, is one thing the program asked for: the one
    /// definition of "a user allocation" (`docs/block-model.md`, table of kinds).
    pub const fn is_allocation(self, busy: bool) -> bool {
        busy && matches!(
            self,
            BlockKind::Backend
                | BlockKind::Virtual
                | BlockKind::LfhBlock
                | BlockKind::DphBlock
                | BlockKind::DphNormalBlock
                | BlockKind::PageRange
                | BlockKind::VsBlock
                | BlockKind::SegLfhBlock
                | BlockKind::LargeBlock
        )
    }

    /// Whether rows of this kind can have children.
    pub const fn is_container(self) -> bool {
        matches!(
            self,
            BlockKind::LfhContainer | BlockKind::DphNormal | BlockKind::VsSubsegment | BlockKind::SegLfhSubsegment
        )
    }
}

/// Why a container's inside was not decoded. Stored in [`BlockColumns::not_decoded`]; 0 means
/// "decoded, or not a container". Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NotDecoded {
    /// No layout for this Windows build (e.g. the Windows 8.0 LFH).
    UnsupportedBuild = 1,
    /// The front end's key could not be recovered, and no symbol gave it.
    NoKey = 2,
    /// The container's own structures fail validation.
    Corrupt = 3,
    /// The container's metadata is not in the dump.
    NotCaptured = 4,
    /// It looks like a container, but no front-end structure points at it.
    Orphan = 5,
    /// The front end's root structure (e.g. `_LFH_HEAP`) could not be read.
    FrontEndUnreadable = 6,
}

impl NotDecoded {
    /// Every reason, by code − 1.
    pub const ALL: [NotDecoded; 6] = [
        NotDecoded::UnsupportedBuild,
        NotDecoded::NoKey,
        NotDecoded::Corrupt,
        NotDecoded::NotCaptured,
        NotDecoded::Orphan,
        NotDecoded::FrontEndUnreadable,
    ];

    /// The non-zero code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// `unsupported_build`, `no_key`, `corrupt`, `not_captured`, `orphan`,
    /// `front_end_unreadable`.
    pub const fn name(self) -> &'static str {
        match self {
            NotDecoded::UnsupportedBuild => "unsupported_build",
            NotDecoded::NoKey => "no_key",
            NotDecoded::Corrupt => "corrupt",
            NotDecoded::NotCaptured => "not_captured",
            NotDecoded::Orphan => "orphan",
            NotDecoded::FrontEndUnreadable => "front_end_unreadable",
        }
    }

    /// The reason with `code` (0 has none).
    pub fn from_code(code: u8) -> Option<NotDecoded> {
        NotDecoded::ALL.iter().copied().find(|r| r.code() == code)
    }
}

/// Columns of `Dump.blocks()` that are not stored per row but derived on request: `heap` and
/// `segment` from the row runs of the walk, `stack_trace_entry` from [`Traces`].
pub const DERIVED_COLUMNS: [ColumnSpec; 3] = [
    ColumnSpec { name: "heap", dtype: "uint64", doc: "The owning heap's address." },
    ColumnSpec {
        name: "segment",
        dtype: "uint64",
        doc: "NT heap: the owning `_HEAP_SEGMENT` (the heap itself for its first segment); segment heap: the page \
              segment; 0 for rows in no segment (virtual blocks, large blocks, page-heap blocks).",
    },
    ColumnSpec {
        name: "stack_trace_entry",
        dtype: "uint64",
        doc: "The row's `_RTL_STACK_TRACE_ENTRY` (`+ust`, or page heap); 0 if none.",
    },
];

/// The `_RTL_STACK_TRACE_ENTRY` of the rows that have one (`+ust`, page heap), by row; sparse,
/// because most rows of most dumps have none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Traces {
    /// Rows with a trace, ascending.
    pub rows: Vec<u32>,
    /// Their trace entries.
    pub entries: Vec<u64>,
}

impl Traces {
    /// The trace of `row`, 0 if none.
    pub fn of(&self, row: usize) -> u64 {
        u32::try_from(row).ok().and_then(|r| self.rows.binary_search(&r).ok()).map_or(0, |i| self.entries[i])
    }

    /// Every row's trace as one column of `n` rows (0 where none).
    pub fn column(&self, n: usize) -> Vec<u64> {
        let mut v = vec![0; n];
        for (&r, &e) in self.rows.iter().zip(&self.entries) {
            if let Some(x) = v.get_mut(r as usize) {
                *x = e;
            }
        }
        v
    }

    /// Rows with a trace and their entries, in row order.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.rows.iter().map(|&r| r as usize).zip(self.entries.iter().copied())
    }

    /// Remove every trace, keeping the memory.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.entries.clear();
    }

    /// Number of rows with a trace.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no row has a trace.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One column of the schema: its name, numpy dtype and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column name, as in Python.
    pub name: &'static str,
    /// numpy dtype name (`uint64`, `int32`, `bool`, …).
    pub dtype: &'static str,
    /// What the column holds.
    pub doc: &'static str,
}

/// A whole column with its element type, for hand-off to other layers (numpy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyColumn {
    /// `uint64`.
    U64(Vec<u64>),
    /// `uint32`.
    U32(Vec<u32>),
    /// `uint8`.
    U8(Vec<u8>),
    /// `int32`.
    I32(Vec<i32>),
    /// `bool`.
    Bool(Vec<bool>),
}

/// A borrowed column with its element type (a view of a column held elsewhere, e.g. by numpy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyColumnRef<'a> {
    /// `uint64`.
    U64(&'a [u64]),
    /// `uint32`.
    U32(&'a [u32]),
    /// `uint8`.
    U8(&'a [u8]),
    /// `int32`.
    I32(&'a [i32]),
    /// `bool`.
    Bool(&'a [bool]),
}

/// The numpy dtype name and [`AnyColumn`] wrapping of a column element type.
pub trait ColumnType: Copy + Sized {
    /// numpy dtype name.
    const DTYPE: &'static str;
    /// Wrap a whole column.
    fn wrap(v: Vec<Self>) -> AnyColumn;
    /// Unwrap a borrowed column of this type.
    fn unwrap_ref(c: AnyColumnRef<'_>) -> Option<&[Self]>;
}

macro_rules! column_type {
    ($t:ty, $name:literal, $variant:ident) => {
        impl ColumnType for $t {
            const DTYPE: &'static str = $name;
            fn wrap(v: Vec<Self>) -> AnyColumn {
                AnyColumn::$variant(v)
            }
            fn unwrap_ref(c: AnyColumnRef<'_>) -> Option<&[Self]> {
                match c {
                    AnyColumnRef::$variant(s) => Some(s),
                    _ => None,
                }
            }
        }
    };
}
column_type!(u64, "uint64", U64);
column_type!(u32, "uint32", U32);
column_type!(u8, "uint8", U8);
column_type!(i32, "int32", I32);
column_type!(bool, "bool", Bool);

/// Declares the block schema: one line per column generates the [`BlockRow`] field, the
/// [`BlockColumns`] `Vec`, every bulk operation and the [`BLOCK_SCHEMA`] entry.
macro_rules! block_columns {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty ),* $(,)?) => {
        /// One row, as passed to [`BlockColumns::push`] and returned by [`BlockColumns::row`].
        /// Field meanings: [`BLOCK_SCHEMA`] and `docs/block-model.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct BlockRow {
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        /// All blocks of a walk, one `Vec` per field. All columns have the same length.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct BlockColumns {
            $( $(#[doc = $doc])+ pub $name: Vec<$ty>, )*
        }

        /// Borrowed block columns (of a [`BlockColumns`], or of arrays owned elsewhere).
        #[derive(Debug, Clone, Copy)]
        pub struct BlockRefs<'a> {
            $( $(#[doc = $doc])+ pub $name: &'a [$ty], )*
        }

        impl<'a> BlockRefs<'a> {
            /// Borrow every column by name from `get`; `None` when one is missing, has another
            /// type, or the lengths differ.
            pub fn from_columns(mut get: impl FnMut(&'static str) -> Option<AnyColumnRef<'a>>) -> Option<BlockRefs<'a>> {
                let r = BlockRefs { $( $name: <$ty as ColumnType>::unwrap_ref(get(stringify!($name))?)?, )* };
                let lens = [ $( r.$name.len(), )* ];
                lens.windows(2).all(|w| w[0] == w[1]).then_some(r)
            }

            /// Number of rows.
            pub fn len(&self) -> usize {
                self.address.len()
            }

            /// Whether there are no rows.
            pub fn is_empty(&self) -> bool {
                self.address.is_empty()
            }

            /// Row `i`, if it exists.
            pub fn row(&self, i: usize) -> Option<BlockRow> {
                (i < self.len()).then(|| BlockRow { $( $name: self.$name[i], )* })
            }
        }

        /// Every column of [`BlockColumns`], in order: name, numpy dtype, meaning.
        pub const BLOCK_SCHEMA: &[ColumnSpec] = &[
            $( ColumnSpec { name: stringify!($name), dtype: <$ty as ColumnType>::DTYPE, doc: concat!($($doc),+).trim_ascii() }, )*
        ];

        impl BlockColumns {
            /// Make room for `additional` more rows in every column.
            pub fn reserve(&mut self, additional: usize) {
                $( self.$name.reserve(additional); )*
            }

            /// Remove every row, keeping the memory (a reused buffer stays faulted in).
            pub fn clear(&mut self) {
                $( self.$name.clear(); )*
            }

            /// Append the rows of `chunk` (its parents were numbered from 0 in the chunk and get
            /// the offset added); returns the index its first row got.
            pub fn append(&mut self, chunk: &BlockColumns) -> usize {
                let offset = self.len();
                $( self.$name.extend_from_slice(&chunk.$name); )*
                let add = i32::try_from(offset).unwrap_or(i32::MAX);
                for p in &mut self.parent[offset..] {
                    if *p >= 0 {
                        *p = p.saturating_add(add);
                    }
                }
                offset
            }

            /// Append one row.
            #[inline]
            pub fn push(&mut self, r: &BlockRow) {
                $( self.$name.push(r.$name); )*
            }

            /// Row `i`, if it exists.
            pub fn row(&self, i: usize) -> Option<BlockRow> {
                (i < self.len()).then(|| BlockRow { $( $name: self.$name[i], )* })
            }

            /// Overwrite row `i` (which must exist).
            pub fn set_row(&mut self, i: usize, r: &BlockRow) {
                $( self.$name[i] = r.$name; )*
            }

            /// Borrow every column.
            pub fn refs(&self) -> BlockRefs<'_> {
                BlockRefs { $( $name: &self.$name, )* }
            }

            /// A copy of rows `r` (one memcpy per column).
            pub fn slice(&self, r: Range<usize>) -> BlockColumns {
                BlockColumns { $( $name: self.$name[r.clone()].to_vec(), )* }
            }

            /// Every column, by name, in schema order (moved, not copied).
            pub fn into_columns(self) -> Vec<(&'static str, AnyColumn)> {
                vec![ $( (stringify!($name), ColumnType::wrap(self.$name)), )* ]
            }

            /// Lengths of every column (all equal in a well-formed table).
            fn lengths(&self) -> Vec<usize> {
                vec![ $( self.$name.len(), )* ]
            }
        }
    };
}

block_columns! {
    /// Start of the row: a block's header (x64 back end: including its 8
    /// `PreviousBlockPrivateData` bytes). A virtual block's `BusyBlock` (entry + 0x18 / + 0x30),
    /// as WinDbg lists it. An unparsed row's first byte.
    address: u64,
    /// What the allocator returned; 0 when there is no user data.
    user_address: u64,
    /// Bytes of the row, header included (a virtual block's `CommitSize`, counted from its entry).
    size: u64,
    /// Bytes the program asked for; 0 when there is no user data.
    user_size: u64,
    /// Allocated (for a container: the enclosing block is busy).
    busy: bool,
    /// The `BlockKind` code (`kind_name` in the DataFrame).
    kind: u8,
    /// Decoded `_HEAP_ENTRY.Flags` where the row has such a header, else 0.
    flags: u8,
    /// `size − user_size` for rows with user data (the decoded `UnusedBytes`, its overflow value,
    /// or the `+ust` overhead); a virtual block's decoded `BusyBlock.Size`; otherwise the raw
    /// `UnusedBytes` field, or 0.
    unused_bytes: u32,
    /// 0, or the `CorruptionKind` code of a problem found with this row (`corruption_name`).
    corruption: u8,
    /// Row index of the container, −1 at top level.
    parent: i32,
    /// Nesting depth: 0 at top level, the parent's level + 1 below.
    level: u8,
    /// One thing the program asked for: a busy back-end, virtual, LFH, page-heap or segment-heap
    /// block (`BlockKind::is_allocation`). Every analysis counts exactly these rows.
    is_allocation: bool,
    /// On a container whose inside was not decoded: the `NotDecoded` code
    /// (`not_decoded_name`); 0 otherwise.
    not_decoded: u8,
}

impl BlockRow {
    /// A top-level row of `kind` with everything else zero; `is_allocation` follows `busy`.
    pub fn top(kind: BlockKind, busy: bool) -> BlockRow {
        BlockRow {
            address: 0,
            user_address: 0,
            size: 0,
            user_size: 0,
            busy,
            kind: kind.code(),
            flags: 0,
            unused_bytes: 0,
            corruption: 0,
            parent: -1,
            level: 0,
            is_allocation: kind.is_allocation(busy),
            not_decoded: 0,
        }
    }

    /// The row's kind (`Backend` for an unknown code).
    pub fn block_kind(&self) -> BlockKind {
        BlockKind::from_code(self.kind).unwrap_or(BlockKind::Backend)
    }

    /// Set `kind` and recompute `is_allocation`.
    pub fn set_kind(&mut self, kind: BlockKind) {
        self.kind = kind.code();
        self.is_allocation = kind.is_allocation(self.busy);
    }
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

    /// Whether every column has the same length.
    pub fn is_rectangular(&self) -> bool {
        self.lengths().windows(2).all(|w| w[0] == w[1])
    }

    /// The rows of `range`, as structs (for tests and small reports).
    pub fn rows(&self, range: Range<usize>) -> impl Iterator<Item = BlockRow> + '_ {
        range.filter_map(|i| self.row(i))
    }

    /// The rows `parent` heads (its descendants): `parent + 1 .. end`, where `end` is the first
    /// later row whose level is not deeper than the parent's.
    pub fn descendants(&self, parent: usize) -> Range<usize> {
        let Some(&lvl) = self.level.get(parent) else { return parent..parent };
        let start = parent + 1;
        let end = self.level[start.min(self.len())..].iter().position(|&l| l <= lvl).map_or(self.len(), |n| start + n);
        start..end
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
        assert_eq!(BlockKind::from_code(BlockKind::ALL.len() as u8), None);
        let mut names: Vec<_> = BlockKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BlockKind::ALL.len());
        for (i, r) in NotDecoded::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i + 1);
            assert_eq!(NotDecoded::from_code(r.code()), Some(*r));
        }
        assert_eq!(NotDecoded::from_code(0), None);
    }

    #[test]
    fn allocations_are_busy_rows_of_user_kinds_only() {
        let user = ["backend", "virtual", "lfh_block", "dph_block", "dph_normal_block", "page_range", "vs_block"];
        let user = [&user[..], &["seg_lfh_block", "large_block"]].concat();
        for k in BlockKind::ALL {
            assert!(!k.is_allocation(false), "{k:?}");
            assert_eq!(k.is_allocation(true), user.contains(&k.name()), "{k:?}");
            assert!(!(k.is_container() && k.is_allocation(true)), "{k:?}: a container is never an allocation");
        }
    }

    #[test]
    fn schema_lists_every_column_once() {
        let names: Vec<_> = BLOCK_SCHEMA.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), 13);
        assert!(names.contains(&"is_allocation") && names.contains(&"parent"));
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert!(BLOCK_SCHEMA.iter().all(|c| !c.doc.is_empty() && !c.doc.starts_with(' ')));
        let cols = BlockColumns::default().into_columns();
        assert_eq!(cols.iter().map(|c| c.0).collect::<Vec<_>>(), names);
    }

    #[test]
    fn push_read_back_slice_and_descendants() {
        let mut c = BlockColumns::default();
        assert!(c.is_empty());
        let mut r = BlockRow::top(BlockKind::Internal, true);
        r.address = 3;
        r.size = 5;
        c.reserve(4);
        c.push(&r);
        let mut child = BlockRow::top(BlockKind::LfhBlock, true);
        child.parent = 0;
        child.level = 1;
        for row in [child, child, BlockRow { address: 10, corruption: 3, ..r }] {
            c.push(&row);
        }
        assert_eq!(c.len(), 4);
        assert!(c.is_rectangular());
        assert_eq!(c.row(0), Some(r));
        assert_eq!(c.row(3).unwrap().corruption, 3);
        assert_eq!(c.rows(0..9).count(), 4);
        assert_eq!(c.row(4), None);
        assert_eq!(c.descendants(0), 1..3);
        assert_eq!(c.descendants(1), 2..2);
        assert_eq!(c.descendants(3), 4..4);
        assert_eq!(c.slice(1..3).len(), 2);
        assert!(!r.is_allocation && child.is_allocation);
    }
}
