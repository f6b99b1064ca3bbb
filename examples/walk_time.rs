//! Time `heap::walk` of a dump (release build): `cargo run --release --example walk_time -- DUMP [N]`.
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: walk_time DUMP [N]");
    let n: usize = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    for _ in 0..n {
        let t = Instant::now();
        let dump = ntheap::Dump::open(&path).expect("opens");
        let r = ntheap::heap::walk(&dump).expect("walks");
        let dt = t.elapsed().as_secs_f64();
        println!("rows={} {dt:.3}s {:.2} M rows/s", r.blocks.len(), r.blocks.len() as f64 / dt / 1e6);
    }
}
