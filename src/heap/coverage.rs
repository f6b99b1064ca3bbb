//! What a heap report does not cover, and why: the gaps every view states.
//!
//! A view that prints "0 bytes" for a dump without heap memory, or a blank `!heap -s` for a
//! process without a Windows heap, answers a question it could not answer. Each gap below is a
//! [`Warning`] row with a stable tag (`what`), how many structures and bytes it affects, and a
//! sentence saying what the user can do. The tags are listed in docs/coverage.md.
//!
//! Two levels, so that cheap views stay cheap:
//! - **survey** gaps come from headers, lists and the dump's memory map alone, and are in the
//!   report of a [`super::WalkDepth::Headers`] survey: heaps whose header is not captured
//!   (`not_captured:heap_header`), committed segment ranges and virtual blocks the dump lacks
//!   (`not_captured:segment_range`), heaps that were not walked
//!   (`not_walked:<reason>`), a process with no Windows heap at all (`no_heap_listed`,
//!   `no_nt_heap`), lists cut at a cap (`truncated:list_length`) and heaps skipped for the row cap
//!   (`truncated:max_rows`);
//! - **walk** gaps need the blocks: containers whose inside was not decoded
//!   (`not_decoded:<reason>`), stretches of a segment that could not be parsed into blocks
//!   (`unparsed:<corruption kind>`), and corruption records beyond the stored cap
//!   (`truncated:corruption_records`).
//!
//! Counts and bytes are per tag: one missing page may appear both as a committed range not
//! captured (survey) and as an unparsed stretch (walk), so the bytes of different tags are not
//! to be added up.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::columns::{BlockKind, NotDecoded};
use super::corruption::{CorruptionKind, MAX_RECORDS_PER_HEAP};
use super::{HeapInfo, HeapKind, HeapReport, HeapStatus};
use crate::dump::{DumpInfo, Region};
use crate::layouts::nt_heap::{HEAP_SEGMENT_SIGNATURE, SEGMENT_HEAP_SIGNATURE};
use crate::memory::AddressSpace;

/// What to do about memory the dump did not capture.
pub const FULL_DUMP_ADVICE: &str = "take a full-memory dump (e.g. `procdump -ma`, or WinDbg `.dump /ma`)";

const MEM_COMMIT: u32 = 0x1000;

/// Whether a gap concerns the whole dump or one heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The dump (its container, or the process's heap list as a whole).
    Dump,
    /// One heap (`Warning::heap`).
    Heap,
}

impl Scope {
    /// `dump` or `heap`.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Dump => "dump",
            Scope::Heap => "heap",
        }
    }
}

/// Something a view should tell the user: part of the answer is missing, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The dump as a whole, or one heap.
    pub scope: Scope,
    /// The heap (0 for a dump-scope row).
    pub heap: u64,
    /// A stable tag, e.g. `not_captured:heap_header` or `not_decoded:no_key` (docs/coverage.md).
    pub what: String,
    /// How many structures are affected.
    pub count: u64,
    /// How many bytes are affected (0 when unknown).
    pub bytes: u64,
    /// The sentence to print.
    pub message: String,
}

impl Warning {
    fn heap(heap: u64, what: impl Into<String>, count: u64, bytes: u64, message: String) -> Warning {
        Warning { scope: Scope::Heap, heap, what: what.into(), count, bytes, message }
    }

    fn dump(what: impl Into<String>, count: u64, bytes: u64, message: String) -> Warning {
        Warning { scope: Scope::Dump, heap: 0, what: what.into(), count, bytes, message }
    }
}

/// What one PEB says about its heaps (for the gaps of a process without a Windows heap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PebHeaps {
    /// The 32-bit PEB of a WOW64 process.
    pub wow64_32bit: bool,
    /// `NumberOfHeaps`.
    pub number_of_heaps: u32,
    /// `ProcessHeap`.
    pub process_heap: u64,
}

