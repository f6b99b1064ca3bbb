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
    /// The caller cancelled the work (Ctrl-C from Python; see [`crate::limits::Cancel`]).
    #[error("interrupted while {operation}")]
    Interrupted {
        /// What was being done.
        operation: String,
    },
    /// ntheap itself failed: a panic caught by [`guard`]. Never a property of the dump alone.
    #[error("internal error in ntheap while {operation}: {message} (this is a bug in ntheap, not a problem with the dump; please report it with the dump)")]
    Internal {
        /// What was being done, e.g. `Dump.peb`.
        operation: String,
        /// The panic message.
        message: String,
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
            Error::Interrupted { .. } => "Interrupted",
            Error::Internal { .. } => "Internal",
        }
    }
}

/// Run `f`, turning a panic into [`Error::Internal`] naming the operation (`what`) and the
/// panic message.
///
/// Every read of dump data is bounds-checked, so a panic is a bug here, or in a dependency that
/// parses the dump; either way it must reach the caller as an error about this dump (the batch
/// scan goes on with the next one; Python gets `ntheap.InternalError`, a `DumpError`, not a
/// `PanicException`, which derives from `BaseException` and escapes `except Exception`). The
/// panic message also goes to the panic hook (stderr), with the source location.
pub fn guard<T>(what: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut what = Some(what);
    let mut operation = None;
    if !injected_panics().is_empty() {
        operation = what.take().map(|w| w());
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if let Some(op) = &operation {
            inject_panic(op);
        }
        f()
    }))
    .unwrap_or_else(|payload| {
        let operation = operation.or_else(|| what.map(|w| w())).unwrap_or_default();
        Err(Error::Internal { operation, message: panic_message(&*payload) })
    })
}

/// The operations named by `NTHEAP_INJECT_PANIC` (comma-separated; read once per process).
fn injected_panics() -> &'static [String] {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LIST.get_or_init(|| {
        std::env::var("NTHEAP_INJECT_PANIC")
            .map(|v| v.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    })
}

/// A test hook: panic if `NTHEAP_INJECT_PANIC` names `operation` (or a prefix of it), so that
/// the tests can follow a panic from any guarded entry point to the error the caller gets. With
/// the variable unset this is one load of an empty list.
pub fn inject_panic(operation: &str) {
    if injected_panics().iter().any(|p| operation.starts_with(p.as_str())) {
        panic!("injected by NTHEAP_INJECT_PANIC");
    }
}

/// The message of a panic payload (`panic!` with a literal gives `&str`, with arguments `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
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
        let f = guard(|| "Dump.peb".into(), || -> Result<()> { panic!("index {} out of range", 7) });
        std::panic::set_hook(hook);
        match e {
            Err(Error::Internal { operation, message }) => {
                assert_eq!((operation.as_str(), message.as_str()), ("walking heaps of a.dmp", "bug"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let f = f.unwrap_err();
        assert_eq!(f.kind(), "Internal");
        assert_eq!(
            f.to_string(),
            "internal error in ntheap while Dump.peb: index 7 out of range (this is a bug in ntheap, not a \
             problem with the dump; please report it with the dump)"
        );
    }
}
