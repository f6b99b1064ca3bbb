//! Walk tests on synthetic heaps built by [`super::testing`] (literal offsets from the layout
//! reference, independent of `crate::layouts`).

use super::testing::{BlockSpec, Epoch, HeapSpec, SegSpec, Space, VirtSpec};
use super::*;

const ARCHS: [Arch; 2] = [Arch::X86, Arch::X64];
const EPOCHS: [Epoch; 2] = [Epoch::Win7, Epoch::Win10_1809];

fn heap_ref(spec: &HeapSpec) -> HeapRef {
    HeapRef {
        address: spec.heap(),
        arch: spec.arch,
        wow64_32bit: false,
        index: Some(0),
        is_process_heap: true,
        ust: spec.ust,
        page_heap_owner: None,
    }
}

fn walk_spec(spec: &HeapSpec, s: &Space) -> HeapReport {
    walk_heap(&s.build(), &heap_ref(spec), spec.epoch.build())
}

/// Every byte of each walked segment, from its address to LastValidEntry, is covered by exactly
/// one row or one UCR.
fn assert_coverage(report: &HeapReport) {
    for h in &report.heaps {
        for seg in h.segments.iter().filter(|s| s.walked) {
            let mut pieces: Vec<(u64, u64)> =
                report.blocks.rows(seg.blocks.clone()).map(|r| (r.address, r.size)).collect();
            pieces.extend(seg.ucrs.iter().map(|u| (u.address, u.size)));
            pieces.sort_unstable();
            let mut at = seg.address;
            for (a, len) in pieces {
                assert_eq!(a, at, "segment {:#x}: gap or overlap at {at:#x}", seg.address);
                at += len;
            }
            assert_eq!(at, seg.last_valid_entry, "segment {:#x} not covered to its end", seg.address);
        }
    }
}

fn rich_spec(arch: Arch, epoch: Epoch) -> HeapSpec {
    let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
    let mut lfh = BlockSpec::busy(0x40, 0x40 * g - 0x10);
    lfh.extra_flags = 0x08;
    let mut spec = HeapSpec::simple(
        arch,
        epoch,
        0x0050_0000,
        0x10,
        3,
        vec![
            BlockSpec::busy(4, 0x11),
            BlockSpec::free(6),
            BlockSpec::busy(3, 8),
            lfh,
            BlockSpec::busy(0x20, 0x20 * g - 0x30),
            BlockSpec::free(2),
            BlockSpec::busy(2, 1),
        ],
    );
    spec.segments.push(SegSpec {
        address: 0x0070_0000,
        pages: 8,
        committed_pages: 2,
        blocks: vec![BlockSpec::busy(5, 0x21), BlockSpec::free(3), BlockSpec::busy(8, 0x33)],
    });
    spec.segments.push(SegSpec {
        address: 0x0080_0000,
        pages: 1,
        committed_pages: 1,
        blocks: vec![BlockSpec::busy(2, 4)],
    });
    spec.virtual_blocks = vec![
        VirtSpec { address: 0x0090_0000, commit: 0x3000, user_size: 0x2f00, trace: 0 },
        VirtSpec { address: 0x00a0_0000, commit: 0x1000, user_size: 0x800, trace: 0 },
    ];
    spec
}

#[test]
fn walks_every_block_of_synthetic_heaps() {
    for arch in ARCHS {
        for epoch in EPOCHS {
            let spec = rich_spec(arch, epoch);
            let (s, exp) = spec.write();
            let report = walk_spec(&spec, &s);
            assert!(report.corruption.is_empty(), "{arch} {epoch:?}: {:#?}", report.corruption);
            let h = &report.heaps[0];
            assert_eq!(h.status, HeapStatus::Walked);
            assert_eq!(h.kind, HeapKind::Nt);
            assert_eq!(h.layout.unwrap().chosen_by, ChosenBy::Build);
            assert!(h.signature_ok && h.encoding_enabled);
            let got: Vec<BlockRow> = report.blocks.rows(0..report.blocks.len()).collect();
            assert_eq!(got.len(), exp.rows.len(), "{arch} {epoch:?}");
            for (g, e) in got.iter().zip(&exp.rows) {
                assert_eq!(g, e, "{arch} {epoch:?}");
            }
            assert_eq!(h.segments.len(), 3);
            for (seg, ucrs) in h.segments.iter().zip(&exp.ucrs) {
                let got: Vec<(u64, u64)> = seg.ucrs.iter().map(|u| (u.address, u.size)).collect();
                assert_eq!(&got, ucrs);
                assert!(seg.walked);
            }
            assert_coverage(&report);
            // !heap -s numbers.
            let sm = &h.summary;
            assert_eq!(sm.reserved, (0x10 + 8 + 1) * 0x1000);
            assert_eq!(sm.committed, (3 + 2 + 1) * 0x1000);
            assert_eq!(sm.free_bytes, exp.free_bytes);
            assert_eq!(sm.header_free_bytes, Some(exp.free_bytes));
            assert_eq!(sm.ucr_count, 2);
            assert_eq!((sm.virtual_block_count, sm.virtual_block_bytes), (2, 0x4000));
            assert_eq!(sm.virtual_bytes, Some(sm.reserved));
            assert_eq!(h.counters.unwrap().total_segments, 3);
            let v = &h.virtual_blocks[0];
            let hdr = if arch == Arch::X86 { 0x18 } else { 0x30 };
            assert_eq!((v.header_address, v.commit_size, v.user_size), (0x90_0000 + hdr, 0x3000, 0x2f00));
            let table = report.summary_table();
            assert!(table.contains("     100     24    100 "), "{table}");
        }
    }
}