/// The dump-scope rows of the container: problems met opening the file (`Dump.warnings`).
pub fn container_gaps(info: &DumpInfo) -> Vec<Warning> {
    info.warnings
        .iter()
        .map(|w| {
            let what = if w.starts_with("memory range") { "container:memory_range" } else { "container:stream" };
            Warning::dump(what, 1, 0, w.clone())
        })
        .collect()
}

/// The survey gaps of `report` (see the module doc); `regions` is the MemoryInfoList, when the
/// dump has one, for the size of heaps whose header is missing.
pub fn survey_gaps(report: &HeapReport, mem: &AddressSpace, regions: Option<&[Region]>) -> Vec<Warning> {
    let mut out = Vec::new();
    no_heap(report, &mut out);
    headers_not_captured(report, mem, regions, &mut out);
    for h in &report.heaps {
        not_walked(h, &mut out);
        memory_not_captured(h, mem, &mut out);
    }
    lists_cut(report, &mut out);
    if report.rows_capped > 0 {
        out.push(Warning::dump(
            "truncated:max_rows",
            report.rows_capped,
            0,
            format!(
                "{} heaps were not walked: the walk reached its cap of {} rows (Limits.max_rows)",
                report.rows_capped, report.max_rows
            ),
        ));
    }
    out
}

/// Signature words of the listed heaps that are not Windows heaps, as text.
fn found_instead(report: &HeapReport) -> String {
    let mut s = String::new();
    for (i, h) in report.heaps.iter().filter(|h| h.kind == HeapKind::Unknown).take(4).enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = match h.signature_word {
            Some(w) => write!(s, "{:#x} holds {w:#010x}", h.address),
            None => write!(s, "{:#x} is not captured", h.address),
        };
    }
    s
}

/// `no_heap_listed` / `no_nt_heap`: nothing in the process is a Windows heap ntheap can walk.
fn no_heap(report: &HeapReport, out: &mut Vec<Warning>) {
    if report.heaps.is_empty() {
        let pebs: Vec<String> = report
            .pebs
            .iter()
            .map(|p| {
                format!(
                    "{}PEB: NumberOfHeaps {}, ProcessHeap {:#x}",
                    if p.wow64_32bit { "32-bit " } else { "" },
                    p.number_of_heaps,
                    p.process_heap
                )
            })
            .collect();
        out.push(Warning::dump(
            "no_heap_listed",
            0,
            0,
            format!("the process lists no heap ({}): there is nothing to walk", pebs.join("; ")),
        ));
        return;
    }
    let usable = report.heaps.iter().any(|h| h.kind != HeapKind::Unknown);
    let captured = report.heaps.iter().any(|h| h.signature_word.is_some());
    if usable || !captured {
        return; // a Windows heap exists, or nothing was captured (`not_captured:heap_header` says so)
    }
    let listed_empty = report.pebs.iter().any(|p| p.number_of_heaps == 0 && p.process_heap != 0);
    let how = if listed_empty {
        "PEB.ProcessHeaps is empty (NumberOfHeaps 0) and its ProcessHeap".to_string()
    } else {
        format!("none of the {} heaps the PEB lists is one:", report.heaps.len())
    };
    out.push(Warning::dump(
        "no_nt_heap",
        report.heaps.len() as u64,
        0,
        format!(
            "no Windows heap found: {how} {} at +0x10 (x64) / +0x08 (x86), neither an NT heap's \
             {HEAP_SEGMENT_SIGNATURE:#010x} nor a segment heap's {SEGMENT_HEAP_SIGNATURE:#010x}: the process \
             does not use the Windows heap manager (e.g. a Wine process), so no block can be reported",
            found_instead(report)
        ),
    ));
}

/// Committed bytes of the allocation that starts at `base`, per the MemoryInfoList, not captured.
fn uncaptured_allocation(base: u64, mem: &AddressSpace, regions: &[Region]) -> u64 {
    regions
        .iter()
        .filter(|r| r.allocation_base == base && r.state == MEM_COMMIT)
        .map(|r| r.size.saturating_sub(mem.captured_in(r.base, r.size)))
        .fold(0u64, u64::saturating_add)
}

