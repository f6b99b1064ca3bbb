//! `_TEB` and `_PEB` fields a heap walker needs (§1, §2 of the layout reference).
//!
//! These offsets did not change from Windows 7 to Windows 11 on either architecture: one row per
//! architecture covers every supported build. Builds before Windows 7 are not covered.

use super::{builds, BuildRange, LayoutRow};
use crate::target::Arch;

/// Offsets into `_TEB` and `_PEB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PebLayout {
    /// `_TEB.NtTib.Self` (NT_TIB, winnt.h: the TEB's own address).
    pub teb_self: u16,
    /// `_TEB.ProcessEnvironmentBlock`.
    pub teb_peb: u16,
    /// `_PEB.ImageBaseAddress`.
    pub image_base_address: u16,
    /// `_PEB.Ldr`.
    pub ldr: u16,
    /// `_PEB.ProcessHeap`.
    pub process_heap: u16,
    /// `_PEB.NtGlobalFlag` (u32).
    pub nt_global_flag: u16,
    /// `_PEB.NumberOfHeaps` (u32).
    pub number_of_heaps: u16,
    /// `_PEB.MaximumNumberOfHeaps` (u32).
    pub maximum_number_of_heaps: u16,
    /// `_PEB.ProcessHeaps` (pointer to an array of heap pointers).
    pub process_heaps: u16,
    /// `_PEB.OSMajorVersion` (u32).
    pub os_major_version: u16,
    /// `_PEB.OSMinorVersion` (u32).
    pub os_minor_version: u16,
    /// `_PEB.OSBuildNumber` (u16).
    pub os_build_number: u16,
}

/// Every known `_TEB`/`_PEB` layout.
pub static PEB_LAYOUTS: &[LayoutRow<PebLayout>] = &[
    LayoutRow {
        name: "Win7+ x86",
        arch: Arch::X86,
        builds: BuildRange { first: builds::WIN7, last: u32::MAX },
        source:
            "§2: [R2W Win7x86 _TEB/_PEB], [HST] (TEB+0x30, 0x68, 0x88/0x8c/0x90, 0xa4/0xa8), [MPF vmmwindef.h PEB32]; \
                 NtTib.Self 0x18 from NT_TIB32 in winnt.h",
        layout: PebLayout {
            teb_self: 0x18,
            teb_peb: 0x30,
            image_base_address: 0x08,
            ldr: 0x0c,
            process_heap: 0x18,
            nt_global_flag: 0x68,
            number_of_heaps: 0x88,
            maximum_number_of_heaps: 0x8c,
            process_heaps: 0x90,
            os_major_version: 0xa4,
            os_minor_version: 0xa8,
            os_build_number: 0xac,
        },
    },
    LayoutRow {
        name: "Win7+ x64",
        arch: Arch::X64,
        builds: BuildRange { first: builds::WIN7, last: u32::MAX },
        source: "§2: [R2W Win10x64 _TEB/_PEB], [NTK] Win11 _TEB/_PEB, [MPF vmmwindef.h PEB64]; \
                 NtTib.Self 0x30 from NT_TIB64 in winnt.h",
        layout: PebLayout {
            teb_self: 0x30,
            teb_peb: 0x60,
            image_base_address: 0x10,
            ldr: 0x18,
            process_heap: 0x30,
            nt_global_flag: 0xbc,
            number_of_heaps: 0xe8,
            maximum_number_of_heaps: 0xec,
            process_heaps: 0xf0,
            os_major_version: 0x118,
            os_minor_version: 0x11c,
            os_build_number: 0x120,
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_well_formed() {
        super::super::check_table(PEB_LAYOUTS);
    }

    #[test]
    fn xp_is_not_covered() {
        assert!(super::super::select(PEB_LAYOUTS, "_PEB", Arch::X86, 2600).is_err());
        assert_eq!(super::super::select(PEB_LAYOUTS, "_PEB", Arch::X64, 26100).unwrap().layout.nt_global_flag, 0xbc);
    }
}
