//! Many dumps at once: each dump opened, walked and reduced to its busy blocks and stack keys on
//! a rayon pool, with a progress counter another thread can poll.
//!
//! A dump that cannot be opened or walked yields its error in its slot; the others go on. A
//! panic while analysing one dump (a bug) is caught at the dump boundary and reported as that
//! dump's error, never propagated.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::dump::Dump;
use crate::error::{guard, Result};
use crate::heap;

/// The busy user allocations of one dump, as columns.
#[derive(Debug, Clone, Default)]
pub struct BusyBlocks {
    /// Owning heap.
    pub heap: Vec<u64>,
    /// Header address.
    pub address: Vec<u64>,
    /// User pointer.
    pub user_address: Vec<u64>,
    /// Requested bytes.
    pub user_size: Vec<u64>,
    /// [`heap::BlockKind`] code.
    pub kind: Vec<u8>,
    /// Index into [`DumpScan::stack_keys`], or -1.
    pub stack_id: Vec<i32>,
}

/// What a scan keeps of one dump.
#[derive(Debug, Clone)]
pub struct DumpScan {
    /// Dump time (seconds since the Unix epoch, UTC).
    pub timestamp: u32,
    /// Process id, when recorded.
    pub pid: Option<u32>,
    /// The user allocations (`is_allocation` rows).
    pub blocks: BusyBlocks,
    /// One key per stack id: the symbolized frames joined with `\n`, innermost first.
    pub stack_keys: Vec<String>,
}

/// Reduce one dump. `stacks` gives (per-block stack ids aligned with the walk's rows, the keys).
pub fn scan_one(path: &Path, symbol_path: Option<&str>) -> Result<DumpScan> {
    let dump = Dump::open(path)?;
    let report = heap::walk(&dump)?;
    let (stacks, stack_keys) = crate::stacks::stack_keys(&dump, &report, symbol_path);
    let b = &report.blocks;
    let mut out = BusyBlocks::default();
    for i in 0..b.len() {
        if !b.is_allocation[i] {
            continue;
        }
        out.heap.push(report.heap_of_row(i).map_or(0, |h| report.heaps[h].address));
        out.address.push(b.address[i]);
        out.user_address.push(b.user_address[i]);
        out.user_size.push(b.user_size[i]);
        out.kind.push(b.kind[i]);
        out.stack_id.push(stacks.stack_of_row(i));
    }
    Ok(DumpScan { timestamp: dump.info().timestamp, pid: dump.info().pid, blocks: out, stack_keys })
}

/// Scan `paths` on a pool of `workers` threads (all cores when `None`), counting finished dumps
/// in `done`. Results are in input order.
pub fn scan(
    paths: &[PathBuf],
    workers: Option<usize>,
    symbol_path: Option<&str>,
    done: &AtomicUsize,
) -> Vec<Result<DumpScan>> {
    let run = || {
        paths
            .par_iter()
            .map(|p| {
                let r = guard(|| format!("analysing {}", p.display()), || scan_one(p, symbol_path));
                done.fetch_add(1, Ordering::Relaxed);
                r
            })
            .collect()
    };
    match rayon::ThreadPoolBuilder::new().num_threads(workers.unwrap_or(0)).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}
