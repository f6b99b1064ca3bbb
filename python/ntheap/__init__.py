"""ntheap: find native (NT) heap memory leaks in Windows process dumps.

Example:
    >>> import ntheap
    >>> dump = ntheap.Dump("samples/leaky-x64-1.dmp")  # doctest: +SKIP
    >>> dump.peb.process_heaps  # doctest: +SKIP
"""

from ._core import (
    Allocation,
    CorruptDumpError,
    DumpError,
    Frame,
    InternalError,
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
from ._schema import BLOCK_COLUMNS, BLOCK_SCHEMA
from .analysis import (
    ALLOCATOR_FRAMES,
    DumpSkippedWarning,
    diff,
    growth,
    size_histogram,
    top_frame,
    top_modules,
    top_stacks,
)
from .plotting import plot_growth
from .scan import ScanResult, scan
from .stacks import StackTable
from .table import Table

__all__ = [
    "ALLOCATOR_FRAMES",
    "Allocation",
    "BLOCK_COLUMNS",
    "BLOCK_SCHEMA",
    "CorruptDumpError",
    "Dump",
    "DumpError",
    "DumpSkippedWarning",
    "Frame",
    "InternalError",
    "MemoryNotCaptured",
    "MissingStreamError",
    "Module",
    "NotAMinidumpError",
    "Peb",
    "ScanResult",
    "StackTable",
    "StructureNotFoundError",
    "Table",
    "Thread",
    "TruncatedDumpError",
    "UnsupportedDumpError",
    "__version__",
    "diff",
    "growth",
    "plot_growth",
    "scan",
    "size_histogram",
    "top_frame",
    "top_modules",
    "top_stacks",
]
