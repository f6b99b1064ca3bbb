//! Page heap (DPH: gflags `+hpa`, Application Verifier), §11.4.
//!
//! ## Finding it without symbols
//!
//! The roots of all page heaps are on a list whose head is a verifier.dll global (Vista+), which
//! needs symbols. Instead, each page heap's *handle*, listed in `PEB.ProcessHeaps` like any heap,
//! is a fake `_HEAP` page filled with 0xEE whose `Flags` carry `HEAP_FLAG_PAGE_ALLOCS`
//! (0x01000000), and the `_DPH_HEAP_ROOT` (signature 0xFFEEDDCC) lies one page later (Windows
//! Server 2003 `heappage.c`; ReactOS). A heap is a page heap only when all three marks agree;
//! whether Vista+ verifier.dll still hands out this handle is **UNCONFIRMED** (§11.4, §13). From
//! one root, `NextHeap` leads to the process's other page heaps.
//!
//! ## Its blocks
//!
//! Full-page allocations are `_DPH_HEAP_BLOCK` nodes: the busy ones in `BusyNodesTable`, an
//! `RTL_AVL_TABLE` walked as a plain binary tree from its embedded `BalancedRoot` (the sentinel
//! itself is not a node, \[HST\]), the freed ones on the free list (`pFreeAllocationListHead`,
//! linked through `pNextAlloc`, the union member at offset 0 in `heappage.c`). Each node gives
//! one `dph_block` row. The root's `NormalHeap` is an ordinary NT heap ("light" page heap, and
//! small blocks of full page heap): its busy blocks whose user data starts with a
//! `_DPH_BLOCK_INFORMATION` stamp are containers of one `dph_normal_block`. Page-heap stack
//! traces take their frame count from `Depth` (§11.1 quirk).

use std::collections::HashSet;

use super::columns::{BlockKind, NotDecoded};
use super::corruption::{CorruptionKind, Recorder};
use super::entry::is_no_trace;
use super::list::NodeBudget;
use super::rows::{Placed, RowSink};
use crate::layouts::page_heap::{
    layout, stamps, PageHeapLayout, DPH_FAKE_HEAP_FILL, DPH_ROOT_SIGNATURE, HEAP_FLAG_PAGE_ALLOCS, ROOT_FROM_HANDLE,
};
use crate::memory::AddressSpace;
use crate::target::Arch;

/// Upper bound on `_DPH_HEAP_BLOCK` nodes per page heap (busy and freed).
pub const MAX_NODES: usize = 0x100_0000;
/// Upper bound on page heaps followed on `NextHeap`.
pub const MAX_PAGE_HEAPS: usize = 0x1000;

/// What a page heap's root says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageHeapInfo {
    /// The `_DPH_HEAP_ROOT` (handle + 0x1000).
    pub root: u64,
    /// `_DPH_HEAP_ROOT.HeapFlags`.
    pub heap_flags: u32,
    /// `NormalHeap`: the NT heap behind it (0 if none).
    pub normal_heap: u64,
    /// `BusyNodesTable.NumberGenericTableElements`, when readable.
    pub table_count: Option<u32>,
    /// Busy full-page blocks found.
    pub busy: u64,
    /// Σ requested size of the busy blocks.
    pub busy_bytes: u64,
    /// Freed full-page blocks found.
    pub freed: u64,
}

fn at(base: u64, off: u16) -> u64 {
    base.wrapping_add(u64::from(off))
}

/// Whether the heap handle `handle` looks like a page heap's fake `_HEAP` page (the fill word at
/// the signature slot and `HEAP_FLAG_PAGE_ALLOCS` in `Flags`). The root is checked by
/// [`root_of`].
pub fn looks_like_page_heap(mem: &AddressSpace, handle: u64, arch: Arch) -> bool {
    let l = layout(arch);
    mem.read_u32(at(handle, l.fake_heap_signature)).ok() == Some(DPH_FAKE_HEAP_FILL)
        && mem.read_u32(at(handle, l.fake_heap_flags)).is_ok_and(|f| f & HEAP_FLAG_PAGE_ALLOCS != 0)
}

