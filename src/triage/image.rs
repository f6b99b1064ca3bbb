//! The loaded images (ModuleList) as RTTI needs them: each image's section table, and reads of
//! its bytes from the dump, or from a local copy of the binary when the dump lacks a page.
//!
//! leak-triage.md §1.4 ties every RTTI structure to one image `M` and to its read-only sections:
//! a section whose header has `IMAGE_SCN_MEM_READ` (0x40000000) and neither
//! `IMAGE_SCN_MEM_WRITE` (0x80000000) nor `IMAGE_SCN_MEM_EXECUTE` (0x20000000). The section table
//! is read from the image's header page in the dump (PE/COFF specification, "Section Table"):
//! `e_lfanew` at +0x3c, `NumberOfSections` at `nt + 6`, `SizeOfOptionalHeader` at `nt + 20`, the
//! table at `nt + 24 + SizeOfOptionalHeader`, 40 bytes a section (`VirtualSize` +8,
//! `VirtualAddress` +0xc, `SizeOfRawData` +0x10, `PointerToRawData` +0x14, `Characteristics`
//! +0x24).
//!
//! Folklore: a minidump made without full memory has no image pages at all, and a full one may
//! still miss a page of `.rdata` (paged out, or excluded by the writer). WinDbg then maps the
//! binary from its executable path (`.exepath`). [`Images::load`] does the same with a list of
//! local directories: a file whose name is the module's file name and whose `TimeDateStamp` and
//! `SizeOfImage` match the module record (what a symbol store keys images by) is mapped, laid
//! out by its section table, and relocated to the module's load address with its `.reloc`
//! table (`IMAGE_REL_BASED_HIGHLOW` 3 on PE32, `IMAGE_REL_BASED_DIR64` 10 on PE32+), because the
//! pointers RTTI follows (`vftable[-1]`, a TypeDescriptor's `pVFTable`, every x86 field) are
//! absolute addresses. A byte the dump holds always wins over the file; nothing is fetched from a
//! network.
//!
//! Every count read is bounded: at most [`MAX_SECTIONS`] sections, relocation blocks bounded by
//! the directory's size, images of at most [`MAX_IMAGE`] bytes.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::dump::{Dump, Module};
use crate::mapped::FileBytes;
use crate::memory::AddressSpace;
use crate::target::Arch;

/// More sections than the PE loader accepts (96) are taken as corruption.
pub const MAX_SECTIONS: usize = 96;
/// Largest image read from a local file.
pub const MAX_IMAGE: u64 = 1 << 30;

const SCN_MEM_EXECUTE: u32 = 0x2000_0000;
const SCN_MEM_READ: u32 = 0x4000_0000;
const SCN_MEM_WRITE: u32 = 0x8000_0000;

/// One section of a loaded image, as virtual addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    /// First byte (`base + VirtualAddress`).
    pub start: u64,
    /// One past the last byte (`VirtualSize`, or `SizeOfRawData` when that is 0).
    pub end: u64,
    /// `Characteristics`.
    pub characteristics: u32,
}

impl Section {
    /// Readable, neither writable nor executable (§1.4).
    pub fn is_read_only(&self) -> bool {
        let c = self.characteristics;
        c & SCN_MEM_READ != 0 && c & (SCN_MEM_WRITE | SCN_MEM_EXECUTE) == 0
    }
}

/// A binary mapped from a local directory, laid out and relocated as the loader would have.
#[derive(Debug)]
struct LocalImage {
    path: PathBuf,
    /// `SizeOfImage` bytes, mapped layout.
    bytes: Vec<u8>,
}

/// One module of the ModuleList with what RTTI needs of it.
#[derive(Debug)]
pub struct Image {
    /// Index in [`crate::dump::DumpInfo::modules`].
    pub module: usize,
    /// File name (`app.exe`).
    pub name: String,
    /// Load address.
    pub base: u64,
    /// One past the image's last byte (ModuleList `SizeOfImage`).
    pub end: u64,
    /// PE32 (x86) or PE32+ (x64), from the optional header's magic; `None` when no header page
    /// could be read.
    pub arch: Option<Arch>,
    /// The section table, sorted by address (empty when no header could be read).
    pub sections: Vec<Section>,
    local: Option<LocalImage>,
}

