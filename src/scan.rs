//! Many dumps at once: each dump opened, walked and reduced to its busy blocks (with their stacks,
//! C++ types and content classes, `crate::triage`) on a rayon pool, with a progress counter
//! another thread can poll.
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
use crate::stacks::StackTable;
use crate::symbols::{Symbolizer, TableSymbols};
use crate::triage::{self, Committed, Images, RttiType};

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
    /// Index into [`DumpScan::types`], or -1 (leak-triage.md §1.4).
    pub type_id: Vec<i32>,
    /// [`triage::Content`] code (leak-triage.md §3).
    pub content: Vec<u8>,
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
    /// The distinct stacks (their frames as addresses).
    pub stacks: StackTable,
    /// Their frames, symbolized (module, symbol, offset and text of each).
    pub symbols: TableSymbols,
    /// The C++ types of [`BusyBlocks::type_id`].
    pub types: Vec<RttiType>,
}

/// Reduce one dump: its user allocations with their stack, C++ type and content class, and the
/// tables those ids refer to. `image_path` is as in [`Images::load`].
pub fn scan_one(path: &Path, symbol_path: Option<&str>, image_path: Option<&str>) -> Result<DumpScan> {
    let dump = Dump::open(path)?;
    let report = heap::walk(&dump)?;
    let stacks = StackTable::collect(dump.memory(), &report);
    let symbols = Symbolizer::new(&dump, symbol_path).symbolize_table(&stacks);
    let images = Images::load(&dump, image_path);
    let refs = report.blocks.refs();
    let types = triage::name_blocks(dump.memory(), &images, &report, &refs);
    let committed = Committed::new(dump.info().regions.as_deref());
    let content = triage::classify_blocks(dump.memory(), &committed, &report, &refs, &types.type_id);
    let b = &report.blocks;
    let mut out = BusyBlocks::default();
    for (i, &class) in content.iter().enumerate() {
        if !b.is_allocation[i] {
            continue;
        }
        out.heap.push(report.heap_of_row(i).map_or(0, |h| report.heaps[h].address));
        out.address.push(b.address[i]);
        out.user_address.push(b.user_address[i]);
        out.user_size.push(b.user_size[i]);
        out.kind.push(b.kind[i]);
        out.stack_id.push(stacks.stack_of_row(i));
        out.type_id.push(types.type_id[i]);
        out.content.push(class);
    }
    Ok(DumpScan {
        timestamp: dump.info().timestamp,
        pid: dump.info().pid,
        blocks: out,
        stack_keys: symbols.keys.clone(),
        stacks,
        symbols,
        types: types.types,
    })
}

/// Scan `paths` on a pool of `workers` threads (all cores when `None`), counting finished dumps
/// in `done`. Results are in input order.
pub fn scan(
    paths: &[PathBuf],
    workers: Option<usize>,
    symbol_path: Option<&str>,
    image_path: Option<&str>,
    done: &AtomicUsize,
) -> Vec<Result<DumpScan>> {
    let run = || {
        paths
            .par_iter()
            .map(|p| {
                let r = guard(|| format!("analysing {}", p.display()), || scan_one(p, symbol_path, image_path));
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
