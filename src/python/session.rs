//! What one open `Dump` computes lazily and shares with the objects it hands out: the heap walk
//! with its stack table, the symbolizer, and the block index. Each is computed once, without
//! the GIL, on first use, under [`crate::error::guard`]: a panic becomes a `DumpError`.

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;

use crate::allocation::BlockIndex;
use crate::dump::Dump;
use crate::error::guard;
use crate::heap::{self, HeapReport};
use crate::stacks::StackTable;
use crate::symbols::{Frame, Symbolizer};

/// The heap walk and the stacks of its blocks.
#[derive(Clone)]
pub(crate) struct Walked {
    pub(crate) report: Arc<HeapReport>,
    pub(crate) stacks: Arc<StackTable>,
}

/// Lazily computed state of one dump.
pub(crate) struct Session {
    pub(crate) dump: Arc<Dump>,
    /// The symbol path given to `Dump(...)`, else `_NT_SYMBOL_PATH` at open time; `None` when
    /// neither was set.
    pub(crate) symbol_path: Option<String>,
    walked: OnceLock<Walked>,
    symbolizer: OnceLock<Arc<Symbolizer>>,
    index: OnceLock<Arc<BlockIndex>>,
}

impl Session {
    pub(crate) fn new(dump: Arc<Dump>, symbol_path: Option<String>) -> Self {
        let symbol_path = symbol_path.or_else(|| std::env::var(crate::symbols::SYMBOL_PATH_ENV).ok());
        Session { dump, symbol_path, walked: OnceLock::new(), symbolizer: OnceLock::new(), index: OnceLock::new() }
    }

    /// The heap walk and stack table.
    pub(crate) fn walked(&self, py: Python<'_>) -> PyResult<Walked> {
        if let Some(w) = self.walked.get() {
            return Ok(w.clone());
        }
        let dump = Arc::clone(&self.dump);
        let symbol_path = self.symbol_path.clone();
        let w = py.detach(move || {
            guard(
                || "walking the heaps".into(),
                || {
                    let options = heap::WalkOptions { symbol_path: symbol_path.clone() };
                    let report = heap::walk_with(&dump, &options)?;
                    let stacks = StackTable::collect(dump.memory(), &report);
                    Ok(Walked { report: Arc::new(report), stacks: Arc::new(stacks) })
                },
            )
        })?;
        Ok(self.walked.get_or_init(|| w).clone())
    }

    /// The symbolizer (PDB and export tables load later, per module, on first use).
    pub(crate) fn symbolizer(&self) -> Arc<Symbolizer> {
        Arc::clone(self.symbolizer.get_or_init(|| {
            // An explicit empty path keeps the symbolizer from reading the environment again.
            Arc::new(Symbolizer::new(&self.dump, Some(self.symbol_path.as_deref().unwrap_or(""))))
        }))
    }

    /// The sorted block extents of the walk.
    pub(crate) fn block_index(&self, py: Python<'_>) -> PyResult<Arc<BlockIndex>> {
        if let Some(i) = self.index.get() {
            return Ok(Arc::clone(i));
        }
        let w = self.walked(py)?;
        let index = Arc::new(py.detach(|| guard(|| "indexing the blocks".into(), || Ok(BlockIndex::new(&w.report))))?);
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