/// `not_captured:heap_header`: one dump-scope row for every heap whose first bytes are missing.
fn headers_not_captured(report: &HeapReport, mem: &AddressSpace, regions: Option<&[Region]>, out: &mut Vec<Warning>) {
    let missing: Vec<&HeapInfo> = report.heaps.iter().filter(|h| h.status == HeapStatus::HeaderNotCaptured).collect();
    if missing.is_empty() {
        return;
    }
    let n = report.heaps.len();
    let bytes = regions.map_or(0, |r| {
        missing.iter().map(|h| uncaptured_allocation(h.address, mem, r)).fold(0u64, u64::saturating_add)
    });
    let mut list: Vec<String> = missing.iter().take(5).map(|h| format!("{:#x}", h.address)).collect();
    if missing.len() > 5 {
        list.push("...".into());
    }
    let size = match regions {
        Some(_) if bytes > 0 => format!("; {bytes} committed bytes of their first segments are missing"),
        Some(_) => String::new(),
        None => "; no MemoryInfoList to size them".to_string(),
    };
    out.push(Warning::dump(
        "not_captured:heap_header",
        missing.len() as u64,
        bytes,
        format!(
            "{} of {n} heaps' headers are in the dump (not captured: {}{size}): the dump was written without \
             heap memory; {FULL_DUMP_ADVICE}",
            n - missing.len(),
            list.join(", ")
        ),
    ));
}

/// `not_walked:<reason>` for a listed heap whose header is there but which was not walked.
fn not_walked(h: &HeapInfo, out: &mut Vec<Warning>) {
    let (tag, why) = match (h.status, h.kind) {
        (HeapStatus::NotWalked, HeapKind::Unknown) => (
            "not_walked:unknown_signature",
            format!(
                "it holds {:#010x} where an NT heap has {HEAP_SEGMENT_SIGNATURE:#010x} and a segment heap \
                 {SEGMENT_HEAP_SIGNATURE:#010x}: not a Windows heap",
                h.signature_word.unwrap_or(0)
            ),
        ),
        (HeapStatus::NotWalked, HeapKind::Segment) => (
            "not_walked:segment_heap_layout",
            format!("segment heap: {}", h.not_walked.as_deref().unwrap_or("no known layout")),
        ),
        (HeapStatus::NotWalked, HeapKind::Page) => {
            ("not_walked:page_heap_root", "page heap whose _DPH_HEAP_ROOT is not usable".to_string())
        }
        (HeapStatus::NoLayout, _) => {
            ("not_walked:no_layout", "no _HEAP layout validates on it (see Dump.corruption())".to_string())
        }
        _ => return,
    };
    out.push(Warning::heap(h.address, tag, 1, 0, format!("heap {:#x} was not walked: {why}", h.address)));
}

/// The committed ranges of a walked NT segment: `[address, LastValidEntry)` less its UCRs.
fn committed_ranges(s: &super::SegmentInfo) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(s.ucrs.len() + 1);
    let mut cur = s.address;
    for u in &s.ucrs {
        if u.address > cur {
            out.push((cur, u.address));
        }
        cur = cur.max(u.address.saturating_add(u.size));
    }
    if cur < s.last_valid_entry {
        out.push((cur, s.last_valid_entry));
    }
    out
}

