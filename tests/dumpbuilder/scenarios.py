"""Named test dumps and the values a reader must report for them.

Each scenario function returns ``(DumpBuilder, expected)``.  ``expected`` is
plain JSON-able data computed from the builder's inputs (never parsed back
from the bytes), with these keys:

    scenario, description, arch, is_wow64, pointer_size, os_version ("6.1.7601"),
    os_major, os_minor, os_build, csd_version, pid, timestamp,
    process_create_time, number_of_processors, streams, stream_types,
    modules[], threads[], memory_list[], memory64_list[], regions[],
    peb, tebs[], (WOW64 only) peb32, teb32s[], probe_reads[]

A probe read is ``{address, size, hex}`` or ``{address, size, error:
"MemoryNotCaptured"}``; reads may span adjacent captured ranges, which a
correct reader must join, whichever memory list each range comes from.
All addresses are plain integers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Callable

from . import structs as fmt
from .builder import PAGE, DumpBuilder, pattern
from .heap import CONVENTIONS, NtHeap, StackTraceDatabase, write_not_a_heap, write_segment_heap_stub
from .heap_layouts import (
    ARCH_LAYOUTS,
    FLG_USER_STACK_TRACE_DB,
    HEAP_CAPTURE_STACK_BACKTRACES,
    PRIVATE_HEAP_FLAGS,
    PROCESS_HEAP_FLAGS,
)
from .process import PEB32, PEB64, TEB32, TEB64, Process, Wow64

Scenario = Callable[[], "tuple[DumpBuilder, dict]"]

# Fixed GUIDs so every run writes the same CodeView records.
GUID_EXE = uuid.UUID("7F2B6A10-3C4D-4E5F-8A9B-0C1D2E3F4A5B")
GUID_NTDLL = uuid.UUID("1B2C3D4E-5F60-4172-8394-A5B6C7D8E9F0")
GUID_KERNEL32 = uuid.UUID("0A1B2C3D-4E5F-4061-7283-94A5B6C7D8E9")
GUID_KERNELBASE = uuid.UUID("9E8D7C6B-5A49-4837-A261-5F4E3D2C1B0A")
GUID_UCRT = uuid.UUID("C0FFEE00-1234-4ABC-9DEF-0123456789AB")
GUID_WOW64 = uuid.UUID("2468ACE0-1357-49BD-8F02-468ACE013579")
GUID_WOW64WIN = uuid.UUID("3579BDF1-2468-4ACE-9013-579BDF124680")
GUID_WOW64CPU = uuid.UUID("468ACE02-3579-4BDF-A124-68ACE0235791")
GUID_WNTDLL = uuid.UUID("579BDF13-468A-4CE0-B235-79BDF1346802")
GUID_WKERNEL32 = uuid.UUID("68ACE024-579B-4DF1-8346-8ACE02457913")

WIN7_NTDLL_VERSION = (6, 1, 7601, 17514)
WIN10_NTDLL_VERSION = (10, 0, 19041, 1889)


def _heap_regions(b: DumpBuilder, heap: int, committed: int = 0x4000,
                  reserved: int = 0x10000) -> None:
    """A heap's first segment: committed pages, then reserved ones (not captured)."""
    b.add_region(heap, committed, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                 protect=fmt.PAGE_READWRITE, allocation_base=heap,
                 allocation_protect=fmt.PAGE_READWRITE)
    if reserved > committed:
        b.add_region(heap + committed, reserved - committed, state=fmt.MEM_RESERVE,
                     type=fmt.MEM_PRIVATE, protect=0, allocation_base=heap,
                     allocation_protect=fmt.PAGE_READWRITE)


def _data_region(b: DumpBuilder, base: int, size: int) -> None:
    b.add_region(base, size, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                 protect=fmt.PAGE_READWRITE, allocation_base=base,
                 allocation_protect=fmt.PAGE_READWRITE)


def _finish(name: str, description: str, b: DumpBuilder, p: Process | None,
            probes: list[dict]) -> tuple[DumpBuilder, dict]:
    exp: dict[str, Any] = {"scenario": name, "description": description}
    exp.update(b.expected())
    if p is not None:
        exp.update(p.expected())
    else:
        exp["peb"] = None
        exp["tebs"] = []
    exp["probe_reads"] = probes
    return b, exp


def _peb_probes(b: DumpBuilder, p: Process) -> list[dict]:
    """Probes of the fields a heap walker reads first, via the native PEB."""
    lay = PEB32 if b.arch == "x86" else PEB64
    tl = TEB32 if b.arch == "x86" else TEB64
    ptr = lay.ptr
    out = [
        b.probe(p.peb + lay.process_heap, ptr, "PEB.ProcessHeap"),
        b.probe(p.peb + lay.nt_global_flag, 4, "PEB.NtGlobalFlag"),
        b.probe(p.peb + lay.number_of_heaps, 8 + ptr,
                "PEB.NumberOfHeaps, MaximumNumberOfHeaps, ProcessHeaps"),
        b.probe(p.peb + lay.os_major_version, 4, "PEB.OSMajorVersion"),
    ]
    if p.process_heaps_array:
        out.append(b.probe(p.process_heaps_array, ptr * max(1, len(p.heaps)),
                           "ProcessHeaps[0..NumberOfHeaps]"))
    for t in p.threads:
        out.append(b.probe(t.teb + tl.process_environment_block, ptr,
                           f"TEB({t.tid:#x}).ProcessEnvironmentBlock"))
        out.append(b.probe(t.teb + tl.self_, ptr, f"TEB({t.tid:#x}).NtTib.Self"))
        out.append(b.probe(t.stack_start, 16, f"stack of {t.tid:#x}, first bytes"))
        out.append(b.probe(t.stack_start + t.stack_size - 8, 16,
                           f"stack of {t.tid:#x}, runs past the captured end"))
    for h in p.heaps[:1]:
        out.append(b.probe(h, 16, "process heap itself (region present, bytes not captured)"))
    out.append(b.probe(0, 8, "null page"))
    return out


