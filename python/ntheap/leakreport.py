"""Plain-text renderings of the leak analyses, for the ``top``, ``diff``, ``growth`` and
``report`` commands. Each takes the DataFrame the Python API returns, so what the command
prints is what a notebook user gets from the same call. Frames grouped by stack print the
suspects' frames; frames grouped by type (no +ust) print the types."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

from ._core import DumpError
from .aggregate import size_histogram, top_stacks, top_types
from .allocations import Allocations
from .coverage import FULL, GAPS, NO_ANSWER, folder_note, gap_messages, no_heap_read, series_warnings
from .keys import columns_of
from .plotting import human_bytes
from .report import format_table
from .timeline import diff, growing, growth

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

_FRAME_WIDTH = 90
#: What the rows of a frame grouped by each key are called, and the label column's title.
_NOUNS = {"stack": ("stack", "allocated by"), "type": ("type", "type"), "size": ("size", "size"),
          "content": ("content class", "content")}


def _n(x: int) -> str:
    return f"{int(x):,}"


def _signed(x: int) -> str:
    return f"{int(x):+,}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _clip(text: str, width: int = _FRAME_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(a: Allocations) -> str:
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


def diff_text(df: "pd.DataFrame", before: Allocations, after: Allocations, *, n: int = 20, stacks: int = 3) -> str:
    """A :func:`ntheap.diff` frame as UMDH-style lines: growth per key (bytes and count, with
    before and after), then, grouped by stack, the full frames of the ``stacks`` largest
    growths."""
    by, key_col, label_col = columns_of(df)
    noun, title = _NOUNS[by]
    b_bytes, a_bytes = int(df["bytes_before"].sum()), int(df["bytes_after"].sum())
    b_count, a_count = int(df["count_before"].sum()), int(df["count_after"].sum())
    grew = df[df["bytes_delta"] > 0]
    shrank = df[df["bytes_delta"] < 0]
    lines = [
        f"Compared {before.name} ({_when(before)}) with {after.name} ({_when(after)}):",
        f"  busy bytes   {_n(b_bytes)} -> {_n(a_bytes)} ({_signed(a_bytes - b_bytes)}, {human_bytes(a_bytes - b_bytes)})",
        f"  allocations  {_n(b_count)} -> {_n(a_count)} ({_signed(a_count - b_count)})",
        f"  {_plural(len(grew), noun)} grew, {len(shrank)} shrank, {len(df) - len(grew) - len(shrank)} unchanged",
    ]
    if grew.empty:
        lines.append(f"No {noun} holds more bytes in the second dump.")
        return "\n".join(lines)
    lines += ["", f"{noun.capitalize()}s that grew most (top {min(n, len(grew))}):"]
    rows = [
        [_signed(r.bytes_delta), _n(r.bytes_before), _n(r.bytes_after), _signed(r.count_delta), _n(r.count_after),
         _clip(str(getattr(r, label_col)))]
        for r in grew.head(n).itertuples()
    ]
    lines.append(format_table(["+bytes", "before", "after", "+count", "count", title], rows, align="rrrrrl"))
    for i, r in enumerate(list(grew.itertuples())[:stacks], 1):
        label = getattr(r, label_col)
        lines += ["", f"Leak suspect {i}: {_signed(r.bytes_delta)} bytes ({_n(r.bytes_before)} -> {_n(r.bytes_after)}), "
                      f"{_signed(r.count_delta)} allocations ({_n(r.count_before)} -> {_n(r.count_after)}), "
                      + (f"allocated by {label}" if by == "stack" else f"{noun} {label}")]
        if by == "stack":
            lines += stack_lines(getattr(r, key_col))
        elif by == "type" and str(getattr(r, key_col)).startswith(".?A"):
            lines.append(f"    decorated name {getattr(r, key_col)}")
    return "\n".join(lines)


def growth_text(df: "pd.DataFrame", *, n: int = 10) -> str:
    """The ``n`` keys (stacks, types, ...) that grew most across a :func:`ntheap.growth`
    series: their bytes in every dump, oldest first, and whether they grew every time."""
    if df.empty:
        return "No dump could be read."
    by, key_col, label_col = columns_of(df)
    noun, title = _NOUNS[by]
    dumps = list(dict.fromkeys(df["dump"]))
    times = df.drop_duplicates("dump").set_index("dump")["time"]
    top = growing(df, top=n)
    lines = ["Dumps in time order:"]
    for i, d in enumerate(dumps, 1):
        t = times[d]
        when = t.strftime("%Y-%m-%d %H:%M:%S UTC") if t == t else "time unknown"  # NaT != NaT
        here = df[df["dump"] == d]
        lines.append(f"  [{i}] {os.path.basename(str(d))}  {when}  {_n(here['bytes'].sum())} bytes in {_n(here['count'].sum())} allocations")
    if top.empty:
        lines += ["", f"No {noun} holds more bytes in the last dump than in the first."]
        return "\n".join(lines)
    lines += ["", f"{noun.capitalize()}s that grew most, first dump to last (bytes in each dump [1]..[{len(dumps)}]):"]
    rows = []
    for r in top.itertuples():
        series = df[df[key_col] == getattr(r, key_col)].set_index("dump")["bytes"].reindex(dumps, fill_value=0).tolist()
        rate = "" if r.bytes_per_hour != r.bytes_per_hour else f"{human_bytes(r.bytes_per_hour)}/h"
        rows.append([_signed(r.bytes_delta), rate, " ".join(_n(v) for v in series), "yes" if r.never_fell else "no",
                     _clip(str(getattr(r, label_col)), 70)])
    lines.append(format_table(["+bytes", "rate", "bytes per dump", "never fell", title], rows, align="rrrll"))
    return "\n".join(lines)


def top_types_text(df: "pd.DataFrame", *, title: str = "") -> str:
    """A :func:`ntheap.top_types` frame as a table."""
    lines = [title] if title else []
    rows = [[_n(r.bytes), f"{r.pct:5.1f}%", _n(r.count), _clip(str(r.type), 70), r.module] for r in df.itertuples()]
    lines.append(format_table(["bytes", "%", "count", "type", "module"], rows, align="rrrll"))
    return "\n".join(lines)


def likely_leaks_text(dump: "Dump", *, n: int = 10) -> str:
    """The latest dump's unreferenced allocations (leak-triage.md §2), summarized by type (§2.4),
    then the ``n`` largest of them with a preview."""
    from .triageviews import type_summary

    leaks = dump.unreferenced()
    ts = type_summary(dump)
    total = int(leaks["user_size"].sum()) if len(leaks) else 0
    lines = [f"{_n(len(leaks))} allocations ({_n(total)} bytes) are referenced by nothing: no stack, global, register, "
             "other memory or reachable allocation holds an address inside them."]
    for w in dump.triage_stats().get("warnings", []):
        lines.append(f"  warning: {w}")
    lost = ts[ts["unreferenced_count"] > 0].head(n)
    if len(lost):
        rows = [[_n(r.unreferenced_bytes), _n(r.unreferenced_count), _n(r.count), _clip(str(r.type_name), 70)]
                for r in lost.itertuples()]
        lines += ["", format_table(["unref bytes", "unref count", "of count", "type"], rows, align="rrrl")]
        df = leaks.to_pandas().sort_values(["user_size", "user_address"], ascending=[False, True], kind="stable").head(n)
        rows = [[f"{int(r.user_address):#x}", _n(r.user_size), _clip(r.type if isinstance(r.type, str) else f"({r.content_name})", 50),
                 _clip(str(r.preview), 50)] for r in df.itertuples()]
        lines += ["", "Largest unreferenced blocks:", format_table(["user address", "bytes", "type", "preview"], rows, align="lrll")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The report


@dataclass
class ReportOutput:
    """What :func:`build_report` produced: the text and the files it wrote."""

    text: str
    plot_path: Optional[str] = None
    notes: List[str] = field(default_factory=list)
    #: The exit status of ``ntheap report``: 0 a full report, 1 a report with gaps (stated in it),
    #: 2 no report (no dump, or no heap of any dump, could be read).
    status: int = 0


def default_plot_path(first_dump: str, name: str = "leak-growth.png") -> Path:
    """Where the report writes its plot when not told: the current directory, or beside the
    first dump when the current directory is not writable."""
    for folder in (Path.cwd(), Path(first_dump).resolve().parent):
        if os.access(folder, os.W_OK):
            return folder / name
    import tempfile

    return Path(tempfile.gettempdir()) / name


def _heap_usage_text(dump: "Dump", a: Allocations, n: int = 5) -> str:
    """The heaps holding the most busy bytes, with what they committed in segments and in
    virtual blocks (a heap's big allocations live outside its segments)."""
    import numpy as np

    summary = dump.heap_summary()
    heaps = a.table["heap"]
    sizes = a.table["user_size"]
    busy = {int(h): (int((heaps == np.uint64(h)).sum()), int(sizes[heaps == np.uint64(h)].sum())) for h in summary["heap"]}
    order = sorted(summary.itertuples(), key=lambda r: (-busy[int(r.heap)][1], -int(r.committed), int(r.heap)))
    rows = [
        [f"{int(r.heap):#x}", r.arch, r.kind, _n(busy[int(r.heap)][0]), _n(busy[int(r.heap)][1]), _n(r.committed),
         _n(r.virtual_block_bytes), _n(r.reserved)]
        for r in order[:n]
    ]
    return format_table(["heap", "arch", "kind", "busy blocks", "busy bytes", "segments committed", "virtual blocks", "reserved"],
                        rows, align="rllrrrrr")


def _views(dump: "Dump", views: Sequence[Tuple[str, Callable[[], str]]]) -> List[str]:
    """Titled views of one dump. A dump may lack what one view needs (no MemoryInfoList, a PEB
    not captured): that view says why and the others are still printed."""
    lines: List[str] = []
    for title, view in views:
        try:
            text = view()
        except DumpError as e:
            text = f"  unavailable: {type(e).__name__}: {e}"
        lines += ["", title, text]
    return lines


def _section(title: str) -> List[str]:
    return ["", "=" * len(title), title, "=" * len(title)]


def build_report(paths: Sequence[str], *, top: int = 10, stacks: int = 3, plot: Optional[str] = None,
                 make_plot: bool = True, symbol_path: Optional[str] = None, progress: Optional[bool] = None,
                 workers: Optional[int] = None, by: Optional[str] = None, image_path: Optional[str] = None) -> ReportOutput:
    """Everything a first look at a leak needs, from one or more dumps of one process.

    With several dumps: which keys grew from the first to the last (the leak suspects), their
    bytes in every dump, and a growth plot written to ``plot`` (default:
    :func:`default_plot_path`). The key is ``by`` ("stack", "type", "size" or "content"); by
    default the allocation stack when the dumps have +ust stacks, else the C++ type
    (leak-triage.md, which needs no +ust). Then, for the latest readable dump: its likely leaks
    (the allocations nothing references), the address-space summary, ``!heap -s``, the biggest
    heaps, the top allocation stacks or types and the commonest block sizes.
    """
    from ._dump import Dump
    from .address import address_summary_text
    from .scan import ScanResult
    from .scanjob import expand_paths, run_scan

    files = expand_paths(paths)
    if not files:
        raise ValueError(folder_note([str(p) for p in paths]) or "no dump given")
    result = ScanResult(run_scan(files, workers=workers, progress=progress, symbol_path=symbol_path, image_path=image_path))
    readable = sorted(result.allocations(), key=lambda a: (a.time is None, a.time.timestamp() if a.time else 0.0))
    allocs = [a for a in readable if not no_heap_read(a)]
    out = ReportOutput("")
    lines = [f"ntheap leak report: {len(files)} dump{'s' if len(files) != 1 else ''}"]
    for r in result.summary.itertuples():
        if r.error is None or r.error != r.error:  # None or NaN: read
            when = r.time.strftime("%Y-%m-%d %H:%M:%S UTC") if r.time == r.time else "time unknown"
            lines.append(f"  {os.path.basename(r.path)}  {when}  pid {r.pid}  {_n(r.blocks)} busy blocks, {_n(r.bytes)} bytes, {_n(r.stacks)} stacks")
        else:
            lines.append(f"  {os.path.basename(r.path)}  NOT READ: {r.error_kind}: {r.error}")
    for a in readable:
        lines += [f"  warning: {m}" for m in gap_messages(a, prefix=True)]
    if not allocs:
        lines.append("No dump could be read." if not readable else "No heap of these dumps could be read: there is nothing to report.")
        if readable:  # what the latest dump's memory and heap list still tell
            dump = Dump(readable[-1].path, symbol_path=symbol_path, image_path=image_path)
            lines += _section(f"Latest dump: {readable[-1].name} ({_when(readable[-1])})")
            lines += _views(dump, [("Address space (!address -summary):", lambda: address_summary_text(dump)),
                                   ("Heaps (!heap -s):", lambda: dump.heap_summary_text().rstrip("\n"))])
        out.text = "\n".join(lines) + "\n"
        out.status = NO_ANSWER
        return out
    odd = series_warnings(allocs)
    lines += [f"  warning: {w}" + (": stacks are still matched by their frames" if "processes" in w else "") for w in odd]
    partial = bool(len(result.errors)) or len(allocs) < len(readable) or bool(odd) or any(a.coverage for a in readable)

    has_stacks = any(len(a.stacks) for a in allocs)
    if by is None:
        by = "stack" if has_stacks else "type"
        if not has_stacks:
            lines.append("  no +ust allocation stacks in these dumps: growth is reported by C++ type (MSVC RTTI) and content class")
    if len(allocs) < 2:
        partial = True
        lines.append(f"  warning: one dump ({allocs[0].name}): growth needs at least two, so there are no leak suspects "
                     "and no growth plot; take another dump of the process later and report on both")
    if len(allocs) >= 2:
        first, last = allocs[0], allocs[-1]
        lines += _section(f"Leak suspects: growth from {first.name} to {last.name}" + ("" if by == "stack" else f", by {by}"))
        lines.append(diff_text(diff(first, last, by=by), first, last, n=top, stacks=stacks))
        g = growth(allocs, by=by, errors="ignore", progress=False)
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
    dump = Dump(latest.path, symbol_path=symbol_path, image_path=image_path)
    lines += _section(f"Likely leaks in {latest.name}: unreferenced allocations (like !heap -l)")
    try:
        lines.append(likely_leaks_text(dump, n=top))
    except DumpError as e:
        lines.append(f"  unavailable: {type(e).__name__}: {e}")
    lines += _section(f"Latest dump: {latest.name} ({_when(latest)})")
    lines += [f"  warning: {m}" for m in gap_messages(latest)]
    lines += _views(dump, [
        ("Address space (!address -summary):", lambda: address_summary_text(dump)),
        ("Heaps (!heap -s):", lambda: dump.heap_summary_text().rstrip("\n")),
        ("Biggest heaps by busy bytes:", lambda: _heap_usage_text(dump, latest)),
    ])
    if has_stacks:
        ts = top_stacks(latest, n=top)
        lines += ["", top_stacks_text(ts, total_count=len(latest), total_bytes=int(latest.table["user_size"].sum()),
                                      stacks=stacks if len(allocs) < 2 else 0, title="Top allocation stacks:")]
    lines += ["", top_types_text(top_types(latest, n=top), title="Top types (C++ types by RTTI, else content class):")]
    lines += ["", "Commonest block sizes by bytes (!heap -stat -h):", histogram_text(size_histogram(latest))]
    out.text = "\n".join(lines) + "\n"
    out.status = GAPS if partial else FULL
    return out


def progress_note(message: str) -> None:
    """A line on stderr (progress and where files went), never mixed into the report."""
    print(message, file=sys.stderr, flush=True)
