"""+ust allocation stacks, symbolization and `!heap -p -a` on builder-made dumps.

Every expected value comes from the builder's JSON (tests/fixtures/stacks_*.json), which lists
each traced block with its frames and the texts the symbolization conventions give (written from
the builder's own export tables and, for tests/pdb/tiny.pdb, from tiny.json's linker-map facts),
never from the reader's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pytest
from conftest import ROOT, fixture

import ntheap
from ntheap.cli import main

PDB_DIR = ROOT / "tests" / "pdb"
WITH_UST = [
    "stacks_win7_x64", "stacks_win7_x86", "stacks_win10_x64", "stacks_win10_x86",
    "stacks_trace_not_captured", "stacks_bad_exports", "stacks_pdb_x64", "stacks_pdb_mismatch_x64",
]
WITH_SEED = ["stacks_win7_x64", "stacks_win7_x86", "stacks_win10_x64", "stacks_win10_x86"]


@pytest.fixture(autouse=True)
def _no_ambient_symbol_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's _NT_SYMBOL_PATH must not change what these tests see."""
    monkeypatch.delenv("_NT_SYMBOL_PATH", raising=False)


def open_dump(name: str, symbol_path: Optional[str] = "") -> Tuple[ntheap.Dump, Dict[str, Any]]:
    path, exp = fixture(name)
    return ntheap.Dump(path, symbol_path=symbol_path), exp


def row_of(blocks: ntheap.Table, address: int) -> int:
    (rows,) = np.nonzero(blocks["address"] == address)
    assert len(rows) == 1, f"block {address:#x}"
    return int(rows[0])


def texts_without_pdb(b: Dict[str, Any]) -> List[str]:
    return list(b.get("expected_without_pdb", b["frame_texts"]))


def seed_of(exp: Dict[str, Any]) -> Dict[str, Any]:
    """The seed record: the builder's own, else assembled from its 16 MiB virtual block (UserSize
    0x1000040) and that block's entry in stack_blocks."""
    if exp.get("seed"):
        return dict(exp["seed"])
    (v,) = [v for h in exp["heaps"] for v in h["virtual_blocks"] if v["user_size"] == 0x1000040]
    (b,) = [b for b in exp["stack_blocks"] if b["address"] == v["header_address"]]
    return {
        "busy_block": v["header_address"], "vae_address": v["address"], "user_address": v["user_address"],
        "user_size": v["user_size"], "stack_trace_entry": v["stack_trace_entry"], "frames": b["frames"],
        "frame_texts": b["frame_texts"], "jit_or_unknown": b["jit_or_unknown"],
    }


@pytest.mark.parametrize("name", WITH_UST)
def test_every_traced_block_has_its_stack(name: str) -> None:
    dump, exp = open_dump(name)
    blocks, stacks = dump.blocks(), dump.stacks()
    assert blocks["stack_id"].dtype == np.int32
    assert int((blocks["stack_trace_entry"] != 0).sum()) == len(exp["stack_blocks"])
    ours_of: Dict[int, int] = {}  # the builder's stack id -> ours (a bijection)
    for b in exp["stack_blocks"]:
        i = row_of(blocks, b["address"])
        assert int(blocks["stack_trace_entry"][i]) == b["stack_trace_entry"]
        sid = int(blocks["stack_id"][i])
        if not b["trace_captured"]:
            assert sid == -1
            continue
        assert stacks.text(sid) == texts_without_pdb(b)
        assert stacks.addresses(sid).tolist() == b["frames"]
        assert ours_of.setdefault(b["stack_id"], sid) == sid
    assert len(set(ours_of.values())) == len(ours_of) == len(exp["stacks"]) == len(stacks)
    # Per stack: its key, how many blocks and bytes it holds.
    key_of = {ours_of[s["stack_id"]]: s for s in exp["stacks"]}
    keys = stacks.keys()
    assert keys.dtype == object and len(keys) == len(stacks)
    for sid, s in key_of.items():
        mask = blocks["stack_id"] == sid
        assert keys[sid] == s["key"]
        assert (int(mask.sum()), int(blocks["user_size"][mask].sum())) == (s["block_count"], s["user_bytes"])
        assert int(stacks.trace_entry[sid]) in s["trace_entries"]
        assert int(stacks.depth[sid]) == len(s["frames"])
    for address in exp["blocks_without_stack"]:
        i = row_of(blocks, address)
        assert (int(blocks["stack_id"][i]), int(blocks["stack_trace_entry"][i])) == (-1, 0)
    # Blocks without a trace pointer have no stack.
    assert not (blocks["stack_id"][blocks["stack_trace_entry"] == 0] != -1).any()
    # Heap.blocks() carries the same ids as Dump.blocks().
    for h in dump.heaps:
        mine = h.blocks()
        assert mine["stack_id"].tolist() == blocks["stack_id"][blocks["heap"] == h.address].tolist()


