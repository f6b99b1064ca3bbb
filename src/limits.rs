//! Resource bounds a caller can set, and cancellation of long work.
//!
//! ## Limits
//!
//! Every count read from a dump is bounded already (by the bytes the file holds, see
//! ARCHITECTURE.md); [`Limits`] lets a caller bound the work further, for a dump far larger than
//! the machine that reads it or for a service that must answer in bounded time. Each cap, when
//! hit, becomes a coverage row (`truncated:<cap>`, see docs/coverage.md): nothing is cut silently.
//!
//! | cap | default | granularity | what is cut |
//! |---|---|---|---|
//! | [`Limits::max_rows`] | 200 000 000 | per heap | the heaps that would start past the cap are not walked |
//! | [`Limits::max_list_nodes`] | 1 000 000 | per list | a list is followed for at most this many nodes |
//! | [`Limits::max_stack_depth`] | 32 | per stack | frames past this depth are dropped |
//! | [`Limits::max_symbol_file_bytes`] | 2 GiB | per PDB | a larger PDB is not read (exports name the frames) |
//!
//! `max_rows` is checked between heaps, not inside one (the block walkers' loops stay free of
//! it): a heap once started is walked whole. 32 frames is the most an `_RTL_STACK_TRACE_ENTRY`
//! holds, so the default keeps every frame.
//!
//! ## Cancellation
//!
//! A [`Cancel`] is a flag shared by the caller and the work. The work polls it at coarse
//! granularity (per heap, per committed range of a segment, per 64 Ki rows of a triage pass, per
//! dump of a scan) and, once set, stops and returns [`crate::Error::Interrupted`]. The Python
//! bindings set it when Ctrl-C arrives while Rust works without the GIL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Caps on the work of one dump (see the module doc for what each cuts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most block rows one walk produces (checked before each heap).
    pub max_rows: u64,
    /// Most nodes followed in one list (segment list, UCR list, virtual-block list, LFH zones).
    pub max_list_nodes: u64,
    /// Most frames kept per stack trace.
    pub max_stack_depth: u16,
    /// Largest PDB file read for symbols, in bytes.
    pub max_symbol_file_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 200_000_000,
            max_list_nodes: 1_000_000,
            max_stack_depth: crate::stacks::MAX_FRAMES,
            max_symbol_file_bytes: 2 << 30,
        }
    }
}

/// A cancellation flag shared by a caller and the work it started (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Cancel::default()
    }

    /// Ask the work to stop.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the work was asked to stop.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Interrupted)` naming `operation` once the flag is set.
    pub fn check(&self, operation: &str) -> Result<()> {
        if self.is_set() {
            Err(Error::Interrupted { operation: operation.to_owned() })
        } else {
            Ok(())
        }
    }
}

/// A test hook: when `NTHEAP_TEST_PAUSE_MS` is set (read once per process), wait that many
/// milliseconds, in 5 ms steps that end early once `cancel` is set. The walk calls it before each
/// heap, so that a test can interrupt a walk of a small dump at a known point. With the variable
/// unset this is one load of a cached value.
pub fn test_pause(cancel: &Cancel) {
    static PAUSE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let ms =
        *PAUSE.get_or_init(|| std::env::var("NTHEAP_TEST_PAUSE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    let mut left = ms;
    while left > 0 && !cancel.is_set() {
        let step = left.min(5);
        std::thread::sleep(std::time::Duration::from_millis(step));
        left -= step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_sees_the_flag() {
        let c = Cancel::new();
        let d = c.clone();
        assert!(d.check("x").is_ok());
        c.set();
        assert_eq!(d.check("walking").unwrap_err().kind(), "Interrupted");
        assert_eq!(Limits::default().max_stack_depth, 32);
    }
}
