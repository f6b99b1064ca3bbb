//! Reading one `_RTL_STACK_TRACE_ENTRY` (§11.1).
//!
//! The structure has had the same shape from Windows 7 to Windows 11 on each architecture
//! (\[R2W\] Win7 x86 and Win10 x64, \[NTK\], \[NTD\] excerpts), so its offsets are two constants keyed
//! by [`Arch`] rather than a per-build table in [`crate::layouts`].
//!
//! ## Folklore: the frame count lives in the field named `Index`
//!
//! *Situation.* The entry has two u16 fields after the `TraceCount`/`BlockDepth` bitfield and
//! `IndexHigh`: `Index` (x86 +0x08, x64 +0x0c) and `Depth` (x86 +0x0a, x64 +0x0e). For traces
//! reached from `+ust` heap blocks, both \[HST\] and \[DHU\] take the number of frames from `Index`;
//! for page-heap (`hpa`) traces they use `Depth`. Why the count is stored in the field named
//! `Index` is **UNCONFIRMED** (§11.1, §13); two independent tools that read real `+ust` dumps
//! agree, and the name says nothing about what ntdll actually stores there.
//!
//! *Example.* An x64 entry at 0x21f_4000_0000 whose bytes +0x0c..+0x10 are `07 00 07 00` has 7
//! frames at +0x10..+0x48. One whose +0x0c holds `05 00` and +0x0e holds `09 00` has 5 frames
//! according to both tools, not 9.
//!
//! *Handling.* We read the count from `Index` and accept 1..=32 ([`MAX_FRAMES`], the size of
//! `BackTrace`; \[DHU\] requires `0 < depth < 32`, we also accept a full 32-frame trace, which the
//! array can hold). When `Index` is out of range but `Depth` is in range we use `Depth` and record
//! [`super::StackProblemKind::DepthFallback`] beside the stack: such an entry is either damaged in
//! its `Index` field or written by the path that fills `Depth` (the page-heap form), and showing
//! its frames flagged is more useful than dropping them. When both are out of range the entry is
//! rejected ([`super::StackProblemKind::BadFrameCount`]).

use crate::memory::AddressSpace;
use crate::target::Arch;

/// Number of `BackTrace` slots in `_RTL_STACK_TRACE_ENTRY` (§11.1: `BackTrace[32]`).
pub const MAX_FRAMES: u16 = 32;

/// Offsets of the `_RTL_STACK_TRACE_ENTRY` fields read here (§11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntryLayout {
    /// `Index` (u16): the frame count of `+ust` traces (see the module doc).
    pub index: u64,
    /// `Depth` (u16): the frame count of page-heap traces.
    pub depth: u64,
    /// `BackTrace[32]` (pointers).
    pub back_trace: u64,
    /// `sizeof(_RTL_STACK_TRACE_ENTRY)`.
    pub size: u64,
}

impl TraceEntryLayout {
    /// The layout for `arch` (§11.1 table).
    pub const fn of(arch: Arch) -> TraceEntryLayout {
        match arch {
            Arch::X86 => TraceEntryLayout { index: 0x08, depth: 0x0a, back_trace: 0x0c, size: 0x8c },
            Arch::X64 => TraceEntryLayout { index: 0x0c, depth: 0x0e, back_trace: 0x10, size: 0x110 },
        }
    }
}

/// Which field holds (or held) the frame count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountField {
    /// `Index`, as \[HST\] and \[DHU\] read `+ust` traces.
    Index,
    /// `Depth`, as they read page-heap traces.
    Depth,
}

/// Why an entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryError {
    /// The count fields or the frames are not in the dump.
    NotCaptured {
        /// Where the failed read started (the count fields or `BackTrace`).
        address: u64,
    },
    /// Neither `Index` nor `Depth` is in 1..=32.
    BadCount {
        /// The `Index` value.
        index: u16,
        /// The `Depth` value.
        depth: u16,
    },
}

/// A successfully read entry: `frames` holds its return addresses, innermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRead {
    /// Number of frames written into the caller's buffer.
    pub count: u16,
    /// Where the count came from.
    pub field: CountField,
    /// The `Index` value read.
    pub index: u16,
    /// The `Depth` value read.
    pub depth: u16,
}

fn valid(count: u16) -> bool {
    (1..=MAX_FRAMES).contains(&count)
}

/// Read the entry at `entry` (of `arch`'s layout) into `frames` (cleared first), taking the frame
/// count from `prefer` when it is in range, else from the other field. Reads only the count
/// fields and `count` pointers, never the whole structure: database entries are allocated with
/// room for their own frames only, so the tail of a short entry may lie past the end of its
/// captured range.
pub fn read_entry(
    mem: &AddressSpace,
    arch: Arch,
    entry: u64,
    prefer: CountField,
    frames: &mut Vec<u64>,
) -> Result<EntryRead, EntryError> {
    frames.clear();
    let l = TraceEntryLayout::of(arch);
    let at = |o: u64| entry.checked_add(o);
    let counts_at = at(l.index).ok_or(EntryError::NotCaptured { address: entry })?;
    let counts = mem.read_array::<4>(counts_at).map_err(|_| EntryError::NotCaptured { address: counts_at })?;
    let index = u16::from_le_bytes([counts[0], counts[1]]);
    let depth = u16::from_le_bytes([counts[2], counts[3]]);
    let (first, second) = match prefer {
        CountField::Index => ((index, CountField::Index), (depth, CountField::Depth)),
        CountField::Depth => ((depth, CountField::Depth), (index, CountField::Index)),
    };
    let (count, field) = if valid(first.0) {
        first
    } else if valid(second.0) {
        second
    } else {
        return Err(EntryError::BadCount { index, depth });
    };
    let ptr = arch.ptr_size();
    let frames_at = at(l.back_trace).ok_or(EntryError::NotCaptured { address: entry })?;
    let bytes =
        mem.read(frames_at, u64::from(count) * ptr).map_err(|_| EntryError::NotCaptured { address: frames_at })?;
    frames.extend(arch.ptrs(&bytes));
    Ok(EntryRead { count, field, index, depth })
}
