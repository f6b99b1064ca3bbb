//! # ntheap
//!
//! Open Windows process dumps (minidumps) and find native heap memory.
//!
//! The data flows through layers, each testable alone:
//!
//! 1. [`mapped`]: the dump file, memory-mapped (never read whole).
//! 2. [`dump`]: the minidump container: header, stream directory, modules, threads, regions.
//! 3. [`memory`]: the captured address space, both memory lists merged, O(log n) reads.
//! 4. [`layouts`]: Windows structure offsets per version and architecture, as data.
//! 5. [`process`]: TEB → PEB (native and WOW64), NtGlobalFlag, the heap list.
//! 6. [`heap`]: NT heap walk: segments, uncommitted ranges, entries, virtual blocks, as columns.
//! 7. [`stacks`]: the `+ust` allocation stack of every block, deduplicated into stack ids.
//! 8. [`symbols`]: frames as `module!symbol+0xoffset` from PDBs, exports or module offsets.
//! 9. [`allocation`]: which block holds an address (`!heap -p -a`).
//! 10. [`triage`]: leak triage without `+ust`: C++ types from RTTI, content classes, and the
//!     allocations nothing references (`!heap -l`).
//!
//! The Python bindings live in `src/python/` behind the `python` feature; the core has no pyo3.

pub mod allocation;
pub mod dump;
pub mod error;
pub mod heap;
pub mod layouts;
pub mod limits;
pub mod mapped;
pub mod memory;
pub mod prefetch;
pub mod process;
pub mod scan;
pub mod stacks;
pub mod symbols;
pub mod target;
pub mod triage;

#[cfg(feature = "python")]
mod python;

pub use dump::Dump;
pub use error::{Error, Result};
pub use target::{Arch, Target, WinVersion};
