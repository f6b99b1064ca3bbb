"""Checks of the builder's Low Fragmentation Heap fixtures (tests/dumpbuilder/lfh.py,
lfh_scenarios.py) without the project's reader and without the builder's own layout tables:
the offsets below are typed again from windows-heap-layouts.md (sections 1, 4, 6, 9, 11) and
the bytes of each fixture are parsed with struct, the way test_builder_selfcheck.py does for the
back end.  What is checked: regeneration is byte-identical; every structure the JSON names is
in the bytes (FrontEndHeap, _LFH_HEAP, zones, descriptors, UserBlocks headers); E1 and E2
(section 9.9) hold for every container and block with the JSON's key; the busy bitmap equals
the busy flags; every container's children tile it; the row columns follow
docs/block-model.md."""

from __future__ import annotations

import json
import os
import struct
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TESTS, "fixtures")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from dumpbuilder.gen_fixtures import dump_json  # noqa: E402
from dumpbuilder.scenarios import SCENARIOS  # noqa: E402

from test_builder_selfcheck import Parsed  # noqa: E402  (the tiny minidump reader)

LFH_SCEN = sorted(n for n in SCENARIOS if n.startswith("lfh_"))
WANT = {"lfh_win7_x86", "lfh_win7_x64", "lfh_win81_x86", "lfh_win81_x64", "lfh_win10_1607_x86",
        "lfh_win10_1607_x64", "lfh_win10_x86", "lfh_win10_x64", "lfh_win11_x64",
        "lfh_ust_win10_x64", "lfh_ust_win7_x86", "lfh_wow64_win10", "lfh_win8_x64",
        "lfh_mis_keyed_x64", "lfh_ub_not_captured_x64"}

# ---- windows-heap-layouts.md, retyped ------------------------------------------------------
# _HEAP.FrontEndHeap / FrontEndHeapType (doc 1.1, 1.2, 4.1, 4.2) by (arch, _HEAP row).
FRONT_END = {("x64", "win7"): (0x178, 0x182), ("x64", "win8"): (0x170, 0x17A),
             ("x64", "win10_1507"): (0x178, 0x182), ("x64", "win10_1809"): (0x198, 0x1A2),
             ("x86", "win7"): (0xD4, 0xDA), ("x86", "win8"): (0xD0, 0xD6),
             ("x86", "win10_1507"): (0xD4, 0xDA), ("x86", "win10_1809"): (0xE4, 0xEA)}
# _HEAP.Encoding (doc 6.3): x86 the 8 bytes at 0x50, x64 the 8 bytes at 0x88.
ENCODING = {"x86": 0x50, "x64": 0x88}
# _LFH_HEAP (doc 9.1): SubSegmentZones, Heap.
LFH_HEAP = {("x86", "win7"): (0x18, 0x24), ("x64", "win7"): (0x28, 0x40),
            ("x86", "new"): (0x04, 0x0C), ("x64", "new"): (0x08, 0x18)}
# _LFH_BLOCK_ZONE (doc 9.2): FreePointer/NextIndex, Limit (old), first descriptor.
ZONE = {("x86", "old"): (0x08, 0x0C, 0x10), ("x64", "old"): (0x10, 0x18, 0x20),
        ("x86", "win81"): (0x08, None, 0x10), ("x64", "win81"): (0x10, None, 0x20)}
# _HEAP_SUBSEGMENT (doc 9.4): UserBlocks, AggregateExchg, BlockSize, Flags, BlockCount, sizeof.
SUBSEG = {("x86", "win7"): (0x04, 0x08, 0x10, 0x12, 0x14, 0x20),
          ("x64", "win7"): (0x08, 0x10, 0x18, 0x1A, 0x1C, 0x30),
          ("x86", "new"): (0x04, 0x10, 0x14, 0x16, 0x18, 0x28),
          ("x64", "new"): (0x08, 0x20, 0x24, 0x26, 0x28, 0x40)}
# _HEAP_USERDATA_HEADER (doc 9.5): Signature offset and width.
UD_SIG = {("x86", "win7"): (0x0C, 4), ("x64", "win7"): (0x18, 8), ("x64", "win80"): (0x14, 4),
          ("x86", "win81"): (0x0C, 4), ("x64", "win81"): (0x14, 4)}
