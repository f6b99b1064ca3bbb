"""Checks of the builder's leak-triage fixtures (tests/dumpbuilder/rtti.py, triage.py,
triage_scenarios.py) without the project's reader and without the builder's own tables.

The constants below are typed again from /work/shared/docs/leak-triage.md (sections 1.2-1.5,
2.1-2.4, 3) and the dump bytes are parsed with struct (the minidump reader and the small NT
heap walker of test_builder_selfcheck.py).  What is checked:

* regeneration is byte-identical (dump and JSON);
* names: rules R1..R6 of section 1.4 applied to every allocation's bytes give exactly the
  JSON's type / type_module / vftable / is_struct (so every named object's vfptr -> COL ->
  TypeDescriptor chain is as the JSON says), and every decoy fails the rule it claims first;
  type_name follows the section 1.5 table (retyped here);
* content classes: section 3 on the bytes;
* reachability: a brute-force mark phase over every P-aligned word of the dump's root memory,
  every register of every CONTEXT and the words of every reached allocation (section 2)
  gives the JSON's reachable / direct_roots / reached_by / depth, unreferenced list and
  per-type summary;
* the allocations are the is_allocation rows, and the back-end and virtual ones match a walk
  of the heap bytes;
* coverage: every content class, root kind, decoy rule and edge case occurs.
"""

from __future__ import annotations

import bisect
import json
import os
import struct
import sys
from collections import defaultdict, deque

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TESTS, "fixtures")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from dumpbuilder.gen_fixtures import dump_json  # noqa: E402
from dumpbuilder.scenarios import SCENARIOS  # noqa: E402

import test_builder_lfh as lfh_checks  # noqa: E402  (module import: its tests are not re-collected)
from test_builder_selfcheck import VAE_OFFS, MiniHeap, Parsed  # noqa: E402

TRIAGE = sorted(n for n in SCENARIOS if n.startswith("triage_"))
WANT = {"triage_x64", "triage_x86", "triage_ust_x64", "triage_series_1", "triage_series_2",
        "triage_series_3"}

# ---- leak-triage.md, retyped ----------------------------------------------------------------
# 1.2 COL: signature, offset, cdOffset, TypeDescriptor, hierarchy, (x64) pSelf.
COL_BYTES = {"x86": 0x14, "x64": 0x18}
COL_SIG = {"x86": 0, "x64": 1}
# 1.2 class hierarchy descriptor: signature +0, attributes +4, numBaseClasses +8, array +0xc.
# 1.4 bounds.
NAME_MAX = 512
BASES_MAX = 64
TI_NAME = b".?AVtype_info@@"
# PE section flags (the doc's 1.4 "Read-only section").
SCN_READ, SCN_WRITE, SCN_EXEC = 0x40000000, 0x80000000, 0x20000000
# 2.2 writable protections and the CONTEXT integer registers.
WRITABLE = (0x04, 0x08, 0x40, 0x80)
REGS = {"x64": {"rax": 0x78, "rcx": 0x80, "rdx": 0x88, "rbx": 0x90, "rsp": 0x98, "rbp": 0xA0,
                "rsi": 0xA8, "rdi": 0xB0, "r8": 0xB8, "r9": 0xC0, "r10": 0xC8, "r11": 0xD0,
                "r12": 0xD8, "r13": 0xE0, "r14": 0xE8, "r15": 0xF0, "rip": 0xF8},
        "x86": {"edi": 0x9C, "esi": 0xA0, "ebx": 0xA4, "edx": 0xA8, "ecx": 0xAC, "eax": 0xB0,
                "ebp": 0xB4, "eip": 0xB8, "esp": 0xC4}}
ORDER = ("global", "stack", "register", "other")          # 2.4
# 1.5 display names (the table, and the same rule for plain namespace names).
DISPLAY = {
    ".?AVWidget@@": "Widget",
    ".?AUPoint3@@": "Point3",
    ".?AVCImageBuffer@@": "CImageBuffer",
    ".?AVInspectionJob@vision@@": "vision::InspectionJob",
    ".?AVSession@net@contoso@@": "contoso::net::Session",
    ".?AV?$Pool@H$0BA@@core@@": "core::Pool<int,16>",
    ".?AV?$vector@HV?$allocator@H@std@@@std@@": "std::vector<int,std::allocator<int> >",
    ".?AV?$Cache@_K@core@@": "core::Cache<uint64_t>",
}
CLASSES = ("object", "zero", "ascii", "utf16", "pointer_array", "other")
MEM_COMMIT, MEM_IMAGE = 0x1000, 0x1000000


