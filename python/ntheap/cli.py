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

exit status: 0 a full answer; 1 an answer with gaps (printed as "warning:" lines); 2 no answer
(bad arguments, a file that is not a readable dump, or no heap of the dump could be read);
130 interrupted (Ctrl-C). See `ntheap --help`.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__
from ._core import DumpError
from ._dump import Dump
from .address import address_summary_text
from .coverage import FULL, GAPS, NO_ANSWER, folder_note, gap_messages, no_heap_read, series_warnings
from .heapviews import heap_detail_text
from .report import info_text


def _warn(messages: List[str], name: str = "") -> None:
    """Gaps of the answer: part of it, so on stdout with the answer."""
    for m in messages:
        print(f"warning: {name + ': ' if name else ''}{m}")


def _note(message: str) -> None:
    """A remark about the inputs rather than the answer (stderr)."""
    print(f"ntheap: {message}", file=sys.stderr)


def _heaps_read(dump: Dump) -> bool:
    return any(h.status == "walked" for h in dump.heaps)


def _cmd_info(args: argparse.Namespace) -> int:
    dump = Dump(args.dump)
    print(info_text(dump))
    return GAPS if len(dump.coverage(walk=False)) else FULL


def _hex_address(text: str) -> int:
    """An address as WinDbg takes it: hex with or without 0x, backticks allowed."""
    try:
        return int(text.replace("`", ""), 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex address: {text!r}") from None


def _corruption_lines(dump: Dump, walk: bool) -> List[str]:
    """Corruption records, with the structures that are merely not in the dump counted apart."""
    c = dump.corruption(walk=walk)
    if not len(c):
        return []
    missing = c["kind_name"] == "NotCaptured"
    out = []
    for mask, what in [(missing, "heap structures not in the dump"), (~missing, "corruption records")]:
        if mask.any():
            first = c["detail"][mask][0]
            out.append(f"{int(mask.sum())} {what} (Dump.corruption()); first: {first}")
    return out


def _cmd_heap(args: argparse.Namespace) -> int:
    if args.p or args.a is not None:
        if not (args.p and args.a is not None):
            print("ntheap: heap -p needs -a ADDRESS (and -a needs -p)", file=sys.stderr)
            return NO_ANSWER
        dump = Dump(args.dump, symbol_path=args.symbol_path, image_path=args.image_path)
        found = dump.allocation_at(args.a)
        if found is not None:
            print(found.text)
            return FULL
        print(f"    address {args.a:x} not found in any walked heap block")
        _warn(list(dump.coverage(walk=False)["message"]))
        return GAPS
    if args.l:
        from .triageviews import heap_l_text

        dump = Dump(args.dump, symbol_path=args.symbol_path, image_path=args.image_path)
        if not _heaps_read(dump):
            _warn(list(dump.coverage(walk=False)["message"]))
            return NO_ANSWER
        print(heap_l_text(dump, summary=args.n))
        gaps = list(dump.coverage()["message"])
        _warn(gaps)
        return GAPS if gaps else FULL
    dump = Dump(args.dump)
    if args.h is not None:
        heap = dump.heap(args.h)
        print(heap_detail_text(dump, args.h, walk=args.walk))
        table = dump.coverage(walk=args.walk)
        mine = [m for m, a in zip(table["message"], table["heap"]) if int(a) == heap.address]
        if heap.status == "walked" and not (args.walk or dump.is_walked):
            _warn(mine)  # after the walk, heap_detail_text prints them itself; "not walked: ..." says why
        return GAPS if mine or heap.status != "walked" else FULL
    print(dump.heap_summary_text(walk=args.walk), end="")  # ends with the coverage warnings
    for line in _corruption_lines(dump, args.walk):
        print(line)
    if not _heaps_read(dump):
        return NO_ANSWER
    return GAPS if len(dump.coverage(walk=args.walk)) else FULL


def _cmd_address(args: argparse.Namespace) -> int:
    print(address_summary_text(Dump(args.dump)))
    return FULL


def _cmd_top(args: argparse.Namespace) -> int:
    from .aggregate import top_stacks, top_types
    from .allocations import Allocations
    from .leakreport import top_stacks_text, top_types_text

    dump = Dump(args.dump, symbol_path=args.symbol_path)
    if not _heaps_read(dump):
        _warn(list(dump.coverage(walk=False)["message"]))
        print("No heap of this dump could be read: there is nothing to count.")
        return NO_ANSWER
    allocs = Allocations.from_dump(dump)
    _warn(gap_messages(allocs))
    gaps = GAPS if allocs.coverage else FULL
    if args.key == "type" or (args.key is None and not len(allocs.stacks)):
        print(top_types_text(top_types(allocs, by=args.by, n=args.n), title="Top types (C++ types by RTTI, else content class):"))
        return gaps
    df = top_stacks(allocs, by=args.by, n=args.n)
    total = int(allocs.table["user_size"].sum())
    print(top_stacks_text(df, by=args.by, total_count=len(allocs), total_bytes=total, stacks=args.stacks))
    return gaps


def _cmd_diff(args: argparse.Namespace) -> int:
    from .allocations import collect
    from .leakreport import diff_text
    from .timeline import diff

    before, after = collect([args.old, args.new], symbol_path=args.symbol_path, progress=_progress(args))
    for a in (before, after):
        _warn(gap_messages(a), a.name)
    unread = [a.name for a in (before, after) if no_heap_read(a)]
    if unread:
        print(f"No heap of {' or '.join(unread)} could be read: there is nothing to compare.")
        return NO_ANSWER
    odd = series_warnings([before, after])
    for w in odd:
        _note(f"warning: {w}")
    by = args.key or ("stack" if len(before.stacks) or len(after.stacks) else "type")
    print(diff_text(diff(before, after, by=by), before, after, n=args.n, stacks=args.stacks))
    return GAPS if odd or before.coverage or after.coverage else FULL


def _cmd_growth(args: argparse.Namespace) -> int:
    from .leakreport import growth_text, progress_note
    from .scan import ScanResult
    from .scanjob import expand_paths, run_scan
    from .timeline import growth

    paths = expand_paths(args.dumps)
    if not paths:
        raise ValueError(folder_note(args.dumps) or "no dump given")
    result = ScanResult(run_scan(paths, progress=_progress(args), symbol_path=args.symbol_path))
    for r in result.errors.itertuples():
        progress_note(f"ntheap: skipped {r.path}: {r.error_kind}: {r.error}")
    allocs = [a for a in result.allocations() if not no_heap_read(a)]
    for a in result.allocations():
        _warn(gap_messages(a), a.name)
    if not allocs:
        print("No dump could be read." if not len(result.allocations()) else "No heap of these dumps could be read.")
        return NO_ANSWER
    odd = result.series_warnings()
    for w in odd:
        _note(f"warning: {w}")
    if len(allocs) < 2:
        _note("warning: one dump: growth needs at least two")
    by = args.key or ("stack" if any(len(a.stacks) for a in allocs) else "type")
    g = growth(allocs, by=by)
    print(growth_text(g, n=args.n))
    if args.plot:
        from .plotting import plot_growth

        try:
            plot_growth(g, top=min(args.n, 8)).savefig(args.plot, dpi=110)
        except ImportError as e:
            progress_note(f"ntheap: {e}")
            return NO_ANSWER
        progress_note(f"ntheap: growth plot written to {args.plot}")
    partial = len(result.errors) or len(allocs) < len(result.allocations()) or len(allocs) < 2 or odd
    return GAPS if partial or any(a.coverage for a in allocs) else FULL


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
    return out.status


def _progress(args: argparse.Namespace) -> Optional[bool]:
    """No bar with -q; a bar with --progress; otherwise a bar when stderr is a terminal."""
    return False if args.quiet else (True if args.progress else None)


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _analysis_options(p: argparse.ArgumentParser, *, by: bool = False, stacks: bool = True, n: int = 20) -> None:
    p.add_argument("-n", type=_positive, default=n, metavar="N", help=f"how many stacks to list (default {n})")
    if by:
        p.add_argument("--by", choices=["bytes", "count"], default="bytes", help="rank stacks by busy bytes (default) or block count")
    if stacks:
        p.add_argument("--stacks", type=_non_negative, default=3, metavar="K", help="print the full frames of the first K stacks (default 3)")
    p.add_argument("-y", "--symbol-path", metavar="PATH", help="symbol search path (like WinDbg's .sympath)")
    p.add_argument("-k", "--key", choices=["stack", "type", "size", "content"], default=None,
                   help="group by allocation stack, C++ type, size or content class (default: stack with +ust, else type)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("-q", "--quiet", action="store_true", help="no progress bar on stderr")
    bar.add_argument("--progress", action="store_true", help="a progress bar on stderr even when it is not a terminal "
                     "(default: only on a terminal)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntheap", description="Find native heap leaks in Windows process dumps.",
                                     epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
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


EXIT_STATUS_HELP = """\
exit status:
  0    a full answer
  1    an answer with gaps you should know about, each printed as a "warning:" line: heap
       memory not in the dump, a heap that is not a Windows heap, front-end containers not
       decoded, stretches of a heap that could not be parsed, a cap of ntheap.Limits hit, dumps
       of different processes or out of time order, some dumps not readable, a single dump where
       growth needs two (Dump.coverage() has the same as a table)
  2    no answer: bad arguments, a file that is not a readable dump (missing, a directory,
       damaged), or a dump in which not one heap could be read (e.g. a minidump written
       without heap memory: take one with `procdump -ma` or WinDbg `.dump /ma`)
  130  interrupted (Ctrl-C)
"""


def commands_text() -> str:
    """The command list of the module docstring (what ``ntheap`` alone prints)."""
    doc = __doc__ or ""
    lines = [ln for ln in doc.splitlines() if ln.startswith("    ntheap ")]
    return "\n".join(["usage: ntheap COMMAND [options] DUMP...", "", "commands:", *lines, "",
                      "ntheap COMMAND --help for a command's options; ntheap --help for the exit statuses."])


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``ntheap`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:
        print(commands_text(), file=sys.stderr)
        return NO_ANSWER
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("ntheap: interrupted", file=sys.stderr)
        return 130
    except (DumpError, OSError, ValueError) as e:
        print(f"ntheap: {type(e).__name__}: {e}", file=sys.stderr)
        return NO_ANSWER


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
