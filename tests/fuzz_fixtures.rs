//! Hostile-input robustness: every checked-in dump (`tests/fixtures/*.dmp`, `samples/*.dmp`,
//! and the fuzz campaign's dump findings, `tests/fixtures/fuzz/*/*.dmp`),
//! mutated and truncated with deterministic seeds, goes through every entry point the Python
//! layer calls (open, PEBs, heap walk, `!heap -s`, stacks, symbolization, `!heap -p -a`, region
//! captured bytes, the leak-triage passes). Nothing may panic and no dump may take more than a few seconds.
//!
//! Mutations are sparse (a few bytes, words or pointers per variant) so that most structures
//! stay intact and the walk gets deep before it meets the damage; some variants are truncated.
//! `NTHEAP_FUZZ_VARIANTS` sets the number of variants per dump (default 64, which keeps the test
//! under ten seconds in a debug build); `NTHEAP_FUZZ_SEED` changes the seed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ntheap::allocation::{Allocation, BlockIndex};
use ntheap::heap;
use ntheap::mapped::FileBytes;
use ntheap::process;
use ntheap::stacks::StackTable;
use ntheap::symbols::Symbolizer;
use ntheap::triage;
use ntheap::Dump;

/// Longest time one variant may take (a debug build, on a loaded machine).
const MAX_PER_DUMP: Duration = Duration::from_secs(5);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn dumps() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    // The dump-format inputs the fuzz campaign found bugs with (`tests/fixtures/fuzz/*/`) too.
    let mut dirs: Vec<PathBuf> = vec![root.join("tests/fixtures"), root.join("samples")];
    if let Ok(rd) = std::fs::read_dir(root.join("tests/fixtures/fuzz")) {
        dirs.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        let Ok(rd) = std::fs::read_dir(dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "dmp") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Values that tend to break arithmetic on dump-controlled fields.
fn interesting(rng: &mut Rng) -> u64 {
    const V: [u64; 14] = [
        0,
        1,
        0x7f,
        0xff,
        0xffff,
        0x7fff_ffff,
        0xffff_ffff,
        0x1_0000_0000,
        0x7fff_ffff_ffff_ffff,
        0xffff_ffff_ffff_f000,
        0xffff_ffff_ffff_fff0,
        0xffff_ffff_ffff_fff8,
        0xffff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
    ];
    V[rng.below(V.len() as u64) as usize]
}

/// What the clean dump offers as targets: captured virtual addresses (to plant plausible
/// pointers) and the file spans of its non-memory streams (module, thread, memory-info lists).
struct Targets {
    vas: Vec<(u64, u64)>,
    streams: Vec<(usize, usize)>,
}

fn targets(bytes: &[u8]) -> Targets {
    let Ok(d) = Dump::from_bytes(FileBytes::Owned(bytes.to_vec())) else {
        return Targets { vas: Vec::new(), streams: Vec::new() };
    };
    let vas = d.memory().ranges().iter().map(|r| (r.va, r.end())).collect();
    let streams = d
        .info()
        .streams
        .iter()
        .filter(|s| s.kind != 5 && s.kind != 9 && s.size > 0) // not the memory lists' data
        .map(|s| (s.rva as usize, (s.rva as usize + s.size as usize).min(bytes.len())))
        .filter(|(a, b)| a < b)
        .collect();
    Targets { vas, streams }
}

fn mutate(original: &[u8], t: &Targets, rng: &mut Rng) -> Vec<u8> {
    let vas = &t.vas;
    let mut b = original.to_vec();
    if b.is_empty() {
        return b;
    }
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        // A third of the edits go to the header, directory and metadata streams.
        let len = b.len() as u64;
        let at = match rng.below(6) {
            0 => rng.below(len.min(0x100)) as usize,
            1 if !t.streams.is_empty() => {
                let (s, e) = t.streams[rng.below(t.streams.len() as u64) as usize];
                (s + rng.below((e - s) as u64) as usize).min(b.len() - 1)
            }
            _ => rng.below(len) as usize,
        };
        let room = b.len() - at;
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                let v = interesting(rng).to_le_bytes();
                let n = [2, 4, 8][rng.below(3) as usize].min(room);
                b[at..at + n].copy_from_slice(&v[..n]);
            }
            3 if !vas.is_empty() => {
                let (s, e) = vas[rng.below(vas.len() as u64) as usize];
                let p = (s + rng.below(e - s)) & !7;
                let at = at & !3;
                let n = if rng.below(2) == 0 { 4 } else { 8 }.min(b.len() - at);
                b[at..at + n].copy_from_slice(&p.to_le_bytes()[..n]);
            }
            4 => {
                let n = (rng.below(48) as usize).min(room);
                let fill = if rng.below(2) == 0 { 0 } else { 0xff };
                b[at..at + n].fill(fill);
            }
            _ => {
                // Duplicate a nearby run of bytes (copies a header or a list node elsewhere).
                let n = (1 + rng.below(32) as usize).min(room);
                let src = rng.below(len - n as u64) as usize;
                let chunk = b[src..src + n].to_vec();
                b[at..at + n].copy_from_slice(&chunk);
            }
        }
    }
    if rng.below(6) == 0 {
        let cut = rng.below(b.len() as u64) as usize;
        b.truncate(cut);
    }
    b
}

