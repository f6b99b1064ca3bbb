"""Write the sample dumps under samples/ (deterministic; a test checks they are current).

    python tests/dumpbuilder/make_samples.py [OUTDIR]     # default: samples/

samples/leaky-1.dmp .. leaky-4.dmp: one leaking x64 process (Windows 10 22H2,
+ust, pid 12100) dumped at 2026-03-02T08:00Z, 09:00Z, 10:00Z and 11:00Z (see
series.py: a halcon stack whose 16-88 MiB virtual blocks grow by two per hour, a
CacheInsert stack that gains 100 blocks of 0x120 per hour, flat stacks, blocks
without a trace, free blocks).  Each has its leaky-N.json (fixture format, plus
symbols), and leaky-series.json holds the analysis results: per dump and per
stack counts and bytes, top stacks, size histogram, first/last diff, growth per
hour, grouping by the module of the first non-allocator frame.

samples/sample-x64-win10.dmp: a 64-bit process on Windows 10 22H2 (build
19045) with +ust, three NT heaps (process heap with two segments, a CRT heap
with a few hundred blocks from a handful of allocation sites, a small private
heap), virtual blocks, and a stack on every user block.  Next to it,
sample-x64-win10.json holds the values a reader must report (same format as
tests/fixtures/*.json).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from dumpbuilder.builder import DumpBuilder  # noqa: E402
    from dumpbuilder.heap import NtHeap, StackTraceDatabase  # noqa: E402
    from dumpbuilder.heap_layouts import (  # noqa: E402
        FLG_USER_STACK_TRACE_DB, HEAP_CAPTURE_STACK_BACKTRACES, PRIVATE_HEAP_FLAGS,
        PROCESS_HEAP_FLAGS)
    from dumpbuilder.scenarios import GUID_UCRT, _finish_heaps, _heap_process  # noqa: E402
    from dumpbuilder.series import leaky_dump, series_expected  # noqa: E402
else:
    from .builder import DumpBuilder
    from .heap import NtHeap, StackTraceDatabase
    from .heap_layouts import (
        FLG_USER_STACK_TRACE_DB, HEAP_CAPTURE_STACK_BACKTRACES, PRIVATE_HEAP_FLAGS,
        PROCESS_HEAP_FLAGS)
    from .scenarios import GUID_UCRT, _finish_heaps, _heap_process
    from .series import leaky_dump, series_expected

SAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "samples")

# Heap and region addresses of the sample (64 KiB aligned, disjoint).
PROCESS_HEAP = 0x1E2C4A50000
PROCESS_HEAP_SEG1 = 0x1E2C6B00000
CRT_HEAP = 0x1E2C4C20000
SMALL_HEAP = 0x1E2C4D80000
TRACE_DB = 0x1E2C4800000
VIRTUALS = (0x1E2C7000000, 0x1E2C7400000, 0x1E2C7800000)


def sample_x64_win10() -> tuple[DumpBuilder, dict]:
    """x64 Windows 10 22H2 (19045), +ust: process heap, CRT heap, small private heap."""
    b, p, mods = _heap_process("x64", 19045, heaps=[PROCESS_HEAP, CRT_HEAP, SMALL_HEAP],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB, pid=14072,
                               timestamp=1_700_123_456)
    ucrt = b.add_module(path=r"C:\Windows\System32\ucrtbase.dll", base=0x7FFB59E90000,
                        size=0x100000, file_version=(10, 0, 19041, 3636), timestamp=0x2BD748BF,
                        pdb_name="ucrtbase.pdb", pdb_guid=GUID_UCRT, pdb_age=1)
    b.add_image_regions(ucrt)
    exe, ntdll, k32 = mods.exe.base, mods.ntdll.base, mods.k32.base

    def crt_stack(fn: int, caller: int) -> list[int]:
        return [ntdll + 0x2A1F3, ucrt.base + 0x10B1A, ucrt.base + 0x10A4E,
                exe + fn, exe + caller, exe + 0x51F0, k32 + 0x17034, ntdll + 0x52651]

    sites = {
        "leak_session": crt_stack(0x1A40, 0x2B17),     # the leak: many same-size blocks
        "leak_buffer": crt_stack(0x1C83, 0x2B17),
        "config": crt_stack(0x13F2, 0x4410),
        "string": crt_stack(0x1105, 0x3A09),
        "cache": crt_stack(0x2211, 0x4410),
    }
    db = StackTraceDatabase(b, TRACE_DB, "x64")
    ust = HEAP_CAPTURE_STACK_BACKTRACES

    ph = NtHeap(b, PROCESS_HEAP, arch="x64", epoch="win10_1809", seed=0x19045,
                flags=PROCESS_HEAP_FLAGS | ust, ust=True, stack_db=db, reserve=0x20000,
                committed=[(0, 0x5000), (0x7000, 0x2000)], process_heaps_index=1, fill_tag=0xD1)
    s0 = ph.segments[0]
    for i, n in enumerate((0x30, 0x208, 0x1, 0x0, 0x99, 0x400, 0x3C, 0x18, 0x1000, 0x77)):
        s0.busy(n, stack=mods.stack(i % 6))
        if i % 4 == 2:
            s0.free(0x40)
    s0.next_run()
    s0.busy(0x123, stack=mods.stack(2))
    s0.free(0x60)
    s0.busy(0x200, stack=mods.stack(4))
    s1 = ph.add_segment(PROCESS_HEAP_SEG1, reserve=0x40000, committed=[(0, 0x3000)])
    for i, n in enumerate((0x64, 0x65, 0x333, 0x10, 0x800)):
        s1.busy(n, stack=mods.stack(i + 1))
    ph.add_virtual(VIRTUALS[0], 0x100040, stack=sites["cache"], capture="head")
    ph.add_virtual(VIRTUALS[1], 0x180000, reserve=0x200000, stack=mods.stack(3), capture="head")

    crt = NtHeap(b, CRT_HEAP, arch="x64", epoch="win10_1809", seed=0x0C47,
                 flags=PRIVATE_HEAP_FLAGS | ust, ust=True, stack_db=db, reserve=0x40000,
                 committed=[(0, 0x14000)], process_heaps_index=2, fill_tag=0xD2)
    c0 = crt.segments[0]
    for i in range(240):
        if i % 3 == 0:
            c0.busy(0x48, stack=sites["leak_session"])
        elif i % 3 == 1:
            c0.busy(0x100 + (i % 7), stack=sites["leak_buffer"] if i % 2 else sites["string"])
        else:
            c0.busy(0x20 + (i % 11), stack=sites["config"] if i % 4 else None)
        if i % 16 == 15:
            c0.free(0x50)
    crt.add_virtual(VIRTUALS[2], 0x123456, stack=sites["cache"], capture="head")

    small = NtHeap(b, SMALL_HEAP, arch="x64", epoch="win10_1809", seed=0x5A11,
                   flags=PRIVATE_HEAP_FLAGS | ust, ust=True, stack_db=db, reserve=0x10000,
                   committed=[(0, 0x2000)], process_heaps_index=3, fill_tag=0xD3)
    for n in (0x20, 0x400, 0x11, 0x0):
        small.segments[0].busy(n, stack=sites["config"])
    return _finish_heaps("sample-x64-win10", sample_x64_win10.__doc__ or "", b, p,
                         [ph, crt, small], db=db)


SAMPLES: dict[str, Callable[[], tuple[DumpBuilder, dict]]] = {
    "sample-x64-win10": sample_x64_win10,
}


LEAKY_HOURS = 4


def _dump_json(obj: dict) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def _write_pair(outdir: str, name: str, data: bytes, exp: dict) -> list[str]:
    dmp = os.path.join(outdir, name + ".dmp")
    js = os.path.join(outdir, name + ".json")
    with open(dmp, "wb") as f:
        f.write(data)
    with open(js, "w", encoding="utf-8", newline="\n") as f:
        f.write(_dump_json(exp))
    return [dmp, js]


def write_leaky_series(outdir: str = SAMPLES_DIR) -> list[str]:
    written = []
    dumps = []
    for hour in range(LEAKY_HOURS):
        b, exp, rows = leaky_dump(hour)
        data = b.to_bytes()
        exp = dict(exp, file_size=len(data))
        written += _write_pair(outdir, exp["scenario"], data, exp)
        dumps.append((exp, rows))
    path = os.path.join(outdir, "leaky-series.json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(_dump_json(series_expected(dumps, name="leaky")))
    return written + [path]


def write_samples(outdir: str = SAMPLES_DIR) -> list[str]:
    os.makedirs(outdir, exist_ok=True)
    written = []
    for name, make in SAMPLES.items():
        b, exp = make()
        data = b.to_bytes()
        exp = dict(exp, file_size=len(data))
        written += _write_pair(outdir, name, data, exp)
    return written + write_leaky_series(outdir)


def main(argv: list[str]) -> int:
    for path in write_samples(argv[1] if len(argv) > 1 else SAMPLES_DIR):
        print(f"{os.path.getsize(path):>8}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
