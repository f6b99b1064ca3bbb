//! The process address space captured in a dump.
//!
//! A minidump stores captured memory in two streams: `MemoryListStream` (each range with its own
//! file offset; minidumps with stacks and small regions) and `Memory64ListStream` (ranges whose
//! data lies back to back from one base offset; full-memory dumps). Some writers emit both. The
//! `minidump` crate returns only one of them and fails a read that straddles two ranges, so this
//! module indexes both itself:
//!
//! * Every range is bounds-checked against the file once, when the index is built. A range whose
//!   data runs past the end of a truncated file is clipped to what the file holds (and reported
//!   by the caller), never trusted.
//! * Ranges are sorted by address; overlaps (seen in dumps that list a stack in both streams) keep
//!   the first range and clip the later one.
//! * No two ranges may share file bytes. A writer stores each range's data once, but a crafted
//!   MemoryListStream can point many descriptors at the same bytes; that would let a small file
//!   claim gigabytes of "captured" memory, and every walk bounded by captured bytes (heap
//!   segments, list-node budgets) would no longer be bounded by the file. Of ranges that share
//!   file bytes the one stored first in the file keeps them (ties: the lower address); the others
//!   are clipped and reported. So captured bytes never exceed the file size.
//! * Neighbours that are adjacent both in the address space and in the file are coalesced, so most
//!   reads of a full dump are one slice of the map, with no copy.
//! * Lookup is a binary search over range ends: O(log n) per read, and per count of the captured
//!   bytes of an interval.
//!
//! A read that spans several ranges that touch in the address space but not in the file is copied
//! into an owned buffer; one that touches a gap fails with [`Error::MemoryNotCaptured`], naming the
//! first missing byte.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::mapped::FileBytes;
use crate::target::Arch;

/// One captured range: `len` bytes of process memory at `va`, stored at `file_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapturedRange {
    /// Virtual address of the first byte.
    pub va: u64,
    /// Number of bytes.
    pub len: u64,
    /// Offset of the first byte in the dump file.
    pub file_offset: u64,
}

impl CapturedRange {
    /// One past the last address (saturating, so hostile ranges at the top of the space are safe).
    pub fn end(&self) -> u64 {
        self.va.saturating_add(self.len)
    }
}

/// Why a range was clipped while indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipReason {
    /// Its data runs past the end of the file (a truncated dump) or past the top of the address
    /// space.
    PastEnd,
    /// Its data lies in file bytes that an earlier range already holds (see the module doc).
    SharedFileBytes,
}

/// A range whose declared data does not fit the file, as found while indexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClippedRange {
    /// The range as declared by the stream (for [`ClipReason::SharedFileBytes`], as left by the
    /// address-overlap step).
    pub declared: CapturedRange,
    /// How many of its bytes were kept.
    pub kept: u64,
    /// Why it was clipped.
    pub reason: ClipReason,
}

/// The captured memory of a dump, indexed for O(log n) reads.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    bytes: Arc<FileBytes>,
    ranges: Vec<CapturedRange>,
    /// `ranges[i].end()`, kept apart so the binary search touches 8 bytes per probe, not 24.
    ends: Vec<u64>,
    /// `total[i]` = bytes of `ranges[..i]` (one more entry than `ranges`).
    total: Vec<u64>,
}

