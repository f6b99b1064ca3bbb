"""C++ module images with MSVC run-time type information (RTTI), for the leak-triage scenarios.

    m = CxxModule("C:/app/vision.dll", 0x7FFA60000000, "x64", timestamp=..., pdb_guid=...)
    buf = m.cls(".?AVCImageBuffer@@", "CImageBuffer")               # TypeDescriptor, COL, vftable
    job = m.cls(".?AVInspectionJob@vision@@", "vision::InspectionJob", bases=(widget, session))
    d = m.decoy("signature", buf)           # a vftable whose COL fails R3 (never named)
    m.install(b)                            # maps the PE image (sections, RTTI bytes) into the dump
    buf.vfptrs()                            # [primary vftable] / [primary, secondary] (MI)

Every layout and constant below is transcribed from /work/shared/docs/leak-triage.md ("the doc"),
section 1: the RTTICompleteObjectLocator (COL), TypeDescriptor, class hierarchy descriptor (CHD),
base class array (BCA) and base class descriptor (BCD) tables of section 1.2, type_info's own
vftable and COL (section 1.3) and the validation rules R1..R6 (section 1.4), which the decoys are
built to break one at a time.  Nothing is taken from the project's reader.  PE headers, sections
and CodeView come from pe.py (DumpBuilder.add_pe_module); this module only fills .rdata and .data.

Image layout (CONVENTIONS): .text [0x1000, 0x2000) execute/read (int3 filler; vftable entries
point here), .rdata [0x2000, 0x4000) read-only (the debug directory and CodeView record first,
RTTI from +0x200: COLs, CHDs, BCAs, BCDs, vftables each preceded by its COL pointer), .data
[0x4000, 0x5000) read/write (TypeDescriptors, then the program's globals).  Every VirtualSize is
a multiple of the page size, so "lies in a section" means the same with VirtualSize and with the
page-rounded mapped size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from . import pe as pefmt

# ---------------------------------------------------------------------------
# leak-triage.md 1.2, RTTICompleteObjectLocator: x86 0x14 bytes, x64 0x18 bytes.
COL_SIZE = {"x86": 0x14, "x64": 0x18}
COL_SIGNATURE = {"x86": 0, "x64": 1}    # 1.2: x86 0; x64 1 ([LLVM] isImageRelative); R3
COL_SIGNATURE_OFF = 0x00                # u32 signature
COL_OFFSET_OFF = 0x04                   # u32 offset of this vfptr in the complete object
COL_CD_OFFSET_OFF = 0x08                # u32 constructor displacement (not checked, R-list)
COL_TD_OFF = 0x0C                       # x86 VA / x64 u32 RVA of the TypeDescriptor
COL_CHD_OFF = 0x10                      # x86 VA / x64 u32 RVA of the class hierarchy descriptor
COL_SELF_OFF = 0x14                     # x64 only: u32 pSelf = RVA of this COL

# 1.2, TypeDescriptor: pVFTable (VA on both), spare, then the decorated name at +2P.
TD_VFTABLE_OFF = 0x00
# (spare at +P, name at +2P: see TypeDescriptor offsets in CxxModule.type_descriptor)

# 1.2, RTTIClassHierarchyDescriptor, 0x10 bytes on both architectures.
CHD_SIZE = 0x10
CHD_SIGNATURE = 0                       # "reserved by the runtime" ([LLVM]); R6 requires 0
CHD_SIGNATURE_OFF = 0x00
CHD_ATTRIBUTES_OFF = 0x04               # 1 multiple inheritance, 2 virtual, 4 ambiguous
CHD_NUM_BASES_OFF = 0x08                # the class itself included
CHD_BCA_OFF = 0x0C                      # x86 VA / x64 RVA of the base class array
CHD_MULTIPLE_INHERITANCE = 1

# 1.2, RTTIBaseClassDescriptor, 0x1c bytes.
BCD_SIZE = 0x1C
BCD_TD_OFF = 0x00                       # x86 VA / x64 RVA
BCD_NUM_CONTAINED_OFF = 0x04
BCD_WHERE_OFF = 0x08                    # PMD: i32 mdisp, i32 pdisp (-1 unless virtual), i32 vdisp
BCD_ATTRIBUTES_OFF = 0x14
BCD_CHD_OFF = 0x18                      # x86 VA / x64 RVA
BCD_HAS_CHD = 0x40                      # attributes: "0x40 has a hierarchy descriptor"

# 1.4 R5 / R6 bounds.
NAME_LIMIT = 512                        # R5: NUL within 512 bytes ([BN]'s bound)
MAX_BASES = 64                          # R6: our bound on numBaseClasses
TYPE_INFO_NAME = ".?AVtype_info@@"      # 1.3 / R5

# Image layout (CONVENTIONS above).
TEXT_RVA, TEXT_SIZE = 0x1000, 0x1000
RDATA_RVA, RDATA_SIZE = 0x2000, 0x2000
DATA_RVA, DATA_SIZE = 0x4000, 0x1000
IMAGE_SIZE = 0x5000
RDATA_RESERVED = 0x200                  # debug directory + CodeView record (pe.build_image)
FUNCTION_STRIDE = 0x10                  # .text "functions" the vftables point at

SECTIONS = [(".text", TEXT_RVA, TEXT_SIZE, pefmt.SCN_TEXT),
            (".rdata", RDATA_RVA, RDATA_SIZE, pefmt.SCN_RDATA),
            (".data", DATA_RVA, DATA_SIZE, pefmt.SCN_DATA)]

# Decoys: what each one breaks (leak-triage.md 1.4) -- the first rule an R1..R6 check in
# order fails on.
DECOY_RULES = {
    "text_pointer": ("R1", "the first word is a function address in .text (executable)"),
    "type_descriptor_pointer": ("R1", "the first word points at a TypeDescriptor in .data "
                                      "(a stored const type_info*)"),
    "vftable_in_data": ("R1", "a vftable copy in writable .data, its [-1] a valid COL"),
    "vftable_unaligned": ("R1", "a vftable in .rdata at an address that is not P-aligned, its "
                                "[-1] a valid COL"),
    "private_copy": ("R1", "the first word points into a private (non-image) region holding "
                           "[valid COL pointer, function pointers]"),
    "short_block": ("R1", "user_size < P: the block holds the low bytes of a real vftable "
                          "address, the rest of the word lies past user_size"),
    "mid_vftable": ("R2", "the first word points at the second entry of a real vftable: its "
                          "[-1] is a .text function address"),
    "vbtable": ("R2", "the first word points at a vbtable {0, offset} in .rdata (virtual "
                      "inheritance, not handled by doc 1.4); the word before it is 0"),
    "string_literal": ("R2", "the first word points at a P-aligned string literal in .rdata; "
                             "the word before it is text, not a COL address"),
    "col_in_data": ("R2", "the COL (contents valid) lies in writable .data"),
    "col_unaligned": ("R2", "the COL (contents valid, pSelf matching) starts 2 bytes past a "
                            "4-aligned address"),
    "col_in_other_image": ("R2", "[-1] points at a valid COL of another image"),
    "module_not_captured": ("R2", "a valid vftable of an image whose .rdata pages are not in "
                                  "the dump (header page captured)"),
    "signature": ("R3", "COL signature does not match the architecture (x64 0, x86 1)"),
    "pself": ("R3", "x64 COL pSelf is not the COL's RVA"),
    "td_outside_image": ("R3", "the COL's TypeDescriptor is a real one of another image"),
    "chd_outside_image": ("R3", "the COL's hierarchy descriptor is a real one of another image"),
    "secondary_vftable": ("R4", "the block starts with a secondary vftable (COL offset P)"),
    "td_not_type_info": ("R5", "the TypeDescriptor's pVFTable is another class's vftable, "
                               "not type_info's"),
    "td_foreign_type_info": ("R5", "the TypeDescriptor's pVFTable is another image's type_info "
                                   "vftable"),
    "td_enum_name": ("R5", "TypeDescriptor name starts with .?AW4 (an enum), not .?AV/.?AU"),
    "td_bad_char": ("R5", "TypeDescriptor name contains a space (0x20)"),
    "td_unterminated": ("R5", "TypeDescriptor name has no NUL within 512 bytes"),
    "td_unaligned": ("R5", "TypeDescriptor not P-aligned"),
    "chd_signature": ("R6", "class hierarchy descriptor signature 1"),
    "chd_no_bases": ("R6", "numBaseClasses 0"),
    "chd_too_many_bases": ("R6", "numBaseClasses 65 (> 64)"),
    "bca_other_type": ("R6", "the first base class descriptor names another TypeDescriptor"),
}


def _align(v: int, a: int) -> int:
    return (v + a - 1) // a * a


class _Area:
    """Bump allocator over one section's bytes."""

    def __init__(self, va: int, size: int, start: int = 0):
        self.va = va
        self.buf = bytearray(size)
        self.pos = start
        self.start = start

    def alloc(self, n: int, align: int = 4, misalign: int = 0) -> int:
        pos = _align(self.pos, align) + misalign
        if pos + n > len(self.buf):
            raise ValueError(f"section at {self.va:#x} is full")
        self.pos = pos + n
        return self.va + pos

    def write(self, va: int, data: bytes) -> None:
        off = va - self.va
        assert 0 <= off and off + len(data) <= len(self.buf), hex(va)
        self.buf[off:off + len(data)] = data

    def pack(self, va: int, form: str, *values: int) -> None:
        self.write(va, struct.pack(form, *values))

    def contains(self, va: int) -> bool:
        return self.va <= va < self.va + len(self.buf)


