//! `Heap`, `Segment`, `VirtualBlock`: frozen views into one shared walk result, and the block
//! columns handed to numpy by move.

use std::sync::Arc;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::heap::lfh::{LfhInfo, SizeClass, SubsegmentInfo};
use crate::heap::page_heap::PageHeapInfo;
use crate::heap::segment_heap::SegmentHeapInfo;
use crate::heap::{
    AnyColumn, BlockColumns, BlockKind, CorruptionKind, HeapInfo, HeapReport, NotDecoded, SegmentInfo,
    VirtualBlockInfo, BLOCK_SCHEMA,
};
use crate::python::errors::guarded;
use crate::python::session::Session;
use crate::python::stacks::Frame;

/// `_HEAP.Flags` / `ForceFlags` bits (winnt.h HEAP_* creation flags).
const HEAP_FLAGS: &[(u32, &str)] = &[
    (0x0000_0001, "HEAP_NO_SERIALIZE"),
    (0x0000_0002, "HEAP_GROWABLE"),
    (0x0000_0004, "HEAP_GENERATE_EXCEPTIONS"),
    (0x0000_0008, "HEAP_ZERO_MEMORY"),
    (0x0000_0010, "HEAP_REALLOC_IN_PLACE_ONLY"),
    (0x0000_0020, "HEAP_TAIL_CHECKING_ENABLED"),
    (0x0000_0040, "HEAP_FREE_CHECKING_ENABLED"),
    (0x0000_0080, "HEAP_DISABLE_COALESCE_ON_FREE"),
    (0x0000_0100, "HEAP_CREATE_ALIGN_16"),
    (0x0000_0200, "HEAP_CREATE_ENABLE_TRACING"),
    (0x0000_0400, "HEAP_CREATE_ENABLE_EXECUTE"),
    (0x0000_0800, "HEAP_SETTABLE_USER_VALUE"),
    (0x0000_1000, "HEAP_VALIDATE_PARAMETERS_ENABLED"),
    (0x0000_2000, "HEAP_VALIDATE_ALL_ENABLED"),
    (0x0001_0000, "HEAP_CREATE_SEGMENT_HEAP"),
    (0x0004_0000, "HEAP_CREATE_HARDENED"),
    (0x0800_0000, "HEAP_CAPTURE_STACK_BACKTRACES"),
    (0x1000_0000, "HEAP_SKIP_VALIDATION_CHECKS"),
    (0x2000_0000, "HEAP_VALIDATE_ALL_ENABLED_2"),
    (0x4000_0000, "HEAP_FLAG_PAGE_ALLOCS"),
    (0x8000_0000, "HEAP_PROTECTION_ENABLED"),
];

fn flag_names(flags: u32) -> Vec<&'static str> {
    HEAP_FLAGS.iter().filter(|(b, _)| flags & b != 0).map(|&(_, n)| n).collect()
}

/// One heap of the dump: an NT heap (walked), a segment heap (listed) or an unknown one.
#[pyclass(frozen, module = "ntheap._core")]
pub struct Heap {
    report: Arc<HeapReport>,
    index: usize,
    /// The dump's shared state: stacks and the symbolizer.
    session: Arc<Session>,
}

impl Heap {
    pub(crate) fn all(report: &Arc<HeapReport>, session: &Arc<Session>) -> Vec<Heap> {
        (0..report.heaps.len())
            .map(|index| Heap { report: Arc::clone(report), index, session: Arc::clone(session) })
            .collect()
    }

    fn info(&self) -> &HeapInfo {
        &self.report.heaps[self.index]
    }

    /// The walked report (walking the dump on first use): heap `index` is this heap there too.
    fn walked(&self, py: Python<'_>) -> PyResult<Arc<HeapReport>> {
        Ok(self.session.walked(py)?.report)
    }
}

#[pymethods]
impl Heap {
    /// The heap handle: the address of its `_HEAP`.
    #[getter]
    fn address(&self) -> PyResult<u64> {
        guarded("Heap.address", || Ok(self.info().address))
    }