def load(name: str) -> tuple[Parsed, dict]:
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        return Parsed(data), json.load(f)


# ---- minidump streams the selfcheck reader does not decode ----------------------------------
def modules(p: Parsed) -> list[dict]:
    rva, _ = p.streams[4]
    (n,) = struct.unpack_from("<I", p.data, rva)
    out = []
    for i in range(n):
        base, size, _ck, _ts, name_rva = struct.unpack_from("<QIIII", p.data, rva + 4 + 108 * i)
        path = p.string(name_rva)
        out.append({"base": base, "size": size, "name": path.replace("/", "\\").rsplit("\\", 1)[-1]})
    return out


def regions(p: Parsed) -> list[dict]:
    rva, _ = p.streams[16]
    _hs, _es, n = struct.unpack_from("<IIQ", p.data, rva)
    out = []
    for i in range(n):
        base, ab, _ap, _a, size, state, prot, typ, _b = struct.unpack_from(
            "<QQIIQIIII", p.data, rva + 16 + 48 * i)
        out.append({"base": base, "end": base + size, "ab": ab, "state": state, "protect": prot,
                    "type": typ})
    return out


def threads(p: Parsed) -> list[dict]:
    rva, _ = p.streams[3]
    (n,) = struct.unpack_from("<I", p.data, rva)
    out = []
    for i in range(n):
        tid, _s, _pc, _pr, teb, start, ssize, _srva, csize, crva = struct.unpack_from(
            "<IIIIQQIIII", p.data, rva + 4 + 48 * i)
        out.append({"tid": tid, "teb": teb, "stack_start": start, "stack_size": ssize,
                    "context": p.data[crva:crva + csize]})
    return out


def region_of(regs: list[dict], a: int) -> dict | None:
    for g in regs:
        if g["base"] <= a < g["end"]:
            return g
    return None


# ---- 1.4 R1..R6 -----------------------------------------------------------------------------
class Fail(Exception):
    def __init__(self, rule: str, why: str):
        super().__init__(f"{rule}: {why}")
        self.rule = rule