@dataclass
class Vftable:
    address: int                 # what a vfptr holds: the first entry
    col: int                     # the COL address stored at address - P
    offset: int                  # COL.offset: 0 primary, k*P for the k-th base's subobject
    entries: list[int] = field(default_factory=list)


@dataclass
class CxxClass:
    decorated: str
    display: str | None          # leak-triage.md 1.5 display form, written out literally
    module: "CxxModule"
    td: int
    chd: int
    bases: tuple["CxxClass", ...]
    vftables: list[Vftable] = field(default_factory=list)

    @property
    def primary(self) -> Vftable:
        return self.vftables[0]

    @property
    def is_struct(self) -> bool:
        return self.decorated.startswith(".?AU")

    def vfptrs(self) -> list[int]:
        """The vfptr values of a complete object, at offsets 0, P, ... (leak-triage.md 1.1:
        each base holds only its vfptr, so the k-th base's subobject is at k*P)."""
        return [v.address for v in self.vftables]

    def expected(self) -> dict:
        return {"decorated": self.decorated, "type_name": self.display,
                "module": self.module.name, "type_descriptor": self.td,
                "hierarchy_descriptor": self.chd, "is_struct": self.is_struct,
                "bases": [b.decorated for b in self.bases],
                "vftables": [{"address": v.address, "col": v.col, "offset": v.offset}
                             for v in self.vftables]}


