//! Page heap (DPH, gflags `+hpa`, Application Verifier) structure offsets: the fake `_HEAP`
//! handle page, `_DPH_HEAP_ROOT`, `_DPH_HEAP_BLOCK`, `_DPH_BLOCK_INFORMATION` (§11.4), and the
//! public `RTL_AVL_TABLE` / `RTL_BALANCED_LINKS` the busy-node table is made of.
//!
//! The doc gives one column per architecture (x86 from Windows 7, x64 from 1607 and Windows 11:
//! identical), so the table has one row per architecture for every build. Symbol-less discovery
//! through `PEB.ProcessHeaps` rests on the Windows Server 2003 design (the handle is a fake
//! `_HEAP` page one page before the root); that Vista+ verifier.dll still works this way is
//! **UNCONFIRMED** (§11.4), so a heap is taken for a page heap only when all three marks agree.

use super::{BuildRange, LayoutRow};
use crate::target::Arch;

/// `_DPH_HEAP_ROOT.Signature` (§11.4).
pub const DPH_ROOT_SIGNATURE: u32 = 0xFFEE_DDCC;
/// What the fake `_HEAP` page is filled with, read at the segment-signature slot (§11.4).
pub const DPH_FAKE_HEAP_FILL: u32 = 0xEEEE_EEEE;
/// `HEAP_FLAG_PAGE_ALLOCS`, set in the fake heap's `Flags` and `ForceFlags` (§11.4).
pub const HEAP_FLAG_PAGE_ALLOCS: u32 = 0x0100_0000;
/// The root lies this far after the handle (§11.4: `HEAP_HANDLE_FROM_ROOT` is root − PAGE_SIZE).
pub const ROOT_FROM_HANDLE: u64 = 0x1000;

/// `_DPH_BLOCK_INFORMATION` stamps (§11.4, CONFIRMED).
pub mod stamps {
    /// Full-page block, busy: StartStamp.
    pub const FULL_BUSY: u32 = 0xABCD_BBBB;
    /// Full-page block, freed: StartStamp.
    pub const FULL_FREED: u32 = 0xABCD_BBBA;
    /// Normal ("light") page-heap block, busy: StartStamp.
    pub const NORMAL_BUSY: u32 = 0xABCD_AAAA;
    /// Normal page-heap block, freed: StartStamp.
    pub const NORMAL_FREED: u32 = 0xABCD_AAA9;
    /// Normal page-heap block, busy: EndStamp.
    pub const NORMAL_BUSY_END: u32 = 0xDCBA_AAAA;
    /// Normal page-heap block, freed: EndStamp.
    pub const NORMAL_FREED_END: u32 = 0xDCBA_AAA9;
}

/// Offsets of the page-heap structures for one architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeapLayout {
    /// Fake `_HEAP` page: `Flags` (the §4 `_HEAP.Flags` offset; INFERRED for Vista+).
    pub fake_heap_flags: u16,
    /// Fake `_HEAP` page: the segment-signature slot (0xEEEEEEEE there).
    pub fake_heap_signature: u16,
    /// `_DPH_HEAP_ROOT.Signature`.
    pub root_signature: u16,
    /// `_DPH_HEAP_ROOT.HeapFlags`.
    pub root_heap_flags: u16,
    /// `_DPH_HEAP_ROOT.BusyNodesTable` (`RTL_AVL_TABLE`).
    pub root_busy_nodes_table: u16,
    /// `_DPH_HEAP_ROOT.pFreeAllocationListHead`.
    pub root_free_head: u16,
    /// `_DPH_HEAP_ROOT.pFreeAllocationListTail`.
    pub root_free_tail: u16,
    /// `_DPH_HEAP_ROOT.NextHeap` (LIST_ENTRY).
    pub root_next_heap: u16,
    /// `_DPH_HEAP_ROOT.NormalHeap` (the backing NT heap).
    pub root_normal_heap: u16,
    /// `RTL_AVL_TABLE.NumberGenericTableElements` (u32), relative to the table.
    pub avl_element_count: u16,
    /// `RTL_BALANCED_LINKS.LeftChild`.
    pub links_left: u16,
    /// `RTL_BALANCED_LINKS.RightChild`.
    pub links_right: u16,
    /// `_DPH_HEAP_BLOCK.pNextAlloc` (free list link; union with the AVL links at 0).
    pub block_next_alloc: u16,
    /// `_DPH_HEAP_BLOCK.pUserAllocation`.
    pub block_user_allocation: u16,
    /// `_DPH_HEAP_BLOCK.pVirtualBlock`.
    pub block_virtual_block: u16,
    /// `_DPH_HEAP_BLOCK.nVirtualBlockSize`.
    pub block_virtual_block_size: u16,
    /// `_DPH_HEAP_BLOCK.nUserRequestedSize`.
    pub block_user_requested_size: u16,
    /// `_DPH_HEAP_BLOCK.StackTrace`.
    pub block_stack_trace: u16,
    /// `sizeof(_DPH_HEAP_BLOCK)`.
    pub block_size: u16,
    /// `_DPH_BLOCK_INFORMATION.StartStamp` (u32).
    pub info_start_stamp: u16,
    /// `_DPH_BLOCK_INFORMATION.Heap`.
    pub info_heap: u16,
    /// `_DPH_BLOCK_INFORMATION.RequestedSize`.
    pub info_requested_size: u16,
    /// `_DPH_BLOCK_INFORMATION.StackTrace`.
    pub info_stack_trace: u16,
    /// `_DPH_BLOCK_INFORMATION.EndStamp` (u32).
    pub info_end_stamp: u16,
    /// `sizeof(_DPH_BLOCK_INFORMATION)`: the user data follows it.
    pub info_size: u16,
}

