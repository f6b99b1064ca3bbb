"""Facts about tiny.dll for the symbolization fixtures, read without any PDB reader.

    python3 tests/pdb/pdbfacts.py tests/pdb        # writes tests/pdb/tiny.json

Three independent sources, each parsed here with ``struct`` only:

* the linker map (tiny.map): the RVA of every function, public and static;
* the compiler's object file (tiny.obj, -ffunction-sections): the size of each
  function (its own COMDAT section) and the return addresses inside it (a
  ``call rel32`` = opcode 0xE8 followed by a REL32 relocation; the return address
  is the relocation offset + 4);
* the DLL (tiny.dll): section table, export directory, and the CodeView (RSDS)
  record of its debug directory.

Structure layouts follow the Microsoft PE/COFF specification (sections named in
the comments).  The PDB itself is only hashed, never parsed: expected names come
from the linker and the compiler, so a PDB reader under test cannot agree with
itself by construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import sys
import uuid

# PE/COFF spec, "Machine Types".
MACHINE_AMD64 = 0x8664
# PE/COFF spec, "Type Representation": complex type IMAGE_SYM_DTYPE_FUNCTION (2) << 4.
SYM_TYPE_FUNCTION = 0x20
# PE/COFF spec, "Storage Class".
SYM_CLASS_EXTERNAL = 2
SYM_CLASS_STATIC = 3
# PE/COFF spec, "Type Indicators" (x64 processors).
REL_AMD64_REL32 = 0x0004
# PE/COFF spec, "Debug Type".
DEBUG_TYPE_CODEVIEW = 2
CALL_REL32 = 0xE8  # x86/x64 "CALL rel32" opcode


def _cstr(data: bytes, off: int) -> str:
    end = data.index(b"\x00", off)
    return data[off:end].decode("ascii")


# --------------------------------------------------------------------- PE image
def parse_dll(data: bytes) -> dict:
    # "MS-DOS Stub (Image Only)": the file offset of the PE signature is at 0x3c.
    assert data[:2] == b"MZ"
    (pe,) = struct.unpack_from("<I", data, 0x3C)
    # "Signature (Image Only)".
    assert data[pe:pe + 4] == b"PE\x00\x00"
    # "COFF File Header (Object and Image)".
    machine, nsec, timestamp, _symptr, _nsym, opt_size, chars = struct.unpack_from(
        "<HHIIIHH", data, pe + 4)
    opt = pe + 24
    # "Optional Header Standard Fields (Image Only)": Magic 0x20b = PE32+.
    (magic,) = struct.unpack_from("<H", data, opt)
    assert magic == 0x20B, "tiny.dll is expected to be PE32+"
    # "Optional Header Windows-Specific Fields (Image Only)" (PE32+ offsets).
    (image_base,) = struct.unpack_from("<Q", data, opt + 24)
    (size_of_image, size_of_headers) = struct.unpack_from("<II", data, opt + 56)
    (ndirs,) = struct.unpack_from("<I", data, opt + 108)
    # "Optional Header Data Directories (Image Only)": 8 bytes each from +112.
    dirs = [struct.unpack_from("<II", data, opt + 112 + 8 * i) for i in range(ndirs)]
    # "Section Table (Section Headers)": 40 bytes each after the optional header.
    sections = []
    for i in range(nsec):
        at = opt + opt_size + 40 * i
        name = data[at:at + 8].rstrip(b"\x00").decode("ascii")
        vsize, rva, raw_size, raw_ptr = struct.unpack_from("<IIII", data, at + 8)
        (sc,) = struct.unpack_from("<I", data, at + 36)
        sections.append({"name": name, "rva": rva, "virtual_size": vsize,
                         "raw_size": raw_size, "raw_pointer": raw_ptr, "characteristics": sc})

    def file_off(rva: int) -> int:
        for s in sections:
            if s["rva"] <= rva < s["rva"] + max(s["virtual_size"], s["raw_size"]):
                return rva - s["rva"] + s["raw_pointer"]
        raise ValueError(f"RVA {rva:#x} is in no section")

    # "Export Directory Table" (.edata section).
    exports = []
    exp_rva, exp_size = dirs[0]
    dll_name = None
    ordinal_base = None
    if exp_rva:
        e = file_off(exp_rva)
        (_flags, _ts, _maj, _min, name_rva, base, nfunc, nnames, eat, npt, ot) = struct.unpack_from(
            "<IIHHIIIIIII", data, e)
        dll_name = _cstr(data, file_off(name_rva))
        ordinal_base = base
        funcs = struct.unpack_from(f"<{nfunc}I", data, file_off(eat))
        names = struct.unpack_from(f"<{nnames}I", data, file_off(npt))
        ords = struct.unpack_from(f"<{nnames}H", data, file_off(ot))
        for n_rva, idx in zip(names, ords):
            rva = funcs[idx]
            forwarder = exp_rva <= rva < exp_rva + exp_size
            exports.append({"name": _cstr(data, file_off(n_rva)), "ordinal": base + idx,
                            "rva": rva, "forwarder": forwarder})
    # "Debug Directory (Image Only)": 28-byte entries; CodeView type 2 -> RSDS record.
    codeview = None
    dbg_rva, dbg_size = dirs[6]
    for i in range(dbg_size // 28):
        at = file_off(dbg_rva) + 28 * i
        (_c, _ts, _maj, _min, dtype, size, _addr, ptr) = struct.unpack_from("<IIHHIIII", data, at)
        if dtype != DEBUG_TYPE_CODEVIEW:
            continue
        assert data[ptr:ptr + 4] == b"RSDS"
        guid = uuid.UUID(bytes_le=data[ptr + 4:ptr + 20])
        (age,) = struct.unpack_from("<I", data, ptr + 20)
        codeview = {"guid": guid.hex.upper(), "guid_dashed": str(guid).upper(), "age": age,
                    "pdb_name": _cstr(data, ptr + 24),
                    "debug_id": guid.hex.upper() + f"{age:X}",
                    "rsds_file_offset": ptr, "rsds_size": size}
    return {"machine": machine, "timestamp": timestamp, "characteristics": chars,
            "image_base": image_base, "size_of_image": size_of_image,
            "size_of_headers": size_of_headers, "sections": sections,
            "export_directory": {"rva": exp_rva, "size": exp_size, "dll_name": dll_name,
                                 "ordinal_base": ordinal_base},
            "exports": sorted(exports, key=lambda x: x["rva"]), "codeview": codeview}


# --------------------------------------------------------------------- object file
def parse_obj(data: bytes) -> dict[str, dict]:
    """Function name -> {size, storage, call_returns[], calls[]} from a COFF object."""
    # "COFF File Header (Object and Image)".
    machine, nsec, _ts, symptr, nsym, opt_size, _chars = struct.unpack_from("<HHIIIHH", data, 0)
    assert machine == MACHINE_AMD64 and opt_size == 0
    strtab = symptr + 18 * nsym
    # "Section Table (Section Headers)".
    secs = []
    for i in range(nsec):
        at = 20 + 40 * i
        (raw_size, raw_ptr, rel_ptr, _ln_ptr, nrel, _nln, _chars) = struct.unpack_from(
            "<IIIIHHI", data, at + 16)
        secs.append((raw_size, raw_ptr, rel_ptr, nrel))

    # "COFF Symbol Table": 18-byte records; long names in the string table.
    syms: dict[int, tuple[str, int, int, int, int]] = {}
    i = 0
    while i < nsym:
        at = symptr + 18 * i
        raw = data[at:at + 8]
        if raw[:4] == b"\x00\x00\x00\x00":
            (off,) = struct.unpack_from("<I", raw, 4)
            name = _cstr(data, strtab + off)
        else:
            name = raw.rstrip(b"\x00").decode("ascii")
        value, secno, typ, sclass, naux = struct.unpack_from("<IhHBB", data, at + 8)
        syms[i] = (name, value, secno, typ, sclass)
        i += 1 + naux

    funcs: dict[str, dict] = {}
    for name, value, secno, typ, sclass in syms.values():
        if typ != SYM_TYPE_FUNCTION or secno <= 0 or sclass not in (SYM_CLASS_EXTERNAL, SYM_CLASS_STATIC):
            continue
        raw_size, raw_ptr, rel_ptr, nrel = secs[secno - 1]
        assert value == 0, f"{name}: one function per section expected (-ffunction-sections)"
        code = data[raw_ptr:raw_ptr + raw_size]
        returns, calls = [], []
        # "COFF Relocations (Object Only)": 10-byte records.
        for r in range(nrel):
            va, symidx, rtype = struct.unpack_from("<IIH", data, rel_ptr + 10 * r)
            if rtype == REL_AMD64_REL32 and va >= 1 and code[va - 1] == CALL_REL32:
                returns.append(va + 4)
                calls.append(syms[symidx][0])
        funcs[name] = {"size": raw_size,
                       "storage": "static" if sclass == SYM_CLASS_STATIC else "global",
                       "call_returns": returns, "calls": calls}
    return funcs


# --------------------------------------------------------------------- linker map
_MAP_LINE = re.compile(r"^\s*([0-9a-fA-F]{4}):([0-9a-fA-F]{8})\s+(\S+)\s+([0-9a-fA-F]{16})\s+(\S+)\s*$")


def parse_map(text: str) -> tuple[int, dict[str, dict]]:
    """(preferred load address, name -> {rva, section, offset, kind}) from a link.exe-style map."""
    m = re.search(r"Preferred load address is ([0-9a-fA-F]+)", text)
    assert m, "no preferred load address in the map"
    base = int(m.group(1), 16)
    out: dict[str, dict] = {}
    kind = None
    for line in text.splitlines():
        if "Publics by Value" in line:
            kind = "public"
            continue
        if line.strip() == "Static symbols":
            kind = "static"
            continue
        hit = _MAP_LINE.match(line)
        if hit and kind is not None:
            sec, off, name, va, _obj = hit.groups()
            out[name] = {"rva": int(va, 16) - base, "section": int(sec, 16),
                         "section_offset": int(off, 16), "map_kind": kind}
    return base, out


# --------------------------------------------------------------------- facts
def facts(folder: str, tools: dict[str, str] | None = None) -> dict:
    def read(name: str) -> bytes:
        with open(os.path.join(folder, name), "rb") as f:
            return f.read()

    dll = read("tiny.dll")
    pdb = read("tiny.pdb")
    img = parse_dll(dll)
    base, mapped = parse_map(read("tiny.map").decode("ascii"))
    objf = parse_obj(read("tiny.obj"))
    assert base == img["image_base"]
    exported = {e["name"]: e for e in img["exports"]}
    functions = []
    for name, f in sorted(objf.items(), key=lambda kv: mapped[kv[0]]["rva"]):
        mp = mapped[name]
        e = exported.get(name)
        if e is not None:
            assert e["rva"] == mp["rva"], f"{name}: export RVA differs from the map"
        functions.append({"name": name, "rva": mp["rva"], "size": f["size"],
                          "storage": f["storage"], "exported": e is not None,
                          "map_kind": mp["map_kind"], "call_returns": f["call_returns"],
                          "calls": f["calls"]})
    for a, b in zip(functions, functions[1:]):
        assert a["rva"] + a["size"] <= b["rva"], "functions overlap"
    out = {
        "dll": "tiny.dll",
        "pdb": "tiny.pdb",
        "dll_sha256": hashlib.sha256(dll).hexdigest(),
        "pdb_sha256": hashlib.sha256(pdb).hexdigest(),
        "dll_size": len(dll),
        "pdb_size": len(pdb),
        "machine": img["machine"],
        "timestamp": img["timestamp"],
        "image_base": img["image_base"],
        "size_of_image": img["size_of_image"],
        "size_of_headers": img["size_of_headers"],
        "sections": img["sections"],
        "export_directory": img["export_directory"],
        "exports": img["exports"],
        "codeview": img["codeview"],
        "functions": functions,
        "sources": {
            "rva": "linker map tiny.map (Publics by Value, Static symbols): "
                   "Rva+Base - preferred load address",
            "size": "SizeOfRawData of the function's own section in tiny.obj (-ffunction-sections)",
            "call_returns": "offsets inside the function just after each 'call rel32' "
                            "(0xE8 + IMAGE_REL_AMD64_REL32 relocation at offset r: return at r+4)",
            "exports": "tiny.dll export directory",
            "codeview": "tiny.dll debug directory, IMAGE_DEBUG_TYPE_CODEVIEW RSDS record; guid in "
                        "symbol-store order (uppercase hex, no dashes), debug_id = guid + age in hex",
        },
    }
    if tools:
        out["tools"] = tools
    return out


def main(argv: list[str]) -> int:
    folder = argv[1] if len(argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    tools = {}
    for arg in argv[2:]:
        k, _, v = arg.partition("=")
        tools[k] = v
    data = facts(folder, tools or None)
    with open(os.path.join(folder, "tiny.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"tiny.json: {len(data['functions'])} functions, {len(data['exports'])} exports, "
          f"debug id {data['codeview']['debug_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
