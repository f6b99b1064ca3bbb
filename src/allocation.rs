//! Which heap block holds an address: the core of the debugger's `!heap -p -a ADDRESS`.
//!
//! [`BlockIndex`] sorts the extents of every row of a [`HeapReport`] once; a lookup is a binary
//! search. An extent is the block from its header to its end (`address .. address + size`), so
//! an address in the header, the user data or the unused tail all find the block. A virtual block
//! spans its whole committed range from its `_HEAP_VIRTUAL_ALLOC_ENTRY`
//! (`entry .. entry + CommitSize`, §8), which includes the entry and the `BusyBlock` header before
//! the user data.
//!
//! Extents do not overlap in a healthy heap. In a damaged one they may (a virtual block listed
//! inside a segment, say); then the block with the greatest start at or below the address that
//! still contains it wins, i.e. the innermost one. A running maximum of extent ends lets the
//! search stop as soon as no earlier extent can reach the address, so lookups stay O(log n) unless
//! the report is full of nested extents.

use std::fmt::Write;

use crate::heap::{BlockKind, BlockRefs, HeapReport};
use crate::stacks::StackTable;
use crate::symbols::Frame;
use crate::target::Arch;

/// Sorted block extents of one report.
#[derive(Debug, Clone, Default)]
pub struct BlockIndex {
    starts: Vec<u64>,
    ends: Vec<u64>,
    rows: Vec<u32>,
    /// `reach[i]` = max of `ends[..=i]`.
    reach: Vec<u64>,
}

impl BlockIndex {
    /// Index every row of `report` with a non-empty extent.
    pub fn new(report: &HeapReport, b: &BlockRefs<'_>) -> Self {
        let mut ext: Vec<(u64, u64, u32)> = Vec::with_capacity(b.len());
        for h in &report.heaps {
            let rows = h.blocks.start.min(b.len())..h.blocks.end.min(b.len());
            // (row, entry) of the heap's virtual blocks, in row order.
            let mut virtual_blocks = h.virtual_rows.iter().copied().zip(&h.virtual_blocks).peekable();
            for row in rows {
                let Ok(r) = u32::try_from(row) else { break };
                let (mut start, mut len) = (b.address[row], b.size[row]);
                if let Some((_, v)) = virtual_blocks.next_if(|&(vr, _)| vr == row) {
                    (start, len) = (v.address, v.commit_size);
                }
                let end = start.saturating_add(len);
                if end > start {
                    ext.push((start, end, r));
                }
            }
        }
        // Equal starts: the later row first after the reversal below, i.e. the deeper one (a
        // container precedes its descendants in row order), so `find` returns the innermost row.
        ext.sort_unstable_by_key(|e| (e.0, e.2));
        let mut reach = Vec::with_capacity(ext.len());
        let mut max = 0;
        for e in &ext {
            max = max.max(e.1);
            reach.push(max);
        }
        BlockIndex {
            starts: ext.iter().map(|e| e.0).collect(),
            ends: ext.iter().map(|e| e.1).collect(),
            rows: ext.iter().map(|e| e.2).collect(),
            reach,
        }
    }

    /// Number of indexed blocks.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no block is indexed.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The row (of [`HeapReport::blocks`]) whose extent contains `addr`, and that extent.
    pub fn find(&self, addr: u64) -> Option<(usize, u64, u64)> {
        let mut i = self.starts.partition_point(|&s| s <= addr);
        while i > 0 {
            i -= 1;
            if self.reach[i] <= addr {
                return None;
            }
            if self.ends[i] > addr {
                return Some((self.rows[i] as usize, self.starts[i], self.ends[i]));
            }
        }
        None
    }
}

/// The block holding an address, with its stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The address asked about.
    pub query: u64,
    /// Row in [`HeapReport::blocks`].
    pub row: usize,
    /// The owning heap.
    pub heap: u64,
    /// The heap's pointer width.
    pub arch: Arch,
    /// The block's `_HEAP_ENTRY` (for a virtual block its `BusyBlock`).
    pub address: u64,
    /// First byte of the extent searched (the `_HEAP_VIRTUAL_ALLOC_ENTRY` of a virtual block).
    pub extent_start: u64,
    /// One past the extent's last byte.
    pub extent_end: u64,
    /// Block size in bytes, header included (a virtual block's `CommitSize`).
    pub size: u64,
    /// Size of the block just before it in the same segment, 0 if none (or virtual).
    pub previous_size: u64,
    /// The pointer the allocator returned (0 when the block has no user data).
    pub user_address: u64,
    /// Requested bytes.
    pub user_size: u64,
    /// Allocated.
    pub busy: bool,
    /// What the row is.
    pub kind: BlockKind,
    /// Decoded `_HEAP_ENTRY.Flags`.
    pub flags: u8,
    /// The block's `_RTL_STACK_TRACE_ENTRY` (+ust), 0 if none.
    pub trace_entry: u64,
    /// The block's stack id in the [`StackTable`], −1 if none.
    pub stack_id: i32,
}

