//! What one open `Dump` computes lazily and shares with the objects it hands out: the heap walk
//! with its stack table, the block columns as numpy arrays, the symbolizer, and the block index.
//! Each is computed once, without the GIL where it can be, on first use, under
//! [`crate::error::guard`]: a panic becomes a `DumpError`.
//!
//! ## One copy of the block columns
//!
//! The walk fills one `Vec` per column. Right after the walk each `Vec` is moved (not copied)
//! into a numpy array, and the session keeps those arrays: every `Dump.blocks()` and
//! `Heap.blocks()` hands out the same arrays (read-only), so a second call costs nothing and the
//! process holds the columns once. Rust code that needs the columns later (the block index of
//! `allocation_at`) borrows them back from numpy ([`Session::with_block_refs`]).

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::allocation::BlockIndex;
use crate::dump::Dump;
use crate::error::guard;
use crate::heap::{self, AnyColumnRef, BlockRefs, HeapReport, BLOCK_SCHEMA};
use crate::limits::{Cancel, Limits};
use crate::python::errors::guarded;
use crate::python::heap::columns_to_dict;
use crate::stacks::StackTable;
use crate::symbols::{Frame, Symbolizer};
use crate::triage::{self, Images, Reach, TypeTable};

/// The type pass (§1) and how long it took.
pub(crate) struct TypePass {
    pub(crate) table: TypeTable,
    pub(crate) seconds: f64,
}

/// The content pass (§3) and how long it took.
pub(crate) struct ContentPass {
    pub(crate) content: Vec<u8>,
    pub(crate) seconds: f64,
}

/// The heap walk, the stacks of its blocks, and its block columns (as numpy arrays).
#[derive(Clone)]
pub(crate) struct Walked {
    /// The walk; its `blocks` have been moved into `columns`.
    pub(crate) report: Arc<HeapReport>,
    pub(crate) stacks: Arc<StackTable>,
    /// One read-only numpy array per stored column (`BLOCK_SCHEMA` order).
    pub(crate) columns: Arc<Py<PyDict>>,
}

/// Lazily computed state of one dump.
pub(crate) struct Session {
    pub(crate) dump: Arc<Dump>,
    /// The symbol path given to `Dump(...)`, else `_NT_SYMBOL_PATH` at open time; `None` when
    /// neither was set.
    pub(crate) symbol_path: Option<String>,
    /// Local directories of binaries for image pages the dump lacks (`Dump(image_path=...)`).
    pub(crate) image_path: Option<String>,
    /// Threads of this dump's walks (`Dump(threads=N)`); `None`: rayon's global pool.
    pub(crate) threads: Option<usize>,
    /// The pool of `threads`, built once.
    pool: Option<rayon::ThreadPool>,
    /// The derived block columns, computed on first request and shared like the stored ones.
    derived: DerivedColumns,
    /// Caps on the work (`Dump(limits=...)`).
    pub(crate) limits: Limits,
    survey: OnceLock<Arc<HeapReport>>,
    walked: OnceLock<Walked>,
    symbolizer: OnceLock<Arc<Symbolizer>>,
    index: OnceLock<Arc<BlockIndex>>,
    images: OnceLock<Arc<Images>>,
    types: OnceLock<Arc<TypePass>>,
    content: OnceLock<Arc<ContentPass>>,
    reach: OnceLock<Arc<Reach>>,
}

/// The derived block columns of one dump, each computed once from the walk (without the GIL)
/// and then handed out read-only, like the stored columns.
#[derive(Default)]
struct DerivedColumns {
    heap_codes: OnceLock<Py<PyArray1<u16>>>,
    segment_codes: OnceLock<Py<PyArray1<u32>>>,
    stack_trace_entry: OnceLock<Py<PyArray1<u64>>>,
    stack_id: OnceLock<Py<PyArray1<i32>>>,
}

/// `cell`'s array, made from the walk `w` by `f` on first use (without the GIL), read-only.
fn derived<'py, T: numpy::Element + Send>(
    py: Python<'py>,
    cell: &OnceLock<Py<PyArray1<T>>>,
    w: &Walked,
    f: impl FnOnce(&Walked) -> Vec<T> + Send,
) -> PyResult<Bound<'py, PyArray1<T>>> {
    if let Some(a) = cell.get() {
        return Ok(a.bind(py).clone());
    }
    let v = py.detach(|| f(w));
    let a = PyArray1::from_vec(py, v);
    a.getattr("flags")?.setattr("writeable", false)?;
    Ok(cell.get_or_init(|| a.unbind()).bind(py).clone())
}

