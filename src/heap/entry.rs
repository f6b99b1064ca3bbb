//! `_HEAP_ENTRY` decoding (§6): XOR with the heap key, checksum, size, flags, user size.
//!
//! ## Folklore: header encoding
//!
//! *Situation.* Since Vista, back-end block headers are stored XORed with a per-heap random key,
//! `_HEAP.Encoding`, when `_HEAP.EncodeFlagMask & 0x100000` is set (§6.3, \[DHU\]). The decoded
//! `SmallTagIndex` then holds a checksum: the XOR of the three bytes before it.
//!
//! *Example.* Win7 SP1 x86 heap 0x700000 of the WOW64 fixture has key `3114bf2c705f0000` at
//! heap+0x50; its first block (the heap header itself) decodes to Size 0xb1, Flags 0x01,
//! SmallTagIndex 0xb0 = 0xb1 ^ 0x00 ^ 0x01, UnusedBytes 0x01. The x64 heap 0x500000 keeps its key
//! in bytes 8..15 of the 16-byte `Encoding` (heap+0x88; bytes 0..7 are zero), and only bytes 8..15
//! of each 16-byte header are encoded: bytes 0..7 (`PreviousBlockPrivateData`) belong to the
//! previous block's data.
//!
//! *Handling.* [`EntryDecoder`] XORs the 8-byte group (x86 bytes 0..7, x64 bytes 8..15) with the 8
//! key bytes (\[MPF\]'s form; \[HST\]/\[DHU\] XOR all 16 bytes on x64, which is the same when the key's
//! first 8 bytes are zero, **UNCONFIRMED** that they always are). With encoding off, the checksum
//! is not defined and is reported as valid.

use crate::layouts::nt_heap::EntryLayout;
use crate::target::Arch;

/// A decoded `_HEAP_ENTRY` group (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedEntry {
    /// `Size` in granules, header included.
    pub size: u16,
    /// `Flags` (§6.2).
    pub flags: u8,
    /// `SmallTagIndex` (the checksum when encoded).
    pub small_tag_index: u8,
    /// `PreviousSize` in granules.
    pub previous_size: u16,
    /// `SegmentOffset` (x86 extended view: `EntryOffset`).
    pub segment_offset: u8,
    /// `UnusedBytes` (§6.4).
    pub unused_bytes: u8,
    /// Whether the checksum holds (always true when encoding is off).
    pub checksum_ok: bool,
}

/// Decodes the headers of one heap: its key (if encoding is on) and entry layout.
#[derive(Debug, Clone, Copy)]
pub struct EntryDecoder {
    layout: EntryLayout,
    key: u64,
    encoded: bool,
    /// Bit positions of the fields in the little-endian group (8 × their byte offsets), so that
    /// a decode is shifts and masks on one register.
    shifts: FieldShifts,
}

#[derive(Debug, Clone, Copy)]
struct FieldShifts {
    size: u32,
    flags: u32,
    small_tag_index: u32,
    previous_size: u32,
    segment_offset: u32,
    unused_bytes: u32,
}

impl EntryDecoder {
    /// A decoder for headers of `layout`, XORed with `key` when it is `Some`.
    pub fn new(layout: &EntryLayout, key: Option<[u8; 8]>) -> Self {
        // Byte offsets inside the 8-byte group; a u16 field needs its two bytes in the group.
        let bit = |o: u16, width: u16| u32::from(o.min(8 - width)) * 8;
        let shifts = FieldShifts {
            size: bit(layout.size, 2),
            flags: bit(layout.flags, 1),
            small_tag_index: bit(layout.small_tag_index, 1),
            previous_size: bit(layout.previous_size, 2),
            segment_offset: bit(layout.segment_offset, 1),
            unused_bytes: bit(layout.unused_bytes, 1),
        };
        EntryDecoder { layout: *layout, key: key.map_or(0, u64::from_le_bytes), encoded: key.is_some(), shifts }
    }

    /// Granule in bytes.
    #[inline]
    pub fn granularity(&self) -> u64 {
        self.layout.granularity
    }

    /// Header size in bytes.
    #[inline]
    pub fn header_size(&self) -> u64 {
        self.layout.header_size
    }

    /// Whether headers are encoded (and so checksummed).
    #[inline]
    pub fn encoded(&self) -> bool {
        self.encoded
    }

    /// Decode the header in `header`, which must hold at least [`Self::header_size`] bytes;
    /// a shorter slice decodes as all zeroes (Size 0), which every caller treats as corrupt.
    #[inline(always)]
    pub fn decode(&self, header: &[u8]) -> DecodedEntry {
        let g = usize::from(self.layout.group);
        let raw = match header.get(g..g + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => return self.decode_group(0),
        };
        self.decode_group(raw ^ self.key)
    }

