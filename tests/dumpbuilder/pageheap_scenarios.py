"""Page heap (DPH; gflags +hpa, Application Verifier) scenarios.

Each scenario is a small process dump with NtGlobalFlag 0x02000000 (+hpa, doc 3), some
with 0x1000 (+ust) as well, whose heaps are page heaps (pageheap.py) with their NormalHeaps
(heap.NtHeap).  The JSON has the keys of every scenario (scenarios._finish) plus:

    heaps[]              in the row order of docs/block-model.md: PEB ProcessHeaps order, a
                         NormalHeap that no PEB lists right after its page heap.  Each record
                         has listed_in_peb and process_heaps_index (null when not listed).
                         type "page": PageHeap.expected() (root, normal_heap, busy_count,
                         freed_count, busy_user_bytes, busy_user_bytes_all, blocks[] = the
                         dph_block rows, AVL / free-list / NextHeap details; walked false with
                         not_walked_reason when the root is not captured).
                         type "nt" with page_heap_owner: the NormalHeap, NtHeap.expected() whose
                         blocks[] are the block-model rows (dph_normal containers followed by
                         their overhead / dph_normal_block / overhead children), plus
                         dph_normal {busy_count, freed_count, busy_user_bytes} and
                         busy_user_bytes_all.
    page_heap_list       Verifier.expected(): verifier.dll data page, the NextHeap list head,
                         roots in list order, the delayed-free queue
    stack_trace_db       the _RTL_STACK_TRACE_ENTRY area (page-heap entries list "index")
    heap_conventions     heap.CONVENTIONS (the NormalHeaps)
    page_heap_conventions  pageheap.CONVENTIONS
    nt_global_flag_bits  {"hpa": true, "ust": ...}
    unreachable_heaps[]  heaps in the dump that no reader can reach (not_captured scenario)
    corruption[]         always empty

Every row carries parent (address of the parent row, 0 at top level), level, is_allocation
and not_decoded (null), and frames: the return addresses its stack_trace_entry holds (Depth
of them; the entries' Index differs on purpose, doc 11.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .builder import PAGE, DumpBuilder, Module
from .heap import CONVENTIONS as HEAP_CONVENTIONS
from .heap import NtHeap, StackTraceDatabase
from .heap_layouts import (
    FLG_USER_STACK_TRACE_DB,
    HEAP_CAPTURE_STACK_BACKTRACES,
    PRIVATE_HEAP_FLAGS,
    PROCESS_HEAP_FLAGS,
    epoch_for_build,
)
from .pageheap import CONVENTIONS as PAGE_HEAP_CONVENTIONS
from .pageheap import (
    DPH_ROOT,
    FAKE_HEAP_FLAGS,
    FLG_HEAP_PAGE_ALLOCS,
    SEGMENT_SIGNATURE_SLOT,
    PageHeap,
    Verifier,
)
from .process import Process
from .scenarios import (
    GUID_EXE,
    GUID_KERNEL32,
    GUID_KERNELBASE,
    GUID_NTDLL,
    _finish,
    _peb_probes,
)

import uuid

GUID_VERIFIER = uuid.UUID("3D2C1B0A-4E5F-4A6B-9C8D-7E6F5A4B3C2D")

DPH_OS = {  # build -> (os_version, csd_version, ntdll/verifier file version)
    7601: ((6, 1, 7601), "Service Pack 1", (6, 1, 7601, 17514)),
    19041: ((10, 0, 19041), "", (10, 0, 19041, 1889)),
    26100: ((10, 0, 26100), "", (10, 0, 26100, 2454)),
}

# Address plan (all reservations 64 KiB aligned, nothing overlapping).  Each page heap
# reserves 1 MiB; its NormalHeap is a separate reservation after it.
_PLAN: dict[str, dict[str, Any]] = {
    "x64": dict(
        exe=(0x7FF6A1230000, 0x26000), ntdll=(0x7FFB5C6D0000, 0x1F5000),
        k32=(0x7FFB5B4E0000, 0xBD000), kb=(0x7FFB5A0C0000, 0x2CD000),
        verifier=(0x7FFB4F8A0000, 0x6C000), verifier_data_rva=0x5A000,
        array=0x7FFB5C83D2C0, ldr=0x7FFB5C83C4C0, peb=0x7B1E3F2000,
        tebs=(0x7B1E3F3000, 0x7B1E3F5000),
        stacks=((0x7B1E1FD000, 0x3000), (0x7B1E5FF000, 0x1000)),
        db=0x21F4A800000,
        page_heaps=(0x21F4B000000, 0x21F4B400000),
        normal_heaps=(0x21F4B200000, 0x21F4B600000),
    ),
    "x86": dict(
        exe=(0x00400000, 0x2A000), ntdll=(0x77D60000, 0x13C000),
        k32=(0x76B30000, 0xD4000), kb=(0x75C10000, 0x4A000),
        verifier=(0x6F3A0000, 0x5C000), verifier_data_rva=0x4B000,
        array=0x77E97500, ldr=0x77E97880, peb=0x7FFDF000, tebs=(0x7FFDE000, 0x7FFDD000),
        stacks=((0x0012E000, 0x2000), (0x0032F000, 0x1000)),
        db=0x00600000,
        page_heaps=(0x01A90000, 0x01CB0000),
        normal_heaps=(0x01BA0000, 0x01DC0000),
    ),
}


@dataclass
class Mods:
    """Module bases of a page-heap process, and plausible stacks (innermost first)."""

    exe: Module
    ntdll: Module
    k32: Module
    kb: Module
    verifier: Module

    def _tail(self, site: int) -> list[int]:
        n = 1 + site % 3
        return ([self.exe.base + 0x1000 + 0x53 * site + 0x11 * i for i in range(n)]
                + [self.exe.base + 0x51F0, self.k32.base + 0x17034, self.ntdll.base + 0x52651])

    def alloc(self, site: int) -> list[int]:
        """verifier!AVrfDebugPageHeapAllocate <- ntdll!RtlDebugAllocateHeap <-
        ntdll!RtlpAllocateHeap <- ntdll!RtlAllocateHeap <- the program (8..10 frames)."""
        return [self.verifier.base + 0x1B2C4, self.ntdll.base + 0x9E5C3,
                self.ntdll.base + 0x30F3A, self.ntdll.base + 0x2A1F3] + self._tail(site)

    def free(self, site: int) -> list[int]:
        """The free stacks a freed block's StackTrace holds (7..9 frames)."""
        return [self.verifier.base + 0x1C7E9, self.ntdll.base + 0x9F1A8,
                self.ntdll.base + 0x2B70F] + self._tail(site + 7)

    def create(self, site: int) -> list[int]:
        """The heap-creation stack (CreateStackTrace)."""
        return [self.verifier.base + 0x3A110, self.ntdll.base + 0x671A5,
                self.kb.base + 0x2C4A1] + self._tail(site + 11)

    def backend(self, site: int) -> list[int]:
        """+ust: the NormalHeap back-end allocation the verifier made for a light block."""
        return [self.ntdll.base + 0x2A1F3, self.verifier.base + 0x1D530,
                self.verifier.base + 0x1B2C4, self.ntdll.base + 0x9E5C3,
                self.ntdll.base + 0x2A1F3] + self._tail(site)


