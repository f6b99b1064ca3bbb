"""Dumps whose heaps cannot be answered for, or only in part: what every view must say about.

* ``crash_minidump_x64``: a dump written without heap memory, as most crash minidumps are. The
  PEB and its ``ProcessHeaps`` array are captured; the three heaps' regions are listed as
  committed in the MemoryInfoList, and none of their bytes is in the dump.
* ``wine_like_x64``: a process whose heaps are not the Windows heap manager's (a Wine process):
  ``PEB.NumberOfHeaps`` is 0, the ``ProcessHeaps`` array holds nothing, and ``ProcessHeap`` points
  at a captured page whose signature word is neither an NT heap's nor a segment heap's.

Extra JSON keys: ``coverage`` with what a reader can know without reading any heap structure:
``listed_heaps`` (the heap addresses a view can name), ``uncaptured_committed`` (per heap, the
committed bytes of its first allocation that the dump lacks) and, for the Wine-like dump,
``process_heap_signature`` (the word at +0x10).
"""

from __future__ import annotations

from .builder import DumpBuilder
from .heap import write_not_a_heap
from .scenarios import _finish, _heap_regions, _peb_probes, _small_x64

#: Three heaps of a crash minidump: address -> committed bytes of its first segment.
_CRASH_HEAPS = {0x005A0000: 0x4000, 0x00700000: 0x4000, 0x01230000: 0x8000}
_WINE_HEAP = 0x00340000


def crash_minidump_x64() -> tuple[DumpBuilder, dict]:
    """A minidump without heap memory: PEB and ProcessHeaps captured, three committed heaps not."""
    heaps = list(_CRASH_HEAPS)
    b, p = _small_x64(heaps=heaps, threads=2)
    _heap_regions(b, heaps[2], committed=_CRASH_HEAPS[heaps[2]], reserved=0x20000)
    p.finish()
    b, exp = _finish("crash_minidump_x64", crash_minidump_x64.__doc__ or "", b, p, _peb_probes(b, p))
    exp["coverage"] = {
        "listed_heaps": heaps,
        "uncaptured_committed": {str(h): n - b.captured_bytes_in(h, n) for h, n in _CRASH_HEAPS.items()},
    }
    return b, exp


def wine_like_x64() -> tuple[DumpBuilder, dict]:
    """NumberOfHeaps 0, ProcessHeap 0x340000 at a captured page that is not a Windows heap."""
    b, p = _small_x64(heaps=[], process_heap=_WINE_HEAP, threads=1)
    rec = write_not_a_heap(b, _WINE_HEAP, "x64", tag=0x57)
    p.finish()
    b, exp = _finish("wine_like_x64", wine_like_x64.__doc__ or "", b, p, _peb_probes(b, p))
    exp["coverage"] = {"listed_heaps": [_WINE_HEAP], "process_heap_signature": rec["segment_signature"]}
    return b, exp


COVERAGE_SCENARIOS = {
    "crash_minidump_x64": crash_minidump_x64,
    "wine_like_x64": wine_like_x64,
}
