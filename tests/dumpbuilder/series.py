"""A series of dumps of one leaking process, and the analysis results a reader must get.

One x64 Windows 10 22H2 (19045) process with +ust, dumped once an hour.  Same pid,
modules, heaps and trace entries in every dump; later dumps hold everything the
earlier ones had plus the new allocations:

    stack A  halcon seed stack (halcon!HXmalloc+0x8b ... JIT frame): 2 virtual blocks
             of 16..88 MiB (+0x40) more per hour, only their first page captured;
             each hour's pair adds the same number of bytes, so growth is linear
    stack B  ntdll/ucrtbase allocator frames over leakyapp!CacheInsert+0x4a <-
             leakyapp!Session::Load+0x120 ...: ``small_per_hour`` blocks of 0x120 more
             per hour, in the CRT heap (a free block after every 50th)
    stack C  leakyapp!ConfigParse: flat (30 blocks)
    stack D  imgcodec!DecodeRow: flat (6 blocks of 0x800)
    stack E  JIT code right after the allocator frames: flat (4 blocks)
    three +ust blocks without a trace (pointer 0), and free blocks

series_expected() computes, from the builder's inputs only, per dump and per stack
(keyed by the newline-joined frame texts, innermost first) the counts and user
bytes, the top stacks, a size histogram, the first/last diff, growth per hour and the
grouping by the module of the first non-allocator frame.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from typing import Any

from .builder import DumpBuilder
from .heap import NtHeap, StackTraceDatabase
from .heap_layouts import HEAP_CAPTURE_STACK_BACKTRACES, PRIVATE_HEAP_FLAGS, PROCESS_HEAP_FLAGS
from .process import Process
from .scenarios import _HEAP_PLAN, _finish_heaps
from .stack_scenarios import Mods, stack_process
from .symbols import (
    ALLOCATOR_RULE,
    TEXT_CONVENTIONS,
    Symbolizer,
    grouping_module,
)

SERIES_DESCRIPTION = (
    "One leaking x64 process (Windows 10 22H2, +ust), dumped once an hour; same pid, modules, "
    "heaps and trace entries in every dump. Stack A (halcon!HXmalloc+0x8b ... JIT frame): two "
    "more 16-88 MiB virtual blocks per hour (first page captured). Stack B (allocator frames over "
    "leakyapp!CacheInsert+0x4a <- leakyapp!Session::Load+0x120): more 0x120-byte blocks every "
    "hour. Stacks C (leakyapp!ConfigParse), D (imgcodec!DecodeRow) and E (JIT code after the "
    "allocator frames) stay flat; three +ust blocks have no trace; some blocks are free.")
PID = 0x2F44
PROCESS_HEAP = 0x1E2C4A50000
CRT_HEAP = 0x1E2C4C20000
TRACE_DB = 0x1E2C4800000
VIRTUAL_BASE = 0x1E2D0000000
VIRTUAL_STRIDE = 0x6000000            # 96 MiB apart: room for 88 MiB + header
MIB = 1 << 20
# Requested sizes of stack A's virtual blocks, in the order they are allocated:
# each hour's pair sums to 104 MiB (+0x80).
VIRTUAL_MIB = (16, 88, 24, 80, 40, 64, 48, 56)
SMALL_SIZE = 0x120
FREE_EVERY = 50

LEAKYAPP_EXPORTS = {"main": 0x1200, "ConfigParse": 0x2100, "Session::Open": 0x3400,
                    "Session::Load": 0x3A00, "CacheInsert": 0x4C80, "RenderFrame": 0x6100}
IMGCODEC = (r"C:\Program Files\LeakyApp\imgcodec.dll", 0x7FFA70000000, 0x60000)
IMGCODEC_EXPORTS = {"DecodeImage": 0x2000, "DecodeRow": 0x3100, "EncodeRow": 0x4400}


def hour_timestamp(start: tuple[int, int, int, int], hour: int) -> int:
    y, mo, d, h = start
    return calendar.timegm((y, mo, d, h + hour, 0, 0))


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Stacks:
    def __init__(self, M: Mods, imgcodec):
        exe, nt, uc, k32 = M.exe, M.ntdll, M.ucrt, M.k32
        alloc = [M.at(nt, "RtlpAllocateHeapInternal", 0xD2C), M.at(nt, "RtlAllocateHeap", 0x53),
                 M.at(uc, "_malloc_base", 0x1A), M.at(uc, "malloc", 0x1E)]
        tail = [M.at(k32, "BaseThreadInitThunk", 0x14), M.at(nt, "RtlUserThreadStart", 0x21)]
        self.A = M.seed()
        self.B = alloc + [M.at(exe, "CacheInsert", 0x4A), M.at(exe, "Session::Load", 0x120),
                          M.at(exe, "Session::Open", 0x8F), M.at(exe, "main", 0x1D2)] + tail
        self.C = alloc + [M.at(exe, "ConfigParse", 0x33), M.at(exe, "main", 0x88)] + tail
        self.D = [M.at(nt, "RtlAllocateHeap", 0x53), M.at(imgcodec, "DecodeRow", 0x1A7),
                  M.at(imgcodec, "DecodeImage", 0x5C), M.at(exe, "RenderFrame", 0x2E1),
                  M.at(exe, "main", 0x2F0)] + tail
        assert M.clr is not None
        self.E = alloc[:2] + [M.jit[1], M.jit[2], M.at(M.clr, "GetCLRRuntimeHost", 0x2D0)]


def leaky_dump(hour: int, *, start: tuple[int, int, int, int] = (2026, 3, 2, 8),
               small_per_hour: int = 100, virtual_pairs_per_hour: int = 1,
               name: str = "leaky") -> tuple[DumpBuilder, dict, list[dict]]:
    """Dump number ``hour`` + 1 of the series (hour 0 is the first).  Returns the
    builder, its full expected JSON (fixture format) and one row per busy user block
    {kind, user_size, frames (None without a trace)}."""
    ts = hour_timestamp(start, hour)
    extra = [((IMGCODEC[0], IMGCODEC[1], IMGCODEC[2]),
              dict(exports=IMGCODEC_EXPORTS, timestamp=0x65E1A2B3))]
    b, p, M = stack_process("x64", 19045, pid=PID, timestamp=ts, clr="clr.dll",
                            heaps=[PROCESS_HEAP, CRT_HEAP], exe_exports=LEAKYAPP_EXPORTS,
                            exe_path=r"C:\Program Files\LeakyApp\leakyapp.exe",
                            exe_pdb=r"D:\src\leakyapp\x64\Release\leakyapp.pdb",
                            extra_modules=extra, kernelbase_capture="headers_and_exports")
    # One process: the creation time does not move with the dump time.
    b.process_create_time = hour_timestamp(start, 0) - 1800
    imgcodec = next(m for m in b.modules if m.name == "imgcodec.dll")
    S = Stacks(M, imgcodec)
    db = StackTraceDatabase(b, TRACE_DB, "x64")
    # Entries in a fixed order, so they sit at the same addresses in every dump.
    for frames in (S.A, S.B, S.C, S.D, S.E):
        db.add(frames, refs=0)
    ust = HEAP_CAPTURE_STACK_BACKTRACES
    n_small = small_per_hour * (hour + 1)
    crt_need = 0x2000 + n_small * 0x150 + (n_small // FREE_EVERY) * 0x60
    crt_commit = (crt_need + 0xFFF) & ~0xFFF
    ph = NtHeap(b, PROCESS_HEAP, arch="x64", epoch="win10_1809", seed=0x1EA7, ust=True,
                stack_db=db, flags=PROCESS_HEAP_FLAGS | ust, reserve=0x40000,
                committed=[(0, 0x8000)], process_heaps_index=1, fill_tag=0xF1)
    crt = NtHeap(b, CRT_HEAP, arch="x64", epoch="win10_1809", seed=0x1EA8, ust=True,
                 stack_db=db, flags=PRIVATE_HEAP_FLAGS | ust, reserve=0x100000,
                 committed=[(0, crt_commit)], process_heaps_index=2, fill_tag=0xF2)
    s = ph.segments[0]
    for _ in range(6):
        s.busy(0x800, stack=S.D)
    s.free(0x200)
    for n in (0x18, 0x18, 0x100):
        s.busy(n)                                 # +ust blocks without a trace
    for _ in range(4):
        s.busy(0x90, stack=S.E)
    nv = 2 * virtual_pairs_per_hour * (hour + 1)
    for j in range(nv):
        ph.add_virtual(VIRTUAL_BASE + j * VIRTUAL_STRIDE, VIRTUAL_MIB[j % len(VIRTUAL_MIB)] * MIB + 0x40,
                       capture="head", stack=S.A)
    c = crt.segments[0]
    for _ in range(20):
        c.busy(0x40, stack=S.C)
    c.free(0x100)
    for _ in range(10):
        c.busy(0x58, stack=S.C)
    for i in range(n_small):
        c.busy(SMALL_SIZE, stack=S.B)
        if i % FREE_EVERY == FREE_EVERY - 1:
            c.free(0x60)
    desc = (f"{name}: hour {hour} of a leaking x64 process (Windows 10 22H2, +ust); "
            f"{nv} virtual blocks on the halcon stack, {n_small} blocks of {SMALL_SIZE:#x} on "
            f"the CacheInsert stack, flat stacks C/D/E, 3 blocks without a trace")
    b, exp = _finish_heaps(f"{name}-{hour + 1}", desc, b, p, [ph, crt], db=db)
    rows = []
    for h in (ph, crt):
        for seg in h.segments:
            for blk in seg.blocks:
                if blk.busy and blk.kind == "backend":
                    rows.append({"kind": "backend", "address": blk.address,
                                 "user_size": h._user(blk)[1],
                                 "frames": list(blk.frames) if blk.trace else None})
        for v in h.virtual_blocks:
            rows.append({"kind": "virtual", "address": v.header_address,
                         "user_size": v.commit_size - v.busy_size,
                         "frames": list(v.frames) if v.trace else None})
    sym = Symbolizer(b)
    for r in rows:
        fr = r["frames"]
        r["texts"] = sym.texts(fr) if isinstance(fr, list) else None
    exp["symbols"] = {"conventions": TEXT_CONVENTIONS, "allocator_rule": ALLOCATOR_RULE,
                      "modules": sym.modules_expected(), "clr_module": sym.clr_module()}
    frees = [blk for h in (ph, crt) for seg in h.segments for blk in seg.blocks
             if not blk.busy and blk.kind == "backend"]
    exp["free_summary"] = {"count": len(frees), "bytes": sum(f.nbytes for f in frees)}
    return b, exp, rows


def _rank(stats: dict[str, dict], by: str) -> list[dict]:
    other = "count" if by == "bytes" else "bytes"
    order = sorted(stats.items(), key=lambda kv: (-kv[1][by], -kv[1][other], kv[0]))
    return [{"key": k, "bytes": v["bytes"], "count": v["count"]} for k, v in order]


def dump_summary(exp: dict, rows: list[dict]) -> dict:
    stacks: dict[str, dict[str, Any]] = {}
    hist: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    no_stack = {"count": 0, "bytes": 0}
    for r in rows:
        hist[r["user_size"]][0] += 1
        hist[r["user_size"]][1] += r["user_size"]
        if r["texts"] is None:
            no_stack["count"] += 1
            no_stack["bytes"] += r["user_size"]
            continue
        key = "\n".join(r["texts"])
        st = stacks.setdefault(key, {"count": 0, "bytes": 0, "frames": r["frames"],
                                     "frame_texts": r["texts"],
                                     "grouping_module": grouping_module(r["texts"]),
                                     "kinds": []})
        st["count"] += 1
        st["bytes"] += r["user_size"]
        if r["kind"] not in st["kinds"]:
            st["kinds"].append(r["kind"])
    modules: dict[str, dict] = {}
    for key, st in stacks.items():
        m = modules.setdefault(st["grouping_module"], {"count": 0, "bytes": 0, "stacks": 0})
        m["count"] += st["count"]
        m["bytes"] += st["bytes"]
        m["stacks"] += 1
    return {
        "file": exp["scenario"] + ".dmp",
        "timestamp": exp["timestamp"],
        "time": iso(exp["timestamp"]),
        "pid": exp["pid"],
        "busy": {"count": len(rows), "bytes": sum(r["user_size"] for r in rows)},
        "free": exp["free_summary"],
        "no_stack": no_stack,
        "stacks": {k: {kk: vv for kk, vv in v.items()} for k, v in sorted(stacks.items())},
        "top_by_bytes": _rank(stacks, "bytes"),
        "top_by_count": _rank(stacks, "count"),
        "size_histogram": [{"user_size": size, "count": c, "total": t}
                           for size, (c, t) in sorted(hist.items())],
        "by_module": dict(sorted(modules.items())),
    }


def series_expected(dumps: list[tuple[dict, list[dict]]], *, name: str) -> dict:
    """Expected analysis of a series: [(full expected JSON, block rows)] in time order."""
    per = [dump_summary(exp, rows) for exp, rows in dumps]
    first, last = per[0], per[-1]
    hours = (last["timestamp"] - first["timestamp"]) / 3600
    keys = sorted(set(first["stacks"]) | set(last["stacks"]))
    diff = {}
    for k in keys:
        a = first["stacks"].get(k, {"bytes": 0, "count": 0})
        z = last["stacks"].get(k, {"bytes": 0, "count": 0})
        diff[k] = {"bytes_before": a["bytes"], "bytes_after": z["bytes"],
                   "bytes_delta": z["bytes"] - a["bytes"], "count_before": a["count"],
                   "count_after": z["count"], "count_delta": z["count"] - a["count"]}
    leaking = [k for k in keys if diff[k]["bytes_delta"] > 0]
    growth = {}
    for k in leaking:
        series_b = [p["stacks"].get(k, {"bytes": 0})["bytes"] for p in per]
        series_c = [p["stacks"].get(k, {"count": 0})["count"] for p in per]
        steps_b = {b - a for a, b in zip(series_b, series_b[1:])}
        steps_c = {b - a for a, b in zip(series_c, series_c[1:])}
        assert len(steps_b) == 1 and len(steps_c) == 1, "growth is meant to be exactly linear"
        growth[k] = {"bytes_per_hour": diff[k]["bytes_delta"] / hours,
                     "count_per_hour": diff[k]["count_delta"] / hours,
                     "bytes": series_b, "counts": series_c}
    return {
        "series": name,
        "description": SERIES_DESCRIPTION,
        "dumps": [p["file"] for p in per],
        "pid": first["pid"],
        "conventions": {
            "text": TEXT_CONVENTIONS,
            "allocator_rule": ALLOCATOR_RULE,
            "stack_key": "newline-joined frame texts, innermost first; blocks without a trace "
                         "are not in stacks (see no_stack)",
            "user_bytes": "segment blocks: Size*16 - the +ust u16 extra; virtual blocks: "
                          "CommitSize - BusyBlock.Size (= the requested size)",
            "blocks": "busy blocks with user data (segment blocks of kind backend and virtual "
                      "blocks); heap headers and the UCR-descriptor block are not counted",
            "top_order": "top_by_bytes: bytes desc, then count desc, then key; top_by_count: "
                         "count desc, then bytes desc, then key",
            "size_histogram": "busy blocks (with or without a stack) grouped by exact user size",
            "growth_per_hour": "(last - first) / hours between the first and last dump; the "
                               "series grows by the same amount every hour, so a least-squares "
                               "slope gives the same number",
            "leaking": "stacks whose bytes grew between the first and the last dump",
        },
        "per_dump": per,
        "diff_first_last": {"from": first["file"], "to": last["file"], "stacks": diff},
        "leaking_stacks": leaking,
        "growth_per_hour": growth,
        "hours": hours,
    }
