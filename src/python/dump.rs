//! `ntheap._core.Dump` and the small frozen records it hands out.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::allocation::Allocation as CoreAllocation;
use crate::dump::{self, Dump};
use crate::error::{guard, Error};
use crate::heap::{coverage, HeapReport};
use crate::process::{self, global_flag_names};
use crate::python::errors::{guarded, DumpError, InternalError, MemoryNotCaptured};
use crate::python::heap::Heap;
use crate::python::limits::PyLimits;
use crate::python::session::BlockSource;
use crate::python::session::Session;
use crate::python::stacks::{stack_dict, Allocation, Frame};
use crate::python::triage;
use crate::target::Arch;

/// A loaded module.
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct Module {
    /// File name, e.g. `ntdll.dll`.
    #[pyo3(get)]
    name: String,
    /// Full path as recorded by the dump writer.
    #[pyo3(get)]
    path: String,
    /// Load address.
    #[pyo3(get)]
    base: u64,
    /// Image size in bytes.
    #[pyo3(get)]
    size: u32,
    /// File version `a.b.c.d`, or None.
    #[pyo3(get)]
    version: Option<String>,
    /// PE TimeDateStamp (seconds since 1970, UTC).
    #[pyo3(get)]
    timestamp: u32,
    /// PE CheckSum.
    #[pyo3(get)]
    checksum: u32,
    /// PDB file name from the CodeView record, or None.
    #[pyo3(get)]
    pdb_name: Option<String>,
    /// PDB GUID (32 upper-case hex digits), or None.
    #[pyo3(get)]
    pdb_guid: Option<String>,
    /// PDB age, or None.
    #[pyo3(get)]
    pdb_age: Option<u32>,
}

#[pymethods]
impl Module {
    /// One past the last byte of the image.
    #[getter]
    fn end(&self) -> PyResult<u64> {
        guarded("Module.end", || Ok(self.base.saturating_add(u64::from(self.size))))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Module.__repr__", || {
            Ok(format!(
                "Module({:?}, base={:#x}, size={:#x}, version={})",
                self.name,
                self.base,
                self.size,
                self.version.as_deref().map_or("None".to_owned(), |v| format!("{v:?}"))
            ))
        })
    }
}

impl From<&dump::Module> for Module {
    fn from(m: &dump::Module) -> Self {
        Module {
            name: m.name().to_owned(),
            path: m.path.clone(),
            base: m.base,
            size: m.size,
            version: m.version.clone(),
            timestamp: m.timestamp,
            checksum: m.checksum,
            pdb_name: m.pdb_name.clone(),
            pdb_guid: m.pdb_guid.clone(),
            pdb_age: m.pdb_age,
        }
    }
}

/// A thread of the dumped process.
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct Thread {
    /// Thread id.
    #[pyo3(get)]
    id: u32,
    /// Address of the (native) TEB.
    #[pyo3(get)]
    teb: u64,
    /// Lowest captured stack address.
    #[pyo3(get)]
    stack_start: u64,
    /// Captured stack bytes.
    #[pyo3(get)]
    stack_size: u32,
    /// Suspend count.
    #[pyo3(get)]
    suspend_count: u32,
}

#[pymethods]
impl Thread {
    /// One past the highest captured stack address.
    #[getter]
    fn stack_end(&self) -> PyResult<u64> {
        guarded("Thread.stack_end", || Ok(self.stack_start.saturating_add(u64::from(self.stack_size))))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Thread.__repr__", || {
            Ok(format!(
                "Thread(id={:#x}, teb={:#x}, stack={:#x}..{:#x})",
                self.id,
                self.teb,
                self.stack_start,
                self.stack_end()?
            ))
        })
    }
}

