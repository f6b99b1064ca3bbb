"""Low Fragmentation Heap scenarios: small whole-process dumps whose NT heaps have an LFH
front end (lfh.py), with the exact rows a reader must emit (docs/block-model.md).

Each scenario is a heap scenario (scenarios._finish_heaps: heaps[], heaps32[],
stack_trace_db, heap_conventions, corruption[]); its LFH heaps carry ``lfh`` (see
lfh.Lfh.expected) and their blocks[] hold the lfh_heap / lfh_zone / lfh_container rows at
level 0 and the overhead / lfh_block rows of every decoded container at level 1.  Extra
top-level keys:

    lfh_conventions    lfh.CONVENTIONS: every choice the builder made where
                       windows-heap-layouts.md leaves room
    lfh_keys           {"native": RtlpLFHKey of the dump's ntdll (u32) or null,
                        "wow64": the 32-bit ntdll's (WOW64 only)}

Scenarios (builds: 7601 Win7 SP1, 9200 Win8.0, 9600 Win8.1, 14393 Win10 1607 (1507-1803
_HEAP row), 19041 Win10 2004 (1809+ row), 26100 Win11 24H2):

    lfh_win7_x86, lfh_win7_x64, lfh_win81_x86, lfh_win81_x64, lfh_win10_1607_x86,
    lfh_win10_1607_x64, lfh_win10_x86, lfh_win10_x64, lfh_win11_x64,
    lfh_ust_win10_x64, lfh_ust_win7_x86, lfh_wow64_win10, lfh_win8_x64,
    lfh_mis_keyed_x64, lfh_ub_not_captured_x64
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .builder import DumpBuilder
from .heap import NtHeap, StackTraceDatabase
from .heap_layouts import (
    FLG_USER_STACK_TRACE_DB,
    HEAP_CAPTURE_STACK_BACKTRACES,
    PRIVATE_HEAP_FLAGS,
    PROCESS_HEAP_FLAGS,
    epoch_for_build,
)
from .lfh import CONVENTIONS as LFH_CONVENTIONS
from .lfh import Lfh, Zone, lfh_key
from .process import PEB32, Process, Wow64
from .scenarios import (
    _HEAP_PLAN,
    GUID_EXE,
    GUID_NTDLL,
    GUID_WKERNEL32,
    GUID_WNTDLL,
    GUID_WOW64,
    GUID_WOW64CPU,
    GUID_WOW64WIN,
    HEAP_OS,
    _finish_heaps,
    _heap_probes,
    _heap_process,
    _Mods,
    _plan_blocks,
)

Scenario = Callable[[], "tuple[DumpBuilder, dict]"]

# XORed into a process key to get the key a mis-keyed container was written with: both halves
# non-zero, so E1 gives a wrong Stride and E2 a non-zero low half (doc 9.9 step 5 fails).
MIS_KEY_XOR = 0x3C5AA5C3

# Block classes: (block bytes = BlockSize * granularity, block count, requests cycled over the
# busy blocks, every how many-th block is free).  Requests keep unused >= 8 (doc 9.7); the
# win81 classes include unused >= 0x3F (the 0xBF form), exactly 0x3F and 0x3E on x86/x64;
# the Windows 7 / 8.0 ones stay below 0x3F; the +ust ones keep extra >= 0x28 x64 / 0x18 x86
# (doc 11.3).
_CLASSES: dict[tuple[str, str], list[tuple[int, int, tuple[int, ...], int]]] = {
    ("x64", "win81"): [(0x30, 12, (0x18, 0x20, 0x28, 0x1, 0x0, 0x27), 5),
                       (0x80, 9, (0x78, 0x10, 0x41, 0x0, 0x42, 0x60), 4),
                       (0x100, 4, (0xF8, 0x20, 0xC1), 3)],
    ("x86", "win81"): [(0x18, 12, (0x10, 0x8, 0x1, 0x0, 0xF), 5),
                       (0x40, 9, (0x38, 0x1, 0x2, 0x0, 0x20), 4),
                       (0x80, 4, (0x78, 0x10, 0x41), 3)],
    ("x64", "old"): [(0x30, 12, (0x18, 0x20, 0x28, 0x1, 0x0), 5),
                     (0x60, 8, (0x58, 0x30, 0x22), 4),
                     (0x100, 4, (0xF8, 0xC2), 3)],
    ("x86", "old"): [(0x18, 12, (0x10, 0x8, 0x1, 0x0), 5),
                     (0x40, 8, (0x38, 0x2, 0x20), 4),
                     (0x80, 4, (0x78, 0x42), 3)],
    ("x64", "ust"): [(0x60, 10, (0x38, 0x20, 0x1, 0x0), 4),
                     (0xA0, 6, (0x78, 0x50), 3)],
    ("x86", "ust"): [(0x30, 10, (0x18, 0x10, 0x1, 0x0), 4),
                     (0x50, 6, (0x38, 0x21, 0x8), 3)],
}


def _classes(arch: str, model: str, ust: bool):
    if ust:
        return _CLASSES[(arch, "ust")]
    return _CLASSES[(arch, "win81" if model == "win81" else "old")]


def _specs(n: int, requests: Sequence[int], free_every: int,
           stack: Callable[[int], list[int]] | None = None, site0: int = 0) -> list[tuple]:
    """n block specs: every free_every-th block free, the others busy with the requests in
    turn; with ``stack``, two busy blocks in three get a +ust stack (the third has none)."""
    out: list[tuple] = []
    j = 0
    for k in range(n):
        if free_every and k % free_every == free_every - 1:
            out.append(("f",))
            continue
        req = requests[j % len(requests)]
        if stack is not None and j % 3 != 2:
            out.append(("b", req, stack(site0 + j)))
        else:
            out.append(("b", req))
        j += 1
    return out


def _cls_specs(cls, stack=None, site0: int = 0, n: int | None = None) -> tuple[int, list[tuple]]:
    size, count, reqs, every = cls
    return size, _specs(count if n is None else n, reqs, every, stack, site0)


def _populate(lfh: Lfh, *, stack: Callable[[int], list[int]] | None = None, guard: int = 0,
              mis_key_third: bool = False, not_captured: bool = False, fourth: bool = False,
              many_zones: bool = False) -> None:
    """The standard LFH content of a heap: one zone with a class-A container, a retired
    descriptor, class-B and class-C containers, optional extras."""
    h = lfh.heap
    classes = _classes(h.arch, lfh.model, h.ust)
    seg = h.segments[0]
    z1 = lfh.zone()
    seg.busy(0x30, stack=stack(40) if stack else None)         # an ordinary block between
    size, specs = _cls_specs(classes[0], stack, 0)
    lfh.subsegment(z1, size, specs)
    lfh.retired(z1, classes[1][0], 20)
    size, specs = _cls_specs(classes[1], stack, 7)
    lfh.subsegment(z1, size, specs)
    if not_captured:
        size, specs = _cls_specs(classes[0])
        lfh.subsegment(z1, size, page_aligned_pages=2, fill=specs, not_captured=True)
    if len(classes) > 2:
        size, specs = _cls_specs(classes[2], stack, 13)
        key = lfh.key ^ MIS_KEY_XOR if mis_key_third else None
        lfh.subsegment(z1, size, specs, slack=h.entry.granularity, write_key=key)
    seg.free(4 * h.entry.granularity)
    if fourth:
        size, specs = _cls_specs(classes[0], n=9)
        lfh.subsegment(z1, size, specs)
    if guard:
        # User block 0x100 (BlockSize 0x11): 0x110 - 0x100 = 0x10 unused; 0x110 - 0x80 = 0x90
        # unused (0xBF form).
        lfh.subsegment(z1, 0x110, [("b", 0x100), ("f",), ("b", 0x80)], guard=guard)
    if many_zones:
        _fill_zone(lfh, z1)
        z2 = lfh.zone()
        lfh.retired(z2, classes[0][0], 7)
        size, specs = _cls_specs(classes[1], n=5)
        lfh.subsegment(z2, size, specs)
        lfh.subsegment(z2, 0x210, [("f",), ("b", 0x1F0)], guard=2)


def _fill_zone(lfh: Lfh, z: Zone) -> None:
    """Fill ``z`` to its capacity with small class-A containers and let NextIndex run two past
    it (doc 9.2: failed attempts keep incrementing)."""
    cls = _classes(lfh.arch, lfh.model, lfh.heap.ust)[0]
    k = 0
    while len(z.slots) < z.capacity:
        size, specs = _cls_specs(cls, n=2 + k % 2)
        if k % 5 == 4:
            specs[-1] = ("f",)
        lfh.subsegment(z, size, specs)
        k += 1
    lfh.overfill(z, 2)


# ---------------------------------------------------------------------------
def _lfh_heaps(b: DumpBuilder, arch: str, build: int, *, key: int | None, seed: int,
               ust: bool = False, db: StackTraceDatabase | None = None, mods: _Mods | None = None,
               plan: dict | None = None, lfh_on_h1: bool = False,
               **populate: Any) -> list[NtHeap]:
    """Process heap with an LFH (and a plain virtual block), private heap without one (or with
    a small one, sharing the process key)."""
    plan = plan or _HEAP_PLAN[arch]
    epoch = epoch_for_build(build)
    x64 = arch == "x64"
    extra = HEAP_CAPTURE_STACK_BACKTRACES if ust else 0
    stack = (lambda site: mods.stack(site % 6)) if ust and mods is not None else None
    if x64:
        run0 = 0x3000 + (0x8000 if populate.get("guard") else 0) + \
            (0x6000 if populate.get("many_zones") else 0) + \
            (0x2000 if populate.get("not_captured") else 0)
        committed = [(0, run0), (0x20000, 0x1000)]
    else:
        committed = [(0, 0x2000), (0x8000, 0x1000)]
    h0 = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch, seed=seed, ust=ust, stack_db=db,
                flags=PROCESS_HEAP_FLAGS | extra, reserve=0x40000 if x64 else 0x20000,
                committed=committed, process_heaps_index=1, fill_tag=0xA1)
    s = h0.segments[0]
    s.busy(0x48, stack=stack(1) if stack else None)
    s.busy(0x100, stack=stack(2) if stack else None)
    s.free(0x60 if x64 else 0x30)
    virt = plan["virt0"][0]
    lfh = Lfh(h0, build=build, key=key, seed=seed + 0x1F, virtual_address=virt)
    _populate(lfh, stack=stack, **populate)
    s.busy(0x200, stack=stack(3) if stack else None)
    s.next_run()
    s.busy(0x80)
    h0.add_virtual(plan["virt1"][0], 0x23456, capture="head", stack=stack(4) if stack else None)

    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=seed + 1, ust=ust, stack_db=db,
                flags=PRIVATE_HEAP_FLAGS | extra, reserve=0x10000,
                committed=[(0, 0x2000 if lfh_on_h1 else 0x1000)], process_heaps_index=2,
                fill_tag=0xA2)
    _plan_blocks(h1.segments[0], [("b", 0x20), ("b", 0x400), ("f", 2), ("b", 0x11)], None)
    if lfh_on_h1:
        lfh1 = Lfh(h1, build=build, key=key, seed=seed + 0x2F, virtual_address=plan["virt_h1"][0])
        z = lfh1.zone()
        size, specs = _cls_specs(_classes(arch, lfh1.model, ust)[1], n=8)
        lfh1.subsegment(z, size, specs)
        lfh1.retired(z, size, 3)
    return [h0, h1]


def _front_end_probes(b: DumpBuilder, heaps: list[NtHeap]) -> list[dict]:
    out = []
    for h in heaps:
        if h.lfh is None:
            continue
        out.append(b.probe(h.address + h.layout.front_end_heap, h.ptr,
                           f"heap {h.address:#x}: FrontEndHeap"))
        out.append(b.probe(h.address + h.layout.front_end_heap_type, 1,
                           f"heap {h.address:#x}: FrontEndHeapType"))
    return out


def _finish_lfh(name: str, description: str, b: DumpBuilder, p: Process, heaps: list[NtHeap], *,
                db: StackTraceDatabase | None = None, keys: dict | None = None,
                heaps32: list[NtHeap] | None = None, probes: list[dict] | None = None,
                finish_process: bool = True) -> tuple[DumpBuilder, dict]:
    b, exp = _finish_heaps(name, description, b, p, heaps, heaps32=heaps32, db=db,
                           probes=probes, finish_process=finish_process)
    exp["probe_reads"] += _front_end_probes(b, list(heaps) + list(heaps32 or []))
    exp["lfh_conventions"] = LFH_CONVENTIONS
    exp["lfh_keys"] = keys if keys is not None else {"native": None}
    return b, exp


def _standard(name: str, arch: str, build: int, *, description: str, pid: int,
              ust: bool = False, **populate: Any) -> tuple[DumpBuilder, dict]:
    plan = _HEAP_PLAN[arch]
    b, p, mods = _heap_process(arch, build, heaps=[plan["heap0"], plan["heap1"]],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB if ust else 0, pid=pid,
                               timestamp=1_700_800_000 + build)
    db = StackTraceDatabase(b, plan["db"], arch) if ust else None
    key = lfh_key(pid * 7919 + build) if build >= 9600 else None
    heaps = _lfh_heaps(b, arch, build, key=key, seed=pid, ust=ust, db=db, mods=mods, **populate)
    return _finish_lfh(name, description, b, p, heaps, db=db, keys={"native": key})


def _epoch_scenario(name: str, arch: str, build: int, pid: int, **populate: Any) -> Scenario:
    def make() -> tuple[DumpBuilder, dict]:
        epoch = epoch_for_build(build)
        extras = []
        if populate.get("guard"):
            extras.append(f"a guard-page subsegment (Flags {populate['guard']})")
        if populate.get("many_zones"):
            extras.append("two zones (the first full, NextIndex two past its capacity)")
        if populate.get("lfh_on_h1"):
            extras.append("the private heap has its own LFH with the same process key")
        desc = (f"{arch} process on build {build} ({epoch} _HEAP row): the process heap has an "
                f"LFH front end (zone, containers of three block sizes, a retired descriptor"
                + ("" if build < 9600 else ", busy blocks in the 0xBF overflow form")
                + (", " + ", ".join(extras) if extras else "")
                + "), ordinary back-end blocks, an uncommitted range and a virtual block; a "
                  "private heap")
        return _standard(name, arch, build, description=desc, pid=pid, **populate)
    make.__name__ = name
    make.__doc__ = f"LFH front end, {arch}, build {build}."
    return make


def lfh_ust_win10_x64() -> tuple[DumpBuilder, dict]:
    """+ust on Windows 10 2004 x64: busy LFH blocks have UnusedBytes 0xC2 and the section 11.3
    header (trace pointer, u16 extra, user data at +0x30); stacks from the trace database."""
    return _standard("lfh_ust_win10_x64", "x64", 19041, ust=True, pid=0x4A10,
                     description=lfh_ust_win10_x64.__doc__ or "")


def lfh_ust_win7_x86() -> tuple[DumpBuilder, dict]:
    """+ust on Windows 7 SP1 x86: busy LFH blocks 0xC2 with the +ust header (user data at
    +0x18); the _LFH_HEAP in a virtual block (user data at VAE+0x30)."""
    return _standard("lfh_ust_win7_x86", "x86", 7601, ust=True, pid=0x4A20,
                     description=lfh_ust_win7_x86.__doc__ or "")


def lfh_win8_x64() -> tuple[DumpBuilder, dict]:
    """Windows 8.0 x64 (build 9200): an LFH written with the 8.0 header shape (plain
    FirstAllocationOffset/BlockStride, bitmap, FreePointer zone); the 8.0 block encoding is
    UNCONFIRMED, so a reader reports every container not_decoded unsupported_build, no
    children, and lfh.key null."""
    return _standard("lfh_win8_x64", "x64", 9200, pid=0x4A30,
                     description=lfh_win8_x64.__doc__ or "")


def lfh_mis_keyed_x64() -> tuple[DumpBuilder, dict]:
    """Windows 10 2004 x64, four containers; the third one's EncodedOffsets and block codes
    were written with another key (process key ^ 0x3C5AA5C3): the process key is still the
    real one, that container is not_decoded corrupt (corruption record lfh_bad_encoding),
    the others are decoded."""
    return _standard("lfh_mis_keyed_x64", "x64", 19041, pid=0x4A40, mis_key_third=True,
                     fourth=True, description=lfh_mis_keyed_x64.__doc__ or "")


def lfh_ub_not_captured_x64() -> tuple[DumpBuilder, dict]:
    """Windows 10 2004 x64: one container's UserBlocks start on a page boundary and its two
    pages are left out of the dump (region still MEM_COMMIT): not_decoded not_captured and a
    corruption record not_captured; the back-end walk and the other containers are
    unaffected."""
    return _standard("lfh_ub_not_captured_x64", "x64", 19041, pid=0x4A50, not_captured=True,
                     description=lfh_ub_not_captured_x64.__doc__ or "")


def lfh_wow64_win10() -> tuple[DumpBuilder, dict]:
    """WOW64 on Windows 10 2004: a 64-bit heap (x64 1809+ row) with an LFH keyed by the 64-bit
    ntdll's RtlpLFHKey, and two 32-bit heaps (x86 1809+ row), the first with an LFH keyed by the
    32-bit ntdll's own, different, key."""
    build = 19041
    os_version, csd, nv = HEAP_OS[build]
    b = DumpBuilder(arch="x64", os_version=os_version, csd_version=csd,
                    timestamp=1_700_900_000, pid=0x4A60, process_create_time=1_700_899_500,
                    number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files (x86)\Leaky\leaky32.exe", base=0x00F60000,
                       size=0x1D000, file_version=(1, 2, 0, 0), timestamp=0x5FF3A1B0,
                       pdb_name=r"C:\build\leaky\Win32\Release\leaky32.pdb", pdb_guid=GUID_EXE,
                       pdb_age=5)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x7FFB5C6D0000, size=0x1F5000,
                         file_version=nv, timestamp=0x9F1F4A6C, pdb_name="ntdll.pdb",
                         pdb_guid=GUID_NTDLL, pdb_age=1)
    w64 = b.add_module(path=r"C:\Windows\System32\wow64.dll", base=0x7FFB5B970000, size=0x59000,
                       file_version=nv, timestamp=0x1A2B3C4D, pdb_name="wow64.pdb",
                       pdb_guid=GUID_WOW64, pdb_age=1)
    w64win = b.add_module(path=r"C:\Windows\System32\wow64win.dll", base=0x7FFB5B8F0000,
                          size=0x7F000, file_version=nv, timestamp=0x1A2B3C4E,
                          pdb_name="wow64win.pdb", pdb_guid=GUID_WOW64WIN, pdb_age=1)
    w64cpu = b.add_module(path=r"C:\Windows\System32\wow64cpu.dll", base=0x77C40000, size=0xA000,
                          file_version=nv, timestamp=0x1A2B3C4F, pdb_name="wow64cpu.pdb",
                          pdb_guid=GUID_WOW64CPU, pdb_age=1)
    ntdll32 = b.add_module(path=r"C:\Windows\SysWOW64\ntdll.dll", base=0x77A50000, size=0x1A4000,
                           file_version=nv, timestamp=0x2B3C4D5E, pdb_name="wntdll.pdb",
                           pdb_guid=GUID_WNTDLL, pdb_age=1)
    k32 = b.add_module(path=r"C:\Windows\SysWOW64\KERNEL32.DLL", base=0x76E20000, size=0xF0000,
                       file_version=nv, timestamp=0x2B3C4D5F, pdb_name="wkernel32.pdb",
                       pdb_guid=GUID_WKERNEL32, pdb_age=1)
    array64, array32 = 0x7FFB5C83D2C0, 0x77B7E4A0
    for m in (exe, w64, w64win, w64cpu, k32):
        b.add_image_regions(m)
    b.add_image_regions(ntdll, writable=((array64, array64 + 16 * 8),))
    b.add_image_regions(ntdll32, writable=((array32, array32 + 16 * 4),))
    key64, key32 = lfh_key(0x64640001), lfh_key(0x32320002)
    assert key64 != key32

    h64 = NtHeap(b, 0x00E30000, arch="x64", epoch="win10_1809", seed=0x6464,
                 flags=PROCESS_HEAP_FLAGS, reserve=0x20000, committed=[(0, 0x3000)],
                 process_heaps_index=1, fill_tag=0xC4)
    _plan_blocks(h64.segments[0], [("b", 0x30), ("b", 0x1), ("f", 3), ("b", 0x148)], None)
    lfh64 = Lfh(h64, build=build, key=key64, seed=0x6465)
    z = lfh64.zone()
    for cls in _classes("x64", "win81", False)[:2]:
        size, specs = _cls_specs(cls)
        lfh64.subsegment(z, size, specs)
    lfh64.retired(z, 0x40, 11)

    plan32 = dict(_HEAP_PLAN["x86"], heap0=0x01150000, heap1=0x01280000,
                  virt0=(0x03B20000, 0, None), virt1=(0x03C30000, 0, None))
    h32a = NtHeap(b, plan32["heap0"], arch="x86", epoch="win10_1809", seed=0x3232,
                  flags=PROCESS_HEAP_FLAGS, reserve=0x20000, committed=[(0, 0x2000)],
                  process_heaps_index=1, fill_tag=0xB1)
    _plan_blocks(h32a.segments[0], [("b", 0x48), ("b", 0x100), ("f", 6)], None)
    lfh32 = Lfh(h32a, build=build, key=key32, seed=0x3233)
    _populate(lfh32)
    h32b = NtHeap(b, plan32["heap1"], arch="x86", epoch="win10_1809", seed=0x3234,
                  flags=PRIVATE_HEAP_FLAGS, reserve=0x10000, committed=[(0, 0x1000)],
                  process_heaps_index=2, fill_tag=0xB2)
    _plan_blocks(h32b.segments[0], [("b", 0x20), ("f", 4), ("b", 0x11)], None)
    heaps32 = [h32a, h32b]

    wow = Wow64(peb32=0x00B2F000, teb32_offset=0x2000, process_heap=h32a.address,
                heaps=[h.address for h in heaps32], process_heaps_array=array32,
                nt_global_flag=0, max_heaps=16, ldr=0x77B7D000)
    p = Process(b, peb=0x00B2D000, image_base=exe.base, ldr=0x7FFB5C83C4C0, nt_global_flag=0,
                heaps=[h64.address], max_heaps=16, process_heaps_array=array64, wow64=wow)
    p.add_thread(0x2B34, teb=0x00B31000, stack_start=0x00D7E000, stack_size=0x2000,
                 stack32_base=0x00C90000, stack32_limit=0x00C8C000)
    for h in [h64] + heaps32:
        h.finish()
    p.finish()
    probes = _heap_probes(b, p, [h64] + heaps32)
    probes.append(b.probe(wow.peb32 + PEB32.process_heap, 4, "PEB32.ProcessHeap"))
    probes.append(b.probe(array32, 8, "PEB32 ProcessHeaps[]"))
    return _finish_lfh("lfh_wow64_win10", lfh_wow64_win10.__doc__ or "", b, p, [h64],
                       heaps32=heaps32, probes=probes, finish_process=False,
                       keys={"native": key64, "wow64": key32})