# Win8.1+: EncodedOffsets; BusyBitmap (SizeOfBitMap, Buffer); BitmapData.
UD_81 = {"x86": (0x10, 0x14, 0x18, 0x1C), "x64": (0x18, 0x20, 0x28, 0x30)}
UD_80_X64 = dict(first=0x18, stride=0x1A, bitmap=0x20, buffer=0x28, data=0x30)
UD_SIZEOF_WIN7 = {"x86": 0x10, "x64": 0x20}
GRAN = {"x86": 8, "x64": 16}
HDR = {"x86": 8, "x64": 0x10}           # LFH block header (doc 9.7)
GROUP = {"x86": 0, "x64": 8}            # the Size..UnusedBytes group (doc 6.1)
UST = {"x86": (0x08, 0x14, 0x18), "x64": (0x10, 0x2C, 0x30)}   # doc 11.3
SIGNATURE = 0xF0E0D0C0


def model_of(build: int) -> str:
    return "win7" if build < 9200 else ("win80" if build < 9600 else "win81")


def _new(model: str) -> str:
    return "win7" if model == "win7" else "new"


def load(name: str) -> tuple[Parsed, dict]:
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        return Parsed(data), json.load(f)


def nt_heaps(meta: dict) -> list[dict]:
    return [h for h in meta["heaps"] + meta.get("heaps32", []) if h.get("type", "nt") == "nt"]


def lfh_heaps(meta: dict) -> list[dict]:
    return [h for h in nt_heaps(meta) if h["lfh"] is not None]


class Mini:
    """Reads one NT heap's back-end entries and LFH structures."""

    def __init__(self, p: Parsed, h: dict, build: int):
        self.p, self.h, self.arch = p, h, h["arch"]
        self.ptr = 4 if self.arch == "x86" else 8
        self.g = GRAN[self.arch]
        self.model = model_of(build)
        self.key8 = int.from_bytes(p.read(h["address"] + ENCODING[self.arch], 8), "little")

    def P(self, a: int) -> int | None:
        return self.p.ptr(a, self.ptr)

    def u16(self, a: int) -> int:
        return struct.unpack("<H", self.p.read(a, 2))[0]

    def u8(self, a: int) -> int:
        return self.p.read(a, 1)[0]

    def entry(self, at: int) -> dict:
        raw = self.p.read(at + GROUP[self.arch], 8)
        v = (int.from_bytes(raw, "little") ^ self.key8).to_bytes(8, "little")
        size, flags, tag, prev, _so, unused = struct.unpack("<HBBHBB", v)
        assert tag == v[0] ^ v[1] ^ v[2], hex(at)
        return dict(size=size, flags=flags, unused=unused)

    def backend_user(self, at: int) -> tuple[int, int]:
        e = self.entry(at)
        if self.h["ust"]:
            _ptr, extra_off, user_off = UST[self.arch]
            return at + user_off, e["size"] * self.g - self.u16(at + extra_off)
        return at + self.g, e["size"] * self.g - e["unused"]

    def links(self, head: int) -> list[int]:
        out, cur = [], self.P(head)
        while cur != head:
            assert cur is not None and cur not in out and len(out) < 1000
            out.append(cur)
            cur = self.P(cur)
        chain = [head] + out + [head]
        for prev, node in zip(chain, chain[1:]):
            assert self.P(node + self.ptr) == prev
        return out


def _mini(p: Parsed, meta: dict, h: dict) -> Mini:
    return Mini(p, h, meta["os_build"])


def _rows(h: dict) -> list[dict]:
    return h["blocks"]


def _children(h: dict, parent: int) -> list[dict]:
    return [r for r in h["blocks"] if r["parent"] == parent and r["level"] == 1]


# --------------------------------------------------------------------------------------------
def test_lfh_scenarios_exist():
    assert WANT <= set(LFH_SCEN)


@pytest.mark.parametrize("name", LFH_SCEN)
def test_regeneration_is_byte_identical(name):
    b, exp = SCENARIOS[name]()
    data = b.to_bytes()
    exp = dict(exp, file_size=len(data))
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        assert f.read() == data, f"{name}.dmp is stale: run python tests/dumpbuilder/gen_fixtures.py"
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        assert f.read() == dump_json(exp), f"{name}.json is stale"
    assert len(data) < 300 * 1024