@pytest.mark.parametrize("name", ["heap_ust_win7_x64", "heap_ust_win10_x86"])
def test_stacks_are_the_trace_database_entries(name: str) -> None:
    """Every block's frames are those of the entry it points at, as the builder wrote them
    (x86: 4-byte frames, x64: 8-byte)."""
    dump, exp = open_dump(name)
    db = {e["address"]: e["frames"] for e in exp["stack_trace_db"]["entries"]}
    blocks, stacks = dump.blocks(), dump.stacks()
    traced = np.nonzero(blocks["stack_trace_entry"])[0]
    assert len(traced) > 0
    for i in traced:
        sid = int(blocks["stack_id"][i])
        assert stacks.addresses(sid).tolist() == db[int(blocks["stack_trace_entry"][i])]
    assert len(stacks) == len({tuple(f) for f in db.values()}) and stacks.entries_read == len(db)


@pytest.mark.parametrize("name", WITH_SEED)
def test_one_frame_list_in_two_trace_entries_is_one_stack(name: str) -> None:
    dump, exp = open_dump(name)
    blocks = dump.blocks()
    for k in exp["stacks_with_several_entries"]:
        s = next(s for s in exp["stacks"] if s["stack_id"] == k)
        assert len(s["trace_entries"]) >= 2
        ids = {int(blocks["stack_id"][i]) for i in np.nonzero(np.isin(blocks["stack_trace_entry"], s["trace_entries"]))[0]}
        assert len(ids) == 1 and ids != {-1}
    # One trace entry shared by several blocks: one id for all of them.
    for te in exp["shared_trace_entries"]:
        ids = set(blocks["stack_id"][blocks["stack_trace_entry"] == te].tolist())
        assert len(ids) == 1


@pytest.mark.parametrize("name", WITH_SEED)
def test_seed_stack_on_the_16mb_virtual_block(name: str) -> None:
    dump, exp = open_dump(name)
    seed = seed_of(exp)
    (v,) = [v for h in dump.heaps for v in h.virtual_blocks if v.user_size == seed["user_size"]]
    assert v.user_size == 0x1000040 and v.stack_trace_entry == seed["stack_trace_entry"]
    assert [f.text for f in v.stack] == seed["frame_texts"]
    assert [f.jit_or_unknown for f in v.stack] == seed["jit_or_unknown"]
    assert [f.address for f in v.stack] == seed["frames"]
    assert v.stack_id == int(dump.blocks()["stack_id"][row_of(dump.blocks(), seed["busy_block"])])
    assert dump.clr_module == exp["symbols"]["clr_module"]["name"]
    inner = v.stack[0]
    assert (inner.module, inner.symbol, inner.offset, inner.source) == ("halcon", "HXmalloc", 0x8B, "export")
    jit = v.stack[-1]
    assert (jit.module, jit.symbol, jit.offset, jit.source, jit.text) == (None, None, 0, "none", seed["frame_texts"][-1])


@pytest.mark.parametrize("name", WITH_SEED)
def test_allocation_at_any_address_of_the_seed_block(name: str) -> None:
    dump, exp = open_dump(name)
    seed = seed_of(exp)
    (ev,) = [v for h in exp["heaps"] for v in h["virtual_blocks"] if v["address"] == seed["vae_address"]]
    width = 8 if exp["pointer_size"] == 4 else 16
    for probe in [seed["vae_address"], seed["busy_block"], seed["user_address"], seed["user_address"] + 0x123456,
                  seed["vae_address"] + ev["commit_size"] - 1]:
        a = dump.allocation_at(probe)
        assert a is not None, f"{probe:#x}"
        assert (a.address, a.user_address, a.user_size, a.size) == (seed["busy_block"], seed["user_address"], 0x1000040, ev["commit_size"])
        assert (a.busy, a.kind, a.stack_trace_entry, a.extent) == (True, "virtual", seed["stack_trace_entry"], (seed["vae_address"], seed["vae_address"] + ev["commit_size"]))
        assert [f.text for f in a.stack] == seed["frame_texts"]
        lines = repr(a).splitlines()
        assert lines[0] == f"    address {probe:0{width}x} found in"
        assert lines[1].strip() == f"_HEAP @ {next(h['address'] for h in exp['heaps'] if ev in h['virtual_blocks']):x}"
        assert "HEAP_ENTRY Size Prev Flags" in lines[2] and "UserPtr UserSize - state" in lines[2]
        assert lines[3].split()[0] == f"{seed['busy_block']:0{width}x}"
        assert f"{seed['user_address']:0{width}x}" in lines[3] and lines[3].endswith("1000040 - (busy VirtualAlloc)")
        assert lines[4:4 + len(seed["frames"])] == [f"        {f:x} {t}" for f, t in zip(seed["frames"], seed["frame_texts"])]
        assert exp["symbols"]["clr_module"]["name"] in lines[-1] and "!ip2md" in lines[-1]
    after = dump.allocation_at(seed["vae_address"] + ev["commit_size"])
    assert after is None or after.address != seed["busy_block"]


