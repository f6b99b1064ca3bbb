"""ntheap.Dump on builder-made dumps: every value comes from the builder's own inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict

import numpy as np
import pytest
from conftest import fixture

import ntheap

SCENARIOS = ["x86_win7", "x64_win10", "wow64_win7", "both_memory_lists", "adjacent_ranges", "no_memory_info", "no_threads", "peb_not_captured"]


@pytest.fixture(params=SCENARIOS)
def case(request: pytest.FixtureRequest) -> Any:
    path, expected = fixture(request.param)
    return ntheap.Dump(path), expected


def test_metadata(case: Any) -> None:
    dump, exp = case
    assert dump.arch == exp["arch"]
    assert dump.is_wow64 == exp["is_wow64"]
    assert dump.process_arch == ("x86" if exp["is_wow64"] else exp["arch"])
    assert dump.os_version == exp["os_version"]
    assert dump.os_build == exp["os_build"]
    assert dump.pid == exp["pid"]
    assert dump.timestamp == dt.datetime.fromtimestamp(exp["timestamp"], dt.timezone.utc)
    assert dump.timestamp.tzinfo is not None
    if exp["process_create_time"] is None:
        assert dump.process_create_time is None
    else:
        assert dump.process_create_time == dt.datetime.fromtimestamp(exp["process_create_time"], dt.timezone.utc)
    assert dump.streams == exp["streams"]
    assert dump.file_size == exp["file_size"]
    assert dump.csd_version == (exp["csd_version"] or None)
    assert dump.warnings == []
    # The path as opened, a pathlib.Path (what the stub says).
    assert isinstance(dump.path, Path) and dump.path.name == f"{exp['scenario']}.dmp"


def test_modules(case: Any) -> None:
    dump, exp = case
    got = dump.modules
    assert len(got) == len(exp["modules"])
    for m, e in zip(got, exp["modules"]):
        assert (m.name, m.path, m.base, m.size, m.timestamp, m.checksum) == (
            e["name"], e["path"], e["base"], e["size"], e["timestamp"], e["checksum"],
        )
        assert m.end == e["base"] + e["size"]
        assert m.version == e["version"]
        assert m.pdb_name == e["pdb_name"]
        assert m.pdb_age == e["pdb_age"]
        assert m.pdb_guid == (e["pdb_guid"].replace("-", "").upper() if e["pdb_guid"] else None)
    df = dump.modules_df()
    assert list(df["name"]) == [e["name"] for e in exp["modules"]]
    assert df["base"].dtype == np.uint64 or df["base"].dtype == np.int64
    assert str(df["timestamp"].dt.tz) == "UTC"


def test_threads(case: Any) -> None:
    dump, exp = case
    got = [(t.id, t.teb, t.stack_start, t.stack_size, t.suspend_count) for t in dump.threads]
    assert got == [(t["id"], t["teb"], t["stack_start"], t["stack_size"], t["suspend_count"]) for t in exp["threads"]]
    df = dump.threads_df()
    assert len(df) == len(exp["threads"])
    if len(df):
        assert list(df["stack_end"]) == [t["stack_start"] + t["stack_size"] for t in exp["threads"]]


def _check_peb(peb: ntheap.Peb, e: Dict[str, Any], arch: str) -> None:
    assert peb.arch == arch
    assert peb.address == e["address"]
    assert peb.image_base == e["image_base"]
    assert peb.ldr == e["ldr"]
    assert peb.process_heap == e["process_heap"]
    assert peb.nt_global_flag == e["nt_global_flag"]
    assert peb.number_of_heaps == e["number_of_heaps"]
    assert peb.maximum_number_of_heaps == e["max_heaps"]
    assert peb.process_heaps_address == e["process_heaps"]
    assert peb.os_version == e["os_version"]
    if e["process_heaps_captured"]:
        assert peb.process_heaps == e["heaps"]
        assert peb.process_heaps_problem is None
    else:
        assert peb.process_heaps is None
        assert "not captured" in (peb.process_heaps_problem or "")
    assert peb.has_ust == bool(e["nt_global_flag"] & 0x1000)


def test_peb(case: Any) -> None:
    dump, exp = case
    if not exp["peb"]["captured"]:
        with pytest.raises(ntheap.MemoryNotCaptured) as info:
            dump.peb
        assert info.value.address == exp["peb"]["address"]
        assert info.value.what == "x64 PEB"
        assert f"PEB at {exp['peb']['address']:#x} is not captured" in str(info.value)
        return
    if not exp["threads"]:
        # No thread, so no TEB: the PEB is in the dump but nothing says where.
        with pytest.raises(ntheap.StructureNotFoundError, match="no threads"):
            dump.peb
        return
    _check_peb(dump.peb, exp["peb"], exp["arch"])
    if exp["is_wow64"]:
        _check_peb(dump.peb32, exp["peb32"], "x86")
        assert dump.peb32.teb in [t["address"] for t in exp["teb32s"]]
    else:
        assert dump.peb32 is None


def test_regions(case: Any) -> None:
    dump, exp = case
    if "MemoryInfoListStream" not in exp["streams"]:
        with pytest.raises(ntheap.MissingStreamError, match="MemoryInfoListStream"):
            dump.regions()
        return
    t = dump.regions()
    assert len(t) == len(exp["regions"])
    for col in ["base", "size", "state", "type", "protect", "allocation_base", "allocation_protect", "captured"]:
        assert t[col].tolist() == [r[col] for r in exp["regions"]], col
    assert t["base"].dtype == np.uint64 and t["state"].dtype == np.uint32
    df = t.to_pandas()
    assert set(df["state_name"]) <= {"MEM_COMMIT", "MEM_RESERVE", "MEM_FREE"}


def test_probe_reads(case: Any) -> None:
    dump, exp = case
    assert exp["probe_reads"], "every scenario has probes"
    for p in exp["probe_reads"]:
        if "error" in p:
            with pytest.raises(ntheap.MemoryNotCaptured) as info:
                dump.read(p["address"], p["size"])
            assert info.value.address == p["address"]
            assert f"{p['address']:#x}" in str(info.value)
            assert not dump.is_captured(p["address"], p["size"])
        else:
            assert dump.read(p["address"], p["size"]).hex() == p["hex"], p.get("note")
            assert dump.is_captured(p["address"], p["size"])


def test_typed_reads() -> None:
    dump, exp = fixture_dump("x64_win10")
    peb = exp["peb"]
    assert dump.read_pointer(peb["address"] + 0x30) == peb["process_heap"]
    assert dump.read_u64(peb["address"] + 0x30) == peb["process_heap"]
    assert dump.read_u32(peb["address"] + 0xBC) == peb["nt_global_flag"]
    assert dump.read_u32(peb["address"] + 0xE8) == peb["number_of_heaps"]
    assert dump.read_u16(peb["address"] + 0xE8) == peb["number_of_heaps"] & 0xFFFF
    assert dump.read_u8(peb["address"] + 0xE8) == peb["number_of_heaps"] & 0xFF
    with pytest.raises(ValueError, match="arch"):
        dump.read_pointer(peb["address"], arch="arm64")


def test_wow64_pointer_width() -> None:
    dump, exp = fixture_dump("wow64_win7")
    peb32 = exp["peb32"]
    assert dump.read_pointer(peb32["address"] + 0x18, arch="x86") == peb32["process_heap"]
    assert dump.read_pointer(exp["peb"]["address"] + 0x30) == exp["peb"]["process_heap"]


def test_reads_across_adjacent_ranges_and_lists() -> None:
    dump, exp = fixture_dump("adjacent_ranges")
    ranges = exp["memory_list"] + exp["memory64_list"]

    def in_one_range(p: Dict[str, Any]) -> bool:
        return any(r["address"] <= p["address"] and p["address"] + p["size"] <= r["address"] + r["size"] for r in ranges)

    spanning = [p for p in exp["probe_reads"] if "error" not in p and not in_one_range(p)]
    assert spanning, "the scenario must contain reads that span ranges"
    for p in spanning:
        assert dump.read(p["address"], p["size"]).hex() == p["hex"]


def test_both_memory_lists_are_merged() -> None:
    dump, exp = fixture_dump("both_memory_lists")
    assert {"MemoryListStream", "Memory64ListStream"} <= set(dump.streams)
    total = sum(r["size"] for r in exp["memory_list"]) + sum(r["size"] for r in exp["memory64_list"])
    assert dump.captured_bytes == total
    for r in exp["memory_list"] + exp["memory64_list"]:
        assert dump.is_captured(r["address"], r["size"])


def test_repr_and_html() -> None:
    dump, exp = fixture_dump("wow64_win7")
    assert "WOW64" in repr(dump) and exp["os_version"] in repr(dump)
    assert "PEB (x86)" in dump._repr_html_()
    assert repr(dump.modules[0]).startswith("Module(")
    assert repr(dump.peb).startswith("Peb(x64")


def fixture_dump(name: str) -> Any:
    path, exp = fixture(name)
    return ntheap.Dump(path), exp
