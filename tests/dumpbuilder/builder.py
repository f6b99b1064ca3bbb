"""DumpBuilder: writes small, deterministic Windows minidumps for tests.

The builder collects modules, threads, captured memory and memory regions,
then lays them out in a fixed order:

    header | stream directory | SystemInfo (+CSD string) | MiscInfo |
    ThreadList | thread CONTEXTs | ModuleList | module names | CodeView records |
    MemoryList descriptors | MemoryInfoList | Memory64List descriptors |
    MemoryList data | Memory64List data (one contiguous block, last)

Memory64List data goes last because its offsets are 64-bit (RVA64) while
every other offset in the file is a 32-bit RVA; a multi-gigabyte dump keeps
all 32-bit RVAs small that way.  The same inputs always give the same bytes.
"""

from __future__ import annotations

import io
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Union

from . import pe as pefmt
from . import structs as fmt

ARCHES = ("x86", "x64")
LISTS = ("mem", "mem64")
PAGE = 0x1000
FILL_CHUNK = 1 << 20

# Streams in directory order.  Data order is fixed separately in _layout().
STREAM_ORDER = (
    "ThreadListStream",
    "ModuleListStream",
    "MemoryListStream",
    "Memory64ListStream",
    "SystemInfoStream",
    "MiscInfoStream",
    "MemoryInfoListStream",
)


class MemoryNotCaptured(LookupError):
    """A read touched an address that no present memory list captures."""

    def __init__(self, address: int, size: int, missing_at: int):
        super().__init__(f"{size:#x} bytes at {address:#x}: {missing_at:#x} not captured")
        self.address = address
        self.size = size
        self.missing_at = missing_at


def pattern(address: int, size: int, tag: int) -> bytes:
    """Recognisable bytes for [address, address+size).

    Every 4-aligned little-endian word holds ``(tag << 24) | (its address &
    0xffffff)``, so a hex dump shows both which range (tag) and which address a
    byte came from, and bytes read from the wrong place never match by chance.
    """
    if size <= 0:
        return b""
    first = address & ~3
    last = (address + size + 3) & ~3
    words = [((tag & 0xFF) << 24) | (a & 0xFFFFFF) for a in range(first, last, 4)]
    blob = struct.pack(f"<{len(words)}I", *words)
    skip = address - first
    return blob[skip:skip + size]


def _page_up(v: int) -> int:
    return (v + PAGE - 1) & ~(PAGE - 1)


def _canon_stream(name: str) -> str:
    full = name if name.endswith("Stream") else name + "Stream"
    if full not in fmt.STREAM_TYPE_BY_NAME:
        raise ValueError(f"unknown stream {name!r}; known: {sorted(fmt.STREAM_TYPE_BY_NAME)}")
    return full


@dataclass
class MemoryRange:
    """One captured range.  ``data`` is None for a lazy fill."""

    address: int
    size: int
    list: str
    data: bytes | None = None
    fill: int = 0

    @property
    def end(self) -> int:
        return self.address + self.size

    def chunks(self, chunk_size: int = FILL_CHUNK) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        block = bytes([self.fill]) * min(chunk_size, self.size)
        left = self.size
        while left > 0:
            n = min(left, len(block))
            yield block if n == len(block) else block[:n]
            left -= n

    def slice(self, offset: int, length: int) -> bytes:
        if self.data is not None:
            return self.data[offset:offset + length]
        return bytes([self.fill]) * length


@dataclass
class Module:
    path: str
    base: int
    size: int
    file_version: tuple[int, int, int, int]
    timestamp: int
    checksum: int = 0
    pdb_name: str | None = None
    pdb_guid: uuid.UUID | None = None
    pdb_age: int = 0
    product_version: tuple[int, int, int, int] | None = None
    image: pefmt.PeImage | None = None     # PE image mapped into the dump (add_pe_module)
    capture: str = "none"                  # how much of the image the dump holds

    @property
    def name(self) -> str:
        return self.path.replace("/", "\\").rsplit("\\", 1)[-1]

    @property
    def stem(self) -> str:
        """The name WinDbg shows before '!': the file name without its extension."""
        return self.name.rsplit(".", 1)[0] if "." in self.name else self.name

    @property
    def end(self) -> int:
        return self.base + self.size

    def cv_record(self) -> bytes | None:
        if self.pdb_name is None or self.pdb_guid is None:
            return None
        return fmt.pack_cv_rsds(self.pdb_guid, self.pdb_age, self.pdb_name)