def test_allocation_at_a_backend_block_and_nowhere() -> None:
    dump, exp = open_dump("stacks_win7_x64")
    b = next(b for b in exp["stack_blocks"] if b["kind"] == "backend" and b["trace_captured"])
    for probe in [b["address"], b["user_address"], b["user_address"] + b["user_size"] - 1]:
        a = dump.allocation_at(probe)
        assert a is not None
        assert (a.heap, a.address, a.user_address, a.user_size, a.kind, a.busy) == (b["heap"], b["address"], b["user_address"], b["user_size"], "backend", True)
        assert [f.text for f in a.stack] == b["frame_texts"]
        assert repr(a).splitlines()[3].endswith(f"{b['user_size']:05x} - (busy)")
    assert dump.allocation_at(0x10) is None
    assert dump.allocation_at(2**64 - 1) is None


def test_untraceable_blocks_are_reported_not_fatal() -> None:
    dump, exp = open_dump("stacks_trace_not_captured")
    blocks = dump.blocks()
    missing = [b for b in exp["stack_blocks"] if not b["trace_captured"]]
    assert sorted(b["address"] for b in missing) == sorted(exp["untraceable_blocks"])
    for b in missing:
        assert int(blocks["stack_id"][row_of(blocks, b["address"])]) == -1
    problems = dump.stacks().problems()
    df = problems.to_pandas()
    entries = {b["stack_trace_entry"] for b in missing}
    assert sorted(df["trace_entry"].tolist()) == sorted(entries)
    assert set(df["kind_name"]) == {"not_captured"} and (df["stack_id"] == -1).all()
    assert int(df["block_count"].sum()) == len(missing)
    for r in df.itertuples():
        owners = [b["address"] for b in missing if b["stack_trace_entry"] == r.trace_entry]
        assert r.block in owners and r.block_count == len(owners)
        assert f"{r.trace_entry:#x}" in r.detail
    a = dump.allocation_at(missing[0]["user_address"])
    assert a is not None and a.stack == [] and a.stack_id == -1 and a.stack_trace_entry == missing[0]["stack_trace_entry"]
    assert "could not be read" in repr(a)
    # The readable traces next to them still resolve.
    ok = [b for b in exp["stack_blocks"] if b["trace_captured"]]
    assert ok and all(dump.stacks().text(int(blocks["stack_id"][row_of(blocks, b["address"])])) == b["frame_texts"] for b in ok)


def test_no_ust_no_stacks() -> None:
    dump, exp = open_dump("stacks_no_ust")
    assert exp["peb"]["nt_global_flag"] & 0x1000 == 0
    blocks, stacks = dump.blocks(), dump.stacks()
    assert len(blocks) > 0 and (blocks["stack_id"] == -1).all() and not blocks["stack_trace_entry"].any()
    assert len(stacks) == 0 and len(stacks.keys()) == 0 and len(stacks.problems()) == 0
    assert len(stacks.frames()) == 0 and len(stacks.to_pandas()) == 0
    busy = int(np.nonzero(blocks["busy"] & (blocks["kind"] == 0))[0][0])
    a = dump.allocation_at(int(blocks["user_address"][busy]))
    assert a is not None and a.stack == [] and a.stack_id == -1
    assert all(v.stack == [] and v.stack_id == -1 for h in dump.heaps for v in h.virtual_blocks)