#[test]
fn ust_blocks_take_pointer_and_size_from_the_trace_header() {
    for arch in ARCHS {
        let mut b = BlockSpec::busy(8, 0x13);
        b.trace = 0x7700_1230;
        let mut spec = HeapSpec::simple(arch, Epoch::Win10_1809, 0x40_0000, 4, 1, vec![b, BlockSpec::busy(8, 0x20)]);
        spec.ust = true;
        spec.virtual_blocks =
            vec![VirtSpec { address: 0x60_0000, commit: 0x2000, user_size: 0x1800, trace: 0x7700_4560 }];
        let (s, exp) = spec.write();
        let report = walk_spec(&spec, &s);
        assert!(report.corruption.is_empty(), "{:#?}", report.corruption);
        let got: Vec<BlockRow> = report.blocks.rows(0..report.blocks.len()).collect();
        assert_eq!(got, exp.rows);
        let traces: Vec<u64> = (0..got.len()).map(|i| report.traces.of(i)).collect();
        assert_eq!(traces, exp.traces);
        let user = if arch == Arch::X86 { 0x18 } else { 0x30 };
        assert_eq!(got[1].user_address, got[1].address + user);
        assert_eq!((got[1].user_size, traces[1]), (0x13, 0x7700_1230));
        assert_eq!(traces[2], 0, "a null trace pointer means no trace");
        let last = got.len() - 1;
        let v = got[last];
        let vuser = if arch == Arch::X86 { 0x30 } else { 0x60 };
        assert_eq!((v.user_address, traces[last], v.user_size), (0x60_0000 + vuser, 0x7700_4560, 0x1800));
    }
}

#[test]
fn unencoded_heaps_walk_too() {
    for arch in ARCHS {
        let mut spec = rich_spec(arch, Epoch::Win7);
        spec.key = None;
        let (s, exp) = spec.write();
        let report = walk_spec(&spec, &s);
        assert!(report.corruption.is_empty(), "{:#?}", report.corruption);
        assert!(!report.heaps[0].encoding_enabled);
        assert_eq!(report.blocks.rows(0..report.blocks.len()).collect::<Vec<_>>(), exp.rows);
    }
}

fn group_offset(arch: Arch) -> u64 {
    if arch == Arch::X86 {
        0
    } else {
        8
    }
}

#[test]
fn bad_checksum_is_recorded_and_the_walk_resynchronises() {
    for arch in ARCHS {
        let blocks = (0..12).map(|i| if i % 3 == 1 { BlockSpec::free(3) } else { BlockSpec::busy(4, 9) }).collect();
        let spec = HeapSpec::simple(arch, Epoch::Win7, 0x40_0000, 4, 2, blocks);
        let (mut s, exp) = spec.write();
        let victim = exp.rows[3];
        let byte = s.get(victim.address + group_offset(arch), 1)[0];
        s.put_u8(victim.address + group_offset(arch), byte ^ 0x01);
        let report = walk_spec(&spec, &s);
        let kinds: Vec<_> = report.corruption.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, vec![CorruptionKind::BadChecksum], "{:#?}", report.corruption);
        assert_eq!(report.corruption[0].address, victim.address);
        assert!(report.corruption[0].detail.contains("resynchronised"));
        let got: Vec<BlockRow> = report.blocks.rows(0..report.blocks.len()).collect();
        // Rows before the victim are intact; the victim became one unparsed row; the rest resume.
        assert_eq!(&got[..3], &exp.rows[..3]);
        assert_eq!(got[3].kind, BlockKind::Unparsed.code());
        assert_eq!(got[3].corruption, CorruptionKind::BadChecksum.code());
        assert_eq!(got[3].address, victim.address);
        assert_eq!(got[3].size, victim.size, "resync lands on the next real header");
        assert_eq!(&got[4..], &exp.rows[4..]);
        assert_coverage(&report);
    }
}