@pytest.mark.parametrize("name", LFH_SCEN)
def test_front_end_and_lfh_heap(name):
    p, meta = load(name)
    assert lfh_heaps(meta)
    for h in nt_heaps(meta):
        feh_off, type_off = FRONT_END[(h["arch"], h["epoch"])]
        m = _mini(p, meta, h)
        feh = m.P(h["address"] + feh_off)
        ftype = m.u8(h["address"] + type_off)
        if h["lfh"] is None:
            assert (feh, ftype) == (0, 0) == (h["front_end_heap"], h["front_end_heap_type"])
            continue
        L = h["lfh"]
        assert (feh, ftype) == (L["front_end_heap"], 2) == (h["front_end_heap"], h["front_end_heap_type"])
        zones_off, heap_off = LFH_HEAP[(h["arch"], _new(m.model))]
        assert m.P(feh + heap_off) == h["address"] == L["heap"]
        assert m.links(feh + zones_off) == L["zones"]
        assert L["model"] == m.model
        # The row holding the _LFH_HEAP: a virtual block on Windows 7, a back-end block otherwise.
        row = next(r for r in _rows(h) if r["address"] == L["lfh_heap_row"])
        assert row["kind"] == "lfh_heap" and row["level"] == 0 and not row["is_allocation"]
        assert row["user_address"] == feh
        assert row["user_address"] <= feh < row["user_address"] + row["user_size"]
        assert [r["address"] for r in _rows(h) if r["kind"] == "lfh_heap"] == [row["address"]]
        if m.model == "win7":
            v = next(v for v in h["virtual_blocks"] if v["header_address"] == row["address"])
            assert v["user_address"] == feh
            e = m.entry(row["address"])
            assert e["flags"] == 0x09
        else:
            e = m.entry(row["address"])
            assert e["flags"] == 0x01 and m.backend_user(row["address"]) == (feh, row["user_size"])
        if m.model == "win81":
            assert isinstance(L["key"], int) and 0 < L["key"] < 1 << 32
        else:
            assert L["key"] is None


@pytest.mark.parametrize("name", LFH_SCEN)
def test_zones_and_descriptors(name):
    p, meta = load(name)
    for h in lfh_heaps(meta):
        m = _mini(p, meta, h)
        L = h["lfh"]
        arch, model = h["arch"], m.model
        zkind = "win81" if model == "win81" else "old"
        a_off, limit_off, first_off = ZONE[(arch, zkind)]
        ub_off, ae_off, bs_off, fl_off, bc_off, ss_size = SUBSEG[(arch, _new(model))]
        descriptors = []
        rows = {r["address"]: r for r in _rows(h) if r["level"] == 0}
        for zd in L["zone_details"]:
            z = zd["address"]
            zrow = rows[zd["block"]]
            assert zrow["kind"] == "lfh_zone" and m.backend_user(zd["block"]) == (z, 0x3F0)
            # Windows 7 (and the builder's 8.0) zones carry VIRTUAL_ALLOC; 8.1+ ones do not.
            assert m.entry(zd["block"])["flags"] == (0x01 if model == "win81" else 0x09) == zrow["flags"]
            if model == "win81":
                cap = {"x64": 15, "x86": 24}[arch]      # doc 9.2 (x64) / builder's x86 choice
                assert zd["capacity"] == cap
                n = min(p.u32(z + a_off), cap)
                assert p.u32(z + a_off) == zd["next_index"]
            else:
                fp, limit = m.P(z + a_off), m.P(z + limit_off)
                assert (fp, limit) == (zd["free_pointer"], zd["limit"])
                assert (fp - z - first_off) % ss_size == 0 and fp <= limit <= z + 0x3F0
                n = (fp - z - first_off) // ss_size
            assert n == zd["used"]
            descriptors += [z + first_off + i * ss_size for i in range(n)]
        assert descriptors == [s["address"] for s in L["subsegments"]]
        for s in L["subsegments"]:
            a = s["address"]
            ub = m.P(a + ub_off)
            assert ub == s["user_blocks"] and (ub == 0) == s["retired"]
            bs = m.u16(a + bs_off)
            assert bs != 0 and bs * m.g == s["block_size"]        # never ends a zone early
            assert m.u16(a + fl_off) == s["flags"]
            assert m.u16(a + bc_off) == s["block_count"]
            assert m.u16(a + ae_off) == s["free_count_field"]     # Depth / low u16
            assert s["busy_count"] + s["free_count_field"] == s["block_count"]
            if s["retired"]:
                assert s["container_address"] == 0 and s["busy_count"] == 0
                continue
            row = rows[s["container_address"]]
            assert row["kind"] == "lfh_container" and row["level"] == 0
            assert row["not_decoded"] == s["not_decoded"]
            e = m.entry(row["address"])
            assert e["flags"] == 0x09 == row["flags"]               # BUSY | VIRTUAL_ALLOC
            assert m.backend_user(row["address"]) == (ub, s["ub_size"])
        assert any(s["retired"] for s in L["subsegments"])


