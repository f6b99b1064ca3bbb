"""Checks of the page-heap fixtures (tests/dumpbuilder/pageheap*.py) without the project's
reader: regeneration is byte-identical, and the bytes of each dump say what its JSON says.

The parsing below is a second, deliberately small reading of windows-heap-layouts.md
(sections 4, 6, 11.1, 11.3, 11.4) and of the public ntddk.h RTL_BALANCED_LINKS /
RTL_AVL_TABLE: offsets are typed again here, not imported from tests/dumpbuilder."""

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

from dumpbuilder import pattern  # noqa: E402
from dumpbuilder.gen_fixtures import dump_json  # noqa: E402
from dumpbuilder.scenarios import SCENARIOS  # noqa: E402

NAMES = ["pageheap_x64", "pageheap_x86", "pageheap_two_heaps_x64", "pageheap_not_captured_x64"]
PAGE = 0x1000

# doc 11.4 (_DPH_HEAP_ROOT, _DPH_HEAP_BLOCK, _DPH_BLOCK_INFORMATION), retyped.
ROOT = {"x86": dict(sig=0x00, flags=0x04, vs_head=0x10, vs_tail=0x14, table=0x20,
                    free_head=0x64, free_tail=0x68, next=0xA4, normal=0xB4, create=0xB8),
        "x64": dict(sig=0x00, flags=0x04, vs_head=0x18, vs_tail=0x20, table=0x38,
                    free_head=0xB8, free_tail=0xC0, next=0x138, normal=0x150, create=0x158)}
NODE = {"x86": dict(user=0x10, vb=0x14, vbsize=0x18, access=0x1C, req=0x20, actual=0x24,
                    trace=0x30, size=0x40),
        "x64": dict(user=0x20, vb=0x28, vbsize=0x30, access=0x38, req=0x40, actual=0x48,
                    trace=0x60, size=0x80)}
INFO = {"x86": dict(start=0x00, heap=0x04, req=0x08, actual=0x0C, queue=0x10, trace=0x18,
                    end=0x1C, size=0x20),
        "x64": dict(start=0x00, heap=0x08, req=0x10, actual=0x18, queue=0x20, trace=0x30,
                    end=0x3C, size=0x40)}
# _RTL_STACK_TRACE_ENTRY (doc 11.1): Index, Depth, BackTrace.
STE = {"x86": (0x08, 0x0A, 0x0C), "x64": (0x0C, 0x0E, 0x10)}
# Fake _HEAP: Flags at the doc 4 offsets; the segment-signature slot (doc 5 / 12.1).
FAKE_FLAGS = {"x86": 0x40, "x64": 0x70}
SLOT = {"x86": 0x08, "x64": 0x10}
# NT heap (doc 4, 6.1, 6.3, 11.3): Encoding (the 8 bytes used), header size, +ust user offset.
ENCODING = {"x86": 0x50, "x64": 0x88}
GRAN = {"x86": 8, "x64": 16}
UST_USER = {"x86": 0x18, "x64": 0x30}
UST_PTR = {"x86": 0x08, "x64": 0x10}
# Stamps (doc 11.4).
FULL_BUSY, FULL_FREE = (0xABCDBBBB, 0xDCBABBBB), (0xABCDBBBA, 0xDCBABBBA)
NORMAL_BUSY, NORMAL_FREE = (0xABCDAAAA, 0xDCBAAAAA), (0xABCDAAA9, 0xDCBAAAA9)


