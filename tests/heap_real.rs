//! Heap walking on real Windows dumps (`../shared/fixtures/real/`, see its PROVENANCE.md).
//!
//! The tests skip, with a printed reason, when the fixtures directory is absent. The expected
//! values below come from the fixtures' provenance notes and from the dump's own
//! MemoryInfoListStream, not from the walker.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ntheap::heap::{self, BlockKind, ChosenBy, CorruptionKind, HeapKind, HeapReport, HeapStatus};
use ntheap::mapped::FileBytes;
use ntheap::{Arch, Dump};

fn fixture(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real");
    if !dir.is_dir() {
        eprintln!("skipped: {} is absent", dir.display());
        return None;
    }
    Some(dir.join(name))
}

const WOW64: &str = "lldb-fizzbuzz_wow64.dmp";

fn wow64() -> Option<(Dump, HeapReport)> {
    let dump = Dump::open(fixture(WOW64)?).expect("open");
    let report = heap::walk(&dump).expect("walk");
    Some((dump, report))
}

#[test]
fn wow64_dump_lists_all_five_nt_heaps() {
    let Some((_, r)) = wow64() else { return };
    println!("{}", r.summary_table());
    let got: Vec<(u64, Arch, bool)> = r.heaps.iter().map(|h| (h.address, h.arch, h.wow64_32bit)).collect();
    assert_eq!(
        got,
        vec![
            (0x50_0000, Arch::X64, false),
            (0x1_0000, Arch::X64, false),
            (0x2_0000, Arch::X64, false),
            (0x70_0000, Arch::X86, true),
            (0x46_0000, Arch::X86, true),
        ]
    );
    for h in &r.heaps {
        assert_eq!(h.kind, HeapKind::Nt, "{:#x}", h.address);
        assert_eq!(h.status, HeapStatus::Walked, "{:#x}", h.address);
        assert!(h.signature_ok && h.encoding_enabled, "{:#x}", h.address);
        let layout = h.layout.expect("layout");
        assert_eq!(layout.chosen_by, ChosenBy::Build);
        let expected = if h.arch == Arch::X64 { "Win7 SP1 x64" } else { "Win7 SP1 x86" };
        assert_eq!(layout.name(), expected);
        assert_eq!(h.segments.len(), 1, "{:#x}", h.address);
        assert!(h.segments[0].walked);
        // The free bytes found by the walk equal _HEAP.TotalFreeSize.
        assert_eq!(Some(h.summary.free_bytes), h.summary.header_free_bytes, "{:#x}", h.address);
        assert_eq!(h.summary.lock_contention, Some(0));
    }
    assert!(r.heaps[0].is_process_heap && r.heaps[3].is_process_heap);
    assert_eq!(r.heap(0x70_0000).unwrap().front_end_type, Some(2));
    assert_eq!(r.heap(0x70_0000).unwrap().front_end_heap, 0xe0020);
}

#[test]
fn wow64_dump_has_no_corruption_and_every_checksum_validates() {
    let Some((_, r)) = wow64() else { return };
    assert!(r.corruption.is_empty(), "{:#?}", r.corruption);
    assert!(r.blocks.corruption.iter().all(|&c| c == 0));
    assert!(r.blocks.kind.iter().all(|&k| k != BlockKind::Unparsed.code()));
    assert!(r.heaps.iter().all(|h| h.corruption_count == 0));
}

