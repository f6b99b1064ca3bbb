//! The leak-triage passes (`crate::triage`) for Python: the lazy block columns (`type_id`,
//! `content`, `reachable`, `reached_by`, `depth`), the type table, previews and the passes'
//! figures. Each pass runs once per dump, without the GIL, on first use (see `session`).

use numpy::IntoPyArray;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::allocation::Allocation as CoreAllocation;
use crate::dump::Dump;
use crate::error::Error;
use crate::memory::AddressSpace;
use crate::python::session::Session;
use crate::python::stacks::BlockTriage;
use crate::triage::content::{self, Content};
use crate::triage::reach::{ReachedBy, RootKind};
use crate::triage::rtti::Namer;
use crate::triage::TRIAGE_COLUMNS;
use crate::triage::{Images, RttiType};

/// One lazy block column, as a new numpy array (the session keeps the pass's own copy).
pub(crate) fn column<'py>(py: Python<'py>, session: &Session, name: &str) -> PyResult<Bound<'py, PyAny>> {
    Ok(match name {
        "type_id" => session.types(py)?.table.type_id.clone().into_pyarray(py).into_any(),
        "content" => session.content(py)?.content.clone().into_pyarray(py).into_any(),
        "reachable" => session.reach(py)?.reachable.clone().into_pyarray(py).into_any(),
        "reached_by" => session.reach(py)?.reached_by.clone().into_pyarray(py).into_any(),
        "depth" => session.reach(py)?.depth.clone().into_pyarray(py).into_any(),
        "direct_roots" => session.reach(py)?.direct_roots.clone().into_pyarray(py).into_any(),
        other => return Err(PyKeyError::new_err(format!("no lazy block column {other:?}"))),
    })
}

/// The type table as columns: id, name, decorated, module, vftable, type_descriptor, is_struct,
/// arch.
pub(crate) fn type_columns<'py>(py: Python<'py>, session: &Session) -> PyResult<Bound<'py, PyDict>> {
    type_dict(py, &session.types(py)?.table.types)
}

/// `types` as the columns of [`type_columns`].
pub(crate) fn type_dict<'py>(py: Python<'py>, t: &[RttiType]) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", (0..t.len() as i32).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("name", t.iter().map(|x| x.name.clone()).collect::<Vec<_>>())?;
    d.set_item("decorated", t.iter().map(|x| x.decorated.clone()).collect::<Vec<_>>())?;
    d.set_item("module", t.iter().map(|x| x.module_name.clone()).collect::<Vec<_>>())?;
    d.set_item("vftable", t.iter().map(|x| x.vftable).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("type_descriptor", t.iter().map(|x| x.type_descriptor).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("is_struct", t.iter().map(|x| x.is_struct).collect::<Vec<_>>().into_pyarray(py))?;
    d.set_item("arch", t.iter().map(|x| x.arch.name()).collect::<Vec<_>>())?;
    Ok(d)
}

/// What each pass computed and how long it took (only the passes already run, unless `run`).
pub(crate) fn stats<'py>(py: Python<'py>, session: &Session, run: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    if run {
        session.content(py)?;
        session.reach(py)?;
    }
    if let Some(t) = session.types_if_done() {
        d.set_item("type_seconds", t.seconds)?;
        d.set_item("types", t.table.types.len())?;
        d.set_item("named", t.table.named)?;
        d.set_item("vftables_checked", t.table.vftables_checked)?;
    }
    if let Some(c) = session.content_if_done() {
        d.set_item("content_seconds", c.seconds)?;
    }
    if let Some(r) = session.reach_if_done() {
        d.set_item("allocations", r.allocations)?;
        d.set_item("reached", r.reached)?;
        d.set_item("root_bytes", r.root_bytes)?;
        d.set_item("register_words", r.register_words)?;
        d.set_item("heap_bytes", r.heap_bytes)?;
        d.set_item("max_depth", r.max_depth)?;
        d.set_item("word_size", r.word_size)?;
        d.set_item("index_seconds", r.index_seconds)?;
        d.set_item("roots_seconds", r.roots_seconds)?;
        d.set_item("root_scan_seconds", r.root_scan_seconds)?;
        d.set_item("heap_scan_seconds", r.heap_scan_seconds)?;
        d.set_item("mark_seconds", r.index_seconds + r.roots_seconds + r.root_scan_seconds + r.heap_scan_seconds)?;
        d.set_item("warnings", r.warnings.clone())?;
    }
    Ok(d)
}

/// The captured prefix of `address .. address + size`, previewed; an error when not even the
/// first byte is captured.
pub(crate) fn peek(mem: &AddressSpace, address: u64, size: u64) -> Result<String, Error> {
    let got = captured_prefix(mem, address, size);
    if got.is_empty() && size > 0 {
        return Err(Error::MemoryNotCaptured { address, size, first_missing: address });
    }
    Ok(content::preview(&got))
}

fn captured_prefix(mem: &AddressSpace, address: u64, size: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let end = address.saturating_add(size);
    for (va, bytes) in mem.pieces(address, end) {
        if va != address + out.len() as u64 {
            break;
        }
        out.extend_from_slice(bytes);
    }
    out
}

/// A preview of the first `n` bytes (at most `size`) at each address; "" where nothing is
/// captured.
pub(crate) fn previews(mem: &AddressSpace, addresses: &[u64], sizes: &[u64], n: u64) -> Vec<String> {
    addresses
        .iter()
        .zip(sizes)
        .map(|(&a, &s)| {
            let got = captured_prefix(mem, a, s.min(n));
            content::preview(&got)
        })
        .collect()
}

/// Type, content class and preview of the block `a` found: the §1.4 rules and §3 for that one
/// block, without running the passes over the whole dump.
pub(crate) fn block_triage(dump: &Dump, images: &Images, a: &CoreAllocation) -> BlockTriage {
    let mem = dump.memory();
    let mut t = BlockTriage {
        preview: content::preview(&captured_prefix(mem, a.user_address, a.user_size.min(32))),
        ..BlockTriage::default()
    };
    if !a.kind.is_allocation(a.busy) {
        return t;
    }
    let mut namer = Namer::new(mem, images);
    let ty = namer.name_block(a.user_address, a.user_size, a.arch).map(|i| namer.types()[i as usize].clone());
    let committed = content::Committed::new(dump.info().regions.as_deref());
    t.content =
        Some(content::classify_block(mem, &committed, a.user_address, a.user_size, a.arch, ty.is_some()).name());
    if let Some(ty) = ty {
        t.type_name = Some(ty.name).filter(|n| !n.is_empty());
        t.decorated = Some(ty.decorated);
    }
    t
}

/// Names of the content codes.
pub(crate) fn content_names() -> Vec<(u8, &'static str)> {
    Content::ALL.iter().map(|c| (c.code(), c.name())).collect()
}

/// Names of the reached_by codes.
pub(crate) fn reached_by_names() -> Vec<(u8, &'static str)> {
    ReachedBy::ALL.iter().map(|c| (c.code(), c.name())).collect()
}

/// Names of the root-kind bits of `direct_roots`.
pub(crate) fn root_kind_bits() -> Vec<(u8, &'static str)> {
    RootKind::ALL.iter().map(|k| (k.bit(), k.name())).collect()
}

/// The lazy columns' schema: (name, dtype, doc).
pub(crate) fn triage_schema() -> Vec<(&'static str, &'static str, &'static str)> {
    TRIAGE_COLUMNS.iter().map(|c| (c.name, c.dtype, c.doc)).collect()
}
