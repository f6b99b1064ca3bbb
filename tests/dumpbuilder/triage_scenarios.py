"""Leak-triage scenarios: C++ objects named by MSVC RTTI, content classes and unreferenced
blocks (/work/shared/docs/leak-triage.md), in NT heaps with back-end, virtual and LFH blocks.

Each scenario is an LFH heap scenario (lfh_scenarios._finish_lfh: heaps[], stack_trace_db,
heap_conventions, corruption[], lfh_conventions, lfh_keys) plus one key:

    triage   {conventions, allocations[], types[], unreferenced, summary[], references[],
              registers[], modules[]}  (triage.Triage.expected; each allocation record:
              user_address, user_size, address, heap, kind, type, type_name, type_module,
              vftable, is_struct, content, reachable, direct_roots, reached_by, depth, role,
              decoy)

and, for the series, ``triage_series`` (the per-type counts of all three dumps).

Scenarios:

    triage_x64            Windows 10 2004 (19041) x64: back end, virtual blocks, LFH
    triage_x86            Windows 7 SP1 (7601) x86: back end, virtual blocks, Win7 LFH
    triage_ust_x64        triage_x64 with +ust (stacks on the blocks, trace database)
    triage_series_1..3    one x64 process (no +ust) dumped three times an hour apart; leaked
                          CImageBuffer objects and log strings grow, a reachable Session list
                          grows, the rest stays flat

Three C++ images per process (rtti.CxxModule): vision.dll (most classes and every decoy),
core.dll (templates and a second Widget) and plugin.dll (only its header page and first .rdata
page are in the dump).  Class names and their display forms are those of leak-triage.md 1.5
(plus plain namespace names built the same way), written out literally below.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from . import structs as fmt
from .builder import PAGE, DumpBuilder
from .heap import NtHeap, StackTraceDatabase
from .heap_layouts import (
    FLG_USER_STACK_TRACE_DB,
    HEAP_CAPTURE_STACK_BACKTRACES,
    PRIVATE_HEAP_FLAGS,
    PROCESS_HEAP_FLAGS,
    epoch_for_build,
)
from .lfh import Lfh, lfh_key
from .lfh_scenarios import _finish_lfh
from .process import TEB32, TEB64
from .rtti import CxxClass, CxxModule
from .scenarios import _HEAP_PLAN, _heap_process
from .triage import Data, Ref, Triage, summary

Scenario = Callable[[], "tuple[DumpBuilder, dict]"]

GUID_VISION = uuid.UUID("5A1E0C3B-7D2F-4E81-9B06-1C2D3E4F5061")
GUID_CORE = uuid.UUID("6B2F1D4C-8E30-4F92-AC17-2D3E4F506172")
GUID_PLUGIN = uuid.UUID("7C302E5D-9F41-40A3-BD28-3E4F50617283")

# TEB TlsSlots (public symbols _TEB.TlsSlots: x86 +0xE10, x64 +0x1480).  Only "a word in the
# TEB" matters for doc 2.2 (root kind other); no expected value depends on the field's name.
TLS_SLOTS = {"x86": 0xE10, "x64": 0x1480}
assert TLS_SLOTS["x86"] + 64 * 4 <= TEB32.capture_size
assert TLS_SLOTS["x64"] + 64 * 8 <= TEB64.capture_size

# Address plan beside scenarios._HEAP_PLAN (heaps, stacks, TEBs, PEB, ntdll, exe from there).
_PLAN = {
    "x64": dict(vision=0x7FFA60000000, core=0x7FFA60100000, plugin=0x7FFA60200000,
                virt=(0x21F4D000000, 0x21F4D400000, 0x21F4D800000, 0x21F4DC00000,
                      0x21F4E000000),
                arena=0x21F4F000000, mapped=0x21F4F100000, reserved=0x21F4F200000),
    "x86": dict(vision=0x10000000, core=0x10100000, plugin=0x10200000,
                lfh_heap=0x03B20000,
                virt=(0x03C30000, 0x03D50000, 0x03E60000, 0x03F70000, 0x04080000),
                arena=0x04100000, mapped=0x04200000, reserved=0x04300000),
}

# Display names (leak-triage.md 1.5 table, NO_CLASS_TYPE form), written out literally.
NAMES = {
    ".?AVCImageBuffer@@": "CImageBuffer",
    ".?AUPoint3@@": "Point3",
    ".?AVWidget@@": "Widget",
    ".?AVSession@net@contoso@@": "contoso::net::Session",
    ".?AVInspectionJob@vision@@": "vision::InspectionJob",
    ".?AV?$Pool@H$0BA@@core@@": "core::Pool<int,16>",
    ".?AV?$vector@HV?$allocator@H@std@@@std@@": "std::vector<int,std::allocator<int> >",
    ".?AV?$Cache@_K@core@@": "core::Cache<uint64_t>",
    ".?AVPluginHost@plugin@@": "plugin::PluginHost",
}


class _Classes:
    def __init__(self, vis: CxxModule, core: CxxModule, plug: CxxModule):
        def c(m: CxxModule, dec: str, **kw) -> CxxClass:
            return m.cls(dec, NAMES[dec], **kw)
        self.widget = c(vis, ".?AVWidget@@")
        self.session = c(vis, ".?AVSession@net@contoso@@")
        self.image = c(vis, ".?AVCImageBuffer@@")
        self.point = c(vis, ".?AUPoint3@@", methods=1)
        # class InspectionJob : public Widget, public contoso::net::Session (doc 1.1)
        self.job = c(vis, ".?AVInspectionJob@vision@@", bases=(self.widget, self.session),
                     methods=4)
        # class core::Pool<int,16> : public Widget (single inheritance)
        self.pool = c(vis, ".?AV?$Pool@H$0BA@@core@@", bases=(self.widget,))
        self.vector = c(core, ".?AV?$vector@HV?$allocator@H@std@@@std@@")
        self.cache = c(core, ".?AV?$Cache@_K@core@@")
        self.core_widget = c(core, ".?AVWidget@@")      # same decorated name, other image
        self.plugin_host = c(plug, ".?AVPluginHost@plugin@@")


def _modules(arch: str, stamp: int) -> tuple[CxxModule, CxxModule, CxxModule]:
    pl = _PLAN[arch]
    root = r"C:\Program Files\Contoso\Inspect"
    vis = CxxModule(root + r"\vision.dll", pl["vision"], arch, timestamp=stamp + 1,
                    pdb_name="vision.pdb", pdb_guid=GUID_VISION, file_version=(3, 2, 0, 14))
    core = CxxModule(root + r"\core.dll", pl["core"], arch, timestamp=stamp + 2,
                     pdb_name="core.pdb", pdb_guid=GUID_CORE, file_version=(3, 2, 0, 14))
    # plugin.dll: RTTI from the second .rdata page, which the dump does not hold.
    plug = CxxModule(root + r"\plugins\plugin.dll", pl["plugin"], arch, timestamp=stamp + 3,
                     pdb_name="plugin.pdb", pdb_guid=GUID_PLUGIN, rtti_rdata_offset=PAGE)
    return vis, core, plug


def _install(b: DumpBuilder, vis: CxxModule, core: CxxModule, plug: CxxModule) -> None:
    vis.install(b)
    core.install(b)
    plug.install(b, capture="headers_and_exports")


def _private_region(b: DumpBuilder, base: int, *, type_: int = fmt.MEM_PRIVATE,
                    protect: int = fmt.PAGE_READWRITE, data: bytes | None = None) -> None:
    b.add_region(base, PAGE, state=fmt.MEM_COMMIT, type=type_, protect=protect,
                 allocation_base=base, allocation_protect=protect)
    b.add_memory(base, data if data is not None else bytes(PAGE))


class _Slots:
    """P-aligned words handed out from one area (module .data, the arena, a stack)."""

    def __init__(self, start: int, end: int, P: int):
        self.pos, self.end, self.P = start, end, P

    def take(self, n: int = 1) -> int:
        at = self.pos
        self.pos += n * self.P
        assert self.pos <= self.end
        return at


def _request_for(heap: NtHeap, want: int, borrow: bool) -> int:
    """The smallest request >= want whose user data ends past the block (x64: uses the next
    header's first bytes, doc 2.3 subtlety) or exactly at its end."""
    e = heap.entry
    user_off = e.ust_user if heap.ust else e.header_size
    n = want
    while True:
        size, _unused = heap.busy_size(n)
        end = user_off + n
        if (end > size * e.granularity) if borrow else (end == size * e.granularity):
            return n
        n += 1


# ---------------------------------------------------------------------------
def _triage_process(name: str, arch: str, build: int, *, ust: bool, pid: int,
                    description: str) -> tuple[DumpBuilder, dict]:
    x64 = arch == "x64"
    P = 4 if arch == "x86" else 8
    plan = _HEAP_PLAN[arch]
    pl = _PLAN[arch]
    stamp = 1_701_000_000 + pid
    b, p, mods = _heap_process(arch, build, heaps=[plan["heap0"], plan["heap1"]],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB if ust else 0, pid=pid,
                               timestamp=stamp)
    db = StackTraceDatabase(b, plan["db"], arch) if ust else None
    site = [0]

    def st() -> list[int] | None:
        if not ust:
            return None
        site[0] += 1
        return mods.stack(site[0] % 6)

    vis, core, plug = _modules(arch, stamp)
    C = _Classes(vis, core, plug)
    t = Triage(b, arch)
    epoch = epoch_for_build(build)
    extra = HEAP_CAPTURE_STACK_BACKTRACES if ust else 0
    h0 = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch, seed=pid, ust=ust, stack_db=db,
                flags=PROCESS_HEAP_FLAGS | extra, reserve=0x40000 if x64 else 0x20000,
                committed=[(0, 0x4000 if x64 else 0x2000)], process_heaps_index=1,
                fill_tag=0xA1)
    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=pid + 1, ust=ust, stack_db=db,
                flags=PRIVATE_HEAP_FLAGS | extra, reserve=0x10000, committed=[(0, 0x1000)],
                process_heaps_index=2, fill_tag=0xA2)
    if build >= 9600:
        lfh = Lfh(h0, build=build, key=lfh_key(pid * 7919 + build), seed=pid + 0x1F)
    else:
        lfh = Lfh(h0, build=build, key=None, seed=pid + 0x1F, virtual_address=pl["lfh_heap"])
    s = h0.segments[0]
    hdr = 0x10 if x64 else 8

    def bk(n: int, heap: NtHeap = h0) -> Ref:
        return t.ref(heap, heap.segments[0].busy(n, stack=st()))

    # Sizes of the C++ objects (vfptrs first, then the members written below).
    SZ = dict(image=P + 8 + 3 * P, point=P + 12, session=P + 2 * P + 8, job=2 * P + 2 * P + 8,
              pool=P + 64, vector=4 * P, cache=3 * P, widget=P + 8)

    # ---- back end of the process heap ------------------------------------------------
    img_a, path_a, name_cache = bk(SZ["image"]), bk(0x30), bk(0x10)
    job_a, sess_b, wname = bk(SZ["job"]), bk(SZ["session"]), bk(0x40)
    list_a, sess_c, cache_c, table_c = bk(4 * P), bk(SZ["session"]), bk(SZ["cache"]), bk(0x80)
    sess_x, sess_y, leak_str = bk(SZ["session"]), bk(SZ["session"]), bk(0x28)
    cache_end = bk(SZ["cache"])
    c0 = bk(_request_for(h0, 0x40 if x64 else 0x20, borrow=False))
    pool_d = bk(SZ["pool"])
    if x64:
        a1 = bk(_request_for(h0, 0x48, borrow=True))
        b1 = bk(SZ["widget"])
    vec_a = bk(SZ["vector"])
    free_blk = s.free(0x60 if x64 else 0x40)
    vec_buf_a = bk(0x40)
    tail_holder = bk(0x44 if x64 else 0x11)
    tail_target = bk(SZ["widget"])
    pool_b, cache_u = bk(SZ["pool"]), bk(SZ["cache"])
    vnode, vlost = bk(SZ["point"]), bk(SZ["session"])
    zero_80, zero_big, zero_len = bk(0x80), bk(0x180), bk(0)
    ascii4, ascii3, ascii_ws, ascii_long, ascii_bad = bk(0x10), bk(0x10), bk(0x20), bk(0x140), bk(0x18)
    utf16_odd, utf16_euro = bk(17), bk(0x20)
    cb_struct, single_ptr, ptr_reserved, ptr_misc = bk(2 * P), bk(4 * P), bk(2 * P), bk(4 * P)
    fillers = [bk(n) for n in (0x30, 0x58)]
    ctor, only_vfptr, short = bk(SZ["job"]), bk(P), bk(P - 1)
    params = bk(0x40)

    # ---- LFH blocks of the process heap ----------------------------------------------
    z = lfh.zone()
    lfh_block = 0x60 if x64 else 0x30
    reqs = [SZ["image"], SZ["point"], SZ["point"], SZ["job"], SZ["session"], None,
            0x18, SZ["widget"], SZ["widget"], None, 0x20, 0x1C, SZ["point"], 0x20]
    specs = []
    for r in reqs:
        if r is None:
            specs.append(("f",))
        else:
            stk = st()
            specs.append(("b", r, stk) if stk else ("b", r))
    ss = lfh.subsegment(z, lfh_block, specs)
    lfh.retired(z, 2 * lfh_block, 6)            # a descriptor whose UserBlocks were released
    L = [t.ref(h0, blk, ss) if blk.busy else blk for blk in ss.blocks]
    (lfh_img, point_a, point_b, job_b, sess_m, lfh_free, lfh_tail, w_core, w_vis, lfh_free2,
     lfh_ascii, lfh_utf16, point_c, lfh_filler) = L

    # ---- virtual blocks --------------------------------------------------------------
    virt = pl["virt"]
    V1 = t.ref(h0, h0.add_virtual(virt[0], 0x30000, capture="head", stack=st()))
    V2 = t.ref(h0, h0.add_virtual(virt[1], 0x24000, capture="head", stack=st()))
    V3 = t.ref(h0, h0.add_virtual(virt[2], 0x12345, capture="head", stack=st()))
    V4 = t.ref(h1, h1.add_virtual(virt[3], 0x20010, capture="head"))
    V5 = t.ref(h1, h1.add_virtual(virt[4], 0x40000 + SZ["image"], capture="head", stack=st()))

    # ---- private heap ----------------------------------------------------------------
    vec_b, vec_buf_b = bk(SZ["vector"], h1), bk(0x30, h1)
    decoy_refs: list[Ref] = []

    # ---- decoys (vision.dll; rules of doc 1.4) ---------------------------------------
    kinds = ["text_pointer", "type_descriptor_pointer", "vftable_in_data", "vftable_unaligned",
             "private_copy", "mid_vftable", "vbtable", "string_literal", "col_in_data", "col_unaligned",
             "col_in_other_image", "module_not_captured", "signature", "td_outside_image",
             "chd_outside_image", "secondary_vftable", "td_not_type_info",
             "td_foreign_type_info", "td_enum_name", "td_bad_char", "td_unterminated",
             "td_unaligned", "chd_signature", "chd_no_bases", "chd_too_many_bases",
             "bca_other_type"]
    if x64:
        kinds.insert(kinds.index("signature") + 1, "pself")
    arena = pl["arena"]
    copy_at = arena + 0x800
    decoys = []
    for k in kinds:
        victim = {"secondary_vftable": C.job, "text_pointer": None, "string_literal": None,
                  "module_not_captured": None, "vbtable": None}.get(k, C.image)
        other = plug if k == "module_not_captured" else core
        decoys.append(vis.decoy(k, victim, other, at=copy_at if k == "private_copy" else None))
    # The decoy blocks: back end (x64 h1 room permitting) -- one busy block each.
    for _ in decoys:
        decoy_refs.append(bk(4 * P, h1) if len(decoy_refs) % 2 else bk(4 * P))

    # ---- module globals (vision.dll .data, after the TypeDescriptors) ---------------
    g = _Slots(vis.data.alloc(16 * P, align=P), vis.data.alloc(0, align=P), P)
    g_image, g_list, g_cache_end, g_pool_hdr, g_table, g_misc = (g.take() for _ in range(6))
    g_unaligned = g.take(2)                 # the word at +P/2 spans two slots
    g_decoys = g.take(2)
    rdata_slot = vis.rdata.alloc(P, align=P)          # a pointer in read-only .rdata
    _install(b, vis, core, plug)

    # ---- other memory: an arena (private), a read-only mapped view, a reservation ---
    _private_region(b, arena, data=bytes(0x800) + vis.private_copy_bytes(C.image).ljust(0x800, b"\0"))
    _private_region(b, pl["mapped"], type_=fmt.MEM_MAPPED, protect=fmt.PAGE_READONLY)
    b.add_region(pl["reserved"], 0x10000, state=fmt.MEM_RESERVE, type=fmt.MEM_PRIVATE, protect=0,
                 allocation_base=pl["reserved"], allocation_protect=fmt.PAGE_READWRITE)
    ar = _Slots(arena, arena + 0x800, P)

    def D() -> Data:
        return Data(P)

    # ================================================================ contents
    # Reachable through a global, depth 0..1: the image buffer, its path and its pixels.
    t.obj(img_a, C.image, D().u32(640).u32(480).ptr(V1.user, "pixels").ptr(path_a.user, "path")
          .word(1), role="CImageBuffer held by the global g_image (depth 0)")
    t.fill(path_a, D().text(r"C:\images\part_0001.png"), content="ascii",
           role="path string of g_image's buffer (depth 1)")
    t.fill(V1, D().zeros(0x100), content="zero",
           role="pixel buffer (virtual block) of g_image's buffer: first page zero (depth 1)")
    t.pointer(g_image, img_a.user, "vision.dll .data g_image")
    # type_info's spare: the runtime's cached undecorated name, a heap string (doc 1.2).
    t.fill(name_cache, D().text("CImageBuffer", nul=False), content="ascii",
           role="CImageBuffer's undecorated name cached in its TypeDescriptor.spare (.data, "
                "global root)")
    t.pointer(vis.spare_address(C.image), name_cache.user, "TypeDescriptor.spare of CImageBuffer")

    # Registers: Rbx/Ebx holds the Session subobject (+P) of an InspectionJob (interior).
    t.obj(job_a, C.job, D().ptr(sess_b.user, "session").ptr(0).u32(7).u32(0),
          role="multiple inheritance (Widget, Session): reached only through a register "
               "holding its secondary subobject address user+P (interior pointer)")
    t.register(0, "ebx" if not x64 else "rbx", job_a.user + P, "InspectionJob's Session subobject")
    t.obj(sess_b, C.session, D().ptr(0).ptr(wname.user, "name").u32(0x11).u32(1),
          role="session of the register-held job (depth 1)")
    t.fill(wname, D().wtext("Kalibrierung l\u00e4uft"), content="utf16",
           role="UTF-16 Latin-1 name (depth 2)")

    # A chain through reachable allocations: g_list -> list -> Session -> Cache -> table.
    t.fill(list_a, D().ptr(sess_c.user, "[0]").ptr(0).ptr(w_vis.user, "[2]").ptr(point_c.user, "[3]"),
           content="pointer_array", role="pointer array held by g_list (depth 0)")
    t.pointer(g_list, list_a.user, "vision.dll .data g_list")
    t.obj(sess_c, C.session, D().ptr(0).ptr(cache_c.user, "cache").u32(3).u32(2),
          role="chain depth 1")
    t.obj(cache_c, C.cache, D().ptr(table_c.user, "table").word(16), role="chain depth 2")
    t.fill(table_c, D(), content="zero", role="zeroed table, chain depth 3")

    # A cycle nothing else references: both unreferenced, and what they hold.
    t.obj(sess_x, C.session, D().ptr(sess_y.user, "peer").ptr(leak_str.user, "name").u32(4).u32(9),
          role="cycle with the next Session; nothing else references either (unreferenced)")
    t.obj(sess_y, C.session, D().ptr(sess_x.user, "peer").ptr(0).u32(5).u32(9),
          role="cycle with the previous Session (unreferenced)")
    t.fill(leak_str, D().text("session 4 lost its owner"), content="ascii",
           role="held only by an unreferenced cycle (unreferenced)")

    # One past the end and a header pointer: neither counts.
    t.obj(cache_end, C.cache, D().ptr(0).word(0), role="g_cache_end holds user+user_size "
          "(one past the end, an end iterator): does not count (unreferenced)")
    t.pointer(g_cache_end, cache_end.end, "one past the end of a Cache")
    t.fill(c0, D(), content="zero", role="block before the Pool: its user data ends exactly at "
           "the Pool's header, so the header pointer references neither (unreferenced)")
    t.obj(pool_d, C.pool, D().raw(bytes(range(1, 65))), role="g_pool_hdr holds this block's "
          "header address (the _HEAP_ENTRY): does not count (unreferenced)")
    t.pointer(g_pool_hdr, pool_d.block, "header of a Pool block")

    thread0 = plan["stacks"][0][0]
    rsp0 = thread0 + 0x1000
    t.register(0, "esp" if not x64 else "rsp", rsp0, "stack pointer (stack bytes below it are "
               "scanned too)")
    t.register(0, "eip" if not x64 else "rip", vis.fn(), "in vision.dll .text")
    stk0 = _Slots(rsp0 + 0x40, rsp0 + 0x400, P)
    stk0_low = _Slots(thread0 + 0x200, rsp0, P)
    if x64:
        # doc 2.3 x64 subtlety: the previous block uses the first 8 bytes of this header.
        t.fill(a1, D().text("header borrower", nul=False), content="ascii",
               role="user data runs 8 bytes into the next block's header: a stack word holding "
                    "that header's address references this block (reachable, stack)")
        t.obj(b1, C.widget, D().u32(2).u32(0),
              role="its header address is on the stack, which references the previous block, "
                   "not this one (unreferenced)")
        t.pointer(stk0.take(), b1.block, "header address of the Widget after the borrower")

    # A free block's stale pointer keeps nothing alive.
    t.obj(vec_a, C.vector, D().ptr(vec_buf_a.user, "begin").ptr(vec_buf_a.user + 0x20, "end")
          .ptr(vec_buf_a.end, "capacity end"),
          role="referenced only by a stale pointer in a free block (unreferenced)")
    t.fill(vec_buf_a, D().raw(bytes(range(0x20))), content="other",
           role="elements of the unreferenced vector (unreferenced)")
    t.pointer(free_blk.address + hdr + 2 * P, vec_a.user,
              "stale word after the free-list links of a free back-end block")

    # Unused tail of a reached block: never read.
    t.fill(tail_holder, D().u32(0x1234).u32(5).u32(6).u32(7), content="other",
           role="reached from the stack; a pointer in its last partial word / unused tail is "
                "not read")
    t.pointer(stk0.take(), tail_holder.user, "stack slot above the stack pointer")
    if x64:
        # user_size 0x44: the word at user+0x40 starts inside and ends past user_size.
        t.pointer(tail_holder.user + 0x40, tail_target.user, "last, partial word")
    else:
        # user_size 0x11: user+0x10 is the partial word, user+0x14 lies wholly in the tail.
        t.pointer(tail_holder.user + 0x10, tail_target.user, "last, partial word")
        t.pointer(tail_holder.user + 0x14, tail_target.user, "unused tail")
    t.obj(tail_target, C.widget, D().u32(3).u32(0),
          role="referenced only from a reached block's partial last word / tail (unreferenced)")

    # Read-only image section and an unaligned global: not roots.
    t.obj(pool_b, C.pool, D().raw(bytes(64)), role="referenced only from vision.dll .rdata "
          "(read-only image section, not a root): unreferenced")
    t.pointer(rdata_slot, pool_b.user, "a word in vision.dll .rdata")
    t.obj(cache_u, C.cache, D().ptr(0).word(2), role="referenced only by a pointer at an "
          "address in .data that is not a multiple of P (not a root word): unreferenced")
    t.pointer(g_unaligned + P // 2, cache_u.user, "unaligned .data word")

    # Virtual blocks: a captured reference, and one that would be in the uncaptured part.
    t.fill(V2, D().ptr(vnode.user, "node").ptr(g_misc, "&g_misc"), content="pointer_array",
           role="table (virtual block, first page captured) held by g_table (depth 0)")
    t.pointer(g_table, V2.user, "vision.dll .data g_table")
    t.obj(vnode, C.point, D().u32(1).u32(2).u32(3), role="referenced from the captured page "
          "of a virtual block (depth 1)")
    t.obj(vlost, C.session, D().ptr(0).ptr(0).u32(8).u32(0),
          role="the program keeps it at offset 0x10000 of the g_table virtual block, which "
               "the dump does not capture: a false leak (unreferenced, doc 2.5)")
    t.fill(V3, D().text("frame 0001 dropped; " * 16, nul=False), content="ascii",
           role="pixel/log buffer of the unreferenced LFH CImageBuffer (unreferenced)")
    t.role(V4, "virtual block of the private heap, pattern fill, nothing references it")
    t.obj(V5, C.image, D().u32(512).u32(512).ptr(V5.user + SZ["image"], "inline pixels")
          .ptr(0).word(1), role="a CImageBuffer with its pixels inline, in a virtual block "
          "(named); its pixel pointer points into itself; from a stack slot of thread 1")
    t.pointer(plan["stacks"][1][0] + 0x100, V5.user, "stack slot of thread 1")

    # LFH objects.
    t.obj(lfh_img, C.image, D().u32(320).u32(200).ptr(V3.user, "pixels").ptr(0).word(1),
          role="leaked CImageBuffer in an LFH block (unreferenced), holds the V3 buffer")
    t.obj(point_a, C.point, D().u32(10).u32(20).u32(30),
          role="struct referenced from the stack above the stack pointer")
    t.pointer(stk0.take(), point_a.user, "stack slot above the stack pointer")
    t.obj(point_b, C.point, D().u32(11).u32(21).u32(31),
          role="struct referenced only from the stack below the stack pointer (stale frame)")
    t.pointer(stk0_low.take(), point_b.user, "stack slot below the stack pointer")
    t.obj(job_b, C.job, D().ptr(sess_m.user, "session").ptr(0).u32(8).u32(1),
          vfptrs=[C.job.primary.address, 0],
          role="InspectionJob whose secondary vfptr is 0 (half destroyed): still named (doc "
               "1.4 consistency check never changes a name); referenced from a TEB TLS slot "
               "by an interior pointer (+0x10)")
    teb0 = plan["tebs"][0]
    t.pointer(teb0 + TLS_SLOTS[arch] + P, job_b.user + 0x10, "TEB TlsSlots[1] of thread 0")
    t.obj(sess_m, C.session, D().ptr(0).ptr(lfh_utf16.user, "name").u32(12).u32(3),
          role="Session held by the TLS-held job and by a read-only mapped view (other)")
    t.pointer(pl["mapped"] + 0x40, sess_m.user, "word in a read-only MEM_MAPPED view")
    t.pointer(lfh_free.address + hdr, w_core.user, "stale word in a free LFH block")
    t.fill(lfh_tail, D().u32(1).u32(2).u32(3).u32(4).u32(5).u32(6), content="other",
           role="reached from the arena; its unused tail holds a pointer (not read)")
    t.pointer(ar.take(), lfh_tail.user, "arena word")
    tail_word = (lfh_tail.end + P - 1) // P * P
    assert tail_word + P <= lfh_tail.block_end
    t.pointer(tail_word, point_c.user, "unused tail of an LFH block")
    t.obj(w_core, C.core_widget, D().u32(21).u32(0),
          role="core.dll's Widget (same decorated name as vision.dll's); referenced only from "
               "a free LFH block's stale word (unreferenced)")
    t.obj(w_vis, C.widget, D().u32(22).u32(0), role="vision.dll's Widget, from the g_list "
          "array (depth 1)")
    t.pointer(lfh_free2.address + hdr + P, ascii4.user, "stale word in a free LFH block")
    t.fill(lfh_ascii, D().text("OK\tready\r\n"), content="ascii",
           role="text with tab/CR/LF; referenced from the arena")
    t.pointer(ar.take(), lfh_ascii.user + 3, "arena word, interior")
    t.fill(lfh_utf16, D().wtext("\u00c9tat: pr\u00eat"), content="utf16",
           role="UTF-16 Latin-1 name of the mapped-view Session (depth 1)")
    t.obj(point_c, C.point, D().u32(7).u32(8).u32(9),
          role="in g_list's array (depth 1); also in an LFH block's unused tail")
    t.role(lfh_filler, "LFH pattern filler (unreferenced)")

    # Private heap: a reachable vector with begin / end / capacity-end pointers.
    t.obj(vec_b, C.vector, D().ptr(vec_buf_b.user, "begin").ptr(vec_buf_b.user + 0x18, "end")
          .ptr(vec_buf_b.end, "capacity end (one past the end, does not count)"),
          role="core.dll vector held by the arena (other)")
    t.pointer(ar.take(), vec_b.user, "arena word")
    t.fill(vec_buf_b, D().raw(bytes(range(0x90, 0xA8))), content="other",
           role="vector elements: begin and end (interior) pointers count (depth 1)")

    # Content classes (doc 3).
    t.fill(zero_80, D(), content="zero", role="zeroed buffer, from the arena")
    t.pointer(ar.take(), zero_80.user + 0x7F, "arena word, last byte (interior)")
    t.fill(zero_big, D().zeros(0x100).text("bytes after E are not looked at"), content="zero",
           role="first 0x100 bytes zero, text after them: zero (E only)")
    t.fill(zero_len, D(), content="zero", role="0-byte allocation: empty E, class zero "
           "(vacuous), never referenced (no address lies in an empty range)")
    t.pointer(ar.take(), zero_len.user, "arena word: the address of a 0-byte allocation")
    t.fill(ascii4, D().text("abcd"), content="ascii", role="exactly 4 characters then NUL; "
           "only a free LFH block's stale word points here (unreferenced)")
    t.fill(ascii3, D().text("abc"), content="other", role="3 characters then NUL: not ascii")
    t.fill(ascii_ws, D().text("line 1\r\n\tline 2\r\n"), content="ascii", role="text with "
           "CR/LF/tab")
    t.fill(ascii_long, D().text("0123456789abcdef" * 20, nul=False), content="ascii",
           role="text filling E without a terminator; a register holds an interior pointer")
    t.register(1, "edi" if not x64 else "rdi", ascii_long.user + 0x21, "interior of a long string")
    t.fill(ascii_bad, D().text("abcd\x01efgh"), content="other", role="0x01 before the NUL")
    t.fill(utf16_odd, D().wtext("Pr\u00fcfplan", nul=False).raw(b"X"), content="utf16",
           role="UTF-16 without a terminator, odd size (the last byte is dropped); from a TEB "
                "slot")
    teb1 = plan["tebs"][1]
    t.pointer(teb1 + TLS_SLOTS[arch], utf16_odd.user, "TEB TlsSlots[0] of thread 1")
    t.fill(utf16_euro, D().wtext("Preis 5\u20ac"), content="other",
           role="UTF-16 with a unit >= 0x100 (the euro sign): other")
    t.fill(cb_struct, D().ptr(vis.fn(), "callback").ptr(sess_c.user, "context"),
           content="pointer_array", role="{callback, context}: a pointer_array (doc 3 note)")
    t.pointer(ar.take(), cb_struct.user, "arena word")
    t.fill(single_ptr, D().ptr(zero_80.user, "only pointer"), content="other",
           role="one non-zero word among zeros: not a pointer_array")
    t.fill(ptr_reserved, D().ptr(zero_80.user, "heap").ptr(pl["reserved"] + 0x100, "reserved"),
           content="other", role="second word points into MEM_RESERVE memory: not a "
                             "pointer_array")
    t.fill(ptr_misc, D().ptr(g_image, "&g_image").ptr(thread0 + 0x100, "stack")
           .ptr(0).ptr(teb0, "TEB"), content="pointer_array",
           role="pointers to a global, a stack and a TEB (no heap block)")
    t.pointer(g_misc, ptr_misc.user, "vision.dll .data g_misc")
    for r in fillers:
        t.role(r, "back-end pattern filler (unreferenced)")
    # Doc 1.4 limits: an object under construction carries its base's vftable (named as the
    # base); a class with nothing but a vfptr (user_size == P); a block smaller than P.
    t.obj(ctor, C.widget, D().word(0).ptr(0).ptr(0).u32(0).u32(0), vfptrs=[C.widget.primary.address],
          role="an InspectionJob under construction (Widget's constructor ran, the "
               "secondary vfptr not yet set): named Widget, the base (doc 1.4 limits); from "
               "the arena")
    t.pointer(ar.take(), ctor.user, "arena word")
    t.obj(only_vfptr, C.widget, role="user_size == P: only a vfptr (R1 holds); from the arena")
    t.pointer(ar.take(), only_vfptr.user, "arena word")
    t.decoy(short, vis.decoy("short_block", C.image), content="other",
            role="decoy short_block: user_size P-1 holds the low bytes of CImageBuffer's "
                 "vftable, the last byte lies past user_size (R1: user_size < P); from the "
                 "arena")
    t.pointer(ar.take(), short.user, "arena word")
    # A PEB word: ProcessParameters (public symbols: _PEB +0x20 x64 / +0x10 x86, the field
    # after Ldr, process.PebLayout) points at a heap block here.
    t.fill(params, D().u32(0x40).u32(0x40).u32(1).u32(0), content="other",
           role="RTL_USER_PROCESS_PARAMETERS-like block held by a PEB word (other)")
    t.pointer(plan["peb"] + (0x20 if x64 else 0x10), params.user, "PEB.ProcessParameters")

    # Decoys: first word looks like a vfptr, then small integers (content other).
    for k, (r, d) in enumerate(zip(decoy_refs, decoys)):
        t.decoy(r, d, D().word(k + 1).word(2).word(3), content="other")
        if k % 2 == 0:
            t.pointer(ar.take(), r.user, f"arena word -> decoy {d.kind}")
    t.pointer(g_decoys, decoy_refs[1].user, "vision.dll .data g_decoys[0]")
    assert vis.decoys[kinds.index("private_copy")].value == copy_at + P

    # ================================================================ write
    for h in (h0, h1):
        h.finish()
    p.finish()
    t.apply()
    b, exp = _finish_lfh(name, description, b, p, [h0, h1], db=db, finish_process=False,
                         keys={"native": lfh.key})
    exp["triage"] = t.expected([h0, h1], [vis, core, plug])
    return b, exp


def triage_x64() -> tuple[DumpBuilder, dict]:
    """Leak triage, Windows 10 2004 x64: C++ objects named by RTTI (vision.dll, core.dll),
    decoys that fail each rule of leak-triage.md 1.4, every content class of section 3, and
    references from .data, stacks (above and below Rsp), registers, TEBs, an arena and a
    read-only mapped view; chains, a cycle, one-past-the-end and header pointers, stale
    pointers in free blocks and unused tails, a read-only .rdata word, an unaligned word and
    a virtual block whose uncaptured part would hold a pointer."""
    return _triage_process("triage_x64", "x64", 19041, ust=False, pid=0x7A10,
                           description=triage_x64.__doc__ or "")


def triage_x86() -> tuple[DumpBuilder, dict]:
    """Leak triage, Windows 7 SP1 x86 (Win7 LFH, _LFH_HEAP in a virtual block): the same
    objects as triage_x64 with 4-byte pointers, x86 RTTI (signature 0, absolute addresses)."""
    return _triage_process("triage_x86", "x86", 7601, ust=False, pid=0x7A20,
                           description=triage_x86.__doc__ or "")


def triage_ust_x64() -> tuple[DumpBuilder, dict]:
    """triage_x64 with +ust: every block has an allocation stack in the trace database, so
    types and stacks coexist (user data at +0x30 / +0x60)."""
    return _triage_process("triage_ust_x64", "x64", 19041, ust=True, pid=0x7A30,
                           description=triage_ust_x64.__doc__ or "")


# ---------------------------------------------------------------------------
# The series: one x64 process without +ust, dumped three times an hour apart.
SERIES_PID = 0x7B40
SERIES_DUMPS = 3
SERIES_START = 1_702_000_000


def _series_dump(hour: int) -> tuple[DumpBuilder, dict]:
    arch, build, P = "x64", 19041, 8
    plan = _HEAP_PLAN[arch]
    ts = SERIES_START + 3600 * hour
    b, p, mods = _heap_process(arch, build, heaps=[plan["heap0"], plan["heap1"]], pid=SERIES_PID,
                               timestamp=ts)
    b.process_create_time = SERIES_START - 1800
    vis, core, plug = _modules(arch, SERIES_START)
    C = _Classes(vis, core, plug)
    t = Triage(b, arch)
    epoch = epoch_for_build(build)
    h0 = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch, seed=SERIES_PID,
                flags=PROCESS_HEAP_FLAGS, reserve=0x40000, committed=[(0, 0x3000)],
                process_heaps_index=1, fill_tag=0xA1)
    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=SERIES_PID + 1,
                flags=PRIVATE_HEAP_FLAGS, reserve=0x10000, committed=[(0, 0x1000)],
                process_heaps_index=2, fill_tag=0xA2)
    lfh = Lfh(h0, build=build, key=lfh_key(SERIES_PID * 7919 + build), seed=SERIES_PID + 0x1F)

    def bk(n: int, heap: NtHeap = h0) -> Ref:
        return t.ref(heap, heap.segments[0].busy(n))

    def D() -> Data:
        return Data(P)

    g = _Slots(vis.data.alloc(8 * P, align=P), vis.data.alloc(0, align=P), P)
    g_widgets, g_sessions, g_config = g.take(), g.take(), g.take()
    # Flat part (identical in every dump).
    widgets_arr = bk(4 * P)
    widgets = [bk(P + 8) for _ in range(3)]
    config = bk(0x40)
    z = lfh.zone()
    ss = lfh.subsegment(z, 0x30, [("b", 0x18), ("b", 0x18), ("f",), ("b", 0x20)])
    lfh.retired(z, 0x60, 4)
    points = [t.ref(h0, ss.blocks[0], ss), t.ref(h0, ss.blocks[1], ss)]
    lfh_str = t.ref(h0, ss.blocks[3], ss)
    t.fill(widgets_arr, D().ptr(widgets[0].user).ptr(widgets[1].user).ptr(widgets[2].user).ptr(0),
           content="pointer_array", role="g_widgets array (flat)")
    t.pointer(g_widgets, widgets_arr.user, "vision.dll .data g_widgets")
    for i, w in enumerate(widgets):
        t.obj(w, C.widget, D().u32(i).u32(0), role="flat, reachable Widget (depth 1)")
    t.fill(config, D().text("threshold=12\nexposure=4000\n"), content="ascii",
           role="configuration text held by g_config (flat)")
    t.pointer(g_config, config.user, "vision.dll .data g_config")
    for i, pt in enumerate(points):
        t.obj(pt, C.point, D().u32(i).u32(i).u32(i), role="flat, unreferenced Point3")
    t.fill(lfh_str, D().text("boot ok"), content="ascii", role="flat, unreferenced string")
    # Growth: batch j (j < hour + 1) adds 2 leaked CImageBuffers (each with a UTF-16 name),
    # 3 log strings (leaked) and 3 Sessions on the reachable list.
    sessions: list[Ref] = []
    for j in range(hour + 1):
        for k in range(2):
            img, nm = bk(0x28), bk(0x30)
            t.obj(img, C.image, D().u32(64 * (j + 1)).u32(48).ptr(0).ptr(nm.user, "name").word(1),
                  role=f"batch {j}: leaked CImageBuffer (unreferenced, grows)")
            t.fill(nm, D().wtext(f"Bild {j}-{k}"), content="utf16",
                   role=f"batch {j}: name of a leaked CImageBuffer (unreferenced, grows)")
        for k in range(3):
            s = bk(0x50)
            t.fill(s, D().text(f"{j:02d}:{k:02d} frame dropped (exposure too long)"),
                   content="ascii", role=f"batch {j}: leaked log line (unreferenced, grows)")
        for k in range(3):
            s = bk(P + 2 * P + 8, h1)
            sessions.append(s)
    for i, s in enumerate(sessions):
        nxt = sessions[i + 1].user if i + 1 < len(sessions) else 0
        t.obj(s, C.session, D().ptr(nxt, "next").ptr(0).u32(i).u32(1),
              role=f"Session {i} of the list held by g_sessions (reachable, depth {i}, grows)")
    t.pointer(g_sessions, sessions[0].user, "vision.dll .data g_sessions")
    _install(b, vis, core, plug)
    h0.finish()
    h1.finish()
    p.finish()
    t.apply()
    desc = (f"triage_series: hour {hour} of one x64 process (Windows 10 2004, no +ust): "
            f"{2 * (hour + 1)} leaked CImageBuffer objects with UTF-16 names, "
            f"{3 * (hour + 1)} leaked log strings, a reachable list of {3 * (hour + 1)} "
            f"Sessions; Widgets, Point3s and strings stay flat")
    b, exp = _finish_lfh(f"triage_series_{hour + 1}", desc, b, p, [h0, h1],
                         finish_process=False, keys={"native": lfh.key})
    exp["triage"] = t.expected([h0, h1], [vis, core, plug])
    return b, exp


