//! Symbolization against a real PE/PDB pair: `tests/pdb/tiny.dll` and `tiny.pdb` (built by
//! clang + lld-link, see `tests/pdb/make_pdb.sh`). Every expected value comes from
//! `tests/pdb/tiny.json`, which `tests/pdb/pdbfacts.py` derives from the linker map, the object
//! file and the DLL, never from a PDB reader.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ntheap::dump::Module;
use ntheap::mapped::FileBytes;
use ntheap::memory::{AddressSpace, CapturedRange};
use ntheap::symbols::{pdb, FrameSource, Symbolizer};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("pdb")
}

fn facts() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("tiny.json")).expect("tiny.json")).expect("valid JSON")
}

fn n(v: &Value) -> u64 {
    v.as_u64().expect("a number")
}

/// tiny.dll as the loader maps it: headers at the base, each section at its RVA.
fn mapped_image(f: &Value) -> Vec<u8> {
    let file = std::fs::read(dir().join(f["dll"].as_str().unwrap())).expect("tiny.dll");
    let mut img = vec![0u8; n(&f["size_of_image"]) as usize];
    let headers = n(&f["size_of_headers"]) as usize;
    img[..headers].copy_from_slice(&file[..headers]);
    for s in f["sections"].as_array().unwrap() {
        let (rva, raw, size) = (n(&s["rva"]) as usize, n(&s["raw_pointer"]) as usize, n(&s["raw_size"]) as usize);
        let size = size.min(img.len() - rva);
        img[rva..rva + size].copy_from_slice(&file[raw..raw + size]);
    }
    img
}

fn tiny_module(f: &Value, age: u32) -> Module {
    let cv = &f["codeview"];
    Module {
        path: "C:\\app\\tiny.dll".into(),
        base: n(&f["image_base"]),
        size: n(&f["size_of_image"]) as u32,
        version: None,
        timestamp: n(&f["timestamp"]) as u32,
        checksum: 0,
        pdb_name: Some(cv["pdb_name"].as_str().unwrap().into()),
        pdb_guid: Some(cv["guid"].as_str().unwrap().into()),
        pdb_age: Some(age),
    }
}

fn symbolizer(f: &Value, age: u32, symbol_path: &str, with_image: bool) -> Symbolizer {
    let base = n(&f["image_base"]);
    let img = if with_image { mapped_image(f) } else { Vec::new() };
    let len = img.len() as u64;
    let (mem, _) = AddressSpace::new(
        Arc::new(FileBytes::Owned(img)),
        (len > 0).then_some(CapturedRange { va: base, len, file_offset: 0 }),
    );
    Symbolizer::from_parts(vec![tiny_module(f, age)], mem, Some(symbol_path))
}

/// (address, function name, offset) of every return address the compiler placed in tiny.dll.
fn return_sites(f: &Value) -> Vec<(u64, String, u64)> {
    let base = n(&f["image_base"]);
    let mut out = Vec::new();
    for func in f["functions"].as_array().unwrap() {
        for r in func["call_returns"].as_array().unwrap() {
            out.push((base + n(&func["rva"]) + n(r), func["name"].as_str().unwrap().to_owned(), n(r)));
        }
    }
    assert!(out.len() >= 5, "tiny.json lists the call sites");
    out
}

#[test]
fn pdb_identity_is_the_codeview_guid_and_age() {
    let f = facts();
    let id = pdb::identity(&dir().join("tiny.pdb")).unwrap();
    assert_eq!(id.guid, f["codeview"]["guid"].as_str().unwrap());
    assert_eq!(u64::from(id.age), n(&f["codeview"]["age"]));
}

#[test]
fn matching_pdb_names_every_function_including_statics() {
    let f = facts();
    let age = n(&f["codeview"]["age"]) as u32;
    let sym = symbolizer(&f, age, &dir().display().to_string(), true);
    for (addr, name, off) in return_sites(&f) {
        let fr = sym.symbolize(addr);
        assert_eq!(fr.text, format!("tiny!{name}+{off:#x}"), "{addr:#x}");
        assert_eq!((fr.source, fr.symbol.as_deref(), fr.offset), (FrameSource::Pdb, Some(name.as_str()), off));
    }
    let st = &sym.status()[0];
    assert_eq!(st.symbols.as_ref().unwrap().pdb.as_deref(), Some(dir().join("tiny.pdb").as_path()));
    // Function starts resolve with offset 0.
    for func in f["functions"].as_array().unwrap() {
        let fr = sym.symbolize(n(&f["image_base"]) + n(&func["rva"]));
        assert_eq!(fr.text, format!("tiny!{}", func["name"].as_str().unwrap()));
    }
}

