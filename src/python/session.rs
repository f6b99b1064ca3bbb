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
    /// Local directories of binaries for image pages the dump lacks (`Dump(image_path=...)`).
    pub(crate) image_path: Option<String>,
    walked: OnceLock<Walked>,
    symbolizer: OnceLock<Arc<Symbolizer>>,
    index: OnceLock<Arc<BlockIndex>>,
    images: OnceLock<Arc<Images>>,
    types: OnceLock<Arc<TypePass>>,
    content: OnceLock<Arc<ContentPass>>,
    reach: OnceLock<Arc<Reach>>,
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

impl Session {
    pub(crate) fn new(dump: Arc<Dump>, symbol_path: Option<String>, image_path: Option<String>) -> Self {
        let symbol_path = symbol_path.or_else(|| std::env::var(crate::symbols::SYMBOL_PATH_ENV).ok());
        Session {
            dump,
            symbol_path,
            image_path,
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
        let w = self.walked(py)?;
        let images = self.images(py)?;
        let dump = Arc::clone(&self.dump);
        once(py, &self.types, "naming the blocks by their C++ types", move || {
            let t = std::time::Instant::now();
            let table = triage::name_blocks(dump.memory(), &images, &w.report);
            Ok(TypePass { table, seconds: t.elapsed().as_secs_f64() })
        })
    }

    /// The content classes (§3) of every allocation.
    pub(crate) fn content(&self, py: Python<'_>) -> PyResult<Arc<ContentPass>> {
        if let Some(v) = self.content.get() {
            return Ok(Arc::clone(v));
        }
        let w = self.walked(py)?;
        let types = self.types(py)?;
        let dump = Arc::clone(&self.dump);
        once(py, &self.content, "classifying the blocks' contents", move || {
            let t = std::time::Instant::now();
            let committed = triage::Committed::new(dump.info().regions.as_deref());
            let content = triage::classify_blocks(dump.memory(), &committed, &w.report, &types.table.type_id);
            Ok(ContentPass { content, seconds: t.elapsed().as_secs_f64() })
        })
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
        let w = self.walked(py)?;
        let dump = Arc::clone(&self.dump);
        once(py, &self.reach, "marking the reachable blocks", move || Ok(triage::mark(&dump, &w.report)))
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
