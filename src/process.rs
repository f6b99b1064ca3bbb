//! The process behind the dump: TEB → PEB, NtGlobalFlag and the heap list.
//!
//! A dump names its threads' TEBs; the PEB is found through `_TEB.ProcessEnvironmentBlock`.
//!
//! **WOW64.** A 32-bit process on 64-bit Windows has two of each: a 64-bit TEB/PEB used by the
//! WOW64 layer and a 32-bit TEB/PEB used by the application. A dump written by a 64-bit dumper
//! (Task Manager, procdump64) records the 64-bit TEBs and says "AMD64" in SystemInfo. Example:
//! the Windows 7 SP1 fixture `lldb-fizzbuzz_wow64.dmp` has TEB64 0x7efdb000 → PEB64 0x7efdf000,
//! and TEB32 0x7efdd000 → PEB32 0x7efde000. The application's heaps are in the 32-bit PEB.
//! Handling: a dump is WOW64 when it is x64 and `wow64.dll` is loaded. The 32-bit TEB is the
//! first pointer of the 64-bit TEB (`NtTib.ExceptionList`, which WOW64 points at the 32-bit TEB;
//! \[HST\] reads it the same way, §2), checked by the 32-bit TEB's `NtTib.Self`; when that pointer
//! is not usable, TEB64 + 0x2000 (the placement seen on Windows 7 through 11) is tried.

use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::layouts::peb::{PebLayout, PEB_LAYOUTS};
use crate::layouts::{select, LayoutRow};
use crate::memory::AddressSpace;
use crate::target::Arch;

/// Where WOW64 places a thread's 32-bit TEB when the 64-bit TEB's first pointer does not lead to
/// it: right after the 64-bit TEB (Windows 7 through 11, see the module doc).
pub const TEB32_AFTER_TEB64: u64 = 0x2000;

/// Upper bound on heap pointers read from `_PEB.ProcessHeaps`. The PEB grows the array by 16 at a
/// time; thousands of heaps would be extraordinary. A corrupt count is capped, not trusted.
pub const MAX_HEAPS: u32 = 4096;

/// NtGlobalFlag bits and their `!gflag` abbreviations. Heap-related bits per §3 of the layout
/// reference (\[MSD\] GFlags flag table); the rest from the same Microsoft Learn table.
pub const GLOBAL_FLAGS: &[(u32, &str)] = &[
    (0x0000_0001, "soe"),
    (0x0000_0002, "sls"),
    (0x0000_0004, "dic"),
    (0x0000_0008, "shg"),
    (0x0000_0010, "htc"),
    (0x0000_0020, "hfc"),
    (0x0000_0040, "hpc"),
    (0x0000_0080, "hvc"),
    (0x0000_0100, "vrf"),
    (0x0000_0400, "ptg"),
    (0x0000_0800, "htg"),
    (0x0000_1000, "ust"),
    (0x0000_2000, "kst"),
    (0x0000_4000, "otl"),
    (0x0000_8000, "htd"),
    (0x0001_0000, "dse"),
    (0x0002_0000, "d32"),
    (0x0004_0000, "ksl"),
    (0x0008_0000, "dps"),
    (0x0010_0000, "scb"),
    (0x0020_0000, "dhc"),
    (0x0040_0000, "ece"),
    (0x0080_0000, "eel"),
    (0x0100_0000, "eot"),
    (0x0200_0000, "hpa"),
    (0x0400_0000, "dwl"),
    (0x0800_0000, "ddp"),
    (0x1000_0000, "cse"),
    (0x2000_0000, "ltd"),
    (0x4000_0000, "bhd"),
    (0x8000_0000, "dpd"),
];

/// `FLG_USER_STACK_TRACE_DB`: heap blocks carry an allocation stack (§3, §11.3).
pub const FLG_USER_STACK_TRACE_DB: u32 = 0x1000;
/// `FLG_HEAP_PAGE_ALLOCS`: page heap is on (§3).
pub const FLG_HEAP_PAGE_ALLOCS: u32 = 0x0200_0000;

/// The `!gflag` abbreviations of the bits set in `flags`, lowest bit first.
pub fn global_flag_names(flags: u32) -> Vec<&'static str> {
    GLOBAL_FLAGS.iter().filter(|(bit, _)| flags & bit != 0).map(|&(_, n)| n).collect()
}

