"""Scenarios with the real ntdll.dll stand-in of tests/pdb mapped (ntdll.py).

    ntdll_globals_x64   a small x64 process whose ntdll.dll is tests/pdb/ntdll_x64/ntdll.dll,
                        relocated to the usual ntdll address, with RtlpLFHKey and
                        RtlpHpHeapGlobals.HeapKey/LfhKey set to per-process values

Each scenario is a heap scenario (scenarios._finish_heaps: heaps[], ...) plus

    ntdll_pdb    the dict add_ntdll_pdb_module returns: module base and size, the PDB
                 (tests/pdb/ntdll_x64/ntdll.pdb, GUID, age, debug id, symbol-store path),
                 pdb_matches, each global's address (base + linker-map RVA) and each key's
                 address and value in the dump (see ntdll.NTDLL_PDB_CONVENTIONS)

The heap is a plain NT heap without LFH: this scenario checks where the keys are and
what they hold; LFH and segment-heap scenarios that decode blocks with them can map the
same image with add_ntdll_pdb_module.
"""

from __future__ import annotations

from .builder import DumpBuilder
from .heap import NtHeap
from .heap_layouts import PROCESS_HEAP_FLAGS, epoch_for_build
from .ntdll import add_ntdll_pdb_module
from .process import Process
from .scenarios import GUID_EXE, GUID_KERNEL32, HEAP_OS, _HEAP_PLAN, _finish_heaps

# Per-process key values (arbitrary, unlike the DLL's initial constants; the
# segment-heap LfhKey keeps only its low 32 bits meaningful on real systems).
NTDLL_GLOBALS_X64_VALUES = {
    "RtlpLFHKey": 0x9E3779B97F4A7C15,
    "RtlpHpHeapGlobals.HeapKey": 0xC2B2AE3D27D4EB4F,
    "RtlpHpHeapGlobals.LfhKey": 0x00000000165667B1,
}
PROCESS_HEAPS_ARRAY_X64 = 0x7B1E3E0000   # a private page: the stand-in image is only 20 KiB


def ntdll_globals_x64() -> tuple[DumpBuilder, dict]:
    """x64 process on Windows 10 2004 whose ntdll.dll is the real stand-in of tests/pdb
    (ntdll_x64/ntdll.dll, matching ntdll_x64/ntdll.pdb) relocated to 0x7FFB5C6D0000, with
    RtlpLFHKey, RtlpHpHeapGlobals.HeapKey and RtlpHpHeapGlobals.LfhKey set to per-process
    values that differ from the DLL's initial constants; one small NT process heap."""
    arch, build = "x64", 19041
    os_version, csd, ntdll_version = HEAP_OS[build]
    plan = _HEAP_PLAN[arch]
    timestamp = 1_700_800_000
    b = DumpBuilder(arch=arch, os_version=os_version, csd_version=csd, timestamp=timestamp,
                    pid=0x4E50, process_create_time=timestamp - 900, number_of_processors=4)
    exe = b.add_module(path=r"C:\Program Files\Leaky\leaky.exe", base=plan["exe"], size=0x26000,
                       file_version=(1, 4, 2, 0), timestamp=0x62A1B2C3,
                       pdb_name=r"C:\build\leaky\Release\leaky.pdb", pdb_guid=GUID_EXE, pdb_age=3)
    facts = add_ntdll_pdb_module(b, "x64", plan["ntdll"], values=NTDLL_GLOBALS_X64_VALUES,
                                 file_version=ntdll_version)
    k32 = b.add_module(path=r"C:\Windows\System32\KERNEL32.DLL", base=plan["k32"], size=0xBD000,
                       file_version=ntdll_version, timestamp=0x4CE7B8F0, pdb_name="kernel32.pdb",
                       pdb_guid=GUID_KERNEL32, pdb_age=1)
    for m in (exe, k32):
        b.add_image_regions(m)
    p = Process(b, peb=plan["peb"], image_base=exe.base, ldr=plan["ldr"], nt_global_flag=0,
                heaps=[plan["heap0"]], max_heaps=16, process_heaps_array=PROCESS_HEAPS_ARRAY_X64)
    for i, (teb, (stack, size)) in enumerate(zip(plan["tebs"], plan["stacks"])):
        p.add_thread(0x4E54 + 4 * i, teb=teb, stack_start=stack, stack_size=size)
    h = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch_for_build(build), seed=0x4E50,
               flags=PROCESS_HEAP_FLAGS, reserve=0x10000, committed=[(0, 0x3000)],
               process_heaps_index=1, fill_tag=0xE5)
    s = h.segments[0]
    s.busy(0x40)
    s.busy(0x120)
    s.free(0x60)
    s.busy(0x18)
    b, exp = _finish_heaps("ntdll_globals_x64", ntdll_globals_x64.__doc__ or "", b, p, [h])
    exp["ntdll_pdb"] = facts
    return b, exp


NTDLL_SCENARIOS = {
    "ntdll_globals_x64": ntdll_globals_x64,
}
