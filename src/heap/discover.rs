//! Finding the heaps and choosing their layout (§12.1, §12.9).
//!
//! ## Which heaps
//!
//! The heaps of the native PEB, and for a WOW64 process also those of the 32-bit PEB
//! (`crate::process`). Both sets are reported; each heap carries the pointer width of its PEB
//! (x86 for the 32-bit heaps of a WOW64 process) and a `wow64_32bit` marker. When a PEB's
//! `ProcessHeaps` array is not captured, its `ProcessHeap` alone is listed (with a record).
//!
//! ## What kind of heap
//!
//! The u32 at +0x08 (x86) / +0x10 (x64) is `SegmentSignature` 0xFFEEFFEE for an NT heap and
//! `_SEGMENT_HEAP.Signature` 0xDDEEDDEE for a segment heap (\[MPF\] dispatch, §10, §12.1);
//! anything else is unknown. Segment heaps are listed, not walked.
//!
//! ## Which layout row
//!
//! The row for (heap arch, dump build) is tried first and accepted if it validates (§12.9):
//! `Signature` 0xEEFFEEFF at the row's offset, the `Heap` field (x86 +0x18, x64 +0x28) pointing
//! to the heap itself, `SegmentList.Flink − SegmentListEntry` giving a segment whose signature is
//! 0xFFEEFFEE and whose `Flink` node links back (`Blink`) to the list head, and
//! `FrontEndHeapType ∈ {0, 1, 2}`. Otherwise (or when the build has no row, e.g. an insider
//! build between epochs) every row of the architecture is tried; of those that validate, the
//! one whose build range is nearest to the dump's build is taken. The report says which row was
//! taken and whether by build or by validation. Rows that differ only past `FrontEndHeapType`'s
//! offsets can both validate on a heap whose front-end bytes are zero; the nearest-build rule
//! settles that case.

use crate::dump::Dump;
use crate::error::Result;
use crate::layouts::nt_heap::{
    HeapLayout, HEAP_SEGMENT_SIGNATURE, HEAP_SIGNATURE, NT_HEAP_LAYOUTS, SEGMENT_HEAP_SIGNATURE,
};
use crate::layouts::{rows_for, select, LayoutRow};
use crate::memory::AddressSpace;
use crate::process::{process_info, Peb};
use crate::target::Arch;

use super::corruption::{Corruption, CorruptionKind};

/// What a heap pointer points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeapKind {
    /// An NT (`ntdll` back end) heap: `SegmentSignature` 0xFFEEFFEE.
    Nt,
    /// A segment heap: signature 0xDDEEDDEE.
    Segment,
    /// A page heap (gflags `+hpa`): the handle is a fake `_HEAP` page (§11.4).
    Page,
    /// Neither, or not captured.
    Unknown,
}

impl HeapKind {
    /// `nt`, `segment` or `unknown`.
    pub const fn name(self) -> &'static str {
        match self {
            HeapKind::Nt => "nt",
            HeapKind::Segment => "segment",
            HeapKind::Page => "page",
            HeapKind::Unknown => "unknown",
        }
    }
}

/// A heap pointer found in a PEB, with what the walk needs to know about its process half.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeapRef {
    /// The heap's address (its handle).
    pub address: u64,
    /// Pointer width of the PEB that lists it.
    pub arch: Arch,
    /// Listed by the 32-bit PEB of a WOW64 process.
    pub wow64_32bit: bool,
    /// Position in its PEB's `ProcessHeaps` array; `None` for a heap found through a page heap
    /// (its `NormalHeap`, or another root on `NextHeap`) that the PEB does not list.
    pub index: Option<usize>,
    /// Equal to its PEB's `ProcessHeap`.
    pub is_process_heap: bool,
    /// Its PEB has `FLG_USER_STACK_TRACE_DB` (`+ust`) in `NtGlobalFlag`.
    pub ust: bool,
    /// For the `NormalHeap` of a page heap: that page heap's handle.
    pub page_heap_owner: Option<u64>,
}

/// The heaps of a dump and the problems met finding them.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Native PEB heaps first, then the WOW64 32-bit ones, each in `ProcessHeaps` order.
    pub heaps: Vec<HeapRef>,
    /// Problems with the heap lists themselves (records with `heap` 0).
    pub problems: Vec<Corruption>,
    /// What each PEB says about its heap list (native first).
    pub pebs: Vec<super::coverage::PebHeaps>,
}

/// Find the heaps of `dump` from its PEB(s). Fails only when no PEB can be read at all.
pub fn discover(dump: &Dump) -> Result<Discovery> {
    let info = process_info(dump)?;
    let mut d = Discovery::default();
    add_peb(&mut d, &info.native, false);
    if let Some(w) = &info.wow64 {
        add_peb(&mut d, w, true);
    }
    Ok(d)
}

