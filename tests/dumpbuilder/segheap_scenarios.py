"""Segment-heap scenarios: small processes whose process heap is a Windows 10/11 segment heap.

Each scenario is a heap scenario (scenarios._finish_heaps: heaps[], corruption[], ...);
its segment heap's record in ``heaps[]`` has ``type`` "segment" and (segheap.SegmentHeap
.expected()):

    build, build_row, walked, status, not_walked_reason, heap_key (u64), lfh_key (u32),
    page_segment_constant, layout (offsets used + status of each: CONFIRMED / SINGLE /
    DOC / INFERRED / UNCONFIRMED / BUILDER_GUESS), seg_contexts[] (address, segment_mask,
    unit_shift, first_descriptor_index, segments[], segment_count, reserved, committed,
    free_page_ranges, ...), vs_context, lfh_context, large_alloc_metadata, large_blocks[],
    rows[] (docs/block-model.md "Segment heap", parents by address), corruption[], summary

and the top level adds ``segment_heap_conventions`` (segheap.CONVENTIONS).  An ordinary NT
heap (heap.NtHeap) sits next to it in ProcessHeaps.

    segheap_win10_1709_x64 .. segheap_win11_24h2_x64   one build row each, every kind of
                                                       allocation
    segheap_damaged_x64        21H2-23H2 layout (22631) with damage (see its docstring)
    segheap_unknown_build_x64  Windows 10 1607 (14393) form: no row, not walked
    segheap_x86                x86 stub: not walked (no x86 offsets for any build)

Not written: ``segheap_ust_win11_x64``.  The doc (11.3) describes the segment-heap +ust
data only as a heuristic of one tool ([DHU] scans a VS/LFH block's unused tail for a
marker of two 0x01 bytes followed by zeros and reads the trace pointer after it) and marks
the layout UNCONFIRMED; the trailer's bit 14 says extra data is present but not where it
is.  A fixture would have to invent that layout.

Bulk mode (benchmarks, not a fixture): write_big_segment_heap_dump(path, allocations=...)
writes one process whose segment heap holds >= ``allocations`` VS chunks and LFH blocks
(segheap.BulkSegmentHeap) and returns a small truth dict; also
``python tests/dumpbuilder/segheap_scenarios.py big OUT.dmp [--allocations N] [--build B]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "dumpbuilder"  # noqa: A001
    import dumpbuilder  # noqa: E402,F401

from .builder import DumpBuilder
from .heap import NtHeap
from .heap_layouts import PRIVATE_HEAP_FLAGS, epoch_for_build
from .process import Process
from .scenarios import (
    GUID_EXE,
    GUID_KERNEL32,
    GUID_KERNELBASE,
    GUID_NTDLL,
    _HEAP_PLAN,
    _finish_heaps,
    _peb_probes,
)
from .segheap import (
    CONVENTIONS,
    BulkSegmentHeap,
    SegmentHeap,
    write_segment_heap_1607,
    write_segment_heap_stub_x86,
)
from .segheap_layouts import row_for_build

Scenario = Callable[[], "tuple[DumpBuilder, dict]"]

SEG_OS = {  # build -> ntdll file version (plausible)
    14393: (10, 0, 14393, 3986),
    16299: (10, 0, 16299, 1806),
    17134: (10, 0, 17134, 1304),
    17763: (10, 0, 17763, 2183),
    19041: (10, 0, 19041, 1889),
    22631: (10, 0, 22631, 2506),
    26100: (10, 0, 26100, 1742),
}

# Address plan (x64).  Modules, PEB, TEB, stack and ProcessHeaps array as in the NT heap
# scenarios (scenarios._HEAP_PLAN); segment-heap reservations below, none overlapping.
_X64 = _HEAP_PLAN["x64"]
SEG_PLAN: dict[str, Any] = dict(
    seg_heap=0x1F0D4A00000,          # _SEGMENT_HEAP (+ large-alloc metadata page), 64 KB reservation
    nt_heap=0x1F0D4800000,           # the NT heap next to it
    ctx0=(0x1F0D4B00000, 0x1F0D4D00000),   # 1 MB page segments (context 0)
    ctx1=0x1F0D5000000,              # 16 MB page segment (context 1)
    large=(0x1F0D7000000, 0x1F0D8000000, 0x1F0D9400000),
    ntdll_size=0x1F5000,
)
LARGE_REQUESTS = (0x800123, 0x1000000, 0x7F0001)   # unused 0xEDD, 0, 0xFFF

# Per build: which trees are encoded (doc 10.5: Win11 code honours the bit; whether anything
# sets it is UNCONFIRMED, so the fixtures cover both).
_ENCODED = {16299: (False, False), 17134: (True, False), 17763: (False, True),
            19041: (False, False), 22631: (True, False), 26100: (True, True)}


def _seg_process(build: int, *, arch: str = "x64", pid: int, timestamp: int,
                 heaps: list[int]) -> tuple[DumpBuilder, Process, dict]:
    plan = _HEAP_PLAN[arch]
    x86 = arch == "x86"
    ntdll_version = SEG_OS[build]
    b = DumpBuilder(arch=arch, os_version=(10, 0, build), csd_version="", timestamp=timestamp,
                    pid=pid, process_create_time=timestamp - 900, number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"],
                       size=0x2A000 if x86 else 0x26000, file_version=(1, 4, 2, 0),
                       timestamp=0x62A1B2C3, pdb_name=r"C:\build\leaky\Release\leaky.pdb",
                       pdb_guid=GUID_EXE, pdb_age=3)
    ntdll_size = 0x13C000 if x86 else SEG_PLAN["ntdll_size"]
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=plan["ntdll"],
                         size=ntdll_size, file_version=ntdll_version, timestamp=0x5E6A1F2B,
                         checksum=0x1F83C5, pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=1)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=plan["k32"],
                       size=0xD4000 if x86 else 0xBD000, file_version=ntdll_version,
                       timestamp=0x5C2D3F29, pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32,
                       pdb_age=1)
    kb = b.add_module(path=r"C:\Windows\System32\KERNELBASE.dll", base=plan["kb"],
                      size=0x4A000 if x86 else 0x2CD000, file_version=ntdll_version,
                      timestamp=0x2A3B4C5D, pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE,
                      pdb_age=1)
    for m in (exe, k32, kb):
        b.add_image_regions(m)
    array = plan["array"]
    b.add_image_regions(ntdll, writable=((array, array + 0x80),))
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"], nt_global_flag=0,
                heaps=heaps, max_heaps=16, process_heaps_array=array)
    teb, (stack, _size) = plan["tebs"][0], plan["stacks"][0]
    p.add_thread(0x2C44, teb=teb, stack_start=stack, stack_size=0x1000)
    return b, p, {"ntdll": (ntdll.base, ntdll.size), "exe": exe}


def _nt_heap(b: DumpBuilder, address: int, build: int, arch: str = "x64") -> NtHeap:
    h = NtHeap(b, address, arch=arch, epoch=epoch_for_build(build), seed=build ^ 0x5E6,
               flags=PRIVATE_HEAP_FLAGS, reserve=0x10000, committed=[(0, 0x2000)],
               process_heaps_index=2, fill_tag=0xA2)
    s = h.segments[0]
    for n in (0x20, 0x3F):
        s.busy(n)
    s.free(0x40 if arch == "x64" else 0x20)
    s.busy(0x123)
    return h


def _seg_probes(b: DumpBuilder, p: Process, h: SegmentHeap | None, extra: list[dict]) -> list[dict]:
    out = [pr for pr in _peb_probes(b, p) if not pr.get("note", "").startswith("process heap itself")]
    if h is not None:
        L = h.layout
        out.append(b.probe(h.address + L.signature, 4, "segment heap: Signature 0xDDEEDDEE"))
        out.append(b.probe(h.ctx_address(0), L.seg_context_stride, "SegContexts[0]"))
        out.append(b.probe(h.ctx_address(1), L.seg_context_stride, "SegContexts[1]"))
        out.append(b.probe(h.address + L.large_tree, 16, "LargeAllocMetadata (Root, Encoded/Min)"))
        for s in h.all_segments()[:2]:
            out.append(b.probe(s.address, 0x20, f"page segment {s.address:#x}: ListEntry, Signature"))
    return out + extra


def _standard_fill(h: SegmentHeap, ctx0: int, ctx1: int) -> None:
    """Every kind of allocation: VS (busy, free, trailers of 0 / 1 / >= 2 bytes, the page-aligned
    variant where the row knows the flag), LFH (three block sizes, both bitmap words, a slack
    tail), direct page ranges in both contexts, free ranges, large blocks."""
    s = h.add_segment(0, ctx0)
    plan1 = [("b", 0x48), ("b", 0x100), ("f", 0x200), ("b", 0x1), ("b", 0x0), ("b", 0x7F),
             ("b", 0x333)]
    plan1 += [("pa", 0x17F3)] if h.page_align else [("f", 0x820), ("b", 0x17F3)]
    plan1 += [("b", 0x5A0)]
    s.vs(0x4000, plan1)
    s.vs(0x2000, [("b", 0x18), ("b", 0x29), ("f", 0x30), ("b", 0x3F1), ("b", 0x1234)])
    s.lfh(1, 0x100, [0x100, 0xF0, None, 0xFF, 0x80, None, 0xFE])
    s.lfh(1, 0x50, [0x50, 0x48, 0x4F, None, 0x41, 0x4E, None, None])
    s.lfh(2, 0x400, [0x3F0, None, 0x400, 0x3FF])
    s.free(3)
    s.page_range(0x21234)
    t = h.add_segment(1, ctx1)
    t.page_range(0x84321)
    t.free(3)
    t.page_range(0x100000)
    for addr, req in zip(SEG_PLAN["large"], LARGE_REQUESTS):
        h.add_large(addr, req)


def _build_scenario(name: str, build: int) -> Scenario:
    def make() -> tuple[DumpBuilder, dict]:
        row = row_for_build(build)
        b, p, mods = _seg_process(build, pid=0x3300 + build % 1000, timestamp=1_710_000_000 + build,
                                  heaps=[SEG_PLAN["seg_heap"], SEG_PLAN["nt_heap"]])
        large_enc, free_enc = _ENCODED[build]
        h = SegmentHeap(b, SEG_PLAN["seg_heap"], build=build, seed=0x5E9000 + build,
                        ntdll=mods["ntdll"], large_encoded=large_enc, free_tree_encoded=free_enc)
        _standard_fill(h, SEG_PLAN["ctx0"][0], SEG_PLAN["ctx1"])
        h.finish()
        nt = _nt_heap(b, SEG_PLAN["nt_heap"], build)
        desc = (f"x64 process on build {build} (segment-heap row {row}): the process heap is a "
                f"segment heap with VS chunks (busy, free, trailers"
                f"{', the page-aligned variant' if h.page_align else ''}), LFH blocks (3 block "
                f"sizes), direct page ranges in both contexts, free ranges and 3 large blocks "
                f"(large tree {'encoded' if large_enc else 'plain'}, free-range trees "
                f"{'encoded' if free_enc else 'plain'}); ProcessHeaps[1] is an NT heap")
        return _finish_seg(name, desc, b, p, h, [h.expected(), nt])
    make.__name__ = name
    make.__doc__ = f"Segment heap, build {build} (row {row_for_build(build)}), x64."
    return make


def _finish_seg(name: str, desc: str, b: DumpBuilder, p: Process, h: SegmentHeap | None,
                heaps: list, extra_probes: list[dict] | None = None) -> tuple[DumpBuilder, dict]:
    b, exp = _finish_heaps(name, desc, b, p, heaps, probes=[])
    exp["probe_reads"] = _seg_probes(b, p, h, extra_probes or [])
    exp["segment_heap_conventions"] = CONVENTIONS
    return b, exp


def segheap_damaged_x64() -> tuple[DumpBuilder, dict]:
    """Segment heap, build 22631 (21H2-23H2 row), with damage a careful walker reports and
    gets past: a VS subsegment whose committed page holding a chunk header is absent from the
    dump (rows stop there, one unparsed row covers the rest of the subsegment); a VS
    subsegment with a decommitted page inside a free chunk whose body also keeps stale old
    chunk headers (rows as normal); a page range whose first descriptor has UnitSize 0 (one
    unparsed row, the walk resumes at the next first descriptor); a LargeAllocMetadata node
    whose null right link points back at the root (every large block once, one record); a
    SegmentListHead whose second segment's Flink points back at the first (both segments
    once, one record)."""
    build = 22631
    b, p, mods = _seg_process(build, pid=0x3DA3, timestamp=1_710_500_000,
                              heaps=[SEG_PLAN["seg_heap"], SEG_PLAN["nt_heap"]])
    h = SegmentHeap(b, SEG_PLAN["seg_heap"], build=build, seed=0x5E9DA3, ntdll=mods["ntdll"])
    s = h.add_segment(0, SEG_PLAN["ctx0"][0])
    s.vs(0x4000, [("b", 0x48), ("b", 0x100), ("f", 0x200), ("b", 0x7F), ("pa", 0x17F3),
                  ("b", 0x5A0)])
    dec = s.vs(0x4000, [("b", 0x40), ("stale", 0x2F80), ("b", 0x200), ("b", 0x77)])
    miss = s.vs(0x3000, [("b", 0x100), ("b", 0xEB0), ("b", 0x500), ("f", 0x100), ("b", 0x80)])
    s.lfh(1, 0x100, [0x100, 0xF0, None, 0xFF])
    bad = s.page_range(0x21234)
    s.free(2)
    s.lfh(1, 0x30, [0x30, None, 0x2F, 0x21])
    s2 = h.add_segment(0, SEG_PLAN["ctx0"][1])
    s2.lfh(1, 0x80, [0x80, 0x7E, None])
    t = h.add_segment(1, SEG_PLAN["ctx1"])
    t.page_range(0x84321)
    for addr, req in zip(SEG_PLAN["large"], LARGE_REQUESTS):
        h.add_large(addr, req)
    h.decommit_page(dec.address + 0x1000)
    h.drop_page(miss.address + 0x1000)
    h.corrupt_unit_size(bad)
    h.loop_segment_list(0, 1, 0)
    h.loop_large_tree(2, "right", 1)
    h.finish()
    nt = _nt_heap(b, SEG_PLAN["nt_heap"], build)
    rec = h.expected()
    rec["damage"] = [
        {"what": "committed VS page not captured", "address": miss.address + 0x1000,
         "subsegment": miss.address,
         "expect": "vs_block rows up to the page, then one unparsed row [page, subsegment end) "
                   "with corrupt not_captured; a not_captured record"},
        {"what": "decommitted page inside a free VS chunk", "address": dec.address + 0x1000,
         "subsegment": dec.address,
         "expect": "no record; the free chunk and the chunks after it are rows as usual "
                   "(the subsegment's FullCommit bit is 0; the page is MEM_RESERVE)"},
        {"what": "free VS chunk with stale data", "address": dec.address + dec.chunks[1].offset,
         "subsegment": dec.address,
         "expect": "no record and no extra rows: the body holds old chunk headers encoded for "
                   "their own (old) addresses, which a walk by UnsafeSize never visits"},
        {"what": "first range descriptor with UnitSize 0", "address": bad.descriptor,
         "expect": "one unparsed row (corrupt zero_size) over the range's units up to the next "
                   "descriptor with RangeFlags bit 1; a zero_size record"},
        {"what": "LargeAllocMetadata loop", "address": h.large[2].node + 8,
         "expect": "every large block once; a list_loop record"},
        {"what": "SegmentListHead loop", "address": SEG_PLAN["ctx0"][1],
         "expect": "both page segments once, in list order; a list_loop record"},
    ]
    probes = [b.probe(miss.address + 0x1000, 16, "VS page committed but not captured"),
              b.probe(dec.address + 0x1000, 16, "decommitted VS page"),
              b.probe(dec.address + 0x2040, 16, "stale old chunk header in a free chunk")]
    return _finish_seg("segheap_damaged_x64", segheap_damaged_x64.__doc__ or "", b, p, h, [rec, nt],
                       probes)


def segheap_unknown_build_x64() -> tuple[DumpBuilder, dict]:
    """A segment heap of Windows 10 1607 (build 14393), which has no segment-heap layout row:
    one SegmentListHead at +0x60 instead of SegContexts[2], page segments signed in an 'other
    form'.  Listed, not walked; the NT heap next to it is walked."""
    build = 14393
    b, p, _m = _seg_process(build, pid=0x3E07, timestamp=1_710_600_000,
                            heaps=[SEG_PLAN["seg_heap"], SEG_PLAN["nt_heap"]])
    rec = write_segment_heap_1607(b, SEG_PLAN["seg_heap"], SEG_PLAN["ctx0"][0], seed=0x1607)
    nt = _nt_heap(b, SEG_PLAN["nt_heap"], build)
    probes = [b.probe(SEG_PLAN["seg_heap"] + 0x10, 4, "segment heap: Signature"),
              b.probe(SEG_PLAN["seg_heap"] + 0x60, 16, "1607 SegmentListHead"),
              b.probe(SEG_PLAN["ctx0"][0], 0x18, "1607 page segment: ListEntry, Signature")]
    return _finish_seg("segheap_unknown_build_x64", segheap_unknown_build_x64.__doc__ or "", b, p,
                       None, [rec, nt], probes)


