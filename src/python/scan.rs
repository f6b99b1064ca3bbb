//! `ntheap._core.ScanJob`: a batch scan running on Rust threads while Python polls its progress.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::error::Result;
use crate::limits::Cancel;
use crate::python::errors::guarded;
use crate::python::limits::PyLimits;
use crate::python::stacks::stack_dict_of;
use crate::python::triage::type_dict;
use crate::scan::{concat_blocks, in_pool, scan_here, BusyBlocks, DumpScan, ScanOptions};

/// What the scan thread leaves: one result per dump, and the busy blocks of all readable dumps
/// in one set of columns (moved into numpy once) with the row where each dump's start.
struct Results {
    dumps: Vec<Result<DumpScan>>,
    blocks: Mutex<Option<BusyBlocks>>,
    starts: Vec<usize>,
}

/// A scan of many dumps, started on construction on a pool of Rust threads (the GIL is not
/// held). Poll `done()` for progress; `results()` waits and returns one dict per dump, in order.
#[pyclass(frozen, module = "ntheap._core")]
pub struct ScanJob {
    paths: Vec<PathBuf>,
    cancel: Cancel,
    done: Arc<AtomicUsize>,
    handle: Mutex<Option<JoinHandle<Results>>>,
    results: Mutex<Option<Arc<Results>>>,
    /// The records, once built (`results()` hands out the same list every time).
    records: Mutex<Option<Py<PyList>>>,
}

#[pymethods]
impl ScanJob {
    #[new]
    #[pyo3(signature = (paths, workers=None, symbol_path=None, image_path=None, limits=None))]
    fn new(
        paths: Vec<PathBuf>,
        workers: Option<usize>,
        symbol_path: Option<String>,
        image_path: Option<String>,
        limits: Option<Bound<'_, PyLimits>>,
    ) -> PyResult<Self> {
        guarded("ScanJob.new", || {
            let done = Arc::new(AtomicUsize::new(0));
            let (p, d) = (paths.clone(), Arc::clone(&done));
            let cancel = Cancel::new();
            let options = ScanOptions {
                symbol_path,
                image_path,
                limits: limits.map(|l| l.get().inner).unwrap_or_default(),
                cancel: cancel.clone(),
            };
            let handle = std::thread::spawn(move || {
                in_pool(workers, || {
                    let mut dumps = scan_here(&p, &options, &d);
                    let (blocks, starts) = concat_blocks(&mut dumps);
                    Results { dumps, blocks: Mutex::new(Some(blocks)), starts }
                })
            });
            Ok(ScanJob {
                paths,
                cancel,
                done,
                handle: Mutex::new(Some(handle)),
                results: Mutex::new(None),
                records: Mutex::new(None),
            })
        })
    }

    /// Stop the scan: dumps not yet finished end with `KeyboardInterrupt` in their records
    /// (`results()` still returns one record per dump).
    fn cancel(&self) -> PyResult<()> {
        guarded("ScanJob.cancel", || {
            self.cancel.set();
            Ok(())
        })
    }

    /// Number of dumps in the job.
    #[getter]
    fn total(&self) -> PyResult<usize> {
        guarded("ScanJob.total", || Ok(self.paths.len()))
    }

    /// Number of dumps finished so far.
    fn done(&self) -> PyResult<usize> {
        guarded("ScanJob.done", || Ok(self.done.load(Ordering::Relaxed)))
    }

    /// Whether every dump is finished.
    fn finished(&self) -> PyResult<bool> {
        guarded("ScanJob.finished", || Ok(self.done()? == self.paths.len()))
    }

