"""Checks of the test-dump builder itself (tests/dumpbuilder), without the
project's reader: the checked-in fixtures are what the generator writes, and
the bytes in each file say what its JSON says.  The file parsing below is a
deliberately tiny struct-based reader, independent of the builder's code."""

from __future__ import annotations

import filecmp
import json
import os
import struct
import sys
import uuid

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TESTS, "fixtures")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from dumpbuilder import DumpBuilder, MemoryNotCaptured, Process, pattern  # noqa: E402
from dumpbuilder.gen_fixtures import generate  # noqa: E402
from dumpbuilder.scenarios import SCENARIOS  # noqa: E402

MALFORMED = ("empty", "garbage", "truncated", "bad_directory")
STREAM_NAMES = {3: "ThreadListStream", 4: "ModuleListStream", 5: "MemoryListStream",
                7: "SystemInfoStream", 9: "Memory64ListStream", 15: "MiscInfoStream",
                16: "MemoryInfoListStream"}


# --------------------------------------------------------------- mini reader
class Parsed:
    def __init__(self, data: bytes):
        self.data = data
        sig, ver, n, dir_rva, _ck, ts, flags = struct.unpack_from("<IIIIIIQ", data, 0)
        self.signature, self.version, self.timestamp, self.flags = sig, ver, ts, flags
        self.streams: dict[int, tuple[int, int]] = {}
        self.order: list[int] = []
        for i in range(n):
            stype, size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
            assert stype not in self.streams
            self.streams[stype] = (rva, size)
            self.order.append(stype)
        self.ranges: list[tuple[int, int, int, str]] = []  # address, size, file offset, list
        if 5 in self.streams:
            rva, _ = self.streams[5]
            (count,) = struct.unpack_from("<I", data, rva)
            for i in range(count):
                start, size, off = struct.unpack_from("<QII", data, rva + 4 + 16 * i)
                self.ranges.append((start, size, off, "mem"))
        self.memory64_base = None
        self.memory64: list[tuple[int, int]] = []
        if 9 in self.streams:
            rva, _ = self.streams[9]
            count, base = struct.unpack_from("<QQ", data, rva)
            self.memory64_base = base
            off = base
            for i in range(count):
                start, size = struct.unpack_from("<QQ", data, rva + 16 + 16 * i)
                self.memory64.append((start, size))
                self.ranges.append((start, size, off, "mem64"))
                off += size
        self.ranges.sort()

    def read(self, address: int, size: int) -> bytes | None:
        out = b""
        pos, end = address, address + size
        while pos < end:
            hit = next((r for r in self.ranges if r[0] <= pos < r[0] + r[1]), None)
            if hit is None:
                return None
            n = min(end, hit[0] + hit[1]) - pos
            foff = hit[2] + pos - hit[0]
            out += self.data[foff:foff + n]
            pos += n
        return out

    def u32(self, address: int) -> int | None:
        b = self.read(address, 4)
        return None if b is None else struct.unpack("<I", b)[0]

    def ptr(self, address: int, size: int) -> int | None:
        b = self.read(address, size)
        return None if b is None else int.from_bytes(b, "little")

    def string(self, rva: int) -> str:
        (length,) = struct.unpack_from("<I", self.data, rva)
        return self.data[rva + 4:rva + 4 + length].decode("utf-16-le")


def load(name: str) -> tuple[Parsed, dict]:
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        meta = json.load(f)
    return Parsed(data), meta


# --------------------------------------------------------------- fixtures
def test_checked_in_fixtures_match_generator(tmp_path):
    written = generate(str(tmp_path))
    names = sorted(os.path.basename(p) for p in written)
    expected_names = sorted(f"{n}.{ext}" for n in list(SCENARIOS) + list(MALFORMED)
                            for ext in ("dmp", "json"))
    assert names == expected_names
    on_disk = sorted(f for f in os.listdir(FIXTURES) if f.endswith((".dmp", ".json")))
    assert on_disk == expected_names, "stale or missing files in tests/fixtures"
    _match, mismatch, errors = filecmp.cmpfiles(str(tmp_path), FIXTURES, names, shallow=False)
    assert not mismatch and not errors, (
        f"tests/fixtures is out of date ({mismatch + errors}); "
        "run: python tests/dumpbuilder/gen_fixtures.py")