@pytest.mark.parametrize("name", LFH_SCEN)
def test_containers_and_blocks_from_bytes(name):
    p, meta = load(name)
    for h in lfh_heaps(meta):
        m = _mini(p, meta, h)
        L = h["lfh"]
        arch, model, ust = h["arch"], m.model, h["ust"]
        rows = {r["address"]: r for r in _rows(h) if r["level"] == 1}
        for s in L["subsegments"]:
            if s["retired"]:
                continue
            ub, a = s["user_blocks"], s["address"]
            if s["not_decoded"] == "not_captured":
                assert p.read(ub, 8) is None
                assert p.read(s["container_address"], HDR[arch]) is not None
                cont = next(r for r in h["blocks"] if r["address"] == s["container_address"])
                assert p.read(cont["address"] + cont["size"], HDR[arch]) is not None
                assert ub % 0x1000 == 0 and (cont["address"] + cont["size"]) % 0x1000 == 0
                assert _children(h, cont["address"]) == []
                continue
            assert m.P(ub) == a
            sig_off, sig_w = UD_SIG[(arch, model)]
            assert p.ptr(ub + sig_off, sig_w) == SIGNATURE
            bs = s["block_size_field"]
            stride, first, n = s["stride"], s["first"], s["block_count"]
            key = L["key"]
            # First / Stride.
            if model == "win7":
                assert first == UD_SIZEOF_WIN7[arch] and stride == bs * m.g
            elif model == "win80":
                assert m.u16(ub + UD_80_X64["first"]) == first
                assert m.u16(ub + UD_80_X64["stride"]) == stride == bs * m.g
            else:
                eo_off = UD_81[arch][0]
                eo = p.u32(ub + eo_off)
                dec = eo ^ (L["front_end_heap"] & 0xFFFFFFFF) ^ (ub & 0xFFFFFFFF) ^ key   # E1
                if s["not_decoded"] == "corrupt":
                    assert dec != first | stride << 16 and dec >> 16 != bs * m.g
                else:
                    assert (dec & 0xFFFF, dec >> 16) == (first, stride)
                if s["flags"] & 3:
                    r = (bs * 16 + 0x1000) & ~0xFFF                 # doc 9.4
                    assert stride == r + 0x1000
                    page = -(-(ub + 0x30 + 8 * -(-n // 64)) // 0x1000) * 0x1000
                    blk0 = page + r - bs * 16 - 0x10 if s["flags"] & 1 else page + 0x1000
                    assert ub + first == blk0                        # doc 9.6
                else:
                    assert stride == bs * m.g                        # E3
                    if arch == "x64":                                # E4
                        ubs = s["ub_size"]
                        assert first == ((((ubs - 0x40) // stride + 31) >> 3) + 0x40) & ~0xF
                        assert n == (ubs - first - 8) // stride
            if s["not_decoded"] is not None:
                assert _children(h, s["container_address"]) == []
                continue
            # Bitmap (8.0+): bits == busy, bits past the count set.
            busy_bits = None
            if model in ("win80", "win81"):
                if model == "win80":
                    bm, buf, data, w = UD_80_X64["bitmap"], UD_80_X64["buffer"], UD_80_X64["data"], 8
                else:
                    _eo, bm, buf, data = UD_81[arch]
                    w = 8 if arch == "x64" else 4
                assert p.ptr(ub + bm, w) == n and m.P(ub + buf) == ub + data
                words = -(-n // (8 * w))
                bits = int.from_bytes(p.read(ub + data, words * w), "little")
                assert bits >> n == (1 << (words * 8 * w - n)) - 1
                busy_bits = [bool(bits >> i & 1) for i in range(n)]
            busy_seen = 0
            for i in range(n):
                blk = ub + first + i * stride
                r = rows[blk]
                assert r["kind"] == "lfh_block" and r["parent"] == s["container_address"]
                assert r["size"] == bs * m.g and r["block_index"] == i and r["flags"] == 0
                grp = p.read(blk + GROUP[arch], 8)
                code, _b4, index, raw = struct.unpack("<IBHB", grp)
                assert raw == r["unused_raw"] and raw & 0x80
                busy = raw == 0xC2 if ust else (raw & 0x3F) != 0       # doc 9.7 / 11.3
                assert busy == r["busy"] == r["is_allocation"]
                if busy_bits is not None:
                    assert busy_bits[i] == busy
                if model == "win81":                                    # E2
                    hv = h["address"] & 0xFFFFFFFF
                    shift, off_shift = (4, 12) if arch == "x64" else (3, 13)
                    d = code ^ hv ^ key ^ ((blk >> shift) & 0xFFFFFFFF)
                    assert d & 0xFFFF == 0 and d >> off_shift == blk - ub
                    assert index == i
                if not busy:
                    assert raw == 0x80 and r["user_address"] == r["user_size"] == 0
                    assert r["unused_bytes"] == 0x80
                    continue
                busy_seen += 1
                size = bs * m.g
                if ust:
                    ptr_off, extra_off, user_off = UST[arch]
                    extra = m.u16(blk + extra_off)
                    assert (r["user_address"], r["user_size"]) == (blk + user_off, size - extra)
                    assert m.P(blk + ptr_off) == r["stack_trace_entry"]
                    assert extra == r["ust_extra"]
                else:
                    if raw == 0xBF:
                        assert r["overflow"]
                        real = (p.ptr(blk + size, 8) if arch == "x64"
                                else p.u32(blk + size - 4))
                    else:
                        assert not r["overflow"]
                        real = raw & 0x3F
                    assert (r["user_address"], r["user_size"]) == (blk + HDR[arch], size - real)
                assert r["unused_bytes"] == size - r["user_size"]
            assert busy_seen == s["busy_count"]


@pytest.mark.parametrize("name", LFH_SCEN)
def test_rows_tile_and_nest(name):
    _p, meta = load(name)
    for h in nt_heaps(meta):
        rows = _rows(h)
        assert [(r["address"], r["level"]) for r in rows] == sorted((r["address"], r["level"]) for r in rows)
        by_addr = {r["address"]: r for r in rows if r["level"] == 0}
        for i, r in enumerate(rows):
            assert {"parent", "level", "is_allocation", "not_decoded"} <= set(r)
            want_alloc = r["busy"] and r["kind"] in ("backend", "virtual", "lfh_block")
            assert r["is_allocation"] == want_alloc
            if r["level"] == 0:
                assert r["parent"] == 0
            else:
                assert r["level"] == 1 and by_addr[r["parent"]]["kind"] == "lfh_container"
                assert r["kind"] in ("overhead", "lfh_block")
            if r["not_decoded"] is not None:
                assert r["kind"] == "lfh_container"
                assert r["not_decoded"] in ("unsupported_build", "no_key", "corrupt",
                                            "not_captured", "orphan", "front_end_unreadable")
        # Pre-order: a container is immediately followed by its children, which tile it.
        for i, c in enumerate(rows):
            if c["kind"] != "lfh_container":
                continue
            kids = []
            for r in rows[i + 1:]:
                if r["level"] == 0:
                    break
                kids.append(r)
            assert kids == _children(h, c["address"])
            if c["not_decoded"] is not None:
                assert kids == []
                continue
            pos = c["address"]
            for k in kids:
                assert k["address"] == pos and k["size"] > 0
                pos += k["size"]
            assert pos == c["address"] + c["size"]
            assert kids[0]["kind"] == "overhead"
            for k in kids:
                if k["kind"] == "overhead":
                    assert not k["busy"] and k["user_size"] == k["user_address"] == 0
        total = sum(r["user_size"] for r in rows if r["is_allocation"])
        assert total == h["totals"]["busy_user_bytes_all"]
        if h["lfh"] is not None:
            lfh_busy = sum(r["user_size"] for r in rows if r["kind"] == "lfh_block" and r["busy"])
            assert lfh_busy == h["lfh"]["busy_user_bytes"]
            classes = {}
            for s in h["lfh"]["subsegments"]:
                if s["retired"] or s["not_decoded"]:
                    continue
                c = classes.setdefault(s["block_size"], [0, 0, 0, 0])
                c[0] += 1
                c[1] += s["block_count"]
                c[2] += s["busy_count"]
                c[3] += s["busy_user_bytes"]
            assert {c["block_size"]: [c["subsegments"], c["blocks"], c["busy"], c["busy_user_bytes"]]
                    for c in h["lfh"]["size_classes"]} == classes


# ---- what each scenario is for --------------------------------------------------------------
def _blocks_of(meta: dict) -> list[dict]:
    return [r for h in lfh_heaps(meta) for r in h["blocks"] if r["kind"] == "lfh_block"]


def test_scenarios_cover_the_brief():
    builds = {"lfh_win7_x86": 7601, "lfh_win7_x64": 7601, "lfh_win81_x86": 9600,
              "lfh_win81_x64": 9600, "lfh_win10_1607_x86": 14393, "lfh_win10_1607_x64": 14393,
              "lfh_win10_x86": 19041, "lfh_win10_x64": 19041, "lfh_win11_x64": 26100,
              "lfh_win8_x64": 9200}
    guard_seen = several_zones = 0
    for name in LFH_SCEN:
        _p, meta = load(name)
        if name in builds:
            assert meta["os_build"] == builds[name]
            assert meta["arch"] == name.rsplit("_", 1)[1]
        heaps = lfh_heaps(meta)
        subs = [s for h in heaps for s in h["lfh"]["subsegments"]]
        assert any(s["retired"] for s in subs), name
        if any(s["flags"] & 3 for s in subs):
            guard_seen += 1
        if any(len(h["lfh"]["zones"]) > 1 for h in heaps):
            several_zones += 1
        ust = meta["peb"]["nt_global_flag"] & 0x1000
        blocks = _blocks_of(meta)
        if model_of(meta["os_build"]) == "win81" and not ust:
            assert any(r["unused_raw"] == 0xBF for r in blocks), name
        if ust:
            assert all(h["ust"] for h in nt_heaps(meta))
            busy = [r for r in blocks if r["busy"]]
            assert busy and all(r["unused_raw"] == 0xC2 for r in busy)
            assert any(r["stack_trace_entry"] and r["frames"] for r in busy)
            assert any(not r["stack_trace_entry"] for r in busy)
        assert any(not r["busy"] for r in blocks) or name == "lfh_win8_x64"
    assert guard_seen >= 1 and several_zones >= 1
    _p, meta = load("lfh_win11_x64")
    z = meta["heaps"][0]["lfh"]["zone_details"][0]
    assert z["next_index"] > z["capacity"] == z["used"] == 15
    assert {s["flags"] for s in meta["heaps"][0]["lfh"]["subsegments"]} >= {1, 2}


def test_ust_scenarios():
    for name, arch in (("lfh_ust_win10_x64", "x64"), ("lfh_ust_win7_x86", "x86")):
        p, meta = load(name)
        assert meta["peb"]["nt_global_flag"] & 0x1000 and meta["arch"] == arch
        idx, depth, bt = {"x86": (0x08, 0x0A, 0x0C), "x64": (0x0C, 0x0E, 0x10)}[arch]   # doc 11.1
        ptr = 4 if arch == "x86" else 8
        for r in _blocks_of(meta):
            t = r["stack_trace_entry"]
            if not t:
                assert r["frames"] == []
                continue
            n = p.ptr(t + idx, 2)
            assert n == p.ptr(t + depth, 2) == len(r["frames"])
            assert [p.ptr(t + bt + i * ptr, ptr) for i in range(n)] == r["frames"]


def test_wow64_keys_differ():
    _p, meta = load("lfh_wow64_win10")
    assert meta["is_wow64"]
    k64 = [h["lfh"]["key"] for h in meta["heaps"] if h["lfh"]]
    k32 = [h["lfh"]["key"] for h in meta["heaps32"] if h["lfh"]]
    assert k64 == [meta["lfh_keys"]["native"]] and k32 == [meta["lfh_keys"]["wow64"]]
    assert k64[0] != k32[0]
    assert [h["arch"] for h in meta["heaps"]] == ["x64"]
    assert [h["arch"] for h in meta["heaps32"]] == ["x86", "x86"]


def test_shared_process_key():
    _p, meta = load("lfh_win10_x64")
    keys = {h["lfh"]["key"] for h in lfh_heaps(meta)}
    assert len(lfh_heaps(meta)) == 2 and keys == {meta["lfh_keys"]["native"]}


def test_win8_not_decodable():
    _p, meta = load("lfh_win8_x64")
    (h,) = lfh_heaps(meta)
    assert h["lfh"]["key"] is None and h["lfh"]["size_classes"] == []
    conts = [r for r in h["blocks"] if r["kind"] == "lfh_container"]
    assert len(conts) >= 3
    assert all(r["not_decoded"] == "unsupported_build" for r in conts)
    assert not any(r["level"] for r in h["blocks"])
    assert h["epoch"] == "win8" and meta["os_version"] == "6.2.9200"


def test_mis_keyed():
    p, meta = load("lfh_mis_keyed_x64")
    (h,) = lfh_heaps(meta)
    conts = [r for r in h["blocks"] if r["kind"] == "lfh_container"]
    assert len(conts) >= 4
    bad = [r for r in conts if r["not_decoded"]]
    assert [r["not_decoded"] for r in bad] == ["corrupt"]
    assert all(r["not_decoded"] is None for r in conts if r is not bad[0])
    assert [c["kind"] for c in meta["corruption"]] == ["lfh_bad_encoding"]
    assert meta["corruption"][0]["container"] == bad[0]["address"]
    assert meta["corruption"][0]["address"] == bad[0]["user_address"]
    assert h["lfh"]["key"] == meta["lfh_keys"]["native"]
    # The bad container does decode with some other key: E1 and E2 agree on one.
    s = next(s for s in h["lfh"]["subsegments"] if s["container_address"] == bad[0]["address"])
    ub = s["user_blocks"]
    eo = p.u32(ub + 0x18)
    k1 = eo ^ (h["lfh"]["front_end_heap"] & 0xFFFFFFFF) ^ (ub & 0xFFFFFFFF) ^ (s["first"] | s["stride"] << 16)
    blk = ub + s["first"]
    code = p.u32(blk + 8)
    k2 = code ^ (h["address"] & 0xFFFFFFFF) ^ ((blk >> 4) & 0xFFFFFFFF) ^ (s["first"] << 12)
    assert k1 == k2 != h["lfh"]["key"]


def test_ub_not_captured():
    p, meta = load("lfh_ub_not_captured_x64")
    (h,) = lfh_heaps(meta)
    conts = [r for r in h["blocks"] if r["kind"] == "lfh_container"]
    nc = [r for r in conts if r["not_decoded"]]
    assert [r["not_decoded"] for r in nc] == ["not_captured"] and len(conts) >= 3
    r = nc[0]
    regions = [g for g in meta["regions"] if g["base"] <= r["address"] < g["base"] + g["size"]]
    assert regions and regions[0]["state"] == 0x1000
    assert regions[0]["captured"] < regions[0]["size"]
    (c,) = meta["corruption"]
    assert (c["kind"], c["address"], c["container"], c["size"]) == (
        "not_captured", r["user_address"], r["address"], 0x2000)
    assert h["walk"]["blocks"] == [b["address"] for b in h["blocks"]
                                   if b["level"] == 0 and b["segment"] is not None]