    /// "nt", "segment" or "unknown".
    #[getter]
    fn kind(&self) -> PyResult<&'static str> {
        guarded("Heap.kind", || Ok(self.info().kind.name()))
    }

    /// "walked", "not_captured", "not_walked" (segment/unknown heaps) or "no_layout".
    #[getter]
    fn status(&self) -> PyResult<&'static str> {
        guarded("Heap.status", || Ok(self.info().status.name()))
    }

    /// Pointer width of the heap: "x86" for the 32-bit heaps of a WOW64 process.
    #[getter]
    fn arch(&self) -> PyResult<&'static str> {
        guarded("Heap.arch", || Ok(self.info().arch.name()))
    }

    /// Whether the heap is listed by the 32-bit PEB of a WOW64 process.
    #[getter]
    fn wow64_32bit(&self) -> PyResult<bool> {
        guarded("Heap.wow64_32bit", || Ok(self.info().wow64_32bit))
    }

    /// Position in its PEB's ProcessHeaps array.
    #[getter]
    fn index(&self) -> PyResult<Option<usize>> {
        guarded("Heap.index", || Ok(self.info().index))
    }

    /// Whether this is its PEB's ProcessHeap (the default heap).
    #[getter]
    fn is_process_heap(&self) -> PyResult<bool> {
        guarded("Heap.is_process_heap", || Ok(self.info().is_process_heap))
    }

    /// The structure-layout row used, e.g. "Win7 SP1 x64", or None.
    #[getter]
    fn layout(&self) -> PyResult<Option<&'static str>> {
        guarded("Heap.layout", || Ok(self.info().layout.as_ref().map(|l| l.name())))
    }

    /// How the layout was chosen: "build" (the dump's OS build) or "validation".
    #[getter]
    fn layout_chosen_by(&self) -> PyResult<Option<&'static str>> {
        guarded("Heap.layout_chosen_by", || Ok(self.info().layout.as_ref().map(|l| l.chosen_by.name())))
    }

    /// `_HEAP.Flags`.
    #[getter]
    fn flags(&self) -> PyResult<u32> {
        guarded("Heap.flags", || Ok(self.info().flags))
    }

    /// Names of the bits set in flags (winnt.h HEAP_*).
    #[getter]
    fn flag_names(&self) -> PyResult<Vec<&'static str>> {
        guarded("Heap.flag_names", || Ok(flag_names(self.info().flags)))
    }

    /// `_HEAP.ForceFlags`.
    #[getter]
    fn force_flags(&self) -> PyResult<u32> {
        guarded("Heap.force_flags", || Ok(self.info().force_flags))
    }

    /// Names of the bits set in force_flags.
    #[getter]
    fn force_flag_names(&self) -> PyResult<Vec<&'static str>> {
        guarded("Heap.force_flag_names", || Ok(flag_names(self.info().force_flags)))
    }

    /// Whether block headers are encoded (EncodeFlagMask & 0x100000).
    #[getter]
    fn encoding_enabled(&self) -> PyResult<bool> {
        guarded("Heap.encoding_enabled", || Ok(self.info().encoding_enabled))
    }

    /// Whether busy blocks carry a +ust stack-trace header.
    #[getter]
    fn ust(&self) -> PyResult<bool> {
        guarded("Heap.ust", || Ok(self.info().ust))
    }

    /// FrontEndHeapType: 0 none, 1 look-aside, 2 LFH (None when unknown).
    #[getter]
    fn front_end_type(&self) -> PyResult<Option<u8>> {
        guarded("Heap.front_end_type", || Ok(self.info().front_end_type))
    }

    /// "LFH", "LAL" or "" (WinDbg's "Fast heap" column).
    #[getter]
    fn fast_heap(&self) -> PyResult<&'static str> {
        guarded("Heap.fast_heap", || Ok(self.info().summary.fast_heap()))
    }

    /// Reserved bytes of the heap's segments (WinDbg "Reserv").
    #[getter]
    fn reserved(&self) -> PyResult<u64> {
        guarded("Heap.reserved", || Ok(self.info().summary.reserved))
    }

    /// Committed bytes of the heap's segments (WinDbg "Commit").
    #[getter]
    fn committed(&self) -> PyResult<u64> {
        guarded("Heap.committed", || Ok(self.info().summary.committed))
    }

    /// WinDbg "Virt" bytes (reserved less large uncommitted ranges), when known.
    #[getter]
    fn virtual_bytes(&self) -> PyResult<Option<u64>> {
        guarded("Heap.virtual_bytes", || Ok(self.info().summary.virtual_bytes))
    }

    /// Bytes in free back-end blocks (WinDbg "Free"): `_HEAP.TotalFreeSize` × granularity (the
    /// walk's sum when that counter is unreadable); None when unknown.
    #[getter]
    fn free_bytes(&self) -> PyResult<Option<u64>> {
        guarded("Heap.free_bytes", || Ok(self.info().summary.free()))
    }

    /// Number of free back-end blocks (WinDbg "List length"). Needs the block walk (run on
    /// first use); None for heaps whose blocks are not walked.
    #[getter]
    fn free_list_length(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        guarded("Heap.free_list_length", || Ok(self.walked(py)?.heaps[self.index].summary.list_length()))
    }

    /// Number of uncommitted ranges (WinDbg "UCR").
    #[getter]
    fn ucr_count(&self) -> PyResult<u64> {
        guarded("Heap.ucr_count", || Ok(self.info().summary.ucr_count))
    }

    /// Number of VirtualAllocdBlocks entries (WinDbg "Virt blocks").
    #[getter]
    fn virtual_block_count(&self) -> PyResult<u64> {
        guarded("Heap.virtual_block_count", || Ok(self.info().summary.virtual_block_count))
    }

    /// Committed bytes of all virtual blocks.
    #[getter]
    fn virtual_block_bytes(&self) -> PyResult<u64> {
        guarded("Heap.virtual_block_bytes", || Ok(self.info().summary.virtual_block_bytes))
    }

    /// Lock contention count (WinDbg "Lock cont."), when the heap lock can be read.
    #[getter]
    fn lock_contention(&self) -> PyResult<Option<u32>> {
        guarded("Heap.lock_contention", || Ok(self.info().summary.lock_contention))
    }

    /// External fragmentation in percent (free / committed), as WinDbg prints it.
    #[getter]
    fn external_fragmentation(&self) -> PyResult<Option<u64>> {
        guarded("Heap.external_fragmentation", || Ok(self.info().summary.external_fragmentation_pct()))
    }

    /// The heap's segments, its own first.
    #[getter]
    fn segments(&self) -> PyResult<Vec<Segment>> {
        guarded("Heap.segments", || {
            Ok(self.info().segments.iter().map(|s| Segment::from_info(s, self.info().address)).collect())
        })
    }

    /// The heap's large blocks (VirtualAllocdBlocks), in list order. Their stacks are looked up
    /// on first access to `stack_id` or `stack` (which walks the dump).
    #[getter]
    fn virtual_blocks(&self) -> PyResult<Vec<VirtualBlock>> {
        guarded("Heap.virtual_blocks", || {
            let h = self.info();
            Ok((0..h.virtual_blocks.len())
                .map(|i| VirtualBlock::new(&h.virtual_blocks[i], h.address, Arc::clone(&self.session), self.index, i))
                .collect())
        })
    }

    /// The Low Fragmentation Heap front end (`FrontEndHeapType` 2), or None. Needs the block
    /// walk (run on first use).
    #[getter]
    fn lfh(&self, py: Python<'_>) -> PyResult<Option<Lfh>> {
        guarded("Heap.lfh", || {
            let report = self.walked(py)?;
            Ok(report.heaps[self.index].lfh.is_some().then(|| Lfh { report: Arc::clone(&report), index: self.index }))
        })
    }

    /// For a page heap (`kind == "page"`): what its `_DPH_HEAP_ROOT` says, else None.
    #[getter]
    fn page_heap(&self) -> PyResult<Option<PageHeap>> {
        guarded("Heap.page_heap", || Ok(self.info().page_heap.as_ref().map(PageHeap::from)))
    }

    /// For a walked segment heap: its contexts, keys and totals, else None.
    #[getter]
    fn segment_heap(&self) -> PyResult<Option<SegmentHeap>> {
        guarded("Heap.segment_heap", || Ok(self.info().segment_heap.clone().map(|info| SegmentHeap { info })))
    }

    /// The u32 at +0x10 (x64) / +0x08 (x86) that told the heap's kind (0xFFEEFFEE: NT heap,
    /// 0xDDEEDDEE: segment heap; anything else: not a Windows heap), None when not captured.
    #[getter]
    fn signature_word(&self) -> PyResult<Option<u32>> {
        guarded("Heap.signature_word", || Ok(self.info().signature_word))
    }

    /// Why a heap of a known kind was not walked (e.g. a 32-bit segment heap), else None.
    #[getter]
    fn not_walked(&self) -> PyResult<Option<String>> {
        guarded("Heap.not_walked", || Ok(self.info().not_walked.clone()))
    }

    /// For the NormalHeap of a page heap: that page heap's handle, else None.
    #[getter]
    fn page_heap_owner(&self) -> PyResult<Option<u64>> {
        guarded("Heap.page_heap_owner", || Ok(self.info().page_heap_owner))
    }

    /// What part of this heap could not be attributed to allocations, and why: one
    /// (what, count, bytes, message) tuple per kind of gap (empty when everything was decoded).
    /// Needs the block walk (run on first use).
    #[getter]
    fn warnings(&self, py: Python<'_>) -> PyResult<Vec<(String, u64, u64, String)>> {
        guarded("Heap.warnings", || {
            let me = self.info().address;
            Ok(self
                .walked(py)?
                .warnings
                .iter()
                .filter(|w| w.heap == me)
                .map(|w| (w.what.clone(), w.count, w.bytes, w.message.clone()))
                .collect())
        })
    }

    /// Number of rows this heap has in `Dump.blocks()` (walks the dump on first use).
    #[getter]
    fn block_count(&self, py: Python<'_>) -> PyResult<usize> {
        guarded("Heap.block_count", || Ok(self.walked(py)?.heaps[self.index].blocks.len()))
    }

    /// Number of corruption records for this heap (walks the dump on first use).
    #[getter]
    fn corruption_count(&self, py: Python<'_>) -> PyResult<usize> {
        guarded("Heap.corruption_count", || Ok(self.walked(py)?.heaps[self.index].corruption_count))
    }

    /// This heap's rows of `Dump.blocks()`, as an `ntheap.Table` (views of the dump's arrays).
    fn blocks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guarded("Heap.blocks", || {
            let (start, end) = self.block_range(py)?;
            let source = crate::python::session::BlockSource { session: Arc::clone(&self.session) };
            py.import("ntheap._dump")?.call_method1("block_table", (source, start, end))
        })
    }

    /// This heap's rows: `(first, end)` indexes into `Dump.blocks()` (walks the dump on first
    /// use).
    #[getter]
    fn block_range(&self, py: Python<'_>) -> PyResult<(usize, usize)> {
        guarded("Heap.block_range", || {
            let r = self.walked(py)?.heaps[self.index].blocks.clone();
            Ok((r.start, r.end))
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Heap.__repr__", || {
            let h = self.info();
            if let Some(s) = &h.segment_heap {
                return Ok(format!(
                "Heap({:#x}, segment {}, {} page segments, {} VS + {} LFH + {} page-range + {} large allocations, {} blocks{})",
                h.address,
                h.arch,
                s.contexts.iter().map(|c| c.segments.len()).sum::<usize>(),
                s.vs.count,
                s.lfh.count,
                s.page_ranges.count,
                s.large.count,
                h.blocks.len(),
                if h.corruption_count > 0 { format!(", {} corruption records", h.corruption_count) } else { String::new() }
            ));
            }
            Ok(match h.status.name() {
                "walked" => format!(
                    "Heap({:#x}, {} {}, {} segments, committed={:#x}, {} virtual blocks ({:#x} bytes), {} blocks{})",
                    h.address,
                    h.kind.name(),
                    h.arch,
                    h.segments.len(),
                    h.summary.committed,
                    h.summary.virtual_block_count,
                    h.summary.virtual_block_bytes,
                    if h.summary.walked { h.blocks.len().to_string() } else { "? (not walked yet)".into() },
                    if h.summary.walked && h.corruption_count > 0 {
                        format!(", {} corruption records", h.corruption_count)
                    } else {
                        String::new()
                    }
                ),
                status => match h.signature_word.filter(|_| h.kind == crate::heap::HeapKind::Unknown) {
                    Some(w) => format!(
                        "Heap({:#x}, {} {}, {status}, signature word {w:#010x})",
                        h.address,
                        h.kind.name(),
                        h.arch
                    ),
                    None => format!("Heap({:#x}, {} {}, {status})", h.address, h.kind.name(), h.arch),
                },
            })
        })
    }
}