def _process(arch: str, build: int, *, heaps: list[int], nt_global_flag: int, pid: int,
             timestamp: int) -> tuple[DumpBuilder, Process, Mods]:
    os_version, csd, version = DPH_OS[build]
    plan = _PLAN[arch]
    b = DumpBuilder(arch=arch, os_version=os_version, csd_version=csd, timestamp=timestamp,
                    pid=pid, process_create_time=timestamp - 900, number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"][0],
                       size=plan["exe"][1], file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3,
                       pdb_name=r"C:\build\leaky\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=3)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=plan["ntdll"][0],
                         size=plan["ntdll"][1], file_version=version, timestamp=0x4CE7B96E,
                         checksum=0x140DA7, pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=plan["k32"][0],
                       size=plan["k32"][1], file_version=version, timestamp=0x4CE7B8F0,
                       pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32, pdb_age=1)
    kb = b.add_module(path=r"C:\Windows\System32\KERNELBASE.dll", base=plan["kb"][0],
                      size=plan["kb"][1], file_version=version, timestamp=0x4CE7B8F1,
                      pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE, pdb_age=1)
    ver = b.add_module(path=r"C:\Windows\System32\verifier.dll", base=plan["verifier"][0],
                       size=plan["verifier"][1], file_version=version, timestamp=0x5A1B2C3D,
                       pdb_name="verifier.pdb", pdb_guid=GUID_VERIFIER, pdb_age=1)
    for m in (exe, k32, kb):
        b.add_image_regions(m)
    data = ver.base + plan["verifier_data_rva"]
    b.add_image_regions(ver, writable=((data, data + PAGE),))
    array = plan["array"]
    b.add_image_regions(ntdll, writable=((array, array + 0x80),))
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"],
                nt_global_flag=nt_global_flag, heaps=heaps, max_heaps=16,
                process_heaps_array=array)
    for i, (teb, (stack, size)) in enumerate(zip(plan["tebs"], plan["stacks"])):
        p.add_thread(0x2A00 + 4 * i, teb=teb, stack_start=stack, stack_size=size)
    return b, p, Mods(exe, ntdll, k32, kb, ver)