impl AddressSpace {
    /// Index `declared` ranges over `bytes`. Ranges are clipped to the file; the clipped ones are
    /// returned beside the index so that the caller can report them.
    pub fn new(bytes: Arc<FileBytes>, declared: impl IntoIterator<Item = CapturedRange>) -> (Self, Vec<ClippedRange>) {
        let file_len = bytes.len() as u64;
        let mut clipped = Vec::new();
        let mut ranges: Vec<CapturedRange> = Vec::new();
        for r in declared {
            let available = file_len.saturating_sub(r.file_offset);
            // A range may not wrap the 64-bit address space either.
            let room = u64::MAX - r.va;
            let keep = r.len.min(available).min(room);
            if keep < r.len {
                clipped.push(ClippedRange { declared: r, kept: keep, reason: ClipReason::PastEnd });
            }
            if keep > 0 {
                ranges.push(CapturedRange { len: keep, ..r });
            }
        }
        // Stable sort keeps the stream order among equal starts, so "first wins" is well defined.
        ranges.sort_by_key(|r| r.va);
        let mut disjoint: Vec<CapturedRange> = Vec::with_capacity(ranges.len());
        for mut r in ranges {
            if let Some(last) = disjoint.last() {
                let last_end = last.end();
                if r.va < last_end {
                    // Overlap: keep the earlier range's bytes, clip this one's head.
                    let skip = last_end - r.va;
                    if skip >= r.len {
                        continue;
                    }
                    r = CapturedRange { va: last_end, len: r.len - skip, file_offset: r.file_offset + skip };
                }
            }
            disjoint.push(r);
        }
        // No file byte may back two addresses: sweep in file order, clip the head of a range
        // that starts inside file bytes already taken.
        disjoint.sort_by_key(|r| (r.file_offset, r.va));
        let mut unique: Vec<CapturedRange> = Vec::with_capacity(disjoint.len());
        let mut taken_to = 0u64;
        for mut r in disjoint {
            if r.file_offset < taken_to {
                let skip = taken_to - r.file_offset;
                let kept = r.len.saturating_sub(skip);
                clipped.push(ClippedRange { declared: r, kept, reason: ClipReason::SharedFileBytes });
                if kept == 0 {
                    continue;
                }
                r = CapturedRange { va: r.va + skip, len: kept, file_offset: taken_to };
            }
            taken_to = r.file_offset + r.len;
            unique.push(r);
        }
        unique.sort_by_key(|r| r.va);
        let mut out: Vec<CapturedRange> = Vec::with_capacity(unique.len());
        for r in unique {
            if let Some(last) = out.last_mut() {
                if r.va == last.end() && r.file_offset == last.file_offset + last.len {
                    last.len += r.len;
                    continue;
                }
            }
            out.push(r);
        }
        let ends = out.iter().map(CapturedRange::end).collect();
        let mut total = Vec::with_capacity(out.len() + 1);
        total.push(0u64);
        for r in &out {
            // Cannot overflow: the ranges hold distinct bytes of one file.
            total.push(total[total.len() - 1] + r.len);
        }
        (AddressSpace { bytes, ranges: out, ends, total }, clipped)
    }

    /// The indexed ranges, sorted by address, non-overlapping, coalesced.
    pub fn ranges(&self) -> &[CapturedRange] {
        &self.ranges
    }

    /// Hint that `[start, end)` is about to be read: its captured file bytes are mapped in now
    /// (see [`FileBytes::populate`]).
    pub fn populate(&self, start: u64, end: u64) {
        let mut i = self.ends.partition_point(|&e| e <= start);
        while let Some(r) = self.ranges.get(i) {
            if r.va >= end {
                break;
            }
            let from = r.file_offset + (start.max(r.va) - r.va);
            let to = r.file_offset + (end.min(r.end()) - r.va);
            if let (Ok(from), Ok(to)) = (usize::try_from(from), usize::try_from(to)) {
                self.bytes.populate(from..to);
            }
            i += 1;
        }
    }

    /// Total captured bytes (never more than the file holds).
    pub fn captured_bytes(&self) -> u64 {
        self.total.last().copied().unwrap_or(0)
    }

    /// Index of the range containing `addr`, if any.
    fn find(&self, addr: u64) -> Option<usize> {
        let i = self.ends.partition_point(|&end| end <= addr);
        (i < self.ranges.len() && self.ranges[i].va <= addr).then_some(i)
    }

    fn slice_of(&self, r: &CapturedRange, addr: u64, len: u64) -> &[u8] {
        let start = (r.file_offset + (addr - r.va)) as usize;
        &self.bytes[start..start + len as usize]
    }

