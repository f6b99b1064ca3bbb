//! Symbolizer tests on PE images written here with literal winnt.h offsets (not through
//! [`pe`]'s constants), placed in a synthetic address space.

use super::*;
use crate::heap::testing::Space;

/// An export: RVA and name.
type Export<'a> = (u32, &'a str);

/// A minimal image: DOS header, NT headers, and an export directory at 0x1000 whose arrays and
/// names follow it. `forwarders` are exported names whose function RVA points at a
/// `"DLL.Name"` string inside the directory.
fn pe_image(pe32_plus: bool, size: u32, exports: &[Export<'_>], forwarders: &[&str]) -> Vec<u8> {
    let mut img = vec![0u8; size as usize];
    let put16 = |img: &mut Vec<u8>, at: usize, v: u16| img[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put32 = |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put16(&mut img, 0, 0x5a4d);
    put32(&mut img, 0x3c, 0x80);
    put32(&mut img, 0x80, 0x4550);
    put16(&mut img, 0x84, if pe32_plus { 0x8664 } else { 0x14c });
    put16(&mut img, 0x84 + 16, if pe32_plus { 0xf0 } else { 0xe0 });
    let opt = 0x98;
    put16(&mut img, opt, if pe32_plus { 0x20b } else { 0x10b });
    put32(&mut img, opt + 0x38, size);
    let (count_at, dir_at) = if pe32_plus { (opt + 108, opt + 112) } else { (opt + 92, opt + 96) };
    put32(&mut img, count_at, 16);

    let n = exports.len() + forwarders.len();
    let dir = 0x1000usize;
    let functions = dir + 40;
    let names = functions + 4 * n;
    let ordinals = names + 4 * n;
    let mut strings = ordinals + 2 * n;
    let mut all: Vec<(u32, String)> = exports.iter().map(|&(r, s)| (r, s.to_owned())).collect();
    for f in forwarders {
        let target = strings as u32;
        let text = format!("OTHER.{f}");
        img[strings..strings + text.len()].copy_from_slice(text.as_bytes());
        strings += text.len() + 1;
        all.push((target, (*f).to_owned()));
    }
    put32(&mut img, dir + 16, 1); // Base
    put32(&mut img, dir + 20, n as u32);
    put32(&mut img, dir + 24, n as u32);
    put32(&mut img, dir + 28, functions as u32);
    put32(&mut img, dir + 32, names as u32);
    put32(&mut img, dir + 36, ordinals as u32);
    for (i, (rva, name)) in all.iter().enumerate() {
        put32(&mut img, functions + 4 * i, *rva);
        put32(&mut img, names + 4 * i, strings as u32);
        put16(&mut img, ordinals + 2 * i, i as u16);
        img[strings..strings + name.len()].copy_from_slice(name.as_bytes());
        strings += name.len() + 1;
    }
    put32(&mut img, dir_at, dir as u32);
    put32(&mut img, dir_at + 4, (strings - dir) as u32);
    img
}

fn module(path: &str, base: u64, size: u32) -> Module {
    Module {
        path: path.to_owned(),
        base,
        size,
        version: None,
        timestamp: 0,
        checksum: 0,
        pdb_name: None,
        pdb_guid: None,
        pdb_age: None,
    }
}

const HALCON: u64 = 0x7ff6_1000_0000;
const SEED: [Export<'static>; 5] = [
    (0x2000, "HXmalloc"),
    (0x2400, "HXAllocRLTmp"),
    (0x5000, "HXAllocTmp"),
    (0x6000, "HCancelWait"),
    (0x8000, "CCallHProc"),
];

fn symbolizer(images: &[(Module, Vec<u8>)]) -> Symbolizer {
    let mut s = Space::default();
    for (m, img) in images {
        s.add(m.base, img.len());
        s.put(m.base, img);
    }
    Symbolizer::from_parts(images.iter().map(|(m, _)| m.clone()).collect(), s.build(), Some(""))
}

#[test]
fn exports_give_module_symbol_offset() {
    for pe32_plus in [false, true] {
        let img = pe_image(pe32_plus, 0x10000, &SEED, &["Forwarded"]);
        let sym = symbolizer(&[(module("C:\\Program Files\\MVTec\\halcon.dll", HALCON, 0x10000), img)]);
        let f = sym.symbolize(HALCON + 0x2000 + 0x8b);
        assert_eq!(f.text, "halcon!HXmalloc+0x8b");
        assert_eq!((f.module.as_deref(), f.symbol.as_deref(), f.offset), (Some("halcon"), Some("HXmalloc"), 0x8b));
        assert_eq!((f.source, f.jit_or_unknown), (FrameSource::Export, false));
        assert_eq!(sym.symbolize(HALCON + 0x2400 + 0x265d).text, "halcon!HXAllocRLTmp+0x265d");
        assert_eq!(sym.symbolize(HALCON + 0x6000).text, "halcon!HCancelWait");
        assert_eq!(sym.symbolize(HALCON + 0x6000).offset, 0);
        // Past the last export: still the nearest preceding one, as the debugger does.
        assert_eq!(sym.symbolize(HALCON + 0xfff0).text, "halcon!CCallHProc+0x7ff0");
        // Before the first export: module+offset.
        let f = sym.symbolize(HALCON + 0x1234);
        assert_eq!(
            (f.text.as_str(), f.source, f.symbol.clone(), f.offset),
            ("halcon+0x1234", FrameSource::Module, None, 0x1234)
        );
        assert_eq!(sym.symbolize(HALCON).text, "halcon");
        // The forwarder's RVA points into the directory, before HXmalloc: no symbol there.
        assert_eq!(sym.symbolize(HALCON + 0x1100).source, FrameSource::Module);
        // Outside every module: JIT or unknown.
        let f = sym.symbolize(0x1f2e_3d4c_5b6a);
        assert_eq!(
            (f.text.as_str(), f.jit_or_unknown, f.source, f.module),
            ("0x1f2e3d4c5b6a", true, FrameSource::None, None)
        );
        let st = sym.status();
        let loaded = st[0].symbols.as_ref().unwrap();
        assert_eq!((loaded.source, loaded.table.len()), (FrameSource::Export, 5));
    }
}

#[test]
fn corrupt_export_directories_fall_back_to_module_offset() {
    let good = pe_image(true, 0x10000, &SEED, &[]);
    let dir = 0x1000;
    let put32 = |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut huge = good.clone();
    put32(&mut huge, dir + 20, 0xffff_ffff); // NumberOfFunctions
    cases.push(("exceed", huge));
    let mut names = good.clone();
    put32(&mut names, dir + 24, 0x0100_0000); // NumberOfNames
    cases.push(("exceed", names));
    let mut outside = good.clone();
    put32(&mut outside, dir + 28, 0xfff0); // AddressOfFunctions runs past SizeOfImage
    cases.push(("outside the image", outside));
    let mut lfanew = good.clone();
    put32(&mut lfanew, 0x3c, 0xffff_fff0);
    cases.push(("outside the image", lfanew));
    let mut magic = good.clone();
    magic[0x98] = 0x77;
    cases.push(("neither PE32", magic));
    let mut mz = good.clone();
    mz[0] = b'X';
    cases.push(("no MZ", mz));
    let mut no_dir = good.clone();
    put32(&mut no_dir, 0x98 + 112, 0);
    cases.push(("no export directory", no_dir));
    for (why, img) in cases {
        let sym = symbolizer(&[(module("halcon.dll", HALCON, 0x10000), img)]);
        let f = sym.symbolize(HALCON + 0x208b);
        assert_eq!((f.text.as_str(), f.source), ("halcon+0x208b", FrameSource::Module), "{why}");
        let notes = sym.status()[0].symbols.clone().unwrap().notes;
        assert!(notes.iter().any(|n| n.contains(why)), "{why}: {notes:?}");
    }
}

#[test]
fn missing_pages_fall_back_and_bad_names_are_skipped() {
    let img = pe_image(false, 0x10000, &SEED, &[]);
    // Only the headers are captured: the export directory page is not.
    let mut s = Space::default();
    s.add(HALCON, 0x1000);
    s.put(HALCON, &img[..0x1000]);
    let m = module("halcon.dll", HALCON, 0x10000);
    let sym = Symbolizer::from_parts(vec![m.clone()], s.build(), Some(""));
    assert_eq!(sym.symbolize(HALCON + 0x2010).text, "halcon+0x2010");
    let notes = sym.status()[0].symbols.clone().unwrap().notes;
    assert!(notes[0].contains("not captured"), "{notes:?}");

    // One name made unprintable: that export is skipped, the others stay.
    let mut img = img;
    let first_name = u32::from_le_bytes(img[0x1000 + 40 + 4 * 5..][..4].try_into().unwrap()) as usize;
    img[first_name] = 0x01;
    let sym = symbolizer(&[(m, img)]);
    assert_eq!(sym.symbolize(HALCON + 0x2010).text, "halcon+0x2010");
    assert_eq!(sym.symbolize(HALCON + 0x2410).text, "halcon!HXAllocRLTmp+0x10");
}

#[test]
fn random_images_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let good = pe_image(true, 0x4000, &[(0x3000, "a"), (0x3800, "b")], &["f"]);
    for round in 0..300 {
        let mut img = good.clone();
        // Flip bytes in the headers and the export directory.
        for _ in 0..(1 + round % 16) {
            let at = (next() % 0x1100) as usize;
            img[at] = next() as u8;
        }
        let sym = symbolizer(&[(module("r.dll", HALCON, 0x4000), img)]);
        for a in [HALCON, HALCON + 0x3001, HALCON + 0x3fff] {
            let f = sym.symbolize(a);
            assert!(f.text.starts_with('r'), "{}", f.text);
        }
    }
}

#[test]
fn an_image_at_the_top_of_the_address_space_does_not_wrap() {
    // The module list's base is dump data: here the last 0x80 bytes of the address space hold
    // an "MZ" header whose e_lfanew (0x1000) lies inside the module's declared size but past 2^64.
    let base = u64::MAX - 0x7f;
    let mut s = Space::new(base, 0x7f);
    s.put(base, &[0x4d, 0x5a]);
    s.put_u32(base + 0x3c, 0x1000);
    let mem = s.build();
    assert!(pe::read_exports(&mem, base, 0x10000).unwrap_err().0.contains("outside the image"));
    let sym = Symbolizer::from_parts(vec![module("top.dll", base, 0x10000)], mem, Some(""));
    let f = sym.symbolize(u64::MAX - 0x10);
    assert_eq!((f.text.as_str(), f.source), ("top+0x6f", FrameSource::Module));
}

#[test]
fn module_names_follow_the_debugger() {
    let n = |p: &str| module_name(&module(p, 0x1000, 1));
    assert_eq!(n("C:\\x\\halcon.dll"), "halcon");
    assert_eq!(n("C:\\x\\System.Private.CoreLib.dll"), "System_Private_CoreLib");
    assert_eq!(n("/lib/noext"), "noext");
    assert_eq!(n("KERNELBASE.dll"), "KERNELBASE");
    assert_eq!(n(""), "image1000");
    assert_eq!(n(".hidden"), "_hidden");
}

#[test]
fn clr_is_named_when_loaded() {
    let mods =
        vec![module("C:\\a\\app.exe", 0x40_0000, 0x1000), module("C:\\dotnet\\CoreCLR.dll", 0x7ff0_0000, 0x1000)];
    let sym = Symbolizer::from_parts(mods.clone(), Space::default().build(), Some(""));
    assert_eq!(sym.clr_module(), Some("CoreCLR.dll"));
    assert_eq!(clr_module(&mods[..1]), None);
}

#[test]
fn module_lookup_is_exact_at_the_edges_and_survives_overlaps() {
    let mods = vec![
        module("c.dll", 0x3000, 0x1000),
        module("a.dll", 0x1000, 0x1000),
        module("b.dll", 0x1800, 0x1000), // overlaps a: dropped
        module("z.dll", 0x9000, 0),      // empty: dropped
    ];
    let sym = Symbolizer::from_parts(mods, Space::default().build(), Some(""));
    let t = |a| sym.symbolize(a).text;
    assert_eq!(t(0x0fff), "0xfff");
    assert_eq!(t(0x1000), "a");
    assert_eq!(t(0x1fff), "a+0xfff");
    assert_eq!(t(0x2000), "0x2000");
    assert_eq!(t(0x3fff), "c+0xfff");
    assert_eq!(t(0x4000), "0x4000");
    assert_eq!(sym.status().len(), 2);
    // Without an image in the dump, the module notes say why there are no exports.
    let _ = sym.symbolize(0x1000);
    let notes = sym.status()[0].symbols.clone().unwrap().notes;
    assert!(notes[0].starts_with("exports:"), "{notes:?}");
}

#[test]
fn stack_keys_join_texts_innermost_first() {
    let img = pe_image(true, 0x10000, &SEED, &[]);
    let sym = symbolizer(&[(module("halcon.dll", HALCON, 0x10000), img)]);
    let table = StackTable {
        offsets: vec![0, 3, 4],
        frames: vec![HALCON + 0x208b, HALCON + 0x6000, 0xdead_0000, HALCON + 0x208b],
        depth: vec![3, 1],
        trace_entry: vec![1, 2],
        ..StackTable::default()
    };
    assert_eq!(
        sym.stack_keys(&table),
        vec!["halcon!HXmalloc+0x8b\nhalcon!HCancelWait\n0xdead0000", "halcon!HXmalloc+0x8b"]
    );
}

#[test]
fn pdb_lookup_ignores_files_that_are_not_the_modules_pdb() {
    let dir = tempfile::tempdir().unwrap();
    let guid = "0A1B2C3D4E5F4061728394A5B6C7D8E9";
    let store = dir.path().join("halcon.pdb").join(format!("{guid}3"));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("halcon.pdb"), b"not a pdb").unwrap();
    let img = pe_image(true, 0x10000, &SEED, &[]);
    let mut m = module("halcon.dll", HALCON, 0x10000);
    m.pdb_name = Some("C:\\build\\halcon.pdb".into());
    m.pdb_guid = Some(guid.into());
    m.pdb_age = Some(3);
    let mut s = Space::default();
    s.add(HALCON, img.len());
    s.put(HALCON, &img);
    let path = format!("srv*{}*https://symbols.example/", dir.path().display());
    let sym = Symbolizer::from_parts(vec![m], s.build(), Some(&path));
    assert_eq!(sym.symbol_dirs(), &[dir.path().to_path_buf()]);
    let f = sym.symbolize(HALCON + 0x208b);
    assert_eq!((f.text.as_str(), f.source), ("halcon!HXmalloc+0x8b", FrameSource::Export));
    let notes = sym.status()[0].symbols.clone().unwrap().notes;
    assert!(notes[0].contains("not a PDB"), "{notes:?}");
}

#[test]
fn many_distinct_frames_symbolize_in_parallel_consistently() {
    let img = pe_image(true, 0x10000, &SEED, &[]);
    let sym = symbolizer(&[(module("halcon.dll", HALCON, 0x10000), img)]);
    let addrs: Vec<u64> = (0..10_000u64).map(|i| HALCON + 0x2000 + i).collect();
    let all = sym.symbolize_all(&addrs);
    assert_eq!(all.len(), addrs.len());
    for (a, f) in addrs.iter().zip(&all) {
        assert_eq!(*f, sym.symbolize(*a));
    }
}
