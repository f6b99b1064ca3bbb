"""Process: lays out TEBs, the PEB and the PEB.ProcessHeaps array in a dump.

Only the fields a heap walker needs are written; every other byte of the
captured pages is zero.  Offsets come from two places, cited per table:

* NT_TIB (the first part of every TEB): ``winnt.h`` NT_TIB32 / NT_TIB64.
* TEB.ProcessEnvironmentBlock and the PEB fields:
  /work/shared/docs/windows-heap-layouts.md section 2 ("_TEB / _PEB") and
  section 1 (quick matrix); these have been stable from Windows 7 SP1
  through Windows 11 for both pointer widths.
* TEB.ClientId: public ntdll symbols (``dt ntdll!_TEB``); written for
  realism only, no expected value depends on it.

WOW64 (a 32-bit process on 64-bit Windows, section 2 "WOW64 note" of the
doc): each thread has a 64-bit TEB and a 32-bit TEB ``teb32_offset`` bytes
above it; the 64-bit TEB's first pointer (NtTib.ExceptionList) holds the
32-bit TEB's address, and the 32-bit TEB's +0x30 points at the 32-bit PEB,
which uses the x86 offsets.  The 64-bit PEB stays where the 64-bit TEB's
+0x60 points and describes the 64-bit heaps of the WOW64 layer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import structs as fmt
from .builder import PAGE, DumpBuilder, pattern


@dataclass(frozen=True)
class TebLayout:
    """Offsets inside a TEB for one pointer width."""

    ptr: int
    # NT_TIB (winnt.h NT_TIB32 / NT_TIB64): ExceptionList, StackBase,
    # StackLimit, SubSystemTib, FiberData, ArbitraryUserPointer, Self.
    exception_list: int
    stack_base: int
    stack_limit: int
    self_: int
    # CLIENT_ID ClientId { UniqueProcess; UniqueThread } (public symbols).
    client_id: int
    # windows-heap-layouts.md section 2: _TEB.ProcessEnvironmentBlock.
    process_environment_block: int
    # Bytes captured per TEB: one page on x86, two pages on x64 (the x64
    # _TEB is larger than a page, so Windows gives each one two pages).
    capture_size: int


@dataclass(frozen=True)
class PebLayout:
    """Offsets inside a PEB for one pointer width
    (windows-heap-layouts.md section 2 table, and section 1 matrix)."""

    ptr: int
    image_base_address: int
    ldr: int
    process_heap: int
    nt_global_flag: int          # ULONG
    number_of_heaps: int         # ULONG
    maximum_number_of_heaps: int  # ULONG
    process_heaps: int           # pointer to array of heap pointers
    os_major_version: int        # ULONG
    os_minor_version: int        # ULONG
    os_build_number: int         # USHORT


TEB32 = TebLayout(ptr=4, exception_list=0x00, stack_base=0x04, stack_limit=0x08, self_=0x18,
                  client_id=0x20, process_environment_block=0x30, capture_size=0x1000)
TEB64 = TebLayout(ptr=8, exception_list=0x00, stack_base=0x08, stack_limit=0x10, self_=0x30,
                  client_id=0x40, process_environment_block=0x60, capture_size=0x2000)

PEB32 = PebLayout(ptr=4, image_base_address=0x08, ldr=0x0C, process_heap=0x18,
                  nt_global_flag=0x68, number_of_heaps=0x88, maximum_number_of_heaps=0x8C,
                  process_heaps=0x90, os_major_version=0xA4, os_minor_version=0xA8,
                  os_build_number=0xAC)
PEB64 = PebLayout(ptr=8, image_base_address=0x10, ldr=0x18, process_heap=0x30,
                  nt_global_flag=0xBC, number_of_heaps=0xE8, maximum_number_of_heaps=0xEC,
                  process_heaps=0xF0, os_major_version=0x118, os_minor_version=0x11C,
                  os_build_number=0x120)

# On x86 the SEH chain ends with this marker in NtTib.ExceptionList.
X86_EXCEPTION_LIST_END = 0xFFFFFFFF


@dataclass
class Wow64:
    """The 32-bit side of a WOW64 process."""

    peb32: int
    process_heap: int | None = None
    heaps: list[int] = field(default_factory=list)
    process_heaps_array: int = 0
    nt_global_flag: int = 0
    max_heaps: int = 16
    teb32_offset: int = 0x2000
    image_base: int | None = None      # default: the Process image_base
    ldr: int = 0
    os_version: tuple[int, int, int] | None = None  # default: the Process os_version
    capture_peb: bool = True
    capture_process_heaps_array: bool = True


@dataclass
class _ProcThread:
    tid: int
    teb: int
    stack_start: int
    stack_size: int
    stack32_base: int
    stack32_limit: int


class _Pages:
    """Sparse page-granular image of what the Process writes."""

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    def write(self, address: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            a = address + pos
            page = a & ~(PAGE - 1)
            buf = self.pages.setdefault(page, bytearray(PAGE))
            n = min(len(data) - pos, page + PAGE - a)
            buf[a - page:a - page + n] = data[pos:pos + n]
            pos += n

    def touch(self, address: int, size: int) -> None:
        self.write(address, bytes(size))  # zero-filled but captured

    def runs(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytearray]] = []
        for page in sorted(self.pages):
            if out and out[-1][0] + len(out[-1][1]) == page:
                out[-1][1].extend(self.pages[page])
            else:
                out.append((page, bytearray(self.pages[page])))
        return [(a, bytes(b)) for a, b in out]


def _ptr(value: int, size: int) -> bytes:
    return value.to_bytes(size, "little")


class Process:
    def __init__(self, builder: DumpBuilder, *, peb: int, image_base: int, ldr: int = 0,
                 nt_global_flag: int = 0, process_heap: int | None = None,
                 heaps: list[int] | tuple[int, ...] = (), max_heaps: int = 16,
                 process_heaps_array: int = 0, os_version: tuple[int, int, int] | None = None,
                 capture_peb: bool = True, capture_process_heaps_array: bool = True,
                 capture_tebs: bool = True, wow64: Wow64 | None = None,
                 memory_list: str = "mem64", add_regions: bool = True):
        if wow64 is not None and builder.arch != "x64":
            raise ValueError("WOW64 needs a 64-bit dump (arch='x64')")
        if len(heaps) > max_heaps:
            raise ValueError("more heaps than max_heaps")
        self.b = builder
        self.peb = peb
        self.image_base = image_base
        self.ldr = ldr
        self.nt_global_flag = nt_global_flag
        self.heaps = list(heaps)
        self.process_heap = self.heaps[0] if process_heap is None and self.heaps else (process_heap or 0)
        self.max_heaps = max_heaps
        self.process_heaps_array = process_heaps_array
        self.os_version: tuple[int, int, int] = os_version or builder.os_version
        self.capture_peb = capture_peb
        self.capture_process_heaps_array = capture_process_heaps_array
        self.capture_tebs = capture_tebs
        self.wow64 = wow64
        self.memory_list = memory_list
        self.add_regions = add_regions
        self.threads: list[_ProcThread] = []
        self.finished = False
        if wow64 is not None:
            builder.is_wow64 = True
            if wow64.process_heap is None and wow64.heaps:
                wow64.process_heap = wow64.heaps[0]
            if len(wow64.heaps) > wow64.max_heaps:
                raise ValueError("more 32-bit heaps than max_heaps")

    @property
    def teb_layout(self) -> TebLayout:
        return TEB32 if self.b.arch == "x86" else TEB64

    @property
    def peb_layout(self) -> PebLayout:
        return PEB32 if self.b.arch == "x86" else PEB64

    def add_thread(self, tid: int, teb: int, stack_start: int, stack_size: int,
                   suspend_count: int = 0, stack_list: str = "mem",
                   stack32_base: int = 0, stack32_limit: int = 0, stack_tag: int | None = None) -> None:
        """A thread with a captured stack [stack_start, stack_start+stack_size)
        (the minidump thread's Stack), and a TEB written at ``teb`` by finish().
        TEB StackBase = stack_start + stack_size, StackLimit = stack_start
        rounded down to a page."""
        tag = stack_tag if stack_tag is not None else 0x50 + len(self.threads)
        data = pattern(stack_start, stack_size, tag)
        self.b.add_thread(tid=tid, teb=teb, stack_start=stack_start, stack_bytes=data,
                          suspend_count=suspend_count, stack_list=stack_list)
        self.threads.append(_ProcThread(tid, teb, stack_start, stack_size, stack32_base, stack32_limit))

    # ------------------------------------------------------------------
    def teb32_address(self, t: _ProcThread) -> int:
        assert self.wow64 is not None
        return t.teb + self.wow64.teb32_offset

    def _teb_bytes(self, lay: TebLayout, *, self_addr: int, exception_list: int,
                   stack_base: int, stack_limit: int, tid: int, peb: int) -> bytes:
        buf = bytearray(lay.capture_size)
        p = lay.ptr
        buf[lay.exception_list:lay.exception_list + p] = _ptr(exception_list, p)
        buf[lay.stack_base:lay.stack_base + p] = _ptr(stack_base, p)
        buf[lay.stack_limit:lay.stack_limit + p] = _ptr(stack_limit, p)
        buf[lay.self_:lay.self_ + p] = _ptr(self_addr, p)
        buf[lay.client_id:lay.client_id + p] = _ptr(self.b.pid, p)
        buf[lay.client_id + p:lay.client_id + 2 * p] = _ptr(tid, p)
        off = lay.process_environment_block
        buf[off:off + p] = _ptr(peb, p)
        return bytes(buf)

    @staticmethod
    def _peb_fields(lay: PebLayout, *, image_base: int, ldr: int, process_heap: int,
                    nt_global_flag: int, heaps: list[int], max_heaps: int,
                    process_heaps_array: int, os_version: tuple[int, int, int]) -> bytes:
        buf = bytearray(PAGE)
        p = lay.ptr
        buf[lay.image_base_address:lay.image_base_address + p] = _ptr(image_base, p)
        buf[lay.ldr:lay.ldr + p] = _ptr(ldr, p)
        buf[lay.process_heap:lay.process_heap + p] = _ptr(process_heap, p)
        struct.pack_into("<I", buf, lay.nt_global_flag, nt_global_flag)
        struct.pack_into("<I", buf, lay.number_of_heaps, len(heaps))
        struct.pack_into("<I", buf, lay.maximum_number_of_heaps, max_heaps)
        buf[lay.process_heaps:lay.process_heaps + p] = _ptr(process_heaps_array, p)
        major, minor, build = os_version
        struct.pack_into("<I", buf, lay.os_major_version, major)
        struct.pack_into("<I", buf, lay.os_minor_version, minor)
        struct.pack_into("<H", buf, lay.os_build_number, build & 0xFFFF)
        return bytes(buf)

    @staticmethod
    def _heaps_array(heaps: list[int], max_heaps: int, ptr: int) -> bytes:
        return b"".join(_ptr(h, ptr) for h in heaps) + bytes(ptr * (max_heaps - len(heaps)))

    def _region(self, base: int, size: int, **kw) -> None:
        """Add a region unless one already covers ``base``."""
        if not self.add_regions or self.b.region_containing(base) is not None:
            return
        mod = self.b.module_containing(base)
        if mod is not None:
            kw = dict(type=fmt.MEM_IMAGE, protect=fmt.PAGE_READWRITE,
                      allocation_base=mod.base, allocation_protect=fmt.PAGE_EXECUTE_WRITECOPY)
        self.b.add_region(base, size, **kw)

    def finish(self) -> None:
        if self.finished:
            raise RuntimeError("finish() called twice")
        self.finished = True
        pages = _Pages()
        tl, pl = self.teb_layout, self.peb_layout
        ptr = tl.ptr

        # PEB (one page; the PEB is smaller than a page on every build).
        peb_page = self.peb & ~(PAGE - 1)
        if self.capture_peb:
            blob = self._peb_fields(pl, image_base=self.image_base, ldr=self.ldr,
                                    process_heap=self.process_heap,
                                    nt_global_flag=self.nt_global_flag, heaps=self.heaps,
                                    max_heaps=self.max_heaps,
                                    process_heaps_array=self.process_heaps_array,
                                    os_version=self.os_version)
            pages.write(self.peb, blob[:PAGE - (self.peb - peb_page)])
        self._region(peb_page, PAGE)

        # ProcessHeaps array.
        if self.process_heaps_array:
            arr = self._heaps_array(self.heaps, self.max_heaps, ptr)
            if self.capture_process_heaps_array:
                self._check_page_conflict(self.process_heaps_array, peb_page, self.capture_peb)
                pages.write(self.process_heaps_array, arr)
            self._region(self.process_heaps_array & ~(PAGE - 1), PAGE)

        # 32-bit side.
        w = self.wow64
        if w is not None:
            peb32_page = w.peb32 & ~(PAGE - 1)
            if w.capture_peb:
                blob = self._peb_fields(PEB32, image_base=w.image_base if w.image_base is not None
                                        else self.image_base,
                                        ldr=w.ldr, process_heap=w.process_heap or 0,
                                        nt_global_flag=w.nt_global_flag, heaps=w.heaps,
                                        max_heaps=w.max_heaps,
                                        process_heaps_array=w.process_heaps_array,
                                        os_version=w.os_version or self.os_version)
                pages.write(w.peb32, blob[:PAGE - (w.peb32 - peb32_page)])
            self._region(peb32_page, PAGE)
            if w.process_heaps_array:
                arr = self._heaps_array(w.heaps, w.max_heaps, 4)
                if w.capture_process_heaps_array:
                    self._check_page_conflict(w.process_heaps_array, peb32_page, w.capture_peb)
                    pages.write(w.process_heaps_array, arr)
                self._region(w.process_heaps_array & ~(PAGE - 1), PAGE)

        # TEBs (and the stack regions).
        for t in self.threads:
            if w is not None:
                teb32 = self.teb32_address(t)
                teb64 = self._teb_bytes(TEB64, self_addr=t.teb, exception_list=teb32,
                                        stack_base=t.stack_start + t.stack_size,
                                        stack_limit=t.stack_start & ~(PAGE - 1),
                                        tid=t.tid, peb=self.peb)
                teb32_blob = self._teb_bytes(TEB32, self_addr=teb32,
                                             exception_list=X86_EXCEPTION_LIST_END,
                                             stack_base=t.stack32_base, stack_limit=t.stack32_limit,
                                             tid=t.tid, peb=w.peb32)
                if self.capture_tebs:
                    pages.write(t.teb, teb64)
                    pages.write(teb32, teb32_blob)
                self._region(t.teb, w.teb32_offset + TEB32.capture_size)
            else:
                exc = X86_EXCEPTION_LIST_END if self.b.arch == "x86" else 0
                blob = self._teb_bytes(tl, self_addr=t.teb, exception_list=exc,
                                       stack_base=t.stack_start + t.stack_size,
                                       stack_limit=t.stack_start & ~(PAGE - 1),
                                       tid=t.tid, peb=self.peb)
                if self.capture_tebs:
                    pages.write(t.teb, blob)
                self._region(t.teb, tl.capture_size)
            lo = t.stack_start & ~(PAGE - 1)
            hi = (t.stack_start + t.stack_size + PAGE - 1) & ~(PAGE - 1)
            self._region(lo, hi - lo)

        for address, data in pages.runs():
            self.b.add_memory(address, data, list=self.memory_list)

    def _check_page_conflict(self, address: int, peb_page: int, peb_captured: bool) -> None:
        if (address & ~(PAGE - 1)) == peb_page and not peb_captured:
            raise ValueError("ProcessHeaps array shares the PEB page, which is not captured")

    # ------------------------------------------------------------------
    def expected(self) -> dict:
        """Expected PEB/TEB facts (computed from the inputs, not from bytes)."""
        out: dict = {
            "peb": {
                "address": self.peb,
                "captured": self.capture_peb,
                "image_base": self.image_base,
                "ldr": self.ldr,
                "process_heap": self.process_heap,
                "nt_global_flag": self.nt_global_flag,
                "number_of_heaps": len(self.heaps),
                "max_heaps": self.max_heaps,
                "process_heaps": self.process_heaps_array,
                "process_heaps_captured": self.capture_process_heaps_array,
                "heaps": list(self.heaps),
                "os_version": ".".join(str(v) for v in self.os_version),
            },
            "tebs": [
                {
                    "thread_id": t.tid,
                    "address": t.teb,
                    "captured": self.capture_tebs,
                    "peb": self.peb,
                    "self": t.teb,
                    "stack_base": t.stack_start + t.stack_size,
                    "stack_limit": t.stack_start & ~(PAGE - 1),
                    "exception_list": (self.teb32_address(t) if self.wow64 is not None
                                       else (X86_EXCEPTION_LIST_END if self.b.arch == "x86" else 0)),
                }
                for t in self.threads
            ],
        }
        w = self.wow64
        if w is not None:
            out["peb32"] = {
                "address": w.peb32,
                "captured": w.capture_peb,
                "image_base": w.image_base if w.image_base is not None else self.image_base,
                "ldr": w.ldr,
                "process_heap": w.process_heap,
                "nt_global_flag": w.nt_global_flag,
                "number_of_heaps": len(w.heaps),
                "max_heaps": w.max_heaps,
                "process_heaps": w.process_heaps_array,
                "process_heaps_captured": w.capture_process_heaps_array,
                "heaps": list(w.heaps),
                "os_version": ".".join(str(v) for v in (w.os_version or self.os_version)),
            }
            out["teb32s"] = [
                {
                    "thread_id": t.tid,
                    "address": self.teb32_address(t),
                    "captured": self.capture_tebs,
                    "peb": w.peb32,
                    "self": self.teb32_address(t),
                    "stack_base": t.stack32_base,
                    "stack_limit": t.stack32_limit,
                    "exception_list": X86_EXCEPTION_LIST_END,
                }
                for t in self.threads
            ]
        return out
