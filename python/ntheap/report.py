"""Human-readable renderings shared by the CLI and notebooks."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, List, Optional, Sequence

from ._core import DumpError

if TYPE_CHECKING:  # pragma: no cover
    from ._dump import Dump


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """Plain-text table with a header rule. ``align`` holds one 'l' or 'r' per column
    (default: right for numbers and hex, left otherwise)."""
    text = [[str(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if not align:
        align = "".join(
            "r" if rows and all(_numeric(str(r[i])) for r in rows) else "l" for i in range(len(headers))
        )

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, align)]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in text)
    return "\n".join(out)


def _numeric(cell: str) -> bool:
    return cell.startswith("0x") or cell.replace(".", "", 1).replace(",", "").isdigit()


def _pdb_key(name: Optional[str], guid: Optional[str], age: Optional[int]) -> str:
    """``name.pdb/GUIDAGE``: the symbol-store key of a module's PDB (age in hex)."""
    if name and guid and age is not None:
        return f"{name}/{guid}{age:X}"
    return name or ""


def _peb_lines(dump: "Dump") -> List[str]:
    lines: List[str] = []
    try:
        pebs = [dump.peb]
        peb32 = dump.peb32
        if peb32 is not None:
            pebs.append(peb32)
    except DumpError as e:
        return [f"PEB:           unavailable ({e})"]
    for peb in pebs:
        label = f"PEB ({peb.arch})"
        flags = " ".join(f"+{f}" for f in peb.global_flags) or "none"
        lines.append(f"{label + ':':<15}{peb.address:#x} (TEB {peb.teb:#x})")
        lines.append(f"{'  gflags:':<15}{peb.nt_global_flag:#010x} {flags}")
        if peb.process_heaps is None:
            heaps = f"not captured ({peb.process_heaps_problem})"
        elif peb.process_heaps:
            heaps = ", ".join(f"{h:#x}" for h in peb.process_heaps)
        else:
            heaps = "no heap listed in ProcessHeaps"
        lines.append(f"{'  heaps:':<15}{peb.number_of_heaps} (process heap {peb.process_heap:#x}): {heaps}")
    return lines


def _heap_lines(dump: "Dump") -> List[str]:
    """One line per heap found (kind and whether it was read, or its signature word when it is
    not a Windows heap), from the headers survey."""
    try:
        heaps = dump.heaps
    except DumpError:
        return []  # the PEB lines say why
    out = []
    for h in heaps:
        if h.status == "walked":
            what = f"{h.kind} heap"
        elif h.status == "not_captured":
            what = "header not in the dump"
        elif h.kind == "unknown":
            word = "not captured" if h.signature_word is None else f"{h.signature_word:#010x}"
            what = f"not a Windows heap (signature word {word})"
        else:
            what = f"{h.kind} heap, not walked ({h.not_walked or h.status})"
        out.append(f"{'  heap:':<15}{h.address:#x}  {what}")
    return out


def info_text(dump: "Dump") -> str:
    """What ``ntheap info`` prints."""
    created = dump.process_create_time
    lines = [
        f"Dump:          {dump.path}",
        f"OS:            Windows {dump.os_version}" + (f" {dump.csd_version}" if dump.csd_version else ""),
        f"Arch:          {dump.arch}" + (" (WOW64: 32-bit process)" if dump.is_wow64 else ""),
        f"PID:           {dump.pid if dump.pid is not None else 'unknown'}",
        f"Dump time:     {dump.timestamp.isoformat()}",
        f"Process start: {created.isoformat() if created else 'unknown'}",
        f"Streams:       {', '.join(dump.streams)}",
        f"Memory:        {dump.captured_bytes:,} bytes captured in {dump.captured_range_count} ranges",
    ]
    lines += _peb_lines(dump)
    lines += _heap_lines(dump)
    lines += [f"Warning:       {m}" for m in dump.coverage(walk=False)["message"]]
    mods = dump.modules
    lines += ["", f"Modules ({len(mods)}):"]
    lines.append(
        format_table(
            ["Base", "End", "Name", "Version", "PDB"],
            [
                [f"{m.base:#x}", f"{m.end:#x}", m.name, m.version or "", _pdb_key(m.pdb_name, m.pdb_guid, m.pdb_age)]
                for m in mods
            ],
            align="rrlll",
        )
    )
    threads = dump.threads
    lines += ["", f"Threads ({len(threads)}):"]
    lines.append(
        format_table(
            ["Id", "TEB", "Stack start", "Stack end"],
            [[f"{t.id:#x}", f"{t.teb:#x}", f"{t.stack_start:#x}", f"{t.stack_end:#x}"] for t in threads],
        )
    )
    return "\n".join(lines)


def info_html(dump: "Dump") -> str:
    """Notebook rendering of a dump: the same facts as ``info_text``, as HTML."""
    body = html.escape(info_text(dump))
    return f"<pre>{body}</pre>"
