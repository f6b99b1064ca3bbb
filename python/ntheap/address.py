"""``!address -summary``: where the process's address space went, by usage, type and state.

Usage rows follow WinDbg's names. A region is:

* ``Free``: MEM_FREE;
* ``PEB`` / ``TEB``: holds a PEB or TEB (both halves of a WOW64 process);
* ``Stack``: in the allocation of a thread's stack;
* ``Heap``: in the allocation of a heap segment, a heap's first segment or a virtual block
  (VirtualAllocdBlocks), i.e. what the heap walk found;
* ``Image``: MEM_IMAGE;
* ``Other``: MEM_MAPPED (mapped files and sections);
* ``<unknown>``: any other private memory (other allocators, .NET GC heap, VirtualAlloc).

% of busy is relative to all non-free regions; % of total to the whole address space the
regions cover.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Set

import numpy as np

from ._core import DumpError
from .table import Table
from .winconst import MEM_STATE, MEM_TYPE

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ._dump import Dump

MEM_FREE = 0x10000
MEM_IMAGE = 0x1000000
MEM_MAPPED = 0x40000
USAGE_ORDER = ["Free", "<unknown>", "Image", "Heap", "Stack", "Other", "TEB", "PEB"]
_U64_MAX = (1 << 64) - 1


def _containing(base: np.ndarray, end: np.ndarray, addresses: List[int]) -> np.ndarray:
    """Mask of regions that contain any of ``addresses``.

    Addresses come from the dump (a TEB at the top of the address space plus the WOW64 offset
    lies past 2**64); those outside the 64-bit space are in no region.
    """
    mask = np.zeros(len(base), dtype=bool)
    addresses = [a for a in addresses if 0 <= a <= _U64_MAX]
    if not addresses:
        return mask
    order = np.argsort(base)
    sorted_base = base[order]
    for a in addresses:
        i = int(np.searchsorted(sorted_base, np.uint64(a), side="right")) - 1
        if i >= 0 and a < int(end[order[i]]):
            mask[order[i]] = True
    return mask


def usage(dump: "Dump", regions: Optional[Table] = None) -> np.ndarray:
    """The usage name of every region of ``dump.regions()`` (or of ``regions``, that table
    already read), as an object array."""
    t = dump.regions() if regions is None else regions
    base, size, state, kind, alloc = t["base"], t["size"], t["state"], t["type"], t["allocation_base"]
    end = base + size
    out = np.full(len(base), "<unknown>", dtype=object)
    out[kind == MEM_MAPPED] = "Other"
    out[kind == MEM_IMAGE] = "Image"

    heap_bases: Set[int] = set()
    try:
        for h in dump.heaps:
            heap_bases.add(h.address)
            heap_bases.update(s.base for s in h.segments)
            heap_bases.update(v.address for v in h.virtual_blocks)
    except DumpError:
        pass  # no PEB: no heap is known
    heap_allocs = _containing(base, end, sorted(heap_bases))
    heap_alloc_bases = set(alloc[heap_allocs].tolist()) | heap_bases
    out[np.isin(alloc, np.array(sorted(heap_alloc_bases), dtype=np.uint64))] = "Heap"

    stacks = _containing(base, end, [th.stack_start for th in dump.threads])
    out[np.isin(alloc, alloc[stacks])] = "Stack"

    tebs = [th.teb for th in dump.threads]
    pebs: List[int] = []
    try:
        pebs.append(dump.peb.address)
        peb32 = dump.peb32
        if peb32 is not None:
            pebs.append(peb32.address)
            tebs += [th.teb + 0x2000 for th in dump.threads]
    except DumpError:
        pass
    out[_containing(base, end, tebs)] = "TEB"
    out[_containing(base, end, pebs)] = "PEB"
    out[state == MEM_FREE] = "Free"
    return out


def address_summary(dump: "Dump") -> "pd.DataFrame":
    """Rows for each usage, type and state: section, name, regions, size, pct_busy, pct_total."""
    import pandas as pd

    t = dump.regions()
    size, state, kind = t["size"], t["state"], t["type"]
    use = usage(dump, t)
    total = int(size.sum())
    busy_mask = state != MEM_FREE
    busy = int(size[busy_mask].sum())
    rows: List[Dict[str, object]] = []

    def add(section: str, name: str, mask: np.ndarray, is_busy: bool) -> None:
        n = int(mask.sum())
        if n == 0:
            return
        s = int(size[mask].sum())
        rows.append(
            {
                "section": section,
                "name": name,
                "regions": n,
                "size": s,
                "pct_busy": (100.0 * s / busy if busy else 0.0) if is_busy else float("nan"),
                "pct_total": 100.0 * s / total if total else 0.0,
            }
        )

    # Biggest first; rows of equal size by name, so that the order never depends on set order.
    for name in sorted(set(use), key=lambda u: (-int(size[use == u].sum()), u)):
        add("usage", name, use == name, name != "Free")
    for value, name in sorted(MEM_TYPE.items(), key=lambda kv: (-int(size[(kind == kv[0]) & busy_mask].sum()), kv[1])):
        add("type", name, (kind == value) & busy_mask, True)
    for value, name in sorted(MEM_STATE.items(), key=lambda kv: (-int(size[state == kv[0]].sum()), kv[1])):
        add("state", name, state == value, value != MEM_FREE)
    return pd.DataFrame(rows, columns=["section", "name", "regions", "size", "pct_busy", "pct_total"])


def _human(n: int) -> str:
    for unit, scale in [("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)]:
        if n >= scale:
            return f"{n / scale:8.3f} {unit}"
    return f"{n:8d} B "


def _windbg_hex(n: int) -> str:
    return f"{n >> 32:x}`{n & 0xFFFFFFFF:08x}"


def address_summary_text(dump: "Dump") -> str:
    """``!address -summary`` laid out as WinDbg prints it."""
    df = address_summary(dump)
    titles = {
        "usage": "--- Usage Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
        "type": "--- Type Summary (for busy) ------ RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
        "state": "--- State Summary ---------------- RgnCount ----------- Total Size -------- %ofBusy %ofTotal",
    }
    lines: List[str] = []
    for section in ["usage", "type", "state"]:
        lines += ["", titles[section]]
        for r in df[df.section == section].itertuples():
            busy = "" if np.isnan(r.pct_busy) else f"{r.pct_busy:6.2f}%"
            lines.append(
                f"{r.name:<32}{r.regions:>9} {_windbg_hex(int(r.size)):>20} ({_human(int(r.size))}) {busy:>7} {r.pct_total:7.2f}%"
            )
    return "\n".join(lines).lstrip("\n")
