//! Leak triage without `+ust` (leak-triage.md): name every allocation by its C++ type, say what
//! the others hold, and find the allocations nothing points to.
//!
//! Three passes over one heap walk, each computed once per dump and each independent of the
//! others except where said:
//!
//! 1. [`rtti::name_blocks`]: the type of every allocation whose first word is a vfptr whose RTTI
//!    chain passes §1.4 (R1–R6), read from the images of the ModuleList ([`image::Images`],
//!    optionally completed from local binaries).
//! 2. [`content::classify_blocks`]: the content class of every allocation (§3), `object` for the
//!    ones the type pass named.
//! 3. [`reach::mark`]: the mark phase of §2: roots, references, reachable allocations, how they
//!    were reached and how deep.
//!
//! Nothing here fails on what the dump holds: a corrupt vftable is a block without a name, an
//! uncaptured stack is a warning next to the result. There is no pyo3 here; the bindings are in
//! `src/python/triage.rs`.

pub mod content;
pub mod image;
pub mod reach;
pub mod rtti;

pub use content::{classify_blocks, classify_blocks_until, Committed, Content};
pub use image::Images;
pub use reach::{mark, mark_until, Reach, ReachedBy, RootKind};
pub use rtti::{name_blocks, name_blocks_until, RttiType, TypeTable};

use crate::heap::ColumnSpec;

/// The columns the triage passes add to `Dump.blocks()`, described like the walk's own
/// ([`crate::heap::BLOCK_SCHEMA`]). Each is computed on first access, once per dump.
pub const TRIAGE_COLUMNS: &[ColumnSpec] = &[
    ColumnSpec {
        name: "type_id",
        dtype: "int32",
        doc: "The allocation's C++ type in `Dump.types()` (MSVC RTTI, leak-triage.md §1.4), −1 when it has none \
              or the row is not an allocation. Computed on first access.",
    },
    ColumnSpec {
        name: "content",
        dtype: "uint8",
        doc: "What the allocation's first bytes hold (`content_name`: object, ascii, utf16, pointer_array, zero, \
              other, not_captured; leak-triage.md §3); 0 (none) for rows that are not allocations. Computed on \
              first access.",
    },
    ColumnSpec {
        name: "reachable",
        dtype: "bool",
        doc: "Something still points to the allocation: a root word or register references it, or a reachable \
              allocation does (leak-triage.md §2.3). False for rows that are not allocations. Computed on first \
              access (the mark phase).",
    },
    ColumnSpec {
        name: "reached_by",
        dtype: "uint8",
        doc: "How the allocation was reached (`reached_by_name`: global, stack, register, other, heap, none; \
              leak-triage.md §2.4).",
    },
    ColumnSpec {
        name: "direct_roots",
        dtype: "uint8",
        doc: "Bits of the root kinds that hold a word referencing the allocation: 1 global, 2 stack, 4 register, \
              8 other (leak-triage.md §2.2, §2.4); 0 when only other allocations do.",
    },
    ColumnSpec {
        name: "depth",
        dtype: "int32",
        doc: "Breadth-first distance from the roots: 0 when a root references the allocation, −1 when it is not \
              reached (leak-triage.md §2.4).",
    },
];
