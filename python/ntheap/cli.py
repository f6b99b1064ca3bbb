"""The ``ntheap`` command: subcommands mirror the WinDbg commands users know.

    ntheap info DUMP        what the dump is: OS, arch, WOW64, pid, time, gflags, modules, threads
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__
from ._core import DumpError
from ._dump import Dump
from .report import info_text


def _cmd_info(args: argparse.Namespace) -> int:
    print(info_text(Dump(args.dump)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ntheap", description="Find native heap leaks in Windows process dumps.")
    parser.add_argument("--version", action="version", version=f"ntheap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="what the dump is: OS, arch, pid, time, gflags, modules, threads")
    info.add_argument("dump", help="path to a .dmp file")
    info.set_defaults(run=_cmd_info)
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
