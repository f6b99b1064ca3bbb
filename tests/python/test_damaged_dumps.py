"""The damaged-dump suite: builder fixtures damaged in one specific way each, and the one
answer each must give. docs/damaged-dumps.md lists every case with its expected outcome; the
case ids here are the table's.

Expected values come from the fixtures' JSON (what the builder wrote), the builder's own layout
tables (tests/dumpbuilder) and the stream directory read with ``struct`` (tests/python/damage.py),
never from ntheap.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from conftest import fixture
from damage import MEM_FREE, MEMORY_INFO_LIST, NAMES, PARSED, Minidump, cut_points
from dumpbuilder import heap_layouts as HL
from dumpbuilder import process as BP

import ntheap

HEAP_FIXTURE = "heap_win10_1809_x64"


def camel(kind: str) -> str:
    """The JSON's snake_case corruption kind as ntheap names it (list_loop -> ListLoop)."""
    return "".join(w.capitalize() for w in kind.split("_"))


def busy_total(exp: Dict[str, Any]) -> int:
    """Busy allocations the builder wrote: busy back-end blocks plus virtual blocks, every heap."""
    return sum(h["walk"]["busy_count"] + len(h["virtual_blocks"]) for h in exp["heaps"])


def records(dump: ntheap.Dump) -> List[Tuple[int, str, str]]:
    c = dump.corruption().to_pandas()
    return [(int(a), str(k), str(d)) for a, k, d in zip(c["address"], c["kind_name"], c["detail"])]


def opened(d: Minidump, tmp_path: Path, name: str) -> ntheap.Dump:
    return ntheap.Dump(d.save(tmp_path / f"{name}.dmp"), symbol_path="")


def walked_busy(dump: ntheap.Dump) -> int:
    return int(dump.blocks().to_pandas()["is_allocation"].sum())


# ---------------------------------------------------------------------------------------------
# The container


def _cuts() -> List[Tuple[str, int]]:
    src, _ = fixture(HEAP_FIXTURE)
    return cut_points(Minidump.load(src))


@pytest.mark.parametrize("label,cut", _cuts(), ids=[f"{c:#x} {label}" for label, c in _cuts()])
def test_c1_cut_at_every_stream_boundary_and_mid_range(tmp_path: Path, label: str, cut: int) -> None:
    """C1. A parsed stream cut short: TruncatedDumpError naming it. Cut only in the memory data:
    the dump opens, each range keeps the bytes the file still has, and says so."""
    src, _ = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    path = tmp_path / "cut.dmp"
    path.write_bytes(bytes(d.data[:cut]))
    short = [(s.rva, s.rva + s.size, NAMES[s.kind]) for s in d.streams if s.kind in PARSED and s.rva + s.size > cut]
    if short:
        with pytest.raises(ntheap.TruncatedDumpError) as info:
            ntheap.Dump(path)
        e = info.value
        assert e.file_size == cut
        assert (e.offset, e.end) in [(a, b) for a, b, _ in short]
        assert next(n for a, b, n in short if (a, b) == (e.offset, e.end)) in str(e)
        return
    dump = ntheap.Dump(path, symbol_path="")
    clipped = 0
    for r in d.ranges:
        kept = max(0, min(r.size, cut - r.rva))
        if kept:
            assert dump.read(r.va, kept) == bytes(d.data[r.rva:r.rva + kept])
        if kept < r.size:
            clipped += 1
            with pytest.raises(ntheap.MemoryNotCaptured) as missing:
                dump.read(r.va, r.size)
            assert missing.value.first_missing == r.va + kept
    assert len([w for w in dump.warnings if "runs past the end of the file" in w]) == clipped
    # The heaps start from a TEB and the PEB: when the cut took those, the heap functions say so.
    try:
        dump.blocks(), dump.heap_summary_text(), dump.corruption()
    except ntheap.MemoryNotCaptured as e:
        assert e.what is not None and e.what.split()[0] in {"TEB", "PEB"}, e
        assert not dump.is_captured(e.address, e.size)


def test_c2_zero_length_directory(tmp_path: Path) -> None:
    """C2. NumberOfStreams = 0: no SystemInfoStream, so no architecture: MissingStreamError."""
    src, _ = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    d.poke(8, "<I", 0)
    with pytest.raises(ntheap.MissingStreamError, match="SystemInfoStream"):
        opened(d, tmp_path, "nodir")