/// The root of the page heap whose handle is `handle`, or why it cannot be used.
pub fn root_of(mem: &AddressSpace, handle: u64, arch: Arch) -> Result<u64, String> {
    let root = handle.checked_add(ROOT_FROM_HANDLE).ok_or("handle at the top of the address space")?;
    match mem.read_u32(at(root, layout(arch).root_signature)) {
        Ok(DPH_ROOT_SIGNATURE) => Ok(root),
        Ok(s) => Err(format!("_DPH_HEAP_ROOT at {root:#x} has signature {s:#x}, not {DPH_ROOT_SIGNATURE:#x}")),
        Err(_) => Err(format!("_DPH_HEAP_ROOT at {root:#x} (handle + 0x1000) is not captured")),
    }
}

/// The `NormalHeap` of the root at `root`, if set.
pub fn normal_heap(mem: &AddressSpace, root: u64, arch: Arch) -> Option<u64> {
    mem.read_ptr(arch, at(root, layout(arch).root_normal_heap)).ok().filter(|&h| h != 0)
}

/// The handles of the page heaps on the `NextHeap` list through `root` (its own excluded):
/// nodes whose root signature checks out; the list head (a verifier.dll global) is skipped.
/// Problems with the list go to `problems` (not twice).
pub(crate) fn other_roots(
    mem: &AddressSpace,
    root: u64,
    arch: Arch,
    budget: &NodeBudget,
    problems: &mut Vec<super::Corruption>,
) -> Vec<u64> {
    let l = layout(arch);
    let head = at(root, l.root_next_heap);
    let w = super::list::walk_list(mem, arch, head, MAX_PAGE_HEAPS, budget, "_DPH_HEAP_ROOT.NextHeap");
    // A NextHeap list that loops (`pageheap_two_heaps_x64.dmp` with the second root's Flink
    // pointing back at itself) or breaks still gives the page heaps before the damage; the
    // damage is recorded once, although every page heap on the list walks it.
    let handle = root.wrapping_sub(ROOT_FROM_HANDLE);
    for p in w.problems {
        if !problems.iter().any(|q| q.address == p.address && q.kind == p.kind) {
            problems.push(super::Corruption::new(handle, p.address, p.kind, p.detail));
        }
    }
    w.nodes
        .into_iter()
        .filter_map(|n| n.checked_sub(u64::from(l.root_next_heap)))
        .filter(|&r| r != root && mem.read_u32(r).ok() == Some(DPH_ROOT_SIGNATURE))
        .filter_map(|r| r.checked_sub(ROOT_FROM_HANDLE))
        .collect()
}

/// One node's row fields.
struct Node {
    virtual_block: u64,
    virtual_size: u64,
    user: u64,
    requested: u64,
    trace: u64,
    busy: bool,
    corruption: u8,
}

fn read_node(mem: &AddressSpace, a: Arch, l: &PageHeapLayout, n: u64, busy: bool) -> Option<Node> {
    let p = |o| mem.read_ptr(a, at(n, o)).ok();
    Some(Node {
        virtual_block: p(l.block_virtual_block)?,
        virtual_size: p(l.block_virtual_block_size)?,
        user: p(l.block_user_allocation)?,
        requested: p(l.block_user_requested_size)?,
        trace: p(l.block_stack_trace)?,
        busy,
        corruption: 0,
    })
}