/// A Process Environment Block: the native one, or the 32-bit one of a WOW64 process.
#[pyclass(frozen, eq, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq)]
pub struct Peb {
    /// Address of the PEB.
    #[pyo3(get)]
    address: u64,
    /// Address of the TEB it was found through.
    #[pyo3(get)]
    teb: u64,
    /// "x86" or "x64": the width of this PEB's pointers.
    #[pyo3(get)]
    arch: &'static str,
    /// ImageBaseAddress.
    #[pyo3(get)]
    image_base: u64,
    /// Ldr.
    #[pyo3(get)]
    ldr: u64,
    /// ProcessHeap: the default heap.
    #[pyo3(get)]
    process_heap: u64,
    /// NtGlobalFlag (gflags).
    #[pyo3(get)]
    nt_global_flag: u32,
    /// NumberOfHeaps.
    #[pyo3(get)]
    number_of_heaps: u32,
    /// MaximumNumberOfHeaps.
    #[pyo3(get)]
    maximum_number_of_heaps: u32,
    /// ProcessHeaps: address of the array of heap pointers.
    #[pyo3(get)]
    process_heaps_address: u64,
    /// The heap pointers, or None when the array is not captured.
    #[pyo3(get)]
    process_heaps: Option<Vec<u64>>,
    /// Why process_heaps is None or suspect, if it is.
    #[pyo3(get)]
    process_heaps_problem: Option<String>,
    /// OSMajorVersion.OSMinorVersion.OSBuildNumber as recorded in the PEB.
    #[pyo3(get)]
    os_version: String,
}

#[pymethods]
impl Peb {
    /// The `!gflag` abbreviations of the bits set in nt_global_flag, e.g. ["htc", "ust"].
    #[getter]
    fn global_flags(&self) -> PyResult<Vec<&'static str>> {
        guarded("Peb.global_flags", || Ok(global_flag_names(self.nt_global_flag)))
    }

    /// Whether the user-mode stack trace database (+ust) was on.
    #[getter]
    fn has_ust(&self) -> PyResult<bool> {
        guarded("Peb.has_ust", || Ok(self.nt_global_flag & process::FLG_USER_STACK_TRACE_DB != 0))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Peb.__repr__", || {
            let heaps = match &self.process_heaps {
                Some(h) => format!("[{}]", h.iter().map(|a| format!("{a:#x}")).collect::<Vec<_>>().join(", ")),
                None => "not captured".to_owned(),
            };
            Ok(format!(
                "Peb({}, address={:#x}, nt_global_flag={:#x} {:?}, process_heap={:#x}, heaps={})",
                self.arch,
                self.address,
                self.nt_global_flag,
                self.global_flags()?,
                self.process_heap,
                heaps
            ))
        })
    }
}

impl From<&process::Peb> for Peb {
    fn from(p: &process::Peb) -> Self {
        Peb {
            address: p.address,
            teb: p.teb,
            arch: p.arch.name(),
            image_base: p.image_base,
            ldr: p.ldr,
            process_heap: p.process_heap,
            nt_global_flag: p.nt_global_flag,
            number_of_heaps: p.number_of_heaps,
            maximum_number_of_heaps: p.maximum_number_of_heaps,
            process_heaps_address: p.process_heaps_address,
            process_heaps: p.process_heaps.clone(),
            process_heaps_problem: p.process_heaps_problem.clone(),
            os_version: format!("{}.{}.{}", p.os_version.0, p.os_version.1, p.os_version.2),
        }
    }
}

/// An open Windows minidump (the compiled half of `ntheap.Dump`).
#[pyclass(frozen, subclass, module = "ntheap._core", name = "Dump")]
pub struct PyDump {
    inner: Arc<Dump>,
    path: PathBuf,
    /// The heap walk, stacks, symbolizer and block index, each computed once on first use.
    session: Arc<Session>,
}

impl PyDump {
    /// The heap walk, run (without the GIL) on first use and kept.
    fn report(&self, py: Python<'_>) -> PyResult<Arc<HeapReport>> {
        Ok(self.session.walked(py)?.report)
    }
}

fn parse_arch(arch: Option<&str>, default: Arch) -> PyResult<Arch> {
    match arch {
        None => Ok(default),
        Some("x86") => Ok(Arch::X86),
        Some("x64") => Ok(Arch::X64),
        Some(other) => {
            Err(pyo3::exceptions::PyValueError::new_err(format!("arch must be \"x86\" or \"x64\", not {other:?}")))
        }
    }
}

