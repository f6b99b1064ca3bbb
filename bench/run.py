"""Benchmarks (not tests): print figures and ratios.

    python bench/run.py memory [--gib 4] [--reads 1000000]
    python bench/run.py blocks [--blocks 5000000] [--arch x64]
    python bench/run.py scan [--dumps 20] [--blocks 300000]
    python bench/run.py triage --dump DIR/big_10m.dmp [--repeats 3]

``memory``: writes a builder dump of GIB gibibytes (1 MiB ranges in Memory64List, streamed to
disk, never held in memory), then runs ``examples/bench_memory.rs``, which times opening it and
doing random 8-byte reads through ntheap and through the ``minidump`` crate, in one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from dumpbuilder import DumpBuilder, Process  # noqa: E402


def build_big_dump(path: Path, gib: int) -> None:
    b = DumpBuilder(arch="x64", os_version=(10, 0, 19045), timestamp=1_700_000_000, pid=4321)
    p = Process(b, peb=0x7FF0_0000_0000 - 0x1000 * 64, image_base=0x7FF6_1000_0000, heaps=[], process_heap=0)
    p.add_thread(0x100, teb=0x7FF0_0000_0000 - 0x1000 * 62, stack_start=0x10_0000, stack_size=0x2000)
    p.finish()
    mib = 1 << 20
    base = 0x100_0000_0000
    for i in range(gib * 1024):
        # A 64 KiB hole every range keeps ranges from coalescing: one index entry per MiB.
        b.add_memory_fill(base + i * (mib + 0x10000), mib, byte=i & 0xFF)
    b.write(path)


def memory(args: argparse.Namespace) -> None:
    out = Path(args.out or tempfile.mkdtemp(prefix="ntheap-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    dump = out / f"big-{args.gib}g.dmp"
    t = time.perf_counter()
    build_big_dump(dump, args.gib)
    print(f"built {dump} ({dump.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s")
    subprocess.run(
        ["cargo", "run", "--quiet", "--release", "--example", "bench_memory", "--", str(dump), str(args.reads)],
        cwd=ROOT,
        check=True,
    )
    if not args.keep:
        dump.unlink()


def blocks(args: argparse.Namespace) -> None:
    out = Path(args.out or tempfile.mkdtemp(prefix="ntheap-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    dump = out / f"heap-{args.blocks}-{args.arch}.dmp"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "dumpbuilder" / "bigdump.py"), "heap", str(dump),
         "--blocks", str(args.blocks), "--arch", args.arch],
        check=True,
    )
    print(f"built {dump} ({dump.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s")
    subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "bench_blocks", "--", str(dump)], cwd=ROOT, check=True)
    # The same through Python: Dump.blocks() (walk + columns moved into numpy), best of 3 fresh opens.
    import ntheap

    best = float("inf")
    n = 0
    for _ in range(3):
        d = ntheap.Dump(dump)
        t = time.perf_counter()
        n = len(d.blocks())
        best = min(best, time.perf_counter() - t)
    print(f"python Dump.blocks()        {best * 1e3:9.1f} ms  {n / best / 1e6:6.1f} M blocks/s ({n} rows)")
    if not args.keep:
        dump.unlink()
        dump.with_suffix(".json").unlink(missing_ok=True)


# VmHWM (peak RSS of this process image, in kB), not ru_maxrss, which a child inherits from its
# parent at fork on Linux.
_PEAK = """
import sys, ntheap
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
before = hwm()
res = ntheap.scan([sys.argv[1]], workers=1, progress=False)
assert not len(res.errors), res.errors
print(before, hwm(), len(res.blocks))
"""


def scan(args: argparse.Namespace) -> None:
    import ntheap

    out = Path(args.out or tempfile.mkdtemp(prefix="ntheap-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    t = time.perf_counter()
    for i in range(args.dumps):
        p = out / f"scan-{i:03d}.dmp"
        if not p.exists():
            subprocess.run(
                [sys.executable, str(ROOT / "tests" / "dumpbuilder" / "bigdump.py"), "heap", str(p),
                 "--blocks", str(args.blocks + 1000 * i), "--ust"],
                check=True, stdout=subprocess.DEVNULL,
            )
        paths.append(p)
    size = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} dumps, {size / 2**20:.0f} MiB, +ust, ~{args.blocks} blocks each (built in {time.perf_counter() - t:.1f} s)")
    ntheap.scan(paths, workers=2, progress=False)  # warm the page cache
    times = {}
    for workers in (1, 2):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            res = ntheap.scan(paths, workers=workers, progress=False)
            best = min(best, time.perf_counter() - t)
        times[workers] = best
        print(f"scan workers={workers}: {best:.2f} s  ({len(paths) / best:.1f} dumps/s, {len(res.blocks):,} busy blocks)")
    print(f"speed-up 2 workers / 1 worker: {times[1] / times[2]:.2f}x")
    peak = subprocess.run([sys.executable, "-c", _PEAK, str(paths[0])], capture_output=True, text=True, check=True)
    before, after, rows = (int(x) for x in peak.stdout.split())
    print(
        f"peak RSS scanning one dump ({paths[0].stat().st_size / 2**20:.0f} MiB, {rows:,} busy blocks): "
        f"{after / 1024:.0f} MiB, of which {before / 1024:.0f} MiB is Python + ntheap before the scan "
        f"(+{(after - before) / 1024:.0f} MiB; touched pages of the mapped dump count as RSS)"
    )
    if not args.keep:
        for p in paths:
            p.unlink()
            p.with_suffix(".json").unlink(missing_ok=True)


def triage(args: argparse.Namespace) -> None:
    """The leak-triage passes against blocks(), in one Python process, then the Rust example's
    figures (walk, passes, mark phase, and the scanner's throughput over every allocation)."""
    import ntheap

    dump_path = args.dump
    if dump_path is None:
        raise SystemExit("bench triage needs --dump (e.g. one written by shared/bench/make_big.py)")
    rows = []
    for _ in range(args.repeats):
        d = ntheap.Dump(dump_path)
        t = time.perf_counter()
        b = d.blocks()
        t_blocks = time.perf_counter() - t
        t = time.perf_counter()
        b["type_id"]
        t_types = time.perf_counter() - t
        t = time.perf_counter()
        b["content"]
        t_content = time.perf_counter() - t
        t = time.perf_counter()
        b["reachable"]
        t_mark = time.perf_counter() - t
        stats = d.triage_stats()
        rows.append((t_blocks, t_types, t_content, t_mark, stats))
        del b, d
    rows.sort(key=lambda r: r[3])
    t_blocks, t_types, t_content, t_mark, stats = rows[len(rows) // 2]
    print(f"python: blocks() {t_blocks:.3f} s ({len(rows)} runs, median by mark), type_id {t_types:.3f} s, "
          f"content {t_content:.3f} s, reachable {t_mark:.3f} s; mark phase in Rust {stats['mark_seconds']:.3f} s "
          f"(index {stats['index_seconds']:.3f}, roots {stats['roots_seconds']:.3f}, root scan {stats['root_scan_seconds']:.3f}, "
          f"heap scan {stats['heap_scan_seconds']:.3f}); root bytes {stats['root_bytes']}, heap bytes {stats['heap_bytes']}, "
          f"named {stats['named']}, reached {stats['reached']} of {stats['allocations']}")
    subprocess.run(["cargo", "run", "--quiet", "--release", "--example", "bench_triage", "--", str(dump_path), str(args.repeats)],
                   cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="bench", required=True)
    m = sub.add_parser("memory", help="open + random reads on a multi-GB dump")
    m.add_argument("--gib", type=int, default=4)
    m.add_argument("--reads", type=int, default=1_000_000)
    m.add_argument("--out", help="folder for the generated dump (default: a temp folder)")
    m.add_argument("--keep", action="store_true", help="keep the generated dump")
    m.set_defaults(run=memory)
    b = sub.add_parser("blocks", help="heap walk of a dump with millions of blocks vs a sequential read")
    b.add_argument("--blocks", type=int, default=5_000_000)
    b.add_argument("--arch", choices=("x86", "x64"), default="x64")
    b.add_argument("--out")
    b.add_argument("--keep", action="store_true")
    b.set_defaults(run=blocks)
    sc = sub.add_parser("scan", help="ntheap.scan of many dumps with 1 and 2 workers, and peak memory")
    sc.add_argument("--dumps", type=int, default=20)
    sc.add_argument("--blocks", type=int, default=300_000)
    sc.add_argument("--out")
    sc.add_argument("--keep", action="store_true")
    sc.set_defaults(run=scan)
    tr = sub.add_parser("triage", help="type pass, content pass and mark phase vs blocks() on one dump")
    tr.add_argument("--dump", help="a dump, e.g. from shared/bench/make_big.py --blocks 10000000")
    tr.add_argument("--repeats", type=int, default=3)
    tr.set_defaults(run=triage)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