/// The Low Fragmentation Heap of one NT heap: its zones, subsegments and size classes.
#[pyclass(frozen, module = "ntheap._core")]
pub struct Lfh {
    report: Arc<HeapReport>,
    index: usize,
}

impl Lfh {
    fn info(&self) -> &LfhInfo {
        self.report.heaps[self.index].lfh.as_ref().expect("an Lfh is made only for a heap with one")
    }
}

#[pymethods]
impl Lfh {
    /// `_HEAP.FrontEndHeap`: the address of the `_LFH_HEAP`.
    #[getter]
    fn address(&self) -> PyResult<u64> {
        guarded("Lfh.address", || Ok(self.info().address))
    }

    /// The heap's address.
    #[getter]
    fn heap(&self) -> PyResult<u64> {
        guarded("Lfh.heap", || Ok(self.report.heaps[self.index].address))
    }

    /// The LFH layout row used, e.g. "Win8.1+ x64 LFH", or None for an unknown build.
    #[getter]
    fn layout(&self) -> PyResult<Option<&'static str>> {
        guarded("Lfh.layout", || Ok(self.info().layout))
    }

    /// Whether its containers could be decoded (individual containers may still fail).
    #[getter]
    fn decoded(&self) -> PyResult<bool> {
        guarded("Lfh.decoded", || Ok(self.info().not_decoded.is_none()))
    }

    /// Why the LFH as a whole was not decoded ("unsupported_build", "no_key", ...), or None.
    #[getter]
    fn not_decoded(&self) -> PyResult<Option<&'static str>> {
        guarded("Lfh.not_decoded", || Ok(self.info().not_decoded.map(NotDecoded::name)))
    }

    /// The evidence for `not_decoded`, in words ("" when decoded).
    #[getter]
    fn detail(&self) -> PyResult<String> {
        guarded("Lfh.detail", || Ok(self.info().detail.clone()))
    }

    /// The low 32 bits of `RtlpLFHKey` used to decode it (Windows 8.1+), or None.
    #[getter]
    fn key(&self) -> PyResult<Option<u32>> {
        guarded("Lfh.key", || Ok(self.info().key))
    }

    /// Where the key came from: "recovered" (from the dump's containers), "symbol" (ntdll's
    /// PDB), "symbol_and_recovered" (both, agreeing), "not_needed" (Windows 7) or "none".
    #[getter]
    fn key_source(&self) -> PyResult<&'static str> {
        guarded("Lfh.key_source", || Ok(self.info().key_source.name()))
    }

    /// Addresses of the `_LFH_BLOCK_ZONE`s.
    #[getter]
    fn zones(&self) -> PyResult<Vec<u64>> {
        guarded("Lfh.zones", || Ok(self.info().zones.clone()))
    }

    /// One row per `_HEAP_SUBSEGMENT` (retired ones included) as an `ntheap.Table`: address,
    /// zone, user_blocks, block_size (bytes), block_count, flags, free_count_field
    /// (AggregateExchg.Depth), first, stride, busy, busy_bytes, free, retired, guarded,
    /// not_decoded (code; not_decoded_name in the DataFrame), row (its container's row in
    /// `Dump.blocks()`, -1 if not met).
    fn subsegments<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guarded("Lfh.subsegments", || {
            let s = &self.info().subsegments;
            let d = PyDict::new(py);
            let col = |f: fn(&SubsegmentInfo) -> u64| s.iter().map(f).collect::<Vec<u64>>();
            d.set_item("address", col(|x| x.address).into_pyarray(py))?;
            d.set_item("zone", col(|x| x.zone).into_pyarray(py))?;
            d.set_item("user_blocks", col(|x| x.user_blocks).into_pyarray(py))?;
            d.set_item("block_size", col(|x| x.block_size).into_pyarray(py))?;
            d.set_item("block_count", col(|x| u64::from(x.block_count)).into_pyarray(py))?;
            d.set_item("flags", col(|x| u64::from(x.flags)).into_pyarray(py))?;
            d.set_item("free_count_field", col(|x| u64::from(x.free_count_field)).into_pyarray(py))?;
            d.set_item("first", col(|x| x.first.unwrap_or(0)).into_pyarray(py))?;
            d.set_item("stride", col(|x| x.stride.unwrap_or(0)).into_pyarray(py))?;
            d.set_item("busy", col(|x| u64::from(x.busy)).into_pyarray(py))?;
            d.set_item("busy_bytes", col(|x| x.busy_bytes).into_pyarray(py))?;
            d.set_item("free", col(|x| u64::from(x.free)).into_pyarray(py))?;
            d.set_item("retired", s.iter().map(SubsegmentInfo::is_retired).collect::<Vec<bool>>().into_pyarray(py))?;
            d.set_item("guarded", s.iter().map(SubsegmentInfo::is_guarded).collect::<Vec<bool>>().into_pyarray(py))?;
            let nd: Vec<u8> = s.iter().map(|x| x.not_decoded.map_or(0, NotDecoded::code)).collect();
            d.set_item("not_decoded", nd.into_pyarray(py))?;
            let rows: Vec<i64> = s.iter().map(|x| x.row.map_or(-1, |r| r as i64)).collect();
            d.set_item("row", rows.into_pyarray(py))?;
            py.import("ntheap._dump")?.call_method1("lfh_subsegment_table", (d,))
        })
    }

    /// Per block size, like the LFH section of `!heap -s -h`: block_size (bytes, header
    /// included), subsegments, blocks, busy, busy_bytes (requested bytes of the busy blocks),
    /// undecoded_blocks (blocks in containers that were not decoded), as an `ntheap.Table`.
    fn size_classes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guarded("Lfh.size_classes", || {
            let c = self.info().size_classes();
            let d = PyDict::new(py);
            let col = |f: fn(&SizeClass) -> u64| c.iter().map(f).collect::<Vec<u64>>();
            d.set_item("block_size", col(|x| x.block_size).into_pyarray(py))?;
            d.set_item("subsegments", col(|x| u64::from(x.subsegments)).into_pyarray(py))?;
            d.set_item("blocks", col(|x| x.blocks).into_pyarray(py))?;
            d.set_item("busy", col(|x| x.busy).into_pyarray(py))?;
            d.set_item("busy_bytes", col(|x| x.busy_bytes).into_pyarray(py))?;
            d.set_item("undecoded_blocks", col(|x| x.undecoded_blocks).into_pyarray(py))?;
            py.import("ntheap.table")?.getattr("Table")?.call1(("lfh_size_classes", d))
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Lfh.__repr__", || {
            let l = self.info();
            let live = l.subsegments.iter().filter(|s| !s.is_retired()).count();
            let state = match (l.not_decoded, l.key) {
                (Some(r), _) => format!("not decoded: {}", r.name()),
                (None, Some(k)) => format!("key={k:#010x} ({})", l.key_source.name()),
                (None, None) => "no key needed".to_string(),
            };
            let retired = l.subsegments.len() - live;
            Ok(format!(
                "Lfh({:#x}, heap={:#x}, {state}, {} zones, {live} subsegments{})",
                l.address,
                self.heap()?,
                l.zones.len(),
                if retired == 0 { String::new() } else { format!(" (+{retired} retired)") }
            ))
        })
    }
}

