//! Benchmark: walk every heap of a dump into block columns, against a plain sequential read of
//! the same segment bytes through the map, in one run.
//!
//! `cargo run --release --example bench_blocks -- DUMP` (bench/run.py drives it).

use std::time::Instant;

use ntheap::{heap, Dump};

fn main() {
    let path = std::env::args().nth(1).expect("usage: bench_blocks DUMP");
    let t = Instant::now();
    let dump = Dump::open(&path).expect("opens");
    let open = t.elapsed();

    // Warm the page cache and the mapping once, so both measurements read memory, not disk.
    let report = heap::walk(&dump).expect("walks");
    let mut best_walk = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let r = heap::walk(&dump).expect("walks");
        best_walk = best_walk.min(t.elapsed().as_secs_f64());
        assert_eq!(r.blocks.len(), report.blocks.len());
    }
    let blocks = report.blocks.len();

    // The same committed segment bytes, read sequentially: 8 bytes at a time, folded.
    let spans: Vec<(u64, u64)> = report
        .heaps
        .iter()
        .flat_map(|h| h.segments.iter())
        .flat_map(|s| {
            let mut start = s.address;
            let mut out = Vec::new();
            for u in &s.ucrs {
                out.push((start, u.address - start));
                start = u.address + u.size;
            }
            out.push((start, s.last_valid_entry.saturating_sub(start)));
            out
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    let mut best_read = f64::MAX;
    let mut bytes = 0u64;
    let mut fold = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        bytes = 0;
        for &(a, n) in &spans {
            if let Some(slice) = dump.memory().contiguous_at(a) {
                let slice = &slice[..slice.len().min(n as usize)];
                for c in slice.chunks_exact(8) {
                    fold ^= u64::from_le_bytes(c.try_into().expect("8 bytes"));
                }
                bytes += slice.len() as u64;
            }
        }
        best_read = best_read.min(t.elapsed().as_secs_f64());
    }

    println!(
        "dump: {path} ({:.1} MiB), opened in {:.3} ms",
        dump.file_size() as f64 / 1048576.0,
        open.as_secs_f64() * 1e3
    );
    println!("heaps {}, blocks {blocks}, segment bytes {:.1} MiB", report.heaps.len(), bytes as f64 / 1048576.0);
    println!(
        "heap walk into columns      {:>9.1} ms  {:>6.1} M blocks/s  {:>6.2} GiB/s",
        best_walk * 1e3,
        blocks as f64 / best_walk / 1e6,
        bytes as f64 / best_walk / (1u64 << 30) as f64
    );
    println!(
        "sequential read of segments {:>9.1} ms  {:>6.1} M blocks/s-equivalent  {:>6.2} GiB/s (fold {fold:x})",
        best_read * 1e3,
        blocks as f64 / best_read / 1e6,
        bytes as f64 / best_read / (1u64 << 30) as f64
    );
    println!("ratio walk time / read time {:>9.2}x", best_walk / best_read);
}
