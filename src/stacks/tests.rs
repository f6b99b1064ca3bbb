//! Stack-table tests on synthetic `+ust` heaps ([`crate::heap::testing`]) with trace entries
//! written at literal §11.1 offsets (not through [`TraceEntryLayout`]).

use super::*;
use crate::heap::testing::{BlockSpec, Epoch, HeapSpec, Space, VirtSpec};
use crate::heap::{walk_heap, HeapRef};

const TRACES: u64 = 0x0070_0000;

/// Write an `_RTL_STACK_TRACE_ENTRY` (§11.1: Index x86 +0x08 / x64 +0x0c, Depth +0x0a / +0x0e,
/// BackTrace +0x0c / +0x10).
fn put_entry(s: &mut Space, arch: Arch, at: u64, index: u16, depth: u16, frames: &[u64]) {
    let (i, d, bt) = match arch {
        Arch::X86 => (0x08, 0x0a, 0x0c),
        Arch::X64 => (0x0c, 0x0e, 0x10),
    };
    s.put_u16(at + i, index);
    s.put_u16(at + d, depth);
    for (k, &f) in frames.iter().enumerate() {
        s.put_ptr(arch, at + bt + k as u64 * arch.ptr_size(), f);
    }
}

fn ust_block(arch: Arch, trace: u64) -> BlockSpec {
    let mut b = match arch {
        Arch::X86 => BlockSpec::busy(8, 0x20),
        Arch::X64 => BlockSpec::busy(8, 0x40),
    };
    b.trace = trace;
    b
}

/// A `+ust` heap whose blocks point at `traces` (0 = no trace), plus one virtual block pointing
/// at `virtual_trace`; the trace area is one captured page at [`TRACES`].
fn heap_with(arch: Arch, traces: &[u64], virtual_trace: u64) -> (HeapSpec, Space) {
    let mut spec = HeapSpec::simple(
        arch,
        Epoch::Win10_1809,
        0x0050_0000,
        0x10,
        4,
        traces.iter().map(|&t| ust_block(arch, t)).collect(),
    );
    spec.ust = true;
    spec.virtual_blocks.push(VirtSpec {
        address: 0x0100_0000,
        commit: 0x2000,
        user_size: 0x1f00,
        trace: virtual_trace,
    });
    let (mut s, _) = spec.write();
    s.add(TRACES, 0x1000);
    (spec, s)
}

fn collect(spec: &HeapSpec, s: &Space) -> (HeapReport, StackTable) {
    let mem = s.build();
    let r = HeapRef {
        address: spec.heap(),
        arch: spec.arch,
        wow64_32bit: false,
        index: Some(0),
        is_process_heap: true,
        ust: true,
        page_heap_owner: None,
    };
    let report = walk_heap(&mem, &r, spec.epoch.build());
    let t = StackTable::collect(&mem, &report);
    (report, t)
}

/// The stack id of the block whose trace pointer is `trace`, for every such block.
fn ids_for(report: &HeapReport, t: &StackTable, trace: u64) -> Vec<i32> {
    (0..report.blocks.len()).filter(|&i| report.traces.of(i) == trace).map(|i| t.stack_of_row(i)).collect()
}

#[test]
fn identical_frames_share_one_id_across_entries() {
    for arch in [Arch::X86, Arch::X64] {
        let (a, b, c) = (TRACES, TRACES + 0x200, TRACES + 0x400);
        let (spec, mut s) = heap_with(arch, &[a, 0, b, a, c], c);
        let f1 = [0x7000_1000, 0x7000_2000, 0x7000_3000];
        let f2 = [0x6000_0010, 0x6000_0020];
        put_entry(&mut s, arch, a, 3, 3, &f1);
        put_entry(&mut s, arch, b, 3, 3, &f1); // a copy of a's frames in another entry
        put_entry(&mut s, arch, c, 2, 2, &f2);
        let (report, t) = collect(&spec, &s);
        assert_eq!(t.rows.len(), report.traces.len());
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!((t.offsets.clone(), t.depth.clone()), (vec![0, 3, 5], vec![3, 2]));
        assert_eq!(t.frames_of(0), &f1);
        assert_eq!(t.frames_of(1), &f2);
        assert_eq!((t.frames_of(-1), t.frames_of(2)), (&[][..], &[][..]));
        assert_eq!(t.trace_entry, vec![a, c]);
        assert_eq!(ids_for(&report, &t, a), vec![0, 0]);
        assert_eq!(ids_for(&report, &t, b), vec![0]);
        assert_eq!(ids_for(&report, &t, c), vec![1, 1], "the backend block and the virtual block");
        // Every block without a trace pointer has -1.
        let without = (0..report.blocks.len()).filter(|&i| report.traces.of(i) == 0);
        assert!(without.clone().count() > 3);
        assert!(without.into_iter().all(|i| t.stack_of_row(i) == -1));
        assert_eq!(t.stack_id_column(report.blocks.len()).len(), report.blocks.len());
        assert_eq!((t.entries_read, t.problems.len()), (3, 0));
        assert_eq!(t.distinct_frames().len(), 5);
    }
}

#[test]
fn x86_frames_are_four_bytes() {
    let (spec, mut s) = heap_with(Arch::X86, &[TRACES], 0);
    // Frames 0x11111111, 0x22222222 followed by junk that a reader with 8-byte pointers would mix in.
    put_entry(&mut s, Arch::X86, TRACES, 2, 2, &[0x1111_1111, 0x2222_2222, 0x3333_3333]);
    let (_, t) = collect(&spec, &s);
    assert_eq!(t.frames, vec![0x1111_1111, 0x2222_2222]);
}

