//! Which busy allocations something still points to: the mark phase of leak-triage.md §2, the
//! blocks WinDbg's `!heap -l` and `umdh -g` call leaked.
//!
//! * **Allocations** (§2.1) are the `is_allocation` rows; a word *references* one when it lies in
//!   `[user_address, user_address + user_size)` (interior pointers count, one past the end does
//!   not, §2.3). [`AllocIndex`] sorts their user ranges once; a lookup is a range check against
//!   the lowest start and highest end, then a binary search.
//! * **Heap-owned memory** `H` (§2.1) is every MemoryInfoList region whose `AllocationBase` is
//!   that of a heap structure (the heap, its segments, virtual blocks, LFH front end and zones,
//!   page-heap blocks), plus those structures' own extents when the dump has no region for them.
//! * **Roots** (§2.2) are every captured byte outside `H`, except read-only or executable image
//!   regions, read as aligned `P`-byte words, and every integer register of every thread
//!   CONTEXT. Each root word has a kind: `stack` (the reservation of a thread's stack), `global`
//!   (a writable image region), `other`; registers are `register`.
//! * **Mark** (§2.3): allocations referenced by a root are reached at depth 0; then the user data
//!   of each newly reached allocation is scanned, level by level, with an explicit work list (no
//!   recursion), so `depth` is the breadth-first distance of §2.4. Free blocks, headers, heap
//!   metadata and the tail after `user_size` are never read.
//!
//! Every root byte is scanned once and every allocation's data at most once, so the work is
//! linear in the captured bytes; memory is a few words per allocation.
//!
//! WOW64 (§2.2, *derived*): when the process has 32-bit heaps, every word is 4 bytes wide (a
//! 64-bit pointer to a 32-bit block holds the address in its low four bytes).

use std::collections::HashSet;
use std::time::Instant;

use crate::dump::{Dump, Region};
use crate::heap::{BlockKind, BlockRefs, HeapReport};
use crate::limits::Cancel;
use crate::memory::AddressSpace;
use crate::target::Arch;

/// Where a root word lies (§2.2). Used as bits of [`Reach::direct_roots`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RootKind {
    /// A writable image region (`.data`).
    Global = 1,
    /// The reservation of a thread's stack (stale frames below the stack pointer included).
    Stack = 2,
    /// A CONTEXT register of a thread.
    Register = 4,
    /// Any other captured memory outside the heaps: TEB, PEB, other private or mapped memory.
    Other = 8,
}

impl RootKind {
    /// In the order §2.4 ranks them for `reached_by`.
    pub const ALL: [RootKind; 4] = [RootKind::Global, RootKind::Stack, RootKind::Register, RootKind::Other];

    /// The bit of [`Reach::direct_roots`].
    pub const fn bit(self) -> u8 {
        self as u8
    }

    /// `global`, `stack`, `register`, `other`.
    pub const fn name(self) -> &'static str {
        match self {
            RootKind::Global => "global",
            RootKind::Stack => "stack",
            RootKind::Register => "register",
            RootKind::Other => "other",
        }
    }
}

/// How an allocation was reached (§2.4). Stored as its `u8` code; codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReachedBy {
    /// Not reached (or not an allocation).
    None = 0,
    /// A word in a writable image region references it.
    Global = 1,
    /// A word of a thread's stack references it (and no global does).
    Stack = 2,
    /// A thread register references it (and no global or stack word does).
    Register = 3,
    /// Other root memory references it, and nothing above does.
    Other = 4,
    /// Reached only through other reached allocations.
    Heap = 5,
}

impl ReachedBy {
    /// Every value, by code.
    pub const ALL: [ReachedBy; 6] =
        [ReachedBy::None, ReachedBy::Global, ReachedBy::Stack, ReachedBy::Register, ReachedBy::Other, ReachedBy::Heap];

