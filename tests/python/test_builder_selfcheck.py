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
def _tree(root: str) -> list[str]:
    """Relative paths of the .dmp/.json files under root (subfolders included, except fuzz/:
    the inputs the fuzz campaign found bugs with are kept there, not written by the builder)."""
    out = []
    for folder, dirs, files in os.walk(root):
        if folder == root and "fuzz" in dirs:
            dirs.remove("fuzz")
        for f in files:
            if f.endswith((".dmp", ".json")):
                out.append(os.path.relpath(os.path.join(folder, f), root))
    return sorted(out)


def test_checked_in_fixtures_match_generator(tmp_path):
    written = generate(str(tmp_path))
    names = sorted(os.path.relpath(p, tmp_path) for p in written)
    expected_names = sorted(f"{n}.{ext}" for n in list(SCENARIOS) + list(MALFORMED)
                            for ext in ("dmp", "json"))
    series = [n for n in names if n.startswith("series_with_corrupt" + os.sep)]
    assert sorted(set(names) - set(series)) == expected_names
    assert len(series) == 5
    assert _tree(FIXTURES) == names, "stale or missing files in tests/fixtures"
    mismatch = []
    for n in names:
        if not filecmp.cmp(os.path.join(tmp_path, n), os.path.join(FIXTURES, n), shallow=False):
            mismatch.append(n)
    assert not mismatch, (
        f"tests/fixtures is out of date ({mismatch}); "
        "run: python tests/dumpbuilder/gen_fixtures.py")


def test_fixture_sizes_stay_small():
    total = 0
    for rel in _tree(FIXTURES):
        size = os.path.getsize(os.path.join(FIXTURES, rel))
        assert size <= 300 * 1024, rel
        total += size
    assert total < 16 * 1024 * 1024  # every front end has its fixtures (NT, LFH, page heap, segment heap)


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


# =============================================================== NT heaps
# A second, deliberately small reading of windows-heap-layouts.md: the offsets
# below are typed again from the document (sections 1, 4, 5, 7, 8, 11) rather
# than imported from tests/dumpbuilder, and the walk follows its section 12.
HEAP_SCEN = sorted(n for n in SCENARIOS if n.startswith("heap_"))

#            Signature VirtualAllocdBlocks SegmentList UCRList FreeLists Flags EncodeFlagMask
#            Encoding FrontEndHeap FrontEndHeapType Counters TotalFreeSize
_H = ("sig", "vab", "seglist", "ucrlist", "freelists", "flags", "efm", "enc", "feh", "feht",
      "counters", "tfs")
HEAP_OFFS = {
    ("x64", "win7"): dict(zip(_H, (0xA0, 0x118, 0x128, 0xF8, 0x158, 0x70, 0x7C, 0x80, 0x178, 0x182, 0x188, 0xC8))),
    ("x64", "win8"): dict(zip(_H, (0x98, 0x110, 0x120, 0xF0, 0x150, 0x70, 0x7C, 0x80, 0x170, 0x17A, 0x210, 0xC0))),
    ("x64", "win10_1507"): dict(zip(_H, (0x98, 0x110, 0x120, 0xF0, 0x150, 0x70, 0x7C, 0x80, 0x178, 0x182, 0x218, 0xC0))),
    ("x64", "win10_1809"): dict(zip(_H, (0x98, 0x110, 0x120, 0xF0, 0x150, 0x70, 0x7C, 0x80, 0x198, 0x1A2, 0x238, 0xC0))),
    ("x86", "win7"): dict(zip(_H, (0x64, 0xA0, 0xA8, 0x90, 0xC4, 0x40, 0x4C, 0x50, 0xD4, 0xDA, 0xDC, 0x78))),
    ("x86", "win8"): dict(zip(_H, (0x60, 0x9C, 0xA4, 0x8C, 0xC0, 0x40, 0x4C, 0x50, 0xD0, 0xD6, 0x1E0, 0x74))),
    # Counters for 1507-1803 x86: not in the document; 1809's 0x1f4 minus CommitLimitData (0x10).
    ("x86", "win10_1507"): dict(zip(_H, (0x60, 0x9C, 0xA4, 0x8C, 0xC0, 0x40, 0x4C, 0x50, 0xD4, 0xDA, 0x1E4, 0x74))),
    ("x86", "win10_1809"): dict(zip(_H, (0x60, 0x9C, 0xA4, 0x8C, 0xC0, 0x40, 0x4C, 0x50, 0xE4, 0xEA, 0x1F4, 0x74))),
}
# _HEAP_SEGMENT: SegmentSignature, SegmentListEntry, Heap, BaseAddress, NumberOfPages,
# FirstEntry, LastValidEntry, NumberOfUnCommittedPages, NumberOfUnCommittedRanges, UCRSegmentList
_S = ("sig", "link", "heap", "base", "pages", "first", "last", "ucpages", "ucranges", "ucrlist")
SEG_OFFS = {"x86": dict(zip(_S, (0x08, 0x10, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x38))),
            "x64": dict(zip(_S, (0x10, 0x18, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x54, 0x60)))}
# _HEAP_UCR_DESCRIPTOR: ListEntry, SegmentEntry, Address, Size
UCR_OFFS = {"x86": (0x00, 0x08, 0x10, 0x14), "x64": (0x00, 0x10, 0x20, 0x28)}
# _HEAP_VIRTUAL_ALLOC_ENTRY: CommitSize, ReserveSize, BusyBlock, user data; +ust pointer, +ust user
VAE_OFFS = {"x86": (0x10, 0x14, 0x18, 0x20, 0x20, 0x30), "x64": (0x20, 0x28, 0x30, 0x40, 0x40, 0x60)}
# +ust block header: trace pointer, u16 extra, user data
UST_OFFS = {"x86": (0x08, 0x14, 0x18), "x64": (0x10, 0x2C, 0x30)}
# _RTL_STACK_TRACE_ENTRY: Index, Depth, BackTrace
STE_OFFS = {"x86": (0x08, 0x0A, 0x0C), "x64": (0x0C, 0x0E, 0x10)}


class MiniHeap:
    """Reads one NT heap out of a Parsed dump."""

    def __init__(self, p: Parsed, address: int, arch: str, epoch: str, ust: bool):
        self.p, self.a, self.arch, self.ust = p, address, arch, ust
        self.ptr = 4 if arch == "x86" else 8
        self.g = 8 if arch == "x86" else 16
        self.h = HEAP_OFFS[(arch, epoch)]
        self.s = SEG_OFFS[arch]
        key_at = address + self.h["enc"] + (0 if arch == "x86" else 8)
        self.key = int.from_bytes(p.read(key_at, 8), "little")

    def P(self, address: int) -> int | None:
        return self.p.ptr(address, self.ptr)

    def entry(self, at: int) -> dict | None:
        """Decoded Size..UnusedBytes group of the _HEAP_ENTRY at ``at``, None if unreadable."""
        raw = self.p.read(at + (0 if self.arch == "x86" else 8), 8)
        if raw is None:
            return None
        v = int.from_bytes(raw, "little") ^ self.key
        b = v.to_bytes(8, "little")
        size, flags, tag, prev, segoff, unused = struct.unpack("<HBBHBB", b)
        return dict(size=size, flags=flags, prev=prev, unused=unused,
                    ok=tag == b[0] ^ b[1] ^ b[2])

    def links(self, head: int, limit: int = 100000) -> tuple[list[int], str]:
        """Flink chain from ``head``: (nodes, how it ended: 'head' | 'loop' | 'unreadable')."""
        seen, out = {head}, []
        cur = self.P(head)
        while len(out) < limit:
            if cur is None:
                return out, "unreadable"
            if cur == head:
                return out, "head"
            if cur in seen:
                return out, "loop"
            nxt = self.P(cur)
            if nxt is None:               # a link to memory the dump does not hold
                return out, "unreadable"
            seen.add(cur)
            out.append(cur)
            cur = nxt
        raise AssertionError("list too long")

    def check_blinks(self, head: int) -> None:
        nodes, end = self.links(head)
        assert end == "head"
        chain = [head] + nodes + [head]
        for prev, node in zip(chain, chain[1:]):
            assert self.P(node + self.ptr) == prev, hex(node)

    def segments(self) -> list[int]:
        nodes, _ = self.links(self.a + self.h["seglist"])
        return [n - self.s["link"] for n in nodes]

    def ucrs(self, seg: int) -> dict[int, int]:
        lst, seg_entry, addr, size = UCR_OFFS[self.arch]
        nodes, end = self.links(seg + self.s["ucrlist"])
        assert end == "head"
        return {self.P(n - seg_entry + addr): self.P(n - seg_entry + size) for n in nodes}

    def walk(self, seg: int) -> list[dict]:
        """doc 12.3: from the segment base (header included) to LastValidEntry, jumping
        over uncommitted ranges; stop at an unreadable or bad entry."""
        ucr = self.ucrs(seg)
        last = self.P(seg + self.s["last"])
        at, out = seg, []
        while at < last:
            if at in ucr:
                at += ucr[at]
                continue
            e = self.entry(at)
            if e is None or not e["ok"] or e["size"] == 0:
                break
            e["address"] = at
            out.append(e)
            at += e["size"] * self.g
        return out

    def user(self, e: dict) -> tuple[int, int]:
        if self.ust:
            ptr_off, extra_off, user_off = UST_OFFS[self.arch]
            extra = self.p.ptr(e["address"] + extra_off, 2)
            return e["address"] + user_off, e["size"] * self.g - extra
        return e["address"] + self.g, e["size"] * self.g - e["unused"]