/// Every committed byte of every segment is covered by exactly one block, and every reserved but
/// uncommitted byte by exactly one UCR; checked against the dump's MemoryInfoList regions.
#[test]
fn wow64_segments_are_tiled_by_blocks_and_ucrs() {
    let Some((dump, r)) = wow64() else { return };
    let regions = dump.info().regions.as_ref().expect("MemoryInfoListStream");
    const MEM_COMMIT: u32 = 0x1000;
    for h in &r.heaps {
        for seg in &h.segments {
            // Tiling: blocks and UCRs, sorted, from the segment address to LastValidEntry.
            let mut pieces: Vec<(u64, u64, bool)> =
                r.blocks.rows(seg.blocks.clone()).filter(|b| b.level == 0).map(|b| (b.address, b.size, true)).collect();
            pieces.extend(seg.ucrs.iter().map(|u| (u.address, u.size, false)));
            pieces.sort_unstable();
            let mut at = seg.address;
            for &(a, len, _) in &pieces {
                assert_eq!(a, at, "heap {:#x}: gap or overlap at {at:#x}", h.address);
                at += len;
            }
            assert_eq!(at, seg.last_valid_entry);
            assert_eq!(seg.last_valid_entry, seg.base + seg.reserved_bytes);
            // What the blocks cover is what the OS says is committed: exactly, for the private
            // (VirtualAlloc'd) heaps; for the two mapped (MEM_MAPPED) x64 heaps the whole view is
            // committed by the OS while the heap still tracks its own UCR, so there the blocks
            // only have to lie inside committed memory.
            const MEM_PRIVATE: u32 = 0x20000;
            let mut os: Vec<(u64, u64)> = Vec::new();
            let mut private = true;
            for reg in regions {
                let (s, e) = (reg.base.max(seg.address), (reg.base + reg.size).min(seg.last_valid_entry));
                if s < e {
                    private &= reg.kind == MEM_PRIVATE;
                    if reg.state == MEM_COMMIT {
                        match os.last_mut() {
                            Some(last) if last.1 == s => last.1 = e,
                            _ => os.push((s, e)),
                        }
                    }
                }
            }
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for &(a, len, is_block) in &pieces {
                if !is_block || len == 0 {
                    continue;
                }
                match merged.last_mut() {
                    Some(last) if last.1 == a => last.1 = a + len,
                    _ => merged.push((a, a + len)),
                }
            }
            if private {
                assert_eq!(merged, os, "heap {:#x}: blocks vs MEM_COMMIT regions", h.address);
            } else {
                for &(a, e) in &merged {
                    assert!(
                        os.iter().any(|&(s, t)| s <= a && e <= t),
                        "heap {:#x}: {a:#x}..{e:#x} not committed",
                        h.address
                    );
                }
            }
            let committed: u64 = merged.iter().map(|(a, e)| e - a).sum();
            assert_eq!(committed, seg.committed_bytes, "heap {:#x}", h.address);
        }
    }
}

#[test]
fn wow64_process_heap_virtual_block() {
    let Some((_, r)) = wow64() else { return };
    let h = r.heap(0x70_0000).unwrap();
    assert_eq!(h.virtual_blocks.len(), 1);
    let v = &h.virtual_blocks[0];
    assert_eq!(v.address, 0xe0000);
    assert_eq!(v.header_address, 0xe0018);
    assert_eq!(v.user_address, 0xe0020);
    assert_eq!(v.commit_size, 0xd4000);
    assert_eq!(v.reserve_size, 0xd4000);
    assert_eq!(v.corrupt, None);
    assert_eq!(v.flags, 0x0b);
    assert_eq!(h.counters.unwrap().total_size_in_virtual_blocks, 0xd4000);
    for other in r.heaps.iter().filter(|o| o.address != 0x70_0000) {
        assert!(other.virtual_blocks.is_empty());
    }
}

/// §8 discrepancy: [HST]/[DHU] give CommitSize − BusyBlock.Size, [MPF] also subtracts the
/// 0x20-byte header. We follow [HST]/[DHU]; this test pins the choice so that a change is
/// deliberate.
#[test]
fn virtual_block_user_size_follows_hst_not_mpf_unconfirmed() {
    let Some((_, r)) = wow64() else { return };
    let v = &r.heap(0x70_0000).unwrap().virtual_blocks[0];
    assert_eq!(v.unused_bytes, 0x2d8);
    assert_eq!(v.user_size, 0xd4000 - 0x2d8); // [HST]/[DHU]
    assert_ne!(v.user_size, 0xd4000 - 0x2d8 - 0x20); // [MPF]
}

