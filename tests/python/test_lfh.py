"""The Low Fragmentation Heap against the builder's LFH fixtures (tests/dumpbuilder/lfh.py):
keys, subsegments, size classes, undecodable and damaged containers, and the key read through
ntdll's PDB. Expected values come from the builder's JSON."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import numpy as np
import pytest

import ntheap

from conftest import FIXTURES, ROOT

LFH_FIXTURES = sorted(p.stem for p in FIXTURES.glob("lfh_*.json"))
NTDLL_X64 = str(ROOT / "tests" / "pdb" / "ntdll_x64")


def _load(name: str, **kw: Any) -> tuple[ntheap.Dump, Dict[str, Any]]:
    return ntheap.Dump(FIXTURES / f"{name}.dmp", **kw), json.loads((FIXTURES / f"{name}.json").read_text())


def _lfh_heaps(exp: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [h for h in exp.get("heaps", []) + exp.get("heaps32", []) if h.get("lfh")]


@pytest.mark.parametrize("name", LFH_FIXTURES)
def test_each_lfh_matches_the_builder(name: str) -> None:
    dump, exp = _load(name, symbol_path="")
    heaps = _lfh_heaps(exp)
    assert heaps, name
    for e in heaps:
        h = dump.heap(e["address"])
        lfh = h.lfh
        assert lfh is not None and lfh.address == e["lfh"]["front_end_heap"]
        assert h.fast_heap == "LFH"
        assert sorted(lfh.zones) == sorted(e["lfh"]["zones"])
        assert lfh.key == e["lfh"]["key"], f"{name}: heap {e['address']:#x}"
        if e["lfh"]["key"] is not None:
            assert lfh.key_source == "recovered"
        subs = lfh.subsegments()
        want = sorted(e["lfh"]["subsegments"], key=lambda s: s["address"])
        order = np.argsort(subs["address"])
        assert subs["address"][order].tolist() == [s["address"] for s in want]
        for i, w in zip(order, want):
            where = f"{name}: subsegment {w['address']:#x}"
            assert (int(subs["user_blocks"][i]), int(subs["block_count"][i])) == (w["user_blocks"], w["block_count"]), where
            assert bool(subs["retired"][i]) == w["retired"], where
            if w["retired"]:
                continue
            assert (int(subs["block_size"][i]), int(subs["flags"][i])) == (w["block_size"], w["flags"]), where
            assert int(subs["free_count_field"][i]) == w["free_count_field"], where
            nd = subs.to_pandas()["not_decoded_name"][i] or None
            assert nd == w["not_decoded"], where
            if w["not_decoded"] is None:
                assert (int(subs["first"][i]), int(subs["stride"][i])) == (w["first"], w["stride"]), where
                assert int(subs["busy"][i]) == w["busy_count"], where
                assert int(subs["busy_bytes"][i]) == w["busy_user_bytes"], where
                assert int(subs["row"][i]) >= 0
        sc = lfh.size_classes()
        got = {int(sc["block_size"][i]): (int(sc["subsegments"][i]), int(sc["busy"][i]), int(sc["busy_bytes"][i]),
                                          int(sc["undecoded_blocks"][i])) for i in range(len(sc))}
        for w in e["lfh"]["size_classes"]:
            subsegments, busy, busy_bytes, undecoded = got[w["block_size"]]
            assert (busy, busy_bytes) == (w["busy"], w["busy_user_bytes"]), name
            if not undecoded:  # the builder counts decoded subsegments only
                assert subsegments == w["subsegments"], name


def test_wow64_halves_have_their_own_keys() -> None:
    dump, exp = _load("lfh_wow64_win10", symbol_path="")
    keys = {h.arch: h.lfh.key for h in dump.heaps if h.lfh is not None}
    assert keys == {"x64": exp["lfh_keys"]["native"], "x86": exp["lfh_keys"]["wow64"]}
    assert keys["x64"] != keys["x86"]


def test_windows_8_0_is_reported_not_decoded_with_its_zones_named() -> None:
    dump, exp = _load("lfh_win8_x64", symbol_path="")
    (e,) = _lfh_heaps(exp)
    h = dump.heap(e["address"])
    assert h.lfh.not_decoded == "unsupported_build" and not h.lfh.decoded
    df = h.blocks().to_pandas()
    containers = df[df.kind_name == "lfh_container"]
    assert len(containers) == e["lfh"]["containers"] and (containers.not_decoded_name == "unsupported_build").all()
    assert (df.level == 0).all(), "no children under undecoded containers"
    assert sorted(df[df.kind_name == "lfh_zone"].user_address) == sorted(e["lfh"]["zones"])
    (what, count, nbytes, message) = h.warnings[0]
    assert what == "not_decoded:unsupported_build" and count == len(containers)
    assert nbytes == int(containers["size"].sum())
    assert f"{nbytes} bytes in {count} LFH containers of heap {e['address']:#x} could not be attributed" in message
    assert "9200" in message
    assert message in dump.heap_summary_text()
    assert dump.coverage()["message"].tolist() == [message]


def test_a_mis_keyed_container_is_skipped_and_recorded() -> None:
    dump, exp = _load("lfh_mis_keyed_x64", symbol_path="")
    (rec,) = exp["corruption"]
    (e,) = _lfh_heaps(exp)
    h = dump.heap(e["address"])
    assert h.lfh.key == e["lfh"]["key"], "the process key is still recovered"
    subs = h.lfh.subsegments().to_pandas().set_index("user_blocks")
    assert subs.loc[rec["user_blocks"], "not_decoded_name"] == "corrupt"
    assert (subs.drop(index=rec["user_blocks"])[~subs.drop(index=rec["user_blocks"]).retired].not_decoded == 0).all()
    c = dump.corruption().to_pandas()
    assert ((c.address == rec["user_blocks"]) & (c.kind_name == "BadLfhContainer")).any()
    assert any(w[0] == "not_decoded:corrupt" for w in h.warnings)


def test_a_container_whose_pages_are_missing_is_not_decoded() -> None:
    dump, exp = _load("lfh_ub_not_captured_x64", symbol_path="")
    (e,) = _lfh_heaps(exp)
    bad = [s for s in e["lfh"]["subsegments"] if s["not_decoded"]]
    assert [s["not_decoded"] for s in bad] == ["not_captured"]
    subs = dump.heap(e["address"]).lfh.subsegments().to_pandas().set_index("user_blocks")
    assert subs.loc[bad[0]["user_blocks"], "not_decoded_name"] == "not_captured"


def test_the_key_is_read_through_a_matching_ntdll_pdb_and_checked() -> None:
    dump, exp = _load("lfh_symbol_key_x64", symbol_path=NTDLL_X64)
    (e,) = [h for h in _lfh_heaps(exp) if h["address"] == exp["heaps"][0]["address"]]
    lfh = dump.heap(e["address"]).lfh
    assert exp["symbol_key"] == exp["lfh_keys"]["native"]
    assert (lfh.key, lfh.key_source) == (exp["lfh_keys"]["native"], "symbol_and_recovered")
    # Without the PDB the same key is recovered from the dump.
    dump, _ = _load("lfh_symbol_key_x64", symbol_path="")
    assert (dump.heap(e["address"]).lfh.key, dump.heap(e["address"]).lfh.key_source) == (exp["lfh_keys"]["native"], "recovered")


def test_a_symbol_that_disagrees_with_the_containers_is_reported() -> None:
    dump, exp = _load("lfh_symbol_key_wrong_x64", symbol_path=NTDLL_X64)
    assert exp["symbol_key"] != exp["lfh_keys"]["native"]
    lfh = dump.heap(exp["heaps"][0]["address"]).lfh
    assert (lfh.key, lfh.key_source) == (exp["lfh_keys"]["native"], "recovered")
    c = dump.corruption().to_pandas()
    assert c.detail.str.contains(f"the symbol gives {exp['symbol_key']:#010x}").any()


def test_a_pdb_of_another_build_is_ignored() -> None:
    dump, exp = _load("lfh_symbol_key_mismatch_x64", symbol_path=NTDLL_X64)
    assert exp["symbol_key"] is None
    lfh = dump.heap(exp["heaps"][0]["address"]).lfh
    assert (lfh.key, lfh.key_source) == (exp["lfh_keys"]["native"], "recovered")
    assert not dump.corruption().to_pandas().detail.str.contains("symbol gives").any()


def test_lfh_allocations_flow_into_the_analysis() -> None:
    dump, exp = _load("lfh_ust_win10_x64", symbol_path="")
    total = sum(h["totals"]["busy_user_bytes_all"] for h in exp["heaps"] if h.get("totals"))
    top = ntheap.top_stacks(dump, n=1000)
    assert int(top["bytes"].sum()) == total
    df = dump.blocks().to_pandas()
    lfh_rows = df[(df.kind_name == "lfh_block") & df.is_allocation]
    traced = lfh_rows[lfh_rows.stack_trace_entry != 0]
    assert len(traced) and (traced.stack_id >= 0).all(), "+ust LFH blocks carry their stacks"
    # allocation_at finds the innermost row: the LFH block, not its container.
    r = lfh_rows.iloc[0]
    a = dump.allocation_at(int(r.user_address))
    assert a is not None and a.user_address == r.user_address and a.user_size == r.user_size
    assert a.kind == "lfh_block" and a.address == r.address
    # The container's first bytes are its header: the overhead row, not the container, holds them.
    c = df.iloc[int(r.parent)]
    a = dump.allocation_at(int(c.address) + 1)
    assert a is not None and a.kind == "overhead" and a.address == c.address
