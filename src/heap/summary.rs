//! The numbers of WinDbg's `!heap -s`, per heap, and a table in its format.
//!
//! ## What the columns mean
//!
//! WinDbg's documentation of `!heap -s` only says it prints "summary information". The meaning
//! below is reconstructed from two public transcripts (Win7-era; a `!heap -s` table of 17 heaps in
//! a Stack Overflow question on "External fragmentation and virtual address fragmentation in
//! windbg", and a single-heap `!heap -s <heap>` listing quoted in a question on `!heap -stat`
//! totals), whose single-heap form labels each number:
//!
//! | column | single-heap label | computed here as |
//! |---|---|---|
//! | Heap | | heap address |
//! | Flags | `Flags` | `_HEAP.Flags` |
//! | Reserv (k) | "Reserved memory in segments" | Σ segments `NumberOfPages × 0x1000` / 1024 |
//! | Commit (k) | "Commited memory in segments" | Σ segments `(NumberOfPages − NumberOfUnCommittedPages) × 0x1000` / 1024 |
//! | Virt (k) | "Virtual bytes (correction for large UCR)" | Reserv − `_HEAP.Counters.TotalMemoryLargeUCR` (**UNCONFIRMED**) |
//! | Free (k) | "Free space … (N blocks)" | `_HEAP.TotalFreeSize` × granularity / 1024 (the walk's Σ of free back-end blocks when the header is unreadable) |
//! | List length | the same N ("free blocks") | number of free back-end blocks (needs the block walk: `?` until then) |
//! | UCR | "uncommited ranges" | number of UCR descriptors on the segments' lists |
//! | Virt blocks | "Virtual blocks N - total K KBytes" | number of `VirtualAllocdBlocks` entries |
//! | Lock cont. | "Lock contention" | `ContentionCount` of the heap lock's critical-section debug info |
//! | Fast heap | | `LFH` when `FrontEndHeapType` = 2 (`LAL` for 1; blank for 0) |
//!
//! Every column but "List length" comes from headers, counters and short lists, so the table can
//! be printed from a survey ([`super::WalkDepth::Headers`]) at a cost independent of the number of
//! blocks. `TotalFreeSize` is the heap's own running total of its free blocks; on the captured
//! Win7 heaps and every builder heap it equals the walk's Σ (a test checks it), and both are kept
//! ([`HeapSummary::header_free_bytes`], [`HeapSummary::free_bytes`]).
//!
//! So **virtual blocks are not part of Reserv/Commit** (the labels say "in segments"; their count
//! is a column of its own and their size appears only in the single-heap listing).
//!
//! The fragmentation lines follow from the transcripts' numbers (both transcripts agree, to the
//! truncated percent): "External fragmentation P % (N free blocks)" with
//! P = Free × 100 / Commit, and "Virtual address fragmentation Q % (M uncommited ranges)" with
//! Q = (Virt − Commit) × 100 / Virt. The table prints them under a heap's row only for some heaps
//! (in the 17-heap transcript, for a heap with 93 % / 84 % and 118 MB committed, but not for
//! heaps with ~50 % and < 1 MB committed). The exact threshold is not documented: we print them
//! when Commit ≥ [`FRAGMENTATION_MIN_COMMIT`] and either percentage ≥ [`FRAGMENTATION_MIN_PCT`]
//! (**UNCONFIRMED** heuristic).
//!
//! "Virt (k)": in both transcripts the value is ≤ Reserv, and it equals Reserv for heaps whose
//! counters would have no large UCRs; `_HEAP_COUNTERS.TotalMemoryLargeUCR` (§4.1) is the only
//! field matching "large UCR". Which UCRs count as large is not known. In the Win7 WOW64 fixture
//! heap 0x700000 counts its single 0xec000-byte UCR as large (so Virt = Commit there), and the
//! x64 heap 0x500000 does not count its 0x78000-byte one.
//!
//! "Lock cont.": `_HEAP.LockVariable` (§4) points to the heap lock; that the lock starts with an
//! `RTL_CRITICAL_SECTION` is not in the layout reference, so the value is only reported when the
//! critical section's `DebugInfo` points back to it (`RTL_CRITICAL_SECTION_DEBUG.CriticalSection
//! == LockVariable`, winnt.h layouts), which the fixture's five heaps satisfy. Otherwise `None`
//! (e.g. Windows 8+ often allocates no debug info: `DebugInfo` = −1).

use std::fmt::Write as _;

use super::{HeapInfo, HeapReport, HeapStatus};
use crate::heap::HeapCtx;
use crate::target::Arch;

/// Fragmentation lines are printed only for heaps with at least this much committed (bytes).
pub const FRAGMENTATION_MIN_COMMIT: u64 = 1 << 20;
/// … and at least this external or virtual-address fragmentation (percent).
pub const FRAGMENTATION_MIN_PCT: u64 = 25;

