"""The real ntdll.dll stand-in of tests/pdb mapped into a dump, with its heap keys set.

tests/pdb/ntdll.c, built by clang and lld-link for x64 and x86 (make_ntdll_pdb.sh), is a
real DLL named ntdll.dll with a real ntdll.pdb that holds the globals a symbol-aware heap
walker reads:

    RtlpLFHKey                   NT-heap LFH key (pointer-sized)
    RtlpHpHeapGlobals.HeapKey    segment-heap key, _RTLP_HP_HEAP_GLOBALS +0
    RtlpHpHeapGlobals.LfhKey     segment-heap LFH key, +8 (x64) / +4 (x86)

add_ntdll_pdb_module maps that image into a DumpBuilder (headers at the base, each
section at its RVA, base relocations applied when the base is not the preferred one),
writes the values a process would hold into those globals, and returns the facts a
scenario's JSON needs.  Every address is base + an RVA from the linker map
(tests/pdb/ntdll_<arch>.json, written by ntdllfacts.py); nothing here reads the PDB.
"""

from __future__ import annotations

import json
import os
import uuid
from functools import lru_cache

from . import pe as pefmt
from .builder import DumpBuilder, MemoryNotCaptured

PDB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pdb")
NTDLL_SYSTEM32 = r"C:\Windows\System32\ntdll.dll"
NTDLL_SYSWOW64 = r"C:\Windows\SysWOW64\ntdll.dll"
KEYS = ("RtlpLFHKey", "RtlpHpHeapGlobals.HeapKey", "RtlpHpHeapGlobals.LfhKey")
MISMATCHES = (None, "guid", "age")

NTDLL_PDB_CONVENTIONS = {
    "pdb": "tests/pdb/ntdll_<arch>/ntdll.pdb applies to the module when its name matches the "
           "module's CodeView pdb_name (ntdll.pdb) and its GUID and age equal the CodeView "
           "record's; with mismatch 'guid' or 'age' the record differs and the PDB must be "
           "ignored (keys then come from heap data, not from these globals)",
    "symbols": "x64 symbols are undecorated (RtlpLFHKey); x86 C symbols carry a leading "
               "underscore in the map and the PDB's publics (_RtlpLFHKey); 'decorated' gives "
               "the map's spelling",
    "addresses": "address = module base + the linker map's RVA (+ the field offset for "
                 "RtlpHpHeapGlobals.HeapKey (+0) and .LfhKey (+8 x64 / +4 x86))",
    "values": "the pointer-sized little-endian value at each key's address in the dump: the "
              "value the scenario wrote, or the DLL's initial constant when none was written",
}


@lru_cache(maxsize=None)
def _facts_text(arch: str) -> str:
    with open(os.path.join(PDB_DIR, f"ntdll_{arch}.json"), encoding="utf-8") as f:
        return f.read()


def ntdll_facts(arch: str) -> dict:
    """tests/pdb/ntdll_<arch>.json (a fresh copy)."""
    if arch not in ("x64", "x86"):
        raise ValueError("arch must be x64 or x86")
    return json.loads(_facts_text(arch))


def ntdll_bytes(arch: str) -> bytes:
    with open(os.path.join(PDB_DIR, ntdll_facts(arch)["dll"]), "rb") as f:
        return f.read()


def mismatched_guid(guid: uuid.UUID) -> uuid.UUID:
    """The GUID with one bit of its first byte flipped (as stacks_pdb_mismatch_x64 does)."""
    g = bytearray(guid.bytes_le)
    g[0] ^= 0x01
    return uuid.UUID(bytes_le=bytes(g))


def _field(facts: dict, key: str) -> tuple[int, int]:
    """(rva, size) of a key ("Global.Field") or of a whole scalar global ("Global")."""
    if key in facts["keys"]:
        k = facts["keys"][key]
        return k["rva"], k["size"]
    g = facts["globals"].get(key)
    if g is None or g["size"] not in (1, 2, 4, 8):
        known = sorted(facts["keys"]) + sorted(n for n, v in facts["globals"].items()
                                               if v["size"] in (1, 2, 4, 8))
        raise ValueError(f"unknown global {key!r}; known: {known}")
    return g["rva"], g["size"]