def _normal_heap(b: DumpBuilder, arch: str, build: int, address: int, *, ust: bool,
                 db: StackTraceDatabase, seed: int, flags: int, index: int,
                 fill_tag: int) -> NtHeap:
    return NtHeap(b, address, arch=arch, epoch=epoch_for_build(build), seed=seed, ust=ust,
                  stack_db=db if ust else None,
                  flags=flags | (HEAP_CAPTURE_STACK_BACKTRACES if ust else 0),
                  reserve=0x10000, committed=[(0, 0x2000)], process_heaps_index=index,
                  fill_tag=fill_tag)


def _standard_blocks(ph: PageHeap, M: Mods, arch: str, site0: int) -> None:
    """Full-page blocks of sizes 0, 1, odd, one whose _DPH_BLOCK_INFORMATION straddles a page
    boundary, one > 64 KiB; three freed ones (two decommitted, one still committed); then the
    NormalHeap's light blocks: busy (incl. 0 bytes and odd sizes), held-freed, plain free
    back-end blocks and one busy back-end block without a stamp."""
    x64 = arch == "x64"
    s = site0
    ph.busy(0, M.alloc(s + 0))
    ph.busy(1, M.alloc(s + 1), fill=False)
    ph.freed(0x40, M.free(s + 2))
    ph.busy(0x123, M.alloc(s + 3))
    # x64: actual 0xFE0, user at vb + 0x1020, info [vb + 0xFE0, vb + 0x1020);
    # x86: actual 0xFE8, user at vb + 0x1018, info [vb + 0xFF8, vb + 0x1018).
    ph.busy(0xFD8 if x64 else 0xFE4, M.alloc(s + 4), fill=False)
    ph.freed(0x2000, M.free(s + 5))
    ph.busy(0x10008 if x64 else 0x10004, M.alloc(s + 6), capture="ends")
    ph.freed(0x77, M.free(s + 7), pages_still_committed=True)
    ph.busy(0x50, M.alloc(s + 1), fill=False)        # same stack as the 1-byte block
    nh = ph.normal_heap
    g = nh.entry.granularity
    ust = nh.ust

    def u(k: int):
        return M.backend(s + k) if ust else None

    seg = nh.segments[0]
    ph.normal_busy(0x20, M.alloc(s + 20), fill=False, ust_stack=u(20))
    ph.normal_busy(0, M.alloc(s + 21), ust_stack=u(21))
    seg.free(6 * g)
    ph.normal_busy(0x11, M.alloc(s + 22), ust_stack=u(22))
    ph.normal_freed(0x48, M.free(s + 23), ust_stack=u(23))
    ph.normal_busy(0x100, M.alloc(s + 24), fill=False, ust_stack=u(24))
    seg.busy(0x30, stack=u(25))                       # no _DPH_BLOCK_INFORMATION: plain backend
    ph.normal_freed(0x7, M.free(s + 26), ust_stack=u(26))
    ph.normal_busy(0x3FF, M.alloc(s + 20), ust_stack=u(27))   # shares the first block's stack
    seg.free(4 * g)