@dataclass
class Thread:
    tid: int
    teb: int
    stack_start: int
    stack: MemoryRange | None
    suspend_count: int = 0
    priority_class: int = fmt.NORMAL_PRIORITY_CLASS
    priority: int = 0
    registers: dict[str, int] = field(default_factory=dict)   # CONTEXT values (structs.pack_context)

    @property
    def stack_size(self) -> int:
        return self.stack.size if self.stack is not None else 0


@dataclass
class Region:
    base: int
    size: int
    state: int = fmt.MEM_COMMIT
    type: int = fmt.MEM_PRIVATE
    protect: int = fmt.PAGE_READWRITE
    allocation_base: int | None = None
    allocation_protect: int | None = None

    @property
    def end(self) -> int:
        return self.base + self.size


Piece = Union[bytes, MemoryRange]


@dataclass
class Layout:
    """Where everything landed in the file."""

    pieces: list[tuple[int, Piece]] = field(default_factory=list)
    streams: list[tuple[str, int, int, int]] = field(default_factory=list)  # name, type, rva, size
    size: int = 0
    memory64_base_rva: int | None = None
    range_rva: dict[int, int] = field(default_factory=dict)  # id(MemoryRange) -> file offset


class _Alloc:
    def __init__(self, start: int):
        self.pos = start
        self.pieces: list[tuple[int, Piece]] = []

    def put(self, piece: Piece, size: int, align: int = 4) -> int:
        self.pos = (self.pos + align - 1) & ~(align - 1)
        off = self.pos
        self.pieces.append((off, piece))
        self.pos += size
        return off

    def reserve(self, size: int, align: int = 4) -> int:
        """Reserve space now, fill it in later with fill()."""
        self.pos = (self.pos + align - 1) & ~(align - 1)
        off = self.pos
        self.pos += size
        return off

    def fill(self, off: int, data: bytes) -> None:
        self.pieces.append((off, data))


