//! What the dump is of: CPU architecture and Windows version.

use std::fmt;

/// Pointer width and structure family of a process (or of one of a WOW64 process's two halves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// 32-bit x86: 4-byte pointers, 8-byte heap granules.
    X86,
    /// x86-64: 8-byte pointers, 16-byte heap granules.
    X64,
}

impl Arch {
    /// Size of a pointer in bytes.
    pub const fn ptr_size(self) -> u64 {
        match self {
            Arch::X86 => 4,
            Arch::X64 => 8,
        }
    }

    /// The pointers of this width stored little-endian in `bytes`, zero-extended to `u64` (a
    /// trailing partial pointer is ignored).
    pub fn ptrs(self, bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
        bytes.chunks_exact(self.ptr_size() as usize).map(move |c| match self {
            Arch::X86 => u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            Arch::X64 => u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        })
    }

    /// The name users know: `x86` or `x64`.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X64 => "x64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Windows version as recorded in the dump's SystemInfo stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WinVersion {
    /// Major version (6 for Windows 7/8/8.1, 10 for Windows 10/11).
    pub major: u32,
    /// Minor version (1 = Windows 7, 2 = 8, 3 = 8.1).
    pub minor: u32,
    /// Build number (7601 = Windows 7 SP1, 17763 = Windows 10 1809, 22000+ = Windows 11).
    pub build: u32,
}

impl fmt::Display for WinVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.build)
    }
}

/// The machine and OS a dump was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The dump's native architecture (a WOW64 process dumped by a 64-bit dumper is `X64`).
    pub arch: Arch,
    /// The OS version.
    pub version: WinVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_decode_by_width() {
        let b = [1, 0, 0, 0, 2, 0, 0, 0x80, 3];
        assert_eq!(Arch::X86.ptrs(&b).collect::<Vec<_>>(), vec![1, 0x8000_0002]);
        assert_eq!(Arch::X64.ptrs(&b).collect::<Vec<_>>(), vec![0x8000_0002_0000_0001]);
        assert_eq!(Arch::X64.ptrs(&b[..7]).count(), 0);
    }
}
