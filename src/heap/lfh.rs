//! The Low Fragmentation Heap front end of an NT heap (§9, §12.6): zones, subsegments, UserBlocks
//! containers and every block inside them, and `RtlpLFHKey` without symbols (§9.9).
//!
//! ## The walk
//!
//! When `_HEAP.FrontEndHeapType` is 2, `_HEAP.FrontEndHeap` is the `_LFH_HEAP`. Before the heap's
//! segments are walked, `plan` reads the LFH's metadata: the zones on `SubSegmentZones`, the
//! `_HEAP_SUBSEGMENT`s in each zone, and each subsegment's UserBlocks header, and decides for
//! every container where its blocks are (`First`, `Stride`, count) or why they cannot be decoded.
//! The back-end walk then meets each container as an ordinary busy block and calls
//! `LfhPlan::emit_children` to append the container's rows right after it: the head
//! `overhead` (back-end header, UserBlocks header, bitmap), one `lfh_block` row per block (with
//! `overhead` gaps in guard-page subsegments) and the slack after the last block. The zones and
//! the block holding `_LFH_HEAP` become `lfh_zone` / `lfh_heap` rows.
//!
//! ## Folklore: `RtlpLFHKey`, per process, without symbols
//!
//! *Situation.* From Windows 8.1 on, a UserBlocks header stores its first-block offset and
//! stride as `EncodedOffsets = (First | Stride << 16) ^ (u32)LFH ^ (u32)UB ^ K` (E1, §9.6), and
//! every block's `SubSegmentCode` is `(u32)Heap ^ K ^ (u32)(blk >> 4) ^ ((blk − UB) << 12)` on x64
//! (E2, §9.7; x86: `blk >> 3`, `<< 13`). K, the low 32 bits of `ntdll!RtlpLFHKey`, is random per
//! process (E5), so it cannot be hard-coded, and it is not in any heap structure in plain form.
//!
//! *Example.* For a container at UB with stride 0x30 (E3: `BlockSize · 16` when `Flags & 3 == 0`)
//! E1 alone fixes the high half of K: `K >> 16 = (EO >> 16) ^ (u16)(UB >> 16) ^ (u16)(LFH >> 16)
//! ^ 0x30`. For each candidate First f (granule steps from the end of the smallest possible
//! bitmap), E1 gives a full K1(f) and E2 on the block at `UB + f` gives K2(f); the true First is
//! the f where K1(f) = K2(f), a 32-bit coincidence otherwise.
//!
//! *Handling.* `key_candidates` derives one K per eligible container (the two proven equations
//! E1 and E2 must agree, §9.9 steps 3–4; the *procedure* is derived, not seen in ntdll). Keys are
//! per process half: a WOW64 process has a 64-bit and a 32-bit ntdll, each with its own key.
//! [`resolve_key`] accepts a key only when a strict majority of the process half's containers
//! derive it (and at least two do, unless there is only one); containers that derive another key
//! are mis-keyed or corrupt and are not decoded. Every block of every container is then checked
//! with E2 (§9.9 step 5): a block whose code does not decode is flagged `BadLfhBlock`. With an
//! ntdll PDB whose GUID and age match, the key is also read through `ntdll!RtlpLFHKey` and the
//! two must agree; a disagreement is recorded and the key that decodes more containers is used.
//! Windows 7 needs no key: its blocks sit at a fixed offset with a stride of `BlockSize`
//! granules (§9.6).

use std::collections::HashMap;

use super::columns::{BlockKind, BlockRow, NotDecoded};
use super::corruption::{CorruptionKind, Recorder};
use super::list::{walk_list, NodeBudget};
use super::rows::{Placed, RowSink};
use crate::layouts::lfh::{
    LfhLayout, LfhModel, ZoneCount, LFH_LAYOUTS, SUBSEGMENT_GUARD_FLAGS, UNUSED_BYTES_COUNT_MASK,
    UNUSED_BYTES_OVERFLOW, UNUSED_BYTES_UST_BUSY, USERDATA_SIGNATURE,
};
use crate::layouts::{select, LayoutRow};
use crate::memory::AddressSpace;
use crate::target::Arch;

/// Upper bound on zones per LFH.
pub const MAX_ZONES: usize = 0x10_0000;
/// Containers per heap that `key_candidates` derives a key from (the rest are verified with
/// the resolved key instead).
pub const KEY_SAMPLES_PER_HEAP: usize = 64;
/// How far past the smallest possible header+bitmap `key_candidates` looks for `First`.
pub const FIRST_SEARCH_BYTES: u64 = 0x2000;

/// Where the LFH key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Windows 7: blocks are found without a key.
    NotNeeded,
    /// Recovered from the dump (§9.9).
    Recovered,
    /// Read through `ntdll!RtlpLFHKey` with a matching PDB.
    Symbol,
    /// Read through the symbol and recovered from the dump, and both agree.
    SymbolAndRecovered,
    /// No key.
    None,
}

impl KeySource {
    /// `not_needed`, `recovered`, `symbol`, `symbol_and_recovered`, `none`.
    pub const fn name(self) -> &'static str {
        match self {
            KeySource::NotNeeded => "not_needed",
            KeySource::Recovered => "recovered",
            KeySource::Symbol => "symbol",
            KeySource::SymbolAndRecovered => "symbol_and_recovered",
            KeySource::None => "none",
        }
    }
}

