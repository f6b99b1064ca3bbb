//! Corruption found while walking, recorded as data: the walk goes on wherever it can.
//!
//! A record names the heap, the address where the problem was seen, a [`CorruptionKind`] and a
//! human-readable detail with the evidence (the values read, what was expected). Rows of
//! [`crate::heap::BlockColumns`] that are affected carry the kind's code in `corrupt`.

use std::fmt;

/// What went wrong. The `u8` code is stable (it is stored in [`crate::heap::BlockColumns::corruption`],
/// where 0 means "no problem").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A `_HEAP_ENTRY` whose decoded `SmallTagIndex` is not `b0 ^ b1 ^ b2` (§6.3).
    BadChecksum = 1,
    /// Memory the walk needed is not in the dump.
    NotCaptured = 2,
    /// A `LIST_ENTRY` list comes back to a node it already visited without reaching its head.
    ListLoop = 3,
    /// A list link that is null, misaligned, wraps, or whose neighbour does not point back.
    BadLink = 4,
    /// A `_HEAP_ENTRY` with `Size` 0 (the walk cannot advance).
    ZeroSize = 5,
    /// A block, segment or range that runs outside the segment (or overlaps one already walked).
    OutOfSegment = 6,
    /// A signature that does not match (`_HEAP.Signature`, `SegmentSignature`, unknown heap type).
    BadSignature = 7,
    /// A block whose `PreviousSize` differs from the previous block's `Size`.
    BadPreviousSize = 8,
    /// A busy block whose unused-byte count exceeds its size.
    BadUnusedBytes = 9,
    /// An uncommitted-range descriptor outside its segment or overlapping another one.
    BadUcr = 10,
    /// A `_HEAP_VIRTUAL_ALLOC_ENTRY` with impossible sizes.
    BadVirtualBlock = 11,
    /// A list longer than the walker's bound.
    ListTooLong = 12,
    /// No `_HEAP` layout row validates against this heap (§12.9).
    NoLayout = 13,
    /// Two header fields that should agree do not (e.g. UCR totals vs. the segment header).
    Inconsistent = 14,
    /// An LFH UserBlocks container whose header, offsets or placement fail validation (§9.5,
    /// §9.6), or whose offsets decode only with another key (mis-keyed).
    BadLfhContainer = 15,
    /// An LFH block whose `SubSegmentCode` does not decode to its container (§9.7 E2).
    BadLfhBlock = 16,
}

impl CorruptionKind {
    /// Every kind, in code order.
    pub const ALL: [CorruptionKind; 16] = [
        CorruptionKind::BadChecksum,
        CorruptionKind::NotCaptured,
        CorruptionKind::ListLoop,
        CorruptionKind::BadLink,
        CorruptionKind::ZeroSize,
        CorruptionKind::OutOfSegment,
        CorruptionKind::BadSignature,
        CorruptionKind::BadPreviousSize,
        CorruptionKind::BadUnusedBytes,
        CorruptionKind::BadUcr,
        CorruptionKind::BadVirtualBlock,
        CorruptionKind::ListTooLong,
        CorruptionKind::NoLayout,
        CorruptionKind::Inconsistent,
        CorruptionKind::BadLfhContainer,
        CorruptionKind::BadLfhBlock,
    ];

    /// The non-zero code stored in [`crate::heap::BlockColumns::corruption`].
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The kind's name as spelled in the enum (`BadChecksum`, ...), stable for logs and Python.
    pub const fn name(self) -> &'static str {
        match self {
            CorruptionKind::BadChecksum => "BadChecksum",
            CorruptionKind::NotCaptured => "NotCaptured",
            CorruptionKind::ListLoop => "ListLoop",
            CorruptionKind::BadLink => "BadLink",
            CorruptionKind::ZeroSize => "ZeroSize",
            CorruptionKind::OutOfSegment => "OutOfSegment",
            CorruptionKind::BadSignature => "BadSignature",
            CorruptionKind::BadPreviousSize => "BadPreviousSize",
            CorruptionKind::BadUnusedBytes => "BadUnusedBytes",
            CorruptionKind::BadUcr => "BadUcr",
            CorruptionKind::BadVirtualBlock => "BadVirtualBlock",
            CorruptionKind::ListTooLong => "ListTooLong",
            CorruptionKind::NoLayout => "NoLayout",
            CorruptionKind::Inconsistent => "Inconsistent",
            CorruptionKind::BadLfhContainer => "BadLfhContainer",
            CorruptionKind::BadLfhBlock => "BadLfhBlock",
        }
    }

    /// The kind with `code`, if any (0 is "no corruption" and has no kind).
    pub fn from_code(code: u8) -> Option<CorruptionKind> {
        CorruptionKind::ALL.iter().copied().find(|k| k.code() == code)
    }
}

impl fmt::Display for CorruptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found while walking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The heap being walked (0 for problems with the process's heap list itself).
    pub heap: u64,
    /// Where the problem was seen.
    pub address: u64,
    /// What kind of problem.
    pub kind: CorruptionKind,
    /// The evidence, in words.
    pub detail: String,
}

impl Corruption {
    /// A record.
    pub fn new(heap: u64, address: u64, kind: CorruptionKind, detail: impl Into<String>) -> Self {
        Corruption { heap, address, kind, detail: detail.into() }
    }
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap {:#x} at {:#x}: {}: {}", self.heap, self.address, self.kind, self.detail)
    }
}

/// Upper bound on records kept per heap; the rest are counted, not stored, so that a heap of
/// garbage cannot make the report larger than the walk.
pub const MAX_RECORDS_PER_HEAP: usize = 10_000;

/// Collects one heap's records under [`MAX_RECORDS_PER_HEAP`].
#[derive(Debug)]
pub(crate) struct Recorder<'a> {
    pub(crate) heap: u64,
    out: &'a mut Vec<Corruption>,
    kept: usize,
    pub(crate) total: usize,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(heap: u64, out: &'a mut Vec<Corruption>) -> Self {
        Recorder { heap, out, kept: 0, total: 0 }
    }

    /// Take over the records of a part of this heap walked with its own recorder: `kept` are
    /// the records it stored, `total` how many it saw.
    pub(crate) fn replay(&mut self, kept: &mut Vec<Corruption>, total: usize) {
        let seen = kept.len();
        for c in kept.drain(..) {
            self.record(c.address, c.kind, c.detail);
        }
        self.total += total.saturating_sub(seen);
    }

    pub(crate) fn record(&mut self, address: u64, kind: CorruptionKind, detail: impl Into<String>) {
        self.total += 1;
        if self.kept < MAX_RECORDS_PER_HEAP {
            self.kept += 1;
            self.out.push(Corruption::new(self.heap, address, kind, detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_nonzero_unique_and_round_trip() {
        for (i, k) in CorruptionKind::ALL.iter().enumerate() {
            assert_eq!(usize::from(k.code()), i + 1);
            assert_eq!(CorruptionKind::from_code(k.code()), Some(*k));
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(CorruptionKind::from_code(0), None);
    }

    #[test]
    fn recorder_caps_records_but_counts_all() {
        let mut v = Vec::new();
        let mut r = Recorder::new(0x10, &mut v);
        for i in 0..(MAX_RECORDS_PER_HEAP as u64 + 5) {
            r.record(i, CorruptionKind::ZeroSize, "x");
        }
        assert_eq!(r.total, MAX_RECORDS_PER_HEAP + 5);
        assert_eq!(v.len(), MAX_RECORDS_PER_HEAP);
        assert_eq!(v[3].to_string(), "heap 0x10 at 0x3: ZeroSize: x");
    }
}