/// Compute `cell`'s value once, without the GIL, under [`guard`].
fn once<T: Send + Sync>(
    py: Python<'_>,
    cell: &OnceLock<Arc<T>>,
    what: &'static str,
    f: impl FnOnce() -> crate::error::Result<T> + Send,
) -> PyResult<Arc<T>> {
    if let Some(v) = cell.get() {
        return Ok(Arc::clone(v));
    }
    let v = Arc::new(py.detach(|| guard(|| what.into(), f))?);
    Ok(Arc::clone(cell.get_or_init(|| v)))
}

/// How often a thread waiting for Rust work looks for a Python signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Run `f` (given a fresh [`Cancel`]) on a thread of its own while the calling thread waits
/// without the GIL, waking every [`SIGNAL_POLL`] to run Python's signal handlers. When one
/// raises (Ctrl-C: `KeyboardInterrupt`), the flag is set, the work (which polls it at coarse
/// granularity) is waited for, and the handler's exception is returned: nothing half-computed is
/// kept. Off the main thread `check_signals` never raises and this is a plain wait.
pub(crate) fn interruptible<T: Send>(py: Python<'_>, f: impl FnOnce(&Cancel) -> T + Send) -> PyResult<T> {
    let cancel = Cancel::new();
    let slot: (Mutex<Option<T>>, Condvar) = (Mutex::new(None), Condvar::new());
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let v = f(&cancel);
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
            slot.1.notify_all();
        });
        loop {
            let got = py.detach(|| {
                let guard = slot.0.lock().unwrap_or_else(|e| e.into_inner());
                let (mut guard, _) =
                    slot.1.wait_timeout_while(guard, SIGNAL_POLL, |v| v.is_none()).unwrap_or_else(|e| e.into_inner());
                guard.take()
            });
            if let Some(v) = got {
                return Ok(v);
            }
            if worker.is_finished() {
                // `f` returned without filling the slot: it panicked (callers guard it, so this
                // is a bug in the wait itself).
                return Err(crate::error::Error::Internal {
                    operation: "waiting for Rust work".into(),
                    message: "the worker thread ended without a result".into(),
                }
                .into());
            }
            if let Err(e) = py.check_signals() {
                cancel.set();
                py.detach(|| {
                    let _ = worker.join();
                });
                return Err(e);
            }
        }
    })
}

impl Session {
    pub(crate) fn new(
        dump: Arc<Dump>,
        symbol_path: Option<String>,
        image_path: Option<String>,
        threads: Option<usize>,
        limits: Limits,
    ) -> Self {
        let symbol_path = symbol_path.or_else(|| std::env::var(crate::symbols::SYMBOL_PATH_ENV).ok());
        Session {
            dump,
            symbol_path,
            image_path,
            threads,
            pool: threads.and_then(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().ok()),
            derived: DerivedColumns::default(),
            limits,
            survey: OnceLock::new(),
            walked: OnceLock::new(),
            symbolizer: OnceLock::new(),
            index: OnceLock::new(),
            images: OnceLock::new(),
            types: OnceLock::new(),
            content: OnceLock::new(),
            reach: OnceLock::new(),
        }
    }

    /// The section tables of the loaded images (and the local binaries of `image_path`).
    pub(crate) fn images(&self, py: Python<'_>) -> PyResult<Arc<Images>> {
        let (dump, path) = (Arc::clone(&self.dump), self.image_path.clone());
        once(py, &self.images, "reading the images' section tables", move || Ok(Images::load(&dump, path.as_deref())))
    }

    /// The type pass (§1.4) over every allocation.
    pub(crate) fn types(&self, py: Python<'_>) -> PyResult<Arc<TypePass>> {
        if let Some(v) = self.types.get() {
            return Ok(Arc::clone(v));
        }
        let images = self.images(py)?;
        let dump = Arc::clone(&self.dump);
        let pass = self.with_block_refs(py, "naming the blocks by their C++ types", move |report, refs, cancel| {
            let t = std::time::Instant::now();
            let table = triage::name_blocks_until(dump.memory(), &images, report, refs, cancel);
            TypePass { table, seconds: t.elapsed().as_secs_f64() }
        })?;
        Ok(Arc::clone(self.types.get_or_init(|| Arc::new(pass))))
    }

