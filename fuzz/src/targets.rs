//! The bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and
//! by the normal test suite (`tests/fuzz_corpora.rs` includes this file), which runs the seeds
//! and every regression input through the same code on every CI run.
//!
//! Two input formats:
//!
//! * **dump**: a minidump file, as a user would hand it over (`open_read`, `discover`,
//!   `dump_all`).
//! * **image**: a small captured address space with one subject in it, so that a walker target
//!   spends its executions on the heap rather than on the container:
//!
//!   ```text
//!   0   u8   flags: bit 0 x64, bit 1 +ust, bit 2 WOW64 32-bit side, bit 3 page heap NormalHeap
//!   1   u32  Windows build number
//!   5   u64  subject: the heap handle, or a module's base
//!   13  u32  subject size (a module's SizeOfImage; 0 for heaps)
//!   17  u16  range count n (at most MAX_RANGES are used)
//!   19  n × { u64 va; u32 len }
//!   ..  the ranges' bytes back to back, as in a Memory64ListStream
//!   ```
//!
//!   The ranges go through [`AddressSpace::new`] exactly as a dump's descriptors do, so a range
//!   that runs past the end of the input is clipped, and overlapping ones are resolved, by the
//!   code under test.
//!
//! Every target ends in the entry points a user reaches from the result, so an input that
//! survives the walk also goes through the summaries, stacks, symbolization and `allocation_at`.

use std::sync::Arc;

use ntheap::allocation::{Allocation, BlockIndex};
use ntheap::dump::Module;
use ntheap::heap::{self, HeapKind, HeapRef, HeapReport};
use ntheap::mapped::FileBytes;
use ntheap::memory::{AddressSpace, CapturedRange};
use ntheap::stacks::StackTable;
use ntheap::symbols::{pdb, pe, SymbolTable, Symbolizer};
use ntheap::{process, Arch, Dump};

/// Most ranges an image may declare.
pub const MAX_RANGES: usize = 256;
const HEADER: usize = 19;
const RANGE: usize = 12;

/// A target's body: runs one input.
pub type Target = fn(&[u8]);

/// Every fuzz target, by name (the names of `fuzz/fuzz_targets/*.rs`).
pub const TARGETS: [(&str, Target); 11] = [
    ("open_read", open_read),
    ("discover", discover),
    ("dump_all", dump_all),
    ("walk_nt", walk_nt),
    ("walk_lfh", walk_lfh),
    ("walk_page_heap", walk_page_heap),
    ("walk_segment_heap", walk_segment_heap),
    ("stacks", stacks),
    ("allocation_at", allocation_at),
    ("exports", exports),
    ("pdb", pdb_bytes),
];

/// A parsed image input.
pub struct Image {
    /// The captured memory.
    pub mem: AddressSpace,
    /// Pointer width.
    pub arch: Arch,
    /// `+ust`.
    pub ust: bool,
    /// The 32-bit side of a WOW64 process.
    pub wow64_32bit: bool,
    /// The heap is a page heap's `NormalHeap`.
    pub dph_normal: bool,
    /// Windows build number.
    pub build: u32,
    /// The heap handle or module base.
    pub subject: u64,
    /// A module's size.
    pub subject_size: u32,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32_at(b, o)) | u64::from(u32_at(b, o + 4)) << 32
}

impl Image {
    /// Parse `data`; `None` when it is too short for its header and range table.
    pub fn parse(data: &[u8]) -> Option<Image> {
        if data.len() < HEADER {
            return None;
        }
        let flags = data[0];
        let n = usize::from(u16_at(data, 17)).min(MAX_RANGES);
        let table_end = HEADER + n * RANGE;
        if data.len() < table_end {
            return None;
        }
        let mut at = table_end as u64;
        let ranges: Vec<CapturedRange> = (0..n)
            .map(|i| {
                let o = HEADER + i * RANGE;
                let (va, len) = (u64_at(data, o), u64::from(u32_at(data, o + 8)));
                let r = CapturedRange { va, len, file_offset: at };
                at += len;
                r
            })
            .collect();
        let (mem, _clipped) = AddressSpace::new(Arc::new(FileBytes::Owned(data.to_vec())), ranges);
        Some(Image {
            mem,
            arch: if flags & 1 != 0 { Arch::X64 } else { Arch::X86 },
            ust: flags & 2 != 0,
            wow64_32bit: flags & 4 != 0,
            dph_normal: flags & 8 != 0,
            build: u32_at(data, 1),
            subject: u64_at(data, 5),
            subject_size: u32_at(data, 13),
        })
    }

    /// The subject as a heap reference.
    pub fn heap_ref(&self) -> HeapRef {
        HeapRef {
            address: self.subject,
            arch: self.arch,
            wow64_32bit: self.wow64_32bit,
            index: Some(0),
            is_process_heap: true,
            ust: self.ust,
            page_heap_owner: self.dph_normal.then_some(0),
        }
    }
}

