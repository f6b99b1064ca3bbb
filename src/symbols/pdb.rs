//! Public symbols from a PDB file, accepted only when it is the module's own PDB.
//!
//! ## Matching a PDB to a module
//!
//! The module's CodeView (`RSDS`) record in the dump names its PDB by GUID and age
//! ([`crate::dump::Module::pdb_guid`], [`crate::dump::Module::pdb_age`]). A PDB file is used only
//! when both match:
//!
//! * the GUID is read from the PDB information stream (stream 1, `PDBInformation::guid`);
//! * the age is read from the DBI stream header (stream 3, `DebugInformation::age`). The linker
//!   writes the same age there as in the image's CodeView record, whereas the information
//!   stream's age is bumped by tools that rewrite the PDB later (e.g. when a symbol server
//!   indexes sources), so it may be higher than the image's. This follows the `pdb` crate's own
//!   guidance and LLVM's PDB format notes. Old PDBs whose DBI age is 0 ("not recorded") are
//!   compared by the information stream's age instead.
//!
//! A PDB with a matching GUID but another age is a different build of the same project and is
//! rejected, as the debugger does without `.symopt+0x40` (SYMOPT_LOAD_ANYTHING).
//!
//! ## Which symbols
//!
//! The public symbols (`S_PUB32` in the global symbol stream) are what every PDB has, including
//! the stripped ones a symbol server hands out. A full (private) PDB also holds a procedure
//! record (`S_GPROC32` / `S_LPROC32`) per function in each compiland's module stream, which names
//! `static` functions too; the debugger shows those names when it has them. So procedures are
//! added to the publics, and at an RVA that has both the public symbol's name wins. Example
//! (`tests/pdb/tiny.pdb`): `helper_scale` is `static`; with publics only a return address 9 bytes
//! into it would read `tiny!tiny_alloc+0x29` (the public before it), with procedures it reads
//! `tiny!helper_scale+0x9`.
//!
//! ## Names
//!
//! Public symbols carry decorated names. They are shown
//! undecorated, as the debugger does by default: C++ names through `msvc-demangler` keeping
//! `[scope::]name` only (`?HCancelWait@@YAHXZ` → `HCancelWait`); on x86 the C decorations
//! `_name` (cdecl), `_name@N` (stdcall) and `@name@N` (fastcall) lose their marks. On x64 a
//! leading underscore is part of the name and is kept.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use pdb::FallibleIterator;

/// Upper bound on symbols (publics and procedures) taken from one PDB.
pub const MAX_PUBLICS: usize = 1 << 22;

/// What a matching PDB gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publics {
    /// (RVA, undecorated name) of each public symbol that maps into the image, then of each
    /// procedure whose RVA no public symbol has.
    pub symbols: Vec<(u32, String)>,
    /// How many of `symbols` are public symbols (the rest are procedures).
    pub publics: usize,
    /// Whether the PDB is for x86 (names were stripped of C decorations).
    pub x86: bool,
}

/// The identity of a PDB: GUID (32 upper-case hex digits) and the age used for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbIdentity {
    /// From the information stream.
    pub guid: String,
    /// From the DBI stream (the information stream's when the DBI age is 0).
    pub age: u32,
}

fn guid_hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Read the GUID and age of the PDB at `path`.
pub fn identity(path: &Path) -> Result<PdbIdentity, String> {
    guarded(path, identity_of)
}

fn identity_of<'s, S: pdb::Source<'s> + 's>(pdb: &mut pdb::PDB<'s, S>) -> Result<PdbIdentity, String> {
    let info = pdb.pdb_information().map_err(|e| format!("information stream: {e}"))?;
    // `Uuid::from_fields` stores the fields big-endian, so its bytes in order are the Data1..Data4
    // hex digits as written in symbol-store paths.
    let guid = guid_hex(info.guid.as_bytes());
    let dbi_age = pdb.debug_information().ok().and_then(|d| d.age());
    Ok(PdbIdentity { guid, age: dbi_age.unwrap_or(info.age) })
}

fn guarded<'s, T>(path: &Path, f: impl FnOnce(&mut pdb::PDB<'s, File>) -> Result<T, String>) -> Result<T, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    guarded_source(file, f)
}

fn guarded_source<'s, S: pdb::Source<'s> + 's, T>(
    source: S,
    f: impl FnOnce(&mut pdb::PDB<'s, S>) -> Result<T, String>,
) -> Result<T, String> {
    // The pdb crate parses untrusted bytes; a panic in it must not take the analysis down.
    catch_unwind(AssertUnwindSafe(|| {
        let mut pdb = pdb::PDB::open(source).map_err(|e| format!("not a PDB: {e}"))?;
        f(&mut pdb)
    }))
    .unwrap_or_else(|_| Err("the PDB reader failed on this file".to_owned()))
}

/// The identity and symbols of a PDB held in memory, read as [`load_publics`] reads a file but
/// without matching it to a module (the fuzz targets parse PDB bytes this way).
pub fn parse_bytes(bytes: Vec<u8>) -> Result<(PdbIdentity, Publics), String> {
    guarded_source(std::io::Cursor::new(bytes), |pdb| Ok((identity_of(pdb)?, publics_of(pdb)?)))
}

