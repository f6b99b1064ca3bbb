"""The ``ntheap`` command: subcommands mirror the WinDbg commands users know.

    ntheap info DUMP               what the dump is: OS, arch, WOW64, pid, time, gflags, modules, threads
    ntheap heap -s DUMP            !heap -s: one line per heap (reserved, committed, free, virtual blocks)
    ntheap heap -h HEAP DUMP       !heap -h: one heap's segments, flags, virtual blocks, uncommitted ranges
    ntheap heap -p -a ADDR DUMP    !heap -p -a: the block holding an address and the stack that allocated it
    ntheap heap -l DUMP            !heap -l: the busy blocks nothing points to, and a summary by C++ type
    ntheap address -summary DUMP   !address -summary: usage, type and state of the address space
    ntheap top DUMP                UMDH per-stack totals (per C++ type without +ust, or with -k type)
    ntheap diff OLD NEW            UMDH compare: which stacks grew between two dumps
    ntheap growth DUMP...          bytes per stack across a series of dumps (--plot out.png)
    ntheap report DUMP...          the one-shot leak report: suspects, growth plot, heaps, top stacks
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__
from ._core import DumpError
from ._dump import Dump
from .address import address_summary_text
from .heapviews import heap_detail_text
from .report import info_text


def _cmd_info(args: argparse.Namespace) -> int:
    print(info_text(Dump(args.dump)))
    return 0


def _hex_address(text: str) -> int:
    """An address as WinDbg takes it: hex with or without 0x, backticks allowed."""
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex address: {text!r}") from None


def _cmd_heap(args: argparse.Namespace) -> int:
    if args.p or args.a is not None:
        if not (args.p and args.a is not None):
            print("ntheap: heap -p needs -a ADDRESS (and -a needs -p)", file=sys.stderr)
            return 2
        found = Dump(args.dump, symbol_path=args.symbol_path, image_path=args.image_path).allocation_at(args.a)
        print(found.text if found is not None else f"    address {args.a:x} not found in any walked heap block")
        return 0 if found is not None else 1
    if args.l:
        from .triageviews import heap_l_text

        print(heap_l_text(Dump(args.dump, symbol_path=args.symbol_path, image_path=args.image_path), summary=args.n))
        return 0
    dump = Dump(args.dump)
    if args.h is not None:
        print(heap_detail_text(dump, args.h, walk=args.walk))
    else:
        print(dump.heap_summary_text(walk=args.walk), end="")
        corruption = dump.corruption(walk=args.walk)
        if len(corruption):
            print(f"{len(corruption)} corruption records; first: {corruption['detail'][0]}")
    return 0


def _cmd_address(args: argparse.Namespace) -> int:
    print(address_summary_text(Dump(args.dump)))
    return 0


def _cmd_top(args: argparse.Namespace) -> int:
    from .aggregate import top_stacks, top_types
    from .allocations import Allocations
    from .leakreport import top_stacks_text, top_types_text

    dump = Dump(args.dump, symbol_path=args.symbol_path)
    allocs = Allocations.from_dump(dump)
    for message in dump.coverage()["message"]:
        print(f"warning: {message}")
    if args.key == "type" or (args.key is None and not len(allocs.stacks)):
        print(top_types_text(top_types(allocs, by=args.by, n=args.n), title="Top types (C++ types by RTTI, else content class):"))
        return 0
    df = top_stacks(allocs, by=args.by, n=args.n)
    total = int(allocs.table["user_size"].sum())
    print(top_stacks_text(df, by=args.by, total_count=len(allocs), total_bytes=total, stacks=args.stacks))
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from .allocations import collect
    from .leakreport import diff_text
    from .timeline import diff

    before, after = collect([args.old, args.new], symbol_path=args.symbol_path, progress=_progress(args))
    by = args.key or ("stack" if len(before.stacks) or len(after.stacks) else "type")
    print(diff_text(diff(before, after, by=by), before, after, n=args.n, stacks=args.stacks))
    return 0


def _cmd_growth(args: argparse.Namespace) -> int:
    from .leakreport import growth_text, progress_note
    from .scan import ScanResult
    from .scanjob import expand_paths, run_scan
    from .timeline import growth

    result = ScanResult(run_scan(expand_paths(args.dumps), progress=_progress(args), symbol_path=args.symbol_path))
    for r in result.errors.itertuples():
        progress_note(f"ntheap: skipped {r.path}: {r.error_kind}: {r.error}")
    allocs = result.allocations()
    by = args.key or ("stack" if any(len(a.stacks) for a in allocs) else "type")
    g = growth(allocs, by=by)
    print(growth_text(g, n=args.n))
    if args.plot:
        from .plotting import plot_growth

        try:
            plot_growth(g, top=min(args.n, 8)).savefig(args.plot, dpi=110)
        except ImportError as e:
            progress_note(f"ntheap: {e}")
            return 2
        progress_note(f"ntheap: growth plot written to {args.plot}")
    return 0 if len(result.errors) < len(result) else 2


def _cmd_report(args: argparse.Namespace) -> int:
    from .leakreport import build_report, progress_note

    out = build_report(args.dumps, top=args.n, stacks=args.stacks, plot=args.plot, make_plot=not args.no_plot,
                       symbol_path=args.symbol_path, progress=_progress(args), by=args.key)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(out.text)
        progress_note(f"ntheap: report written to {args.out}")
    else:
        print(out.text, end="")
    if out.plot_path:
        progress_note(f"ntheap: growth plot written to {out.plot_path}")
    return 0


def _progress(args: argparse.Namespace) -> Optional[bool]:
    """No bar with -q; otherwise a bar when stderr is a terminal (None lets tqdm decide)."""
    return False if args.quiet else None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _analysis_options(p: argparse.ArgumentParser, *, by: bool = False, stacks: bool = True, n: int = 20) -> None:
    p.add_argument("-n", type=_positive, default=n, metavar="N", help=f"how many stacks to list (default {n})")
    if by:
        p.add_argument("--by", choices=["bytes", "count"], default="bytes", help="rank stacks by busy bytes (default) or block count")
    if stacks:
        p.add_argument("--stacks", type=int, default=3, metavar="K", help="print the full frames of the first K stacks (default 3)")
    p.add_argument("-y", "--symbol-path", metavar="PATH", help="symbol search path (like WinDbg's .sympath)")
    p.add_argument("-k", "--key", choices=["stack", "type", "size", "content"], default=None,
                   help="group by allocation stack, C++ type, size or content class (default: stack with +ust, else type)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntheap", description="Find native heap leaks in Windows process dumps.")
    parser.add_argument("--version", action="version", version=f"ntheap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="what the dump is: OS, arch, pid, time, gflags, modules, threads")
    info.add_argument("dump", help="path to a .dmp file")
    info.set_defaults(run=_cmd_info)

    # -h is WinDbg's "heap" option here, so help is --help only.
    heap = sub.add_parser("heap", add_help=False, help="!heap -s / !heap -h HEAP / !heap -p -a ADDRESS")
    heap.add_argument("--help", action="help", help="show this help and exit")
    mode = heap.add_mutually_exclusive_group(required=True)
    mode.add_argument("-s", action="store_true", help="summary of every heap, like !heap -s")
    mode.add_argument("-h", metavar="HEAP", type=_hex_address, help="details of one heap (hex address), like !heap -h")
    mode.add_argument("-p", action="store_true", help="with -a ADDRESS: the block holding it and its +ust stack, like !heap -p -a")
    mode.add_argument("-l", action="store_true", help="the busy blocks nothing points to (likely leaks), like !heap -l, and a summary by C++ type")
    heap.add_argument("-a", metavar="ADDRESS", type=_hex_address, help="the address for -p (hex)")
    heap.add_argument("-y", "--symbol-path", metavar="PATH", help="symbol search path for -p -a (default: _NT_SYMBOL_PATH)")
    heap.add_argument("-i", "--image-path", metavar="DIRS", help="local directories of the process's binaries, for image pages the dump lacks (like .exepath)")
    heap.add_argument("-n", type=_positive, default=20, metavar="N", help="with -l: how many types to summarize (default 20)")
    heap.add_argument("--walk", action="store_true", help="with -s or -h: also walk every block, for the free-block counts (List length), LFH size classes, warnings and all corruption records (default: headers and lists only, whatever the dump's size)")
    heap.add_argument("dump", help="path to a .dmp file")
    heap.set_defaults(run=_cmd_heap)

    address = sub.add_parser("address", help="!address -summary")
    address.add_argument("-summary", action="store_true", required=True, help="usage, type and state summary")
    address.add_argument("dump", help="path to a .dmp file")
    address.set_defaults(run=_cmd_address)

    top = sub.add_parser("top", help="allocation stacks holding the most busy bytes (UMDH per-stack totals)")
    top.add_argument("dump", help="path to a .dmp file")
    _analysis_options(top, by=True)
    top.set_defaults(run=_cmd_top)

    diff = sub.add_parser("diff", help="which allocation stacks grew between two dumps (UMDH compare)")
    diff.add_argument("old", help="the earlier dump")
    diff.add_argument("new", help="the later dump")
    _analysis_options(diff)
    diff.set_defaults(run=_cmd_diff)

    growth = sub.add_parser("growth", help="busy bytes per allocation stack across a series of dumps")
    growth.add_argument("dumps", nargs="+", metavar="DUMP", help=".dmp files or folders of them")
    growth.add_argument("--plot", metavar="PNG", help="also draw the top growing stacks over time into this image")
    _analysis_options(growth, stacks=False, n=10)
    growth.set_defaults(run=_cmd_growth)

    report = sub.add_parser("report", help="one-shot leak report: suspects, growth plot, heaps, top stacks")
    report.add_argument("dumps", nargs="+", metavar="DUMP", help=".dmp files (one process over time) or folders of them")
    report.add_argument("--plot", metavar="PNG", help="where to write the growth plot (default: leak-growth.png in the current directory)")
    report.add_argument("--no-plot", action="store_true", help="do not draw the growth plot")
    report.add_argument("--out", metavar="FILE", help="write the report to FILE instead of stdout")
    _analysis_options(report, n=10)
    report.set_defaults(run=_cmd_report)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``ntheap`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (DumpError, OSError) as e:
        print(f"ntheap: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
