"""Leak triage without +ust (leak-triage.md): C++ types, content classes and reachability of
every allocation of the builder's triage dumps, checked against the builder's JSON (which
tests/dumpbuilder/rtti.py writes from the definition, never from the reader)."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pytest

import ntheap
from ntheap.triageviews import type_summary

from conftest import fixture

SCENARIOS = ["triage_x64", "triage_x86", "triage_ust_x64", "triage_series_1", "triage_series_2", "triage_series_3"]
ROOT_BITS = dict(ntheap._core.ROOT_KINDS)
ROOT_ORDER = ["global", "stack", "register", "other"]


def _got(name: str) -> Dict[int, Dict[str, Any]]:
    """Per user address: what the reader says about each allocation, in the JSON's terms."""
    path, _ = fixture(name)
    dump = ntheap.Dump(path)
    b = dump.blocks()
    df = b.to_pandas()
    types = dump.types().to_pandas()
    out: Dict[int, Dict[str, Any]] = {}
    for r in df[df.is_allocation].itertuples():
        t = types.iloc[r.type_id] if r.type_id >= 0 else None
        out[int(r.user_address)] = {
            "kind": r.kind_name,
            "user_size": int(r.user_size),
            "type": None if t is None else t["decorated"],
            "type_name": None if t is None else (t["name"] or None),
            "type_module": None if t is None else t["module"],
            "vftable": None if t is None else int(t["vftable"]),
            "is_struct": None if t is None else bool(t["is_struct"]),
            "content": r.content_name,
            "reachable": bool(r.reachable),
            "reached_by": r.reached_by_name,
            "depth": None if r.depth < 0 else int(r.depth),
            "direct_roots": [k for k in ROOT_ORDER if int(r.direct_roots) & {n: bit for bit, n in ROOT_BITS.items()}[k]],
        }
    return out


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_allocation_has_the_expected_type_content_and_reachability(name: str) -> None:
    _, expected = fixture(name)
    got = _got(name)
    want = expected["triage"]["allocations"]
    assert sorted(got) == [a["user_address"] for a in want], "the allocations themselves"
    fields = ["kind", "user_size", "type", "type_name", "type_module", "vftable", "is_struct", "content", "reachable",
              "reached_by", "depth", "direct_roots"]
    wrong: List[str] = []
    for a in want:
        g = got[a["user_address"]]
        for f in fields:
            if g[f] != a[f]:
                wrong.append(f"{a['user_address']:#x} ({a.get('role')}): {f} is {g[f]!r}, expected {a[f]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", SCENARIOS)
def test_types_table_lists_each_type_module_and_vftable(name: str) -> None:
    path, expected = fixture(name)
    dump = ntheap.Dump(path)
    t = dump.types().to_pandas()
    b = dump.blocks()
    alloc = b["is_allocation"]
    ids, counts = np.unique(b["type_id"][alloc], return_counts=True)
    count = dict(zip(ids.tolist(), counts.tolist()))
    got = sorted((r.decorated, r.module, int(r.vftable), r.name, bool(r.is_struct), count.get(r.id, 0)) for r in t.itertuples())
    want = sorted((x["type"], x["type_module"], x["vftable"], x["type_name"], x["is_struct"], x["count"])
                  for x in expected["triage"]["types"])
    assert got == want