/// What a page heap's `_DPH_HEAP_ROOT` says (gflags +hpa).
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct PageHeap {
    /// The `_DPH_HEAP_ROOT` (heap handle + 0x1000).
    #[pyo3(get)]
    root: u64,
    /// `_DPH_HEAP_ROOT.HeapFlags`.
    #[pyo3(get)]
    heap_flags: u32,
    /// `NormalHeap`: the NT heap behind it (0 if none).
    #[pyo3(get)]
    normal_heap: u64,
    /// `BusyNodesTable.NumberGenericTableElements`, when readable.
    #[pyo3(get)]
    table_count: Option<u32>,
    /// Busy full-page blocks.
    #[pyo3(get)]
    busy: u64,
    /// Requested bytes of the busy full-page blocks.
    #[pyo3(get)]
    busy_bytes: u64,
    /// Freed full-page blocks still tracked.
    #[pyo3(get)]
    freed: u64,
}

impl From<&PageHeapInfo> for PageHeap {
    fn from(p: &PageHeapInfo) -> Self {
        PageHeap {
            root: p.root,
            heap_flags: p.heap_flags,
            normal_heap: p.normal_heap,
            table_count: p.table_count,
            busy: p.busy,
            busy_bytes: p.busy_bytes,
            freed: p.freed,
        }
    }
}

