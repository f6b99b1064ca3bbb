"""Checks of the ntdll.dll stand-in (tests/pdb/ntdll_{x64,x86}/) and of the builder code that
maps it into dumps (tests/dumpbuilder/ntdll.py), without the project's reader.

Everything is read back here with small struct-based parsers of our own: the linker map,
the DLL's section table / debug directory / export directory / base relocations (Microsoft
PE/COFF specification), the PDB's MSF container and PDB info stream (LLVM's "The MSF File
Format" and "The PDB Info Stream" pages), and the minidump's ModuleList and memory lists
(MINIDUMP_* structures, minidumpapiset.h).  The PDB's symbol records are never read: the
expected RVAs come from the linker map, so a PDB reader under test cannot agree with
itself by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PDB_DIR = os.path.join(TESTS, "pdb")
FIXTURES = os.path.join(TESTS, "fixtures")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from dumpbuilder import DumpBuilder  # noqa: E402
from dumpbuilder.ntdll import (  # noqa: E402
    KEYS,
    NTDLL_SYSTEM32,
    NTDLL_SYSWOW64,
    add_ntdll_pdb_module,
    mismatched_guid,
)

ARCHES = ("x64", "x86")
PTR = {"x64": 8, "x86": 4}
MSF_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"
REGENERATED = ("ntdll_x64/ntdll.dll", "ntdll_x64/ntdll.pdb", "ntdll_x64/ntdll.map", "ntdll_x64.json",
               "ntdll_x86/ntdll.dll", "ntdll_x86/ntdll.pdb", "ntdll_x86/ntdll.map", "ntdll_x86.json")
SOURCES = ("make_ntdll_pdb.sh", "pdbfacts.py", "ntdllfacts.py", "ntdll.c", "ntdll.def")


def facts(arch: str) -> dict:
    with open(os.path.join(PDB_DIR, f"ntdll_{arch}.json"), encoding="utf-8") as f:
        return json.load(f)


def read(rel: str) -> bytes:
    with open(os.path.join(PDB_DIR, rel), "rb") as f:
        return f.read()


# --------------------------------------------------------------- linker map
_LINE = re.compile(r"^\s*([0-9a-f]{4}):([0-9a-f]{8})\s+(\S+)\s+([0-9a-f]{16})\s+\S+\s*$", re.I)


def map_symbols(text: str) -> tuple[int, dict[str, tuple[int, int, int]]]:
    """(preferred base, decorated name -> (section number, section offset, rva))."""
    base = int(re.search(r"Preferred load address is ([0-9a-fA-F]+)", text).group(1), 16)
    out = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            out[m.group(3)] = (int(m.group(1), 16), int(m.group(2), 16), int(m.group(4), 16) - base)
    return base, out


# --------------------------------------------------------------- PE file
class Pe:
    """Section table, directories, CodeView, exports and relocations of a PE file."""

    def __init__(self, data: bytes):
        self.data = data
        (pe,) = struct.unpack_from("<I", data, 0x3C)
        assert data[pe:pe + 4] == b"PE\x00\x00"
        self.machine, nsec, self.timestamp, _, _, opt_size, _ = struct.unpack_from("<HHIIIHH", data, pe + 4)
        o = pe + 24
        (magic,) = struct.unpack_from("<H", data, o)
        plus = magic == 0x20B
        self.image_base_offset = o + (24 if plus else 28)
        (self.image_base,) = struct.unpack_from("<Q" if plus else "<I", data, self.image_base_offset)
        (self.size_of_image, self.size_of_headers) = struct.unpack_from("<II", data, o + 56)
        dd = o + (112 if plus else 96)
        self.dirs = [struct.unpack_from("<II", data, dd + 8 * i) for i in range(16)]
        self.sections = []
        for i in range(nsec):
            at = o + opt_size + 40 * i
            name = data[at:at + 8].rstrip(b"\x00").decode()
            vsize, rva, raw_size, raw_ptr = struct.unpack_from("<IIII", data, at + 8)
            self.sections.append((name, rva, vsize, raw_size, raw_ptr))

    def off(self, rva: int) -> int:
        for _n, srva, vsize, raw_size, raw_ptr in self.sections:
            if srva <= rva < srva + min(vsize, raw_size):
                return raw_ptr + rva - srva
        raise KeyError(hex(rva))

    def codeview(self) -> tuple[uuid.UUID, int, str]:
        rva, size = self.dirs[6]
        for i in range(size // 28):
            (_c, _t, _a, _b, typ, n, _addr, ptr) = struct.unpack_from("<IIHHIIII", self.data, self.off(rva) + 28 * i)
            if typ == 2:
                rec = self.data[ptr:ptr + n]
                assert rec[:4] == b"RSDS"
                return uuid.UUID(bytes_le=rec[4:20]), struct.unpack_from("<I", rec, 20)[0], rec[24:].split(b"\0")[0].decode()
        raise AssertionError("no CodeView record")

    def exports(self) -> tuple[str, dict[str, int]]:
        e = self.off(self.dirs[0][0])
        (_f, _t, _a, _b, name, _base, nfunc, nnames, eat, npt, ot) = struct.unpack_from("<IIHHIIIIIII", self.data, e)

        def cstr(rva: int) -> str:
            at = self.off(rva)
            return self.data[at:self.data.index(b"\0", at)].decode()

        funcs = struct.unpack_from(f"<{nfunc}I", self.data, self.off(eat))
        out = {}
        for i in range(nnames):
            (nrva,) = struct.unpack_from("<I", self.data, self.off(npt) + 4 * i)
            (idx,) = struct.unpack_from("<H", self.data, self.off(ot) + 2 * i)
            out[cstr(nrva)] = funcs[idx]
        return cstr(name), out

    def relocations(self) -> list[tuple[int, int]]:
        rva, size = self.dirs[5]
        out, pos = [], 0
        while pos < size:
            page, block = struct.unpack_from("<II", self.data, self.off(rva) + pos)
            for j in range((block - 8) // 2):
                (ent,) = struct.unpack_from("<H", self.data, self.off(rva) + pos + 8 + 2 * j)
                if ent >> 12:
                    out.append((page + (ent & 0xFFF), ent >> 12))
            pos += block
        return out

    def mapped(self) -> bytearray:
        """The file in the loader's layout (no relocations)."""
        img = bytearray(self.size_of_image)
        img[:self.size_of_headers] = self.data[:self.size_of_headers]
        for _n, rva, vsize, raw_size, raw_ptr in self.sections:
            n = min(vsize, raw_size)
            img[rva:rva + n] = self.data[raw_ptr:raw_ptr + n]
        return img


