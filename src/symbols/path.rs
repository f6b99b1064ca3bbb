//! The debugger symbol path (`_NT_SYMBOL_PATH` syntax), reduced to local directories.
//!
//! Elements are separated by `;`. Each one is one of:
//!
//! | Element | Local directories taken |
//! |---|---|
//! | `srv*DIR` | `DIR` (a symbol store) |
//! | `srv*DIR*https://server/symbols` | `DIR`; the server is **never** contacted |
//! | `srv*DIR1*DIR2*https://…` | `DIR1`, `DIR2` (chained downstream stores) |
//! | `symsrv*symsrv.dll*DIR*https://…` | `DIR` (the DLL name is skipped) |
//! | `cache*DIR` | `DIR` |
//! | `DIR` | `DIR` |
//!
//! Prefixes are case-insensitive (`SRV*` is common). `srv*https://…` alone names no local
//! directory (the debugger would use its own default downstream store, which is not knowable
//! here) and contributes nothing, as does a bare URL.
//!
//! In each directory a PDB is looked for in the symbol-store layout,
//! `DIR/name.pdb/GUIDAGE/name.pdb` (GUID as 32 upper-case hex digits, age in upper-case hex
//! without leading zeros, e.g. `ntdll.pdb/1EB9FACB04EA273BB4BA52C8D3E6B7E71/ntdll.pdb`), then flat
//! as `DIR/name.pdb`. Stores written on Windows are case-insensitive; on a case-sensitive file
//! system the name is also tried in lower case and the GUID directory in lower case.
//! Compressed (`name.pd_`) and pointer (`file.ptr`) store entries are not read.

use std::path::{Path, PathBuf};

fn is_url(s: &str) -> bool {
    s.contains("://")
}

fn clean(s: &str) -> &str {
    s.trim().trim_matches('"').trim()
}

/// The local directories of a symbol path, in search order, without duplicates.
pub fn parse_symbol_path(path: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |d: &str| {
        let d = clean(d);
        if !d.is_empty() && !is_url(d) {
            let p = PathBuf::from(d);
            if !out.contains(&p) {
                out.push(p);
            }
        }
    };
    for element in path.split(';') {
        let element = clean(element);
        if element.is_empty() {
            continue;
        }
        let parts: Vec<&str> = element.split('*').collect();
        let head = parts[0].to_ascii_lowercase();
        match head.as_str() {
            "srv" | "cache" if parts.len() > 1 => parts[1..].iter().for_each(|d| push(d)),
            "symsrv" if parts.len() > 2 => parts[2..].iter().for_each(|d| push(d)),
            "srv" | "cache" | "symsrv" => {}
            _ if parts.len() == 1 => push(element),
            // An unknown `x*y` form: take its non-URL parts, as for srv.
            _ => parts.iter().for_each(|d| push(d)),
        }
    }
    out
}

/// The file-name part of a CodeView PDB name, which may be a full build path
/// (`C:\build\Release\halcon.pdb` → `halcon.pdb`).
pub fn pdb_file_name(pdb_name: &str) -> &str {
    pdb_name.rsplit(['\\', '/']).next().unwrap_or(pdb_name)
}

/// The symbol-store directory name for a GUID (32 hex digits) and age: `GUID` + age in hex.
pub fn guid_age_dir(guid: &str, age: u32) -> String {
    format!("{}{:X}", guid.to_ascii_uppercase(), age)
}

/// Candidate PDB files for `pdb_name` with `guid`/`age` in `dirs`, in search order: per
/// directory the store layout, then the flat file; each also with the name in lower case.
pub fn candidates(dirs: &[PathBuf], pdb_name: &str, guid: &str, age: u32) -> Vec<PathBuf> {
    let name = pdb_file_name(pdb_name);
    if name.is_empty() || name == "." || name == ".." {
        return Vec::new();
    }
    let lower = name.to_ascii_lowercase();
    let names: Vec<&str> = if lower == name { vec![name] } else { vec![name, &lower] };
    let ga = guid_age_dir(guid, age);
    let ga_lower = ga.to_ascii_lowercase();
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for d in dirs {
        for n in &names {
            push(d.join(n).join(&ga).join(n));
            push(d.join(n).join(&ga_lower).join(n));
        }
        for n in &names {
            push(d.join(n));
        }
    }
    out
}

/// The candidates of [`candidates`] that exist as files.
pub fn existing_candidates(dirs: &[PathBuf], pdb_name: &str, guid: &str, age: u32) -> Vec<PathBuf> {
    candidates(dirs, pdb_name, guid, age).into_iter().filter(|p| Path::is_file(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn parses_every_element_form() {
        let p = "srv*C:\\sym*https://msdl.microsoft.com/download/symbols; SRV*/tmp/a*/tmp/b*http://x/y ;\
                 cache*/var/cache ;/plain/dir;symsrv*symsrv.dll*/store*https://s;srv*https://only;;http://bare;cache*";
        assert_eq!(parse_symbol_path(p), dirs(&["C:\\sym", "/tmp/a", "/tmp/b", "/var/cache", "/plain/dir", "/store"]));
        assert!(parse_symbol_path("").is_empty());
        assert_eq!(parse_symbol_path("\"/quoted dir\";/plain/dir;/plain/dir"), dirs(&["/quoted dir", "/plain/dir"]));
    }

    #[test]
    fn store_then_flat_layout() {
        let c = candidates(&dirs(&["/s"]), "C:\\build\\Release\\Halcon.pdb", "0a1b2c3d4e5f4061728394a5b6c7d8e9", 0x1a);
        assert_eq!(
            c,
            dirs(&[
                "/s/Halcon.pdb/0A1B2C3D4E5F4061728394A5B6C7D8E91A/Halcon.pdb",
                "/s/Halcon.pdb/0a1b2c3d4e5f4061728394a5b6c7d8e91a/Halcon.pdb",
                "/s/halcon.pdb/0A1B2C3D4E5F4061728394A5B6C7D8E91A/halcon.pdb",
                "/s/halcon.pdb/0a1b2c3d4e5f4061728394a5b6c7d8e91a/halcon.pdb",
                "/s/Halcon.pdb",
                "/s/halcon.pdb",
            ])
        );
        assert!(candidates(&dirs(&["/s"]), "C:\\dir\\", "00", 1).is_empty());
        assert_eq!(pdb_file_name("a/b\\c.pdb"), "c.pdb");
        assert_eq!(guid_age_dir("ab", 1), "AB1");
    }
}