/// What the Python layer does with a dump, in one place.
fn exercise(bytes: Vec<u8>) {
    let Ok(dump) = Dump::from_bytes(FileBytes::Owned(bytes)) else { return };
    let info = dump.info();
    for m in &info.modules {
        let _ = (m.end(), m.name());
    }
    let _ = process::is_wow64(&dump);
    let _ = process::process_info(&dump);
    if let Some(regions) = &info.regions {
        for r in regions {
            let _ = dump.memory().captured_in(r.base, r.size);
        }
    }
    let _ = dump.memory().captured_bytes();
    let sym = Symbolizer::new(&dump, Some(""));
    for m in &info.modules {
        let _ = sym.symbolize(m.base.wrapping_add(0x1000));
    }
    let Ok(report) = heap::walk(&dump) else { return };
    let _ = report.summary_table();
    for h in &report.heaps {
        let _ = (h.summary.external_fragmentation_pct(), h.summary.virtual_address_fragmentation_pct());
    }
    let stacks = StackTable::collect(dump.memory(), &report);
    let table = sym.symbolize_table(&stacks);
    assert_eq!(table.keys.len(), stacks.len());
    let index = BlockIndex::new(&report, &report.blocks.refs());
    let b = &report.blocks;
    let mut probes: Vec<u64> = (0..b.len()).step_by(7).flat_map(|i| [b.address[i], b.user_address[i]]).collect();
    probes.extend([0, u64::MAX, 0x7fff_ffff]);
    for h in &report.heaps {
        probes.push(h.address);
        probes.extend(h.virtual_blocks.iter().map(|v| v.user_address));
    }
    for a in probes {
        if let Some(found) = Allocation::find(&report, &report.blocks.refs(), &stacks, &index, a) {
            let frames = sym.symbolize_all(stacks.frames_of(found.stack_id));
            let _ = found.windbg_text(&frames, Some("coreclr.dll"));
        }
    }
    // Leak triage: RTTI names, content classes and the mark phase on the damaged dump.
    let images = triage::Images::load(&dump, None);
    let types = triage::name_blocks(dump.memory(), &images, &report, &report.blocks.refs());
    assert_eq!(types.type_id.len(), b.len());
    let committed = triage::Committed::new(info.regions.as_deref());
    let content = triage::classify_blocks(dump.memory(), &committed, &report, &report.blocks.refs(), &types.type_id);
    assert_eq!(content.len(), b.len());
    let reach = triage::mark(&dump, &report, &report.blocks.refs());
    assert_eq!(reach.reachable.len(), b.len());
    assert!(reach.reached <= reach.allocations);
}