#[test]
fn index_wins_over_depth_and_depth_is_the_fallback() {
    for arch in [Arch::X86, Arch::X64] {
        let e = |k: u64| TRACES + k * 0x200;
        let (spec, mut s) = heap_with(arch, &[e(0), e(1), e(2), e(3), e(1)], 0);
        let frames: Vec<u64> = (1..=32).map(|k| 0x4000_0000 + k * 0x10).collect();
        put_entry(&mut s, arch, e(0), 5, 9, &frames[..9]); // Index valid: 5 frames
        put_entry(&mut s, arch, e(1), 0, 4, &frames[..4]); // Index 0: Depth's 4 frames, flagged
        put_entry(&mut s, arch, e(2), 32, 32, &frames); // a full BackTrace
        put_entry(&mut s, arch, e(3), 33, 0xffff, &frames); // neither
        let (report, t) = collect(&spec, &s);
        assert_eq!(t.depth, vec![5, 4, 32]);
        assert_eq!(t.frames_of(0), &frames[..5]);
        assert_eq!(ids_for(&report, &t, e(1)), vec![1, 1]);
        assert_eq!(ids_for(&report, &t, e(3)), vec![-1]);
        let kinds: Vec<_> = t.problems.iter().map(|p| (p.trace_entry, p.kind, p.stack_id, p.block_count)).collect();
        assert_eq!(
            kinds,
            vec![(e(1), StackProblemKind::DepthFallback, 1, 2), (e(3), StackProblemKind::BadFrameCount, -1, 1),]
        );
        assert!(t.problems[1].detail.contains("Index 0x21 and Depth 0xffff"), "{}", t.problems[1].detail);
    }
}

#[test]
fn entries_outside_the_dump_are_problems_not_errors() {
    for arch in [Arch::X86, Arch::X64] {
        let outside = 0x0900_0000;
        // An entry whose count is captured but whose frames run off the end of the trace page.
        let edge = TRACES + 0x1000 - 0x14;
        let (spec, mut s) = heap_with(arch, &[outside, TRACES, outside, edge], outside);
        put_entry(&mut s, arch, TRACES, 1, 1, &[0x1234]);
        s.put_u16(edge + if arch == Arch::X86 { 0x08 } else { 0x0c }, 8);
        let (report, t) = collect(&spec, &s);
        assert_eq!(t.len(), 1);
        assert_eq!(ids_for(&report, &t, outside), vec![-1, -1, -1]);
        assert_eq!(ids_for(&report, &t, edge), vec![-1]);
        assert_eq!(t.problems.len(), 2);
        let p = &t.problems[0];
        let first_block = (0..report.blocks.len()).find(|&i| report.traces.of(i) == outside).unwrap();
        assert_eq!(
            (p.trace_entry, p.kind, p.block, p.heap, p.block_count),
            (outside, StackProblemKind::NotCaptured, report.blocks.address[first_block], spec.heap(), 3)
        );
        assert_eq!((t.problems[1].trace_entry, t.problems[1].kind), (edge, StackProblemKind::NotCaptured));
    }
}

#[test]
fn hostile_entries_never_panic_and_stay_bounded() {
    // xorshift: deterministic junk in the trace page, and pointers anywhere.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for arch in [Arch::X86, Arch::X64] {
        for round in 0..20 {
            let mut traces: Vec<u64> = (0..40).map(|_| TRACES + (next() % 0x1000)).collect();
            traces.push(u64::MAX - 3);
            traces.push(next());
            let (spec, mut s) = heap_with(arch, &traces[..traces.len().min(20 + round)], next());
            let junk: Vec<u8> = (0..0x1000).map(|_| next() as u8).collect();
            s.put(TRACES, &junk);
            let (report, t) = collect(&spec, &s);
            assert_eq!(t.rows.len(), report.traces.len());
            assert_eq!(t.offsets.len(), t.len() + 1);
            assert_eq!(*t.offsets.last().unwrap() as usize, t.frames.len());
            assert!(t.depth.iter().all(|&d| (1..=MAX_FRAMES).contains(&d)));
            assert!(t.ids.iter().all(|&id| id >= -1 && (id as i64) < t.len() as i64));
        }
    }
}

#[test]
fn no_ust_means_no_stacks() {
    let spec = HeapSpec::simple(Arch::X64, Epoch::Win7, 0x0050_0000, 0x10, 2, vec![BlockSpec::busy(4, 0x11)]);
    let (s, _) = spec.write();
    let mem = s.build();
    let r = HeapRef {
        address: spec.heap(),
        arch: Arch::X64,
        wow64_32bit: false,
        index: Some(0),
        is_process_heap: true,
        ust: false,
        page_heap_owner: None,
    };
    let report = walk_heap(&mem, &r, 7601);
    let t = StackTable::collect(&mem, &report);
    assert!(t.is_empty() && t.problems.is_empty() && t.entries_read == 0);
    assert!(t.ids.is_empty() && t.stack_id_column(report.blocks.len()).iter().all(|&i| i == -1));
    assert_eq!(t.offsets, vec![0]);
}

#[test]
fn problem_kinds_have_stable_names() {
    for (i, k) in StackProblemKind::ALL.iter().enumerate() {
        assert_eq!(usize::from(k.code()), i + 1);
    }
    assert_eq!(StackProblemKind::DepthFallback.name(), "depth_fallback");
}