#[pymethods]
impl PageHeap {
    fn __repr__(&self) -> PyResult<String> {
        guarded("PageHeap.__repr__", || {
            Ok(format!(
                "PageHeap(root={:#x}, normal_heap={:#x}, {} busy blocks ({:#x} bytes), {} freed)",
                self.root, self.normal_heap, self.busy, self.busy_bytes, self.freed
            ))
        })
    }
}

/// One back-end context of a segment heap (`_HEAP_SEG_CONTEXT`).
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct SegContext {
    /// Address of the `_HEAP_SEG_CONTEXT`.
    #[pyo3(get)]
    address: u64,
    /// log2 of its unit size (12: 4 KB units, 16: 64 KB units).
    #[pyo3(get)]
    unit_shift: u8,
    /// The first descriptor of a page segment that describes a range.
    #[pyo3(get)]
    first_descriptor_index: u8,
    /// Bytes of one page segment.
    #[pyo3(get)]
    segment_size: u64,
    /// The page segments, in list order.
    #[pyo3(get)]
    segments: Vec<u64>,
    /// `SegmentCount`, when its offset is known for the build.
    #[pyo3(get)]
    segment_count_field: Option<u64>,
    /// Reserved bytes (segments × segment size).
    #[pyo3(get)]
    reserved: u64,
    /// Committed bytes of its segments (from MemoryInfoList; None without one).
    #[pyo3(get)]
    committed: Option<u64>,
}