def segheap_x86() -> tuple[DumpBuilder, dict]:
    """A native 32-bit process (build 19041) whose process heap is a segment heap
    (0xDDEEDDEE at +0x08): not walked, x86 _SEGMENT_HEAP offsets are unknown for every
    build.  ProcessHeaps[1] is an x86 NT heap (walked)."""
    build = 19041
    plan = _HEAP_PLAN["x86"]
    stub, nt_addr = 0x00E00000, plan["heap1"]
    b, p, _m = _seg_process(build, arch="x86", pid=0x3F86, timestamp=1_710_700_000,
                            heaps=[stub, nt_addr])
    rec = write_segment_heap_stub_x86(b, stub)
    nt = _nt_heap(b, nt_addr, build, arch="x86")
    probes = [b.probe(stub + 8, 4, "x86 segment heap: Signature at +0x08")]
    return _finish_seg("segheap_x86", segheap_x86.__doc__ or "", b, p, None, [rec, nt], probes)


SEGHEAP_BUILDS = {
    "segheap_win10_1709_x64": 16299,
    "segheap_win10_1803_x64": 17134,
    "segheap_win10_1809_x64": 17763,
    "segheap_win10_2004_x64": 19041,
    "segheap_win11_23h2_x64": 22631,
    "segheap_win11_24h2_x64": 26100,
}

