"""Byte layouts of the minidump structures the builder writes.

Every structure here is written with literal offsets and sizes taken from
Microsoft's public documentation of the minidump file format (the
``minidumpapiset.h`` / ``DbgHelp.h`` headers and their pages on Microsoft
Learn, "MINIDUMP_HEADER structure" and siblings), and for CONTEXT /
VS_FIXEDFILEINFO from ``winnt.h`` / ``verrsrc.h``.  Nothing is derived from the
project's own reader, on purpose: these fixtures exist to catch mistakes in it.

All minidump structures are declared under ``#pragma pack(4)`` in the SDK
header, so a ULONG64 may sit at a 4-aligned offset (for example
``MINIDUMP_THREAD.Teb`` right after a 4-byte count in a thread list).  We pack
with ``struct`` little-endian and no implicit padding (``"<"``) to match.
"""

from __future__ import annotations

import struct
import uuid

# --------------------------------------------------------------------------
# MINIDUMP_HEADER (minidumpapiset.h), 32 bytes:
#   +0x00 ULONG32 Signature          'MDMP' = 0x504d444d
#   +0x04 ULONG32 Version            low word MINIDUMP_VERSION 0xa793,
#                                    high word implementation specific
#   +0x08 ULONG32 NumberOfStreams
#   +0x0c RVA     StreamDirectoryRva
#   +0x10 ULONG32 CheckSum
#   +0x14 ULONG32 TimeDateStamp      (union with Reserved)
#   +0x18 ULONG64 Flags              MINIDUMP_TYPE bits
# --------------------------------------------------------------------------
MINIDUMP_SIGNATURE = 0x504D444D
MINIDUMP_VERSION = 0xA793
HEADER_SIZE = 0x20

# MINIDUMP_TYPE flag values (minidumpapiset.h, MINIDUMP_TYPE enumeration).
MiniDumpNormal = 0x00000000
MiniDumpWithDataSegs = 0x00000001
MiniDumpWithFullMemory = 0x00000002
MiniDumpWithFullMemoryInfo = 0x00000800
MiniDumpWithThreadInfo = 0x00001000


def pack_header(number_of_streams: int, directory_rva: int, timestamp: int,
                flags: int, version_hi: int = 0, checksum: int = 0) -> bytes:
    data = struct.pack(
        "<IIIIIIQ",
        MINIDUMP_SIGNATURE,
        (version_hi << 16) | MINIDUMP_VERSION,
        number_of_streams,
        directory_rva,
        checksum,
        timestamp,
        flags,
    )
    assert len(data) == HEADER_SIZE
    return data


# --------------------------------------------------------------------------
# MINIDUMP_DIRECTORY (minidumpapiset.h), 12 bytes:
#   +0x00 ULONG32 StreamType
#   +0x04 MINIDUMP_LOCATION_DESCRIPTOR Location { ULONG32 DataSize; RVA Rva; }
# --------------------------------------------------------------------------
DIRECTORY_ENTRY_SIZE = 12

# MINIDUMP_STREAM_TYPE values (minidumpapiset.h).
ThreadListStream = 3
ModuleListStream = 4
MemoryListStream = 5
ExceptionStream = 6
SystemInfoStream = 7
Memory64ListStream = 9
MiscInfoStream = 15
MemoryInfoListStream = 16

STREAM_TYPE_BY_NAME = {
    "ThreadListStream": ThreadListStream,
    "ModuleListStream": ModuleListStream,
    "MemoryListStream": MemoryListStream,
    "SystemInfoStream": SystemInfoStream,
    "Memory64ListStream": Memory64ListStream,
    "MiscInfoStream": MiscInfoStream,
    "MemoryInfoListStream": MemoryInfoListStream,
}


def pack_directory_entry(stream_type: int, data_size: int, rva: int) -> bytes:
    return struct.pack("<III", stream_type, data_size, rva)


def pack_location(data_size: int, rva: int) -> bytes:
    """MINIDUMP_LOCATION_DESCRIPTOR: ULONG32 DataSize; RVA Rva (8 bytes)."""
    return struct.pack("<II", data_size, rva)