#[pymethods]
impl SegContext {
    fn __repr__(&self) -> PyResult<String> {
        guarded("SegContext.__repr__", || {
            Ok(format!(
                "SegContext({:#x}, {} segments of {:#x} bytes, reserved={:#x}, committed={})",
                self.address,
                self.segments.len(),
                self.segment_size,
                self.reserved,
                self.committed.map_or("?".to_string(), |c| format!("{c:#x}"))
            ))
        })
    }
}

/// What the walk of one segment heap found: its layout row, keys, contexts and totals.
#[pyclass(frozen, module = "ntheap._core")]
pub struct SegmentHeap {
    info: SegmentHeapInfo,
}

#[pymethods]
impl SegmentHeap {
    /// The layout row used, e.g. "Win11 21H2-23H2 x64 segment heap".
    #[getter]
    fn layout(&self) -> PyResult<Option<&'static str>> {
        guarded("SegmentHeap.layout", || Ok(self.info.layout))
    }

    /// How the row was chosen: "build" or "validation".
    #[getter]
    fn layout_chosen_by(&self) -> PyResult<Option<&'static str>> {
        guarded("SegmentHeap.layout_chosen_by", || Ok(self.info.chosen_by.map(|c| c.name())))
    }

    /// `RtlpHpHeapGlobals.HeapKey` (recovered from the page segments' signatures).
    #[getter]
    fn heap_key(&self) -> PyResult<Option<u64>> {
        guarded("SegmentHeap.heap_key", || Ok(self.info.heap_key))
    }

    /// Where the HeapKey came from: "recovered" or "symbol_and_recovered".
    #[getter]
    fn heap_key_source(&self) -> PyResult<&'static str> {
        guarded("SegmentHeap.heap_key_source", || Ok(self.info.heap_key_source.name()))
    }

    /// The low 32 bits of `RtlpHpHeapGlobals.LfhKey`, when the process has LFH subsegments.
    #[getter]
    fn lfh_key(&self) -> PyResult<Option<u32>> {
        guarded("SegmentHeap.lfh_key", || Ok(self.info.lfh_key))
    }

    /// Where the LfhKey came from: "recovered", "symbol", "symbol_and_recovered", "not_needed", "none".
    #[getter]
    fn lfh_key_source(&self) -> PyResult<&'static str> {
        guarded("SegmentHeap.lfh_key_source", || Ok(self.info.lfh_key_source.name()))
    }

    /// How the LfhKey was chosen (the search is derived, §10.6), or why there is none.
    #[getter]
    fn lfh_key_note(&self) -> PyResult<String> {
        guarded("SegmentHeap.lfh_key_note", || Ok(self.info.lfh_key_note.clone()))
    }

    /// The two back-end contexts.
    #[getter]
    fn contexts(&self) -> PyResult<Vec<SegContext>> {
        guarded("SegmentHeap.contexts", || {
            Ok(self
                .info
                .contexts
                .iter()
                .map(|c| SegContext {
                    address: c.address,
                    unit_shift: c.unit_shift,
                    first_descriptor_index: c.first_descriptor_index,
                    segment_size: c.segment_size,
                    segments: c.segments.clone(),
                    segment_count_field: c.segment_count_field,
                    reserved: c.reserved,
                    committed: c.committed,
                })
                .collect())
        })
    }

    /// Busy VS chunks.
    #[getter]
    fn vs_count(&self) -> PyResult<u64> {
        guarded("SegmentHeap.vs_count", || Ok(self.info.vs.count))
    }

    /// Requested bytes of the busy VS chunks.
    #[getter]
    fn vs_user_bytes(&self) -> PyResult<u64> {
        guarded("SegmentHeap.vs_user_bytes", || Ok(self.info.vs.user_bytes))
    }

    /// Busy segment-heap LFH blocks.
    #[getter]
    fn lfh_count(&self) -> PyResult<u64> {
        guarded("SegmentHeap.lfh_count", || Ok(self.info.lfh.count))
    }

    /// Requested bytes of the busy LFH blocks.
    #[getter]
    fn lfh_user_bytes(&self) -> PyResult<u64> {
        guarded("SegmentHeap.lfh_user_bytes", || Ok(self.info.lfh.user_bytes))
    }

    /// Page ranges handed to the program.
    #[getter]
    fn page_range_count(&self) -> PyResult<u64> {
        guarded("SegmentHeap.page_range_count", || Ok(self.info.page_ranges.count))
    }

    /// Requested bytes of those page ranges.
    #[getter]
    fn page_range_user_bytes(&self) -> PyResult<u64> {
        guarded("SegmentHeap.page_range_user_bytes", || Ok(self.info.page_ranges.user_bytes))
    }

    /// Free page ranges and their bytes.
    #[getter]
    fn free_ranges(&self) -> PyResult<(u64, u64)> {
        guarded("SegmentHeap.free_ranges", || Ok((self.info.page_ranges.free_count, self.info.page_ranges.free_bytes)))
    }

    /// Large blocks (`LargeAllocMetadata`).
    #[getter]
    fn large_count(&self) -> PyResult<u64> {
        guarded("SegmentHeap.large_count", || Ok(self.info.large.count))
    }

    /// Requested bytes of the large blocks.
    #[getter]
    fn large_user_bytes(&self) -> PyResult<u64> {
        guarded("SegmentHeap.large_user_bytes", || Ok(self.info.large.user_bytes))
    }

    /// `LargeReservedPages` and `LargeCommittedPages` in bytes, when readable.
    #[getter]
    fn large_reserved_committed(&self) -> PyResult<(Option<u64>, Option<u64>)> {
        guarded("SegmentHeap.large_reserved_committed", || Ok((self.info.large_reserved, self.info.large_committed)))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("SegmentHeap.__repr__", || {
            let i = &self.info;
            Ok(format!(
                "SegmentHeap({}, {} VS blocks, {} LFH blocks, {} page ranges, {} large blocks, HeapKey {:#x})",
                i.layout.unwrap_or("?"),
                i.vs.count,
                i.lfh.count,
                i.page_ranges.count,
                i.large.count,
                i.heap_key.unwrap_or(0)
            ))
        })
    }
}

