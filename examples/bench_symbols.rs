//! Benchmark: symbolize many distinct frame addresses, and how it scales with the number of
//! loaded modules. Prints one line per configuration.
//!
//! `cargo run --release --example bench_symbols -- [FRAMES] [EXPORTS_PER_MODULE]`
//!
//! `cargo run --release --example bench_symbols -- DUMP.dmp` instead times one real (or
//! builder-made, e.g. `tests/dumpbuilder/bigdump.py heap OUT.dmp --ust`) dump: the heap walk, the
//! stack table and the symbolization of its distinct frames.
//!
//! Each module is a synthetic PE32+ image whose headers and export directory are captured in an
//! in-memory address space (the rest of the image is not, as in a dump with partial images).
//! "cold" includes reading every module's export table on first use; "warm" runs again on the
//! same symbolizer; "parallel" is `symbolize_all` (rayon) on a fresh symbolizer.

use std::sync::Arc;
use std::time::Instant;

use ntheap::dump::Module;
use ntheap::mapped::FileBytes;
use ntheap::memory::{AddressSpace, CapturedRange};
use ntheap::symbols::Symbolizer;

const MODULE_SIZE: u32 = 0x0100_0000;
const EXPORT_DIR: usize = 0x1000;

/// Headers and an export directory with `n` exports spread over the image (winnt.h offsets).
fn export_image(n: usize) -> Vec<u8> {
    let names_len: usize = (0..n).map(|i| format!("Function{i}").len() + 1).sum();
    let len = (EXPORT_DIR + 40 + n * 10 + names_len + 0xfff) & !0xfff;
    let mut img = vec![0u8; len];
    let put16 = |img: &mut [u8], at: usize, v: u16| img[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |img: &mut [u8], at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put16(&mut img, 0, 0x5a4d); // e_magic "MZ"
    put32(&mut img, 0x3c, 0x80); // e_lfanew
    put32(&mut img, 0x80, 0x4550); // "PE\0\0"
    put16(&mut img, 0x84, 0x8664); // Machine
    put16(&mut img, 0x94, 0xf0); // SizeOfOptionalHeader
    let opt = 0x98;
    put16(&mut img, opt, 0x20b); // PE32+
    put32(&mut img, opt + 0x38, MODULE_SIZE); // SizeOfImage
    put32(&mut img, opt + 108, 16); // NumberOfRvaAndSizes
    put32(&mut img, opt + 112, EXPORT_DIR as u32); // DataDirectory[0].VirtualAddress
    let functions = EXPORT_DIR + 40;
    let names = functions + 4 * n;
    let ordinals = names + 4 * n;
    let mut strings = ordinals + 2 * n;
    put32(&mut img, opt + 116, (len - EXPORT_DIR) as u32); // DataDirectory[0].Size
    put32(&mut img, EXPORT_DIR + 20, n as u32); // NumberOfFunctions
    put32(&mut img, EXPORT_DIR + 24, n as u32); // NumberOfNames
    put32(&mut img, EXPORT_DIR + 28, functions as u32);
    put32(&mut img, EXPORT_DIR + 32, names as u32);
    put32(&mut img, EXPORT_DIR + 36, ordinals as u32);
    let stride = (MODULE_SIZE as usize - 0x10_0000) / n.max(1);
    for i in 0..n {
        put32(&mut img, functions + 4 * i, (0x10_0000 + i * stride) as u32);
        put32(&mut img, names + 4 * i, strings as u32);
        put16(&mut img, ordinals + 2 * i, i as u16);
        let s = format!("Function{i}");
        img[strings..strings + s.len()].copy_from_slice(s.as_bytes());
        strings += s.len() + 1;
    }
    img
}

fn setup(modules: usize, exports: usize) -> (Vec<Module>, AddressSpace) {
    let image = export_image(exports);
    let mut file = Vec::with_capacity(modules * image.len());
    let mut ranges = Vec::with_capacity(modules);
    let mut list = Vec::with_capacity(modules);
    for i in 0..modules {
        let base = 0x7ff0_0000_0000u64 + i as u64 * u64::from(MODULE_SIZE) * 2;
        ranges.push(CapturedRange { va: base, len: image.len() as u64, file_offset: file.len() as u64 });
        file.extend_from_slice(&image);
        list.push(Module {
            path: format!("C:\\app\\module{i}.dll"),
            base,
            size: MODULE_SIZE,
            version: None,
            timestamp: 0,
            checksum: 0,
            pdb_name: None,
            pdb_guid: None,
            pdb_age: None,
        });
    }
    let (mem, _) = AddressSpace::new(Arc::new(FileBytes::Owned(file)), ranges);
    (list, mem)
}

/// `n` distinct addresses spread over the modules (and 1 in 64 outside every module).
fn frames(modules: &[Module], n: usize) -> Vec<u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut out: Vec<u64> = (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 64 == 63 {
                0x1000_0000 + i as u64 * 16
            } else {
                let m = &modules[(x % modules.len() as u64) as usize];
                m.base + (x >> 20) % u64::from(m.size)
            }
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn time_dump(path: &str) {
    let t = Instant::now();
    let dump = ntheap::Dump::open(path).expect("the dump opens");
    let report = ntheap::heap::walk(&dump).expect("the heaps are found");
    let walk_t = t.elapsed();
    let t = Instant::now();
    let table = ntheap::stacks::StackTable::collect(dump.memory(), &report);
    let collect_t = t.elapsed();
    let t = Instant::now();
    let sym = Symbolizer::new(&dump, None);
    let symbols = sym.symbolize_table(&table);
    let sym_t = t.elapsed();
    let traced = table.ids.iter().filter(|&&i| i >= 0).count();
    println!(
        "{} blocks ({traced} with a stack), {} trace entries, {} stacks, {} distinct frames",
        report.blocks.len(),
        table.entries_read,
        table.len(),
        symbols.distinct.len()
    );
    println!(
        "open+walk {:.1} ms, stack table {:.1} ms ({:.1} ns/block), symbolize {:.1} ms",
        walk_t.as_secs_f64() * 1e3,
        collect_t.as_secs_f64() * 1e3,
        collect_t.as_secs_f64() * 1e9 / report.blocks.len().max(1) as f64,
        sym_t.as_secs_f64() * 1e3
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(path) = std::env::args().nth(1).filter(|a| a.ends_with(".dmp")) {
        time_dump(&path);
        return;
    }
    let n: usize = args.next().map_or(100_000, |s| s.parse().expect("FRAMES is a number"));
    let exports: usize = args.next().map_or(1000, |s| s.parse().expect("EXPORTS_PER_MODULE is a number"));
    println!(
        "{:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>12}",
        "modules", "exports", "frames", "cold ms", "warm ms", "par ms", "warm ns/frame"
    );
    for modules in [1usize, 10, 100, 1000] {
        let (list, mem) = setup(modules, exports);
        let addrs = frames(&list, n);

        let sym = Symbolizer::from_parts(list.clone(), mem.clone(), Some(""));
        let t = Instant::now();
        let cold: usize = addrs.iter().map(|&a| sym.symbolize(a).text.len()).sum();
        let cold_t = t.elapsed();
        let t = Instant::now();
        let warm: usize = addrs.iter().map(|&a| sym.symbolize(a).text.len()).sum();
        let warm_t = t.elapsed();
        assert_eq!(cold, warm);

        let fresh = Symbolizer::from_parts(list, mem, Some(""));
        let t = Instant::now();
        let par: usize = fresh.symbolize_all(&addrs).iter().map(|f| f.text.len()).sum();
        let par_t = t.elapsed();
        assert_eq!(par, warm);

        println!(
            "{:>8} {:>8} {:>9} {:>10.1} {:>10.1} {:>10.1} {:>12.0}",
            modules,
            exports,
            addrs.len(),
            cold_t.as_secs_f64() * 1e3,
            warm_t.as_secs_f64() * 1e3,
            par_t.as_secs_f64() * 1e3,
            warm_t.as_secs_f64() * 1e9 / addrs.len() as f64
        );
    }
}