/// Walk the page heap of handle `handle` (root already checked) into `sink`.
pub(crate) fn walk(
    mem: &AddressSpace,
    handle: u64,
    root: u64,
    arch: Arch,
    budget: &NodeBudget,
    sink: &mut RowSink<'_>,
    rec: &mut Recorder<'_>,
) -> PageHeapInfo {
    let l = layout(arch);
    let table = at(root, l.root_busy_nodes_table);
    let mut info = PageHeapInfo {
        root,
        heap_flags: mem.read_u32(at(root, l.root_heap_flags)).unwrap_or(0),
        normal_heap: normal_heap(mem, root, arch).unwrap_or(0),
        table_count: mem.read_u32(at(table, l.avl_element_count)).ok(),
        busy: 0,
        busy_bytes: 0,
        freed: 0,
    };
    let mut seen: HashSet<u64> = HashSet::from([table]);
    let mut nodes: Vec<Node> = Vec::new();
    // Busy nodes: depth-first over the tree below the sentinel, with an explicit stack.
    let mut stack: Vec<u64> = Vec::new();
    for o in [l.links_left, l.links_right] {
        if let Ok(c) = mem.read_ptr(arch, at(table, o)) {
            stack.push(c);
        }
    }
    while let Some(n) = stack.pop() {
        if n == 0 {
            continue;
        }
        if !seen.insert(n) {
            // A tree has no node below two parents. Seen in a damaged dump whose leaf's LeftChild
            // points back at the root (`pageheap_x64.dmp`, the first node in order linked to
            // the root): each node is still listed once, and the cycle is recorded.
            rec.record(n, CorruptionKind::ListLoop, format!("page heap {handle:#x}: busy tree reaches {n:#x} twice"));
            continue;
        }
        if seen.len() > MAX_NODES || !budget.take() {
            rec.record(
                n,
                CorruptionKind::ListTooLong,
                format!("page heap {handle:#x}: node budget exhausted at {n:#x}"),
            );
            break;
        }
        match read_node(mem, arch, l, n, true) {
            Some(node) => nodes.push(node),
            None => {
                rec.record(n, CorruptionKind::NotCaptured, format!("_DPH_HEAP_BLOCK {n:#x} not captured"));
                continue;
            }
        }
        for o in [l.links_left, l.links_right] {
            match mem.read_ptr(arch, at(n, o)) {
                Ok(c) => stack.push(c),
                Err(_) => {
                    rec.record(n, CorruptionKind::NotCaptured, format!("_DPH_HEAP_BLOCK {n:#x}: links not captured"))
                }
            }
        }
    }
    let busy_nodes = nodes.len();
    if let Some(c) = info.table_count.filter(|&c| c as usize != busy_nodes) {
        rec.record(
            table,
            CorruptionKind::Inconsistent,
            format!("page heap {handle:#x}: BusyNodesTable counts {c} elements, the tree holds {busy_nodes}"),
        );
    }
    // Freed nodes: the singly linked free list, up to its tail.
    let tail = mem.read_ptr(arch, at(root, l.root_free_tail)).unwrap_or(0);
    let mut n = mem.read_ptr(arch, at(root, l.root_free_head)).unwrap_or(0);
    while n != 0 {
        if !seen.insert(n) {
            rec.record(n, CorruptionKind::ListLoop, format!("page heap {handle:#x}: free list comes back to {n:#x}"));
            break;
        }
        if seen.len() > MAX_NODES || !budget.take() {
            rec.record(
                n,
                CorruptionKind::ListTooLong,
                format!("page heap {handle:#x}: node budget exhausted at {n:#x}"),
            );
            break;
        }
        let Some(node) = read_node(mem, arch, l, n, false) else {
            rec.record(n, CorruptionKind::NotCaptured, format!("_DPH_HEAP_BLOCK {n:#x} (free list) not captured"));
            break;
        };
        nodes.push(node);
        if n == tail {
            break;
        }
        n = mem.read_ptr(arch, at(n, l.block_next_alloc)).unwrap_or(0);
    }
    // The stamp before each user allocation must agree with the list the node is on.
    for node in &mut nodes {
        let info_at = node.user.wrapping_sub(u64::from(l.info_size));
        if let Ok(s) = mem.read_u32(at(info_at, l.info_start_stamp)) {
            let expect = if node.busy { stamps::FULL_BUSY } else { stamps::FULL_FREED };
            if s != expect {
                rec.record(
                    node.user,
                    CorruptionKind::Inconsistent,
                    format!("page-heap block {:#x}: StartStamp {s:#x}, expected {expect:#x}", node.user),
                );
                node.corruption = CorruptionKind::Inconsistent.code();
            }
        }
        if node.user < node.virtual_block
            || node.user.saturating_add(node.requested) > node.virtual_block.saturating_add(node.virtual_size)
        {
            rec.record(
                node.user,
                CorruptionKind::OutOfSegment,
                format!(
                    "page-heap block {:#x}+{:#x} outside its virtual block {:#x}+{:#x}",
                    node.user, node.requested, node.virtual_block, node.virtual_size
                ),
            );
            node.corruption = CorruptionKind::OutOfSegment.code();
        }
    }
    nodes.sort_by_key(|n| (n.virtual_block, n.user));
    for n in nodes {
        let mut r = super::columns::BlockRow::top(BlockKind::DphBlock, n.busy);
        r.address = n.virtual_block;
        r.size = n.virtual_size;
        r.user_address = n.user;
        r.user_size = n.requested;
        r.unused_bytes = u32::try_from(n.virtual_size.saturating_sub(n.requested)).unwrap_or(u32::MAX);
        r.corruption = n.corruption;
        if n.busy {
            info.busy += 1;
            info.busy_bytes = info.busy_bytes.saturating_add(n.requested);
        } else {
            info.freed += 1;
        }
        sink.push_traced(r, if is_no_trace(n.trace) { 0 } else { n.trace });
    }
    info
}