class DumpBuilder:
    def __init__(self, arch: str = "x64", os_version: tuple[int, int, int] = (6, 1, 7601),
                 csd_version: str = "Service Pack 1", timestamp: int = 1_600_000_000,
                 pid: int = 1234, process_create_time: int | None = 1_599_990_000,
                 number_of_processors: int = 2, version_hi: int = 0):
        if arch not in ARCHES:
            raise ValueError(f"arch must be one of {ARCHES}, not {arch!r}")
        self.arch = arch
        major, minor, build = os_version
        self.os_version: tuple[int, int, int] = (major, minor, build)
        self.csd_version = csd_version
        self.timestamp = timestamp
        self.pid = pid
        self.process_create_time = process_create_time
        self.number_of_processors = number_of_processors
        self.version_hi = version_hi
        self.modules: list[Module] = []
        self.threads: list[Thread] = []
        self.ranges: list[MemoryRange] = []
        self.regions: list[Region] = []
        self.omitted: set[str] = set()
        self.is_wow64 = False  # set by Process when it lays out a WOW64 process

    # ------------------------------------------------------------------ inputs
    @property
    def pointer_size(self) -> int:
        return 4 if self.arch == "x86" else 8

    def add_module(self, path: str, base: int, size: int,
                   file_version: tuple[int, int, int, int] = (0, 0, 0, 0),
                   timestamp: int = 0, checksum: int = 0, pdb_name: str | None = None,
                   pdb_guid: uuid.UUID | None = None, pdb_age: int = 0,
                   product_version: tuple[int, int, int, int] | None = None) -> Module:
        if (pdb_name is None) != (pdb_guid is None):
            raise ValueError("pdb_name and pdb_guid go together")
        m = Module(path, base, size, file_version, timestamp, checksum,
                   pdb_name, pdb_guid, pdb_age, product_version)
        self.modules.append(m)
        return m

    def add_pe_module(self, path: str, base: int, size: int | None = None, arch: str | None = None,
                      exports: dict[str, int] | None = None,
                      forwarders: dict[str, str] | None = None, *,
                      pdb_name: str | None = None, pdb_guid: uuid.UUID | None = None,
                      pdb_age: int = 0, capture: str = "headers_and_exports",
                      corrupt_exports: str | None = None, ordinal_base: int = 1,
                      eat_gaps: int = 0, sections: list[tuple[str, int, int, int]] | None = None,
                      image_bytes: bytes | None = None,
                      file_version: tuple[int, int, int, int] = (0, 0, 0, 0), timestamp: int = 0,
                      checksum: int = 0, memory_list: str = "mem64",
                      patches: list[tuple[int, bytes]] | None = None) -> Module:
        """A module whose PE image is mapped into the dump (headers at ``base``, each
        section at its RVA) with MEM_IMAGE regions per section.

        Synthetic image: ``exports`` {name: rva} (in .text), ``forwarders`` {name:
        "DLL.Function"}, a CodeView debug directory when pdb_name/pdb_guid are given
        (the same RSDS record goes into the ModuleList).  ``image_bytes``: the bytes of
        a real PE file instead (tests/pdb/tiny.dll), mapped as the loader does; its own
        CodeView record is used unless pdb_guid/pdb_age override it (the mapped copy is
        patched to match).  ``capture``: "full" (every page of the image),
        "headers_and_exports" (the header page and the pages holding the export
        directory, debug directory and CodeView record) or "none" (regions only).
        ``corrupt_exports``: "bad_rva" | "huge_count" | "names_out_of_image" (pe.py).
        ``patches``: (rva, bytes) written over the mapped image, after the CodeView record
        is replaced (base relocation fixups, values a process wrote into its globals)."""
        if capture not in pefmt.CAPTURES:
            raise ValueError(f"capture must be one of {pefmt.CAPTURES}")
        name = path.replace("/", "\\").rsplit("\\", 1)[-1]
        if image_bytes is not None:
            if exports or forwarders or corrupt_exports or sections:
                raise ValueError("a real image brings its own exports and sections")
            img = pefmt.load_image(image_bytes, name)
            if size is not None and size != img.size_of_image:
                raise ValueError("size differs from the image's SizeOfImage")
            if arch is not None and arch != img.arch:
                raise ValueError("arch differs from the image's Machine")
            if base != img.preferred_base:
                img.rebase(base)
            if img.codeview is not None and (pdb_guid is not None or pdb_name is not None
                                             or pdb_age):
                pefmt.replace_codeview(img, pefmt.CodeView(
                    pdb_guid or img.codeview.guid, pdb_age or img.codeview.age,
                    pdb_name or img.codeview.pdb_name))
        else:
            if size is None:
                raise ValueError("size is needed for a synthetic image")
            if (pdb_name is None) != (pdb_guid is None):
                raise ValueError("pdb_name and pdb_guid go together")
            cv = (pefmt.CodeView(pdb_guid, pdb_age, pdb_name)
                  if pdb_guid is not None and pdb_name is not None else None)
            img = pefmt.build_image(name, arch or self.arch, size, exports=exports,
                                    forwarders=forwarders, ordinal_base=ordinal_base,
                                    eat_gaps=eat_gaps, codeview=cv, timestamp=timestamp,
                                    sections=sections, image_base=base,
                                    dll=not name.lower().endswith(".exe"),
                                    corrupt_exports=corrupt_exports)
        for rva, blob in patches or ():
            if rva < 0 or rva + len(blob) > img.size_of_image:
                raise ValueError(f"patch at RVA {rva:#x} runs past SizeOfImage")
            img.patches.append((rva, bytes(blob)))
        if img.arch == "x64" and self.arch == "x86":
            raise ValueError("a 64-bit image in a 32-bit dump")
        cvr = img.codeview
        m = self.add_module(path, base, img.size_of_image, file_version=file_version,
                            timestamp=timestamp, checksum=checksum,
                            pdb_name=cvr.pdb_name if cvr else None,
                            pdb_guid=cvr.guid if cvr else None, pdb_age=cvr.age if cvr else 0)
        m.image = img
        m.capture = capture
        hdr_end = _page_up(len(img.headers))
        alloc = dict(allocation_base=base, allocation_protect=fmt.PAGE_EXECUTE_WRITECOPY,
                     type=fmt.MEM_IMAGE, state=fmt.MEM_COMMIT)
        self.add_region(base, hdr_end, protect=fmt.PAGE_READONLY, **alloc)
        pos = hdr_end
        for sec in img.sections:
            if sec.rva > pos:     # a hole between sections: reserved, no access
                self.add_region(base + pos, sec.rva - pos, protect=fmt.PAGE_NOACCESS, **alloc)
            end = min(sec.mapped_end, img.size_of_image)
            self.add_region(base + sec.rva, end - sec.rva, protect=sec.protect, **alloc)
            pos = end
        if pos < img.size_of_image:
            self.add_region(base + pos, img.size_of_image - pos, protect=fmt.PAGE_NOACCESS, **alloc)
        for lo, hi in img.capture_spans(capture):
            self.add_memory(base + lo, img.mapped(lo, hi - lo), list=memory_list)
        return m

    def add_thread(self, tid: int, teb: int, stack_start: int, stack_bytes: bytes = b"",
                   suspend_count: int = 0, priority_class: int = fmt.NORMAL_PRIORITY_CLASS,
                   priority: int = 0, stack_list: str = "mem") -> Thread:
        stack = self.add_memory(stack_start, stack_bytes, list=stack_list) if stack_bytes else None
        t = Thread(tid, teb, stack_start, stack, suspend_count, priority_class, priority)
        self.threads.append(t)
        return t

    def add_memory(self, address: int, data: bytes, list: str = "mem64") -> MemoryRange:
        if list not in LISTS:
            raise ValueError(f"list must be one of {LISTS}, not {list!r}")
        if not data:
            raise ValueError("empty memory range")
        r = MemoryRange(address, len(data), list, data=bytes(data))
        self.ranges.append(r)
        return r

    def poke(self, address: int, data: bytes) -> None:
        """Overwrite bytes of one captured range (values a process wrote after the
        structures that own the range were laid out: globals, stack slots, object
        contents).  The bytes must lie inside a single range with explicit data."""
        end = address + len(data)
        for r in self.ranges:
            if r.address <= address and end <= r.end:
                if r.data is None:
                    raise ValueError(f"poke at {address:#x}: range {r.address:#x} is a lazy fill")
                off = address - r.address
                r.data = r.data[:off] + bytes(data) + r.data[off + len(data):]
                return
        raise ValueError(f"poke at {address:#x}+{len(data):#x}: not inside one captured range")

    def add_memory_fill(self, address: int, size: int, byte: int = 0,
                        list: str = "mem64") -> MemoryRange:
        if list not in LISTS:
            raise ValueError(f"list must be one of {LISTS}, not {list!r}")
        if size <= 0:
            raise ValueError("empty memory range")
        r = MemoryRange(address, size, list, data=None, fill=byte & 0xFF)
        self.ranges.append(r)
        return r

    def add_region(self, base: int, size: int, state: int = fmt.MEM_COMMIT,
                   type: int = fmt.MEM_PRIVATE, protect: int = fmt.PAGE_READWRITE,
                   allocation_base: int | None = None,
                   allocation_protect: int | None = None) -> Region:
        if size <= 0:
            raise ValueError("empty region")
        r = Region(base, size, state, type, protect, allocation_base, allocation_protect)
        self.regions.append(r)
        return r

    def add_image_regions(self, module: Module, writable: tuple[tuple[int, int], ...] = ()) -> None:
        """MEM_IMAGE regions for a module: header page read-only, the rest
        execute-read, except the page-aligned ``writable`` [start, end) spans."""
        alloc = dict(allocation_base=module.base, allocation_protect=fmt.PAGE_EXECUTE_WRITECOPY,
                     type=fmt.MEM_IMAGE, state=fmt.MEM_COMMIT)
        cuts = [(module.base, module.base + PAGE, fmt.PAGE_READONLY)]
        pos = module.base + PAGE
        for start, end in sorted(writable):
            start &= ~(PAGE - 1)
            end = (end + PAGE - 1) & ~(PAGE - 1)
            if start > pos:
                cuts.append((pos, start, fmt.PAGE_EXECUTE_READ))
            cuts.append((start, end, fmt.PAGE_READWRITE))
            pos = end
        if pos < module.end:
            cuts.append((pos, module.end, fmt.PAGE_EXECUTE_READ))
        for start, end, prot in cuts:
            self.add_region(start, end - start, protect=prot, **alloc)

    def omit_stream(self, name: str) -> None:
        self.omitted.add(_canon_stream(name))

    # ------------------------------------------------------------- queries
    def module_containing(self, address: int) -> Module | None:
        for m in self.modules:
            if m.base <= address < m.end:
                return m
        return None

    def frame_text(self, address: int, pdbs: tuple = ()) -> str:
        """The expected symbol text of a stack frame (symbols.TEXT_CONVENTIONS):
        module!Export+0xoff, module+0xoff, or 0x<address> outside every module."""
        from .symbols import Symbolizer
        return Symbolizer(self, pdbs).text(address)

    def region_containing(self, address: int) -> Region | None:
        for r in self.regions:
            if r.base <= address < r.end:
                return r
        return None

    def stream_present(self, name: str) -> bool:
        name = _canon_stream(name)
        if name in self.omitted:
            return False
        if name == "MemoryListStream":
            return any(r.list == "mem" for r in self.ranges)
        if name == "Memory64ListStream":
            return any(r.list == "mem64" for r in self.ranges)
        return True

    def stream_names(self) -> list[str]:
        return [s for s in STREAM_ORDER if self.stream_present(s)]

    def captured_ranges(self) -> list[MemoryRange]:
        """Ranges a reader can see (lists whose stream is written), by address."""
        live = []
        for r in self.ranges:
            stream = "MemoryListStream" if r.list == "mem" else "Memory64ListStream"
            if self.stream_present(stream):
                live.append(r)
        return sorted(live, key=lambda r: r.address)

    def memory64_ranges(self) -> list[MemoryRange]:
        """Memory64List descriptor order: ascending address."""
        return sorted((r for r in self.ranges if r.list == "mem64"), key=lambda r: r.address)

    def memory_ranges(self) -> list[MemoryRange]:
        """MemoryList descriptor order: insertion order."""
        return [r for r in self.ranges if r.list == "mem"]

    def read(self, address: int, size: int) -> bytes:
        """What a correct reader returns for a read of the finished dump,
        joining adjacent ranges from either list; raises MemoryNotCaptured."""
        out = bytearray()
        pos = address
        end = address + size
        ranges = self.captured_ranges()
        while pos < end:
            hit = next((r for r in ranges if r.address <= pos < r.end), None)
            if hit is None:
                raise MemoryNotCaptured(address, size, pos)
            n = min(end, hit.end) - pos
            out += hit.slice(pos - hit.address, n)
            pos += n
        return bytes(out)

    def captured_bytes_in(self, base: int, size: int) -> int:
        total = 0
        for r in self.captured_ranges():
            lo = max(base, r.address)
            hi = min(base + size, r.end)
            if hi > lo:
                total += hi - lo
        return total

    def validate(self) -> None:
        """Reject inputs that would make an ambiguous dump."""
        prev = None
        for r in sorted(self.ranges, key=lambda r: r.address):
            if prev is not None and r.address < prev.end:
                raise ValueError(f"memory ranges overlap: {prev.address:#x}+{prev.size:#x} "
                                 f"and {r.address:#x}+{r.size:#x}")
            prev = r
        prevg = None
        for g in sorted(self.regions, key=lambda g: g.base):
            if prevg is not None and g.base < prevg.end:
                raise ValueError(f"regions overlap: {prevg.base:#x}+{prevg.size:#x} "
                                 f"and {g.base:#x}+{g.size:#x}")
            prevg = g
        limit = 1 << 64 if self.arch == "x64" else 1 << 32
        for r in self.ranges:
            if r.end > limit:
                raise ValueError(f"range {r.address:#x}+{r.size:#x} outside the {self.arch} address space")

    # ------------------------------------------------------------- layout
    def _system_info(self, csd_rva: int) -> bytes:
        major, minor, build = self.os_version
        # A plausible Intel family 6 part: ProcessorLevel = family 6,
        # ProcessorRevision = model 0x3a, stepping 9 (cpuid(1).eax 0x000306a9).
        if self.arch == "x86":
            arch_code = fmt.PROCESSOR_ARCHITECTURE_INTEL
            cpu = fmt.pack_x86_cpu_info(b"GenuineIntel", 0x000306A9, 0xBFEBFBFF)
        else:
            arch_code = fmt.PROCESSOR_ARCHITECTURE_AMD64
            cpu = fmt.pack_other_cpu_info()
        return fmt.pack_system_info(
            architecture=arch_code, level=6, revision=0x3A09,
            number_of_processors=self.number_of_processors,
            major=major, minor=minor, build=build, csd_rva=csd_rva,
            suite_mask=fmt.VER_SUITE_SINGLEUSERTS, cpu=cpu)

    def _layout(self) -> Layout:
        self.validate()
        names = self.stream_names()
        lay = Layout()
        a = _Alloc(fmt.HEADER_SIZE)
        dir_rva = a.reserve(fmt.DIRECTORY_ENTRY_SIZE * len(names))
        loc: dict[str, tuple[int, int]] = {}

        if "SystemInfoStream" in names:
            si_rva = a.reserve(fmt.SYSTEM_INFO_SIZE)
            csd = fmt.pack_string(self.csd_version)
            csd_rva = a.put(csd, len(csd))
            a.fill(si_rva, self._system_info(csd_rva))
            loc["SystemInfoStream"] = (si_rva, fmt.SYSTEM_INFO_SIZE)

        if "MiscInfoStream" in names:
            misc = fmt.pack_misc_info_2(self.pid, self.process_create_time)
            loc["MiscInfoStream"] = (a.put(misc, len(misc)), len(misc))

        # Memory64 data offsets are needed by threads whose stack lives there,
        # so compute the in-block offsets now and the base once known.
        m64 = self.memory64_ranges()
        m64_offset: dict[int, int] = {}
        acc = 0
        for r in m64:
            m64_offset[id(r)] = acc
            acc += r.size
        m64_total = acc

        thread_list_rva = None
        ctx_size = fmt.CONTEXT_X86_SIZE if self.arch == "x86" else fmt.CONTEXT_AMD64_SIZE
        ctx_rvas: list[int] = []
        if "ThreadListStream" in names:
            size = 4 + fmt.THREAD_SIZE * len(self.threads)
            thread_list_rva = a.reserve(size)
            loc["ThreadListStream"] = (thread_list_rva, size)
            for t in self.threads:
                ctx = fmt.pack_context(self.arch, t.stack_start, t.registers)
                ctx_rvas.append(a.put(ctx, len(ctx), align=16))

        if "ModuleListStream" in names:
            size = 4 + fmt.MODULE_SIZE * len(self.modules)
            mod_rva = a.reserve(size)
            loc["ModuleListStream"] = (mod_rva, size)
            name_rvas = []
            for m in self.modules:
                s = fmt.pack_string(m.path)
                name_rvas.append(a.put(s, len(s)))
            cv_locs = []
            for m in self.modules:
                cv = m.cv_record()
                cv_locs.append((len(cv), a.put(cv, len(cv))) if cv else (0, 0))
            body = [struct.pack("<I", len(self.modules))]
            for m, name_rva, (cv_size, cv_rva) in zip(self.modules, name_rvas, cv_locs):
                ftype = fmt.VFT_APP if m.name.lower().endswith(".exe") else fmt.VFT_DLL
                vi = fmt.pack_fixed_file_info(m.file_version, m.product_version or m.file_version, ftype)
                body.append(fmt.pack_module(base=m.base, size=m.size, checksum=m.checksum,
                                            timestamp=m.timestamp, name_rva=name_rva,
                                            version_info=vi, cv_size=cv_size, cv_rva=cv_rva))
            a.fill(mod_rva, b"".join(body))

        mem = self.memory_ranges()
        mem_list_rva = None
        if "MemoryListStream" in names:
            size = 4 + fmt.MEMORY_DESCRIPTOR_SIZE * len(mem)
            mem_list_rva = a.reserve(size)
            loc["MemoryListStream"] = (mem_list_rva, size)

        if "MemoryInfoListStream" in names:
            regions = sorted(self.regions, key=lambda g: g.base)
            body = [fmt.pack_memory_info_header(len(regions))]
            for g in regions:
                alloc_base = g.base if g.allocation_base is None else g.allocation_base
                alloc_prot = g.protect if g.allocation_protect is None else g.allocation_protect
                if g.state == fmt.MEM_FREE:
                    alloc_base = 0 if g.allocation_base is None else g.allocation_base
                    alloc_prot = 0 if g.allocation_protect is None else g.allocation_protect
                body.append(fmt.pack_memory_info(
                    base=g.base, allocation_base=alloc_base, allocation_protect=alloc_prot,
                    size=g.size, state=g.state, protect=g.protect, type_=g.type))
            blob = b"".join(body)
            loc["MemoryInfoListStream"] = (a.put(blob, len(blob), align=8), len(blob))

        m64_list_rva = None
        if "Memory64ListStream" in names:
            size = fmt.MEMORY64_LIST_HEADER_SIZE + fmt.MEMORY_DESCRIPTOR64_SIZE * len(m64)
            m64_list_rva = a.reserve(size, align=8)
            loc["Memory64ListStream"] = (m64_list_rva, size)

        # MemoryList data (always laid out: thread stacks point at it even
        # when the MemoryList stream itself is omitted).
        for r in mem:
            lay.range_rva[id(r)] = a.put(r, r.size, align=16)
        if a.pos > 0xFFFFFFFF:
            raise ValueError("MemoryList data pushes 32-bit RVAs past 4 GiB; use list='mem64'")

        # Memory64List data: one block, descriptor order, no gaps.
        if m64:
            a.pos = (a.pos + 15) & ~15
            base = a.pos
            lay.memory64_base_rva = base
            for r in m64:
                off = base + m64_offset[id(r)]
                lay.range_rva[id(r)] = off
                a.pieces.append((off, r))
            a.pos = base + m64_total
        else:
            base = 0

        if mem_list_rva is not None:
            body = [struct.pack("<I", len(mem))]
            for r in mem:
                body.append(fmt.pack_memory_descriptor(r.address, r.size, lay.range_rva[id(r)]))
            a.fill(mem_list_rva, b"".join(body))

        if m64_list_rva is not None:
            body = [fmt.pack_memory64_header(len(m64), base)]
            for r in m64:
                body.append(fmt.pack_memory_descriptor64(r.address, r.size))
            a.fill(m64_list_rva, b"".join(body))

        if thread_list_rva is not None:
            body = [struct.pack("<I", len(self.threads))]
            for t, ctx_rva in zip(self.threads, ctx_rvas):
                if t.stack is not None:
                    stack_rva = lay.range_rva[id(t.stack)]
                    if stack_rva > 0xFFFFFFFF:
                        raise ValueError("thread stack beyond 4 GiB in the file")
                else:
                    stack_rva = 0
                body.append(fmt.pack_thread(
                    tid=t.tid, suspend_count=t.suspend_count, priority_class=t.priority_class,
                    priority=t.priority, teb=t.teb, stack_start=t.stack_start,
                    stack_size=t.stack_size, stack_rva=stack_rva,
                    context_size=ctx_size, context_rva=ctx_rva))
            a.fill(thread_list_rva, b"".join(body))

        directory = []
        for n in names:
            rva, size = loc[n]
            stype = fmt.STREAM_TYPE_BY_NAME[n]
            directory.append(fmt.pack_directory_entry(stype, size, rva))
            lay.streams.append((n, stype, rva, size))
        a.fill(dir_rva, b"".join(directory))

        flags = fmt.MiniDumpNormal
        if "Memory64ListStream" in names:
            flags |= fmt.MiniDumpWithFullMemory
        if "MemoryInfoListStream" in names:
            flags |= fmt.MiniDumpWithFullMemoryInfo
        a.fill(0, fmt.pack_header(len(names), dir_rva, self.timestamp, flags, self.version_hi))

        lay.pieces = sorted(a.pieces, key=lambda p: p[0])
        lay.size = a.pos
        return lay

    def layout(self) -> Layout:
        return self._layout()

    # -------------------------------------------------------------- output
    def _emit(self, out: BinaryIO, lay: Layout) -> None:
        pos = 0
        for off, piece in lay.pieces:
            if off < pos:
                raise AssertionError(f"layout pieces overlap at {off:#x}")
            if off > pos:
                out.write(b"\x00" * (off - pos))
                pos = off
            if isinstance(piece, MemoryRange):
                for chunk in piece.chunks():
                    out.write(chunk)
                pos += piece.size
            else:
                out.write(piece)
                pos += len(piece)
        if pos < lay.size:
            out.write(b"\x00" * (lay.size - pos))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        self._emit(buf, self._layout())
        return buf.getvalue()

    def write(self, path: str | os.PathLike[str]) -> Layout:
        """Write the dump, streaming lazy fills; returns the layout used."""
        lay = self._layout()
        with open(path, "wb") as f:
            self._emit(f, lay)
        return lay

    # ------------------------------------------------------------ expected
    def expected(self) -> dict:
        """Plain-data description of everything a reader should report."""
        major, minor, build = self.os_version
        modules = []
        for m in self.modules:
            modules.append({
                "name": m.name,
                "path": m.path,
                "base": m.base,
                "size": m.size,
                "version": ".".join(str(v) for v in m.file_version),
                "timestamp": m.timestamp,
                "checksum": m.checksum,
                "pdb_name": m.pdb_name,
                "pdb_guid": str(m.pdb_guid).upper() if m.pdb_guid else None,
                "pdb_age": m.pdb_age if m.pdb_guid else None,
                "debug_id": (m.pdb_guid.hex.upper() + f"{m.pdb_age:X}") if m.pdb_guid else None,
            })
            if m.image is not None:
                img = m.image.expected()
                img["capture"] = m.capture
                img["captured_spans"] = [{"rva": lo, "size": hi - lo}
                                         for lo, hi in m.image.capture_spans(m.capture)]
                modules[-1]["image"] = img
        threads = [{"id": t.tid, "teb": t.teb, "stack_start": t.stack_start,
                    "stack_size": t.stack_size, "suspend_count": t.suspend_count}
                   for t in self.threads]
        regions = []
        for g in sorted(self.regions, key=lambda g: g.base):
            free = g.state == fmt.MEM_FREE
            regions.append({
                "base": g.base, "size": g.size, "state": g.state, "type": g.type,
                "protect": g.protect,
                "allocation_base": ((0 if free else g.base) if g.allocation_base is None
                                    else g.allocation_base),
                "allocation_protect": ((0 if free else g.protect) if g.allocation_protect is None
                                       else g.allocation_protect),
                "captured": self.captured_bytes_in(g.base, g.size),
            })
        present = self.stream_names()
        return {
            "arch": self.arch,
            "is_wow64": self.is_wow64,
            "pointer_size": self.pointer_size,
            "os_version": f"{major}.{minor}.{build}",
            "os_major": major,
            "os_minor": minor,
            "os_build": build,
            "csd_version": self.csd_version,
            "pid": self.pid,
            "timestamp": self.timestamp,
            "process_create_time": self.process_create_time,
            "number_of_processors": self.number_of_processors,
            "streams": present,
            "stream_types": [fmt.STREAM_TYPE_BY_NAME[s] for s in present],
            "modules": modules if "ModuleListStream" in present else [],
            "threads": threads if "ThreadListStream" in present else [],
            "memory_list": [{"address": r.address, "size": r.size} for r in self.memory_ranges()]
            if "MemoryListStream" in present else [],
            "memory64_list": [{"address": r.address, "size": r.size} for r in self.memory64_ranges()]
            if "Memory64ListStream" in present else [],
            "regions": regions if "MemoryInfoListStream" in present else [],
        }

    def probe(self, address: int, size: int, note: str = "") -> dict:
        """An expected read: hex of the bytes, or the error a reader must give."""
        out: dict = {"address": address, "size": size}
        try:
            out["hex"] = self.read(address, size).hex()
        except MemoryNotCaptured:
            out["error"] = "MemoryNotCaptured"
        if note:
            out["note"] = note
        return out