class Images:
    def __init__(self, p: Parsed, arch: str):
        self.p, self.arch = p, arch
        self.P = 4 if arch == "x86" else 8
        self.mods = modules(p)
        self._secs: dict[int, list | None] = {}

    def word(self, a: int, rule: str) -> int:
        v = self.p.ptr(a, self.P)
        if v is None:
            raise Fail(rule, f"{a:#x} not captured")
        return v

    def u32(self, a: int, rule: str) -> int:
        v = self.p.u32(a)
        if v is None:
            raise Fail(rule, f"{a:#x} not captured")
        return v

    def module_of(self, a: int) -> dict | None:
        return next((m for m in self.mods if m["base"] <= a < m["base"] + m["size"]), None)

    def sections(self, m: dict) -> list | None:
        """(start VA, end VA, characteristics) from the image's header page, None if absent."""
        if m["base"] not in self._secs:
            b = m["base"]
            hdr = self.p.read(b, 0x1000)
            secs = None
            if hdr is not None and hdr[:2] == b"MZ":
                (pe,) = struct.unpack_from("<I", hdr, 0x3C)
                if hdr[pe:pe + 4] == b"PE\0\0":
                    (nsec,) = struct.unpack_from("<H", hdr, pe + 6)
                    (opt,) = struct.unpack_from("<H", hdr, pe + 20)
                    secs = []
                    for i in range(nsec):
                        at = pe + 24 + opt + 40 * i
                        vsize, rva = struct.unpack_from("<II", hdr, at + 8)
                        (ch,) = struct.unpack_from("<I", hdr, at + 36)
                        secs.append((b + rva, b + rva + vsize, ch))
            self._secs[m["base"]] = secs
        return self._secs[m["base"]]

    def read_only(self, m: dict, lo: int, hi: int) -> bool:
        secs = self.sections(m)
        if secs is None:
            return False
        return any(s <= lo and hi <= e and ch & SCN_READ and not ch & (SCN_WRITE | SCN_EXEC)
                   for s, e, ch in secs)

    def inside(self, m: dict, a: int) -> bool:
        return m["base"] <= a < m["base"] + m["size"]

    def col(self, m: dict, c: int, rule2: str = "R2") -> tuple[int, int, int]:
        """R2 and R3 on the COL at c; returns (offset, TypeDescriptor, hierarchy)."""
        a = self.arch
        if c % 4 or not self.read_only(m, c, c + COL_BYTES[a]):
            raise Fail(rule2, f"COL {c:#x} not 4-aligned in a read-only section of {m['name']}")
        raw = self.p.read(c, COL_BYTES[a])
        if raw is None:
            raise Fail("R3", "COL not captured")
        sig, offset, _cd, td, chd = struct.unpack_from("<IIIII", raw)
        if sig != COL_SIG[a]:
            raise Fail("R3", f"signature {sig}")
        if a == "x64":
            (pself,) = struct.unpack_from("<I", raw, 0x14)
            if pself != c - m["base"]:
                raise Fail("R3", "pSelf")
            td, chd = m["base"] + td, m["base"] + chd
        if not (self.inside(m, td) and self.inside(m, chd)):
            raise Fail("R3", "TypeDescriptor or hierarchy outside the image")
        return offset, td, chd

    def td_name(self, td: int, rule: str) -> bytes:
        name = b""
        for k in range(NAME_MAX):
            ch = self.p.read(td + 2 * self.P + k, 1)
            if ch is None:
                raise Fail(rule, "name not captured")
            if ch == b"\0":
                return name
            name += ch
        raise Fail(rule, "no NUL within 512 bytes")

    def ref(self, m: dict, v: int) -> int:
        return v if self.arch == "x86" else m["base"] + v

    def name(self, user: int, size: int) -> tuple[str, str, int]:
        """(decorated, module name, vftable) or raises Fail(first rule that fails)."""
        P = self.P
        if size < P:
            raise Fail("R1", "user_size < P")
        v = self.word(user, "R1")
        m = self.module_of(v - P)
        if v % P or m is None or not self.read_only(m, v - P, v + P):
            raise Fail("R1", f"{v:#x} is not a P-aligned address in a read-only section")
        c = self.word(v - P, "R2")
        offset, td, chd = self.col(m, c)
        if offset != 0:
            raise Fail("R4", f"COL offset {offset:#x}")
        # R5
        if td % P:
            raise Fail("R5", "TypeDescriptor not P-aligned")
        nm = self.td_name(td, "R5")
        if not nm.startswith((b".?AV", b".?AU")) or any(not 0x21 <= x <= 0x7E for x in nm):
            raise Fail("R5", f"name {nm!r}")
        t = self.word(td, "R5")
        if t % P or not self.read_only(m, t - P, t + P):
            raise Fail("R5", "pVFTable not in a read-only section of the image")
        try:
            c2 = self.word(t - P, "R5")
            off2, td2, _chd2 = self.col(m, c2, rule2="R5")
        except Fail as f:
            raise Fail("R5", f"type_info COL: {f}") from None
        if off2 != 0 or self.td_name(td2, "R5") != TI_NAME or self.word(td2, "R5") != t:
            raise Fail("R5", "pVFTable is not type_info's vftable")
        # R6
        raw = self.p.read(chd, 0x10)
        if raw is None:
            raise Fail("R6", "hierarchy not captured")
        sig, _attr, num, bca = struct.unpack("<IIII", raw)
        if sig != 0 or not 1 <= num <= BASES_MAX:
            raise Fail("R6", f"hierarchy signature {sig} / {num} bases")
        bca = self.ref(m, bca)
        if not self.inside(m, bca):
            raise Fail("R6", "base class array outside the image")
        bcd = self.ref(m, self.u32(bca, "R6"))
        if not self.inside(m, bcd) or self.ref(m, self.u32(bcd, "R6")) != td:
            raise Fail("R6", "first base class descriptor names another TypeDescriptor")
        return nm.decode("ascii"), m["name"], v