LFH_SCENARIOS: dict[str, Scenario] = {
    "lfh_win7_x86": _epoch_scenario("lfh_win7_x86", "x86", 7601, 0x4B01),
    "lfh_win7_x64": _epoch_scenario("lfh_win7_x64", "x64", 7601, 0x4B02),
    "lfh_win81_x86": _epoch_scenario("lfh_win81_x86", "x86", 9600, 0x4B03),
    "lfh_win81_x64": _epoch_scenario("lfh_win81_x64", "x64", 9600, 0x4B04),
    "lfh_win10_1607_x86": _epoch_scenario("lfh_win10_1607_x86", "x86", 14393, 0x4B05),
    "lfh_win10_1607_x64": _epoch_scenario("lfh_win10_1607_x64", "x64", 14393, 0x4B06, guard=2),
    "lfh_win10_x86": _epoch_scenario("lfh_win10_x86", "x86", 19041, 0x4B07),
    "lfh_win10_x64": _epoch_scenario("lfh_win10_x64", "x64", 19041, 0x4B08, guard=1,
                                     lfh_on_h1=True),
    "lfh_win11_x64": _epoch_scenario("lfh_win11_x64", "x64", 26100, 0x4B09, guard=1,
                                     many_zones=True),
    "lfh_ust_win10_x64": lfh_ust_win10_x64,
    "lfh_ust_win7_x86": lfh_ust_win7_x86,
    "lfh_wow64_win10": lfh_wow64_win10,
    "lfh_win8_x64": lfh_win8_x64,
    "lfh_mis_keyed_x64": lfh_mis_keyed_x64,
    "lfh_ub_not_captured_x64": lfh_ub_not_captured_x64,
}


