"""Plain-text renderings of the leak analyses, for the ``top``, ``diff``, ``growth`` and
``report`` commands. Each takes the DataFrame the Python API returns, so what the command
prints is what a notebook user gets from the same call."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

from ._core import DumpError
from .analysis import DumpAllocations, diff, growing_stacks, growth, size_histogram, top_stacks
from .plotting import human_bytes
from .report import format_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

_FRAME_WIDTH = 90


def _n(x: int) -> str:
    return f"{int(x):,}"


def _signed(x: int) -> str:
    return f"{int(x):+,}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _clip(text: str, width: int = _FRAME_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(a: DumpAllocations) -> str:
    return a.time.strftime("%Y-%m-%d %H:%M:%S UTC") if a.time is not None else "time unknown"


def stack_lines(stack_key: str, indent: str = "    ") -> List[str]:
    """The frames of a stack key, one per line, innermost first."""
    if not stack_key:
        return [f"{indent}(no stack trace recorded for these blocks: is +ust on for the process?)"]
    return [indent + f for f in stack_key.split("\n")]


def top_stacks_text(df: "pd.DataFrame", *, by: str = "bytes", total_count: Optional[int] = None,
                    total_bytes: Optional[int] = None, stacks: int = 3, title: str = "") -> str:
    """A :func:`ntheap.top_stacks` frame as a table, then the full frames of the first
    ``stacks`` rows (UMDH prints every backtrace like this)."""
    lines: List[str] = []
    if title:
        lines.append(title)
    if total_count is not None and total_bytes is not None:
        lines.append(f"Busy user allocations: {_n(total_count)} blocks, {_n(total_bytes)} bytes ({human_bytes(total_bytes)}); "
                     f"top {_plural(len(df), 'stack')} by {by}:")
    rows = [
        [_n(r.bytes), f"{r.pct:5.1f}%", _n(r.count), "-" if r.stack_id < 0 else str(r.stack_id), _clip(r.top_frame)]
        for r in df.itertuples()
    ]
    lines.append(format_table(["bytes", "%", "count", "stack", "allocated by"], rows, align="rrrrl"))
    for r in list(df.itertuples())[:stacks]:
        ident = "blocks without a stack" if r.stack_id < 0 else f"stack {r.stack_id}"
        lines += ["", f"{ident}: {_n(r.bytes)} bytes in {_n(r.count)} allocations"]
        lines += stack_lines(r.stack_key)
    return "\n".join(lines)


def histogram_text(df: "pd.DataFrame", n: int = 10) -> str:
    """``!heap -stat -h`` style: the block sizes that hold the most bytes."""
    rows = [[f"{int(r.size):#x}", _n(r.size), _n(r.count), _n(r.total), f"{r.pct:5.1f}%"] for r in df.head(n).itertuples()]
    return format_table(["size", "(decimal)", "count", "total bytes", "%"], rows, align="rrrrr")


def diff_text(df: "pd.DataFrame", before: DumpAllocations, after: DumpAllocations, *, n: int = 20, stacks: int = 3) -> str:
    """A :func:`ntheap.diff` frame as UMDH-style lines: growth per stack (bytes and count, with
    before and after), then the full frames of the ``stacks`` largest growths."""
    b_bytes, a_bytes = int(df["bytes_before"].sum()), int(df["bytes_after"].sum())
    b_count, a_count = int(df["count_before"].sum()), int(df["count_after"].sum())
    grew = df[df["bytes_delta"] > 0]
    shrank = df[df["bytes_delta"] < 0]
    lines = [
        f"Compared {before.name} ({_when(before)}) with {after.name} ({_when(after)}):",
        f"  busy bytes   {_n(b_bytes)} -> {_n(a_bytes)} ({_signed(a_bytes - b_bytes)}, {human_bytes(a_bytes - b_bytes)})",
        f"  allocations  {_n(b_count)} -> {_n(a_count)} ({_signed(a_count - b_count)})",
        f"  {_plural(len(grew), 'stack')} grew, {len(shrank)} shrank, {len(df) - len(grew) - len(shrank)} unchanged",
    ]
    if grew.empty:
        lines.append("No stack holds more bytes in the second dump.")
        return "\n".join(lines)
    lines += ["", f"Stacks that grew most (top {min(n, len(grew))}):"]
    rows = [
        [_signed(r.bytes_delta), _n(r.bytes_before), _n(r.bytes_after), _signed(r.count_delta), _n(r.count_after), _clip(r.top_frame)]
        for r in grew.head(n).itertuples()
    ]
    lines.append(format_table(["+bytes", "before", "after", "+count", "count", "allocated by"], rows, align="rrrrrl"))
    for i, r in enumerate(list(grew.itertuples())[:stacks], 1):
        lines += ["", f"Leak suspect {i}: {_signed(r.bytes_delta)} bytes ({_n(r.bytes_before)} -> {_n(r.bytes_after)}), "
                      f"{_signed(r.count_delta)} allocations ({_n(r.count_before)} -> {_n(r.count_after)}), allocated by {r.top_frame}"]
        lines += stack_lines(r.stack_key)
    return "\n".join(lines)


def growth_text(df: "pd.DataFrame", *, n: int = 10) -> str:
    """The ``n`` stacks that grew most across a :func:`ntheap.growth` series: their bytes in
    every dump, oldest first, and whether they grew every time."""
    if df.empty:
        return "No dump could be read."
    dumps = list(dict.fromkeys(df["dump"]))
    times = df.drop_duplicates("dump").set_index("dump")["time"]
    top = growing_stacks(df, top=n)
    lines = ["Dumps in time order:"]
    for i, d in enumerate(dumps, 1):
        t = times[d]
        when = t.strftime("%Y-%m-%d %H:%M:%S UTC") if t == t else "time unknown"  # NaT != NaT
        here = df[df["dump"] == d]
        lines.append(f"  [{i}] {os.path.basename(str(d))}  {when}  {_n(here['bytes'].sum())} bytes in {_n(here['count'].sum())} allocations")
    if top.empty:
        lines += ["", "No stack holds more bytes in the last dump than in the first."]
        return "\n".join(lines)
    lines += ["", f"Stacks that grew most, first dump to last (bytes in each dump [1]..[{len(dumps)}]):"]
    rows = []
    for r in top.itertuples():
        series = df[df["stack_key"] == r.stack_key].set_index("dump")["bytes"].reindex(dumps, fill_value=0).tolist()
        rate = "" if r.bytes_per_hour != r.bytes_per_hour else f"{human_bytes(r.bytes_per_hour)}/h"
        rows.append([_signed(r.bytes_delta), rate, " ".join(_n(v) for v in series), "yes" if r.never_fell else "no", _clip(r.top_frame, 70)])
    lines.append(format_table(["+bytes", "rate", "bytes per dump", "never fell", "allocated by"], rows, align="rrrll"))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class ReportOutput:
    """What :func:`build_report` produced: the text and the files it wrote."""

    text: str
    plot_path: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def default_plot_path(first_dump: str, name: str = "leak-growth.png") -> Path:
    """Where the report writes its plot when not told: the current directory, or beside the
    first dump when the current directory is not writable."""
    for folder in (Path.cwd(), Path(first_dump).resolve().parent):
        if os.access(folder, os.W_OK):
            return folder / name
    import tempfile

    return Path(tempfile.gettempdir()) / name


def _heap_usage_text(dump: "Dump", a: DumpAllocations, n: int = 5) -> str:
    """The heaps holding the most busy bytes, with what they committed in segments and in
    virtual blocks (a heap's big allocations live outside its segments)."""
    import numpy as np

    summary = dump.heap_summary()
    heaps = a.columns["heap"]
    sizes = a.columns["user_size"]
    busy = {int(h): (int((heaps == np.uint64(h)).sum()), int(sizes[heaps == np.uint64(h)].sum())) for h in summary["heap"]}
    order = sorted(summary.itertuples(), key=lambda r: (-busy[int(r.heap)][1], -int(r.committed)))
    rows = [
        [f"{int(r.heap):#x}", r.arch, r.kind, _n(busy[int(r.heap)][0]), _n(busy[int(r.heap)][1]), _n(r.committed),
         _n(r.virtual_block_bytes), _n(r.reserved)]
        for r in order[:n]
    ]
    return format_table(["heap", "arch", "kind", "busy blocks", "busy bytes", "segments committed", "virtual blocks", "reserved"],
                        rows, align="rllrrrrr")


def _section(title: str) -> List[str]:
    return ["", "=" * len(title), title, "=" * len(title)]


def build_report(paths: Sequence[str], *, top: int = 10, stacks: int = 3, plot: Optional[str] = None,
                 make_plot: bool = True, symbol_path: Optional[str] = None, progress: Optional[bool] = True,
                 workers: Optional[int] = None) -> ReportOutput:
    """Everything a first look at a leak needs, from one or more dumps of one process.

    With several dumps: which stacks grew from the first to the last (the leak suspects, with
    their frames), their bytes in every dump, and a growth plot written to ``plot`` (default:
    :func:`default_plot_path`). Then, for the latest readable dump: the address-space summary,
    ``!heap -s``, the biggest heaps, the top allocation stacks and the commonest block sizes.
    """
    from ._dump import Dump
    from .address import address_summary_text
    from .scan import ScanResult, expand_paths, run_scan

    files = expand_paths(paths)
    if not files:
        raise ValueError("no dump given")
    result = ScanResult(run_scan(files, workers=workers, progress=progress, symbol_path=symbol_path))
    allocs = sorted(result.allocations(), key=lambda a: (a.time is None, a.time.timestamp() if a.time else 0.0))
    out = ReportOutput("")
    lines = [f"ntheap leak report: {len(files)} dump{'s' if len(files) != 1 else ''}"]
    for r in result.summary.itertuples():
        if r.error is None or r.error != r.error:  # None or NaN: read
            when = r.time.strftime("%Y-%m-%d %H:%M:%S UTC") if r.time == r.time else "time unknown"
            lines.append(f"  {os.path.basename(r.path)}  {when}  pid {r.pid}  {_n(r.blocks)} busy blocks, {_n(r.bytes)} bytes, {_n(r.stacks)} stacks")
        else:
            lines.append(f"  {os.path.basename(r.path)}  NOT READ: {r.error_kind}: {r.error}")
    if not allocs:
        lines.append("No dump could be read.")
        out.text = "\n".join(lines)
        return out
    pids = {a.pid for a in allocs if a.pid is not None}
    if len(pids) > 1:
        lines.append(f"  warning: the dumps come from different processes (pids {', '.join(map(str, sorted(pids)))}); stacks are still matched by their frames")

    if len(allocs) >= 2:
        first, last = allocs[0], allocs[-1]
        lines += _section(f"Leak suspects: growth from {first.name} to {last.name}")
        lines.append(diff_text(diff(first, last), first, last, n=top, stacks=stacks))
        g = growth(allocs, errors="ignore", progress=False)
        if len(allocs) >= 3:
            lines += _section(f"Trend over {len(allocs)} dumps")
            lines.append(growth_text(g, n=top))
        if make_plot:
            target = Path(plot) if plot else default_plot_path(files[0])
            try:
                from .plotting import plot_growth

                fig = plot_growth(g, top=min(top, 8))
                fig.savefig(target, dpi=110)
                out.plot_path = str(target.resolve())
                lines += ["", f"Growth plot written to {out.plot_path}"]
            except ImportError as e:
                lines += ["", f"Growth plot not written: {e}"]

    latest = allocs[-1]
    dump = Dump(latest.path, symbol_path=symbol_path)
    lines += _section(f"Latest dump: {latest.name} ({_when(latest)})")
    try:
        lines += [f"  warning: {m}" for m in dump.coverage()["message"]]
    except DumpError as e:
        lines.append(f"  heaps unavailable: {type(e).__name__}: {e}")
    # A dump may lack what one view needs (no MemoryInfoList, a PEB not captured): that view
    # says why and the report goes on.
    for title, view in [
        ("Address space (!address -summary):", lambda: address_summary_text(dump)),
        ("Heaps (!heap -s):", lambda: dump.heap_summary_text().rstrip("\n")),
        ("Biggest heaps by busy bytes:", lambda: _heap_usage_text(dump, latest)),
    ]:
        try:
            text = view()
        except DumpError as e:
            text = f"  unavailable: {type(e).__name__}: {e}"
        lines += ["", title, text]
    ts = top_stacks(latest, n=top)
    lines += ["", top_stacks_text(ts, total_count=len(latest), total_bytes=int(latest.columns["user_size"].sum()), stacks=stacks if len(allocs) < 2 else 0,
                                  title="Top allocation stacks:")]
    lines += ["", "Commonest block sizes by bytes (!heap -stat -h):", histogram_text(size_histogram(latest))]
    out.text = "\n".join(lines) + "\n"
    return out


def progress_note(message: str) -> None:
    """A line on stderr (progress and where files went), never mixed into the report."""
    print(message, file=sys.stderr, flush=True)