#[test]
fn zero_size_and_oversized_blocks_are_recorded() {
    for arch in ARCHS {
        let blocks = (0..6).map(|_| BlockSpec::busy(4, 9)).collect();
        let spec = HeapSpec::simple(arch, Epoch::Win7, 0x40_0000, 2, 1, blocks);
        let (s0, exp) = spec.write();

        // Size 0 with a valid checksum (encode it properly).
        let mut s = s0.clone();
        let key = spec.key.unwrap();
        let dec = EntryDecoder::new(
            &crate::layouts::rows_for(crate::layouts::nt_heap::NT_HEAP_LAYOUTS, arch).next().unwrap().layout.entry,
            Some(key),
        );
        let victim = exp.rows[2];
        s.put(victim.address + group_offset(arch), &dec.encode(0, 1, 4, 0, 8));
        let report = walk_spec(&spec, &s);
        assert_eq!(report.corruption[0].kind, CorruptionKind::ZeroSize);
        assert_coverage(&report);

        // A size that runs past the committed range.
        let mut s = s0.clone();
        s.put(victim.address + group_offset(arch), &dec.encode(0x7000, 1, 4, 0, 8));
        let report = walk_spec(&spec, &s);
        assert_eq!(report.corruption[0].kind, CorruptionKind::OutOfSegment);
        assert_coverage(&report);

        // A wrong PreviousSize is recorded on the row; the walk does not stop.
        let mut s = s0.clone();
        s.put(victim.address + group_offset(arch), &dec.encode(4, 1, 9, 0, 8));
        let report = walk_spec(&spec, &s);
        assert_eq!(report.corruption.len(), 1);
        assert_eq!(report.corruption[0].kind, CorruptionKind::BadPreviousSize);
        assert_eq!(report.blocks.corruption[2], CorruptionKind::BadPreviousSize.code());
        assert_eq!(report.blocks.len(), exp.rows.len());
    }
}

#[test]
fn uncaptured_pages_inside_a_segment() {
    for arch in ARCHS {
        let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
        // Fill 3 committed pages with 0x40-byte blocks, then capture pages 0 and 2 only.
        let n = ((3 * 0x1000 - 0x1000) / (4 * g)) as usize; // leave room for the header block
        let blocks = (0..n).map(|_| BlockSpec::busy(4, 9)).collect();
        let spec = HeapSpec::simple(arch, Epoch::Win7, 0x40_0000, 4, 3, blocks);
        let (full, _) = spec.write();
        let mut s = Space::default();
        s.add(0x40_0000, 0x1000);
        s.add(0x40_2000, 0x1000);
        let mut full = full;
        let p0 = full.get(0x40_0000, 0x1000);
        let p2 = full.get(0x40_2000, 0x1000);
        s.put(0x40_0000, &p0);
        s.put(0x40_2000, &p2);
        let report = walk_spec(&spec, &s);
        let c = &report.corruption;
        let hole = 0x40_1000..0x40_2000;
        assert!(c.iter().any(|c| c.kind == CorruptionKind::NotCaptured && hole.contains(&c.address)), "{c:#?}");
        assert_coverage(&report);
        // Blocks of page 2 are found again after the hole.
        assert!(report.blocks.address.iter().any(|&a| (0x40_2000..0x40_3000).contains(&a)));
        let unparsed: Vec<_> =
            report.blocks.rows(0..report.blocks.len()).filter(|r| r.kind == BlockKind::Unparsed.code()).collect();
        assert_eq!(unparsed.len(), 1);
        assert!(hole.contains(&unparsed[0].address));
        assert!(unparsed[0].address + unparsed[0].size >= 0x40_2000);
    }
}

#[test]
fn broken_lists_are_bounded_and_recorded() {
    for arch in ARCHS {
        let p = arch.ptr_size();
        let spec = rich_spec(arch, Epoch::Win7);
        let (s0, _) = spec.write();
        let seglist = if arch == Arch::X86 { 0xa8 } else { 0x128 };
        let seg_link = if arch == Arch::X86 { 0x10 } else { 0x18 };

        // Segment list: second segment's Flink points back to the second segment (a loop).
        let mut s = s0.clone();
        s.put_ptr(arch, 0x70_0000 + seg_link, 0x70_0000 + seg_link);
        let report = walk_spec(&spec, &s);
        assert!(
            report.corruption.iter().any(|c| c.kind == CorruptionKind::ListLoop && c.address == 0x70_0000 + seg_link),
            "{:#?}",
            report.corruption
        );
        assert_eq!(report.heaps[0].segments.len(), 2);
        assert_coverage(&report);

        // Virtual-block list: Flink into uncaptured memory.
        let mut s = s0.clone();
        s.put_ptr(arch, 0x90_0000, 0x1234_0000);
        let report = walk_spec(&spec, &s);
        // Recorded at the node holding the pointer out of the dump.
        assert!(report.corruption.iter().any(|c| c.kind == CorruptionKind::NotCaptured
            && c.address == 0x90_0000
            && c.detail.contains("0x12340000")));
        assert_eq!(report.heaps[0].virtual_blocks.len(), 1);

        // Segment list head pointing at garbage: only the heap's own segment is walked.
        let mut s = s0.clone();
        s.put_ptr(arch, 0x50_0000 + seglist + p, 0); // Blink of the head: layout check still passes via Flink
        s.put_ptr(arch, 0x70_0000 + seg_link, 0);
        let report = walk_spec(&spec, &s);
        assert!(report.corruption.iter().any(|c| c.kind == CorruptionKind::BadLink));
        assert_coverage(&report);
    }
}