    /// The captured bytes from `addr` to the end of the contiguous range that holds it (zero-copy).
    /// Useful to scan a heap segment without a call per block.
    pub fn contiguous_at(&self, addr: u64) -> Option<&[u8]> {
        let r = &self.ranges[self.find(addr)?];
        Some(self.slice_of(r, addr, r.end() - addr))
    }

    /// The captured bytes of `start..end`, one `(address, bytes)` piece per range that holds some
    /// of them, in address order (zero-copy). O(log n) to find the first piece.
    pub fn pieces(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        let first = self.ends.partition_point(|&e| e <= start);
        self.ranges[first.min(self.ranges.len())..].iter().take_while(move |r| r.va < end).filter_map(move |r| {
            let (s, e) = (start.max(r.va), end.min(r.end()));
            (s < e).then(|| (s, self.slice_of(r, s, e - s)))
        })
    }

    /// Whether every byte of `addr..addr+len` is captured.
    pub fn is_captured(&self, addr: u64, len: u64) -> bool {
        self.first_missing(addr, len).is_none()
    }

    fn first_missing(&self, addr: u64, len: u64) -> Option<u64> {
        if len == 0 {
            return None;
        }
        let Some(end) = addr.checked_add(len) else { return Some(addr) };
        let Some(mut i) = self.find(addr) else { return Some(addr) };
        let mut covered = self.ranges[i].end();
        while covered < end {
            i += 1;
            match self.ranges.get(i) {
                Some(r) if r.va == covered => covered = r.end(),
                _ => return Some(covered),
            }
        }
        None
    }

