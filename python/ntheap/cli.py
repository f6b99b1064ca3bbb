"""The ``ntheap`` command: subcommands mirror the WinDbg commands users know.

    ntheap info DUMP               what the dump is: OS, arch, WOW64, pid, time, gflags, modules, threads
    ntheap heap -s DUMP            !heap -s: one line per heap (reserved, committed, free, virtual blocks)
    ntheap heap -h HEAP DUMP       !heap -h: one heap's segments, flags, virtual blocks, uncommitted ranges
    ntheap address -summary DUMP   !address -summary: usage, type and state of the address space
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
    dump = Dump(args.dump)
    if args.h is not None:
        print(heap_detail_text(dump, args.h))
    else:
        print(dump.heap_summary_text(), end="")
        corruption = dump.corruption()
        if len(corruption):
            print(f"{len(corruption)} corruption records; first: {corruption['detail'][0]}")
    return 0


def _cmd_address(args: argparse.Namespace) -> int:
    print(address_summary_text(Dump(args.dump)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntheap", description="Find native heap leaks in Windows process dumps.")
    parser.add_argument("--version", action="version", version=f"ntheap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="what the dump is: OS, arch, pid, time, gflags, modules, threads")
    info.add_argument("dump", help="path to a .dmp file")
    info.set_defaults(run=_cmd_info)

    # -h is WinDbg's "heap" option here, so help is --help only.
    heap = sub.add_parser("heap", add_help=False, help="!heap -s / !heap -h HEAP")
    heap.add_argument("--help", action="help", help="show this help and exit")
    mode = heap.add_mutually_exclusive_group(required=True)
    mode.add_argument("-s", action="store_true", help="summary of every heap, like !heap -s")
    mode.add_argument("-h", metavar="HEAP", type=_hex_address, help="details of one heap (hex address), like !heap -h")
    heap.add_argument("dump", help="path to a .dmp file")
    heap.set_defaults(run=_cmd_heap)

    address = sub.add_parser("address", help="!address -summary")
    address.add_argument("-summary", action="store_true", required=True, help="usage, type and state summary")
    address.add_argument("dump", help="path to a .dmp file")
    address.set_defaults(run=_cmd_address)
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