/// A heap segment: the heap's own first segment or a `_HEAP_SEGMENT` on its SegmentList.
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct Segment {
    /// Address of the `_HEAP_SEGMENT`.
    #[pyo3(get)]
    address: u64,
    /// The owning heap.
    #[pyo3(get)]
    heap: u64,
    /// BaseAddress.
    #[pyo3(get)]
    base: u64,
    /// FirstEntry.
    #[pyo3(get)]
    first_entry: u64,
    /// LastValidEntry: end of the reserved range.
    #[pyo3(get)]
    last_valid_entry: u64,
    /// NumberOfPages.
    #[pyo3(get)]
    number_of_pages: u32,
    /// NumberOfUnCommittedPages.
    #[pyo3(get)]
    uncommitted_pages: u32,
    /// Reserved bytes (NumberOfPages × 4096).
    #[pyo3(get)]
    reserved: u64,
    /// Committed bytes.
    #[pyo3(get)]
    committed: u64,
    /// Uncommitted ranges as (address, size) pairs, by address.
    #[pyo3(get)]
    ucrs: Vec<(u64, u64)>,
    /// Whether the segment's entries were walked.
    #[pyo3(get)]
    walked: bool,
    /// Number of block rows in this segment.
    #[pyo3(get)]
    block_count: usize,
}

impl Segment {
    fn from_info(s: &SegmentInfo, heap: u64) -> Self {
        Segment {
            address: s.address,
            heap,
            base: s.base,
            first_entry: s.first_entry,
            last_valid_entry: s.last_valid_entry,
            number_of_pages: s.number_of_pages,
            uncommitted_pages: s.uncommitted_pages,
            reserved: s.reserved_bytes,
            committed: s.committed_bytes,
            ucrs: s.ucrs.iter().map(|u| (u.address, u.size)).collect(),
            walked: s.walked,
            block_count: s.blocks.len(),
        }
    }
}

#[pymethods]
impl Segment {
    fn __repr__(&self) -> PyResult<String> {
        guarded("Segment.__repr__", || {
            Ok(format!(
                "Segment({:#x}, {:#x}..{:#x}, committed={:#x}, {} UCRs, {} blocks)",
                self.address,
                self.base,
                self.last_valid_entry,
                self.committed,
                self.ucrs.len(),
                self.block_count
            ))
        })
    }
}

/// A large allocation on a heap's VirtualAllocdBlocks list (`_HEAP_VIRTUAL_ALLOC_ENTRY`).
/// Two are equal when they describe the same entry the same way.
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone)]
pub struct VirtualBlock {
    /// Address of the `_HEAP_VIRTUAL_ALLOC_ENTRY` (the start of its VirtualAlloc region).
    #[pyo3(get)]
    address: u64,
    /// Address of its BusyBlock `_HEAP_ENTRY`.
    #[pyo3(get)]
    header_address: u64,
    /// The pointer HeapAlloc returned.
    #[pyo3(get)]
    user_address: u64,
    /// CommitSize (bytes, including the header).
    #[pyo3(get)]
    commit_size: u64,
    /// ReserveSize.
    #[pyo3(get)]
    reserve_size: u64,
    /// Requested size.
    #[pyo3(get)]
    user_size: u64,
    /// Decoded BusyBlock flags.
    #[pyo3(get)]
    flags: u8,
    /// Address of its `_RTL_STACK_TRACE_ENTRY` (+ust), or 0.
    #[pyo3(get)]
    stack_trace_entry: u64,
    /// What is wrong with it, or None.
    #[pyo3(get)]
    corruption: Option<&'static str>,
    /// The owning heap's address.
    #[pyo3(get)]
    heap: u64,
    /// Where its row is in the walk: (heap index, position in the heap's list).
    at: (usize, usize),
    session: Arc<Session>,
}

