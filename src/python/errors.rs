//! The Python exception tree, and the one place where core errors become Python exceptions.

use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyPermissionError};
use pyo3::prelude::*;

use crate::error::Error;

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
        }
    }
}