#[test]
fn bad_ucr_descriptors_and_overlapping_segments() {
    for arch in ARCHS {
        let spec = rich_spec(arch, Epoch::Win10_1809);
        let (s0, exp) = spec.write();
        // UCR of the heap segment claims to start inside committed memory past its end.
        let ucr_block = exp
            .rows
            .iter()
            .zip(&exp.segments)
            .find(|(r, &seg)| seg == 0x50_0000 && r.kind == BlockKind::Internal.code())
            .unwrap()
            .0;
        let d = ucr_block.address + if arch == Arch::X86 { 8 } else { 16 };
        let addr_off = if arch == Arch::X86 { 0x10 } else { 0x20 };
        let mut s = s0.clone();
        s.put_ptr(arch, d + addr_off, 0x50_f000);
        let report = walk_spec(&spec, &s);
        assert!(report.corruption.iter().any(|c| c.kind == CorruptionKind::BadUcr), "{:#?}", report.corruption);

        // Two heaps sharing a segment: the second walk refuses it.
        let mem = s0.build();
        let mut state = WalkState::new(&mem, &crate::limits::Limits::default(), crate::limits::Cancel::new());
        let mut report = HeapReport::default();
        let r = heap_ref(&spec);
        let half = Half::prepare(&mem, &[&r], spec.epoch.build(), &Symbols::default(), None, &state, WalkDepth::Blocks);
        walk_into(&mem, &r, &half, &mut report, &mut state);
        walk_into(&mem, &r, &half, &mut report, &mut state);
        assert_eq!(report.heaps.len(), 2);
        assert!(report.heaps[1].blocks.len() == 2, "only the virtual blocks are listed again");
        assert!(report.corruption.iter().all(|c| c.kind == CorruptionKind::OutOfSegment));
        assert_eq!(report.corruption.len(), 3);
    }
}

#[test]
fn heaps_that_are_not_walked() {
    let spec = HeapSpec::simple(Arch::X64, Epoch::Win7, 0x40_0000, 2, 1, vec![]);
    let (mut s, _) = spec.write();
    let mut r = heap_ref(&spec);
    r.address = 0x99_0000;
    let rep = walk_heap(&s.build(), &r, 7601);
    assert_eq!(rep.heaps[0].status, HeapStatus::HeaderNotCaptured);
    assert_eq!(rep.corruption[0].kind, CorruptionKind::NotCaptured);

    let r = heap_ref(&spec);
    s.put_u32(0x40_0000 + 0xa0, 0); // _HEAP.Signature
    let rep = walk_heap(&s.build(), &r, 7601);
    assert_eq!(rep.heaps[0].status, HeapStatus::NoLayout);
    assert_eq!(rep.corruption[0].kind, CorruptionKind::NoLayout);

    s.put_u32(0x40_0000 + 0x10, 0xDDEE_DDEE);
    let rep = walk_heap(&s.build(), &r, 7601);
    // An NT heap's bytes behind a segment-heap signature: no segment-heap layout validates.
    assert_eq!((rep.heaps[0].status, rep.heaps[0].kind), (HeapStatus::NotWalked, HeapKind::Segment));
    assert_eq!(rep.corruption[0].kind, CorruptionKind::NoLayout);
    assert!(rep.heaps[0].not_walked.as_deref().unwrap().contains("no segment-heap layout validates"));
    assert!(rep.summary_table().contains("segment heap, not walked"));

    s.put_u32(0x40_0000 + 0x10, 0x1234_5678);
    let rep = walk_heap(&s.build(), &r, 7601);
    assert_eq!((rep.heaps[0].status, rep.heaps[0].kind), (HeapStatus::NotWalked, HeapKind::Unknown));
    assert_eq!(rep.corruption[0].kind, CorruptionKind::BadSignature);
}