    /// The content classes (§3) of every allocation.
    pub(crate) fn content(&self, py: Python<'_>) -> PyResult<Arc<ContentPass>> {
        if let Some(v) = self.content.get() {
            return Ok(Arc::clone(v));
        }
        let types = self.types(py)?;
        let dump = Arc::clone(&self.dump);
        let pass = self.with_block_refs(py, "classifying the blocks' contents", move |report, refs, cancel| {
            let t = std::time::Instant::now();
            let committed = triage::Committed::new(dump.info().regions.as_deref());
            let content =
                triage::classify_blocks_until(dump.memory(), &committed, report, refs, &types.table.type_id, cancel);
            ContentPass { content, seconds: t.elapsed().as_secs_f64() }
        })?;
        Ok(Arc::clone(self.content.get_or_init(|| Arc::new(pass))))
    }

    /// The type pass, if it has run.
    pub(crate) fn types_if_done(&self) -> Option<Arc<TypePass>> {
        self.types.get().cloned()
    }

    /// The content pass, if it has run.
    pub(crate) fn content_if_done(&self) -> Option<Arc<ContentPass>> {
        self.content.get().cloned()
    }

    /// The mark phase, if it has run.
    pub(crate) fn reach_if_done(&self) -> Option<Arc<Reach>> {
        self.reach.get().cloned()
    }

    /// The mark phase (§2).
    pub(crate) fn reach(&self, py: Python<'_>) -> PyResult<Arc<Reach>> {
        if let Some(v) = self.reach.get() {
            return Ok(Arc::clone(v));
        }
        let dump = Arc::clone(&self.dump);
        let reach = self.with_block_refs(py, "marking the reachable blocks", move |report, refs, cancel| {
            triage::mark_until(&dump, report, refs, cancel)
        })?;
        Ok(Arc::clone(self.reach.get_or_init(|| Arc::new(reach))))
    }

    /// Run `f` on this dump's thread pool (`Dump(threads=N)`), else on rayon's global pool.
    fn in_pool<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    /// The heaps as far as headers, counters and short lists tell (no block is walked): the full
    /// walk's report once there is one, else a survey ([`heap::WalkDepth::Headers`]), kept. Heap
    /// `i` is the same heap in both.
    pub(crate) fn heaps_report(&self, py: Python<'_>) -> PyResult<Arc<HeapReport>> {
        if let Some(w) = self.walked.get() {
            return Ok(Arc::clone(&w.report));
        }
        if let Some(s) = self.survey.get() {
            return Ok(Arc::clone(s));
        }
        let dump = Arc::clone(&self.dump);
        let survey = interruptible(py, |cancel| {
            let options = self.walk_options(heap::WalkDepth::Headers, cancel);
            self.in_pool(|| guard(|| "reading the heap headers".into(), || heap::walk_with(&dump, &options)))
        })??;
        Ok(Arc::clone(self.survey.get_or_init(|| Arc::new(survey))))
    }

    fn walk_options(&self, depth: heap::WalkDepth, cancel: &Cancel) -> heap::WalkOptions {
        heap::WalkOptions { symbol_path: self.symbol_path.clone(), depth, limits: self.limits, cancel: cancel.clone() }
    }

    /// Whether the full walk has run.
    pub(crate) fn is_walked(&self) -> bool {
        self.walked.get().is_some()
    }

    /// The heap walk, its stack table and its columns.
    pub(crate) fn walked(&self, py: Python<'_>) -> PyResult<Walked> {
        if let Some(w) = self.walked.get() {
            return Ok(w.clone());
        }
        let dump = Arc::clone(&self.dump);
        let depth = self.limits.max_stack_depth;
        let (mut report, stacks) = interruptible(py, |cancel| {
            let options = self.walk_options(heap::WalkDepth::Blocks, cancel);
            self.in_pool(|| {
                guard(
                    || "walking the heaps".into(),
                    || {
                        let mut report = heap::walk_with(&dump, &options)?;
                        let stacks = StackTable::collect_with(dump.memory(), &report, depth);
                        report.warnings.extend(heap::coverage::stack_gaps(&stacks, depth));
                        Ok((report, stacks))
                    },
                )
            })
        })??;
        let columns = columns_to_dict(py, std::mem::take(&mut report.blocks))?;
        // Shared by every table handed out: nobody may write to them.
        for (_, array) in columns.iter() {
            array.getattr("flags")?.setattr("writeable", false)?;
        }
        let w = Walked { report: Arc::new(report), stacks: Arc::new(stacks), columns: Arc::new(columns.unbind()) };
        Ok(self.walked.get_or_init(|| w).clone())
    }

