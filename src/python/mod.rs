//! Python bindings (`ntheap._core`). All of pyo3 lives under this module.

mod dump;
mod errors;
mod frame;
mod heap;
mod limits;
mod scan;
mod session;
mod stacks;
mod triage;

/// The compiled core of ntheap. Use the `ntheap` package, which wraps it.
#[pyo3::pymodule(gil_used = false)]
mod _core {
    use pyo3::prelude::*;

    #[pymodule_export]
    use super::dump::{Module, Peb, PyDump, Thread};
    #[pymodule_export]
    use super::errors::{
        CorruptDumpError, DumpError, InternalError, MemoryNotCaptured, MissingStreamError, NoSuchHeapError,
        NotAMinidumpError, StructureNotFoundError, TruncatedDumpError, UnsupportedDumpError,
    };
    #[pymodule_export]
    use super::frame::{frame_codes, frame_marks};
    #[pymodule_export]
    use super::heap::{Heap, Lfh, PageHeap, SegContext, Segment, SegmentHeap, VirtualBlock};
    #[pymodule_export]
    use super::limits::PyLimits;
    #[pymodule_export]
    use super::scan::ScanJob;
    #[pymodule_export]
    use super::session::BlockSource;
    #[pymodule_export]
    use super::stacks::{Allocation, Frame};

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("GLOBAL_FLAGS", crate::process::GLOBAL_FLAGS.to_vec())?;
        m.add("BLOCK_KINDS", super::heap::block_kind_names())?;
        m.add("CORRUPTION_KINDS", super::heap::corruption_kind_names())?;
        m.add("NOT_DECODED", super::heap::not_decoded_names())?;
        m.add("BLOCK_SCHEMA", super::heap::block_schema())?;
        m.add("STACK_PROBLEM_KINDS", super::stacks::stack_problem_kind_names())?;
        m.add("FRAME_SOURCES", super::stacks::frame_source_names())?;
        m.add("CONTENT_CLASSES", super::triage::content_names())?;
        m.add("REACHED_BY", super::triage::reached_by_names())?;
        m.add("ROOT_KINDS", super::triage::root_kind_bits())?;
        m.add("TRIAGE_SCHEMA", super::triage::triage_schema())?;
        Ok(())
    }
}