# ---- section 3 ------------------------------------------------------------------------------
def content_class(p: Parsed, regs: list[dict], P: int, user: int, size: int) -> str:
    e = p.read(user, min(size, 0x100))
    assert e is not None, f"E of {user:#x} not captured"
    if not any(e):
        return "zero"
    printable = set(range(0x20, 0x7F)) | {9, 10, 13}
    t = e.split(b"\0")[0]
    if len(t) >= 4 and set(t) <= printable:
        return "ascii"
    u = []
    for i in range(0, len(e) // 2 * 2, 2):
        unit = e[i] | e[i + 1] << 8
        if unit == 0:
            break
        u.append(unit)
    if len(u) >= 4 and all(x < 0x100 and (x in printable or x >= 0xA0) for x in u):
        return "utf16"
    words = [int.from_bytes(e[i:i + P], "little") for i in range(0, len(e) // P * P, P)]

    def committed(w: int) -> bool:
        g = region_of(regs, w)
        return g is not None and g["state"] == MEM_COMMIT

    if len(words) >= 2 and len([w for w in words if w]) >= 2 and all(
            w == 0 or committed(w) for w in words):
        return "pointer_array"
    return "other"


# ---- section 2, brute force -----------------------------------------------------------------
def allocation_rows(meta: dict) -> list[dict]:
    return sorted((dict(b, heap=h["address"]) for h in meta["heaps"] for b in h["blocks"]
                   if b["is_allocation"]), key=lambda b: b["user_address"])


def brute_force(p: Parsed, meta: dict) -> dict[int, dict]:
    P = meta["pointer_size"]
    regs = regions(p)
    allocs = [(b["user_address"], b["user_size"]) for b in allocation_rows(meta)]
    starts = [u for u, _ in allocs]
    ends = {u: u + s for u, s in allocs}

    def target(w: int) -> int | None:
        i = bisect.bisect_right(starts, w) - 1
        if i >= 0 and w < ends[starts[i]]:
            return starts[i]
        return None

    # 2.1 heap-owned memory: every region sharing the AllocationBase of a segment or virtual
    # block (from the heap records).
    owners = set()
    for h in meta["heaps"]:
        owners |= {s["base"] for s in h["segments"]}
        owners |= {v["address"] for v in h["virtual_blocks"]}
    H = [(g["base"], g["end"]) for g in regs if g["ab"] in owners]
    assert H

    def in_H(a: int) -> bool:
        return any(lo <= a < hi for lo, hi in H)

    ths = threads(p)
    stack_bases = {region_of(regs, t["stack_start"])["ab"] for t in ths}

    # Captured memory as contiguous spans (adjacent ranges joined).
    spans: list[list[int]] = []
    for a, s, _o, _l in p.ranges:
        if spans and spans[-1][1] == a:
            spans[-1][1] = a + s
        else:
            spans.append([a, a + s])
    direct: dict[int, set[str]] = defaultdict(set)
    for lo, hi in spans:
        blob = p.read(lo, hi - lo)
        first = (lo + P - 1) // P * P
        for a in range(first, hi - P + 1, P):
            if in_H(a):
                continue
            g = region_of(regs, a)
            assert g is not None
            if g["type"] == MEM_IMAGE and (g["protect"] & 0xFF) not in WRITABLE:
                continue
            w = int.from_bytes(blob[a - lo:a - lo + P], "little")
            tg = target(w)
            if tg is None:
                continue
            kind = ("stack" if g["ab"] in stack_bases else
                    "global" if g["type"] == MEM_IMAGE else "other")
            direct[tg].add(kind)
    for t in ths:
        for reg, off in REGS[meta["arch"]].items():
            w = int.from_bytes(t["context"][off:off + P], "little")
            tg = target(w)
            if tg is not None:
                direct[tg].add("register")
    depth = {u: 0 for u in direct}
    queue = deque(sorted(direct))
    while queue:
        u = queue.popleft()
        first = (u + P - 1) // P * P
        for a in range(first, ends[u] - P + 1, P):
            w = p.ptr(a, P)
            if w is None:
                continue
            tg = target(w)
            if tg is not None and tg not in depth:
                depth[tg] = depth[u] + 1
                queue.append(tg)
    out = {}
    for u, _s in allocs:
        roots = [k for k in ORDER if k in direct.get(u, ())]
        out[u] = {"reachable": u in depth, "direct_roots": roots,
                  "reached_by": roots[0] if roots else ("heap" if u in depth else "none"),
                  "depth": depth.get(u)}
    return out


# =============================================================== tests
def test_triage_scenarios_exist():
    assert set(TRIAGE) == WANT


@pytest.mark.parametrize("name", TRIAGE)
def test_regeneration_is_byte_identical(name):
    b, exp = SCENARIOS[name]()
    data = b.to_bytes()
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        assert f.read() == data
    exp = dict(exp, file_size=len(data))
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        assert f.read() == dump_json(exp)
    b2, exp2 = SCENARIOS[name]()
    assert b2.to_bytes() == data and dict(exp2, file_size=len(data)) == exp


@pytest.mark.parametrize("name", TRIAGE)
def test_allocations_are_the_allocation_rows(name):
    p, meta = load(name)
    rows = allocation_rows(meta)
    T = meta["triage"]
    assert [a["user_address"] for a in T["allocations"]] == [r["user_address"] for r in rows]
    for a, r in zip(T["allocations"], rows):
        assert (a["user_size"], a["kind"], a["heap"], a["address"]) == (
            r["user_size"], r["kind"], r["heap"], r["address"])
    # The back-end and virtual rows agree with a walk of the heap bytes.
    for h in meta["heaps"]:
        m = MiniHeap(p, h["address"], h["arch"], h["epoch"], h["ust"])
        walked = {}
        for seg in m.segments():
            for e in m.walk(seg):
                if e["flags"] & 1:
                    walked[e["address"]] = e
        for r in rows:
            if r["heap"] != h["address"]:
                continue
            if r["kind"] == "backend":
                e = walked[r["address"]]
                assert not e["flags"] & 8                      # not HEAP_ENTRY_VIRTUAL_ALLOC
                assert m.user(e) == (r["user_address"], r["user_size"])
            elif r["kind"] == "virtual":
                commit_off, _r, busy_off, user_off, _up, ust_user = VAE_OFFS[h["arch"]]
                vae = r["address"] - busy_off
                assert vae in m.links(h["address"] + m.h["vab"])[0]
                e = m.entry(r["address"])
                assert r["user_size"] == m.P(vae + commit_off) - e["size"]
                assert r["user_address"] == vae + (ust_user if h["ust"] else user_off)


@pytest.mark.parametrize("name", TRIAGE)
def test_lfh_structures_from_bytes(name):
    """The LFH rows (the lfh_block allocations among them) against the bytes, with the
    independent LFH checks of test_builder_lfh.py."""
    lfh_checks.test_front_end_and_lfh_heap(name)
    lfh_checks.test_zones_and_descriptors(name)
    lfh_checks.test_containers_and_blocks_from_bytes(name)
    lfh_checks.test_rows_tile_and_nest(name)


@pytest.mark.parametrize("name", TRIAGE)
def test_names_follow_the_rtti_rules(name):
    p, meta = load(name)
    img = Images(p, meta["arch"])
    named = 0
    for a in meta["triage"]["allocations"]:
        try:
            dec, mod, v = img.name(a["user_address"], a["user_size"])
        except Fail as f:
            assert a["type"] is None, (hex(a["user_address"]), str(f))
            assert a["type_name"] is a["type_module"] is a["vftable"] is a["is_struct"] is None
            if a["decoy"] is not None:
                assert f.rule == a["decoy"]["rule"], (a["decoy"], str(f))
                assert img.word(a["user_address"], "-") == a["decoy"]["value"]
            continue
        named += 1
        assert a["decoy"] is None
        assert (a["type"], a["type_module"], a["vftable"]) == (dec, mod, v)
        assert a["is_struct"] == dec.startswith(".?AU")
        assert a["type_name"] == DISPLAY[dec]
        assert a["content"] == "object"
    assert named >= 10


@pytest.mark.parametrize("name", TRIAGE)
def test_named_chain_matches_module_records(name):
    """vfptr -> COL -> TypeDescriptor of every named block, against the modules' RTTI records
    (a record lists its class's TypeDescriptor, hierarchy and vftables)."""
    p, meta = load(name)
    P = meta["pointer_size"]
    T = meta["triage"]
    by_vft = {}
    for m in T["modules"]:
        for c in m["classes"]:
            for v in c["vftables"]:
                by_vft[v["address"]] = (m, c, v)
    for a in T["allocations"]:
        if a["type"] is None:
            continue
        m, c, v = by_vft[a["vftable"]]
        assert v["offset"] == 0 and c["decorated"] == a["type"] and m["name"] == a["type_module"]
        assert p.ptr(a["user_address"], P) == v["address"]
        col = p.ptr(v["address"] - P, P)
        assert col == v["col"]
        td_field = p.u32(col + 0x0C)
        td = td_field if meta["arch"] == "x86" else m["base"] + td_field
        assert td == c["type_descriptor"]
        assert p.ptr(td, P) == m["type_info_vftable"]
        assert p.read(td + 2 * P, len(a["type"]) + 1) == a["type"].encode() + b"\0"
        if len(c["vftables"]) > 1 and p.ptr(a["user_address"] + P, P):
            # multiple inheritance: the secondary vfptr at +P (doc 1.1), its COL offset P
            assert p.ptr(a["user_address"] + P, P) == c["vftables"][1]["address"]
            assert c["vftables"][1]["offset"] == P


@pytest.mark.parametrize("name", TRIAGE)
def test_content_classes(name):
    p, meta = load(name)
    regs = regions(p)
    for a in meta["triage"]["allocations"]:
        if a["type"] is not None:
            assert a["content"] == "object"
            continue
        got = content_class(p, regs, meta["pointer_size"], a["user_address"], a["user_size"])
        assert got == a["content"], (hex(a["user_address"]), a["role"])


@pytest.mark.parametrize("name", TRIAGE)
def test_reachability_brute_force(name):
    p, meta = load(name)
    want = brute_force(p, meta)
    T = meta["triage"]
    for a in T["allocations"]:
        got = {k: a[k] for k in ("reachable", "direct_roots", "reached_by", "depth")}
        assert got == want[a["user_address"]], (hex(a["user_address"]), a["role"])
    unref = [a for a in T["allocations"] if not a["reachable"]]
    assert T["unreferenced"] == {"count": len(unref), "bytes": sum(a["user_size"] for a in unref),
                                 "user_addresses": [a["user_address"] for a in unref]}


@pytest.mark.parametrize("name", TRIAGE)
def test_declared_words_are_in_the_dump(name):
    p, meta = load(name)
    P = meta["pointer_size"]
    for r in meta["triage"]["references"]:
        got = p.ptr(r["address"], P)
        if got is None:
            assert r["holder"] == "ignored" and r["why"] == "not captured"
        else:
            assert got == r["value"], r


@pytest.mark.parametrize("name", TRIAGE)
def test_registers_in_contexts(name):
    p, meta = load(name)
    ths = threads(p)
    P = meta["pointer_size"]
    for r in meta["triage"]["registers"]:
        off = REGS[meta["arch"]][r["register"]]
        ctx = ths[r["thread"]]["context"]
        assert int.from_bytes(ctx[off:off + P], "little") == r["value"]
    listed = {(r["thread"], r["register"]) for r in meta["triage"]["registers"]}
    for i, t in enumerate(ths):
        for reg, off in REGS[meta["arch"]].items():
            if (i, reg) not in listed:
                assert not any(t["context"][off:off + P])


@pytest.mark.parametrize("name", TRIAGE)
def test_summary_and_types(name):
    _p, meta = load(name)
    T = meta["triage"]
    groups: dict[str, list[int]] = {}
    for a in T["allocations"]:
        key = a["type"] or a["content"]
        g = groups.setdefault(key, [0, 0, 0, 0])
        g[0] += 1
        g[1] += a["user_size"]
        if not a["reachable"]:
            g[2] += 1
            g[3] += a["user_size"]
    rows = sorted(groups.items(), key=lambda kv: (-kv[1][3], -kv[1][1], -kv[1][0], kv[0]))
    assert [(s["key"], s["count"], s["bytes"], s["unreferenced_count"], s["unreferenced_bytes"])
            for s in T["summary"]] == [(k, *v) for k, v in rows]
    types = {}
    for a in T["allocations"]:
        if a["type"]:
            t = types.setdefault((a["type"], a["type_module"], a["vftable"]), [0, 0, a])
            t[0] += 1
            t[1] += a["user_size"]
    assert [(t["type"], t["type_module"], t["vftable"], t["count"], t["bytes"], t["type_name"],
             t["is_struct"]) for t in T["types"]] == [
        (*k, v[0], v[1], v[2]["type_name"], v[2]["is_struct"]) for k, v in sorted(types.items())]


@pytest.mark.parametrize("name", ["triage_x64", "triage_x86", "triage_ust_x64"])
def test_coverage(name):
    _p, meta = load(name)
    T = meta["triage"]
    A = T["allocations"]
    assert {a["content"] for a in A} == set(CLASSES)
    assert {a["kind"] for a in A} == {"backend", "virtual", "lfh_block"}
    assert {a["kind"] for a in A if a["type"]} == {"backend", "virtual", "lfh_block"}
    assert {a["kind"] for a in A if not a["reachable"]} == {"backend", "virtual", "lfh_block"}
    assert {r for a in A for r in a["direct_roots"]} == set(ORDER)
    assert {a["reached_by"] for a in A} == set(ORDER) | {"heap", "none"}
    assert max(a["depth"] or 0 for a in A) >= 3
    rules = {a["decoy"]["rule"] for a in A if a["decoy"]}
    assert rules == {"R1", "R2", "R3", "R4", "R5", "R6"}
    assert len([a for a in A if a["decoy"]]) >= 25
    assert any(a["is_struct"] for a in A)
    assert {a["type_module"] for a in A if a["type"]} == {"vision.dll", "core.dll"}
    widget = [t for t in T["types"] if t["type"] == ".?AVWidget@@"]
    assert len({t["type_module"] for t in widget}) == 2
    # interior pointers, one-past-the-end, header pointers, stale words, tails, read-only
    # image words and unaligned words all occur among the references.
    refs = T["references"]
    whys = {r["why"] for r in refs if r["holder"] == "ignored"}
    assert {"read-only image section", "not P-aligned"} <= whys
    assert any(w and w.startswith("heap-owned memory outside every allocation") for w in whys)
    if meta["arch"] == "x64":
        assert "word runs past user_size (last, partial word)" in whys
    assert any(r["counts"] and r["value"] != r["target"] for r in refs)      # interior
    sizes = {a["user_address"]: a["user_size"] for a in A}
    ends = {u + s for u, s in sizes.items()}
    assert any(r["value"] in ends and r["target"] is None for r in refs)      # one past the end
    regs = [r for r in T["registers"] if r["target"] is not None]
    assert regs and any(r["value"] != r["target"] for r in regs)
    zero_len = [a for a in A if a["user_size"] == 0]
    assert zero_len and all(a["content"] == "zero" and not a["reachable"] for a in zero_len)


def test_ust_blocks_have_stacks_and_types():
    _p, meta = load("triage_ust_x64")
    rows = {r["user_address"]: r for r in allocation_rows(meta)}
    named = [a for a in meta["triage"]["allocations"] if a["type"]]
    assert named and all(rows[a["user_address"]]["stack_trace_entry"] for a in named
                         if a["kind"] != "virtual")
    assert meta["stack_trace_db"] is not None


def test_series():
    metas = [load(f"triage_series_{i}")[1] for i in (1, 2, 3)]
    assert len({m["pid"] for m in metas}) == 1
    assert [m["timestamp"] for m in metas] == sorted(m["timestamp"] for m in metas)
    for i, m in enumerate(metas):
        s = m["triage_series"]
        assert s["index"] == i
        assert s["per_type"] == metas[0]["triage_series"]["per_type"]
        for g in m["triage"]["summary"]:
            pt = s["per_type"][g["key"]]
            assert (pt["count"][i], pt["bytes"][i], pt["unreferenced_count"][i],
                    pt["unreferenced_bytes"][i]) == (g["count"], g["bytes"],
                                                     g["unreferenced_count"],
                                                     g["unreferenced_bytes"])
    s = metas[0]["triage_series"]
    assert ".?AVCImageBuffer@@" in s["growing_unreferenced"]
    assert ".?AVSession@net@contoso@@" in s["growing"]
    assert ".?AVSession@net@contoso@@" not in s["growing_unreferenced"]
    assert ".?AVWidget@@" not in s["growing"]
    # Allocations of an earlier dump are at the same addresses in later dumps.
    first = {a["user_address"]: a["type"] for a in metas[0]["triage"]["allocations"]}
    last = {a["user_address"]: a["type"] for a in metas[2]["triage"]["allocations"]}
    assert all(last.get(u) == t for u, t in first.items())


def test_fixture_sizes():
    total = 0
    for n in TRIAGE:
        for ext in ("dmp", "json"):
            size = os.path.getsize(os.path.join(FIXTURES, f"{n}.{ext}"))
            assert size < 300 * 1024, (n, ext)
            total += size
    assert total < 2 * 1024 * 1024