#[test]
fn mutated_dumps_never_panic_or_hang() {
    let per_dump: u64 = std::env::var("NTHEAP_FUZZ_VARIANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let seed: u64 = std::env::var("NTHEAP_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x6e74_6865_6170);
    let paths = dumps();
    assert!(paths.len() >= 40, "expected the fixtures and samples, found {}", paths.len());

    // Keep this thread's panics quiet and remember where they happened (for a panic inside the
    // standard library, e.g. an overflowing `sum`, the first frame in the crate's sources); other
    // threads' panics (a failing test beside this one) go to the usual hook.
    static WHERE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let previous = Arc::new(std::panic::take_hook());
    let fuzzer = std::thread::current().id();
    let other = Arc::clone(&previous);
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != fuzzer {
            return other(info);
        }
        let mut at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        if !at.starts_with("src/") {
            let bt = std::backtrace::Backtrace::force_capture().to_string();
            if let Some(l) = bt.lines().find(|l| l.contains("./src/")) {
                at = format!("{at} via {}", l.trim());
            }
        }
        let p = info.payload();
        let msg = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
        WHERE.lock().unwrap_or_else(|e| e.into_inner()).push(format!("{at}: {}", msg.unwrap_or_default()));
    }));

    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let mut variants = 0u64;
    for (k, path) in paths.iter().enumerate() {
        let original = std::fs::read(path).unwrap();
        let tg = targets(&original);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut rng = Rng(seed ^ (k as u64).wrapping_mul(0x1000_0000_01b3));
        for i in 0..per_dump {
            let bytes = if i == 0 { original.clone() } else { mutate(&original, &tg, &mut rng) };
            let t = Instant::now();
            let r = catch_unwind(AssertUnwindSafe(|| exercise(bytes)));
            let dt = t.elapsed();
            variants += 1;
            if dt > slowest.0 {
                slowest = (dt, format!("{name} variant {i}"));
            }
            if r.is_err() {
                let at = WHERE.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
                failures.push(format!("{name} variant {i} (seed {seed:#x}): panic at {at}"));
            }
            if dt > MAX_PER_DUMP {
                failures.push(format!("{name} variant {i} (seed {seed:#x}) took {dt:?}"));
            }
        }
    }
    std::panic::set_hook(Box::new(move |info| previous(info)));
    println!(
        "{variants} variants of {} dumps in {:?}; slowest {:?} ({})",
        paths.len(),
        started.elapsed(),
        slowest.0,
        slowest.1
    );
    let mut distinct: Vec<&str> = failures.iter().map(|f| f.split("panic at ").last().unwrap_or(f)).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(failures.is_empty(), "{} failures, {} distinct:\n{}", failures.len(), distinct.len(), distinct.join("\n"));
}

/// File offset and size of the first stream of `kind` (minidumpapiset.h directory layout).
fn stream(bytes: &[u8], kind: u32) -> Option<(usize, usize)> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (count, dir) = (u32_at(8), u32_at(12));
    (0..count).map(|i| dir + 12 * i).find(|&e| u32_at(e) == kind as usize).map(|e| (u32_at(e + 8), u32_at(e + 4)))
}

/// TEB and module addresses are dump data: at the top of the address space, every field
/// offset added to them must not wrap (debug builds would panic).
#[test]
fn tebs_and_modules_at_the_top_of_the_address_space() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in ["x64_win10.dmp", "wow64_win7.dmp", "x86_win7.dmp", "stacks_win10_x64.dmp"] {
        let mut bytes = std::fs::read(root.join(name)).unwrap();
        // MINIDUMP_THREAD_LIST: u32 count, then 48-byte MINIDUMP_THREADs with Teb (u64) at +16.
        let (threads, _) = stream(&bytes, 3).expect("ThreadListStream");
        let n = u32::from_le_bytes(bytes[threads..threads + 4].try_into().unwrap()) as usize;
        for i in 0..n {
            let at = threads + 4 + 48 * i + 16;
            bytes[at..at + 8].copy_from_slice(&(u64::MAX - 8 * i as u64).to_le_bytes());
        }
        // MINIDUMP_MODULE_LIST: u32 count, then 108-byte MINIDUMP_MODULEs: BaseOfImage (u64) at
        // +0, SizeOfImage (u32) at +8. The first module moves to the last 0x100 bytes (the
        // minidump crate drops a module whose end would wrap, so it still fits).
        let (modules, _) = stream(&bytes, 4).expect("ModuleListStream");
        bytes[modules + 4..modules + 12].copy_from_slice(&(u64::MAX - 0xff).to_le_bytes());
        bytes[modules + 12..modules + 16].copy_from_slice(&0x80u32.to_le_bytes());

        let dump = Dump::from_bytes(FileBytes::Owned(bytes)).unwrap();
        assert!(dump.info().threads.iter().all(|t| t.teb > u64::MAX - 0x1000));
        assert!(process::process_info(&dump).is_err(), "{name}");
        assert!(heap::walk(&dump).is_err(), "{name}");
        let m = dump.info().modules.iter().find(|m| m.base == u64::MAX - 0xff).expect("the moved module");
        assert_eq!(m.end(), u64::MAX - 0x7f, "{name}");
        let sym = Symbolizer::new(&dump, Some(""));
        assert!(sym.symbolize(u64::MAX - 0x90).module.is_some(), "{name}");
    }
}
