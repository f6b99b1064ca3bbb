//! The one error type of the core.
//!
//! Every variant carries the evidence (offset, address, stream, build) so that a message read in a
//! log is enough to tell what was wrong with which dump. Corruption *inside* a heap is not an
//! error: walkers record it as data and go on. Errors are for "this cannot be read at all".
//! The Python layer maps each variant to one exception class in exactly one place
//! (`src/python/errors.rs`).

use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a dump from being opened or read.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or mapped.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The path given by the caller.
        path: PathBuf,
        /// The operating system's error (shared, so that errors can be cloned into batch results).
        source: Arc<std::io::Error>,
    },
    /// The file is not a minidump at all (wrong signature, empty file).
    #[error("not a minidump: {reason}")]
    NotAMinidump {
        /// What was found instead.
        reason: String,
    },
    /// The file ends before a structure it declares.
    #[error("truncated dump: {what} needs bytes {offset:#x}..{end:#x} but the file has {file_size:#x} bytes")]
    Truncated {
        /// The structure that does not fit.
        what: String,
        /// File offset where it starts.
        offset: u64,
        /// File offset where it would end.
        end: u64,
        /// Size of the file.
        file_size: u64,
    },
    /// A stream exists but its contents are inconsistent.
    #[error("corrupt {stream} stream: {reason}")]
    CorruptStream {
        /// The stream's name, e.g. `Memory64ListStream`.
        stream: &'static str,
        /// What is inconsistent.
        reason: String,
    },
    /// A stream that the operation needs is absent.
    #[error("the dump has no {stream} stream")]
    MissingStream {
        /// The stream's name.
        stream: &'static str,
    },
    /// The bytes at `address` are not in the dump (not captured, or outside every range).
    #[error("memory at {address:#x} ({size:#x} bytes) is not captured in the dump{}", first_missing_note(*address, *first_missing))]
    MemoryNotCaptured {
        /// Start of the requested read.
        address: u64,
        /// Size of the requested read.
        size: u64,
        /// The first address of the request that is missing.
        first_missing: u64,
    },
    /// A named structure (PEB, TEB, heap list) lies in memory the dump did not capture.
    #[error("{what} at {address:#x} is not captured in the dump")]
    StructureNotCaptured {
        /// What was to be read, e.g. `PEB`.
        what: String,
        /// Its address.
        address: u64,
        /// How many bytes were needed.
        size: u64,
    },
    /// A process structure (PEB, TEB, heap list) could not be located.
    #[error("{what} not found: {reason}")]
    NotFound {
        /// What was looked for, e.g. `PEB`.
        what: &'static str,
        /// Why it could not be found.
        reason: String,
    },
    /// No structure layout is known for this Windows build and architecture.
    #[error("no {structure} layout for {arch} Windows build {build}")]
    UnsupportedLayout {
        /// The structure family, e.g. `_HEAP`.
        structure: &'static str,
        /// `x86` or `x64`.
        arch: &'static str,
        /// The OS build number.
        build: u32,
    },
    /// The operation is not defined for this kind of dump (e.g. an ARM64 dump).
    #[error("unsupported dump: {reason}")]
    Unsupported {
        /// What is not supported.
        reason: String,
    },
}

fn first_missing_note(address: u64, first_missing: u64) -> String {
    if first_missing == address {
        String::new()
    } else {
        format!(" (first missing byte at {first_missing:#x})")
    }
}

impl Error {
    /// A stable short name for logs and for the Python exception mapping.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "Io",
            Error::NotAMinidump { .. } => "NotAMinidump",
            Error::Truncated { .. } => "Truncated",
            Error::CorruptStream { .. } => "CorruptStream",
            Error::MissingStream { .. } => "MissingStream",
            Error::MemoryNotCaptured { .. } => "MemoryNotCaptured",
            Error::StructureNotCaptured { .. } => "StructureNotCaptured",
            Error::NotFound { .. } => "NotFound",
            Error::UnsupportedLayout { .. } => "UnsupportedLayout",
            Error::Unsupported { .. } => "Unsupported",
        }
    }
}

/// Run `f`, turning a panic into [`Error::Unsupported`] ("internal error while `what`").
///
/// Every read of dump data is bounds-checked, so a panic is a bug here, or in a dependency that
/// parses the dump; either way it must reach the caller as an error about this dump (the batch
/// scan goes on with the next one; Python gets a `DumpError`, not a `PanicException`, which
/// derives from `BaseException` and escapes `except Exception`). The panic message still goes
/// to the panic hook (stderr).
pub fn guard<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Error::Unsupported { reason: format!("internal error while {}", what()) }))
}

impl Error {
    /// Name the structure a failed read was for: a [`Error::MemoryNotCaptured`] becomes
    /// [`Error::StructureNotCaptured`]; other errors pass through.
    pub fn reading(self, what: impl Into<String>) -> Error {
        match self {
            Error::MemoryNotCaptured { address, size, .. } => {
                Error::StructureNotCaptured { what: what.into(), address, size }
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_an_error() {
        assert_eq!(guard(|| "x".into(), || Ok(3)).unwrap(), 3);
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let e = guard(|| "walking heaps of a.dmp".into(), || -> Result<()> { panic!("bug") });
        std::panic::set_hook(hook);
        match e {
            Err(Error::Unsupported { reason }) => assert_eq!(reason, "internal error while walking heaps of a.dmp"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