/// Whether a busy NormalHeap block whose user data starts at `user` carries light-page-heap
/// data: its first u32 is a normal-block StartStamp.
pub(crate) fn is_normal_block(mem: &AddressSpace, arch: Arch, user: u64) -> bool {
    let l = layout(arch);
    matches!(mem.read_u32(at(user, l.info_start_stamp)), Ok(stamps::NORMAL_BUSY | stamps::NORMAL_FREED))
}

/// The children of a `dph_normal` container whose back-end user data starts at `user`:
/// overhead up to the allocation, the allocation, and the tail.
pub(crate) fn emit_normal_children(
    mem: &AddressSpace,
    arch: Arch,
    user: u64,
    at_: &Placed,
    sink: &mut RowSink<'_>,
    rec: &mut Recorder<'_>,
) -> Option<NotDecoded> {
    let l = layout(arch);
    let (start, end) = at_.extent;
    let fields = (|| {
        Some((
            mem.read_u32(at(user, l.info_start_stamp)).ok()?,
            mem.read_ptr(arch, at(user, l.info_requested_size)).ok()?,
            mem.read_ptr(arch, at(user, l.info_stack_trace)).ok()?,
        ))
    })();
    let Some((stamp, requested, trace)) = fields else { return Some(NotDecoded::NotCaptured) };
    let data = user.wrapping_add(u64::from(l.info_size));
    let data_end = data.checked_add(requested).filter(|&e| data >= start && e <= end);
    let Some(data_end) = data_end else {
        rec.record(
            user,
            CorruptionKind::Inconsistent,
            format!("light page-heap block {user:#x}: RequestedSize {requested:#x} does not fit its block {start:#x}..{end:#x}"),
        );
        return Some(NotDecoded::Corrupt);
    };
    let busy = stamp == stamps::NORMAL_BUSY;
    if let Ok(end_stamp) = mem.read_u32(at(user, l.info_end_stamp)) {
        let expect = if busy { stamps::NORMAL_BUSY_END } else { stamps::NORMAL_FREED_END };
        if end_stamp != expect {
            rec.record(
                user,
                CorruptionKind::Inconsistent,
                format!("light page-heap block {user:#x}: EndStamp {end_stamp:#x}, expected {expect:#x}"),
            );
        }
    }
    sink.push(at_.child(BlockKind::Overhead, start, data - start));
    let mut r = at_.child(BlockKind::DphNormalBlock, data, requested);
    r.busy = busy;
    r.is_allocation = BlockKind::DphNormalBlock.is_allocation(busy);
    r.user_address = data;
    r.user_size = requested;
    sink.push_traced(r, if is_no_trace(trace) { 0 } else { trace });
    if end > data_end {
        sink.push(at_.child(BlockKind::Overhead, data_end, end - data_end));
    }
    None
}