impl Image {
    /// Whether `[addr, addr + len)` lies inside the image.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base && addr.checked_add(len).is_some_and(|e| e <= self.end)
    }

    /// The read-only section that holds all of `[addr, addr + len)`, if any.
    pub fn read_only_section(&self, addr: u64, len: u64) -> Option<&Section> {
        let end = addr.checked_add(len)?;
        let i = self.sections.partition_point(|s| s.end <= addr);
        self.sections.get(i).filter(|s| s.start <= addr && end <= s.end && s.is_read_only())
    }

    /// The local binary this image's missing pages are read from, if one matched.
    pub fn local_path(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.path.as_path())
    }
}

/// Every image of a dump, sorted by base.
#[derive(Debug, Default)]
pub struct Images {
    images: Vec<Image>,
    /// Why an image has no section table, or why a local binary was not used.
    pub notes: Vec<String>,
}

impl Images {
    /// Read the section table of every module of `dump`. `image_path` is a list of local
    /// directories (separated by `;`) searched for binaries whose pages the dump lacks.
    pub fn load(dump: &Dump, image_path: Option<&str>) -> Images {
        let dirs: Vec<PathBuf> =
            image_path.unwrap_or("").split(';').map(str::trim).filter(|d| !d.is_empty()).map(PathBuf::from).collect();
        let mem = dump.memory();
        let mut out = Images::default();
        for (i, m) in dump.info().modules.iter().enumerate() {
            let mut img = Image {
                module: i,
                name: m.name().to_owned(),
                base: m.base,
                end: m.end(),
                arch: None,
                sections: Vec::new(),
                local: None,
            };
            if !dirs.is_empty() && mem.captured_in(m.base, u64::from(m.size)) < u64::from(m.size) {
                match find_local(&dirs, m) {
                    Ok(Some(local)) => img.local = Some(local),
                    Ok(None) => {}
                    Err(why) => out.notes.push(format!("{}: {why}", m.name())),
                }
            }
            let header = |off: u64, len: u64| -> Option<Vec<u8>> { img_read(mem, &img, m.base.checked_add(off)?, len) };
            match parse_headers(&header) {
                Ok((arch, sections)) => {
                    img.arch = Some(arch);
                    img.sections = sections
                        .iter()
                        .filter_map(|s| {
                            let start = m.base.checked_add(u64::from(s.rva))?;
                            let end = start.checked_add(u64::from(s.size))?.min(img.end);
                            (end > start).then_some(Section { start, end, characteristics: s.characteristics })
                        })
                        .collect();
                    img.sections.sort_by_key(|s| s.start);
                }
                Err(why) => out.notes.push(format!("{}: no section table: {why}", m.name())),
            }
            out.images.push(img);
        }
        out.images.sort_by_key(|i| i.base);
        out
    }

    /// The images, by base address.
    pub fn iter(&self) -> impl Iterator<Item = &Image> {
        self.images.iter()
    }

    /// The image that holds `addr`. O(log modules).
    pub fn at(&self, addr: u64) -> Option<&Image> {
        let i = self.images.partition_point(|m| m.base <= addr);
        let m = self.images.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }

    /// `len` bytes at `addr` inside `img`: from the dump when it holds them all, else from the
    /// image's local binary; `None` when neither does.
    pub fn read<'a>(&'a self, mem: &'a AddressSpace, img: &'a Image, addr: u64, len: u64) -> Option<Cow<'a, [u8]>> {
        if let Ok(b) = mem.read(addr, len) {
            return Some(b);
        }
        let l = img.local.as_ref()?;
        let off = usize::try_from(addr.checked_sub(img.base)?).ok()?;
        let end = off.checked_add(usize::try_from(len).ok()?)?;
        l.bytes.get(off..end).map(Cow::Borrowed)
    }
}