# ---------------------------------------------------------------------------------------------
# The same LFH with the real ntdll stand-in of tests/pdb mapped (ntdll.py), so that a reader
# given tests/pdb/ntdll_x64 as its symbol path can read RtlpLFHKey through the PDB.

def _lfh_with_ntdll(name: str, description: str, *, symbol_value: str,
                    mismatch: str | None = None) -> tuple[DumpBuilder, dict]:
    """symbol_value: "key" writes the process key into ntdll!RtlpLFHKey (upper half random, as
    only the low 32 bits enter the encodings, doc 9.6); "other" writes a different value."""
    from .ntdll import add_ntdll_pdb_module
    from .ntdll_scenarios import PROCESS_HEAPS_ARRAY_X64
    from .scenarios import GUID_EXE, GUID_KERNEL32, HEAP_OS

    arch, build, pid = "x64", 19041, 0x4A60 + (0 if mismatch is None else 2) + (0 if symbol_value == "key" else 1)
    os_version, csd, ntdll_version = HEAP_OS[build]
    plan = _HEAP_PLAN[arch]
    timestamp = 1_700_900_000 + pid
    b = DumpBuilder(arch=arch, os_version=os_version, csd_version=csd, timestamp=timestamp,
                    pid=pid, process_create_time=timestamp - 900, number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"], size=0x26000,
                       file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3,
                       pdb_name=r"C:\build\leaky\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=3)
    key = lfh_key(pid * 7919 + build)
    value = (0x5A17_0000 << 32 | key) if symbol_value == "key" else (0x5A17_0000 << 32 | (key ^ 0x0BAD_F00D))
    facts = add_ntdll_pdb_module(b, arch, plan["ntdll"], values={"RtlpLFHKey": value},
                                 file_version=ntdll_version, mismatch=mismatch)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=plan["k32"], size=0xBD000,
                       file_version=ntdll_version, timestamp=0x4CE7B8F0, pdb_name="kernel32.pdb",
                       pdb_guid=GUID_KERNEL32, pdb_age=1)
    for m in (exe, k32):
        b.add_image_regions(m)
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"], nt_global_flag=0,
                heaps=[plan["heap0"], plan["heap1"]], max_heaps=16,
                process_heaps_array=PROCESS_HEAPS_ARRAY_X64)
    for i, (teb, (stack, size)) in enumerate(zip(plan["tebs"], plan["stacks"])):
        p.add_thread(0x4A64 + 4 * i, teb=teb, stack_start=stack, stack_size=size)
    heaps = _lfh_heaps(b, arch, build, key=key, seed=pid)
    b, exp = _finish_lfh(name, description, b, p, heaps, keys={"native": key})
    exp["ntdll_pdb"] = facts
    exp["symbol_key"] = None if mismatch else value & 0xFFFFFFFF
    return b, exp


