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
use crate::limits::{Cancel, Limits};
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
    /// Process creation time (MiscInfo, seconds since the Unix epoch), when recorded.
    pub process_create_time: Option<u32>,
    /// File name of the first module (the process's executable), when the dump lists modules.
    pub main_module: Option<String>,
    /// What the walk does not cover (see [`heap::coverage`]).
    pub gaps: Vec<heap::Warning>,
    /// How many heaps the PEB(s) list, and how many of them were walked.
    pub heaps: (usize, usize),
}

/// How a scan reads each dump.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// A debugger symbol path (see [`Symbolizer::new`]).
    pub symbol_path: Option<String>,
    /// Local binaries for image pages the dumps lack (see [`Images::load`]).
    pub image_path: Option<String>,
    /// Caps on the work of each dump.
    pub limits: Limits,
    /// Set to stop the scan: dumps not yet started fail with [`crate::Error::Interrupted`].
    pub cancel: Cancel,
}

/// Reduce one dump: its user allocations with their stack, C++ type and content class, and the
/// tables those ids refer to. `image_path` is as in [`Images::load`].
pub fn scan_one(path: &Path, symbol_path: Option<&str>, image_path: Option<&str>) -> Result<DumpScan> {
    let options = ScanOptions {
        symbol_path: symbol_path.map(str::to_owned),
        image_path: image_path.map(str::to_owned),
        ..ScanOptions::default()
    };
    scan_one_with(path, &options)
}

/// [`scan_one`] under `options` (limits, cancellation).
pub fn scan_one_with(path: &Path, options: &ScanOptions) -> Result<DumpScan> {
    let cancel = &options.cancel;
    let what = "scanning the dumps";
    cancel.check(what)?;
    let dump = Dump::open(path)?;
    let walk = heap::WalkOptions {
        symbol_path: None,
        depth: heap::WalkDepth::Blocks,
        limits: options.limits,
        cancel: cancel.clone(),
    };
    let mut report = heap::walk_with(&dump, &walk)?;
    let stacks = StackTable::collect_with(dump.memory(), &report, options.limits.max_stack_depth);
    report.warnings.extend(heap::coverage::stack_gaps(&stacks, options.limits.max_stack_depth));
    let symbolizer =
        Symbolizer::new(&dump, options.symbol_path.as_deref()).with_max_pdb_bytes(options.limits.max_symbol_file_bytes);
    let symbols = symbolizer.symbolize_table(&stacks);
    report.warnings.extend(heap::coverage::symbol_gaps(&symbolizer.pdbs_over_cap()));
    cancel.check(what)?;
    let images = Images::load(&dump, options.image_path.as_deref());
    let refs = report.blocks.refs();
    let types = triage::name_blocks_until(dump.memory(), &images, &report, &refs, cancel);
    cancel.check(what)?;
    let committed = Committed::new(dump.info().regions.as_deref());
    let content = triage::classify_blocks_until(dump.memory(), &committed, &report, &refs, &types.type_id, cancel);
    cancel.check(what)?;
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
        process_create_time: dump.info().process_create_time,
        main_module: dump.info().modules.first().map(|m| m.name().to_owned()),
        heaps: (report.heaps.len(), report.heaps.iter().filter(|h| h.status == heap::HeapStatus::Walked).count()),
        gaps: report.warnings,
    })
}

/// Scan `paths` on a pool of `workers` threads (all cores when `None`), counting finished dumps
/// in `done`. Results are in input order.
pub fn scan(
    paths: &[PathBuf],
    workers: Option<usize>,
    options: &ScanOptions,
    done: &AtomicUsize,
) -> Vec<Result<DumpScan>> {
    in_pool(workers, || scan_here(paths, options, done))
}

/// Run `f` on a pool of `workers` threads (None: on the current pool, one thread per core
/// unless the caller installed another).
pub fn in_pool<R: Send>(workers: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    let Some(n) = workers else { return f() };
    match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

/// [`scan`] on the current rayon pool.
pub fn scan_here(paths: &[PathBuf], options: &ScanOptions, done: &AtomicUsize) -> Vec<Result<DumpScan>> {
    paths
        .par_iter()
        .map(|p| {
            let r = guard(|| format!("analysing {}", p.display()), || scan_one_with(p, options));
            done.fetch_add(1, Ordering::Relaxed);
            r
        })
        .collect()
}

/// The busy blocks of every readable dump of `results` in one set of columns, in order (each
/// column copied on its own rayon task), and the row where each result's blocks start (failed
/// dumps take no rows). The per-dump columns are emptied.
pub fn concat_blocks(results: &mut [Result<DumpScan>]) -> (BusyBlocks, Vec<usize>) {
    let mut starts = Vec::with_capacity(results.len() + 1);
    let mut at = 0;
    for r in results.iter() {
        starts.push(at);
        at += r.as_ref().map_or(0, |s| s.blocks.address.len());
    }
    starts.push(at);
    let parts: Vec<&BusyBlocks> = results.iter().filter_map(|r| r.as_ref().ok()).map(|s| &s.blocks).collect();
    fn cat<T: Copy + Send + Sync>(parts: &[&BusyBlocks], col: impl Fn(&BusyBlocks) -> &Vec<T>, total: usize) -> Vec<T> {
        let mut v = Vec::with_capacity(total);
        for p in parts {
            v.extend_from_slice(col(p));
        }
        v
    }
    let mut out = BusyBlocks::default();
    {
        let BusyBlocks { heap, address, user_address, user_size, kind, stack_id, type_id, content } = &mut out;
        let p = &parts;
        rayon::scope(|s| {
            s.spawn(move |_| *heap = cat(p, |b| &b.heap, at));
            s.spawn(move |_| *address = cat(p, |b| &b.address, at));
            s.spawn(move |_| *user_address = cat(p, |b| &b.user_address, at));
            s.spawn(move |_| *user_size = cat(p, |b| &b.user_size, at));
            s.spawn(move |_| *kind = cat(p, |b| &b.kind, at));
            s.spawn(move |_| *stack_id = cat(p, |b| &b.stack_id, at));
            s.spawn(move |_| *type_id = cat(p, |b| &b.type_id, at));
            s.spawn(move |_| *content = cat(p, |b| &b.content, at));
        });
    }
    drop(parts);
    for s in results.iter_mut().flatten() {
        s.blocks = BusyBlocks::default();
    }
    (out, starts)
}