def _series_expected(per: list[dict]) -> dict:
    keys = sorted({g["key"] for s in per for g in s})
    out: dict[str, Any] = {}
    for k in keys:
        rows = [next((g for g in s if g["key"] == k), None) for s in per]

        def col(f: str) -> list[int]:
            return [r[f] if r is not None else 0 for r in rows]

        out[k] = {"count": col("count"), "bytes": col("bytes"),
                  "unreferenced_count": col("unreferenced_count"),
                  "unreferenced_bytes": col("unreferenced_bytes")}
    return {
        "dumps": [f"triage_series_{i + 1}" for i in range(len(per))],
        "per_type": out,
        "growing": [k for k in keys if out[k]["bytes"][-1] > out[k]["bytes"][0]],
        "growing_unreferenced": [k for k in keys if out[k]["unreferenced_bytes"][-1]
                                 > out[k]["unreferenced_bytes"][0]],
        "conventions": {"per_type": "per summary key (CONVENTIONS 'summary'), one value per "
                                    "dump in time order; a key missing from a dump counts 0",
                        "growing": "keys whose bytes (unreferenced bytes) are larger in the "
                                   "last dump than in the first"},
    }


def _series_scenario(hour: int) -> Scenario:
    def make() -> tuple[DumpBuilder, dict]:
        b, exp = _series_dump(hour)
        per = []
        for h in range(SERIES_DUMPS):
            e = exp if h == hour else _series_dump(h)[1]
            per.append(summary(e["triage"]["allocations"]))
        exp["triage_series"] = dict(_series_expected(per), index=hour)
        return b, exp
    make.__name__ = f"triage_series_{hour + 1}"
    make.__doc__ = f"Dump {hour + 1} of {SERIES_DUMPS} of the triage series."
    return make


TRIAGE_SCENARIOS: dict[str, Scenario] = {
    "triage_x64": triage_x64,
    "triage_x86": triage_x86,
    "triage_ust_x64": triage_ust_x64,
    **{f"triage_series_{h + 1}": _series_scenario(h) for h in range(SERIES_DUMPS)},
}