#[pymethods]
impl PyDump {
    #[new]
    #[pyo3(signature = (path, *, symbol_path=None, image_path=None, workers=None, limits=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        symbol_path: Option<String>,
        image_path: Option<String>,
        workers: Option<usize>,
        limits: Option<Bound<'_, PyLimits>>,
    ) -> PyResult<Self> {
        guarded("Dump.new", || {
            if workers == Some(0) {
                return Err(pyo3::exceptions::PyValueError::new_err("workers must be at least 1 (None: all cores)"));
            }
            let inner = Arc::new(py.detach(|| guard(|| format!("opening {}", path.display()), || Dump::open(&path)))?);
            let limits = limits.map(|l| l.get().inner).unwrap_or_default();
            let session = Arc::new(Session::new(Arc::clone(&inner), symbol_path, image_path, workers, limits));
            Ok(PyDump { inner, path, session })
        })
    }

    /// The caps this dump's work runs under (`Dump(limits=ntheap.Limits(...))`).
    #[getter]
    fn limits(&self) -> PyResult<PyLimits> {
        guarded("Dump.limits", || Ok(PyLimits { inner: self.session.limits }))
    }

    /// What the heap views do not cover, as (scope, heap, what, count, bytes, message) rows:
    /// `walk` true: everything, after the block walk; false: what headers, lists and the memory
    /// map tell (all of it once the dump has been walked). When the heap list cannot be read at
    /// all, the container's rows and one `not_read:heap_list` row saying why.
    #[pyo3(signature = (walk=true))]
    fn _coverage_rows(&self, py: Python<'_>, walk: bool) -> PyResult<Vec<CoverageRow>> {
        guarded("Dump._coverage_rows", || {
            let report = if walk { self.report(py) } else { self.session.heaps_report(py) };
            let mut rows: Vec<CoverageRow> = match report {
                Ok(r) => r.warnings.iter().map(coverage_row).collect(),
                Err(e) if e.is_instance_of::<DumpError>(py) && !e.is_instance_of::<InternalError>(py) => {
                    let mut rows: Vec<CoverageRow> =
                        coverage::container_gaps(self.inner.info()).iter().map(coverage_row).collect();
                    let advice = if e.is_instance_of::<MemoryNotCaptured>(py) {
                        format!("; {}", coverage::FULL_DUMP_ADVICE)
                    } else {
                        String::new()
                    };
                    let msg = format!("the process's heap list cannot be read: {}{advice}", e.value(py));
                    rows.push(("dump", 0, "not_read:heap_list".into(), 0, 0, msg));
                    rows
                }
                Err(e) => return Err(e),
            };
            let over = self.session.symbolizer().pdbs_over_cap();
            rows.extend(coverage::symbol_gaps(&over).iter().map(coverage_row));
            Ok(rows)
        })
    }

    /// Local directories (separated by ";") searched for the binaries of modules whose image pages
    /// the dump lacks, like WinDbg's `.exepath`; None when not given. Never a server.
    #[getter]
    fn image_path(&self) -> PyResult<Option<String>> {
        guarded("Dump.image_path", || Ok(self.session.image_path.clone()))
    }

    /// One lazily computed block column ("type_id", "content", "reachable", "reached_by", "depth",
    /// "direct_roots"), row-aligned with `_block_columns`; its pass runs once per dump.
    fn _triage_column<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        guarded("Dump._triage_column", || triage::column(py, &self.session, name))
    }

    /// The C++ types that named blocks, as columns (see `ntheap.Dump.types`).
    fn _type_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded("Dump._type_columns", || triage::type_columns(py, &self.session))
    }

    /// Figures of the triage passes already run (all of them with `run=True`): counts, bytes
    /// scanned, seconds, and what makes the root set incomplete.
    #[pyo3(signature = (run=false))]
    fn triage_stats<'py>(&self, py: Python<'py>, run: bool) -> PyResult<Bound<'py, PyDict>> {
        guarded("Dump.triage_stats", || triage::stats(py, &self.session, run))
    }

    /// A short printable preview of the bytes at `address`: the text in quotes when they start
    /// with text (`u"..."` for UTF-16), else hex bytes. Reads at most `size` bytes, stopping where
    /// the dump's capture stops; raises MemoryNotCaptured when `address` itself is not captured.
    #[pyo3(signature = (address, size=32))]
    fn peek(&self, address: u64, size: u64) -> PyResult<String> {
        guarded("Dump.peek", || Ok(triage::peek(self.inner.memory(), address, size.min(0x1000))?))
    }

    /// `peek` of the first `n` bytes (at most the block's size) of many blocks at once.
    #[pyo3(signature = (addresses, sizes, n=32))]
    fn _previews(&self, py: Python<'_>, addresses: Vec<u64>, sizes: Vec<u64>, n: u64) -> PyResult<Vec<String>> {
        guarded("Dump._previews", || {
            let mem = self.inner.memory();
            Ok(py.detach(|| triage::previews(mem, &addresses, &sizes, n.min(0x1000))))
        })
    }

    /// The symbol path PDBs are looked for in: the `symbol_path` argument, else
    /// `_NT_SYMBOL_PATH` when the dump was opened, else None. Only local directories are used.
    #[getter]
    fn symbol_path(&self) -> PyResult<Option<String>> {
        guarded("Dump.symbol_path", || Ok(self.session.symbol_path.clone()))
    }

    /// The loaded CLR runtime ("clr.dll", "coreclr.dll" or "mscorwks.dll"), or None. When set,
    /// frames outside every module are likely JIT-compiled managed code (SOS: `!ip2md`).
    #[getter]
    fn clr_module(&self) -> PyResult<Option<String>> {
        guarded("Dump.clr_module", || {
            Ok(crate::symbols::clr_module(&self.inner.info().modules).map(|m| m.name().to_owned()))
        })
    }

    /// The path the dump was opened from.
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        guarded("Dump.path", || Ok(self.path.clone()))
    }

    /// Size of the dump file in bytes.
    #[getter]
    fn file_size(&self) -> PyResult<u64> {
        guarded("Dump.file_size", || Ok(self.inner.file_size()))
    }

    /// The dump's architecture, "x86" or "x64" (a WOW64 process dumped by a 64-bit dumper: "x64").
    #[getter]
    fn arch(&self) -> PyResult<&'static str> {
        guarded("Dump.arch", || Ok(self.inner.target().arch.name()))
    }

    /// The process's own architecture: "x86" for a WOW64 process, else the same as arch.
    #[getter]
    fn process_arch(&self) -> PyResult<&'static str> {
        guarded("Dump.process_arch", || Ok(if process::is_wow64(&self.inner) { "x86" } else { self.arch()? }))
    }

    /// Whether the dump is of a 32-bit process running under WOW64 on 64-bit Windows.
    #[getter]
    fn is_wow64(&self) -> PyResult<bool> {
        guarded("Dump.is_wow64", || Ok(process::is_wow64(&self.inner)))
    }

    /// Windows version "major.minor.build", e.g. "6.1.7601".
    #[getter]
    fn os_version(&self) -> PyResult<String> {
        guarded("Dump.os_version", || Ok(self.inner.target().version.to_string()))
    }

    /// Windows build number, e.g. 7601.
    #[getter]
    fn os_build(&self) -> PyResult<u32> {
        guarded("Dump.os_build", || Ok(self.inner.target().version.build))
    }

    /// Service pack string, e.g. "Service Pack 1", or None.
    #[getter]
    fn csd_version(&self) -> PyResult<Option<String>> {
        guarded("Dump.csd_version", || Ok(self.inner.info().csd_version.clone()))
    }

    /// Process id from MiscInfo, or None.
    #[getter]
    fn pid(&self) -> PyResult<Option<u32>> {
        guarded("Dump.pid", || Ok(self.inner.info().pid))
    }

    /// Dump time as seconds since 1970-01-01 UTC (header TimeDateStamp).
    #[getter]
    fn timestamp_unix(&self) -> PyResult<u32> {
        guarded("Dump.timestamp_unix", || Ok(self.inner.info().timestamp))
    }

    /// Process creation time as seconds since 1970-01-01 UTC, or None.
    #[getter]
    fn process_create_time_unix(&self) -> PyResult<Option<u32>> {
        guarded("Dump.process_create_time_unix", || Ok(self.inner.info().process_create_time))
    }

    /// MINIDUMP_TYPE flags from the header.
    #[getter]
    fn dump_flags(&self) -> PyResult<u64> {
        guarded("Dump.dump_flags", || Ok(self.inner.info().flags))
    }

    /// Names of the streams present, in directory order.
    #[getter]
    fn streams(&self) -> PyResult<Vec<String>> {
        guarded("Dump.streams", || Ok(self.inner.info().streams.iter().map(|s| s.name.clone()).collect()))
    }

    /// Problems that did not stop the dump from opening (e.g. memory clipped by truncation).
    #[getter]
    fn warnings(&self) -> PyResult<Vec<String>> {
        guarded("Dump.warnings", || Ok(self.inner.info().warnings.clone()))
    }

    /// Loaded modules.
    #[getter]
    fn modules(&self) -> PyResult<Vec<Module>> {
        guarded("Dump.modules", || Ok(self.inner.info().modules.iter().map(Module::from).collect()))
    }

    /// Threads.
    #[getter]
    fn threads(&self) -> PyResult<Vec<Thread>> {
        guarded("Dump.threads", || {
            Ok(self
                .inner
                .info()
                .threads
                .iter()
                .map(|t| Thread {
                    id: t.id,
                    teb: t.teb,
                    stack_start: t.stack_start,
                    stack_size: t.stack_size,
                    suspend_count: t.suspend_count,
                })
                .collect())
        })
    }

    /// The native PEB (the 64-bit one of a WOW64 process).
    #[getter]
    fn peb(&self) -> PyResult<Peb> {
        guarded("Dump.peb", || Ok(Peb::from(&process::process_info(&self.inner)?.native)))
    }

    /// The 32-bit PEB of a WOW64 process (where the application's heaps are listed), else None.
    #[getter]
    fn peb32(&self) -> PyResult<Option<Peb>> {
        guarded("Dump.peb32", || {
            if !process::is_wow64(&self.inner) {
                return Ok(None);
            }
            Ok(process::process_info(&self.inner)?.wow64.as_ref().map(Peb::from))
        })
    }

    /// Total captured memory in bytes.
    #[getter]
    fn captured_bytes(&self) -> PyResult<u64> {
        guarded("Dump.captured_bytes", || Ok(self.inner.memory().captured_bytes()))
    }

    /// Number of captured memory ranges after merging both lists and joining neighbours.
    #[getter]
    fn captured_range_count(&self) -> PyResult<usize> {
        guarded("Dump.captured_range_count", || Ok(self.inner.memory().ranges().len()))
    }

    /// Read `size` bytes of process memory at `address`.
    fn read<'py>(&self, py: Python<'py>, address: u64, size: u64) -> PyResult<Bound<'py, PyBytes>> {
        guarded("Dump.read", || {
            let bytes = self.inner.memory().read(address, size)?;
            Ok(PyBytes::new(py, &bytes))
        })
    }

    /// Whether all of `address .. address+size` is captured.
    #[pyo3(signature = (address, size=1))]
    fn is_captured(&self, address: u64, size: u64) -> PyResult<bool> {
        guarded("Dump.is_captured", || Ok(self.inner.memory().is_captured(address, size)))
    }

    /// Read a little-endian u8.
    fn read_u8(&self, address: u64) -> PyResult<u8> {
        guarded("Dump.read_u8", || Ok(self.inner.memory().read_u8(address)?))
    }

    /// Read a little-endian u16.
    fn read_u16(&self, address: u64) -> PyResult<u16> {
        guarded("Dump.read_u16", || Ok(self.inner.memory().read_u16(address)?))
    }

    /// Read a little-endian u32.
    fn read_u32(&self, address: u64) -> PyResult<u32> {
        guarded("Dump.read_u32", || Ok(self.inner.memory().read_u32(address)?))
    }

    /// Read a little-endian u64.
    fn read_u64(&self, address: u64) -> PyResult<u64> {
        guarded("Dump.read_u64", || Ok(self.inner.memory().read_u64(address)?))
    }

    /// Read a pointer: 8 bytes on x64 and 4 on x86. `arch` defaults to the dump's arch; pass
    /// "x86" for the 32-bit side of a WOW64 process.
    #[pyo3(signature = (address, arch=None))]
    fn read_pointer(&self, address: u64, arch: Option<&str>) -> PyResult<u64> {
        guarded("Dump.read_pointer", || {
            let arch = parse_arch(arch, self.inner.target().arch)?;
            Ok(self.inner.memory().read_ptr(arch, address)?)
        })
    }

    /// MemoryInfoList entries as a dict of numpy arrays (see `ntheap.Dump.regions`).
    fn _region_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded("Dump._region_columns", || {
            let dump = Arc::clone(&self.inner);
            let cols = py.detach(move || region_columns(&dump))?;
            let d = PyDict::new(py);
            for (name, col) in cols.u64s {
                d.set_item(name, col.into_pyarray(py))?;
            }
            for (name, col) in cols.u32s {
                d.set_item(name, col.into_pyarray(py))?;
            }
            Ok(d)
        })
    }

    /// Every heap listed by the PEB (and the 32-bit PEB of a WOW64 process). Reading them costs
    /// headers and short lists, not a walk of their blocks; what needs the blocks walks the dump
    /// on first use.
    #[getter]
    fn heaps(&self, py: Python<'_>) -> PyResult<Vec<Heap>> {
        guarded("Dump.heaps", || Ok(Heap::all(&self.session.heaps_report(py)?, &self.session)))
    }

    /// Worker threads of this dump's walks and passes (`Dump(workers=N)`), None for all cores.
    #[getter]
    fn workers(&self) -> PyResult<Option<usize>> {
        guarded("Dump.workers", || Ok(self.session.threads))
    }

    /// Whether the blocks have been walked (by `blocks()` or anything else that needs them).
    #[getter]
    fn is_walked(&self) -> PyResult<bool> {
        guarded("Dump.is_walked", || Ok(self.session.is_walked()))
    }

    /// The block columns and their derived columns (see `ntheap.Dump.blocks`).
    fn _block_source(&self) -> PyResult<BlockSource> {
        guarded("Dump._block_source", || Ok(BlockSource { session: Arc::clone(&self.session) }))
    }

    /// The +ust stacks of every block, their symbolized frames and problems, as columns (see
    /// `ntheap.Dump.stacks`).
    fn _stack_columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        guarded("Dump._stack_columns", || {
            let w = self.session.walked(py)?;
            stack_dict(py, &w.stacks, &self.session.symbolizer())
        })
    }

    /// The heap block containing `address` (its header, user data or tail; for a large block
    /// anything from its _HEAP_VIRTUAL_ALLOC_ENTRY to the end of its committed range), with
    /// its allocation stack; None when no walked block contains it.
    fn allocation_at(&self, py: Python<'_>, address: u64) -> PyResult<Option<Allocation>> {
        guarded("Dump.allocation_at", || {
            let w = self.session.walked(py)?;
            let index = self.session.block_index(py)?;
            let stacks = Arc::clone(&w.stacks);
            let found =
                self.session.with_block_refs_quick(py, "finding the block of an address", move |report, refs, _| {
                    CoreAllocation::find(report, refs, &stacks, &index, address)
                })?;
            let Some(a) = found else { return Ok(None) };
            let frames = self.session.frames(py, &w.stacks, a.stack_id)?;
            let clr = self.clr_module()?;
            let images = self.session.images(py)?;
            let t = triage::block_triage(&self.inner, &images, &a);
            Ok(Some(Allocation::new(&a, frames, clr.as_deref(), t)))
        })
    }

    /// Symbolize one code address: module!symbol+offset from a PDB, the exports or the module.
    fn symbolize(&self, py: Python<'_>, address: u64) -> PyResult<Frame> {
        guarded("Dump.symbolize", || {
            let sym = self.session.symbolizer();
            Ok(Frame::from(py.detach(|| guard(|| format!("symbolizing {address:#x}"), || Ok(sym.symbolize(address))))?))
        })
    }

    /// Per module: what symbolization uses ("pdb", "export", "module", or None before any frame
    /// of the module was symbolized), the PDB file, and why other sources were not used.
    fn symbol_status(&self) -> PyResult<Vec<SymbolStatusRow>> {
        guarded("Dump.symbol_status", || {
            Ok(self
                .session
                .symbolizer()
                .status()
                .into_iter()
                .map(|m| match m.symbols {
                    Some(s) => (m.name, m.base, Some(s.source.name()), s.pdb.map(|p| p.display().to_string()), s.notes),
                    None => (m.name, m.base, None, None, Vec::new()),
                })
                .collect())
        })
    }

    /// Corruption records as columns: heap, address, kind (code), kind_name, detail (`walk`:
    /// of the block walk, else of the headers survey unless the dump has been walked).
    #[pyo3(signature = (walk=true))]
    fn _corruption_columns<'py>(&self, py: Python<'py>, walk: bool) -> PyResult<Bound<'py, PyDict>> {
        guarded("Dump._corruption_columns", || {
            let report = if walk { self.report(py)? } else { self.session.heaps_report(py)? };
            let d = PyDict::new(py);
            let c = &report.corruption;
            d.set_item("heap", c.iter().map(|r| r.heap).collect::<Vec<_>>().into_pyarray(py))?;
            d.set_item("address", c.iter().map(|r| r.address).collect::<Vec<_>>().into_pyarray(py))?;
            d.set_item("kind", c.iter().map(|r| r.kind.code()).collect::<Vec<_>>().into_pyarray(py))?;
            d.set_item("detail", c.iter().map(|r| r.detail.clone()).collect::<Vec<_>>())?;
            Ok(d)
        })
    }

    /// The `!heap -s` table as WinDbg lays it out. From headers only unless the dump has been
    /// walked or `walk` is true ("List length" needs the walk and is printed as "?" without it).
    #[pyo3(signature = (walk=false))]
    fn heap_summary_text(&self, py: Python<'_>, walk: bool) -> PyResult<String> {
        guarded("Dump.heap_summary_text", || {
            let report = if walk { self.report(py)? } else { self.session.heaps_report(py)? };
            Ok(report.summary_table())
        })
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Dump.__repr__", || {
            let info = self.inner.info();
            Ok(format!(
                "<ntheap.Dump {:?}: {} Windows {}{}, pid {}, {} modules, {} threads>",
                self.path.display().to_string(),
                self.arch()?,
                self.os_version()?,
                if self.is_wow64()? { " WOW64" } else { "" },
                info.pid.map_or("?".to_owned(), |p| p.to_string()),
                info.modules.len(),
                info.threads.len()
            ))
        })
    }
}