def test_fixture_sizes_stay_small():
    total = 0
    for f in os.listdir(FIXTURES):
        size = os.path.getsize(os.path.join(FIXTURES, f))
        assert size < 200 * 1024, f
        total += size
    assert total < 2 * 1024 * 1024


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_builder_is_deterministic(name):
    b1, e1 = SCENARIOS[name]()
    b2, e2 = SCENARIOS[name]()
    assert b1.to_bytes() == b2.to_bytes()
    assert e1 == e2


# --------------------------------------------------------------- headers
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_header_and_directory(name):
    p, meta = load(name)
    assert p.data[:4] == b"MDMP"
    assert p.signature == 0x504D444D
    assert p.version & 0xFFFF == 0xA793
    assert p.timestamp == meta["timestamp"]
    assert p.order == meta["stream_types"]
    assert [STREAM_NAMES[t] for t in p.order] == meta["streams"]
    assert len(p.data) == meta["file_size"]
    for rva, size in p.streams.values():
        assert rva + size <= len(p.data)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_system_and_misc_info(name):
    p, meta = load(name)
    rva, size = p.streams[7]
    assert size == 56
    arch, _lvl, _rev, nproc, _pt, major, minor, build, platform, csd_rva = struct.unpack_from(
        "<HHHBBIIIII", p.data, rva)
    assert arch == {"x86": 0, "x64": 9}[meta["arch"]]
    assert nproc == meta["number_of_processors"]
    assert f"{major}.{minor}.{build}" == meta["os_version"]
    assert build == meta["os_build"]
    assert platform == 2
    assert p.string(csd_rva) == meta["csd_version"]
    rva, size = p.streams[15]
    size_of_info, flags, pid, create = struct.unpack_from("<IIII", p.data, rva)
    assert size_of_info == size == 44
    assert pid == meta["pid"]
    if meta["process_create_time"] is None:
        assert not flags & 2
    else:
        assert flags & 2 and create == meta["process_create_time"]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_modules(name):
    p, meta = load(name)
    rva, size = p.streams[4]
    (count,) = struct.unpack_from("<I", p.data, rva)
    assert size == 4 + 108 * count
    assert count == len(meta["modules"])
    for i, want in enumerate(meta["modules"]):
        at = rva + 4 + 108 * i
        base, msize, checksum, ts, name_rva = struct.unpack_from("<QIIII", p.data, at)
        assert (base, msize, checksum, ts) == (want["base"], want["size"], want["checksum"],
                                               want["timestamp"])
        assert p.string(name_rva) == want["path"]
        assert want["path"].endswith(want["name"])
        ffi = struct.unpack_from("<13I", p.data, at + 24)
        assert ffi[0] == 0xFEEF04BD
        version = f"{ffi[2] >> 16}.{ffi[2] & 0xFFFF}.{ffi[3] >> 16}.{ffi[3] & 0xFFFF}"
        assert version == want["version"]
        cv_size, cv_rva = struct.unpack_from("<II", p.data, at + 76)
        if want["pdb_name"] is None:
            assert (cv_size, cv_rva) == (0, 0)
            continue
        assert p.data[cv_rva:cv_rva + 4] == b"RSDS"
        guid = uuid.UUID(bytes_le=p.data[cv_rva + 4:cv_rva + 20])
        (age,) = struct.unpack_from("<I", p.data, cv_rva + 20)
        pdb = p.data[cv_rva + 24:cv_rva + cv_size - 1].decode()
        assert p.data[cv_rva + cv_size - 1] == 0
        assert (str(guid).upper(), age, pdb) == (want["pdb_guid"], want["pdb_age"], want["pdb_name"])


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_threads_and_contexts(name):
    p, meta = load(name)
    rva, size = p.streams[3]
    (count,) = struct.unpack_from("<I", p.data, rva)
    assert size == 4 + 48 * count
    assert count == len(meta["threads"])
    for i, want in enumerate(meta["threads"]):
        tid, suspend, _pc, _pr, teb, start, ssize, srva, csize, crva = struct.unpack_from(
            "<IIIIQQIIII", p.data, rva + 4 + 48 * i)
        assert (tid, teb, start, ssize, suspend) == (want["id"], want["teb"], want["stack_start"],
                                                     want["stack_size"], want["suspend_count"])
        assert p.data[srva:srva + ssize] == p.read(start, ssize)
        if meta["arch"] == "x86":
            assert csize == 0x2CC
            assert struct.unpack_from("<I", p.data, crva)[0] == 0x0001003F
        else:
            assert csize == 0x4D0
            assert struct.unpack_from("<I", p.data, crva + 0x30)[0] == 0x0010001F