/// One container's key, derived from E1 and E2 (§9.9 step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCandidate {
    /// The heap.
    pub heap: u64,
    /// The UserBlocks container.
    pub user_blocks: u64,
    /// The key both equations agree on.
    pub key: u32,
}

/// The LFH key of one process half (native, or the 32-bit side of a WOW64 process).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessKey {
    /// The key used, if any.
    pub key: Option<u32>,
    /// The key the dump's containers agree on (§9.9), if they do.
    pub recovered: Option<u32>,
    /// The key read through `ntdll!RtlpLFHKey`, if a matching PDB gave one.
    pub symbol: Option<u32>,
    /// Containers that derived a key.
    pub candidates: usize,
    /// Of those, how many derived the recovered key.
    pub agreeing: usize,
    /// Why no key was recovered, when none was.
    pub why: Option<String>,
}

impl ProcessKey {
    /// Where [`Self::key`] came from.
    pub fn source(&self) -> KeySource {
        match (self.key, self.recovered, self.symbol) {
            (None, _, _) => KeySource::None,
            (Some(k), Some(r), Some(s)) if k == r && k == s => KeySource::SymbolAndRecovered,
            (Some(k), _, Some(s)) if k == s => KeySource::Symbol,
            _ => KeySource::Recovered,
        }
    }
}

/// One `_HEAP_SUBSEGMENT` and what the walk found in its container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubsegmentInfo {
    /// Address of the `_HEAP_SUBSEGMENT`.
    pub address: u64,
    /// Its zone.
    pub zone: u64,
    /// `UserBlocks` (0: a retired descriptor).
    pub user_blocks: u64,
    /// `BlockSize` in bytes (granules × granularity).
    pub block_size: u64,
    /// `Flags`.
    pub flags: u16,
    /// `BlockCount`.
    pub block_count: u16,
    /// `SizeIndex`.
    pub size_index: u8,
    /// `AggregateExchg.Depth`: the free-block count the heap keeps.
    pub free_count_field: u16,
    /// Decoded first-block offset from UserBlocks.
    pub first: Option<u64>,
    /// Decoded stride.
    pub stride: Option<u64>,
    /// Why its container was not decoded.
    pub not_decoded: Option<NotDecoded>,
    /// The container's row, when the walk met it.
    pub row: Option<usize>,
    /// Busy blocks found.
    pub busy: u32,
    /// Σ user size of the busy blocks.
    pub busy_bytes: u64,
    /// Free blocks found.
    pub free: u32,
}

impl SubsegmentInfo {
    /// A retired descriptor (no UserBlocks).
    pub fn is_retired(&self) -> bool {
        self.user_blocks == 0
    }

    /// A guard-page subsegment (§9.4).
    pub fn is_guarded(&self) -> bool {
        self.flags & SUBSEGMENT_GUARD_FLAGS != 0
    }
}

/// The LFH of one heap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfhInfo {
    /// `_HEAP.FrontEndHeap`: the `_LFH_HEAP`.
    pub address: u64,
    /// The layout row used, if the build has one.
    pub layout: Option<&'static str>,
    /// Why the LFH as a whole was not decoded, if it was not.
    pub not_decoded: Option<NotDecoded>,
    /// The evidence for `not_decoded`.
    pub detail: String,
    /// The key used (8.1+).
    pub key: Option<u32>,
    /// Where the key came from.
    pub key_source: KeySource,
    /// Zones on `SubSegmentZones`.
    pub zones: Vec<u64>,
    /// Every subsegment descriptor of every zone, retired ones included.
    pub subsegments: Vec<SubsegmentInfo>,
}

/// One row of the per-size-class table (`!heap -s -h` style).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SizeClass {
    /// Block size in bytes (header included).
    pub block_size: u64,
    /// Subsegments with a container of this block size.
    pub subsegments: u32,
    /// Blocks in them.
    pub blocks: u64,
    /// Busy blocks.
    pub busy: u64,
    /// Σ user size of the busy blocks.
    pub busy_bytes: u64,
    /// Blocks in containers that were not decoded.
    pub undecoded_blocks: u64,
}

impl LfhInfo {
    /// The per-size-class table: decoded and undecoded containers, by block size.
    pub fn size_classes(&self) -> Vec<SizeClass> {
        let mut by: std::collections::BTreeMap<u64, SizeClass> = std::collections::BTreeMap::new();
        for s in self.subsegments.iter().filter(|s| !s.is_retired()) {
            let c = by.entry(s.block_size).or_insert(SizeClass { block_size: s.block_size, ..SizeClass::default() });
            c.subsegments += 1;
            c.blocks += u64::from(s.block_count);
            if s.not_decoded.is_some() || s.row.is_none() {
                c.undecoded_blocks += u64::from(s.block_count);
            } else {
                c.busy += u64::from(s.busy);
                c.busy_bytes = c.busy_bytes.saturating_add(s.busy_bytes);
            }
        }
        by.into_values().collect()
    }
}

/// The LFH layout row for a build, or `None` (Windows 8.0 and unknown builds before 8.1).
pub fn layout_for(arch: Arch, build: u32) -> Option<&'static LayoutRow<LfhLayout>> {
    select(LFH_LAYOUTS, "_LFH_HEAP", arch, build).ok()
}