/// One row of `Dump._coverage_rows()`: scope, heap, what, count, bytes, message.
type CoverageRow = (&'static str, u64, String, u64, u64, String);

fn coverage_row(w: &coverage::Warning) -> CoverageRow {
    (w.scope.name(), w.heap, w.what.clone(), w.count, w.bytes, w.message.clone())
}

/// One row of `Dump.symbol_status()`: module name, base, source, PDB path, notes.
type SymbolStatusRow = (String, u64, Option<&'static str>, Option<String>, Vec<String>);

struct Columns {
    u64s: Vec<(&'static str, Vec<u64>)>,
    u32s: Vec<(&'static str, Vec<u32>)>,
}

fn region_columns(dump: &Dump) -> Result<Columns, Error> {
    let regions = dump.info().regions.as_ref().ok_or(Error::MissingStream { stream: "MemoryInfoListStream" })?;
    let n = regions.len();
    let mut base = Vec::with_capacity(n);
    let mut size = Vec::with_capacity(n);
    let mut allocation_base = Vec::with_capacity(n);
    let mut captured = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut protect = Vec::with_capacity(n);
    let mut allocation_protect = Vec::with_capacity(n);
    for r in regions {
        base.push(r.base);
        size.push(r.size);
        allocation_base.push(r.allocation_base);
        captured.push(dump.memory().captured_in(r.base, r.size));
        state.push(r.state);
        kind.push(r.kind);
        protect.push(r.protect);
        allocation_protect.push(r.allocation_protect);
    }
    Ok(Columns {
        u64s: vec![("base", base), ("size", size), ("allocation_base", allocation_base), ("captured", captured)],
        u32s: vec![("state", state), ("type", kind), ("protect", protect), ("allocation_protect", allocation_protect)],
    })
}