def test_corrupt_export_directories_fall_back_to_module_offset() -> None:
    dump, exp = open_dump("stacks_bad_exports")
    corrupt = {m["stem"] for m in exp["symbols"]["modules"] if m["exports_status"] == "corrupt"}
    good = {m["stem"] for m in exp["symbols"]["modules"] if m["exports_status"] == "ok"}
    assert len(corrupt) == 3
    frames = dump.stacks().frames().to_pandas()
    in_corrupt = frames[frames.module.isin(corrupt)]
    assert set(in_corrupt.module) == corrupt
    assert (in_corrupt.source == "module").all() and in_corrupt.symbol.isna().all()
    assert all(t == f"{m}+{o:#x}" for t, m, o in zip(in_corrupt.text, in_corrupt.module, in_corrupt.offset))
    named = frames[frames.module.isin(good) & frames.text.str.contains("!")]
    assert len(named) and (named.source == "export").all()
    status = {s[0]: s for s in dump.symbol_status()}
    for m in corrupt:
        assert status[m][2] == "module" and any(n.startswith("exports:") for n in status[m][4])


def pdb_texts(dump: ntheap.Dump, exp: Dict[str, Any]) -> List[Tuple[List[str], List[str]]]:
    blocks, stacks = dump.blocks(), dump.stacks()
    return [(stacks.text(int(blocks["stack_id"][row_of(blocks, b["address"])])), b["expected_with_pdb"]) for b in exp["stack_blocks"]]


def test_matching_pdb_beats_exports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "stacks_pdb_x64"
    without, exp = open_dump(name, "")
    assert all(got == texts_without_pdb(b) for got, b in zip([t for t, _ in pdb_texts(without, exp)], exp["stack_blocks"]))
    assert any(b["expected_with_pdb"] != b["expected_without_pdb"] for b in exp["stack_blocks"])
    store = tmp_path / "store"
    cv = next(m for m in exp["modules"] if m["name"] == "tiny.dll")
    leaf = store / "tiny.pdb" / cv["debug_id"]
    leaf.mkdir(parents=True)
    (leaf / "tiny.pdb").write_bytes((PDB_DIR / "tiny.pdb").read_bytes())
    for symbol_path in [str(PDB_DIR), f"srv*{store}*https://msdl.microsoft.com/download/symbols"]:
        dump, _ = open_dump(name, symbol_path)
        assert dump.symbol_path == symbol_path
        for got, want in pdb_texts(dump, exp):
            assert got == want
        frames = dump.stacks().frames().to_pandas()
        tiny = frames[frames.module == "tiny"]
        assert len(tiny) and (tiny.source == "pdb").all()
    # The default symbol path is _NT_SYMBOL_PATH.
    monkeypatch.setenv("_NT_SYMBOL_PATH", str(PDB_DIR))
    dump = ntheap.Dump(fixture(name)[0])
    assert dump.symbol_path == str(PDB_DIR)
    assert all(got == want for got, want in pdb_texts(dump, exp))
    pdb = next(s for s in dump.symbol_status() if s[0] == "tiny")
    assert pdb[2] == "pdb" and pdb[3] is not None and Path(pdb[3]).name == "tiny.pdb"


def test_pdb_with_another_guid_or_age_is_ignored() -> None:
    dump, exp = open_dump("stacks_pdb_mismatch_x64", str(PDB_DIR))
    for got, want in pdb_texts(dump, exp):
        assert got == want
    assert all(b["expected_with_pdb"] == b["expected_without_pdb"] for b in exp["stack_blocks"])
    status = [s for s in dump.symbol_status() if s[0] in ("tiny", "tinyage")]
    assert len(status) == 2
    for _, _, source, pdb, notes in status:
        assert source == "export" and pdb is None
        assert any("does not match" in n for n in notes), notes


def test_frames_table_is_long_form() -> None:
    dump, exp = open_dump("stacks_win7_x86")
    stacks = dump.stacks()
    t = stacks.frames()
    assert t.columns[:8] == ["stack_id", "depth", "address", "module", "symbol", "offset", "text", "jit_or_unknown"]
    assert len(t) == int(stacks.depth.sum()) == len(stacks.frame_address)
    assert t["stack_id"].dtype == np.int32 and t["address"].dtype == np.uint64 and t["depth"].dtype == np.uint16
    assert stacks.offsets.dtype == np.uint32 and len(stacks.offsets) == len(stacks) + 1
    for sid in range(len(stacks)):
        mine = t["stack_id"] == sid
        assert t["depth"][mine].tolist() == list(range(int(stacks.depth[sid])))
        assert t["text"][mine].tolist() == stacks.text(sid)
        assert stacks.keys()[sid] == "\n".join(stacks.text(sid))
    assert bool((t["jit_or_unknown"] == (t["source"] == "none")).all())
    df = stacks.to_pandas()
    assert list(df.columns) == ["stack_id", "depth", "trace_entry", "top", "key"]
    with pytest.raises(IndexError):
        stacks.text(len(stacks))
    assert "stacks" in repr(stacks)