def _dph_probes(b: DumpBuilder, p: Process, pages: list[PageHeap], v: Verifier) -> list[dict]:
    out = [pr for pr in _peb_probes(b, p)
           if not pr.get("note", "").startswith("process heap itself")]
    arch = b.arch
    R = DPH_ROOT[arch]
    for ph in pages:
        h = ph.handle
        out.append(b.probe(h + SEGMENT_SIGNATURE_SLOT[arch], 4,
                           f"page heap {h:#x}: fake _HEAP segment-signature slot (0xEEEEEEEE)"))
        out.append(b.probe(h + FAKE_HEAP_FLAGS[arch][0], 8,
                           f"page heap {h:#x}: fake _HEAP Flags, ForceFlags"))
        out.append(b.probe(ph.root + R.signature, 8,
                           f"page heap {h:#x}: _DPH_HEAP_ROOT Signature, HeapFlags"))
        out.append(b.probe(ph.root + R.normal_heap, 2 * b.pointer_size,
                           f"page heap {h:#x}: NormalHeap, CreateStackTrace"))
        if ph.blocks:
            k = ph.blocks[0]
            out.append(b.probe(k.guard, 4, f"page heap {h:#x}: guard page of the first block"))
    out.append(b.probe(v.list_head, 2 * b.pointer_size, "verifier.dll: page-heap list head"))
    return out


def _finish_dph(name: str, description: str, b: DumpBuilder, p: Process, v: Verifier,
                db: StackTraceDatabase, order: list[tuple], *,
                unreachable: list[dict] | None = None) -> tuple[DumpBuilder, dict]:
    """``order``: ("page", PageHeap) | ("normal", PageHeap) in row order."""
    v.finish()
    db.finish()
    p.finish()
    pages = [x[1] for x in order if x[0] == "page"]
    b, exp = _finish(name, description, b, p, _dph_probes(b, p, pages, v))
    listed = list(p.heaps)
    heaps = []
    for kind, ph in order:
        if kind == "page":
            rec = ph.expected()
            at = ph.handle
        else:
            at = ph.normal_heap.address
            rec = ph.normal_expected(listed_in_peb=at in listed)
        rec["listed_in_peb"] = at in listed
        rec["process_heaps_index"] = listed.index(at) if at in listed else None
        heaps.append(rec)
    # Every ProcessHeaps entry appears once, in PEB order among the listed records.
    assert [h["address"] for h in heaps if h["listed_in_peb"]] == listed
    exp["heaps"] = heaps
    exp["page_heap_list"] = v.expected()
    exp["stack_trace_db"] = db.expected()
    exp["heap_conventions"] = HEAP_CONVENTIONS
    exp["page_heap_conventions"] = PAGE_HEAP_CONVENTIONS
    flag = p.nt_global_flag
    exp["nt_global_flag_bits"] = {"hpa": bool(flag & FLG_HEAP_PAGE_ALLOCS),
                                  "ust": bool(flag & FLG_USER_STACK_TRACE_DB)}
    exp["unreachable_heaps"] = unreachable or []
    exp["corruption"] = []
    return b, exp