    /// Run `f` on the stored block columns, borrowed from their numpy arrays, without the GIL
    /// (`quick`: on this thread, else on one of its own while this one watches for Ctrl-C).
    fn block_refs_call<R: Send>(
        &self,
        py: Python<'_>,
        what: &str,
        quick: bool,
        f: impl for<'a> FnOnce(&HeapReport, &BlockRefs<'a>, &Cancel) -> R + Send,
    ) -> PyResult<R> {
        let w = self.walked(py)?;
        let dict = w.columns.bind(py);
        let mut u64s: Vec<(&'static str, PyReadonlyArray1<'_, u64>)> = Vec::new();
        let mut u32s: Vec<(&'static str, PyReadonlyArray1<'_, u32>)> = Vec::new();
        let mut u8s: Vec<(&'static str, PyReadonlyArray1<'_, u8>)> = Vec::new();
        let mut i32s: Vec<(&'static str, PyReadonlyArray1<'_, i32>)> = Vec::new();
        let mut bools: Vec<(&'static str, PyReadonlyArray1<'_, bool>)> = Vec::new();
        for c in BLOCK_SCHEMA {
            let item = dict.get_item(c.name)?.ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(c.name))?;
            match c.dtype {
                "uint64" => u64s.push((c.name, item.cast::<PyArray1<u64>>()?.readonly())),
                "uint32" => u32s.push((c.name, item.cast::<PyArray1<u32>>()?.readonly())),
                "uint8" => u8s.push((c.name, item.cast::<PyArray1<u8>>()?.readonly())),
                "int32" => i32s.push((c.name, item.cast::<PyArray1<i32>>()?.readonly())),
                _ => bools.push((c.name, item.cast::<PyArray1<bool>>()?.readonly())),
            }
        }
        let find = |name: &str| -> Option<AnyColumnRef<'_>> {
            None.or_else(|| u64s.iter().find(|c| c.0 == name).and_then(|c| c.1.as_slice().ok()).map(AnyColumnRef::U64))
                .or_else(|| u32s.iter().find(|c| c.0 == name).and_then(|c| c.1.as_slice().ok()).map(AnyColumnRef::U32))
                .or_else(|| u8s.iter().find(|c| c.0 == name).and_then(|c| c.1.as_slice().ok()).map(AnyColumnRef::U8))
                .or_else(|| i32s.iter().find(|c| c.0 == name).and_then(|c| c.1.as_slice().ok()).map(AnyColumnRef::I32))
                .or_else(|| {
                    bools.iter().find(|c| c.0 == name).and_then(|c| c.1.as_slice().ok()).map(AnyColumnRef::Bool)
                })
        };
        let refs = BlockRefs::from_columns(find)
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("the block columns are not as the schema says"))?;
        let report = Arc::clone(&w.report);
        let run = |cancel: &Cancel| {
            let r = self.in_pool(|| guard(|| what.to_string(), || Ok(f(&report, &refs, cancel))));
            cancel.check(what).and(r)
        };
        let out = if quick { py.detach(|| run(&Cancel::new())) } else { interruptible(py, run)? };
        Ok(out?)
    }

    /// Run `f` on the stored block columns without the GIL, interruptible by Ctrl-C (a pass).
    pub(crate) fn with_block_refs<R: Send>(
        &self,
        py: Python<'_>,
        what: &str,
        f: impl for<'a> FnOnce(&HeapReport, &BlockRefs<'a>, &Cancel) -> R + Send,
    ) -> PyResult<R> {
        self.block_refs_call(py, what, false, f)
    }

    /// [`Self::with_block_refs`] for work too short to need a thread of its own (one lookup).
    pub(crate) fn with_block_refs_quick<R: Send>(
        &self,
        py: Python<'_>,
        what: &str,
        f: impl for<'a> FnOnce(&HeapReport, &BlockRefs<'a>, &Cancel) -> R + Send,
    ) -> PyResult<R> {
        self.block_refs_call(py, what, true, f)
    }

    /// The symbolizer (PDB and export tables load later, per module, on first use).
    pub(crate) fn symbolizer(&self) -> Arc<Symbolizer> {
        Arc::clone(self.symbolizer.get_or_init(|| {
            // An explicit empty path keeps the symbolizer from reading the environment again.
            Arc::new(
                Symbolizer::new(&self.dump, Some(self.symbol_path.as_deref().unwrap_or("")))
                    .with_max_pdb_bytes(self.limits.max_symbol_file_bytes),
            )
        }))
    }

    /// The sorted block extents of the walk.
    pub(crate) fn block_index(&self, py: Python<'_>) -> PyResult<Arc<BlockIndex>> {
        if let Some(i) = self.index.get() {
            return Ok(Arc::clone(i));
        }
        let index = Arc::new(self.with_block_refs(py, "indexing the blocks", |r, b, _| BlockIndex::new(r, b))?);
        Ok(Arc::clone(self.index.get_or_init(|| index)))
    }

    /// The symbolized frames of stack `id` (empty for −1).
    pub(crate) fn frames(&self, py: Python<'_>, stacks: &StackTable, id: i32) -> PyResult<Vec<Frame>> {
        let addrs = stacks.frames_of(id);
        if addrs.is_empty() {
            return Ok(Vec::new());
        }
        let sym = self.symbolizer();
        Ok(py.detach(|| guard(|| "symbolizing a stack".into(), || Ok(sym.symbolize_all(addrs))))?)
    }
}

