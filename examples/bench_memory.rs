//! Benchmark: open a dump and do random 8-byte reads, through ntheap's address space and
//! through the `minidump` crate's own memory API, in one run. Prints figures and the ratio.
//!
//! `cargo run --release --example bench_memory -- DUMP [READS]` (bench/run.py drives it).

use std::time::Instant;

use minidump::{Minidump, MinidumpMemory64List, MinidumpMemoryList, UnifiedMemoryList};
use ntheap::Dump;

/// xorshift64*: a tiny deterministic generator, so both readers see the same addresses.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: bench_memory DUMP [READS]");
    let reads: usize = args.next().map_or(1_000_000, |s| s.parse().expect("READS is a number"));
    let size = std::fs::metadata(&path).expect("dump exists").len();

    let t = Instant::now();
    let dump = Dump::open(&path).expect("ntheap opens the dump");
    let open_ntheap = t.elapsed();
    let ranges = dump.memory().ranges().to_vec();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let addrs: Vec<u64> = (0..reads)
        .map(|_| {
            let r = &ranges[(rng.next() % ranges.len() as u64) as usize];
            r.va + rng.next() % (r.len - 8)
        })
        .collect();

    // A third set confined to the first cache line of each range: the index lookup alone.
    let hot: Vec<u64> = (0..reads)
        .map(|_| {
            let r = &ranges[(rng.next() % ranges.len() as u64) as usize];
            r.va + rng.next() % r.len.min(56)
        })
        .collect();
    let passes: [&[u64]; 3] = [&addrs, &addrs, &hot];

    // Pass 1 pays the page faults of a fresh mapping; pass 2 measures the lookup itself.
    let mut sum_ntheap = 0u64;
    let mut reads_ntheap = Vec::new();
    for set in passes {
        let t = Instant::now();
        sum_ntheap = 0;
        for &a in set {
            sum_ntheap = sum_ntheap.wrapping_add(dump.memory().read_u64(a).expect("captured"));
        }
        reads_ntheap.push(t.elapsed());
    }

    let t = Instant::now();
    let md = Minidump::read_path(&path).expect("minidump crate opens the dump");
    let mem = md
        .get_stream::<MinidumpMemory64List>()
        .map(UnifiedMemoryList::Memory64)
        .or_else(|_| md.get_stream::<MinidumpMemoryList>().map(UnifiedMemoryList::Memory))
        .expect("a memory list");
    let open_crate = t.elapsed();
    let mut sum_crate = 0u64;
    let mut misses = 0usize;
    let mut reads_crate = Vec::new();
    for set in passes {
        let t = Instant::now();
        sum_crate = 0;
        misses = 0;
        for &a in set {
            match mem.memory_at_address(a).and_then(|m| m.get_memory_at_address::<u64>(a)) {
                Some(v) => sum_crate = sum_crate.wrapping_add(v),
                None => {
                    if misses == 0 && std::env::var_os("BENCH_SHOW_MISS").is_some() {
                        let r = ranges.iter().find(|r| r.va <= a && a < r.end()).expect("in a range");
                        eprintln!("first miss: {a:#x} = range {:#x}+{:#x} (len {:#x})", r.va, a - r.va, r.len);
                    }
                    misses += 1
                }
            }
        }
        reads_crate.push(t.elapsed());
    }

    println!("dump: {path} ({:.2} GiB, {} coalesced ranges)", size as f64 / (1u64 << 30) as f64, ranges.len());
    println!("open   ntheap::Dump::open            {:>10.3} ms", open_ntheap.as_secs_f64() * 1e3);
    println!("open   minidump crate (+memory list) {:>10.3} ms", open_crate.as_secs_f64() * 1e3);
    for (pass, label) in
        ["cold (page faults)", "warm", "hot (one cache line per range: lookup cost)"].iter().enumerate()
    {
        let (n, c) = (reads_ntheap[pass].as_secs_f64(), reads_crate[pass].as_secs_f64());
        println!("{reads} random u64 reads, {label}:");
        println!("    ntheap          {:>10.3} ms  ({:>6.1} M reads/s)", n * 1e3, reads as f64 / n / 1e6);
        println!(
            "    minidump crate  {:>10.3} ms  ({:>6.1} M reads/s, {misses} misses)",
            c * 1e3,
            reads as f64 / c / 1e6
        );
        println!("    ratio crate/ntheap {:>7.1}x", c / n);
    }
    if misses == 0 {
        assert_eq!(sum_ntheap, sum_crate, "both readers must read the same bytes");
    }
}
