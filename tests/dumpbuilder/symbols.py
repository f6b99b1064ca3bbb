"""Expected symbol text of stack frames, computed from what the builder put in a dump.

The text follows WinDbg's habits (``halcon!HXmalloc+0x8b``); TEXT_CONVENTIONS
states every rule, and goes into the expected JSON next to the values.  Nothing
here reads the dump back: exports come from the PeImage descriptions the builder
wrote (pe.py), PDB functions from tests/pdb/tiny.json (linker map + object file).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .builder import DumpBuilder, Module

PDB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pdb")

TEXT_CONVENTIONS = {
    "module_name": "the ModuleList file name (after the last backslash) without its last "
                   "extension, case kept (C:\\Windows\\System32\\KERNELBASE.dll -> KERNELBASE), "
                   "as WinDbg prints it",
    "module_range": "a frame belongs to the module with base <= frame < base + SizeOfImage "
                    "(ModuleList BaseOfImage/SizeOfImage)",
    "export": "module!Export+0xoff: the usable export with the greatest RVA <= the frame's RVA; "
              "off = frame - (base + export RVA), lower-case hex with 0x, no padding; "
              "off 0 prints module!Export",
    "usable_exports": "named, not forwarded (EAT entry inside the export directory's range), "
                      "0 < RVA < SizeOfImage; read from the module's mapped image in the dump",
    "no_export": "module+0xoff (off from the module base, same hex format; off 0 prints the "
                 "module name alone) when the frame lies before the module's first usable "
                 "export or the module has none: no export directory, export directory not "
                 "captured, or a corrupt export directory (then none of its exports is used)",
    "no_module": "0x + lower-case hex of the address, no padding, when no module covers the "
                 "frame; jit_or_unknown = true for exactly these frames",
    "pdb": "with a PDB whose RSDS GUID and age equal the module's CodeView record, the PDB "
           "function containing the frame names it (module!Function+0xoff, static functions "
           "included); a PDB whose GUID or age differs is ignored and exports are used",
    "stack_identity": "a stack is its frame list: blocks whose trace entries differ but hold "
                      "identical frames have one stack; stack_id numbers are this file's "
                      "(first appearance in stack_blocks order): compare groupings, not numbers",
    "stack_key": "the newline-joined frame texts, innermost frame first",
}

# "First non-allocator frame" grouping: a frame is an allocator frame when its text
# is module!Function[+0x..] with Function in ALLOCATOR_FUNCTIONS and the module one
# of ALLOCATOR_MODULES (compared case-insensitively).
ALLOCATOR_MODULES = ("ntdll", "kernelbase", "kernel32", "ucrtbase", "msvcrt", "vcruntime140",
                     "msvcp140")
ALLOCATOR_FUNCTIONS = ("RtlAllocateHeap", "RtlpAllocateHeapInternal", "RtlpAllocateHeap",
                       "RtlReAllocateHeap", "RtlpReAllocateHeapInternal", "HeapAlloc",
                       "HeapReAlloc", "LocalAlloc", "GlobalAlloc", "malloc", "_malloc_base",
                       "calloc", "_calloc_base", "realloc", "_realloc_base", "_malloc_dbg",
                       "operator new", "operator new[]")
NO_MODULE_KEY = "<jit_or_unknown>"
CLR_MODULES = ("clr.dll", "coreclr.dll", "mscorwks.dll")


def hex0x(v: int) -> str:
    return f"{v:#x}"


def _plus(off: int) -> str:
    return "" if off == 0 else f"+{off:#x}"


@dataclass
class PdbFunctions:
    """Functions of one PDB, as the linker map and the object file give them."""

    file: str
    pdb_name: str
    guid: uuid.UUID
    age: int
    functions: list[tuple[int, int, str]]     # rva, size, name (sorted)

    @classmethod
    def from_facts(cls, facts: dict, file: str) -> PdbFunctions:
        cv = facts["codeview"]
        funcs = sorted((f["rva"], f["size"], f["name"]) for f in facts["functions"])
        return cls(file=file, pdb_name=cv["pdb_name"], guid=uuid.UUID(hex=cv["guid"]),
                   age=cv["age"], functions=funcs)

    def matches(self, m: Module) -> bool:
        if m.pdb_guid is None or m.pdb_name is None:
            return False
        name = m.pdb_name.replace("/", "\\").rsplit("\\", 1)[-1]
        return (name.lower() == self.pdb_name.lower() and m.pdb_guid == self.guid
                and m.pdb_age == self.age)

    def lookup(self, rva: int) -> tuple[str, int] | None:
        for start, size, name in self.functions:
            if start <= rva < start + size:
                return name, rva - start
        return None


def tiny_pdb() -> PdbFunctions:
    with open(os.path.join(PDB_DIR, "tiny.json"), encoding="utf-8") as f:
        return PdbFunctions.from_facts(json.load(f), "tests/pdb/tiny.pdb")


def exports_status(m: Module) -> str:
    """ok | none (image readable, no export directory) | not_captured | corrupt."""
    img = m.image
    if img is None or m.capture == "none":
        return "not_captured"
    if img.export_dir == (0, 0):
        return "none"
    if img.corrupt_exports is not None:
        return "corrupt"
    return "ok"


class Symbolizer:
    """Frame address -> expected text, from the builder's modules (and optional PDBs)."""

    def __init__(self, b: DumpBuilder, pdbs: Sequence[PdbFunctions] = ()):
        self.b = b
        self.pdbs = list(pdbs)

    def module(self, address: int) -> Module | None:
        return self.b.module_containing(address)

    def jit_or_unknown(self, address: int) -> bool:
        return self.module(address) is None

    def pdb_for(self, m: Module) -> PdbFunctions | None:
        return next((p for p in self.pdbs if p.matches(m)), None)

    def text(self, address: int) -> str:
        m = self.module(address)
        if m is None:
            return hex0x(address)
        rva = address - m.base
        pdb = self.pdb_for(m)
        if pdb is not None:
            hit = pdb.lookup(rva)
            if hit is None:
                raise ValueError(f"{address:#x} is in no function of {pdb.file}; "
                                 "the PDB rule needs frames inside functions")
            return f"{m.stem}!{hit[0]}{_plus(hit[1])}"
        best = None
        if exports_status(m) == "ok":
            assert m.image is not None
            for e in m.image.symbol_exports():
                if e.rva <= rva:
                    best = e
        if best is None:
            return f"{m.stem}{_plus(rva)}"
        return f"{m.stem}!{best.name}{_plus(rva - best.rva)}"

    def texts(self, frames: Sequence[int]) -> list[str]:
        return [self.text(f) for f in frames]

    def modules_expected(self) -> list[dict]:
        out = []
        for m in self.b.modules:
            st = exports_status(m)
            rec = {"name": m.name, "stem": m.stem, "base": m.base, "size": m.size,
                   "exports_status": st,
                   "usable_exports": ([{"name": e.name, "rva": e.rva}
                                       for e in m.image.symbol_exports()]
                                      if st == "ok" and m.image is not None else [])}
            if st == "corrupt" and m.image is not None:
                rec["corruption"] = m.image.corruption
            pdb = self.pdb_for(m)
            if pdb is not None:
                rec["pdb"] = pdb.file
            out.append(rec)
        return out

    def clr_module(self) -> dict | None:
        for m in self.b.modules:
            if m.name.lower() in CLR_MODULES:
                return {"name": m.name, "base": m.base, "size": m.size}
        return None


