//! Bounded walks of `LIST_ENTRY` lists in dump memory.
//!
//! A list in a dump may be cut (a node not captured), broken (a null or wild link) or looped
//! (a node links back into the middle of the list). The walker follows `Flink` from the head,
//! stops at the head, and otherwise stops at the first node it cannot read, the first node seen
//! twice, or after `max` nodes. It also checks each node's `Blink` against the node it came from
//! (the invariant the heap's own safe unlinking relies on) and reports a mismatch without
//! stopping. Memory use is bounded by the nodes actually read.
//!
//! Bounding each list is not enough against a crafted dump: thousands of heaps or segments could
//! all point their lists at the same long chain. A [`NodeBudget`] shared by every list walk of a
//! report caps the total number of nodes visited at one per 8 captured bytes (a node is two
//! pointers, so no genuine set of lists can need more), which keeps the whole walk linear in the
//! size of the dump.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use super::corruption::CorruptionKind;
use crate::memory::AddressSpace;
use crate::target::Arch;

/// How many list nodes the walks of one report may still visit.
#[derive(Debug)]
pub(crate) struct NodeBudget {
    left: AtomicU64,
    /// Most nodes one list may have (`Limits::max_list_nodes`).
    per_list: usize,
}

impl NodeBudget {
    /// The budget for a walk over `mem`: one node per 8 captured bytes, plus slack; no list
    /// longer than `per_list` nodes.
    pub(crate) fn for_space(mem: &AddressSpace, per_list: u64) -> Self {
        NodeBudget {
            left: AtomicU64::new(mem.captured_bytes() / 8 + 4096),
            per_list: usize::try_from(per_list).unwrap_or(usize::MAX),
        }
    }

    #[cfg(test)]
    pub(crate) fn new(nodes: u64) -> Self {
        NodeBudget { left: AtomicU64::new(nodes), per_list: usize::MAX }
    }

    pub(crate) fn take(&self) -> bool {
        self.left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok()
    }
}

/// A problem found on a list: where, what, and the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListProblem {
    pub(crate) address: u64,
    pub(crate) kind: CorruptionKind,
    pub(crate) detail: String,
}

/// The nodes of a list (addresses of their `LIST_ENTRY`s, head excluded) and what went wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListWalk {
    pub(crate) nodes: Vec<u64>,
    /// Problems, in the order met. The last one stopped the walk when `complete` is false.
    pub(crate) problems: Vec<ListProblem>,
    /// Whether the walk came back to the head.
    pub(crate) complete: bool,
}