/// What [`plan`] needs to know about the heap.
pub(crate) struct LfhCtx<'a> {
    pub(crate) mem: &'a AddressSpace,
    pub(crate) arch: Arch,
    pub(crate) heap: u64,
    pub(crate) front_end_heap: u64,
    pub(crate) ust: bool,
    pub(crate) budget: &'a NodeBudget,
}

/// A subsegment slot read from a zone.
struct RawSubsegment {
    address: u64,
    zone: u64,
    user_blocks: u64,
    block_size: u16,
    flags: u16,
    block_count: u16,
    size_index: u8,
    depth: u16,
}

fn at(base: u64, off: u16) -> u64 {
    base.wrapping_add(u64::from(off))
}

/// The zones and subsegment slots of an LFH; problems go to `problem`.
fn read_zones(
    c: &LfhCtx<'_>,
    l: &LfhLayout,
    mut problem: impl FnMut(u64, CorruptionKind, String),
) -> Option<(Vec<u64>, Vec<RawSubsegment>)> {
    let mem = c.mem;
    let a = c.arch;
    let back = mem.read_ptr(a, at(c.front_end_heap, l.lfh_heap)).ok()?;
    if back != c.heap {
        problem(
            c.front_end_heap,
            CorruptionKind::Inconsistent,
            format!("_LFH_HEAP {:#x}: Heap field is {back:#x}, not the heap", c.front_end_heap),
        );
    }
    let head = at(c.front_end_heap, l.lfh_sub_segment_zones);
    let w = walk_list(mem, a, head, MAX_ZONES, c.budget, "_LFH_HEAP.SubSegmentZones");
    for p in w.problems {
        problem(p.address, p.kind, p.detail);
    }
    let mut slots = Vec::new();
    for &zone in &w.nodes {
        let first = at(zone, l.zone_first_subsegment);
        let count = match l.zone_count {
            ZoneCount::FreePointer(o) => match mem.read_ptr(a, at(zone, o)) {
                Ok(fp) if fp >= first && (fp - first) % u64::from(l.subsegment_size) == 0 => {
                    (fp - first) / u64::from(l.subsegment_size)
                }
                Ok(fp) => {
                    problem(zone, CorruptionKind::Inconsistent, format!("zone {zone:#x}: FreePointer {fp:#x}"));
                    continue;
                }
                Err(_) => {
                    problem(zone, CorruptionKind::NotCaptured, format!("zone {zone:#x} not captured"));
                    continue;
                }
            },
            ZoneCount::NextIndex { offset, cap } => match mem.read_u32(at(zone, offset)) {
                Ok(n) => u64::from(n.min(cap)),
                Err(_) => {
                    problem(zone, CorruptionKind::NotCaptured, format!("zone {zone:#x} not captured"));
                    continue;
                }
            },
        };
        // A FreePointer can claim anything; the zone's subsegments are read one by one below and
        // a slot that is not captured ends the zone, so this bound only caps the loop.
        for i in 0..count.min(0x1_0000) {
            let s = first.wrapping_add(i * u64::from(l.subsegment_size));
            let fields = (|| {
                Some(RawSubsegment {
                    address: s,
                    zone,
                    user_blocks: mem.read_ptr(a, at(s, l.ss_user_blocks)).ok()?,
                    block_size: mem.read_u16(at(s, l.ss_block_size)).ok()?,
                    flags: mem.read_u16(at(s, l.ss_flags)).ok()?,
                    block_count: mem.read_u16(at(s, l.ss_block_count)).ok()?,
                    size_index: mem.read_u8(at(s, l.ss_size_index)).ok()?,
                    depth: mem.read_u16(at(s, l.ss_aggregate_exchg)).ok()?,
                })
            })();
            let Some(raw) = fields else {
                problem(s, CorruptionKind::NotCaptured, format!("_HEAP_SUBSEGMENT {s:#x} not captured"));
                break;
            };
            if raw.block_size == 0 && raw.user_blocks == 0 {
                break; // §9.2, §12.6.2: stop at BlockSize == 0
            }
            slots.push(raw);
        }
    }
    Some((w.nodes, slots))
}

/// Whether the UserBlocks header at `ub` belongs to `ss` (§12.6.3): `*(UB) == subsegment` and the
/// signature. `Err` says what failed.
fn check_header(mem: &AddressSpace, a: Arch, l: &LfhLayout, ub: u64, ss: u64) -> Result<(), (NotDecoded, String)> {
    let back =
        mem.read_ptr(a, ub).map_err(|_| (NotDecoded::NotCaptured, format!("UserBlocks {ub:#x} not captured")))?;
    let sig = mem
        .read_u32(at(ub, l.ub_signature))
        .map_err(|_| (NotDecoded::NotCaptured, format!("UserBlocks {ub:#x} header not captured")))?;
    if back != ss {
        return Err((NotDecoded::Corrupt, format!("UserBlocks {ub:#x}: SubSegment field {back:#x}, expected {ss:#x}")));
    }
    if sig != USERDATA_SIGNATURE {
        return Err((NotDecoded::Corrupt, format!("UserBlocks {ub:#x}: Signature {sig:#x}")));
    }
    Ok(())
}

