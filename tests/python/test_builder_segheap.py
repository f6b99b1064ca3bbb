"""Checks of the segment-heap part of the test-dump builder (tests/dumpbuilder/segheap*.py)
without the project's reader: the bytes of each segheap_* fixture say what its JSON says.

The parse below is a small struct-based reading of windows-heap-layouts.md ("the doc"),
sections 10.1-10.6, typed again here rather than imported from tests/dumpbuilder.  Where the
doc gives no offset for a build (the _HEAP_SEG_CONTEXT fields of 1709/1803, SegmentCount and
FreePageRanges of 1809), the offsets come from the fixture's own ``layout`` table and the test
says so; everything else is compared against that table."""

from __future__ import annotations

import bisect
import json
import os
import struct
import sys

import pytest

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(TESTS, "fixtures")
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from dumpbuilder.scenarios import SCENARIOS  # noqa: E402

SEG_SCEN = sorted(n for n in SCENARIOS if n.startswith("segheap_"))
PAGE = 0x1000
M64 = (1 << 64) - 1


# --------------------------------------------------------------- mini reader
class Dump:
    """Memory of a minidump file: Memory64List and MemoryList ranges, joined on reads."""

    def __init__(self, data: bytes):
        self.data = data
        _sig, _ver, n, dir_rva = struct.unpack_from("<IIII", data, 0)
        ranges = []
        for i in range(n):
            stype, _size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
            if stype == 9:
                count, base = struct.unpack_from("<QQ", data, rva)
                off = base
                for k in range(count):
                    start, size = struct.unpack_from("<QQ", data, rva + 16 + 16 * k)
                    ranges.append((start, size, off))
                    off += size
            elif stype == 5:
                (count,) = struct.unpack_from("<I", data, rva)
                for k in range(count):
                    start, size, off = struct.unpack_from("<QII", data, rva + 4 + 16 * k)
                    ranges.append((start, size, off))
            elif stype == 16:
                hsize, esize, count = struct.unpack_from("<IIQ", data, rva)
                self.regions = []
                for k in range(count):
                    base, _ab, _ap, _x, rsize, state, _pr, _ty, _y = struct.unpack_from(
                        "<QQIIQIIII", data, rva + hsize + esize * k)
                    self.regions.append((base, rsize, state))
        ranges.sort()
        self.ranges = ranges
        self.starts = [r[0] for r in ranges]

    def read(self, address: int, size: int) -> bytes | None:
        out = bytearray()
        pos, end = address, address + size
        while pos < end:
            i = bisect.bisect_right(self.starts, pos) - 1
            if i < 0:
                return None
            start, rsize, off = self.ranges[i]
            if not start <= pos < start + rsize:
                return None
            n = min(end, start + rsize) - pos
            out += self.data[off + pos - start:off + pos - start + n]
            pos += n
        return bytes(out)

    def q(self, a: int) -> int | None:
        b = self.read(a, 8)
        return None if b is None else int.from_bytes(b, "little")

    def u32(self, a: int) -> int:
        return struct.unpack("<I", self.read(a, 4))[0]

    def u16(self, a: int) -> int:
        return struct.unpack("<H", self.read(a, 2))[0]

    def u8(self, a: int) -> int:
        return self.read(a, 1)[0]

    def state_of(self, address: int) -> int | None:
        for base, size, state in self.regions:
            if base <= address < base + size:
                return state
        return None


_CACHE: dict[str, tuple[Dump, dict]] = {}


def load(name: str) -> tuple[Dump, dict]:
    if name not in _CACHE:
        with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
            data = f.read()
        with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
            meta = json.load(f)
        _CACHE[name] = (Dump(data), meta)
    return _CACHE[name]


def seg_heaps(meta: dict, walked: bool | None = True) -> list[dict]:
    return [h for h in meta["heaps"] if h["type"] == "segment"
            and (walked is None or h["walked"] == walked)]


# --------------------------------------------------------------- the doc, typed again
# doc 10.1 first table: LargeAllocMetadata, SegContexts, stride, VsContext, LfhContext.
SEGMENT_HEAP = {
    "win10_1709": (0x50, 0x70, 0x68, 0x168, 0x1E0),
    "win10_1803": (0x50, 0x70, 0x78, 0x188, 0x200),
    "win10_1809": (0x88, 0xA8, 0x98, 0x220, 0x298),
    "win10_1903": (0x88, 0xA8, 0x98, 0x220, 0x2A0),
    "win10_2004": (0x48, 0x100, 0xC0, 0x280, 0x340),
    "win11_21h2_23h2": (0x48, 0x140, 0xC0, 0x2C0, 0x380),
    "win11_24h2": (0x48, 0x140, 0xC0, 0x2C0, 0x340),
}
# doc 10.1 second table: Heap, SegmentListHead, SegmentCount, FreePageRanges, UnitShift,
# FirstDescriptorIndex, SegmentMask, MaxAllocationSize, LfhContext ptr, VsContext ptr.
# None = the doc gives no offset for this row (then the fixture's layout table is used).
_CTX_NEW = dict(heap=0x38, list=0x48, count=0x58, free=0x60, unit_shift=0x08, fdi=0x0A,
                mask=0x00, max=0x10, lfhp=0x18, vsp=0x20)
