//! Symbolization of code addresses: `module!symbol+0xoffset`, as the debugger prints frames.
//!
//! For each frame the best available source wins:
//!
//! 1. **PDB public symbols** ([`FrameSource::Pdb`]), when a symbol path is given (the argument,
//!    else `_NT_SYMBOL_PATH`; [`path`]) and a PDB whose GUID and age match the module's CodeView
//!    record is found in one of its local directories ([`pdb`]). The network is never used.
//! 2. **The module's exports** ([`FrameSource::Export`]), read from the PE image captured in the
//!    dump ([`pe`]): `halcon!HXmalloc+0x8b`.
//! 3. **Module and offset** ([`FrameSource::Module`]): `halcon+0x1234`.
//! 4. **Nothing** ([`FrameSource::None`]): the address is in no loaded module, `0x1f2e3d4c5b6a`,
//!    flagged `jit_or_unknown` — typically JIT-compiled managed code. When a CLR is loaded
//!    ([`Symbolizer::clr_module`]) SOS's `!ip2md` can name such frames.
//!
//! Symbols resolve to the nearest preceding symbol of the frame's module. Module names are the
//! debugger's: the image file name without its extension, other dots replaced by `_`
//! (`halcon.dll` → `halcon`, `System.Private.CoreLib.dll` → `System_Private_CoreLib`).
//!
//! Module lookup is a binary search over modules sorted by base. Each module's table (PDB or
//! export) is built on the first frame that falls in it and kept, behind a [`OnceLock`], so a
//! [`Symbolizer`] can be shared by threads and symbolizing N frames costs O(N log n) plus one
//! table per module actually hit.

pub mod path;
pub mod pdb;
pub mod pe;

use std::path::PathBuf;
use std::sync::OnceLock;

use rayon::prelude::*;

use crate::dump::{Dump, Module};
use crate::memory::AddressSpace;
use crate::stacks::StackTable;

/// The environment variable the debuggers read the symbol path from.
pub const SYMBOL_PATH_ENV: &str = "_NT_SYMBOL_PATH";

/// File names of the CLR runtimes whose presence means "unknown frames may be JIT code".
pub const CLR_MODULES: [&str; 3] = ["clr.dll", "coreclr.dll", "mscorwks.dll"];

/// Where a frame's text came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FrameSource {
    /// A public symbol of the module's matching PDB.
    Pdb = 0,
    /// An export of the module's image.
    Export = 1,
    /// Only the module is known: `module+0xoffset`.
    Module = 2,
    /// No module contains the address.
    None = 3,
}

impl FrameSource {
    /// Every source, by code.
    pub const ALL: [FrameSource; 4] = [FrameSource::Pdb, FrameSource::Export, FrameSource::Module, FrameSource::None];

    /// The stable code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// `pdb`, `export`, `module` or `none`.
    pub const fn name(self) -> &'static str {
        match self {
            FrameSource::Pdb => "pdb",
            FrameSource::Export => "export",
            FrameSource::Module => "module",
            FrameSource::None => "none",
        }
    }
}

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The return address.
    pub address: u64,
    /// The debugger's module name (`halcon`), when a module contains the address.
    pub module: Option<String>,
    /// The symbol, when a PDB or export table has one at or before the address.
    pub symbol: Option<String>,
    /// Bytes past the symbol (with a symbol), past the module base (module only), else 0.
    pub offset: u64,
    /// What the debugger prints: `halcon!HXmalloc+0x8b`, `halcon!HXmalloc`, `halcon+0x1234` or
    /// `0x1f2e3d4c5b6a`.
    pub text: String,
    /// Where the text came from.
    pub source: FrameSource,
    /// No module contains the address (JIT-compiled code, or a module missing from the list).
    pub jit_or_unknown: bool,
}

/// The frames of a [`StackTable`], each distinct address symbolized once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSymbols {
    /// The distinct frame addresses, sorted.
    pub distinct: Vec<u64>,
    /// `distinct[i]` symbolized.
    pub frames: Vec<Frame>,
    /// For each entry of [`StackTable::frames`], its index in `distinct`.
    pub frame_index: Vec<u32>,
    /// Per stack: the frame texts joined with `\n`, innermost first (the cross-dump stack key).
    pub keys: Vec<String>,
}

/// Symbol names sorted by RVA, for nearest-preceding lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolTable {
    rvas: Vec<u32>,
    names: Vec<Box<str>>,
}

