//! Benchmark: the leak-triage passes against the heap walk, in one run.
//!
//! `cargo run --release --example bench_triage -- DUMP [REPEATS]` (bench/run.py triage drives
//! it). Prints one JSON line: the walk (what `Dump.blocks()` costs before numpy), the type pass
//! (§1.4), the content pass (§3), the mark phase (§2) with its root and heap bytes, and a "full
//! scan" that runs the mark phase's inner loop over the user data of *every* allocation, as if
//! all were reached, to give the scanner's throughput on a dump whose roots reach little.

use std::time::Instant;

use ntheap::triage::reach::{scan_words, word_arch, AllocIndex};
use ntheap::triage::{self, Committed, Images};
use ntheap::{heap, Dump};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: bench_triage DUMP [REPEATS]");
    let repeats: usize = args.next().map_or(3, |s| s.parse().expect("a count"));
    let dump = Dump::open(&path).expect("opens");
    let report = heap::walk(&dump).expect("walks");
    let (mut walk, mut types, mut content, mut mark, mut full) = (vec![], vec![], vec![], vec![], vec![]);
    let mut last = None;
    let mut full_bytes = 0;
    let mut hits = 0u64;
    for _ in 0..repeats {
        let t = Instant::now();
        let r = heap::walk(&dump).expect("walks");
        walk.push(t.elapsed().as_secs_f64());
        drop(r);

        let t = Instant::now();
        let images = Images::load(&dump, None);
        let table = triage::name_blocks(dump.memory(), &images, &report, &report.blocks.refs());
        types.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let committed = Committed::new(dump.info().regions.as_deref());
        let c = triage::classify_blocks(dump.memory(), &committed, &report, &report.blocks.refs(), &table.type_id);
        content.push(t.elapsed().as_secs_f64());
        drop(c);

        let t = Instant::now();
        let reach = triage::mark(&dump, &report, &report.blocks.refs());
        mark.push(t.elapsed().as_secs_f64());

        let index = AllocIndex::new(&report.blocks.refs());
        let arch = word_arch(&dump, &report);
        let t = Instant::now();
        full_bytes = 0;
        hits = 0;
        for i in 0..index.len() {
            let (s, e) = index.range(i);
            full_bytes += scan_words(dump.memory(), s, e, arch, |w| index.for_each_hit(w, |_| hits += 1));
        }
        full.push(t.elapsed().as_secs_f64());
        last = Some((table, reach));
    }
    let (table, reach) = last.expect("one repeat");
    let gbs = |bytes: u64, s: f64| if s > 0.0 { bytes as f64 / s / 1e9 } else { 0.0 };
    println!(
        "{{\"blocks\": {}, \"allocations\": {}, \"walk_s\": {:.4}, \"type_pass_s\": {:.4}, \"content_pass_s\": {:.4}, \
         \"mark_s\": {:.4}, \"mark_index_s\": {:.4}, \"mark_roots_s\": {:.4}, \"mark_root_scan_s\": {:.4}, \
         \"mark_heap_scan_s\": {:.4}, \"named\": {}, \"types\": {}, \"vftables_checked\": {}, \"reached\": {}, \
         \"root_bytes\": {}, \"heap_bytes\": {}, \"root_gb_s\": {:.2}, \"full_scan_bytes\": {}, \"full_scan_s\": {:.4}, \
         \"full_scan_gb_s\": {:.2}, \"full_scan_hits\": {}, \"threads\": 1}}",
        report.blocks.len(),
        reach.allocations,
        median(walk),
        median(types),
        median(content),
        median(mark),
        reach.index_seconds,
        reach.roots_seconds,
        reach.root_scan_seconds,
        reach.heap_scan_seconds,
        table.named,
        table.types.len(),
        table.vftables_checked,
        reach.reached,
        reach.root_bytes,
        reach.heap_bytes,
        gbs(reach.root_bytes, reach.root_scan_seconds),
        full_bytes,
        median(full.clone()),
        gbs(full_bytes, median(full)),
        hits,
    );
}
