"""Plots of leak analyses (matplotlib, an optional dependency: ``pip install ntheap[plot]``).

Figures are made with ``matplotlib.figure.Figure``, not pyplot: nothing is registered in
pyplot's global figure list, so a script or a batch job that plots many series does not
accumulate figures, and a notebook shows the returned figure once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from .keys import columns_of
from .timeline import growing, growth

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LABEL_WIDTH = 60


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("ntheap's plots need matplotlib: pip install 'ntheap[plot]'") from None


def human_bytes(n: float) -> str:
    """``1.5 MiB`` style size (binary units).

    Example:
        >>> human_bytes(1536), human_bytes(3 << 20), human_bytes(12)
        ('1.5 KiB', '3 MiB', '12 B')
    """
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{int(n)} B"


def _unit_for(largest: float) -> "tuple[str, int]":
    """The binary unit that keeps the largest value in 1..1024 (so the ticks are round)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if largest >= scale:
            return unit, scale
    return "bytes", 1


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_WIDTH else label[: _LABEL_WIDTH - 1] + "…"


def _legend_labels(frames: List[str]) -> List[str]:
    """Short labels, made unique: two stacks with the same caller frame get ``[2]``, ``[3]``."""
    seen: Dict[str, int] = {}
    out: List[str] = []
    for f in frames:
        short = _short(f)
        seen[short] = seen.get(short, 0) + 1
        out.append(short if seen[short] == 1 else f"{short} [{seen[short]}]")
    return out


def plot_growth(data: Any, top: int = 5, ax: Optional["Axes"] = None, scale: str = "auto", by: Optional[str] = None,
                **growth_kwargs: Any) -> "Figure":
    """Bytes over time of the ``top`` keys that grew most from the first dump to the last:
    allocation stacks (legend: the first frame past the allocator) or, with ``by="type"``, C++
    types and content classes (works without +ust); ``"size"`` and ``"content"`` too.

    ``scale`` is "linear", "log" (base 2, ticks in KiB/MiB/GiB) or "auto": log when the largest
    stack drawn holds over 50 times the bytes of the smallest, so that a slow leak stays visible
    beside a fast one.

    ``data`` is a :func:`ntheap.growth` DataFrame (grouped as it is; ``by`` must then be None or
    agree), a :class:`ntheap.ScanResult`, or dumps / paths (passed to :func:`ntheap.growth`
    with ``by`` and ``growth_kwargs``). Draws into ``ax`` when given,
    otherwise into a new figure; returns the figure. Save it with ``fig.savefig("growth.png")``.

    Example:
        >>> fig = ntheap.plot_growth(sorted(glob.glob("samples/leaky-*.dmp")), top=3)  # doctest: +SKIP
    """
    _require_matplotlib()
    import pandas as pd

    df: pd.DataFrame
    if isinstance(data, pd.DataFrame):
        df = data
    elif hasattr(data, "growth") and callable(data.growth):
        df = data.growth(by=by or "stack", **growth_kwargs)
    else:
        df = growth(data, by=by or "stack", **growth_kwargs)
    missing = {"time", "dump", "bytes"} - set(df.columns)
    if missing:
        raise ValueError(f"plot_growth needs a growth() DataFrame; missing columns: {sorted(missing)}")
    kind, key_col, label_col = columns_of(df)
    if by is not None and by != kind:
        raise ValueError(f"the growth frame is grouped by {kind!r}, not {by!r}")

    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 5.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]

    dumps = list(dict.fromkeys(df["dump"]))
    what = {"stack": "allocation stacks", "type": "types", "size": "block sizes", "content": "content classes"}[kind]
    chosen = growing(df, top=top)
    title = f"Top {len(chosen)} growing {what}"
    if chosen.empty and not df.empty:
        last = df[df["dump"] == dumps[-1]].sort_values("bytes", ascending=False, kind="stable").head(top)
        chosen = last[[key_col, label_col]].reset_index(drop=True)
        title = f"Nothing grew; the {len(chosen)} largest {what}"

    times = df.drop_duplicates("dump").set_index("dump")["time"]
    use_time = bool(times.notna().all()) and times.nunique() == len(dumps) and len(dumps) > 0
    xs: Any = [times[d] for d in dumps] if use_time else np.arange(len(dumps))
    labels = _legend_labels([str(x) for x in chosen[label_col]])
    if "bytes_per_hour" in chosen:
        labels = [lab if rate != rate else f"{lab}  (+{human_bytes(rate)}/h)" for lab, rate in zip(labels, chosen["bytes_per_hour"])]
    lines = []
    for label, key in zip(labels, chosen[key_col]):
        series = df[df[key_col] == key].set_index("dump")["bytes"].reindex(dumps, fill_value=0)
        lines.append((label, series.to_numpy(dtype=np.float64)))
    if scale not in ("auto", "linear", "log"):
        raise ValueError(f"scale must be 'auto', 'linear' or 'log', not {scale!r}")
    peaks = [float(v.max()) for _, v in lines if v.max() > 0]
    log = scale == "log" or (scale == "auto" and len(peaks) > 1 and max(peaks) > 50 * min(peaks))
    unit, div = ("bytes", 1) if log else _unit_for(max(peaks, default=0.0))
    for label, values in lines:
        ax.plot(xs, values / div, marker="o", label=label)

    if not use_time:
        import os

        ax.set_xticks(list(xs))
        ax.set_xticklabels([os.path.basename(str(d)) for d in dumps], rotation=30, ha="right")
        ax.set_xlabel("dump")
    else:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_xlabel("dump time (UTC)")
    if log:
        from matplotlib.ticker import FuncFormatter, LogLocator

        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_locator(LogLocator(base=2, numticks=12))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: human_bytes(v)))
        ax.set_ylabel("busy bytes (log scale)")
    else:
        ax.set_ylabel(f"busy {unit}")
        ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if len(chosen):
        legend = "allocated by" if kind == "stack" else kind
        ax.legend(loc="best", fontsize="small", title=f"{legend} (growth per hour)")
    return fig
