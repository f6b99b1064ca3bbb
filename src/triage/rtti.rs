//! C++ type names of heap blocks from MSVC run-time type information (leak-triage.md §1).
//!
//! A polymorphic object starts with its vfptr; the word before a vftable points at the
//! vftable's `RTTICompleteObjectLocator` (COL), which names the class's `TypeDescriptor` and its
//! class hierarchy descriptor (§1.1, §1.2). [`Namer`] follows that chain from the first word of a
//! block and accepts it only when every rule of §1.4 holds (R1–R6); anything else gives no name,
//! never a guess. Corrupt or foreign RTTI is data, not an error: it only means "no name".
//!
//! Each distinct vftable is validated once (a dump with millions of objects has a few thousand
//! vftables), so the pass over the blocks is one read and one hash lookup per block whose first
//! word points into an image. A type id stands for one validated complete-object vftable: the
//! same decorated name in two images (each links its own copy of a template, §1.3) gives two
//! ids, which analyses group again by decorated name (§2.4). A class's secondary vftables
//! (COL offset ≠ 0) name its TypeDescriptor too, but never a block (R4). Display names follow
//! §1.5.

use std::collections::HashMap;

use msvc_demangler::{demangle, DemangleFlags};

use crate::heap::{BlockRefs, HeapReport};
use crate::limits::Cancel;
use crate::memory::AddressSpace;
use crate::target::Arch;
use crate::triage::image::{Image, Images};

/// Longest TypeDescriptor name read, NUL included (§1.4 R5, after Binary Ninja's bound).
pub const MAX_NAME: usize = 512;
/// Largest `numBaseClasses` accepted (§1.4 R6, this project's bound).
pub const MAX_BASE_CLASSES: u32 = 64;
/// The decorated name of `std::type_info`'s own TypeDescriptor (§1.3).
pub const TYPE_INFO_NAME: &str = ".?AVtype_info@@";

/// One C++ type, as one complete-object vftable of one image names it (a class defined in two
/// images, or named through two vftables, has one entry each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RttiType {
    /// The display name (§1.5): `contoso::net::Session`, `core::Pool<int,16>`; empty when the
    /// demangler rejects the decorated name.
    pub name: String,
    /// The TypeDescriptor's name as stored: `.?AVSession@net@contoso@@`.
    pub decorated: String,
    /// Index of the image in the ModuleList.
    pub module: usize,
    /// The image's file name.
    pub module_name: String,
    /// The complete object's vftable (the vfptr of the blocks it names).
    pub vftable: u64,
    /// Address of the TypeDescriptor.
    pub type_descriptor: u64,
    /// `.?AU`: declared `struct` (else `class`).
    pub is_struct: bool,
    /// Pointer width of the RTTI (the heap's).
    pub arch: Arch,
}

/// The display name of a decorated TypeDescriptor name (§1.5): demangle the TypeDescriptor's
/// symbol `??_R0` + `decorated[1..]` + `@8` without the class/struct keyword and drop the
/// trailing `` ::`RTTI Type Descriptor' ``. `None` when the demangler rejects it.
///
/// ```
/// use ntheap::triage::rtti::display_name;
/// assert_eq!(display_name(".?AVSession@net@contoso@@").as_deref(), Some("contoso::net::Session"));
/// assert_eq!(display_name(".?AV?$Pool@H$0BA@@core@@").as_deref(), Some("core::Pool<int,16>"));
/// ```
pub fn display_name(decorated: &str) -> Option<String> {
    let rest = decorated.strip_prefix('.')?;
    let symbol = format!("??_R0{rest}@8");
    let text = demangle(&symbol, DemangleFlags::NO_CLASS_TYPE).ok()?;
    let name = text.strip_suffix("::`RTTI Type Descriptor'")?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// A COL that passed R2 and R3: where its fields lead.
#[derive(Debug, Clone, Copy)]
struct Col {
    offset: u32,
    td: u64,
    chd: u64,
}

/// Validates RTTI chains and remembers every answer.
pub struct Namer<'a> {
    mem: &'a AddressSpace,
    images: &'a Images,
    /// (vftable, x64?) → type index.
    vftables: HashMap<(u64, bool), Option<u32>>,
    /// (TypeDescriptor, x64?) → its decorated name when R5 passes.
    descriptors: HashMap<(u64, bool), Option<String>>,
    /// (image, type_info vftable, x64?) → passes §1.3's self-check *for that image*: R5 wants
    /// the type_info vftable of the TypeDescriptor's own image, so another image's (valid for
    /// its own TypeDescriptors) must not pass.
    type_info: HashMap<(usize, u64, bool), bool>,
    types: Vec<RttiType>,
}