SEG_CONTEXT = {
    "win10_1809": dict(heap=0x90, list=0x20, count=None, free=None, unit_shift=0x08, fdi=0x0A,
                       mask=None, max=None, lfhp=None, vsp=None),
    "win10_2004": _CTX_NEW, "win11_21h2_23h2": _CTX_NEW, "win11_24h2": _CTX_NEW,
}
PAGE_SEGMENT_C = {"win11_24h2": 0}           # doc 10.2; every other row 0xA2E64EADA2E64EAD
VS_SIGNATURE_AT = {"win11_24h2": 0x24}       # doc 10.3; 0x22 through 23H2
UNIT_OFFSET_AT = {"win11_24h2": 0x1A}        # doc 10.2; 0x1f (shared with UnitSize) before
# doc 10.3 / 10.6 S4 (offset of BackendCtx, callback offsets, flag offset, flag width)
VS_CONTEXT = {
    "win10_2004": (0x80, (0x88, 0x90, 0x98, 0xA0, 0xA8), 0xB0, 4, 0x20),
    "win11_21h2_23h2": (0x80, (0x88, 0x90, 0x98, 0xA0, 0xA8), 0xB0, 4, 0x20),
    "win11_24h2": (0x08, (0x10, 0x18, 0x20, 0x28, 0x30, 0x38), 0x04, 1, None),
}
NEW_LFH = {"win11_24h2"}                     # doc 10.4: bitmap +0x40 u64x32, (u32)(S >> 12), 0x3FF


def ctx_offsets(h: dict) -> dict:
    row = h["build_row"]
    lay = h["layout"]["seg_context"]
    from_json = dict(heap=lay["heap"], list=lay["segment_list_head"], count=lay["segment_count"],
                     free=lay["free_page_ranges"], unit_shift=lay["unit_shift"],
                     fdi=lay["first_descriptor_index"], mask=lay["segment_mask"],
                     max=lay["max_allocation_size"], lfhp=lay["lfh_context"], vsp=lay["vs_context"])
    typed = SEG_CONTEXT.get(row)
    if typed is None:        # 1709 / 1803: the doc has no offsets; BUILDER_GUESS in the JSON
        assert "BUILDER_GUESS" in h["layout"]["status"]["seg_context.*"]
        return from_json
    out = {}
    for k, v in typed.items():
        if v is None:
            out[k] = from_json[k]
        else:
            assert from_json[k] == v, (row, k)
            out[k] = v
    return out


def ctx_address(h: dict, i: int) -> int:
    _l, sc, stride, _v, _f = SEGMENT_HEAP[h["build_row"]]
    return h["address"] + sc + i * stride


def rows_by_parent(h: dict) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in h["rows"]:
        if r["level"] == 1:
            out.setdefault(r["parent"], []).append(r)
    return out


def decode_tree(d: Dump, tree: int) -> tuple[list[int], bool, str]:
    """In-order nodes of an _RTL_RB_TREE (doc 10.5), honouring Encoded; stops at a loop."""
    enc = bool(d.q(tree + 8) & 1)
    raw = d.q(tree)
    root = (raw ^ tree) if (enc and raw) else raw
    seen: set[int] = set()
    out: list[int] = []
    end = "ok"

    def child(n: int, off: int) -> int:
        v = d.q(n + off)
        return (v ^ n) if (enc and v) else v

    def walk(n: int) -> None:
        nonlocal end
        if n == 0:
            return
        if n in seen:
            end = "loop"
            return
        seen.add(n)
        walk(child(n, 0))
        out.append(n)
        walk(child(n, 8))

    walk(root)
    return out, enc, end


def check_rb(d: Dump, tree: int) -> None:
    enc = bool(d.q(tree + 8) & 1)
    raw = d.q(tree)
    root = (raw ^ tree) if (enc and raw) else raw

    def node(n: int) -> tuple[int, int, int, int]:
        left, right, pv = d.q(n), d.q(n + 8), d.q(n + 0x10)
        dec = (lambda v: (v ^ n) if (enc and v) else v)
        p = pv & ~3
        return dec(left), dec(right), (p ^ n) if (enc and p) else p, pv & 1

    def bh(n: int, parent: int) -> int:
        if n == 0:
            return 1
        left, right, p, red = node(n)
        assert p == parent
        if red:
            assert not (left and node(left)[3]) and not (right and node(right)[3])
        a, b = bh(left, n), bh(right, n)
        assert a == b
        return a + (0 if red else 1)

    if root:
        assert node(root)[3] == 0
        bh(root, 0)
    mn = d.q(tree + 8)
    nodes, _, _ = decode_tree(d, tree)
    if enc:
        assert mn == (((nodes[0] ^ tree) | 1) if nodes else 1)
    else:
        assert mn == (nodes[0] if nodes else 0)


def list_walk(d: Dump, head: int) -> tuple[list[int], str]:
    seen, out = {head}, []
    cur = d.q(head)
    while True:
        if cur == head:
            return out, "head"
        if cur in seen:
            return out, "loop"
        seen.add(cur)
        out.append(cur)
        cur = d.q(cur)