#[test]
fn x64_unused_bytes_overflow_reads_the_next_header_prefix() {
    // A 0x200-byte busy block for 0x10 bytes: UnusedBytes would be 0x1f0, stored as 0x3F with the
    // real count in the next block's PreviousBlockPrivateData (§6.4, [DHU]).
    let spec = HeapSpec::simple(
        Arch::X64,
        Epoch::Win7,
        0x40_0000,
        2,
        1,
        vec![BlockSpec::busy(0x20, 0x1ff), BlockSpec::busy(2, 4)],
    );
    let (mut s, exp) = spec.write();
    let b = exp.rows[1];
    let key = spec.key.unwrap();
    let dec = EntryDecoder::new(
        &crate::layouts::rows_for(crate::layouts::nt_heap::NT_HEAP_LAYOUTS, Arch::X64).next().unwrap().layout.entry,
        Some(key),
    );
    s.put(b.address + 8, &dec.encode(0x20, 1, 0xa8, 0, 0x3F));
    s.put_u64(b.address + b.size, 0x1f0);
    let report = walk_spec(&spec, &s);
    assert!(report.corruption.is_empty(), "{:#?}", report.corruption);
    assert_eq!((report.blocks.user_size[1], report.blocks.unused_bytes[1]), (0x10, 0x1f0));
}

#[test]
fn internal_blocks_include_the_ucr_index_allocation() {
    for arch in ARCHS {
        let spec =
            HeapSpec::simple(arch, Epoch::Win7, 0x40_0000, 2, 1, vec![BlockSpec::busy(4, 9), BlockSpec::busy(4, 9)]);
        let (mut s, exp) = spec.write();
        let idx = if arch == Arch::X86 { 0xbc } else { 0x148 };
        s.put_ptr(arch, 0x40_0000 + idx, exp.rows[2].user_address);
        let report = walk_spec(&spec, &s);
        let kinds: Vec<u8> = report.blocks.kind.clone();
        assert_eq!(kinds[1], BlockKind::Backend.code());
        assert_eq!(kinds[2], BlockKind::Internal.code());
    }
}

/// Release-mode throughput of the entry walk on one large synthetic segment
/// (`cargo test --release --lib bench_ -- --ignored --nocapture`).
#[test]
#[ignore = "benchmark; run in release mode"]
fn bench_entry_walk_large_segment() {
    for arch in ARCHS {
        let pages: u32 = 0x2000; // 32 MiB
        let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
        let n = ((u64::from(pages) * 0x1000 - 0x2000) / (3 * g)) as usize;
        let blocks = (0..n).map(|i| if i % 7 == 3 { BlockSpec::free(3) } else { BlockSpec::busy(3, g + 5) }).collect();
        let spec = HeapSpec::simple(arch, Epoch::Win10_1809, 0x1000_0000, pages, pages, blocks);
        let (s, exp) = spec.write();
        let mem = s.build();
        let r = heap_ref(&spec);
        let rounds = 10;
        let t = std::time::Instant::now();
        let mut rows = 0;
        for _ in 0..rounds {
            let rep = walk_heap(&mem, &r, spec.epoch.build());
            assert!(rep.corruption.is_empty());
            rows += rep.blocks.len();
        }
        let dt = t.elapsed();
        assert_eq!(rows, exp.rows.len() * rounds);
        println!(
            "{arch}: {} blocks per walk, {:.1} ms/walk, {:.1} M blocks/s",
            exp.rows.len(),
            dt.as_secs_f64() * 1e3 / rounds as f64,
            rows as f64 / dt.as_secs_f64() / 1e6
        );
    }
}

/// Random byte edits in every layout epoch's synthetic heap: no panic, and coverage still holds
/// for every segment that was walked (unparsed gaps keep the tiling).
#[test]
fn random_edits_keep_the_walk_total_and_the_tiling() {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for arch in ARCHS {
        for epoch in EPOCHS {
            for encoded in [true, false] {
                let mut spec = rich_spec(arch, epoch);
                if !encoded {
                    spec.key = None;
                }
                let (s0, _) = spec.write();
                // Edit within the first 0x1000 bytes of each segment and virtual block, where the
                // headers and lists are.
                let targets: Vec<u64> = spec
                    .segments
                    .iter()
                    .map(|s| s.address)
                    .chain(spec.virtual_blocks.iter().map(|v| v.address))
                    .collect();
                for _ in 0..150 {
                    let mut s = s0.clone();
                    for _ in 0..1 + next() % 8 {
                        let at = targets[(next() % targets.len() as u64) as usize] + next() % 0x1000;
                        let v = match next() % 3 {
                            0 => 0,
                            1 => next() as u8,
                            _ => s.get(at, 1)[0] ^ (1 << (next() % 8)),
                        };
                        s.put_u8(at, v);
                    }
                    let report = walk_spec(&spec, &s);
                    assert_coverage(&report);
                    let _ = report.summary_table();
                }
            }
        }
    }
}