impl<'a> Namer<'a> {
    /// A namer over `mem` and the section tables of `images`.
    pub fn new(mem: &'a AddressSpace, images: &'a Images) -> Self {
        Namer {
            mem,
            images,
            vftables: HashMap::new(),
            descriptors: HashMap::new(),
            type_info: HashMap::new(),
            types: Vec::new(),
        }
    }

    /// Every type named so far, by type index.
    pub fn types(&self) -> &[RttiType] {
        &self.types
    }

    /// Give up the type table.
    pub fn into_types(self) -> Vec<RttiType> {
        self.types
    }

    /// Number of distinct vftable candidates validated so far.
    pub fn vftables_checked(&self) -> usize {
        self.vftables.len()
    }

    /// The type of the block whose user data starts at `user` (`size` bytes) in a heap of
    /// `arch`: R1–R6 of §1.4 on its first word.
    pub fn name_block(&mut self, user: u64, size: u64, arch: Arch) -> Option<u32> {
        if size < arch.ptr_size() {
            return None;
        }
        let v = self.mem.read_ptr(arch, user).ok()?;
        self.name_vfptr(v, arch)
    }

    /// The type whose complete-object vftable is `v` (§1.4 R1–R6 with `COL.offset == 0`).
    pub fn name_vfptr(&mut self, v: u64, arch: Arch) -> Option<u32> {
        // Cheap rejection first: most first words of heap blocks point into no image.
        let img = self.images.at(v)?;
        let key = (v, arch == Arch::X64);
        if let Some(&hit) = self.vftables.get(&key) {
            return hit;
        }
        let found = self.validate_vfptr(img, v, arch);
        self.vftables.insert(key, found);
        found
    }

    fn validate_vfptr(&mut self, img: &'a Image, v: u64, arch: Arch) -> Option<u32> {
        let p = arch.ptr_size();
        // R1: aligned, and [v − P, v + P) in one read-only section of the image.
        if v % p != 0 {
            return None;
        }
        img.read_only_section(v.checked_sub(p)?, 2 * p)?;
        // R2, R3: the COL at v[-1].
        let c = self.ptr(img, v - p, arch)?;
        let col = self.col(img, c, arch)?;
        // R4: the vfptr is the block's first word, so it must be the complete object's.
        if col.offset != 0 {
            return None;
        }
        // R5: the TypeDescriptor; R6: the class hierarchy descriptor.
        let decorated = self.descriptor(img, col.td, arch)?;
        self.hierarchy_names(img, col.chd, col.td, arch).then_some(())?;
        let ty = u32::try_from(self.types.len()).ok()?;
        self.types.push(RttiType {
            name: display_name(&decorated).unwrap_or_default(),
            is_struct: decorated.starts_with(".?AU"),
            decorated,
            module: img.module,
            module_name: img.name.clone(),
            vftable: v,
            type_descriptor: col.td,
            arch,
        });
        Some(ty)
    }

    /// R2 and R3: a COL at `c` inside `img`.
    fn col(&self, img: &Image, c: u64, arch: Arch) -> Option<Col> {
        let size = match arch {
            Arch::X86 => 0x14,
            Arch::X64 => 0x18,
        };
        if c % 4 != 0 {
            return None;
        }
        img.read_only_section(c, size)?;
        let b = self.images.read(self.mem, img, c, size)?;
        let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let (td, chd) = match arch {
            Arch::X64 => {
                if u(0) != 1 || u64::from(u(0x14)) != c.wrapping_sub(img.base) {
                    return None;
                }
                (img.base.wrapping_add(u64::from(u(0xc))), img.base.wrapping_add(u64::from(u(0x10))))
            }
            Arch::X86 => {
                if u(0) != 0 {
                    return None;
                }
                (u64::from(u(0xc)), u64::from(u(0x10)))
            }
        };
        (img.contains(td, 1) && img.contains(chd, 1)).then_some(Col { offset: u(4), td, chd })
    }

