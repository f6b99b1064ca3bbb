"""+ust stack scenarios: PE images with export directories, and the expected text of
every frame.

Each scenario is a heap scenario (scenarios._finish_heaps: heaps[], stack_trace_db,
...) whose modules carry mapped PE images (DumpBuilder.add_pe_module), plus:

    symbols            {conventions, allocator_rule, modules[] (exports_status,
                        usable_exports, corruption), clr_module}
    stack_blocks[]     every +ust block with a trace pointer, by address:
                        {heap, kind, address, (vae_address), user_address, user_size,
                         stack_trace_entry, trace_captured, frames[], frame_texts[],
                         jit_or_unknown[], stack_id} (+ expected_with_pdb[],
                         expected_without_pdb[] in the PDB scenarios)
    stacks[]           one per distinct frame list: {stack_id, key, frames, frame_texts,
                        jit_or_unknown, grouping_module, trace_entries[], block_count,
                        user_bytes}
    blocks_without_stack[]   +ust blocks whose trace pointer is 0
    shared_trace_entries[]   entries that several blocks point at (dedupe by entry)
    stacks_with_several_entries[]  stack ids backed by 2+ distinct entries whose frame
                                   lists are identical (the reader must still give
                                   them one stack)
    untraceable_blocks[]     blocks whose trace entry is not in the dump
    seed               (stacks_win7_x64 only) the halcon case, spelled out

The addresses are chosen so that every text rule of symbols.TEXT_CONVENTIONS is
exercised: frames into exports, at an export's first byte (no +0x0), before a
module's first export, in a module without an export directory (the .exe), in a
module whose image is not captured (KERNELBASE), in no module (JIT code, with
clr.dll or coreclr.dll loaded), and past forwarded exports (KERNEL32's HeapAlloc
forwarder is never a symbol).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from . import structs as fmt
from .builder import DumpBuilder, Module
from .heap import NtHeap, StackTraceDatabase
from .heap_layouts import (
    FLG_USER_STACK_TRACE_DB,
    HEAP_CAPTURE_STACK_BACKTRACES,
    PRIVATE_HEAP_FLAGS,
    PROCESS_HEAP_FLAGS,
    epoch_for_build,
)
from .pe import SCN_DATA, SCN_RDATA, SCN_TEXT
from .process import Process
from .scenarios import (
    GUID_EXE,
    GUID_KERNEL32,
    GUID_KERNELBASE,
    GUID_NTDLL,
    GUID_UCRT,
    HEAP_OS,
    _HEAP_PLAN,
    _finish_heaps,
)
from .symbols import (
    ALLOCATOR_RULE,
    PDB_DIR,
    TEXT_CONVENTIONS,
    Symbolizer,
    stack_report,
    tiny_pdb,
)

GUID_HALCON = uuid.UUID("5D0C8A3E-1B7F-4C26-9E41-7A2B3C4D5E6F")
GUID_CLR = uuid.UUID("7C4B1E92-3A5D-4F60-8B17-2C9D0E1F3A4B")
GUID_CORECLR = uuid.UUID("2F1E0D9C-8B7A-4695-A4B3-C2D1E0F9A8B7")
GUID_VISION = uuid.UUID("11223344-5566-4778-899A-ABBCCDDEEFF0")
GUID_CODEC = uuid.UUID("99887766-5544-4332-A110-FFEEDDCCBBAA")

# ---- export tables (RVAs) ------------------------------------------------------
HALCON_EXPORTS = {
    "CCallHProc": 0x0003A2C0, "HCancelWait": 0x000512A0, "HXAllocTmp": 0x00114F30,
    "HXAllocRLTmp": 0x00116A10, "HXAllocLocal": 0x0011A000, "HXmalloc": 0x0011D4C0,
    "HXfree": 0x0011D620, "HXrealloc": 0x0011D7A0, "T_read_image": 0x002A4000,
    "T_threshold": 0x003B1200,
}
# The seed stack (innermost first): halcon!HXmalloc+0x8b <- HXAllocRLTmp+0x265d <-
# HXAllocTmp+0xa80 <- HCancelWait+0x7a <- CCallHProc+0x73f <- a JIT frame.
SEED = (("HXmalloc", 0x8B), ("HXAllocRLTmp", 0x265D), ("HXAllocTmp", 0xA80),
        ("HCancelWait", 0x7A), ("CCallHProc", 0x73F))
NTDLL_EXPORTS = {
    "LdrLoadDll": 0x00021A40, "RtlAllocateHeap": 0x0002A1A0, "RtlFreeHeap": 0x0002B6E0,
    "RtlSizeHeap": 0x0002C000, "RtlpAllocateHeapInternal": 0x00030F10,
    "RtlUserThreadStart": 0x00052630, "RtlCreateHeap": 0x00067100,
    "NtWaitForSingleObject": 0x0009D4C0,
}
KERNEL32_EXPORTS = {"LoadLibraryExW": 0x0001B8A0, "GetProcAddress": 0x0001D9F0,
                    "BaseThreadInitThunk": 0x00017020, "CreateFileW": 0x00024CF0}
KERNEL32_FORWARDERS = {"HeapAlloc": "NTDLL.RtlAllocateHeap", "HeapFree": "NTDLL.RtlFreeHeap"}
KERNELBASE_EXPORTS = {"HeapAlloc": 0x0001B400, "VirtualAlloc": 0x00022100}
UCRT_EXPORTS = {"malloc": 0x00010A30, "_malloc_base": 0x00010B00, "free": 0x00010C80,
                "calloc": 0x00012340, "realloc": 0x00013010, "_callnewh": 0x0002A6C0}
CLR_EXPORTS = {"GetCLRRuntimeHost": 0x0003F1C0, "_CorExeMain": 0x001B9F80,
               "CorDllMainForThunk": 0x001A2B40, "MetaDataGetDispenser": 0x002110A0}
CORECLR_EXPORTS = {"coreclr_initialize": 0x0001A3F0, "coreclr_execute_assembly": 0x0001A800,
                   "coreclr_shutdown": 0x0001AA10, "GetCLRRuntimeHost": 0x0005C200,
                   "MetaDataGetDispenser": 0x0007D1E0}

# Per-arch placement of the modules the heap plan does not have, and the JIT area.
_STACK_PLAN: dict[str, dict[str, Any]] = {
    "x64": dict(ucrt=(0x7FFB59E90000, 0x100000), halcon=(0x7FFA3B000000, 0x01E4C000),
                clr=(0x7FFA52C00000, 0x009B5000), coreclr=(0x7FFA52C00000, 0x004B6000),
                jit=(0x7FF9A1B20000, 0x20000), jit_frames=(0x7FF9A1B2C3D4, 0x7FF9A1B20F11,
                                                           0x7FF9A1B31A08),
                seed_virtual=0x21F4E000000, virtual2=0x21F50000000,
                ntdll_sections=((0x1000, 0x117000), (0x118000, 0x48000), (0x160000, 0x95000)),
                lost_offset=0x100000),
    "x86": dict(ucrt=(0x759C0000, 0x120000), halcon=(0x10000000, 0x01A2C000),
                clr=(0x72C40000, 0x007A0000), coreclr=(0x72C40000, 0x00420000),
                jit=(0x05A50000, 0x20000), jit_frames=(0x05A5C3D4, 0x05A50F11, 0x05A61A08),
                seed_virtual=0x06000000, virtual2=0x07100000,
                ntdll_sections=((0x1000, 0xCF000), (0xD0000, 0x50000), (0x120000, 0x1C000)),
                lost_offset=0x100000),
}


def _sections(spec) -> list[tuple[str, int, int, int]]:
    (t, tn), (r, rn), (d, dn) = spec
    return [(".text", t, tn, SCN_TEXT), (".rdata", r, rn, SCN_RDATA), (".data", d, dn, SCN_DATA)]


@dataclass
class Mods:
    """The modules of a stack scenario and helpers for frame addresses."""

    b: DumpBuilder
    arch: str
    exe: Module
    ntdll: Module
    k32: Module
    kb: Module
    ucrt: Module
    halcon: Module
    clr: Module | None
    jit: tuple[int, ...]

    def at(self, m: Module, export: str | None, off: int) -> int:
        """Address of ``export``+off in ``m`` (export None: module base + off)."""
        if export is None:
            return m.base + off
        assert m.image is not None
        rva = next(e.rva for e in m.image.exports if e.name == export)
        return m.base + rva + off

    def seed(self) -> list[int]:
        return [self.at(self.halcon, n, o) for n, o in SEED] + [self.jit[0]]

    def crt(self, fn_off: int = 0x1A40, caller_off: int = 0x2B17) -> list[int]:
        """ntdll/ucrtbase allocator frames on top of code in the .exe (no exports)."""
        return [self.at(self.ntdll, "RtlpAllocateHeapInternal", 0xD2C),
                self.at(self.ntdll, "RtlAllocateHeap", 0x53),
                self.at(self.ucrt, "_malloc_base", 0x1A), self.at(self.ucrt, "malloc", 0x1E),
                self.at(self.exe, None, fn_off), self.at(self.exe, None, caller_off),
                self.at(self.exe, None, 0x51F0),
                self.at(self.k32, "BaseThreadInitThunk", 0x14),
                self.at(self.ntdll, "RtlUserThreadStart", 0x21)]

    def uncaptured_and_early(self) -> list[int]:
        """KERNELBASE (image not in the dump), halcon before its first export."""
        return [self.at(self.ntdll, "RtlAllocateHeap", 0x53), self.at(self.kb, None, 0x1B4C7),
                self.at(self.halcon, None, 0x2E10), self.at(self.halcon, "T_read_image", 0x1C4),
                self.at(self.exe, None, 0x51F0), self.at(self.k32, "BaseThreadInitThunk", 0x14),
                self.at(self.ntdll, "RtlUserThreadStart", 0x21)]

    def managed(self) -> list[int]:
        """Into the CLR (before its first export, then after one) and JIT code."""
        assert self.clr is not None
        return [self.at(self.ntdll, "RtlAllocateHeap", 0x53), self.at(self.clr, None, 0x8A31),
                self.at(self.clr, "GetCLRRuntimeHost", 0x2D0), self.jit[1], self.jit[2],
                self.at(self.clr, "MetaDataGetDispenser", 0x3C)]

    def export_start(self) -> list[int]:
        """A frame exactly at an export's first byte; one into KERNEL32, whose export
        table has forwarders, an ordinal base of 5 and two unused EAT slots."""
        return [self.at(self.halcon, "HCancelWait", 0), self.at(self.halcon, "CCallHProc", 0x73F),
                self.at(self.k32, "GetProcAddress", 0x1F6), self.jit[0]]


def stack_process(arch: str, build: int, *, ust: bool = True, pid: int = 6400,
                  timestamp: int = 1_700_200_000, clr: str | None = "clr.dll",
                  heaps: list[int] | None = None,
                  exe_exports: dict[str, int] | None = None,
                  exe_path: str = r"C:\Program Files\Leaky\leaky.exe",
                  exe_pdb: str = r"C:\build\leaky\Release\leaky.pdb",
                  extra_modules=None, heap_plan: dict | None = None,
                  kernelbase_capture: str = "none") -> tuple[DumpBuilder, Process, Mods]:
    """A process whose modules have mapped PE images (DLLs with export directories)."""
    os_version, csd, ntdll_version = HEAP_OS[build]
    plan, sp = heap_plan or _HEAP_PLAN[arch], _STACK_PLAN[arch]
    x86 = arch == "x86"
    b = DumpBuilder(arch=arch, os_version=os_version, csd_version=csd, timestamp=timestamp,
                    pid=pid, process_create_time=timestamp - 3600, number_of_processors=4)
    exe = b.add_pe_module(exe_path, plan["exe"], 0x2A000 if x86 else 0x26000,
                          exports=exe_exports, file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3,
                          pdb_name=exe_pdb, pdb_guid=GUID_EXE, pdb_age=3)
    ntdll = b.add_pe_module(r"C:\Windows\SYSTEM32\ntdll.dll", plan["ntdll"],
                            0x13C000 if x86 else 0x1F5000, exports=NTDLL_EXPORTS,
                            sections=_sections(sp["ntdll_sections"]),
                            file_version=ntdll_version, timestamp=0x4CE7B96E, checksum=0x140DA7,
                            pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
    k32 = b.add_pe_module(r"C:\Windows\System32\KERNEL32.DLL", plan["k32"],
                          0xD4000 if x86 else 0xBD000, exports=KERNEL32_EXPORTS,
                          forwarders=KERNEL32_FORWARDERS, ordinal_base=5, eat_gaps=2,
                          file_version=ntdll_version, timestamp=0x4CE7B8F0,
                          pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32, pdb_age=1)
    kb = b.add_pe_module(r"C:\Windows\System32\KERNELBASE.dll", plan["kb"],
                         0x4A000 if x86 else 0x2CD000, exports=KERNELBASE_EXPORTS,
                         capture=kernelbase_capture, file_version=ntdll_version,
                         timestamp=0x4CE7B8F1,
                         pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE, pdb_age=1)
    ucrt = b.add_pe_module(r"C:\Windows\System32\ucrtbase.dll", sp["ucrt"][0], sp["ucrt"][1],
                           exports=UCRT_EXPORTS,
                           file_version=(10, 0, 19041, 789), timestamp=0x2BD748BF,
                           pdb_name="ucrtbase.pdb", pdb_guid=GUID_UCRT, pdb_age=1)
    halcon = b.add_pe_module(r"C:\Program Files\MVTec\HALCON-20.11-Steady\bin\halcon.dll",
                             sp["halcon"][0], sp["halcon"][1], exports=HALCON_EXPORTS,
                             file_version=(20, 11, 3, 0), timestamp=0x600F1C2D, pdb_name="halcon.pdb",
                             pdb_guid=GUID_HALCON, pdb_age=1)
    clr_mod = None
    if clr == "clr.dll":
        clr_mod = b.add_pe_module(r"C:\Windows\Microsoft.NET\Framework64\v4.0.30319\clr.dll"
                                  if not x86 else
                                  r"C:\Windows\Microsoft.NET\Framework\v4.0.30319\clr.dll",
                                  sp["clr"][0], sp["clr"][1], exports=CLR_EXPORTS,
                                  file_version=(4, 8, 4470, 0), timestamp=0x5F7A1B2C, pdb_name="clr.pdb", pdb_guid=GUID_CLR,
                                  pdb_age=2)
    elif clr == "coreclr.dll":
        clr_mod = b.add_pe_module(r"C:\Program Files\dotnet\shared\Microsoft.NETCore.App\6.0.25"
                                  r"\coreclr.dll", sp["coreclr"][0], sp["coreclr"][1],
                                  exports=CORECLR_EXPORTS,
                                  file_version=(6, 0, 2523, 51912), timestamp=0x654A0B1C,
                                  pdb_name="coreclr.pdb", pdb_guid=GUID_CORECLR, pdb_age=1)
    for args, kw in (extra_modules or ()):
        b.add_pe_module(*args, **kw)
    jit_base, jit_size = sp["jit"]
    b.add_region(jit_base, jit_size, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                 protect=fmt.PAGE_EXECUTE_READWRITE, allocation_base=jit_base,
                 allocation_protect=fmt.PAGE_EXECUTE_READWRITE)
    heap_list = heaps if heaps is not None else [plan["heap0"], plan["heap1"]]
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"],
                nt_global_flag=FLG_USER_STACK_TRACE_DB if ust else 0, heaps=heap_list,
                max_heaps=16, process_heaps_array=plan["array"])
    for i, (teb, (stack, size)) in enumerate(zip(plan["tebs"], plan["stacks"])):
        p.add_thread(0x1A00 + 4 * i, teb=teb, stack_start=stack, stack_size=size)
    mods = Mods(b, arch, exe, ntdll, k32, kb, ucrt, halcon, clr_mod, sp["jit_frames"])
    return b, p, mods


def _heaps(b: DumpBuilder, arch: str, epoch: str, *, ust: bool, db: StackTraceDatabase | None,
           seed: int) -> tuple[NtHeap, NtHeap]:
    plan = _HEAP_PLAN[arch]
    extra = HEAP_CAPTURE_STACK_BACKTRACES if ust else 0
    h0 = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch, seed=seed, ust=ust, stack_db=db,
                flags=PROCESS_HEAP_FLAGS | extra, reserve=0x20000, committed=[(0, 0x6000)],
                process_heaps_index=1, fill_tag=0xE1)
    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=seed + 1, ust=ust, stack_db=db,
                flags=PRIVATE_HEAP_FLAGS | extra, reserve=0x10000, committed=[(0, 0x3000)],
                process_heaps_index=2, fill_tag=0xE2)
    return h0, h1


def _finish_stacks(name: str, description: str, b: DumpBuilder, p: Process, heaps: list[NtHeap],
                   db: StackTraceDatabase | None, sym: Symbolizer,
                   sym_pdb: Symbolizer | None = None) -> tuple[DumpBuilder, dict]:
    b, exp = _finish_heaps(name, description, b, p, heaps, db=db)
    exp["symbols"] = {"conventions": TEXT_CONVENTIONS, "allocator_rule": ALLOCATOR_RULE,
                      "modules": sym.modules_expected(), "clr_module": sym.clr_module()}
    if sym_pdb is not None:
        exp["symbols"]["modules_with_pdb"] = sym_pdb.modules_expected()
    exp.update(stack_report(heaps, sym, sym_pdb))
    return b, exp


# ---------------------------------------------------------------------------
def _standard_stacks(name: str, arch: str, build: int, clr: str) -> tuple[DumpBuilder, dict]:
    epoch = epoch_for_build(build)
    b, p, M = stack_process(arch, build, clr=clr, pid=0x1900 + build % 1000,
                            timestamp=1_700_300_000 + build)
    sp = _STACK_PLAN[arch]
    db = StackTraceDatabase(b, _HEAP_PLAN[arch]["db"], arch, lost_offset=sp["lost_offset"])
    h0, h1 = _heaps(b, arch, epoch, ust=True, db=db, seed=build)
    seed, crt = M.seed(), M.crt()
    twin = db.add(seed, new_entry=True, refs=0)         # same frames as `seed`, own entry
    s = h0.segments[0]
    s.busy(0x48, stack=crt)
    s.busy(0x48, stack=crt)
    s.busy(0x120, stack=M.uncaptured_and_early())
    s.free(0x40 if arch == "x64" else 0x20)
    s.busy(0x30, stack=M.managed())
    s.busy(0x10)                                         # +ust block without a trace
    s.busy(0x200, stack=M.export_start())
    s.busy(0x48, stack=crt)
    s.busy(0x88, stack=seed)                             # shares the 16 MiB block's entry
    s.busy(0x88, trace=twin)                             # identical frames, other entry
    s.busy(0x7, stack=M.crt(0x1C83, 0x2B17))
    # The 16 MiB case: requested 0x1000040, +ust user data at VAE+0x60 (x64) / +0x30 (x86).
    h0.add_virtual(sp["seed_virtual"], 0x1000040, capture="head", stack=seed)
    t1 = h1.segments[0]
    t1.busy(0x400, stack=M.managed())
    t1.busy(0x11, stack=crt)
    t1.busy(0x0, stack=M.export_start())
    h1.add_virtual(sp["virtual2"], 0x100000, capture="head", trace=twin)
    sym = Symbolizer(b)
    desc = (f"{arch} process on build {build} ({epoch} heap layout), +ust, {clr} loaded: "
            f"halcon seed stack on a 16 MiB virtual block; frames into exports, before a "
            f"module's first export, into an .exe without exports, into KERNELBASE whose image "
            f"is not captured, into JIT code; one stack shared by several blocks (one trace "
            f"entry) and one frame list held by two distinct trace entries")
    b, exp = _finish_stacks(name, desc, b, p, [h0, h1], db, sym)
    return b, exp


def stacks_win7_x64() -> tuple[DumpBuilder, dict]:
    """+ust stacks, Windows 7 SP1 x64, clr.dll; carries the halcon seed case."""
    b, exp = _standard_stacks("stacks_win7_x64", "x64", 7601, "clr.dll")
    sp = _STACK_PLAN["x64"]
    seed_blocks = [r for r in exp["stack_blocks"] if r["kind"] == "virtual"
                   and r["vae_address"] == sp["seed_virtual"]]
    assert len(seed_blocks) == 1
    r = seed_blocks[0]
    exp["seed"] = {
        "vae_address": r["vae_address"],
        "busy_block": r["address"],
        "user_address": r["user_address"],
        "user_size": r["user_size"],
        "stack_trace_entry": r["stack_trace_entry"],
        "frames": r["frames"],
        "frame_texts": r["frame_texts"],
        "jit_or_unknown": r["jit_or_unknown"],
        "note": "16 MiB virtual block (UserSize 0x1000040), +ust: BusyBlock at VAE+0x30, "
                "trace pointer at VAE+0x40, user data at VAE+0x60; clr.dll is loaded, the "
                "outermost frame is JIT code",
    }
    return b, exp


def stacks_win10_x64() -> tuple[DumpBuilder, dict]:
    """+ust stacks, Windows 10 2004 x64 (win10_1809 layout), coreclr.dll."""
    return _standard_stacks("stacks_win10_x64", "x64", 19041, "coreclr.dll")


def stacks_win7_x86() -> tuple[DumpBuilder, dict]:
    """+ust stacks, Windows 7 SP1 x86, clr.dll."""
    return _standard_stacks("stacks_win7_x86", "x86", 7601, "clr.dll")


def stacks_win10_x86() -> tuple[DumpBuilder, dict]:
    """+ust stacks, Windows 10 2004 x86 (win10_1809 layout), clr.dll."""
    return _standard_stacks("stacks_win10_x86", "x86", 19041, "clr.dll")


def stacks_trace_not_captured() -> tuple[DumpBuilder, dict]:
    """+ust blocks whose _RTL_STACK_TRACE_ENTRY lies on a committed page left out of the
    dump (a segment block and a virtual block), next to blocks whose traces are readable."""
    arch, build = "x64", 19041
    b, p, M = stack_process(arch, build, clr="coreclr.dll", pid=0x2A10, timestamp=1_700_400_000)
    sp = _STACK_PLAN[arch]
    db = StackTraceDatabase(b, _HEAP_PLAN[arch]["db"], arch, lost_offset=sp["lost_offset"])
    h0, h1 = _heaps(b, arch, epoch_for_build(build), ust=True, db=db, seed=0x2A10)
    lost = db.add(M.seed(), captured=False, refs=0)
    lost2 = db.add(M.crt(0x1C83, 0x2B17), captured=False, refs=0)
    s = h0.segments[0]
    s.busy(0x48, stack=M.crt())
    s.busy(0x60, trace=lost)
    s.busy(0x48, stack=M.crt())
    s.busy(0x99, trace=lost2)
    s.busy(0x20, stack=M.seed())
    h0.add_virtual(sp["seed_virtual"], 0x1000040, capture="head", trace=lost)
    h1.segments[0].busy(0x30, stack=M.managed())
    return _finish_stacks("stacks_trace_not_captured", stacks_trace_not_captured.__doc__ or "",
                          b, p, [h0, h1], db, Symbolizer(b))


def stacks_no_ust() -> tuple[DumpBuilder, dict]:
    """NtGlobalFlag 0: the same modules (with export directories) but heaps without +ust,
    so no block has a stack."""
    arch, build = "x64", 19041
    b, p, M = stack_process(arch, build, ust=False, clr="clr.dll", pid=0x2B20,
                            timestamp=1_700_500_000)
    h0, h1 = _heaps(b, arch, epoch_for_build(build), ust=False, db=None, seed=0x2B20)
    s = h0.segments[0]
    for n in (0x48, 0x48, 0x120, 0x30, 0x10, 0x200):
        s.busy(n)
    s.free(0x40)
    s.busy(0x88)
    h0.add_virtual(_STACK_PLAN[arch]["seed_virtual"], 0x1000040, capture="head")
    h1.segments[0].busy(0x400)
    b, exp = _finish_stacks("stacks_no_ust", stacks_no_ust.__doc__ or "", b, p, [h0, h1], None,
                            Symbolizer(b))
    assert exp["stack_blocks"] == [] and exp["blocks_without_stack"] == []
    return b, exp


# Corrupt export directories.  Each bad module is followed directly by a good one
# whose header page is captured, so an RVA past SizeOfImage that is not rejected
# reads real bytes of the neighbour ("MZ..." where a name or table should be).
_BAD_EXPORTS = {"BadEntry": 0x1200, "BadHelper": 0x5400, "BadTail": 0x9000}
_BAD = {  # name -> (base, size, corrupt_exports)
    "badrva.dll": (0x7FFA60000000, 0x40000, "bad_rva"),
    "badnames.dll": (0x7FFA61000000, 0x40000, "names_out_of_image"),
    "hugecount.dll": (0x7FFA62000000, 0x40000, "huge_count"),
}
_GOOD_NEIGHBOURS = {  # name -> (base, size, exports, guid)
    "vision.dll": (0x7FFA60040000, 0x80000, {"VisionInit": 0x1100, "VisionDetect": 0x3400}, GUID_VISION),
    "codec.dll": (0x7FFA61040000, 0x60000, {"DecodeRow": 0x2200, "EncodeRow": 0x4800}, GUID_CODEC),
}


def stacks_bad_exports() -> tuple[DumpBuilder, dict]:
    """Modules whose export directory is corrupt (bad_rva: AddressOfFunctions past
    SizeOfImage; names_out_of_image: every name RVA past SizeOfImage; huge_count:
    NumberOfFunctions/NumberOfNames 0x40000001): their frames print module+0xoff, and the
    good modules next to them still resolve."""
    arch, build = "x64", 19041
    extra = []
    for name, (base, size, kind) in _BAD.items():
        extra.append(((rf"C:\Program Files\Leaky\plugins\{name}", base, size),
                      dict(exports=_BAD_EXPORTS, corrupt_exports=kind, timestamp=0x61000000)))
    for name, (base, size, exports, guid) in _GOOD_NEIGHBOURS.items():
        extra.append(((rf"C:\Program Files\Leaky\plugins\{name}", base, size),
                      dict(exports=exports, timestamp=0x61000001, pdb_name=name[:-4] + ".pdb",
                           pdb_guid=guid, pdb_age=1)))
    b, p, M = stack_process(arch, build, clr="clr.dll", pid=0x2C30, timestamp=1_700_600_000,
                            extra_modules=extra)
    mods = {m.name: m for m in b.modules}
    db = StackTraceDatabase(b, _HEAP_PLAN[arch]["db"], arch)
    h0, h1 = _heaps(b, arch, epoch_for_build(build), ust=True, db=db, seed=0x2C30)

    def frames(bad: str, good: str, good_export: str) -> list[int]:
        return [M.at(M.ntdll, "RtlAllocateHeap", 0x53),
                mods[bad].base + 0x1234,             # "BadEntry+0x34" if the table were used
                mods[bad].base + 0x5460,             # "BadHelper+0x60"
                M.at(mods[good], good_export, 0x40),
                mods[bad].base + 0x9100,
                M.at(M.exe, None, 0x51F0)]

    s = h0.segments[0]
    s.busy(0x48, stack=frames("badrva.dll", "vision.dll", "VisionDetect"))
    s.busy(0x50, stack=frames("badnames.dll", "codec.dll", "DecodeRow"))
    s.busy(0x58, stack=frames("hugecount.dll", "vision.dll", "VisionInit"))
    s.busy(0x60, stack=M.crt())
    h1.segments[0].busy(0x70, stack=frames("badnames.dll", "vision.dll", "VisionDetect"))
    return _finish_stacks("stacks_bad_exports", stacks_bad_exports.__doc__ or "", b, p,
                          [h0, h1], db, Symbolizer(b))


# ---- a real DLL and PDB (tests/pdb) --------------------------------------------
TINY_BASE = 0x180000000           # tiny.dll's preferred ImageBase: no relocation needed
TINYAGE_BASE = 0x180010000


def _tiny_bytes() -> bytes:
    with open(os.path.join(PDB_DIR, "tiny.dll"), "rb") as f:
        return f.read()


def _tiny_return(name: str) -> int:
    """RVA of the first return address inside function ``name`` (tiny.json: the
    instruction after its first ``call``)."""
    with open(os.path.join(PDB_DIR, "tiny.json"), encoding="utf-8") as f:
        facts = json.load(f)
    fn = next(f for f in facts["functions"] if f["name"] == name)
    assert fn["call_returns"], f"{name} has no call in it"
    assert fn["call_returns"][0] < fn["size"]
    return fn["rva"] + fn["call_returns"][0]


def _pdb_scenario(name: str, description: str, mismatch: bool) -> tuple[DumpBuilder, dict]:
    arch, build = "x64", 19045
    tiny = _tiny_bytes()
    pdb = tiny_pdb()
    extra = []
    if not mismatch:
        extra.append(((r"C:\Program Files\Leaky\tiny.dll", TINY_BASE),
                      dict(image_bytes=tiny, capture="full", timestamp=0x366909BE)))
    else:
        g = bytearray(pdb.guid.bytes_le)
        g[0] ^= 0x01
        extra.append(((r"C:\Program Files\Leaky\tiny.dll", TINY_BASE),
                      dict(image_bytes=tiny, capture="full", timestamp=0x366909BE,
                           pdb_guid=uuid.UUID(bytes_le=bytes(g)))))
        extra.append(((r"C:\Program Files\Leaky\tinyage.dll", TINYAGE_BASE),
                      dict(image_bytes=tiny, capture="full", timestamp=0x366909BE,
                           pdb_age=pdb.age + 1)))
    b, p, M = stack_process(arch, build, clr=None, pid=0x3D40 + mismatch,
                            timestamp=1_700_700_000 + 100 * mismatch, extra_modules=extra)
    db = StackTraceDatabase(b, _HEAP_PLAN[arch]["db"], arch)
    h0, h1 = _heaps(b, arch, epoch_for_build(build), ust=True, db=db, seed=0x3D40 + mismatch)
    tails = [M.at(M.exe, None, 0x51F0), M.at(M.k32, "BaseThreadInitThunk", 0x14),
             M.at(M.ntdll, "RtlUserThreadStart", 0x21)]
    top = [M.at(M.ntdll, "RtlpAllocateHeapInternal", 0xD2C), M.at(M.ntdll, "RtlAllocateHeap", 0x53)]
    chain = ("internal_step", "helper_scale", "tiny_alloc", "tiny_dispatch", "tiny_process")
    s = h0.segments[0]
    for m in [mm for mm in b.modules if mm.name.lower().startswith("tiny")]:
        base = m.base
        call_chain = top + [base + _tiny_return(f) for f in chain] + tails
        exported = top[1:] + [base + _tiny_return("tiny_free"), M.at(M.exe, None, 0x2B17)] + tails
        s.busy(0x40, stack=call_chain)
        s.busy(0x40, stack=call_chain)
        s.busy(0x90, stack=exported)
        h1.segments[0].busy(0x33, stack=[base + _tiny_return("helper_scale")] + tails)
    s.busy(0x48, stack=M.crt())
    sym = Symbolizer(b)
    sym_pdb = Symbolizer(b, [pdb])
    b, exp = _finish_stacks(name, description, b, p, [h0, h1], db, sym, sym_pdb)
    exp["pdb"] = {
        "file": pdb.file,
        "pdb_name": pdb.pdb_name,
        "guid": pdb.guid.hex.upper(),
        "age": pdb.age,
        "debug_id": pdb.guid.hex.upper() + f"{pdb.age:X}",
        "facts": "tests/pdb/tiny.json",
        "applies_to": [m.name for m in b.modules if pdb.matches(m)],
        "ignored_for": [m.name for m in b.modules
                        if m.name.lower().startswith("tiny") and not pdb.matches(m)],
    }
    return b, exp


def stacks_pdb_x64() -> tuple[DumpBuilder, dict]:
    """The real tests/pdb/tiny.dll mapped at its preferred base with its own CodeView
    record: frames in exported functions and in non-exported ones (global and static),
    with the texts a matching tests/pdb/tiny.pdb gives and the texts without it."""
    return _pdb_scenario("stacks_pdb_x64", stacks_pdb_x64.__doc__ or "", mismatch=False)


def stacks_pdb_mismatch_x64() -> tuple[DumpBuilder, dict]:
    """The real tiny.dll twice: as tiny.dll with a CodeView GUID that differs from
    tests/pdb/tiny.pdb, and as tinyage.dll with the right GUID but age + 1; the PDB
    matches neither, so expected_with_pdb equals expected_without_pdb."""
    return _pdb_scenario("stacks_pdb_mismatch_x64", stacks_pdb_mismatch_x64.__doc__ or "",
                         mismatch=True)


STACK_SCENARIOS = {
    "stacks_win7_x64": stacks_win7_x64,
    "stacks_win10_x64": stacks_win10_x64,
    "stacks_win7_x86": stacks_win7_x86,
    "stacks_win10_x86": stacks_win10_x86,
    "stacks_trace_not_captured": stacks_trace_not_captured,
    "stacks_no_ust": stacks_no_ust,
    "stacks_bad_exports": stacks_bad_exports,
    "stacks_pdb_x64": stacks_pdb_x64,
    "stacks_pdb_mismatch_x64": stacks_pdb_mismatch_x64,
}
