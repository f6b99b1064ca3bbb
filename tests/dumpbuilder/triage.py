"""Triage: object contents, references and the leak-triage expected values of a scenario.

    t = Triage(b, "x64")
    a = t.ref(heap, block)                        # a back-end Block, LfhBlock or VirtualBlock
    t.obj(a, cls, Data(8).u32(640).u32(480).ptr(pixels.user), role="...")   # vfptrs first
    t.fill(a, Data(8).text("C:\\\\images\\\\part.png"), content="ascii", role="...")
    t.pointer(module.data_global, a.user, note="g_image")           # a word anywhere
    t.register(0, "rbx", a.user + 8, note="...")
    ... finish heaps and the process ...
    t.apply()                                     # pokes contents, words, registers
    t.expected(heaps)                             # the "triage" JSON object

The expected values follow /work/shared/docs/leak-triage.md ("the doc"):

* names (doc 1.4 / 1.5): from the scenario's declarations -- the class a block was written
  as (its decorated and display names are written out literally in rtti.CxxModule.cls calls),
  or none for decoys and data blocks.  The test re-derives them from the bytes with R1..R6.
* reachability (doc 2): computed from the *declared* words only -- every pointer the scenario
  writes is declared (object fields, globals, stack slots, TEB slots, registers, stale words in
  free blocks or tails); each declared word is classified by where it lies (root kind, inside a
  reached allocation's scanned range, or ignored, with the reason) and resolved to the
  allocation whose [user_address, user_address + user_size) holds its value.  Undeclared bytes
  (the heap's and the stacks' pattern fill, metadata, image bytes) are meant to reference
  nothing; the test's brute-force scan of every word of the dump checks that.
* content classes (doc 3): declared literally per block ("other" for blocks the scenario does
  not write), and checked here against the doc's rules on the final bytes.

Choices the doc leaves open are in CONVENTIONS, which goes into the JSON.
"""

from __future__ import annotations

import struct
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from . import structs as fmt
from .builder import PAGE, DumpBuilder, MemoryNotCaptured
from .heap import Block, NtHeap, VirtualBlock
from .lfh import LfhBlock, Subsegment
from .rtti import CxxClass, CxxModule, Decoy

# doc 2.4: root kinds in reached_by order.
ROOT_KINDS = ("global", "stack", "register", "other")
# doc 2.2: writable protections (low byte); PAGE_GUARD (0x100) is ignored.
WRITABLE_PROTECT = (fmt.PAGE_READWRITE, fmt.PAGE_WRITECOPY, fmt.PAGE_EXECUTE_READWRITE,
                    fmt.PAGE_EXECUTE_WRITECOPY)
# doc 3: E is the first min(user_size, 0x100) bytes; text needs 4 characters.
E_LIMIT = 0x100
MIN_TEXT = 4
CONTENT_CLASSES = ("object", "zero", "ascii", "utf16", "pointer_array", "other")
TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}      # doc 3 rule 2
LATIN1_HIGH = range(0xA0, 0x100)                                     # doc 3 rule 3