    /// The stable code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// `none`, `global`, `stack`, `register`, `other`, `heap`.
    pub const fn name(self) -> &'static str {
        match self {
            ReachedBy::None => "none",
            ReachedBy::Global => "global",
            ReachedBy::Stack => "stack",
            ReachedBy::Register => "register",
            ReachedBy::Other => "other",
            ReachedBy::Heap => "heap",
        }
    }

    /// §2.4: the first kind of `direct` (bits of [`RootKind`]) in the order global, stack,
    /// register, other; else `heap` when `reached`; else `none`.
    pub fn from_roots(direct: u8, reached: bool) -> ReachedBy {
        if direct & RootKind::Global.bit() != 0 {
            ReachedBy::Global
        } else if direct & RootKind::Stack.bit() != 0 {
            ReachedBy::Stack
        } else if direct & RootKind::Register.bit() != 0 {
            ReachedBy::Register
        } else if direct & RootKind::Other.bit() != 0 {
            ReachedBy::Other
        } else if reached {
            ReachedBy::Heap
        } else {
            ReachedBy::None
        }
    }
}

/// The user ranges of every allocation of a report, sorted by start.
#[derive(Debug, Clone, Default)]
pub struct AllocIndex {
    starts: Vec<u64>,
    ends: Vec<u64>,
    rows: Vec<u32>,
    /// `reach[i]` = max of `ends[..=i]`; only kept when some ranges overlap (a damaged heap).
    reach: Option<Vec<u64>>,
    lo: u64,
    hi: u64,
}

impl AllocIndex {
    /// Index the non-empty user ranges of the `is_allocation` rows of the block columns `b`.
    pub fn new(b: &BlockRefs<'_>) -> Self {
        use rayon::slice::ParallelSliceMut;

        let n = b.len().min(u32::MAX as usize);
        let mut rows: Vec<u32> = (0..n as u32)
            .filter(|&r| {
                let r = r as usize;
                b.is_allocation[r] && b.user_size[r] > 0 && b.user_address[r].checked_add(b.user_size[r]).is_some()
            })
            .collect();
        // Rows are in address order within a segment, so the array is mostly sorted already; sort
        // only when it is not (row number breaks ties, so a container's first child cannot come
        // first). One u32 per allocation is sorted, not a tuple.
        let key = |r: &u32| (b.user_address[*r as usize], *r);
        if !rows.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
            rows.par_sort_unstable_by_key(key);
        }
        let starts: Vec<u64> = rows.iter().map(|&r| b.user_address[r as usize]).collect();
        let ends: Vec<u64> = rows.iter().map(|&r| b.user_address[r as usize] + b.user_size[r as usize]).collect();
        let disjoint = starts.windows(2).zip(&ends).all(|(s, &e)| e <= s[1]);
        let reach = (!disjoint).then(|| {
            let mut max = 0;
            ends.iter()
                .map(|&e| {
                    max = max.max(e);
                    max
                })
                .collect()
        });
        let lo = starts.first().copied().unwrap_or(u64::MAX);
        let hi = ends.iter().copied().max().unwrap_or(0);
        AllocIndex { starts, ends, rows, reach, lo, hi }
    }

    /// Number of allocations indexed.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether no allocation is indexed.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The block row of index entry `i`.
    pub fn row(&self, i: usize) -> usize {
        self.rows[i] as usize
    }

    /// `[start, end)` of index entry `i`.
    pub fn range(&self, i: usize) -> (u64, u64) {
        (self.starts[i], self.ends[i])
    }

    /// Call `hit` with the index entry of every allocation that `w` references.
    #[inline]
    pub fn for_each_hit(&self, w: u64, mut hit: impl FnMut(usize)) {
        if w < self.lo || w >= self.hi {
            return;
        }
        let i = self.starts.partition_point(|&s| s <= w);
        match &self.reach {
            None => {
                if i > 0 && w < self.ends[i - 1] {
                    hit(i - 1);
                }
            }
            Some(reach) => {
                let mut j = i;
                while j > 0 && reach[j - 1] > w {
                    j -= 1;
                    if self.ends[j] > w {
                        hit(j);
                    }
                }
            }
        }
    }
}