impl SymbolTable {
    /// Sort `(rva, name)` pairs; of several names at one RVA the smallest (in byte order) is kept,
    /// so that the choice does not depend on the order of the source.
    pub fn new(mut pairs: Vec<(u32, String)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
        let (rvas, names) = pairs.into_iter().map(|(r, n)| (r, n.into_boxed_str())).unzip();
        SymbolTable { rvas, names }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.rvas.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.rvas.is_empty()
    }

    /// The symbol at or before `rva`: its name and RVA.
    pub fn lookup(&self, rva: u32) -> Option<(&str, u32)> {
        let i = self.rvas.partition_point(|&r| r <= rva).checked_sub(1)?;
        Some((&self.names[i], self.rvas[i]))
    }
}

/// What was loaded for one module, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSymbols {
    /// [`FrameSource::Pdb`], [`FrameSource::Export`] or [`FrameSource::Module`] (no table).
    pub source: FrameSource,
    /// The PDB file used, for [`FrameSource::Pdb`].
    pub pdb: Option<PathBuf>,
    /// Candidates rejected and tables that could not be read, with the reason.
    pub notes: Vec<String>,
    /// The symbols.
    pub table: SymbolTable,
}

/// A module as the symbolizer sees it.
#[derive(Debug)]
struct Slot {
    module: Module,
    name: String,
    symbols: OnceLock<ModuleSymbols>,
}

/// The load state of one module, for diagnostics ("why is my PDB not used?").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleStatus {
    /// The debugger's module name.
    pub name: String,
    /// Load address.
    pub base: u64,
    /// `None` until a frame in the module was symbolized.
    pub symbols: Option<ModuleSymbols>,
}

/// Turns code addresses of one dump into [`Frame`]s. Cheap to create; tables load lazily.
#[derive(Debug)]
pub struct Symbolizer {
    mem: AddressSpace,
    slots: Vec<Slot>,
    bases: Vec<u64>,
    dirs: Vec<PathBuf>,
    clr: Option<String>,
    /// PDBs larger than this are not read (`Limits::max_symbol_file_bytes`).
    max_pdb_bytes: u64,
}

/// Marks the note of a PDB skipped for its size (see [`Symbolizer::pdbs_over_cap`]).
pub const PDB_OVER_CAP: &str = "over the PDB size cap";

/// The debugger's name for a module: the file name without its extension, other dots replaced by
/// underscores; `image<base>` when the path is empty.
pub fn module_name(m: &Module) -> String {
    let file = m.name();
    let stem = match file.rfind('.') {
        Some(i) if i > 0 => &file[..i],
        _ => file,
    };
    if stem.is_empty() {
        format!("image{:x}", m.base)
    } else {
        stem.replace('.', "_")
    }
}

/// The address of the global `name` of the process's `ntdll.dll` of pointer width `arch` (a
/// WOW64 process has a 64-bit and a 32-bit one), read from its PDB when a PDB whose GUID and age
/// match is in the local directories of `symbol_path`. `None` without such a PDB, or when it has
/// no public symbol of that name. The width of each ntdll is read from its PE header in the dump,
/// else taken from its path (`SysWOW64` is 32-bit).
pub fn ntdll_global(dump: &Dump, symbol_path: &str, arch: crate::target::Arch, name: &str) -> Option<u64> {
    let dirs = path::parse_symbol_path(symbol_path);
    if dirs.is_empty() {
        return None;
    }
    let mem = dump.memory();
    let ntdll = dump.info().modules.iter().filter(|m| m.name().eq_ignore_ascii_case("ntdll.dll")).find(|m| {
        let wow = m.path.to_ascii_lowercase().contains("syswow64");
        let guess = if wow { crate::target::Arch::X86 } else { dump.target().arch };
        pe::image_arch(mem, m.base).unwrap_or(guess) == arch
    })?;
    let (Some(pdb_name), Some(guid), Some(age)) = (&ntdll.pdb_name, &ntdll.pdb_guid, ntdll.pdb_age) else {
        return None;
    };
    path::existing_candidates(&dirs, pdb_name, guid, age).into_iter().find_map(|p| {
        let publics = pdb::load_publics(&p, guid, age).ok()?;
        let rva = publics.symbols[..publics.publics].iter().find(|s| s.1 == name)?.0;
        ntdll.base.checked_add(u64::from(rva))
    })
}

