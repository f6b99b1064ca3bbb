//! The foundation against real Windows dumps from `../shared/fixtures/real/` (see its
//! PROVENANCE.md, which is where every expected value below comes from). The tests skip, saying
//! why, when `../shared` is not beside the checkout.

use std::path::PathBuf;

use ntheap::process::{self, process_info};
use ntheap::{Arch, Dump, Error};

fn real(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent (the shared fixtures are not beside this checkout)", p.display());
        None
    }
}

#[test]
fn wow64_fizzbuzz_pebs_and_heap_lists() {
    let Some(path) = real("lldb-fizzbuzz_wow64.dmp") else { return };
    let dump = Dump::open(path).unwrap();
    let t = dump.target();
    assert_eq!((t.arch, t.version.to_string()), (Arch::X64, "6.1.7601".to_owned()));
    assert!(process::is_wow64(&dump));
    assert!(dump.info().warnings.is_empty());
    // PROVENANCE: Memory64ListStream with 107 ranges (9.27 MB), MemoryInfoListStream 168 entries.
    assert_eq!(dump.info().regions.as_ref().unwrap().len(), 168);
    let p = process_info(&dump).unwrap();
    assert_eq!((p.native.teb, p.native.address, p.native.nt_global_flag), (0x7efd_b000, 0x7efd_f000, 0));
    assert_eq!(p.native.process_heaps.as_deref(), Some(&[0x50_0000, 0x1_0000, 0x2_0000][..]));
    assert_eq!(p.native.process_heap, 0x50_0000);
    let w = p.wow64.as_ref().unwrap();
    assert_eq!((w.arch, w.teb, w.address), (Arch::X86, 0x7efd_d000, 0x7efd_e000));
    assert_eq!(w.process_heaps.as_deref(), Some(&[0x70_0000, 0x46_0000][..]));
    assert_eq!(w.process_heap, 0x70_0000);
    assert_eq!(p.application().address, 0x7efd_e000);
}

#[test]
fn wow64_fizzbuzz_memory_reads() {
    let Some(path) = real("lldb-fizzbuzz_wow64.dmp") else { return };
    let dump = Dump::open(path).unwrap();
    let mem = dump.memory();
    // The 64-bit and 32-bit heaps both start with an NT heap segment signature (PROVENANCE).
    assert_eq!(mem.read_u32(0x50_0000 + 0x10).unwrap(), 0xffee_ffee);
    assert_eq!(mem.read_u32(0x70_0000 + 0x08).unwrap(), 0xffee_ffee);
    assert_eq!(mem.read_u32(0x70_0000 + 0x64).unwrap(), 0xeeff_eeff);
    assert_eq!(mem.read_u32(0x50_0000 + 0xa0).unwrap(), 0xeeff_eeff);
    // Captured bytes per region never exceed the region, and the total matches the index.
    let regions = dump.info().regions.as_ref().unwrap();
    let per_region: u64 = regions.iter().map(|r| mem.captured_in(r.base, r.size)).sum();
    assert_eq!(per_region, mem.captured_bytes());
    assert!(matches!(mem.read(0, 1), Err(Error::MemoryNotCaptured { .. })));
}

#[test]
fn win10_dumps_list_heaps_they_did_not_capture() {
    // PROVENANCE: the PEB is captured; the heaps are not (and in some, not the array either).
    for (name, build, heaps_array) in [
        ("lldb-sigsegv-win10-x64.dmp", 16299, true),
        ("electron-node-minidump-windows.dmp", 14393, false),
        ("breakpad-tiny-exe-fastfail.dmp", 19042, false),
        ("breakpad-tiny-exe-with-cet-xsave.dmp", 22000, false),
    ] {
        let Some(path) = real(name) else { return };
        let dump = Dump::open(path).unwrap();
        assert_eq!(dump.target().version.build, build, "{name}");
        let p = process_info(&dump).unwrap();
        assert!(p.wow64.is_none());
        assert_eq!(p.native.process_heaps.is_some(), heaps_array, "{name}");
        if let Some(heaps) = &p.native.process_heaps {
            assert_eq!(heaps.len() as u32, p.native.number_of_heaps);
            assert_eq!(heaps[0], p.native.process_heap, "{name}: ProcessHeaps[0] is ProcessHeap");
            assert!(!dump.memory().is_captured(heaps[0], 0x100), "{name}: heap not captured");
        } else {
            assert!(p.native.process_heaps_problem.as_deref().unwrap().contains("not captured"), "{name}");
        }
    }
    let Some(path) = real("breakpad-tiny-exe-fastfail.dmp") else { return };
    let p = process_info(&Dump::open(path).unwrap()).unwrap();
    // PROVENANCE: NtGlobalFlag 0x400, NumberOfHeaps 3.
    assert_eq!((p.native.nt_global_flag, p.native.number_of_heaps), (0x400, 3));
}

#[test]
fn dumps_without_a_captured_peb_say_so() {
    let Some(path) = real("rust-minidump-invalid-parameter.dmp") else { return };
    let dump = Dump::open(path).unwrap();
    assert_eq!(dump.target().version.build, 17134);
    match process_info(&dump) {
        Err(Error::StructureNotCaptured { what, .. }) => assert!(what.starts_with("TEB of thread"), "{what}"),
        other => panic!("unexpected {other:?}"),
    }
    // Windows XP (build 2600) predates every layout the reader knows.
    let Some(path) = real("rust-minidump-test-breakpad-minidump2.dmp") else { return };
    let dump = Dump::open(path).unwrap();
    assert_eq!((dump.target().arch, dump.target().version.build), (Arch::X86, 2600));
    assert!(matches!(process_info(&dump), Err(Error::UnsupportedLayout { build: 2600, .. })));
}