/// Walk the list whose head `LIST_ENTRY` is at `head`, visiting at most `max` nodes and no more
/// than `budget` allows. `what` names the list in problem details.
pub(crate) fn walk_list(
    mem: &AddressSpace,
    arch: Arch,
    head: u64,
    max: usize,
    budget: &NodeBudget,
    what: &str,
) -> ListWalk {
    let ptr = arch.ptr_size();
    let max = max.min(budget.per_list);
    let mut out = ListWalk::default();
    let problem = |out: &mut ListWalk, address, kind, detail: String| {
        out.problems.push(ListProblem { address, kind, detail: format!("{what}: {detail}") });
    };
    let mut seen = HashSet::new();
    let mut prev = head;
    let mut link = match mem.read_ptr(arch, head) {
        Ok(l) => l,
        Err(_) => {
            problem(&mut out, head, CorruptionKind::NotCaptured, format!("list head {head:#x} not captured"));
            return out;
        }
    };
    loop {
        if link == head {
            out.complete = true;
            return out;
        }
        if link == 0 || link % ptr != 0 || link.checked_add(2 * ptr).is_none() {
            let d = format!("node {prev:#x} has Flink {link:#x}");
            problem(&mut out, prev, CorruptionKind::BadLink, d);
            return out;
        }
        if !seen.insert(link) {
            // Recorded at the node whose Flink closes the loop: that is the link to inspect.
            let d = format!("Flink of {prev:#x} returns to {link:#x} after {} nodes", out.nodes.len());
            problem(&mut out, prev, CorruptionKind::ListLoop, d);
            return out;
        }
        if out.nodes.len() >= max {
            problem(&mut out, link, CorruptionKind::ListTooLong, format!("more than {max} nodes"));
            return out;
        }
        if !budget.take() {
            let d = "the walk's node budget (one node per 8 captured bytes) is exhausted".to_string();
            problem(&mut out, link, CorruptionKind::ListTooLong, d);
            return out;
        }
        let (flink, blink) = match (mem.read_ptr(arch, link), mem.read_ptr(arch, link + ptr)) {
            (Ok(f), Ok(b)) => (f, b),
            _ => {
                // Recorded at the node that holds the pointer out of the dump.
                let d = format!("node {link:#x} (Flink of {prev:#x}) not captured");
                problem(&mut out, prev, CorruptionKind::NotCaptured, d);
                return out;
            }
        };
        if blink != prev {
            let d = format!("node {link:#x} has Blink {blink:#x}, expected {prev:#x}");
            problem(&mut out, link, CorruptionKind::BadLink, d);
        }
        out.nodes.push(link);
        prev = link;
        link = flink;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::testing::Space;

    fn node(s: &mut Space, at: u64, flink: u64, blink: u64) {
        s.put_u32(at, flink as u32);
        s.put_u32(at + 4, blink as u32);
    }

    #[test]
    fn walks_a_circular_list() {
        let mut s = Space::new(0x1000, 0x100);
        node(&mut s, 0x1000, 0x1010, 0x1020);
        node(&mut s, 0x1010, 0x1020, 0x1000);
        node(&mut s, 0x1020, 0x1000, 0x1010);
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &NodeBudget::new(100), "test");
        assert!(w.complete && w.problems.is_empty());
        assert_eq!(w.nodes, vec![0x1010, 0x1020]);
        // Empty list: the head points to itself.
        let mut s = Space::new(0x1000, 0x100);
        node(&mut s, 0x1000, 0x1000, 0x1000);
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &NodeBudget::new(100), "test");
        assert!(w.complete && w.nodes.is_empty());
    }

    #[test]
    fn stops_on_loops_bad_links_missing_nodes_and_length() {
        let mut s = Space::new(0x1000, 0x100);
        node(&mut s, 0x1000, 0x1010, 0);
        node(&mut s, 0x1010, 0x1020, 0x1000);
        node(&mut s, 0x1020, 0x1010, 0x1010); // loops back to 0x1010
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &NodeBudget::new(100), "test");
        assert!(!w.complete);
        assert_eq!(w.nodes, vec![0x1010, 0x1020]);
        assert_eq!(w.problems.last().unwrap().kind, CorruptionKind::ListLoop);

        let w = walk_list(&s.build(), Arch::X86, 0x1000, 1, &NodeBudget::new(100), "test");
        assert_eq!(w.problems.last().unwrap().kind, CorruptionKind::ListTooLong);
        let budget = NodeBudget::new(3);
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &budget, "test");
        assert_eq!(w.nodes.len(), 2);
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &budget, "test");
        assert_eq!(w.nodes.len(), 1, "the budget is shared between walks");
        assert!(w.problems.last().unwrap().detail.contains("budget"));

        let mut s = Space::new(0x1000, 0x100);
        node(&mut s, 0x1000, 0x1010, 0);
        node(&mut s, 0x1010, 0x9000, 0x1004); // Blink wrong, Flink outside the dump
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &NodeBudget::new(100), "test");
        let kinds: Vec<_> = w.problems.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![CorruptionKind::BadLink, CorruptionKind::NotCaptured]);

        let mut s = Space::new(0x1000, 0x100);
        node(&mut s, 0x1000, 0, 0);
        let w = walk_list(&s.build(), Arch::X86, 0x1000, 10, &NodeBudget::new(100), "test");
        assert_eq!(w.problems[0].kind, CorruptionKind::BadLink);
        let w = walk_list(&s.build(), Arch::X86, 0x5000, 10, &NodeBudget::new(100), "test");
        assert_eq!(w.problems[0].kind, CorruptionKind::NotCaptured);
    }
}
