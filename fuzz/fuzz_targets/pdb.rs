#![no_main]
//! PDB bytes through the `pdb` crate, as the symbolizer reads a PDB.
//!
//! `ntheap::symbols::pdb` contains a panic inside the `pdb` crate (`catch_unwind`): the file is
//! then "not a PDB ntheap can read", which is the intended handling of a dependency that
//! panics on hostile bytes. libFuzzer's panic hook would abort on such a contained panic too, so
//! this target lets panics located in the `pdb` crate's sources through to the containment
//! (printing where they were, for the campaign record) and aborts on every other panic.

use std::sync::Once;

static HOOK: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match info.location() {
            Some(l) if l.file().contains("/pdb-0.8.0/") => {
                eprintln!("ntheap-fuzz: contained pdb-crate panic at {}:{}", l.file(), l.line());
            }
            _ => abort(info),
        }));
    });
    ntheap_fuzz::pdb_bytes(data)
});