    /// Wait up to `timeout` seconds (without the GIL) for the scan to finish, including the
    /// joining of every dump's columns; returns whether it has.
    fn wait(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        guarded("ScanJob.wait", || {
            let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
            Ok(py.detach(|| loop {
                let over = self.handle.lock().map_or(true, |h| h.as_ref().is_none_or(JoinHandle::is_finished));
                if over || std::time::Instant::now() >= until {
                    return over;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }))
        })
    }

    /// Wait for the scan, then one dict per dump (input order): path, exception (the
    /// `ntheap.DumpError` or `OSError` the dump raised, with its attributes, `path` set and the
    /// path before its message, or None), error (the message alone), error_kind (its class
    /// name), timestamp_unix, pid, process_create_time_unix, main_module, coverage (the
    /// (scope, heap, what, count, bytes, message) rows of `Dump.coverage()`), heaps_listed,
    /// heaps_walked, blocks (dict of numpy arrays: heap, address, user_address,
    /// user_size, kind, stack_id, type_id, content; each the dump's slice of one array per column
    /// that holds every readable dump's blocks in order), stack_keys, stacks (as
    /// `Dump._stack_columns`) and types (as `Dump._type_columns`).
    fn results<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        guarded("ScanJob.results", || {
            let mut cached =
                self.records.lock().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("scan state poisoned"))?;
            if let Some(list) = cached.as_ref() {
                return Ok(list.bind(py).clone());
            }
            let results = py.detach(|| self.join())?;
            // Every readable dump's blocks are slices of one array per column.
            let blocks = results.blocks.lock().ok().and_then(|mut b| b.take()).unwrap_or_default();
            let all = PyDict::new(py);
            all.set_item("heap", blocks.heap.into_pyarray(py))?;
            all.set_item("address", blocks.address.into_pyarray(py))?;
            all.set_item("user_address", blocks.user_address.into_pyarray(py))?;
            all.set_item("user_size", blocks.user_size.into_pyarray(py))?;
            all.set_item("kind", blocks.kind.into_pyarray(py))?;
            all.set_item("stack_id", blocks.stack_id.into_pyarray(py))?;
            all.set_item("type_id", blocks.type_id.into_pyarray(py))?;
            all.set_item("content", blocks.content.into_pyarray(py))?;
            let out = PyList::empty(py);
            for (k, (path, r)) in self.paths.iter().zip(results.dumps.iter()).enumerate() {
                let rows =
                    pyo3::types::PySlice::new(py, to_isize(results.starts[k]), to_isize(results.starts[k + 1]), 1);
                let d = PyDict::new(py);
                d.set_item("path", path.display().to_string())?;
                match r {
                    Ok(s) => {
                        d.set_item("exception", py.None())?;
                        d.set_item("error", py.None())?;
                        d.set_item("error_kind", py.None())?;
                        d.set_item("timestamp_unix", s.timestamp)?;
                        d.set_item("pid", s.pid)?;
                        d.set_item("process_create_time_unix", s.process_create_time)?;
                        d.set_item("main_module", s.main_module.clone())?;
                        let gaps: Vec<_> = s
                            .gaps
                            .iter()
                            .map(|w| (w.scope.name(), w.heap, w.what.clone(), w.count, w.bytes, w.message.clone()))
                            .collect();
                        d.set_item("coverage", gaps)?;
                        d.set_item("heaps_listed", s.heaps.0)?;
                        d.set_item("heaps_walked", s.heaps.1)?;
                        let b = PyDict::new(py);
                        for (name, column) in all.iter() {
                            b.set_item(name, column.get_item(&rows)?)?;
                        }
                        d.set_item("blocks", b)?;
                        d.set_item("stack_keys", s.stack_keys.clone())?;
                        d.set_item("stacks", stack_dict_of(py, &s.stacks, &s.symbols)?)?;
                        d.set_item("types", type_dict(py, &s.types)?)?;
                    }
                    Err(e) => {
                        // The exception itself, made by the one error map, so that a caller who
                        // raises it gets the class and attributes (offset, address, ...) that
                        // opening the dump alone would have raised; its message starts with the
                        // path, as one dump among many needs.
                        let err: PyErr = e.clone().into();
                        let value = err.value(py);
                        let shown = path.display().to_string();
                        value.setattr("args", (format!("{shown}: {e}"),))?;
                        value.setattr("path", shown)?;
                        d.set_item("exception", value)?;
                        d.set_item("error", e.to_string())?;
                        d.set_item("error_kind", value.get_type().name()?)?;
                        d.set_item("timestamp_unix", py.None())?;
                        d.set_item("pid", py.None())?;
                        d.set_item("process_create_time_unix", py.None())?;
                        d.set_item("main_module", py.None())?;
                        d.set_item("coverage", PyList::empty(py))?;
                        d.set_item("heaps_listed", 0)?;
                        d.set_item("heaps_walked", 0)?;
                        d.set_item("blocks", py.None())?;
                        d.set_item("stack_keys", py.None())?;
                        d.set_item("stacks", py.None())?;
                        d.set_item("types", py.None())?;
                    }
                }
                out.append(d)?;
            }
            *cached = Some(out.clone().unbind());
            Ok(out)
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("ScanJob.__repr__", || Ok(format!("<ScanJob {}/{} dumps done>", self.done()?, self.paths.len())))
    }
}

fn to_isize(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

impl ScanJob {
    fn join(&self) -> PyResult<Arc<Results>> {
        let mut cached =
            self.results.lock().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("scan state poisoned"))?;
        if let Some(r) = cached.as_ref() {
            return Ok(Arc::clone(r));
        }
        let handle = self.handle.lock().ok().and_then(|mut h| h.take());
        let results = match handle {
            Some(h) => h.join().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("the scan thread panicked"))?,
            None => return Err(pyo3::exceptions::PyRuntimeError::new_err("scan results already taken")),
        };
        let results = Arc::new(results);
        *cached = Some(Arc::clone(&results));
        Ok(results)
    }
}