    /// Decode an already-XORed 8-byte group (little-endian).
    #[inline(always)]
    pub fn decode_group(&self, group: u64) -> DecodedEntry {
        let s = &self.shifts;
        let u8_at = |shift: u32| (group >> shift) as u8;
        let u16_at = |shift: u32| (group >> shift) as u16;
        let size = u16_at(s.size);
        let flags = u8_at(s.flags);
        let small_tag_index = u8_at(s.small_tag_index);
        let checksum_ok = !self.encoded || (size as u8) ^ ((size >> 8) as u8) ^ flags == small_tag_index;
        DecodedEntry {
            size,
            flags,
            small_tag_index,
            previous_size: u16_at(s.previous_size),
            segment_offset: u8_at(s.segment_offset),
            unused_bytes: u8_at(s.unused_bytes),
            checksum_ok,
        }
    }

    /// Encode a group (the inverse of [`Self::decode_group`] plus the checksum), for tests and
    /// fixture builders in this crate.
    #[cfg(test)]
    pub(crate) fn encode(&self, size: u16, flags: u8, previous_size: u16, segment_offset: u8, unused: u8) -> [u8; 8] {
        let s = size.to_le_bytes();
        let p = previous_size.to_le_bytes();
        let check = if self.encoded { s[0] ^ s[1] ^ flags } else { 0 };
        let plain = u64::from_le_bytes([s[0], s[1], flags, check, p[0], p[1], segment_offset, unused]);
        (plain ^ self.key).to_le_bytes()
    }
}

/// Where `UnusedBytes` says "too large, stored elsewhere" (§6.4, \[SYR\]; \[DHU\] implements x64).
pub const UNUSED_BYTES_OVERFLOW: u8 = 0x3F;

/// How a busy back-end block's user size was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserSpan {
    pub(crate) user_address: u64,
    pub(crate) user_size: u64,
    pub(crate) unused: u64,
    pub(crate) stack_trace_entry: u64,
    /// The unused count exceeded the block: the user size was set to 0.
    pub(crate) bad_unused: bool,
}

/// User address and size of a busy back-end block without `+ust` (§6.4, §12.4):
/// `user_size = Size × granularity − UnusedBytes`, user data right after the header.
///
/// `overflow` supplies the real unused count when `UnusedBytes & 0x3F == 0x3F`: on x64 the
/// pointer-sized value at the end of the block's data area (the next header's
/// `PreviousBlockPrivateData`), on x86 the header's `EntryOffset` byte (\[SYR\]; the x86 form is
/// **UNCONFIRMED**, single source).
pub(crate) fn plain_user_span(
    arch: Arch,
    d: &DecodedEntry,
    header: u64,
    granularity: u64,
    header_size: u64,
    overflow: impl FnOnce() -> Option<u64>,
) -> UserSpan {
    let size = u64::from(d.size) * granularity;
    let unused = if d.unused_bytes & UNUSED_BYTES_OVERFLOW == UNUSED_BYTES_OVERFLOW {
        match arch {
            Arch::X64 => overflow(),
            Arch::X86 => Some(u64::from(d.segment_offset)),
        }
    } else {
        Some(u64::from(d.unused_bytes))
    };
    let user_address = header.wrapping_add(header_size);
    match unused {
        Some(u) if u <= size => {
            UserSpan { user_address, user_size: size - u, unused: u, stack_trace_entry: 0, bad_unused: false }
        }
        other => UserSpan {
            user_address,
            user_size: 0,
            unused: other.unwrap_or(u64::MAX),
            stack_trace_entry: 0,
            bad_unused: true,
        },
    }
}

/// Trace-pointer values that mean "no trace" (\[DHU\], §11.3).
pub(crate) fn is_no_trace(p: u64) -> bool {
    matches!(p, 0 | 0x0101_0000 | 0x0101_0000_0000_0000)
}