fn img_read(mem: &AddressSpace, img: &Image, addr: u64, len: u64) -> Option<Vec<u8>> {
    if let Ok(b) = mem.read(addr, len) {
        return Some(b.into_owned());
    }
    let l = img.local.as_ref()?;
    let off = usize::try_from(addr.checked_sub(img.base)?).ok()?;
    l.bytes.get(off..off.checked_add(usize::try_from(len).ok()?)?).map(<[u8]>::to_vec)
}

/// A section header's fields that matter here.
#[derive(Debug, Clone, Copy)]
struct RawSection {
    rva: u32,
    size: u32,
    raw_size: u32,
    raw_offset: u32,
    characteristics: u32,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// What the headers say: the image's pointer width and its sections. `read(offset, len)` reads
/// from the image's first bytes (the header page).
fn parse_headers(read: &dyn Fn(u64, u64) -> Option<Vec<u8>>) -> Result<(Arch, Vec<RawSection>), String> {
    let (arch, _, _, sections) = parse_pe(read)?;
    Ok((arch, sections))
}

/// (arch, optional header offset, optional header bytes, sections) of a PE image.
type PeHeaders = (Arch, u64, Vec<u8>, Vec<RawSection>);

fn parse_pe(read: &dyn Fn(u64, u64) -> Option<Vec<u8>>) -> Result<PeHeaders, String> {
    let dos = read(0, 0x40).ok_or("the header page is not captured")?;
    if dos.get(..2) != Some(b"MZ") {
        return Err("no MZ signature".into());
    }
    let nt = u64::from(u32_at(&dos, 0x3c).ok_or("short DOS header")?);
    if nt > 0x1000 {
        return Err(format!("e_lfanew {nt:#x} lies past the header page"));
    }
    let file_header = read(nt, 24).ok_or("IMAGE_NT_HEADERS not captured")?;
    if file_header.get(..4) != Some(b"PE\0\0") {
        return Err("no PE signature".into());
    }
    let count = usize::from(u16_at(&file_header, 6).ok_or("short file header")?);
    if count > MAX_SECTIONS {
        return Err(format!("{count} sections (more than {MAX_SECTIONS})"));
    }
    let opt_size = u64::from(u16_at(&file_header, 20).ok_or("short file header")?);
    let opt = read(nt + 24, opt_size.max(2)).ok_or("optional header not captured")?;
    let arch = match u16_at(&opt, 0) {
        Some(0x10b) => Arch::X86,
        Some(0x20b) => Arch::X64,
        other => return Err(format!("optional header magic {other:#x?} is neither PE32 nor PE32+")),
    };
    let table = read(nt + 24 + opt_size, 40 * count as u64).ok_or("section table not captured")?;
    let sections = (0..count)
        .map(|i| {
            let s = &table[40 * i..40 * i + 40];
            let (vsize, rva, raw_size, raw_offset) = (
                u32_at(s, 8).unwrap_or(0),
                u32_at(s, 12).unwrap_or(0),
                u32_at(s, 16).unwrap_or(0),
                u32_at(s, 20).unwrap_or(0),
            );
            RawSection {
                rva,
                size: if vsize == 0 { raw_size } else { vsize },
                raw_size,
                raw_offset,
                characteristics: u32_at(s, 36).unwrap_or(0),
            }
        })
        .collect();
    Ok((arch, nt + 24, opt, sections))
}

/// The binary for module `m` in one of `dirs`, laid out and relocated; `Ok(None)` when no
/// directory has a file of that name, `Err` when one has but it does not match.
fn find_local(dirs: &[PathBuf], m: &Module) -> Result<Option<LocalImage>, String> {
    let name = m.name();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let hit = entries.flatten().map(|e| e.path()).find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.eq_ignore_ascii_case(name)) && p.is_file()
        });
        let Some(path) = hit else { continue };
        let file = FileBytes::map(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        return match layout_file(&file, m) {
            Ok(bytes) => Ok(Some(LocalImage { path, bytes })),
            Err(why) => Err(format!("{}: {why}", path.display())),
        };
    }
    Ok(None)
}