/// A crafted MemoryList can point many descriptors at the same file bytes. A segment that claims
/// 0x400 pages, each "captured" from the same 4 KiB of small blocks, must not turn an 8 KiB file
/// into 0x40000 rows: the address space keeps each file byte at one address only.
#[test]
fn file_bytes_aliased_at_many_addresses_are_walked_once() {
    use std::sync::Arc;

    use crate::mapped::FileBytes;
    use crate::memory::CapturedRange;

    let spec = HeapSpec::simple(Arch::X86, Epoch::Win7, 0x40_0000, 1, 1, vec![]);
    let (mut s, _) = spec.write();
    let layout = crate::layouts::select(crate::layouts::nt_heap::NT_HEAP_LAYOUTS, "", Arch::X86, 7601).unwrap();
    let dec = EntryDecoder::new(&layout.layout.entry, spec.key);
    s.add(0x90_0000, 0x1000);
    for k in 0..0x100 {
        s.put(0x90_0000 + k * 16, &dec.encode(2, 0, 2, 0, 0)); // free blocks of 16 bytes
    }
    let pages = 0x401u64;
    s.put_u32(0x40_0000 + 0x20, pages as u32); // §5 NumberOfPages
    s.put_u32(0x40_0000 + 0x28, (0x40_0000 + pages * 0x1000) as u32); // §5 LastValidEntry
    let (file, mut ranges) = s.file_and_ranges();
    let filler = ranges[1].file_offset;
    ranges.extend((1..pages).map(|k| CapturedRange { va: 0x40_0000 + k * 0x1000, len: 0x1000, file_offset: filler }));
    let file_len = file.len() as u64;
    let mem = AddressSpace::new(Arc::new(FileBytes::Owned(file)), ranges).0;
    assert!(mem.captured_bytes() <= file_len);
    let report = walk_heap(&mem, &heap_ref(&spec), Epoch::Win7.build());
    assert_eq!(report.heaps[0].status, HeapStatus::Walked);
    assert!(report.blocks.len() as u64 <= file_len / 8, "{} rows from a {file_len:#x}-byte file", report.blocks.len());
    assert_coverage(&report);
}

/// `CommitSize` is read from the dump: two virtual blocks that each claim nearly 2^64 bytes are
/// plausible one at a time (CommitSize ≥ the header, ReserveSize 0 = unknown) and their total
/// must saturate, not overflow.
#[test]
fn huge_virtual_block_sizes_saturate_the_totals() {
    for arch in ARCHS {
        let mut spec = HeapSpec::simple(arch, Epoch::Win7, 0x0050_0000, 4, 4, vec![BlockSpec::busy(4, 8)]);
        spec.virtual_blocks = vec![
            VirtSpec { address: 0x0090_0000, commit: 0x1000, user_size: 0x800, trace: 0 },
            VirtSpec { address: 0x00a0_0000, commit: 0x1000, user_size: 0x800, trace: 0 },
        ];
        let (mut s, _) = spec.write();
        let (commit, reserve) = if arch == Arch::X64 { (0x20, 0x28) } else { (0x10, 0x14) }; // §8
        let huge = if arch == Arch::X64 { u64::MAX - 0x10 } else { u64::from(u32::MAX) };
        for v in [0x0090_0000u64, 0x00a0_0000] {
            s.put_ptr(arch, v + commit, huge);
            s.put_ptr(arch, v + reserve, 0);
        }
        let report = walk_spec(&spec, &s);
        let h = &report.heaps[0];
        assert_eq!(h.virtual_blocks.len(), 2);
        let want = if arch == Arch::X64 { u64::MAX } else { 2 * huge };
        assert_eq!(h.summary.virtual_block_bytes, want);
        let _ = report.summary_table();
    }
}

/// Ranges walked in parallel give exactly the rows, traces, records and LFH statistics of the
/// sequential walk, in the same order.
#[test]
fn parallel_and_sequential_walks_agree() {
    for arch in ARCHS {
        let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
        let mut spec = rich_spec(arch, Epoch::Win10_1809);
        // Three more segments of 2 MiB each, busy blocks with +ust traces and free ones, so the
        // heap has > 4 MiB committed in several ranges.
        spec.ust = true;
        for k in 0..3u64 {
            let pages = 0x200u32;
            let n = ((u64::from(pages) * 0x1000 - 0x2000) / (8 * g)) as usize;
            let blocks = (0..n)
                .map(|i| {
                    if i % 5 == 2 {
                        BlockSpec::free(8)
                    } else {
                        let mut b = BlockSpec::busy(8, 3 * g);
                        b.trace = 0x7700_0000 + (i as u64 % 7) * 0x100;
                        b
                    }
                })
                .collect();
            spec.segments.push(SegSpec { address: 0x0100_0000 + k * 0x40_0000, pages, committed_pages: pages, blocks });
        }
        let (s, exp) = spec.write();
        let mem = s.build();
        let r = heap_ref(&spec);
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let one = pool(1).install(|| walk_heap(&mem, &r, spec.epoch.build()));
        let two = pool(2).install(|| walk_heap_in_pieces(&mem, &r, spec.epoch.build(), 1 << 20));
        assert_eq!(one.blocks.len(), exp.rows.len());
        assert_eq!(one.blocks, two.blocks, "{arch}");
        assert_eq!(one.traces, two.traces, "{arch}");
        assert_eq!(one.corruption, two.corruption, "{arch}");
        assert_eq!(one.segment_runs, two.segment_runs, "{arch}");
        let segs = |rep: &HeapReport| rep.heaps[0].segments.iter().map(|s| s.blocks.clone()).collect::<Vec<_>>();
        assert_eq!(segs(&one), segs(&two), "{arch}");
        assert!(!one.traces.is_empty());
    }
}

