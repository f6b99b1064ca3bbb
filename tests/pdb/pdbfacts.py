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

The parsers also read PE32 images and i386 objects, global data symbols
(parse_obj_data) and base relocations: ntdllfacts.py uses them for the x64 and x86
ntdll.dll stand-ins.

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
MACHINE_I386 = 0x014C
# PE/COFF spec, "Type Representation": complex type IMAGE_SYM_DTYPE_FUNCTION (2) << 4.
SYM_TYPE_FUNCTION = 0x20
# PE/COFF spec, "Storage Class".
SYM_CLASS_EXTERNAL = 2
SYM_CLASS_STATIC = 3
# PE/COFF spec, "Type Indicators" (x64 processors; Intel 386 processors).
REL_AMD64_REL32 = 0x0004
REL_I386_REL32 = 0x0014
CALL_REL_BY_MACHINE = {MACHINE_AMD64: REL_AMD64_REL32, MACHINE_I386: REL_I386_REL32}
# PE/COFF spec, "Section Flags".
SCN_CNT_UNINITIALIZED_DATA = 0x00000080
# PE/COFF spec, "Base Relocation Types".
REL_BASED_ABSOLUTE = 0
REL_BASED_HIGHLOW = 3
REL_BASED_DIR64 = 10
BASE_RELOC_NAMES = {REL_BASED_HIGHLOW: "HIGHLOW", REL_BASED_DIR64: "DIR64"}
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
    # "Optional Header Standard Fields (Image Only)": Magic 0x20b = PE32+, 0x10b = PE32.
    (magic,) = struct.unpack_from("<H", data, opt)
    assert magic in (0x20B, 0x10B), f"unknown optional header magic {magic:#x}"
    plus = magic == 0x20B
    assert machine == (MACHINE_AMD64 if plus else MACHINE_I386), "magic does not fit the machine"
    # "Optional Header Windows-Specific Fields (Image Only)": ImageBase is a u64 at +24
    # in PE32+, a u32 at +28 in PE32; SizeOfImage/SizeOfHeaders at +56 in both;
    # NumberOfRvaAndSizes at +108 (PE32+) / +92 (PE32).
    (image_base,) = struct.unpack_from("<Q", data, opt + 24) if plus else struct.unpack_from(
        "<I", data, opt + 28)
    (size_of_image, size_of_headers) = struct.unpack_from("<II", data, opt + 56)
    (ndirs,) = struct.unpack_from("<I", data, opt + (108 if plus else 92))
    # "Optional Header Data Directories (Image Only)": 8 bytes each from +112 (PE32+) / +96.
    dd = opt + (112 if plus else 96)
    dirs = [struct.unpack_from("<II", data, dd + 8 * i) for i in range(ndirs)]
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
    # "The .reloc Section (Image Only)": blocks of {PageRVA u32, BlockSize u32} followed
    # by u16 entries (type in the top 4 bits, offset in the page in the low 12).
    relocs = []
    if len(dirs) > 5 and dirs[5][0]:
        rel_rva, rel_size = dirs[5]
        pos, end = file_off(rel_rva), file_off(rel_rva) + rel_size
        while pos + 8 <= end:
            page, block = struct.unpack_from("<II", data, pos)
            assert block >= 8, "bad base relocation block"
            for j in range((block - 8) // 2):
                (ent,) = struct.unpack_from("<H", data, pos + 8 + 2 * j)
                typ, off = ent >> 12, ent & 0xFFF
                if typ == REL_BASED_ABSOLUTE:
                    continue            # padding
                assert typ in BASE_RELOC_NAMES, f"unexpected base relocation type {typ}"
                relocs.append({"rva": page + off, "type": BASE_RELOC_NAMES[typ]})
            pos += block
    return {"machine": machine, "timestamp": timestamp, "characteristics": chars,
            "image_base": image_base, "size_of_image": size_of_image,
            "size_of_headers": size_of_headers, "sections": sections,
            "export_directory": {"rva": exp_rva, "size": exp_size, "dll_name": dll_name,
                                 "ordinal_base": ordinal_base},
            "exports": sorted(exports, key=lambda x: x["rva"]), "codeview": codeview,
            "base_relocation_directory": {"rva": dirs[5][0], "size": dirs[5][1]}
            if len(dirs) > 5 else {"rva": 0, "size": 0},
            "base_relocations": relocs, "file_off": file_off}


# --------------------------------------------------------------------- object file
def _obj_sections(data: bytes) -> tuple[int, int, int, int, list[tuple]]:
    """(machine, symbol table offset, symbol count, string table offset, sections) of a
    COFF object; each section is (raw_size, raw_ptr, rel_ptr, nrel, name, characteristics)."""
    # "COFF File Header (Object and Image)".
    machine, nsec, _ts, symptr, nsym, opt_size, _chars = struct.unpack_from("<HHIIIHH", data, 0)
    assert machine in CALL_REL_BY_MACHINE and opt_size == 0
    strtab = symptr + 18 * nsym
    # "Section Table (Section Headers)": a name "/n" is at offset n of the string table.
    secs = []
    for i in range(nsec):
        at = 20 + 40 * i
        raw_name = data[at:at + 8].rstrip(b"\x00").decode("ascii")
        name = _cstr(data, strtab + int(raw_name[1:])) if raw_name.startswith("/") else raw_name
        (raw_size, raw_ptr, rel_ptr, _ln_ptr, nrel, _nln, chars) = struct.unpack_from(
            "<IIIIHHI", data, at + 16)
        secs.append((raw_size, raw_ptr, rel_ptr, nrel, name, chars))
    return machine, symptr, nsym, strtab, secs


def _obj_symbols(data: bytes, symptr: int, nsym: int, strtab: int) -> dict[int, tuple]:
    """Symbol index -> (name, value, section number, type, storage class)."""
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
    return syms


def parse_obj_data(data: bytes) -> dict[str, dict]:
    """Data symbol name -> {size, storage, initialized, obj_section} from a COFF object
    compiled with -fdata-sections: each global sits alone in its own section, so the
    section's SizeOfRawData is the global's size (for an uninitialised-data section
    SizeOfRawData is its size too, with no file bytes)."""
    _machine, symptr, nsym, strtab, secs = _obj_sections(data)
    out: dict[str, dict] = {}
    for name, value, secno, typ, sclass in _obj_symbols(data, symptr, nsym, strtab).values():
        if (typ == SYM_TYPE_FUNCTION or secno <= 0 or name.startswith((".", "$", "@"))
                or sclass not in (SYM_CLASS_EXTERNAL, SYM_CLASS_STATIC)):
            continue
        raw_size, _raw_ptr, _rel_ptr, _nrel, sec_name, chars = secs[secno - 1]
        if not sec_name.startswith((".data", ".bss")):
            continue
        assert value == 0, f"{name}: one global per section expected (-fdata-sections)"
        out[name] = {"size": raw_size,
                     "storage": "static" if sclass == SYM_CLASS_STATIC else "global",
                     "initialized": not chars & SCN_CNT_UNINITIALIZED_DATA,
                     "obj_section": sec_name}
    return out


def parse_obj(data: bytes) -> dict[str, dict]:
    """Function name -> {size, storage, call_returns[], calls[]} from a COFF object."""
    machine, symptr, nsym, strtab, secs = _obj_sections(data)
    call_rel = CALL_REL_BY_MACHINE[machine]

    syms = _obj_symbols(data, symptr, nsym, strtab)
    funcs: dict[str, dict] = {}
    for name, value, secno, typ, sclass in syms.values():
        if typ != SYM_TYPE_FUNCTION or secno <= 0 or sclass not in (SYM_CLASS_EXTERNAL, SYM_CLASS_STATIC):
            continue
        raw_size, raw_ptr, rel_ptr, nrel, _name, _chars = secs[secno - 1]
        assert value == 0, f"{name}: one function per section expected (-ffunction-sections)"
        code = data[raw_ptr:raw_ptr + raw_size]
        returns, calls = [], []
        # "COFF Relocations (Object Only)": 10-byte records.
        for r in range(nrel):
            va, symidx, rtype = struct.unpack_from("<IIH", data, rel_ptr + 10 * r)
            if rtype == call_rel and va >= 1 and code[va - 1] == CALL_REL32:
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