SEGHEAP_SCENARIOS: dict[str, Scenario] = {n: _build_scenario(n, bld) for n, bld in SEGHEAP_BUILDS.items()}
SEGHEAP_SCENARIOS.update({
    "segheap_damaged_x64": segheap_damaged_x64,
    "segheap_unknown_build_x64": segheap_unknown_build_x64,
    "segheap_x86": segheap_x86,
})


# ---------------------------------------------------------------------------
# Bulk mode
def build_big_segment_heap_dump(allocations: int = 1_000_000, build: int = 22631,
                                seed: int = 0xB165E9) -> tuple[DumpBuilder, dict]:
    """A process whose segment heap (build ``build``) holds at least ``allocations`` VS chunks
    and LFH blocks, plus a few page ranges and large blocks.  Returns (builder, truth)."""
    b, p, mods = _seg_process(build, pid=0x4B16, timestamp=1_711_000_000,
                              heaps=[SEG_PLAN["seg_heap"], SEG_PLAN["nt_heap"]])
    bulk = BulkSegmentHeap(b, SEG_PLAN["seg_heap"], build=build, seed=seed, ntdll=mods["ntdll"],
                           allocations=allocations, first_segment=0x1F100000000,
                           ctx1_segment=SEG_PLAN["ctx1"], large=list(zip(SEG_PLAN["large"],
                                                                         LARGE_REQUESTS)))
    truth = bulk.write()
    nt = _nt_heap(b, SEG_PLAN["nt_heap"], build)
    nt.finish()
    p.finish()
    truth.update({"scenario": "big_segment_heap", "allocations_requested": allocations,
                  "nt_heap": nt.address})
    return b, truth