fn add_peb(d: &mut Discovery, peb: &Peb, wow64_32bit: bool) {
    let side = if wow64_32bit { "32-bit (WOW64) PEB" } else { "PEB" };
    d.pebs.push(super::coverage::PebHeaps {
        wow64_32bit,
        number_of_heaps: peb.number_of_heaps,
        process_heap: peb.process_heap,
    });
    let list: Vec<u64> = match &peb.process_heaps {
        // A process whose heaps are not the Windows heap manager's (a Wine process) may list no
        // heap at all and still have a ProcessHeap: list it, so that every view can say what it
        // points at instead of printing nothing.
        Some(v) if v.is_empty() && peb.process_heap != 0 => {
            d.problems.push(Corruption::new(
                0,
                peb.process_heaps_address,
                CorruptionKind::Inconsistent,
                format!(
                    "{side}: ProcessHeaps lists no heap (NumberOfHeaps {}) but ProcessHeap is {:#x}; listing ProcessHeap only",
                    peb.number_of_heaps, peb.process_heap
                ),
            ));
            vec![peb.process_heap]
        }
        Some(v) => {
            if let Some(p) = &peb.process_heaps_problem {
                d.problems.push(Corruption::new(
                    0,
                    peb.process_heaps_address,
                    CorruptionKind::Inconsistent,
                    format!("{side}: {p}"),
                ));
            }
            if v.first().is_some_and(|&h| h != peb.process_heap) {
                d.problems.push(Corruption::new(
                    0,
                    peb.process_heaps_address,
                    CorruptionKind::Inconsistent,
                    format!("{side}: ProcessHeaps[0] is {:#x}, ProcessHeap is {:#x}", v[0], peb.process_heap),
                ));
            }
            v.clone()
        }
        None => {
            d.problems.push(Corruption::new(
                0,
                peb.process_heaps_address,
                CorruptionKind::NotCaptured,
                format!(
                    "{side} {:#x}: ProcessHeaps array at {:#x} ({} heaps) not captured; listing ProcessHeap {:#x} only",
                    peb.address, peb.process_heaps_address, peb.number_of_heaps, peb.process_heap
                ),
            ));
            if peb.process_heap == 0 {
                Vec::new()
            } else {
                vec![peb.process_heap]
            }
        }
    };
    let first = d.heaps.len();
    for (index, &address) in list.iter().enumerate() {
        if address == 0 {
            d.problems.push(Corruption::new(
                0,
                peb.process_heaps_address,
                CorruptionKind::BadLink,
                format!("{side}: ProcessHeaps[{index}] is null"),
            ));
            continue;
        }
        if d.heaps[first..].iter().any(|h| h.address == address) {
            d.problems.push(Corruption::new(
                0,
                peb.process_heaps_address,
                CorruptionKind::Inconsistent,
                format!("{side}: heap {address:#x} listed twice (ProcessHeaps[{index}])"),
            ));
            continue;
        }
        d.heaps.push(HeapRef {
            address,
            arch: peb.arch,
            wow64_32bit,
            index: Some(index),
            is_process_heap: address == peb.process_heap,
            ust: peb.has_ust(),
            page_heap_owner: None,
        });
    }
}

/// The signature word of the heap at `address`, or `None` when it is not captured.
pub fn classify(mem: &AddressSpace, address: u64, arch: Arch) -> Option<(HeapKind, u32)> {
    let at = address.checked_add(match arch {
        Arch::X86 => 0x08, // §4.2 SegmentSignature
        Arch::X64 => 0x10, // §4.1 SegmentSignature
    })?;
    let sig = mem.read_u32(at).ok()?;
    let kind = match sig {
        HEAP_SEGMENT_SIGNATURE => HeapKind::Nt,
        SEGMENT_HEAP_SIGNATURE => HeapKind::Segment,
        _ if super::page_heap::looks_like_page_heap(mem, address, arch) => HeapKind::Page,
        _ => HeapKind::Unknown,
    };
    Some((kind, sig))
}

/// How a layout row was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChosenBy {
    /// The row of the dump's build validated.
    Build,
    /// The build's row was missing or did not validate; this row validated (`candidates` rows of
    /// the architecture validated in all).
    Validation {
        /// How many rows validated.
        candidates: usize,
    },
}

impl ChosenBy {
    /// `build` or `validation`.
    pub const fn name(self) -> &'static str {
        match self {
            ChosenBy::Build => "build",
            ChosenBy::Validation { .. } => "validation",
        }
    }
}

/// The layout row used for a heap.
#[derive(Debug, Clone, Copy)]
pub struct LayoutChoice {
    /// The row.
    pub row: &'static LayoutRow<HeapLayout>,
    /// How it was chosen.
    pub chosen_by: ChosenBy,
}

impl LayoutChoice {
    /// The row's name, e.g. `Win7 SP1 x86`.
    pub fn name(&self) -> &'static str {
        self.row.name
    }
}

