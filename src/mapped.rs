//! The file bytes behind a dump: a read-only memory map, or an owned buffer in tests.
//!
//! This module and `crate::prefetch` are the only ones with `unsafe` code.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use crate::error::{Error, Result};

/// Immutable bytes of a whole dump file.
#[derive(Debug)]
pub enum FileBytes {
    /// A read-only private mapping of the file.
    Mapped(memmap2::Mmap),
    /// Bytes held in memory (tests, in-memory dumps).
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Map `path` read-only. An empty file is returned as an empty owned buffer, because
    /// mapping zero bytes is an error on some platforms.
    pub fn map(path: &Path) -> Result<Self> {
        let io_err = |source| Error::Io { path: path.to_path_buf(), source: std::sync::Arc::new(source) };
        // Mapping a directory fails with ENODEV ("No such device"), which tells a user nothing.
        if path.is_dir() {
            return Err(io_err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a directory; give a .dmp file (growth, report and scan also take a folder of them)",
            )));
        }
        let file = File::open(path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // Safety: the mapping is read-only and private. If another process truncates or rewrites
        // the file while it is mapped, reads may observe the new bytes or fault (SIGBUS); this is
        // the documented contract of every file-backed mmap reader and is accepted here, as in
        // the `minidump` crate's own `read_path`. We never create references that outlive `self`.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        Ok(FileBytes::Mapped(map))
    }

    /// Ask the kernel to map the file pages of `range` (byte offsets) into the page tables now,
    /// in one call, rather than one fault per few pages as a walk touches them. A hint: nothing
    /// happens for owned bytes, on systems without `MADV_POPULATE_READ` (Linux < 5.14), or when
    /// the kernel declines.
    pub fn populate(&self, range: std::ops::Range<usize>) {
        #[cfg(target_os = "linux")]
        if let FileBytes::Mapped(m) = self {
            // Page-align the start; the kernel rounds the length up.
            let start = range.start & !0xfff;
            let end = range.end.min(m.len());
            if end > start {
                let _ = m.advise_range(memmap2::Advice::PopulateRead, start, end - start);
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = range;
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}