CONVENTIONS = {
    "allocations": "triage.allocations[] holds one record per is_allocation row of heaps[] "
                   "(docs/block-model.md; doc 2.1), sorted by user_address; user_address is the "
                   "key",
    "type": "type = the decorated TypeDescriptor name (doc 1.5 'decorated'), type_name = the "
            "display form of doc 1.5 (written out literally by the builder, never computed "
            "with a demangler), type_module = the file name of the image M of rule R1 as the "
            "ModuleList gives it (e.g. 'vision.dll'), vftable = the vfptr value (the word at "
            "the user address), is_struct = decorated starts with '.?AU'; all five null for a "
            "block that is not named",
    "same_name_two_images": "two images may define the same decorated name (each with its "
                            "own TypeDescriptor and vftable): types[] lists both (one entry "
                            "per (type, module, vftable)); the per-type summary groups them "
                            "together by decorated name, as doc 2.4 says",
    "types": "triage.types[]: one entry per distinct (type, type_module, vftable) naming at "
             "least one allocation, with type_name, is_struct, count and bytes; sorted by "
             "(type, type_module, vftable)",
    "content": "doc 3 on E = the first min(user_size, 0x100) bytes; a named block is 'object'. "
               "An allocation with user_size 0 has an empty E: rule 1 ('every byte of E is "
               "0') holds vacuously, so its class is 'zero' (and R1 fails: user_size < P)",
    "pointer_array_words": "only whole P-byte words of E from the user address are checked; "
                           "every pointer_array block in these dumps has a multiple of P bytes "
                           "in E, so a trailing partial word never decides a class",
    "roots": "doc 2.2; root kind 'stack' = the MemoryInfoList reservation (same "
             "AllocationBase) holding a thread's Stack.StartOfMemoryRange (the builder gives "
             "each stack one region whose AllocationBase is itself); 'global' = writable "
             "MEM_IMAGE (here .data sections, PAGE_READWRITE, and ntdll's writable page with "
             "the ProcessHeaps array); 'other' = TEBs, the PEB, private and mapped regions, "
             "the +ust trace database",
    "registers": "each thread CONTEXT sets ContextFlags, Rsp/Esp (inside the captured stack, "
                 "so the stack has bytes below the stack pointer) and the registers listed in "
                 "triage.registers[]; all other integer registers are 0.  Every integer "
                 "register of doc 2.2 is a root word (Rip/Eip and Rsp/Esp included; they "
                 "never point into a heap here)",
    "reached_by": "doc 2.4 order: global, stack, register, other, then 'heap' (reached only "
                  "through allocations), then 'none'; direct_roots is listed in that same "
                  "order; depth null when unreferenced",
    "summary": "doc 2.4 per-type summary: key = the decorated name for named allocations, "
               "else the content class (the two never collide: decorated names start with "
               "'.?A'); fields key, type (decorated or null), type_name, content ('object' "
               "for named groups), count, bytes, unreferenced_count, unreferenced_bytes; "
               "sorted by unreferenced_bytes descending, then bytes descending, then count "
               "descending, then key ascending",
    "unreferenced": "triage.unreferenced = {count, bytes, user_addresses (ascending)}",
    "references": "triage.references[] lists every word the scenario wrote on purpose: "
                  "{address, value, holder (a root kind, 'allocation', or 'ignored'), "
                  "holder_allocation (user_address of the allocation whose scanned range holds "
                  "it, else null), target (user_address of the allocation it references, else "
                  "null), counts (holder is a root kind, or an allocation that is reached, and "
                  "target not null), why (for ignored words), note}; registers are in "
                  "triage.registers[] with the same target field",
    "roles": "allocations[].role is a human note on why the block is there; decoy = "
             "{kind, rule} for blocks built to fail one rule of doc 1.4 (rule = the first of "
             "R1..R6, checked in that order, that fails)",
    "stale_and_tail_words": "stale pointers are written into free back-end and LFH blocks "
                            "(after the free-list links) and into the unused tail of busy "
                            "blocks whose holder is reached, so that only the 'never read' rule "
                            "keeps their targets unreferenced",
    "virtual_uncaptured": "a virtual block has only its first page captured; a reference "
                          "that 'would be' in its uncaptured part is not in the dump at all "
                          "(its target is a false leak, doc 2.5); the record's role says so",
    "unaligned_root": "a pointer stored at an address that is not a multiple of P in .data "
                      "is not a root word (doc 2.2 'Root words'); its target stays "
                      "unreferenced",
    "class_semantics": "class names and hierarchies are test data (std::vector with a "
                       "vftable does not occur in real programs); multiple inheritance: each "
                       "base holds only a vfptr, the k-th base subobject at k*P (doc 1.1)",
    "mi_consistency": "one multiple-inheritance object has 0 instead of its secondary vfptr "
                      "(half destroyed); doc 1.4 says the optional consistency check never "
                      "changes a name, so it is named",
    "empty_allocation": "a 0-byte allocation has an empty range, so no word references it: "
                        "it is always unreferenced",
    "root_memory_kinds": "a read-only MEM_MAPPED view is root memory (doc 2.2 excludes only "
                         "non-writable MEM_IMAGE regions), kind other; a word in the PEB page "
                         "(ProcessParameters, _PEB +0x20 x64 / +0x10 x86 per public symbols) "
                         "and words in TEB TlsSlots (+0x1480 x64 / +0xE10 x86) are kind other",
    "images": "vision.dll, core.dll and plugin.dll are synthetic PE images (tests/dumpbuilder/"
              "rtti.py): .text [0x1000, 0x2000), .rdata [0x2000, 0x4000) read-only, .data "
              "[0x4000, 0x5000) read/write, every VirtualSize a multiple of 0x1000, so 'lies in "
              "a section' reads the same with VirtualSize or the page-rounded size; each image "
              "has its own type_info vftable (doc 1.3 [VCRT]); vision.dll and core.dll are "
              "captured whole, plugin.dll only its header page and first .rdata page (its RTTI "
              "is on the second .rdata page)",
    "name_bounds": "no TypeDescriptor name comes near the 512-byte bound of R5 (names are short, "
                   "or have no NUL in the first 600 bytes); every RTTI structure lies wholly "
                   "inside its image or wholly outside, so 'inside M' never depends on reading "
                   "it as the start address or the whole structure",
    "capture": "E and every word the scenario writes into an allocation are captured, except "
               "what lies past the first page of a virtual block",
    "modules_record": "triage.modules[]: per C++ image {name, base, type_info_vftable, "
                      "type_info_descriptor, sections, classes[] (decorated, type_name, "
                      "type_descriptor, hierarchy_descriptor, vftables[] {address, col, "
                      "offset}), decoys[] (kind, value = the first word of the decoy block, "
                      "rule, detail)}",
    "relaxed_r5": "doc 4 allows relaxing R5 to 'same pVFTable as every other validated "
                  "TypeDescriptor of the image'; every TypeDescriptor here either points at "
                  "its own image's type_info vftable (whose COL passes R5's self-check) or "
                  "fails both forms",
}