# ---------------------------------------------------------------------------
def x86_win7() -> tuple[DumpBuilder, dict]:
    """Native 32-bit process on Windows 7 SP1."""
    b = DumpBuilder(arch="x86", os_version=(6, 1, 7601), csd_version="Service Pack 1",
                    timestamp=1_600_000_000, pid=3900, process_create_time=1_599_990_000,
                    number_of_processors=2)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=0x00400000, size=0x2A000,
                       file_version=(1, 0, 0, 0), timestamp=0x5F5E0F00, checksum=0x3A1F2,
                       pdb_name=r"C:\build\leaky\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=1)
    ntdll = b.add_module(path=r"C:\Windows\System32\ntdll.dll", base=0x77D60000, size=0x13C000,
                         file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B96E, checksum=0x140DA7,
                         pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
    k32 = b.add_module(path=r"C:\Windows\system32\kernel32.dll", base=0x76B30000, size=0xD4000,
                       file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B8F0, checksum=0xDDE43,
                       pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32, pdb_age=2)
    kb = b.add_module(path=r"C:\Windows\system32\KERNELBASE.dll", base=0x75C10000, size=0x4A000,
                      file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B8F1, checksum=0x4F55A,
                      pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE, pdb_age=1)
    plug = b.add_module(path=r"C:\Program Files\Leaky\nopdb.dll", base=0x10000000, size=0x8000,
                        file_version=(2, 5, 0, 1), timestamp=0x12345678)
    array = 0x77E97500
    for m in (exe, k32, kb, plug):
        b.add_image_regions(m)
    b.add_image_regions(ntdll, writable=((array, array + 0x40),))
    heaps = [0x00560000, 0x00010000, 0x00140000]
    for h in heaps:
        _heap_regions(b, h)
    p = Process(b, peb=0x7FFDF000, image_base=exe.base, ldr=0x77E97880, nt_global_flag=0x70,
                heaps=heaps, max_heaps=16, process_heaps_array=array)
    p.add_thread(0x0E10, teb=0x7FFDE000, stack_start=0x0012E000, stack_size=0x2000)
    p.add_thread(0x0F24, teb=0x7FFDD000, stack_start=0x0032F000, stack_size=0x1000)
    p.finish()
    return _finish("x86_win7", x86_win7.__doc__ or "", b, p, _peb_probes(b, p))


def x64_win10() -> tuple[DumpBuilder, dict]:
    """Native 64-bit process on Windows 10 2004 (build 19041), +ust."""
    b = DumpBuilder(arch="x64", os_version=(10, 0, 19041), csd_version="",
                    timestamp=1_650_000_000, pid=11352, process_create_time=1_649_999_000,
                    number_of_processors=8)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=0x7FF6A1230000, size=0x26000,
                       file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3, checksum=0,
                       pdb_name=r"C:\build\leaky\x64\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=3)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x7FFB5C6D0000, size=0x1F5000,
                         file_version=WIN10_NTDLL_VERSION, timestamp=0x9F1F4A6C, checksum=0x1F83C5,
                         pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=1)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=0x7FFB5B4E0000, size=0xBD000,
                       file_version=WIN10_NTDLL_VERSION, timestamp=0x5C2D3F29, checksum=0xC2A1D,
                       pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32, pdb_age=1)
    kb = b.add_module(path=r"C:\Windows\System32\KERNELBASE.dll", base=0x7FFB5A0C0000, size=0x2CD000,
                      file_version=WIN10_NTDLL_VERSION, timestamp=0x2A3B4C5D, checksum=0x2D11E0,
                      pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE, pdb_age=1)
    ucrt = b.add_module(path=r"C:\Windows\System32\ucrtbase.dll", base=0x7FFB59E90000, size=0x100000,
                        file_version=(10, 0, 19041, 789), timestamp=0x2BD748BF, checksum=0x1058A2,
                        pdb_name="ucrtbase.pdb", pdb_guid=GUID_UCRT, pdb_age=1)
    plug = b.add_module(path=r"C:\Program Files\Leaky\plugins\nopdb.dll", base=0x180000000, size=0x9000,
                        file_version=(3, 0, 0, 7), timestamp=0x12345678)
    array = 0x7FFB5C83D2C0
    for m in (exe, k32, kb, ucrt, plug):
        b.add_image_regions(m)
    b.add_image_regions(ntdll, writable=((array, array + 0x80),))
    heaps = [0x21F4AE00000, 0x21F4AC00000, 0x21F4B010000, 0x21F4CD90000]
    for h in heaps:
        _heap_regions(b, h, committed=0x8000, reserved=0x100000)
    # Main thread stack with its reserved part and guard page below it, the
    # way Windows lays out a 1 MiB stack allocation.
    stack_alloc = 0x7B1E100000
    b.add_region(stack_alloc, 0xFC000, state=fmt.MEM_RESERVE, type=fmt.MEM_PRIVATE, protect=0,
                 allocation_base=stack_alloc, allocation_protect=fmt.PAGE_READWRITE)
    b.add_region(stack_alloc + 0xFC000, PAGE, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                 protect=fmt.PAGE_READWRITE | fmt.PAGE_GUARD, allocation_base=stack_alloc,
                 allocation_protect=fmt.PAGE_READWRITE)
    b.add_region(stack_alloc + 0xFD000, 0x3000, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                 protect=fmt.PAGE_READWRITE, allocation_base=stack_alloc,
                 allocation_protect=fmt.PAGE_READWRITE)
    b.add_region(0x7B1E800000, 0x100000, state=fmt.MEM_FREE, type=0, protect=fmt.PAGE_NOACCESS)
    p = Process(b, peb=0x7B1E3F2000, image_base=exe.base, ldr=0x7FFB5C83C4C0, nt_global_flag=0x1000,
                heaps=heaps, max_heaps=16, process_heaps_array=array)
    p.add_thread(0x3E8C, teb=0x7B1E3F3000, stack_start=0x7B1E1FD000, stack_size=0x3000)
    p.add_thread(0x40A0, teb=0x7B1E3F5000, stack_start=0x7B1E5FF000, stack_size=0x1000)
    p.add_thread(0x2F18, teb=0x7B1E3F7000, stack_start=0x7B1E7FE000, stack_size=0x2000,
                 suspend_count=1)
    p.finish()
    probes = _peb_probes(b, p)
    probes.append(b.probe(0x7B1E3F2000 + PAGE - 8, 16, "last bytes of PEB page into first TEB"))
    probes.append(b.probe(0x7B1E800000, 8, "free region"))
    return _finish("x64_win10", x64_win10.__doc__ or "", b, p, probes)