# --------------------------------------------------------------- scenarios / regeneration
def test_segheap_scenarios_exist():
    want = {"segheap_win10_1709_x64", "segheap_win10_1803_x64", "segheap_win10_1809_x64",
            "segheap_win10_2004_x64", "segheap_win11_23h2_x64", "segheap_win11_24h2_x64",
            "segheap_damaged_x64", "segheap_unknown_build_x64", "segheap_x86",
            "segheap_symbol_keys_x64", "segheap_symbol_keys_wrong_x64"}
    assert want == set(SEG_SCEN)


@pytest.mark.parametrize("name", SEG_SCEN)
def test_regeneration_is_byte_identical(name):
    b1, e1 = SCENARIOS[name]()
    b2, e2 = SCENARIOS[name]()
    data = b1.to_bytes()
    assert data == b2.to_bytes()
    assert e1 == e2
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        assert f.read() == data, "fixture out of date: run tests/dumpbuilder/gen_fixtures.py"
    e1 = dict(e1, file_size=len(data))
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(e1))
    assert len(data) < 300 * 1024


@pytest.mark.parametrize("name", SEG_SCEN)
def test_nt_and_segment_heaps_side_by_side(name):
    d, meta = load(name)
    kinds = [h["type"] for h in meta["heaps"]]
    assert kinds == ["segment", "nt"]
    assert [h["address"] for h in meta["heaps"]] == meta["peb"]["heaps"]
    assert meta["peb"]["process_heap"] == meta["heaps"][0]["address"]
    h = meta["heaps"][0]
    off = 0x08 if h["arch"] == "x86" else 0x10
    assert d.u32(h["address"] + off) == 0xDDEEDDEE
    nt = meta["heaps"][1]
    assert d.u32(nt["address"] + (0x08 if nt["arch"] == "x86" else 0x10)) == 0xFFEEFFEE