/// User address and size of a busy back-end block under `+ust` (§11.3), or `None` when the
/// per-block header is implausible (\[HST\]: x86 needs extra ≥ 0x18, x64 extra + 8 ≥ 0x30, and
/// extra ≤ Size × granularity), in which case the caller falls back to [`plain_user_span`].
pub(crate) fn ust_user_span(
    arch: Arch,
    size_bytes: u64,
    header: u64,
    user_data_offset: u64,
    extra: u16,
    trace: u64,
) -> Option<UserSpan> {
    let extra = u64::from(extra);
    let borrowed = match arch {
        Arch::X86 => 0,
        Arch::X64 => 8, // an x64 block may use the next header's PreviousBlockPrivateData (§6.4)
    };
    if extra + borrowed < user_data_offset || extra > size_bytes {
        return None;
    }
    Some(UserSpan {
        user_address: header.wrapping_add(user_data_offset),
        user_size: size_bytes - extra,
        unused: extra,
        stack_trace_entry: if is_no_trace(trace) { 0 } else { trace },
        bad_unused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layouts::nt_heap::NT_HEAP_LAYOUTS;

    fn entry_layout(arch: Arch) -> EntryLayout {
        crate::layouts::rows_for(NT_HEAP_LAYOUTS, arch).next().unwrap().layout.entry
    }

    #[test]
    fn decodes_the_real_win7_heap_headers() {
        // lldb-fizzbuzz_wow64.dmp: the 8 bytes at 0x700000 and the key at 0x700050 (x86), and
        // the 16 bytes at 0x500000 with the key at 0x500080..0x500090 (x64).
        let key = [0x31, 0x14, 0xbf, 0x2c, 0x70, 0x5f, 0x00, 0x00];
        let dec = EntryDecoder::new(&entry_layout(Arch::X86), Some(key));
        let raw = [0x80, 0x14, 0xbe, 0x9c, 0x70, 0x5f, 0x00, 0x01];
        let d = dec.decode(&raw);
        assert_eq!((d.size, d.flags, d.small_tag_index, d.unused_bytes), (0xb1, 1, 0xb0, 1));
        assert!(d.checksum_ok);
        assert_eq!(dec.encode(0xb1, 1, 0, 0, 1), raw);
        let mut bad = raw;
        bad[0] ^= 0x40;
        assert!(!dec.decode(&bad).checksum_ok);

        let dec = EntryDecoder::new(&entry_layout(Arch::X64), Some(key));
        let raw = [0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0x14, 0xbe, 0x85, 0x70, 0x5f, 0x00, 0x01];
        let d = dec.decode(&raw);
        assert_eq!((d.size, d.flags, d.unused_bytes), (0xa8, 1, 1));
        assert!(d.checksum_ok);
    }

    #[test]
    fn x64_decodes_bytes_8_to_15_only() {
        let key = [1, 2, 3, 4, 5, 6, 7, 8];
        let dec = EntryDecoder::new(&entry_layout(Arch::X64), Some(key));
        let mut header = [0xAAu8; 16]; // PreviousBlockPrivateData: anything
        header[8..].copy_from_slice(&dec.encode(0x86, 0x01, 0xa8, 0, 0x10));
        let d = dec.decode(&header);
        assert_eq!((d.size, d.previous_size, d.unused_bytes), (0x86, 0xa8, 0x10));
        assert!(d.checksum_ok);
        assert_eq!(dec.decode(&header[..12]).size, 0, "short header decodes as Size 0");
    }

    #[test]
    fn unencoded_headers_have_no_checksum() {
        let dec = EntryDecoder::new(&entry_layout(Arch::X86), None);
        let d = dec.decode(&[4, 0, 1, 0x77, 3, 0, 0, 8]);
        assert!(d.checksum_ok && !dec.encoded());
        assert_eq!((d.size, d.previous_size, d.small_tag_index), (4, 3, 0x77));
    }

    #[test]
    fn plain_user_size_and_overflow() {
        let d = |size, unused, seg_off| DecodedEntry {
            size,
            flags: 1,
            small_tag_index: 0,
            previous_size: 0,
            segment_offset: seg_off,
            unused_bytes: unused,
            checksum_ok: true,
        };
        // x64: 0x30-byte block for a 0x20-byte request → UnusedBytes 0x10 (§6.4 example).
        let s = plain_user_span(Arch::X64, &d(3, 0x10, 0), 0x1000, 16, 16, || None);
        assert_eq!((s.user_address, s.user_size, s.unused), (0x1010, 0x20, 0x10));
        // x64 overflow: the real count comes from the end of the data area.
        let s = plain_user_span(Arch::X64, &d(0x10, 0x3F, 0), 0x1000, 16, 16, || Some(0x80));
        assert_eq!(s.user_size, 0x100 - 0x80);
        let s = plain_user_span(Arch::X64, &d(0x10, 0x3F, 0), 0x1000, 16, 16, || None);
        assert!(s.bad_unused && s.user_size == 0);
        // x86 overflow: EntryOffset byte (UNCONFIRMED form).
        let s = plain_user_span(Arch::X86, &d(0x20, 0x3F, 0x48), 0x1000, 8, 8, || None);
        assert_eq!(s.user_size, 0x100 - 0x48);
        // Unused larger than the block.
        let s = plain_user_span(Arch::X86, &d(2, 0x30, 0), 0x1000, 8, 8, || None);
        assert!(s.bad_unused);
    }

    #[test]
    fn ust_user_span_checks_plausibility() {
        // x86: header + 0x18 user data, extra 0x20 in a 0x40-byte block → 0x20 user bytes.
        let s = ust_user_span(Arch::X86, 0x40, 0x1000, 0x18, 0x20, 0x5000).unwrap();
        assert_eq!((s.user_address, s.user_size, s.stack_trace_entry), (0x1018, 0x20, 0x5000));
        assert!(ust_user_span(Arch::X86, 0x40, 0x1000, 0x18, 0x10, 0x5000).is_none());
        assert!(ust_user_span(Arch::X86, 0x40, 0x1000, 0x18, 0x48, 0x5000).is_none());
        // x64 may borrow 8 bytes: extra 0x28 is accepted.
        let s = ust_user_span(Arch::X64, 0x60, 0x1000, 0x30, 0x28, 0x0101_0000_0000_0000).unwrap();
        assert_eq!((s.user_address, s.user_size, s.stack_trace_entry), (0x1030, 0x38, 0));
    }
}