# --------------------------------------------------------------------------
# MINIDUMP_STRING (minidumpapiset.h):
#   +0x00 ULONG32 Length   size of Buffer in BYTES, terminator excluded
#   +0x04 WCHAR   Buffer[] UTF-16LE; writers add a terminating NUL WCHAR
# --------------------------------------------------------------------------
def pack_string(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return struct.pack("<I", len(encoded)) + encoded + b"\x00\x00"


# --------------------------------------------------------------------------
# MINIDUMP_SYSTEM_INFO (minidumpapiset.h), 56 (0x38) bytes:
#   +0x00 USHORT  ProcessorArchitecture  PROCESSOR_ARCHITECTURE_INTEL 0,
#                                        PROCESSOR_ARCHITECTURE_AMD64 9
#   +0x02 USHORT  ProcessorLevel
#   +0x04 USHORT  ProcessorRevision
#   +0x06 UCHAR   NumberOfProcessors
#   +0x07 UCHAR   ProductType            VER_NT_WORKSTATION 1
#   +0x08 ULONG32 MajorVersion
#   +0x0c ULONG32 MinorVersion
#   +0x10 ULONG32 BuildNumber
#   +0x14 ULONG32 PlatformId             VER_PLATFORM_WIN32_NT 2
#   +0x18 RVA     CSDVersionRva          -> MINIDUMP_STRING
#   +0x1c USHORT  SuiteMask
#   +0x1e USHORT  Reserved2
#   +0x20 CPU_INFORMATION Cpu (24-byte union):
#         X86CpuInfo (used when ProcessorArchitecture is INTEL):
#           ULONG32 VendorId[3]; ULONG32 VersionInformation;
#           ULONG32 FeatureInformation; ULONG32 AMDExtendedCpuFeatures
#         OtherCpuInfo (every other architecture, AMD64 included):
#           ULONG64 ProcessorFeatures[2]   bit n = IsProcessorFeaturePresent(n)
# --------------------------------------------------------------------------
SYSTEM_INFO_SIZE = 0x38
PROCESSOR_ARCHITECTURE_INTEL = 0
PROCESSOR_ARCHITECTURE_AMD64 = 9
VER_NT_WORKSTATION = 1
VER_PLATFORM_WIN32_NT = 2
VER_SUITE_SINGLEUSERTS = 0x0100


# PF_* processor feature numbers (winnt.h) for OtherCpuInfo.ProcessorFeatures:
# PF_COMPARE_EXCHANGE_DOUBLE 2, PF_MMX_INSTRUCTIONS_AVAILABLE 3,
# PF_XMMI_INSTRUCTIONS_AVAILABLE 6, PF_RDTSC_INSTRUCTION_AVAILABLE 8,
# PF_PAE_ENABLED 9, PF_XMMI64_INSTRUCTIONS_AVAILABLE 10, PF_NX_ENABLED 12,
# PF_SSE3_INSTRUCTIONS_AVAILABLE 13, PF_COMPARE_EXCHANGE128 14, PF_XSAVE_ENABLED 17.
DEFAULT_PROCESSOR_FEATURES = sum(1 << n for n in (2, 3, 6, 8, 9, 10, 12, 13, 14, 17))


def pack_x86_cpu_info(vendor: bytes, cpuid_version: int, cpuid_features: int) -> bytes:
    assert len(vendor) == 12
    return struct.pack("<12sIII", vendor, cpuid_version, cpuid_features, 0)


def pack_other_cpu_info(features: int = DEFAULT_PROCESSOR_FEATURES) -> bytes:
    return struct.pack("<QQ", features & (2**64 - 1), features >> 64) + bytes(8)


def pack_system_info(*, architecture: int, level: int, revision: int,
                     number_of_processors: int, major: int, minor: int,
                     build: int, csd_rva: int, suite_mask: int, cpu: bytes) -> bytes:
    assert len(cpu) == 24
    data = struct.pack(
        "<HHHBBIIIIIHH",
        architecture,
        level,
        revision,
        number_of_processors,
        VER_NT_WORKSTATION,
        major,
        minor,
        build,
        VER_PLATFORM_WIN32_NT,
        csd_rva,
        suite_mask,
        0,
    ) + cpu
    assert len(data) == SYSTEM_INFO_SIZE
    return data


# --------------------------------------------------------------------------
# MINIDUMP_MISC_INFO_2 (minidumpapiset.h), 44 (0x2c) bytes; the first 24
# bytes are MINIDUMP_MISC_INFO:
#   +0x00 ULONG32 SizeOfInfo
#   +0x04 ULONG32 Flags1   MINIDUMP_MISC1_PROCESS_ID 0x1,
#                          MINIDUMP_MISC1_PROCESS_TIMES 0x2,
#                          MINIDUMP_MISC1_PROCESSOR_POWER_INFO 0x4
#   +0x08 ULONG32 ProcessId
#   +0x0c ULONG32 ProcessCreateTime   (time_t, seconds since 1970)
#   +0x10 ULONG32 ProcessUserTime
#   +0x14 ULONG32 ProcessKernelTime
#   +0x18 ULONG32 ProcessorMaxMhz, ProcessorCurrentMhz, ProcessorMhzLimit,
#                 ProcessorMaxIdleState, ProcessorCurrentIdleState (_2 only)
# --------------------------------------------------------------------------
MISC_INFO_SIZE = 0x18
MISC_INFO_2_SIZE = 0x2C
MINIDUMP_MISC1_PROCESS_ID = 0x1
MINIDUMP_MISC1_PROCESS_TIMES = 0x2


def pack_misc_info_2(pid: int, create_time: int | None) -> bytes:
    flags = MINIDUMP_MISC1_PROCESS_ID
    if create_time is not None:
        flags |= MINIDUMP_MISC1_PROCESS_TIMES
    data = struct.pack(
        "<IIIIII5I",
        MISC_INFO_2_SIZE,
        flags,
        pid,
        create_time or 0,
        0,
        0,
        0, 0, 0, 0, 0,
    )
    assert len(data) == MISC_INFO_2_SIZE
    return data


# --------------------------------------------------------------------------
# MINIDUMP_THREAD_LIST: ULONG32 NumberOfThreads; MINIDUMP_THREAD Threads[].
# MINIDUMP_THREAD (minidumpapiset.h), 48 (0x30) bytes:
#   +0x00 ULONG32 ThreadId
#   +0x04 ULONG32 SuspendCount
#   +0x08 ULONG32 PriorityClass
#   +0x0c ULONG32 Priority
#   +0x10 ULONG64 Teb
#   +0x18 MINIDUMP_MEMORY_DESCRIPTOR Stack (16 bytes, see below)
#   +0x28 MINIDUMP_LOCATION_DESCRIPTOR ThreadContext
# --------------------------------------------------------------------------
THREAD_SIZE = 0x30
NORMAL_PRIORITY_CLASS = 0x20


def pack_thread(*, tid: int, suspend_count: int, priority_class: int,
                priority: int, teb: int, stack_start: int, stack_size: int,
                stack_rva: int, context_size: int, context_rva: int) -> bytes:
    data = (
        struct.pack("<IIIIQ", tid, suspend_count, priority_class, priority, teb)
        + pack_memory_descriptor(stack_start, stack_size, stack_rva)
        + pack_location(context_size, context_rva)
    )
    assert len(data) == THREAD_SIZE
    return data


# --------------------------------------------------------------------------
# CONTEXT records (winnt.h).
#
# x86 CONTEXT, 0x2cc bytes:
#   +0x000 ContextFlags, +0x004 Dr0..Dr3, Dr6, Dr7,
#   +0x01c FLOATING_SAVE_AREA FloatSave (0x70 bytes),
#   +0x08c SegGs, SegFs, SegEs, SegDs, +0x09c Edi, Esi, Ebx, Edx, Ecx, Eax,
#   +0x0b4 Ebp, +0x0b8 Eip, +0x0bc SegCs, +0x0c0 EFlags, +0x0c4 Esp,
#   +0x0c8 SegSs, +0x0cc ExtendedRegisters[512]
# CONTEXT_i386 0x00010000 | CONTROL 1 | INTEGER 2 | SEGMENTS 4 |
#   FLOATING_POINT 8 | DEBUG_REGISTERS 0x10 | EXTENDED_REGISTERS 0x20
#   = CONTEXT_ALL 0x0001003f.
#
# AMD64 CONTEXT, 0x4d0 bytes (16-byte aligned in memory):
#   +0x000 P1Home..P6Home, +0x030 ContextFlags, +0x034 MxCsr,
#   +0x038 SegCs, SegDs, SegEs, SegFs, SegGs, SegSs (USHORT each),
#   +0x044 EFlags, +0x048 Dr0..Dr3, Dr6, Dr7, +0x078 Rax, Rcx, Rdx, Rbx,
#   +0x098 Rsp, +0x0a0 Rbp, Rsi, Rdi, R8..R15, +0x0f8 Rip,
#   +0x100 XMM_SAVE_AREA32 FltSave (0x200), +0x300 VectorRegister[26],
#   +0x4a0 VectorControl, DebugControl, LastBranchToRip, LastBranchFromRip,
#   LastExceptionToRip, LastExceptionFromRip -> 0x4d0.
# CONTEXT_AMD64 0x00100000 | CONTROL 1 | INTEGER 2 | SEGMENTS 4 |
#   FLOATING_POINT 8 | DEBUG_REGISTERS 0x10 = CONTEXT_ALL 0x0010001f
#   (0x20 is not a defined AMD64 context bit; 0x40 is CONTEXT_XSTATE).
# --------------------------------------------------------------------------
CONTEXT_X86_SIZE = 0x2CC
CONTEXT_X86_FLAGS_OFFSET = 0x000
CONTEXT_X86_ESP_OFFSET = 0x0C4
CONTEXT_X86_ALL = 0x0001003F

CONTEXT_AMD64_SIZE = 0x4D0
CONTEXT_AMD64_FLAGS_OFFSET = 0x030
CONTEXT_AMD64_MXCSR_OFFSET = 0x034
CONTEXT_AMD64_RSP_OFFSET = 0x098
CONTEXT_AMD64_ALL = 0x0010001F
MXCSR_DEFAULT = 0x1F80  # all exceptions masked, round-to-nearest


# Integer registers by name (offsets from the layouts above; the same offsets are listed
# in /work/shared/docs/leak-triage.md section 2.2, from rust-minidump's field order).
CONTEXT_X86_REGISTERS = {"edi": 0x9C, "esi": 0xA0, "ebx": 0xA4, "edx": 0xA8, "ecx": 0xAC,
                         "eax": 0xB0, "ebp": 0xB4, "eip": 0xB8, "esp": 0xC4}
CONTEXT_AMD64_REGISTERS = {"rax": 0x78, "rcx": 0x80, "rdx": 0x88, "rbx": 0x90, "rsp": 0x98,
                           "rbp": 0xA0, "rsi": 0xA8, "rdi": 0xB0,
                           **{f"r{i}": 0xB8 + 8 * (i - 8) for i in range(8, 16)},
                           "rip": 0xF8}
assert CONTEXT_AMD64_REGISTERS["r15"] == 0xF0
assert CONTEXT_AMD64_REGISTERS["rsp"] == CONTEXT_AMD64_RSP_OFFSET
assert CONTEXT_X86_REGISTERS["esp"] == CONTEXT_X86_ESP_OFFSET


def context_registers(arch: str) -> dict[str, int]:
    """Register name -> offset in the CONTEXT of ``arch``."""
    if arch == "x86":
        return CONTEXT_X86_REGISTERS
    if arch == "x64":
        return CONTEXT_AMD64_REGISTERS
    raise ValueError(f"unknown arch {arch!r}")


def pack_context(arch: str, stack_pointer: int, registers: dict[str, int] | None = None) -> bytes:
    """A zeroed CONTEXT with ContextFlags and the stack pointer set; ``registers``
    {name: value} sets integer registers (context_registers), "esp"/"rsp" included."""
    if arch == "x86":
        ctx = bytearray(CONTEXT_X86_SIZE)
        struct.pack_into("<I", ctx, CONTEXT_X86_FLAGS_OFFSET, CONTEXT_X86_ALL)
        struct.pack_into("<I", ctx, CONTEXT_X86_ESP_OFFSET, stack_pointer & 0xFFFFFFFF)
        form, mask = "<I", 0xFFFFFFFF
    elif arch == "x64":
        ctx = bytearray(CONTEXT_AMD64_SIZE)
        struct.pack_into("<I", ctx, CONTEXT_AMD64_FLAGS_OFFSET, CONTEXT_AMD64_ALL)
        struct.pack_into("<I", ctx, CONTEXT_AMD64_MXCSR_OFFSET, MXCSR_DEFAULT)
        struct.pack_into("<Q", ctx, CONTEXT_AMD64_RSP_OFFSET, stack_pointer)
        form, mask = "<Q", (1 << 64) - 1
    else:
        raise ValueError(f"unknown arch {arch!r}")
    offsets = context_registers(arch)
    for name, value in (registers or {}).items():
        if name not in offsets:
            raise ValueError(f"no {arch} register {name!r}; known: {sorted(offsets)}")
        if not 0 <= value <= mask:
            raise ValueError(f"{name} = {value:#x} does not fit the register")
        struct.pack_into(form, ctx, offsets[name], value)
    return bytes(ctx)


# --------------------------------------------------------------------------
# MINIDUMP_MODULE_LIST: ULONG32 NumberOfModules; MINIDUMP_MODULE Modules[].
# MINIDUMP_MODULE (minidumpapiset.h), 108 (0x6c) bytes:
#   +0x00 ULONG64 BaseOfImage
#   +0x08 ULONG32 SizeOfImage
#   +0x0c ULONG32 CheckSum
#   +0x10 ULONG32 TimeDateStamp
#   +0x14 RVA     ModuleNameRva        -> MINIDUMP_STRING (full path)
#   +0x18 VS_FIXEDFILEINFO VersionInfo (0x34 bytes)
#   +0x4c MINIDUMP_LOCATION_DESCRIPTOR CvRecord
#   +0x54 MINIDUMP_LOCATION_DESCRIPTOR MiscRecord
#   +0x5c ULONG64 Reserved0
#   +0x64 ULONG64 Reserved1
# --------------------------------------------------------------------------
MODULE_SIZE = 0x6C

# VS_FIXEDFILEINFO (verrsrc.h), 13 DWORDs = 0x34 bytes:
#   dwSignature 0xFEEF04BD, dwStrucVersion 0x00010000, dwFileVersionMS,
#   dwFileVersionLS, dwProductVersionMS, dwProductVersionLS,
#   dwFileFlagsMask, dwFileFlags, dwFileOS, dwFileType, dwFileSubtype,
#   dwFileDateMS, dwFileDateLS
VS_FIXEDFILEINFO_SIZE = 0x34
VS_FFI_SIGNATURE = 0xFEEF04BD
VS_FFI_STRUCVERSION = 0x00010000
VS_FFI_FILEFLAGSMASK = 0x0000003F
VOS_NT_WINDOWS32 = 0x00040004
VFT_APP = 0x1
VFT_DLL = 0x2


def pack_fixed_file_info(file_version: tuple[int, int, int, int],
                         product_version: tuple[int, int, int, int],
                         file_type: int) -> bytes:
    fa, fb, fc, fd = file_version
    pa, pb, pc, pd = product_version
    data = struct.pack(
        "<13I",
        VS_FFI_SIGNATURE,
        VS_FFI_STRUCVERSION,
        (fa << 16) | fb,
        (fc << 16) | fd,
        (pa << 16) | pb,
        (pc << 16) | pd,
        VS_FFI_FILEFLAGSMASK,
        0,
        VOS_NT_WINDOWS32,
        file_type,
        0,
        0,
        0,
    )
    assert len(data) == VS_FIXEDFILEINFO_SIZE
    return data


def pack_module(*, base: int, size: int, checksum: int, timestamp: int,
                name_rva: int, version_info: bytes, cv_size: int, cv_rva: int) -> bytes:
    data = (
        struct.pack("<QIIII", base, size, checksum, timestamp, name_rva)
        + version_info
        + pack_location(cv_size, cv_rva)
        + pack_location(0, 0)
        + struct.pack("<QQ", 0, 0)
    )
    assert len(data) == MODULE_SIZE
    return data


# --------------------------------------------------------------------------
# CodeView PDB 7.0 record ("RSDS"), pointed to by MINIDUMP_MODULE.CvRecord;
# the same bytes as the PE debug directory entry of type
# IMAGE_DEBUG_TYPE_CODEVIEW (documented in the PE/COFF specification and in
# Microsoft's "CodeView" notes):
#   +0x00 DWORD CvSignature  'RSDS' = 0x53445352
#   +0x04 GUID  Signature    Data1 (LE u32), Data2 (LE u16), Data3 (LE u16),
#                            Data4[8]  == uuid.UUID.bytes_le
#   +0x14 DWORD Age
#   +0x18 char  PdbFileName[] NUL-terminated (UTF-8 / ANSI)
# --------------------------------------------------------------------------
CV_SIGNATURE_RSDS = 0x53445352


def pack_cv_rsds(guid: uuid.UUID, age: int, pdb_name: str) -> bytes:
    return (
        struct.pack("<I", CV_SIGNATURE_RSDS)
        + guid.bytes_le
        + struct.pack("<I", age)
        + pdb_name.encode("utf-8")
        + b"\x00"
    )


# --------------------------------------------------------------------------
# MINIDUMP_MEMORY_DESCRIPTOR (minidumpapiset.h), 16 bytes:
#   +0x00 ULONG64 StartOfMemoryRange
#   +0x08 MINIDUMP_LOCATION_DESCRIPTOR Memory { DataSize; Rva }
# MINIDUMP_MEMORY_LIST: ULONG32 NumberOfMemoryRanges; descriptors follow
# directly (no padding, pack(4)).
# --------------------------------------------------------------------------
MEMORY_DESCRIPTOR_SIZE = 0x10


def pack_memory_descriptor(start: int, size: int, rva: int) -> bytes:
    return struct.pack("<QII", start, size, rva)


# --------------------------------------------------------------------------
# MINIDUMP_MEMORY64_LIST (minidumpapiset.h), 16-byte header:
#   +0x00 ULONG64 NumberOfMemoryRanges
#   +0x08 RVA64   BaseRva   file offset of the first range's bytes; all
#                           ranges' bytes follow back to back in list order
# MINIDUMP_MEMORY_DESCRIPTOR64, 16 bytes:
#   +0x00 ULONG64 StartOfMemoryRange
#   +0x08 ULONG64 DataSize
# --------------------------------------------------------------------------
MEMORY64_LIST_HEADER_SIZE = 0x10
MEMORY_DESCRIPTOR64_SIZE = 0x10


def pack_memory64_header(count: int, base_rva: int) -> bytes:
    return struct.pack("<QQ", count, base_rva)


def pack_memory_descriptor64(start: int, size: int) -> bytes:
    return struct.pack("<QQ", start, size)


# --------------------------------------------------------------------------
# MINIDUMP_MEMORY_INFO_LIST (minidumpapiset.h), 16-byte header:
#   +0x00 ULONG   SizeOfHeader     (16)
#   +0x04 ULONG   SizeOfEntry      (48)
#   +0x08 ULONG64 NumberOfEntries
# MINIDUMP_MEMORY_INFO, 48 (0x30) bytes (same shape as
# MEMORY_BASIC_INFORMATION64):
#   +0x00 ULONG64 BaseAddress
#   +0x08 ULONG64 AllocationBase
#   +0x10 ULONG32 AllocationProtect
#   +0x14 ULONG32 __alignment1
#   +0x18 ULONG64 RegionSize
#   +0x20 ULONG32 State     MEM_COMMIT 0x1000, MEM_RESERVE 0x2000, MEM_FREE 0x10000
#   +0x24 ULONG32 Protect
#   +0x28 ULONG32 Type      MEM_PRIVATE 0x20000, MEM_MAPPED 0x40000, MEM_IMAGE 0x1000000
#   +0x2c ULONG32 __alignment2
# --------------------------------------------------------------------------
MEMORY_INFO_LIST_HEADER_SIZE = 0x10
MEMORY_INFO_SIZE = 0x30

MEM_COMMIT = 0x1000
MEM_RESERVE = 0x2000
MEM_FREE = 0x10000
MEM_PRIVATE = 0x20000
MEM_MAPPED = 0x40000
MEM_IMAGE = 0x1000000

# Page protection constants (winnt.h).
PAGE_NOACCESS = 0x01
PAGE_READONLY = 0x02
PAGE_READWRITE = 0x04
PAGE_WRITECOPY = 0x08
PAGE_EXECUTE_READ = 0x20
PAGE_EXECUTE_READWRITE = 0x40
PAGE_EXECUTE_WRITECOPY = 0x80
PAGE_GUARD = 0x100


def pack_memory_info_header(count: int) -> bytes:
    return struct.pack("<IIQ", MEMORY_INFO_LIST_HEADER_SIZE, MEMORY_INFO_SIZE, count)


def pack_memory_info(*, base: int, allocation_base: int, allocation_protect: int,
                     size: int, state: int, protect: int, type_: int) -> bytes:
    data = struct.pack(
        "<QQIIQIIII",
        base,
        allocation_base,
        allocation_protect,
        0,
        size,
        state,
        protect,
        type_,
        0,
    )
    assert len(data) == MEMORY_INFO_SIZE
    return data
