//! What a block without a C++ type holds, judged by its first bytes (leak-triage.md §3), and a
//! short printable preview of any bytes.
//!
//! `E` is the first `min(user_size, 0x100)` bytes of the user data. A named block (§1.4) is
//! `object`; for the others the first rule that matches gives the class, in this order: `zero`,
//! `ascii`, `utf16`, `pointer_array`, `other` (§3 spells each out; [`classify`] follows it line
//! by line). A block whose `E` is not wholly captured cannot be judged and is `not_captured`.

use crate::dump::Region;
use crate::heap::{BlockRefs, HeapReport};
use crate::limits::Cancel;
use crate::memory::AddressSpace;
use crate::target::Arch;

/// How many leading bytes of a block are judged (§3).
pub const PREFIX: u64 = 0x100;

/// The content class of an allocation. Stored as its `u8` code; codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Content {
    /// Not an allocation (containers, free blocks, bookkeeping).
    None = 0,
    /// Named by RTTI (§1.4).
    Object = 1,
    /// Printable text (§3 rule 2).
    Ascii = 2,
    /// Latin-1 text in UTF-16LE (§3 rule 3).
    Utf16 = 3,
    /// Only NULLs and addresses of committed memory, two or more of them non-zero (§3 rule 4).
    PointerArray = 4,
    /// Every byte of `E` is 0 (§3 rule 1).
    Zero = 5,
    /// Anything else (§3 rule 5).
    Other = 6,
    /// `E` is not wholly in the dump, so no rule can be applied.
    NotCaptured = 7,
}

impl Content {
    /// Every class, by code.
    pub const ALL: [Content; 8] = [
        Content::None,
        Content::Object,
        Content::Ascii,
        Content::Utf16,
        Content::PointerArray,
        Content::Zero,
        Content::Other,
        Content::NotCaptured,
    ];

    /// The stable code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// `none`, `object`, `ascii`, `utf16`, `pointer_array`, `zero`, `other`, `not_captured`.
    pub const fn name(self) -> &'static str {
        match self {
            Content::None => "none",
            Content::Object => "object",
            Content::Ascii => "ascii",
            Content::Utf16 => "utf16",
            Content::PointerArray => "pointer_array",
            Content::Zero => "zero",
            Content::Other => "other",
            Content::NotCaptured => "not_captured",
        }
    }
}

/// The committed regions of MemoryInfoList (`MEM_COMMIT`), merged and sorted, for §3 rule 4.
#[derive(Debug, Clone, Default)]
pub struct Committed {
    starts: Vec<u64>,
    ends: Vec<u64>,
}

impl Committed {
    /// The `MEM_COMMIT` (0x1000) regions of `regions` (none when the dump has no MemoryInfoList).
    pub fn new(regions: Option<&[Region]>) -> Self {
        let mut spans: Vec<(u64, u64)> = regions
            .unwrap_or(&[])
            .iter()
            .filter(|r| r.state == 0x1000 && r.size > 0)
            .map(|r| (r.base, r.base.saturating_add(r.size)))
            .collect();
        spans.sort_unstable();
        let mut out = Committed::default();
        for (s, e) in spans {
            match out.ends.last_mut() {
                Some(last) if s <= *last => *last = (*last).max(e),
                _ => {
                    out.starts.push(s);
                    out.ends.push(e);
                }
            }
        }
        out
    }

    /// Whether `addr` lies in a committed region.
    pub fn contains(&self, addr: u64) -> bool {
        let i = self.starts.partition_point(|&s| s <= addr);
        i > 0 && addr < self.ends[i - 1]
    }
}

fn text_byte(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) || matches!(b, 0x09 | 0x0a | 0x0d)
}

/// §3 rule 2 on `e`: the bytes before the first NUL are at least 4 and all printable.
pub fn is_ascii(e: &[u8]) -> bool {
    // One pass that stops at the first byte that is neither text nor the terminator.
    for (n, &b) in e.iter().enumerate() {
        if b == 0 {
            return n >= 4;
        }
        if !text_byte(b) {
            return false;
        }
    }
    e.len() >= 4
}

/// §3 rule 3 on `e`: the UTF-16LE units before the first 0x0000 are at least 4, each < 0x100
/// with its low byte printable or in 0xa0–0xff.
pub fn is_utf16(e: &[u8]) -> bool {
    let mut n = 0;
    for c in e.chunks_exact(2) {
        let u = u16::from_le_bytes([c[0], c[1]]);
        if u == 0 {
            break;
        }
        if !(u < 0x100 && (text_byte(u as u8) || u >= 0xa0)) {
            return false;
        }
        n += 1;
    }
    n >= 4
}

/// §3 rule 4 on `e`: at least two whole words, each 0 or committed, at least two non-zero.
pub fn is_pointer_array(e: &[u8], arch: Arch, committed: &Committed) -> bool {
    let words = e.len() / arch.ptr_size() as usize;
    if words < 2 {
        return false;
    }
    let mut non_zero = 0;
    for w in arch.ptrs(e) {
        if w != 0 {
            if !committed.contains(w) {
                return false;
            }
            non_zero += 1;
        }
    }
    non_zero >= 2
}

/// The class of a block that RTTI did not name, from its first bytes `e` (§3, rules 1–5).
pub fn classify(e: &[u8], arch: Arch, committed: &Committed) -> Content {
    if e.iter().all(|&b| b == 0) {
        Content::Zero
    } else if is_ascii(e) {
        Content::Ascii
    } else if is_utf16(e) {
        Content::Utf16
    } else if is_pointer_array(e, arch, committed) {
        Content::PointerArray
    } else {
        Content::Other
    }
}

