//! `ntheap._core.Limits`: the caps of [`crate::limits::Limits`] as a frozen Python value.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::limits::Limits;
use crate::python::errors::guarded;
use crate::stacks::MAX_FRAMES;

/// Caps on the work of one dump; hitting one gives a `truncated:<cap>` row in `Dump.coverage()`.
///
/// `Limits(max_rows=200_000_000, max_list_nodes=1_000_000, max_stack_depth=32,
/// max_symbol_file_bytes=2 GiB)`; every argument is optional and keyword-only.
#[pyclass(frozen, eq, module = "ntheap._core", name = "Limits")]
#[derive(Clone, PartialEq, Eq)]
pub struct PyLimits {
    pub(crate) inner: Limits,
}

#[pymethods]
impl PyLimits {
    #[new]
    #[pyo3(signature = (*, max_rows=None, max_list_nodes=None, max_stack_depth=None, max_symbol_file_bytes=None))]
    fn new(
        max_rows: Option<u64>,
        max_list_nodes: Option<u64>,
        max_stack_depth: Option<u16>,
        max_symbol_file_bytes: Option<u64>,
    ) -> PyResult<Self> {
        guarded("Limits.new", || {
            let d = Limits::default();
            let inner = Limits {
                max_rows: max_rows.unwrap_or(d.max_rows),
                max_list_nodes: max_list_nodes.unwrap_or(d.max_list_nodes),
                max_stack_depth: max_stack_depth.unwrap_or(d.max_stack_depth),
                max_symbol_file_bytes: max_symbol_file_bytes.unwrap_or(d.max_symbol_file_bytes),
            };
            if inner.max_list_nodes == 0 {
                return Err(PyValueError::new_err("max_list_nodes must be at least 1"));
            }
            if !(1..=MAX_FRAMES).contains(&inner.max_stack_depth) {
                return Err(PyValueError::new_err(format!(
                    "max_stack_depth must be 1..={MAX_FRAMES} (a +ust trace holds at most {MAX_FRAMES} frames)"
                )));
            }
            Ok(PyLimits { inner })
        })
    }

    /// Most block rows one walk produces (checked before each heap; a heap is walked whole).
    #[getter]
    fn max_rows(&self) -> PyResult<u64> {
        guarded("Limits.max_rows", || Ok(self.inner.max_rows))
    }

    /// Most nodes followed in one list.
    #[getter]
    fn max_list_nodes(&self) -> PyResult<u64> {
        guarded("Limits.max_list_nodes", || Ok(self.inner.max_list_nodes))
    }

    /// Most frames kept per stack trace (the innermost ones).
    #[getter]
    fn max_stack_depth(&self) -> PyResult<u16> {
        guarded("Limits.max_stack_depth", || Ok(self.inner.max_stack_depth))
    }

    /// Largest PDB file read for symbols, in bytes.
    #[getter]
    fn max_symbol_file_bytes(&self) -> PyResult<u64> {
        guarded("Limits.max_symbol_file_bytes", || Ok(self.inner.max_symbol_file_bytes))
    }

    fn __repr__(&self) -> PyResult<String> {
        guarded("Limits.__repr__", || {
            let l = &self.inner;
            Ok(format!(
                "Limits(max_rows={}, max_list_nodes={}, max_stack_depth={}, max_symbol_file_bytes={:#x})",
                l.max_rows, l.max_list_nodes, l.max_stack_depth, l.max_symbol_file_bytes
            ))
        })
    }
}