def wow64_win7() -> tuple[DumpBuilder, dict]:
    """32-bit process under WOW64 on 64-bit Windows 7 SP1, dumped as 64-bit."""
    b = DumpBuilder(arch="x64", os_version=(6, 1, 7601), csd_version="Service Pack 1",
                    timestamp=1_610_000_000, pid=6960, process_create_time=1_609_999_500,
                    number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files (x86)\Leaky\leaky32.exe", base=0x00F60000,
                       size=0x1D000, file_version=(1, 2, 0, 0), timestamp=0x5FF3A1B0, checksum=0x2B4C1,
                       pdb_name=r"C:\build\leaky\Win32\Release\leaky32.pdb", pdb_guid=GUID_EXE,
                       pdb_age=5)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x77B20000, size=0x1A9000,
                         file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C8F9, checksum=0x1A9E4C,
                         pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
    w64 = b.add_module(path=r"C:\Windows\SYSTEM32\wow64.dll", base=0x74E30000, size=0x3F000,
                       file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D0, checksum=0x4A2B1,
                       pdb_name="wow64.pdb", pdb_guid=GUID_WOW64, pdb_age=1)
    w64win = b.add_module(path=r"C:\Windows\SYSTEM32\wow64win.dll", base=0x74DD0000, size=0x5C000,
                          file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D1, checksum=0x61F0A,
                          pdb_name="wow64win.pdb", pdb_guid=GUID_WOW64WIN, pdb_age=1)
    w64cpu = b.add_module(path=r"C:\Windows\SYSTEM32\wow64cpu.dll", base=0x74DC0000, size=0x8000,
                          file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D2, checksum=0x11C3E,
                          pdb_name="wow64cpu.pdb", pdb_guid=GUID_WOW64CPU, pdb_age=1)
    ntdll32 = b.add_module(path=r"C:\Windows\SysWOW64\ntdll.dll", base=0x77D00000, size=0x180000,
                           file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B96E, checksum=0x140DA7,
                           pdb_name="wntdll.pdb", pdb_guid=GUID_WNTDLL, pdb_age=2)
    k32 = b.add_module(path=r"C:\Windows\syswow64\kernel32.dll", base=0x75F60000, size=0x110000,
                       file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B8F0, checksum=0x11B7A9,
                       pdb_name="wkernel32.pdb", pdb_guid=GUID_WKERNEL32, pdb_age=2)
    array64 = 0x77C4C8C0
    array32 = 0x77E04440
    for m in (exe, w64, w64win, w64cpu, k32):
        b.add_image_regions(m)
    b.add_image_regions(ntdll, writable=((array64, array64 + 16 * 8),))
    b.add_image_regions(ntdll32, writable=((array32, array32 + 16 * 4),))
    heaps64 = [0x00230000, 0x00020000]
    heaps32 = [0x00350000, 0x00480000, 0x00DE0000]
    for h in heaps64 + heaps32:
        _heap_regions(b, h)
    wow = Wow64(peb32=0x7EFDE000, teb32_offset=0x2000, process_heap=heaps32[0], heaps=heaps32,
                process_heaps_array=array32, nt_global_flag=0x1000, max_heaps=16, ldr=0x77E00200)
    # The 64-bit PEB carries NtGlobalFlag 0 and the 32-bit one 0x1000 on
    # purpose: a reader that takes the wrong PEB gets a visibly wrong value.
    p = Process(b, peb=0x7EFDF000, image_base=exe.base, ldr=0x77C52640, nt_global_flag=0,
                heaps=heaps64, max_heaps=16, process_heaps_array=array64, wow64=wow)
    p.add_thread(0x1B34, teb=0x7EFDB000, stack_start=0x0007E000, stack_size=0x2000,
                 stack32_base=0x00190000, stack32_limit=0x0018C000)
    p.add_thread(0x1C08, teb=0x7EFD8000, stack_start=0x001FE000, stack_size=0x2000,
                 stack32_base=0x00690000, stack32_limit=0x0068E000)
    p.finish()
    probes = _peb_probes(b, p)
    for t in p.threads:
        teb32 = p.teb32_address(t)
        probes.append(b.probe(t.teb, 8, f"TEB64({t.tid:#x}).NtTib.ExceptionList = TEB32"))
        probes.append(b.probe(teb32 + TEB32.process_environment_block, 4,
                              f"TEB32({t.tid:#x}).ProcessEnvironmentBlock"))
        probes.append(b.probe(teb32 + TEB32.stack_base, 8, f"TEB32({t.tid:#x}).StackBase/Limit"))
    probes.append(b.probe(wow.peb32 + PEB32.process_heap, 4, "PEB32.ProcessHeap"))
    probes.append(b.probe(wow.peb32 + PEB32.nt_global_flag, 4, "PEB32.NtGlobalFlag"))
    probes.append(b.probe(wow.peb32 + PEB32.number_of_heaps, 12,
                          "PEB32.NumberOfHeaps, MaximumNumberOfHeaps, ProcessHeaps"))
    probes.append(b.probe(array32, 4 * len(heaps32), "PEB32 ProcessHeaps[]"))
    probes.append(b.probe(heaps32[0], 8, "32-bit process heap (not captured)"))
    return _finish("wow64_win7", wow64_win7.__doc__ or "", b, p, probes)


# ---------------------------------------------------------------------------
# Small 64-bit processes for the memory-list and missing-data scenarios.

def _small_x64(os_version: tuple[int, int, int] = (10, 0, 19041), *, threads: int = 1,
               **process_kw) -> tuple[DumpBuilder, Process]:
    win10 = os_version[0] >= 10
    b = DumpBuilder(arch="x64", os_version=os_version,
                    csd_version="" if win10 else "Service Pack 1",
                    timestamp=1_620_000_000, pid=4242, process_create_time=1_619_999_900,
                    number_of_processors=4)
    exe = b.add_module(path=r"C:\Tools\tiny.exe", base=0x13F000000, size=0x9000,
                       file_version=(0, 9, 1, 0), timestamp=0x60A1B2C3,
                       pdb_name="tiny.pdb", pdb_guid=GUID_EXE, pdb_age=1)
    if win10:
        ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x7FFB5C6D0000,
                             size=0x1F5000, file_version=WIN10_NTDLL_VERSION, timestamp=0x9F1F4A6C,
                             pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=1)
        array, ldr = 0x7FFB5C83D2C0, 0x7FFB5C83C4C0
    else:
        ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x77A50000,
                             size=0x1A9000, file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C8F9,
                             pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
        array, ldr = 0x77B7C8C0, 0x77B82640
    b.add_image_regions(exe)
    b.add_image_regions(ntdll, writable=((array, array + 0x80),))
    heaps = [0x005A0000, 0x00700000]
    for h in heaps:
        _heap_regions(b, h)
    kw: dict[str, Any] = dict(peb=0x7FFFFFDF000, image_base=exe.base, ldr=ldr, nt_global_flag=0,
                              heaps=heaps, max_heaps=16, process_heaps_array=array)
    kw.update(process_kw)
    p = Process(b, **kw)
    tebs = [0x7FFFFFDD000, 0x7FFFFFDB000, 0x7FFFFFD9000]
    for i in range(threads):
        p.add_thread(0x1000 + 4 * i, teb=tebs[i], stack_start=0x0022E000 - 0x100000 * i,
                     stack_size=0x2000)
    return b, p