/// Check a layout guess against the heap at `heap` (§12.9). `Err` says which check failed.
pub fn validate(mem: &AddressSpace, heap: u64, arch: Arch, layout: &HeapLayout) -> std::result::Result<(), String> {
    let at = |o: u16| heap.wrapping_add(u64::from(o));
    let s = &layout.segment;
    let h = &layout.heap;
    let u32_at = |a: u64, what: &str| mem.read_u32(a).map_err(|_| format!("{what} at {a:#x} not captured"));
    let ptr_at = |a: u64, what: &str| mem.read_ptr(arch, a).map_err(|_| format!("{what} at {a:#x} not captured"));
    let sig = u32_at(at(h.signature), "Signature")?;
    if sig != HEAP_SIGNATURE {
        return Err(format!("Signature at +{:#x} is {sig:#x}", h.signature));
    }
    let me = ptr_at(at(s.heap), "Heap")?;
    if me != heap {
        return Err(format!("Heap field at +{:#x} is {me:#x}", s.heap));
    }
    let head = at(h.segment_list);
    let flink = ptr_at(head, "SegmentList.Flink")?;
    let seg =
        flink.checked_sub(u64::from(s.segment_list_entry)).ok_or_else(|| format!("SegmentList.Flink {flink:#x}"))?;
    let seg_sig = u32_at(seg.wrapping_add(u64::from(s.segment_signature)), "first segment's SegmentSignature")?;
    if seg_sig != HEAP_SEGMENT_SIGNATURE {
        return Err(format!("SegmentList.Flink {flink:#x} leads to a segment with signature {seg_sig:#x}"));
    }
    let back = ptr_at(flink.wrapping_add(arch.ptr_size()), "first SegmentList node's Blink")?;
    if back != head {
        return Err(format!("first SegmentList node {flink:#x} has Blink {back:#x}, not the head {head:#x}"));
    }
    let fe = mem.read_u8(at(h.front_end_heap_type)).map_err(|_| "FrontEndHeapType not captured".to_string())?;
    if fe > 2 {
        return Err(format!("FrontEndHeapType at +{:#x} is {fe}", h.front_end_heap_type));
    }
    Ok(())
}

fn distance(row: &LayoutRow<HeapLayout>, build: u32) -> u32 {
    if build < row.builds.first {
        row.builds.first - build
    } else {
        build.saturating_sub(row.builds.last)
    }
}

/// Choose the layout row for the NT heap at `heap` (see the module doc). `Err` lists why no row
/// validated.
pub fn choose_layout(
    mem: &AddressSpace,
    heap: u64,
    arch: Arch,
    build: u32,
) -> std::result::Result<LayoutChoice, String> {
    let mut why = Vec::new();
    match select(NT_HEAP_LAYOUTS, "_HEAP", arch, build) {
        Ok(row) => match validate(mem, heap, arch, &row.layout) {
            Ok(()) => return Ok(LayoutChoice { row, chosen_by: ChosenBy::Build }),
            Err(e) => why.push(format!("{}: {e}", row.name)),
        },
        Err(e) => why.push(e.to_string()),
    }
    let mut ok = Vec::new();
    for row in rows_for(NT_HEAP_LAYOUTS, arch) {
        match validate(mem, heap, arch, &row.layout) {
            Ok(()) => ok.push(row),
            Err(e) => {
                if !why.iter().any(|w| w.starts_with(row.name)) {
                    why.push(format!("{}: {e}", row.name));
                }
            }
        }
    }
    let candidates = ok.len();
    ok.into_iter()
        .min_by_key(|r| distance(r, build))
        .map(|row| LayoutChoice { row, chosen_by: ChosenBy::Validation { candidates } })
        .ok_or_else(|| why.join("; "))
}