@pytest.mark.parametrize("size", [1 << 40, 1 << 63], ids=["2^40", "2^63"])
def test_c3_memory64_descriptor_past_eof(tmp_path: Path, size: int) -> None:
    """C3. A Memory64 DataSize that runs past the end of the file: the range keeps what the file
    holds, the ranges stored after it (their data now lies past the end) are not captured, and
    both are reported; captured bytes never exceed the file."""
    src, exp = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    m64 = [r for r in d.ranges if r.list64]
    first, later = m64[0], m64[1:]
    d.poke(first.descriptor + 8, "<Q", size)
    dump = opened(d, tmp_path, "m64")
    kept = len(d.data) - first.rva
    assert dump.read(first.va, kept) == bytes(d.data[first.rva:])
    assert not any(dump.is_captured(r.va) for r in later)
    assert dump.captured_bytes <= len(d.data)
    past = [w for w in dump.warnings if "runs past the end of the file" in w]
    assert len(past) == len(m64) and f"kept {kept:#x} bytes" in past[0]
    assert [h.status for h in dump.heaps]  # the walk runs on what is captured


def test_c4_duplicated_range(tmp_path: Path) -> None:
    """C4. Two MemoryList descriptors on the same file bytes: the lower address keeps them, the
    other range is not captured and is reported ("reuses file bytes")."""
    src, _ = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    a, b = sorted([r for r in d.ranges if not r.list64], key=lambda r: r.va)[:2]
    before = sum(r.size for r in d.ranges)
    d.poke(b.descriptor + 12, "<I", a.rva)
    dump = opened(d, tmp_path, "dup")
    assert dump.read(a.va, a.size) == bytes(d.data[a.rva:a.rva + a.size])
    with pytest.raises(ntheap.MemoryNotCaptured):
        dump.read(b.va, 1)
    assert dump.captured_bytes == before - b.size
    assert [w for w in dump.warnings if "reuses file bytes" in w and f"{b.va:#x}" in w]


def test_c5_overlapping_ranges(tmp_path: Path) -> None:
    """C5. A range whose start lies inside another: the lower one keeps the shared addresses,
    the other keeps the rest of its own bytes."""
    src, _ = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    a, b = sorted([r for r in d.ranges if not r.list64], key=lambda r: r.va)[:2]
    d.poke(b.descriptor, "<Q", a.va + a.size - 8)
    dump = opened(d, tmp_path, "overlap")
    assert dump.read(a.va, a.size) == bytes(d.data[a.rva:a.rva + a.size])
    assert dump.read(a.va + a.size, b.size - 8) == bytes(d.data[b.rva + 8:b.rva + b.size])


def test_c6_memory_info_list_that_lies(tmp_path: Path) -> None:
    """C6. Every region MEM_FREE and the first 2^63 bytes long: regions() reports what the
    stream says, `captured` counts what the memory lists hold, and the heap walk, which never
    trusts the MemoryInfoList, finds every busy block."""
    src, exp = fixture(HEAP_FIXTURE)
    d = Minidump.load(src)
    s = d.stream(MEMORY_INFO_LIST)
    header, entry, n = struct.unpack_from("<IIQ", d.data, s.rva)
    for i in range(n):  # MINIDUMP_MEMORY_INFO: State (u32) at +32, RegionSize (u64) at +24
        d.poke(s.rva + header + entry * i + 32, "<I", MEM_FREE)
    base = struct.unpack_from("<Q", d.data, s.rva + header)[0]
    d.poke(s.rva + header + 24, "<Q", 1 << 63)
    dump = opened(d, tmp_path, "lies")
    regions = dump.regions().to_pandas()
    assert len(regions) == n and set(regions["state"]) == {MEM_FREE}
    assert int(regions["size"][0]) == 1 << 63
    end = base + (1 << 63)
    assert int(regions["captured"][0]) == sum(max(0, min(r.va + r.size, end) - max(r.va, base)) for r in d.ranges)
    assert walked_busy(dump) == busy_total(exp)


# ---------------------------------------------------------------------------------------------
# Lists the walkers follow


@pytest.mark.parametrize("name", ["heap_cyclic_segment_list", "heap_cyclic_virtual_list"])
def test_h1_h2_cyclic_segment_and_virtual_block_lists(name: str) -> None:
    """H1, H2. The builder's cyclic SegmentList and VirtualAllocdBlocks: the record the builder
    states, and every segment and virtual block reported once."""
    src, exp = fixture(name)
    dump = ntheap.Dump(src, symbol_path="")
    got = records(dump)
    for c in exp["corruption"]:
        assert any(a == c["address"] and k == camel(c["kind"]) for a, k, _ in got), (c, got)
    for h, e in zip(dump.heaps, exp["heaps"]):
        assert [s.address for s in h.segments] == [s["address"] for s in e["segments"]]
        assert [v.address for v in h.virtual_blocks] == [v["address"] for v in e["virtual_blocks"]]
    assert walked_busy(dump) == busy_total(exp)