# ---------------------------------------------------------------------------
def split_text(text: str) -> tuple[str | None, str | None]:
    """(module, function) of a frame text; function None for module+0x..; both None
    for a bare address."""
    if text.startswith("0x"):
        return None, None
    if "!" in text:
        mod, rest = text.split("!", 1)
        func = rest.rsplit("+0x", 1)[0]
        return mod, func
    return text.split("+0x", 1)[0], None


def is_allocator_frame(text: str) -> bool:
    mod, func = split_text(text)
    return (mod is not None and func is not None and mod.lower() in ALLOCATOR_MODULES
            and func in ALLOCATOR_FUNCTIONS)


def first_non_allocator(texts: Sequence[str]) -> str | None:
    return next((t for t in texts if not is_allocator_frame(t)), None)


def grouping_module(texts: Sequence[str]) -> str:
    t = first_non_allocator(texts)
    if t is None:
        return NO_MODULE_KEY
    mod, _ = split_text(t)
    return mod if mod is not None else NO_MODULE_KEY


ALLOCATOR_RULE = {
    "allocator_modules": list(ALLOCATOR_MODULES),
    "allocator_functions": list(ALLOCATOR_FUNCTIONS),
    "rule": "a frame is an allocator frame when its text is module!Function or "
            "module!Function+0x.. with the module (case-insensitive) in allocator_modules and "
            "Function in allocator_functions; a stack is grouped by the module of its first "
            "non-allocator frame (innermost first); a bare-address frame groups as "
            f"{NO_MODULE_KEY!r}",
}