# --------------------------------------------------------------- PDB (MSF 7.00)
def msf_streams(pdb: bytes) -> list[bytes]:
    """Every stream of an MSF 7.00 file: superblock (BlockSize +32, NumBlocks +40,
    NumDirectoryBytes +44, BlockMapAddr +52); the block map lists the directory's blocks;
    the directory is NumStreams, StreamSizes[], then each stream's block numbers."""
    assert pdb[:32] == MSF_MAGIC
    bs, _fpm, nblocks, dir_bytes, _u, block_map = struct.unpack_from("<IIIIII", pdb, 32)
    assert len(pdb) == bs * nblocks
    ndir = -(-dir_bytes // bs)
    dir_blocks = struct.unpack_from(f"<{ndir}I", pdb, block_map * bs)
    d = b"".join(pdb[b * bs:(b + 1) * bs] for b in dir_blocks)[:dir_bytes]
    (n,) = struct.unpack_from("<I", d, 0)
    sizes = struct.unpack_from(f"<{n}I", d, 4)
    pos = 4 + 4 * n
    out = []
    for size in sizes:
        size = 0 if size == 0xFFFFFFFF else size
        k = -(-size // bs)
        blocks = struct.unpack_from(f"<{k}I", d, pos)
        pos += 4 * k
        out.append(b"".join(pdb[b * bs:(b + 1) * bs] for b in blocks)[:size])
    return out


def pdb_identity(pdb: bytes) -> tuple[uuid.UUID, int, int]:
    """(GUID, age of the PDB info stream, age of the DBI stream).  Stream 1 = PDB info:
    Version u32, Signature u32, Age u32, Guid; stream 3 = DBI: VersionSignature i32,
    VersionHeader u32, Age u32."""
    streams = msf_streams(pdb)
    version, _sig, age = struct.unpack_from("<III", streams[1], 0)
    assert version == 20000404                        # PdbStreamVersion VC70
    guid = uuid.UUID(bytes_le=streams[1][12:28])
    vsig, _vhdr, dbi_age = struct.unpack_from("<iII", streams[3], 0)
    assert vsig == -1
    return guid, age, dbi_age


# --------------------------------------------------------------- minidump
class Dump:
    """Stream directory, ModuleList and both memory lists of a minidump."""

    def __init__(self, data: bytes):
        self.data = data
        sig, _ver, n, dir_rva = struct.unpack_from("<IIII", data, 0)
        assert sig == 0x504D444D
        self.streams = {}
        for i in range(n):
            t, size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
            self.streams[t] = (rva, size)
        self.ranges = []
        if 5 in self.streams:                       # MemoryListStream
            rva = self.streams[5][0]
            (count,) = struct.unpack_from("<I", data, rva)
            for i in range(count):
                start, size, off = struct.unpack_from("<QII", data, rva + 4 + 16 * i)
                self.ranges.append((start, size, off))
        if 9 in self.streams:                       # Memory64ListStream
            rva = self.streams[9][0]
            count, off = struct.unpack_from("<QQ", data, rva)
            for i in range(count):
                start, size = struct.unpack_from("<QQ", data, rva + 16 + 16 * i)
                self.ranges.append((start, size, off))
                off += size
        self.modules = []
        rva = self.streams[4][0]                    # ModuleListStream: MINIDUMP_MODULE 0x6c each
        (count,) = struct.unpack_from("<I", data, rva)
        for i in range(count):
            at = rva + 4 + 0x6C * i
            base, size, _ck, ts, name_rva = struct.unpack_from("<QIIII", data, at)
            cv_size, cv_rva = struct.unpack_from("<II", data, at + 0x4C)
            (nlen,) = struct.unpack_from("<I", data, name_rva)
            name = data[name_rva + 4:name_rva + 4 + nlen].decode("utf-16-le")
            cv = data[cv_rva:cv_rva + cv_size]
            assert cv[:4] == b"RSDS"
            self.modules.append({"base": base, "size": size, "timestamp": ts, "name": name,
                                 "guid": uuid.UUID(bytes_le=cv[4:20]), "age": struct.unpack_from("<I", cv, 20)[0],
                                 "pdb_name": cv[24:].split(b"\0")[0].decode()})

    def read(self, address: int, size: int) -> bytes | None:
        out = b""
        while len(out) < size:
            pos = address + len(out)
            hit = next((r for r in self.ranges if r[0] <= pos < r[0] + r[1]), None)
            if hit is None:
                return None
            n = min(size - len(out), hit[0] + hit[1] - pos)
            out += self.data[hit[2] + pos - hit[0]:hit[2] + pos - hit[0] + n]
        return out

    def uint(self, address: int, size: int) -> int | None:
        b = self.read(address, size)
        return None if b is None else int.from_bytes(b, "little")


# =============================================================== the files
@pytest.mark.parametrize("arch", ARCHES)
def test_facts_match_dll_map_and_pdb(arch):
    f = facts(arch)
    dll, pdb, mp = read(f["dll"]), read(f["pdb"]), read(f["map"])
    assert f["dll"] == f"ntdll_{arch}/ntdll.dll" and f["pdb"] == f"ntdll_{arch}/ntdll.pdb"
    assert hashlib.sha256(dll).hexdigest() == f["dll_sha256"]
    assert hashlib.sha256(pdb).hexdigest() == f["pdb_sha256"]
    assert hashlib.sha256(mp).hexdigest() == f["map_sha256"]
    assert pdb.startswith(MSF_MAGIC)
    assert len(dll) < 16 * 1024 and len(pdb) < 256 * 1024
    pe = Pe(dll)
    assert pe.machine == {"x64": 0x8664, "x86": 0x14C}[arch] == f["machine"]
    assert (pe.image_base, pe.size_of_image, pe.timestamp) == (f["image_base"], f["size_of_image"], f["timestamp"])
    assert [s[0] for s in pe.sections] == [s["name"] for s in f["sections"]]
    base, syms = map_symbols(mp.decode("ascii"))
    assert base == pe.image_base
    ptr = PTR[arch]

    # Globals: RVA and section from the map; inside the section the DLL says holds them.
    g = f["globals"]
    assert set(g) == {"RtlpLFHKey", "RtlpHpHeapGlobals", "RtlpStandInAllocCount"}
    for name, rec in g.items():
        assert rec["decorated"] == ("_" + name if arch == "x86" else name)
        secno, secoff, rva = syms[rec["decorated"]]
        assert (rec["rva"], rec["section_number"], rec["section_offset"]) == (rva, secno, secoff)
        sname, srva, vsize, raw_size, _ = pe.sections[secno - 1]
        assert rec["section"] == sname == ".data"
        assert srva + secoff == rva and srva <= rva and rva + rec["size"] <= srva + vsize
        if rec["initialized"]:
            assert rva + rec["size"] <= srva + raw_size
            assert dll[pe.off(rva):pe.off(rva) + rec["size"]].hex() == rec["initial_bytes"]
    assert g["RtlpLFHKey"]["size"] == ptr and g["RtlpHpHeapGlobals"]["size"] == 0x80
    assert g["RtlpLFHKey"]["initialized"] and g["RtlpHpHeapGlobals"]["initialized"]
    assert not g["RtlpStandInAllocCount"]["initialized"] and g["RtlpStandInAllocCount"]["obj_section"] == ".bss"

    # Keys: HeapKey at +0, LfhKey at +8 (x64) / +4 (x86), holding ntdll.c's constants.
    k = f["keys"]
    assert set(k) == set(KEYS)
    assert (k["RtlpHpHeapGlobals.HeapKey"]["offset"], k["RtlpHpHeapGlobals.LfhKey"]["offset"]) == (0, ptr)
    mask = (1 << 8 * ptr) - 1
    consts = {"RtlpLFHKey": 0x1F2E3D4C5B6A7988, "RtlpHpHeapGlobals.HeapKey": 0x0A1B2C3D4E5F6071,
              "RtlpHpHeapGlobals.LfhKey": 0x1122334455667788}
    src = read("ntdll.c").decode()
    for key, rec in k.items():
        assert rec["rva"] == g[rec["global"]]["rva"] + rec["offset"] and rec["size"] == ptr
        assert int.from_bytes(dll[pe.off(rec["rva"]):pe.off(rec["rva"]) + ptr], "little") == rec["initial_value"]
        assert rec["initial_value"] == consts[key] & mask
        assert f"0x{consts[key]:016X}ULL" in src

    # Functions and exports: map RVAs, undecorated export names.
    dll_name, exports = pe.exports()
    assert dll_name == "ntdll.dll"
    assert exports == {e["name"]: e["rva"] for e in f["exports"]}
    assert set(exports) == {"RtlAllocateHeap", "RtlFreeHeap", "RtlSizeHeap"}
    for fn in f["functions"]:
        assert syms[fn["decorated"]][2] == fn["rva"]
        assert pe.sections[syms[fn["decorated"]][0] - 1][0] == ".text"
        assert fn["exported"] == (fn["name"] in exports)
        if fn["exported"]:
            assert exports[fn["name"]] == fn["rva"]
        if arch == "x86":
            assert re.fullmatch(r"_" + re.escape(fn["name"]) + r"(@\d+)?", fn["decorated"])
        else:
            assert fn["decorated"] == fn["name"]
    assert {fn["storage"] for fn in f["functions"]} == {"global", "static"}
    assert any(not fn["exported"] and fn["storage"] == "global" for fn in f["functions"])
    assert set(f["tools"]) == {"clang", "lld-link"}


@pytest.mark.parametrize("arch", ARCHES)
def test_codeview_matches_the_pdb_header(arch):
    f = facts(arch)
    guid, age, pdb_name = Pe(read(f["dll"])).codeview()
    cv = f["codeview"]
    assert (guid.hex.upper(), age, pdb_name) == (cv["guid"], cv["age"], cv["pdb_name"])
    assert pdb_name == "ntdll.pdb" and cv["debug_id"] == cv["guid"] + f"{age:X}"
    pguid, info_age, dbi_age = pdb_identity(read(f["pdb"]))
    assert pguid == guid and info_age == age == dbi_age


def test_the_two_pdbs_differ_and_each_folder_is_a_flat_lookup():
    x64, x86 = facts("x64"), facts("x86")
    assert x64["codeview"]["guid"] != x86["codeview"]["guid"]
    for f in (x64, x86):
        folder = os.path.join(PDB_DIR, os.path.dirname(f["pdb"]))
        assert sorted(os.listdir(folder)) == ["ntdll.dll", "ntdll.map", "ntdll.pdb"]


@pytest.mark.parametrize("arch", ARCHES)
def test_x86_relocations_point_at_the_globals(arch):
    """x86 code addresses the globals absolutely (base relocations); x64 code is
    RIP-relative and the image has none."""
    f = facts(arch)
    pe = Pe(read(f["dll"]))
    relocs = pe.relocations()
    assert [(r["rva"], {"HIGHLOW": 3, "DIR64": 10}[r["type"]]) for r in f["base_relocations"]] == relocs
    if arch == "x64":
        assert relocs == []
        return
    img = pe.mapped()
    targets = {struct.unpack_from("<I", img, rva)[0] - pe.image_base for rva, _ in relocs}
    k = f["keys"]
    assert {k[key]["rva"] for key in KEYS} <= targets


# =============================================================== mapped into a dump
VALUES = {"x64": {"RtlpLFHKey": 0x6A09E667F3BCC908,
                  "RtlpHpHeapGlobals.HeapKey": 0xBB67AE8584CAA73B,
                  "RtlpHpHeapGlobals.LfhKey": 0x3C6EF372FE94F82B},
          "x86": {"RtlpLFHKey": 0xA54FF53A, "RtlpHpHeapGlobals.HeapKey": 0x510E527F,
                  "RtlpHpHeapGlobals.LfhKey": 0x9B05688C}}
BASES = {"x64": 0x7FFB5C6D0000, "x86": 0x77D60000}


def _dump(arch: str, dump_arch: str, base: int | None, **kw) -> tuple[dict, Dump, DumpBuilder]:
    b = DumpBuilder(arch=dump_arch, os_version=(10, 0, 19041), timestamp=1_700_000_000, pid=0x1234)
    got = add_ntdll_pdb_module(b, arch, base, **kw)
    return got, Dump(b.to_bytes()), b


@pytest.mark.parametrize("arch,dump_arch,where", [("x64", "x64", "preferred"), ("x64", "x64", "rebased"),
                                                  ("x86", "x86", "preferred"), ("x86", "x86", "rebased"),
                                                  ("x86", "x64", "rebased")])
def test_image_maps_into_a_dump_with_the_keys_set(arch, dump_arch, where):
    f = facts(arch)
    ptr = PTR[arch]
    base = None if where == "preferred" else BASES[arch]
    got, d, _ = _dump(arch, dump_arch, base, values=VALUES[arch])
    base = f["image_base"] if base is None else base
    assert got["base"] == base and got["size"] == f["size_of_image"] and got["relocated"] == (where != "preferred")
    want_path = NTDLL_SYSWOW64 if (arch, dump_arch) == ("x86", "x64") else NTDLL_SYSTEM32
    assert got["module"] == want_path
    (m,) = d.modules
    assert (m["base"], m["size"], m["name"], m["timestamp"]) == (base, f["size_of_image"], want_path, f["timestamp"])
    cv = f["codeview"]
    assert (m["guid"].hex.upper(), m["age"], m["pdb_name"]) == (cv["guid"], cv["age"], "ntdll.pdb")
    assert got["pdb_matches"] and got["mismatch"] is None
    assert got["pdb"]["store_path"] == f"ntdll.pdb/{cv['debug_id']}/ntdll.pdb"
    assert got["pdb"]["file"] == f"tests/pdb/ntdll_{arch}/ntdll.pdb"

    # Addresses: base + the map's RVA (own map parse), values as written.
    _, syms = map_symbols(read(f["map"]).decode("ascii"))
    for name, rec in got["globals"].items():
        assert rec["address"] == base + syms[rec["decorated"]][2]
    for key in KEYS:
        k = got["keys"][key]
        glob = got["globals"][k["global"]]
        assert k["address"] == glob["address"] + {"RtlpLFHKey": 0, "RtlpHpHeapGlobals.HeapKey": 0,
                                                  "RtlpHpHeapGlobals.LfhKey": ptr}[key]
        assert d.uint(k["address"], ptr) == VALUES[arch][key] == k["value"] == got["values"][key]
        assert k["written"] and k["captured"] and k["value"] != k["initial_value"]

    # The rest of the image is the DLL's bytes, except the ImageBase field, the keys and
    # (away from the preferred base) the relocation fixups, which hold target + delta.
    pe = Pe(read(f["dll"]))
    img = pe.mapped()
    dumped = d.read(base, f["size_of_image"])
    assert dumped is not None and dumped[:2] == b"MZ"
    delta = base - pe.image_base
    changed = {pe.image_base_offset + i for i in range(ptr)}
    struct.pack_into("<Q" if ptr == 8 else "<I", img, pe.image_base_offset, base)
    for key in KEYS:
        rva = got["keys"][key]["rva"]
        img[rva:rva + ptr] = VALUES[arch][key].to_bytes(ptr, "little")
        changed |= set(range(rva, rva + ptr))
    for rva, typ in pe.relocations():
        assert typ == 3
        v = struct.unpack_from("<I", img, rva)[0]
        struct.pack_into("<I", img, rva, (v + delta) & 0xFFFFFFFF)
    assert got["relocations_applied"] == (len(pe.relocations()) if delta else 0)
    assert dumped == bytes(img)
    if arch == "x86" and delta:
        assert got["relocations_applied"] >= 3
        fixed = {struct.unpack_from("<I", dumped, rva)[0] for rva, _ in pe.relocations()}
        assert {got["keys"][key]["address"] for key in KEYS} <= fixed


@pytest.mark.parametrize("arch", ARCHES)
def test_unwritten_keys_keep_the_initial_constants_and_bss_can_be_set(arch):
    got, d, _ = _dump(arch, arch, None, values={"RtlpLFHKey": 5, "RtlpStandInAllocCount": 0x1234})
    f = facts(arch)
    for key in KEYS:
        k = got["keys"][key]
        assert k["written"] == (key == "RtlpLFHKey")
        assert d.uint(k["address"], PTR[arch]) == k["value"] == (5 if key == "RtlpLFHKey" else f["keys"][key]["initial_value"])
    assert d.uint(got["globals"]["RtlpStandInAllocCount"]["address"], 4) == 0x1234


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("mismatch", ["guid", "age"])
def test_mismatching_codeview_record(arch, mismatch):
    f = facts(arch)
    got, d, _ = _dump(arch, arch, BASES[arch], values=VALUES[arch], mismatch=mismatch)
    cv = f["codeview"]
    (m,) = d.modules
    guid = uuid.UUID(hex=cv["guid"])
    want = (mismatched_guid(guid), cv["age"]) if mismatch == "guid" else (guid, cv["age"] + 1)
    assert (m["guid"], m["age"], m["pdb_name"]) == (*want, "ntdll.pdb")
    assert mismatched_guid(guid) != guid
    assert not got["pdb_matches"] and got["mismatch"] == mismatch
    assert (got["codeview"]["guid"], got["codeview"]["age"]) == (want[0].hex.upper(), want[1])
    assert got["pdb"]["guid"] == cv["guid"] and got["pdb"]["age"] == cv["age"]
    # The mapped image's own RSDS record says the same as the ModuleList.
    pe = Pe(read(f["dll"]))
    dbg_rva, _ = pe.dirs[6]
    addr = struct.unpack_from("<I", d.read(BASES[arch] + dbg_rva, 28), 20)[0]
    rec = d.read(BASES[arch] + addr, 24)
    assert rec[:4] == b"RSDS" and uuid.UUID(bytes_le=rec[4:20]) == want[0]
    assert struct.unpack_from("<I", rec, 20)[0] == want[1]
    # The keys are still where the map says, with the values written.
    for key in KEYS:
        assert d.uint(got["keys"][key]["address"], PTR[arch]) == VALUES[arch][key]


def test_bad_arguments_are_refused():
    b = DumpBuilder(arch="x86")
    with pytest.raises(ValueError):
        add_ntdll_pdb_module(b, "x86", values={"RtlpLFHKey": 1 << 32})
    with pytest.raises(ValueError):
        add_ntdll_pdb_module(b, "x86", values={"RtlpNotAGlobal": 1})
    with pytest.raises(ValueError):
        add_ntdll_pdb_module(b, "x86", mismatch="name")
    with pytest.raises(ValueError):
        add_ntdll_pdb_module(b, "x86", 0x77D61000)
    with pytest.raises(ValueError):
        add_ntdll_pdb_module(b, "x64")          # a 64-bit image in a 32-bit dump


def test_headers_only_capture_leaves_the_keys_out():
    got, d, _ = _dump("x64", "x64", BASES["x64"], capture="headers_and_exports")
    for key in KEYS:
        assert not got["keys"][key]["captured"]
        assert d.read(got["keys"][key]["address"], 8) is None


# =============================================================== the example scenario
def test_ntdll_globals_x64_fixture():
    from dumpbuilder.gen_fixtures import dump_json
    from dumpbuilder.scenarios import SCENARIOS

    with open(os.path.join(FIXTURES, "ntdll_globals_x64.dmp"), "rb") as fh:
        data = fh.read()
    with open(os.path.join(FIXTURES, "ntdll_globals_x64.json"), encoding="utf-8") as fh:
        text = fh.read()
    b, exp = SCENARIOS["ntdll_globals_x64"]()
    fresh = b.to_bytes()
    exp = dict(exp, file_size=len(fresh))
    assert fresh == data and dump_json(exp) == text, "run python tests/dumpbuilder/gen_fixtures.py"
    meta = json.loads(text)
    n = meta["ntdll_pdb"]
    f = facts("x64")
    d = Dump(data)
    m = next(m for m in d.modules if m["name"].lower().endswith("\\ntdll.dll"))
    assert m["base"] == n["base"] and m["size"] == f["size_of_image"] == n["size"]
    assert m["name"] == NTDLL_SYSTEM32 and m["guid"].hex.upper() == f["codeview"]["guid"] == n["pdb"]["guid"]
    assert n["pdb_matches"] and n["relocated"] and n["base"] != f["image_base"]
    for key in KEYS:
        k = n["keys"][key]
        assert k["address"] == n["base"] + f["keys"][key]["rva"]
        assert d.uint(k["address"], 8) == k["value"] == n["values"][key] != f["keys"][key]["initial_value"]
    assert meta["heaps"] and meta["peb"]["heaps"] == [h["address"] for h in meta["heaps"]]


# =============================================================== regeneration
def _tool_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else None


def test_make_ntdll_pdb_regenerates_identical_files(tmp_path):
    tools = facts("x64")["tools"]
    assert facts("x86")["tools"] == tools
    clang = _tool_version(["clang", "--version"])
    lld = _tool_version(["lld-link", "--version"])
    if clang is None or lld is None:
        pytest.skip("clang / lld-link not installed (apt-get install -y clang lld)")
    if (clang, lld) != (tools.get("clang"), tools.get("lld-link")):
        pytest.skip(f"ntdll_* were made with {tools}; this machine has {clang} / {lld}")
    for f in SOURCES:
        shutil.copy(os.path.join(PDB_DIR, f), tmp_path / f)
    subprocess.run(["bash", str(tmp_path / "make_ntdll_pdb.sh")], check=True, capture_output=True)
    for f in REGENERATED:
        assert (tmp_path / f).read_bytes() == read(f), f
