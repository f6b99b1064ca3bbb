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
    Limits,
    MemoryNotCaptured,
    MissingStreamError,
    Module,
    NoSuchHeapError,
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
from .aggregate import size_histogram, top_content, top_modules, top_stacks, top_types
from .allocations import Allocations, DumpSkippedWarning
from .coverage import COVERAGE_COLUMNS
from .frames import ALLOCATOR_FRAMES, top_frame
from .plotting import plot_growth
from .timeline import diff, growing, growth
from .triageviews import type_summary
from .scan import ScanResult, scan
from .stacks import StackTable
from .table import Table

__all__ = [
    "ALLOCATOR_FRAMES",
    "Allocation",
    "Allocations",
    "BLOCK_COLUMNS",
    "BLOCK_SCHEMA",
    "COVERAGE_COLUMNS",
    "CorruptDumpError",
    "Dump",
    "DumpError",
    "DumpSkippedWarning",
    "Frame",
    "InternalError",
    "Limits",
    "MemoryNotCaptured",
    "MissingStreamError",
    "Module",
    "NoSuchHeapError",
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
    "growing",
    "growth",
    "plot_growth",
    "scan",
    "size_histogram",
    "top_frame",
    "top_content",
    "top_modules",
    "top_stacks",
    "top_types",
    "type_summary",
]
