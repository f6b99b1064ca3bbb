//! `Frame`, `Allocation` and the stack-table columns behind `ntheap.StackTable`.

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::allocation::Allocation as CoreAllocation;
use crate::error::guard;
use crate::python::errors::guarded;
use crate::stacks::{StackProblemKind, StackTable};
use crate::symbols::{self, Symbolizer, TableSymbols};

/// One symbolized stack frame.
#[pyclass(frozen, eq, hash, module = "ntheap._core")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The return address.
    #[pyo3(get)]
    address: u64,
    /// The debugger's module name ("halcon" for halcon.dll), or None outside every module.
    #[pyo3(get)]
    module: Option<String>,
    /// The symbol (from a PDB or the export table), or None.
    #[pyo3(get)]
    symbol: Option<String>,
    /// Bytes past the symbol, or past the module base when there is no symbol; 0 otherwise.
    #[pyo3(get)]
    offset: u64,
    /// As the debugger prints it: "halcon!HXmalloc+0x8b", "halcon+0x1234" or "0x1f2e3d4c".
    #[pyo3(get)]
    text: String,
    /// No module contains the address (JIT-compiled code, or an unlisted module).
    #[pyo3(get)]
    jit_or_unknown: bool,
    /// Where the text came from: "pdb", "export", "module" or "none".
    #[pyo3(get)]
    source: &'static str,
}

impl From<symbols::Frame> for Frame {
    fn from(f: symbols::Frame) -> Self {
        Frame {
            address: f.address,
            module: f.module,
            symbol: f.symbol,
            offset: f.offset,
            text: f.text,
            jit_or_unknown: f.jit_or_unknown,
            source: f.source.name(),
        }
    }
}

#[pymethods]
impl Frame {
    fn __repr__(&self) -> PyResult<String> {
        guarded("Frame.__repr__", || {
            Ok(format!("Frame({:#x}, {:?}, source={:?})", self.address, self.text, self.source))
        })
    }

    fn __str__(&self) -> PyResult<String> {
        guarded("Frame.__str__", || Ok(self.text.clone()))
    }
}

/// The heap block that holds an address, with the stack that allocated it (`!heap -p -a`).
#[pyclass(frozen, module = "ntheap._core")]
pub struct Allocation {
    /// The address that was looked up.
    #[pyo3(get)]
    query: u64,
    /// The owning heap.
    #[pyo3(get)]
    heap: u64,
    /// The block's `_HEAP_ENTRY` address (a virtual block's BusyBlock).
    #[pyo3(get)]
    address: u64,
    /// Block size in bytes, header included (a virtual block's CommitSize).
    #[pyo3(get)]
    size: u64,
    /// The pointer the allocator returned (0 when the block has no user data).
    #[pyo3(get)]
    user_address: u64,
    /// Requested bytes.
    #[pyo3(get)]
    user_size: u64,
    /// Whether the block is allocated.
    #[pyo3(get)]
    busy: bool,
    /// "backend", "virtual", "lfh_container", "segment_header", "internal" or "unparsed".
    #[pyo3(get)]
    kind: &'static str,
    /// Decoded `_HEAP_ENTRY.Flags`.
    #[pyo3(get)]
    flags: u8,
    /// The block's `_RTL_STACK_TRACE_ENTRY` (+ust), or 0.
    #[pyo3(get)]
    stack_trace_entry: u64,
    /// Index into `Dump.stacks()`, or -1.
    #[pyo3(get)]
    stack_id: i32,
    /// The allocation stack, innermost frame first (empty without +ust).
    #[pyo3(get)]
    stack: Vec<Frame>,
    /// First and one-past-last address of the block's extent (for a virtual block, its whole
    /// committed range from the _HEAP_VIRTUAL_ALLOC_ENTRY).
    #[pyo3(get)]
    extent: (u64, u64),
    /// The C++ type of the allocation (MSVC RTTI, leak-triage.md §1.4), or None.
    #[pyo3(get)]
    type_name: Option<String>,
    /// The type's decorated TypeDescriptor name (`.?AVWidget@@`), or None.
    #[pyo3(get)]
    decorated: Option<String>,
    /// What the allocation's first bytes hold (leak-triage.md §3): "object", "ascii", "utf16",
    /// "pointer_array", "zero", "other", "not_captured"; None when the block is not an allocation.
    #[pyo3(get)]
    content: Option<&'static str>,
    /// A short printable preview of the first 32 bytes of user data: text in quotes, else hex.
    #[pyo3(get)]
    preview: String,
    text: String,
}

/// What the triage passes say about one allocation (see [`Allocation`]).
#[derive(Default)]
pub(crate) struct BlockTriage {
    pub(crate) type_name: Option<String>,
    pub(crate) decorated: Option<String>,
    pub(crate) content: Option<&'static str>,
    pub(crate) preview: String,
}

impl Allocation {
    pub(crate) fn new(a: &CoreAllocation, frames: Vec<symbols::Frame>, clr: Option<&str>, t: BlockTriage) -> Self {
        let mut text = a.windbg_text(&frames, clr);
        if let Some(name) = t.type_name.as_deref().or(t.decorated.as_deref()) {
            text.push_str(&format!("\n        type {name}"));
        }
        Allocation {
            query: a.query,
            heap: a.heap,
            address: a.address,
            size: a.size,
            user_address: a.user_address,
            user_size: a.user_size,
            busy: a.busy,
            kind: a.kind.name(),
            flags: a.flags,
            stack_trace_entry: a.trace_entry,
            stack_id: a.stack_id,
            stack: frames.into_iter().map(Frame::from).collect(),
            extent: (a.extent_start, a.extent_end),
            type_name: t.type_name,
            decorated: t.decorated,
            content: t.content,
            preview: t.preview,
            text,
        }
    }
}