/// Lay the file out as the loader maps it (headers, then each section's raw data at its RVA)
/// and apply its base relocations for the module's load address.
fn layout_file(file: &[u8], m: &Module) -> Result<Vec<u8>, String> {
    let read = |off: u64, len: u64| -> Option<Vec<u8>> {
        let o = usize::try_from(off).ok()?;
        file.get(o..o.checked_add(usize::try_from(len).ok()?)?).map(<[u8]>::to_vec)
    };
    let (arch, opt_off, opt, sections) = parse_pe(&read)?;
    let nt = opt_off - 24;
    let stamp = read(nt + 8, 4).and_then(|b| u32_at(&b, 0)).ok_or("short file header")?;
    let size_of_image = u64::from(u32_at(&opt, 0x38).ok_or("short optional header")?);
    if stamp != m.timestamp || size_of_image != u64::from(m.size) {
        return Err(format!(
            "TimeDateStamp {stamp:#x} / SizeOfImage {size_of_image:#x} differ from the module's {:#x} / {:#x}",
            m.timestamp, m.size
        ));
    }
    if size_of_image > MAX_IMAGE {
        return Err(format!("SizeOfImage {size_of_image:#x} exceeds {MAX_IMAGE:#x}"));
    }
    let (image_base, dirs_at) = match arch {
        Arch::X86 => (u64::from(u32_at(&opt, 28).ok_or("short optional header")?), 96),
        Arch::X64 => (u64_at(&opt, 24).ok_or("short optional header")?, 112),
    };
    let mut img = vec![0u8; size_of_image as usize];
    let size_of_headers = (u32_at(&opt, 60).unwrap_or(0) as usize).min(file.len()).min(img.len());
    img[..size_of_headers].copy_from_slice(&file[..size_of_headers]);
    for s in &sections {
        let take = s.raw_size.min(s.size) as usize;
        let (src, dst) = (s.raw_offset as usize, s.rva as usize);
        let (Some(src_end), Some(dst_end)) = (src.checked_add(take), dst.checked_add(take)) else { continue };
        if let (Some(from), Some(to)) = (file.get(src..src_end), img.get_mut(dst..dst_end)) {
            to.copy_from_slice(from);
        }
    }
    let delta = m.base.wrapping_sub(image_base);
    if delta != 0 {
        // DataDirectory[IMAGE_DIRECTORY_ENTRY_BASERELOC = 5].
        let reloc_rva = u32_at(&opt, dirs_at + 5 * 8).unwrap_or(0) as usize;
        let reloc_size = u32_at(&opt, dirs_at + 5 * 8 + 4).unwrap_or(0) as usize;
        if reloc_rva == 0 || reloc_size == 0 {
            return Err(format!("loaded at {:#x}, not its ImageBase {image_base:#x}, and has no .reloc", m.base));
        }
        let table =
            img.get(reloc_rva..reloc_rva.saturating_add(reloc_size)).ok_or(".reloc lies outside the image")?.to_vec();
        let mut at = 0usize;
        while at + 8 <= table.len() {
            let page = u32_at(&table, at).unwrap_or(0) as usize;
            let block = u32_at(&table, at + 4).unwrap_or(0) as usize;
            if block < 8 || at + block > table.len() {
                break;
            }
            for e in (at + 8..at + block).step_by(2) {
                let entry = u16_at(&table, e).unwrap_or(0);
                let o = page + usize::from(entry & 0xfff);
                match (entry >> 12, arch) {
                    (3, Arch::X86) => {
                        if let Some(w) = img.get_mut(o..o + 4) {
                            let v = u32::from_le_bytes([w[0], w[1], w[2], w[3]]).wrapping_add(delta as u32);
                            w.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    (10, Arch::X64) => {
                        if let Some(w) = img.get_mut(o..o + 8) {
                            let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8])).wrapping_add(delta);
                            w.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    _ => {}
                }
            }
            at += block;
        }
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_means_read_without_write_or_execute() {
        let s = |c| Section { start: 0, end: 1, characteristics: c };
        assert!(s(0x4000_0040).is_read_only()); // .rdata: initialized data, read
        assert!(!s(0xc000_0040).is_read_only()); // .data: read | write
        assert!(!s(0x6000_0020).is_read_only()); // .text: code, execute | read
        assert!(!s(0x0000_0040).is_read_only()); // not readable
    }
}