# --------------------------------------------------------------- memory
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_memory_lists(name):
    p, meta = load(name)
    mem = [(a, s) for a, s, _o, lst in p.ranges if lst == "mem"]
    assert sorted(mem) == sorted((r["address"], r["size"]) for r in meta["memory_list"])
    assert p.memory64 == [(r["address"], r["size"]) for r in meta["memory64_list"]]
    if p.memory64:
        # One contiguous block at BaseRva, in descriptor order, ending the file.
        total = sum(s for _a, s in p.memory64)
        assert p.memory64_base + total == len(p.data)
        offs = [o for _a, _s, o, lst in sorted(p.ranges, key=lambda r: r[2]) if lst == "mem64"]
        assert offs[0] == p.memory64_base
    # No two captured ranges overlap.
    for (a1, s1, _, _), (a2, _s2, _, _) in zip(p.ranges, p.ranges[1:]):
        assert a1 + s1 <= a2


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_probe_reads_match_file(name):
    p, meta = load(name)
    b, _ = SCENARIOS[name]()
    assert meta["probe_reads"]
    for probe in meta["probe_reads"]:
        got = p.read(probe["address"], probe["size"])
        if "error" in probe:
            assert probe["error"] == "MemoryNotCaptured"
            assert got is None, probe
            with pytest.raises(MemoryNotCaptured):
                b.read(probe["address"], probe["size"])
        else:
            assert got is not None and got.hex() == probe["hex"], probe
            assert len(got) == probe["size"]


def test_adjacent_probes_cover_each_boundary_kind():
    _, meta = load("adjacent_ranges")
    ok = [(pr["address"], pr["address"] + pr["size"]) for pr in meta["probe_reads"] if "hex" in pr]
    lists = {r["address"]: "mem" for r in meta["memory_list"]}
    lists.update({r["address"]: "mem64" for r in meta["memory64_list"]})
    ends = {r["address"] + r["size"]: lists[r["address"]]
            for r in meta["memory_list"] + meta["memory64_list"]}
    kinds = set()
    for boundary, left in ends.items():
        right = lists.get(boundary)
        if right and any(lo < boundary < hi for lo, hi in ok):
            kinds.add((left, right))
    assert {("mem", "mem64"), ("mem64", "mem64"), ("mem64", "mem"), ("mem", "mem")} <= kinds


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_regions(name):
    p, meta = load(name)
    if "MemoryInfoListStream" not in meta["streams"]:
        assert 16 not in p.streams and meta["regions"] == []
        return
    rva, size = p.streams[16]
    hsize, esize, count = struct.unpack_from("<IIQ", p.data, rva)
    assert (hsize, esize, size) == (16, 48, 16 + 48 * count)
    assert count == len(meta["regions"])
    for i, want in enumerate(meta["regions"]):
        base, ab, ap, _a1, rsize, state, prot, typ, _a2 = struct.unpack_from(
            "<QQIIQIIII", p.data, rva + 16 + 48 * i)
        assert (base, ab, ap, rsize, state, prot, typ) == (
            want["base"], want["allocation_base"], want["allocation_protect"], want["size"],
            want["state"], want["protect"], want["type"])
        captured = sum(max(0, min(base + rsize, a + s) - max(base, a)) for a, s, _o, _l in p.ranges)
        assert captured == want["captured"]
    # Every captured byte lies in a committed region.
    regions = [(r["base"], r["size"]) for r in meta["regions"] if r["state"] == 0x1000]
    for a, s, _o, _l in p.ranges:
        covered = sum(max(0, min(a + s, rb + rs) - max(a, rb)) for rb, rs in regions)
        assert covered == s, hex(a)