# --------------------------------------------------------------- mini reader
class Mem:
    """Captured memory of a minidump: MemoryListStream (5) and Memory64ListStream (9)."""

    def __init__(self, data: bytes):
        self.data = data
        _sig, _ver, n, dir_rva = struct.unpack_from("<IIII", data, 0)
        streams = {}
        for i in range(n):
            stype, size, rva = struct.unpack_from("<III", data, dir_rva + 12 * i)
            streams[stype] = (rva, size)
        self.ranges: list[tuple[int, int, int]] = []
        if 5 in streams:
            rva = streams[5][0]
            (count,) = struct.unpack_from("<I", data, rva)
            for i in range(count):
                start, size, off = struct.unpack_from("<QII", data, rva + 4 + 16 * i)
                self.ranges.append((start, size, off))
        if 9 in streams:
            rva = streams[9][0]
            count, off = struct.unpack_from("<QQ", data, rva)
            for i in range(count):
                start, size = struct.unpack_from("<QQ", data, rva + 16 + 16 * i)
                self.ranges.append((start, size, off))
                off += size
        self.ranges.sort()

    def read(self, address: int, size: int) -> bytes | None:
        out, pos, end = b"", address, address + size
        while pos < end:
            hit = next((r for r in self.ranges if r[0] <= pos < r[0] + r[1]), None)
            if hit is None:
                return None
            n = min(end, hit[0] + hit[1]) - pos
            out += self.data[hit[2] + pos - hit[0]:hit[2] + pos - hit[0] + n]
            pos += n
        return out

    def uint(self, address: int, size: int) -> int | None:
        b = self.read(address, size)
        return None if b is None else int.from_bytes(b, "little")


def load(name: str) -> tuple[Mem, dict]:
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        data = f.read()
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        return Mem(data), json.load(f)


class Ctx:
    def __init__(self, mem: Mem, meta: dict):
        self.m, self.meta = mem, meta
        self.arch = meta["arch"]
        self.ptr = 4 if self.arch == "x86" else 8

    def P(self, address: int) -> int | None:
        return self.m.uint(address, self.ptr)

    def u32(self, address: int) -> int | None:
        return self.m.uint(address, 4)

    def u16(self, address: int) -> int | None:
        return self.m.uint(address, 2)

    def trace(self, entry: int) -> tuple[int, int, list[int]]:
        """(Index, Depth, the Depth frames) of an _RTL_STACK_TRACE_ENTRY."""
        idx_off, depth_off, bt = STE[self.arch]
        index, depth = self.u16(entry + idx_off), self.u16(entry + depth_off)
        frames = [self.P(entry + bt + i * self.ptr) for i in range(depth)]
        return index, depth, frames

    def frames_by_index(self, entry: int) -> list[int | None]:
        idx_off, _depth_off, bt = STE[self.arch]
        return [self.P(entry + bt + i * self.ptr) for i in range(self.u16(entry + idx_off))]


def page_heaps(meta: dict) -> list[dict]:
    return [h for h in meta["heaps"] if h["type"] == "page"]


def normal_heaps(meta: dict) -> list[dict]:
    return [h for h in meta["heaps"] if h["type"] == "nt"]


def regions(meta: dict) -> list[dict]:
    return sorted(meta["regions"], key=lambda r: r["base"])


def region_at(meta: dict, address: int) -> dict:
    return next(r for r in meta["regions"] if r["base"] <= address < r["base"] + r["size"])


def up(v: int, to: int) -> int:
    return (v + to - 1) // to * to


# --------------------------------------------------------------- generation
def test_scenarios_registered():
    assert set(NAMES) <= set(SCENARIOS)


@pytest.mark.parametrize("name", NAMES)
def test_regeneration_is_byte_identical(name):
    b1, e1 = SCENARIOS[name]()
    b2, e2 = SCENARIOS[name]()
    d1 = b1.to_bytes()
    assert d1 == b2.to_bytes()
    assert dump_json(e1) == dump_json(e2)
    with open(os.path.join(FIXTURES, name + ".dmp"), "rb") as f:
        assert f.read() == d1, "run python tests/dumpbuilder/gen_fixtures.py"
    with open(os.path.join(FIXTURES, name + ".json"), encoding="utf-8") as f:
        assert f.read() == dump_json(dict(e1, file_size=len(d1)))


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_small(name):
    for ext in ("dmp", "json"):
        assert os.path.getsize(os.path.join(FIXTURES, f"{name}.{ext}")) < 400 * 1024