/// The loaded CLR runtime (`clr.dll`, `coreclr.dll` or `mscorwks.dll`), if any.
pub fn clr_module(modules: &[Module]) -> Option<&Module> {
    modules.iter().find(|m| CLR_MODULES.iter().any(|c| m.name().eq_ignore_ascii_case(c)))
}

impl Symbolizer {
    /// A symbolizer for `dump`'s modules. `symbol_path` is a debugger symbol path (see [`path`]);
    /// `None` reads `_NT_SYMBOL_PATH`, and `Some("")` turns PDB lookup off.
    pub fn new(dump: &Dump, symbol_path: Option<&str>) -> Self {
        Self::from_parts(dump.info().modules.clone(), dump.memory().clone(), symbol_path)
    }

    /// A symbolizer over explicit modules and memory (tests, other containers).
    pub fn from_parts(modules: Vec<Module>, mem: AddressSpace, symbol_path: Option<&str>) -> Self {
        let env;
        let symbol_path = match symbol_path {
            Some(p) => p,
            None => {
                env = std::env::var(SYMBOL_PATH_ENV).unwrap_or_default();
                env.as_str()
            }
        };
        let clr = clr_module(&modules).map(|m| m.name().to_owned());
        let mut slots: Vec<Slot> = modules
            .into_iter()
            .filter(|m| m.size > 0)
            .map(|m| Slot { name: module_name(&m), module: m, symbols: OnceLock::new() })
            .collect();
        slots.sort_by_key(|s| s.module.base);
        // Overlapping modules (a damaged list): keep the first of each overlap, so that lookup
        // by base is exact.
        let mut kept: Vec<Slot> = Vec::with_capacity(slots.len());
        for s in slots {
            if kept.last().is_none_or(|k| s.module.base >= k.module.end()) {
                kept.push(s);
            }
        }
        let bases = kept.iter().map(|s| s.module.base).collect();
        Symbolizer {
            mem,
            slots: kept,
            bases,
            dirs: path::parse_symbol_path(symbol_path),
            clr,
            max_pdb_bytes: crate::limits::Limits::default().max_symbol_file_bytes,
        }
    }

    /// The same symbolizer, reading no PDB larger than `bytes`.
    pub fn with_max_pdb_bytes(mut self, bytes: u64) -> Self {
        self.max_pdb_bytes = bytes;
        self
    }

    /// The notes of the PDBs that matched a module but were not read for their size, among the
    /// modules symbolized so far.
    pub fn pdbs_over_cap(&self) -> Vec<String> {
        self.slots
            .iter()
            .filter_map(|s| s.symbols.get())
            .flat_map(|m| m.notes.iter().filter(|n| n.contains(PDB_OVER_CAP)).cloned())
            .collect()
    }

    /// The local directories searched for PDBs.
    pub fn symbol_dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The file name of the loaded CLR (`coreclr.dll`, ...), if any: frames outside every module
    /// are then likely managed code (SOS: `!ip2md <address>`).
    pub fn clr_module(&self) -> Option<&str> {
        self.clr.as_deref()
    }

    fn slot_of(&self, addr: u64) -> Option<&Slot> {
        let i = self.bases.partition_point(|&b| b <= addr).checked_sub(1)?;
        let s = &self.slots[i];
        (addr < s.module.end()).then_some(s)
    }