# ---------------------------------------------------------------------------
def _single(name: str, arch: str, build: int, ust: bool, pid: int,
            description: str) -> tuple[DumpBuilder, dict]:
    plan = _PLAN[arch]
    ph_at, nh_at = plan["page_heaps"][0], plan["normal_heaps"][0]
    flag = FLG_HEAP_PAGE_ALLOCS | (FLG_USER_STACK_TRACE_DB if ust else 0)
    b, p, M = _process(arch, build, heaps=[ph_at], nt_global_flag=flag, pid=pid,
                       timestamp=1_700_800_000 + pid)
    db = StackTraceDatabase(b, plan["db"], arch)
    v = Verifier(b, M.verifier, arch=arch, stack_db=db, data_rva=plan["verifier_data_rva"])
    nh = _normal_heap(b, arch, build, nh_at, ust=ust, db=db, seed=pid, flags=PROCESS_HEAP_FLAGS,
                      index=0, fill_tag=0xB4)
    ph = v.create_heap(ph_at, normal_heap=nh, heap_flags=PROCESS_HEAP_FLAGS,
                       create_stack=M.create(0), tag=0xD1)
    _standard_blocks(ph, M, arch, site0=1)
    return _finish_dph(name, description, b, p, v, db, [("page", ph), ("normal", ph)])


def pageheap_x64() -> tuple[DumpBuilder, dict]:
    """+hpa on Windows 10 2004 x64 (build 19041): the process heap is a page heap whose
    NormalHeap is not in ProcessHeaps; full-page blocks (0, 1, odd, straddling, > 64 KiB; busy
    and freed) and light blocks (busy, held-freed), with page-heap stacks."""
    return _single("pageheap_x64", "x64", 19041, False, 0x3A10, pageheap_x64.__doc__ or "")


def pageheap_x86() -> tuple[DumpBuilder, dict]:
    """+hpa +ust on Windows 7 SP1 native x86 (build 7601): the process heap is a page heap
    whose NormalHeap (with +ust block headers) is not in ProcessHeaps; the same block mix as
    pageheap_x64."""
    return _single("pageheap_x86", "x86", 7601, True, 0x3A20, pageheap_x86.__doc__ or "")


def pageheap_two_heaps_x64() -> tuple[DumpBuilder, dict]:
    """+hpa +ust on Windows 11 24H2 x64 (build 26100): two page heaps on the NextHeap list;
    the first one's NormalHeap is not in ProcessHeaps, the second one's is (at index 1, before
    its page heap, where RtlCreateHeap would have added it while the page heap was being
    created): whether Windows lists it is UNCONFIRMED (doc 11.4), so both cases occur."""
    arch, build = "x64", 26100
    plan = _PLAN[arch]
    (pa, pb), (na, nb) = plan["page_heaps"], plan["normal_heaps"]
    flag = FLG_HEAP_PAGE_ALLOCS | FLG_USER_STACK_TRACE_DB
    b, p, M = _process(arch, build, heaps=[pa, nb, pb], nt_global_flag=flag, pid=0x3A30,
                       timestamp=1_730_000_000)
    db = StackTraceDatabase(b, plan["db"], arch)
    v = Verifier(b, M.verifier, arch=arch, stack_db=db, data_rva=plan["verifier_data_rva"])
    nha = _normal_heap(b, arch, build, na, ust=True, db=db, seed=0x3A31,
                       flags=PROCESS_HEAP_FLAGS, index=0, fill_tag=0xB5)
    pha = v.create_heap(pa, normal_heap=nha, heap_flags=PROCESS_HEAP_FLAGS,
                        create_stack=M.create(1), tag=0xD2)
    _standard_blocks(pha, M, arch, site0=40)
    nhb = _normal_heap(b, arch, build, nb, ust=True, db=db, seed=0x3A32,
                       flags=PRIVATE_HEAP_FLAGS, index=2, fill_tag=0xB6)
    phb = v.create_heap(pb, normal_heap=nhb, heap_flags=PRIVATE_HEAP_FLAGS,
                        create_stack=M.create(2), tag=0xD3)
    phb.busy(0x400, M.alloc(80), fill=False)
    phb.freed(0x18, M.free(81))
    phb.busy(0x33, M.alloc(82))
    phb.busy(0x1001, M.alloc(83), fill=False)        # two access pages
    phb.freed(0x200, M.free(84))
    phb.normal_busy(0x40, M.alloc(85), fill=False, ust_stack=M.backend(85))
    phb.normal_freed(0x19, M.free(86), ust_stack=M.backend(86))
    phb.normal_busy(0x8, M.alloc(87), ust_stack=M.backend(87))
    nhb.segments[0].free(0x60)
    phb.normal_busy(0x99, M.alloc(80), fill=False, ust_stack=M.backend(88))
    return _finish_dph("pageheap_two_heaps_x64", pageheap_two_heaps_x64.__doc__ or "", b, p,
                       v, db, [("page", pha), ("normal", pha), ("normal", phb), ("page", phb)])