/// Pieces cut anywhere give the rows of the sequential walk: at true block starts, inside a big
/// block whose data holds copies of real headers (a false start that the boundary search
/// accepts), at a block whose `PreviousSize` is wrong, and around a block with a bad checksum.
/// The rich heap plus a 256 KiB segment at [`PIECES_SEGMENT`] of small busy and free blocks with
/// one 4 KiB busy block (row 60 of the segment).
fn pieces_spec(arch: Arch) -> HeapSpec {
    let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
    let mut spec = rich_spec(arch, Epoch::Win10_1809);
    let pages = PIECES_PAGES;
    let n = ((u64::from(pages) * 0x1000 - 0x3000) / (8 * g)) as usize;
    let mut blocks: Vec<BlockSpec> =
        (0..n).map(|i| if i % 5 == 2 { BlockSpec::free(8) } else { BlockSpec::busy(8, 3 * g) }).collect();
    blocks[60] = BlockSpec::busy((0x1000 / g) as u16, 0x1000 - 2 * g);
    spec.segments.push(SegSpec { address: PIECES_SEGMENT, pages, committed_pages: pages, blocks });
    spec
}

const PIECES_SEGMENT: u64 = 0x0100_0000;
const PIECES_PAGES: u32 = 0x40;

/// Asserts that two walks of one heap gave the same report.
fn assert_same_walk(one: &HeapReport, two: &HeapReport, what: &str) {
    let segs = |rep: &HeapReport| rep.heaps[0].segments.iter().map(|s| s.blocks.clone()).collect::<Vec<_>>();
    assert_eq!(one.blocks, two.blocks, "{what}");
    assert_eq!(one.traces, two.traces, "{what}");
    assert_eq!(one.corruption, two.corruption, "{what}");
    assert_eq!(one.segment_runs, two.segment_runs, "{what}");
    assert_eq!(segs(one), segs(two), "{what}");
    assert_eq!(one.heaps[0].free_blocks, two.heaps[0].free_blocks, "{what}");
    assert_eq!(one.heaps[0].corruption_count, two.heaps[0].corruption_count, "{what}");
}

#[test]
fn pieces_cut_anywhere_give_the_sequential_walk() {
    for arch in ARCHS {
        let g: u64 = if arch == Arch::X86 { 8 } else { 16 };
        let entry_at = if arch == Arch::X86 { 0 } else { 8 };
        let spec = pieces_spec(arch);
        let (seg, pages) = (PIECES_SEGMENT, PIECES_PAGES);
        let (mut s, exp) = spec.write();
        let rows: Vec<&BlockRow> =
            exp.rows.iter().filter(|r| r.address >= seg && r.address < seg + u64::from(pages) * 0x1000).collect();
        let big = rows.iter().find(|r| r.size == 0x1000).expect("the big block");
        // Copies of four real consecutive blocks (headers and data) fill the big block's data.
        let run_at = rows[10].address;
        let run = s.get(run_at, 4 * 8 * g as usize);
        let mut at = big.address + 2 * g;
        while at + run.len() as u64 <= big.address + big.size {
            s.put(at, &run);
            at += run.len() as u64;
        }
        // A wrong PreviousSize (its bytes are encoded, not checksummed) and a bad checksum.
        let bad_prev = rows[200].address + entry_at + 4;
        let b = s.get(bad_prev, 1)[0];
        s.put_u8(bad_prev, b ^ 1);
        let bad_sum = rows[400].address + entry_at;
        let b = s.get(bad_sum, 1)[0];
        s.put_u8(bad_sum, b ^ 0x10);
        let mem = s.build();
        let r = heap_ref(&spec);
        let build = spec.epoch.build();
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
        let one = pool(1).install(|| walk_heap(&mem, &r, build));
        let kinds: Vec<CorruptionKind> = one.corruption.iter().map(|c| c.kind).collect();
        assert!(kinds.contains(&CorruptionKind::BadPreviousSize), "{arch}: {kinds:?}");
        assert!(kinds.contains(&CorruptionKind::BadChecksum), "{arch}: {kinds:?}");
        // Piece sizes that put cuts on every granule around the big block and the bad blocks.
        let off = |a: u64| a - seg;
        let mut sizes: Vec<u64> = (0..(0x1100 / g)).map(|k| off(big.address) - 0x80 + k * g).collect();
        for a in [rows[200].address, rows[400].address] {
            sizes.extend((0..24).map(|k| off(a) - 8 * g + k * g));
            sizes.extend((0..24).map(|k| (off(a) - 8 * g + k * g) / 2 / g * g));
        }
        sizes.extend([0x1000, 0x3000, 0x7000]);
        for piece in sizes {
            let two = pool(2).install(|| walk_heap_in_pieces(&mem, &r, build, piece));
            assert_same_walk(&one, &two, &format!("{arch} piece {piece:#x}"));
        }
    }
}