/// `not_captured:segment_range` for a walked NT heap. (A virtual block whose pages are missing
/// still has its size in its header, so its allocation is counted: that is no gap.)
fn memory_not_captured(h: &HeapInfo, mem: &AddressSpace, out: &mut Vec<Warning>) {
    if h.status != HeapStatus::Walked || h.kind != HeapKind::Nt {
        return;
    }
    let (mut ranges, mut bytes) = (0u64, 0u64);
    for s in h.segments.iter().filter(|s| s.walked) {
        for (a, b) in committed_ranges(s) {
            let missing = (b - a).saturating_sub(mem.captured_in(a, b - a));
            if missing > 0 {
                ranges += 1;
                bytes = bytes.saturating_add(missing);
            }
        }
    }
    if ranges > 0 {
        out.push(Warning::heap(
            h.address,
            "not_captured:segment_range",
            ranges,
            bytes,
            format!(
                "{bytes} committed bytes in {} of heap {:#x} are not in the dump: the blocks there are not \
                 counted; {FULL_DUMP_ADVICE}",
                plural(ranges, "segment range"),
                h.address
            ),
        ));
    }
}

/// `truncated:list_length`: lists cut at `Limits.max_list_nodes` or at the node budget.
fn lists_cut(report: &HeapReport, out: &mut Vec<Warning>) {
    let mut per_heap: BTreeMap<u64, u64> = BTreeMap::new();
    for c in report.corruption.iter().filter(|c| c.kind == CorruptionKind::ListTooLong) {
        *per_heap.entry(c.heap).or_default() += 1;
    }
    for (heap, n) in per_heap {
        let message = format!(
            "{} of {} were cut short (more nodes than Limits.max_list_nodes or the walk's node budget): \
             what lies past the cut is not reported (see Dump.corruption())",
            plural(n, "list"),
            if heap == 0 { "the process".to_string() } else { format!("heap {heap:#x}") }
        );
        let scope = if heap == 0 { Scope::Dump } else { Scope::Heap };
        out.push(Warning { scope, heap, what: "truncated:list_length".into(), count: n, bytes: 0, message });
    }
}

/// `truncated:stack_depth`: stacks cut at `Limits.max_stack_depth` (dump scope).
pub fn stack_gaps(stacks: &crate::stacks::StackTable, max_depth: u16) -> Vec<Warning> {
    if stacks.truncated == 0 {
        return Vec::new();
    }
    vec![Warning::dump(
        "truncated:stack_depth",
        stacks.truncated as u64,
        0,
        format!(
            "{} allocation stacks are deeper than Limits.max_stack_depth ({max_depth} frames): their outer frames are \
             dropped, and stacks that differ only there are counted as one",
            stacks.truncated
        ),
    )]
}

/// `truncated:symbol_file`: PDBs not read for their size (`notes` from
/// [`crate::symbols::Symbolizer::pdbs_over_cap`]).
pub fn symbol_gaps(notes: &[String]) -> Vec<Warning> {
    notes
        .iter()
        .map(|n| {
            let message = format!("a matching PDB was not read, frames are named from exports instead: {n}");
            Warning::dump("truncated:symbol_file", 1, 0, message)
        })
        .collect()
}

/// The walk gaps of `report` (its blocks must be in `report.blocks`).
pub fn walk_gaps(report: &HeapReport) -> Vec<Warning> {
    let mut out = not_decoded(report);
    let b = &report.blocks;
    let unparsed = BlockKind::Unparsed.code();
    for h in &report.heaps {
        let mut groups: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
        for i in h.blocks.start.min(b.len())..h.blocks.end.min(b.len()) {
            if b.kind[i] == unparsed {
                let g = groups.entry(b.corruption[i]).or_default();
                g.0 += 1;
                g.1 = g.1.saturating_add(b.size[i]);
            }
        }
        for (code, (count, bytes)) in groups {
            let kind = CorruptionKind::from_code(code);
            let name = kind.map_or("unknown", |k| k.name());
            let why = match kind {
                Some(CorruptionKind::NotCaptured) => format!("their pages are not in the dump; {FULL_DUMP_ADVICE}"),
                _ => format!("a block header there failed its checks ({name}; see Dump.corruption())"),
            };
            out.push(Warning::heap(
                h.address,
                format!("unparsed:{}", tag_of(name)),
                count,
                bytes,
                format!(
                    "{bytes} bytes in {} of heap {:#x} could not be parsed into blocks: {why}",
                    plural(count, "stretch"),
                    h.address
                ),
            ));
        }
        if h.corruption_count > MAX_RECORDS_PER_HEAP {
            let extra = (h.corruption_count - MAX_RECORDS_PER_HEAP) as u64;
            out.push(Warning::heap(
                h.address,
                "truncated:corruption_records",
                extra,
                0,
                format!(
                    "heap {:#x} has {} corruption records; the first {MAX_RECORDS_PER_HEAP} are kept",
                    h.address, h.corruption_count
                ),
            ));
        }
    }
    out
}