def both_memory_lists() -> tuple[DumpBuilder, dict]:
    """MemoryList and Memory64List in one dump, holding distinct ranges."""
    b, p = _small_x64()
    p.finish()
    b.add_memory(0x00020000, pattern(0x00020000, 0x1000, 0x11), list="mem")
    b.add_memory(0x00040000, pattern(0x00040000, 0x800, 0x22), list="mem")
    b.add_memory(0x00030000, pattern(0x00030000, 0x1000, 0x33), list="mem64")
    b.add_memory(0x00050000, pattern(0x00050000, 0x2000, 0x44), list="mem64")
    for base, size in ((0x20000, 0x1000), (0x30000, 0x1000), (0x40000, 0x1000), (0x50000, 0x2000)):
        _data_region(b, base, size)
    probes = _peb_probes(b, p) + [
        b.probe(0x00020000, 32, "MemoryList range"),
        b.probe(0x00020FF0, 16, "MemoryList range, last bytes"),
        b.probe(0x00030400, 64, "Memory64List range"),
        b.probe(0x00040000, 0x800, "MemoryList range, whole"),
        b.probe(0x00050000, 0x2000, "Memory64List range, whole"),
        b.probe(0x00020FF8, 16, "runs off a MemoryList range into nothing"),
        b.probe(0x000407F8, 16, "runs off the 0x800-byte range (rest of page not captured)"),
        b.probe(0x00060000, 4, "past every range"),
    ]
    return _finish("both_memory_lists", both_memory_lists.__doc__ or "", b, p, probes)


def adjacent_ranges() -> tuple[DumpBuilder, dict]:
    """Reads that span ranges which touch end-to-start, across and within lists."""
    b, p = _small_x64()
    p.finish()
    # MemoryList 0x10000..0x11000 then Memory64List 0x11000..0x12000.
    b.add_memory(0x00010000, pattern(0x00010000, 0x1000, 0xA1), list="mem")
    b.add_memory(0x00011000, pattern(0x00011000, 0x1000, 0xB2), list="mem64")
    # Two adjacent Memory64List ranges 0x20000..0x21000..0x23000.
    b.add_memory(0x00020000, pattern(0x00020000, 0x1000, 0xC3), list="mem64")
    b.add_memory(0x00021000, pattern(0x00021000, 0x2000, 0xD4), list="mem64")
    # Three in a row, alternating lists: mem, mem64, mem.
    b.add_memory(0x00030000, pattern(0x00030000, 0x1000, 0xE5), list="mem")
    b.add_memory(0x00031000, pattern(0x00031000, 0x1000, 0xF6), list="mem64")
    b.add_memory(0x00032000, pattern(0x00032000, 0x1000, 0x17), list="mem")
    # Two adjacent MemoryList ranges, unaligned sizes: 0x40000..0x40123..0x40400.
    b.add_memory(0x00040000, pattern(0x00040000, 0x123, 0x28), list="mem")
    b.add_memory(0x00040123, pattern(0x00040123, 0x2DD, 0x39), list="mem")
    for base, size in ((0x10000, 0x2000), (0x20000, 0x3000), (0x30000, 0x3000), (0x40000, 0x1000)):
        _data_region(b, base, size)
    probes = _peb_probes(b, p) + [
        b.probe(0x00010FF0, 0x20, "MemoryList -> Memory64List boundary"),
        b.probe(0x00010000, 0x2000, "both ranges whole"),
        b.probe(0x00010FFF, 2, "one byte each side"),
        b.probe(0x00020FF8, 0x10, "Memory64List -> Memory64List boundary"),
        b.probe(0x00020800, 0x1000, "Memory64List pair, middle"),
        b.probe(0x00020000, 0x3000, "Memory64List pair whole"),
        b.probe(0x00030FF0, 0x1020, "three ranges mem -> mem64 -> mem"),
        b.probe(0x00030000, 0x3000, "three ranges whole"),
        b.probe(0x00040120, 8, "MemoryList -> MemoryList at an odd address"),
        b.probe(0x00011FF0, 0x20, "runs past the end of the joined range"),
        b.probe(0x0000FFF0, 0x20, "starts before the joined range"),
        b.probe(0x00022FFF, 2, "runs past the Memory64List pair"),
        b.probe(0x00012000, 1, "just past the end"),
        b.probe(0x00033000, 1, "just past the triple"),
    ]
    return _finish("adjacent_ranges", adjacent_ranges.__doc__ or "", b, p, probes)


def peb_not_captured() -> tuple[DumpBuilder, dict]:
    """TEBs point at a PEB whose page is not in the dump (region still listed)."""
    b, p = _small_x64(capture_peb=False, threads=2)
    p.finish()
    return _finish("peb_not_captured", peb_not_captured.__doc__ or "", b, p, _peb_probes(b, p))


def no_memory_info() -> tuple[DumpBuilder, dict]:
    """Windows 7 SP1 x64 dump without a MemoryInfoListStream."""
    b, p = _small_x64((6, 1, 7601))
    p.finish()
    b.omit_stream("MemoryInfoList")
    return _finish("no_memory_info", no_memory_info.__doc__ or "", b, p, _peb_probes(b, p))


def no_threads() -> tuple[DumpBuilder, dict]:
    """An empty ThreadListStream (0 threads); the PEB is captured but no TEB leads to it."""
    b, p = _small_x64(threads=0)
    p.finish()
    return _finish("no_threads", no_threads.__doc__ or "", b, p, _peb_probes(b, p))


# ---------------------------------------------------------------------------
# NT heap scenarios.  The heap bytes come from heap.py; every heap value in the
# JSON is computed from the builder's inputs.  Extra keys in these JSONs:
#
#   heaps[]            one record per PEB.ProcessHeaps entry (native PEB, or the
#                      64-bit PEB of a WOW64 process), see NtHeap.expected();
#                      non-NT entries have type "segment" or "unknown"
#   heaps32[]          WOW64 only: the 32-bit PEB's heaps
#   stack_trace_db     +ust only: the _RTL_STACK_TRACE_ENTRY area
#   heap_conventions   heap.CONVENTIONS: what the builder chose where the
#                      reference leaves room
#   corruption[]       every heap's corruption records, with a "heap" key

HEAP_WIN7_NTDLL = (6, 1, 7601, 17514)
HEAP_OS = {  # build -> (os_version, csd_version, ntdll file version)
    7601: ((6, 1, 7601), "Service Pack 1", (6, 1, 7601, 17514)),
    9200: ((6, 2, 9200), "", (6, 2, 9200, 16384)),
    9600: ((6, 3, 9600), "", (6, 3, 9600, 19678)),
    14393: ((10, 0, 14393), "", (10, 0, 14393, 3986)),
    17763: ((10, 0, 17763), "", (10, 0, 17763, 2183)),
    19041: ((10, 0, 19041), "", (10, 0, 19041, 1889)),
    19045: ((10, 0, 19045), "", (10, 0, 19041, 3636)),
    22621: ((10, 0, 22621), "", (10, 0, 22621, 2506)),
    26100: ((10, 0, 26100), "", (10, 0, 26100, 2454)),
}