/// E2 (§9.7): the `(blk − UB)` a block code encodes, given the key, or `None` when its low 16
/// bits are not zero.
fn decode_code(a: Arch, code: u32, heap: u64, key: u32, blk: u64) -> Option<u64> {
    let (shift_blk, shift_off) = match a {
        Arch::X86 => (3, 13),
        Arch::X64 => (4, 12),
    };
    let d = code ^ (heap as u32) ^ key ^ ((blk >> shift_blk) as u32);
    (d & 0xFFFF == 0).then_some(u64::from(d >> shift_off))
}

/// The key E2 gives for the block at `UB + first` (§9.9 step 4, k2).
fn key_from_code(a: Arch, code: u32, heap: u64, ub: u64, first: u64) -> u32 {
    let blk = ub.wrapping_add(first);
    let (shift_blk, shift_off) = match a {
        Arch::X86 => (3, 13),
        Arch::X64 => (4, 12),
    };
    code ^ (heap as u32) ^ ((blk >> shift_blk) as u32) ^ ((first as u32) << shift_off)
}

/// The stride of a subsegment from its plain fields (E3, §9.4): `BlockSize × granularity`, or
/// the guard-page stride.
fn plain_stride(l: &LfhLayout, block_size: u16, flags: u16) -> u64 {
    let bs = u64::from(block_size) * l.granularity;
    if flags & SUBSEGMENT_GUARD_FLAGS != 0 {
        ((bs + 0x1000) & !0xFFF) + 0x1000
    } else {
        bs
    }
}

/// The smallest `First` a container of `count` blocks can have: header and a bitmap of `count`
/// bits, rounded up to the granularity.
fn min_first(l: &LfhLayout, count: u16) -> u64 {
    let bitmap = u64::from(count).div_ceil(8);
    (u64::from(l.ub_bitmap_data) + bitmap).div_ceil(l.granularity) * l.granularity
}

/// Keys derived from the containers of one heap's LFH (8.1+ only; empty otherwise).
pub(crate) fn key_candidates(c: &LfhCtx<'_>, build: u32) -> Vec<KeyCandidate> {
    let Some(row) = layout_for(c.arch, build) else { return Vec::new() };
    let l = &row.layout;
    if l.model != LfhModel::Encoded {
        return Vec::new();
    }
    let Some((_, slots)) = read_zones(c, l, |_, _, _| {}) else { return Vec::new() };
    let mut out = Vec::new();
    for s in slots.iter().filter(|s| s.user_blocks != 0 && s.block_count >= 1 && s.flags & SUBSEGMENT_GUARD_FLAGS == 0)
    {
        if out.len() == KEY_SAMPLES_PER_HEAP {
            break;
        }
        if let Some(key) = derive_key(c, l, s) {
            out.push(KeyCandidate { heap: c.heap, user_blocks: s.user_blocks, key });
        }
    }
    out
}

/// §9.9 steps 3–4 for one container: the K on which E1 and E2 agree, if a First makes them.
fn derive_key(c: &LfhCtx<'_>, l: &LfhLayout, s: &RawSubsegment) -> Option<u32> {
    let mem = c.mem;
    let ub = s.user_blocks;
    check_header(mem, c.arch, l, ub, s.address).ok()?;
    let eo = mem.read_u32(at(ub, l.ub_encoded_offsets)).ok()?;
    let stride = plain_stride(l, s.block_size, s.flags);
    let stride16 = u32::try_from(stride).ok().filter(|&x| x <= 0xFFFF)?;
    let base = eo ^ (c.front_end_heap as u32) ^ (ub as u32) ^ (stride16 << 16);
    let code_off = u64::from(l.block_code);
    let mut f = min_first(l, s.block_count);
    let end = f + FIRST_SEARCH_BYTES;
    while f < end {
        let Ok(code) = mem.read_u32(ub.wrapping_add(f).wrapping_add(code_off)) else { return None };
        let k1 = base ^ (f as u32);
        if key_from_code(c.arch, code, c.heap, ub, f) == k1 {
            return Some(k1);
        }
        f += l.granularity;
    }
    None
}

/// The key of one process half from every container's candidate and the symbol's value (see the
/// module doc).
pub fn resolve_key(candidates: &[KeyCandidate], symbol: Option<u32>) -> ProcessKey {
    let mut votes: HashMap<u32, usize> = HashMap::new();
    for c in candidates {
        *votes.entry(c.key).or_default() += 1;
    }
    let best = votes.iter().max_by_key(|&(k, n)| (*n, std::cmp::Reverse(*k))).map(|(&k, &n)| (k, n));
    let n = candidates.len();
    let (recovered, agreeing, why) = match best {
        None => (None, 0, Some("no container yields a key on which E1 and E2 agree".to_string())),
        Some((k, m)) if 2 * m > n && (m >= 2 || n == 1) => (Some(k), m, None),
        Some((k, m)) => (
            None,
            m,
            Some(format!("containers disagree: the commonest key {k:#010x} is derived by {m} of {n} containers")),
        ),
    };
    // With both, the one more containers derive wins (the symbol on a tie).
    let key = match (symbol, recovered) {
        (Some(s), Some(r)) if s != r && votes.get(&s).copied().unwrap_or(0) < agreeing => Some(r),
        (Some(s), _) => Some(s),
        (None, r) => r,
    };
    ProcessKey { key, recovered, symbol, candidates: n, agreeing, why }
}