# --------------------------------------------------------------- PEB / TEB
def _check_peb(p: Parsed, peb: dict, ptr: int, offs: dict[str, int]) -> None:
    at = peb["address"]
    if not peb["captured"]:
        assert p.read(at, 8) is None
        return
    assert p.ptr(at + offs["image_base"], ptr) == peb["image_base"]
    assert p.ptr(at + offs["ldr"], ptr) == peb["ldr"]
    assert p.ptr(at + offs["process_heap"], ptr) == peb["process_heap"]
    assert p.u32(at + offs["nt_global_flag"]) == peb["nt_global_flag"]
    assert p.u32(at + offs["number_of_heaps"]) == peb["number_of_heaps"] == len(peb["heaps"])
    assert p.u32(at + offs["max_heaps"]) == peb["max_heaps"]
    assert p.ptr(at + offs["process_heaps"], ptr) == peb["process_heaps"]
    major, minor = p.u32(at + offs["os_major"]), p.u32(at + offs["os_minor"])
    build = p.ptr(at + offs["os_build"], 2)
    assert f"{major}.{minor}.{build}" == peb["os_version"]
    array = p.read(peb["process_heaps"], ptr * peb["max_heaps"])
    if not peb["process_heaps_captured"]:
        assert array is None
        return
    assert array is not None
    heaps = [int.from_bytes(array[i:i + ptr], "little") for i in range(0, len(array), ptr)]
    n = peb["number_of_heaps"]
    assert heaps[:n] == peb["heaps"] and not any(heaps[n:])


# windows-heap-layouts.md section 2, retyped here rather than imported.
PEB_X86 = dict(image_base=0x08, ldr=0x0C, process_heap=0x18, nt_global_flag=0x68,
               number_of_heaps=0x88, max_heaps=0x8C, process_heaps=0x90, os_major=0xA4,
               os_minor=0xA8, os_build=0xAC)
PEB_X64 = dict(image_base=0x10, ldr=0x18, process_heap=0x30, nt_global_flag=0xBC,
               number_of_heaps=0xE8, max_heaps=0xEC, process_heaps=0xF0, os_major=0x118,
               os_minor=0x11C, os_build=0x120)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_peb_and_tebs(name):
    p, meta = load(name)
    x86 = meta["arch"] == "x86"
    ptr = 4 if x86 else 8
    _check_peb(p, meta["peb"], ptr, PEB_X86 if x86 else PEB_X64)
    assert [t["thread_id"] for t in meta["tebs"]] == [t["id"] for t in meta["threads"]]
    for teb in meta["tebs"]:
        at = teb["address"]
        assert p.ptr(at + (0x30 if x86 else 0x60), ptr) == teb["peb"] == meta["peb"]["address"]
        assert p.ptr(at, ptr) == teb["exception_list"]
        assert p.ptr(at + ptr, ptr) == teb["stack_base"]
        assert p.ptr(at + 2 * ptr, ptr) == teb["stack_limit"]
        assert p.ptr(at + 6 * ptr, ptr) == teb["self"] == at
    if meta["is_wow64"]:
        assert meta["arch"] == "x64"
        _check_peb(p, meta["peb32"], 4, PEB_X86)
        for teb, teb32 in zip(meta["tebs"], meta["teb32s"]):
            assert teb32["address"] == teb["address"] + 0x2000
            assert p.ptr(teb["address"], 8) == teb32["address"]
            assert p.u32(teb32["address"] + 0x30) == meta["peb32"]["address"]
            assert p.u32(teb32["address"] + 0x18) == teb32["address"]
            assert p.u32(teb32["address"] + 4) == teb32["stack_base"]
            assert p.u32(teb32["address"] + 8) == teb32["stack_limit"]
        names = [m["name"].lower() for m in meta["modules"]]
        for dll in ("wow64.dll", "wow64win.dll", "wow64cpu.dll"):
            assert dll in names
        assert any(m["path"].lower().endswith(r"\syswow64\ntdll.dll") for m in meta["modules"])
    else:
        assert "peb32" not in meta


