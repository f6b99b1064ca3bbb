"""PageHeap: writes Windows page heaps (DPH; gflags +hpa, Application Verifier) into a DumpBuilder.

    v = Verifier(b, verifier_module, arch="x64", stack_db=db)
    nh = NtHeap(b, 0x21F4B200000, arch="x64", epoch="win10_1809", seed=1, ...)  # the NormalHeap
    ph = v.create_heap(0x21F4B000000, normal_heap=nh, heap_flags=0x2, create_stack=[...])
    ph.busy(0x123, stack=[...])                  # full-page block, busy
    ph.freed(0x40, stack=[...])                  # full-page block on the free list
    ph.normal_busy(0x20, stack=[...])            # light page heap block in the NormalHeap
    ph.normal_freed(0x48, stack=[...])           # held by the verifier: still a busy NT block
    v.finish(); db.finish()
    ph.expected(); ph.normal_expected()          # plain data, rows per docs/block-model.md

Every offset and constant below is transcribed from /work/shared/docs/windows-heap-layouts.md
("the doc"), section given in each comment, never from the project's reader.  The
RTL_AVL_TABLE / RTL_BALANCED_LINKS layout is not in the doc; it comes from the public WDK
header ntddk.h (field order and types, laid out with the natural alignment of each arch).
Where neither gives a value the builder chooses one; each choice is a CONVENTIONS entry
(which goes into the expected JSON).  Several of those choices follow the Windows Server
2003 ``base/ntos/rtl/heappage.c`` that the doc names as a page-heap source (its section 0);
they are conventions all the same: that file is NT 5.2 code, and Vista+ verifier.dll was
not read for the doc.

Memory layout of one page heap (a 1 MiB reservation, 64 KiB aligned, like the 2003 code):

    handle + 0x0000   fake _HEAP page, 0xEE except Flags/ForceFlags   (captured, read-only)
    handle + 0x1000   _DPH_HEAP_ROOT, then the node pool (0x4000 bytes; only the pages
                      holding the root and nodes are captured)
    handle + 0x5000   one read/write page (the 2003 code's critical section; not captured)
    handle + 0x6000   full-page blocks, one after another: nVirtualAccessSize committed
                      read/write bytes, then one PAGE_NOACCESS guard page (never captured)
    ...               the rest of the reservation: MEM_RESERVE
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import structs as fmt
from .builder import PAGE, DumpBuilder, Module, pattern
from .heap import Block, NtHeap, StackTraceDatabase

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------
FLG_HEAP_PAGE_ALLOCS = 0x02000000      # doc 3: NtGlobalFlag "hpa", page heap active
HEAP_FLAG_PAGE_ALLOCS = 0x01000000     # doc 11.4: in the fake _HEAP's Flags and ForceFlags
FAKE_HEAP_FILL = 0xEE                  # doc 11.4: the fake _HEAP page is filled with 0xEE
FAKE_HEAP_SLOT = 0xEEEEEEEE            # doc 11.4 walker test: what +0x08/+0x10 then reads
DPH_SIGNATURE = 0xFFEEDDCC             # doc 11.4 / 13: _DPH_HEAP_ROOT.Signature
ROOT_FROM_HANDLE = PAGE                # doc 11.4: root = handle + 0x1000 (HEAP_HANDLE_FROM_ROOT)

# Stamps, doc 11.4 table ("CONFIRMED").
FULL_BUSY_START, FULL_BUSY_END = 0xABCDBBBB, 0xDCBABBBB
FULL_FREE_START, FULL_FREE_END = 0xABCDBBBA, 0xDCBABBBA
NORMAL_BUSY_START, NORMAL_BUSY_END = 0xABCDAAAA, 0xDCBAAAAA
NORMAL_FREE_START, NORMAL_FREE_END = 0xABCDAAA9, 0xDCBAAAA9

# Fill bytes, doc 11.4: "C0/D0 for full-page blocks, E0/A0 for normal blocks, F0 for freed
# blocks".  Which byte of each pair fills the user bytes and which the bytes after them is
# not in the doc: the NT5 `!heap -p` help text the doc cites and the 2003 heappage.c
# (DPH_PAGE_BLOCK_INFIX / _SUFFIX, DPH_NORMAL_BLOCK_INFIX / _SUFFIX, DPH_FREE_BLOCK_INFIX)
# put the first byte in the user bytes of a block the program has not written and the
# second one after them.
FULL_USER_FILL, FULL_SUFFIX_FILL = 0xC0, 0xD0
NORMAL_USER_FILL, NORMAL_SUFFIX_FILL = 0xE0, 0xA0
FREED_FILL = 0xF0

# Not in the doc (conventions, see CONVENTIONS):
USER_ALIGNMENT = {"x86": 8, "x64": 16}    # public winnt.h MEMORY_ALLOCATION_ALIGNMENT
RESERVE_SIZE = 0x100000                   # 2003 heappage.c RESERVE_SIZE (initial reservation)
POOL_SIZE = 0x4000                        # 2003 heappage.c POOL_SIZE (root + first node pool)
NODE_POOL_OFFSET = 0x200                  # nodes start this far into the root page (convention)
FIRST_BLOCK_OFFSET = PAGE + POOL_SIZE + PAGE   # 2003: fake page, pool, critical-section page
SCRAMBLE = {"x86": 0x80000000, "x64": 0x8000000000000000}   # 2003 SCRAMBLE_POINTER


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DphRootLayout:
    """_DPH_HEAP_ROOT, doc 11.4 (x86 column "Win7", x64 column "1607, Win11"; [R2W], [NTK],
    [HST]).  Builds between 1607 and Win11 (e.g. 19041) are assumed equal: INFERRED."""

    signature: int
    heap_flags: int
    virtual_storage_head: int
    virtual_storage_tail: int
    busy_nodes_table: int         # RTL_AVL_TABLE, embedded
    free_head: int                # pFreeAllocationListHead
    free_tail: int                # pFreeAllocationListTail
    next_heap: int                # LIST_ENTRY
    normal_heap: int
    create_stack_trace: int


DPH_ROOT = {
    "x86": DphRootLayout(signature=0x00, heap_flags=0x04, virtual_storage_head=0x10,
                         virtual_storage_tail=0x14, busy_nodes_table=0x20, free_head=0x64,
                         free_tail=0x68, next_heap=0xA4, normal_heap=0xB4,
                         create_stack_trace=0xB8),
    "x64": DphRootLayout(signature=0x00, heap_flags=0x04, virtual_storage_head=0x18,
                         virtual_storage_tail=0x20, busy_nodes_table=0x38, free_head=0xB8,
                         free_tail=0xC0, next_heap=0x138, normal_heap=0x150,
                         create_stack_trace=0x158),
}


@dataclass(frozen=True)
class DphBlockLayout:
    """_DPH_HEAP_BLOCK, doc 11.4 ("AVL node; TableLinks at 0"); [R2W], [NTK], [HST]."""

    table_links: int              # RTL_BALANCED_LINKS; its first pointer is the free-list link
    user_allocation: int
    virtual_block: int
    virtual_block_size: int
    virtual_access_size: int
    user_requested_size: int
    user_actual_size: int
    user_value: int
    user_flags: int
    stack_trace: int              # _RTL_STACK_TRACE_ENTRY; count from Depth (doc 11.1, 12.8)
    size: int


DPH_BLOCK = {
    "x86": DphBlockLayout(0x00, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x40),
    "x64": DphBlockLayout(0x00, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x58, 0x60, 0x80),
}


@dataclass(frozen=True)
class DphInfoLayout:
    """_DPH_BLOCK_INFORMATION, doc 11.4 ("immediately before pUserAllocation"); [R2W],
    [NTK], SkyLined.  FreeQueue (LIST_ENTRY) shares its first bytes with the u16 TraceIndex."""

    start_stamp: int
    heap: int
    requested_size: int
    actual_size: int
    free_queue: int               # also TraceIndex (u16)
    stack_trace: int
    end_stamp: int
    size: int


DPH_INFO = {
    "x86": DphInfoLayout(0x00, 0x04, 0x08, 0x0C, 0x10, 0x18, 0x1C, 0x20),
    "x64": DphInfoLayout(0x00, 0x08, 0x10, 0x18, 0x20, 0x30, 0x3C, 0x40),
}


@dataclass(frozen=True)
class AvlLayout:
    """RTL_BALANCED_LINKS and RTL_AVL_TABLE from the public WDK header ntddk.h (not in the
    doc).  RTL_BALANCED_LINKS { Parent; LeftChild; RightChild; CHAR Balance; UCHAR
    Reserved[3]; }  RTL_AVL_TABLE { RTL_BALANCED_LINKS BalancedRoot; PVOID OrderedPointer;
    ULONG WhichOrderedElement; ULONG NumberGenericTableElements; ULONG DepthOfTree;
    PRTL_BALANCED_LINKS RestartKey; ULONG DeleteCount; CompareRoutine; AllocateRoutine;
    FreeRoutine; PVOID TableContext; }, natural alignment.  Cross-check against the doc:
    BusyNodesTable + sizeof(RTL_AVL_TABLE) stays below pFreeAllocationListHead
    (x86 0x20 + 0x38 = 0x58 <= 0x64, x64 0x38 + 0x68 = 0xa0 <= 0xb8)."""

    parent: int
    left: int
    right: int
    balance: int
    links_size: int
    ordered_pointer: int
    which_ordered_element: int
    number_generic_table_elements: int
    depth_of_tree: int
    restart_key: int
    delete_count: int
    compare_routine: int
    allocate_routine: int
    free_routine: int
    table_context: int
    table_size: int


AVL = {
    "x86": AvlLayout(0x00, 0x04, 0x08, 0x0C, 0x10, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x28,
                     0x2C, 0x30, 0x34, 0x38),
    "x64": AvlLayout(0x00, 0x08, 0x10, 0x18, 0x20, 0x20, 0x28, 0x2C, 0x30, 0x38, 0x40, 0x48,
                     0x50, 0x58, 0x60, 0x68),
}

# The fake _HEAP: Flags / ForceFlags at the doc 4 offsets (x86 0x40/0x44 doc 4.2, x64
# 0x70/0x74 doc 4.1); that the Vista+ fake page uses them is INFERRED (doc 11.4, 13).
# The segment-signature slot a walker reads first: +0x08 x86 / +0x10 x64 (doc 5, 12.1).
FAKE_HEAP_FLAGS = {"x86": (0x40, 0x44), "x64": (0x70, 0x74)}
SEGMENT_SIGNATURE_SLOT = {"x86": 0x08, "x64": 0x10}


CONVENTIONS = {
    "discovery": "doc 11.4 walker test: the handle's page is the fake _HEAP (all 0xEE, so "
                 "+0x08/+0x10 reads 0xEEEEEEEE; Flags and ForceFlags at the doc 4 offsets, x86 "
                 "0x40/0x44, x64 0x70/0x74 (INFERRED for Vista+), = HeapFlags | 0x01000000); "
                 "the _DPH_HEAP_ROOT (signature 0xFFEEDDCC) is at handle + 0x1000. That Vista+ "
                 "verifier.dll hands out this fake page at all is UNCONFIRMED in the doc; these "
                 "fixtures assume it",
    "root_fields": "written: Signature, HeapFlags, pVirtualStorageListHead/Tail, "
                   "BusyNodesTable, pFreeAllocationListHead/Tail, NextHeap, NormalHeap, "
                   "CreateStackTrace (doc 11.4 offsets; x64 column read for 1607 and Win11, "
                   "19041 INFERRED between them). Every other byte of the root is 0",
    "avl_table": "BusyNodesTable is an RTL_AVL_TABLE (layout from public ntddk.h): "
                 "BalancedRoot.Parent = &BalancedRoot, LeftChild = 0, RightChild = the tree's "
                 "root node (where the Windows Research Kernel / ReactOS AVL code keeps it; the "
                 "doc's walk from the embedded links following both children does not depend "
                 "on it); a perfectly balanced binary search tree of the busy _DPH_HEAP_BLOCKs "
                 "keyed by pUserAllocation (in-order = ascending address), TableLinks at node "
                 "+0, Parent pointers correct, Balance = height(right) - height(left); "
                 "NumberGenericTableElements = busy count, DepthOfTree = tree height in "
                 "levels; Compare/Allocate/FreeRoutine point into verifier.dll's code; "
                 "OrderedPointer, WhichOrderedElement, RestartKey, DeleteCount, TableContext 0",
    "free_list": "freed full-page nodes: pFreeAllocationListHead -> ... -> "
                 "pFreeAllocationListTail, singly linked through the node's first pointer "
                 "(offset 0, where TableLinks.Parent lies: the 2003 heappage.c union member "
                 "pNextAlloc), in free order (FIFO), the tail's link NULL; Head = Tail = 0 when "
                 "empty. Their LeftChild/RightChild/Balance are 0",
    "virtual_storage": "pVirtualStorageListHead = Tail = one node describing the heap's 1 MiB "
                       "reservation (pVirtualBlock = handle, nVirtualBlockSize = 0x100000, "
                       "link 0); it is in neither the tree nor the free list",
    "node_pool": "nodes live in the root's pool: the virtual-storage node at root + 0x200, "
                 "then one node per full-page block in allocation order (sizeof 0x40 / 0x80)",
    "next_heap": "the page-heap roots form a circular LIST_ENTRY through "
                 "_DPH_HEAP_ROOT.NextHeap, in creation order, whose head lies in verifier.dll's "
                 "writable data page (the doc's verifier!AVrfpDphPageHeapList; finding it needs "
                 "symbols, so a walker starts from a ProcessHeaps entry and skips the head by "
                 "address)",
    "full_page_geometry": "per block: nVirtualAccessSize = round_up(requested + "
                          "sizeof(_DPH_BLOCK_INFORMATION), 0x1000); nVirtualBlockSize = access + "
                          "0x1000 (the guard page); nUserActualSize = round_up(requested, 8 x86 / "
                          "16 x64 (winnt.h MEMORY_ALLOCATION_ALIGNMENT)); pUserAllocation = "
                          "pVirtualBlock + access - actual, so the user bytes end 0..7 / 0..15 "
                          "bytes before the guard page (2003 heappage.c). Blocks are carved one "
                          "after another from handle + 0x6000",
    "full_page_bytes": "[pVirtualBlock, block information) is 0 (SkyLined's single-source "
                       "virtual-block header is NOT written); the _DPH_BLOCK_INFORMATION: "
                       "stamps, Heap = the _DPH_HEAP_ROOT, RequestedSize = ActualSize = the "
                       "request (the 2003 code passes the request as ActualSize), TraceIndex "
                       "(u16 at FreeQueue) = the trace entry's Index, StackTrace = the node's; "
                       "user bytes C0 (never written by the program) or pattern(user, size, "
                       "tag); D0 from the end of the request to the guard page",
    "guard_page": "the page after nVirtualAccessSize: MEM_COMMIT, PAGE_NOACCESS, never captured "
                  "(2003 heappage.c commits the whole block and protects that page)",
    "freed_full_page": "a freed block's pages are decommitted (MEM_RESERVE, not captured: 2003 "
                       "heappage.c decommits access + guard); its node keeps every field, and "
                       "StackTrace is the free stack. One block per heap (marked "
                       "pages_still_committed) keeps its access pages committed and captured, "
                       "with the freed stamps 0xABCDBBBA/0xDCBABBBA and F0 user bytes: a "
                       "convention so those stamps occur in a fixture, not known Windows "
                       "behaviour",
    "full_page_capture": "busy blocks are captured whole, except capture='ends' (large blocks): "
                         "only the pages holding the block information and the last access page "
                         "are in the dump, the others MEM_COMMIT but absent",
    "normal_blocks": "light page heap block = a busy NormalHeap back-end block of "
                     "requested + sizeof(_DPH_BLOCK_INFORMATION) + 8 / 16 bytes (2003 heappage.c "
                     "ActualSize) whose user data is: _DPH_BLOCK_INFORMATION (stamps, Heap = root "
                     "XOR 0x80000000 / 0x8000000000000000 as 2003 SCRAMBLE_POINTER does, "
                     "RequestedSize, ActualSize = the back-end request, FreeQueue 0 with "
                     "TraceIndex = the entry's Index in its first u16, StackTrace), the user "
                     "bytes (E0 or pattern), then 8 / 16 bytes of A0",
    "held_freed_normal": "a normal block the program freed but the verifier holds: still a busy "
                         "back-end block; stamps 0xABCDAAA9/0xDCBAAAA9, user bytes F0, "
                         "StackTrace = the free stack, FreeQueue linked into one circular "
                         "delayed-free LIST_ENTRY (in free order, all page heaps; the links "
                         "overwrite TraceIndex) whose head lies in verifier.dll's data page next "
                         "to the page-heap list head (2003 heappage.c's delayed free queue)",
    "unstamped_normal_block": "a busy NormalHeap block whose user data does not start with a "
                              "stamp (one per standard scenario, e.g. memory the verifier "
                              "allocates for itself) stays a plain backend row (is_allocation "
                              "true)",
    "normal_rows": "docs/block-model.md: a stamped busy block is a dph_normal container "
                   "(is_allocation false; user_address/user_size/unused_bytes keep the back-end "
                   "values) followed by overhead [block, U), dph_normal_block [U, U + "
                   "RequestedSize) (U = back-end user data + 0x20 x86 / + 0x40 x64; busy per "
                   "stamp; a 0-byte request gives a 0-byte row) and overhead [U + RequestedSize, "
                   "block + size); overhead rows: not busy (bookkeeping, as in lfh.py), no user data, "
                   "flags/unused 0",
    "row_keys": "rows carry parent (address of the parent row, 0 at top level), level, "
                "is_allocation, not_decoded (null); page-heap rows: segment 0",
    "traces": "page-heap traces (node, block information, CreateStackTrace) are "
              "_RTL_STACK_TRACE_ENTRYs whose Depth is the frame count and whose Index is a "
              "database index: counting from 1 (from 5 in pageheap_not_captured_x64) in order "
              "of first use, skipping the value equal to Depth, so it lies below Depth for some "
              "entries and above for others (doc 11.1 quirk: readers must use Depth for page "
              "heap); identical stacks share one entry (TraceCount = users)",
    "ust_in_normal_heap": "with +ust the NormalHeap's blocks have the doc 11.3 header; its "
                          "trace pointer is an ordinary +ust entry (Index = Depth = frame count) "
                          "holding the back-end allocation's stack (ntdll / verifier frames), "
                          "reported as the dph_normal container's stack_trace_entry; the "
                          "dph_normal_block child reports the block information's StackTrace",
    "process_heaps": "under +hpa the process heap itself is a page heap (ProcessHeaps[0] and "
                     "PEB.ProcessHeap are a page-heap handle). Whether a NormalHeap is in "
                     "ProcessHeaps is UNCONFIRMED (doc 11.4, 13): pageheap_two_heaps_x64 lists "
                     "one (before its page heap, where RtlCreateHeap would add it while the page "
                     "heap is being created) and not the other; the other scenarios list none. A "
                     "listed NormalHeap has ProcessHeapsListIndex = its index + 1, an unlisted "
                     "one 0",
    "stack_trace_entry_of_freed": "a freed full-page node's StackTrace and a held-freed normal "
                                  "block's StackTrace are the free stacks (2003 heappage.c "
                                  "replaces them on free)",
}


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def _pfmt(arch: str) -> str:
    return "<I" if arch == "x86" else "<Q"


# ---------------------------------------------------------------------------
@dataclass
class FullPageBlock:
    """One _DPH_HEAP_BLOCK of a full-page allocation."""

    index: int                    # allocation order within the heap
    node: int
    virtual_block: int
    virtual_block_size: int
    virtual_access_size: int
    user_allocation: int
    requested: int
    actual: int
    busy: bool
    trace: int
    frames: tuple[int, ...]
    user_fill: int | None         # None: pattern(user_allocation, requested, tag)
    tag: int
    capture: str                  # "full" | "ends" | "none"
    pages_committed: bool         # access pages still committed (busy, or the freed exception)
    balance: int = 0
    parent: int = 0
    left: int = 0
    right: int = 0
    next_alloc: int = 0

    @property
    def guard(self) -> int:
        return self.virtual_block + self.virtual_access_size


@dataclass
class NormalBlock:
    """One light-page-heap block: a NormalHeap back-end block with a _DPH_BLOCK_INFORMATION."""

    block: Block
    requested: int
    busy: bool
    trace: int
    frames: tuple[int, ...]
    user_fill: int | None
    tag: int
    info: int = 0                 # back-end user data = the _DPH_BLOCK_INFORMATION
    user: int = 0                 # U: what the program got
    free_order: int = -1          # position in the delayed-free queue (held-freed only)
    queue_flink: int = 0
    queue_blink: int = 0


# ---------------------------------------------------------------------------
class Verifier:
    """The process-wide part: verifier.dll's data page (page-heap list head, delayed-free
    queue head), the page-heap trace entries, and the page heaps in creation order."""

    def __init__(self, builder: DumpBuilder, module: Module, *, arch: str,
                 stack_db: StackTraceDatabase, data_rva: int, list_head_offset: int = 0x3C0,
                 delayed_free_offset: int = 0x3E0, first_index: int = 1,
                 memory_list: str = "mem64"):
        if arch not in DPH_ROOT:
            raise ValueError(f"arch must be one of {tuple(DPH_ROOT)}")
        if stack_db.arch != arch:
            raise ValueError("stack database arch differs")
        if data_rva % PAGE:
            raise ValueError("data_rva must be page aligned")
        self.b = builder
        self.module = module
        self.arch = arch
        self.ptr = 4 if arch == "x86" else 8
        self.db = stack_db
        self.data_page = module.base + data_rva
        self.list_head = self.data_page + list_head_offset
        self.delayed_free_head = self.data_page + delayed_free_offset
        self.memory_list = memory_list
        self.heaps: list[PageHeap] = []
        self._traces: dict[tuple[int, ...], int] = {}
        self._next_index = first_index
        self._free_order = 0
        self.finished = False

    def code(self, rva: int) -> int:
        return self.module.base + rva

    def trace(self, frames: Sequence[int]) -> int:
        """The page-heap trace entry for ``frames``: Depth = frame count, Index a database
        index that differs from it (doc 11.1 quirk)."""
        key = tuple(int(f) for f in frames)
        hit = self._traces.get(key)
        if hit is not None:
            self.db.ref(hit)
            return hit
        idx = self._next_index
        if idx == len(key):
            idx += 1
        self._next_index = idx + 1
        at = self.db.add(key, index=idx)
        self._traces[key] = at
        return at

    def create_heap(self, handle: int, *, normal_heap: NtHeap, heap_flags: int,
                    create_stack: Sequence[int], capture_root: bool = True,
                    tag: int = 0xD1) -> "PageHeap":
        if self.finished:
            raise RuntimeError("verifier data already written")
        ph = PageHeap(self, handle, normal_heap=normal_heap, heap_flags=heap_flags,
                      create_stack=create_stack, capture_root=capture_root, tag=tag)
        self.heaps.append(ph)
        return ph

    def _next_free_order(self) -> int:
        self._free_order += 1
        return self._free_order - 1

    def delayed_free_queue(self) -> list[NormalBlock]:
        held = [nb for ph in self.heaps for nb in ph.normal_blocks if not nb.busy]
        return sorted(held, key=lambda nb: nb.free_order)

    def finish(self) -> None:
        """Write every page heap (and finish their NormalHeaps), then verifier's data page."""
        if self.finished:
            raise RuntimeError("finish() called twice")
        self.finished = True
        L = DPH_INFO[self.arch]
        # Delayed-free queue: circular LIST_ENTRY through Info.FreeQueue.
        queue = self.delayed_free_queue()
        nodes = [nb.info + L.free_queue for nb in queue]
        chain = [self.delayed_free_head] + nodes + [self.delayed_free_head]
        for i, nb in enumerate(queue):
            nb.queue_blink = chain[i]
            nb.queue_flink = chain[i + 2]
        for ph in self.heaps:
            ph._finish_normal()
        # NextHeap: circular LIST_ENTRY through the roots, creation order.
        links = [ph.root + DPH_ROOT[self.arch].next_heap for ph in self.heaps]
        chain = [self.list_head] + links + [self.list_head]
        for i, ph in enumerate(self.heaps):
            ph._write(flink=chain[i + 2], blink=chain[i])
        page = bytearray(PAGE)
        pf = _pfmt(self.arch)
        off = self.list_head - self.data_page
        struct.pack_into(pf, page, off, chain[1])
        struct.pack_into(pf, page, off + self.ptr, chain[-2])
        off = self.delayed_free_head - self.data_page
        struct.pack_into(pf, page, off, nodes[0] if nodes else self.delayed_free_head)
        struct.pack_into(pf, page, off + self.ptr, nodes[-1] if nodes else self.delayed_free_head)
        self.b.add_memory(self.data_page, bytes(page), list=self.memory_list)

    def expected(self) -> dict:
        R = DPH_ROOT[self.arch]
        out = {
            "module": self.module.name,
            "module_base": self.module.base,
            "data_page": self.data_page,
            "head": self.list_head,
            "head_note": "verifier!AVrfpDphPageHeapList (doc 11.4) in this builder's layout; "
                         "a symbol-less walker does not know this address",
            "roots": [ph.root for ph in self.heaps],
            "handles": [ph.handle for ph in self.heaps],
            "next_heap_offset": R.next_heap,
        }
        reached: list[int] = []
        stop = None
        for ph in self.heaps:
            if not ph.capture_root:
                stop = ph.root + R.next_heap
                break
            reached.append(ph.root)
        out["walk_from_head"] = {"roots": reached,
                                 "unreadable_link": stop}
        q = self.delayed_free_queue()
        out["delayed_free_queue"] = {"head": self.delayed_free_head,
                                     "entries": [nb.info for nb in q],
                                     "links_at": DPH_INFO[self.arch].free_queue}
        return out