def test_h3_cyclic_ucr_list(tmp_path: Path) -> None:
    """H3. The second UCR descriptor's SegmentEntry.Flink points back at the first: ListLoop at
    the second descriptor's SegmentEntry; both ranges are still known and no block is lost."""
    src, exp = fixture(HEAP_FIXTURE)
    seg = exp["heaps"][0]["segments"][0]
    ucrs = seg["uncommitted_ranges"]
    d = Minidump.load(src)
    se = HL.UCR_X64.segment_entry
    d.write(ucrs[1]["descriptor"] + se, ucrs[0]["descriptor"] + se, 8)
    dump = opened(d, tmp_path, "ucr")
    assert (ucrs[1]["descriptor"] + se, "ListLoop") in [(a, k) for a, k, _ in records(dump)]
    assert dump.heaps[0].segments[0].ucrs == [(u["address"], u["size"]) for u in ucrs]
    assert walked_busy(dump) == busy_total(exp)


def test_h4_cyclic_lfh_zone_list(tmp_path: Path) -> None:
    """H4. The LFH's only zone links to itself instead of back to SubSegmentZones: ListLoop at
    the zone; the zone is still read once and the LFH still decoded."""
    src, exp = fixture("lfh_win10_x64")
    lfh = exp["heaps"][0]["lfh"]
    (zone,) = lfh["zones"]
    d = Minidump.load(src)
    d.write(zone, zone, 8)  # _LFH_BLOCK_ZONE.ListEntry.Flink (ListEntry at +0)
    dump = opened(d, tmp_path, "zone")
    assert (zone, "ListLoop") in [(a, k) for a, k, _ in records(dump)]
    got = dump.heap(exp["heaps"][0]["address"]).lfh
    assert got is not None and got.zones == [zone] and got.decoded
    blocks = dump.blocks().to_pandas()
    mine = blocks["heap"] == exp["heaps"][0]["address"]
    lfh_busy = blocks[mine & (blocks["kind_name"] == "lfh_block") & blocks["busy"]]
    assert len(lfh_busy) == lfh["busy_count"]


def test_h5_cyclic_page_heap_free_list(tmp_path: Path) -> None:
    """H5. The second freed _DPH_HEAP_BLOCK links back to the first: ListLoop at the first;
    the two freed blocks before the loop and every busy block are reported."""
    src, exp = fixture("pageheap_x64")
    h = exp["heaps"][0]
    nodes = h["free_list"]["nodes"]
    d = Minidump.load(src)
    d.write(nodes[1] + h["layout"]["node"]["table_links"], nodes[0], 8)  # the free-list link
    dump = opened(d, tmp_path, "free")
    assert (nodes[0], "ListLoop") in [(a, k) for a, k, _ in records(dump)]
    ph = dump.heap(h["address"]).page_heap
    assert (ph.busy, ph.freed) == (h["busy_count"], 2)


def test_h6_cyclic_page_heap_busy_tree(tmp_path: Path) -> None:
    """H6. The first busy node in order has the tree's root as its LeftChild: ListLoop at the
    root; every busy and freed block reported once."""
    src, exp = fixture("pageheap_x64")
    h = exp["heaps"][0]
    table = h["busy_nodes_table"]
    d = Minidump.load(src)
    d.write(table["in_order"][0] + h["layout"]["avl"]["left"], table["root_node"], 8)
    dump = opened(d, tmp_path, "tree")
    assert (table["root_node"], "ListLoop") in [(a, k) for a, k, _ in records(dump)]
    ph = dump.heap(h["address"]).page_heap
    assert (ph.busy, ph.freed) == (h["busy_count"], h["freed_count"])


# ---------------------------------------------------------------------------------------------
# Impossible sizes, heaps that point at each other


def test_h7_virtual_block_of_2_63_bytes(tmp_path: Path) -> None:
    """H7. CommitSize 2^63 on a virtual block: BadVirtualBlock at the entry; the walk goes on."""
    src, exp = fixture(HEAP_FIXTURE)
    vb = exp["heaps"][0]["virtual_blocks"][0]
    d = Minidump.load(src)
    d.write(vb["address"] + HL.VAE_X64.commit_size, 1 << 63, 8)
    dump = opened(d, tmp_path, "vb")
    assert (vb["address"], "BadVirtualBlock") in [(a, k) for a, k, _ in records(dump)]
    assert [v.address for v in dump.heaps[0].virtual_blocks] == [v["address"] for v in exp["heaps"][0]["virtual_blocks"]]
    dump.allocation_at(vb["user_address"])