def lfh_symbol_key_x64() -> tuple[DumpBuilder, dict]:
    """Windows 10 2004 x64 LFH with the real ntdll stand-in (tests/pdb/ntdll_x64) mapped and
    ntdll!RtlpLFHKey holding the process key: with that PDB on the symbol path the key is read
    through the symbol and agrees with the one recovered from the containers."""
    return _lfh_with_ntdll("lfh_symbol_key_x64", lfh_symbol_key_x64.__doc__ or "", symbol_value="key")


def lfh_symbol_key_wrong_x64() -> tuple[DumpBuilder, dict]:
    """As lfh_symbol_key_x64, but ntdll!RtlpLFHKey holds another value (symbol_key): the symbol
    and the containers disagree; the key that decodes the containers (lfh_keys.native) wins."""
    return _lfh_with_ntdll("lfh_symbol_key_wrong_x64", lfh_symbol_key_wrong_x64.__doc__ or "",
                           symbol_value="other")


def lfh_symbol_key_mismatch_x64() -> tuple[DumpBuilder, dict]:
    """As lfh_symbol_key_wrong_x64, but the mapped ntdll's CodeView GUID differs from the PDB's:
    the PDB must be ignored (symbol_key null), and the key is recovered from the dump."""
    return _lfh_with_ntdll("lfh_symbol_key_mismatch_x64", lfh_symbol_key_mismatch_x64.__doc__ or "",
                           symbol_value="other", mismatch="guid")


LFH_SCENARIOS.update({
    "lfh_symbol_key_x64": lfh_symbol_key_x64,
    "lfh_symbol_key_wrong_x64": lfh_symbol_key_wrong_x64,
    "lfh_symbol_key_mismatch_x64": lfh_symbol_key_mismatch_x64,
})
