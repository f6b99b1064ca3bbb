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
//! * Neighbours that are adjacent both in the address space and in the file are coalesced, so most
//!   reads of a full dump are one slice of the map, with no copy.
//! * Lookup is a binary search over range ends: O(log n) per read.
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

/// A range whose declared data does not fit the file, as found while indexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClippedRange {
    /// The range as declared by the stream.
    pub declared: CapturedRange,
    /// How many of its bytes the file actually holds.
    pub kept: u64,
}

/// The captured memory of a dump, indexed for O(log n) reads.
#[derive(Debug, Clone)]
pub struct AddressSpace {
    bytes: Arc<FileBytes>,
    ranges: Vec<CapturedRange>,
    /// `ranges[i].end()`, kept apart so the binary search touches 8 bytes per probe, not 24.
    ends: Vec<u64>,
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
                clipped.push(ClippedRange { declared: r, kept: keep });
            }
            if keep > 0 {
                ranges.push(CapturedRange { len: keep, ..r });
            }
        }
        // Stable sort keeps the stream order among equal starts, so "first wins" is well defined.
        ranges.sort_by_key(|r| r.va);
        let mut out: Vec<CapturedRange> = Vec::with_capacity(ranges.len());
        for mut r in ranges {
            if let Some(last) = out.last_mut() {
                let last_end = last.end();
                if r.va < last_end {
                    // Overlap: keep the earlier range's bytes, clip this one's head.
                    let skip = last_end - r.va;
                    if skip >= r.len {
                        continue;
                    }
                    r = CapturedRange { va: last_end, len: r.len - skip, file_offset: r.file_offset + skip };
                }
                if r.va == last.end() && r.file_offset == last.file_offset + last.len {
                    last.len += r.len;
                    continue;
                }
            }
            out.push(r);
        }
        let ends = out.iter().map(CapturedRange::end).collect();
        (AddressSpace { bytes, ranges: out, ends }, clipped)
    }

    /// The indexed ranges, sorted by address, non-overlapping, coalesced.
    pub fn ranges(&self) -> &[CapturedRange] {
        &self.ranges
    }

    /// Total captured bytes.
    pub fn captured_bytes(&self) -> u64 {
        self.ranges.iter().map(|r| r.len).sum()
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

    /// How many bytes of `base..base+size` are captured. O(log n + ranges in the interval).
    pub fn captured_in(&self, base: u64, size: u64) -> u64 {
        let end = base.saturating_add(size);
        let mut i = self.ends.partition_point(|&end| end <= base);
        let mut total = 0;
        while let Some(r) = self.ranges.get(i) {
            if r.va >= end {
                break;
            }
            total += end.min(r.end()) - base.max(r.va);
            i += 1;
        }
        total
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
    fn contiguous_slice_runs_to_range_end() {
        let (s, _) = space(file(), &[(0x1000, 0x10, 0x0)]);
        assert_eq!(s.contiguous_at(0x100c).unwrap(), &[12, 13, 14, 15]);
        assert!(s.contiguous_at(0x1010).is_none());
    }
}