#[test]
fn wow64_block_kinds() {
    let Some((_, r)) = wow64() else { return };
    let h = r.heap(0x70_0000).unwrap();
    let rows: Vec<_> = r.blocks.rows(h.blocks.clone()).collect();
    let top: Vec<_> = rows.iter().filter(|b| b.level == 0).collect();
    let count = |k: BlockKind| top.iter().filter(|b| b.kind == k.code()).count();
    assert_eq!(count(BlockKind::SegmentHeader), 1);
    // The one virtual block holds the _LFH_HEAP (FrontEndHeap 0xe0020 = its user data).
    assert_eq!(count(BlockKind::Virtual), 0);
    assert_eq!(count(BlockKind::LfhHeap), 1);
    // Five UserBlocks containers and the zone that holds their subsegments: on Windows 7 all six
    // are busy blocks with HEAP_ENTRY_VIRTUAL_ALLOC (flags 0x09).
    assert_eq!(count(BlockKind::LfhContainer), 5);
    assert_eq!(count(BlockKind::LfhZone), 1);
    assert!(top
        .iter()
        .filter(|b| b.kind == BlockKind::LfhContainer.code() || b.kind == BlockKind::LfhZone.code())
        .all(|b| b.flags == 9));
    // The UCR-descriptor block and the UCR index allocation.
    assert_eq!(count(BlockKind::Internal), 2);
    assert_eq!(top.iter().filter(|b| !b.busy).count(), 4);
    let first = rows[0];
    assert_eq!((first.address, first.size, first.kind), (0x70_0000, 0x588, BlockKind::SegmentHeader.code()));
    assert_eq!(rows[1].address, h.segments[0].first_entry);
    for b in rows.iter().filter(|b| b.busy && b.kind == BlockKind::Backend.code()) {
        assert_eq!(b.user_address, b.address + 8);
        assert_eq!(b.user_size + u64::from(b.unused_bytes), b.size);
        assert!(r.traces.is_empty(), "no +ust in this dump");
    }
}

#[test]
fn other_real_dumps_list_heaps_as_not_captured() {
    for name in [
        "lldb-sigsegv-win10-x64.dmp",
        "breakpad-tiny-exe-fastfail.dmp",
        "breakpad-tiny-exe-with-cet-xsave.dmp",
        "electron-node-minidump-windows.dmp",
    ] {
        let Some(path) = fixture(name) else { return };
        let dump = Dump::open(&path).expect("open");
        let r = heap::walk(&dump).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!r.heaps.is_empty(), "{name}");
        for h in &r.heaps {
            assert_eq!(h.status, HeapStatus::HeaderNotCaptured, "{name} {:#x}", h.address);
            assert!(r.corruption.iter().any(|c| c.heap == h.address && c.kind == CorruptionKind::NotCaptured));
        }
        assert!(r.blocks.is_empty());
        println!("{name}:\n{}", r.summary_table());
    }
    // Heap lists that are themselves not captured still give the process heap.
    let Some(path) = fixture("breakpad-tiny-exe-fastfail.dmp") else { return };
    let r = heap::walk(&Dump::open(path).unwrap()).unwrap();
    assert_eq!(r.heaps.len(), 1);
    assert!(r.corruption.iter().any(|c| c.heap == 0 && c.detail.contains("ProcessHeaps array")));
}

#[test]
fn dumps_without_a_readable_peb_are_errors_not_panics() {
    for name in ["rust-minidump-test-breakpad-minidump2.dmp", "rust-minidump-invalid-parameter.dmp"] {
        let Some(path) = fixture(name) else { return };
        let dump = Dump::open(&path).expect("open");
        let e = heap::walk(&dump).expect_err(name);
        println!("{name}: {e}");
    }
}

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Address ranges of the heaps (segments and virtual blocks).
fn heap_va_spans(r: &HeapReport) -> Vec<(u64, u64)> {
    let mut vas = Vec::new();
    for h in &r.heaps {
        vas.extend(h.segments.iter().map(|s| (s.address, s.last_valid_entry)));
        vas.extend(h.virtual_blocks.iter().map(|v| (v.address, v.address + v.commit_size)));
    }
    vas
}