# --------------------------------------------------------------- process
@pytest.mark.parametrize("name", NAMES)
def test_global_flag_and_process_heaps(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    peb = meta["peb"]["address"]
    flag = c.u32(peb + (0x68 if c.arch == "x86" else 0xBC))           # doc 2
    assert flag == meta["peb"]["nt_global_flag"] and flag & 0x02000000
    assert bool(flag & 0x1000) == meta["nt_global_flag_bits"]["ust"]
    n = c.u32(peb + (0x88 if c.arch == "x86" else 0xE8))
    array = c.P(peb + (0x90 if c.arch == "x86" else 0xF0))
    listed = [c.P(array + i * c.ptr) for i in range(n)]
    assert listed == meta["peb"]["heaps"]
    assert [h["address"] for h in meta["heaps"] if h["listed_in_peb"]] == listed
    for h in meta["heaps"]:
        assert h["process_heaps_index"] == (listed.index(h["address"]) if h["listed_in_peb"]
                                            else None)
    # Row order: an unlisted NormalHeap comes right after its page heap.
    for i, h in enumerate(meta["heaps"]):
        if h["type"] == "nt" and not h["listed_in_peb"]:
            assert meta["heaps"][i - 1]["address"] == h["page_heap_owner"]
    assert len({h["address"] for h in meta["heaps"]}) == len(meta["heaps"])


# --------------------------------------------------------------- fake _HEAP and root
@pytest.mark.parametrize("name", NAMES)
def test_fake_heap_page(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    for h in page_heaps(meta):
        page = m.read(h["address"], PAGE)
        assert page is not None
        fo = FAKE_FLAGS[c.arch]
        flags, force = struct.unpack_from("<II", page, fo)
        assert flags == force == h["fake_heap"]["flags"] and flags & 0x01000000
        assert page[:fo] + page[fo + 8:] == b"\xEE" * (PAGE - 8)
        assert c.u32(h["address"] + SLOT[c.arch]) == 0xEEEEEEEE
        assert h["root"] == h["address"] + PAGE
        r = region_at(meta, h["address"])
        assert (r["state"], r["protect"]) == (0x1000, 0x02)                   # read-only


@pytest.mark.parametrize("name", NAMES)
def test_root_fields(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    R = ROOT[c.arch]
    for h in page_heaps(meta):
        root = h["root"]
        if not h["walked"]:
            assert h["not_walked_reason"] == "not_captured" and h["blocks"] == []
            assert all(m.read(a, 1) is None for a in range(root, root + 0x5000, 0x100))
            assert region_at(meta, root)["state"] == 0x1000          # committed, not captured
            continue
        assert c.u32(root + R["sig"]) == 0xFFEEDDCC
        assert c.u32(root + R["flags"]) == h["heap_flags"]
        assert h["fake_heap"]["flags"] == h["heap_flags"] | 0x01000000
        assert c.P(root + R["normal"]) == h["normal_heap"]
        assert c.P(root + R["create"]) == h["create_stack_trace"]
        index, depth, frames = c.trace(h["create_stack_trace"])
        assert frames == h["create_frames"] and index != depth
        vs = c.P(root + R["vs_head"])
        assert vs == c.P(root + R["vs_tail"]) == h["virtual_storage"]["node"]
        N = NODE[c.arch]
        assert (c.P(vs + N["vb"]), c.P(vs + N["vbsize"])) == (h["address"], 0x100000)
        assert c.P(vs) == 0


# --------------------------------------------------------------- busy tree, free list
@pytest.mark.parametrize("name", NAMES)
def test_avl_tree_reaches_exactly_the_busy_nodes(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    p = c.ptr
    for h in [h for h in page_heaps(meta) if h["walked"]]:
        table = h["root"] + ROOT[c.arch]["table"]
        assert c.P(table) == table                          # BalancedRoot.Parent
        reached: list[int] = []

        def walk(node: int, parent: int) -> int:
            """Height of the subtree; checks Parent and Balance on the way."""
            if node == 0:
                return 0
            assert node not in reached
            reached.append(node)
            assert c.P(node) == parent
            hl = walk(c.P(node + p), node)
            hr = walk(c.P(node + 2 * p), node)
            balance = struct.unpack("<b", m.read(node + 3 * p, 1))[0]
            assert balance == hr - hl and -1 <= balance <= 1
            return 1 + max(hl, hr)

        height = max(walk(c.P(table + p), table), walk(c.P(table + 2 * p), table))
        busy = [r for r in h["blocks"] if r["busy"]]
        assert sorted(reached) == sorted(r["node"] for r in busy)
        assert all(r["kind"] == "dph_block" for r in h["blocks"])
        # ntddk.h RTL_AVL_TABLE: NumberGenericTableElements, DepthOfTree after OrderedPointer.
        n_off = (0x18, 0x1C) if c.arch == "x86" else (0x2C, 0x30)
        assert c.u32(table + n_off[0]) == len(busy) == h["busy_count"]
        assert c.u32(table + n_off[1]) == height == h["busy_nodes_table"]["depth_of_tree"]

        def in_order(node: int) -> list[int]:
            if node == 0:
                return []
            return in_order(c.P(node + p)) + [node] + in_order(c.P(node + 2 * p))

        order = in_order(c.P(table + 2 * p))
        users = [c.P(n + NODE[c.arch]["user"]) for n in order]
        assert users == sorted(users) and order == h["busy_nodes_table"]["in_order"]


@pytest.mark.parametrize("name", NAMES)
def test_free_list(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    R = ROOT[c.arch]
    for h in [h for h in page_heaps(meta) if h["walked"]]:
        node, nodes = c.P(h["root"] + R["free_head"]), []
        while node:
            assert node not in nodes
            nodes.append(node)
            assert c.P(node + c.ptr) == 0 and c.P(node + 2 * c.ptr) == 0   # no tree links
            node = c.P(node)                                                # pNextAlloc
        assert nodes == h["free_list"]["nodes"]
        assert c.P(h["root"] + R["free_tail"]) == (nodes[-1] if nodes else 0)
        freed = [r for r in h["blocks"] if not r["busy"]]
        assert sorted(nodes) == sorted(r["node"] for r in freed)
        assert len(nodes) == h["freed_count"] >= 1


# --------------------------------------------------------------- full-page blocks
@pytest.mark.parametrize("name", NAMES)
def test_full_page_nodes_stamps_and_fills(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    N, I = NODE[c.arch], INFO[c.arch]
    align = 8 if c.arch == "x86" else 16
    for h in [h for h in page_heaps(meta) if h["walked"]]:
        rows = h["blocks"]
        assert [r["address"] for r in rows] == sorted(r["address"] for r in rows)
        for r in rows:
            n = r["node"]
            vb, vbsize, access = c.P(n + N["vb"]), c.P(n + N["vbsize"]), c.P(n + N["access"])
            user, req, actual = c.P(n + N["user"]), c.P(n + N["req"]), c.P(n + N["actual"])
            assert (vb, vbsize, user, req) == (r["address"], r["size"], r["user_address"],
                                               r["user_size"])
            assert c.P(n + N["trace"]) == r["stack_trace_entry"]
            assert access == up(req + I["size"], PAGE) and vbsize == access + PAGE
            assert actual == up(req, align) and user == vb + access - actual
            guard = vb + access
            assert m.read(guard, 1) is None
            g = region_at(meta, guard)
            info = user - I["size"]
            if r["busy"] or r["pages_still_committed"]:
                assert (g["state"], g["protect"]) == (0x1000, 0x01)         # PAGE_NOACCESS
            else:
                assert region_at(meta, vb)["state"] == 0x2000               # decommitted
                assert m.read(info, 4) is None and not r["stamps_captured"]
                continue
            assert r["stamps_captured"]
            start, end = c.u32(info + I["start"]), c.u32(info + I["end"])
            assert (start, end) == (FULL_BUSY if r["busy"] else FULL_FREE)
            assert (start, end) == (r["start_stamp"], r["end_stamp"])
            assert c.P(info + I["heap"]) == h["root"]
            assert c.P(info + I["req"]) == req
            assert c.P(info + I["trace"]) == r["stack_trace_entry"]
            assert c.u16(info + I["queue"]) == c.trace(r["stack_trace_entry"])[0]
            assert m.read(vb, info - vb) == bytes(info - vb)    # nothing before the info
            body = m.read(user, req)
            if body is not None:
                if "fill" in r["user_data"]:
                    assert body == bytes([r["user_data"]["fill"]]) * req
                    assert r["user_data"]["fill"] == (0xC0 if r["busy"] else 0xF0)
                else:
                    assert body == pattern(user, req, r["user_data"]["pattern_tag"])
            assert m.read(user + req, guard - user - req) == b"\xD0" * (guard - user - req)
            assert r["suffix"]["size"] == guard - user - req < align
            # What the row says is captured is exactly what the dump holds.
            for span in r["captured"]:
                assert m.read(span["address"], span["size"]) is not None
            held = sum(s["size"] for s in r["captured"])
            assert held == sum(PAGE for a in range(vb, guard, PAGE) if m.read(a, 1) is not None)


# --------------------------------------------------------------- traces
@pytest.mark.parametrize("name", NAMES)
def test_page_heap_traces_count_with_depth(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    rows = [r for h in page_heaps(meta) for r in h["blocks"]]
    rows += [r for h in normal_heaps(meta) for r in h["blocks"] if r["kind"] == "dph_normal_block"]
    assert rows
    wrong = 0
    for r in rows:
        index, depth, frames = c.trace(r["stack_trace_entry"])
        assert depth == len(r["frames"]) > 0 and frames == r["frames"]
        assert index != depth
        by_index = c.frames_by_index(r["stack_trace_entry"])
        assert by_index != r["frames"]
        wrong += 1
    assert wrong == len(rows)
    # Indexes on both sides of Depth: a reader counting with Index gets truncated lists and
    # lists with extra frames.
    pairs = {c.trace(r["stack_trace_entry"])[:2] for r in rows}
    assert any(i < d for i, d in pairs) and any(i > d for i, d in pairs)
    # +ust headers in a NormalHeap point at ordinary +ust entries (Index == Depth).
    for h in normal_heaps(meta):
        if not h["ust"]:
            continue
        for r in h["blocks"]:
            if r["level"] == 0 and r["busy"] and r["kind"] in ("dph_normal", "backend"):
                assert c.P(r["address"] + UST_PTR[c.arch]) == r["stack_trace_entry"] != 0
                index, depth, frames = c.trace(r["stack_trace_entry"])
                assert index == depth == len(r["frames"]) and frames == r["frames"]


# --------------------------------------------------------------- NormalHeap
def _decode(c: Ctx, heap: int, at: int) -> dict | None:
    key = c.m.uint(heap + ENCODING[c.arch], 8)
    raw = c.m.uint(at + (0 if c.arch == "x86" else 8), 8)
    if raw is None:
        return None
    b = (raw ^ key).to_bytes(8, "little")
    size, flags, tag, _prev, _seg, unused = struct.unpack("<HBBHBB", b)
    assert tag == b[0] ^ b[1] ^ b[2]
    return dict(address=at, size=size * GRAN[c.arch], flags=flags, unused=unused)


@pytest.mark.parametrize("name", NAMES)
def test_normal_heap_blocks(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    I = INFO[c.arch]
    align = 8 if c.arch == "x86" else 16
    scramble = 0x80000000 if c.arch == "x86" else 0x8000000000000000
    stamps = {NORMAL_BUSY[0]: True, NORMAL_FREE[0]: False}
    for h in normal_heaps(meta):
        owner = next(p for p in page_heaps(meta) if p["address"] == h["page_heap_owner"])
        rows = {(r["address"], r["kind"]): r for r in h["blocks"]}
        seen = 0
        for s in h["segments"]:
            ucr = {u["address"]: u["size"] for u in s["uncommitted_ranges"]}
            at = s["address"]
            while at < s["last_valid_entry"]:
                if at in ucr:
                    at += ucr[at]
                    continue
                e = _decode(c, h["address"], at)
                assert e is not None
                if e["flags"] & 1 and e["unused"] != 1:
                    data = at + (UST_USER[c.arch] if h["ust"] else GRAN[c.arch])
                    size = e["size"] - (c.u16(at + (0x14 if c.arch == "x86" else 0x2C))
                                        if h["ust"] else e["unused"])
                    stamp = c.u32(data)
                    if stamp in stamps:
                        busy = stamps[stamp]
                        seen += 1
                        cont = rows[(at, "dph_normal")]
                        assert cont["busy"] and not cont["is_allocation"]
                        end = c.u32(data + I["end"])
                        assert end == (NORMAL_BUSY if busy else NORMAL_FREE)[1]
                        assert c.P(data + I["heap"]) == owner["root"] ^ scramble
                        req = c.P(data + I["req"])
                        assert c.P(data + I["actual"]) == size == req + I["size"] + align
                        u = data + I["size"]
                        child = rows[(u, "dph_normal_block")]
                        assert (child["busy"], child["is_allocation"]) == (busy, busy)
                        assert (child["user_address"], child["user_size"], child["size"]) == (
                            u, req, req)
                        assert child["parent"] == at and child["level"] == 1
                        assert c.P(data + I["trace"]) == child["stack_trace_entry"]
                        assert child["start_stamp"] == stamp
                        body = m.read(u, req)
                        if "fill" in child["user_data"]:
                            assert body == bytes([child["user_data"]["fill"]]) * req
                            assert child["user_data"]["fill"] == (0xE0 if busy else 0xF0)
                        else:
                            assert body == pattern(u, req, child["user_data"]["pattern_tag"])
                        assert m.read(u + req, align) == b"\xA0" * align
                        if busy:
                            assert c.u16(data + I["queue"]) == c.trace(child["stack_trace_entry"])[0]
                    else:
                        assert (at, "dph_normal") not in rows
                at += e["size"]
        assert seen == sum(1 for r in h["blocks"] if r["kind"] == "dph_normal")
        assert seen == h["dph_normal"]["busy_count"] + h["dph_normal"]["freed_count"] > 0
        # Held-freed blocks are still busy back-end blocks.
        freed = [r for r in h["blocks"] if r["kind"] == "dph_normal_block" and not r["busy"]]
        assert freed and all(rows[(r["parent"], "dph_normal")]["busy"] for r in freed)


@pytest.mark.parametrize("name", NAMES)
def test_delayed_free_queue(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    q = meta["page_heap_list"]["delayed_free_queue"]
    off = INFO[c.arch]["queue"]
    head, nodes, cur = q["head"], [], c.P(q["head"])
    while cur != head:
        nodes.append(cur - off)
        assert c.P(cur + c.ptr) == (head if len(nodes) == 1 else nodes[-2] + off)
        cur = c.P(cur)
    assert c.P(head + c.ptr) == (nodes[-1] + off if nodes else head)
    assert nodes == q["entries"]
    for info in nodes:
        assert c.u32(info) == NORMAL_FREE[0]


# --------------------------------------------------------------- rows
@pytest.mark.parametrize("name", NAMES)
def test_rows_nest_and_tile(name):
    _, meta = load(name)
    for h in meta["heaps"]:
        rows = h["blocks"]
        top = [r for r in rows if r["level"] == 0]
        assert [r["address"] for r in top] == sorted(r["address"] for r in top)
        for r in rows:
            assert r["not_decoded"] is None
            assert (r["parent"] == 0) == (r["level"] == 0)
            if r["kind"] in ("dph_block", "dph_normal_block", "backend"):
                assert r["is_allocation"] == r["busy"]
            elif r["kind"] != "virtual":
                assert not r["is_allocation"]
        i = 0
        while i < len(rows):
            r = rows[i]
            i += 1
            if r["kind"] != "dph_normal":
                assert r["kind"] not in ("overhead", "dph_normal_block")
                continue
            kids = []
            while i < len(rows) and rows[i]["level"] == 1:
                kids.append(rows[i])
                i += 1
            assert [k["kind"] for k in kids] == ["overhead", "dph_normal_block", "overhead"]
            pos = r["address"]
            for k in kids:
                assert k["parent"] == r["address"] and k["address"] == pos
                pos += k["size"]
            assert pos == r["address"] + r["size"]
        assert h["busy_user_bytes_all"] == sum(r["user_size"] for r in rows if r["is_allocation"])
        if h["type"] == "page" and h["walked"]:
            assert h["busy_user_bytes"] == h["busy_user_bytes_all"]
            assert h["busy_count"] == sum(r["busy"] for r in rows)


# --------------------------------------------------------------- NextHeap list
@pytest.mark.parametrize("name", NAMES)
def test_next_heap_list(name):
    m, meta = load(name)
    c = Ctx(m, meta)
    lst = meta["page_heap_list"]
    off = ROOT[c.arch]["next"]
    head = lst["head"]
    assert region_at(meta, head)["type"] == 0x1000000                     # verifier.dll image
    mod = next(x for x in meta["modules"] if x["name"] == "verifier.dll")
    assert mod["base"] <= head < mod["base"] + mod["size"]
    links, cur = [], c.P(head)
    while cur != head:
        links.append(cur)
        nxt = c.P(cur)
        if nxt is None:
            break
        assert c.P(cur + c.ptr) == (head if len(links) == 1 else links[-2])
        cur = nxt
    roots = [x - off for x in links]
    walked = [h["root"] for h in page_heaps(meta) if h["walked"]]
    if lst["walk_from_head"]["unreadable_link"] is None:
        assert cur == head and roots == lst["roots"]
        assert c.P(head + c.ptr) == links[-1]
    else:
        assert roots[-1] + off == lst["walk_from_head"]["unreadable_link"]
        assert roots[:-1] == lst["walk_from_head"]["roots"]
    assert set(walked) <= set(roots)
    assert [h["root"] for h in page_heaps(meta)] == lst["roots"][:len(page_heaps(meta))]


# --------------------------------------------------------------- coverage of the brief
def test_scenarios_cover_the_brief():
    want = {"pageheap_x64": ("x64", 19041), "pageheap_x86": ("x86", 7601),
            "pageheap_two_heaps_x64": ("x64", 26100), "pageheap_not_captured_x64": ("x64", 19041)}
    for name, (arch, build) in want.items():
        _, meta = load(name)
        assert (meta["arch"], meta["os_build"], meta["is_wow64"]) == (arch, build, False)
        assert meta["nt_global_flag_bits"]["hpa"] and meta["corruption"] == []
    for name in ("pageheap_x64", "pageheap_x86"):
        _, meta = load(name)
        (ph,) = page_heaps(meta)
        (nh,) = normal_heaps(meta)
        assert not nh["listed_in_peb"] and nh["page_heap_owner"] == ph["address"]
        sizes = {r["user_size"] for r in ph["blocks"]}
        assert {0, 1} <= sizes and any(s % 2 and s > 1 for s in sizes)
        assert any(s > 0x10000 for s in sizes)
        straddle = [r for r in ph["blocks"] if r["block_information"] // PAGE
                    != (r["user_address"] - 1) // PAGE and r["user_size"]]
        assert straddle
        assert any(not r["busy"] and not r["pages_still_committed"] for r in ph["blocks"])
        assert any(r["pages_still_committed"] for r in ph["blocks"])
        kids = [r for r in nh["blocks"] if r["kind"] == "dph_normal_block"]
        assert any(r["busy"] for r in kids) and any(not r["busy"] for r in kids)
        assert any(r["user_size"] == 0 for r in kids)
        assert any(r["kind"] == "backend" and not r["busy"] for r in nh["blocks"])
        assert any(r["kind"] == "backend" and r["busy"] for r in nh["blocks"])
    _, meta = load("pageheap_two_heaps_x64")
    assert len(page_heaps(meta)) == 2 and len(meta["page_heap_list"]["roots"]) == 2
    assert sorted(h["listed_in_peb"] for h in normal_heaps(meta)) == [False, True]
    _, meta = load("pageheap_not_captured_x64")
    assert [h["walked"] for h in page_heaps(meta)] == [True, False]
    assert meta["unreachable_heaps"]