/// The derived block columns of one dump (`heap`, `segment`, `stack_trace_entry`, `stack_id`),
/// computed on request from the walk's run tables and sparse traces: the Python `Table` asks for
/// them the first time they are used.
#[pyclass(frozen, module = "ntheap._core")]
pub struct BlockSource {
    pub(crate) session: Arc<Session>,
}

#[pymethods]
impl BlockSource {
    /// The stored columns: name → read-only numpy array (the same arrays on every call).
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded("BlockSource.columns", || {
            let w = self.session.walked(py)?;
            w.columns.bind(py).copy()
        })
    }

    /// Per row, an index into `heaps()` (uint16; 65535 for a row of no heap).
    fn heap_codes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u16>>> {
        guarded("BlockSource.heap_codes", || {
            let w = self.session.walked(py)?;
            derived(py, &self.session.derived.heap_codes, &w, |w| w.report.heap_codes())
        })
    }

    /// The heap addresses `heap_codes` refers to.
    fn heaps(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        guarded("BlockSource.heaps", || Ok(self.session.walked(py)?.report.heaps.iter().map(|h| h.address).collect()))
    }

    /// Per row, an index into `segments()` (uint32; 0 is "no segment").
    fn segment_codes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u32>>> {
        guarded("BlockSource.segment_codes", || {
            let w = self.session.walked(py)?;
            derived(py, &self.session.derived.segment_codes, &w, |w| w.report.segment_codes())
        })
    }

    /// The segment addresses `segment_codes` refers to (0 first: no segment).
    fn segments(&self, py: Python<'_>) -> PyResult<Vec<u64>> {
        guarded("BlockSource.segments", || {
            let w = self.session.walked(py)?;
            Ok(std::iter::once(0).chain(w.report.segment_runs.iter().map(|r| r.1)).collect())
        })
    }

    /// Per row, its `_RTL_STACK_TRACE_ENTRY` (0 if none).
    fn stack_trace_entry<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u64>>> {
        guarded("BlockSource.stack_trace_entry", || {
            let w = self.session.walked(py)?;
            derived(py, &self.session.derived.stack_trace_entry, &w, |w| w.report.traces.column(w.report.rows()))
        })
    }

    /// Per row, its stack id in `Dump.stacks()` (−1 if none).
    fn stack_id<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i32>>> {
        guarded("BlockSource.stack_id", || {
            let w = self.session.walked(py)?;
            derived(py, &self.session.derived.stack_id, &w, |w| w.stacks.stack_id_column(w.report.rows()))
        })
    }

    /// One leak-triage column ("type_id", "content", "reachable", ...) for every row; its pass
    /// runs once per dump.
    fn triage_column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        guarded("BlockSource.triage_column", || crate::python::triage::column(py, &self.session, name))
    }

    /// The C++ types `type_id` refers to, as columns (see `ntheap.Dump.types`).
    fn type_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded("BlockSource.type_columns", || crate::python::triage::type_columns(py, &self.session))
    }

    /// Number of rows.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        guarded("BlockSource.__len__", || Ok(self.session.walked(py)?.report.rows()))
    }
}