class _Mods:
    """Module bases of a heap scenario's process (for realistic return addresses)."""

    def __init__(self, exe, ntdll, k32, kb):
        self.exe, self.ntdll, self.k32, self.kb = exe, ntdll, k32, kb

    def stack(self, site: int) -> list[int]:
        """A plausible allocation stack, innermost frame first."""
        return [
            self.ntdll.base + 0x2A1F3 + 0x10 * (site % 3),   # RtlAllocateHeap
            self.kb.base + 0x1B4C7,                          # HeapAlloc wrapper
            self.exe.base + 0x1000 + 0x53 * site,            # the allocating function
            self.exe.base + 0x2A40 + 0x21 * (site % 5),      # its caller
            self.exe.base + 0x51F0,                          # main
            self.k32.base + 0x17034,                         # BaseThreadInitThunk
            self.ntdll.base + 0x52651,                       # RtlUserThreadStart
        ]


# Per-arch address plan of the native heap scenarios (all heap reservations
# 64 KiB aligned, nothing overlapping).
_HEAP_PLAN: dict[str, dict[str, Any]] = {
    "x86": dict(
        exe=0x00400000, ntdll=0x77D60000, k32=0x76B30000, kb=0x75C10000, array=0x77E97500,
        ldr=0x77E97880, peb=0x7FFDF000, tebs=(0x7FFDE000, 0x7FFDD000),
        stacks=((0x0012E000, 0x2000), (0x0032F000, 0x1000)),
        heap0=0x00550000, heap0_seg1=0x02A40000, heap1=0x00680000, db=0x00600000,
        virt0=(0x03B20000, 0x0007F123, 0x100000), virt1=(0x03C30000, 0x00080000, None),
        virt_h1=(0x03D50000, 0x0009A5E1, None),
    ),
    "x64": dict(
        exe=0x7FF6A1230000, ntdll=0x7FFB5C6D0000, k32=0x7FFB5B4E0000, kb=0x7FFB5A0C0000,
        array=0x7FFB5C83D2C0, ldr=0x7FFB5C83C4C0, peb=0x7B1E3F2000,
        tebs=(0x7B1E3F3000, 0x7B1E3F5000),
        stacks=((0x7B1E1FD000, 0x3000), (0x7B1E5FF000, 0x1000)),
        heap0=0x21F4AE00000, heap0_seg1=0x21F4C100000, heap1=0x21F4AC00000, db=0x21F4A800000,
        virt0=(0x21F4D000000, 0x00100123, 0x200000), virt1=(0x21F4D400000, 0x000FF001, None),
        virt_h1=(0x21F4D800000, 0x00123457, None),
    ),
}


def _heap_process(arch: str, build: int, *, heaps: list[int], nt_global_flag: int = 0,
                  pid: int = 5120, timestamp: int = 1_640_000_000) -> tuple[DumpBuilder, Process, _Mods]:
    os_version, csd, ntdll_version = HEAP_OS[build]
    plan = _HEAP_PLAN[arch]
    b = DumpBuilder(arch=arch, os_version=os_version, csd_version=csd, timestamp=timestamp,
                    pid=pid, process_create_time=timestamp - 600, number_of_processors=4)
    x86 = arch == "x86"
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"],
                       size=0x2A000 if x86 else 0x26000, file_version=(1, 4, 2, 0),
                       timestamp=0x62A1B2C3, pdb_name=r"C:\build\leaky\Release\leaky.pdb",
                       pdb_guid=GUID_EXE, pdb_age=3)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=plan["ntdll"],
                         size=0x13C000 if x86 else 0x1F5000, file_version=ntdll_version,
                         timestamp=0x4CE7B96E, checksum=0x140DA7, pdb_name="ntdll.pdb",
                         pdb_guid=GUID_NTDLL, pdb_age=2)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=plan["k32"],
                       size=0xD4000 if x86 else 0xBD000, file_version=ntdll_version,
                       timestamp=0x4CE7B8F0, pdb_name="kernel32.pdb", pdb_guid=GUID_KERNEL32,
                       pdb_age=1)
    kb = b.add_module(path=r"C:\Windows\System32\KERNELBASE.dll", base=plan["kb"],
                      size=0x4A000 if x86 else 0x2CD000, file_version=ntdll_version,
                      timestamp=0x4CE7B8F1, pdb_name="kernelbase.pdb", pdb_guid=GUID_KERNELBASE,
                      pdb_age=1)
    for m in (exe, k32, kb):
        b.add_image_regions(m)
    array = plan["array"]
    b.add_image_regions(ntdll, writable=((array, array + 0x80),))
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"],
                nt_global_flag=nt_global_flag, heaps=heaps, max_heaps=16,
                process_heaps_array=array)
    for i, (teb, (stack, size)) in enumerate(zip(plan["tebs"], plan["stacks"])):
        p.add_thread(0x1A00 + 4 * i, teb=teb, stack_start=stack, stack_size=size)
    return b, p, _Mods(exe, ntdll, k32, kb)


def _plan_blocks(seg, plan: list[tuple], mods: _Mods | None, site0: int = 0) -> None:
    """("b", request) busy, ("f", granules) free, ("n",) next committed range.
    With mods, busy blocks get stacks (every fourth one none)."""
    g = seg.g
    k = site0
    for item in plan:
        if item[0] == "b":
            stack = None
            if mods is not None and k % 4 != 3:
                stack = mods.stack(k % 6)
            seg.busy(item[1], stack=stack)
            k += 1
        elif item[0] == "f":
            seg.free(item[1] * g)
        else:
            seg.next_run()


_PLAN_H0_SEG0 = [("b", 0x10), ("b", 0x1), ("b", 0x0), ("f", 4), ("b", 0x18), ("b", 0x19),
                 ("b", 0x7), ("b", 0x100), ("f", 8), ("b", 0x3FF), ("b", 0x1234), ("b", 0x28),
                 ("b", 0x2F), ("f", 2), ("b", 0x55), ("b", 0x80),
                 ("n",), ("b", 0x123), ("f", 6), ("b", 0x200)]
_PLAN_H0_SEG1 = [("b", 0x64), ("b", 0x65), ("f", 3), ("b", 0x333)]
_PLAN_H1 = [("b", 0x20), ("b", 0x400), ("f", 2), ("b", 0x11), ("b", 0x0), ("b", 0x7F)]


