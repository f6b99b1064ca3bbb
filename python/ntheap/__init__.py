"""ntheap: find native (NT) heap memory leaks in Windows process dumps.

Example:
    >>> import ntheap
    >>> dump = ntheap.Dump("samples/leaky-x64-1.dmp")  # doctest: +SKIP
    >>> dump.peb.process_heaps  # doctest: +SKIP
"""

from ._core import (
    CorruptDumpError,
    DumpError,
    MemoryNotCaptured,
    MissingStreamError,
    Module,
    NotAMinidumpError,
    Peb,
    StructureNotFoundError,
    Thread,
    TruncatedDumpError,
    UnsupportedDumpError,
    __version__,
)
from ._dump import Dump
from .table import Table

__all__ = [
    "CorruptDumpError",
    "Dump",
    "DumpError",
    "MemoryNotCaptured",
    "MissingStreamError",
    "Module",
    "NotAMinidumpError",
    "Peb",
    "StructureNotFoundError",
    "Table",
    "Thread",
    "TruncatedDumpError",
    "UnsupportedDumpError",
    "__version__",
]