# ---------------------------------------------------------------------------
def stack_report(heaps: Sequence, sym: Symbolizer, sym_pdb: Symbolizer | None = None) -> dict:
    """stack_blocks / stacks / blocks_without_stack of NtHeaps (finished), with texts.

    ``sym_pdb``: a second symbolizer that also has PDBs; then every block gets
    expected_with_pdb and expected_without_pdb (= frame_texts)."""
    rows: list[dict] = []
    without: list[dict] = []
    for h in heaps:
        if not h.ust:
            continue
        db = h.stack_db

        def captured(trace: int) -> bool:
            return db is None or db.is_captured(trace)

        for s in h.segments:
            for blk in s.blocks:
                if not blk.busy or blk.kind != "backend":
                    continue
                user, size = h._user(blk)
                rec = {"heap": h.address, "kind": "backend", "address": blk.address,
                       "user_address": user, "user_size": size,
                       "stack_trace_entry": blk.trace, "trace_captured": captured(blk.trace),
                       "frames": list(blk.frames)}
                (rows if blk.trace else without).append(rec)
        for v in h.virtual_blocks:
            rec = {"heap": h.address, "kind": "virtual", "address": v.header_address,
                   "vae_address": v.address, "user_address": v.user_address,
                   "user_size": v.commit_size - v.busy_size,
                   "stack_trace_entry": v.trace, "trace_captured": captured(v.trace),
                   "frames": list(v.frames)}
            (rows if v.trace else without).append(rec)
    rows.sort(key=lambda r: r["address"])
    ids: dict[tuple[int, ...], int] = {}
    stacks: dict[int, dict] = {}
    for rec in rows:
        if not rec["trace_captured"]:
            rec["frames"] = []
            rec["frame_texts"] = []
            rec["jit_or_unknown"] = []
            rec["stack_id"] = None
            if sym_pdb is not None:
                rec["expected_with_pdb"] = []
                rec["expected_without_pdb"] = []
            continue
        frames = tuple(rec["frames"])
        rec["frame_texts"] = sym.texts(frames)
        rec["jit_or_unknown"] = [sym.jit_or_unknown(f) for f in frames]
        if sym_pdb is not None:
            rec["expected_with_pdb"] = sym_pdb.texts(frames)
            rec["expected_without_pdb"] = rec["frame_texts"]
        sid = ids.setdefault(frames, len(ids))
        rec["stack_id"] = sid
        st = stacks.setdefault(sid, {"stack_id": sid, "frames": list(frames),
                                     "frame_texts": rec["frame_texts"],
                                     "key": "\n".join(rec["frame_texts"]),
                                     "jit_or_unknown": rec["jit_or_unknown"],
                                     "grouping_module": grouping_module(rec["frame_texts"]),
                                     "trace_entries": [], "block_count": 0, "user_bytes": 0})
        if sym_pdb is not None and "expected_with_pdb" not in st:
            st["expected_with_pdb"] = rec["expected_with_pdb"]
        if rec["stack_trace_entry"] not in st["trace_entries"]:
            st["trace_entries"].append(rec["stack_trace_entry"])
        st["block_count"] += 1
        st["user_bytes"] += rec["user_size"]
    for st in stacks.values():
        st["trace_entries"].sort()
    return {
        "stack_blocks": rows,
        "stacks": [stacks[i] for i in sorted(stacks)],
        "blocks_without_stack": sorted(r["address"] for r in without),
        "shared_trace_entries": sorted(t for t, n in Counter(
            r["stack_trace_entry"] for r in rows).items() if n > 1),
        "stacks_with_several_entries": [st["stack_id"] for st in stacks.values()
                                        if len(st["trace_entries"]) > 1],
        "untraceable_blocks": [r["address"] for r in rows if not r["trace_captured"]],
    }