impl Allocation {
    /// The block of `report` holding `addr`, if any.
    pub fn find(
        report: &HeapReport,
        b: &BlockRefs<'_>,
        stacks: &StackTable,
        index: &BlockIndex,
        addr: u64,
    ) -> Option<Allocation> {
        let (row, extent_start, extent_end) = index.find(addr)?;
        let heap = report.heaps.iter().find(|h| h.blocks.contains(&row));
        let arch = heap.map_or(Arch::X64, |h| h.arch);
        let kind = BlockKind::from_code(b.kind[row]).unwrap_or(BlockKind::Unparsed);
        let previous_size = match row.checked_sub(1) {
            Some(p)
                if kind != BlockKind::Virtual
                    && report.segment_of_row(p) == report.segment_of_row(row)
                    && b.address[p].wrapping_add(b.size[p]) == b.address[row] =>
            {
                b.size[p]
            }
            _ => 0,
        };
        Some(Allocation {
            query: addr,
            row,
            heap: heap.map_or(0, |h| h.address),
            arch,
            address: b.address[row],
            extent_start,
            extent_end,
            size: b.size[row],
            previous_size,
            user_address: b.user_address[row],
            user_size: b.user_size[row],
            busy: b.busy[row],
            kind,
            flags: b.flags[row],
            trace_entry: report.traces.of(row),
            stack_id: stacks.stack_of_row(row),
        })
    }

    /// The state word of the debugger's listing: `busy`, `free`, `busy VirtualAlloc`, ...
    pub fn state(&self) -> String {
        match (self.kind, self.busy) {
            (BlockKind::Virtual, _) => "busy VirtualAlloc".to_owned(),
            (BlockKind::Unparsed, _) => "unparsed".to_owned(),
            (BlockKind::Overhead, _) => "container bookkeeping".to_owned(),
            (k, true) if k.is_allocation(true) => "busy".to_owned(),
            (_, false) => "free".to_owned(),
            (k, true) => format!("busy {}", k.name()),
        }
    }

