#![no_main]
//! PDB bytes through the `pdb` crate, as the symbolizer reads a PDB.
//!
//! `ntheap::symbols::pdb` contains a panic inside the `pdb` crate (`catch_unwind`): the file is
//! then "not a PDB ntheap can read", which is the intended handling of a dependency that
//! panics on hostile bytes. libFuzzer's panic hook would abort on such a contained panic too, so
//! this target lets panics located in the `pdb` crate's sources through to the containment and
//! aborts on every other panic. The first input that panics at each `pdb` source line is saved
//! as `fuzz/artifacts/pdb/contained-FILE-LINE` for the campaign record and the regression
//! inputs (`tests/fixtures/fuzz/pdb/`).

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Mutex, Once};

static HOOK: Once = Once::new();
static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| match info.location() {
            Some(l) if l.file().contains("/pdb-0.8.0/") => {
                let file = l.file().rsplit('/').next().unwrap_or("pdb");
                let key = format!("contained-{}-{}", file.trim_end_matches(".rs"), l.line());
                let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
                if seen.get_or_insert_with(HashSet::new).insert(key.clone()) {
                    eprintln!("ntheap-fuzz: contained pdb-crate panic at {}:{}", l.file(), l.line());
                    let _ = INPUT.with(|i| std::fs::write(format!("fuzz/artifacts/pdb/{key}"), &*i.borrow()));
                }
            }
            _ => abort(info),
        }));
    });
    INPUT.with(|i| {
        let mut i = i.borrow_mut();
        i.clear();
        i.extend_from_slice(data);
    });
    ntheap_fuzz::pdb_bytes(data)
});
