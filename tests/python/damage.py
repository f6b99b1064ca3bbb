"""Damage builder fixtures in place: a small minidump editor for the damaged-dump suite.

It reads the stream directory and both memory lists with its own ``struct`` layouts
(minidumpapiset.h), maps a virtual address to its file offset, and writes pointers and
integers there. It never imports the package under test.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

# MINIDUMP_STREAM_TYPE values (minidumpapiset.h).
THREAD_LIST, MODULE_LIST, MEMORY_LIST, SYSTEM_INFO, MEMORY64_LIST, MISC_INFO, MEMORY_INFO_LIST = 3, 4, 5, 7, 9, 15, 16
# The streams a reader must parse to open a dump (the others are skipped).
PARSED = {THREAD_LIST, MODULE_LIST, MEMORY_LIST, SYSTEM_INFO, MEMORY64_LIST, MISC_INFO, MEMORY_INFO_LIST}
NAMES = {THREAD_LIST: "ThreadListStream", MODULE_LIST: "ModuleListStream", MEMORY_LIST: "MemoryListStream",
         SYSTEM_INFO: "SystemInfoStream", MEMORY64_LIST: "Memory64ListStream", MISC_INFO: "MiscInfoStream",
         MEMORY_INFO_LIST: "MemoryInfoListStream"}
MEM_FREE = 0x10000


@dataclass
class Stream:
    index: int  # position in the directory
    kind: int
    size: int
    rva: int


@dataclass
class Range:
    va: int
    size: int
    rva: int  # file offset of the data
    descriptor: int  # file offset of the descriptor
    list64: bool


class Minidump:
    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        count, directory = struct.unpack_from("<II", self.data, 8)
        self.directory = directory
        self.streams = [Stream(i, *struct.unpack_from("<III", self.data, directory + 12 * i)) for i in range(count)]
        self.ranges: List[Range] = []
        for s in self.streams:
            if s.kind == MEMORY_LIST:
                (n,) = struct.unpack_from("<I", self.data, s.rva)
                for i in range(n):
                    d = s.rva + 4 + 16 * i
                    va, size, rva = struct.unpack_from("<QII", self.data, d)
                    self.ranges.append(Range(va, size, rva, d, False))
            elif s.kind == MEMORY64_LIST:
                n, rva = struct.unpack_from("<QQ", self.data, s.rva)
                for i in range(n):
                    d = s.rva + 16 + 16 * i
                    va, size = struct.unpack_from("<QQ", self.data, d)
                    self.ranges.append(Range(va, size, rva, d, True))
                    rva += size

    @classmethod
    def load(cls, path: Path) -> "Minidump":
        return cls(path.read_bytes())

    def stream(self, kind: int) -> Stream:
        return next(s for s in self.streams if s.kind == kind)

    def offset(self, va: int, size: int = 1) -> int:
        for r in self.ranges:
            if r.va <= va and va + size <= r.va + r.size:
                return r.rva + (va - r.va)
        raise KeyError(f"{va:#x} is not captured in the fixture")

    def read(self, va: int, size: int) -> bytes:
        o = self.offset(va, size)
        return bytes(self.data[o:o + size])

    def read_ptr(self, va: int, ptr: int) -> int:
        return int.from_bytes(self.read(va, ptr), "little")

    def write(self, va: int, value: int, size: int) -> None:
        o = self.offset(va, size)
        self.data[o:o + size] = value.to_bytes(size, "little")

    def poke(self, offset: int, fmt: str, *values: int) -> None:
        struct.pack_into(fmt, self.data, offset, *values)

    def save(self, path: Path) -> Path:
        path.write_bytes(bytes(self.data))
        return path


def cut_points(dump: Minidump) -> List[Tuple[str, int]]:
    """Every stream boundary and the middle of every stream, with a label."""
    points = []
    for s in dump.streams:
        name = NAMES.get(s.kind, f"stream {s.kind}")
        points.append((f"start of {name}", s.rva))
        if s.size > 1:
            points.append((f"middle of {name}", s.rva + s.size // 2))
        points.append((f"end of {name}", s.rva + s.size))
    data_end = max((r.rva + r.size for r in dump.ranges), default=0)
    for r in dump.ranges:
        if r.size > 1 and r.rva + r.size <= len(dump.data):
            points.append((f"middle of the data of {r.va:#x}", r.rva + r.size // 2))
    points.append(("end of the memory data", data_end))
    unique = {p: label for label, p in points if 0 < p < len(dump.data)}
    return [(unique[p], p) for p in sorted(unique)]


def streams_cut_short(dump: Minidump, cut: int) -> List[Tuple[int, int]]:
    """(offset, end) of every stream a reader parses that does not fit in ``cut`` bytes."""
    return [(s.rva, s.rva + s.size) for s in dump.streams if s.kind in PARSED and s.rva + s.size > cut]
