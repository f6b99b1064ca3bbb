//! The Python exception tree, and the one place where core errors become Python exceptions.

use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyIsADirectoryError, PyKeyboardInterrupt, PyOSError, PyPermissionError,
};
use pyo3::prelude::*;

use crate::error::{inject_panic, panic_message, Error};

pyo3::create_exception!(ntheap._core, DumpError, PyException, "Base class of every error ntheap raises about a dump.");
pyo3::create_exception!(
    ntheap._core,
    NotAMinidumpError,
    DumpError,
    "The file is not a minidump (empty, or wrong signature)."
);
pyo3::create_exception!(
    ntheap._core,
    TruncatedDumpError,
    DumpError,
    "The file ends before a structure it declares. Attributes: offset, end, file_size."
);
pyo3::create_exception!(ntheap._core, CorruptDumpError, DumpError, "A stream's contents are inconsistent.");
pyo3::create_exception!(ntheap._core, MissingStreamError, DumpError, "A stream the operation needs is absent.");
pyo3::create_exception!(
    ntheap._core,
    MemoryNotCaptured,
    DumpError,
    "Memory at an address is not in the dump. Attributes: address, size, what."
);
pyo3::create_exception!(
    ntheap._core,
    StructureNotFoundError,
    DumpError,
    "A process structure (PEB, TEB) cannot be located."
);
pyo3::create_exception!(
    ntheap._core,
    UnsupportedDumpError,
    DumpError,
    "The dump's architecture or Windows build has no known structure layout."
);

pyo3::create_exception!(
    ntheap._core,
    NoSuchHeapError,
    DumpError,
    "No heap of the dump has the address asked for; the message lists the heaps there are. Attribute: address."
);

pyo3::create_exception!(
    ntheap._core,
    InternalError,
    DumpError,
    "A bug in ntheap (a panic caught at the Python boundary), not a problem with the dump. Attributes: operation, panic_message."
);

/// Run the body of a Python entry point, turning a panic into `ntheap.InternalError` that names
/// `operation` (e.g. `Dump.peb`) and carries the panic message. Every `#[pymethods]` function
/// runs its body through this (`tests/source_rules.rs` checks that none is left out), so no
/// `PanicException` reaches Python.
pub(crate) fn guarded<T>(operation: &str, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inject_panic(operation);
        f()
    }))
    .unwrap_or_else(|payload| {
        Err(Error::Internal { operation: operation.to_owned(), message: panic_message(&*payload) }.into())
    })
}

fn with_attrs(err: PyErr, attrs: &[(&str, Option<u64>)], what: Option<&str>) -> PyErr {
    Python::attach(|py| {
        let value = err.value(py);
        for (name, v) in attrs {
            let _ = value.setattr(*name, *v);
        }
        let _ = value.setattr("what", what);
    });
    err
}

impl From<Error> for PyErr {
    fn from(e: Error) -> PyErr {
        let msg = e.to_string();
        match e {
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
                _ => PyOSError::new_err(msg),
            },
            Error::NotAMinidump { .. } => NotAMinidumpError::new_err(msg),
            Error::Truncated { offset, end, file_size, .. } => with_attrs(
                TruncatedDumpError::new_err(msg),
                &[("offset", Some(offset)), ("end", Some(end)), ("file_size", Some(file_size))],
                None,
            ),
            Error::CorruptStream { .. } => CorruptDumpError::new_err(msg),
            Error::MissingStream { .. } => MissingStreamError::new_err(msg),
            Error::MemoryNotCaptured { address, size, first_missing } => with_attrs(
                MemoryNotCaptured::new_err(msg),
                &[("address", Some(address)), ("size", Some(size)), ("first_missing", Some(first_missing))],
                None,
            ),
            Error::StructureNotCaptured { ref what, address, size } => with_attrs(
                MemoryNotCaptured::new_err(msg.clone()),
                &[("address", Some(address)), ("size", Some(size)), ("first_missing", None)],
                Some(what),
            ),
            Error::NotFound { .. } => StructureNotFoundError::new_err(msg),
            Error::UnsupportedLayout { .. } | Error::Unsupported { .. } => UnsupportedDumpError::new_err(msg),
            Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(msg),
            Error::Internal { operation, message } => {
                let err = InternalError::new_err(msg);
                Python::attach(|py| {
                    let value = err.value(py);
                    let _ = value.setattr("operation", operation);
                    let _ = value.setattr("panic_message", message);
                });
                err
            }
        }
    }
}