    fn symbols<'a>(&self, slot: &'a Slot) -> &'a ModuleSymbols {
        slot.symbols.get_or_init(|| self.load(&slot.module))
    }

    fn load(&self, m: &Module) -> ModuleSymbols {
        let mut notes = Vec::new();
        if !self.dirs.is_empty() {
            match (&m.pdb_name, &m.pdb_guid, m.pdb_age) {
                (Some(name), Some(guid), Some(age)) => {
                    for p in path::existing_candidates(&self.dirs, name, guid, age) {
                        let size = std::fs::metadata(&p).map_or(0, |m| m.len());
                        if size > self.max_pdb_bytes {
                            notes.push(format!(
                                "{}: {size} bytes, {PDB_OVER_CAP} of {} bytes (Limits.max_symbol_file_bytes); not read",
                                p.display(),
                                self.max_pdb_bytes
                            ));
                            continue;
                        }
                        match pdb::load_publics(&p, guid, age) {
                            Ok(publics) if publics.symbols.is_empty() => {
                                notes.push(format!("{}: matches but has no public symbols", p.display()));
                            }
                            Ok(publics) => {
                                return ModuleSymbols {
                                    source: FrameSource::Pdb,
                                    pdb: Some(p),
                                    notes,
                                    table: SymbolTable::new(publics.symbols),
                                };
                            }
                            Err(why) => notes.push(format!("{}: {why}", p.display())),
                        }
                    }
                    if notes.is_empty() {
                        notes.push(format!("{name} ({guid} age {age:#x}) not found in the symbol path"));
                    }
                }
                _ => notes.push("no RSDS CodeView record: the module's PDB cannot be identified".to_owned()),
            }
        }
        match pe::read_exports(&self.mem, m.base, u64::from(m.size)) {
            Ok(e) if !e.symbols.is_empty() => {
                ModuleSymbols { source: FrameSource::Export, pdb: None, notes, table: SymbolTable::new(e.symbols) }
            }
            Ok(e) => {
                notes.push(format!("exports: no named export could be read ({} skipped)", e.bad_names + e.forwarders));
                ModuleSymbols { source: FrameSource::Module, pdb: None, notes, table: SymbolTable::default() }
            }
            Err(why) => {
                notes.push(format!("exports: {why}"));
                ModuleSymbols { source: FrameSource::Module, pdb: None, notes, table: SymbolTable::default() }
            }
        }
    }

    /// Symbolize one address.
    pub fn symbolize(&self, address: u64) -> Frame {
        let Some(slot) = self.slot_of(address) else {
            return Frame {
                address,
                module: None,
                symbol: None,
                offset: 0,
                text: format!("{address:#x}"),
                source: FrameSource::None,
                jit_or_unknown: true,
            };
        };
        let rva = address - slot.module.base;
        let syms = self.symbols(slot);
        let hit = u32::try_from(rva).ok().and_then(|r| syms.table.lookup(r));
        let name = &slot.name;
        match hit {
            Some((symbol, at)) => {
                let offset = rva - u64::from(at);
                let text =
                    if offset == 0 { format!("{name}!{symbol}") } else { format!("{name}!{symbol}+{offset:#x}") };
                Frame {
                    address,
                    module: Some(name.clone()),
                    symbol: Some(symbol.to_owned()),
                    offset,
                    text,
                    source: syms.source,
                    jit_or_unknown: false,
                }
            }
            None => Frame {
                address,
                module: Some(name.clone()),
                symbol: None,
                offset: rva,
                text: if rva == 0 { name.clone() } else { format!("{name}+{rva:#x}") },
                source: FrameSource::Module,
                jit_or_unknown: false,
            },
        }
    }

    /// Symbolize many addresses (in parallel for large batches), in order.
    pub fn symbolize_all(&self, addresses: &[u64]) -> Vec<Frame> {
        if addresses.len() < 4096 {
            addresses.iter().map(|&a| self.symbolize(a)).collect()
        } else {
            addresses.par_iter().map(|&a| self.symbolize(a)).collect()
        }
    }

    /// Symbolize every distinct frame of `table` once, and build its per-stack keys.
    pub fn symbolize_table(&self, table: &StackTable) -> TableSymbols {
        let distinct = table.distinct_frames();
        let frames = self.symbolize_all(&distinct);
        let frame_index: Vec<u32> = table
            .frames
            .iter()
            .map(|a| distinct.binary_search(a).map_or(u32::MAX, |i| u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        let keys = (0..table.len())
            .map(|i| {
                let (a, b) = (table.offsets[i] as usize, table.offsets[i + 1] as usize);
                let mut key = String::with_capacity((b - a) * 32);
                for (j, &k) in frame_index[a..b].iter().enumerate() {
                    if j > 0 {
                        key.push('\n');
                    }
                    if let Some(f) = frames.get(k as usize) {
                        key.push_str(&f.text);
                    }
                }
                key
            })
            .collect();
        TableSymbols { distinct, frames, frame_index, keys }
    }

    /// One key per stack of `table`: its frames' texts joined with `\n`, innermost first.
    pub fn stack_keys(&self, table: &StackTable) -> Vec<String> {
        self.symbolize_table(table).keys
    }

    /// The modules, with what was loaded for those already used.
    pub fn status(&self) -> Vec<ModuleStatus> {
        self.slots
            .iter()
            .map(|s| ModuleStatus { name: s.name.clone(), base: s.module.base, symbols: s.symbols.get().cloned() })
            .collect()
    }
}

#[cfg(test)]
mod tests;
