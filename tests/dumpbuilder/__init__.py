"""Deterministic Windows minidump writer for tests (stdlib only).

    import sys; sys.path.insert(0, "tests")
    from dumpbuilder import DumpBuilder, Process, Wow64, NtHeap, StackTraceDatabase
    b.add_pe_module("C:/app/halcon.dll", base, size, exports={"HXmalloc": 0x11D4C0})
    b.frame_text(base + 0x11D54B)        # 'halcon!HXmalloc+0x8b'

The structures are transcribed independently of the project's reader (see
structs.py, process.py, heap_layouts.py, lfh.py and pe.py for the sources), so a mistake in the reader shows
up as a disagreement with these fixtures instead of being copied into them.  C++ images with MSVC
RTTI (rtti.py) and the leak-triage expected values (triage.py) follow
/work/shared/docs/leak-triage.md.
"""

from . import structs
from .builder import (
    ARCHES,
    LISTS,
    PAGE,
    STREAM_ORDER,
    DumpBuilder,
    Layout,
    MemoryNotCaptured,
    MemoryRange,
    Module,
    Region,
    Thread,
    pattern,
)
from .process import PEB32, PEB64, TEB32, TEB64, PebLayout, Process, TebLayout, Wow64
from .heap import CONVENTIONS as HEAP_CONVENTIONS
from .heap import (
    NtHeap,
    Segment,
    StackTraceDatabase,
    VirtualBlock,
    busy_block_size,
    write_not_a_heap,
    write_segment_heap_stub,
)
from .heap_layouts import EPOCHS, HEAP_LAYOUTS, epoch_for_build, heap_layout
from .lfh import CONVENTIONS as LFH_CONVENTIONS
from .lfh import LFH_LAYOUTS, Lfh, lfh_key, lfh_model_for_build
from .pe import (
    CAPTURES,
    CORRUPT_EXPORTS,
    CodeView,
    PeImage,
    build_image,
    load_image,
    relocation_patches,
)
from .rtti import CxxClass, CxxModule, Decoy
from .triage import CONVENTIONS as TRIAGE_CONVENTIONS
from .triage import Data, Triage
from .ntdll import KEYS as NTDLL_KEYS
from .ntdll import add_ntdll_pdb_module, ntdll_facts
from .symbols import (
    ALLOCATOR_FUNCTIONS,
    ALLOCATOR_MODULES,
    TEXT_CONVENTIONS,
    PdbFunctions,
    Symbolizer,
    stack_report,
    tiny_pdb,
)
from .structs import (
    MEM_COMMIT,
    MEM_FREE,
    MEM_IMAGE,
    MEM_MAPPED,
    MEM_PRIVATE,
    MEM_RESERVE,
    PAGE_EXECUTE_READ,
    PAGE_EXECUTE_WRITECOPY,
    PAGE_NOACCESS,
    PAGE_READONLY,
    PAGE_READWRITE,
)

# scenarios.py registers stack_scenarios.STACK_SCENARIOS and
# ntdll_scenarios.NTDLL_SCENARIOS at its end, and both build on scenarios.py: importing
# scenarios first keeps that cycle working whichever module a caller imports.
from . import scenarios  # noqa: E402,F401

__all__ = [
    "ARCHES", "LISTS", "PAGE", "STREAM_ORDER", "DumpBuilder", "Layout", "MemoryNotCaptured",
    "MemoryRange", "Module", "Region", "Thread", "pattern", "structs",
    "MEM_COMMIT", "MEM_FREE", "MEM_IMAGE", "MEM_MAPPED", "MEM_PRIVATE", "MEM_RESERVE",
    "PAGE_EXECUTE_READ", "PAGE_EXECUTE_WRITECOPY", "PAGE_NOACCESS", "PAGE_READONLY",
    "PAGE_READWRITE", "PEB32", "PEB64", "TEB32", "TEB64", "PebLayout", "Process", "TebLayout",
    "Wow64", "EPOCHS", "HEAP_CONVENTIONS", "HEAP_LAYOUTS", "NtHeap", "Segment",
    "StackTraceDatabase", "VirtualBlock", "busy_block_size", "epoch_for_build", "heap_layout",
    "LFH_CONVENTIONS", "LFH_LAYOUTS", "Lfh", "lfh_key", "lfh_model_for_build",
    "write_not_a_heap", "write_segment_heap_stub",
    "CAPTURES", "CORRUPT_EXPORTS", "CodeView", "PeImage", "build_image", "load_image",
    "ALLOCATOR_FUNCTIONS", "ALLOCATOR_MODULES", "TEXT_CONVENTIONS", "PdbFunctions", "Symbolizer",
    "stack_report", "tiny_pdb", "relocation_patches",
    "NTDLL_KEYS", "add_ntdll_pdb_module", "ntdll_facts",
    "CxxClass", "CxxModule", "Decoy", "Data", "Triage", "TRIAGE_CONVENTIONS",
]