#[pymethods]
impl Allocation {
    /// The block and its stack laid out as `!heap -p -a` prints them.
    #[getter]
    fn text(&self) -> PyResult<String> {
        guarded("Allocation.text", || Ok(self.text.clone()))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Allocation.__repr__", || Ok(self.text.clone()))
    }
}

/// Names of the stack-problem kind codes, by code.
pub(crate) fn stack_problem_kind_names() -> Vec<(u8, &'static str)> {
    StackProblemKind::ALL.iter().map(|k| (k.code(), k.name())).collect()
}

/// Names of the frame-source codes, by code.
pub(crate) fn frame_source_names() -> Vec<(u8, &'static str)> {
    symbols::FrameSource::ALL.iter().map(|s| (s.code(), s.name())).collect()
}

/// Everything `ntheap.StackTable` is made of, computed without the GIL.
struct StackColumns {
    offsets: Vec<u32>,
    depth: Vec<u16>,
    frame_address: Vec<u64>,
    trace_entry: Vec<u64>,
    frame_index: Vec<u32>,
    keys: Vec<String>,
    unique_address: Vec<u64>,
    unique_module: Vec<Option<String>>,
    unique_symbol: Vec<Option<String>>,
    unique_offset: Vec<u64>,
    unique_text: Vec<String>,
    unique_jit: Vec<bool>,
    unique_source: Vec<u8>,
}

fn stack_columns(t: &StackTable, sym: &Symbolizer) -> StackColumns {
    columns_of(t, sym.symbolize_table(t))
}

fn columns_of(t: &StackTable, symbols: TableSymbols) -> StackColumns {
    let TableSymbols { distinct, frames, frame_index, keys } = symbols;
    let mut c = StackColumns {
        offsets: t.offsets.clone(),
        depth: t.depth.clone(),
        frame_address: t.frames.clone(),
        trace_entry: t.trace_entry.clone(),
        frame_index,
        keys,
        unique_address: distinct,
        unique_module: Vec::with_capacity(frames.len()),
        unique_symbol: Vec::with_capacity(frames.len()),
        unique_offset: Vec::with_capacity(frames.len()),
        unique_text: Vec::with_capacity(frames.len()),
        unique_jit: Vec::with_capacity(frames.len()),
        unique_source: Vec::with_capacity(frames.len()),
    };
    for f in frames {
        c.unique_module.push(f.module);
        c.unique_symbol.push(f.symbol);
        c.unique_offset.push(f.offset);
        c.unique_text.push(f.text);
        c.unique_jit.push(f.jit_or_unknown);
        c.unique_source.push(f.source.code());
    }
    c
}

/// The stack table as a dict of numpy arrays and lists (see `ntheap.StackTable`).
pub(crate) fn stack_dict<'py>(py: Python<'py>, t: &StackTable, sym: &Symbolizer) -> PyResult<Bound<'py, PyDict>> {
    let c = py.detach(|| guard(|| "symbolizing the stacks".into(), || Ok(stack_columns(t, sym))))?;
    columns_dict(py, t, c)
}

/// The stack table as [`stack_dict`] gives it, from frames already symbolized (a batch scan).
pub(crate) fn stack_dict_of<'py>(
    py: Python<'py>,
    t: &StackTable,
    symbols: &TableSymbols,
) -> PyResult<Bound<'py, PyDict>> {
    let c = columns_of(t, symbols.clone());
    columns_dict(py, t, c)
}

fn columns_dict<'py>(py: Python<'py>, t: &StackTable, c: StackColumns) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("offsets", c.offsets.into_pyarray(py))?;
    d.set_item("depth", c.depth.into_pyarray(py))?;
    d.set_item("frame_address", c.frame_address.into_pyarray(py))?;
    d.set_item("trace_entry", c.trace_entry.into_pyarray(py))?;
    d.set_item("frame_index", c.frame_index.into_pyarray(py))?;
    d.set_item("keys", c.keys)?;
    d.set_item("unique_address", c.unique_address.into_pyarray(py))?;
    d.set_item("unique_module", c.unique_module)?;
    d.set_item("unique_symbol", c.unique_symbol)?;
    d.set_item("unique_offset", c.unique_offset.into_pyarray(py))?;
    d.set_item("unique_text", c.unique_text)?;
    d.set_item("unique_jit_or_unknown", c.unique_jit.into_pyarray(py))?;
    d.set_item("unique_source", c.unique_source.into_pyarray(py))?;
    let p = &t.problems;
    let problems = PyDict::new(py);
    problems.set_item("trace_entry", p.iter().map(|r| r.trace_entry).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("heap", p.iter().map(|r| r.heap).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("block", p.iter().map(|r| r.block).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("block_count", p.iter().map(|r| r.block_count).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("kind", p.iter().map(|r| r.kind.code()).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("stack_id", p.iter().map(|r| r.stack_id).collect::<Vec<_>>().into_pyarray(py))?;
    problems.set_item("detail", p.iter().map(|r| r.detail.clone()).collect::<Vec<_>>())?;
    d.set_item("problems", problems)?;
    d.set_item("entries_read", t.entries_read)?;
    Ok(d)
}