/// The heaps of `heaps` with, after each page heap, its `NormalHeap` and the page heaps on its
/// `NextHeap` list that no PEB lists (§11.4); a listed `NormalHeap` is marked as such in place.
/// Problems with the `NextHeap` list go to `problems`.
pub(crate) fn with_page_heaps(
    mem: &AddressSpace,
    heaps: &[HeapRef],
    budget: &super::list::NodeBudget,
    problems: &mut Vec<Corruption>,
) -> Vec<HeapRef> {
    use super::page_heap::{normal_heap, other_roots, root_of};
    let mut out: Vec<HeapRef> = heaps.to_vec();
    let mut i = 0;
    while i < out.len() {
        let h = out[i];
        i += 1;
        if !matches!(classify(mem, h.address, h.arch), Some((HeapKind::Page, _))) {
            continue;
        }
        let Ok(root) = root_of(mem, h.address, h.arch) else { continue };
        let mut extra = Vec::new();
        if let Some(n) = normal_heap(mem, root, h.arch) {
            match out.iter_mut().find(|o| o.address == n && o.arch == h.arch) {
                Some(o) => o.page_heap_owner = Some(h.address),
                None => extra.push(HeapRef {
                    address: n,
                    index: None,
                    is_process_heap: false,
                    page_heap_owner: Some(h.address),
                    ..h
                }),
            }
        }
        for other in other_roots(mem, root, h.arch, budget, problems) {
            if !out.iter().chain(&extra).any(|o| o.address == other && o.arch == h.arch) {
                extra.push(HeapRef { address: other, index: None, is_process_heap: false, page_heap_owner: None, ..h });
            }
        }
        let n = extra.len();
        out.splice(i..i, extra);
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::testing::{BlockSpec, Epoch, HeapSpec};

    #[test]
    fn classifies_by_signature_word() {
        for arch in [Arch::X86, Arch::X64] {
            let spec = HeapSpec::simple(arch, Epoch::Win7, 0x40_0000, 4, 4, vec![BlockSpec::busy(4, 8)]);
            let (mut s, _) = spec.write();
            let mem = s.build();
            assert_eq!(classify(&mem, 0x40_0000, arch), Some((HeapKind::Nt, HEAP_SEGMENT_SIGNATURE)));
            assert_eq!(classify(&mem, 0x90_0000, arch), None);
            let off = if arch == Arch::X86 { 8 } else { 0x10 };
            s.put_u32(0x40_0000 + off, SEGMENT_HEAP_SIGNATURE);
            assert_eq!(classify(&s.build(), 0x40_0000, arch).unwrap().0, HeapKind::Segment);
            s.put_u32(0x40_0000 + off, 0x1234);
            assert_eq!(classify(&s.build(), 0x40_0000, arch).unwrap().0, HeapKind::Unknown);
        }
    }

    #[test]
    fn chooses_by_build_then_by_validation() {
        for arch in [Arch::X86, Arch::X64] {
            for epoch in [Epoch::Win7, Epoch::Win10_1809] {
                let spec = HeapSpec::simple(arch, epoch, 0x40_0000, 4, 2, vec![BlockSpec::busy(4, 8)]);
                let mem = spec.write().0.build();
                let c = choose_layout(&mem, 0x40_0000, arch, epoch.build()).unwrap();
                assert_eq!(c.chosen_by, ChosenBy::Build, "{arch} {epoch:?}");
                assert!(c.row.builds.contains(epoch.build()));
                // A build from the other epoch: its row fails, validation finds the right one.
                let other = if epoch == Epoch::Win7 { 19041 } else { 7601 };
                let c = choose_layout(&mem, 0x40_0000, arch, other).unwrap();
                assert!(matches!(c.chosen_by, ChosenBy::Validation { .. }), "{arch} {epoch:?}");
                assert_eq!(
                    c.row.layout.heap.signature,
                    select(NT_HEAP_LAYOUTS, "", arch, epoch.build()).unwrap().layout.heap.signature
                );
                // An unknown build validates too.
                let c = choose_layout(&mem, 0x40_0000, arch, 17500).unwrap();
                assert!(matches!(c.chosen_by, ChosenBy::Validation { .. }));
            }
        }
    }

    #[test]
    fn win7_is_told_apart_from_later_rows_and_junk_fails() {
        let spec = HeapSpec::simple(Arch::X64, Epoch::Win7, 0x40_0000, 4, 2, vec![]);
        let mem = spec.write().0.build();
        let c = choose_layout(&mem, 0x40_0000, Arch::X64, 9600).unwrap();
        assert_eq!(c.name(), "Win7 SP1 x64");
        assert_eq!(c.chosen_by, ChosenBy::Validation { candidates: 1 });
        let err = choose_layout(&mem, 0x50_0000, Arch::X64, 7601).unwrap_err();
        assert!(err.contains("not captured"), "{err}");
    }

    #[test]
    fn validation_names_the_failed_check() {
        let spec = HeapSpec::simple(Arch::X86, Epoch::Win7, 0x40_0000, 4, 2, vec![]);
        let (mut s, _) = spec.write();
        let row = select(NT_HEAP_LAYOUTS, "", Arch::X86, 7601).unwrap();
        assert_eq!(validate(&s.build(), 0x40_0000, Arch::X86, &row.layout), Ok(()));
        s.put_u8(0x40_0000 + 0xda, 7); // FrontEndHeapType
        assert!(validate(&s.build(), 0x40_0000, Arch::X86, &row.layout).unwrap_err().contains("FrontEndHeapType"));
        s.put_u8(0x40_0000 + 0xda, 2);
        s.put_u32(0x40_0000 + 0x18, 0x1234); // Heap self-pointer
        assert!(validate(&s.build(), 0x40_0000, Arch::X86, &row.layout).unwrap_err().contains("Heap field"));
    }
}
