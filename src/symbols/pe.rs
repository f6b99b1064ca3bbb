//! Export names from the PE image of a module, as captured in the dump.
//!
//! A full-memory dump holds each loaded image's mapped pages, so the export directory can be
//! read from memory: `IMAGE_DOS_HEADER.e_lfanew` → `IMAGE_NT_HEADERS` → the optional header
//! (`PE32` magic 0x10b or `PE32+` magic 0x20b, decided by the image, not by the dump: a WOW64
//! process has both) → `DataDirectory[IMAGE_DIRECTORY_ENTRY_EXPORT]` → `IMAGE_EXPORT_DIRECTORY`
//! → `AddressOfFunctions`, `AddressOfNames`, `AddressOfNameOrdinals` (winnt.h, PE/COFF
//! specification "The .edata Section").
//!
//! Everything read is bounded before use: RVAs must lie inside the image (the smaller of the
//! optional header's `SizeOfImage` and the module list's size), `NumberOfFunctions` and
//! `NumberOfNames` may not exceed [`MAX_EXPORTS`] (ordinals are 16-bit), names are read up to
//! [`MAX_NAME`] bytes. A missing page or an impossible value makes the whole table unavailable
//! (the caller falls back to `module+offset`), except for a single unreadable or invalid name,
//! which is skipped. Forwarders (function RVAs that point back inside the export directory, to a
//! `"DLL.Name"` string) and unnamed (ordinal-only) exports are skipped.

use crate::memory::AddressSpace;

/// Upper bound on `NumberOfFunctions` and `NumberOfNames`.
pub const MAX_EXPORTS: u32 = 0x1_0000;
/// Longest export name read.
pub const MAX_NAME: usize = 512;

const IMAGE_DOS_SIGNATURE: u16 = 0x5a4d; // "MZ"
const IMAGE_NT_SIGNATURE: u32 = 0x0000_4550; // "PE\0\0"
const PE32_MAGIC: u16 = 0x10b;
const PE32_PLUS_MAGIC: u16 = 0x20b;

/// Why an image's exports cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError(pub String);

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(s: impl Into<String>) -> Result<T, ExportError> {
    Err(ExportError(s.into()))
}

/// Bounds-checked reads of one image in the dump.
struct Image<'a> {
    mem: &'a AddressSpace,
    base: u64,
    limit: u64,
}

