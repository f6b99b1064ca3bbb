"""Large dumps for benchmarks (not checked in; write them where you need them).

    python tests/dumpbuilder/bigdump.py heap  OUT.dmp [--blocks 5000000] [--arch x64] [--ust]
    python tests/dumpbuilder/bigdump.py multi OUT.dmp [--gib 4] [--ranges 4096]

Each command also writes OUT.json with the values a reader must report
(summaries, not one record per block).

* ``heap``: one process whose process heap has several large segments filled
  with a repeated tile of small busy and free entries (BulkRun in heap.py):
  5 million entries take a few seconds and ~230 MiB (x64).
* ``multi``: a small process with one NT heap plus ``ranges`` filled memory
  ranges totalling ``gib`` GiB, streamed to disk (add_memory_fill), so the
  writer never holds the dump in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from dumpbuilder import structs as fmt  # noqa: E402
    from dumpbuilder.builder import PAGE, DumpBuilder  # noqa: E402
    from dumpbuilder.heap import CONVENTIONS, NtHeap, StackTraceDatabase, busy_block_size  # noqa: E402
    from dumpbuilder.heap_layouts import (  # noqa: E402
        ARCH_LAYOUTS, FLG_USER_STACK_TRACE_DB, HEAP_CAPTURE_STACK_BACKTRACES, PRIVATE_HEAP_FLAGS,
        PROCESS_HEAP_FLAGS, epoch_for_build, heap_layout)
    from dumpbuilder.scenarios import HEAP_OS, _heap_process, _HEAP_PLAN, _plan_blocks  # noqa: E402
else:
    from . import structs as fmt
    from .builder import PAGE, DumpBuilder
    from .heap import CONVENTIONS, NtHeap, StackTraceDatabase, busy_block_size
    from .heap_layouts import (
        ARCH_LAYOUTS, FLG_USER_STACK_TRACE_DB, HEAP_CAPTURE_STACK_BACKTRACES, PRIVATE_HEAP_FLAGS,
        PROCESS_HEAP_FLAGS, epoch_for_build, heap_layout)
    from .scenarios import HEAP_OS, _heap_process, _HEAP_PLAN, _plan_blocks

# Tile of the big heap: busy requests and free sizes in granules; it starts and
# ends with a busy entry so no two free entries touch.
_TILE = [("busy", 0x10), ("busy", 0x18), ("free", 2), ("busy", 0x1), ("busy", 0x28),
         ("busy", 0x0), ("free", 4), ("busy", 0x37), ("busy", 0x50)]


def _tile(arch: str, mods=None) -> list[tuple]:
    g = ARCH_LAYOUTS[arch].entry.granularity
    out: list[tuple] = []
    for i, (kind, n) in enumerate(_TILE):
        if kind == "free":
            out.append(("free", n * g))
        elif mods is not None:
            out.append(("busy", n, mods.stack(i)))
        else:
            out.append(("busy", n))
    return out


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def build_big_heap_dump(blocks: int = 5_000_000, arch: str = "x64", build: int = 19041,
                        segments: int = 5, ust: bool = False) -> tuple[DumpBuilder, dict]:
    """A process whose process heap holds at least ``blocks`` entries."""
    epoch = epoch_for_build(build)
    plan = _HEAP_PLAN[arch]
    # x86: above the small heaps and the trace area of the plan, below the DLLs.
    heap_addr = 0x10000000 if arch == "x86" else plan["heap0"]
    b, p, mods = _heap_process(arch, build, heaps=[heap_addr, plan["heap1"]],
                               nt_global_flag=FLG_USER_STACK_TRACE_DB if ust else 0,
                               pid=4321, timestamp=1_700_000_000)
    db = StackTraceDatabase(b, plan["db"], arch) if ust else None
    tile = _tile(arch, mods if ust else None)
    lay = heap_layout(arch, epoch)
    g = ARCH_LAYOUTS[arch].entry.granularity
    # Tile size in bytes (same arithmetic as NtHeap.busy_size, checked below).
    tile_bytes = sum(busy_block_size(arch, t[1], ust)[0] * g if t[0] == "busy" else t[1]
                     for t in tile)
    tiles = -(-blocks // len(tile))
    per_seg = -(-tiles // segments)
    extra = HEAP_CAPTURE_STACK_BACKTRACES if ust else 0
    header = _align(lay.size, g) + 0x400  # heap header + UCR holder, generously
    commit0 = _align(header + per_seg * tile_bytes + 0x100, PAGE)
    reserve0 = _align(commit0 + 0x10000, 0x10000)
    h = NtHeap(b, heap_addr, arch=arch, epoch=epoch, seed=0xB16, ust=ust, stack_db=db,
               flags=PROCESS_HEAP_FLAGS | extra, reserve=reserve0, committed=[(0, commit0)],
               ucr_capacity=segments + 1, process_heaps_index=1, fill_tag=0x5B)
    left = tiles
    n0 = min(per_seg, left)
    h.segments[0].bulk(tile, n0)
    left -= n0
    # Further segments far above the first one, each with an uncommitted tail.
    next_base = _align(heap_addr + reserve0, 0x1000000) + 0x1000000
    while left > 0:
        n = min(per_seg, left)
        commit = _align(ARCH_LAYOUTS[arch].segment.size + n * tile_bytes + 0x100, PAGE)
        reserve = _align(commit + 0x10000, 0x10000)
        s = h.add_segment(next_base, reserve=reserve, committed=[(0, commit)])
        s.bulk(tile, n)
        left -= n
        next_base = _align(next_base + reserve, 0x1000000)
    h.add_virtual(_align(next_base, 0x1000000), 0x200000 if arch == "x64" else 0x100000,
                  capture="full", stack=mods.stack(1) if ust else None)
    h1 = NtHeap(b, plan["heap1"], arch=arch, epoch=epoch, seed=0xB17, ust=ust, stack_db=db,
                flags=PRIVATE_HEAP_FLAGS | extra, reserve=0x10000, committed=[(0, 0x2000)],
                process_heaps_index=2, fill_tag=0x5C)
    _plan_blocks(h1.segments[0], [("b", 0x20), ("b", 0x400), ("f", 2), ("b", 0x11)],
                 mods if ust else None)
    h.finish()
    h1.finish()
    if db is not None:
        db.finish()
    p.finish()
    exp: dict = {"scenario": "big_heap", "blocks_requested": blocks}
    exp.update(b.expected())
    exp.update(p.expected())
    exp["heaps"] = [h.expected(per_block=False), h1.expected()]
    exp["stack_trace_db"] = db.expected() if db is not None else None
    exp["heap_conventions"] = CONVENTIONS
    return b, exp


def build_multi_range_dump(total_bytes: int = 4 << 30, ranges: int = 4096, arch: str = "x64",
                           build: int = 19041) -> tuple[DumpBuilder, dict]:
    """A small heap process plus ``ranges`` filled ranges totalling ``total_bytes``."""
    if arch != "x64":
        raise ValueError("multi-GiB dumps need a 64-bit address space")
    size = _align(total_bytes // ranges, PAGE)
    plan = _HEAP_PLAN[arch]
    b, p, mods = _heap_process(arch, build, heaps=[plan["heap0"]], pid=2468,
                               timestamp=1_700_000_500)
    h = NtHeap(b, plan["heap0"], arch=arch, epoch=epoch_for_build(build), seed=0x4B,
               reserve=0x20000, committed=[(0, 0x4000)], process_heaps_index=1)
    _plan_blocks(h.segments[0], [("b", 0x40), ("b", 0x123), ("f", 3), ("b", 0x7)], None)
    h.finish()
    p.finish()
    other = len(b.memory64_ranges())
    fill = []
    base = 0x40000000000  # far from everything else
    stride = _align(size + 0x10000, 0x10000)   # leave a gap: ranges never touch
    for i in range(ranges):
        addr = base + i * stride
        byte = (i * 37 + 11) & 0xFF
        b.add_memory_fill(addr, size, byte=byte)
        b.add_region(addr, size, state=fmt.MEM_COMMIT, type=fmt.MEM_PRIVATE,
                     protect=fmt.PAGE_READWRITE, allocation_base=addr,
                     allocation_protect=fmt.PAGE_READWRITE)
        fill.append({"address": addr, "size": size, "byte": byte})
    exp: dict = {"scenario": "multi_range"}
    exp.update(b.expected())
    exp.update(p.expected())
    exp["heaps"] = [h.expected()]
    exp["fill_ranges"] = ranges
    exp["other_ranges"] = other
    exp["fill_bytes"] = ranges * size
    exp["fill"] = fill
    return b, exp


def _write(b: DumpBuilder, exp: dict, path: str, keep_lists: bool = True) -> None:
    lay = b.write(path)
    exp["file_size"] = lay.size
    if not keep_lists:
        exp.pop("memory64_list", None)
        exp.pop("regions", None)
    with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")


def write_big_heap_dump(path: str, **kw) -> dict:
    b, exp = build_big_heap_dump(**kw)
    _write(b, exp, path)
    return exp


def write_multi_range_dump(path: str, **kw) -> dict:
    b, exp = build_multi_range_dump(**kw)
    _write(b, exp, path)
    return exp


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("heap")
    a.add_argument("out")
    a.add_argument("--blocks", type=int, default=5_000_000)
    a.add_argument("--arch", choices=("x86", "x64"), default="x64")
    a.add_argument("--build", type=int, default=19041, choices=sorted(HEAP_OS))
    a.add_argument("--segments", type=int, default=5)
    a.add_argument("--ust", action="store_true")
    m = sub.add_parser("multi")
    m.add_argument("out")
    m.add_argument("--gib", type=float, default=4.0)
    m.add_argument("--ranges", type=int, default=4096)
    args = ap.parse_args(argv[1:])
    t0 = time.perf_counter()
    if args.cmd == "heap":
        exp = write_big_heap_dump(args.out, blocks=args.blocks, arch=args.arch, build=args.build,
                                  segments=args.segments, ust=args.ust)
        sm = exp["heaps"][0]["summary"]
        print(f"{args.out}: {exp['file_size']:,} bytes, {sm['segment_entries']:,} entries "
              f"({sm['busy_count']:,} busy, {sm['free_count']:,} free) "
              f"in {time.perf_counter() - t0:.1f} s")
    else:
        exp = write_multi_range_dump(args.out, total_bytes=int(args.gib * (1 << 30)),
                                     ranges=args.ranges)
        print(f"{args.out}: {exp['file_size']:,} bytes, {exp['fill_ranges']} filled ranges "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
