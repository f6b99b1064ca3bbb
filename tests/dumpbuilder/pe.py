"""PE images (headers, section table, export and debug directories) for dumps.

A loaded module's memory is its PE image in *mapped* layout: the headers at
the base, each section at its RVA (never at its file offset).  PeImage makes
such an image from a description (synthetic modules: export names and RVAs of
our choosing) or from the bytes of a real PE file (tests/pdb/tiny.dll), and
says which bytes a dump of it captures.

Every structure is written with literal offsets transcribed from the
"Microsoft PE/COFF specification" (Microsoft Learn, "PE Format"); the comment
above each one names the specification's section.  The CodeView RSDS record the
debug directory points at is structs.pack_cv_rsds (the same record a
MINIDUMP_MODULE's CvRecord holds).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from . import structs as fmt

PAGE = 0x1000

# ---------------------------------------------------------------------------
# "MS-DOS Stub (Image Only)": an MS-DOS header whose e_magic is "MZ"; "at
# location 0x3c, the stub has the file offset to the PE signature".
DOS_MAGIC = b"MZ"
E_LFANEW = 0x3C
PE_OFFSET = 0x80            # where our images put the PE signature
# A conventional DOS stub program (prints the message and exits), for realism only.
DOS_STUB = (bytes.fromhex("0e1fba0e00b409cd21b8014ccd21")
            + b"This program cannot be run in DOS mode.\r\r\n$")

# "Signature (Image Only)": 4 bytes "PE\0\0" at e_lfanew.
PE_SIGNATURE = b"PE\x00\x00"

# "COFF File Header (Object and Image)", 20 bytes:
#   +0 Machine u16  +2 NumberOfSections u16  +4 TimeDateStamp u32
#   +8 PointerToSymbolTable u32  +12 NumberOfSymbols u32
#   +16 SizeOfOptionalHeader u16  +18 Characteristics u16
COFF_HEADER_SIZE = 20
# "Machine Types".
IMAGE_FILE_MACHINE_I386 = 0x014C
IMAGE_FILE_MACHINE_AMD64 = 0x8664
MACHINE_BY_ARCH = {"x86": IMAGE_FILE_MACHINE_I386, "x64": IMAGE_FILE_MACHINE_AMD64}
ARCH_BY_MACHINE = {v: k for k, v in MACHINE_BY_ARCH.items()}
# "Characteristics" (image file flags).
IMAGE_FILE_EXECUTABLE_IMAGE = 0x0002
IMAGE_FILE_LARGE_ADDRESS_AWARE = 0x0020
IMAGE_FILE_32BIT_MACHINE = 0x0100
IMAGE_FILE_DLL = 0x2000

# "Optional Header (Image Only)": Magic 0x10b = PE32, 0x20b = PE32+.
PE32_MAGIC = 0x010B
PE32PLUS_MAGIC = 0x020B
# Size of the optional header with all 16 data directories:
#   PE32: 28 standard + 68 Windows-specific + 16*8 = 224;
#   PE32+: 24 standard + 88 Windows-specific + 16*8 = 240.
OPTIONAL_HEADER_SIZE = {"x86": 0xE0, "x64": 0xF0}
NUMBER_OF_RVA_AND_SIZES = 16


@dataclass(frozen=True)
class OptionalHeaderLayout:
    """Offsets from the start of the optional header ("Optional Header Standard
    Fields" and "Optional Header Windows-Specific Fields (Image Only)")."""

    magic: int
    size_of_code: int
    size_of_initialized_data: int
    address_of_entry_point: int
    base_of_code: int
    base_of_data: int | None     # PE32 only
    image_base: int              # u32 in PE32, u64 in PE32+
    section_alignment: int
    file_alignment: int
    major_os_version: int
    major_subsystem_version: int
    size_of_image: int
    size_of_headers: int
    checksum: int
    subsystem: int
    dll_characteristics: int
    size_of_stack_reserve: int   # four ptr-sized fields from here
    loader_flags: int
    number_of_rva_and_sizes: int
    data_directories: int        # "Optional Header Data Directories (Image Only)"
    ptr: int


OPT_PE32 = OptionalHeaderLayout(magic=0, size_of_code=4, size_of_initialized_data=8,
                                address_of_entry_point=16, base_of_code=20, base_of_data=24,
                                image_base=28, section_alignment=32, file_alignment=36,
                                major_os_version=40, major_subsystem_version=48,
                                size_of_image=56, size_of_headers=60, checksum=64, subsystem=68,
                                dll_characteristics=70, size_of_stack_reserve=72,
                                loader_flags=88, number_of_rva_and_sizes=92,
                                data_directories=96, ptr=4)
OPT_PE32PLUS = OptionalHeaderLayout(magic=0, size_of_code=4, size_of_initialized_data=8,
                                    address_of_entry_point=16, base_of_code=20, base_of_data=None,
                                    image_base=24, section_alignment=32, file_alignment=36,
                                    major_os_version=40, major_subsystem_version=48,
                                    size_of_image=56, size_of_headers=60, checksum=64,
                                    subsystem=68, dll_characteristics=70,
                                    size_of_stack_reserve=72, loader_flags=104,
                                    number_of_rva_and_sizes=108, data_directories=112, ptr=8)
OPT_LAYOUT = {"x86": OPT_PE32, "x64": OPT_PE32PLUS}

# "Windows Subsystem".
IMAGE_SUBSYSTEM_WINDOWS_GUI = 2
IMAGE_SUBSYSTEM_WINDOWS_CUI = 3
# "DLL Characteristics".
IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA = 0x0020
IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE = 0x0040
IMAGE_DLLCHARACTERISTICS_NX_COMPAT = 0x0100
# "Optional Header Data Directories (Image Only)": index of each 8-byte
# IMAGE_DATA_DIRECTORY { VirtualAddress u32, Size u32 }.
DIR_EXPORT = 0
DIR_BASERELOC = 5
DIR_DEBUG = 6

# "Section Table (Section Headers)", 40 bytes:
#   +0 Name[8]  +8 VirtualSize  +12 VirtualAddress  +16 SizeOfRawData
#   +20 PointerToRawData  +24 PointerToRelocations  +28 PointerToLinenumbers
#   +32 NumberOfRelocations u16  +34 NumberOfLinenumbers u16  +36 Characteristics
SECTION_HEADER_SIZE = 40
# "Section Flags".
IMAGE_SCN_CNT_CODE = 0x00000020
IMAGE_SCN_CNT_INITIALIZED_DATA = 0x00000040
IMAGE_SCN_MEM_EXECUTE = 0x20000000
IMAGE_SCN_MEM_READ = 0x40000000
IMAGE_SCN_MEM_WRITE = 0x80000000
SCN_TEXT = IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_READ      # 0x60000020
SCN_RDATA = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ                # 0x40000040
SCN_DATA = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ | IMAGE_SCN_MEM_WRITE  # 0xC0000040

# "The .edata Section (Image Only)" -> "Export Directory Table", 40 bytes:
#   +0 Export Flags  +4 Time/Date Stamp  +8 Major Version u16  +10 Minor Version u16
#   +12 Name RVA  +16 Ordinal Base  +20 Address Table Entries  +24 Number of Name Pointers
#   +28 Export Address Table RVA  +32 Name Pointer RVA  +36 Ordinal Table RVA
# "Export Address Table": u32 per entry, an export RVA, or a forwarder RVA when
#   it lies inside the export section given by the data directory ("DLL.Name").
# "Export Name Pointer Table": u32 name RVAs, sorted lexically (binary search).
# "Export Ordinal Table": u16 per name, an (unbiased) index into the EAT.
EXPORT_DIRECTORY_SIZE = 40

# "The .reloc Section (Image Only)": blocks of {Page RVA u32, Block Size u32} followed by
# u16 entries, type in the high 4 bits and offset in the page in the low 12.
# "Base Relocation Types": ABSOLUTE (0) is padding, HIGHLOW (3) adds the low 32 bits of
# the delta to a u32, DIR64 (10) adds the delta to a u64.
IMAGE_REL_BASED_ABSOLUTE = 0
IMAGE_REL_BASED_HIGHLOW = 3
IMAGE_REL_BASED_DIR64 = 10

# "The .debug Section" -> "Debug Directory (Image Only)", 28 bytes:
#   +0 Characteristics  +4 TimeDateStamp  +8 MajorVersion u16  +10 MinorVersion u16
#   +12 Type  +16 SizeOfData  +20 AddressOfRawData  +24 PointerToRawData
DEBUG_DIRECTORY_SIZE = 28
# "Debug Type".
IMAGE_DEBUG_TYPE_CODEVIEW = 2

FILE_ALIGNMENT = 0x200
HEADERS_SIZE = 0x400        # SizeOfHeaders of synthetic images (file-aligned)

CAPTURES = ("full", "headers_and_exports", "none")
CORRUPT_EXPORTS = ("bad_rva", "huge_count", "names_out_of_image")
HUGE_COUNT = 0x40000001     # 4 * this wraps to 4 in 32-bit arithmetic


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


@dataclass
class Section:
    name: str
    rva: int
    virtual_size: int
    characteristics: int
    raw_pointer: int = 0
    raw_size: int = 0
    data: bytes | None = None    # mapped bytes from rva (None: synthetic fill)

    @property
    def end(self) -> int:
        return self.rva + self.virtual_size

    @property
    def mapped_end(self) -> int:
        return self.rva + _align(self.virtual_size, PAGE)

    @property
    def protect(self) -> int:
        c = self.characteristics
        if c & IMAGE_SCN_MEM_EXECUTE:
            return fmt.PAGE_EXECUTE_READ
        if c & IMAGE_SCN_MEM_WRITE:
            return fmt.PAGE_READWRITE
        return fmt.PAGE_READONLY


@dataclass
class Export:
    name: str
    rva: int
    ordinal: int = 0
    forwarder: str | None = None   # "DLL.Function" when forwarded
    name_rva: int = 0


@dataclass
class CodeView:
    guid: uuid.UUID
    age: int
    pdb_name: str

    def record(self) -> bytes:
        return fmt.pack_cv_rsds(self.guid, self.age, self.pdb_name)


@dataclass
class PeImage:
    """A PE image in mapped layout."""

    file_name: str
    arch: str
    size_of_image: int
    sections: list[Section]
    headers: bytes
    exports: list[Export] = field(default_factory=list)
    export_dir: tuple[int, int] = (0, 0)        # data directory [0]: rva, size
    debug_dir: tuple[int, int] = (0, 0)         # data directory [6]: rva, size
    codeview: CodeView | None = None
    codeview_rva: int = 0
    ordinal_base: int = 1
    corrupt_exports: str | None = None
    corruption: dict | None = None
    real: bool = False
    patches: list[tuple[int, bytes]] = field(default_factory=list)   # rva -> bytes over the image
    preferred_base: int = 0
    image_base_offset: int = 0          # where OptionalHeader.ImageBase sits in the headers
    rebased_to: int | None = None

    # ------------------------------------------------------------ queries
    def section_of(self, rva: int) -> Section | None:
        for s in self.sections:
            if s.rva <= rva < s.mapped_end:
                return s
        return None

    def symbol_exports(self) -> list[Export]:
        """Exports a correct reader may use to name addresses: named, not forwarded,
        pointing inside the image; none at all when the export directory is corrupt."""
        if self.corrupt_exports is not None:
            return []
        return sorted((e for e in self.exports if e.forwarder is None and 0 < e.rva < self.size_of_image),
                      key=lambda e: e.rva)

    def mapped(self, rva: int, size: int) -> bytes:
        """The bytes of [rva, rva+size) of the mapped image."""
        out = bytearray(size)
        end = rva + size

        def put(at: int, blob: bytes) -> None:
            lo, hi = max(at, rva), min(at + len(blob), end)
            if hi > lo:
                out[lo - rva:hi - rva] = blob[lo - at:hi - at]

        put(0, self.headers)
        for s in self.sections:
            if s.data is not None:
                put(s.rva, s.data)
            elif s.characteristics & IMAGE_SCN_MEM_EXECUTE:
                lo, hi = max(s.rva, rva), min(s.mapped_end, end)
                if hi > lo:
                    out[lo - rva:hi - rva] = b"\xCC" * (hi - lo)   # int3 filler for code
        for at, blob in self.patches:
            put(at, blob)
        return bytes(out)

    def capture_spans(self, capture: str) -> list[tuple[int, int]]:
        """Page-aligned [rva, end) spans a dump of this module captures."""
        if capture not in CAPTURES:
            raise ValueError(f"capture must be one of {CAPTURES}")
        if capture == "none":
            return []
        if capture == "full":
            return [(0, self.size_of_image)]
        spans = [(0, _align(len(self.headers), PAGE))]
        for rva, size in (self.export_dir, self.debug_dir):
            if rva and size:
                spans.append((rva & ~(PAGE - 1), _align(rva + size, PAGE)))
        if self.codeview_rva and self.codeview is not None:
            n = len(self.codeview.record())
            spans.append((self.codeview_rva & ~(PAGE - 1), _align(self.codeview_rva + n, PAGE)))
        spans.sort()
        merged: list[list[int]] = []
        for lo, hi in spans:
            hi = min(hi, self.size_of_image)
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        return [(lo, hi) for lo, hi in merged]

    def expected(self) -> dict:
        return {
            "file_name": self.file_name,
            "arch": self.arch,
            "machine": MACHINE_BY_ARCH[self.arch],
            "size_of_image": self.size_of_image,
            "real_file": self.real,
            "sections": [{"name": s.name, "rva": s.rva, "virtual_size": s.virtual_size,
                          "characteristics": s.characteristics} for s in self.sections],
            "export_directory": {"rva": self.export_dir[0], "size": self.export_dir[1],
                                 "ordinal_base": self.ordinal_base},
            "debug_directory": {"rva": self.debug_dir[0], "size": self.debug_dir[1]},
            "exports": [{"name": e.name, "ordinal": e.ordinal, "rva": e.rva,
                         "forwarder": e.forwarder} for e in sorted(self.exports, key=lambda e: e.name)],
            "corrupt_exports": self.corrupt_exports,
            "corruption": self.corruption,
            "preferred_base": self.preferred_base,
            "rebased_to": self.rebased_to,
        }

    def rebase(self, base: int) -> None:
        """Loaded away from its preferred base: the mapped headers' ImageBase holds
        the actual base, as the loader leaves it (UNCONFIRMED for every Windows
        version; no expected value depends on it).  The bytes are not fixed up here:
        for an image with base relocations pass relocation_patches(data, base) to
        DumpBuilder.add_pe_module(patches=...)."""
        ptr = 4 if self.arch == "x86" else 8
        self.patches.append((self.image_base_offset, base.to_bytes(ptr, "little")))
        self.rebased_to = base


# ---------------------------------------------------------------------------
def default_sections(size_of_image: int, data_start: int | None = None) -> list[tuple[str, int, int, int]]:
    """(.text, .rdata, .data) covering [0x1000, size_of_image): code 5/8 of the image,
    read-only data up to 7/8 (or ``data_start``), writable data the rest."""
    if size_of_image < 0x4000 or size_of_image % PAGE:
        raise ValueError("size_of_image must be a multiple of 0x1000, at least 0x4000")
    text_end = max(0x2000, (size_of_image * 5 // 8) & ~(PAGE - 1))
    rdata_end = (data_start if data_start is not None
                 else max(text_end + PAGE, (size_of_image * 7 // 8) & ~(PAGE - 1)))
    if not text_end < rdata_end < size_of_image:
        raise ValueError("bad section split")
    return [(".text", 0x1000, text_end - 0x1000, SCN_TEXT),
            (".rdata", text_end, rdata_end - text_end, SCN_RDATA),
            (".data", rdata_end, size_of_image - rdata_end, SCN_DATA)]


def build_image(file_name: str, arch: str, size_of_image: int, *,
                exports: dict[str, int] | None = None,
                forwarders: dict[str, str] | None = None,
                ordinal_base: int = 1, eat_gaps: int = 0,
                codeview: CodeView | None = None, timestamp: int = 0,
                sections: list[tuple[str, int, int, int]] | None = None,
                image_base: int = 0, dll: bool = True,
                corrupt_exports: str | None = None, exports_dir_always: bool = False) -> PeImage:
    """A synthetic image: headers, sections, and at the start of .rdata the export
    data (only when there are exports or forwarders), then one CodeView debug
    directory entry and its RSDS record.  The Export Address Table is ordered by RVA (forwarders last) and
    ordinals follow it, while the name pointer table is in name order, so the ordinal
    table is a real permutation; with ``eat_gaps`` unused (zero) EAT slots come first."""
    if arch not in MACHINE_BY_ARCH:
        raise ValueError(f"arch must be one of {tuple(MACHINE_BY_ARCH)}")
    if corrupt_exports is not None and corrupt_exports not in CORRUPT_EXPORTS:
        raise ValueError(f"corrupt_exports must be one of {CORRUPT_EXPORTS}")
    exports = dict(exports or {})
    forwarders = dict(forwarders or {})
    if set(exports) & set(forwarders):
        raise ValueError("a name is either an export or a forwarder")
    spec = sections or default_sections(size_of_image)
    secs = [Section(n, rva, vs, ch) for n, rva, vs, ch in spec]
    for a, b in zip(secs, secs[1:]):
        if a.mapped_end > b.rva:
            raise ValueError("sections overlap")
    if secs[-1].mapped_end != size_of_image:
        raise ValueError("the last section must end at SizeOfImage")
    text = next(s for s in secs if s.characteristics & IMAGE_SCN_MEM_EXECUTE)
    rdata = next(s for s in secs if s.name == ".rdata")
    for name, rva in exports.items():
        if not text.rva <= rva < text.end:
            raise ValueError(f"export {name} at {rva:#x} is outside {text.name}")
    if len(set(exports.values())) != len(exports):
        raise ValueError("two exports share an RVA (the text convention has no tie rule)")

    has_exports = bool(exports) or bool(forwarders) or exports_dir_always
    if corrupt_exports is not None and not has_exports:
        raise ValueError("corrupt_exports needs exports")
    edata = rdata.rva
    export_size = 0
    blob = bytearray()
    names: list[str] = []
    ordinal_of: dict[str, int] = {}
    name_rva: dict[str, int] = {}
    fwd_rva: dict[str, int] = {}
    corruption = None
    if has_exports:
        # ---- export data (".edata" layout, placed at the start of .rdata)
        names = sorted(list(exports) + list(forwarders), key=lambda n: n.encode("ascii"))
        ordinal_of = {n: ordinal_base + eat_gaps + i for i, n in enumerate(
            sorted(list(exports) + list(forwarders), key=lambda n: (exports.get(n, 1 << 40), n)))}
        nfunc = eat_gaps + len(names)
        eat_rva = edata + EXPORT_DIRECTORY_SIZE
        npt_rva = eat_rva + 4 * nfunc
        ot_rva = npt_rva + 4 * len(names)
        pos = _align(ot_rva + 2 * len(names), 4)
        strings = bytearray()
        dll_name_rva = pos
        strings += file_name.encode("ascii") + b"\x00"
        for n in names:
            name_rva[n] = pos + len(strings)
            strings += n.encode("ascii") + b"\x00"
        for n in sorted(forwarders):
            fwd_rva[n] = pos + len(strings)
            strings += forwarders[n].encode("ascii") + b"\x00"
        export_size = pos + len(strings) - edata

        eat = [0] * nfunc
        for n in names:
            eat[ordinal_of[n] - ordinal_base] = exports[n] if n in exports else fwd_rva[n]
        npt = [name_rva[n] for n in names]
        ot = [ordinal_of[n] - ordinal_base for n in names]
        directory = dict(flags=0, timestamp=timestamp, major=0, minor=0, name=dll_name_rva,
                         base=ordinal_base, nfunc=nfunc, nnames=len(names), eat=eat_rva,
                         npt=npt_rva, ot=ot_rva)
        if corrupt_exports == "bad_rva":
            directory["eat"] = size_of_image + 0x40
            corruption = {"kind": "bad_rva", "field": "AddressOfFunctions", "value": directory["eat"],
                          "detail": f"Export Address Table RVA {directory['eat']:#x} lies past "
                                    f"SizeOfImage {size_of_image:#x}"}
        elif corrupt_exports == "huge_count":
            directory["nfunc"] = directory["nnames"] = HUGE_COUNT
            corruption = {"kind": "huge_count", "field": "NumberOfFunctions/NumberOfNames",
                          "value": HUGE_COUNT,
                          "detail": f"NumberOfFunctions = NumberOfNames = {HUGE_COUNT:#x}: the tables "
                                    f"would run far past SizeOfImage {size_of_image:#x} "
                                    f"(and 4 * count wraps to 4 in 32 bits)"}
        elif corrupt_exports == "names_out_of_image":
            npt = [size_of_image + 0x10 * i for i in range(len(names))]
            corruption = {"kind": "names_out_of_image", "field": "AddressOfNames[]",
                          "value": npt[0] if npt else None,
                          "detail": f"every name RVA is >= SizeOfImage {size_of_image:#x}"}

        blob = bytearray(export_size)
        struct.pack_into("<IIHHIIIIIII", blob, 0, directory["flags"], directory["timestamp"],
                         directory["major"], directory["minor"], directory["name"], directory["base"],
                         directory["nfunc"], directory["nnames"], directory["eat"], directory["npt"],
                         directory["ot"])
        struct.pack_into(f"<{nfunc}I", blob, eat_rva - edata, *eat)
        struct.pack_into(f"<{len(npt)}I", blob, npt_rva - edata, *npt)
        struct.pack_into(f"<{len(ot)}H", blob, ot_rva - edata, *ot)
        blob[pos - edata:] = strings

    # ---- debug directory + CodeView record
    debug_rva = _align(edata + export_size, 4) if has_exports else edata
    cv_rva = debug_rva + DEBUG_DIRECTORY_SIZE
    rdata_blob = bytearray(blob) + bytes(debug_rva - edata - export_size)
    cv_bytes = codeview.record() if codeview is not None else b""
    if codeview is not None:
        rdata_blob += bytes(DEBUG_DIRECTORY_SIZE) + cv_bytes
    if len(rdata_blob) > rdata.virtual_size:
        raise ValueError(".rdata too small for the export and debug data")

    # ---- file layout (only the headers record it; the dump holds the mapped image)
    raw = HEADERS_SIZE
    for s in secs:
        s.raw_pointer = raw
        s.raw_size = _align(s.virtual_size, FILE_ALIGNMENT)
        raw += s.raw_size
    if codeview is not None:
        struct.pack_into("<IIHHIIII", rdata_blob, debug_rva - edata, 0, timestamp, 0, 0,
                         IMAGE_DEBUG_TYPE_CODEVIEW, len(cv_bytes), cv_rva,
                         cv_rva - rdata.rva + rdata.raw_pointer)
    rdata.data = bytes(rdata_blob)

    headers = _headers(arch, secs, size_of_image=size_of_image, timestamp=timestamp,
                       image_base=image_base, dll=dll,
                       export_dir=(edata, export_size) if has_exports else (0, 0),
                       debug_dir=(debug_rva, DEBUG_DIRECTORY_SIZE) if codeview else (0, 0))
    ex = [Export(n, exports.get(n, fwd_rva.get(n, 0)), ordinal_of[n], forwarders.get(n), name_rva[n])
          for n in names]
    return PeImage(file_name=file_name, arch=arch, size_of_image=size_of_image, sections=secs,
                   headers=headers, exports=ex, preferred_base=image_base,
                   image_base_offset=PE_OFFSET + 4 + COFF_HEADER_SIZE + OPT_LAYOUT[arch].image_base,
                   export_dir=(edata, export_size) if has_exports else (0, 0),
                   debug_dir=(debug_rva, DEBUG_DIRECTORY_SIZE) if codeview else (0, 0),
                   codeview=codeview, codeview_rva=cv_rva if codeview else 0,
                   ordinal_base=ordinal_base, corrupt_exports=corrupt_exports,
                   corruption=corruption)


def _headers(arch: str, secs: list[Section], *, size_of_image: int, timestamp: int,
             image_base: int, dll: bool, export_dir: tuple[int, int],
             debug_dir: tuple[int, int]) -> bytes:
    buf = bytearray(HEADERS_SIZE)
    # MS-DOS header: e_magic, e_cblp 0x90, e_cp 3, e_cparhdr 4, e_maxalloc 0xffff,
    # e_sp 0xb8, e_lfarlc 0x40 (conventional values), e_lfanew at 0x3c.
    buf[0:2] = DOS_MAGIC
    struct.pack_into("<HHHHHHHHH", buf, 2, 0x90, 3, 0, 4, 0, 0xFFFF, 0, 0xB8, 0)
    struct.pack_into("<H", buf, 0x18, 0x40)
    struct.pack_into("<I", buf, E_LFANEW, PE_OFFSET)
    buf[0x40:0x40 + len(DOS_STUB)] = DOS_STUB
    buf[PE_OFFSET:PE_OFFSET + 4] = PE_SIGNATURE
    opt_size = OPTIONAL_HEADER_SIZE[arch]
    chars = IMAGE_FILE_EXECUTABLE_IMAGE
    chars |= IMAGE_FILE_32BIT_MACHINE if arch == "x86" else IMAGE_FILE_LARGE_ADDRESS_AWARE
    if dll:
        chars |= IMAGE_FILE_DLL
    struct.pack_into("<HHIIIHH", buf, PE_OFFSET + 4, MACHINE_BY_ARCH[arch], len(secs), timestamp,
                     0, 0, opt_size, chars)
    o = PE_OFFSET + 4 + COFF_HEADER_SIZE
    L = OPT_LAYOUT[arch]
    pf = "<I" if L.ptr == 4 else "<Q"
    code = sum(s.raw_size for s in secs if s.characteristics & IMAGE_SCN_CNT_CODE)
    idata = sum(s.raw_size for s in secs if s.characteristics & IMAGE_SCN_CNT_INITIALIZED_DATA)
    text = next(s for s in secs if s.characteristics & IMAGE_SCN_CNT_CODE)
    struct.pack_into("<H", buf, o + L.magic, PE32_MAGIC if arch == "x86" else PE32PLUS_MAGIC)
    struct.pack_into("<BB", buf, o + 2, 14, 36)                 # linker version (informational)
    struct.pack_into("<I", buf, o + L.size_of_code, code)
    struct.pack_into("<I", buf, o + L.size_of_initialized_data, idata)
    struct.pack_into("<I", buf, o + L.address_of_entry_point, 0 if dll else text.rva)
    struct.pack_into("<I", buf, o + L.base_of_code, text.rva)
    if L.base_of_data is not None:
        nxt = next((s for s in secs if not s.characteristics & IMAGE_SCN_CNT_CODE), text)
        struct.pack_into("<I", buf, o + L.base_of_data, nxt.rva)
    struct.pack_into(pf, buf, o + L.image_base, image_base)
    struct.pack_into("<II", buf, o + L.section_alignment, PAGE, FILE_ALIGNMENT)
    struct.pack_into("<HHHHHH", buf, o + L.major_os_version, 6, 0, 0, 0, 6, 0)
    struct.pack_into("<I", buf, o + L.size_of_image, size_of_image)
    struct.pack_into("<I", buf, o + L.size_of_headers, HEADERS_SIZE)
    struct.pack_into("<I", buf, o + L.checksum, 0)
    struct.pack_into("<H", buf, o + L.subsystem,
                     IMAGE_SUBSYSTEM_WINDOWS_GUI if dll else IMAGE_SUBSYSTEM_WINDOWS_CUI)
    dllc = IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE | IMAGE_DLLCHARACTERISTICS_NX_COMPAT
    if arch == "x64":
        dllc |= IMAGE_DLLCHARACTERISTICS_HIGH_ENTROPY_VA
    struct.pack_into("<H", buf, o + L.dll_characteristics, dllc)
    stack_heap = (0x100000, 0x1000, 0x100000, 0x1000)
    for i, v in enumerate(stack_heap):
        struct.pack_into(pf, buf, o + L.size_of_stack_reserve + i * L.ptr, v)
    struct.pack_into("<I", buf, o + L.loader_flags, 0)
    struct.pack_into("<I", buf, o + L.number_of_rva_and_sizes, NUMBER_OF_RVA_AND_SIZES)
    d = o + L.data_directories
    struct.pack_into("<II", buf, d + 8 * DIR_EXPORT, *export_dir)
    struct.pack_into("<II", buf, d + 8 * DIR_DEBUG, *debug_dir)
    sh = o + opt_size
    for i, s in enumerate(secs):
        at = sh + SECTION_HEADER_SIZE * i
        buf[at:at + 8] = s.name.encode("ascii").ljust(8, b"\x00")
        struct.pack_into("<IIII", buf, at + 8, s.virtual_size, s.rva, s.raw_size, s.raw_pointer)
        struct.pack_into("<I", buf, at + 36, s.characteristics)
    assert sh + SECTION_HEADER_SIZE * len(secs) <= HEADERS_SIZE
    return bytes(buf)


# ---------------------------------------------------------------------------
def _cstr(data: bytes, off: int, limit: int = 512) -> str:
    end = data.index(b"\x00", off, off + limit)
    return data[off:end].decode("ascii")


def load_image(data: bytes, file_name: str) -> PeImage:
    """A real PE file laid out as the loader maps it (headers at 0, each section's
    raw data at its RVA, zero-filled to VirtualSize).  Relocations are not applied:
    load it at its preferred ImageBase."""
    if data[:2] != DOS_MAGIC:
        raise ValueError("not an MZ image")
    (pe,) = struct.unpack_from("<I", data, E_LFANEW)
    if data[pe:pe + 4] != PE_SIGNATURE:
        raise ValueError("no PE signature")
    machine, nsec, _ts, _sp, _ns, opt_size, _ch = struct.unpack_from("<HHIIIHH", data, pe + 4)
    arch = ARCH_BY_MACHINE[machine]
    o = pe + 4 + COFF_HEADER_SIZE
    L = OPT_LAYOUT[arch]
    (magic,) = struct.unpack_from("<H", data, o)
    if magic != (PE32_MAGIC if arch == "x86" else PE32PLUS_MAGIC):
        raise ValueError("optional header magic does not match the machine")
    (preferred,) = struct.unpack_from("<I" if L.ptr == 4 else "<Q", data, o + L.image_base)
    (size_of_image,) = struct.unpack_from("<I", data, o + L.size_of_image)
    (size_of_headers,) = struct.unpack_from("<I", data, o + L.size_of_headers)
    d = o + L.data_directories
    export_dir = struct.unpack_from("<II", data, d + 8 * DIR_EXPORT)
    debug_dir = struct.unpack_from("<II", data, d + 8 * DIR_DEBUG)
    secs = []
    for i in range(nsec):
        at = o + opt_size + SECTION_HEADER_SIZE * i
        name = data[at:at + 8].rstrip(b"\x00").decode("ascii")
        vsize, rva, raw_size, raw_ptr = struct.unpack_from("<IIII", data, at + 8)
        (ch,) = struct.unpack_from("<I", data, at + 36)
        secs.append(Section(name, rva, vsize, ch, raw_ptr, raw_size,
                            data[raw_ptr:raw_ptr + min(raw_size, vsize)]))
    img = PeImage(file_name=file_name, arch=arch, size_of_image=size_of_image, sections=secs,
                  headers=data[:size_of_headers], export_dir=tuple(export_dir),
                  debug_dir=tuple(debug_dir), real=True, preferred_base=preferred,
                  image_base_offset=o + L.image_base)
    m = img.mapped(0, size_of_image)
    if export_dir[0]:
        e = export_dir[0]
        (_f, _t, _a, _b, _name, base, nfunc, nnames, eat, npt, ot) = struct.unpack_from(
            "<IIHHIIIIIII", m, e)
        img.ordinal_base = base
        funcs = struct.unpack_from(f"<{nfunc}I", m, eat)
        for i in range(nnames):
            (nrva,) = struct.unpack_from("<I", m, npt + 4 * i)
            (idx,) = struct.unpack_from("<H", m, ot + 2 * i)
            rva = funcs[idx]
            fwd = _cstr(m, rva) if export_dir[0] <= rva < export_dir[0] + export_dir[1] else None
            img.exports.append(Export(_cstr(m, nrva), rva, base + idx, fwd, nrva))
    for i in range(debug_dir[1] // DEBUG_DIRECTORY_SIZE):
        at = debug_dir[0] + DEBUG_DIRECTORY_SIZE * i
        (_c, _t, _a, _b, dtype, size, addr, _ptr) = struct.unpack_from("<IIHHIIII", m, at)
        if dtype == IMAGE_DEBUG_TYPE_CODEVIEW and m[addr:addr + 4] == b"RSDS":
            guid = uuid.UUID(bytes_le=m[addr + 4:addr + 20])
            (age,) = struct.unpack_from("<I", m, addr + 20)
            img.codeview = CodeView(guid, age, _cstr(m, addr + 24))
            img.codeview_rva = addr
    return img


def replace_codeview(img: PeImage, cv: CodeView) -> None:
    """Overwrite the image's RSDS record in place (same PDB name length)."""
    if img.codeview is None or len(cv.record()) != len(img.codeview.record()):
        raise ValueError("the new CodeView record must replace one of the same size")
    img.patches.append((img.codeview_rva, cv.record()))
    img.codeview = cv


def relocation_patches(data: bytes, base: int) -> list[tuple[int, bytes]]:
    """The (rva, bytes) fixups a loader writes when it maps the real PE file ``data`` at
    ``base`` instead of its preferred ImageBase, from the file's base relocation
    directory.  Empty at the preferred base or when the image has no relocations."""
    img = load_image(data, "relocated")
    delta = base - img.preferred_base
    if delta == 0:
        return []
    (pe,) = struct.unpack_from("<I", data, E_LFANEW)
    L = OPT_LAYOUT[img.arch]
    d = pe + 4 + COFF_HEADER_SIZE + L.data_directories
    rel_rva, rel_size = struct.unpack_from("<II", data, d + 8 * DIR_BASERELOC)
    if not rel_rva:
        return []
    m = img.mapped(0, img.size_of_image)
    out = []
    pos, end = rel_rva, rel_rva + rel_size
    while pos + 8 <= end:
        page, block = struct.unpack_from("<II", m, pos)
        if block < 8:
            raise ValueError(f"bad base relocation block at RVA {pos:#x}")
        for j in range((block - 8) // 2):
            (ent,) = struct.unpack_from("<H", m, pos + 8 + 2 * j)
            typ, at = ent >> 12, page + (ent & 0xFFF)
            if typ == IMAGE_REL_BASED_ABSOLUTE:
                continue
            if typ == IMAGE_REL_BASED_HIGHLOW:
                (v,) = struct.unpack_from("<I", m, at)
                out.append((at, struct.pack("<I", (v + delta) & 0xFFFFFFFF)))
            elif typ == IMAGE_REL_BASED_DIR64:
                (v,) = struct.unpack_from("<Q", m, at)
                out.append((at, struct.pack("<Q", (v + delta) & (1 << 64) - 1)))
            else:
                raise ValueError(f"base relocation type {typ} at RVA {at:#x} not supported")
        pos += block
    return out