#[test]
fn symbol_store_layout_is_found() {
    let f = facts();
    let cv = &f["codeview"];
    let store = tempfile::tempdir().unwrap();
    let leaf = store.path().join("tiny.pdb").join(cv["debug_id"].as_str().unwrap());
    std::fs::create_dir_all(&leaf).unwrap();
    std::fs::copy(dir().join("tiny.pdb"), leaf.join("tiny.pdb")).unwrap();
    let path = format!("cache*{};srv*{}*https://msdl.example/download/symbols", "/nonexistent", store.path().display());
    let sym = symbolizer(&f, n(&cv["age"]) as u32, &path, false);
    let (addr, name, off) = return_sites(&f).remove(0);
    let fr = sym.symbolize(addr);
    assert_eq!((fr.text, fr.source), (format!("tiny!{name}+{off:#x}"), FrameSource::Pdb));
}

/// The nearest export at or before `rva`, from tiny.json's export table.
fn export_before(f: &Value, rva: u64) -> Option<(String, u64)> {
    f["exports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["forwarder"].as_bool().unwrap() && n(&e["rva"]) <= rva)
        .max_by_key(|e| n(&e["rva"]))
        .map(|e| (e["name"].as_str().unwrap().to_owned(), rva - n(&e["rva"])))
}

#[test]
fn without_a_matching_pdb_the_exports_are_used() {
    let f = facts();
    let age = n(&f["codeview"]["age"]) as u32;
    let base = n(&f["image_base"]);
    // No symbol path, and the right directory with an age the PDB does not have.
    for (path, age) in [("", age), (dir().display().to_string().as_str(), age + 1)] {
        let sym = symbolizer(&f, age, path, true);
        for (addr, _, _) in return_sites(&f) {
            let fr = sym.symbolize(addr);
            match export_before(&f, addr - base) {
                Some((name, off)) => {
                    let want = if off == 0 { format!("tiny!{name}") } else { format!("tiny!{name}+{off:#x}") };
                    assert_eq!((fr.text, fr.source), (want, FrameSource::Export), "{addr:#x}");
                }
                None => assert_eq!((fr.text, fr.source), (format!("tiny+{:#x}", addr - base), FrameSource::Module)),
            }
        }
        let notes = sym.status()[0].symbols.clone().unwrap().notes;
        if !path.is_empty() {
            assert!(notes.iter().any(|n| n.contains("does not match the module's")), "{notes:?}");
        }
    }
}

#[test]
fn without_pdb_or_image_only_module_offsets_remain() {
    let f = facts();
    let sym = symbolizer(&f, 1, "", false);
    let (addr, _, _) = return_sites(&f).remove(0);
    let fr = sym.symbolize(addr);
    assert_eq!((fr.text, fr.source), (format!("tiny+{:#x}", addr - n(&f["image_base"])), FrameSource::Module));
}

/// `ntdll!RtlpLFHKey` and `ntdll!RtlpHpHeapGlobals` through the ntdll stand-in's real PDB
/// (`tests/pdb/ntdll_x64`, built by lld-link), mapped into the `ntdll_globals_x64` builder dump
/// at a relocated base. The expected addresses and values are the builder's (linker-map RVAs).
#[test]
fn ntdll_globals_are_found_through_the_pdb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let exp: Value =
        serde_json::from_slice(&std::fs::read(root.join("fixtures/ntdll_globals_x64.json")).unwrap()).unwrap();
    let dump = ntheap::Dump::open(root.join("fixtures/ntdll_globals_x64.dmp")).unwrap();
    let keys = &exp["ntdll_pdb"]["keys"];
    let store = dir().join("ntdll_x64");
    let path = store.to_str().unwrap();
    let lfh = ntheap::symbols::ntdll_global(&dump, path, ntheap::Arch::X64, "RtlpLFHKey").expect("found");
    assert_eq!(lfh, n(&keys["RtlpLFHKey"]["address"]));
    assert_eq!(dump.memory().read_u64(lfh).unwrap(), n(&keys["RtlpLFHKey"]["value"]));
    let hp = ntheap::symbols::ntdll_global(&dump, path, ntheap::Arch::X64, "RtlpHpHeapGlobals").expect("found");
    assert_eq!(hp, n(&keys["RtlpHpHeapGlobals.HeapKey"]["address"]));
    // No 32-bit ntdll in this process; no PDB on an empty path; no such symbol.
    assert_eq!(ntheap::symbols::ntdll_global(&dump, path, ntheap::Arch::X86, "RtlpLFHKey"), None);
    assert_eq!(ntheap::symbols::ntdll_global(&dump, "", ntheap::Arch::X64, "RtlpLFHKey"), None);
    assert_eq!(ntheap::symbols::ntdll_global(&dump, path, ntheap::Arch::X64, "RtlpNoSuchGlobal"), None);
}