/// How the blocks of one container are laid out.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    first: u64,
    stride: u64,
    block_bytes: u64,
    count: u64,
}

/// One container of the plan.
#[derive(Debug, Clone)]
struct Container {
    /// Index into [`LfhInfo::subsegments`].
    ss: usize,
    geometry: Option<Geometry>,
    not_decoded: Option<(NotDecoded, String)>,
}

/// What the walk of one container found, to record in the plan's [`SubsegmentInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubsegmentUpdate {
    ss: usize,
    row: usize,
    counts: Option<(u32, u64, u32)>,
    not_decoded: Option<NotDecoded>,
}

/// The LFH of one heap, ready for the back-end walk to meet its containers.
#[derive(Debug, Clone)]
pub(crate) struct LfhPlan {
    pub(crate) info: LfhInfo,
    layout: Option<&'static LfhLayout>,
    /// Sorted by UserBlocks address.
    containers: Vec<(u64, Container)>,
    key: Option<u32>,
    arch: Arch,
    heap: u64,
    ust: bool,
}

/// What the back-end walk learns about a block from the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// Holds a UCR descriptor or the UCR index.
    Internal,
    /// Holds an LFH zone.
    Zone,
    /// Holds the `_LFH_HEAP`.
    LfhHeap,
    /// Holds the UserBlocks of container `i` of the plan.
    Container(u32),
}

impl Special {
    /// Which special wins when a block holds several.
    fn rank(self) -> u8 {
        match self {
            Special::Container(_) => 3,
            Special::Zone => 2,
            Special::LfhHeap => 1,
            Special::Internal => 0,
        }
    }

