"""The NT heap walk on builder-made dumps. Every expected value comes from the builder's own
inputs (tests/fixtures/heap_*.json), written without the reader's layout tables."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
from conftest import fixture

import ntheap

CLEAN = [
    "heap_win7_x86", "heap_win7_x64", "heap_win8_x86", "heap_win8_x64",
    "heap_win10_1507_x86", "heap_win10_1507_x64", "heap_win10_1809_x86", "heap_win10_1809_x64",
    "heap_wow64_win7", "heap_ust_win7_x64", "heap_ust_win10_x86",
]
CORRUPTION_KIND = {
    "bad_checksum": "BadChecksum",
    "list_loop": "ListLoop",
    "pointer_outside_dump": "NotCaptured",
    "not_captured": "NotCaptured",
}


def nt_heaps(exp: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [h for h in exp["heaps"] + exp.get("heaps32", []) if h.get("type", "nt") == "nt"]


def rows_of(table: ntheap.Table, heap: int) -> Dict[str, np.ndarray]:
    mask = table["heap"] == heap
    return {c: table[c][mask] for c in table.columns}


@pytest.mark.parametrize("name", CLEAN)
def test_heap_objects(name: str) -> None:
    path, exp = fixture(name)
    dump = ntheap.Dump(path)
    heaps = {h.address: h for h in dump.heaps}
    assert len(heaps) == len(exp["heaps"]) + len(exp.get("heaps32", []))
    for e in nt_heaps(exp):
        h = heaps[e["address"]]
        assert (h.kind, h.status, h.arch) == ("nt", "walked", e["arch"])
        assert h.wow64_32bit == (e in exp.get("heaps32", []))
        assert h.layout_chosen_by == "build"
        assert (h.flags, h.force_flags, h.encoding_enabled, h.ust) == (e["flags"], e["force_flags"], e["encoding_enabled"], e["ust"])
        assert h.reserved == e["totals"]["reserved"]
        assert h.committed == e["totals"]["committed"]
        assert h.free_bytes == e["free"]["bytes"] and h.free_list_length == e["free"]["count"]
        assert h.ucr_count == e["ucr_count"]
        assert h.virtual_block_count == len(e["virtual_blocks"])
        assert h.virtual_block_bytes == e["totals"]["virtual_bytes"]
        assert h.front_end_type == e["front_end_heap_type"]
        assert h.corruption_count == 0
        assert [s.address for s in h.segments] == [s["address"] for s in e["segments"]]
        for s, es in zip(h.segments, e["segments"]):
            assert (s.base, s.first_entry, s.last_valid_entry, s.number_of_pages) == (
                es["base"], es["first_entry"], es["last_valid_entry"], es["number_of_pages"],
            )
            assert (s.reserved, s.committed) == (es["reserved"], es["committed"])
            assert s.ucrs == [(u["address"], u["size"]) for u in es["uncommitted_ranges"]]
            assert s.walked and s.heap == h.address
        for v, ev in zip(h.virtual_blocks, e["virtual_blocks"]):
            assert (v.address, v.header_address, v.user_address) == (ev["address"], ev["header_address"], ev["user_address"])
            assert (v.commit_size, v.reserve_size, v.user_size) == (ev["commit_size"], ev["reserve_size"], ev["user_size"])
            assert v.stack_trace_entry == ev["stack_trace_entry"]
            assert v.corruption is None and v.heap == h.address


@pytest.mark.parametrize("name", CLEAN)
def test_every_block(name: str) -> None:
    """Each _HEAP_ENTRY the builder wrote is one row, with its exact fields."""
    path, exp = fixture(name)
    blocks = ntheap.Dump(path).blocks()
    assert len(blocks) == sum(len(e["blocks"]) for e in nt_heaps(exp))
    assert blocks["address"].dtype == np.uint64 and blocks["busy"].dtype == np.bool_
    for e in nt_heaps(exp):
        got = rows_of(blocks, e["address"])
        want = e["blocks"]
        order = np.argsort(got["address"], kind="stable")
        assert got["address"][order].tolist() == [b["address"] for b in want]
        kinds = [ntheap._dump.BLOCK_KIND_NAMES[int(k)] for k in got["kind"][order]]
        assert kinds == [b["kind"] for b in want]
        for col in ["size", "busy", "user_address", "user_size", "flags", "stack_trace_entry"]:
            assert got[col][order].tolist() == [b[col] for b in want], col
        unused = [b["busy_block_size"] if b["kind"] == "virtual" else b["unused_bytes"] for b in want]
        assert got["unused_bytes"][order].tolist() == unused
        assert not got["corruption"].any()
        # The segment rows and UCRs tile each segment exactly (builder's coverage check).
        for cov in e["coverage"]["segments"]:
            in_seg = got["segment"] == cov["address"]
            assert int(got["size"][in_seg].sum()) == cov["entry_bytes"]


def test_seed_virtual_block_with_ust() -> None:
    """The seed case: +ust Win7 x64, a 16 MB block with UserSize 0x1000040, BusyBlock at
    entry+0x30 and user data at entry+0x60."""
    path, exp = fixture("heap_ust_win7_x64")
    dump = ntheap.Dump(path)
    seeds = [v for h in dump.heaps for v in h.virtual_blocks if v.user_size == 0x1000040]
    assert len(seeds) == 1
    v = seeds[0]
    assert v.header_address == v.address + 0x30 and v.user_address == v.address + 0x60
    e = next(ev for h in nt_heaps(exp) for ev in h["virtual_blocks"] if ev["user_size"] == 0x1000040)
    assert (v.commit_size, v.reserve_size, v.stack_trace_entry) == (e["commit_size"], e["reserve_size"], e["stack_trace_entry"])
    assert v.stack_trace_entry != 0
    # The [MPF] convention would subtract the header once more (UNCONFIRMED discrepancy, §8).
    assert v.user_size - (0x60 - 0x20) == e["user_size_mpf_convention"]


def test_heap_summary_dataframe() -> None:
    path, exp = fixture("heap_wow64_win7")
    df = ntheap.Dump(path).heap_summary()
    assert list(df["heap"]) == [h["address"] for h in exp["heaps"] + exp["heaps32"]]
    assert list(df["arch"]) == ["x64"] + ["x86"] * len(exp["heaps32"])
    assert list(df["committed"]) == [h["totals"]["committed"] for h in exp["heaps"] + exp["heaps32"]]
    assert list(df["virtual_blocks"]) == [len(h["virtual_blocks"]) for h in exp["heaps"] + exp["heaps32"]]


def test_heap_blocks_method_matches_dump_blocks() -> None:
    path, exp = fixture("heap_win10_1809_x64")
    dump = ntheap.Dump(path)
    h = dump.heap(exp["heaps"][1]["address"])
    t = h.blocks()
    assert len(t) == h.block_count == len(exp["heaps"][1]["blocks"])
    assert sorted(t["address"].tolist()) == [b["address"] for b in exp["heaps"][1]["blocks"]]
    df = t.to_pandas()
    assert set(df["kind_name"]) <= {"backend", "virtual", "segment_header", "internal"}
    with pytest.raises(ntheap.NoSuchHeapError, match="no heap at 0x1: the dump lists 2 heaps: ") as e:
        dump.heap(1)
    assert isinstance(e.value, ntheap.DumpError) and e.value.address == 1
    assert all(f"{h['address']:#x}" in str(e.value) for h in exp["heaps"])


@pytest.mark.parametrize("name", ["heap_bad_checksum", "heap_cyclic_segment_list", "heap_cyclic_virtual_list", "heap_pointer_outside_dump"])
def test_corruption_is_recorded_exactly(name: str) -> None:
    path, exp = fixture(name)
    dump = ntheap.Dump(path)
    got = dump.corruption()
    assert [(int(a), k, int(h)) for a, k, h in zip(got["address"], got["kind_name"], got["heap"])] == [
        (c["address"], CORRUPTION_KIND[c["kind"]], c["heap"]) for c in exp["corruption"]
    ]
    bad = next(h for h in exp["heaps"] if h["corruption"])
    w = bad["walk"]
    heap = dump.heap(bad["address"])
    assert [s.address for s in heap.segments] == w["segments"]
    assert [v.address for v in heap.virtual_blocks] == w["virtual_blocks"]
    # The rest of the heap is still reported.
    rows = rows_of(dump.blocks(), bad["address"])
    busy_user = rows["user_size"][rows["busy"] & (rows["kind"] == 0)]
    if name != "heap_bad_checksum":
        assert (int(busy_user.size), int(busy_user.sum())) == (w["busy_count"], w["busy_user_bytes"])
        assert int(rows["size"][~rows["busy"]].sum()) == w["free_bytes"]
    else:
        # The walk resynchronises after the bad header: at least what the builder says a walker
        # that stops there reports, and the bad bytes become one unparsed row.
        assert int(busy_user.size) >= w["busy_count"]
        assert int((rows["kind"] == 5).sum()) == 1
    virt = rows["user_size"][rows["kind"] == 1]
    assert int(virt.sum()) == w["virtual_user_bytes"]


def test_missing_page_is_recorded_inside_it() -> None:
    path, exp = fixture("heap_page_missing")
    dump = ntheap.Dump(path)
    (c,) = exp["corruption"]
    got = dump.corruption()
    assert list(got["kind_name"]) == ["NotCaptured"]
    assert c["address"] <= int(got["address"][0]) < c["address"] + 0x1000
    assert dump.heap(c["heap"]).status == "walked"


def test_foreign_heaps_are_listed_not_walked() -> None:
    path, exp = fixture("heap_not_nt")
    dump = ntheap.Dump(path)
    unknown = [e for e in exp["heaps"] if e.get("type") == "unknown"]
    for e in unknown:
        h = dump.heap(e["address"])
        assert (h.kind, h.status, h.block_count) == ("unknown", "not_walked", 0)
    assert "BadSignature" in list(dump.corruption()["kind_name"])
    path, exp = fixture("heap_segment_heap")
    dump = ntheap.Dump(path)
    seg = [e for e in exp["heaps"] if e.get("type") == "segment"]
    assert seg
    for e in seg:
        h = dump.heap(e["address"])
        # A page with only the 0xDDEEDDEE signature: no segment-heap layout validates (§12.9).
        assert (h.kind, h.status) == ("segment", "not_walked")
        assert h.not_walked and "no segment-heap layout validates" in h.not_walked
    assert list(dump.corruption()["kind_name"]) == ["NoLayout"] * len(seg)


def test_address_summary_dataframe() -> None:
    path, exp = fixture("heap_win10_1809_x86")
    df = ntheap.Dump(path).address_summary()
    usage = df[df.section == "usage"]
    assert int(usage["size"].sum()) == sum(r["size"] for r in exp["regions"])
    assert abs(float(usage["pct_total"].sum()) - 100.0) < 1e-9
    busy = usage[usage.name != "Free"]
    assert abs(float(busy["pct_busy"].sum()) - 100.0) < 1e-9
    assert {"Heap", "Stack", "TEB", "PEB"} <= set(usage["name"])
    state = df[df.section == "state"].set_index("name")["size"]
    assert int(state["MEM_COMMIT"]) == sum(r["size"] for r in exp["regions"] if r["state"] == 0x1000)


@pytest.mark.parametrize("name", ["heap_win7_x64", "heap_wow64_win7", "heap_ust_win10_x86", "lfh_win10_x64"])
def test_heaps_and_summaries_read_headers_only(name: str) -> None:
    """heaps, heap_summary(), the !heap -s text and !heap -h read headers and lists; the walk
    waits for what needs blocks, and then fills List length with the builder's free count."""
    from ntheap.heapviews import heap_detail_text

    path, exp = fixture(name)
    dump = ntheap.Dump(path)
    heaps = {h.address: h for h in dump.heaps}
    df = dump.heap_summary()
    text = dump.heap_summary_text()
    details = [heap_detail_text(dump, e["address"]) for e in nt_heaps(exp)]
    usage = dump.address_summary()
    assert not dump.is_walked
    assert len(usage)
    assert 'List length "?"' in text and all("need the block walk" in d for d in details)
    assert df["list_length"].isna().all()
    for e in nt_heaps(exp):
        h = heaps[e["address"]]
        assert (h.reserved, h.committed, h.free_bytes) == (e["totals"]["reserved"], e["totals"]["committed"], e["free"]["bytes"])
        assert [v.address for v in h.virtual_blocks] == [v["address"] for v in e["virtual_blocks"]]
        assert "not walked yet" in repr(h)
    assert not dump.is_walked
    # What needs the blocks walks the dump once; the heaps then come from the walk.
    first = nt_heaps(exp)[0]
    assert heaps[first["address"]].free_list_length == first["free"]["count"]
    assert dump.is_walked
    df = dump.heap_summary().set_index("heap")
    for e in nt_heaps(exp):
        assert df.loc[e["address"], "list_length"] == e["free"]["count"]
    assert 'List length "?"' not in dump.heap_summary_text()


def test_virtual_block_stacks_are_looked_up_on_first_use() -> None:
    path, exp = fixture("heap_ust_win7_x64")
    dump = ntheap.Dump(path)
    blocks = [v for h in dump.heaps for v in h.virtual_blocks]
    assert blocks and not dump.is_walked
    with_trace = [v for v in blocks if v.stack_trace_entry]
    assert with_trace and all(v.stack_id >= 0 and len(v.stack) > 0 for v in with_trace)
    assert dump.is_walked
    again = [v for h in dump.heaps for v in h.virtual_blocks]
    assert again == blocks


def test_workers_bound_the_walk_and_do_not_change_it() -> None:
    path, _ = fixture("lfh_win10_x64")
    one, two = ntheap.Dump(path, workers=1), ntheap.Dump(path, workers=2)
    assert (one.workers, two.workers, ntheap.Dump(path).workers) == (1, 2, None)
    a, b = one.blocks(), two.blocks()
    for c in a.columns:
        assert np.array_equal(a[c], b[c]), c
    with pytest.raises(ValueError):
        ntheap.Dump(path, workers=0)