/// One PEB (the native one, or the 32-bit one of a WOW64 process), with the fields heap analysis
/// needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peb {
    /// Address of the PEB.
    pub address: u64,
    /// The TEB it was reached from.
    pub teb: u64,
    /// Pointer width of this PEB (x86 for the 32-bit PEB of a WOW64 process).
    pub arch: Arch,
    /// `ImageBaseAddress`.
    pub image_base: u64,
    /// `Ldr`.
    pub ldr: u64,
    /// `ProcessHeap`.
    pub process_heap: u64,
    /// `NtGlobalFlag`.
    pub nt_global_flag: u32,
    /// `NumberOfHeaps`.
    pub number_of_heaps: u32,
    /// `MaximumNumberOfHeaps`.
    pub maximum_number_of_heaps: u32,
    /// `ProcessHeaps`: address of the heap-pointer array.
    pub process_heaps_address: u64,
    /// `OSMajorVersion`, `OSMinorVersion`, `OSBuildNumber`.
    pub os_version: (u32, u32, u16),
    /// The heap pointers, when the array is captured (`NumberOfHeaps` entries, capped at
    /// [`MAX_HEAPS`]).
    pub process_heaps: Option<Vec<u64>>,
    /// Why `process_heaps` is missing or suspect, if it is.
    pub process_heaps_problem: Option<String>,
}

impl Peb {
    /// Whether `+ust` (user-mode stack trace database) was on.
    pub fn has_ust(&self) -> bool {
        self.nt_global_flag & FLG_USER_STACK_TRACE_DB != 0
    }
}

/// The process's PEB(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The PEB matching the dump's architecture (the 64-bit one of a WOW64 process).
    pub native: Peb,
    /// The 32-bit PEB of a WOW64 process.
    pub wow64: Option<Peb>,
}

impl ProcessInfo {
    /// The PEB whose heaps the application uses: the 32-bit one for WOW64, else the native one.
    pub fn application(&self) -> &Peb {
        self.wow64.as_ref().unwrap_or(&self.native)
    }
}

/// Whether the dump is of a 32-bit process under WOW64 (x64 dump with `wow64.dll` loaded).
pub fn is_wow64(dump: &Dump) -> bool {
    dump.target().arch == Arch::X64 && dump.module_named("wow64.dll").is_some()
}

fn layout(dump: &Dump, arch: Arch) -> Result<&'static LayoutRow<PebLayout>> {
    select(PEB_LAYOUTS, "_PEB", arch, dump.target().version.build)
}

/// Find and read the PEB (and for WOW64 the 32-bit PEB).
pub fn process_info(dump: &Dump) -> Result<ProcessInfo> {
    let arch = dump.target().arch;
    let native_layout = &layout(dump, arch)?.layout;
    let mem = dump.memory();
    let threads = &dump.info().threads;
    if threads.is_empty() {
        return Err(Error::NotFound {
            what: "PEB",
            reason: "the dump lists no threads, so no TEB leads to the PEB".into(),
        });
    }
    // The first thread whose TEB is captured gives the PEB; all threads share it.
    let mut first_err = None;
    let mut found = None;
    for t in threads {
        match mem.read_ptr(arch, t.teb.wrapping_add(u64::from(native_layout.teb_peb))) {
            Ok(peb) => {
                found = Some((t.teb, peb));
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e.reading(format!("TEB of thread {:#x}", t.id)));
            }
        }
    }
    let Some((teb, peb_addr)) = found else {
        return Err(first_err.expect("at least one thread was tried"));
    };
    let native = read_peb(mem, arch, native_layout, teb, peb_addr)?;

    let wow64 = if is_wow64(dump) {
        let l32 = &layout(dump, Arch::X86)?.layout;
        let teb32 = find_teb32(mem, teb, l32).ok_or_else(|| Error::NotFound {
            what: "32-bit TEB",
            reason: format!(
                "neither the first pointer of the 64-bit TEB {teb:#x} nor {:#x} is a captured 32-bit TEB",
                teb.wrapping_add(TEB32_AFTER_TEB64)
            ),
        })?;
        let peb32 =
            mem.read_ptr(Arch::X86, teb32.wrapping_add(u64::from(l32.teb_peb))).map_err(|e| e.reading("32-bit TEB"))?;
        Some(read_peb(mem, Arch::X86, l32, teb32, peb32)?)
    } else {
        None
    };
    Ok(ProcessInfo { native, wow64 })
}

