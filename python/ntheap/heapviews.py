"""WinDbg's heap views (``!heap -s``, ``!heap -h``) over ntheap's heap objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from . import _core

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

SUMMARY_COLUMNS = [
    "heap", "arch", "wow64_32bit", "kind", "status", "flags", "reserved", "committed", "virtual",
    "free", "list_length", "ucr_blocks", "virtual_blocks", "virtual_block_bytes", "lock_contention",
    "fast_heap", "external_fragmentation_pct", "layout", "corruption_count",
]


def heap_summary(dump: "Dump", walk: bool = False) -> "pd.DataFrame":
    """``!heap -s`` as a DataFrame: one row per heap, sizes in bytes (WinDbg prints KB).

    Read from headers, counters and short lists: the cost does not grow with the number of
    blocks. ``list_length`` (free blocks) and ``corruption_count`` need the block walk: they are
    filled when the dump has been walked (``dump.is_walked``) or ``walk`` is true, else None."""
    import pandas as pd

    walked = walk or dump.is_walked
    rows: List[Dict[str, Any]] = []
    for h in dump.heaps:
        rows.append(
            {
                "heap": h.address,
                "arch": h.arch,
                "wow64_32bit": h.wow64_32bit,
                "kind": h.kind,
                "status": h.status,
                "flags": h.flags,
                "reserved": h.reserved,
                "committed": h.committed,
                "virtual": h.virtual_bytes,
                "free": h.free_bytes,
                "list_length": h.free_list_length if walked else None,
                "ucr_blocks": h.ucr_count,
                "virtual_blocks": h.virtual_block_count,
                "virtual_block_bytes": h.virtual_block_bytes,
                "lock_contention": h.lock_contention,
                "fast_heap": h.fast_heap,
                "external_fragmentation_pct": h.external_fragmentation,
                "layout": h.layout,
                "corruption_count": h.corruption_count if walked else None,
            }
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _hex(value: int, width: int) -> str:
    return f"{value:0{width}x}"


def _lfh_text(lfh: _core.Lfh, w: int) -> List[str]:
    """The LFH section of ``!heap -h``: state, key and the per-size-class table."""
    if lfh.not_decoded:
        state = f"not decoded ({lfh.not_decoded}): {lfh.detail}"
    elif lfh.key is not None:
        state = f"RtlpLFHKey {lfh.key:08x} ({lfh.key_source})"
    else:
        state = "decoded (no key needed)"
    lines = [
        f"    Low fragmentation heap {_hex(lfh.address, w)}: {lfh.layout or 'unknown layout'}",
        f"        {state}",
        f"        {len(lfh.zones)} zones",
    ]
    sc = lfh.size_classes()
    if len(sc):
        lines.append("        Block size  Subsegments   Blocks     Busy  Busy bytes  Not decoded")
        for i in range(len(sc)):
            lines.append(
                f"        {int(sc['block_size'][i]):>10}  {int(sc['subsegments'][i]):>11}  {int(sc['blocks'][i]):>7}"
                f"  {int(sc['busy'][i]):>7}  {int(sc['busy_bytes'][i]):>10}  {int(sc['undecoded_blocks'][i]):>11}"
            )
    return lines


def _why_not_walked(h: _core.Heap) -> str:
    """Why ``!heap -h`` has nothing to show for a heap that was not walked."""
    if h.status == "not_captured":
        return ("its header is not in the dump: take a full-memory dump "
                "(e.g. `procdump -ma`, or WinDbg `.dump /ma`)")
    if h.kind == "unknown":
        word = "not captured" if h.signature_word is None else f"{h.signature_word:#010x}"
        at = "+0x08" if h.arch == "x86" else "+0x10"
        return (f"not a Windows heap: the signature word at {at} is {word}, where an NT heap has 0xffeeffee "
                "and a segment heap 0xddeeddee")
    return h.not_walked or h.status


def heap_detail_text(dump: "Dump", address: int, walk: bool = False) -> str:
    """``!heap -h ADDRESS``: segments with their ranges and committed bytes, flags, granularity,
    the virtual alloc list and the uncommitted ranges, from headers and lists. The free-block
    count, the LFH's size classes, warnings and corruption records need the block walk: they are
    printed when the dump has been walked or ``walk`` is true."""
    h: _core.Heap = dump.heap(address)
    walked = walk or dump.is_walked
    w = 8 if h.arch == "x86" else 16
    granularity = 8 if h.arch == "x86" else 16
    lines = [
        "Index   Address  Kind      Layout",
        f"{'-' if h.index is None else h.index + 1:>3}:   {_hex(h.address, w)} {h.kind:<8} {h.layout or '-'}"
        + (f" (chosen by {h.layout_chosen_by})" if h.layout_chosen_by else "")
        + ("  [WOW64 32-bit heap]" if h.wow64_32bit else ""),
    ]
    if h.status != "walked":
        lines.append(f"    not walked: {_why_not_walked(h)}")
        return "\n".join(lines)
    if h.page_heap is not None:
        p = h.page_heap
        lines += [
            f"    Page heap root:       {_hex(p.root, w)}  (HeapFlags {p.heap_flags:08x})",
            f"    Busy blocks:          {p.busy} ({p.busy_bytes:#x} bytes requested)",
            f"    Freed blocks:         {p.freed}",
            f"    NormalHeap:           {_hex(p.normal_heap, w)}",
        ]
        return "\n".join(lines + ([f"    warning: {m}" for (_, _, _, m) in h.warnings] if walked else []))
    for s in h.segments:
        lines.append(
            f"    Segment at {_hex(s.base, w)} to {_hex(s.last_valid_entry, w)} ({_hex(s.committed, 8)} bytes committed)"
            + ("" if s.walked else "  [not walked]")
        )
    lines += [
        f"    Flags:                {h.flags:08x}  {' | '.join(h.flag_names)}",
        f"    ForceFlags:           {h.force_flags:08x}  {' | '.join(h.force_flag_names)}",
        f"    Granularity:          {granularity} bytes",
        f"    Encoded headers:      {'yes' if h.encoding_enabled else 'no'}",
        f"    Front end:            {h.fast_heap or 'none'}",
        f"    +ust stack traces:    {'yes' if h.ust else 'no'}",
        f"    Virtual Alloc List:   {len(h.virtual_blocks)} blocks, {h.virtual_block_bytes:#x} bytes committed",
    ]
    for v in h.virtual_blocks:
        state = f" - corrupt: {v.corruption}" if v.corruption else " - busy"
        lines.append(
            f"        {_hex(v.address, w)}: user {_hex(v.user_address, w)} size {v.user_size:#x}"
            f" [committed {v.commit_size:08x}, reserved {v.reserve_size:08x}]{state}"
        )
    ucrs = [(a, n) for s in h.segments for (a, n) in s.ucrs]
    lines.append(f"    Uncommitted ranges:   {len(ucrs)}")
    for a, n in ucrs:
        lines.append(f"            {_hex(a, w)}: {n:08x}  ({n} bytes)")
    free = "?" if h.free_bytes is None else f"{h.free_bytes:#x}"
    count = h.free_list_length if walked else "?"
    lines.append(f"    Free blocks:          {count} ({free} bytes)")
    if h.page_heap_owner is not None:
        lines.append(f"    NormalHeap of page heap {_hex(h.page_heap_owner, w)}")
    if not walked:
        lines.append("    (from headers only: the free-block count, LFH size classes, warnings and corruption records need the block walk: --walk)")
        return "\n".join(lines)
    if h.lfh is not None:
        lines += _lfh_text(h.lfh, w)
    lines += [f"    warning: {m}" for (_, _, _, m) in h.warnings]
    if h.corruption_count:
        lines.append(f"    Corruption records:   {h.corruption_count} (see Dump.corruption())")
    return "\n".join(lines)
