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
from typing import Any, Callable

from . import structs as fmt
from .builder import PAGE, DumpBuilder, pattern
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


SCENARIOS: dict[str, Scenario] = {
    "x86_win7": x86_win7,
    "x64_win10": x64_win10,
    "wow64_win7": wow64_win7,
    "both_memory_lists": both_memory_lists,
    "adjacent_ranges": adjacent_ranges,
    "peb_not_captured": peb_not_captured,
    "no_memory_info": no_memory_info,
    "no_threads": no_threads,
}
