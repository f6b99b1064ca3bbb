"""Names of Windows constants that appear in dump tables (winnt.h)."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

#: MEMORY_BASIC_INFORMATION.State values.
MEM_STATE: Dict[int, str] = {0x1000: "MEM_COMMIT", 0x2000: "MEM_RESERVE", 0x10000: "MEM_FREE"}

#: MEMORY_BASIC_INFORMATION.Type values.
MEM_TYPE: Dict[int, str] = {0x20000: "MEM_PRIVATE", 0x40000: "MEM_MAPPED", 0x1000000: "MEM_IMAGE"}

#: Page protection base values (low byte); modifiers are listed separately.
PAGE_PROTECT: Dict[int, str] = {
    0x01: "PAGE_NOACCESS",
    0x02: "PAGE_READONLY",
    0x04: "PAGE_READWRITE",
    0x08: "PAGE_WRITECOPY",
    0x10: "PAGE_EXECUTE",
    0x20: "PAGE_EXECUTE_READ",
    0x40: "PAGE_EXECUTE_READWRITE",
    0x80: "PAGE_EXECUTE_WRITECOPY",
}
PAGE_MODIFIERS: Dict[int, str] = {0x100: "PAGE_GUARD", 0x200: "PAGE_NOCACHE", 0x400: "PAGE_WRITECOMBINE"}


def protect_name(value: int) -> str:
    """``PAGE_READWRITE | PAGE_GUARD`` style name of a protection value ("" for 0)."""
    if value == 0:
        return ""
    parts: List[str] = []
    base = value & 0xFF
    if base:
        parts.append(PAGE_PROTECT.get(base, f"{base:#x}"))
    for bit, name in PAGE_MODIFIERS.items():
        if value & bit:
            parts.append(name)
    rest = value & ~0x7FF
    if rest:
        parts.append(f"{rest:#x}")
    return " | ".join(parts)


def decode(table: Dict[int, str]):  # type: ignore[no-untyped-def]
    """A column decoder that maps values through ``table`` (unknown values as hex, 0 as "")."""

    def name(v: int) -> str:
        return table.get(v, f"{v:#x}" if v else "")

    def run(col: np.ndarray) -> Any:
        col = np.asarray(col)
        if col.dtype.kind in "ui" and len(col) and 0 <= int(col.min()) and int(col.max()) < 0x10000:
            lut = np.empty(int(col.max()) + 1, dtype=object)
            lut[:] = [name(i) for i in range(len(lut))]
            return lut[col.astype(np.intp)]
        return [name(int(v)) for v in col]

    return run


def decode_protect(col: np.ndarray) -> List[str]:
    """Column decoder for protection values."""
    return [protect_name(int(v)) for v in col]