    /// Read `len` bytes at `addr`. Borrowed from the map when one range holds them all.
    pub fn read(&self, addr: u64, len: u64) -> Result<Cow<'_, [u8]>> {
        let not_captured = |first_missing| Error::MemoryNotCaptured { address: addr, size: len, first_missing };
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        let end = addr.checked_add(len).ok_or_else(|| not_captured(addr))?;
        let i = self.find(addr).ok_or_else(|| not_captured(addr))?;
        let r = &self.ranges[i];
        if end <= r.end() {
            return Ok(Cow::Borrowed(self.slice_of(r, addr, len)));
        }
        if let Some(missing) = self.first_missing(addr, len) {
            return Err(not_captured(missing));
        }
        // Spans touching ranges; the length is bounded by captured bytes, so the allocation is
        // backed by data that exists in the file.
        let mut out = Vec::with_capacity(len as usize);
        let mut at = addr;
        for r in &self.ranges[i..] {
            let take = end.min(r.end()) - at;
            out.extend_from_slice(self.slice_of(r, at, take));
            at += take;
            if at == end {
                break;
            }
        }
        Ok(Cow::Owned(out))
    }

    /// Read exactly `N` bytes into an array.
    pub fn read_array<const N: usize>(&self, addr: u64) -> Result<[u8; N]> {
        let bytes = self.read(addr, N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// Little-endian `u8` at `addr`.
    pub fn read_u8(&self, addr: u64) -> Result<u8> {
        Ok(self.read_array::<1>(addr)?[0])
    }

    /// Little-endian `u16` at `addr`.
    pub fn read_u16(&self, addr: u64) -> Result<u16> {
        self.read_array(addr).map(u16::from_le_bytes)
    }

    /// Little-endian `u32` at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32> {
        self.read_array(addr).map(u32::from_le_bytes)
    }

    /// Little-endian `u64` at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64> {
        self.read_array(addr).map(u64::from_le_bytes)
    }

    /// A pointer of `arch`'s width at `addr`, zero-extended.
    pub fn read_ptr(&self, arch: Arch, addr: u64) -> Result<u64> {
        match arch {
            Arch::X86 => self.read_u32(addr).map(u64::from),
            Arch::X64 => self.read_u64(addr),
        }
    }

    /// How many bytes of `base..base+size` are captured. O(log n), however many ranges the
    /// interval spans (a damaged MemoryInfoList may list regions that span them all).
    pub fn captured_in(&self, base: u64, size: u64) -> u64 {
        let end = base.saturating_add(size);
        // Ranges `first..past` are the ones that intersect `base..end`.
        let first = self.ends.partition_point(|&e| e <= base);
        let past = self.ranges.partition_point(|r| r.va < end);
        if first >= past {
            return 0;
        }
        let mut n = self.total[past] - self.total[first];
        n -= base.saturating_sub(self.ranges[first].va);
        n -= self.ends[past - 1].saturating_sub(end);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(file: Vec<u8>, ranges: &[(u64, u64, u64)]) -> (AddressSpace, Vec<ClippedRange>) {
        let decl = ranges.iter().map(|&(va, len, file_offset)| CapturedRange { va, len, file_offset });
        AddressSpace::new(Arc::new(FileBytes::Owned(file)), decl)
    }

    fn file() -> Vec<u8> {
        (0..=255u8).cycle().take(0x400).collect()
    }

    #[test]
    fn reads_within_and_across_ranges() {
        // 0x1000..0x1010 at file 0x00, 0x1010..0x1020 at file 0x100 (adjacent in memory only).
        let (s, clipped) = space(file(), &[(0x1010, 0x10, 0x100), (0x1000, 0x10, 0x0)]);
        assert!(clipped.is_empty());
        assert_eq!(s.ranges().len(), 2);
        assert!(matches!(s.read(0x1004, 4).unwrap(), Cow::Borrowed(b) if b == [4, 5, 6, 7]));
        let across = s.read(0x100e, 4).unwrap();
        assert!(matches!(across, Cow::Owned(_)));
        assert_eq!(&*across, &[0x0e, 0x0f, 0x00, 0x01]);
        assert_eq!(s.read_u32(0x1000).unwrap(), 0x0302_0100);
        assert_eq!(s.read_ptr(Arch::X64, 0x1010).unwrap(), 0x0706_0504_0302_0100);
    }

    #[test]
    fn coalesces_ranges_adjacent_in_file_and_memory() {
        let (s, _) = space(file(), &[(0x1000, 0x10, 0x0), (0x1010, 0x10, 0x10)]);
        assert_eq!(s.ranges(), &[CapturedRange { va: 0x1000, len: 0x20, file_offset: 0 }]);
        assert!(matches!(s.read(0x100c, 8).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn missing_memory_names_first_missing_byte() {
        let (s, _) = space(file(), &[(0x1000, 0x10, 0x0), (0x1020, 0x10, 0x20)]);
        match s.read(0x1008, 0x10) {
            Err(Error::MemoryNotCaptured { address, size, first_missing }) => {
                assert_eq!((address, size, first_missing), (0x1008, 0x10, 0x1010));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(s.read(0xfff, 1), Err(Error::MemoryNotCaptured { first_missing: 0xfff, .. })));
        assert!(matches!(s.read(u64::MAX, 2), Err(Error::MemoryNotCaptured { .. })));
        assert_eq!(s.read(0x5000, 0).unwrap().len(), 0);
    }

    #[test]
    fn clips_ranges_past_end_of_file_and_overlaps() {
        let (s, clipped) = space(file(), &[(0x1000, 0x100, 0x380), (0x1050, 0x20, 0x0), (0x9000, 8, 0x1000)]);
        assert_eq!(clipped.len(), 2);
        assert_eq!(clipped[0].kept, 0x80);
        assert_eq!(clipped[1].kept, 0);
        // 0x1000..0x1080 from file 0x380; 0x1050.. overlaps and is dropped entirely.
        assert_eq!(s.ranges(), &[CapturedRange { va: 0x1000, len: 0x80, file_offset: 0x380 }]);
        assert_eq!(s.captured_in(0x0, 0x2000), 0x80);
        assert_eq!(s.captured_in(0x1040, 0x10), 0x10);
    }

    #[test]
    fn ranges_never_share_file_bytes() {
        // Four descriptors alias file bytes 0x100..0x200 at four addresses (a crafted
        // MemoryList); one more overlaps their tail. Only the first holder keeps each byte.
        let (s, clipped) = space(
            file(),
            &[(0x9000, 0x100, 0x100), (0x1000, 0x100, 0x100), (0x5000, 0x100, 0x100), (0x7000, 0x80, 0x180)],
        );
        assert_eq!(s.ranges(), &[CapturedRange { va: 0x1000, len: 0x100, file_offset: 0x100 }]);
        assert_eq!(s.captured_bytes(), 0x100);
        assert_eq!(clipped.len(), 3);
        assert!(clipped.iter().all(|c| c.reason == ClipReason::SharedFileBytes && c.kept == 0));
        assert!(s.read(0x9000, 1).is_err() && s.read(0x7000, 1).is_err());
        // A partial overlap keeps the range's own tail.
        let (s, clipped) = space(file(), &[(0x1000, 0x100, 0x0), (0x2000, 0x100, 0x80)]);
        assert_eq!(
            s.ranges(),
            &[
                CapturedRange { va: 0x1000, len: 0x100, file_offset: 0x0 },
                CapturedRange { va: 0x2080, len: 0x80, file_offset: 0x100 },
            ]
        );
        assert_eq!((clipped[0].kept, clipped[0].reason), (0x80, ClipReason::SharedFileBytes));
        assert_eq!(s.read_u8(0x2080).unwrap(), 0x00);
        // However many descriptors alias a file, what is captured fits in it.
        let many: Vec<(u64, u64, u64)> = (0..1000).map(|i| (0x10_0000 + i * 0x1000, 0x400, 0)).collect();
        let (s, _) = space(file(), &many);
        assert_eq!(s.captured_bytes(), 0x400);
    }

    #[test]
    fn captured_in_matches_a_byte_count() {
        let layouts: [&[(u64, u64, u64)]; 3] = [
            &[(0x1000, 0x10, 0x0), (0x1010, 0x10, 0x100), (0x1040, 0x20, 0x20), (0x2000, 0x8, 0x40)],
            &[(0x0, 0x10, 0x0), (u64::MAX - 0x10, 0x40, 0x10)],
            &[],
        ];
        for ranges in layouts {
            let (s, _) = space(file(), ranges);
            let brute = |base: u64, size: u64| {
                let end = base.saturating_add(size);
                s.ranges().iter().map(|r| end.min(r.end()).saturating_sub(base.max(r.va))).sum::<u64>()
            };
            let points = [0, 1, 0x8, 0xfff, 0x1000, 0x1008, 0x1010, 0x1018, 0x1030, 0x1050, 0x2004, 0x3000];
            for &base in points.iter().chain(&[u64::MAX - 0x20, u64::MAX]) {
                for size in [0, 1, 4, 0x10, 0x18, 0x40, 0x1000, u64::MAX] {
                    assert_eq!(s.captured_in(base, size), brute(base, size), "{ranges:x?} {base:#x}+{size:#x}");
                }
            }
        }
    }

    #[test]
    fn pieces_clip_to_the_interval() {
        let (s, _) = space(file(), &[(0x1000, 0x10, 0x0), (0x1010, 0x10, 0x100), (0x1040, 0x10, 0x20)]);
        let got: Vec<(u64, usize, u8)> = s.pieces(0x1008, 0x1044).map(|(a, b)| (a, b.len(), b[0])).collect();
        assert_eq!(got, vec![(0x1008, 8, 8), (0x1010, 0x10, 0), (0x1040, 4, 0x20)]);
        assert_eq!(s.pieces(0x1020, 0x1040).count(), 0);
        assert_eq!(s.pieces(0x1050, 0x1000).count(), 0);
    }

    #[test]
    fn contiguous_slice_runs_to_range_end() {
        let (s, _) = space(file(), &[(0x1000, 0x10, 0x0)]);
        assert_eq!(s.contiguous_at(0x100c).unwrap(), &[12, 13, 14, 15]);
        assert!(s.contiguous_at(0x1010).is_none());
    }
}