def _std_heaps(b: DumpBuilder, arch: str, epoch: str, *, mods: _Mods, ust: bool = False,
               db: StackTraceDatabase | None = None, seed: int = 1,
               plan: dict | None = None) -> list[NtHeap]:
    """Process heap (2 segments, 3 uncommitted ranges, 2 virtual blocks) and a
    private heap (1 segment, 1 uncommitted range, 1 virtual block)."""
    plan = plan or _HEAP_PLAN[arch]
    extra = HEAP_CAPTURE_STACK_BACKTRACES if ust else 0
    site_mods = mods if ust else None
    h0 = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch, seed=seed, ust=ust, stack_db=db,
                flags=PROCESS_HEAP_FLAGS | extra, reserve=0x20000,
                committed=[(0, 0x6000), (0x8000, 0x2000)], process_heaps_index=1, fill_tag=0xA1)
    _plan_blocks(h0.segments[0], _PLAN_H0_SEG0, site_mods)
    s1 = h0.add_segment(plan["heap0_seg1"], reserve=0x10000, committed=[(0, 0x3000)])
    _plan_blocks(s1, _PLAN_H0_SEG1, site_mods, site0=2)
    for i, key in enumerate(("virt0", "virt1")):
        addr, size, reserve = plan[key]
        h0.add_virtual(addr, size, reserve=reserve, capture="head",
                       stack=mods.stack(6 + i) if ust else None)
    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=seed + 1, ust=ust, stack_db=db,
                flags=PRIVATE_HEAP_FLAGS | extra, reserve=0x10000, committed=[(0, 0x2000)],
                process_heaps_index=2, fill_tag=0xA2)
    _plan_blocks(h1.segments[0], _PLAN_H1, site_mods, site0=5)
    addr, size, reserve = plan["virt_h1"]
    h1.add_virtual(addr, size, reserve=reserve, capture="head")
    return [h0, h1]


def _heap_probes(b: DumpBuilder, p: Process, heaps: list[NtHeap]) -> list[dict]:
    out = [pr for pr in _peb_probes(b, p) if not pr.get("note", "").startswith("process heap itself")]
    for h in heaps:
        seg = ARCH_LAYOUTS[h.arch].segment
        out.append(b.probe(h.address + seg.segment_signature, 4,
                           f"heap {h.address:#x}: SegmentSignature"))
        out.append(b.probe(h.address + h.layout.signature, 4, f"heap {h.address:#x}: Signature"))
        out.append(b.probe(h.address + h.layout.encoding, 16 if h.arch == "x64" else 8,
                           f"heap {h.address:#x}: Encoding"))
    return out


def _finish_heaps(name: str, description: str, b: DumpBuilder, p: Process,
                  heaps: list, *, heaps32: list | None = None,
                  db: StackTraceDatabase | None = None, probes: list[dict] | None = None,
                  finish_process: bool = True) -> tuple[DumpBuilder, dict]:
    """Finish heaps (NtHeap objects or ready dicts for non-NT entries), the
    trace database and the process; then the expected values."""
    for h in list(heaps) + list(heaps32 or []):
        if isinstance(h, NtHeap) and not h.finished:
            h.finish()
    if db is not None:
        db.finish()
    if finish_process:
        p.finish()
    nt = [h for h in list(heaps) + list(heaps32 or []) if isinstance(h, NtHeap)]
    _, exp = _finish(name, description, b, p, probes if probes is not None else _heap_probes(b, p, nt))

    def rec(h) -> dict:
        return h.expected() if isinstance(h, NtHeap) else h

    exp["heaps"] = [rec(h) for h in heaps]
    if heaps32 is not None:
        exp["heaps32"] = [rec(h) for h in heaps32]
    exp["stack_trace_db"] = db.expected() if db is not None else None
    exp["heap_conventions"] = CONVENTIONS
    exp["corruption"] = [dict(c, heap=h["address"]) for h in exp["heaps"] + exp.get("heaps32", [])
                         for c in h.get("corruption", [])]
    return b, exp


def _heap_epoch_scenario(epoch: str, arch: str, build: int) -> Scenario:
    def make() -> tuple[DumpBuilder, dict]:
        plan = _HEAP_PLAN[arch]
        b, p, mods = _heap_process(arch, build, heaps=[plan["heap0"], plan["heap1"]])
        heaps = _std_heaps(b, arch, epoch, mods=mods, seed=build)
        desc = (f"{arch} process on build {build} ({epoch} _HEAP layout): process heap with 2 "
                f"segments, 3 uncommitted ranges, 2 virtual blocks; private heap with 1 segment "
                f"and 1 virtual block; mixed busy/free blocks incl. 0-byte and odd sizes")
        return _finish_heaps(f"heap_{epoch}_{arch}", desc, b, p, heaps)
    make.__name__ = f"heap_{epoch}_{arch}"
    make.__doc__ = f"NT heaps, {epoch} layout, {arch}, build {build}."
    return make


HEAP_EPOCH_BUILDS = {"win7": 7601, "win8": 9600, "win10_1507": 14393, "win10_1809": 17763}


def heap_ust_win7_x64() -> tuple[DumpBuilder, dict]:
    """+ust on Windows 7 SP1 x64: stacks on blocks and virtual blocks, incl. a 16 MiB virtual block."""
    plan = _HEAP_PLAN["x64"]
    b, p, mods = _heap_process("x64", 7601, heaps=[plan["heap0"], plan["heap1"]],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB, pid=7788)
    db = StackTraceDatabase(b, plan["db"], "x64")
    heaps = _std_heaps(b, "x64", "win7", mods=mods, ust=True, db=db, seed=0x7601)
    # The 16 MiB case: requested 0x1000040; with +ust the user data starts at
    # VAE+0x60, so CommitSize = round_up(0x1000040 + 0x60, 0x1000) = 0x1001000,
    # BusyBlock.Size = 0x1001000 - 0x1000040 = 0xFC0, user size ([HST]) 0x1000040,
    # [MPF] convention 0x1001000 - 0xFC0 - 0x40 = 0x1000000.
    heaps[1].add_virtual(0x21F4E000000, 0x1000040, capture="head", stack=mods.stack(9))
    return _finish_heaps("heap_ust_win7_x64", heap_ust_win7_x64.__doc__ or "", b, p, heaps, db=db)


def heap_ust_win10_x86() -> tuple[DumpBuilder, dict]:
    """+ust on Windows 10 2004 x86 (win10_1809 layout): stacks on blocks and virtual blocks."""
    plan = _HEAP_PLAN["x86"]
    b, p, mods = _heap_process("x86", 19041, heaps=[plan["heap0"], plan["heap1"]],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB, pid=8844)
    db = StackTraceDatabase(b, plan["db"], "x86")
    heaps = _std_heaps(b, "x86", "win10_1809", mods=mods, ust=True, db=db, seed=19041)
    heaps[1].add_virtual(0x04000000, 0x00100040, capture="head", stack=mods.stack(9))
    return _finish_heaps("heap_ust_win10_x86", heap_ust_win10_x86.__doc__ or "", b, p, heaps, db=db)