    /// The stronger of two.
    pub(crate) fn max(self, other: Special) -> Special {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

/// Read the LFH of a heap and decide, for every container, how to walk it.
pub(crate) fn plan(c: &LfhCtx<'_>, build: u32, key: &ProcessKey, rec: &mut Recorder<'_>) -> LfhPlan {
    let mut info = LfhInfo {
        address: c.front_end_heap,
        layout: None,
        not_decoded: None,
        detail: String::new(),
        key: None,
        key_source: KeySource::None,
        zones: Vec::new(),
        subsegments: Vec::new(),
    };
    let mut p = LfhPlan {
        info: info.clone(),
        layout: None,
        containers: Vec::new(),
        key: None,
        arch: c.arch,
        heap: c.heap,
        ust: c.ust,
    };
    let Some(row) = layout_for(c.arch, build) else {
        info.not_decoded = Some(NotDecoded::UnsupportedBuild);
        info.detail =
            format!("no LFH layout for Windows build {build} ({}): only Windows 7 SP1 and 8.1 to 11 are known", c.arch);
        p.info = info;
        return p;
    };
    let l = &row.layout;
    info.layout = Some(row.name);
    p.layout = Some(l);
    let Some((zones, slots)) = read_zones(c, l, |a, k, d| rec.record(a, k, d)) else {
        info.not_decoded = Some(NotDecoded::FrontEndUnreadable);
        info.detail = format!("_LFH_HEAP at {:#x} not captured", c.front_end_heap);
        rec.record(c.front_end_heap, CorruptionKind::NotCaptured, info.detail.clone());
        p.info = info;
        return p;
    };
    info.zones = zones;
    match l.model {
        LfhModel::Win7 => info.key_source = KeySource::NotNeeded,
        LfhModel::Undecoded => {
            info.not_decoded = Some(NotDecoded::UnsupportedBuild);
            info.detail = format!(
                "the LFH block encoding of Windows build {build} ({}) is not known (Windows 8.0: UNCONFIRMED in the \
                 layout reference); its zones and subsegments are listed, its blocks are not decoded",
                c.arch
            );
        }
        LfhModel::Encoded => {
            info.key = key.key;
            info.key_source = key.source();
            if key.key.is_none() {
                info.not_decoded = Some(NotDecoded::NoKey);
                info.detail = format!(
                    "RtlpLFHKey not recovered: {}",
                    key.why.as_deref().unwrap_or("no container could be decoded")
                );
            }
        }
    }
    p.key = info.key;
    let mut containers: Vec<(u64, Container)> = Vec::new();
    for s in slots {
        let idx = info.subsegments.len();
        info.subsegments.push(SubsegmentInfo {
            address: s.address,
            zone: s.zone,
            user_blocks: s.user_blocks,
            block_size: u64::from(s.block_size) * l.granularity,
            flags: s.flags,
            block_count: s.block_count,
            size_index: s.size_index,
            free_count_field: s.depth,
            first: None,
            stride: None,
            not_decoded: None,
            row: None,
            busy: 0,
            busy_bytes: 0,
            free: 0,
        });
        if s.user_blocks == 0 {
            continue; // retired descriptor
        }
        let not_decoded = match info.not_decoded {
            Some(r) => Some((r, info.detail.clone())),
            None => None,
        };
        let (geometry, not_decoded) = match not_decoded {
            Some(nd) => (None, Some(nd)),
            None => match geometry(c, l, &s, p.key) {
                Ok(g) => (Some(g), None),
                Err(e) => {
                    rec.record(s.user_blocks, CorruptionKind::BadLfhContainer, e.1.clone());
                    (None, Some(e))
                }
            },
        };
        let sub = &mut info.subsegments[idx];
        if let Some(g) = geometry {
            sub.first = Some(g.first);
            sub.stride = Some(g.stride);
        }
        sub.not_decoded = not_decoded.as_ref().map(|n| n.0);
        containers.push((s.user_blocks, Container { ss: idx, geometry, not_decoded }));
    }
    containers.sort_by_key(|c| c.0);
    // Two subsegments claiming one container: the second is corrupt.
    for i in 1..containers.len() {
        if containers[i].0 == containers[i - 1].0 {
            let why = format!("UserBlocks {:#x} is claimed by two subsegments", containers[i].0);
            rec.record(containers[i].0, CorruptionKind::BadLfhContainer, why.clone());
            containers[i].1.geometry = None;
            containers[i].1.not_decoded = Some((NotDecoded::Corrupt, why));
            let ss = containers[i].1.ss;
            info.subsegments[ss].not_decoded = Some(NotDecoded::Corrupt);
        }
    }
    containers.dedup_by_key(|c| c.0);
    p.containers = containers;
    p.info = info;
    p
}

/// Where the blocks of a container are, or why that cannot be known.
fn geometry(
    c: &LfhCtx<'_>,
    l: &LfhLayout,
    s: &RawSubsegment,
    key: Option<u32>,
) -> Result<Geometry, (NotDecoded, String)> {
    let mem = c.mem;
    let ub = s.user_blocks;
    check_header(mem, c.arch, l, ub, s.address)?;
    let block_bytes = u64::from(s.block_size) * l.granularity;
    let count = u64::from(s.block_count);
    if block_bytes == 0 {
        return Err((NotDecoded::Corrupt, format!("subsegment {:#x}: BlockSize 0", s.address)));
    }
    let (first, stride) = match l.model {
        LfhModel::Win7 => (u64::from(l.ub_first_block), plain_stride(l, s.block_size, s.flags)),
        LfhModel::Undecoded => return Err((NotDecoded::UnsupportedBuild, "blocks not decoded".to_string())),
        LfhModel::Encoded => {
            let key = key.ok_or((NotDecoded::NoKey, "no key".to_string()))?;
            let eo = mem
                .read_u32(at(ub, l.ub_encoded_offsets))
                .map_err(|_| (NotDecoded::NotCaptured, format!("UserBlocks {ub:#x} header not captured")))?;
            let plain = eo ^ (c.front_end_heap as u32) ^ (ub as u32) ^ key;
            let (first, stride) = (u64::from(plain & 0xFFFF), u64::from(plain >> 16));
            let expect = plain_stride(l, s.block_size, s.flags);
            if stride != expect || first < min_first(l, s.block_count) || first % l.granularity != 0 {
                return Err((
                    NotDecoded::Corrupt,
                    format!(
                        "UserBlocks {ub:#x}: EncodedOffsets decode to First {first:#x}, Stride {stride:#x} \
                         (BlockSize {:#x} gives stride {expect:#x}): mis-keyed or corrupt",
                        s.block_size
                    ),
                ));
            }
            (first, stride)
        }
    };
    Ok(Geometry { first, stride, block_bytes, count })
}

impl LfhPlan {
    /// The UserBlocks addresses, zones and `_LFH_HEAP` address as [`Special`]s.
    pub(crate) fn specials(&self) -> Vec<(u64, Special)> {
        let mut v: Vec<(u64, Special)> = self.info.zones.iter().map(|&z| (z, Special::Zone)).collect();
        if self.info.address != 0 {
            v.push((self.info.address, Special::LfhHeap));
        }
        v.extend(self.containers.iter().enumerate().map(|(i, c)| (c.0, Special::Container(i as u32))));
        v
    }

    /// Why a busy `HEAP_ENTRY_VIRTUAL_ALLOC` block that no subsegment points at is not decoded.
    pub(crate) fn orphan_reason(&self) -> NotDecoded {
        self.info.not_decoded.unwrap_or(NotDecoded::Orphan)
    }

    /// Containers the walk never met, for a record each.
    pub(crate) fn unmet(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.containers
            .iter()
            .filter(|c| self.info.subsegments[c.1.ss].row.is_none())
            .map(|c| (c.0, self.info.subsegments[c.1.ss].address))
    }

    /// Append the children of container `i`, whose row is `at`. Returns the `not_decoded`
    /// reason to set on the container row, and what the walk learnt about the subsegment (the
    /// caller applies it with [`Self::apply`]: the plan is shared by the walks of all segments).
    pub(crate) fn emit_children(
        &self,
        mem: &AddressSpace,
        i: u32,
        at: &Placed,
        sink: &mut RowSink<'_>,
        rec: &mut Recorder<'_>,
    ) -> (Option<NotDecoded>, Option<SubsegmentUpdate>) {
        let Some((ub, c)) = self.containers.get(i as usize).cloned() else { return (Some(NotDecoded::Orphan), None) };
        let mut update = SubsegmentUpdate { ss: c.ss, row: at.index, counts: None, not_decoded: None };
        if let Some((why, _)) = c.not_decoded {
            return (Some(why), Some(update));
        }
        let (Some(g), Some(l)) = (c.geometry, self.layout) else {
            return (Some(NotDecoded::Corrupt), Some(update));
        };
        let (start, end) = at.extent;
        let blocks_start = ub.wrapping_add(g.first);
        let last_end = g
            .count
            .checked_sub(1)
            .and_then(|n| n.checked_mul(g.stride))
            .and_then(|o| blocks_start.checked_add(o))
            .and_then(|b| b.checked_add(g.block_bytes))
            .unwrap_or(blocks_start);
        if blocks_start < start || last_end > end || ub < start {
            let why = format!(
                "UserBlocks {ub:#x}: {} blocks of {:#x} bytes from {blocks_start:#x} do not fit the block {start:#x}..{end:#x}",
                g.count, g.block_bytes
            );
            rec.record(ub, CorruptionKind::BadLfhContainer, why);
            update.not_decoded = Some(NotDecoded::Corrupt);
            return (Some(NotDecoded::Corrupt), Some(update));
        }
        let child = |kind: BlockKind, address: u64, size: u64| at.child(kind, address, size);
        sink.push(child(BlockKind::Overhead, start, blocks_start - start));
        let bitmap = self.read_bitmap(mem, l, ub, g.count);
        let mut counts = (0u32, 0u64, 0u32);
        for n in 0..g.count {
            let blk = blocks_start + n * g.stride;
            let mut r = child(BlockKind::LfhBlock, blk, g.block_bytes);
            let trace = self.decode_block(mem, l, ub, blk, n, &bitmap, &mut r, rec);
            if r.busy {
                counts.0 += 1;
                counts.1 = counts.1.saturating_add(r.user_size);
            } else {
                counts.2 += 1;
            }
            sink.push_traced(r, trace);
            let next = if n + 1 < g.count { blk + g.stride } else { end };
            let blk_end = blk + g.block_bytes;
            if next > blk_end {
                sink.push(child(BlockKind::Overhead, blk_end, next - blk_end));
            }
        }
        if g.count == 0 && end > blocks_start {
            sink.push(child(BlockKind::Overhead, blocks_start, end - blocks_start));
        }
        let s = &self.info.subsegments[c.ss];
        if l.model == LfhModel::Win7 && u64::from(s.free_count_field) + u64::from(counts.0) != u64::from(s.block_count)
        {
            rec.record(
                s.address,
                CorruptionKind::Inconsistent,
                format!(
                    "subsegment {:#x}: {} busy blocks, AggregateExchg.Depth {} free, BlockCount {}",
                    s.address, counts.0, s.free_count_field, s.block_count
                ),
            );
        }
        update.counts = Some(counts);
        (None, Some(update))
    }

    /// Record what the walk learnt about a subsegment; `offset` is added to its row (the walk
    /// of one segment numbers its rows from 0 when segments are walked in parallel).
    pub(crate) fn apply(&mut self, u: &SubsegmentUpdate, offset: usize) {
        if let Some(s) = self.info.subsegments.get_mut(u.ss) {
            s.row = Some(u.row + offset);
            if let Some(nd) = u.not_decoded {
                s.not_decoded = Some(nd);
            }
            if let Some((busy, bytes, free)) = u.counts {
                (s.busy, s.busy_bytes, s.free) = (busy, bytes, free);
            }
        }
    }

    /// The busy bitmap of a container (8.1+), one bool per block; `None` when not readable.
    fn read_bitmap(&self, mem: &AddressSpace, l: &LfhLayout, ub: u64, count: u64) -> Option<Vec<bool>> {
        if l.model != LfhModel::Encoded {
            return None;
        }
        let bytes = mem.read(at(ub, l.ub_bitmap_data), count.div_ceil(8)).ok()?;
        Some((0..count as usize).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect())
    }

    /// Fill a block row: busy state, user span, unused bytes, E2 check; returns its +ust trace
    /// entry (0 if none).
    #[allow(clippy::too_many_arguments)]
    fn decode_block(
        &self,
        mem: &AddressSpace,
        l: &LfhLayout,
        ub: u64,
        blk: u64,
        n: u64,
        bitmap: &Option<Vec<bool>>,
        r: &mut BlockRow,
        rec: &mut Recorder<'_>,
    ) -> u64 {
        let a = self.arch;
        let mut trace_entry = 0;
        let header = mem.read(blk, l.block_header).ok();
        let Some(header) = header else {
            // The header is not captured: the bitmap alone says whether it is busy.
            r.busy = bitmap.as_ref().is_some_and(|b| b[n as usize]);
            r.corruption = CorruptionKind::NotCaptured.code();
            r.is_allocation = BlockKind::LfhBlock.is_allocation(r.busy);
            return 0;
        };
        let unused_byte = header[usize::from(l.block_unused_bytes)];
        let code = u32::from_le_bytes(header[usize::from(l.block_code)..][..4].try_into().expect("4 bytes"));
        if let (Some(key), LfhModel::Encoded) = (self.key, l.model) {
            if decode_code(a, code, self.heap, key, blk) != Some(blk.wrapping_sub(ub) & 0xF_FFFF) {
                rec.record(
                    blk,
                    CorruptionKind::BadLfhBlock,
                    format!(
                        "LFH block {blk:#x}: SubSegmentCode {code:#010x} does not decode to its UserBlocks {ub:#x}"
                    ),
                );
                r.corruption = CorruptionKind::BadLfhBlock.code();
            }
        }
        let header_busy =
            if self.ust { unused_byte == UNUSED_BYTES_UST_BUSY } else { unused_byte & UNUSED_BYTES_COUNT_MASK != 0 };
        r.busy = match bitmap {
            Some(b) => {
                let busy = b[n as usize];
                if busy && !header_busy && r.corruption == 0 {
                    rec.record(
                        blk,
                        CorruptionKind::Inconsistent,
                        format!("LFH block {blk:#x}: busy in the bitmap, UnusedBytes {unused_byte:#x} says free"),
                    );
                    r.corruption = CorruptionKind::Inconsistent.code();
                }
                busy
            }
            None => header_busy,
        };
        r.is_allocation = BlockKind::LfhBlock.is_allocation(r.busy);
        if !r.busy {
            r.unused_bytes = u32::from(unused_byte);
            return 0;
        }
        let size = r.size;
        let (user_address, unused) = if self.ust && unused_byte == UNUSED_BYTES_UST_BUSY {
            let trace = mem.read_ptr(a, at(blk, l.ust_trace_pointer)).ok();
            let extra = mem.read_u16(at(blk, l.ust_extra)).ok().map(u64::from);
            trace_entry = trace.filter(|&t| !super::entry::is_no_trace(t)).unwrap_or(0);
            (at(blk, l.ust_user_data), extra)
        } else if unused_byte == UNUSED_BYTES_OVERFLOW {
            let v = match a {
                Arch::X64 => mem.read_u64(blk.wrapping_add(size)).ok(),
                Arch::X86 => mem.read_u32(blk.wrapping_add(size).wrapping_sub(4)).ok().map(u64::from),
            };
            (blk.wrapping_add(l.block_header), v)
        } else {
            (blk.wrapping_add(l.block_header), Some(u64::from(unused_byte & UNUSED_BYTES_COUNT_MASK)))
        };
        r.user_address = user_address;
        match unused {
            Some(u) if u <= size => {
                r.user_size = size - u;
                r.unused_bytes = u32::try_from(u).unwrap_or(u32::MAX);
            }
            other => {
                rec.record(
                    blk,
                    CorruptionKind::BadUnusedBytes,
                    format!("LFH block {blk:#x}: unused count {other:?} for a {size:#x}-byte block"),
                );
                r.corruption = CorruptionKind::BadUnusedBytes.code();
                r.unused_bytes = u32::MAX;
            }
        }
        trace_entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_equations_round_trip() {
        // E2 forward (x64): code = Heap ^ K ^ (blk >> 4) ^ ((blk − UB) << 12).
        let (heap, key, ub) = (0x1d0000u64, 0x5a5a_1234u32, 0x1d8000u64);
        for off in [0x40u64, 0x70, 0x400] {
            let blk = ub + off;
            let code = (heap as u32) ^ key ^ ((blk >> 4) as u32) ^ ((off as u32) << 12);
            assert_eq!(decode_code(Arch::X64, code, heap, key, blk), Some(off));
            assert_eq!(key_from_code(Arch::X64, code, heap, ub, off), key);
            assert_eq!(decode_code(Arch::X64, code ^ 1, heap, key, blk), None);
        }
        // x86: code = Heap ^ K ^ (blk >> 3) ^ ((blk − UB) << 13).
        let blk = ub + 0x28;
        let code = (heap as u32) ^ key ^ ((blk >> 3) as u32) ^ (0x28u32 << 13);
        assert_eq!(decode_code(Arch::X86, code, heap, key, blk), Some(0x28));
        assert_eq!(key_from_code(Arch::X86, code, heap, ub, 0x28), key);
    }

    #[test]
    fn resolve_needs_a_majority() {
        let c = |key| KeyCandidate { heap: 1, user_blocks: 2, key };
        let k = resolve_key(&[c(7), c(7), c(9)], None);
        assert_eq!((k.key, k.agreeing, k.source()), (Some(7), 2, KeySource::Recovered));
        let k = resolve_key(&[c(7), c(9)], None);
        assert_eq!(k.key, None);
        assert!(k.why.unwrap().contains("disagree"));
        let k = resolve_key(&[c(7)], None);
        assert_eq!(k.key, Some(7));
        let k = resolve_key(&[], Some(3));
        assert_eq!((k.key, k.source()), (Some(3), KeySource::Symbol));
        let k = resolve_key(&[c(3), c(3)], Some(3));
        assert_eq!(k.source(), KeySource::SymbolAndRecovered);
        // A symbol value that decodes fewer containers than the recovered key loses.
        let k = resolve_key(&[c(3), c(3)], Some(4));
        assert_eq!((k.key, k.source()), (Some(3), KeySource::Recovered));
        assert_eq!(resolve_key(&[], None).source(), KeySource::None);
    }

    #[test]
    fn guard_page_stride() {
        let l = &layout_for(Arch::X64, 26100).unwrap().layout;
        assert_eq!(plain_stride(l, 3, 0), 0x30);
        assert_eq!(plain_stride(l, 3, 1), 0x2000);
        assert_eq!(plain_stride(l, 0x100, 2), 0x3000);
        assert_eq!(min_first(l, 0x40), 0x40); // 0x30 + 8 bitmap bytes, rounded to 16
        assert_eq!(layout_for(Arch::X64, 9200).unwrap().layout.model, LfhModel::Undecoded);
        assert!(layout_for(Arch::X64, 9000).is_none());
    }
}
