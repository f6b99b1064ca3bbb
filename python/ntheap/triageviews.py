"""Leak triage without +ust, as people read it: ``!heap -l`` (the unreferenced blocks) and the
per-type summary of leak-triage.md §2.4.

Every function takes an open :class:`ntheap.Dump`; nothing here imports it (the dump module
imports this one's siblings, never the other way round).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Tuple

import numpy as np

from . import _core
from .report import format_table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

CONTENT_NAMES = dict(_core.CONTENT_CLASSES)
#: Columns of :func:`type_summary`.
TYPE_SUMMARY_COLUMNS = ["key", "type", "type_name", "content", "count", "bytes", "unreferenced_count", "unreferenced_bytes"]
_HEAP_ENTRY_FLAGS = [(0x01, "busy"), (0x02, "extra"), (0x04, "fill"), (0x08, "virtual"), (0x10, "last")]


def type_keys(dump: "Dump", type_id: np.ndarray, content: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block, leak-triage.md §2.4's grouping key with its decorated and display names: a
    named block's key is its decorated name (``.?AVWidget@@``, the same in every image that
    defines it) and its label the undecorated type; any other block's key is its content class
    (``ascii``, ``zero``, ...; decorated names start with ``.?A``, so the two never collide) and
    its label the class in parentheses. Object arrays (key, decorated or None, label)."""
    t = dump.types()
    decorated = np.concatenate([np.array([None], dtype=object), t["decorated"]])
    names = np.concatenate([np.array([None], dtype=object), np.array([n or d for n, d in zip(t["name"], t["decorated"])], dtype=object)])
    idx = type_id.astype(np.int64) + 1
    named = idx > 0
    lut = np.empty(max(CONTENT_NAMES) + 1, dtype=object)
    lut[:] = [CONTENT_NAMES.get(i, str(i)) for i in range(len(lut))]
    cls = lut[content.astype(np.intp)]
    key = np.where(named, decorated[idx], cls)
    label = np.where(named, names[idx], np.array([f"({c})" for c in cls], dtype=object) if len(cls) else cls)
    return key, decorated[idx], label  # decorated[0] is None: the unnamed blocks'


def type_summary(dump: "Dump") -> "pd.DataFrame":
    """leak-triage.md §2.4's summary: allocations grouped by decorated name (named blocks) or by
    content class (the others), with count and bytes (sum of user_size), and how many of them,
    and how many bytes, are unreferenced; sorted by unreferenced bytes, then bytes, then count
    (descending), then key.

    Columns: key (the decorated name, or the content class), type (the decorated name, or None),
    type_name (the undecorated name, or the class in parentheses), content (``object`` for named
    groups), count, bytes, unreferenced_count, unreferenced_bytes.

    Example:
        >>> ntheap.type_summary(ntheap.Dump("app.dmp")).head()  # doctest: +SKIP
    """
    import pandas as pd

    b = dump.blocks()
    alloc = b["is_allocation"]
    key, decorated, label = type_keys(dump, b["type_id"][alloc], b["content"][alloc])
    size = b["user_size"][alloc].astype(np.int64)
    lost = ~b["reachable"][alloc]
    content = np.array([CONTENT_NAMES.get(int(c), str(c)) for c in b["content"][alloc]], dtype=object)
    df = pd.DataFrame({"key": key, "type": decorated, "type_name": label, "content": content, "size": size, "lost": lost})
    df["lost_size"] = np.where(lost, size, 0)
    g = df.groupby("key", sort=False).agg(
        type=("type", "first"),
        type_name=("type_name", "first"),
        content=("content", "first"),
        count=("size", "size"),
        bytes=("size", "sum"),
        unreferenced_count=("lost", "sum"),
        unreferenced_bytes=("lost_size", "sum"),
    )
    g = g.reset_index().astype({"count": np.int64, "bytes": np.int64, "unreferenced_count": np.int64, "unreferenced_bytes": np.int64})
    # "first" skips None; a key is a decorated name exactly when it starts with ".?A".
    g["type"] = pd.Series([k if k.startswith(".?A") else None for k in g["key"]], index=g.index, dtype=object)
    g = g.sort_values(["unreferenced_bytes", "bytes", "count", "key"], ascending=[False, False, False, True], kind="stable",
                      ignore_index=True)
    return g[TYPE_SUMMARY_COLUMNS]