def pageheap_not_captured_x64() -> tuple[DumpBuilder, dict]:
    """+hpa on Windows 10 2004 x64: two page heaps in ProcessHeaps; the second one's fake
    _HEAP page is in the dump but its _DPH_HEAP_ROOT page is not (region MEM_COMMIT), so it is
    recognised as a page heap and not walked (reason not_captured); its NormalHeap, reachable
    only through that root, is in the dump but unreachable."""
    arch, build = "x64", 19041
    plan = _PLAN[arch]
    (pa, pb), (na, nb) = plan["page_heaps"], plan["normal_heaps"]
    b, p, M = _process(arch, build, heaps=[pa, pb], nt_global_flag=FLG_HEAP_PAGE_ALLOCS,
                       pid=0x3A40, timestamp=1_700_900_000)
    db = StackTraceDatabase(b, plan["db"], arch)
    # Few traces here: start the database indexes at 5 so some lie above Depth, some below.
    v = Verifier(b, M.verifier, arch=arch, stack_db=db, data_rva=plan["verifier_data_rva"],
                 first_index=5)
    nha = _normal_heap(b, arch, build, na, ust=False, db=db, seed=0x3A41,
                       flags=PROCESS_HEAP_FLAGS, index=0, fill_tag=0xB7)
    pha = v.create_heap(pa, normal_heap=nha, heap_flags=PROCESS_HEAP_FLAGS,
                        create_stack=M.create(3), tag=0xD4)
    pha.busy(0x64, M.alloc(90), fill=False)
    pha.freed(0x28, M.free(91))
    pha.busy(0x3, M.alloc(92))
    pha.normal_busy(0x31, M.alloc(93), fill=False)
    pha.normal_freed(0x10, M.free(94))
    nhb = _normal_heap(b, arch, build, nb, ust=False, db=db, seed=0x3A42,
                       flags=PRIVATE_HEAP_FLAGS, index=0, fill_tag=0xB8)
    phb = v.create_heap(pb, normal_heap=nhb, heap_flags=PRIVATE_HEAP_FLAGS,
                        create_stack=M.create(4), capture_root=False, tag=0xD5)
    phb.busy(0x80, M.alloc(95), fill=False)
    phb.freed(0x20, M.free(96))
    phb.normal_busy(0x24, M.alloc(97))
    unreachable = [{"address": nb, "type": "nt", "page_heap_owner": pb,
                    "why": "only the uncaptured _DPH_HEAP_ROOT.NormalHeap points at it and no "
                           "PEB lists it; its pages are in the dump"}]
    return _finish_dph("pageheap_not_captured_x64", pageheap_not_captured_x64.__doc__ or "", b,
                       p, v, db, [("page", pha), ("normal", pha), ("page", phb)],
                       unreachable=unreachable)


PAGEHEAP_SCENARIOS: dict[str, Callable[[], tuple[DumpBuilder, dict]]] = {
    "pageheap_x64": pageheap_x64,
    "pageheap_x86": pageheap_x86,
    "pageheap_two_heaps_x64": pageheap_two_heaps_x64,
    "pageheap_not_captured_x64": pageheap_not_captured_x64,
}