/// `1 range`, `2 ranges`, `3 stretches`.
fn plural(n: u64, word: &str) -> String {
    match (n, word.ends_with("ch")) {
        (1, _) => format!("1 {word}"),
        (_, true) => format!("{n} {word}es"),
        _ => format!("{n} {word}s"),
    }
}

/// `BadChecksum` → `bad_checksum`.
fn tag_of(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

fn container_label(kind: BlockKind, n: u64) -> String {
    let s = match kind {
        BlockKind::LfhContainer => "LFH container",
        BlockKind::DphNormal => "light page-heap block",
        BlockKind::VsSubsegment => "VS subsegment",
        BlockKind::SegLfhSubsegment => "segment-heap LFH subsegment",
        _ => "container",
    };
    if n == 1 {
        s.to_string()
    } else {
        format!("{s}s")
    }
}

/// Why a container of `heap` was not decoded, in words.
fn why_not_decoded(heap: &HeapInfo, reason: NotDecoded) -> String {
    let lfh_detail = heap.lfh.as_ref().filter(|l| l.not_decoded == Some(reason)).map(|l| l.detail.clone());
    match reason {
        NotDecoded::UnsupportedBuild => {
            lfh_detail.unwrap_or_else(|| "no front-end layout for this Windows build".into())
        }
        NotDecoded::NoKey => lfh_detail.unwrap_or_else(|| "the front end's key could not be recovered".into()),
        NotDecoded::Corrupt => "their front-end structures fail validation (see Dump.corruption())".into(),
        NotDecoded::NotCaptured => "their front-end metadata is not in the dump".into(),
        NotDecoded::Orphan => "busy HEAP_ENTRY_VIRTUAL_ALLOC blocks that no LFH subsegment points at".into(),
        NotDecoded::FrontEndUnreadable => {
            lfh_detail.unwrap_or_else(|| "the front end's root structure is unreadable".into())
        }
    }
}

/// `not_decoded:<reason>`: containers whose blocks could not be attributed, by heap, container
/// kind and reason (bytes are the containers' own sizes).
fn not_decoded(report: &HeapReport) -> Vec<Warning> {
    let b = &report.blocks;
    let mut out = Vec::new();
    for h in &report.heaps {
        let mut groups: BTreeMap<(u8, u8), (u64, u64)> = BTreeMap::new();
        for i in h.blocks.start.min(b.len())..h.blocks.end.min(b.len()) {
            if b.not_decoded[i] != 0 {
                let g = groups.entry((b.kind[i], b.not_decoded[i])).or_default();
                g.0 += 1;
                g.1 = g.1.saturating_add(b.size[i]);
            }
        }
        for ((kind, reason), (count, bytes)) in groups {
            let (Some(kind), Some(reason)) = (BlockKind::from_code(kind), NotDecoded::from_code(reason)) else {
                continue;
            };
            out.push(Warning::heap(
                h.address,
                format!("not_decoded:{}", reason.name()),
                count,
                bytes,
                format!(
                    "{bytes} bytes in {count} {} of heap {:#x} could not be attributed: {}",
                    container_label(kind, count),
                    h.address,
                    why_not_decoded(h, reason)
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_snake_case() {
        assert_eq!(tag_of("BadChecksum"), "bad_checksum");
        assert_eq!(tag_of("NotCaptured"), "not_captured");
    }
}