def _align_up(v: int, a: int) -> int:
    return (v + a - 1) // a * a


# ---------------------------------------------------------------------------
class Data:
    """Bytes of an object or buffer, with the offsets of the pointer words it holds."""

    def __init__(self, ptr: int):
        self.P = ptr
        self.buf = bytearray()
        self.pointers: list[tuple[int, int, str]] = []    # (offset, value, note)

    @property
    def _pf(self) -> str:
        return "<I" if self.P == 4 else "<Q"

    def ptr(self, value: int, note: str = "") -> "Data":
        """A pointer word (P-aligned offset): declared, so references are known."""
        self.align(self.P)
        self.pointers.append((len(self.buf), value, note))
        self.buf += struct.pack(self._pf, value)
        return self

    def word(self, value: int) -> "Data":
        """A P-byte integer that is not meant as a pointer."""
        self.align(self.P)
        self.buf += struct.pack(self._pf, value)
        return self

    def u32(self, value: int) -> "Data":
        self.buf += struct.pack("<I", value)
        return self

    def u16(self, value: int) -> "Data":
        self.buf += struct.pack("<H", value)
        return self

    def raw(self, data: bytes) -> "Data":
        self.buf += data
        return self

    def zeros(self, n: int) -> "Data":
        self.buf += bytes(n)
        return self

    def text(self, s: str, nul: bool = True) -> "Data":
        self.buf += s.encode("latin-1") + (b"\x00" if nul else b"")
        return self

    def wtext(self, s: str, nul: bool = True) -> "Data":
        self.buf += s.encode("utf-16-le") + (b"\x00\x00" if nul else b"")
        return self

    def align(self, a: int) -> "Data":
        self.buf += bytes(_align_up(len(self.buf), a) - len(self.buf))
        return self

    def __len__(self) -> int:
        return len(self.buf)


@dataclass
class Ref:
    """An allocation as the scenario sees it before the heaps are written."""

    user: int
    size: int
    kind: str                    # backend | virtual | lfh_block
    heap: int
    block: int                   # block / entry address
    block_end: int               # end of the block's bytes (LFH: block + BlockSize*gran)
    captured_end: int            # first user byte the dump does not hold

    @property
    def end(self) -> int:
        return self.user + self.size