# --------------------------------------------------------------- contexts and segments
@pytest.mark.parametrize("name", SEG_SCEN)
def test_contexts_segments_and_heap_key(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        row = h["build_row"]
        lt, sc, stride, vs, lfh = SEGMENT_HEAP[row]
        lay = h["layout"]
        assert (lay["large_tree"], lay["seg_contexts"], lay["seg_context_stride"], lay["vs_context"],
                lay["lfh_context"]) == (lt, sc, stride, vs, lfh)
        assert h["build"] in lay["builds"]
        C = PAGE_SEGMENT_C.get(row, 0xA2E64EADA2E64EAD)
        assert h["page_segment_constant"] == C
        o = ctx_offsets(h)
        for i, want in enumerate(h["seg_contexts"]):
            ca = ctx_address(h, i)
            assert ca == want["address"]
            assert d.q(ca + o["heap"]) == h["address"]                      # S2 back-pointer
            assert d.u8(ca + o["unit_shift"]) == want["unit_shift"] == (12, 16)[i]
            assert d.u8(ca + o["fdi"]) == want["first_descriptor_index"] == (2, 1)[i]
            assert d.q(ca + o["mask"]) == want["segment_mask"] == M64 & ~(want["segment_size"] - 1)
            assert d.u32(ca + o["max"]) == want["max_allocation_size"] == (0x7F000, 0x7F0000)[i]
            if o["lfhp"] is not None:
                assert d.q(ca + o["lfhp"]) == h["address"] + lfh
                assert d.q(ca + o["vsp"]) == h["address"] + vs
            head = ca + o["list"]
            assert head == want["segment_list_head"]
            segs, end = list_walk(d, head)
            loops = [c for c in h["corruption"] if c["kind"] == "list_loop"
                     and c.get("list") == f"SegContexts[{i}].SegmentListHead"]
            assert end == ("loop" if loops else "head")
            assert segs == want["segments"]
            assert d.q(ca + o["count"]) == want["segment_count"] == len(segs)
            for seg in segs:
                assert seg & want["segment_mask"] == seg
                key = d.q(seg + 0x10) ^ seg ^ ca ^ C                        # S1
                assert key == h["heap_key"], hex(seg)
            # Blinks (plain LIST_ENTRY) point back unless a loop was injected.
            if not loops:
                chain = [head] + segs + [head]
                for a, b in zip(chain, chain[1:]):
                    assert d.q(b + 8) == a


@pytest.mark.parametrize("name", SEG_SCEN)
def test_descriptors_match_rows(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        uo_at = UNIT_OFFSET_AT.get(h["build_row"], 0x1F)
        for ctx in h["seg_contexts"]:
            unit, shift = ctx["unit_size"], ctx["unit_shift"]
            for seg in ctx["segments"]:
                top = [r for r in h["rows"] if r["level"] == 0 and r["segment"] == seg]
                assert top[0]["kind"] == "segment_header"
                assert top[0]["size"] == ctx["first_descriptor_index"] * unit
                for r in top[1:]:
                    idx = (r["address"] - seg) >> shift
                    desc = seg + 0x20 * idx
                    flags, usize = d.u8(desc + 0x18), d.u8(desc + 0x1F)
                    units = r["size"] // unit
                    assert flags & 0x2, "first descriptor"
                    if r["kind"] == "free_range":
                        assert not flags & 1
                    else:
                        assert flags & 1
                        assert d.u32(desc) == 0xCCDDCCDD
                    kind = {"page_range": lambda f: f & 0xC < 8,
                            "free_range": lambda f: f & 0xC < 8,
                            "vs_subsegment": lambda f: f & 0xC == 0xC,
                            "seg_lfh_subsegment": lambda f: f & 0xC == 8,
                            "unparsed": lambda f: True}[r["kind"]]
                    assert kind(flags), (r["kind"], flags)
                    if r["kind"] == "unparsed":
                        assert usize == 0 and r["corrupt"] == "zero_size"
                    else:
                        assert usize == units
                    if r["kind"] == "page_range":
                        assert d.u32(desc + 4) == r["unused_bytes"] == r["size"] - r["user_size"]
                        assert r["user_address"] == r["address"]
                    for k in range(1, units):
                        dk = desc + 0x20 * k
                        assert not d.u8(dk + 0x18) & 0x2
                        assert d.u8(dk + uo_at) == k


@pytest.mark.parametrize("name", SEG_SCEN)
def test_free_page_range_trees(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        o = ctx_offsets(h)
        for i, ctx in enumerate(h["seg_contexts"]):
            tree = ctx_address(h, i) + o["free"]
            assert tree == ctx["free_page_ranges"]["address"]
            nodes, enc, end = decode_tree(d, tree)
            assert end == "ok" and enc == ctx["free_page_ranges"]["encoded"]
            assert nodes == ctx["free_page_ranges"]["descriptors"]
            check_rb(d, tree)
            free_rows = [r for r in h["rows"] if r["kind"] == "free_range"
                         and r["segment"] in ctx["segments"]]
            want = sorted(r["segment"] + 0x20 * ((r["address"] - r["segment"]) >> ctx["unit_shift"])
                          for r in free_rows)
            assert sorted(nodes) == want


# --------------------------------------------------------------- rows
@pytest.mark.parametrize("name", SEG_SCEN)
def test_rows_tile_segments_and_containers(name):
    _d, meta = load(name)
    for h in seg_heaps(meta, walked=None):
        rows = h["rows"]
        if not h["walked"]:
            assert rows == []
            continue
        keys = {"address", "size", "kind", "busy", "user_address", "user_size", "unused_bytes",
                "flags", "segment", "parent", "level", "is_allocation", "not_decoded",
                "stack_trace_entry", "corrupt"}
        for r in rows:
            assert set(r) == keys
            assert r["flags"] == 0 and r["stack_trace_entry"] == 0 and r["not_decoded"] is None
            assert r["is_allocation"] == (r["busy"] and r["kind"] in (
                "page_range", "vs_block", "seg_lfh_block", "large_block"))
            if r["is_allocation"]:
                assert r["unused_bytes"] == r["size"] - r["user_size"]
                assert r["address"] <= r["user_address"]
                assert r["user_address"] + r["user_size"] <= r["address"] + r["size"]
            else:
                assert (r["user_address"], r["user_size"], r["unused_bytes"]) == (0, 0, 0)
        # Order: contexts 0 then 1, segments in list order, ascending inside; containers
        # followed by their children; large blocks last by address.
        seg_order = [s for c in h["seg_contexts"] for s in c["segments"]]
        top = [r for r in rows if r["level"] == 0]
        segs_seen = [r["segment"] for r in top if r["kind"] == "segment_header"]
        assert segs_seen == seg_order
        sizes = {s: c["segment_size"] for c in h["seg_contexts"] for s in c["segments"]}
        for seg in seg_order:
            pos = seg
            for r in [r for r in top if r["segment"] == seg]:
                assert r["address"] == pos
                pos += r["size"]
            assert pos == seg + sizes[seg]
        large = [r for r in top if r["kind"] == "large_block"]
        assert top[-len(large):] == large and [r["address"] for r in large] == sorted(
            r["address"] for r in large)
        assert all(r["segment"] == 0 for r in large)
        kids = rows_by_parent(h)
        containers = {r["address"]: r for r in top if r["kind"] in ("vs_subsegment",
                                                                  "seg_lfh_subsegment")}
        assert set(kids) == set(containers)
        for i, r in enumerate(rows):
            if r["level"] == 0 and r["address"] in containers and r["kind"] != "overhead":
                ch = kids[r["address"]]
                assert rows[i + 1:i + 1 + len(ch)] == ch        # pre-order
                pos = r["address"]
                for c in ch:
                    assert c["address"] == pos and c["segment"] == r["segment"]
                    pos += c["size"]
                assert pos == r["address"] + r["size"]


@pytest.mark.parametrize("name", SEG_SCEN)
def test_vs_chunks_decode_and_chain(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        key = h["heap_key"]
        row = h["build_row"]
        sig_at = VS_SIGNATURE_AT.get(row, 0x22)
        vc = h["address"] + SEGMENT_HEAP[row][3]
        flag = False
        if row in VS_CONTEXT:
            _b, _c, foff, width, _l = VS_CONTEXT[row]
            flag = bool((d.u32(vc + foff) if width == 4 else d.u8(vc + foff)) & 1)
            assert flag == h["vs_context"]["page_align_flag"]["set"]
        kids = rows_by_parent(h)
        n_pa = 0
        for sub in [r for r in h["rows"] if r["kind"] == "vs_subsegment"]:
            S = sub["address"]
            size = d.u16(S + 0x20)
            sig = d.u16(S + sig_at)
            assert sig & 0x7FFF == (size ^ 0x2BED) & 0x7FFF
            end = S + 0x30 + size * 16
            assert end == S + sub["size"]
            ch = kids[S]
            assert ch[0]["kind"] == "overhead" and ch[0]["size"] == 0x30
            hdr, prev, i = S + 0x30, 0, 1
            while hdr < end:
                raw = d.read(hdr, 16)
                if raw is None:
                    assert ch[i]["kind"] == "unparsed" and ch[i]["address"] == hdr
                    assert ch[i]["corrupt"] == "not_captured" and i == len(ch) - 1
                    assert ch[i]["address"] + ch[i]["size"] == end
                    break
                q, bits = struct.unpack_from("<QI", raw)
                sizes = q ^ hdr ^ key                                      # S3
                unsafe, uprev, alloc = (sizes >> 16) & 0xFFFF, (sizes >> 32) & 0xFFFF, (sizes >> 48) & 0xFF
                assert uprev == prev and unsafe > 0
                spo = (bits & 0xFF) ^ (hdr & 0xFF) ^ (key & 0xFF)
                assert spo == (hdr - S) >> 12
                r = ch[i]
                assert (r["kind"], r["address"], r["size"], r["busy"]) == ("vs_block", hdr, unsafe * 16,
                                                                          bool(alloc))
                if alloc:
                    pa = flag and (hdr + 0x20) % PAGE == 0
                    n_pa += pa
                    user = hdr + (0x20 if pa else 0x10)
                    area = unsafe * 16 - (user - hdr)
                    unused = 0
                    if bits & 0x100:
                        t = d.u16(hdr + unsafe * 16 - 2)
                        unused = 1 if t & 0x8000 else t & 0x1FFF
                        assert not t & 0x4000
                    assert (r["user_address"], r["user_size"]) == (user, area - unused)
                prev = unsafe
                hdr += unsafe * 16
                i += 1
            else:
                assert hdr == end and i == len(ch)
        if flag:
            assert n_pa >= 1, "a page-aligned-variant chunk where the flag is set"


@pytest.mark.parametrize("name", SEG_SCEN)
def test_lfh_subsegments_decode(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        new = h["build_row"] in NEW_LFH
        bm_at, mask = (0x40, 0x3FF) if new else (0x30, 0x3FFF)
        lk = h["lfh_key"]
        kids = rows_by_parent(h)
        subs = [r for r in h["rows"] if r["kind"] == "seg_lfh_subsegment"]
        assert len(subs) >= 2
        for sub in subs:
            S = sub["address"]
            shift = ((S >> 12) & 0xFFFFFFFF) if new else ((S & 0xFFFFFFFF) >> 12)
            v = d.u32(S + 0x28) ^ lk ^ shift                               # L1
            bs, fbo = v & 0xFFFF, v >> 16
            bc, fc = d.u16(S + 0x22), d.u16(S + 0x20)
            ch = kids[S]
            assert ch[0] == dict(ch[0], kind="overhead", address=S, size=fbo)
            blocks = ch[1:1 + bc]
            assert len(blocks) == bc and all(b["kind"] == "seg_lfh_block" for b in blocks)
            assert fbo >= bm_at + 8 * -(-bc // 32) and fbo % 16 == 0            # L2
            assert fbo + bs * bc <= sub["size"]
            if new and bs & (bs - 1) == 0:
                assert fbo % bs == 0 and fbo + bs * bc == sub["size"]
            tail = ch[1 + bc:]
            if fbo + bs * bc < sub["size"]:
                assert [t["kind"] for t in tail] == ["overhead"]
            else:
                assert tail == []
            words = struct.unpack_from(f"<{-(-bc // 32)}Q", d.read(S + bm_at, 8 * -(-bc // 32)))
            free = 0
            for i, b in enumerate(blocks):
                if new:
                    w = words[i // 32]
                    busy, trailer = (w >> (i % 32)) & 1, (w >> (32 + i % 32)) & 1
                else:
                    w = words[i // 32]
                    busy, trailer = (w >> (2 * (i % 32))) & 1, (w >> (2 * (i % 32) + 1)) & 1
                at = S + fbo + i * bs
                assert (b["address"], b["size"], b["busy"]) == (at, bs, bool(busy))
                free += not busy
                if busy:
                    unused = 0
                    if trailer:
                        t = d.u16(at + bs - 2)
                        unused = 1 if t & 0x8000 else t & mask
                    assert (b["user_address"], b["user_size"]) == (at, bs - unused)
                else:
                    assert not trailer
            assert fc == free
            if new and bc % 32:                      # bits past BlockCount pre-set (24H2)
                past = (0xFFFFFFFF << (bc % 32)) & 0xFFFFFFFF
                assert words[-1] & past == past


@pytest.mark.parametrize("name", [n for n in SEG_SCEN if "x86" not in n and "unknown" not in n])
def test_lfh_key_brute_force_is_unique(name):
    """doc 10.6 steps 6-9 (the derived procedure) find exactly the JSON's LfhKey."""
    d, meta = load(name)
    for h in seg_heaps(meta):
        new = h["build_row"] in NEW_LFH
        B = 0x40 if new else 0x30
        cands = None
        subs = [r for r in h["rows"] if r["kind"] == "seg_lfh_subsegment"]
        for sub in subs:
            S, R = sub["address"], sub["size"]
            bc, E = d.u16(S + 0x22), d.u32(S + 0x28)
            shift = ((S >> 12) & 0xFFFFFFFF) if new else ((S & 0xFFFFFFFF) >> 12)
            lo = (B + 8 * -(-bc // 32) + 15) // 16 * 16
            mine = set()
            for bs in range(16, 0x4001, 16):
                for fbo in range(lo, R - bs * bc + 1, 16):
                    mine.add(E ^ shift ^ (fbo << 16 | bs))
            cands = mine if cands is None else cands & mine
        survivors = []
        for k in sorted(cands):
            ok = True
            for sub in subs:
                S = sub["address"]
                bc = d.u16(S + 0x22)
                shift = ((S >> 12) & 0xFFFFFFFF) if new else ((S & 0xFFFFFFFF) >> 12)
                v = d.u32(S + 0x28) ^ k ^ shift
                bs, fbo = v & 0xFFFF, v >> 16
                if d.u16(S + 0x20) > bc or fbo + bs * bc > sub["size"] or bs == 0:
                    ok = False
                    continue
                raw = d.read(S + B, 8 * -(-bc // 32))
                words = struct.unpack_from(f"<{-(-bc // 32)}Q", raw)
                for i in range(bc):
                    w = words[i // 32]
                    busy, trailer = (((w >> (i % 32)) & 1, (w >> (32 + i % 32)) & 1) if new else
                                     ((w >> (2 * (i % 32))) & 1, (w >> (2 * (i % 32) + 1)) & 1))
                    if not (busy and trailer):
                        continue
                    tb = d.read(S + fbo + i * bs + bs - 2, 2)
                    t = None if tb is None else struct.unpack("<H", tb)[0]
                    if t is None or (not t & 0xC000 and (t & (0x3FF if new else 0x3FFF)) >= bs):
                        ok = False
                        break
            if ok:
                survivors.append(k)
        assert h["lfh_key"] in survivors
        # Steps 6-9 alone may leave keys that differ only in FirstBlockOffset bits when the
        # subsegments have slack (a shifted FBO still fits).  The builder's FBO convention
        # (smallest FBO after the bitmap; 24H2 power-of-two BlockSize: rounded to BlockSize)
        # is the tie-break that leaves one key.
        def canonical(k: int) -> bool:
            for sub in subs:
                S = sub["address"]
                bc = d.u16(S + 0x22)
                shift = ((S >> 12) & 0xFFFFFFFF) if new else ((S & 0xFFFFFFFF) >> 12)
                v = d.u32(S + 0x28) ^ k ^ shift
                bs, fbo = v & 0xFFFF, v >> 16
                lo = (B + 8 * -(-bc // 32) + 15) // 16 * 16
                if new and bs & (bs - 1) == 0:
                    lo = -(-lo // bs) * bs
                if fbo != lo:
                    return False
            return True

        assert [k for k in survivors if canonical(k)] == [h["lfh_key"]]


@pytest.mark.parametrize("name", SEG_SCEN)
def test_large_blocks_and_tree(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        tree = h["address"] + SEGMENT_HEAP[h["build_row"]][0]
        nodes, enc, end = decode_tree(d, tree)
        assert enc == h["large_alloc_metadata"]["encoded"]
        loops = [c for c in h["corruption"] if c.get("list") == "LargeAllocMetadata"]
        assert end == ("loop" if loops else "ok")
        if not loops:
            check_rb(d, tree)
        rows = [r for r in h["rows"] if r["kind"] == "large_block"]
        got = []
        for n in nodes:
            va, bits = d.q(n + 0x18), d.q(n + 0x20)
            got.append((va & ~0xFFFF, (bits >> 12) * PAGE, (bits & ~0xFFF) - (va & 0xFFFF)))
        assert sorted(got) == [(r["address"], r["size"], r["user_size"]) for r in rows]
        lay = h["layout"]
        assert d.q(h["address"] + lay["large_reserved_pages"]) == \
            h["large_alloc_metadata"]["large_reserved_pages"]
        assert d.q(h["address"] + lay["large_committed_pages"]) == \
            sum(r["size"] for r in rows) // PAGE
        for r in rows:
            assert d.state_of(r["address"] + r["size"] - 1) == 0x1000
            assert d.read(r["address"], 16) is not None


@pytest.mark.parametrize("name", SEG_SCEN)
def test_vs_context_s4_and_subsegment_list(name):
    d, meta = load(name)
    mods = {m["name"].lower(): m for m in meta["modules"]}
    ntdll = mods["ntdll.dll"]
    for h in seg_heaps(meta):
        row = h["build_row"]
        vc = h["address"] + SEGMENT_HEAP[row][3]
        assert h["vs_context"]["address"] == vc
        if row not in VS_CONTEXT:
            assert not h["vs_context"]["layout_known"]
            continue
        back, cbs, _f, _w, lst = VS_CONTEXT[row]
        assert d.q(vc + back) ^ vc == ctx_address(h, 0)                   # S4, no key
        fns = [(d.q(vc + o) ^ vc ^ h["heap_key"]) if d.q(vc + o) else 0 for o in cbs]
        assert any(fns)
        for f in fns:
            assert f == 0 or ntdll["base"] <= f < ntdll["base"] + ntdll["size"]
        assert fns == [c["function"] for c in h["vs_context"]["callbacks"]]
        subs = [r["address"] for r in h["rows"] if r["kind"] == "vs_subsegment"]
        if lst is None:
            assert h["vs_context"]["subsegment_list"] is None
            continue
        head = vc + lst
        out, cur, prev = [], d.q(head) ^ head, head
        while cur != head:
            assert d.q(cur + 8) ^ cur == prev
            out.append(cur)
            prev, cur = cur, d.q(cur) ^ cur
        assert d.q(head + 8) ^ head == prev
        assert out == subs


@pytest.mark.parametrize("name", SEG_SCEN)
def test_summary_adds_up(name):
    _d, meta = load(name)
    for h in seg_heaps(meta):
        rows, sm = h["rows"], h["summary"]
        alloc = [r for r in rows if r["is_allocation"]]
        assert sm["busy_user_bytes_all"] == sum(r["user_size"] for r in alloc)
        assert sm["allocation_count"] == len(alloc)
        parts = sm["vs"]["user_bytes"] + sm["lfh"]["user_bytes"] + sm["page_range"]["user_bytes"] + \
            sm["large"]["user_bytes"]
        assert parts == sm["busy_user_bytes_all"]
        assert sm["vs"]["count"] + sm["lfh"]["count"] + sm["page_range"]["count"] + \
            sm["large"]["count"] == len(alloc)
        for k in ("vs", "lfh", "page_range", "large"):
            assert sm[k]["count"] > 0
        for c, ctx in zip(sm["seg_contexts"], h["seg_contexts"]):
            assert c["reserved_bytes"] == ctx["reserved"] == len(ctx["segments"]) * ctx["segment_size"]
            assert c["committed_bytes"] == ctx["committed"]
        assert sm["reserved_bytes"] == sum(c["reserved_bytes"] for c in sm["seg_contexts"]) + \
            sm["large"]["reserved_bytes"]


@pytest.mark.parametrize("name", SEG_SCEN)
def test_committed_bytes_match_regions(name):
    d, meta = load(name)
    for h in seg_heaps(meta):
        for ctx in h["seg_contexts"]:
            total = 0
            for seg in ctx["segments"]:
                for base, size, state in d.regions:
                    lo, hi = max(base, seg), min(base + size, seg + ctx["segment_size"])
                    if hi > lo and state == 0x1000:
                        total += hi - lo
            assert total == ctx["committed"]


# --------------------------------------------------------------- special scenarios
def test_walked_scenarios_cover_every_row_kind():
    for name in SEG_SCEN:
        if name.startswith("segheap_win"):
            _d, meta = load(name)
            kinds = {r["kind"] for r in seg_heaps(meta)[0]["rows"]}
            assert kinds == {"segment_header", "page_range", "free_range", "vs_subsegment",
                             "vs_block", "seg_lfh_subsegment", "seg_lfh_block", "overhead",
                             "large_block"}, name


def test_encoded_and_plain_trees_both_present():
    large, free = set(), set()
    for name in SEG_SCEN:
        _d, meta = load(name)
        for h in seg_heaps(meta):
            large.add(h["large_alloc_metadata"]["encoded"])
            free |= {c["free_page_ranges"]["encoded"] for c in h["seg_contexts"]}
    assert large == {True, False} and free == {True, False}


def test_not_walked_heaps():
    d, meta = load("segheap_x86")
    h = meta["heaps"][0]
    assert (h["arch"], h["walked"], h["status"], h["reason_code"]) == ("x86", False, "not_walked",
                                                                        "x86_not_supported")
    assert "not supported for x86" in h["not_walked_reason"]
    assert d.u32(h["address"] + 8) == 0xDDEEDDEE
    assert meta["heaps"][1]["arch"] == "x86" and meta["arch"] == "x86"
    d, meta = load("segheap_unknown_build_x64")
    h = meta["heaps"][0]
    assert meta["os_build"] == h["build"] == 14393
    assert (h["walked"], h["status"], h["reason_code"]) == (False, "not_walked", "no_layout_row")
    assert d.u32(h["address"] + 0x10) == 0xDDEEDDEE
    # The 1607 form: one list at +0x60 with one segment; nothing at the 1709+ SegContexts.
    segs, end = list_walk(d, h["address"] + 0x60)
    assert end == "head" and segs == [h["form_1607"]["segment"]]
    for row, (_l, sc, stride, _v, _f) in SEGMENT_HEAP.items():
        assert d.q(h["address"] + sc + 0x38) in (0, None)   # no Heap back-pointer anywhere


def test_damaged_records_and_rows():
    d, meta = load("segheap_damaged_x64")
    h = seg_heaps(meta)[0]
    kinds = sorted(c["kind"] for c in h["corruption"])
    assert kinds == ["list_loop", "list_loop", "not_captured", "zero_size"]
    assert sorted(c["kind"] for c in meta["corruption"]) == kinds
    by = {c["kind"]: c for c in h["corruption"]}
    miss = by["not_captured"]
    assert d.read(miss["address"], 1) is None and d.state_of(miss["address"]) == 0x1000
    unparsed = [r for r in h["rows"] if r["kind"] == "unparsed"]
    assert sorted((r["corrupt"], r["level"]) for r in unparsed) == [("not_captured", 1),
                                                                    ("zero_size", 0)]
    nc = next(r for r in unparsed if r["corrupt"] == "not_captured")
    assert nc["address"] == miss["address"] and nc["parent"] == miss["subsegment"]
    zs = next(r for r in unparsed if r["corrupt"] == "zero_size")
    assert zs["address"] + zs["size"] == by["zero_size"]["resume_address"]
    dec = next(x for x in h["damage"] if x["what"].startswith("decommitted"))
    assert d.state_of(dec["address"]) == 0x2000 and d.read(dec["address"], 1) is None
    sub = next(s for s in h["vs_context"]["subsegments"] if s["address"] == dec["subsegment"])
    assert not sub["full_commit"] and sub["signature"] >> 15 == 0
    # The stale page holds a header that decodes as a busy chunk at its own address.
    page = dec["subsegment"] + 0x2000
    stale = [a for a in range(page, page + PAGE, 16)
             if ((d.q(a) ^ a ^ h["heap_key"]) >> 16) & 0xFFFF == 5
             and ((d.q(a) ^ a ^ h["heap_key"]) >> 48) & 0xFF == 1]
    assert len(stale) > 40
    starts = {r["address"] for r in h["rows"]}
    assert not starts & set(stale)
    loops = [c for c in h["corruption"] if c["kind"] == "list_loop"]
    assert {c["list"] for c in loops} == {"LargeAllocMetadata", "SegContexts[0].SegmentListHead"}
    assert len(h["seg_contexts"][0]["segments"]) == 2
    assert len([r for r in h["rows"] if r["kind"] == "large_block"]) == 3


# --------------------------------------------------------------- bulk mode
def test_bulk_segment_heap_small(tmp_path):
    from dumpbuilder.segheap_scenarios import write_big_segment_heap_dump

    path = str(tmp_path / "bigseg.dmp")
    truth = write_big_segment_heap_dump(path, allocations=20000, build=26100)
    assert truth["allocation_count"] >= 20000
    assert truth["vs"]["count"] + truth["lfh"]["count"] >= 0.99 * truth["allocation_count"]
    with open(path, "rb") as f:
        d = Dump(f.read())
    h = {"address": truth["heap"], "build_row": truth["build_row"]}
    ca = ctx_address(h, 0)
    segs, end = list_walk(d, ca + 0x48)
    assert end == "head" and len(segs) == truth["seg_contexts"][0]["segments"] >= 2
    assert d.q(ca + 0x58) == len(segs)
    n_vs = n_lfh = 0
    for seg in segs:
        assert d.q(seg + 0x10) ^ seg ^ ca == truth["heap_key"]           # 24H2: C = 0
        idx = 2
        while idx < 256:
            desc = seg + 0x20 * idx
            flags, units = d.u8(desc + 0x18), d.u8(desc + 0x1F)
            S = seg + idx * PAGE
            if flags & 0xC == 0xC:
                size = d.u16(S + 0x20)
                assert d.u16(S + 0x24) & 0x7FFF == (size ^ 0x2BED) & 0x7FFF
                hdr, end_ = S + 0x30, S + 0x30 + size * 16
                while hdr < end_:
                    sizes = d.q(hdr) ^ hdr ^ truth["heap_key"]
                    n_vs += (sizes >> 48) & 0xFF == 1
                    hdr += ((sizes >> 16) & 0xFFFF) * 16
                assert hdr == end_
            elif flags & 0xC == 8:
                v = d.u32(S + 0x28) ^ truth["lfh_key"] ^ ((S >> 12) & 0xFFFFFFFF)
                bs, fbo, bc = v & 0xFFFF, v >> 16, d.u16(S + 0x22)
                assert fbo + bs * bc <= units * PAGE and bs in (0x20, 0x30, 0x40, 0x60, 0x80)
                words = struct.unpack_from(f"<{-(-bc // 32)}Q", d.read(S + 0x40, 8 * -(-bc // 32)))
                n_lfh += sum(bin(w & 0xFFFFFFFF).count("1") for w in words) - (-bc % 32)
            idx += units
    assert n_vs == truth["vs"]["count"] and n_lfh == truth["lfh"]["count"]