    /// R5: the TypeDescriptor at `td`; its decorated name when valid.
    fn descriptor(&mut self, img: &Image, td: u64, arch: Arch) -> Option<String> {
        let key = (td, arch == Arch::X64);
        if let Some(hit) = self.descriptors.get(&key) {
            return hit.clone();
        }
        let found = self.validate_descriptor(img, td, arch);
        self.descriptors.insert(key, found.clone());
        found
    }

    fn validate_descriptor(&mut self, img: &Image, td: u64, arch: Arch) -> Option<String> {
        let p = arch.ptr_size();
        if td % p != 0 {
            return None;
        }
        let name = self.name_at(img, td.checked_add(2 * p)?)?;
        if !(name.starts_with(b".?AV") || name.starts_with(b".?AU"))
            || !name.iter().all(|&b| (0x21..=0x7e).contains(&b))
        {
            return None;
        }
        let t = self.ptr(img, td, arch)?;
        if !self.is_type_info_vftable(img, t, arch) {
            return None;
        }
        String::from_utf8(name).ok()
    }

    /// §1.3 as R5 checks it: `t` is an aligned vftable in a read-only section of `img` whose
    /// `[-1]` COL (R2–R4, offset 0) names a TypeDescriptor `.?AVtype_info@@` whose `pVFTable` is
    /// `t` itself.
    fn is_type_info_vftable(&mut self, img: &Image, t: u64, arch: Arch) -> bool {
        let key = (img.module, t, arch == Arch::X64);
        if let Some(&hit) = self.type_info.get(&key) {
            return hit;
        }
        let ok = (|| {
            let p = arch.ptr_size();
            if t % p != 0 {
                return None;
            }
            img.read_only_section(t.checked_sub(p)?, 2 * p)?;
            let col = self.col(img, self.ptr(img, t - p, arch)?, arch)?;
            if col.offset != 0 {
                return None;
            }
            let name = self.name_at(img, col.td.checked_add(2 * p)?)?;
            (name == TYPE_INFO_NAME.as_bytes() && self.ptr(img, col.td, arch)? == t).then_some(())
        })()
        .is_some();
        self.type_info.insert(key, ok);
        ok
    }

    /// R6: the class hierarchy descriptor at `chd` lists `td` first.
    fn hierarchy_names(&self, img: &Image, chd: u64, td: u64, arch: Arch) -> bool {
        (|| {
            let b = self.images.read(self.mem, img, chd, 0x10)?;
            let u = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            let n = u(8);
            if u(0) != 0 || !(1..=MAX_BASE_CLASSES).contains(&n) {
                return None;
            }
            let resolve = |field: u32| match arch {
                Arch::X86 => u64::from(field),
                Arch::X64 => img.base.wrapping_add(u64::from(field)),
            };
            let array = resolve(u(0xc));
            if !img.contains(array, 4 * u64::from(n)) {
                return None;
            }
            let bcd = resolve(self.u32(img, array)?);
            if !img.contains(bcd, 0x1c) {
                return None;
            }
            (resolve(self.u32(img, bcd)?) == td).then_some(())
        })()
        .is_some()
    }