/// `!heap -s` numbers of one heap (bytes, not KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeapSummary {
    /// Reserved bytes in segments.
    pub reserved: u64,
    /// Committed bytes in segments.
    pub committed: u64,
    /// Reserved − `TotalMemoryLargeUCR`, when the counters are readable (**UNCONFIRMED** meaning).
    pub virtual_bytes: Option<u64>,
    /// Bytes in free back-end blocks (headers included), from the walk (0 unless [`Self::walked`]).
    pub free_bytes: u64,
    /// Number of free back-end blocks, from the walk (0 unless [`Self::walked`]).
    pub free_blocks: u64,
    /// Whether the heap's blocks were walked (else `free_bytes` and `free_blocks` are unknown).
    pub walked: bool,
    /// `_HEAP.TotalFreeSize` × granularity, for cross-checking `free_bytes`.
    pub header_free_bytes: Option<u64>,
    /// Number of uncommitted ranges on the segments' lists.
    pub ucr_count: u64,
    /// Number of virtual blocks.
    pub virtual_block_count: u64,
    /// Σ `CommitSize` of the virtual blocks.
    pub virtual_block_bytes: u64,
    /// Heap-lock contention count (see the module doc).
    pub lock_contention: Option<u32>,
    /// `FrontEndHeapType`.
    pub front_end_type: Option<u8>,
}

impl HeapSummary {
    /// Compute from a heap; `walked`: its blocks were walked (else the free-block figures are
    /// unknown).
    pub fn compute(info: &HeapInfo, walked: bool) -> HeapSummary {
        // Sizes read from the dump: a damaged header may hold anything, so the totals saturate.
        let total = |it: &mut dyn Iterator<Item = u64>| it.fold(0u64, u64::saturating_add);
        let mut s = HeapSummary {
            reserved: total(&mut info.segments.iter().map(|g| g.reserved_bytes)),
            committed: total(&mut info.segments.iter().map(|g| g.committed_bytes)),
            header_free_bytes: info.total_free_size,
            ucr_count: info.segments.iter().map(|g| g.ucrs.len() as u64).sum(),
            virtual_block_count: info.virtual_blocks.len() as u64,
            virtual_block_bytes: total(&mut info.virtual_blocks.iter().map(|v| v.commit_size)),
            lock_contention: info.lock_contention,
            front_end_type: info.front_end_type,
            walked,
            ..HeapSummary::default()
        };
        s.virtual_bytes = info.counters.map(|c| s.reserved.saturating_sub(c.total_memory_large_ucr));
        if walked {
            (s.free_blocks, s.free_bytes) = info.free_blocks;
        }
        s
    }

    /// WinDbg's "Free": `TotalFreeSize` × granularity, else the walk's Σ; `None` when neither
    /// is known.
    pub fn free(&self) -> Option<u64> {
        self.header_free_bytes.or(self.walked.then_some(self.free_bytes))
    }

    /// WinDbg's "List length": the number of free back-end blocks, known after the walk.
    pub fn list_length(&self) -> Option<u64> {
        self.walked.then_some(self.free_blocks)
    }

    /// Free × 100 / Commit ("External fragmentation"), when anything is committed and Free is
    /// known.
    pub fn external_fragmentation_pct(&self) -> Option<u64> {
        let free = self.free()?;
        (self.committed > 0).then(|| free.saturating_mul(100) / self.committed)
    }

    /// (Virt − Commit) × 100 / Virt ("Virtual address fragmentation"), when Virt is known.
    pub fn virtual_address_fragmentation_pct(&self) -> Option<u64> {
        let v = self.virtual_bytes.filter(|&v| v > 0)?;
        Some(v.saturating_sub(self.committed).saturating_mul(100) / v)
    }

    /// The "Fast heap" column.
    pub fn fast_heap(&self) -> &'static str {
        match self.front_end_type {
            Some(2) => "LFH",
            Some(1) => "LAL",
            _ => "",
        }
    }

    /// Whether the table prints the fragmentation lines under this heap (see the module doc).
    pub fn prints_fragmentation(&self) -> bool {
        self.committed >= FRAGMENTATION_MIN_COMMIT
            && (self.external_fragmentation_pct().unwrap_or(0) >= FRAGMENTATION_MIN_PCT
                || self.virtual_address_fragmentation_pct().unwrap_or(0) >= FRAGMENTATION_MIN_PCT)
    }
}

