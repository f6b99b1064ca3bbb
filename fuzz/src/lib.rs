//! cargo-fuzz targets for ntheap (see `fuzz/README.md`). The target bodies are in
//! `targets.rs`, which the main test suite also runs (`tests/fuzz_corpora.rs`).

use std::alloc::{GlobalAlloc, Layout, System};

#[allow(missing_docs)]
mod targets;
pub use targets::*;

/// Largest single allocation a target may make. libFuzzer's `-malloc_limit_mb` needs a
/// sanitizer's malloc hooks, and the campaign runs without a sanitizer (the crate's only
/// `unsafe` is the file mapping, which the targets do not use), so the cap is enforced here:
/// an allocation above it aborts, and libFuzzer records the input as a crash. Inputs are at most
/// a few hundred KiB; nothing derived from one may need 64 MiB at once.
pub const MAX_ALLOCATION: usize = 64 << 20;

struct Capped;

// Safety: forwards to the system allocator unchanged; only refuses (aborts on) oversized
// requests before they reach it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No allocation may happen here (the message is static, stderr is unbuffered).
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"ntheap-fuzz: allocation above MAX_ALLOCATION\n");
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