impl PartialEq for VirtualBlock {
    fn eq(&self, o: &Self) -> bool {
        let key = |v: &VirtualBlock| {
            (
                v.address,
                v.header_address,
                v.user_address,
                v.commit_size,
                v.reserve_size,
                v.user_size,
                v.flags,
                v.stack_trace_entry,
                v.corruption,
                v.heap,
            )
        };
        key(self) == key(o)
    }
}

impl VirtualBlock {
    fn new(v: &VirtualBlockInfo, heap: u64, session: Arc<Session>, heap_index: usize, position: usize) -> Self {
        VirtualBlock {
            address: v.address,
            header_address: v.header_address,
            user_address: v.user_address,
            commit_size: v.commit_size,
            reserve_size: v.reserve_size,
            user_size: v.user_size,
            flags: v.flags,
            stack_trace_entry: v.stack_trace_entry,
            corruption: v.corrupt.map(CorruptionKind::name),
            heap,
            at: (heap_index, position),
            session,
        }
    }
}

#[pymethods]
impl VirtualBlock {
    /// Index into `Dump.stacks()`, or -1 (no +ust trace, or one that could not be read). Walks
    /// the dump on first use (stack ids are numbered over all its blocks).
    #[getter]
    fn stack_id(&self, py: Python<'_>) -> PyResult<i32> {
        guarded("VirtualBlock.stack_id", || {
            let w = self.session.walked(py)?;
            let row = w.report.heaps.get(self.at.0).and_then(|h| h.virtual_rows.get(self.at.1));
            Ok(row.map_or(-1, |&r| w.stacks.stack_of_row(r)))
        })
    }

    /// The allocation stack (+ust), innermost frame first; empty without one.
    #[getter]
    fn stack(&self, py: Python<'_>) -> PyResult<Vec<Frame>> {
        guarded("VirtualBlock.stack", || {
            let id = self.stack_id(py)?;
            let stacks = self.session.walked(py)?.stacks;
            Ok(self.session.frames(py, &stacks, id)?.into_iter().map(Frame::from).collect())
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("VirtualBlock.__repr__", || {
            Ok(format!(
                "VirtualBlock({:#x}, heap={:#x}, user={:#x}+{:#x}, commit={:#x}, reserve={:#x}{})",
                self.address,
                self.heap,
                self.user_address,
                self.user_size,
                self.commit_size,
                self.reserve_size,
                self.corruption.map_or(String::new(), |c| format!(", corrupt: {c}"))
            ))
        })
    }
}

/// Move each column into a numpy array (no copy) in a dict, in schema order.
pub(crate) fn columns_to_dict(py: Python<'_>, c: BlockColumns) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (name, col) in c.into_columns() {
        match col {
            AnyColumn::U64(v) => d.set_item(name, v.into_pyarray(py))?,
            AnyColumn::U32(v) => d.set_item(name, v.into_pyarray(py))?,
            AnyColumn::U8(v) => d.set_item(name, v.into_pyarray(py))?,
            AnyColumn::I32(v) => d.set_item(name, v.into_pyarray(py))?,
            AnyColumn::Bool(v) => d.set_item(name, v.into_pyarray(py))?,
        }
    }
    Ok(d)
}

/// The block schema: (name, numpy dtype, meaning, stored) of every column of `Dump.blocks()`,
/// in order: `heap` and `segment` (derived from row runs), the walk's stored columns,
/// `stack_trace_entry` (sparse) and `stack_id` (from the stack table), then the leak-triage
/// columns (each computed by its pass on first use).
pub(crate) fn block_schema() -> Vec<(&'static str, &'static str, &'static str, bool)> {
    let derived = |c: &crate::heap::ColumnSpec| (c.name, c.dtype, c.doc, false);
    let [heap, segment, trace] = crate::heap::DERIVED_COLUMNS;
    [derived(&heap), derived(&segment)]
        .into_iter()
        .chain(BLOCK_SCHEMA.iter().map(|c| (c.name, c.dtype, c.doc, true)))
        .chain([derived(&trace), derived(&crate::stacks::STACK_ID_COLUMN)])
        .chain(crate::triage::TRIAGE_COLUMNS.iter().map(derived))
        .collect()
}

/// Names of the `not_decoded` codes, by code (0 = decoded).
pub(crate) fn not_decoded_names() -> Vec<(u8, &'static str)> {
    NotDecoded::ALL.iter().map(|r| (r.code(), r.name())).collect()
}

/// Names of the block kind codes, by code.
pub(crate) fn block_kind_names() -> Vec<(u8, &'static str)> {
    BlockKind::ALL.iter().map(|k| (k.code(), k.name())).collect()
}

/// Names of the corruption kind codes, by code (0 = none).
pub(crate) fn corruption_kind_names() -> Vec<(u8, &'static str)> {
    CorruptionKind::ALL.iter().map(|k| (k.code(), k.name())).collect()
}
