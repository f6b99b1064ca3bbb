"""The segment heap against the builder's segment-heap fixtures (tests/dumpbuilder/segheap.py):
rows, keys, per-context numbers and totals, damage, unknown builds, x86. Expected values are the
builder's JSON (written from windows-heap-layouts.md §10 with its own constants)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import ntheap

from conftest import FIXTURES

SEG_FIXTURES = sorted(p.stem for p in FIXTURES.glob("segheap_*.json"))
KIND = {name: code for code, name in ntheap._core.BLOCK_KINDS}
CORRUPTION = {name: code for code, name in ntheap._core.CORRUPTION_KINDS}


def _load(name: str) -> Tuple[ntheap.Dump, Dict[str, Any]]:
    return ntheap.Dump(FIXTURES / f"{name}.dmp", symbol_path=""), json.loads((FIXTURES / f"{name}.json").read_text())


def _segment_heaps(exp: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [h for h in exp["heaps"] if h.get("type") == "segment"]


@pytest.mark.parametrize("name", SEG_FIXTURES)
def test_segment_heaps_are_walked_or_say_why_not(name: str) -> None:
    dump, exp = _load(name)
    for e in _segment_heaps(exp):
        h = dump.heap(e["address"])
        assert h.kind == "segment"
        if not e["walked"]:
            assert h.status == "not_walked"
            assert h.not_walked and ("x86" in h.not_walked if e["reason_code"] == "x86_not_supported" else True)
            assert h.block_count == 0
            lines = [ln for ln in dump.heap_summary_text().splitlines() if "segment heap, not walked" in ln]
            assert [int(ln.split()[0], 16) for ln in lines] == [e["address"]]
            continue
        s = h.segment_heap
        assert h.status == "walked" and s is not None
        assert s.heap_key == e["heap_key"], name
        assert s.lfh_key == e["lfh_key"], name
        assert [c.address for c in s.contexts] == [c["address"] for c in e["seg_contexts"]]
        for c, w in zip(s.contexts, e["seg_contexts"]):
            assert c.segments == w["segments"], name
            assert (c.unit_shift, c.first_descriptor_index, c.segment_size) == (
                w["unit_shift"], w["first_descriptor_index"], w["segment_size"]), name
            assert c.reserved == w["reserved"] and c.committed == w["committed"], name
        sm = e["summary"]
        assert (s.vs_count, s.vs_user_bytes) == (sm["vs"]["count"], sm["vs"]["user_bytes"]), name
        assert (s.lfh_count, s.lfh_user_bytes) == (sm["lfh"]["count"], sm["lfh"]["user_bytes"]), name
        assert (s.page_range_count, s.page_range_user_bytes) == (sm["page_range"]["count"], sm["page_range"]["user_bytes"])
        assert (s.large_count, s.large_user_bytes) == (sm["large"]["count"], sm["large"]["user_bytes"]), name
        rows = h.blocks()
        assert int(rows["user_size"][rows["is_allocation"]].sum()) == sm["busy_user_bytes_all"], name


def test_the_damaged_heap_reports_each_problem_and_walks_the_rest() -> None:
    dump, exp = _load("segheap_damaged_x64")
    (e,) = _segment_heaps(exp)
    table = dump.heap(e["address"]).blocks()
    got = sorted(zip(table["address"].tolist(), table["size"].tolist(), table["kind"].tolist(), table["level"].tolist()))
    want = sorted((r["address"], r["size"], KIND[r["kind"]], r["level"]) for r in e["rows"])
    assert got == want
    # Each damage is a corruption record at the builder's address.
    c = dump.corruption().to_pandas()
    mine = c[c.heap == e["address"]]
    for rec in e["corruption"]:
        kind = {"list_loop": "ListLoop", "zero_size": "ZeroSize", "not_captured": "NotCaptured"}[rec["kind"]]
        assert ((mine.kind_name == kind)).any(), rec
    unparsed = table.to_pandas()
    unparsed = unparsed[unparsed.kind_name == "unparsed"]
    assert sorted(unparsed.corruption_name) == ["NotCaptured", "ZeroSize"]


def test_nt_and_segment_heaps_side_by_side_flow_into_the_analysis() -> None:
    dump, exp = _load("segheap_win11_24h2_x64")
    kinds = {h.kind for h in dump.heaps}
    assert kinds == {"nt", "segment"}
    total = sum(h["summary"]["busy_user_bytes_all"] for h in _segment_heaps(exp))
    total += sum(h["totals"]["busy_user_bytes_all"] for h in exp["heaps"] if h.get("type", "nt") == "nt")
    top = ntheap.top_stacks(dump, n=10)
    assert int(top["bytes"].sum()) == total
    df = dump.blocks().to_pandas()
    seg_kinds = set(df[df.is_allocation].kind_name)
    assert {"vs_block", "seg_lfh_block", "page_range", "large_block", "backend"} <= seg_kinds
    # heap -p -a on a VS block's user data finds the chunk.
    r = df[(df.kind_name == "vs_block") & df.is_allocation].iloc[0]
    a = dump.allocation_at(int(r.user_address) + 1)
    assert a is not None and (a.kind, a.address, a.user_size) == ("vs_block", r.address, r.user_size)
    text = dump.heap_summary_text()
    assert "Segment heaps" in text and f"{exp['heaps'][0]['address']:x}" in text


NTDLL_X64 = str(FIXTURES.parent / "pdb" / "ntdll_x64")


def test_keys_read_through_ntdlls_pdb_agree_with_the_recovered_ones() -> None:
    exp = json.loads((FIXTURES / "segheap_symbol_keys_x64.json").read_text())
    (e,) = _segment_heaps(exp)
    s = ntheap.Dump(FIXTURES / "segheap_symbol_keys_x64.dmp", symbol_path=NTDLL_X64).heap(e["address"]).segment_heap
    assert s is not None
    assert (s.heap_key, s.heap_key_source) == (exp["symbol_heap_key"], "symbol_and_recovered")
    assert (s.lfh_key, s.lfh_key_source) == (exp["symbol_lfh_key"], "symbol_and_recovered")
    assert s.heap_key == e["heap_key"] and s.lfh_key == e["lfh_key"]
    # Without the PDB the same keys are recovered from the dump alone.
    s = ntheap.Dump(FIXTURES / "segheap_symbol_keys_x64.dmp", symbol_path="").heap(e["address"]).segment_heap
    assert s is not None and (s.heap_key_source, s.lfh_key_source) == ("recovered", "recovered")
    assert (s.heap_key, s.lfh_key) == (e["heap_key"], e["lfh_key"])


def test_a_symbol_lfh_key_that_does_not_decode_is_reported() -> None:
    exp = json.loads((FIXTURES / "segheap_symbol_keys_wrong_x64.json").read_text())
    (e,) = _segment_heaps(exp)
    dump = ntheap.Dump(FIXTURES / "segheap_symbol_keys_wrong_x64.dmp", symbol_path=NTDLL_X64)
    s = dump.heap(e["address"]).segment_heap
    assert s is not None and exp["symbol_lfh_key"] != e["lfh_key"]
    assert (s.lfh_key, s.lfh_key_source) == (e["lfh_key"], "recovered")
    detail = dump.corruption().to_pandas().detail
    assert detail.str.contains(f"LfhKey: the symbol gives {exp['symbol_lfh_key']:#010x}").any()