impl Image<'_> {
    fn check(&self, rva: u64, len: u64, what: &str) -> Result<u64, ExportError> {
        // The base comes from the module list: an image at the top of the address space wraps.
        match (rva.checked_add(len), self.base.checked_add(rva)) {
            (Some(end), Some(at)) if end <= self.limit => Ok(at),
            _ => err(format!("{what} at RVA {rva:#x} (+{len:#x}) lies outside the image ({:#x} bytes)", self.limit)),
        }
    }

    fn bytes(&self, rva: u64, len: u64, what: &str) -> Result<std::borrow::Cow<'_, [u8]>, ExportError> {
        let at = self.check(rva, len, what)?;
        self.mem.read(at, len).or_else(|_| err(format!("{what} at {at:#x} is not captured in the dump")))
    }

    fn u16(&self, rva: u64, what: &str) -> Result<u16, ExportError> {
        let b = self.bytes(rva, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, rva: u64, what: &str) -> Result<u32, ExportError> {
        let b = self.bytes(rva, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated name of printable ASCII, across adjacent captured ranges; `None` when not
    /// captured, too long, empty or not printable.
    fn name(&self, rva: u64) -> Option<String> {
        let max = (MAX_NAME as u64).min(self.limit.checked_sub(rva)?) as usize;
        let mut out = Vec::new();
        let mut at = self.base.checked_add(rva)?;
        while out.len() < max {
            let slice = self.mem.contiguous_at(at)?;
            let take = &slice[..slice.len().min(max - out.len())];
            if let Some(nul) = take.iter().position(|&b| b == 0) {
                out.extend_from_slice(&take[..nul]);
                let printable = !out.is_empty() && out.iter().all(|&b| (0x21..0x7f).contains(&b));
                return printable.then(|| String::from_utf8(out).ok()).flatten();
            }
            out.extend_from_slice(take);
            at = at.checked_add(take.len() as u64)?;
        }
        None
    }
}

/// What [`read_exports`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exports {
    /// (function RVA, name) for every named, non-forwarded export that could be read.
    pub symbols: Vec<(u32, String)>,
    /// Names skipped because they were unreadable, not captured or invalid.
    pub bad_names: u32,
    /// Forwarders skipped.
    pub forwarders: u32,
}

/// Read the named exports of the image at `base`. `module_size` is the size the module list
/// gives (0 if unknown).
pub fn read_exports(mem: &AddressSpace, base: u64, module_size: u64) -> Result<Exports, ExportError> {
    let mut img = Image { mem, base, limit: if module_size == 0 { u64::from(u32::MAX) } else { module_size } };
    if img.u16(0, "IMAGE_DOS_HEADER")? != IMAGE_DOS_SIGNATURE {
        return err(format!("no MZ signature at {base:#x}"));
    }
    let nt = u64::from(img.u32(0x3c, "e_lfanew")?);
    if img.u32(nt, "IMAGE_NT_HEADERS")? != IMAGE_NT_SIGNATURE {
        return err(format!("no PE signature at e_lfanew {nt:#x}"));
    }
    let size_of_optional_header = u64::from(img.u16(nt + 4 + 16, "SizeOfOptionalHeader")?);
    let opt = nt + 24;
    // (NumberOfRvaAndSizes, DataDirectory) offsets in the optional header; SizeOfImage is at
    // +0x38 in both forms.
    let (count_off, dir_off) = match img.u16(opt, "optional header magic")? {
        PE32_MAGIC => (92, 96),
        PE32_PLUS_MAGIC => (108, 112),
        other => return err(format!("optional header magic {other:#x} is neither PE32 nor PE32+")),
    };
    if size_of_optional_header < dir_off + 8 || img.u32(opt + count_off, "NumberOfRvaAndSizes")? == 0 {
        return err("the optional header has no export data directory");
    }
    let size_of_image = u64::from(img.u32(opt + 0x38, "SizeOfImage")?);
    if size_of_image != 0 {
        img.limit = img.limit.min(size_of_image);
    }
    let dir_rva = u64::from(img.u32(opt + dir_off, "export data directory")?);
    let dir_size = u64::from(img.u32(opt + dir_off + 4, "export data directory")?);
    if dir_rva == 0 {
        return err("the image has no export directory");
    }
    let d = img.bytes(dir_rva, 40, "IMAGE_EXPORT_DIRECTORY")?;
    let f = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    let (n_functions, n_names) = (f(20), f(24));
    let (functions_rva, names_rva, ordinals_rva) = (u64::from(f(28)), u64::from(f(32)), u64::from(f(36)));
    if n_functions > MAX_EXPORTS || n_names > MAX_EXPORTS {
        return err(format!("NumberOfFunctions {n_functions:#x} / NumberOfNames {n_names:#x} exceed {MAX_EXPORTS:#x}"));
    }
    let (n_functions, n_names) = (u64::from(n_functions), u64::from(n_names));
    let functions = img.bytes(functions_rva, n_functions * 4, "AddressOfFunctions")?;
    let names = img.bytes(names_rva, n_names * 4, "AddressOfNames")?;
    let ordinals = img.bytes(ordinals_rva, n_names * 2, "AddressOfNameOrdinals")?;
    let forwarder_range = dir_rva..dir_rva.saturating_add(dir_size);
    let mut out = Exports::default();
    for i in 0..n_names as usize {
        let ordinal = usize::from(u16::from_le_bytes([ordinals[2 * i], ordinals[2 * i + 1]]));
        let Some(fb) = functions.get(4 * ordinal..4 * ordinal + 4) else {
            out.bad_names += 1;
            continue;
        };
        let function = u32::from_le_bytes([fb[0], fb[1], fb[2], fb[3]]);
        if forwarder_range.contains(&u64::from(function)) {
            out.forwarders += 1;
            continue;
        }
        if function == 0 || u64::from(function) >= img.limit {
            out.bad_names += 1;
            continue;
        }
        let name_rva = u32::from_le_bytes([names[4 * i], names[4 * i + 1], names[4 * i + 2], names[4 * i + 3]]);
        match img.name(u64::from(name_rva)) {
            Some(name) => out.symbols.push((function, name)),
            None => out.bad_names += 1,
        }
    }
    Ok(out)
}

/// The pointer width of the image mapped at `base`, from its optional header's magic (PE32 is
/// x86, PE32+ is x64); `None` when the headers are not captured or not a PE image.
pub fn image_arch(mem: &AddressSpace, base: u64) -> Option<crate::target::Arch> {
    if mem.read_u16(base).ok()? != IMAGE_DOS_SIGNATURE {
        return None;
    }
    let nt = base.checked_add(u64::from(mem.read_u32(base.checked_add(0x3c)?).ok()?))?;
    if mem.read_u32(nt).ok()? != IMAGE_NT_SIGNATURE {
        return None;
    }
    match mem.read_u16(nt.checked_add(24)?).ok()? {
        PE32_MAGIC => Some(crate::target::Arch::X86),
        PE32_PLUS_MAGIC => Some(crate::target::Arch::X64),
        _ => None,
    }
}