/// Call `f` with every `p`-byte word at an address that is a multiple of `p`, lies wholly inside
/// `[start, end)` and is captured (§2.2, §2.3). Returns the bytes of those words.
pub fn scan_words(mem: &AddressSpace, start: u64, end: u64, arch: Arch, mut f: impl FnMut(u64)) -> u64 {
    let p = arch.ptr_size();
    let mut bytes = 0;
    // The next aligned address not yet scanned: a word that straddles two captured ranges that
    // touch is read once, with `mem.read`, when the first range ends.
    let mut next = start.div_ceil(p).saturating_mul(p);
    for (va, slice) in mem.pieces(start, end) {
        let piece_end = va + slice.len() as u64;
        let first = next.max(va.div_ceil(p).saturating_mul(p));
        if first >= piece_end {
            continue;
        }
        let body = &slice[(first - va) as usize..];
        let whole = body.len() / p as usize * p as usize;
        match arch {
            Arch::X64 => {
                for c in body[..whole].chunks_exact(8) {
                    f(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
                }
            }
            Arch::X86 => {
                for c in body[..whole].chunks_exact(4) {
                    f(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
                }
            }
        }
        bytes += whole as u64;
        next = first + whole as u64;
        // A partial word at the end of this range: whole only if the next range continues it.
        if next < piece_end && next.checked_add(p).is_some_and(|e| e <= end) {
            if let Ok(b) = mem.read(next, p) {
                f(arch.ptrs(&b).next().unwrap_or(0));
                bytes += p;
            }
            next += p;
        }
    }
    bytes
}

/// A labelled span of the address space: what kind of root its captured bytes are, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Other = 0,
    Global = 1,
    Stack = 2,
    /// Heap-owned, or a read-only / executable image region: never a root.
    Skip = 3,
}

/// The root memory of a dump (§2.2): captured pieces outside the heaps with their kinds.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    /// `(start, end, kind)`, sorted, disjoint.
    pub pieces: Vec<(u64, u64, RootKind)>,
    /// `(thread id, register values)` of every thread whose CONTEXT the dump holds.
    pub registers: Vec<(u32, Vec<u64>)>,
    /// The heap-owned spans (§2.1), sorted, merged.
    pub heap_owned: Vec<(u64, u64)>,
    /// What makes the root set incomplete (§2.5): stacks or contexts not in the dump, no
    /// MemoryInfoList.
    pub warnings: Vec<String>,
}

/// x64 `CONTEXT` offsets of Rax..R15 (0x78..0xf0) and Rip (0xf8); x86 of Edi, Esi, Ebx, Edx, Ecx,
/// Eax, Ebp, Eip, Esp (§2.2, from the field order of `CONTEXT_AMD64` / `CONTEXT_X86` in rust-minidump).
fn register_offsets(arch: Arch) -> &'static [usize] {
    match arch {
        Arch::X64 => {
            &[0x78, 0x80, 0x88, 0x90, 0x98, 0xa0, 0xa8, 0xb0, 0xb8, 0xc0, 0xc8, 0xd0, 0xd8, 0xe0, 0xe8, 0xf0, 0xf8]
        }
        Arch::X86 => &[0x9c, 0xa0, 0xa4, 0xa8, 0xac, 0xb0, 0xb4, 0xb8, 0xc4],
    }
}

/// Writable per §2.2: the low byte of `Protect` is `PAGE_READWRITE`, `PAGE_WRITECOPY`,
/// `PAGE_EXECUTE_READWRITE` or `PAGE_EXECUTE_WRITECOPY` (`PAGE_GUARD` and other modifiers are
/// ignored).
pub fn is_writable(protect: u32) -> bool {
    matches!(protect & 0xff, 0x04 | 0x08 | 0x40 | 0x80)
}

const MEM_IMAGE: u32 = 0x0100_0000;