@pytest.mark.parametrize("name", SCENARIOS)
def test_unreferenced_are_exactly_the_expected_blocks(name: str) -> None:
    path, expected = fixture(name)
    want = expected["triage"]["unreferenced"]
    leaks = ntheap.Dump(path).unreferenced()
    assert sorted(leaks["user_address"].tolist()) == want["user_addresses"]
    assert int(leaks["user_size"].sum()) == want["bytes"] and len(leaks) == want["count"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_type_summary_follows_section_2_4(name: str) -> None:
    path, expected = fixture(name)
    got = type_summary(ntheap.Dump(path))
    want = expected["triage"]["summary"]
    fields = ["key", "type", "content", "count", "bytes", "unreferenced_count", "unreferenced_bytes"]
    rows = [{f: (None if f == "type" and r["type"] is None else r[f]) for f in fields} for r in got.to_dict("records")]
    assert rows == [{f: w[f] for f in fields} for w in want]


def test_heap_l_lists_exactly_the_unreferenced_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    from ntheap.cli import main

    path, expected = fixture("triage_x64")
    want = expected["triage"]["unreferenced"]
    assert main(["heap", "-l", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{want['count']} potential unreachable blocks were detected." in out
    listed = [int(line.split()[1], 16) for line in out.splitlines() if line[:1] in "0123456789abcdef" and len(line.split()) > 7]
    assert sorted(listed) == want["user_addresses"]


def test_lazy_columns_run_only_when_read() -> None:
    path, _ = fixture("triage_x64")
    dump = ntheap.Dump(path)
    b = dump.blocks()
    assert "type_id" in b.columns and "type_id" not in b.computed
    assert dump.triage_stats() == {}
    b["type_id"]
    stats = dump.triage_stats()
    assert "type_seconds" in stats and "mark_seconds" not in stats
    b["reachable"]
    assert "mark_seconds" in dump.triage_stats()


def test_allocation_at_names_the_type_and_previews_the_bytes() -> None:
    path, expected = fixture("triage_x64")
    dump = ntheap.Dump(path)
    for a in expected["triage"]["allocations"]:
        if a["type_name"] and a["type_name"] == "CImageBuffer":
            found = dump.allocation_at(a["user_address"])
            assert found is not None
            assert (found.type_name, found.decorated, found.content) == ("CImageBuffer", ".?AVCImageBuffer@@", "object")
            assert "type CImageBuffer" in found.text
        if a["content"] == "ascii":
            found = dump.allocation_at(a["user_address"])
            assert found is not None and found.content == "ascii" and found.preview.startswith('"')
            assert dump.peek(a["user_address"]).startswith('"')


# ---------------------------------------------------------------------------------------------
# Analyses keyed by type, on the builder's series of one process without +ust

SERIES = ["triage_series_1", "triage_series_2", "triage_series_3"]


def _summary_bytes(name: str) -> Dict[str, int]:
    return {s["key"]: s["bytes"] for s in fixture(name)[1]["triage"]["summary"]}


def test_top_types_totals_follow_the_section_2_4_groups() -> None:
    path, expected = fixture("triage_series_3")
    df = ntheap.top_types(ntheap.Dump(path), n=None)
    assert dict(zip(df["type_key"], df["bytes"].tolist())) == _summary_bytes("triage_series_3")
    labels = {s["key"]: s["type_name"] or f"({s['key']})" for s in expected["triage"]["summary"]}
    assert dict(zip(df["type_key"], df["type"])) == labels


def test_growth_and_diff_by_type_match_each_dump() -> None:
    paths = [fixture(n)[0] for n in SERIES]
    g = ntheap.growth(paths, by="type", progress=False)
    assert list(g.columns) == ["time", "dump", "type_key", "type", "bytes", "count"]
    for name, path in zip(SERIES, paths):
        here = g[g["dump"] == str(path)]
        got = {k: int(b) for k, b in zip(here["type_key"], here["bytes"]) if b}
        assert got == _summary_bytes(name)
    first, last = _summary_bytes(SERIES[0]), _summary_bytes(SERIES[-1])
    d = ntheap.diff(paths[0], paths[-1], by="type")
    want = {k: last.get(k, 0) - first.get(k, 0) for k in set(first) | set(last)}
    assert dict(zip(d["type_key"], d["bytes_delta"].tolist())) == want


def test_report_without_ust_names_the_growing_types_and_the_likely_leaks(tmp_path: Any) -> None:
    from ntheap.leakreport import build_report

    paths = [str(fixture(n)[0]) for n in SERIES]
    out = build_report(paths, progress=False, make_plot=False)
    first, last = _summary_bytes(SERIES[0]), _summary_bytes(SERIES[-1])
    names = {s["key"]: s["type_name"] or s["key"] for s in fixture(SERIES[-1])[1]["triage"]["summary"]}
    grew = [k for k in last if last[k] > first.get(k, 0)]
    assert grew and "growth is reported by C++ type" in out.text
    suspects = out.text.split("Types that grew most (top")[1].split("Leak suspect 1")[0]
    for k in grew:
        assert names[k] in suspects, names[k]
    flat = [k for k in last if last[k] == first.get(k, -1) and k.startswith(".?A")]
    for k in flat:
        assert names[k] not in suspects, names[k]
    leaks = fixture(SERIES[-1])[1]["triage"]["unreferenced"]
    assert f"{leaks['count']:,} allocations ({leaks['bytes']:,} bytes) are referenced by nothing" in out.text


def test_plot_growth_by_type(tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    paths = [fixture(n)[0] for n in SERIES]
    fig = ntheap.plot_growth(paths, by="type", top=3, progress=False)
    assert fig.axes[0].get_title().startswith("Top ") and "types" in fig.axes[0].get_title()
    with pytest.raises(ValueError):
        ntheap.plot_growth(ntheap.growth(paths, progress=False), by="type")


def test_scan_blocks_carry_type_and_content() -> None:
    paths = [fixture(n)[0] for n in SERIES]
    res = ntheap.scan(paths, progress=False)
    last = res.blocks[res.blocks["dump"] == str(paths[-1])]
    want = {a["user_address"]: (a["type_name"], a["content"]) for a in fixture(SERIES[-1])[1]["triage"]["allocations"]}
    got = {int(u): (None if t.startswith("(") else t, str(c)) for u, t, c in zip(last["user_address"], last["type"], last["content"])}
    assert got == want


def _file_layout(img: Any) -> bytes:
    """A PE file of the builder's mapped image: headers, then each section's raw data at its
    PointerToRawData (what the loader reads back)."""
    size = max(s.raw_pointer + s.raw_size for s in img.sections)
    data = bytearray(size)
    data[: len(img.headers)] = img.headers
    for s in img.sections:
        data[s.raw_pointer:s.raw_pointer + s.raw_size] = img.mapped(s.rva, s.raw_size)
    return bytes(data)


def test_image_path_supplies_rtti_pages_the_dump_lacks(tmp_path: Any) -> None:
    """plugin.dll's RTTI lies on a page the dump does not hold: its objects have no name from the
    dump alone (the builder's module_not_captured decoys), and are named from a local copy of the
    binary, as WinDbg's .exepath would."""
    from dumpbuilder import triage_scenarios

    b, _ = triage_scenarios.triage_x64()
    plug = next(m for m in b.modules if m.name.lower() == "plugin.dll")
    assert plug.image is not None
    (tmp_path / "PLUGIN.DLL").write_bytes(_file_layout(plug.image))
    (tmp_path / "core.dll").write_bytes(b"not the module")  # captured whole: never opened
    path, expected = fixture("triage_x64")
    modules = {m["name"]: m for m in expected["triage"]["modules"]}
    host = next(c for c in modules["plugin.dll"]["classes"] if c["decorated"] == ".?AVPluginHost@plugin@@")
    vft = next(v["address"] for v in host["vftables"] if v["offset"] == 0)
    victims = [a for a in expected["triage"]["allocations"] if (a.get("decoy") or {}).get("kind") == "module_not_captured"]
    assert victims and all(a["type"] is None for a in victims)
    dump = ntheap.Dump(path, image_path=f"{tmp_path / 'absent'};{tmp_path}")
    assert dump.image_path is not None
    b2 = dump.blocks().to_pandas(["user_address", "type_id", "content"]).set_index("user_address")
    types = dump.types().to_pandas()
    for a in victims:
        t = types.iloc[int(b2.loc[a["user_address"], "type_id"])]
        assert (t["decorated"], t["name"], t["module"], int(t["vftable"])) == (host["decorated"], host["type_name"], "plugin.dll", vft)
    # Everything the dump names by itself is named the same.
    got = _got("triage_x64")
    for a in expected["triage"]["allocations"]:
        if a["type"] is not None:
            assert got[a["user_address"]]["type"] == a["type"]


def test_a_heaps_blocks_carry_the_triage_columns_of_its_rows() -> None:
    path, expected = fixture("triage_x64")
    dump = ntheap.Dump(path)
    whole = dump.blocks()
    checked = 0
    for h in dump.heaps:
        start, end = h.block_range
        part = h.blocks()
        assert "type_id" in part.columns and "type_id" not in part.computed
        for col in ("type_id", "content", "reachable", "depth"):
            assert np.array_equal(part[col], whole[col][start:end]), (hex(h.address), col)
        df = part.to_pandas(["type_id", "content"])
        named = df[df.type_id >= 0]
        checked += len(named)
        assert list(named.type) == [dump.types()["name"][i] or dump.types()["decorated"][i] for i in named.type_id]
    assert checked == sum(1 for a in expected["triage"]["allocations"] if a.get("type"))


def test_frame_codes_are_the_per_dump_groupings() -> None:
    """ScanResult.blocks (one array per column, each dump a slice of it) and frame() over
    Allocations made one by one (columns concatenated) give every row the stack key, top frame
    and type label that ntheap.keys.group gives it within its own dump."""
    from ntheap.allocations import Allocations, frame
    from ntheap.keys import group

    paths = [fixture(n)[0] for n in SERIES] + [fixture("heap_ust_win7_x64")[0]]
    res = ntheap.scan(paths, progress=False)
    allocs = res.allocations()
    base = np.asarray(allocs[0].table["address"]).base
    assert base is not None and all(np.asarray(a.table["address"]).base is base for a in allocs)
    one_by_one = [Allocations.from_dump(ntheap.Dump(p)) for p in paths]
    for df, source in [(res.blocks, allocs), (frame(one_by_one), one_by_one)]:
        at = 0
        for a in source:
            rows = df.iloc[at:at + len(a)]
            at += len(a)
            s, t = group(a, "stack"), group(a, "type")
            assert list(rows["stack_key"]) == list(s.keys[s.codes])
            assert list(rows["top_frame"]) == list(s.labels[s.codes])
            assert list(rows["type"]) == list(t.labels[t.codes])
            assert (rows["address"].to_numpy() == np.asarray(a.table["address"])).all()
        assert at == len(df)
    assert any((rows["stack_key"] != "").any() for rows in [res.blocks])
    assert (res.blocks["type"].astype(str).str.startswith("(") == False).any()  # noqa: E712
    pd.testing.assert_frame_equal(res.blocks, frame(one_by_one))


def test_frame_refuses_ids_a_dump_does_not_have() -> None:
    """A stack or type id outside its dump's tables is a ValueError naming the dump (not a
    wrong label and not a crash); the row passes check their arguments."""
    from ntheap import _core
    from ntheap.allocations import Allocations, frame

    def allocs(path: str, stack_id: int, type_id: int) -> Allocations:
        cols = {"heap": np.zeros(2, np.uint64), "address": np.arange(2, dtype=np.uint64), "user_address": np.arange(2, dtype=np.uint64),
                "user_size": np.ones(2, np.uint64), "kind": np.zeros(2, np.uint8), "stack_id": np.array([-1, stack_id], np.int32),
                "type_id": np.array([-1, type_id], np.int32), "content": np.zeros(2, np.uint8)}
        return Allocations.from_columns(path, None, None, cols, ["app!f"])

    df = frame([allocs("a.dmp", 0, -1), allocs("b.dmp", -1, -1)])
    assert list(df["stack_key"]) == ["", "app!f", "", ""]
    with pytest.raises(ValueError, match=r"^b\.dmp: a block refers to stack id 1, but the dump has 1 stacks"):
        frame([allocs("a.dmp", 0, -1), allocs("b.dmp", 1, -1)])
    with pytest.raises(ValueError, match=r"^a\.dmp: a block refers to type id 0, but the dump has 0 types"):
        frame([allocs("a.dmp", 0, 0)])
    z = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="starts"):
        _core.frame_marks(z, z, np.zeros(2, np.uint8), [0, 1], [1], [0])
    with pytest.raises(ValueError, match="same length"):
        _core.frame_codes(z, z[:1], np.zeros(2, np.uint8), [0, 2], [z], [z], [z], (1, 1, 1))