/// File offsets of the heap pages (segments' committed bytes and virtual blocks) of the dump.
fn heap_file_spans(dump: &Dump, r: &HeapReport) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    for h in &r.heaps {
        let mut vas: Vec<(u64, u64)> = h.segments.iter().map(|s| (s.address, s.last_valid_entry)).collect();
        vas.extend(h.virtual_blocks.iter().map(|v| (v.address, v.address + v.commit_size)));
        for (start, end) in vas {
            for c in dump.memory().ranges() {
                let (s, e) = (start.max(c.va), end.min(c.end()));
                if s < e {
                    let f = (c.file_offset + (s - c.va)) as usize;
                    spans.push((f, f + (e - s) as usize));
                }
            }
        }
    }
    spans
}

/// Flip, zero and smear bytes in heap pages, and truncate the file: the walk must neither panic
/// nor run away.
#[test]
fn hostile_mutations_never_panic_and_terminate() {
    let Some(path) = fixture(WOW64) else { return };
    let original = std::fs::read(&path).unwrap();
    let dump = Dump::from_bytes(FileBytes::Owned(original.clone())).unwrap();
    let clean = heap::walk(&dump).unwrap();
    let spans = heap_file_spans(&dump, &clean);
    let vas = heap_va_spans(&clean);
    let heap_bytes: usize = spans.iter().map(|(a, b)| b - a).sum();
    assert!(heap_bytes > 0x10_0000);
    let iterations: u64 = std::env::var("NTHEAP_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut with_corruption = 0;
    let mut kinds = std::collections::BTreeMap::new();
    for i in 0..iterations {
        let mut bytes = original.clone();
        let edits = 1 + rng.below(64);
        for _ in 0..edits {
            let (a, b) = spans[rng.below(spans.len() as u64) as usize];
            // Bias edits towards the first page of a span (heap header, first blocks).
            let span_len = (b - a) as u64;
            let off = if rng.below(2) == 0 { rng.below(span_len.min(0x1000)) } else { rng.below(span_len) };
            let at = a + off as usize;
            match rng.below(5) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = 0,
                2 => bytes[at] = rng.next() as u8,
                3 => {
                    // A plausible pointer: an address inside some heap, as a list link would be.
                    let (s, e) = vas[rng.below(vas.len() as u64) as usize];
                    let p = (s + rng.below(e - s)) & !3;
                    let at = at & !3;
                    let n = 4.min(bytes.len() - at);
                    bytes[at..at + n].copy_from_slice(&(p as u32).to_le_bytes()[..n]);
                }
                _ => {
                    let n = (rng.below(64) as usize).min(bytes.len() - at);
                    bytes[at..at + n].fill(0xff);
                }
            }
        }
        if i % 4 == 3 {
            let cut = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(cut);
        }
        let t = Instant::now();
        if let Ok(d) = Dump::from_bytes(FileBytes::Owned(bytes)) {
            if let Ok(r) = heap::walk(&d) {
                if !r.corruption.is_empty() {
                    with_corruption += 1;
                }
                for c in &r.corruption {
                    *kinds.entry(c.kind.name()).or_insert(0u32) += 1;
                }
                assert!(r.blocks.is_rectangular());
                let _ = r.summary_table();
            }
        }
        slowest = slowest.max(t.elapsed());
        assert!(slowest < Duration::from_secs(20), "iteration {i} took {slowest:?}");
    }
    println!(
        "{iterations} mutated walks in {:?} (slowest {slowest:?}); {with_corruption} reported corruption: {kinds:?}",
        started.elapsed()
    );
    assert!(with_corruption > 0);
}

/// Release-mode throughput on the real dump (run with `--release -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark; run in release mode"]
fn bench_walk_real_dump() {
    let Some((dump, r)) = wow64() else { return };
    let blocks = r.blocks.len() as u64;
    let n = 20_000u32;
    let t = Instant::now();
    let mut total = 0u64;
    for _ in 0..n {
        total += heap::walk(&dump).unwrap().blocks.len() as u64;
    }
    let dt = t.elapsed();
    assert_eq!(total, blocks * u64::from(n));
    println!(
        "{n} walks of {blocks} blocks in {dt:?}: {:.1} µs/walk, {:.2} M blocks/s (incl. PEB discovery and layout validation)",
        dt.as_secs_f64() * 1e6 / f64::from(n),
        total as f64 / dt.as_secs_f64() / 1e6
    );
}