impl Roots {
    /// The roots of `dump` whose heaps `report` (with block columns `b`) describes.
    pub fn find(dump: &Dump, report: &HeapReport, b: &BlockRefs<'_>) -> Roots {
        let mut out = Roots::default();
        let info = dump.info();
        let mut regions: Vec<Region> = info.regions.clone().unwrap_or_default();
        regions.retain(|r| r.size > 0);
        regions.sort_by_key(|r| r.base);
        if info.regions.is_none() {
            out.warnings.push(
                "no MemoryInfoList: heap reservations, stacks and image protections are taken from the heap walk \
                 and the module and thread lists"
                    .into(),
            );
        }
        let region_at = |addr: u64| -> Option<&Region> {
            let i = regions.partition_point(|r| r.base <= addr);
            let r = regions.get(i.checked_sub(1)?)?;
            (addr - r.base < r.size).then_some(r)
        };

        // §2.1: the heap structures whose whole reservations are heap-owned.
        let mut seeds: Vec<u64> = Vec::new();
        let mut direct: Vec<(u64, u64)> = Vec::new();
        for h in &report.heaps {
            seeds.push(h.address);
            for s in &h.segments {
                seeds.push(s.base);
                direct.push((s.base, s.last_valid_entry));
            }
            for v in &h.virtual_blocks {
                seeds.push(v.address);
                direct.push((v.address, v.address.saturating_add(v.commit_size)));
            }
            if let Some(l) = &h.lfh {
                seeds.push(l.address);
                seeds.extend(&l.zones);
            }
            if h.front_end_heap != 0 {
                seeds.push(h.front_end_heap);
            }
            if let Some(p) = &h.page_heap {
                seeds.push(p.root);
            }
            // Page-heap and segment-heap rows each stand in their own reservations.
            for row in h.blocks.start.min(b.len())..h.blocks.end.min(b.len()) {
                if b.level[row] == 0
                    && matches!(
                        BlockKind::from_code(b.kind[row]),
                        Some(BlockKind::DphBlock | BlockKind::LargeBlock | BlockKind::PageRange)
                    )
                {
                    seeds.push(b.address[row]);
                    direct.push((b.address[row], b.address[row].saturating_add(b.size[row])));
                }
            }
        }
        let heap_bases: HashSet<u64> = seeds.iter().filter_map(|&a| region_at(a)).map(|r| r.allocation_base).collect();
        let stack_bases: HashSet<u64> =
            info.threads.iter().filter_map(|t| region_at(t.stack_start)).map(|r| r.allocation_base).collect();

        let mut spans: Vec<(u64, u64, Label)> = Vec::new();
        for r in &regions {
            let label = if heap_bases.contains(&r.allocation_base) {
                Label::Skip
            } else if r.kind == MEM_IMAGE {
                if is_writable(r.protect) {
                    Label::Global
                } else {
                    Label::Skip
                }
            } else if stack_bases.contains(&r.allocation_base) {
                Label::Stack
            } else {
                continue;
            };
            spans.push((r.base, r.base.saturating_add(r.size), label));
        }
        spans.extend(direct.iter().map(|&(s, e)| (s, e, Label::Skip)));
        if info.regions.is_none() {
            for t in &info.threads {
                spans.push((t.stack_start, t.stack_start.saturating_add(u64::from(t.stack_size)), Label::Stack));
            }
            for m in &info.modules {
                spans.push((m.base, m.end(), Label::Global));
            }
        }
        let painted = paint(&spans);
        out.heap_owned = merge(
            direct
                .iter()
                .copied()
                .chain(
                    regions
                        .iter()
                        .filter(|r| heap_bases.contains(&r.allocation_base))
                        .map(|r| (r.base, r.base.saturating_add(r.size))),
                )
                .filter(|s| s.1 > s.0)
                .collect(),
        );

        // Captured ranges intersected with the painted labels; unlabelled bytes are `other`.
        let mem = dump.memory();
        let mut k = 0;
        for r in mem.ranges() {
            let mut at = r.va;
            let end = r.end();
            while at < end {
                while k < painted.len() && painted[k].1 <= at {
                    k += 1;
                }
                let (next, label) = match painted.get(k) {
                    Some(&(s, e, l)) if s <= at => (e.min(end), l),
                    Some(&(s, _, _)) => (s.min(end), Label::Other),
                    None => (end, Label::Other),
                };
                let kind = match label {
                    Label::Skip => None,
                    Label::Global => Some(RootKind::Global),
                    Label::Stack => Some(RootKind::Stack),
                    Label::Other => Some(RootKind::Other),
                };
                if let Some(kind) = kind {
                    match out.pieces.last_mut() {
                        Some(last) if last.1 == at && last.2 == kind => last.1 = next,
                        _ => out.pieces.push((at, next, kind)),
                    }
                }
                at = next;
            }
        }

        let arch = dump.target().arch;
        for t in &info.threads {
            if t.stack_size == 0 || !mem.is_captured(t.stack_start, u64::from(t.stack_size)) {
                out.warnings.push(format!("thread {:#x}: its stack is not (wholly) in the dump", t.id));
            }
            match dump.thread_context(t) {
                Some(ctx) => {
                    let p = arch.ptr_size() as usize;
                    let regs: Vec<u64> = register_offsets(arch)
                        .iter()
                        .filter_map(|&o| ctx.get(o..o + p))
                        .map(|b| arch.ptrs(b).next().unwrap_or(0))
                        .collect();
                    out.registers.push((t.id, regs));
                }
                None => out
                    .warnings
                    .push(format!("thread {:#x}: no CONTEXT in the dump (its registers are no roots)", t.id)),
            }
        }
        out
    }

