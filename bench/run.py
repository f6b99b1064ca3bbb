"""Benchmarks (not tests): print figures and ratios.

    python bench/run.py memory [--gib 4] [--reads 1000000]
    python bench/run.py reference --dir DIR [--reps 5] [--sizes 1m,5m,10m]
    python bench/run.py scan [--dumps 20] [--blocks 300000]
    python bench/run.py triage --dump DIR/big_10m.dmp [--repeats 3]

``memory``: writes a builder dump of GIB gibibytes (1 MiB ranges in Memory64List, streamed to
disk, never held in memory), then runs ``examples/bench_memory.rs``, which times opening it and
doing random 8-byte reads through ntheap and through the ``minidump`` crate, in one run.

``reference``: the reference benchmark of ../shared/bench (its ``make_big.py`` dumps of 1M, 5M
and 10M blocks in DIR, written there when missing, and its baselines: numpy scan, the
``minidump`` crate's slice walk and prefetch probe) against ntheap's Rust walk and
``Dump.blocks()`` with 1 and 2 threads, open + heaps + heap_summary() on 1M vs 10M, memory
after blocks(), and ``scan`` with 1 and 2 workers over ``--scan-dumps`` dumps. Every
measurement runs in its own process; repetitions are interleaved; medians and min–max and the
target ratios are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

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


SHARED_BENCH = ROOT.parent / "shared" / "bench"
REFERENCE_SIZES = {"1m": 1_000_000, "5m": 5_000_000, "10m": 10_000_000}

# One Python measurement per process: Dump(path, workers=N).blocks() end to end, a second
# blocks() call, and anonymous memory (RssAnon) before and after against the column bytes.
_BLOCKS = """
import json, sys, time
import numpy as np, ntheap
def anon():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("RssAnon:"))
path, workers = sys.argv[1], int(sys.argv[2])
before = anon()
t = time.perf_counter()
d = ntheap.Dump(path, workers=workers)
b = d.blocks()
first = time.perf_counter() - t
t = time.perf_counter()
again = d.blocks()
second = time.perf_counter() - t
after = anon()
column_bytes = sum(b[c].nbytes for c in b.computed)
assert again["size"] is b["size"]
print(json.dumps(dict(total_s=first, second_s=second, rows=len(b), anon_growth=after - before, column_bytes=column_bytes)))
"""

# open + heaps + heap_summary(), after the imports (what a user waits for in a notebook).
_SURVEY = """
import json, sys, time
import pandas, ntheap
t = time.perf_counter()
d = ntheap.Dump(sys.argv[1])
n = len(d.heaps)
s = d.heap_summary()
dt = time.perf_counter() - t
assert not d.is_walked
print(json.dumps(dict(total_s=dt, heaps=n, committed=int(s.committed.sum()))))
"""

# pandas is imported before the clock starts, as in a notebook: the import is not the scan.
_SCAN = """
import json, sys, time
import pandas, ntheap
paths, workers = sys.argv[2:], int(sys.argv[1])
t = time.perf_counter()
res = ntheap.scan(paths, workers=workers, progress=False)
dt = time.perf_counter() - t
assert not len(res.errors), res.errors
hwm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps(dict(total_s=dt, allocations=len(res.blocks), peak_rss=hwm)))
"""


# numpy's bundled OpenBLAS starts a thread per core at `import numpy`, and those threads spin for
# a while before they sleep. In a notebook numpy was imported long before a dump is opened; in a
# fresh measurement process the spinning thread takes a core from the walk's second thread
# (perf: blas_thread_server ~7% of a 2-thread blocks() run, +10-20 ms). Nothing measured here
# uses BLAS, so every measurement process runs with one BLAS thread.
_QUIET_BLAS = {"OPENBLAS_NUM_THREADS": "1"}


def _json_run(cmd: list, env: Optional[dict] = None) -> dict:
    env = {**os.environ, **_QUIET_BLAS, **(env or {})}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _make_dump(path: Path, blocks: int, seed: int) -> None:
    if not path.exists():
        print(f"  writing {path.name} ({blocks:,} blocks) with {SHARED_BENCH / 'make_big.py'}", flush=True)
        subprocess.run([sys.executable, str(SHARED_BENCH / "make_big.py"), "--blocks", str(blocks), "--heaps", "4",
                        "--seed", str(seed), "--out", str(path)], check=True, stdout=subprocess.DEVNULL)


def _warm(paths: list) -> None:
    for p in paths:
        for _ in range(2):
            subprocess.run(["cat", str(p)], stdout=subprocess.DEVNULL, check=True)
    # Memory this VM has never touched is far slower to touch the first time (../shared/bench).
    subprocess.run([sys.executable, "-c", "import numpy as n; n.ones(3 << 27)"], check=True)


def _stat(values: list) -> tuple:
    v = sorted(values)
    return statistics.median(v), v[0], v[-1]


def reference(args: argparse.Namespace) -> None:
    """The reference benchmark (../shared/bench dumps and baselines) in one run: every
    measurement in a fresh process, repetitions interleaved, medians and min–max, then the
    ratios issue 10 asks for."""
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    sizes = [s for s in args.sizes.split(",") if s]
    dumps = {s: out / f"big_{s}.dmp" for s in sizes}
    for s, p in dumps.items():
        _make_dump(p, REFERENCE_SIZES[s], 1)
    scan_paths = [out / "scan" / f"scan_{i:02d}.dmp" for i in range(args.scan_dumps)]
    (out / "scan").mkdir(exist_ok=True)
    for i, p in enumerate(scan_paths):
        _make_dump(p, args.scan_blocks, 100 + i)
    target = ROOT / "target"
    subprocess.run(["cargo", "build", "--quiet", "--release", "--example", "bench_walk"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--manifest-path",
                    str(SHARED_BENCH / "baseline_rust_minidump" / "Cargo.toml"),
                    "--target-dir", str(target / "bench-baseline")], check=True)
    crate = target / "bench-baseline" / "release" / "baseline_rust_minidump"
    walk = target / "release" / "examples" / "bench_walk"
    import ntheap

    print(f"ntheap {ntheap.__version__} from {Path(ntheap.__file__).parent}; {os.cpu_count()} CPUs; {args.reps} interleaved repetitions")
    _warm(list(dumps.values()) + scan_paths)

    def env(threads: int) -> dict:
        return dict(os.environ, RAYON_NUM_THREADS=str(threads))

    jobs = {}
    for s, p in dumps.items():
        truth = str(p) + ".truth.json"
        jobs[(s, "numpy scan")] = lambda p=p: _json_run([sys.executable, str(SHARED_BENCH / "baseline_scan.py"), str(p)])["numpy_fresh_mmap_s"]
        jobs[(s, "crate slice walk")] = lambda p=p, t=truth: _json_run([str(crate), str(p), "--mode", "slice", "--truth", t])["total_s"]
        jobs[(s, "prefetch probe")] = lambda p=p, t=truth: _json_run([str(crate), str(p), "--mode", "prefetch", "--truth", t])["total_s"]
        for threads in (1, 2):
            jobs[(s, f"ntheap Rust walk, {threads} thread{'s' if threads > 1 else ''}")] = (
                lambda p=p, th=threads: _json_run([str(walk), str(p)], env(th))["total_s"])
            jobs[(s, f"ntheap Dump.blocks(), {threads} thread{'s' if threads > 1 else ''}")] = (
                lambda p=p, th=threads: _json_run([sys.executable, "-c", _BLOCKS, str(p), str(th)]))
        jobs[(s, "open + heaps + heap_summary()")] = lambda p=p: _json_run([sys.executable, "-c", _SURVEY, str(p)])["total_s"]
    results: dict = {k: [] for k in jobs}
    keys = list(jobs)
    for rep in range(args.reps):
        # Interleaved: every measurement once per round, the order rotated from round to round.
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]
        for k in order:
            results[k].append(jobs[k]())
        print(f"  round {rep + 1}/{args.reps} done", flush=True)
    scan_times: dict = {1: [], 2: []}
    scan_info: dict = {}
    for rep in range(args.scan_pairs):
        for w in ((1, 2) if rep % 2 == 0 else (2, 1)):
            r = _json_run([sys.executable, "-c", _SCAN, str(w)] + [str(p) for p in scan_paths])
            scan_times[w].append(r["total_s"])
            scan_info[w] = r
    rows_of = {}
    lines = ["| dump | measurement | median s | min–max s | M blocks/s |", "|---|---|---|---|---|"]
    medians = {}
    for (s, name), vals in results.items():
        if name.startswith("ntheap Dump.blocks()"):
            rows_of[s] = vals[0]["rows"]
            secs = [v["total_s"] for v in vals]
        else:
            secs = vals
        med, lo, hi = _stat(secs)
        medians[(s, name)] = med
        n = rows_of.get(s, REFERENCE_SIZES[s])
        rate = "" if name.startswith("open") else f"{n / med / 1e6:.1f}"
        lines.append(f"| {s} | {name} | {med:.3f} | {lo:.3f}–{hi:.3f} | {rate} |")
    print()
    print("\n".join(lines))
    print()
    checks = []
    for s in sizes:
        b1 = medians[(s, "ntheap Dump.blocks(), 1 thread")]
        b2 = medians[(s, "ntheap Dump.blocks(), 2 threads")]
        checks.append((f"{s}: crate slice walk / Dump.blocks() (1 thread)", medians[(s, "crate slice walk")] / b1, ">= 3"))
        checks.append((f"{s}: Dump.blocks() (1 thread) / numpy scan", b1 / medians[(s, "numpy scan")], "<= 1.5"))
        checks.append((f"{s}: Dump.blocks() 1 thread / 2 threads", b1 / b2, ">= 1.6"))
        first = [v for v in results[(s, "ntheap Dump.blocks(), 1 thread")]]
        second = statistics.median(v["second_s"] / v["total_s"] for v in first)
        checks.append((f"{s}: second blocks() / first", second, "< 0.01"))
        over = max(v["anon_growth"] - v["column_bytes"] for v in first) / 2**20
        checks.append((f"{s}: anonymous memory after blocks() − column bytes (MiB, worst run; columns {first[0]['column_bytes'] / 2**20:.0f} MiB)", over, "<= 64"))
    if "1m" in sizes and "10m" in sizes:
        checks.append(("open + heaps + heap_summary(): 10M / 1M",
                       medians[("10m", "open + heaps + heap_summary()")] / medians[("1m", "open + heaps + heap_summary()")], "<= 1.5"))
    pairs = [a / b for a, b in zip(scan_times[1], scan_times[2])]
    med, lo, hi = _stat(pairs)
    print(f"scan of {len(scan_paths)} dumps ({args.scan_blocks:,} blocks each): 1 worker {statistics.median(scan_times[1]):.2f} s, "
          f"2 workers {statistics.median(scan_times[2]):.2f} s; peak RSS {scan_info[1]['peak_rss'] / 2**20:.0f} / "
          f"{scan_info[2]['peak_rss'] / 2**20:.0f} MiB; speed-up per pair {', '.join(f'{x:.2f}' for x in pairs)}")
    checks.append((f"scan 1 worker / 2 workers (median of {len(pairs)} pairs; min–max {lo:.2f}–{hi:.2f})", med, ">= 1.7"))
    print()
    print("| ratio | value | target | |")
    print("|---|---|---|---|")
    for name, value, target in checks:
        op, bound = target.split()
        ok = {">=": value >= float(bound), "<=": value <= float(bound), "<": value < float(bound)}[op]
        print(f"| {name} | {value:.3f} | {target} | {'ok' if ok else 'MISSED'} |")


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
    r = sub.add_parser("reference", help="the ../shared/bench reference dumps and baselines against ntheap, in one run")
    r.add_argument("--dir", required=True, help="folder of the big_1m/5m/10m dumps (written there when missing)")
    r.add_argument("--sizes", default="1m,5m,10m")
    r.add_argument("--reps", type=int, default=5)
    r.add_argument("--scan-dumps", type=int, default=20)
    r.add_argument("--scan-blocks", type=int, default=200_000)
    r.add_argument("--scan-pairs", type=int, default=5)
    r.set_defaults(run=reference)
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