/// Heap 0x700000's LFH (Windows 7 SP1, x86): every container walked, and what the walk counts
/// agrees with each subsegment's own counter. The expected subsegments were read from the dump's
/// bytes by hand (zone 0x70c0b8, FreePointer 0x70c168: five `_HEAP_SUBSEGMENT`s of 0x20 bytes),
/// not from the walker.
#[test]
fn wow64_lfh_is_walked_and_agrees_with_its_counters() {
    let Some((_, r)) = wow64() else { return };
    let h = r.heap(0x70_0000).unwrap();
    let lfh = h.lfh.as_ref().expect("heap 0x700000 has an LFH");
    assert_eq!(lfh.address, 0xe0020);
    assert_eq!(
        (lfh.layout, lfh.not_decoded, lfh.key_source),
        (Some("Win7 SP1 x86 LFH"), None, heap::lfh::KeySource::NotNeeded)
    );
    assert_eq!(lfh.zones, vec![0x70_c0b8]);
    // (subsegment, UserBlocks, BlockSize bytes, BlockCount, Depth = free count)
    let expected = [
        (0x70_c0c8, 0x70_bcb8, 24, 41, 14),
        (0x70_c0e8, 0x70_ce60, 40, 50, 0),
        (0x70_c108, 0x70_f2e0, 40, 50, 0),
        (0x70_c128, 0x70_fd08, 40, 50, 26),
        (0x70_c148, 0x71_29b8, 32, 63, 62),
    ];
    let got: Vec<_> = lfh
        .subsegments
        .iter()
        .map(|s| (s.address, s.user_blocks, s.block_size, s.block_count, s.free_count_field))
        .collect();
    assert_eq!(got, expected);
    for s in &lfh.subsegments {
        assert_eq!(s.not_decoded, None);
        // The walk's busy count (per-block UnusedBytes) equals BlockCount − AggregateExchg.Depth.
        assert_eq!(u64::from(s.busy) + u64::from(s.free_count_field), u64::from(s.block_count), "{:#x}", s.address);
        assert_eq!(s.busy + s.free, u32::from(s.block_count));
        // Children tile the container: head overhead, the blocks, slack.
        let row = s.row.expect("container met");
        let c = r.blocks.row(row).unwrap();
        assert_eq!(c.kind, BlockKind::LfhContainer.code());
        let kids = r.blocks.descendants(row);
        let mut at = c.address;
        for k in r.blocks.rows(kids.clone()) {
            assert_eq!((k.address, k.parent, k.level), (at, row as i32, 1));
            at += k.size;
        }
        assert_eq!(at, c.address + c.size);
        let blocks: Vec<_> = r.blocks.rows(kids).filter(|k| k.kind == BlockKind::LfhBlock.code()).collect();
        assert_eq!(blocks.len(), usize::from(s.block_count));
        assert_eq!(blocks[0].address, s.user_blocks + 0x10, "§9.6 Win7: first block after the 0x10-byte header");
        for b in blocks.iter().filter(|b| b.busy) {
            assert!(b.is_allocation);
            assert_eq!((b.user_address, b.size), (b.address + 8, s.block_size));
            assert_eq!(b.user_size + u64::from(b.unused_bytes), b.size);
        }
    }
    // No container counted twice: each UserBlocks is in exactly one container row.
    let containers: Vec<_> =
        r.blocks.rows(h.blocks.clone()).filter(|b| b.kind == BlockKind::LfhContainer.code()).collect();
    assert_eq!(containers.len(), 5);
    println!("{:>6} {:>5} {:>6} {:>5} {:>10}", "size", "segs", "blocks", "busy", "busy bytes");
    for c in lfh.size_classes() {
        println!("{:>6} {:>5} {:>6} {:>5} {:>10}", c.block_size, c.subsegments, c.blocks, c.busy, c.busy_bytes);
    }
}