    /// Captured root bytes.
    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.1 - p.0).sum()
    }
}

/// Split overlapping labelled spans into disjoint ones, each with the highest label covering it.
fn paint(spans: &[(u64, u64, Label)]) -> Vec<(u64, u64, Label)> {
    let mut events: Vec<(u64, bool, Label)> = Vec::with_capacity(spans.len() * 2);
    for &(s, e, l) in spans {
        if e > s {
            events.push((s, true, l));
            events.push((e, false, l));
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut counts = [0u32; 4];
    let mut out: Vec<(u64, u64, Label)> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let at = events[i].0;
        while i < events.len() && events[i].0 == at {
            let c = &mut counts[events[i].2 as usize];
            *c = if events[i].1 { *c + 1 } else { c.saturating_sub(1) };
            i += 1;
        }
        let Some(&(next, _, _)) = events.get(i) else { break };
        let top =
            [Label::Skip, Label::Stack, Label::Global, Label::Other].into_iter().find(|&l| counts[l as usize] > 0);
        if let Some(l) = top {
            match out.last_mut() {
                Some(last) if last.1 == at && last.2 == l => last.1 = next,
                _ => out.push((at, next, l)),
            }
        }
    }
    out
}

fn merge(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// What the mark phase found, per block row (rows that are not allocations: not reached, depth
/// −1, no roots).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    /// Reached from a root (§2.3).
    pub reachable: Vec<bool>,
    /// Breadth-first distance from the roots (§2.4): 0 when a root references it, −1 when not
    /// reached.
    pub depth: Vec<i32>,
    /// Bits of [`RootKind`]: the kinds of root words (and registers) that reference it.
    pub direct_roots: Vec<u8>,
    /// [`ReachedBy`] code.
    pub reached_by: Vec<u8>,
    /// Allocations indexed.
    pub allocations: usize,
    /// Allocations reached.
    pub reached: usize,
    /// Root bytes scanned (whole words).
    pub root_bytes: u64,
    /// Register values used as roots.
    pub register_words: usize,
    /// User-data bytes of reached allocations scanned.
    pub heap_bytes: u64,
    /// Deepest level reached.
    pub max_depth: i32,
    /// Seconds spent sorting the allocation index.
    pub index_seconds: f64,
    /// Seconds spent finding the roots (regions, heap-owned memory) and setting up the marks.
    pub roots_seconds: f64,
    /// Seconds spent scanning the roots.
    pub root_scan_seconds: f64,
    /// Seconds spent following references through reached allocations.
    pub heap_scan_seconds: f64,
    /// Width of the words scanned.
    pub word_size: u64,
    /// What makes the root set incomplete (§2.5).
    pub warnings: Vec<String>,
}

/// The width of the words scanned: 4 when the process has 32-bit heaps (WOW64, §2.2), else the
/// dump's pointer size.
pub fn word_arch(dump: &Dump, report: &HeapReport) -> Arch {
    if report.heaps.iter().any(|h| h.arch == Arch::X86) {
        Arch::X86
    } else {
        dump.target().arch
    }
}

/// Run the mark phase of §2.3 over `dump` and its walk `report` (block columns `b`).
pub fn mark(dump: &Dump, report: &HeapReport, b: &BlockRefs<'_>) -> Reach {
    mark_until(dump, report, b, &Cancel::new())
}

/// [`mark`], stopping between root pieces and between 64 Ki reached blocks once `cancel` is set
/// (the caller then discards the result).
pub fn mark_until(dump: &Dump, report: &HeapReport, b: &BlockRefs<'_>, cancel: &Cancel) -> Reach {
    let t0 = Instant::now();
    let index = AllocIndex::new(b);
    let t1 = Instant::now();
    let roots = Roots::find(dump, report, b);
    let arch = word_arch(dump, report);
    let mem = dump.memory();
    let n = index.len();
    let mut reached = vec![false; n];
    let mut depth = vec![-1i32; n];
    let mut direct = vec![0u8; n];
    let mut frontier: Vec<u32> = Vec::new();
    let t2 = Instant::now();

    let mut root_bytes = 0;
    for &(s, e, kind) in &roots.pieces {
        if cancel.is_set() {
            break;
        }
        let bit = kind.bit();
        root_bytes += scan_words(mem, s, e, arch, |w| {
            index.for_each_hit(w, |j| {
                direct[j] |= bit;
                if !reached[j] {
                    reached[j] = true;
                    depth[j] = 0;
                    frontier.push(j as u32);
                }
            })
        });
    }
    let mut register_words = 0;
    for (_, regs) in &roots.registers {
        for &w in regs {
            register_words += 1;
            // A 64-bit register holding a 32-bit pointer: the low four bytes (§2.2, WOW64).
            let w = if arch == Arch::X86 { w & 0xffff_ffff } else { w };
            index.for_each_hit(w, |j| {
                direct[j] |= RootKind::Register.bit();
                if !reached[j] {
                    reached[j] = true;
                    depth[j] = 0;
                    frontier.push(j as u32);
                }
            });
        }
    }
    let t3 = Instant::now();

    let mut heap_bytes = 0;
    let mut level = 0;
    let mut next: Vec<u32> = Vec::new();
    while !frontier.is_empty() {
        for (i, &j) in frontier.iter().enumerate() {
            if i % (1 << 16) == 0 && cancel.is_set() {
                break;
            }
            let (s, e) = index.range(j as usize);
            heap_bytes += scan_words(mem, s, e, arch, |w| {
                index.for_each_hit(w, |k| {
                    if !reached[k] {
                        reached[k] = true;
                        depth[k] = level + 1;
                        next.push(k as u32);
                    }
                })
            });
        }
        std::mem::swap(&mut frontier, &mut next);
        next.clear();
        if cancel.is_set() {
            frontier.clear();
        }
        if !frontier.is_empty() {
            level += 1;
        }
    }
    let t4 = Instant::now();

    let rows = b.len();
    let mut out = Reach {
        reachable: vec![false; rows],
        depth: vec![-1; rows],
        direct_roots: vec![0; rows],
        reached_by: vec![ReachedBy::None.code(); rows],
        allocations: n,
        reached: reached.iter().filter(|&&r| r).count(),
        root_bytes,
        register_words,
        heap_bytes,
        max_depth: if n > 0 && reached.iter().any(|&r| r) { level } else { -1 },
        index_seconds: (t1 - t0).as_secs_f64(),
        roots_seconds: (t2 - t1).as_secs_f64(),
        root_scan_seconds: (t3 - t2).as_secs_f64(),
        heap_scan_seconds: (t4 - t3).as_secs_f64(),
        word_size: arch.ptr_size(),
        warnings: roots.warnings,
    };
    for j in 0..n {
        let row = index.row(j);
        out.reachable[row] = reached[j];
        out.depth[row] = depth[j];
        out.direct_roots[row] = direct[j];
        out.reached_by[row] = ReachedBy::from_roots(direct[j], reached[j]).code();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::{BlockColumns, BlockRow};
    use crate::mapped::FileBytes;
    use crate::memory::CapturedRange;
    use std::sync::Arc;

    #[test]
    fn reached_by_ranks_global_stack_register_other_then_heap() {
        // §2.4's order.
        let g = RootKind::Global.bit();
        let s = RootKind::Stack.bit();
        let r = RootKind::Register.bit();
        let o = RootKind::Other.bit();
        assert_eq!(ReachedBy::from_roots(g | s | r | o, true), ReachedBy::Global);
        assert_eq!(ReachedBy::from_roots(s | r | o, true), ReachedBy::Stack);
        assert_eq!(ReachedBy::from_roots(r | o, true), ReachedBy::Register);
        assert_eq!(ReachedBy::from_roots(o, true), ReachedBy::Other);
        assert_eq!(ReachedBy::from_roots(0, true), ReachedBy::Heap);
        assert_eq!(ReachedBy::from_roots(0, false), ReachedBy::None);
    }

    #[test]
    fn writable_is_the_low_byte_of_protect() {
        for (p, w) in
            [(0x04, true), (0x08, true), (0x40, true), (0x80, true), (0x104, true), (0x02, false), (0x20, false)]
        {
            assert_eq!(is_writable(p), w, "{p:#x}");
        }
    }

    fn columns_with(ranges: &[(u64, u64)]) -> BlockColumns {
        let mut cols = BlockColumns::default();
        for &(ua, us) in ranges {
            let mut r = BlockRow::top(BlockKind::Backend, true);
            (r.user_address, r.user_size) = (ua, us);
            cols.push(&r);
        }
        cols
    }

    #[test]
    fn a_word_references_the_user_range_only() {
        // §2.3: interior pointers count; one past the end and the header do not.
        let idx = AllocIndex::new(&columns_with(&[(0x1010, 0x20), (0x1040, 0x8), (0x2000, 0)]).refs());
        let hits = |w| {
            let mut v = Vec::new();
            idx.for_each_hit(w, |j| v.push(idx.row(j)));
            v
        };
        assert_eq!(hits(0x1010), vec![0]);
        assert_eq!(hits(0x102f), vec![0]);
        assert_eq!(hits(0x1030), Vec::<usize>::new());
        assert_eq!(hits(0x1000), Vec::<usize>::new());
        assert_eq!(hits(0x1047), vec![1]);
        assert_eq!(hits(0x2000), Vec::<usize>::new(), "an empty allocation holds no address");
        // Overlapping ranges (a damaged heap): a word references every range that holds it.
        let idx = AllocIndex::new(&columns_with(&[(0x1000, 0x100), (0x1010, 0x10), (0x1080, 0x10)]).refs());
        let mut v = Vec::new();
        idx.for_each_hit(0x1018, |j| v.push(idx.row(j)));
        v.sort_unstable();
        assert_eq!(v, vec![0, 1]);
    }

    #[test]
    fn words_are_aligned_whole_and_captured() {
        // 0x1000..0x1014 at file 0, 0x1014..0x1020 at file 0x40 (touching in memory only), and a
        // gap before 0x1030..0x1038.
        let file: Vec<u8> = (0..0x80u8).collect();
        let decl = [
            CapturedRange { va: 0x1000, len: 0x14, file_offset: 0 },
            CapturedRange { va: 0x1014, len: 0xc, file_offset: 0x40 },
            CapturedRange { va: 0x1030, len: 0x8, file_offset: 0x60 },
        ];
        let (mem, _) = AddressSpace::new(Arc::new(FileBytes::Owned(file)), decl);
        let mut seen = Vec::new();
        let n = scan_words(&mem, 0x1001, 0x1040, Arch::X64, |w| seen.push(w));
        // Words at 0x1008, 0x1010 (straddling the two ranges), 0x1018, 0x1030.
        assert_eq!(n, 32);
        assert_eq!(seen[0], u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]));
        assert_eq!(seen[1], u64::from_le_bytes([16, 17, 18, 19, 0x40, 0x41, 0x42, 0x43]));
        assert_eq!(seen[3], u64::from_le_bytes([0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67]));
        // A word cut by the end of the interval is not read.
        assert_eq!(scan_words(&mem, 0x1000, 0x100c, Arch::X64, |_| {}), 8);
        assert_eq!(scan_words(&mem, 0x1000, 0x100c, Arch::X86, |_| {}), 12);
    }

    #[test]
    fn paint_keeps_the_highest_label() {
        let p = paint(&[(0, 10, Label::Other), (5, 20, Label::Skip), (15, 30, Label::Stack)]);
        assert_eq!(p, vec![(0, 5, Label::Other), (5, 20, Label::Skip), (20, 30, Label::Stack)]);
    }
}