    /// The block in the layout of `!heap -p -a`, followed by the stack (`frames`, innermost
    /// first), and a hint when frames are outside every module while a CLR (`clr`) is loaded.
    ///
    /// The header line's columns follow the debugger's: `Size` and `Prev` in granules (8 bytes
    /// on x86, 16 on x64; a virtual block's `Size` is its `CommitSize` in granules), `Flags`
    /// the decoded `_HEAP_ENTRY.Flags` (that the debugger prints exactly this byte there is
    /// **UNCONFIRMED**), then the user pointer and size.
    pub fn windbg_text(&self, frames: &[Frame], clr: Option<&str>) -> String {
        let (w, g) = match self.arch {
            Arch::X86 => (8, 8),
            Arch::X64 => (16, 16),
        };
        let mut s = String::new();
        let _ = writeln!(s, "    address {:0w$x} found in", self.query);
        let _ = writeln!(s, "    _HEAP @ {:x}", self.heap);
        let pad = if w == 16 { "        " } else { "" };
        let _ = writeln!(s, "      {pad}HEAP_ENTRY Size Prev Flags    {pad}UserPtr UserSize - state");
        let _ = write!(
            s,
            "        {:0w$x} {:04x} {:04x}  [{:02x}]   {:0w$x}    {:05x} - ({})",
            self.address,
            self.size / g,
            self.previous_size / g,
            self.flags,
            self.user_address,
            self.user_size,
            self.state()
        );
        if self.trace_entry != 0 && frames.is_empty() {
            let _ = write!(
                s,
                "\n        stack trace entry {:x} could not be read (see the stack problems)",
                self.trace_entry
            );
        }
        for f in frames {
            let _ = write!(s, "\n        {:x} {}", f.address, f.text);
        }
        if let Some(clr) = clr.filter(|_| frames.iter().any(|f| f.jit_or_unknown)) {
            let _ = write!(
                s,
                "\n        (frames outside every module may be JIT-compiled managed code; {clr} is loaded: \
                 use SOS !ip2md <address>)"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::testing::{BlockSpec, Epoch, HeapSpec, Space, VirtSpec};
    use crate::heap::{walk_heap, HeapRef};

    fn heap_ref(address: u64, arch: Arch) -> HeapRef {
        HeapRef {
            address,
            arch,
            wow64_32bit: false,
            index: Some(0),
            is_process_heap: true,
            ust: false,
            page_heap_owner: None,
        }
    }

    fn report(arch: Arch) -> (HeapSpec, HeapReport) {
        let mut spec = HeapSpec::simple(
            arch,
            Epoch::Win7,
            0x0050_0000,
            0x10,
            2,
            vec![BlockSpec::busy(4, 0x11), BlockSpec::free(6), BlockSpec::busy(3, 8)],
        );
        spec.virtual_blocks.push(VirtSpec { address: 0x0100_0000, commit: 0x3000, user_size: 0x2f00, trace: 0 });
        let (space, _) = spec.write();
        let rep = walk_heap(&space.build(), &heap_ref(spec.heap(), arch), Epoch::Win7.build());
        (spec, rep)
    }

    #[test]
    fn finds_header_user_data_and_virtual_extent() {
        for arch in [Arch::X86, Arch::X64] {
            let (_, rep) = report(arch);
            let idx = BlockIndex::new(&rep, &rep.blocks.refs());
            let stacks = StackTable::collect(&Space::default().build(), &rep);
            let b = &rep.blocks;
            let first = (0..b.len()).find(|&i| b.kind[i] == 0 && b.busy[i]).unwrap();
            for probe in [b.address[first], b.user_address[first], b.address[first] + b.size[first] - 1] {
                let a = Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, probe).unwrap();
                assert_eq!((a.row, a.address, a.user_size, a.busy), (first, b.address[first], 0x11, true));
                assert_eq!(a.previous_size, b.size[first - 1]);
                assert_eq!(a.stack_id, -1);
            }
            let v = &rep.heaps[0].virtual_blocks[0];
            for probe in [v.address, v.header_address, v.user_address, v.address + v.commit_size - 1] {
                let a = Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, probe).unwrap();
                assert_eq!((a.kind, a.extent_start, a.extent_end), (BlockKind::Virtual, v.address, v.address + 0x3000));
                assert_eq!((a.previous_size, a.state().as_str()), (0, "busy VirtualAlloc"));
            }
            assert!(Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, v.address + 0x3000).is_none());
            assert!(Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, 0x10).is_none());
            assert!(Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, u64::MAX).is_none());
            let text = Allocation::find(&rep, &rep.blocks.refs(), &stacks, &idx, v.user_address)
                .unwrap()
                .windbg_text(&[], None);
            assert!(text.contains("found in\n    _HEAP @ 500000\n"), "{text}");
            assert!(text.ends_with("02f00 - (busy VirtualAlloc)"), "{text}");
        }
    }

    #[test]
    fn nested_extents_pick_the_innermost() {
        // A heap whose header is not captured: one listed heap with no rows, to which rows are added.
        let mut rep = walk_heap(&Space::default().build(), &heap_ref(1, Arch::X64), 7601);
        let mut row = |address, size| {
            let mut r = crate::heap::BlockRow::top(BlockKind::Backend, true);
            (r.address, r.size, r.flags) = (address, size, 1);
            rep.blocks.push(&r)
        };
        row(0x1000, 0x1000); // outer
        row(0x1100, 0x100); // nested
        row(0x3000, 0x10);
        row(0x1000, 0x40); // a container's first child starts where the container does
        rep.heaps[0].blocks = 0..4;
        let idx = BlockIndex::new(&rep, &rep.blocks.refs());
        assert_eq!(idx.find(0x1010).map(|f| f.0), Some(3), "the child, not its container");
        assert_eq!(idx.find(0x1040).map(|f| f.0), Some(0));
        assert_eq!(idx.find(0x1150).map(|f| f.0), Some(1));
        assert_eq!(idx.find(0x1250).map(|f| f.0), Some(0));
        assert_eq!(idx.find(0x0fff), None);
        assert_eq!(idx.find(0x2000), None);
        assert_eq!(idx.find(0x300f).map(|f| f.0), Some(2));
    }
}