@dataclass
class Declared:
    ref: Ref
    data: bytes
    content: str                 # expected doc-3 class
    role: str
    cls: CxxClass | None = None
    vftable: int | None = None
    decoy: Decoy | None = None


@dataclass
class Word:
    address: int
    value: int
    note: str
    size: int = 0                # bytes written (P; a misaligned word too)


class Triage:
    def __init__(self, b: DumpBuilder, arch: str):
        self.b = b
        self.arch = arch
        self.P = 4 if arch == "x86" else 8
        self.declared: dict[int, Declared] = {}
        self.words: list[Word] = []
        self.registers: list[tuple[int, str, int, str]] = []     # thread index, name, value, note
        self.roles: dict[int, str] = {}
        self.applied = False

    @property
    def _pf(self) -> str:
        return "<I" if self.P == 4 else "<Q"

    # ------------------------------------------------------------ handles
    def ref(self, heap: NtHeap, handle: Block | LfhBlock | VirtualBlock,
            subsegment: Subsegment | None = None) -> Ref:
        if isinstance(handle, Block):
            user, size = heap._user(handle)
            if not handle.busy or handle.kind != "backend":
                raise ValueError("a busy back-end block")
            return Ref(user, size, "backend", heap.address, handle.address, handle.end,
                       user + size)
        if isinstance(handle, LfhBlock):
            if not handle.busy:
                raise ValueError("a busy LFH block")
            if subsegment is None:
                raise ValueError("an LFH block needs its subsegment")
            end = handle.address + subsegment.block_size_field * heap.entry.granularity
            return Ref(handle.user_address, handle.user_size, "lfh_block", heap.address,
                       handle.address, end, handle.user_address + handle.user_size)
        if isinstance(handle, VirtualBlock):
            cap = handle.address + (handle.commit_size if handle.capture == "full" else PAGE)
            return Ref(handle.user_address, handle.request, "virtual", heap.address,
                       handle.header_address, handle.address + handle.commit_size,
                       min(cap, handle.user_address + handle.request))
        raise TypeError(type(handle))

    # ------------------------------------------------------------ declarations
    def _declare(self, r: Ref, data: Data, content: str, role: str, **kw) -> Declared:
        if r.user in self.declared:
            raise ValueError(f"allocation {r.user:#x} declared twice")
        if data.P != self.P:
            raise ValueError("Data of the wrong pointer size")
        if len(data) > r.size:
            raise ValueError(f"{len(data):#x} bytes do not fit allocation {r.user:#x} "
                             f"({r.size:#x} bytes)")
        if content not in CONTENT_CLASSES:
            raise ValueError(f"content class {content!r}")
        raw = bytes(data.buf) + bytes(r.size - len(data))      # the rest of the block zeroed
        # Only the captured part of a virtual block is written.
        raw = raw[:r.captured_end - r.user]
        d = Declared(r, raw, content, role, **kw)
        self.declared[r.user] = d
        for off, value, note in data.pointers:
            if value and r.user + off + self.P <= r.captured_end:      # NULLs reference nothing
                self.words.append(Word(r.user + off, value, note or f"field +{off:#x}", self.P))
        return d

    def obj(self, r: Ref, cls: CxxClass, fields: Data | None = None, *, role: str,
            vfptrs: list[int] | None = None) -> Declared:
        """A complete object of ``cls``: its vfptrs at 0, P, ... then ``fields``."""
        d = Data(self.P)
        for v in (cls.vfptrs() if vfptrs is None else vfptrs):
            d.word(v)           # image addresses: never allocations, so not declared pointers
        if fields is not None:
            base = len(d)
            d.buf += fields.buf
            d.pointers += [(base + o, v, n) for o, v, n in fields.pointers]
        return self._declare(r, d, "object", role, cls=cls, vftable=cls.primary.address)

    def decoy(self, r: Ref, decoy: Decoy, fields: Data | None = None, *, content: str,
              role: str = "") -> Declared:
        """A block whose first word is ``decoy.value`` and that must not be named.  A block
        smaller than P holds the first user_size bytes of the value; the whole word is still
        written (its last bytes lie in the block's unused tail)."""
        if r.size < self.P:
            full = struct.pack(self._pf, decoy.value)
            d = self._declare(r, Data(self.P).raw(full[:r.size]), content,
                              role or f"decoy {decoy.kind}: {decoy.detail}", decoy=decoy)
            self.words.append(Word(r.user, decoy.value, "whole vfptr word of a block smaller "
                                                        "than P", self.P))
            return d
        d = Data(self.P).word(decoy.value)
        if fields is not None:
            base = len(d)
            d.buf += fields.buf
            d.pointers += [(base + o, v, n) for o, v, n in fields.pointers]
        return self._declare(r, d, content, role or f"decoy {decoy.kind}: {decoy.detail}",
                             decoy=decoy)

    def fill(self, r: Ref, data: Data, *, content: str, role: str) -> Declared:
        return self._declare(r, data, content, role)

    def role(self, r: Ref, role: str) -> None:
        """A note for a block whose bytes the heap builder's pattern fill keeps."""
        self.roles[r.user] = role

    def pointer(self, address: int, value: int, note: str) -> None:
        """A P-byte word written anywhere (globals, stack, TEB, free blocks, tails, .rdata);
        an address that is not P-aligned is allowed (it is then not a root word)."""
        self.words.append(Word(address, value, note, self.P))

    def register(self, thread: int, name: str, value: int, note: str) -> None:
        if name not in fmt.context_registers(self.arch):
            raise ValueError(f"no {self.arch} register {name!r}")
        self.registers.append((thread, name, value, note))

    # ------------------------------------------------------------ writing
    def apply(self) -> None:
        """Write every declared content, word and register into the finished dump."""
        if self.applied:
            raise RuntimeError("apply() twice")
        self.applied = True
        # No write may silently change another: words overlap only when identical, and a
        # word over declared contents only replaces zero padding or the same bytes.
        seen: dict[int, int] = {}
        for w in sorted(self.words, key=lambda w: w.address):
            for a, byte in enumerate(struct.pack(self._pf, w.value), start=w.address):
                if seen.setdefault(a, byte) != byte:
                    raise ValueError(f"word at {w.address:#x} ({w.note}) overwrites another")
        for d in self.declared.values():
            for a, byte in seen.items():
                if d.ref.user <= a < d.ref.user + len(d.data):
                    old = d.data[a - d.ref.user]
                    if old not in (0, byte):
                        raise ValueError(f"a word at {a:#x} overwrites the contents of "
                                         f"{d.ref.user:#x}")
        for d in self.declared.values():
            if d.data:
                self.b.poke(d.ref.user, d.data)
        for w in self.words:
            self.b.poke(w.address, struct.pack(self._pf, w.value))
        for ti, name, value, _note in self.registers:
            t = self.b.threads[ti]
            if name in t.registers:
                raise ValueError(f"thread {ti}: {name} set twice")
            t.registers[name] = value

    # ------------------------------------------------------------ classification
    def _captured(self, address: int, n: int) -> bool:
        try:
            self.b.read(address, n)
            return True
        except MemoryNotCaptured:
            return False

    def content_class(self, user: int, size: int) -> str:
        """doc 3 rules 1-5 on the dump's bytes (a named block is 'object' before this)."""
        e = self.b.read(user, min(size, E_LIMIT))
        if all(x == 0 for x in e):
            return "zero"
        t = e.split(b"\x00", 1)[0]
        if len(t) >= MIN_TEXT and all(x in TEXT_BYTES for x in t):
            return "ascii"
        units = [e[i] | e[i + 1] << 8 for i in range(0, len(e) - 1, 2)]
        if 0 in units:
            units = units[:units.index(0)]
        if len(units) >= MIN_TEXT and all(u < 0x100 and (u in TEXT_BYTES or u in LATIN1_HIGH)
                                          for u in units):
            return "utf16"
        P = self.P
        words = [int.from_bytes(e[i:i + P], "little") for i in range(0, len(e) - P + 1, P)]
        if len(words) >= 2 and sum(1 for w in words if w) >= 2 and all(
                w == 0 or self._committed(w) for w in words):
            return "pointer_array"
        return "other"

    def _committed(self, address: int) -> bool:
        r = self.b.region_containing(address)
        return r is not None and r.state == fmt.MEM_COMMIT

    # ------------------------------------------------------------ expected
    def expected(self, heaps: list[NtHeap], modules: list[CxxModule] | None = None) -> dict:
        if not self.applied:
            raise RuntimeError("call apply() first")
        P = self.P
        b = self.b
        rows = []
        for h in heaps:
            for r in h.expected()["blocks"]:
                if r["is_allocation"]:
                    rows.append(dict(r, heap=h.address))
        rows.sort(key=lambda r: r["user_address"])
        by_user = {r["user_address"]: r for r in rows}
        assert len(by_user) == len(rows)
        for u, d in self.declared.items():
            assert u in by_user, f"declared {u:#x} is not an allocation row"
            assert by_user[u]["user_size"] == d.ref.size, hex(u)
        spans = [(r["user_address"], r["user_address"] + r["user_size"]) for r in rows]

        def target_of(value: int) -> int | None:
            for lo, hi in spans:
                if lo <= value < hi:
                    return lo
            return None

        # Heap-owned memory H (doc 2.1): every region sharing the AllocationBase of a segment
        # or virtual block (the Win7 _LFH_HEAP lives in a virtual block; Win8+ ones and zones
        # in segment blocks).
        owner_bases = set()
        for h in heaps:
            owner_bases |= {s.base for s in h.segments}
            owner_bases |= {v.address for v in h.virtual_blocks}
        H = [(g.base, g.end) for g in b.regions
             if (g.allocation_base if g.allocation_base is not None else g.base) in owner_bases]
        stack_bases = set()
        for t in b.threads:
            g = b.region_containing(t.stack_start)
            assert g is not None
            stack_bases.add(g.allocation_base if g.allocation_base is not None else g.base)

        def holder(address: int) -> tuple[str, int | None, str]:
            """(root kind | 'allocation' | 'ignored', holder allocation, why)."""
            if not self._captured(address, P):
                return "ignored", None, "not captured"
            if any(lo <= address < hi for lo, hi in H):
                for lo, hi in spans:
                    if lo <= address and address + P <= hi:
                        if address % P:
                            return "ignored", lo, "not P-aligned"
                        return "allocation", lo, ""
                for lo, hi in spans:
                    if lo <= address < hi:
                        return "ignored", lo, "word runs past user_size (last, partial word)"
                return "ignored", None, "heap-owned memory outside every allocation (free " \
                                        "block, header, unused tail or metadata)"
            if address % P:
                return "ignored", None, "not P-aligned"
            g = b.region_containing(address)
            assert g is not None, f"captured {address:#x} outside every region"
            if g.type == fmt.MEM_IMAGE and (g.protect & 0xFF) not in WRITABLE_PROTECT:
                return "ignored", None, "read-only image section"
            base = g.allocation_base if g.allocation_base is not None else g.base
            if base in stack_bases:
                return "stack", None, ""
            if g.type == fmt.MEM_IMAGE:
                return "global", None, ""
            return "other", None, ""

        refs = []
        for w in self.words:
            kind, holder_alloc, why = holder(w.address)
            refs.append({"address": w.address, "value": w.value, "holder": kind,
                         "holder_allocation": holder_alloc, "target": target_of(w.value),
                         "why": why or None, "note": w.note})
        regs = []
        for ti, t in enumerate(b.threads):
            values = {("esp" if self.arch == "x86" else "rsp"): t.stack_start}
            values.update(t.registers)
            notes = {name: note for tj, name, _v, note in self.registers if tj == ti}
            for name in fmt.context_registers(self.arch):
                v = values.get(name, 0)
                if v or name in notes:
                    regs.append({"thread": ti, "thread_id": t.tid, "register": name, "value": v,
                                 "target": target_of(v), "note": notes.get(name)})

        direct: dict[int, set[str]] = defaultdict(set)
        edges: dict[int, set[int]] = defaultdict(set)
        for r in refs:
            if r["target"] is None:
                continue
            if r["holder"] in ROOT_KINDS:
                direct[r["target"]].add(r["holder"])
            elif r["holder"] == "allocation":
                edges[r["holder_allocation"]].add(r["target"])
        for r in regs:
            if r["target"] is not None:
                direct[r["target"]].add("register")
        depth: dict[int, int] = {u: 0 for u in direct}
        queue = deque(sorted(direct))
        while queue:
            u = queue.popleft()
            for v in sorted(edges.get(u, ())):
                if v not in depth:
                    depth[v] = depth[u] + 1
                    queue.append(v)
        for r in refs:
            r["counts"] = r["target"] is not None and (
                r["holder"] in ROOT_KINDS
                or (r["holder"] == "allocation" and r["holder_allocation"] in depth))

        mod_by_base = {m.base: m for m in (modules or [])}
        allocs = []
        for row in rows:
            u = row["user_address"]
            d = self.declared.get(u)
            cls = d.cls if d is not None else None
            content = d.content if d is not None else "other"
            got = "object" if cls is not None else self.content_class(u, row["user_size"])
            assert got == content, (f"allocation {u:#x}: declared {content}, the bytes give "
                                    f"{got}")
            roots = [k for k in ROOT_KINDS if k in direct.get(u, ())]
            reachable = u in depth
            rec = {
                "user_address": u,
                "user_size": row["user_size"],
                "address": row["address"],
                "heap": row["heap"],
                "kind": row["kind"],
                "type": cls.decorated if cls else None,
                "type_name": cls.display if cls else None,
                "type_module": cls.module.name if cls else None,
                "vftable": d.vftable if cls else None,
                "is_struct": cls.is_struct if cls else None,
                "content": content,
                "reachable": reachable,
                "direct_roots": roots,
                "reached_by": roots[0] if roots else ("heap" if reachable else "none"),
                "depth": depth.get(u),
                "role": (d.role if d is not None else self.roles.get(u, "pattern filler "
                                                                           "(heap builder)")),
                "decoy": ({"kind": d.decoy.kind, "rule": d.decoy.rule, "value": d.decoy.value}
                          if d is not None and d.decoy is not None else None),
            }
            if cls is not None:
                assert cls.module.base in mod_by_base or not mod_by_base
            allocs.append(rec)

        types: dict[tuple, dict] = {}
        for a in allocs:
            if a["type"] is None:
                continue
            k = (a["type"], a["type_module"], a["vftable"])
            t = types.setdefault(k, {"type": a["type"], "type_name": a["type_name"],
                                     "type_module": a["type_module"], "vftable": a["vftable"],
                                     "is_struct": a["is_struct"], "count": 0, "bytes": 0})
            t["count"] += 1
            t["bytes"] += a["user_size"]
        unref = [a for a in allocs if not a["reachable"]]
        return {
            "conventions": CONVENTIONS,
            "allocations": allocs,
            "types": [types[k] for k in sorted(types)],
            "unreferenced": {"count": len(unref), "bytes": sum(a["user_size"] for a in unref),
                             "user_addresses": [a["user_address"] for a in unref]},
            "summary": summary(allocs),
            "references": refs,
            "registers": regs,
            "modules": [m.expected() for m in (modules or [])],
        }


def summary(allocs: list[dict]) -> list[dict]:
    """doc 2.4 per-type summary (sort order: CONVENTIONS 'summary')."""
    groups: dict[str, dict[str, Any]] = {}
    for a in allocs:
        key = a["type"] if a["type"] is not None else a["content"]
        g = groups.setdefault(key, {"key": key, "type": a["type"], "type_name": a["type_name"],
                                    "content": a["content"], "count": 0, "bytes": 0,
                                    "unreferenced_count": 0, "unreferenced_bytes": 0})
        g["count"] += 1
        g["bytes"] += a["user_size"]
        if not a["reachable"]:
            g["unreferenced_count"] += 1
            g["unreferenced_bytes"] += a["user_size"]
    return sorted(groups.values(), key=lambda g: (-g["unreferenced_bytes"], -g["bytes"],
                                                  -g["count"], g["key"]))