def heap_wow64_win7() -> tuple[DumpBuilder, dict]:
    """WOW64 on Windows 7 SP1: a 64-bit heap (x64 win7 layout) in PEB64 and two 32-bit heaps
    (x86 win7 layout) in PEB32."""
    b = DumpBuilder(arch="x64", os_version=(6, 1, 7601), csd_version="Service Pack 1",
                    timestamp=1_610_500_000, pid=6961, process_create_time=1_610_499_500,
                    number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files (x86)\Leaky\leaky32.exe", base=0x00F60000,
                       size=0x1D000, file_version=(1, 2, 0, 0), timestamp=0x5FF3A1B0,
                       pdb_name=r"C:\build\leaky\Win32\Release\leaky32.pdb", pdb_guid=GUID_EXE,
                       pdb_age=5)
    ntdll = b.add_module(path=r"C:\Windows\SYSTEM32\ntdll.dll", base=0x77B20000, size=0x1A9000,
                         file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C8F9,
                         pdb_name="ntdll.pdb", pdb_guid=GUID_NTDLL, pdb_age=2)
    w64 = b.add_module(path=r"C:\Windows\SYSTEM32\wow64.dll", base=0x74E30000, size=0x3F000,
                       file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D0,
                       pdb_name="wow64.pdb", pdb_guid=GUID_WOW64, pdb_age=1)
    w64win = b.add_module(path=r"C:\Windows\SYSTEM32\wow64win.dll", base=0x74DD0000, size=0x5C000,
                          file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D1,
                          pdb_name="wow64win.pdb", pdb_guid=GUID_WOW64WIN, pdb_age=1)
    w64cpu = b.add_module(path=r"C:\Windows\SYSTEM32\wow64cpu.dll", base=0x74DC0000, size=0x8000,
                          file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7C9D2,
                          pdb_name="wow64cpu.pdb", pdb_guid=GUID_WOW64CPU, pdb_age=1)
    ntdll32 = b.add_module(path=r"C:\Windows\SysWOW64\ntdll.dll", base=0x77D00000, size=0x180000,
                           file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B96E,
                           pdb_name="wntdll.pdb", pdb_guid=GUID_WNTDLL, pdb_age=2)
    k32 = b.add_module(path=r"C:\Windows\syswow64\kernel32.dll", base=0x75F60000, size=0x110000,
                       file_version=WIN7_NTDLL_VERSION, timestamp=0x4CE7B8F0,
                       pdb_name="wkernel32.pdb", pdb_guid=GUID_WKERNEL32, pdb_age=2)
    array64, array32 = 0x77C4C8C0, 0x77E04440
    for m in (exe, w64, w64win, w64cpu, k32):
        b.add_image_regions(m)
    b.add_image_regions(ntdll, writable=((array64, array64 + 16 * 8),))
    b.add_image_regions(ntdll32, writable=((array32, array32 + 16 * 4),))

    # 64-bit heap of the WOW64 layer.
    h64 = NtHeap(b, 0x00230000, arch="x64", epoch="win7", seed=0x64, flags=PROCESS_HEAP_FLAGS,
                 reserve=0x10000, committed=[(0, 0x3000)], process_heaps_index=1, fill_tag=0xC4)
    _plan_blocks(h64.segments[0], [("b", 0x30), ("b", 0x1), ("f", 3), ("b", 0x148), ("b", 0x0)], None)
    h64.add_virtual(0x01000000, 0x00100010, capture="head")
    # 32-bit heaps: the standard pair in x86 Windows 7 layout.
    plan32 = dict(_HEAP_PLAN["x86"], heap0=0x00350000, heap0_seg1=0x02A40000, heap1=0x00480000)
    mods32 = _Mods(exe, ntdll32, k32, k32)
    heaps32 = _std_heaps(b, "x86", "win7", mods=mods32, seed=0x3232, plan=plan32)

    wow = Wow64(peb32=0x7EFDE000, teb32_offset=0x2000, process_heap=heaps32[0].address,
                heaps=[h.address for h in heaps32], process_heaps_array=array32,
                nt_global_flag=0, max_heaps=16, ldr=0x77E00200)
    p = Process(b, peb=0x7EFDF000, image_base=exe.base, ldr=0x77C52640, nt_global_flag=0,
                heaps=[h64.address], max_heaps=16, process_heaps_array=array64, wow64=wow)
    p.add_thread(0x1B34, teb=0x7EFDB000, stack_start=0x0007E000, stack_size=0x2000,
                 stack32_base=0x00190000, stack32_limit=0x0018C000)
    p.add_thread(0x1C08, teb=0x7EFD8000, stack_start=0x001FE000, stack_size=0x2000,
                 stack32_base=0x00690000, stack32_limit=0x0068E000)
    for h in [h64] + heaps32:
        h.finish()
    p.finish()
    probes = _heap_probes(b, p, [h64] + heaps32)
    probes.append(b.probe(wow.peb32 + PEB32.process_heap, 4, "PEB32.ProcessHeap"))
    probes.append(b.probe(array32, 8, "PEB32 ProcessHeaps[]"))
    return _finish_heaps("heap_wow64_win7", heap_wow64_win7.__doc__ or "", b, p, [h64],
                         heaps32=heaps32, probes=probes, finish_process=False)


# ---- corrupt variants: Windows 10 2004 x64 (win10_1809 layout) ------------------
_CORRUPT_BUILD = 19041
_CORRUPT_SEG = (0x21F4C100000, 0x21F4C300000)   # the process heap's 2nd and 3rd segments
_CORRUPT_VIRT = (0x21F4D000000, 0x21F4D400000, 0x21F4D800000)
_OUTSIDE = 0x3E1B0000000                          # no region, not captured


def _corrupt_base(extra_heaps: Sequence[int] = ()) -> tuple[DumpBuilder, Process, list[NtHeap]]:
    plan = _HEAP_PLAN["x64"]
    heap_list = [plan["heap0"], plan["heap1"]] + list(extra_heaps)
    b, p, mods = _heap_process("x64", _CORRUPT_BUILD, heaps=heap_list, pid=9090)
    h0 = NtHeap(b, plan["heap0"], arch="x64", epoch="win10_1809", seed=0xBAD, reserve=0x20000,
                committed=[(0, 0x4000)], process_heaps_index=1, fill_tag=0xA1)
    _plan_blocks(h0.segments[0], _PLAN_H0_SEG0[:10], None)
    s1 = h0.add_segment(_CORRUPT_SEG[0], reserve=0x10000, committed=[(0, 0x3000)])
    # Twenty 0x1F0-byte blocks with a free one every fifth: headers on all three pages.
    _plan_blocks(s1, [("f", 4) if i % 5 == 4 else ("b", 0x1F0) for i in range(20)], None)
    s2 = h0.add_segment(_CORRUPT_SEG[1], reserve=0x10000, committed=[(0, 0x2000)])
    _plan_blocks(s2, [("b", 0x48), ("b", 0x49), ("f", 2), ("b", 0x4A)], None)
    for i, addr in enumerate(_CORRUPT_VIRT):
        h0.add_virtual(addr, 0x100000 + 0x111 * i, capture="head")
    h1 = NtHeap(b, plan["heap1"], arch="x64", epoch="win10_1809", seed=0xBAE,
                flags=PRIVATE_HEAP_FLAGS, reserve=0x10000, committed=[(0, 0x2000)],
                process_heaps_index=2, fill_tag=0xA2)
    _plan_blocks(h1.segments[0], _PLAN_H1, None)
    return b, p, [h0, h1]