/// Write an image of `ranges` of `mem` (see the module doc).
pub fn write_image(
    mem: &AddressSpace,
    ranges: &[CapturedRange],
    h: &HeapRef,
    build: u32,
    subject_size: u32,
) -> Vec<u8> {
    let mut out = Vec::new();
    let flags = u8::from(h.arch == Arch::X64)
        | u8::from(h.ust) << 1
        | u8::from(h.wow64_32bit) << 2
        | u8::from(h.page_heap_owner.is_some()) << 3;
    out.push(flags);
    out.extend_from_slice(&build.to_le_bytes());
    out.extend_from_slice(&h.address.to_le_bytes());
    out.extend_from_slice(&subject_size.to_le_bytes());
    // Ranges longer than a u32 are split.
    let mut pieces = Vec::new();
    for r in ranges {
        let mut va = r.va;
        let end = r.end();
        while va < end {
            let len = (end - va).min(0x8000_0000);
            pieces.push((va, len));
            va += len;
        }
    }
    pieces.truncate(MAX_RANGES);
    out.extend_from_slice(&(pieces.len() as u16).to_le_bytes());
    for &(va, len) in &pieces {
        out.extend_from_slice(&va.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    for &(va, len) in &pieces {
        out.extend_from_slice(&mem.read(va, len).expect("an indexed range reads"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Dump targets

/// Open the dump and read its address space the ways the Python layer does.
pub fn open_read(data: &[u8]) {
    let Ok(dump) = Dump::from_bytes(FileBytes::Owned(data.to_vec())) else { return };
    let mem = dump.memory();
    let info = dump.info();
    let _ = (dump.target(), mem.captured_bytes(), &info.warnings);
    for m in &info.modules {
        let _ = (m.end(), m.name(), dump.module_at(m.base));
    }
    for t in &info.threads {
        let _ = mem.read(t.stack_start, u64::from(t.stack_size));
        let _ = mem.read_u64(t.teb);
    }
    if let Some(regions) = &info.regions {
        for r in regions.iter().take(4096) {
            let _ = mem.captured_in(r.base, r.size);
            let _ = mem.is_captured(r.base, r.size);
            let _ = mem.read_u32(r.base.wrapping_sub(2));
        }
    }
    let ranges = mem.ranges();
    for (i, r) in ranges.iter().enumerate().take(4096) {
        let _ = mem.contiguous_at(r.va);
        let _ = mem.read_u64(r.end().wrapping_sub(4));
        let _ = mem.read_ptr(Arch::X86, r.end().wrapping_sub(2));
        if let Some(next) = ranges.get(i + 1) {
            let _ = mem.read(r.va, next.end().saturating_sub(r.va).min(1 << 20));
        }
    }
    let _ = mem.read(0, u64::MAX);
    let _ = mem.captured_in(0, u64::MAX);
}

/// Find the PEB(s) and the heaps, classify each heap and choose its layout.
pub fn discover(data: &[u8]) {
    let Ok(dump) = Dump::from_bytes(FileBytes::Owned(data.to_vec())) else { return };
    let _ = process::is_wow64(&dump);
    if let Ok(info) = process::process_info(&dump) {
        let _ = (info.application().has_ust(), process::global_flag_names(info.native.nt_global_flag));
    }
    let Ok(d) = heap::discover(&dump) else { return };
    let mem = dump.memory();
    let build = dump.target().version.build;
    for h in d.heaps.iter().take(256) {
        match heap::discover::classify(mem, h.address, h.arch) {
            Some((HeapKind::Nt, _)) => {
                let _ = heap::discover::choose_layout(mem, h.address, h.arch, build);
                let _ = heap::lfh::layout_for(h.arch, build);
            }
            Some((HeapKind::Page, _)) => {
                if let Ok(root) = heap::page_heap::root_of(mem, h.address, h.arch) {
                    let _ = heap::page_heap::normal_heap(mem, root, h.arch);
                }
            }
            _ => {}
        }
    }
}

/// Everything a user reaches from a dump (the same as `exercise` in `tests/fuzz_fixtures.rs`).
pub fn dump_all(data: &[u8]) {
    let Ok(dump) = Dump::from_bytes(FileBytes::Owned(data.to_vec())) else { return };
    let _ = process::process_info(&dump);
    let sym = Symbolizer::new(&dump, Some(""));
    let Ok(report) = heap::walk(&dump) else { return };
    after_walk(&report, dump.memory(), Some(&sym));
}

// ---------------------------------------------------------------------------------------------
// Image targets

fn walk_image(data: &[u8]) -> Option<(Image, HeapReport)> {
    let img = Image::parse(data)?;
    let report = heap::walk_heap(&img.mem, &img.heap_ref(), img.build);
    Some((img, report))
}

fn summaries(report: &HeapReport) {
    let _ = report.summary_table();
    let _ = heap::coverage::walk_gaps(report);
    for h in &report.heaps {
        let _ = (h.summary.external_fragmentation_pct(), h.summary.virtual_address_fragmentation_pct());
        let _ = (report.heap_of_row(h.blocks.start), report.segment_of_row(h.blocks.start), &h.virtual_rows);
        if let Some(l) = &h.lfh {
            let _ = l.size_classes();
        }
    }
}

/// The stacks, symbolization and `allocation_at` of a walked report.
fn after_walk(report: &HeapReport, mem: &AddressSpace, sym: Option<&Symbolizer>) {
    summaries(report);
    let stacks = StackTable::collect(mem, report);
    if let Some(sym) = sym {
        let table = sym.symbolize_table(&stacks);
        assert_eq!(table.keys.len(), stacks.len());
    }
    probe_allocations(report, &stacks, sym);
}

fn probe_allocations(report: &HeapReport, stacks: &StackTable, sym: Option<&Symbolizer>) {
    let refs = report.blocks.refs();
    let index = BlockIndex::new(report, &refs);
    let b = &report.blocks;
    let mut probes: Vec<u64> = (0..b.len())
        .step_by(5)
        .take(200)
        .flat_map(|i| [b.address[i], b.user_address[i], b.address[i].wrapping_add(b.size[i])])
        .collect();
    probes.extend([0, 1, u64::MAX, 0x7fff_ffff]);
    for h in &report.heaps {
        probes.push(h.address);
        probes.extend(h.virtual_blocks.iter().flat_map(|v| [v.address, v.user_address]));
    }
    for a in probes {
        if let Some(found) = Allocation::find(report, &refs, stacks, &index, a) {
            let frames = sym.map(|s| s.symbolize_all(stacks.frames_of(found.stack_id))).unwrap_or_default();
            let _ = (found.state(), found.windbg_text(&frames, Some("coreclr.dll")));
        }
    }
}

/// An NT heap (back end, segments, UCRs, virtual blocks), walked alone.
pub fn walk_nt(data: &[u8]) {
    let Some((_, report)) = walk_image(data) else { return };
    summaries(&report);
}

/// An NT heap with an LFH front end (zones, subsegments, key recovery, containers).
pub fn walk_lfh(data: &[u8]) {
    let Some((_, report)) = walk_image(data) else { return };
    summaries(&report);
}

/// A page heap: its root, busy tree and free list, then its `NormalHeap` as the walk lists it.
pub fn walk_page_heap(data: &[u8]) {
    let Some((img, report)) = walk_image(data) else { return };
    summaries(&report);
    let Ok(root) = heap::page_heap::root_of(&img.mem, img.subject, img.arch) else { return };
    let Some(normal) = heap::page_heap::normal_heap(&img.mem, root, img.arch) else { return };
    let r = HeapRef {
        address: normal,
        index: None,
        is_process_heap: false,
        page_heap_owner: Some(img.subject),
        ..img.heap_ref()
    };
    summaries(&heap::walk_heap(&img.mem, &r, img.build));
}

/// A segment heap (page segments, VS and LFH subsegments, page ranges, large blocks, key
/// recovery).
pub fn walk_segment_heap(data: &[u8]) {
    let Some((img, report)) = walk_image(data) else { return };
    summaries(&report);
    let stacks = StackTable::collect(&img.mem, &report);
    probe_allocations(&report, &stacks, None);
}

/// The `+ust` stack table of a walked heap.
pub fn stacks(data: &[u8]) {
    let Some((img, report)) = walk_image(data) else { return };
    let stacks = StackTable::collect(&img.mem, &report);
    let _ = stacks.distinct_frames();
    for id in -1..stacks.len().min(1000) as i32 {
        let _ = stacks.frames_of(id);
    }
    for row in 0..report.blocks.len().min(1000) {
        let _ = stacks.stack_of_row(row);
    }
}

/// `allocation_at` (`!heap -p -a`) over a walked heap.
pub fn allocation_at(data: &[u8]) {
    let Some((img, report)) = walk_image(data) else { return };
    let stacks = StackTable::collect(&img.mem, &report);
    probe_allocations(&report, &stacks, None);
}

/// A module's export table, and symbolization through it.
pub fn exports(data: &[u8]) {
    let Some(img) = Image::parse(data) else { return };
    let size = u64::from(img.subject_size);
    let _ = pe::image_arch(&img.mem, img.subject);
    let _ = pe::read_exports(&img.mem, img.subject, size);
    let module = Module {
        path: "C:\\fuzz\\m.dll".into(),
        base: img.subject,
        size: img.subject_size,
        version: None,
        timestamp: 0,
        checksum: 0,
        pdb_name: None,
        pdb_guid: None,
        pdb_age: None,
    };
    let sym = Symbolizer::from_parts(vec![module], img.mem.clone(), Some(""));
    let probes: Vec<u64> = [0, 1, 0x1000, 0x1234, size / 2, size.wrapping_sub(1), size]
        .iter()
        .map(|o| img.subject.wrapping_add(*o))
        .collect();
    let _ = sym.symbolize_all(&probes);
    let _ = sym.status();
}

/// A PDB file's identity, public symbols and procedures, from bytes.
pub fn pdb_bytes(data: &[u8]) {
    if let Ok((_, publics)) = pdb::parse_bytes(data.to_vec()) {
        let table = SymbolTable::new(publics.symbols);
        for rva in [0, 0x1000, 0x1010, u32::MAX] {
            let _ = table.lookup(rva);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// The image seeds of one dump: `(target, bytes)` for each heap it lists (and each page heap's
/// `NormalHeap`) and each module. Each image keeps only the captured ranges its subject's walk
/// needs (a range is dropped when the walk is the same without it), so the fuzzer's mutations
/// land on heap bytes.
pub fn image_seeds(dump: &Dump) -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mem = dump.memory();
    let build = dump.target().version.build;
    let ranges = mem.ranges().to_vec();
    if let Ok(d) = heap::discover(dump) {
        let mut refs = d.heaps.clone();
        for h in &d.heaps {
            if let Some((HeapKind::Page, _)) = heap::discover::classify(mem, h.address, h.arch) {
                if let Some(n) = heap::page_heap::root_of(mem, h.address, h.arch)
                    .ok()
                    .and_then(|root| heap::page_heap::normal_heap(mem, root, h.arch))
                {
                    refs.push(HeapRef {
                        address: n,
                        index: None,
                        is_process_heap: false,
                        page_heap_owner: Some(h.address),
                        ..*h
                    });
                }
            }
        }
        for h in refs.iter().take(16) {
            let target = match heap::discover::classify(mem, h.address, h.arch) {
                Some((HeapKind::Page, _)) => "walk_page_heap",
                Some((HeapKind::Segment, _)) => "walk_segment_heap",
                Some((HeapKind::Nt, _)) => {
                    let r = heap::walk_heap(mem, h, build);
                    if r.heaps.first().is_some_and(|i| i.lfh.is_some()) {
                        "walk_lfh"
                    } else {
                        "walk_nt"
                    }
                }
                _ => continue,
            };
            let keep = needed_ranges(mem, &ranges, |m| fingerprint(&heap::walk_heap(m, h, build), m));
            let img = write_image(mem, &keep, h, build, 0);
            if h.ust {
                out.push(("stacks", img.clone()));
            }
            out.push(("allocation_at", img.clone()));
            out.push((target, img));
        }
    }
    for m in dump.info().modules.iter().take(8) {
        let probe = |m2: &AddressSpace| format!("{:?}", pe::read_exports(m2, m.base, u64::from(m.size)));
        let mine: Vec<CapturedRange> = ranges.iter().filter(|r| r.va < m.end() && r.end() > m.base).copied().collect();
        if mine.is_empty() {
            continue;
        }
        let keep = needed_ranges(mem, &mine, probe);
        let h = HeapRef {
            address: m.base,
            arch: pe::image_arch(mem, m.base).unwrap_or(dump.target().arch),
            wow64_32bit: false,
            index: None,
            is_process_heap: false,
            ust: false,
            page_heap_owner: None,
        };
        out.push(("exports", write_image(mem, &keep, &h, build, m.size)));
    }
    out
}

fn fingerprint(r: &HeapReport, mem: &AddressSpace) -> String {
    let stacks = StackTable::collect(mem, r);
    format!("{} {} {} {}", r.blocks.len(), r.corruption.len(), r.summary_table(), stacks.len())
}

/// The ranges of `ranges` without which `probe` gives another answer.
fn needed_ranges(
    mem: &AddressSpace,
    ranges: &[CapturedRange],
    probe: impl Fn(&AddressSpace) -> String,
) -> Vec<CapturedRange> {
    let space = |rs: &[CapturedRange]| {
        let mut file = Vec::new();
        let mut decl = Vec::new();
        for r in rs {
            decl.push(CapturedRange { va: r.va, len: r.len, file_offset: file.len() as u64 });
            file.extend_from_slice(&mem.read(r.va, r.len).expect("an indexed range reads"));
        }
        AddressSpace::new(Arc::new(FileBytes::Owned(file)), decl).0
    };
    let want = probe(&space(ranges));
    let mut keep = ranges.to_vec();
    let mut i = 0;
    while i < keep.len() {
        let mut without = keep.clone();
        without.remove(i);
        if probe(&space(&without)) == want {
            keep = without;
        } else {
            i += 1;
        }
    }
    keep
}