def test_h8_segment_ending_at_2_63(tmp_path: Path) -> None:
    """H8. LastValidEntry 2^63 on the second segment: OutOfSegment at the segment, which is not
    walked; the other segments are."""
    src, exp = fixture(HEAP_FIXTURE)
    heap = exp["heaps"][0]
    seg = heap["segments"][1]
    d = Minidump.load(src)
    d.write(seg["address"] + HL.SEGMENT_X64.last_valid_entry, 1 << 63, 8)
    dump = opened(d, tmp_path, "lve")
    assert (seg["address"], "OutOfSegment") in [(a, k) for a, k, _ in records(dump)]
    got = {s.address: s for s in dump.heaps[0].segments}
    assert got[seg["address"]].block_count == 0
    assert got[heap["segments"][0]["address"]].block_count > 0


def test_h9_heap_listed_twice(tmp_path: Path) -> None:
    """H9. ProcessHeaps lists the default heap twice: it is reported once, with an Inconsistent
    record at the ProcessHeaps array."""
    src, exp = fixture(HEAP_FIXTURE)
    peb = exp["peb"]
    d = Minidump.load(src)
    d.write(peb["process_heaps"] + 8, peb["heaps"][0], 8)
    dump = opened(d, tmp_path, "twice")
    assert [h.address for h in dump.heaps] == [peb["heaps"][0]]
    assert any(k == "Inconsistent" and "listed twice" in t for _, k, t in records(dump))


def test_h10_heaps_that_point_at_each_other(tmp_path: Path) -> None:
    """H10. The second heap's last segment links to a segment of the first heap: the link is
    recorded (BadLink, ListLoop), the borrowed segment is refused as an overlap of the first
    heap's (OutOfSegment), and no block is counted twice."""
    src, exp = fixture(HEAP_FIXTURE)
    a, b = exp["heaps"]
    sle = HL.SEGMENT_X64.segment_list_entry
    borrowed = a["segments"][1]["address"]
    d = Minidump.load(src)
    d.write(b["segments"][-1]["address"] + sle, borrowed + sle, 8)
    dump = opened(d, tmp_path, "shared")
    kinds = [(addr, k) for addr, k, _ in records(dump)]
    assert (borrowed + sle, "BadLink") in kinds
    assert any(k == "ListLoop" for _, k in kinds)
    assert any(addr == borrowed and k == "OutOfSegment" for addr, k in kinds)
    assert walked_busy(dump) == busy_total(exp)


def test_h11_peb_claims_2_32_heaps(tmp_path: Path) -> None:
    """H11. NumberOfHeaps 0xFFFFFFFF: the array's MaximumNumberOfHeaps slots are read (the claim
    recorded as Inconsistent, each empty slot as BadLink), and both heaps are walked."""
    src, exp = fixture(HEAP_FIXTURE)
    peb = exp["peb"]
    d = Minidump.load(src)
    d.write(peb["address"] + BP.PEB64.number_of_heaps, 0xFFFFFFFF, 4)
    dump = opened(d, tmp_path, "nheaps")
    assert dump.peb.number_of_heaps == 0xFFFFFFFF
    assert [h.address for h in dump.heaps] == peb["heaps"]
    slots = peb["max_heaps"]
    assert dump.peb.process_heaps_problem == (
        f"NumberOfHeaps {0xFFFFFFFF} exceeds MaximumNumberOfHeaps {slots}; read the first {slots}"
    )
    got = records(dump)
    assert [t for _, k, t in got if k == "Inconsistent"] == [f"PEB: {dump.peb.process_heaps_problem}"]
    assert len([t for _, k, t in got if k == "BadLink" and "is null" in t]) == slots - len(peb["heaps"])
    assert walked_busy(dump) == busy_total(exp)


def test_h12_cyclic_page_heap_next_heap_list(tmp_path: Path) -> None:
    """H12. The second page heap's `NextHeap.Flink` points back at itself: ListLoop at that
    entry, recorded once; both page heaps and their NormalHeaps walked."""
    src, exp = fixture("pageheap_two_heaps_x64")
    pages = [h for h in exp["heaps"] if h["type"] == "page"]
    entry = pages[1]["next_heap"]["address"]
    d = Minidump.load(src)
    d.write(entry, entry, 8)
    dump = opened(d, tmp_path, "nextheap")
    assert [(a, k) for a, k, _ in records(dump) if k == "ListLoop"] == [(entry, "ListLoop")]
    got = {h.address: h for h in dump.heaps}
    for p in pages:
        assert got[p["address"]].page_heap.busy == p["busy_count"]
        assert got[p["normal_heap"]].status == "walked"