def write_big_segment_heap_dump(path: str, **kw) -> dict:
    """Write the bulk dump to ``path`` (and the truth dict to path's .json); returns the truth."""
    b, truth = build_big_segment_heap_dump(**kw)
    lay = b.write(path)
    truth["file_size"] = lay.size
    with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(truth, f, indent=1, sort_keys=True)
        f.write("\n")
    return truth


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="segment-heap bulk dump for benchmarks")
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("big")
    a.add_argument("out")
    a.add_argument("--allocations", type=int, default=1_000_000)
    a.add_argument("--build", type=int, default=22631, choices=sorted(SEG_OS))
    args = ap.parse_args(argv[1:])
    t0 = time.perf_counter()
    truth = write_big_segment_heap_dump(args.out, allocations=args.allocations, build=args.build)
    print(f"{args.out}: {truth['file_size']:,} bytes, {truth['allocation_count']:,} allocations "
          f"({truth['vs']['count']:,} VS, {truth['lfh']['count']:,} LFH) in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


# ---------------------------------------------------------------------------------------------
# The same segment heap with the real ntdll stand-in of tests/pdb mapped (ntdll.py), whose
# RtlpHpHeapGlobals holds the heap's keys: a reader given tests/pdb/ntdll_x64 as its symbol path
# reads HeapKey (+0) and LfhKey (+8, doc 10) through the PDB and checks them against the ones it
# recovers.

def _segheap_with_ntdll(name: str, doc: str, *, lfh_value: str) -> tuple[DumpBuilder, dict]:
    import random

    from .ntdll import add_ntdll_pdb_module
    from .ntdll_scenarios import PROCESS_HEAPS_ARRAY_X64

    build, arch = 22631, "x64"
    plan = _HEAP_PLAN[arch]
    seed = 0x5E9000 + build + 0x51
    rng = random.Random(seed)           # SegmentHeap draws HeapKey, then LfhKey, from its seed
    heap_key = rng.getrandbits(64) or 1
    lfh_key = rng.getrandbits(32) or 1
    lfh_symbol = (0x7A11 << 32 | lfh_key) if lfh_value == "key" else (lfh_key ^ 0x00F0F000)
    timestamp = 1_710_100_000
    b = DumpBuilder(arch=arch, os_version=(10, 0, build), csd_version="", timestamp=timestamp,
                    pid=0x3351, process_create_time=timestamp - 900, number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"], size=0x26000,
                       file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3,
                       pdb_name=r"C:\build\leaky\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=3)
    facts = add_ntdll_pdb_module(b, arch, plan["ntdll"], file_version=SEG_OS[build],
                                 values={"RtlpHpHeapGlobals.HeapKey": heap_key,
                                         "RtlpHpHeapGlobals.LfhKey": lfh_symbol})
    b.add_image_regions(exe)
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"], nt_global_flag=0,
                heaps=[SEG_PLAN["seg_heap"], SEG_PLAN["nt_heap"]], max_heaps=16,
                process_heaps_array=PROCESS_HEAPS_ARRAY_X64)
    teb, (stack, _size) = plan["tebs"][0], plan["stacks"][0]
    p.add_thread(0x2C48, teb=teb, stack_start=stack, stack_size=0x1000)
    h = SegmentHeap(b, SEG_PLAN["seg_heap"], build=build, seed=seed,
                    ntdll=(facts["base"], facts["size"]))
    assert (h.heap_key, h.lfh_key) == (heap_key, lfh_key)
    _standard_fill(h, SEG_PLAN["ctx0"][0], SEG_PLAN["ctx1"])
    h.finish()
    nt = _nt_heap(b, SEG_PLAN["nt_heap"], build)
    b, exp = _finish_seg(name, doc, b, p, h, [h.expected(), nt])
    exp["ntdll_pdb"] = facts
    exp["symbol_heap_key"] = heap_key
    exp["symbol_lfh_key"] = lfh_symbol & 0xFFFFFFFF
    return b, exp


def segheap_symbol_keys_x64() -> tuple[DumpBuilder, dict]:
    """Windows 11 23H2 segment heap with the ntdll stand-in mapped; RtlpHpHeapGlobals holds the
    heap's HeapKey and LfhKey: read through the PDB, both agree with the recovered keys."""
    return _segheap_with_ntdll("segheap_symbol_keys_x64", segheap_symbol_keys_x64.__doc__ or "",
                               lfh_value="key")


def segheap_symbol_keys_wrong_x64() -> tuple[DumpBuilder, dict]:
    """As segheap_symbol_keys_x64, but RtlpHpHeapGlobals.LfhKey holds another value that does not
    decode the LFH subsegments: the disagreement is recorded and the recovered key is used."""
    return _segheap_with_ntdll("segheap_symbol_keys_wrong_x64",
                               segheap_symbol_keys_wrong_x64.__doc__ or "", lfh_value="other")


SEGHEAP_SCENARIOS.update({
    "segheap_symbol_keys_x64": segheap_symbol_keys_x64,
    "segheap_symbol_keys_wrong_x64": segheap_symbol_keys_wrong_x64,
})
