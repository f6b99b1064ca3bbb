//! One timed heap walk, as one JSON line: `cargo run --release --example bench_walk -- DUMP`
//! (bench/run.py reference drives it; `RAYON_NUM_THREADS` sets the threads).
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: bench_walk DUMP");
    let t = Instant::now();
    let dump = ntheap::Dump::open(&path).expect("opens");
    let open_s = t.elapsed().as_secs_f64();
    let report = ntheap::heap::walk(&dump).expect("walks");
    let total_s = t.elapsed().as_secs_f64();
    let rows = report.blocks.len();
    let allocations = report.blocks.is_allocation.iter().filter(|&&a| a).count();
    println!(
        "{{\"open_s\": {open_s:.4}, \"total_s\": {total_s:.4}, \"rows\": {rows}, \"allocations\": {allocations}, \"threads\": {}}}",
        rayon::current_num_threads()
    );
}