/// Random damage (bytes flipped anywhere in a segment: headers, data, free-list links), walked
/// with one thread and in pieces of random sizes on three: the same report every time.
#[test]
fn damaged_heaps_walk_the_same_in_pieces() {
    let rounds: u64 = std::env::var("NTHEAP_PIECE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let (one_thread, three) = (pool(1), pool(3));
    for arch in ARCHS {
        let spec = pieces_spec(arch);
        let (s0, exp) = spec.write();
        let r = heap_ref(&spec);
        let build = spec.epoch.build();
        let len = u64::from(PIECES_PAGES) * 0x1000;
        let entry_at = if arch == Arch::X86 { 0 } else { 8 };
        let starts: Vec<u64> = exp
            .rows
            .iter()
            .map(|row| row.address)
            .filter(|&a| a > PIECES_SEGMENT && a < PIECES_SEGMENT + len)
            .collect();
        let mut damaged = 0;
        for round in 0..rounds {
            let mut s = s0.clone();
            for _ in 0..1 + next() % 6 {
                let mut at = PIECES_SEGMENT + 0x1000 + next() % (len - 0x1000);
                if next() % 2 == 0 {
                    // Into the encoded header of one of the segment's blocks.
                    let row = &starts[(next() % starts.len() as u64) as usize];
                    at = row + entry_at + next() % 8;
                }
                let b = s.get(at, 1)[0];
                s.put_u8(at, b ^ (1 + (next() % 255) as u8));
            }
            let mem = s.build();
            let one = one_thread.install(|| walk_heap(&mem, &r, build));
            damaged += usize::from(!one.corruption.is_empty());
            for _ in 0..3 {
                let piece = 0x400 + next() % 0x6000;
                let many = three.install(|| walk_heap_in_pieces(&mem, &r, build, piece));
                assert_same_walk(&one, &many, &format!("{arch} round {round} piece {piece:#x}"));
            }
        }
        assert!(damaged * 4 > rounds as usize, "{arch}: only {damaged} of {rounds} rounds found damage");
    }
}

/// Every builder fixture (NT heaps, LFH, page heaps, segment heaps, damaged and truncated dumps)
/// gives the same report walked with one thread as walked in small pieces on three.
#[test]
fn every_fixture_walks_the_same_in_pieces() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "dmp"))
        .collect();
    paths.sort();
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let (one_thread, three) = (pool(1), pool(3));
    let options = WalkOptions::default();
    let mut parallel_heaps = 0;
    for p in &paths {
        let Ok(dump) = crate::Dump::open(p) else { continue };
        let Ok(one) = one_thread.install(|| walk_with(&dump, &options)) else { continue };
        for piece in [0x1000u64, 0x8000] {
            let many = three.install(|| walk_dump(&dump, &options, piece)).expect("walks as with one thread");
            let what = format!("{} piece {piece:#x}", p.display());
            assert!(format!("{:?}", one.blocks) == format!("{:?}", many.blocks), "blocks differ: {what}");
            assert!(format!("{:?}", one.traces) == format!("{:?}", many.traces), "traces differ: {what}");
            assert!(format!("{:?}", one.corruption) == format!("{:?}", many.corruption), "records differ: {what}");
            assert!(format!("{:?}", one.heaps) == format!("{:?}", many.heaps), "heaps differ: {what}");
            assert!(format!("{:?}", one.warnings) == format!("{:?}", many.warnings), "warnings differ: {what}");
            assert!(one.segment_runs == many.segment_runs, "segment runs differ: {what}");
        }
        // Heaps big enough to be cut at the smallest piece size.
        parallel_heaps +=
            one.heaps.iter().filter(|h| h.segments.iter().map(|s| s.committed_bytes).sum::<u64>() >= 0x2000).count();
        parallel_heaps += one.heaps.iter().filter(|h| h.segment_heap.is_some()).count();
    }
    assert!(
        paths.len() > 50 && parallel_heaps > 50,
        "{} fixtures, {parallel_heaps} heaps walked in pieces",
        paths.len()
    );
}
