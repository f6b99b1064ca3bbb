//! The fuzz targets' code (`fuzz/src/targets.rs`) on every CI run, without cargo-fuzz: each
//! target runs over its seeds (made here from the builder fixtures, the samples and the test
//! PDBs, as `fuzz/run.sh` makes the campaign's seed corpora) and over every input the campaign
//! found a bug with (`tests/fixtures/fuzz/<target>/`). None may panic, and each must finish in
//! well under a second.
//!
//! `NTHEAP_FUZZ_SEEDS_OUT=dir cargo test --release --test fuzz_corpora -- --ignored write_seeds`
//! writes the seed corpora to `dir/<target>/` for the campaign.

#[path = "../fuzz/src/targets.rs"]
#[allow(dead_code)]
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ntheap::mapped::FileBytes;
use ntheap::Dump;

/// Longest time one input may take in a debug build on a loaded machine (the campaign's limit,
/// on an optimized build, is one second).
const MAX_PER_INPUT: Duration = Duration::from_secs(5);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> =
        rd.flatten().map(|e| e.path()).filter(|p| ext.is_empty() || p.extension().is_some_and(|x| x == ext)).collect();
    out.sort();
    out
}

/// The seed corpora: target name → inputs.
fn seeds() -> BTreeMap<&'static str, Vec<(String, Vec<u8>)>> {
    let mut out: BTreeMap<&'static str, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut dumps = files(&root().join("tests/fixtures"), "dmp");
    dumps.extend(files(&root().join("samples"), "dmp"));
    dumps.extend(files(&root().join("../shared/fixtures/real"), "dmp"));
    for path in dumps {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        for t in ["open_read", "discover", "dump_all"] {
            out.entry(t).or_default().push((name.clone(), bytes.clone()));
        }
        let Ok(dump) = Dump::from_bytes(FileBytes::Owned(bytes)) else { continue };
        for (i, (t, img)) in targets::image_seeds(&dump).into_iter().enumerate() {
            out.entry(t).or_default().push((format!("{name}-{i}"), img));
        }
    }
    let mut pdbs = files(&root().join("tests/pdb"), "pdb");
    for arch in ["ntdll_x64", "ntdll_x86"] {
        for dir in files(&root().join("tests/pdb").join(arch), "") {
            pdbs.extend(walk_pdbs(&dir));
        }
    }
    for p in pdbs {
        let dir = p.parent().and_then(Path::file_name).unwrap().to_string_lossy();
        let name = format!("{dir}-{}", p.file_stem().unwrap().to_string_lossy());
        out.entry("pdb").or_default().push((name, std::fs::read(&p).unwrap()));
    }
    out
}

fn walk_pdbs(p: &Path) -> Vec<PathBuf> {
    if p.is_dir() {
        files(p, "").iter().flat_map(|c| walk_pdbs(c)).collect()
    } else if p.extension().is_some_and(|x| x == "pdb") {
        vec![p.to_path_buf()]
    } else {
        Vec::new()
    }
}

fn run(name: &str, data: &[u8]) -> Option<String> {
    let (_, f) = targets::TARGETS.iter().find(|(n, _)| *n == name).expect("a known target");
    let t = Instant::now();
    let r = std::panic::catch_unwind(|| f(data));
    let dt = t.elapsed();
    match r {
        Err(_) => Some("panicked".into()),
        Ok(()) if dt > MAX_PER_INPUT => Some(format!("took {dt:?}")),
        Ok(()) => None,
    }
}

#[test]
fn every_target_has_seeds_and_runs_them() {
    let seeds = seeds();
    let mut failures = Vec::new();
    for (name, _) in targets::TARGETS {
        let inputs = seeds.get(name).map_or(&[][..], Vec::as_slice);
        assert!(!inputs.is_empty(), "no seeds for {name}");
        for (seed, data) in inputs {
            if let Some(why) = run(name, data) {
                failures.push(format!("{name} on seed {seed}: {why}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every input a fuzz target crashed, hung or over-allocated on, run through that target again.
/// `fuzz/README.md` lists them with the bug each found.
#[test]
fn regression_inputs_from_the_campaign() {
    let mut failures = Vec::new();
    let mut count = 0;
    for dir in files(&root().join("tests/fixtures/fuzz"), "") {
        if !dir.is_dir() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        for input in files(&dir, "") {
            count += 1;
            let data = std::fs::read(&input).unwrap();
            if let Some(why) = run(&name, &data) {
                failures.push(format!("{}: {why}", input.display()));
            }
        }
    }
    println!("{count} regression inputs");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "writes the seed corpora for the fuzz campaign (NTHEAP_FUZZ_SEEDS_OUT)"]
fn write_seeds() {
    let out = PathBuf::from(std::env::var("NTHEAP_FUZZ_SEEDS_OUT").expect("NTHEAP_FUZZ_SEEDS_OUT=dir"));
    for (target, inputs) in seeds() {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, data) in inputs {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}