def _nt_heaps(meta: dict) -> list[dict]:
    return [h for h in meta["heaps"] + meta.get("heaps32", []) if h["type"] == "nt"]


def _mini(p: Parsed, meta: dict, h: dict) -> MiniHeap:
    flag = meta["peb32"]["nt_global_flag"] if h in meta.get("heaps32", []) else meta["peb"]["nt_global_flag"]
    assert bool(flag & 0x1000) == h["ust"]
    return MiniHeap(p, h["address"], h["arch"], h["epoch"], h["ust"])


def test_heap_scenarios_exist():
    want = {f"heap_{e}_{a}" for e in ("win7", "win8", "win10_1507", "win10_1809") for a in ("x86", "x64")}
    want |= {"heap_wow64_win7", "heap_ust_win7_x64", "heap_ust_win10_x86", "heap_bad_checksum",
             "heap_cyclic_segment_list", "heap_cyclic_virtual_list", "heap_pointer_outside_dump",
             "heap_page_missing", "heap_not_nt", "heap_segment_heap"}
    assert want <= set(HEAP_SCEN)


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_header_fields(name):
    p, meta = load(name)
    peb_heaps = meta["peb"]["heaps"]
    assert [h["address"] for h in meta["heaps"]] == peb_heaps
    if "heaps32" in meta:
        assert [h["address"] for h in meta["heaps32"]] == meta["peb32"]["heaps"]
    for h in meta["heaps"] + meta.get("heaps32", []):
        sig_at = 0x08 if h["arch"] == "x86" else 0x10
        sig = p.u32(h["address"] + sig_at)
        if h["type"] == "segment":
            assert sig == 0xDDEEDDEE
            continue
        if h["type"] == "unknown":
            assert sig not in (0xFFEEFFEE, 0xDDEEDDEE) and sig == h["segment_signature"]
            continue
        m = _mini(p, meta, h)
        o = m.h
        assert sig == 0xFFEEFFEE
        assert p.u32(h["address"] + o["sig"]) == 0xEEFFEEFF
        assert m.P(h["address"] + m.s["heap"]) == h["address"]          # Heap self-pointer
        assert p.u32(h["address"] + o["flags"]) == h["flags"]
        assert p.u32(h["address"] + o["flags"] + 4) == h["force_flags"]
        assert p.u32(h["address"] + o["efm"]) == 0x100000
        if h["arch"] == "x64":
            assert p.read(h["address"] + o["enc"], 8) == bytes(8)
        assert m.key == h["encoding"] != 0
        assert m.P(h["address"] + o["feh"]) == 0
        assert p.read(h["address"] + o["feht"], 1) == b"\x00"
        assert m.P(h["address"] + o["tfs"]) == h["total_free_size"]
        assert h["total_free_size"] * m.g == h["free"]["bytes"]
        c = h["counters"]
        w = 4 if h["arch"] == "x86" else 8
        base = h["address"] + o["counters"]
        assert p.ptr(base, w) == c["total_memory_reserved"] == h["totals"]["reserved"]
        assert p.ptr(base + w, w) == c["total_memory_committed"] == h["totals"]["committed"]
        assert p.ptr(base + 3 * w, w) == c["total_size_in_virtual_blocks"] == h["totals"]["virtual_bytes"]
        assert p.u32(base + 4 * w) == c["total_segments"] == len(h["segments"])
        assert p.u32(base + 4 * w + 4) == c["total_ucrs"] == h["ucr_count"]


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_segments_and_ucrs(name):
    p, meta = load(name)
    for h in _nt_heaps(meta):
        m = _mini(p, meta, h)
        corrupt_kinds = {c["kind"] for c in h["corruption"]}
        segs = m.segments()
        if "list_loop" in corrupt_kinds and any(c.get("list") == "SegmentList" for c in h["corruption"]):
            nodes, end = m.links(h["address"] + m.h["seglist"])
            assert end == "loop"
        else:
            m.check_blinks(h["address"] + m.h["seglist"])
        assert segs == [s["address"] for s in h["segments"]] == h["walk"]["segments"]
        assert segs[0] == h["address"]
        m.check_blinks(h["address"] + m.h["ucrlist"])
        all_desc = []
        for s in h["segments"]:
            a = s["address"]
            assert p.u32(a + m.s["sig"]) == 0xFFEEFFEE
            assert m.P(a + m.s["heap"]) == h["address"]
            assert m.P(a + m.s["base"]) == a == s["base"]
            assert p.u32(a + m.s["pages"]) == s["number_of_pages"] == s["reserved"] // 0x1000
            assert m.P(a + m.s["first"]) == s["first_entry"]
            assert m.P(a + m.s["last"]) == s["last_valid_entry"] == a + s["reserved"]
            assert p.u32(a + m.s["ucpages"]) == s["uncommitted_pages"]
            assert p.u32(a + m.s["ucranges"]) == len(s["uncommitted_ranges"])
            m.check_blinks(a + m.s["ucrlist"])
            ucr = m.ucrs(a)
            assert ucr == {u["address"]: u["size"] for u in s["uncommitted_ranges"]}
            all_desc += [u["descriptor"] for u in s["uncommitted_ranges"]]
            # Coverage: committed ranges + uncommitted ranges tile the reservation, and the
            # entries tile every committed range.
            spans = sorted([(r["address"], r["size"]) for r in s["committed_ranges"]] +
                           [(u["address"], u["size"]) for u in s["uncommitted_ranges"]])
            pos = a
            for lo, size in spans:
                assert lo == pos
                pos += size
            assert pos == a + s["reserved"]
            assert s["entry_bytes"] + s["ucr_bytes"] == s["reserved"]
            blocks = [b for b in h["blocks"] if b["segment"] == a]
            for r in s["committed_ranges"]:
                inside = [b for b in blocks if r["address"] <= b["address"] < r["address"] + r["size"]]
                pos = r["address"]
                for b in inside:
                    assert b["address"] == pos
                    pos += b["size"]
                assert pos == r["address"] + r["size"]
                # The run ends with a free LAST_ENTRY block; UnusedBytes 3 if a UCR follows.
                lastb = inside[-1]
                assert not lastb["busy"] and lastb["flags"] & 0x10
                follows_ucr = pos < a + s["reserved"]
                assert lastb["unused_bytes"] == (3 if follows_ucr else 0)
        # UCRList holds the same descriptors (ListEntry at +0).
        nodes, _ = m.links(h["address"] + m.h["ucrlist"])
        assert nodes == all_desc
        holder = [b for b in h["blocks"] if b["kind"] == "internal"]
        if all_desc:
            assert len(holder) == 1
            hb = holder[0]
            assert all(hb["user_address"] <= d < hb["address"] + hb["size"] for d in all_desc)


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_entries_decode(name):
    p, meta = load(name)
    for h in _nt_heaps(meta):
        m = _mini(p, meta, h)
        expected = {b["address"]: b for b in h["blocks"]}
        walked = []
        for seg in h["walk"]["segments"]:
            entries = m.walk(seg)
            walked += [e["address"] for e in entries]
            prev_end, prev_size = None, 0
            for e in entries:
                want = expected[e["address"]]
                assert want["checksum_ok"]
                assert e["size"] * m.g == want["size"] and e["size"] == want["size_field"]
                assert (e["flags"], e["unused"], e["prev"]) == (
                    want["flags"], want["unused_bytes"], want["previous_size"])
                assert bool(e["flags"] & 1) == want["busy"]
                # PreviousSize chain (doc 12.2, 14); 0 after an uncommitted range.
                assert e["prev"] == (prev_size if prev_end == e["address"] else 0)
                prev_end, prev_size = e["address"] + e["size"] * m.g, e["size"]
                if want["kind"] == "segment_header":
                    assert e["unused"] == 1 and e["address"] == seg
                elif want["busy"]:
                    assert m.user(e) == (want["user_address"], want["user_size"])
                    if m.ust:
                        assert e["unused"] == want["ust_extra"]
                else:
                    assert e["flags"] & ~0x10 == 0
        assert walked == h["walk"]["blocks"]
        bad = [c for c in h["corruption"] if c["kind"] == "bad_checksum"]
        for c in bad:
            e = m.entry(c["address"])
            assert e is not None and not e["ok"] and not expected[c["address"]]["checksum_ok"]
        if not h["corruption"]:
            segment_blocks = [b["address"] for b in h["blocks"] if b["kind"] != "virtual"]
            assert walked == segment_blocks
            busy = [b for b in h["blocks"] if b["kind"] == "backend" and b["busy"]]
            assert len(busy) == h["busy"]["count"] == h["walk"]["busy_count"]
            assert sum(b["user_size"] for b in busy) == h["busy"]["user_bytes"]
            free = [b for b in h["blocks"] if not b["busy"]]
            assert len(free) == h["free"]["count"]


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_free_list(name):
    p, meta = load(name)
    for h in _nt_heaps(meta):
        m = _mini(p, meta, h)
        if any(c["kind"] == "not_captured" for c in h["corruption"]):
            continue
        head = h["address"] + m.h["freelists"]
        m.check_blinks(head)
        nodes, _ = m.links(head)
        fl = 8 if h["arch"] == "x86" else 0x10
        assert [n - fl for n in nodes] == h["free_list"]
        assert sorted(h["free_list"]) == sorted(b["address"] for b in h["blocks"] if not b["busy"])


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_virtual_blocks(name):
    p, meta = load(name)
    for h in _nt_heaps(meta):
        m = _mini(p, meta, h)
        commit_off, reserve_off, busy_off, user_off, ust_ptr, ust_user = VAE_OFFS[h["arch"]]
        head = h["address"] + m.h["vab"]
        nodes, end = m.links(head)
        loops = [c for c in h["corruption"] if c.get("list") == "VirtualAllocdBlocks"]
        if not loops:
            assert end == "head"
            m.check_blinks(head)
        else:
            assert end == {"list_loop": "loop", "pointer_outside_dump": "unreadable"}[loops[0]["kind"]]
            if loops[0]["kind"] == "pointer_outside_dump":
                assert p.read(loops[0]["target"], 1) is None
        assert nodes == h["walk"]["virtual_blocks"]
        assert [v["address"] for v in h["virtual_blocks"]][:len(nodes)] == nodes
        for v in h["virtual_blocks"]:
            a = v["address"]
            assert a % 0x1000 == 0
            assert m.P(a + commit_off) == v["commit_size"]
            assert m.P(a + reserve_off) == v["reserve_size"] >= v["commit_size"]
            e = m.entry(a + busy_off)
            assert e is not None and e["ok"]
            assert e["flags"] == v["flags"] == 0x09
            assert e["size"] == v["busy_block_size"]
            assert v["user_size"] == v["commit_size"] - e["size"]
            assert v["user_size_mpf_convention"] == v["commit_size"] - e["size"] - user_off
            assert v["header_address"] == a + busy_off
            if h["ust"]:
                assert v["user_address"] == a + ust_user
                assert m.P(a + ust_ptr) == v["stack_trace_entry"]
                assert v["commit_size"] == -(-(v["user_size"] + ust_user) // 0x1000) * 0x1000
            else:
                assert v["user_address"] == a + user_off
                assert v["commit_size"] == -(-(v["user_size"] + user_off) // 0x1000) * 0x1000
            regions = {r["base"]: r for r in meta["regions"]}
            r = regions[a]
            assert (r["state"], r["size"], r["captured"]) == (0x1000, v["commit_size"], v["captured_bytes"])
            if v["reserve_size"] > v["commit_size"]:
                tail = regions[a + v["commit_size"]]
                assert tail["state"] == 0x2000 and tail["allocation_base"] == a


@pytest.mark.parametrize("name", [n for n in HEAP_SCEN if "ust" in n])
def test_heap_ust_traces(name):
    p, meta = load(name)
    assert meta["peb"]["nt_global_flag"] & 0x1000
    db = meta["stack_trace_db"]
    idx_off, depth_off, bt_off = STE_OFFS[db["arch"]]
    with_stack = 0
    for h in _nt_heaps(meta):
        m = _mini(p, meta, h)
        ptr_off = UST_OFFS[h["arch"]][0]
        for b in h["blocks"]:
            if b["kind"] == "virtual":
                at = b["vae_address"] + VAE_OFFS[h["arch"]][4]
            elif b["busy"] and b["kind"] != "segment_header":
                at = b["address"] + ptr_off
            else:
                continue
            assert m.P(at) == b["stack_trace_entry"]
            if not b["stack_trace_entry"]:
                assert b["frames"] == []
                continue
            with_stack += 1
            t = b["stack_trace_entry"]
            n = p.ptr(t + idx_off, 2)
            assert n == p.ptr(t + depth_off, 2) == len(b["frames"]) > 0
            assert [m.P(t + bt_off + i * m.ptr) for i in range(n)] == b["frames"]
    assert with_stack >= 10
    big = [v for h in meta["heaps"] for v in h["virtual_blocks"] if v["user_size"] == 0x1000040]
    if name == "heap_ust_win7_x64":
        assert len(big) == 1
        v = big[0]
        assert (v["commit_size"], v["busy_block_size"], v["user_address"] - v["address"]) == (
            0x1001000, 0xFC0, 0x60)
        assert v["user_size_mpf_convention"] == 0x1000000


@pytest.mark.parametrize("name", HEAP_SCEN)
def test_heap_regions_and_capture(name):
    p, meta = load(name)
    regions = {r["base"]: r for r in meta["regions"]}
    dropped = {c["address"] for c in meta["corruption"] if c["kind"] == "not_captured"}
    for h in _nt_heaps(meta):
        for s in h["segments"]:
            for r in s["committed_ranges"]:
                g = regions[r["address"]]
                assert (g["state"], g["size"], g["allocation_base"]) == (0x1000, r["size"], s["address"])
                missing = sum(0x1000 for d in dropped if r["address"] <= d < r["address"] + r["size"])
                assert g["captured"] == r["size"] - missing
            for u in s["uncommitted_ranges"]:
                g = regions[u["address"]]
                assert (g["state"], g["size"], g["captured"]) == (0x2000, u["size"], 0)
    for d in dropped:
        assert p.read(d, 1) is None and p.read(d - 1, 1) is not None


def test_heap_corruption_records():
    expect = {"heap_bad_checksum": "bad_checksum", "heap_cyclic_segment_list": "list_loop",
              "heap_cyclic_virtual_list": "list_loop",
              "heap_pointer_outside_dump": "pointer_outside_dump",
              "heap_page_missing": "not_captured"}
    for name, kind in expect.items():
        _, meta = load(name)
        assert [c["kind"] for c in meta["corruption"]] == [kind]
        assert meta["os_build"] >= 17763 and meta["arch"] == "x64"
        assert all(h["epoch"] == "win10_1809" for h in _nt_heaps(meta))
    for name in HEAP_SCEN:
        if name not in expect:
            assert load(name)[1]["corruption"] == []
    _, meta = load("heap_not_nt")
    assert [h["type"] for h in meta["heaps"]] == ["nt", "nt", "unknown"]
    _, meta = load("heap_segment_heap")
    assert [h["type"] for h in meta["heaps"]] == ["nt", "segment", "nt"]


def test_heap_scenarios_cover_the_brief():
    for name in HEAP_SCEN:
        if not name.startswith(("heap_win", "heap_ust")):
            continue
        _, meta = load(name)
        heaps = _nt_heaps(meta)
        assert len(heaps) == 2
        assert any(len(h["segments"]) == 2 for h in heaps)
        assert sum(h["ucr_count"] for h in heaps) >= 1
        assert sum(len(h["virtual_blocks"]) for h in heaps) >= 1
        users = [b for h in heaps for b in h["blocks"] if b["kind"] == "backend" and b["busy"]]
        assert any(b["user_size"] == 0 for b in users)
        assert any(b["user_size"] % 2 for b in users)
        assert any(not b["busy"] and b["kind"] == "backend" and not b["flags"] for h in heaps
                   for b in h["blocks"])
    _, meta = load("heap_wow64_win7")
    assert [h["arch"] for h in meta["heaps"]] == ["x64"]
    assert [h["arch"] for h in meta["heaps32"]] == ["x86", "x86"]
    assert {h["epoch"] for h in meta["heaps"] + meta["heaps32"]} == {"win7"}


# --------------------------------------------------------------- bulk / big dumps
def test_bulk_heap_small(tmp_path):
    from dumpbuilder.bigdump import build_big_heap_dump

    b, meta = build_big_heap_dump(blocks=30000, arch="x64", segments=2)
    path = tmp_path / "bulk.dmp"
    b.write(path)
    p = Parsed(path.read_bytes())
    h = meta["heaps"][0]
    m = MiniHeap(p, h["address"], "x64", h["epoch"], h["ust"])
    busy = free = entries = busy_bytes = 0
    for seg in m.segments():
        for e in m.walk(seg):
            entries += 1
            if e["flags"] & 1:
                if e["unused"] != 1 and e["address"] != h["ucr_holder"]:
                    busy += 1
                    busy_bytes += m.user(e)[1]
            else:
                free += 1
    sm = h["summary"]
    assert entries == sm["segment_entries"]
    assert (busy, free, busy_bytes) == (sm["busy_count"], sm["free_count"], sm["busy_user_bytes"])
    assert sm["busy_count"] + sm["free_count"] >= 30000
    nodes, end = m.links(h["address"] + m.h["freelists"])
    assert end == "head" and len(nodes) == sm["free_count"]


def test_multi_range_dump_small(tmp_path):
    from dumpbuilder.bigdump import build_multi_range_dump

    b, meta = build_multi_range_dump(total_bytes=16 * 0x10000, ranges=16)
    path = tmp_path / "multi.dmp"
    b.write(path)
    p = Parsed(path.read_bytes())
    assert len(p.memory64) == meta["fill_ranges"] + meta["other_ranges"]
    for r in meta["fill"]:
        assert p.read(r["address"], 4) == bytes([r["byte"]]) * 4
        assert p.read(r["address"] + r["size"] - 4, 4) == bytes([r["byte"]]) * 4


def test_samples_are_current(tmp_path):
    from dumpbuilder.make_samples import SAMPLES, SAMPLES_DIR, write_samples

    written = write_samples(str(tmp_path))
    for path in written:
        name = os.path.basename(path)
        with open(path, "rb") as f1, open(os.path.join(SAMPLES_DIR, name), "rb") as f2:
            assert f1.read() == f2.read(), f"samples/{name} is out of date; run make_samples.py"
    on_disk = sorted(f for f in os.listdir(SAMPLES_DIR) if f.endswith((".dmp", ".json")))
    assert on_disk == sorted(os.path.basename(p) for p in written), "stale files in samples/"
    assert os.path.getsize(os.path.join(SAMPLES_DIR, "sample-x64-win10.dmp")) <= 1024 * 1024
    assert sum(os.path.getsize(os.path.join(SAMPLES_DIR, f)) for f in on_disk) <= 8 * 1024 * 1024
    assert "sample-x64-win10" in SAMPLES


# =============================================================== PE images and stacks
# A second, independent reading of the PE images in the dumps (Microsoft PE/COFF
# specification: MS-DOS stub e_lfanew at 0x3c, "PE\0\0", COFF file header, optional
# header, section table, export directory, debug directory), and a strict symbolizer
# that works from the dump's bytes only.  It must agree with the texts the builder
# computed from its own inputs.
STACK_SCEN = sorted(n for n in SCENARIOS if n.startswith("stacks_"))
SAMPLES_DIR = os.path.join(os.path.dirname(TESTS), "samples")
PDB_DIR = os.path.join(TESTS, "pdb")


class MiniPE:
    """Headers, sections, exports and CodeView of one mapped image, read from a dump."""

    def __init__(self, p: Parsed, base: int, size: int):
        self.p, self.base, self.size = p, base, size
        self.header = p.read(base, 0x400)
        self.exports: list[tuple[str, int, bool]] = []
        self.exports_state = "not_captured"
        self.codeview = None
        if self.header is None:
            return
        h = self.header
        assert h[:2] == b"MZ"
        (pe,) = struct.unpack_from("<I", h, 0x3C)
        assert h[pe:pe + 4] == b"PE\x00\x00"
        self.machine, self.nsec, _ts, _sp, _ns, opt_size, self.chars = struct.unpack_from(
            "<HHIIIHH", h, pe + 4)
        o = pe + 24
        (self.magic,) = struct.unpack_from("<H", h, o)
        plus = self.magic == 0x20B
        self.image_base = struct.unpack_from("<Q" if plus else "<I", h, o + (24 if plus else 28))[0]
        (self.size_of_image,) = struct.unpack_from("<I", h, o + 56)
        dirs = o + (112 if plus else 96)
        self.export_dir = struct.unpack_from("<II", h, dirs)
        self.debug_dir = struct.unpack_from("<II", h, dirs + 6 * 8)
        self.sections = []
        for i in range(self.nsec):
            at = o + opt_size + 40 * i
            name = h[at:at + 8].rstrip(b"\x00").decode()
            vsize, rva = struct.unpack_from("<II", h, at + 8)
            (ch,) = struct.unpack_from("<I", h, at + 36)
            self.sections.append((name, rva, vsize, ch))
        self._read_exports()
        self._read_codeview()

    def rd(self, rva: int, n: int) -> bytes | None:
        if rva < 0 or rva + n > self.size:
            return None
        return self.p.read(self.base + rva, n)

    def cstr(self, rva: int) -> str | None:
        out = b""
        while len(out) < 256:
            c = self.rd(rva + len(out), 1)
            if c is None:
                return None
            if c == b"\x00":
                return out.decode("latin-1")
            out += c
        return None

    def _read_exports(self) -> None:
        rva, size = self.export_dir
        if not rva:
            self.exports_state = "none"
            return
        d = self.rd(rva, 40)
        if d is None:
            self.exports_state = "not_captured"
            return
        (_f, _t, _a, _b, _name, base, nfunc, nnames, eat, npt, ot) = struct.unpack("<IIHHIIIIIII", d)
        self.ordinal_base, self.nfunc, self.nnames = base, nfunc, nnames
        if eat + 4 * nfunc > self.size or npt + 4 * nnames > self.size or ot + 2 * nnames > self.size:
            self.exports_state = "corrupt"
            return
        funcs = struct.unpack(f"<{nfunc}I", self.rd(eat, 4 * nfunc))
        names = struct.unpack(f"<{nnames}I", self.rd(npt, 4 * nnames))
        ords = struct.unpack(f"<{nnames}H", self.rd(ot, 2 * nnames))
        out = []
        for n_rva, idx in zip(names, ords):
            name = self.cstr(n_rva) if n_rva < self.size else None
            if name is None or idx >= nfunc:
                self.exports_state = "corrupt"
                return
            f = funcs[idx]
            out.append((name, f, rva <= f < rva + size))
        assert [n for n, _, _ in out] == sorted(n for n, _, _ in out), "names must be sorted"
        self.exports = out
        self.exports_state = "ok"

    def _read_codeview(self) -> None:
        rva, size = self.debug_dir
        for i in range(size // 28):
            e = self.rd(rva + 28 * i, 28)
            if e is None:
                return
            (_c, _t, _a, _b, typ, n, addr, _ptr) = struct.unpack("<IIHHIIII", e)
            if typ == 2:
                rec = self.rd(addr, n)
                if rec is not None and rec[:4] == b"RSDS":
                    self.codeview = (str(uuid.UUID(bytes_le=rec[4:20])).upper(),
                                     struct.unpack_from("<I", rec, 20)[0],
                                     rec[24:rec.index(b"\x00", 24)].decode())

    def usable(self) -> list[tuple[str, int]]:
        if self.exports_state != "ok":
            return []
        return sorted(((n, r) for n, r, fwd in self.exports if not fwd and 0 < r < self.size),
                      key=lambda e: e[1])


def module_list(p: Parsed) -> list[dict]:
    rva, _ = p.streams[4]
    (count,) = struct.unpack_from("<I", p.data, rva)
    out = []
    for i in range(count):
        at = rva + 4 + 108 * i
        base, size, _ck, _ts, name_rva = struct.unpack_from("<QIIII", p.data, at)
        cv_size, cv_rva = struct.unpack_from("<II", p.data, at + 76)
        path = p.string(name_rva)
        cv = None
        if cv_size:
            rec = p.data[cv_rva:cv_rva + cv_size]
            cv = (str(uuid.UUID(bytes_le=rec[4:20])).upper(), struct.unpack_from("<I", rec, 20)[0],
                  rec[24:-1].decode())
        name = path.rsplit("\\", 1)[-1]
        out.append({"base": base, "size": size, "path": path, "name": name,
                    "stem": name.rsplit(".", 1)[0], "cv": cv})
    return out


def tiny_facts() -> dict:
    with open(os.path.join(PDB_DIR, "tiny.json"), encoding="utf-8") as f:
        return json.load(f)


class StrictSymbolizer:
    """Frame texts from the dump's bytes (and optionally tiny.json as a PDB)."""

    def __init__(self, p: Parsed, pdb: dict | None = None):
        self.mods = module_list(p)
        for m in self.mods:
            m["pe"] = MiniPE(p, m["base"], m["size"])
        self.pdb = pdb

    def _pdb_applies(self, m: dict) -> bool:
        if self.pdb is None or m["cv"] is None:
            return False
        cv = self.pdb["codeview"]
        return (m["cv"][0] == cv["guid_dashed"] and m["cv"][1] == cv["age"]
                and m["cv"][2].rsplit("\\", 1)[-1].lower() == cv["pdb_name"].lower())

    def text(self, a: int) -> str:
        m = next((m for m in self.mods if m["base"] <= a < m["base"] + m["size"]), None)
        if m is None:
            return "0x%x" % a
        rva = a - m["base"]
        if self._pdb_applies(m):
            f = next(f for f in self.pdb["functions"] if f["rva"] <= rva < f["rva"] + f["size"])
            off = rva - f["rva"]
            return m["stem"] + "!" + f["name"] + ("+0x%x" % off if off else "")
        best = None
        for name, r in m["pe"].usable():
            if r <= rva:
                best = (name, r)
        if best is None:
            return m["stem"] + ("+0x%x" % rva if rva else "")
        off = rva - best[1]
        return m["stem"] + "!" + best[0] + ("+0x%x" % off if off else "")


def test_stack_scenarios_exist():
    assert set(STACK_SCEN) == {"stacks_win7_x64", "stacks_win10_x64", "stacks_win7_x86",
                               "stacks_win10_x86", "stacks_trace_not_captured", "stacks_no_ust",
                               "stacks_bad_exports", "stacks_pdb_x64", "stacks_pdb_mismatch_x64"}
    for name in STACK_SCEN:
        _, meta = load(name)
        epochs = {h["epoch"] for h in meta["heaps"]}
        assert epochs == {"win7" if meta["os_build"] == 7601 else "win10_1809"}, name


@pytest.mark.parametrize("name", STACK_SCEN)
def test_pe_images_parse_back(name):
    p, meta = load(name)
    sym = StrictSymbolizer(p)
    by_base = {m["base"]: m for m in sym.mods}
    for want in meta["modules"]:
        img = want.get("image")
        assert img is not None, f"{name}: {want['name']} has no mapped image"
        m = by_base[want["base"]]
        pe = m["pe"]
        regions = [r for r in meta["regions"] if want["base"] <= r["base"] < want["base"] + want["size"]]
        assert sum(r["size"] for r in regions) == want["size"]
        assert all(r["type"] == 0x1000000 and r["allocation_base"] == want["base"] for r in regions)
        if img["capture"] == "none":
            assert pe.header is None
            continue
        assert pe.machine == {"x86": 0x14C, "x64": 0x8664}[img["arch"]] == img["machine"]
        assert pe.magic == {"x86": 0x10B, "x64": 0x20B}[img["arch"]]
        assert pe.size_of_image == want["size"] == img["size_of_image"]
        assert bool(pe.chars & 0x2000) == want["name"].lower().endswith(".dll")
        assert pe.image_base == (img["rebased_to"] or img["preferred_base"])
        assert [(n, r, v) for n, r, v, _c in pe.sections] == [
            (s["name"], s["rva"], s["virtual_size"]) for s in img["sections"]]
        # Section protections: code execute-read, read-only data, writable data.
        for sname, srva, vsize, ch in pe.sections:
            reg = next(r for r in regions if r["base"] == want["base"] + srva)
            want_prot = 0x20 if ch & 0x20000000 else (0x04 if ch & 0x80000000 else 0x02)
            assert reg["protect"] == want_prot, (name, want["name"], sname)
        if want["pdb_guid"] is not None:
            assert pe.codeview == (want["pdb_guid"], want["pdb_age"], want["pdb_name"]) == m["cv"]
        assert tuple(pe.export_dir) == (img["export_directory"]["rva"], img["export_directory"]["size"])
        exp_state = {m2["name"]: m2 for m2 in meta["symbols"]["modules"]}[want["name"]]
        assert pe.exports_state == exp_state["exports_status"], (name, want["name"])
        if pe.exports_state == "ok":
            got = sorted((n, r if not fwd else None) for n, r, fwd in pe.exports)
            assert got == sorted((e["name"], e["rva"] if e["forwarder"] is None else None)
                                 for e in img["exports"])
            assert [(e["name"], e["rva"]) for e in exp_state["usable_exports"]] == pe.usable()
            for e in img["exports"]:
                assert pe.ordinal_base <= e["ordinal"] < pe.ordinal_base + pe.nfunc
            for n, r, fwd in pe.exports:
                if fwd:
                    target = next(e["forwarder"] for e in img["exports"] if e["name"] == n)
                    assert pe.cstr(r) == target


def test_corrupt_export_directories():
    p, meta = load("stacks_bad_exports")
    sym = StrictSymbolizer(p)
    kinds = {}
    for m in sym.mods:
        pe = m["pe"]
        want = next(x for x in meta["symbols"]["modules"] if x["base"] == m["base"])
        if want["exports_status"] != "corrupt":
            continue
        kinds[m["name"]] = want["corruption"]["kind"]
        d = pe.rd(pe.export_dir[0], 40)
        (_f, _t, _a, _b, _n, _base, nfunc, nnames, eat, npt, _ot) = struct.unpack("<IIHHIIIIIII", d)
        if want["corruption"]["kind"] == "bad_rva":
            assert eat >= pe.size
            # The neighbour's captured header is what a reader that skips the check reads.
            assert p.read(m["base"] + eat, 4) is not None
        elif want["corruption"]["kind"] == "huge_count":
            assert nfunc == nnames == 0x40000001 and (4 * nfunc) & 0xFFFFFFFF == 4
        else:
            names = struct.unpack(f"<{nnames}I", pe.rd(npt, 4 * nnames))
            assert all(r >= pe.size for r in names)
            assert p.read(m["base"] + names[0], 2) == b"MZ"
    assert sorted(kinds.values()) == ["bad_rva", "huge_count", "names_out_of_image"]
    texts = [t for r in meta["stack_blocks"] for t in r["frame_texts"]]
    for stem in ("badrva", "badnames", "hugecount"):
        assert stem + "+0x1234" in texts and not any(t.startswith(stem + "!") for t in texts)
    assert any(t.startswith("vision!") for t in texts) and any(t.startswith("codec!") for t in texts)


@pytest.mark.parametrize("name", STACK_SCEN)
def test_stack_blocks_and_texts(name):
    p, meta = load(name)
    sym = StrictSymbolizer(p)
    x86 = meta["arch"] == "x86"
    ptr = 4 if x86 else 8
    idx_off, depth_off, bt_off = STE_OFFS[meta["arch"]]
    rows = meta["stack_blocks"]
    assert [r["address"] for r in rows] == sorted(r["address"] for r in rows)
    heap_blocks = {b["address"]: b for h in meta["heaps"] for b in h["blocks"]}
    for r in rows:
        hb = heap_blocks[r["address"]]
        assert (hb["user_address"], hb["user_size"], hb["stack_trace_entry"]) == (
            r["user_address"], r["user_size"], r["stack_trace_entry"])
        if r["kind"] == "virtual":
            at = r["vae_address"] + VAE_OFFS[meta["arch"]][4]
            assert r["user_address"] == r["vae_address"] + VAE_OFFS[meta["arch"]][5]
        else:
            at = r["address"] + UST_OFFS[meta["arch"]][0]
            assert r["user_address"] == r["address"] + UST_OFFS[meta["arch"]][2]
        assert p.ptr(at, ptr) == r["stack_trace_entry"] != 0
        t = r["stack_trace_entry"]
        if not r["trace_captured"]:
            assert p.read(t, 2) is None and r["frames"] == r["frame_texts"] == [] and r["stack_id"] is None
            assert hb["frames"] == [] and hb["trace_captured"] is False
            reg = next(g for g in meta["regions"] if g["base"] <= t < g["base"] + g["size"])
            assert reg["state"] == 0x1000 and reg["captured"] == 0
            continue
        n = p.ptr(t + idx_off, 2)
        assert n == p.ptr(t + depth_off, 2) == len(r["frames"])
        assert [p.ptr(t + bt_off + i * ptr, ptr) for i in range(n)] == r["frames"] == hb["frames"]
        assert [sym.text(f) for f in r["frames"]] == r["frame_texts"], name
        assert r["jit_or_unknown"] == [t.startswith("0x") for t in r["frame_texts"]]
        for f, text in zip(r["frames"], r["frame_texts"]):
            if text.startswith("0x"):
                assert text == "0x%x" % f and text == text.lower()
    # Stacks: one per frame list; dedupe by entry and identical lists in two entries.
    by_id = {s["stack_id"]: s for s in meta["stacks"]}
    for r in rows:
        if r["stack_id"] is None:
            continue
        st = by_id[r["stack_id"]]
        assert st["frames"] == r["frames"] and st["frame_texts"] == r["frame_texts"]
        assert r["stack_trace_entry"] in st["trace_entries"]
        assert st["key"] == "\n".join(r["frame_texts"])
    assert len({tuple(s["frames"]) for s in meta["stacks"]}) == len(meta["stacks"])
    for s in meta["stacks"]:
        mine = [r for r in rows if r["stack_id"] == s["stack_id"]]
        assert s["block_count"] == len(mine) and s["user_bytes"] == sum(r["user_size"] for r in mine)
    if name == "stacks_no_ust":
        assert rows == [] and meta["peb"]["nt_global_flag"] == 0 and meta["stack_trace_db"] is None
        return
    assert meta["peb"]["nt_global_flag"] & 0x1000
    if name.startswith(("stacks_win", "stacks_pdb")):
        assert meta["shared_trace_entries"]
        texts = [t for r in rows for t in r["frame_texts"]]
        assert any("!" in t and "+0x" in t for t in texts)                 # into an export
        assert any("!" not in t and "+0x" in t and not t.startswith("0x") for t in texts)
    if name.startswith("stacks_win"):
        assert meta["stacks_with_several_entries"], "two entries with the same frames"
        sid = meta["stacks_with_several_entries"][0]
        assert len(by_id[sid]["trace_entries"]) == 2
        assert any(t.startswith("0x") for r in rows for t in r["frame_texts"])     # JIT
        assert any("!" in t and "+0x" not in t for r in rows for t in r["frame_texts"])  # off 0
        assert meta["symbols"]["clr_module"]["name"] in ("clr.dll", "coreclr.dll")
        assert any(t.startswith("KERNELBASE+0x") for r in rows for t in r["frame_texts"])
        assert meta["blocks_without_stack"]


def test_seed_case():
    p, meta = load("stacks_win7_x64")
    seed = meta["seed"]
    assert seed["frame_texts"] == ["halcon!HXmalloc+0x8b", "halcon!HXAllocRLTmp+0x265d",
                                   "halcon!HXAllocTmp+0xa80", "halcon!HCancelWait+0x7a",
                                   "halcon!CCallHProc+0x73f", "0x%x" % seed["frames"][5]]
    assert seed["jit_or_unknown"] == [False] * 5 + [True]
    assert seed["user_size"] == 0x1000040
    assert seed["busy_block"] == seed["vae_address"] + 0x30
    assert seed["user_address"] == seed["vae_address"] + 0x60
    assert p.ptr(seed["vae_address"] + 0x40, 8) == seed["stack_trace_entry"]
    assert meta["symbols"]["clr_module"]["name"] == "clr.dll"
    assert meta["os_build"] == 7601 and meta["arch"] == "x64"
    same = [r for r in meta["stack_blocks"] if r["frames"] == seed["frames"]]
    assert len({r["stack_trace_entry"] for r in same}) == 2 and len(same) >= 3


@pytest.mark.parametrize("name", ["stacks_pdb_x64", "stacks_pdb_mismatch_x64"])
def test_pdb_scenarios(name):
    p, meta = load(name)
    facts = tiny_facts()
    with open(os.path.join(PDB_DIR, "tiny.dll"), "rb") as f:
        dll = f.read()
    tinies = [m for m in module_list(p) if m["name"].lower().startswith("tiny")]
    assert tinies
    for m in tinies:
        # The real DLL's sections are mapped at their RVAs.
        for s in facts["sections"]:
            n = min(s["raw_size"], s["virtual_size"])
            got = p.read(m["base"] + s["rva"], n)
            if s["name"] == ".rdata" and m["cv"][:2] != (facts["codeview"]["guid_dashed"], facts["codeview"]["age"]):
                continue      # its RSDS record was changed on purpose
            assert got == dll[s["raw_pointer"]:s["raw_pointer"] + n], s["name"]
    strict = StrictSymbolizer(p, facts)
    plain = StrictSymbolizer(p)
    for r in meta["stack_blocks"]:
        assert [plain.text(f) for f in r["frames"]] == r["expected_without_pdb"] == r["frame_texts"]
        assert [strict.text(f) for f in r["frames"]] == r["expected_with_pdb"]
    if name == "stacks_pdb_x64":
        assert meta["pdb"]["applies_to"] == ["tiny.dll"]
        assert tinies[0]["cv"] == (facts["codeview"]["guid_dashed"], facts["codeview"]["age"],
                                   facts["codeview"]["pdb_name"])
        with_pdb = {t for r in meta["stack_blocks"] for t in r["expected_with_pdb"]}
        without = {t for r in meta["stack_blocks"] for t in r["expected_without_pdb"]}
        exported = {f["name"] for f in facts["functions"] if f["exported"]}
        hidden = {f["name"] for f in facts["functions"] if not f["exported"]}
        # (a) a frame in an exported function: same text either way;
        assert any(t.split("!")[1].split("+")[0] in exported for t in with_pdb & without if t.startswith("tiny!"))
        # (b) in non-exported functions, global and static: only the PDB names them.
        named = {t.split("!")[1].split("+")[0] for t in with_pdb if t.startswith("tiny!")}
        assert {"internal_step", "helper_scale", "tiny_dispatch"} <= named <= exported | hidden
        assert any(t.startswith("tiny+0x") for t in without)            # before the first export
        assert any(t.startswith("tiny!tiny_alloc+") and t not in with_pdb for t in without)
    else:
        assert meta["pdb"]["applies_to"] == [] and len(meta["pdb"]["ignored_for"]) == 2
        for r in meta["stack_blocks"]:
            assert r["expected_with_pdb"] == r["expected_without_pdb"]
        cvs = {m["name"]: m["cv"] for m in tinies}
        want = (facts["codeview"]["guid_dashed"], facts["codeview"]["age"])
        assert cvs["tiny.dll"][0] != want[0] and cvs["tiny.dll"][1] == want[1]
        assert cvs["tinyage.dll"][0] == want[0] and cvs["tinyage.dll"][1] == want[1] + 1


# --------------------------------------------------------------- tests/pdb
def test_tiny_json_matches_dll_and_map():
    facts = tiny_facts()
    with open(os.path.join(PDB_DIR, "tiny.dll"), "rb") as f:
        dll = f.read()
    with open(os.path.join(PDB_DIR, "tiny.pdb"), "rb") as f:
        pdb = f.read()
    import hashlib

    assert hashlib.sha256(dll).hexdigest() == facts["dll_sha256"]
    assert hashlib.sha256(pdb).hexdigest() == facts["pdb_sha256"]
    assert pdb.startswith(b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00")
    assert len(dll) < 16 * 1024 and len(pdb) < 256 * 1024
    # The GUID/age in tiny.json is the one in the DLL's RSDS record (own reading here).
    at = dll.index(b"RSDS")
    guid = uuid.UUID(bytes_le=dll[at + 4:at + 20])
    assert guid.hex.upper() == facts["codeview"]["guid"]
    assert struct.unpack_from("<I", dll, at + 20)[0] == facts["codeview"]["age"]
    assert facts["codeview"]["debug_id"] == facts["codeview"]["guid"] + "%X" % facts["codeview"]["age"]
    assert facts["codeview"]["pdb_name"] == "tiny.pdb"
    # The PDB's own header block names the same GUID and age (PDB info stream, located via
    # the MSF directory) -- checked through the raw bytes: the GUID appears in the file.
    assert guid.bytes_le in pdb
    # Every function from the map, with the exported ones matching the export table.
    with open(os.path.join(PDB_DIR, "tiny.map"), encoding="ascii") as f:
        text = f.read()
    for fn in facts["functions"]:
        assert fn["name"] in text
        assert all(0 < r < fn["size"] for r in fn["call_returns"])
    names = {f["name"]: f for f in facts["functions"]}
    for e in facts["exports"]:
        assert names[e["name"]]["exported"] and names[e["name"]]["rva"] == e["rva"]
    assert {f["storage"] for f in facts["functions"]} == {"global", "static"}
    assert any(not f["exported"] and f["storage"] == "global" for f in facts["functions"])
    first_export = min(e["rva"] for e in facts["exports"])
    assert any(f["rva"] < first_export for f in facts["functions"])     # before the first export
    assert any(not f["exported"] and f["rva"] > first_export for f in facts["functions"])


def _tool_version(cmd: list[str]) -> str | None:
    import shutil
    import subprocess

    if shutil.which(cmd[0]) is None:
        return None
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else None


def test_make_pdb_regenerates_identical_files(tmp_path):
    import shutil
    import subprocess

    facts = tiny_facts()
    tools = facts.get("tools", {})
    clang = _tool_version(["clang", "--version"])
    lld = _tool_version(["lld-link", "--version"])
    if clang is None or lld is None:
        pytest.skip("clang / lld-link not installed (apt-get install -y clang lld)")
    if (clang, lld) != (tools.get("clang"), tools.get("lld-link")):
        pytest.skip(f"tiny.* were made with {tools}; this machine has {clang} / {lld}")
    for f in ("make_pdb.sh", "pdbfacts.py", "tiny.c"):
        shutil.copy(os.path.join(PDB_DIR, f), tmp_path / f)
    subprocess.run(["bash", str(tmp_path / "make_pdb.sh")], check=True, capture_output=True)
    for f in ("tiny.dll", "tiny.pdb", "tiny.map", "tiny.json"):
        with open(os.path.join(PDB_DIR, f), "rb") as fh:
            assert (tmp_path / f).read_bytes() == fh.read(), f


# --------------------------------------------------------------- sample leak series
def _load_sample(name: str) -> tuple[Parsed, dict]:
    with open(os.path.join(SAMPLES_DIR, name + ".dmp"), "rb") as f:
        data = f.read()
    with open(os.path.join(SAMPLES_DIR, name + ".json"), encoding="utf-8") as f:
        return Parsed(data), json.load(f)


def _recount(p: Parsed, meta: dict, rule: dict) -> dict:
    """Per-stack counts/bytes of one dump from its bytes: walk the expected block lists,
    read each trace from the dump, name the frames with the strict symbolizer."""
    sym = StrictSymbolizer(p)
    stacks: dict[str, list[int]] = {}
    hist: dict[int, list[int]] = {}
    no_stack = [0, 0]
    mods: dict[str, list[int]] = {}

    def is_alloc(text: str) -> bool:
        if "!" not in text:
            return False
        mod, rest = text.split("!", 1)
        return mod.lower() in rule["allocator_modules"] and rest.split("+0x")[0] in rule["allocator_functions"]

    for h in meta["heaps"]:
        for b in h["blocks"]:
            if not b["busy"] or b["kind"] not in ("backend", "virtual"):
                continue
            size = b["user_size"]
            hist.setdefault(size, [0, 0])
            hist[size][0] += 1
            hist[size][1] += size
            t = b["stack_trace_entry"]
            if not t:
                no_stack[0] += 1
                no_stack[1] += size
                continue
            n = p.ptr(t + 0x0C, 2)
            frames = [p.ptr(t + 0x10 + 8 * i, 8) for i in range(n)]
            texts = [sym.text(f) for f in frames]
            key = "\n".join(texts)
            st = stacks.setdefault(key, [0, 0])
            st[0] += 1
            st[1] += size
            first = next((x for x in texts if not is_alloc(x)), None)
            mod = "<jit_or_unknown>" if first is None or first.startswith("0x") else first.split("!")[0].split("+0x")[0]
            m = mods.setdefault(mod, [0, 0, set()])
            m[0] += 1
            m[1] += size
            m[2].add(key)
    return {"stacks": stacks, "hist": hist, "no_stack": no_stack, "mods": mods}


def test_leaky_series_consistent():
    with open(os.path.join(SAMPLES_DIR, "leaky-series.json"), encoding="utf-8") as f:
        series = json.load(f)
    assert series["dumps"] == ["leaky-1.dmp", "leaky-2.dmp", "leaky-3.dmp", "leaky-4.dmp"]
    rule = series["conventions"]["allocator_rule"]
    metas = []
    for i, d in enumerate(series["per_dump"]):
        p, meta = _load_sample(d["file"][:-4])
        metas.append(meta)
        assert (meta["arch"], meta["os_build"], meta["pid"]) == ("x64", 19045, series["pid"])
        assert meta["peb"]["nt_global_flag"] & 0x1000
        assert p.timestamp == d["timestamp"] == metas[0]["timestamp"] + 3600 * i
        assert d["time"] == ["2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z",
                             "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"][i]
        got = _recount(p, meta, rule)
        assert {k: v for k, v in got["stacks"].items()} == {
            k: [v["count"], v["bytes"]] for k, v in d["stacks"].items()}
        assert [[h["user_size"], h["count"], h["total"]] for h in d["size_histogram"]] == [
            [s, c, t] for s, (c, t) in sorted(got["hist"].items())]
        assert [d["no_stack"]["count"], d["no_stack"]["bytes"]] == got["no_stack"] != [0, 0]
        assert {k: [v["count"], v["bytes"], v["stacks"]] for k, v in d["by_module"].items()} == {
            k: [c, b, len(s)] for k, (c, b, s) in got["mods"].items()}
        assert set(d["by_module"]) == {"halcon", "leakyapp", "imgcodec", "<jit_or_unknown>"}
        tb = sorted(got["stacks"].items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))
        assert [(t["key"], t["bytes"], t["count"]) for t in d["top_by_bytes"]] == [
            (k, b, c) for k, (c, b) in tb]
        tc = sorted(got["stacks"].items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        assert [t["key"] for t in d["top_by_count"]] == [k for k, _ in tc]
        assert d["busy"]["count"] == sum(c for c, _ in got["hist"].values())
        assert d["free"]["count"] > 0
        # Only the first page of each big virtual block is in the dump.
        for h in meta["heaps"]:
            for v in h["virtual_blocks"]:
                assert 16 << 20 <= v["user_size"] - 0x40 <= 88 << 20 and v["captured_bytes"] == 0x1000
        if i:
            assert [m["base"] for m in meta["modules"]] == [m["base"] for m in metas[0]["modules"]]
            assert meta["process_create_time"] == metas[0]["process_create_time"]
    first, last = series["per_dump"][0], series["per_dump"][-1]
    keys = set(first["stacks"]) | set(last["stacks"])
    diff = series["diff_first_last"]["stacks"]
    assert set(diff) == keys
    for k in keys:
        a = first["stacks"].get(k, {"bytes": 0, "count": 0})
        z = last["stacks"].get(k, {"bytes": 0, "count": 0})
        assert diff[k] == {"bytes_before": a["bytes"], "bytes_after": z["bytes"],
                           "bytes_delta": z["bytes"] - a["bytes"], "count_before": a["count"],
                           "count_after": z["count"], "count_delta": z["count"] - a["count"]}
    leaking = series["leaking_stacks"]
    assert len(leaking) == 2
    a_key = next(k for k in leaking if k.startswith("halcon!HXmalloc+0x8b\n"))
    b_key = next(k for k in leaking if "leakyapp!CacheInsert+0x4a\nleakyapp!Session::Load+0x120" in k)
    assert b_key.split("\n")[:4] == ["ntdll!RtlpAllocateHeapInternal+0xd2c", "ntdll!RtlAllocateHeap+0x53",
                                     "ucrtbase!_malloc_base+0x1a", "ucrtbase!malloc+0x1e"]
    g = series["growth_per_hour"]
    assert g[a_key]["counts"] == [2, 4, 6, 8] and g[a_key]["count_per_hour"] == 2
    assert g[b_key]["counts"] == [100, 200, 300, 400]
    assert g[b_key]["bytes_per_hour"] == 100 * 0x120
    for k in leaking:
        assert g[k]["bytes_per_hour"] == (g[k]["bytes"][-1] - g[k]["bytes"][0]) / 3
    flat = keys - set(leaking)
    assert len(flat) == 3 and all(diff[k]["bytes_delta"] == 0 for k in flat)


def test_series_with_corrupt_fixture():
    folder = os.path.join(FIXTURES, "series_with_corrupt")
    with open(os.path.join(folder, "series_with_corrupt.json"), encoding="utf-8") as f:
        meta = json.load(f)
    assert sorted(f for f in os.listdir(folder) if f.endswith(".dmp")) == meta["files"]
    assert len(meta["good"]) == 3 and len(meta["corrupt"]) == 1
    stamps = []
    for name in meta["good"]:
        with open(os.path.join(folder, name), "rb") as f:
            p = Parsed(f.read())
        assert os.path.getsize(os.path.join(folder, name)) == meta["good_file_sizes"][name]
        stamps.append(p.timestamp)
        mods = module_list(p)
        assert any(m["name"] == "halcon.dll" for m in mods)
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [3600, 3600]
    assert [d["timestamp"] for d in meta["series"]["per_dump"]] == stamps
    c = meta["corrupt"][0]
    with open(os.path.join(folder, c["file"]), "rb") as f:
        cut = f.read()
    assert len(cut) == c["size"] < c["original_size"]
    assert cut[:4] == b"MDMP"
    (n, dir_rva) = struct.unpack_from("<II", cut, 8)
    assert dir_rva + 12 * n <= len(cut)
    assert c["cut_stream_rva"] < len(cut) < c["cut_stream_rva"] + c["cut_stream_size"]
    assert struct.unpack_from("<I", cut, 0x14)[0] == c["timestamp"] == stamps[-1] + 3600


# --------------------------------------------------------------- builder API (PE)
def test_add_pe_module_api():
    b = DumpBuilder(arch="x86")
    m = b.add_pe_module(r"C:\x\plug.dll", 0x10000000, 0x10000,
                        exports={"Zeta": 0x1100, "alpha": 0x1200, "Beta": 0x1050},
                        forwarders={"Fwd": "OTHER.Func"}, ordinal_base=3, eat_gaps=1,
                        pdb_name="plug.pdb", pdb_guid=uuid.UUID(int=7), pdb_age=9, capture="full")
    p = Parsed(b.to_bytes())
    pe = MiniPE(p, m.base, m.size)
    assert (pe.machine, pe.magic, pe.ordinal_base, pe.nfunc) == (0x14C, 0x10B, 3, 5)
    assert [n for n, _, _ in pe.exports] == ["Beta", "Fwd", "Zeta", "alpha"]     # byte order
    assert pe.usable() == [("Beta", 0x1050), ("Zeta", 0x1100), ("alpha", 0x1200)]
    assert pe.codeview == (str(uuid.UUID(int=7)).upper(), 9, "plug.pdb")
    assert p.read(m.base, m.size) is not None                                 # capture="full"
    b2 = DumpBuilder(arch="x64")
    b2.add_pe_module(r"C:\x\a.exe", 0x140000000, 0x8000)                      # no export directory
    p2 = Parsed(b2.to_bytes())
    assert MiniPE(p2, 0x140000000, 0x8000).exports_state == "none"
    with pytest.raises(ValueError):
        DumpBuilder(arch="x64").add_pe_module(r"C:\x\b.dll", 0x10000, 0x8000, exports={"X": 0x7000})
    with pytest.raises(ValueError):
        b.add_pe_module(r"C:\x\c.dll", 0x20000000, 0x8000, arch="x64")