/// `ContentionCount` of the heap lock, when its critical section's debug info points back to it.
pub(crate) fn lock_contention(ctx: &HeapCtx<'_>) -> Option<u32> {
    let l = ctx.layout;
    let cs = &l.critical_section;
    let a = ctx.arch;
    let lock = ctx.mem.read_ptr(a, ctx.heap.wrapping_add(u64::from(l.heap.lock_variable))).ok().filter(|&p| p != 0)?;
    let debug = ctx.mem.read_ptr(a, lock.wrapping_add(u64::from(cs.debug_info))).ok()?;
    let all_ones = match a {
        Arch::X86 => 0xFFFF_FFFF,
        Arch::X64 => u64::MAX,
    };
    if debug == 0 || debug == all_ones {
        return None;
    }
    let back = ctx.mem.read_ptr(a, debug.wrapping_add(u64::from(cs.debug_critical_section))).ok()?;
    if back != lock {
        return None;
    }
    ctx.mem.read_u32(debug.wrapping_add(u64::from(cs.debug_contention_count))).ok()
}

fn kib(b: u64) -> u64 {
    b / 1024
}

/// The report's heaps as a `!heap -s` table: one section per PEB (native, then WOW64 32-bit),
/// rows in `ProcessHeaps` order. Heaps that were not walked get a one-line note instead of
/// numbers.
pub fn summary_table(report: &HeapReport) -> String {
    let mut out = String::new();
    for wow in [false, true] {
        let heaps: Vec<&HeapInfo> = report.heaps.iter().filter(|h| h.wow64_32bit == wow).collect();
        let Some(first) = heaps.first() else { continue };
        let w = match first.arch {
            Arch::X86 => 8,
            Arch::X64 => 16,
        };
        let title = if wow { "32-bit heaps (WOW64 PEB)" } else { "heaps" };
        let _ = writeln!(out, "{} {title}", first.arch);
        let pad = " ".repeat(w - 8);
        let _ = writeln!(out, "{pad}  Heap     Flags   Reserv  Commit  Virt   Free  List   UCR  Virt  Lock  Fast ");
        let _ = writeln!(out, "{pad}                    (k)     (k)    (k)     (k) length      blocks cont. heap ");
        let rule = "-".repeat(w + 69);
        let _ = writeln!(out, "{rule}");
        for h in heaps {
            let s = &h.summary;
            let note = match (h.status, h.kind) {
                (HeapStatus::Walked, super::HeapKind::Segment) => Some("segment heap: see below".to_string()),
                (HeapStatus::Walked, _) => None,
                (HeapStatus::HeaderNotCaptured, _) => Some("heap header not captured".to_string()),
                (HeapStatus::NoLayout, _) => Some("NT heap, no layout validates".to_string()),
                (HeapStatus::NotWalked, super::HeapKind::Segment) => Some(format!(
                    "segment heap, not walked: {}",
                    h.not_walked.as_deref().unwrap_or("not a known layout")
                )),
                (HeapStatus::NotWalked, super::HeapKind::Page) => {
                    Some("page heap (not walked: its _DPH_HEAP_ROOT is not usable, see Dump.corruption())".to_string())
                }
                (HeapStatus::NotWalked, _) => {
                    Some(format!("unknown heap signature {:#010x}", h.signature_word.unwrap_or(0)))
                }
            };
            if let Some(n) = note {
                let _ = writeln!(out, "{:0w$x} ({n})", h.address);
                continue;
            }
            if let Some(p) = &h.page_heap {
                let _ = writeln!(
                    out,
                    "{:0w$x} {:08x} page heap: root {:x}, {} busy blocks ({} k), {} freed, NormalHeap {:x}",
                    h.address,
                    h.flags,
                    p.root,
                    p.busy,
                    kib(p.busy_bytes),
                    p.freed,
                    p.normal_heap
                );
                continue;
            }
            let virt = s.virtual_bytes.map_or("?".to_string(), |v| kib(v).to_string());
            let free = s.free().map_or("?".to_string(), |v| kib(v).to_string());
            let list = s.list_length().map_or("?".to_string(), |v| v.to_string());
            let lock = s.lock_contention.map_or("?".to_string(), |c| c.to_string());
            let _ = writeln!(
                out,
                "{:0w$x} {:08x} {:>7} {:>6} {:>6} {:>6} {:>5} {:>5} {:>4} {:>6}   {}",
                h.address,
                h.flags,
                kib(s.reserved),
                kib(s.committed),
                virt,
                free,
                list,
                s.ucr_count,
                s.virtual_block_count,
                lock,
                s.fast_heap()
            );
            if let Some(owner) = h.page_heap_owner {
                let _ = writeln!(out, "    (NormalHeap of page heap {owner:0w$x})");
            }
            if s.prints_fragmentation() {
                if let Some(p) = s.external_fragmentation_pct() {
                    let blocks = s.list_length().map_or("?".to_string(), |v| v.to_string());
                    let _ = writeln!(out, "    External fragmentation  {p} % ({blocks} free blocks)");
                }
                if let Some(p) = s.virtual_address_fragmentation_pct() {
                    let _ =
                        writeln!(out, "    Virtual address fragmentation  {p} % ({} uncommited ranges)", s.ucr_count);
                }
            }
        }
        let _ = writeln!(out, "{rule}");
    }
    let seg: Vec<&HeapInfo> = report.heaps.iter().filter(|h| h.segment_heap.is_some()).collect();
    if !seg.is_empty() {
        let _ = writeln!(out, "Segment heaps");
        let _ = writeln!(
            out,
            "            Heap   Reserv  Commit   VS blocks    VS (k)  LFH blocks   LFH (k)  Pages (k)  Large (k)  Layout"
        );
        let _ = writeln!(out, "{}", "-".repeat(118));
        for h in seg {
            let Some(s) = &h.segment_heap else { continue };
            let reserved: u64 =
                s.contexts.iter().map(|c| c.reserved).sum::<u64>().saturating_add(s.large_reserved.unwrap_or(0));
            let committed = s
                .contexts
                .iter()
                .map(|c| c.committed)
                .sum::<Option<u64>>()
                .map(|c| c.saturating_add(s.large_committed.unwrap_or(0)));
            let _ = writeln!(
                out,
                "{:016x} {:>8} {:>7} {:>11} {:>9} {:>11} {:>9} {:>10} {:>10}  {}",
                h.address,
                kib(reserved),
                committed.map_or("?".to_string(), |c| kib(c).to_string()),
                s.vs.count,
                kib(s.vs.user_bytes),
                s.lfh.count,
                kib(s.lfh.user_bytes),
                kib(s.page_ranges.user_bytes),
                kib(s.large.user_bytes),
                s.layout.unwrap_or("?")
            );
            for (i, c) in s.contexts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    context {i}: {} segments of {} k, reserved {} k, committed {} k",
                    c.segments.len(),
                    kib(c.segment_size),
                    kib(c.reserved),
                    c.committed.map_or("?".to_string(), |v| kib(v).to_string())
                );
            }
            let _ = writeln!(
                out,
                "    HeapKey {:016x} ({}), LfhKey {} ({})",
                s.heap_key.unwrap_or(0),
                s.heap_key_source.name(),
                s.lfh_key.map_or("-".to_string(), |k| format!("{k:08x}")),
                s.lfh_key_source.name()
            );
        }
        let _ = writeln!(out, "{}", "-".repeat(118));
    }
    for w in &report.warnings {
        let _ = writeln!(out, "warning: {}", w.message);
    }
    let surveyed = report.heaps.iter().filter(|h| h.status == HeapStatus::Walked && h.kind == super::HeapKind::Nt);
    if surveyed.clone().any(|h| !h.summary.walked) {
        let _ = writeln!(
            out,
            "note: List length \"?\" needs the block walk (from headers only so far): `ntheap heap -s --walk`, \
             or Heap.free_list_length in Python"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(committed: u64, free: u64, virt: u64) -> HeapSummary {
        HeapSummary { committed, free_bytes: free, walked: true, virtual_bytes: Some(virt), ..HeapSummary::default() }
    }

    #[test]
    fn fragmentation_matches_the_public_transcripts() {
        // 17-heap transcript, heap 012e0000: Commit 118128k, Free 109939k, Virt 776448k → 93 %, 84 %.
        let h = s(118_128 * 1024, 109_939 * 1024, 776_448 * 1024);
        assert_eq!(h.external_fragmentation_pct(), Some(93));
        assert_eq!(h.virtual_address_fragmentation_pct(), Some(84));
        assert!(h.prints_fragmentation());
        // Single-heap transcript: Commit 56540k, Free 3884k, Virt 60592k → 6 %, 6 %.
        let h = s(56_540 * 1024, 3_884 * 1024, 60_592 * 1024);
        assert_eq!((h.external_fragmentation_pct(), h.virtual_address_fragmentation_pct()), (Some(6), Some(6)));
        // Same transcript, heap 000f0000 (1024 552 1024 257): not printed there.
        let h = s(552 * 1024, 257 * 1024, 1024 * 1024);
        assert_eq!(h.external_fragmentation_pct(), Some(46));
        assert!(!h.prints_fragmentation());
        assert_eq!(HeapSummary::default().external_fragmentation_pct(), None);
    }

    #[test]
    fn fast_heap_labels() {
        let mut h = HeapSummary::default();
        assert_eq!(h.fast_heap(), "");
        h.front_end_type = Some(2);
        assert_eq!(h.fast_heap(), "LFH");
        h.front_end_type = Some(1);
        assert_eq!(h.fast_heap(), "LAL");
    }
}