@dataclass
class Decoy:
    kind: str
    value: int                   # what the block's first word holds
    module: "CxxModule"
    rule: str                    # the first rule of 1.4 that fails
    detail: str
    victim: str | None = None    # decorated name of the class the decoy imitates

    def expected(self) -> dict:
        return {"kind": self.kind, "value": self.value, "module": self.module.name,
                "rule": self.rule, "detail": self.detail, "imitates": self.victim}


class CxxModule:
    """A synthetic C++ DLL: PE image (pe.py) whose .rdata/.data hold MSVC RTTI."""

    def __init__(self, path: str, base: int, arch: str, *, timestamp: int,
                 pdb_name: str | None = None, pdb_guid=None, pdb_age: int = 1,
                 file_version: tuple[int, int, int, int] = (1, 0, 0, 0),
                 rtti_rdata_offset: int = RDATA_RESERVED):
        if arch not in ("x86", "x64"):
            raise ValueError("arch is x86 or x64")
        if base % 0x10000:
            raise ValueError("image base must be 64 KiB aligned")
        self.path = path
        self.name = path.replace("/", "\\").rsplit("\\", 1)[-1]
        self.base = base
        self.arch = arch
        self.P = 4 if arch == "x86" else 8
        self.size = IMAGE_SIZE
        self.timestamp = timestamp
        self.pdb_name, self.pdb_guid, self.pdb_age = pdb_name, pdb_guid, pdb_age
        self.file_version = file_version
        self.rdata = _Area(base + RDATA_RVA, RDATA_SIZE, rtti_rdata_offset)
        self.data = _Area(base + DATA_RVA, DATA_SIZE)
        self._next_fn = base + TEXT_RVA + 0x100
        self.classes: list[CxxClass] = []
        self.decoys: list[Decoy] = []
        self.installed = False
        # 1.3: type_info's own TypeDescriptor, hierarchy, COL and vftable, emitted first.
        td = self.type_descriptor(TYPE_INFO_NAME, vftable=0)
        chd = self._hierarchy(td, [(td, 0, 0, None)], attributes=0)
        col = self._col(td, chd, 0)
        vft = self._vftable(col, 2)
        self.data.pack(td + TD_VFTABLE_OFF, self._pf, vft.address)
        self.type_info = CxxClass(TYPE_INFO_NAME, "type_info", self, td, chd, (), [vft])
        self.type_info_vftable = vft.address

    # ------------------------------------------------------------ primitives
    @property
    def _pf(self) -> str:
        return "<I" if self.P == 4 else "<Q"

    def rva(self, va: int) -> int:
        return va - self.base

    def ref(self, va: int) -> int:
        """A reference field of a COL/CHD/BCA/BCD: x86 the VA, x64 the u32 RVA (1.2)."""
        v = va if self.arch == "x86" else va - self.base
        if not 0 <= v < 1 << 32:
            raise ValueError(f"{va:#x} cannot be referenced from {self.name} ({self.arch})")
        return v

    def fn(self) -> int:
        """A fresh function address in .text (a vftable entry)."""
        at = self._next_fn
        self._next_fn += FUNCTION_STRIDE
        if at >= self.base + TEXT_RVA + TEXT_SIZE:
            raise ValueError(".text is full")
        return at

    def contains(self, va: int) -> bool:
        return self.base <= va < self.base + self.size

    def type_descriptor(self, name: str | bytes, *, vftable: int | None = None,
                        misalign: int = 0) -> int:
        """A TypeDescriptor in .data: {pVFTable, spare 0, name NUL} (1.2); pVFTable defaults
        to this image's type_info vftable.  ``name`` may be bytes (decoys)."""
        raw = name.encode("ascii") if isinstance(name, str) else bytes(name)
        P = self.P
        td = self.data.alloc(2 * P + len(raw) + 1, align=P, misalign=misalign)
        self.data.pack(td + TD_VFTABLE_OFF, self._pf,
                       self.type_info_vftable if vftable is None else vftable)
        self.data.pack(td + P, self._pf, 0)                                   # spare
        self.data.write(td + 2 * P, raw + b"\x00")                            # name at +2P
        return td

    def spare_address(self, cls: CxxClass) -> int:
        """Where cls's TypeDescriptor keeps ``spare`` (the runtime's cached undecorated name,
        1.2: may point into a heap)."""
        return cls.td + self.P

    def _bcd(self, td: int, contained: int, mdisp: int, chd: int | None) -> int:
        at = self.rdata.alloc(BCD_SIZE, align=4)
        self.rdata.pack(at + BCD_TD_OFF, "<I", self.ref(td))
        self.rdata.pack(at + BCD_NUM_CONTAINED_OFF, "<I", contained)
        self.rdata.pack(at + BCD_WHERE_OFF, "<iii", mdisp, -1, 0)
        self.rdata.pack(at + BCD_ATTRIBUTES_OFF, "<I", BCD_HAS_CHD)
        self.rdata.pack(at + BCD_CHD_OFF, "<I", 0 if chd is None else self.ref(chd))
        return at

    def _hierarchy(self, td: int, entries: list[tuple[int, int, int, int | None]], *,
                   attributes: int, signature: int = CHD_SIGNATURE,
                   num_bases: int | None = None, first_td: int | None = None) -> int:
        """CHD + base class array + descriptors.  entries: (td, numContainedBases, mdisp,
        chd or None = this CHD) in depth-first pre-order, the class itself first (1.2)."""
        chd = self.rdata.alloc(CHD_SIZE, align=4)
        bcds = []
        for k, (etd, contained, mdisp, echd) in enumerate(entries):
            if k == 0 and first_td is not None:
                etd = first_td
            bcds.append(self._bcd(etd, contained, mdisp, chd if echd is None else echd))
        bca = self.rdata.alloc(4 * (len(bcds) + 1), align=4)
        for k, d in enumerate(bcds + [None]):
            self.rdata.pack(bca + 4 * k, "<I", 0 if d is None else self.ref(d))   # 0 ends it
        self.rdata.pack(chd + CHD_SIGNATURE_OFF, "<I", signature)
        self.rdata.pack(chd + CHD_ATTRIBUTES_OFF, "<I", attributes)
        self.rdata.pack(chd + CHD_NUM_BASES_OFF, "<I", len(entries) if num_bases is None else num_bases)
        self.rdata.pack(chd + CHD_BCA_OFF, "<I", self.ref(bca))
        return chd

    def _col(self, td: int, chd: int, offset: int, *, area: _Area | None = None,
             signature: int | None = None, pself_delta: int = 0, td_ref: int | None = None,
             chd_ref: int | None = None, misalign: int = 0) -> int:
        """A COL (1.2); ``td_ref``/``chd_ref`` override the stored reference field value."""
        area = area or self.rdata
        col = area.alloc(COL_SIZE[self.arch], align=4, misalign=misalign)
        area.pack(col + COL_SIGNATURE_OFF, "<I",
                  COL_SIGNATURE[self.arch] if signature is None else signature)
        area.pack(col + COL_OFFSET_OFF, "<I", offset)
        area.pack(col + COL_CD_OFFSET_OFF, "<I", 0)
        area.pack(col + COL_TD_OFF, "<I", self.ref(td) if td_ref is None else td_ref)
        area.pack(col + COL_CHD_OFF, "<I", self.ref(chd) if chd_ref is None else chd_ref)
        if self.arch == "x64":
            area.pack(col + COL_SELF_OFF, "<I", self.ref(col) + pself_delta)
        return col

    def _vftable(self, col: int, n: int, *, area: _Area | None = None, offset: int = 0,
                 misalign: int = 0) -> Vftable:
        """[COL pointer][n function addresses] (1.1: the vftable symbol points past the COL
        slot); returns the vftable (first entry) address."""
        area = area or self.rdata
        P = self.P
        at = area.alloc(P * (n + 1), align=P, misalign=misalign)
        area.pack(at, self._pf, col)
        entries = [self.fn() for _ in range(n)]
        for k, f in enumerate(entries):
            area.pack(at + P * (k + 1), self._pf, f)
        return Vftable(at + P, col, offset, entries)

    # ------------------------------------------------------------ classes
    def cls(self, decorated: str, display: str, *, bases: tuple[CxxClass, ...] = (),
            methods: int = 3) -> CxxClass:
        """A polymorphic class.  ``bases`` (each without bases of its own, each holding only a
        vfptr): the first shares the primary vftable, the k-th (k >= 1) gets a secondary
        vftable whose COL has offset k*P (1.1, [LLT]).  Hierarchy: the class, then its bases
        at mdisp k*P; attributes 1 with two or more bases."""
        if self.installed:
            raise RuntimeError("module already installed")
        if not decorated.startswith((".?AV", ".?AU")):
            raise ValueError("a class name starts with .?AV or .?AU (1.2)")
        for base in bases:
            if base.module is not self or base.bases:
                raise ValueError("bases: classes of this module without bases of their own")
        P = self.P
        td = self.type_descriptor(decorated)
        entries: list[tuple[int, int, int, int | None]] = [(td, len(bases), 0, None)]
        entries += [(base.td, 0, k * P, base.chd) for k, base in enumerate(bases)]
        chd = self._hierarchy(td, entries,
                              attributes=CHD_MULTIPLE_INHERITANCE if len(bases) > 1 else 0)
        vfts = []
        for k in range(max(1, len(bases))):
            col = self._col(td, chd, k * P)
            vfts.append(self._vftable(col, methods if k == 0 else 2, offset=k * P))
        c = CxxClass(decorated, display, self, td, chd, tuple(bases), vfts)
        self.classes.append(c)
        return c

    def string_literal(self, text: str) -> int:
        """A P-aligned NUL-terminated string in .rdata, preceded by P bytes of another
        string's text (so the word before it is text, not an address)."""
        P = self.P
        at = self.rdata.alloc(P + len(text) + 1, align=P)
        self.rdata.write(at, b"status: "[:P])
        self.rdata.write(at + P, text.encode("ascii") + b"\x00")
        return at + P

    # ------------------------------------------------------------ decoys
    def decoy(self, kind: str, victim: CxxClass | None = None,
              other: "CxxModule | None" = None, at: int | None = None) -> Decoy:
        """A value for a block's first word that looks like a vfptr but fails exactly one
        rule of leak-triage.md 1.4 (DECOY_RULES).  ``victim``: a named class to imitate;
        ``other``: another CxxModule for the cross-image variants; ``at``: for
        "private_copy", the private address where private_copy_bytes(victim) is placed."""
        if kind not in DECOY_RULES:
            raise ValueError(f"decoy kind {kind!r}; known: {sorted(DECOY_RULES)}")
        rule, detail = DECOY_RULES[kind]
        P = self.P
        v = victim
        need_victim = kind not in ("text_pointer", "string_literal", "vbtable", "td_enum_name",
                                   "td_bad_char",
                                   "td_unterminated", "td_unaligned", "chd_signature",
                                   "chd_no_bases", "chd_too_many_bases", "bca_other_type",
                                   "td_foreign_type_info", "module_not_captured")
        if need_victim and (v is None or v.module is not self):
            raise ValueError(f"decoy {kind} needs a class of this module")

        def fresh(name: str | bytes, **kw) -> int:
            """A new TypeDescriptor + hierarchy + COL + vftable; returns the vftable."""
            td_kw = {k: kw.pop(k) for k in ("vftable", "misalign") if k in kw}
            td = self.type_descriptor(name, **td_kw)
            chd_kw = {k: kw.pop(k) for k in ("signature_chd", "num_bases", "first_td") if k in kw}
            chd = self._hierarchy(td, [(td, 0, 0, None)], attributes=0,
                                  signature=chd_kw.get("signature_chd", CHD_SIGNATURE),
                                  num_bases=chd_kw.get("num_bases"),
                                  first_td=chd_kw.get("first_td"))
            col = self._col(td, chd, 0)
            assert not kw, kw
            return self._vftable(col, 2).address

        if kind == "text_pointer":
            value = self.fn()
        elif kind == "type_descriptor_pointer":
            value = v.td
        elif kind == "vftable_in_data":
            value = self._vftable(v.primary.col, 2, area=self.data).address
        elif kind == "vftable_unaligned":
            value = self._vftable(v.primary.col, 2, misalign=P // 2).address
            assert value % P
        elif kind == "private_copy":
            if at is None or at % P:
                raise ValueError("private_copy needs the P-aligned address of the copy (at=)")
            value = at + P
        elif kind == "short_block":
            value = v.primary.address
        elif kind == "mid_vftable":
            value = v.primary.address + P
        elif kind == "vbtable":
            at = self.rdata.alloc(P + 8, align=P)                    # P zero bytes, then it
            self.rdata.pack(at + P, "<ii", 0, 2 * P)                 # vbptr offset, vbase offset
            value = at + P
        elif kind == "string_literal":
            value = self.string_literal("Kalibrierung %s fehlgeschlagen")
        elif kind == "col_in_data":
            col = self._col(v.td, v.chd, 0, area=self.data)
            value = self._vftable(col, 2).address
        elif kind == "col_unaligned":
            col = self._col(v.td, v.chd, 0, misalign=2)
            assert col % 4 == 2
            value = self._vftable(col, 2).address
        elif kind == "col_in_other_image":
            if other is None or not other.classes:
                raise ValueError("col_in_other_image needs another module with a class")
            value = self._vftable(other.classes[0].primary.col, 2).address
        elif kind == "module_not_captured":
            if other is None or not other.classes:
                raise ValueError("module_not_captured: give the uncaptured module as other")
            value = other.classes[0].primary.address
            decoy = Decoy(kind, value, other, rule, detail, other.classes[0].decorated)
            self.decoys.append(decoy)
            return decoy
        elif kind == "signature":
            col = self._col(v.td, v.chd, 0, signature=1 - COL_SIGNATURE[self.arch])
            value = self._vftable(col, 2).address
        elif kind == "pself":
            if self.arch != "x64":
                raise ValueError("pSelf exists on x64 only")
            col = self._col(v.td, v.chd, 0, pself_delta=COL_SIZE["x64"])
            value = self._vftable(col, 2).address
        elif kind == "td_outside_image":
            if other is None or not other.classes:
                raise ValueError("td_outside_image needs another module with a class")
            col = self._col(v.td, v.chd, 0, td_ref=self.ref(other.classes[0].td))
            value = self._vftable(col, 2).address
        elif kind == "chd_outside_image":
            if other is None or not other.classes:
                raise ValueError("chd_outside_image needs another module with a class")
            col = self._col(v.td, v.chd, 0, chd_ref=self.ref(other.classes[0].chd))
            value = self._vftable(col, 2).address
        elif kind == "secondary_vftable":
            if len(v.vftables) < 2:
                raise ValueError("secondary_vftable needs a class with two vftables")
            value = v.vftables[1].address
        elif kind == "td_not_type_info":
            value = fresh(".?AVSpoofed@@", vftable=v.primary.address)
        elif kind == "td_foreign_type_info":
            if other is None:
                raise ValueError("td_foreign_type_info needs another module")
            value = fresh(".?AVForeign@@", vftable=other.type_info_vftable)
        elif kind == "td_enum_name":
            value = fresh(".?AW4Color@@")
        elif kind == "td_bad_char":
            value = fresh(".?AVBad Name@@")
        elif kind == "td_unterminated":
            value = fresh(b".?AV" + b"Unterminated" * 50)       # 604 name bytes, no NUL early
            assert len(b".?AV" + b"Unterminated" * 50) > NAME_LIMIT
        elif kind == "td_unaligned":
            value = fresh(".?AVMisaligned@@", misalign=P // 2)
        elif kind == "chd_signature":
            value = fresh(".?AVBadHierarchy@@", signature_chd=1)
        elif kind == "chd_no_bases":
            value = fresh(".?AVNoBases@@", num_bases=0)
        elif kind == "chd_too_many_bases":
            value = fresh(".?AVTooManyBases@@", num_bases=MAX_BASES + 1)
        elif kind == "bca_other_type":
            if not self.classes:
                raise ValueError("bca_other_type needs a class in this module")
            value = fresh(".?AVMismatch@@", first_td=self.classes[0].td)
        else:  # pragma: no cover
            raise AssertionError(kind)
        decoy = Decoy(kind, value, self, rule, detail, v.decorated if v is not None else None)
        self.decoys.append(decoy)
        return decoy

    def private_copy_bytes(self, victim: CxxClass) -> bytes:
        """[victim's primary COL pointer][its entries]: what a "private_copy" region holds
        (copy it to a private region; the decoy value is region + P)."""
        P = self.P
        out = struct.pack(self._pf, victim.primary.col)
        for f in victim.primary.entries:
            out += struct.pack(self._pf, f)
        return out

    # ------------------------------------------------------------ image
    def install(self, b, *, capture: str = "full", memory_list: str = "mem64",
                patches: list[tuple[int, bytes]] | None = None):
        """Map the image into the DumpBuilder (add_pe_module): RTTI bytes as patches over the
        synthetic .rdata (after the debug directory) and .data."""
        if self.installed:
            raise RuntimeError("installed twice")
        self.installed = True
        rd = self.rdata
        pts = [(RDATA_RVA + rd.start, bytes(rd.buf[rd.start:])),
               (DATA_RVA, bytes(self.data.buf))] + list(patches or ())
        m = b.add_pe_module(self.path, self.base, self.size, arch=self.arch, sections=SECTIONS,
                            pdb_name=self.pdb_name, pdb_guid=self.pdb_guid, pdb_age=self.pdb_age,
                            capture=capture, file_version=self.file_version,
                            timestamp=self.timestamp, memory_list=memory_list, patches=pts)
        img = m.image
        dbg_end = img.codeview_rva + len(img.codeview.record()) if img.codeview else img.debug_dir[0]
        assert dbg_end <= RDATA_RVA + rd.start, "debug data runs into the RTTI area"
        assert img.sections[1].characteristics == pefmt.SCN_RDATA
        self.module = m
        return m

    def expected(self) -> dict:
        return {"name": self.name, "path": self.path, "base": self.base, "size": self.size,
                "arch": self.arch, "type_info_vftable": self.type_info_vftable,
                "type_info_descriptor": self.type_info.td,
                "sections": [{"name": n, "rva": r, "size": s, "characteristics": c}
                             for n, r, s, c in SECTIONS],
                "classes": [c.expected() for c in self.classes],
                "decoys": [d.expected() for d in self.decoys]}