/// The public symbols of the PDB at `path`, if its GUID and age are `guid` and `age`.
pub fn load_publics(path: &Path, guid: &str, age: u32) -> Result<Publics, String> {
    guarded(path, |pdb| {
        let id = identity_of(pdb)?;
        if !id.guid.eq_ignore_ascii_case(guid) || id.age != age {
            return Err(format!(
                "GUID {} age {:#x} does not match the module's GUID {} age {:#x}",
                id.guid,
                id.age,
                guid.to_ascii_uppercase(),
                age
            ));
        }
        publics_of(pdb)
    })
}

/// The public symbols (and procedures) of an open PDB.
fn publics_of<'s, S: pdb::Source<'s> + 's>(pdb: &mut pdb::PDB<'s, S>) -> Result<Publics, String> {
    let x86 =
        pdb.debug_information().ok().and_then(|d| d.machine_type().ok()).is_some_and(|m| m == pdb::MachineType::X86);
    let map = pdb.address_map().map_err(|e| format!("address map: {e}"))?;
    let globals = pdb.global_symbols().map_err(|e| format!("global symbols: {e}"))?;
    let mut it = globals.iter();
    let mut symbols = Vec::new();
    while let Some(sym) = it.next().map_err(|e| format!("global symbols: {e}"))? {
        if let Ok(pdb::SymbolData::Public(p)) = sym.parse() {
            if let Some(rva) = p.offset.to_rva(&map) {
                symbols.push((rva.0, undecorate(&p.name.to_string(), x86)));
                if symbols.len() >= MAX_PUBLICS {
                    break;
                }
            }
        }
    }
    let publics = symbols.len();
    // Procedures are an addition: a PDB whose module streams cannot be read still gives its
    // publics.
    let mut public_rvas: Vec<u32> = symbols.iter().map(|s| s.0).collect();
    public_rvas.sort_unstable();
    let _ = procedures(pdb, &map, &public_rvas, &mut symbols);
    Ok(Publics { symbols, publics, x86 })
}

/// Append the procedures of every module stream whose RVA is not in `public_rvas` (sorted).
fn procedures<'s, S: pdb::Source<'s> + 's>(
    pdb: &mut pdb::PDB<'s, S>,
    map: &pdb::AddressMap<'_>,
    public_rvas: &[u32],
    out: &mut Vec<(u32, String)>,
) -> pdb::Result<()> {
    let dbi = pdb.debug_information()?;
    let mut modules = dbi.modules()?;
    while let Some(module) = modules.next()? {
        let Some(info) = pdb.module_info(&module)? else { continue };
        let mut syms = info.symbols()?;
        while let Some(sym) = syms.next()? {
            if let Ok(pdb::SymbolData::Procedure(p)) = sym.parse() {
                let Some(rva) = p.offset.to_rva(map) else { continue };
                if public_rvas.binary_search(&rva.0).is_err() {
                    out.push((rva.0, p.name.to_string().into_owned()));
                    if out.len() >= MAX_PUBLICS {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}

/// The name the debugger shows for a decorated public symbol name (see the module doc).
pub fn undecorate(name: &str, x86: bool) -> String {
    if name.starts_with('?') {
        if name.len() <= 4096 {
            if let Ok(s) = msvc_demangler::demangle(name, msvc_demangler::DemangleFlags::NAME_ONLY) {
                if !s.is_empty() {
                    return s;
                }
            }
        }
        return name.to_owned();
    }
    if x86 {
        if let Some(rest) = name.strip_prefix('_').or_else(|| name.strip_prefix('@')) {
            let base = match rest.rsplit_once('@') {
                Some((b, n)) if !b.is_empty() && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
                _ => rest,
            };
            if !base.is_empty() {
                return base.to_owned();
            }
        }
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecorates_like_the_debugger() {
        assert_eq!(undecorate("?HCancelWait@@YAHXZ", false), "HCancelWait");
        assert_eq!(undecorate("?Run@Worker@ns@@QEAAXXZ", false), "ns::Worker::Run");
        assert_eq!(undecorate("_HXmalloc", true), "HXmalloc");
        assert_eq!(undecorate("_RtlAllocateHeap@12", true), "RtlAllocateHeap");
        assert_eq!(undecorate("@FastCall@8", true), "FastCall");
        assert_eq!(undecorate("_HXmalloc", false), "_HXmalloc");
        assert_eq!(undecorate("_", true), "_");
        assert_eq!(undecorate("?not valid", false), "?not valid");
        assert_eq!(undecorate("_a@b@4", true), "a@b");
    }

    #[test]
    fn missing_or_foreign_files_are_rejected_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pdb");
        assert!(load_publics(&p, "00", 1).unwrap_err().starts_with("cannot open"));
        std::fs::write(&p, b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\0\0\0garbage").unwrap();
        assert!(load_publics(&p, "00", 1).is_err());
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        assert!(identity(&p).is_err());
    }
}