/// Every known page-heap layout: one per architecture, all builds (§11.4).
pub static PAGE_HEAP_LAYOUTS: &[LayoutRow<PageHeapLayout>] = &[
    LayoutRow {
        name: "page heap x86",
        arch: Arch::X86,
        builds: BuildRange { first: 0, last: u32::MAX },
        source: "§11.4 x86 (Win7) columns: [R2W Win7x86], [HST] (0x10/0x14/0x18/0x20/0x30, root 0x20/0xa4/0xb4); \
                 _DPH_BLOCK_INFORMATION also SkyLined; fake _HEAP Flags at the §4.2 offset (INFERRED for Vista+); \
                 RTL_AVL_TABLE / RTL_BALANCED_LINKS from the public ntddk.h",
        layout: PageHeapLayout {
            fake_heap_flags: 0x40,           // §4.2 _HEAP.Flags
            fake_heap_signature: 0x08,       // §4.2 SegmentSignature slot
            root_signature: 0x00,            // §11.4
            root_heap_flags: 0x04,           // §11.4
            root_busy_nodes_table: 0x20,     // §11.4
            root_free_head: 0x64,            // §11.4
            root_free_tail: 0x68,            // §11.4
            root_next_heap: 0xa4,            // §11.4
            root_normal_heap: 0xb4,          // §11.4
            avl_element_count: 0x18,         // ntddk.h: BalancedRoot 0x10, OrderedPointer, WhichOrderedElement
            links_left: 0x04,                // ntddk.h RTL_BALANCED_LINKS: Parent, LeftChild, RightChild
            links_right: 0x08,               // ntddk.h
            block_next_alloc: 0x00,          // §11.4 (union with TableLinks at 0; Server 2003 heappage.c)
            block_user_allocation: 0x10,     // §11.4
            block_virtual_block: 0x14,       // §11.4
            block_virtual_block_size: 0x18,  // §11.4
            block_user_requested_size: 0x20, // §11.4
            block_stack_trace: 0x30,         // §11.4
            block_size: 0x40,                // §11.4 sizeof
            info_start_stamp: 0x00,          // §11.4
            info_heap: 0x04,                 // §11.4
            info_requested_size: 0x08,       // §11.4
            info_stack_trace: 0x18,          // §11.4
            info_end_stamp: 0x1c,            // §11.4
            info_size: 0x20,                 // §11.4 sizeof
        },
    },
    LayoutRow {
        name: "page heap x64",
        arch: Arch::X64,
        builds: BuildRange { first: 0, last: u32::MAX },
        source: "§11.4 x64 (1607, Win11) columns: [R2W Win10x64], [NTK]; _DPH_BLOCK_INFORMATION also SkyLined; \
                 fake _HEAP Flags at the §4.1 offset (INFERRED for Vista+); RTL_AVL_TABLE / RTL_BALANCED_LINKS \
                 from the public ntddk.h",
        layout: PageHeapLayout {
            fake_heap_flags: 0x70,           // §4.1 _HEAP.Flags
            fake_heap_signature: 0x10,       // §4.1 SegmentSignature slot
            root_signature: 0x00,            // §11.4
            root_heap_flags: 0x04,           // §11.4
            root_busy_nodes_table: 0x38,     // §11.4
            root_free_head: 0xb8,            // §11.4
            root_free_tail: 0xc0,            // §11.4
            root_next_heap: 0x138,           // §11.4
            root_normal_heap: 0x150,         // §11.4
            avl_element_count: 0x2c,         // ntddk.h: BalancedRoot 0x20, OrderedPointer, WhichOrderedElement
            links_left: 0x08,                // ntddk.h RTL_BALANCED_LINKS
            links_right: 0x10,               // ntddk.h
            block_next_alloc: 0x00,          // §11.4 (union at 0)
            block_user_allocation: 0x20,     // §11.4
            block_virtual_block: 0x28,       // §11.4
            block_virtual_block_size: 0x30,  // §11.4
            block_user_requested_size: 0x40, // §11.4
            block_stack_trace: 0x60,         // §11.4
            block_size: 0x80,                // §11.4 sizeof
            info_start_stamp: 0x00,          // §11.4
            info_heap: 0x08,                 // §11.4
            info_requested_size: 0x10,       // §11.4
            info_stack_trace: 0x30,          // §11.4
            info_end_stamp: 0x3c,            // §11.4
            info_size: 0x40,                 // §11.4 sizeof
        },
    },
];

/// The page-heap layout of `arch`.
pub fn layout(arch: Arch) -> &'static PageHeapLayout {
    &super::rows_for(PAGE_HEAP_LAYOUTS, arch).next().expect("a row per architecture").layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_fit_their_structures() {
        super::super::check_table(PAGE_HEAP_LAYOUTS);
        for arch in [Arch::X86, Arch::X64] {
            let l = layout(arch);
            let p = arch.ptr_size() as u16;
            assert_eq!(l.block_user_allocation, 4 * p, "after RTL_BALANCED_LINKS");
            assert!(l.block_stack_trace + p <= l.block_size);
            assert_eq!(l.info_size, 8 * p);
            assert!(l.info_end_stamp + 4 <= l.info_size);
            assert_eq!(l.root_free_tail, l.root_free_head + p);
            assert_eq!((l.links_left, l.links_right), (p, 2 * p));
        }
    }
}