def test_symbolize_and_frame_objects() -> None:
    dump, exp = open_dump("stacks_win7_x64")
    seed = seed_of(exp)
    f = dump.symbolize(seed["frames"][0])
    assert isinstance(f, ntheap.Frame)
    assert (f.address, f.text, str(f)) == (seed["frames"][0], seed["frame_texts"][0], seed["frame_texts"][0])
    assert repr(f) == f'Frame({seed["frames"][0]:#x}, "{seed["frame_texts"][0]}", source="export")'
    assert f == dump.symbolize(seed["frames"][0]) and hash(f) == hash(dump.symbolize(seed["frames"][0]))
    with pytest.raises(AttributeError):
        f.text = "x"  # type: ignore[misc]


def test_cli_heap_p_a(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("stacks_win7_x64")
    seed = seed_of(exp)
    assert main(["heap", "-p", "-a", f"{seed['user_address']:x}", "-y", "", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].strip() == f"address {seed['user_address']:016x} found in"
    for f, t in zip(seed["frames"], seed["frame_texts"]):
        assert f"        {f:x} {t}\n" in out
    assert "!ip2md" in out
    assert main(["heap", "-p", "-a", "10", str(path)]) == 1
    assert "not found" in capsys.readouterr().out
    assert main(["heap", "-p", str(path)]) == 2
    assert main(["heap", "-s", "-a", "10", str(path)]) == 2


def exports_by_hand(dump: ntheap.Dump, base: int) -> Dict[str, int]:
    """name -> RVA of the named, non-forwarded exports, parsed here with struct (PE/COFF
    specification: e_lfanew at 0x3c; optional header magic 0x10b/0x20b; DataDirectory[0] at
    +96/+112; IMAGE_EXPORT_DIRECTORY NumberOfNames +24, AddressOfFunctions +28, AddressOfNames
    +32, AddressOfNameOrdinals +36)."""
    import struct

    def u32(rva: int) -> int:
        return int(struct.unpack("<I", dump.read(base + rva, 4))[0])

    nt = u32(0x3C)
    opt = nt + 24
    magic = int(struct.unpack("<H", dump.read(base + opt, 2))[0])
    d_rva, d_size = u32(opt + (96 if magic == 0x10B else 112)), u32(opt + (100 if magic == 0x10B else 116))
    n, funcs, names, ords = u32(d_rva + 24), u32(d_rva + 28), u32(d_rva + 32), u32(d_rva + 36)
    out = {}
    for i in range(n):
        ordinal = int(struct.unpack("<H", dump.read(base + ords + 2 * i, 2))[0])
        f = u32(funcs + 4 * ordinal)
        if d_rva <= f < d_rva + d_size:
            continue
        raw = dump.read(base + u32(names + 4 * i), 256)
        out[raw[: raw.index(b"\0")].decode()] = f
    return out


def test_real_wow64_dump_exports_name_frames() -> None:
    from conftest import real_dump

    dump = ntheap.Dump(real_dump("lldb-fizzbuzz_wow64.dmp"), symbol_path="")
    ntdlls = [m for m in dump.modules if m.name.lower() == "ntdll.dll"]
    assert len(ntdlls) == 2  # the 64-bit and the 32-bit (SysWOW64) ntdll
    for m in ntdlls:
        exports = exports_by_hand(dump, m.base)
        assert len(exports) > 1000 and "RtlAllocateHeap" in exports
        by_rva = sorted((rva, name) for name, rva in exports.items())
        for rva, name in by_rva[:: max(1, len(by_rva) // 50)] + [(exports["RtlAllocateHeap"], "RtlAllocateHeap")]:
            aliases = {n for r, n in by_rva if r == rva}
            f = dump.symbolize(m.base + rva)
            assert (f.module, f.offset, f.source) == ("ntdll", 0, "export") and f.symbol in aliases
            g = dump.symbolize(m.base + rva + 3)
            assert g.symbol is not None and g.text.startswith("ntdll!")
    status = {(s[0], s[1]): s for s in dump.symbol_status()}
    assert all(status[("ntdll", m.base)][2] == "export" for m in ntdlls)
    exe = next(m for m in dump.modules if m.name.lower() == "fizzbuzz.exe")
    assert dump.symbolize(exe.base + 0x1000).text == "fizzbuzz+0x1000"