def _flags_text(flags: int, kind: str) -> str:
    words = [w for bit, w in _HEAP_ENTRY_FLAGS if flags & bit]
    if not words or "busy" not in words:
        words.insert(0, "busy")
    if kind not in ("backend", "virtual"):
        words.append(f"({kind})")
    return " ".join(words)


def heap_l_text(dump: "Dump", *, summary: int = 20) -> str:
    """What ``!heap -l`` prints: the heaps searched, a count line, then one line per
    unreferenced busy block (Entry, User, Heap, Segment, Size, PrevSize, Unused, Flags; ntheap
    adds the block's C++ type or content class and a preview), then ntheap's summary by type
    (the ``summary`` largest groups by unreferenced bytes)."""
    blocks = dump.blocks()
    leaks = dump.unreferenced()
    w = 8 if dump.process_arch == "x86" else 16
    lines = ["Searching the memory for potential unreachable busy blocks."]
    lines += [f"Heap {h.address:0{w}x}" for h in dump.heaps]
    stats = dump.triage_stats()
    alloc = blocks["is_allocation"]
    lines.append(f"Scanning VM ... {int(stats.get('root_bytes', 0)) >> 20} MBytes of roots")
    lines.append(f"Scanning references from {int(stats.get('reached', 0))} busy blocks "
                 f"({int(stats.get('heap_bytes', 0)) >> 20} MBytes) of {int(alloc.sum())} ...")
    lines.append(f"{len(leaks)} potential unreachable blocks were detected.")
    for warning in stats.get("warnings", []):
        lines.append(f"warning: {warning}")
    if len(leaks):
        rows = leaks["row"]
        addr, size, seg = blocks["address"], blocks["size"], blocks["segment"]
        prev: List[int] = []
        for r in rows.tolist():
            p = r - 1
            adjacent = p >= 0 and seg[p] == seg[r] and int(addr[p]) + int(size[p]) == int(addr[r])
            prev.append(int(size[p]) if adjacent else 0)
        kinds = blocks.to_pandas(["kind"])["kind_name"].to_numpy()[rows]
        _, _, label = type_keys(dump, leaks["type_id"], leaks["content"])
        header = (f"{'Entry':<{w}}  {'User':<{w}}  {'Heap':<{w}}  {'Segment':<{w}}  {'Size':>8}  {'PrevSize':>8}  "
                  f"{'Unused':>6}  Flags")
        lines += [header, "-" * (len(header) + 24)]
        for i, r in enumerate(rows.tolist()):
            lines.append(
                f"{int(addr[r]):0{w}x}  {int(leaks['user_address'][i]):0{w}x}  {int(leaks['heap'][i]):0{w}x}  "
                f"{int(seg[r]):0{w}x}  {int(size[r]):>8x}  {prev[i]:>8x}  {int(blocks['unused_bytes'][r]):>6x}  "
                f"{_flags_text(int(blocks['flags'][r]), str(kinds[i]))}  {label[i]}  {leaks['preview'][i]}"
            )
    df = type_summary(dump)
    lines += ["", "Allocations by type (unreferenced first):"]
    rows_t: List[List[Any]] = [
        [f"{r.unreferenced_bytes:,}", f"{r.unreferenced_count:,}", f"{r.bytes:,}", f"{r.count:,}", r.type_name]
        for r in df.head(summary).itertuples()
    ]
    lines.append(format_table(["unref bytes", "unref count", "bytes", "count", "type"], rows_t, align="rrrrl"))
    if len(df) > summary:
        lines.append(f"... {len(df) - summary} more types")
    return "\n".join(lines)