def heap_bad_checksum() -> tuple[DumpBuilder, dict]:
    """One entry mid-segment (2nd segment of the process heap) has a wrong SmallTagIndex;
    the segment walk stops there, everything else is intact."""
    b, p, heaps = _corrupt_base()
    s1 = heaps[0].segments[1]
    heaps[0].corrupt_checksum(s1.blocks[8])
    return _finish_heaps("heap_bad_checksum", heap_bad_checksum.__doc__ or "", b, p, heaps)


def heap_cyclic_segment_list() -> tuple[DumpBuilder, dict]:
    """The last segment's SegmentListEntry.Flink points back at the 2nd segment instead of
    _HEAP.SegmentList; all three segments are still reported, once each."""
    b, p, heaps = _corrupt_base()
    heaps[0].loop_segment_list(2, 1)
    return _finish_heaps("heap_cyclic_segment_list", heap_cyclic_segment_list.__doc__ or "",
                         b, p, heaps)


def heap_cyclic_virtual_list() -> tuple[DumpBuilder, dict]:
    """The 3rd virtual block's Flink points back at the 2nd; all three are reported once."""
    b, p, heaps = _corrupt_base()
    heaps[0].loop_virtual_list(2, 1)
    return _finish_heaps("heap_cyclic_virtual_list", heap_cyclic_virtual_list.__doc__ or "",
                         b, p, heaps)


def heap_pointer_outside_dump() -> tuple[DumpBuilder, dict]:
    """The 2nd virtual block's Flink points at an address the dump does not capture; the 3rd
    virtual block is unreachable forwards (still listed in heaps[].virtual_blocks)."""
    b, p, heaps = _corrupt_base()
    heaps[0].break_virtual_link(1, _OUTSIDE)
    return _finish_heaps("heap_pointer_outside_dump", heap_pointer_outside_dump.__doc__ or "",
                         b, p, heaps)


def heap_page_missing() -> tuple[DumpBuilder, dict]:
    """The 2nd page of the process heap's 2nd segment is committed but not in the dump; the
    walk of that segment stops at the first entry on it."""
    b, p, heaps = _corrupt_base()
    heaps[0].drop_page(_CORRUPT_SEG[0] + 0x1000)
    return _finish_heaps("heap_page_missing", heap_page_missing.__doc__ or "", b, p, heaps)


def heap_not_nt() -> tuple[DumpBuilder, dict]:
    """ProcessHeaps[2] points at a captured page with neither 0xFFEEFFEE nor 0xDDEEDDEE."""
    bogus = 0x21F4F000000
    b, p, heaps = _corrupt_base([bogus])
    rec = write_not_a_heap(b, bogus, "x64")
    return _finish_heaps("heap_not_nt", heap_not_nt.__doc__ or "", b, p, heaps + [rec])


def heap_segment_heap() -> tuple[DumpBuilder, dict]:
    """ProcessHeaps[1] is a segment heap (0xDDEEDDEE at +0x10): listed, not walked."""
    plan = _HEAP_PLAN["x64"]
    seg_heap = 0x21F4F000000
    b, p, heaps = _corrupt_base()
    p.heaps = [plan["heap0"], seg_heap, plan["heap1"]]
    heaps[1].process_heaps_index = 3
    rec = write_segment_heap_stub(b, seg_heap, "x64")
    return _finish_heaps("heap_segment_heap", heap_segment_heap.__doc__ or "", b, p,
                         [heaps[0], rec, heaps[1]])


HEAP_SCENARIOS: dict[str, Scenario] = {}
for _ep, _build in HEAP_EPOCH_BUILDS.items():
    for _arch in ("x86", "x64"):
        HEAP_SCENARIOS[f"heap_{_ep}_{_arch}"] = _heap_epoch_scenario(_ep, _arch, _build)
HEAP_SCENARIOS.update({
    "heap_wow64_win7": heap_wow64_win7,
    "heap_ust_win7_x64": heap_ust_win7_x64,
    "heap_ust_win10_x86": heap_ust_win10_x86,
    "heap_bad_checksum": heap_bad_checksum,
    "heap_cyclic_segment_list": heap_cyclic_segment_list,
    "heap_cyclic_virtual_list": heap_cyclic_virtual_list,
    "heap_pointer_outside_dump": heap_pointer_outside_dump,
    "heap_page_missing": heap_page_missing,
    "heap_not_nt": heap_not_nt,
    "heap_segment_heap": heap_segment_heap,
})


SCENARIOS: dict[str, Scenario] = {
    "x86_win7": x86_win7,
    "x64_win10": x64_win10,
    "wow64_win7": wow64_win7,
    "both_memory_lists": both_memory_lists,
    "adjacent_ranges": adjacent_ranges,
    "peb_not_captured": peb_not_captured,
    "no_memory_info": no_memory_info,
    "no_threads": no_threads,
    **HEAP_SCENARIOS,
}


# +ust stack scenarios (PE images, export directories, expected frame texts) live in
# stack_scenarios.py, which builds on the helpers above.
from .stack_scenarios import STACK_SCENARIOS  # noqa: E402

SCENARIOS.update(STACK_SCENARIOS)

# The real ntdll.dll stand-in of tests/pdb with its heap keys set (ntdll_scenarios.py).
from .ntdll_scenarios import NTDLL_SCENARIOS  # noqa: E402

SCENARIOS.update(NTDLL_SCENARIOS)

# Page heap (+hpa) scenarios live in pageheap_scenarios.py (page heap writer: pageheap.py).
from .pageheap_scenarios import PAGEHEAP_SCENARIOS  # noqa: E402

SCENARIOS.update(PAGEHEAP_SCENARIOS)

# Low Fragmentation Heap scenarios (lfh.py front end) live in lfh_scenarios.py.
from .lfh_scenarios import LFH_SCENARIOS  # noqa: E402

SCENARIOS.update(LFH_SCENARIOS)

# Segment-heap scenarios (Windows 10/11 segment heap next to an NT heap) live in
# segheap_scenarios.py, which builds on the helpers above.
from .segheap_scenarios import SEGHEAP_SCENARIOS  # noqa: E402

SCENARIOS.update(SEGHEAP_SCENARIOS)

# Leak-triage scenarios (C++ RTTI names, content classes, unreferenced blocks) live in
# triage_scenarios.py (images: rtti.py; expected values: triage.py).
from .triage_scenarios import TRIAGE_SCENARIOS  # noqa: E402

SCENARIOS.update(TRIAGE_SCENARIOS)

# Dumps the heap views can answer only in part, or not at all (coverage_scenarios.py).
from .coverage_scenarios import COVERAGE_SCENARIOS  # noqa: E402

SCENARIOS.update(COVERAGE_SCENARIOS)