# ---------------------------------------------------------------------------
class PageHeap:
    """One page heap: fake _HEAP page, _DPH_HEAP_ROOT, nodes, full-page blocks, and the
    light-page-heap blocks it puts in its NormalHeap (an NtHeap the caller made)."""

    def __init__(self, verifier: Verifier, handle: int, *, normal_heap: NtHeap, heap_flags: int,
                 create_stack: Sequence[int], capture_root: bool = True, tag: int = 0xD1):
        if handle % 0x10000:
            raise ValueError("a page heap's reservation starts on a 64 KiB boundary")
        if normal_heap.arch != verifier.arch:
            raise ValueError("NormalHeap arch differs")
        if normal_heap.finished:
            raise ValueError("the NormalHeap must not be finished yet")
        self.v = verifier
        self.b = verifier.b
        self.arch = verifier.arch
        self.ptr = verifier.ptr
        self.pf = _pfmt(self.arch)
        self.handle = handle
        self.root = handle + ROOT_FROM_HANDLE
        self.reserve = RESERVE_SIZE
        self.normal_heap = normal_heap
        self.heap_flags = heap_flags
        self.capture_root = capture_root
        self.tag = tag & 0xFF
        self.align = USER_ALIGNMENT[self.arch]
        self.R, self.N, self.I, self.A = (DPH_ROOT[self.arch], DPH_BLOCK[self.arch],
                                          DPH_INFO[self.arch], AVL[self.arch])
        self.create_frames = tuple(int(f) for f in create_stack)
        self.create_trace = verifier.trace(self.create_frames)
        self.pool = self.root + NODE_POOL_OFFSET
        self.storage_node = self.pool
        self.blocks: list[FullPageBlock] = []
        self.normal_blocks: list[NormalBlock] = []
        self.cursor = handle + FIRST_BLOCK_OFFSET
        self.tree_root = 0
        self.tree_height = 0
        self.finished = False

    # ------------------------------------------------------------ full-page blocks
    def _place(self, requested: int, busy: bool, stack: Sequence[int], fill: bool,
               capture: str, pages_committed: bool) -> FullPageBlock:
        if self.finished:
            raise RuntimeError("page heap already written")
        if requested < 0:
            raise ValueError("negative request")
        access = _align(requested + self.I.size, PAGE)
        vb_size = access + PAGE
        actual = _align(requested, self.align)
        vb = self.cursor
        if vb + vb_size > self.handle + self.reserve:
            raise ValueError("page heap reservation is full")
        self.cursor += vb_size
        node = self.pool + (1 + len(self.blocks)) * self.N.size
        if node + self.N.size > self.root + POOL_SIZE:
            raise ValueError("node pool is full")
        frames = tuple(int(f) for f in stack)
        blk = FullPageBlock(index=len(self.blocks), node=node, virtual_block=vb,
                            virtual_block_size=vb_size, virtual_access_size=access,
                            user_allocation=vb + access - actual, requested=requested,
                            actual=actual, busy=busy, trace=self.v.trace(frames), frames=frames,
                            user_fill=(FULL_USER_FILL if busy else FREED_FILL) if fill else None,
                            tag=self.tag, capture=capture if pages_committed else "none",
                            pages_committed=pages_committed)
        self.blocks.append(blk)
        return blk

    def busy(self, requested: int, stack: Sequence[int], *, fill: bool = True,
             capture: str = "full") -> FullPageBlock:
        """A busy full-page block.  fill=False: the program wrote pattern() bytes over the
        C0 fill.  capture="ends": only the pages with the block information and the last
        access page are in the dump."""
        if capture not in ("full", "ends"):
            raise ValueError("capture is 'full' or 'ends'")
        return self._place(requested, True, stack, fill, capture, True)

    def freed(self, requested: int, stack: Sequence[int], *,
              pages_still_committed: bool = False) -> FullPageBlock:
        """A freed full-page block on the free list; ``stack`` is the free stack.  Its pages
        are decommitted unless pages_still_committed (then captured, freed stamps, F0)."""
        return self._place(requested, False, stack, True, "full", pages_still_committed)

    # ------------------------------------------------------------ light page heap
    def _normal(self, requested: int, busy: bool, stack: Sequence[int], fill: bool,
                ust_stack: Sequence[int] | None) -> NormalBlock:
        if self.finished:
            raise RuntimeError("page heap already written")
        nh = self.normal_heap
        if nh.ust and not ust_stack:
            raise ValueError("a +ust NormalHeap block needs ust_stack (the back-end allocation's)")
        if ust_stack and not nh.ust:
            raise ValueError("ust_stack given for a NormalHeap without +ust")
        backend = requested + self.I.size + self.align
        seg = nh.segments[0]
        blk = seg.busy(backend, stack=ust_stack, data=bytes(backend))
        frames = tuple(int(f) for f in stack)
        nb = NormalBlock(block=blk, requested=requested, busy=busy, trace=self.v.trace(frames),
                         frames=frames,
                         user_fill=(NORMAL_USER_FILL if busy else FREED_FILL) if fill else None,
                         tag=self.tag)
        nb.info = nh._user(blk)[0]
        nb.user = nb.info + self.I.size
        if not busy:
            nb.free_order = self.v._next_free_order()
        self.normal_blocks.append(nb)
        return nb

    def normal_busy(self, requested: int, stack: Sequence[int], *, fill: bool = True,
                    ust_stack: Sequence[int] | None = None) -> NormalBlock:
        """A busy light-page-heap block (E0 user bytes, or pattern() with fill=False)."""
        return self._normal(requested, True, stack, fill, ust_stack)

    def normal_freed(self, requested: int, stack: Sequence[int], *,
                     ust_stack: Sequence[int] | None = None) -> NormalBlock:
        """A block the program freed and the verifier still holds (``stack``: free stack)."""
        return self._normal(requested, False, stack, True, ust_stack)

    # ------------------------------------------------------------ derived
    @property
    def busy_blocks(self) -> list[FullPageBlock]:
        return [k for k in self.blocks if k.busy]

    @property
    def freed_blocks(self) -> list[FullPageBlock]:
        return [k for k in self.blocks if not k.busy]

    def _build_tree(self) -> None:
        nodes = sorted(self.busy_blocks, key=lambda k: k.user_allocation)

        def build(lo: int, hi: int, parent: int) -> tuple[int, int]:
            if lo >= hi:
                return 0, 0
            mid = (lo + hi) // 2
            k = nodes[mid]
            k.parent = parent
            k.left, hl = build(lo, mid, k.node)
            k.right, hr = build(mid + 1, hi, k.node)
            k.balance = hr - hl
            assert -1 <= k.balance <= 1
            return k.node, 1 + max(hl, hr)

        table = self.root + self.R.busy_nodes_table
        self.tree_root, self.tree_height = build(0, len(nodes), table)

    def _info(self, *, start: int, end: int, heap_field: int, requested: int, actual: int,
              trace: int, trace_index: int | None, flink: int = 0, blink: int = 0) -> bytes:
        I, pf = self.I, self.pf
        buf = bytearray(I.size)
        struct.pack_into("<I", buf, I.start_stamp, start)
        struct.pack_into(pf, buf, I.heap, heap_field)
        struct.pack_into(pf, buf, I.requested_size, requested)
        struct.pack_into(pf, buf, I.actual_size, actual)
        struct.pack_into(pf, buf, I.free_queue, flink)
        struct.pack_into(pf, buf, I.free_queue + self.ptr, blink)
        if trace_index is not None:
            struct.pack_into("<H", buf, I.free_queue, trace_index)
        struct.pack_into(pf, buf, I.stack_trace, trace)
        struct.pack_into("<I", buf, I.end_stamp, end)
        return bytes(buf)

    def _trace_index(self, trace: int) -> int:
        e = self.v.db.entry(trace)
        return e.index if e.index is not None else len(e.frames)

    def _user_bytes(self, address: int, n: int, fill: int | None, tag: int) -> bytes:
        return bytes([fill]) * n if fill is not None else pattern(address, n, tag)

    def _finish_normal(self) -> None:
        """Give every light-page-heap block its final bytes, then finish the NormalHeap."""
        for nb in self.normal_blocks:
            if nb.busy:
                info = self._info(start=NORMAL_BUSY_START, end=NORMAL_BUSY_END,
                                  heap_field=self.root ^ SCRAMBLE[self.arch],
                                  requested=nb.requested, actual=nb.block.request,
                                  trace=nb.trace, trace_index=self._trace_index(nb.trace))
            else:
                info = self._info(start=NORMAL_FREE_START, end=NORMAL_FREE_END,
                                  heap_field=self.root ^ SCRAMBLE[self.arch],
                                  requested=nb.requested, actual=nb.block.request,
                                  trace=nb.trace, trace_index=None,
                                  flink=nb.queue_flink, blink=nb.queue_blink)
            data = (info + self._user_bytes(nb.user, nb.requested, nb.user_fill, nb.tag)
                    + bytes([NORMAL_SUFFIX_FILL]) * self.align)
            assert len(data) == nb.block.request
            nb.block.data = data
        if not self.normal_heap.finished:
            self.normal_heap.finish()

    # ------------------------------------------------------------ writing
    def _block_pages(self, k: FullPageBlock) -> list[tuple[int, int]]:
        """Captured [start, end) spans of a block's access area."""
        if k.capture == "none":
            return []
        lo, hi = k.virtual_block, k.guard
        if k.capture == "full":
            return [(lo, hi)]
        info = k.user_allocation - self.I.size
        pages = {info & ~(PAGE - 1), (k.user_allocation - 1) & ~(PAGE - 1), hi - PAGE}
        spans: list[tuple[int, int]] = []
        for pg in sorted(pages):
            if spans and spans[-1][1] == pg:
                spans[-1] = (spans[-1][0], pg + PAGE)
            else:
                spans.append((pg, pg + PAGE))
        return spans

    def _write(self, *, flink: int, blink: int) -> None:
        if self.finished:
            raise RuntimeError("page heap already written")
        self.finished = True
        self.next_flink, self.next_blink = flink, blink
        R, N, A, pf, ptr = self.R, self.N, self.A, self.pf, self.ptr
        self._build_tree()
        mem = self.v.memory_list

        # Fake _HEAP page (doc 11.4).
        fake = bytearray([FAKE_HEAP_FILL]) * PAGE
        fo, ffo = FAKE_HEAP_FLAGS[self.arch]
        struct.pack_into("<I", fake, fo, self.heap_flags | HEAP_FLAG_PAGE_ALLOCS)
        struct.pack_into("<I", fake, ffo, self.heap_flags | HEAP_FLAG_PAGE_ALLOCS)
        self.b.add_memory(self.handle, bytes(fake), list=mem)

        # Root + node pool.
        pool = bytearray(POOL_SIZE)

        def put(address: int, form: str, value: int) -> None:
            struct.pack_into(form, pool, address - self.root, value)

        r = self.root
        put(r + R.signature, "<I", DPH_SIGNATURE)
        put(r + R.heap_flags, "<I", self.heap_flags)
        put(r + R.virtual_storage_head, pf, self.storage_node)
        put(r + R.virtual_storage_tail, pf, self.storage_node)
        t = r + R.busy_nodes_table
        put(t + A.parent, pf, t)
        put(t + A.left, pf, 0)
        put(t + A.right, pf, self.tree_root)
        put(t + A.number_generic_table_elements, "<I", len(self.busy_blocks))
        put(t + A.depth_of_tree, "<I", self.tree_height)
        put(t + A.compare_routine, pf, self.v.code(0x1E2A0))
        put(t + A.allocate_routine, pf, self.v.code(0x1E310))
        put(t + A.free_routine, pf, self.v.code(0x1E350))
        freed = self.freed_blocks
        for a, b in zip(freed, freed[1:]):
            a.next_alloc = b.node
        put(r + R.free_head, pf, freed[0].node if freed else 0)
        put(r + R.free_tail, pf, freed[-1].node if freed else 0)
        put(r + R.next_heap, pf, flink)
        put(r + R.next_heap + ptr, pf, blink)
        put(r + R.normal_heap, pf, self.normal_heap.address)
        put(r + R.create_stack_trace, pf, self.create_trace)
        # Virtual-storage node.
        sn = self.storage_node
        put(sn + N.virtual_block, pf, self.handle)
        put(sn + N.virtual_block_size, pf, self.reserve)
        for k in self.blocks:
            n = k.node
            if k.busy:
                put(n + A.parent, pf, k.parent)
                put(n + A.left, pf, k.left)
                put(n + A.right, pf, k.right)
                put(n + A.balance, "<b", k.balance)
            else:
                put(n + N.table_links, pf, k.next_alloc)     # pNextAlloc
            put(n + N.user_allocation, pf, k.user_allocation)
            put(n + N.virtual_block, pf, k.virtual_block)
            put(n + N.virtual_block_size, pf, k.virtual_block_size)
            put(n + N.virtual_access_size, pf, k.virtual_access_size)
            put(n + N.user_requested_size, pf, k.requested)
            put(n + N.user_actual_size, pf, k.actual)
            put(n + N.user_value, pf, 0)
            put(n + N.user_flags, "<I", 0)
            put(n + N.stack_trace, pf, k.trace)
        last_node = (self.blocks[-1].node if self.blocks else sn) + N.size
        self.root_captured_size = _align(last_node - r, PAGE)
        if self.capture_root:
            self.b.add_memory(r, bytes(pool[:self.root_captured_size]), list=mem)

        # Full-page blocks.
        for k in self.blocks:
            spans = self._block_pages(k)
            if not spans:
                continue
            area = bytearray(k.virtual_access_size)
            info_at = k.user_allocation - self.I.size
            info = self._info(start=FULL_BUSY_START if k.busy else FULL_FREE_START,
                              end=FULL_BUSY_END if k.busy else FULL_FREE_END,
                              heap_field=self.root, requested=k.requested, actual=k.requested,
                              trace=k.trace, trace_index=self._trace_index(k.trace))
            o = info_at - k.virtual_block
            area[o:o + len(info)] = info
            o = k.user_allocation - k.virtual_block
            area[o:o + k.requested] = self._user_bytes(k.user_allocation, k.requested,
                                                       k.user_fill, k.tag)
            area[o + k.requested:] = bytes([FULL_SUFFIX_FILL]) * (len(area) - o - k.requested)
            for lo, hi in spans:
                self.b.add_memory(lo, bytes(area[lo - k.virtual_block:hi - k.virtual_block]),
                                  list=mem)

        # Regions: one reservation, adjacent pages with equal attributes merged.
        RW, NA, RO = fmt.PAGE_READWRITE, fmt.PAGE_NOACCESS, fmt.PAGE_READONLY
        C, Rs = fmt.MEM_COMMIT, fmt.MEM_RESERVE
        spans2: list[tuple[int, int, int, int]] = [
            (self.handle, self.handle + PAGE, C, RO),
            (self.root, self.handle + FIRST_BLOCK_OFFSET, C, RW),
        ]
        for k in self.blocks:
            if k.pages_committed:
                spans2.append((k.virtual_block, k.guard, C, RW))
                spans2.append((k.guard, k.guard + PAGE, C, NA))
            else:
                spans2.append((k.virtual_block, k.virtual_block + k.virtual_block_size, Rs, 0))
        spans2.append((self.cursor, self.handle + self.reserve, Rs, 0))
        merged: list[list[int]] = []
        for lo, hi, st, pr in spans2:
            if hi <= lo:
                continue
            if merged and merged[-1][1] == lo and merged[-1][2:] == [st, pr]:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi, st, pr])
        for lo, hi, st, pr in merged:
            self.b.add_region(lo, hi - lo, state=st, type=fmt.MEM_PRIVATE, protect=pr,
                              allocation_base=self.handle, allocation_protect=NA)

    # ------------------------------------------------------------ expected
    def layout(self) -> dict:
        R, N, I, A = self.R, self.N, self.I, self.A
        return {
            "root": {k: getattr(R, k) for k in R.__dataclass_fields__},
            "node": {k: getattr(N, k) for k in N.__dataclass_fields__},
            "block_information": {k: getattr(I, k) for k in I.__dataclass_fields__},
            "avl": {k: getattr(A, k) for k in A.__dataclass_fields__},
            "fake_heap_flags": FAKE_HEAP_FLAGS[self.arch][0],
            "fake_heap_force_flags": FAKE_HEAP_FLAGS[self.arch][1],
            "segment_signature_slot": SEGMENT_SIGNATURE_SLOT[self.arch],
            "user_alignment": self.align,
        }

    def _row(self, k: FullPageBlock) -> dict:
        spans = self._block_pages(k)
        e = self.v.db.entry(k.trace)
        return {
            "address": k.virtual_block,
            "segment": 0,
            "size": k.virtual_block_size,
            "user_address": k.user_allocation,
            "user_size": k.requested,
            "busy": k.busy,
            "kind": "dph_block",
            "flags": 0,
            "unused_bytes": k.virtual_block_size - k.requested,
            "stack_trace_entry": k.trace,
            "frames": list(e.frames),
            "parent": 0,
            "level": 0,
            "is_allocation": k.busy,
            "not_decoded": None,
            # details
            "node": k.node,
            "virtual_access_size": k.virtual_access_size,
            "user_actual_size": k.actual,
            "guard_page": k.guard,
            "block_information": k.user_allocation - self.I.size,
            "start_stamp": FULL_BUSY_START if k.busy else FULL_FREE_START,
            "end_stamp": FULL_BUSY_END if k.busy else FULL_FREE_END,
            "stamps_captured": bool(spans),
            "pages_still_committed": (not k.busy) and k.pages_committed,
            "captured": [{"address": lo, "size": hi - lo} for lo, hi in spans],
            "user_data": ({"fill": k.user_fill} if k.user_fill is not None
                          else {"pattern_tag": k.tag}),
            "suffix": {"address": k.user_allocation + k.requested,
                       "size": k.guard - k.user_allocation - k.requested,
                       "fill": FULL_SUFFIX_FILL},
            "trace_depth": len(e.frames),
            "trace_index": self._trace_index(k.trace),
            "tree": ({"parent": k.parent, "left": k.left, "right": k.right,
                      "balance": k.balance} if k.busy else None),
            "next_alloc": None if k.busy else k.next_alloc,
        }

    def expected(self) -> dict:
        if not self.finished:
            raise RuntimeError("call Verifier.finish() first")
        fo, ffo = FAKE_HEAP_FLAGS[self.arch]
        R = self.R
        rec: dict[str, Any] = {
            "address": self.handle,
            "type": "page",
            "arch": self.arch,
            "root": self.root,
            "signature": DPH_SIGNATURE,
            "fake_heap": {
                "fill": FAKE_HEAP_FILL,
                "flags": self.heap_flags | HEAP_FLAG_PAGE_ALLOCS,
                "force_flags": self.heap_flags | HEAP_FLAG_PAGE_ALLOCS,
                "flags_offset": fo,
                "force_flags_offset": ffo,
                "segment_signature_slot": SEGMENT_SIGNATURE_SLOT[self.arch],
                "segment_signature_value": FAKE_HEAP_SLOT,
            },
            "reservation": {"address": self.handle, "size": self.reserve},
            "layout": self.layout(),
        }
        if not self.capture_root:
            rec.update({
                "walked": False,
                "not_walked_reason": "not_captured",
                "detail": f"the _DPH_HEAP_ROOT page at {self.root:#x} (handle + 0x1000) is not "
                          f"in the dump (region MEM_COMMIT); the fake _HEAP page is",
                "normal_heap": None,
                "blocks": [],
                "busy_user_bytes_all": 0,
                "corruption": [],
                "in_process": {
                    "note": "what the uncaptured root describes; a reader cannot see it",
                    "normal_heap": self.normal_heap.address,
                    "busy_count": len(self.busy_blocks),
                    "freed_count": len(self.freed_blocks),
                    "busy_user_bytes": sum(k.requested for k in self.busy_blocks),
                },
            })
            return rec
        rows = sorted((self._row(k) for k in self.blocks), key=lambda r: r["address"])
        busy = self.busy_blocks
        freed = self.freed_blocks
        in_order = [k.node for k in sorted(busy, key=lambda k: k.user_allocation)]
        rec.update({
            "walked": True,
            "heap_flags": self.heap_flags,
            "normal_heap": self.normal_heap.address,
            "create_stack_trace": self.create_trace,
            "create_frames": list(self.create_frames),
            "busy_nodes_table": {
                "address": self.root + R.busy_nodes_table,
                "root_node": self.tree_root,
                "number_generic_table_elements": len(busy),
                "depth_of_tree": self.tree_height,
                "in_order": in_order,
            },
            "free_list": {"head": freed[0].node if freed else 0,
                          "tail": freed[-1].node if freed else 0,
                          "nodes": [k.node for k in freed]},
            "virtual_storage": {"node": self.storage_node, "address": self.handle,
                                "size": self.reserve},
            "next_heap": {"address": self.root + R.next_heap, "flink": self.next_flink,
                          "blink": self.next_blink},
            "root_captured": {"address": self.root, "size": self.root_captured_size},
            "busy_count": len(busy),
            "freed_count": len(freed),
            "busy_user_bytes": sum(k.requested for k in busy),
            "freed_user_bytes": sum(k.requested for k in freed),
            "busy_user_bytes_all": sum(r["user_size"] for r in rows if r["is_allocation"]),
            "blocks": rows,
            "corruption": [],
        })
        return rec

    def normal_expected(self, *, listed_in_peb: bool) -> dict:
        """The NormalHeap's NtHeap.expected(), with rows per docs/block-model.md."""
        nh = self.normal_heap
        rec = nh.expected()
        by_block = {nb.block.address: nb for nb in self.normal_blocks}
        rows: list[dict] = []
        for b in sorted(rec["blocks"], key=lambda r: r["address"]):
            b = dict(b)
            b["parent"] = 0
            b["level"] = 0
            b["is_allocation"] = bool(b["busy"] and b["kind"] in ("backend", "virtual"))
            b["not_decoded"] = None
            nb = by_block.get(b["address"])
            if nb is None:
                rows.append(b)
                continue
            p, end = b["address"], b["address"] + b["size"]
            e = self.v.db.entry(nb.trace)
            b["kind"] = "dph_normal"
            b["is_allocation"] = False
            b["dph"] = {
                "block_information": nb.info,
                "start_stamp": NORMAL_BUSY_START if nb.busy else NORMAL_FREE_START,
                "end_stamp": NORMAL_BUSY_END if nb.busy else NORMAL_FREE_END,
                "heap_field": self.root ^ SCRAMBLE[self.arch],
                "requested_size": nb.requested,
                "actual_size": nb.block.request,
                "trace_index": self._trace_index(nb.trace) if nb.busy else None,
                "free_queue": ({"flink": nb.queue_flink, "blink": nb.queue_blink}
                               if not nb.busy else None),
            }
            rows.append(b)
            seg, u, req = b["segment"], nb.user, nb.requested
            common = {"segment": seg, "flags": 0, "unused_bytes": 0, "parent": p, "level": 1,
                      "not_decoded": None}
            rows.append(dict(common, address=p, size=u - p, user_address=0, user_size=0,
                             busy=False, kind="overhead", stack_trace_entry=0, frames=[],
                             is_allocation=False))
            rows.append(dict(common, address=u, size=req, user_address=u, user_size=req,
                             busy=nb.busy, kind="dph_normal_block", stack_trace_entry=nb.trace,
                             frames=list(e.frames), is_allocation=nb.busy,
                             start_stamp=NORMAL_BUSY_START if nb.busy else NORMAL_FREE_START,
                             trace_depth=len(e.frames), trace_index=self._trace_index(nb.trace),
                             user_data=({"fill": nb.user_fill} if nb.user_fill is not None
                                        else {"pattern_tag": nb.tag}),
                             suffix={"address": u + req, "size": self.align,
                                     "fill": NORMAL_SUFFIX_FILL}))
            assert u + req < end
            rows.append(dict(common, address=u + req, size=end - u - req, user_address=0,
                             user_size=0, busy=False, kind="overhead", stack_trace_entry=0,
                             frames=[], is_allocation=False))
        rec["blocks"] = rows
        rec["page_heap_owner"] = self.handle
        rec["listed_in_peb"] = listed_in_peb
        normal_busy = [nb for nb in self.normal_blocks if nb.busy]
        rec["dph_normal"] = {
            "busy_count": len(normal_busy),
            "freed_count": len(self.normal_blocks) - len(normal_busy),
            "busy_user_bytes": sum(nb.requested for nb in normal_busy),
            "user_offset": self.I.size,
        }
        rec["busy_user_bytes_all"] = sum(r["user_size"] for r in rows if r["is_allocation"])
        # NtHeap.expected() counted the light-page-heap containers as back-end allocations.
        rec["totals"]["busy_user_bytes_all"] = rec["busy_user_bytes_all"]
        return rec
