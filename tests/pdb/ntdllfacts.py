"""Facts about the ntdll.dll stand-in (tests/pdb/ntdll_<arch>/), read without any PDB reader.

    python3 tests/pdb/ntdllfacts.py FOLDER ARCH [tool=version ...]

FOLDER holds ntdll_<arch>/ntdll.{dll,pdb,map,obj}; the facts go to FOLDER/ntdll_<arch>.json
(ARCH is x64 or x86).  make_ntdll_pdb.sh runs this in its build folder.

The sources are those of pdbfacts.py (whose parsers this script uses), each parsed with
``struct`` only:

* the linker map (ntdll.map): the RVA of every function and global, and the section
  (map "Start" column, 1-based) holding it;
* the compiler's object file (ntdll.obj, -ffunction-sections -fdata-sections): the size
  of each function and each global (its own section's SizeOfRawData), whether a global
  is initialised (.data) or not (.bss), and the return addresses inside functions;
* the DLL (ntdll.dll): section table, export directory, base relocations, the CodeView
  (RSDS) record of the debug directory, and the initial bytes of each global.

The PDB is only hashed, never parsed: a PDB reader under test must not be checked
against itself.  The field offsets inside the globals (KEY_FIELDS) come from
docs/windows-heap-layouts.md (section 10 intro, section 9.6) and are confirmed here by
finding the constants ntdll.c initialises them with at those offsets in the linked DLL.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pdbfacts import (  # noqa: E402
    MACHINE_AMD64,
    MACHINE_I386,
    parse_dll,
    parse_map,
    parse_obj,
    parse_obj_data,
)

ARCHES = {"x64": ("x86_64-pc-windows-msvc", MACHINE_AMD64, 8),
          "x86": ("i686-pc-windows-msvc", MACHINE_I386, 4)}

# The heap keys: "Global" or "Global.Field" -> (global, offset in it).  Offsets: ptr-sized
# RtlpLFHKey; _RTLP_HP_HEAP_GLOBALS.HeapKey at +0 and LfhKey at +8 (x64) / +4 (x86).
KEY_FIELDS = {"RtlpLFHKey": ("RtlpLFHKey", lambda ptr: 0),
              "RtlpHpHeapGlobals.HeapKey": ("RtlpHpHeapGlobals", lambda ptr: 0),
              "RtlpHpHeapGlobals.LfhKey": ("RtlpHpHeapGlobals", lambda ptr: ptr)}
# The constants ntdll.c initialises the keys with (truncated to 32 bits on x86).
INITIAL = {"RtlpLFHKey": 0x1F2E3D4C5B6A7988,
           "RtlpHpHeapGlobals.HeapKey": 0x0A1B2C3D4E5F6071,
           "RtlpHpHeapGlobals.LfhKey": 0x1122334455667788}
# sizeof of each global as ntdll.c declares it (checked against the object file).
DECLARED_SIZE = {"RtlpLFHKey": lambda ptr: ptr, "RtlpHpHeapGlobals": lambda ptr: 0x80,
                 "RtlpStandInAllocCount": lambda ptr: 4}


def undecorate(name: str, arch: str) -> str:
    """x86 C names carry a leading underscore, __stdcall ones also @<argument bytes>
    (_RtlAllocateHeap@12 -> RtlAllocateHeap); x64 names are not decorated."""
    if arch != "x86":
        return name
    assert name.startswith("_"), f"undecorated x86 C symbol {name!r}"
    return re.sub(r"@\d+$", "", name[1:])


def facts(folder: str, arch: str, tools: dict[str, str] | None = None) -> dict:
    target, machine, ptr = ARCHES[arch]
    sub = f"ntdll_{arch}"

    def read(name: str) -> bytes:
        with open(os.path.join(folder, sub, name), "rb") as f:
            return f.read()

    dll = read("ntdll.dll")
    pdb = read("ntdll.pdb")
    map_bytes = read("ntdll.map")
    img = parse_dll(dll)
    file_off = img.pop("file_off")
    assert img["machine"] == machine
    base, mapped = parse_map(map_bytes.decode("ascii"))
    assert base == img["image_base"], "map and DLL disagree on the preferred load address"
    obj = read("ntdll.obj")
    objf = parse_obj(obj)
    objd = parse_obj_data(obj)
    exported = {e["name"]: e for e in img["exports"]}
    sections = img["sections"]

    def section_facts(name: str) -> dict:
        mp = mapped[name]
        sec = sections[mp["section"] - 1]          # the map numbers sections from 1
        return {"section": sec["name"], "section_number": mp["section"],
                "section_offset": mp["section_offset"], "section_rva": sec["rva"]}

    functions = []
    for dname, f in sorted(objf.items(), key=lambda kv: mapped[kv[0]]["rva"]):
        mp = mapped[dname]
        name = undecorate(dname, arch)
        e = exported.get(name)
        if e is not None:
            assert e["rva"] == mp["rva"], f"{name}: export RVA differs from the map"
        functions.append({"name": name, "decorated": dname, "rva": mp["rva"], "size": f["size"],
                          "storage": f["storage"], "exported": e is not None,
                          "map_kind": mp["map_kind"], "call_returns": f["call_returns"],
                          "calls": [undecorate(c, arch) for c in f["calls"]],
                          **section_facts(dname)})
    for a, b in zip(functions, functions[1:]):
        assert a["rva"] + a["size"] <= b["rva"], "functions overlap"

    globals_: dict[str, dict] = {}
    for dname, g in sorted(objd.items(), key=lambda kv: mapped[kv[0]]["rva"]):
        mp = mapped[dname]
        name = undecorate(dname, arch)
        assert g["size"] == DECLARED_SIZE[name](ptr), f"{name}: size {g['size']:#x}"
        sf = section_facts(dname)
        sec = sections[sf["section_number"] - 1]
        assert sec["rva"] <= mp["rva"] and mp["rva"] + g["size"] <= sec["rva"] + sec["virtual_size"], \
            f"{name} is not inside {sec['name']}"
        rec = {"name": name, "decorated": dname, "rva": mp["rva"], "size": g["size"],
               "storage": g["storage"], "initialized": g["initialized"],
               "obj_section": g["obj_section"], "map_kind": mp["map_kind"], **sf}
        if g["initialized"]:
            at = file_off(mp["rva"])
            rec["initial_bytes"] = dll[at:at + g["size"]].hex()
        globals_[name] = rec
    for a, b in zip(list(globals_.values()), list(globals_.values())[1:]):
        assert a["rva"] + a["size"] <= b["rva"], "globals overlap"

    keys = {}
    for key, (gname, off) in KEY_FIELDS.items():
        g = globals_[gname]
        o = off(ptr)
        raw = bytes.fromhex(g["initial_bytes"])[o:o + ptr]
        value = int.from_bytes(raw, "little")
        want = INITIAL[key] & ((1 << (8 * ptr)) - 1)
        assert value == want, f"{key}: {value:#x} at +{o:#x}, ntdll.c says {want:#x}"
        keys[key] = {"global": gname, "offset": o, "size": ptr, "rva": g["rva"] + o,
                     "initial_value": value}

    out = {
        "arch": arch,
        "target": target,
        "module_name": "ntdll.dll",
        "dll": f"{sub}/ntdll.dll",
        "pdb": f"{sub}/ntdll.pdb",
        "map": f"{sub}/ntdll.map",
        "dll_sha256": hashlib.sha256(dll).hexdigest(),
        "pdb_sha256": hashlib.sha256(pdb).hexdigest(),
        "map_sha256": hashlib.sha256(map_bytes).hexdigest(),
        "dll_size": len(dll),
        "pdb_size": len(pdb),
        "machine": img["machine"],
        "pointer_size": ptr,
        "timestamp": img["timestamp"],
        "image_base": img["image_base"],
        "size_of_image": img["size_of_image"],
        "size_of_headers": img["size_of_headers"],
        "sections": sections,
        "export_directory": img["export_directory"],
        "exports": img["exports"],
        "codeview": img["codeview"],
        "base_relocation_directory": img["base_relocation_directory"],
        "base_relocations": img["base_relocations"],
        "functions": functions,
        "globals": globals_,
        "keys": keys,
        "sizeof_note": "RtlpHpHeapGlobals is 0x80 bytes on both targets: 0x80 is the x64 "
                       "sizeof of _RTLP_HP_HEAP_GLOBALS; the x86 sizeof is not documented and "
                       "the stand-in uses 0x80 too (only HeapKey and LfhKey matter)",
        "sources": {
            "rva": "linker map ntdll.map (Publics by Value, Static symbols): Rva+Base - "
                   "preferred load address; section = the map's section number (1-based) in "
                   "the DLL's section table",
            "size": "SizeOfRawData of the symbol's own section in ntdll.obj "
                    "(-ffunction-sections -fdata-sections); .bss sections have a size, no bytes",
            "decorated": "the name as the map (and the object file) spells it: x86 C names have a "
                         "leading underscore and __stdcall ones @<argument bytes>",
            "keys": "offsets from docs/windows-heap-layouts.md (section 10 intro, section 9.6); "
                    "initial_value read from the DLL's file bytes at the global's RVA + offset "
                    "and checked against ntdll.c's constants",
            "exports": "ntdll.dll export directory (names from ntdll.def, undecorated)",
            "base_relocations": "ntdll.dll base relocation directory (.reloc): fixup RVA and type",
            "call_returns": "offsets inside the function just after each 'call rel32' (0xE8 + "
                            "IMAGE_REL_AMD64_REL32 / IMAGE_REL_I386_REL32 relocation at offset r: "
                            "return at r+4)",
            "codeview": "ntdll.dll debug directory, IMAGE_DEBUG_TYPE_CODEVIEW RSDS record; guid in "
                        "symbol-store order (uppercase hex, no dashes), debug_id = guid + age in hex",
        },
    }
    if tools:
        out["tools"] = tools
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[2] not in ARCHES:
        print(__doc__, file=sys.stderr)
        return 2
    folder, arch = argv[1], argv[2]
    tools = {}
    for arg in argv[3:]:
        k, _, v = arg.partition("=")
        tools[k] = v
    data = facts(folder, arch, tools or None)
    path = os.path.join(folder, f"ntdll_{arch}.json")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    g = data["globals"]
    print(f"ntdll_{arch}.json: debug id {data['codeview']['debug_id']}, "
          + ", ".join(f"{n} at RVA {r['rva']:#x} ({r['section']})" for n, r in g.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
