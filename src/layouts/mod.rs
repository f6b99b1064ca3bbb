//! Windows structure layouts as data.
//!
//! Structures that drift between Windows builds are kept as offset tables: one [`LayoutRow`] per
//! *layout epoch* (a range of builds that share the layout) and architecture, each citing where
//! its numbers come from. The tags in `source` strings refer to the source table (§0) of
//! `windows-heap-layouts.md`, the team's reference document; section numbers (§n) refer to it too.
//!
//! Lookup is the only logic here: [`select`] returns the row for a build, or
//! [`Error::UnsupportedLayout`] naming the build. Callers that can validate a guess against the
//! dump (the heap walker) may instead try every row of an architecture, see [`rows_for`].
//!
//! To add a build: add a row with its build range and source, keep rows of one architecture
//! sorted and non-overlapping (a test checks), and add a builder fixture for it.

pub mod lfh;
pub mod nt_heap;
pub mod page_heap;
pub mod peb;
pub mod segment_heap;

use crate::error::{Error, Result};
use crate::target::Arch;

/// An inclusive range of Windows build numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildRange {
    /// First build of the epoch.
    pub first: u32,
    /// Last build of the epoch (`u32::MAX` for "and later").
    pub last: u32,
}

impl BuildRange {
    /// Whether `build` falls in this range.
    pub const fn contains(&self, build: u32) -> bool {
        self.first <= build && build <= self.last
    }
}

/// One layout epoch of one structure family.
#[derive(Debug, Clone, Copy)]
pub struct LayoutRow<T: 'static> {
    /// Short name of the epoch, e.g. `Win7 SP1`.
    pub name: &'static str,
    /// Architecture.
    pub arch: Arch,
    /// Builds covered.
    pub builds: BuildRange,
    /// Where the numbers come from.
    pub source: &'static str,
    /// The offsets.
    pub layout: T,
}

/// The row of `table` for `arch` and `build`.
pub fn select<T>(
    table: &'static [LayoutRow<T>],
    structure: &'static str,
    arch: Arch,
    build: u32,
) -> Result<&'static LayoutRow<T>> {
    table.iter().find(|r| r.arch == arch && r.builds.contains(build)).ok_or(Error::UnsupportedLayout {
        structure,
        arch: arch.name(),
        build,
    })
}

/// All rows of `table` for `arch`, oldest first.
pub fn rows_for<T>(table: &'static [LayoutRow<T>], arch: Arch) -> impl Iterator<Item = &'static LayoutRow<T>> {
    table.iter().filter(move |r| r.arch == arch)
}

/// Windows build numbers that start layout epochs.
pub mod builds {
    /// Windows 7 RTM.
    pub const WIN7: u32 = 7600;
    /// Windows 8.
    pub const WIN8: u32 = 9200;
    /// Windows 10 1507.
    pub const WIN10_1507: u32 = 10240;
    /// Windows 10 1809.
    pub const WIN10_1809: u32 = 17763;
}

#[cfg(test)]
pub(crate) fn check_table<T>(table: &'static [LayoutRow<T>]) {
    for arch in [Arch::X86, Arch::X64] {
        let rows: Vec<_> = rows_for(table, arch).collect();
        for w in rows.windows(2) {
            assert!(w[0].builds.last < w[1].builds.first, "{} and {} overlap or are unsorted", w[0].name, w[1].name);
        }
        for r in rows {
            assert!(r.builds.first <= r.builds.last, "{}: empty range", r.name);
            assert!(!r.source.is_empty(), "{}: no source", r.name);
        }
    }
}