# --------------------------------------------------------------- malformed
def test_malformed_files():
    with open(os.path.join(FIXTURES, "empty.dmp"), "rb") as f:
        assert f.read() == b""
    with open(os.path.join(FIXTURES, "garbage.dmp"), "rb") as f:
        garbage = f.read()
    assert len(garbage) == 4096 and garbage[:4] != b"MDMP"
    assert len(set(garbage)) > 200  # looks random, not a fill
    with open(os.path.join(FIXTURES, "x64_win10.dmp"), "rb") as f:
        full = f.read()
    with open(os.path.join(FIXTURES, "truncated.dmp"), "rb") as f:
        cut = f.read()
    with open(os.path.join(FIXTURES, "truncated.json"), encoding="utf-8") as f:
        tmeta = json.load(f)
    assert full.startswith(cut) and len(cut) == tmeta["size"] < len(full)
    assert tmeta["cut_stream_rva"] < len(cut) < tmeta["cut_stream_rva"] + tmeta["cut_stream_size"]
    assert {s["name"]: s["state"] for s in tmeta["streams"]}["ModuleListStream"] == "cut"
    with open(os.path.join(FIXTURES, "bad_directory.dmp"), "rb") as f:
        bad = f.read()
    assert bad[:4] == b"MDMP"
    (dir_rva,) = struct.unpack_from("<I", bad, 12)
    assert dir_rva > len(bad)
    assert bad[16:] == full[16:]


# --------------------------------------------------------------- builder API
def test_write_streams_fills_and_matches_to_bytes(tmp_path):
    b = DumpBuilder(arch="x64")
    b.add_memory(0x10000, pattern(0x10000, 0x1000, 0x42), list="mem")
    b.add_memory_fill(0x100000, 3 * 1024 * 1024 + 5, byte=0xCC)  # spans several chunks
    b.add_memory_fill(0x500000, 0x1000, byte=0x11)
    path = tmp_path / "fill.dmp"
    b.write(path)
    data = path.read_bytes()
    assert data == b.to_bytes()
    p = Parsed(data)
    assert p.read(0x100000 + 3 * 1024 * 1024, 5) == b"\xcc" * 5
    assert p.read(0x500000, 4) == b"\x11" * 4
    assert p.read(0x10ffc, 4) == pattern(0x10ffc, 4, 0x42)


def test_overlapping_ranges_are_rejected():
    b = DumpBuilder(arch="x86")
    b.add_memory(0x1000, b"\x01" * 0x100, list="mem")
    b.add_memory(0x10FF, b"\x02" * 0x10, list="mem64")
    with pytest.raises(ValueError):
        b.to_bytes()


def test_omit_stream_and_adjacent_ranges_read():
    b = DumpBuilder(arch="x64")
    b.add_memory(0x1000, b"A" * 16, list="mem")
    b.add_memory(0x1010, b"B" * 16, list="mem64")
    assert b.read(0x1008, 16) == b"A" * 8 + b"B" * 8
    b.omit_stream("MemoryInfoList")
    b.omit_stream("MemoryListStream")
    assert "MemoryInfoListStream" not in b.stream_names()
    with pytest.raises(MemoryNotCaptured):
        b.read(0x1008, 16)
    p = Parsed(b.to_bytes())
    assert 16 not in p.streams and 5 not in p.streams
    assert p.read(0x1010, 16) == b"B" * 16


def test_process_x86_minimal():
    b = DumpBuilder(arch="x86")
    proc = Process(b, peb=0x7FFDF000, image_base=0x400000, heaps=[0x150000], max_heaps=4,
                   process_heaps_array=0x7FFDF800)
    proc.add_thread(7, teb=0x7FFDE000, stack_start=0x12F000, stack_size=0x1000)
    proc.finish()
    p = Parsed(b.to_bytes())
    assert p.u32(0x7FFDE000 + 0x30) == 0x7FFDF000
    assert p.u32(0x7FFDF000 + 0x90) == 0x7FFDF800
    assert p.u32(0x7FFDF800) == 0x150000