fn find_teb32(mem: &AddressSpace, teb64: u64, l32: &PebLayout) -> Option<u64> {
    // Addresses come from the dump: wrapping arithmetic, and the Self check rejects what wraps.
    let self_points_back =
        |teb32: u64| mem.read_ptr(Arch::X86, teb32.wrapping_add(u64::from(l32.teb_self))).ok() == Some(teb32);
    let linked = mem.read_u64(teb64).ok().filter(|&p| p != 0 && p <= u64::from(u32::MAX));
    linked.into_iter().chain([teb64.wrapping_add(TEB32_AFTER_TEB64)]).find(|&t| self_points_back(t))
}

fn read_peb(mem: &AddressSpace, arch: Arch, l: &PebLayout, teb: u64, address: u64) -> Result<Peb> {
    let ptr = arch.ptr_size();
    // One read of the whole span we need, so a missing PEB is reported once, by address.
    let span = u64::from(l.os_build_number) + 2;
    let raw = mem.read(address, span).map_err(|e| e.reading(format!("{} PEB", arch.name())))?;
    let u16_at = |o: u16| u16::from_le_bytes([raw[o as usize], raw[o as usize + 1]]);
    let u32_at = |o: u16| u32::from_le_bytes(raw[o as usize..o as usize + 4].try_into().expect("4 bytes"));
    let ptr_at = |o: u16| arch.ptrs(&raw[o as usize..]).next().unwrap_or(0);
    let number_of_heaps = u32_at(l.number_of_heaps);
    let maximum_number_of_heaps = u32_at(l.maximum_number_of_heaps);
    let process_heaps_address = ptr_at(l.process_heaps);
    let mut problem = None;
    // The array holds MaximumNumberOfHeaps slots; ntdll grows it before NumberOfHeaps passes
    // that. A count above the capacity is damage, e.g. NumberOfHeaps 0xFFFFFFFF in a PEB whose
    // array has 16 slots and 2 heaps (`docs/damaged-dumps.md` H11): reading 0xFFFFFFFF (or
    // MAX_HEAPS) pointers runs off the captured array and would lose every heap, so only the
    // slots that exist are read.
    let count = if number_of_heaps > maximum_number_of_heaps {
        let capacity = maximum_number_of_heaps.min(MAX_HEAPS);
        problem = Some(format!(
            "NumberOfHeaps {number_of_heaps} exceeds MaximumNumberOfHeaps {maximum_number_of_heaps}; read the first {capacity}"
        ));
        capacity
    } else if number_of_heaps > MAX_HEAPS {
        problem = Some(format!("NumberOfHeaps {number_of_heaps} is implausible; read the first {MAX_HEAPS}"));
        MAX_HEAPS
    } else {
        number_of_heaps
    };
    let process_heaps = match mem.read(process_heaps_address, u64::from(count) * ptr) {
        Ok(bytes) => Some(arch.ptrs(&bytes).collect()),
        Err(e) => {
            problem = Some(e.reading("ProcessHeaps array").to_string());
            None
        }
    };
    Ok(Peb {
        address,
        teb,
        arch,
        image_base: ptr_at(l.image_base_address),
        ldr: ptr_at(l.ldr),
        process_heap: ptr_at(l.process_heap),
        nt_global_flag: u32_at(l.nt_global_flag),
        number_of_heaps,
        maximum_number_of_heaps,
        process_heaps_address,
        os_version: (u32_at(l.os_major_version), u32_at(l.os_minor_version), u16_at(l.os_build_number)),
        process_heaps,
        process_heaps_problem: problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teb_at_the_top_of_the_address_space_does_not_wrap() {
        // TEB addresses are dump data. A captured 64-bit TEB in the last page whose first
        // pointer is null: the fallback TEB64 + 0x2000 lies past 2^64 and is simply not a TEB.
        use crate::heap::testing::Space;
        let teb64 = u64::MAX - 0xfff;
        let mem = Space::new(teb64, 0xfff).build();
        let l32 = &crate::layouts::select(PEB_LAYOUTS, "_PEB", Arch::X86, 7601).unwrap().layout;
        assert_eq!(find_teb32(&mem, teb64, l32), None);
    }

    #[test]
    fn flag_names_decode_heap_bits() {
        assert_eq!(global_flag_names(0x0200_1030), vec!["htc", "hfc", "ust", "hpa"]);
        assert!(global_flag_names(0).is_empty());
        let mut bits: Vec<u32> = GLOBAL_FLAGS.iter().map(|&(b, _)| b).collect();
        bits.dedup();
        assert_eq!(bits.len(), GLOBAL_FLAGS.len());
        assert!(bits.iter().all(|b| b.is_power_of_two()));
    }
}