def add_ntdll_pdb_module(b: DumpBuilder, arch: str | None = None, base: int | None = None, *,
                         values: dict[str, int] | None = None, path: str | None = None,
                         mismatch: str | None = None, capture: str = "full",
                         file_version: tuple[int, int, int, int] = (0, 0, 0, 0),
                         memory_list: str = "mem64") -> dict:
    """Map tests/pdb/ntdll_<arch>/ntdll.dll into ``b`` at ``base`` and set its heap keys.

    ``arch``: the image's architecture (default: the dump's).  ``base``: default the
    image's preferred ImageBase; elsewhere the base relocations are applied (x86 code
    holds absolute addresses of the globals; the x64 image has none).  ``path``: default
    C:\\Windows\\System32\\ntdll.dll, or ...\\SysWOW64\\ntdll.dll for the x86 image in an
    x64 (WOW64) dump.  ``values``: {"RtlpLFHKey": k, "RtlpHpHeapGlobals.HeapKey": hk,
    "RtlpHpHeapGlobals.LfhKey": lk} (any subset; a scalar global such as
    "RtlpStandInAllocCount" works too), written over the mapped globals; keys not given
    keep the DLL's initial constants.  ``mismatch``: None (the module's CodeView record is
    the DLL's own, matching ntdll.pdb), "guid" (one GUID bit flipped) or "age" (age + 1):
    then the PDB must be ignored.  ``capture``: as DumpBuilder.add_pe_module ("full" puts
    the globals in the dump).

    Returns the expected facts (JSON-ready), see the keys below and NTDLL_PDB_CONVENTIONS."""
    facts = ntdll_facts(arch or b.arch)
    arch = facts["arch"]
    if mismatch not in MISMATCHES:
        raise ValueError(f"mismatch must be one of {MISMATCHES}")
    ptr = facts["pointer_size"]
    data = ntdll_bytes(arch)
    preferred = facts["image_base"]
    base = preferred if base is None else base
    if base % 0x10000:
        raise ValueError("an image base is 64 KiB aligned")
    if path is None:
        path = NTDLL_SYSWOW64 if (arch == "x86" and b.arch == "x64") else NTDLL_SYSTEM32

    patches = pefmt.relocation_patches(data, base)
    written: dict[str, int] = {}
    for key, value in (values or {}).items():
        rva, size = _field(facts, key)
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{key}: {value:#x} does not fit in {size} bytes")
        patches.append((rva, value.to_bytes(size, "little")))
        written[key] = value

    cv = facts["codeview"]
    pdb_guid = uuid.UUID(hex=cv["guid"])
    kw: dict = {}
    if mismatch == "guid":
        kw["pdb_guid"] = mismatched_guid(pdb_guid)
    elif mismatch == "age":
        kw["pdb_age"] = cv["age"] + 1
    m = b.add_pe_module(path, base, image_bytes=data, capture=capture,
                        timestamp=facts["timestamp"], file_version=file_version,
                        memory_list=memory_list, patches=patches, **kw)
    assert m.pdb_guid is not None and m.pdb_name is not None
    matches = (m.pdb_guid == pdb_guid and m.pdb_age == cv["age"]
               and m.pdb_name.lower() == cv["pdb_name"].lower())
    assert matches == (mismatch is None)

    def in_dump(address: int, size: int) -> bytes | None:
        try:
            return b.read(address, size)
        except MemoryNotCaptured:
            return None

    keys = {}
    for key in KEYS:
        k = facts["keys"][key]
        address = base + k["rva"]
        got = in_dump(address, k["size"])
        value = written.get(key, k["initial_value"])
        if got is not None:
            assert int.from_bytes(got, "little") == value, f"{key}: the dump holds other bytes"
        keys[key] = {"address": address, "rva": k["rva"], "global": k["global"],
                     "offset": k["offset"], "size": k["size"], "value": value,
                     "written": key in written, "initial_value": k["initial_value"],
                     "captured": got is not None}
    globals_ = {name: {"address": base + g["rva"], "rva": g["rva"], "size": g["size"],
                       "section": g["section"], "decorated": g["decorated"],
                       "initialized": g["initialized"]}
                for name, g in facts["globals"].items()}
    guid_hex = m.pdb_guid.hex.upper()
    return {
        "module": path,
        "name": m.name,
        "arch": arch,
        "base": base,
        "size": facts["size_of_image"],
        "preferred_base": preferred,
        "relocated": base != preferred,
        "relocations_applied": len(patches) - len(written),
        "capture": capture,
        "pointer_size": ptr,
        "pdb": {"file": f"tests/pdb/{facts['pdb']}", "facts": f"tests/pdb/ntdll_{arch}.json",
                "pdb_name": cv["pdb_name"], "guid": cv["guid"], "age": cv["age"],
                "debug_id": cv["debug_id"],
                "store_path": f"{cv['pdb_name']}/{cv['debug_id']}/{cv['pdb_name']}",
                "sha256": facts["pdb_sha256"]},
        "codeview": {"pdb_name": m.pdb_name, "guid": guid_hex, "age": m.pdb_age,
                     "debug_id": guid_hex + f"{m.pdb_age:X}"},
        "mismatch": mismatch,
        "pdb_matches": matches,
        "globals": globals_,
        "keys": keys,
        "values": {key: keys[key]["value"] for key in KEYS},
        "conventions": NTDLL_PDB_CONVENTIONS,
    }