/// The class of the allocation at `user` (`size` bytes) in a heap of `arch`, `named` when RTTI
/// named it.
pub fn classify_block(
    mem: &AddressSpace,
    committed: &Committed,
    user: u64,
    size: u64,
    arch: Arch,
    named: bool,
) -> Content {
    if named {
        return Content::Object;
    }
    match mem.read(user, size.min(PREFIX)) {
        Ok(e) => classify(&e, arch, committed),
        Err(_) => Content::NotCaptured,
    }
}

/// The content code of every row of `report` (block columns `b`; [`Content::None`] for rows
/// that are not allocations); `type_id` is the type pass's column (≥ 0: named).
pub fn classify_blocks(
    mem: &AddressSpace,
    committed: &Committed,
    report: &HeapReport,
    b: &BlockRefs<'_>,
    type_id: &[i32],
) -> Vec<u8> {
    classify_blocks_until(mem, committed, report, b, type_id, &Cancel::new())
}

/// [`classify_blocks`], skipping the chunks of 64 Ki rows not yet started once `cancel` is set
/// (the caller then discards the column).
pub fn classify_blocks_until(
    mem: &AddressSpace,
    committed: &Committed,
    report: &HeapReport,
    b: &BlockRefs<'_>,
    type_id: &[i32],
    cancel: &Cancel,
) -> Vec<u8> {
    use rayon::prelude::*;

    let mut arch_of = vec![Arch::X64; b.len()];
    for h in &report.heaps {
        let r = h.blocks.start.min(b.len())..h.blocks.end.min(b.len());
        arch_of[r].fill(h.arch);
    }
    let mut out = vec![Content::None.code(); b.len()];
    out.par_chunks_mut(1 << 16).enumerate().for_each(|(c, chunk)| {
        if cancel.is_set() {
            return;
        }
        for (i, slot) in chunk.iter_mut().enumerate() {
            let row = (c << 16) + i;
            if b.is_allocation[row] {
                let named = type_id.get(row).is_some_and(|&t| t >= 0);
                *slot =
                    classify_block(mem, committed, b.user_address[row], b.user_size[row], arch_of[row], named).code();
            }
        }
    });
    out
}

/// A short printable rendering of `bytes`: the text in quotes when they start with text (§3's
/// `ascii` or `utf16` rule; `u"…"` for UTF-16), else space-separated hex bytes.
///
/// ```
/// use ntheap::triage::content::preview;
/// assert_eq!(preview(b"hello\0junk"), "\"hello\"");
/// assert_eq!(preview(&[1, 2, 0xff]), "01 02 ff");
/// ```
pub fn preview(bytes: &[u8]) -> String {
    if is_ascii(bytes) {
        let t = bytes.iter().position(|&b| b == 0).map_or(bytes, |n| &bytes[..n]);
        return format!("\"{}\"", t.iter().map(|&b| escape(b)).collect::<String>());
    }
    if is_utf16(bytes) {
        let s: String = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .map(|u| match u as u8 {
                b if b < 0x80 => escape(b),
                b => char::from(b).to_string(),
            })
            .collect();
        return format!("u\"{s}\"");
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn escape(b: u8) -> String {
    match b {
        b'\n' => "\\n".into(),
        b'\r' => "\\r".into(),
        b'\t' => "\\t".into(),
        b'"' => "\\\"".into(),
        b'\\' => "\\\\".into(),
        _ => char::from(b).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Committed {
        let r = |base, size, state| Region {
            base,
            size,
            state,
            kind: 0x20000,
            protect: 4,
            allocation_base: base,
            allocation_protect: 4,
        };
        Committed::new(Some(&[r(0x1000, 0x1000, 0x1000), r(0x2000, 0x1000, 0x1000), r(0x9000, 0x1000, 0x2000)]))
    }

    // Each case restates a line of leak-triage.md §3.
    #[test]
    fn rules_apply_in_order() {
        let c = committed();
        let cls = |e: &[u8]| classify(e, Arch::X64, &c);
        assert_eq!(cls(&[0; 16]), Content::Zero);
        assert_eq!(cls(&[]), Content::Zero, "every byte of an empty E is 0");
        assert_eq!(cls(b"abcd"), Content::Ascii, "four printable bytes, no terminator");
        assert_eq!(cls(b"ab\tc\0\x01\x02"), Content::Ascii, "text before the first NUL");
        assert_eq!(cls(b"abc\0defg"), Content::Other, "three bytes are not a text start");
        assert_eq!(cls(b"a\0b\0c\0d\0\0\0"), Content::Utf16);
        assert_eq!(cls(b"a\0\xe9\0c\0d\0"), Content::Utf16, "Latin-1 in UTF-16");
        assert_eq!(cls(b"a\0\x01\0c\0d\0"), Content::Other, "a control character is not text");
        assert_eq!(cls(b"a\0\x00\x30c\0d\0"), Content::Other, "U+3000 is outside Latin-1");
        let words = |ws: &[u64]| ws.iter().flat_map(|w| w.to_le_bytes()).collect::<Vec<u8>>();
        assert_eq!(cls(&words(&[0x1010, 0, 0x2ff8])), Content::PointerArray);
        assert_eq!(cls(&words(&[0x1010, 0])), Content::Other, "one non-zero word");
        assert_eq!(cls(&words(&[0x1010, 0x9010])), Content::Other, "reserved, not committed");
        assert_eq!(cls(&words(&[0x1010, 0x3000])), Content::Other, "one past a committed region");
        assert_eq!(classify(&[0x10, 0x10, 0, 0, 0x10, 0x20, 0, 0], Arch::X86, &c), Content::PointerArray);
    }

    #[test]
    fn previews_text_or_hex() {
        assert_eq!(preview(b"a\0b\0c\0d\0"), "u\"abcd\"");
        assert_eq!(preview(b"say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(preview(b""), "");
    }
}