    fn u32(&self, img: &Image, addr: u64) -> Option<u32> {
        let b = self.images.read(self.mem, img, addr, 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn ptr(&self, img: &Image, addr: u64, arch: Arch) -> Option<u64> {
        let b = self.images.read(self.mem, img, addr, arch.ptr_size())?;
        let w = arch.ptrs(&b).next().unwrap_or(0);
        Some(w)
    }

    /// The NUL-terminated name at `addr` (NUL within [`MAX_NAME`] bytes, inside `img`), without
    /// its NUL. Read in 64-byte aligned pieces, so a name that ends before an uncaptured page is
    /// still read.
    fn name_at(&self, img: &Image, addr: u64) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < MAX_NAME {
            let piece = (64 - at % 64).min((MAX_NAME - out.len()) as u64);
            if !img.contains(at, piece) {
                return None;
            }
            let b = self.images.read(self.mem, img, at, piece)?;
            if let Some(nul) = b.iter().position(|&c| c == 0) {
                out.extend_from_slice(&b[..nul]);
                return Some(out);
            }
            out.extend_from_slice(&b);
            at += piece;
        }
        None
    }
}

/// What the type pass found.
#[derive(Debug, Clone, Default)]
pub struct TypeTable {
    /// One per type id.
    pub types: Vec<RttiType>,
    /// Per block row: the type id, −1 for rows that are not allocations or have no name.
    pub type_id: Vec<i32>,
    /// Blocks named.
    pub named: usize,
    /// Distinct first words that pointed into an image and were validated.
    pub vftables_checked: usize,
}

/// Name every allocation of `report` (block columns `b`, §1.4), reading memory from `mem` and
/// images from `images`.
///
/// Two steps: on every core, the first word of each allocation is read and kept only when it
/// points into an image (almost none do); then each distinct candidate vftable is validated
/// once, in row order, so type ids are numbered by first appearance.
pub fn name_blocks(mem: &AddressSpace, images: &Images, report: &HeapReport, b: &BlockRefs<'_>) -> TypeTable {
    name_blocks_until(mem, images, report, b, &Cancel::new())
}

/// [`name_blocks`], skipping the chunks of 64 Ki rows not yet started once `cancel` is set (the
/// caller then discards the table).
pub fn name_blocks_until(
    mem: &AddressSpace,
    images: &Images,
    report: &HeapReport,
    b: &BlockRefs<'_>,
    cancel: &Cancel,
) -> TypeTable {
    use rayon::prelude::*;

    let mut type_id = vec![-1i32; b.len()];
    // (first row, past last row, arch) of every heap.
    let spans: Vec<(usize, usize, Arch)> =
        report.heaps.iter().map(|h| (h.blocks.start.min(b.len()), h.blocks.end.min(b.len()), h.arch)).collect();
    const CHUNK: usize = 1 << 16;
    let candidates: Vec<(usize, u64, Arch)> = spans
        .iter()
        .flat_map(|&(s, e, arch)| (s..e).step_by(CHUNK).map(move |c| (c, (c + CHUNK).min(e), arch)))
        .collect::<Vec<_>>()
        .into_par_iter()
        .filter(|_| !cancel.is_set())
        .flat_map_iter(|(s, e, arch)| {
            (s..e).filter_map(move |row| {
                if !b.is_allocation[row] || b.user_size[row] < arch.ptr_size() {
                    return None;
                }
                let v = mem.read_ptr(arch, b.user_address[row]).ok()?;
                images.at(v).is_some().then_some((row, v, arch))
            })
        })
        .collect();
    let mut namer = Namer::new(mem, images);
    let mut named = 0;
    for (row, v, arch) in candidates {
        if let Some(t) = namer.name_vfptr(v, arch) {
            type_id[row] = t as i32;
            named += 1;
        }
    }
    let vftables_checked = namer.vftables_checked();
    TypeTable { types: namer.into_types(), type_id, named, vftables_checked }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of §1.5 (msvc-demangler 0.11.0, `NO_CLASS_TYPE`), transcribed from
    /// leak-triage.md.
    #[test]
    fn display_names_follow_the_table_of_section_1_5() {
        let table = [
            (".?AVWidget@@", "Widget"),
            (".?AUPoint3@@", "Point3"),
            (".?AVInspectionJob@vision@@", "vision::InspectionJob"),
            (".?AVSession@net@contoso@@", "contoso::net::Session"),
            (".?AV?$Pool@H$0BA@@core@@", "core::Pool<int,16>"),
            (".?AV?$vector@HV?$allocator@H@std@@@std@@", "std::vector<int,std::allocator<int> >"),
            (".?AV?$Cache@_K@core@@", "core::Cache<uint64_t>"),
        ];
        for (decorated, display) in table {
            assert_eq!(display_name(decorated).as_deref(), Some(display), "{decorated}");
        }
        assert_eq!(display_name("AVWidget@@"), None);
        assert_eq!(display_name(".?AV"), None);
    }
}
