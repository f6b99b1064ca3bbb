"""The nested block model (docs/block-model.md) against every builder fixture that describes it.

Each such fixture's JSON lists, per heap, every row the reader must emit, with its parent given
by address. The expected values are the builder's (it wrote the bytes from the layout reference
with its own constants); nothing here is derived from the reader. The structural rules (tiling,
levels, the allocation rule) are also checked on the reader's output directly.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest

import ntheap

from conftest import FIXTURES

KIND = {name: code for code, name in ntheap._core.BLOCK_KINDS}
NOT_DECODED = {name: code for code, name in ntheap._core.NOT_DECODED}
ALLOCATION_KINDS = {"backend", "virtual", "lfh_block", "dph_block", "dph_normal_block", "page_range", "vs_block",
                    "seg_lfh_block", "large_block"}


def _expected_rows(h: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rows the builder lists for a heap (NT and page heaps: ``blocks``; segment heaps: ``rows``)."""
    return h.get("blocks") or h.get("rows") or []


def _model_fixtures() -> List[str]:
    names = []
    for js in sorted(FIXTURES.glob("*.json")):
        exp = json.loads(js.read_text())
        heaps = exp.get("heaps", []) + exp.get("heaps32", [])
        if any(_expected_rows(h) and "level" in _expected_rows(h)[0] for h in heaps if isinstance(h, dict)):
            names.append(js.stem)
    return names


MODEL_FIXTURES = _model_fixtures()


def _rows(table: ntheap.Table, heap: int) -> List[Dict[str, Any]]:
    sel = np.flatnonzero(table["heap"] == np.uint64(heap))
    cols = {c: table[c] for c in table.columns}
    out = []
    for i in sel:
        r = {c: cols[c][i].item() for c in cols}
        r["row"] = int(i)
        out.append(r)
    return out


def _key(r: Dict[str, Any]) -> Tuple[int, int, int]:
    return (r["address"], r["level"], r["size"])


@pytest.mark.parametrize("name", MODEL_FIXTURES)
def test_rows_match_the_builder(name: str) -> None:
    exp = json.loads((FIXTURES / f"{name}.json").read_text())
    dump = ntheap.Dump(FIXTURES / f"{name}.dmp")
    table = dump.blocks()
    stacks = dump.stacks()
    address = table["address"]
    heaps = [h for h in exp.get("heaps", []) + exp.get("heaps32", []) if isinstance(h, dict) and _expected_rows(h)]
    assert heaps
    clean = not exp.get("corruption")
    for h in heaps:
        if "level" not in _expected_rows(h)[0]:
            continue
        if not (clean and not h.get("corruption")):
            continue  # the builder lists the blocks it wrote, not what a walk of damage yields
        got = sorted(_rows(table, h["address"]), key=_key)
        want = sorted(_expected_rows(h), key=_key)
        assert [(r["address"], r["size"]) for r in got] == [(r["address"], r["size"]) for r in want], (
            f"heap {h['address']:#x}: row extents differ"
        )
        for g, w in zip(got, want):
            where = f"heap {h['address']:#x} row {w['address']:#x} ({w['kind']})"
            assert g["kind"] == KIND[w["kind"]], where
            parent = int(address[g["parent"]]) if g["parent"] >= 0 else 0
            assert (parent, g["level"]) == (w["parent"], w["level"]), where
            assert (g["busy"], g["is_allocation"]) == (w["busy"], w["is_allocation"]), where
            assert (g["user_address"], g["user_size"]) == (w["user_address"], w["user_size"]), where
            assert g["not_decoded"] == (NOT_DECODED[w["not_decoded"]] if w["not_decoded"] else 0), where
            assert g["stack_trace_entry"] == w["stack_trace_entry"], where
            if w.get("frames"):
                assert g["stack_id"] >= 0, where
                assert stacks.addresses(g["stack_id"]).tolist() == w["frames"], where
        if "busy_user_bytes_all" in h:
            mine = sum(r["user_size"] for r in got if r["is_allocation"])
            assert mine == h["busy_user_bytes_all"], f"heap {h['address']:#x}"


@pytest.mark.parametrize("name", MODEL_FIXTURES)
def test_containers_are_tiled_and_allocations_follow_the_rule(name: str) -> None:
    table = ntheap.Dump(FIXTURES / f"{name}.dmp").blocks()
    parent, level, kind = table["parent"], table["level"], table["kind"]
    names = {code: n for n, code in KIND.items()}
    for i in range(len(table)):
        k = names[int(kind[i])]
        assert bool(table["is_allocation"][i]) == (bool(table["busy"][i]) and k in ALLOCATION_KINDS), i
        if parent[i] >= 0:
            assert parent[i] < i and level[i] == level[parent[i]] + 1
    # Children (with their overhead rows) tile each decoded container exactly.
    for p in np.flatnonzero(np.isin(kind, [KIND["lfh_container"], KIND["dph_normal"]])):
        kids = np.flatnonzero(parent == p)
        if table["not_decoded"][p]:
            assert len(kids) == 0
            continue
        start = int(table["address"][kids[0]])
        at = start
        for c in kids:
            assert int(table["address"][c]) == at
            at += int(table["size"][c])
        assert (start, at) == (int(table["address"][p]), int(table["address"][p] + table["size"][p]))


def test_blocks_twice_hands_out_the_same_read_only_arrays() -> None:
    """The walk's columns are moved into numpy once: every blocks() and Heap.blocks() shares
    them (no copy), derived columns included, and nobody can write to them."""
    from conftest import fixture

    path, _ = fixture("lfh_ust_win10_x64")
    dump = ntheap.Dump(path)
    a, b = dump.blocks(), dump.blocks()
    for col in ("address", "size", "kind", "parent", "stack_trace_entry", "stack_id"):
        assert a[col] is b[col], col
        assert not a[col].flags.writeable, col
    heap = dump.heaps[0]
    start, end = heap.block_range
    part = heap.blocks()
    assert np.shares_memory(part["address"], a["address"]) and len(part) == end - start
    with pytest.raises(ValueError):
        a["size"][0] = 1
