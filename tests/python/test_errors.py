"""Bad input gets a specific exception rooted at ntheap.DumpError, never a panic."""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT, fixture

import ntheap
from ntheap.address import address_summary_text
from ntheap.heapviews import heap_detail_text
from ntheap.report import info_text
from ntheap.triageviews import heap_l_text


def test_hierarchy() -> None:
    for cls in [
        ntheap.NotAMinidumpError,
        ntheap.TruncatedDumpError,
        ntheap.CorruptDumpError,
        ntheap.MissingStreamError,
        ntheap.MemoryNotCaptured,
        ntheap.StructureNotFoundError,
        ntheap.UnsupportedDumpError,
        ntheap.InternalError,
    ]:
        assert issubclass(cls, ntheap.DumpError)
    assert issubclass(ntheap.DumpError, Exception)


def test_empty_file() -> None:
    path, _ = fixture("empty")
    with pytest.raises(ntheap.NotAMinidumpError, match=r"empty \(0 bytes\)"):
        ntheap.Dump(path)


def test_garbage_file() -> None:
    path, _ = fixture("garbage")
    head = path.read_bytes()[:4].hex(" ")
    with pytest.raises(ntheap.NotAMinidumpError, match=f"starts with bytes {head}"):
        ntheap.Dump(path)


def test_truncated_inside_a_stream() -> None:
    path, exp = fixture("truncated")
    with pytest.raises(ntheap.TruncatedDumpError) as info:
        ntheap.Dump(path)
    e = info.value
    assert e.file_size == exp["size"]
    cut = exp["cut_stream_rva"]
    assert e.offset == cut and e.end == cut + exp["cut_stream_size"]
    assert exp["cut_stream"] in str(e)


def test_directory_past_end_of_file() -> None:
    path, exp = fixture("bad_directory")
    with pytest.raises(ntheap.TruncatedDumpError, match="stream directory") as info:
        ntheap.Dump(path)
    assert info.value.file_size == exp["size"] == path.stat().st_size


def test_header_only_partial(tmp_path: Path) -> None:
    src, _ = fixture("x64_win10")
    cut = tmp_path / "cut.dmp"
    cut.write_bytes(src.read_bytes()[:20])
    with pytest.raises(ntheap.TruncatedDumpError, match="MINIDUMP_HEADER"):
        ntheap.Dump(cut)


def test_truncated_memory_is_clipped_with_a_warning(tmp_path: Path) -> None:
    """A full dump cut inside its memory data still opens; the lost bytes are reported."""
    src, exp = fixture("x64_win10")
    data = src.read_bytes()
    last = max(exp["memory64_list"], key=lambda r: r["address"])
    cut = tmp_path / "cut.dmp"
    cut.write_bytes(data[: len(data) - last["size"] // 2])
    dump = ntheap.Dump(cut)
    assert len(dump.warnings) == 1 and "runs past the end of the file" in dump.warnings[0]
    assert dump.is_captured(last["address"], last["size"] // 2)
    with pytest.raises(ntheap.MemoryNotCaptured) as info:
        dump.read(last["address"], last["size"])
    assert info.value.first_missing == last["address"] + last["size"] // 2


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ntheap.Dump(tmp_path / "nope.dmp")
    with pytest.raises(OSError):
        ntheap.Dump(tmp_path)


def test_peb_without_threads() -> None:
    path, _ = fixture("no_threads")
    with pytest.raises(ntheap.StructureNotFoundError, match="no threads"):
        ntheap.Dump(path).peb


def _allocations(dump: ntheap.Dump) -> None:
    """``!heap -p -a`` on a sample of block headers and user pointers, and at the edges."""
    blocks = dump.blocks()
    probes = [int(a) for a in blocks["address"][::7]] + [int(a) for a in blocks["user_address"][::7]]
    for address in probes[:100] + [0, (1 << 64) - 1]:
        found = dump.allocation_at(address)
        if found is not None:
            assert found.text


def _heaps(dump: ntheap.Dump) -> None:
    for h in dump.heaps:
        repr(h)
        h.segments, h.virtual_blocks, h.external_fragmentation
        h.blocks().to_pandas()
        heap_detail_text(dump, h.address)


def _stacks(dump: ntheap.Dump) -> None:
    stacks = dump.stacks()
    stacks.frames().to_pandas()
    stacks.problems().to_pandas()
    stacks.to_pandas()
    for i in range(min(len(stacks), 3)):
        stacks.text(i)


def _touch_everything(dump: ntheap.Dump) -> None:
    """Every entry point a user reaches from a Dump; only DumpError may come out."""
    for getter in [
        lambda: dump.peb,
        lambda: dump.peb32,
        lambda: dump.regions().to_pandas(),
        lambda: dump.modules_df(),
        lambda: dump.threads_df(),
        lambda: dump.read(0x7FFF0000, 64),
        lambda: repr(dump),
        lambda: info_text(dump),
        lambda: _heaps(dump),
        lambda: dump.blocks().to_pandas(),
        lambda: dump.heap_summary(),
        lambda: dump.heap_summary_text(),
        lambda: dump.corruption().to_pandas(),
        lambda: _stacks(dump),
        lambda: _allocations(dump),
        lambda: address_summary_text(dump),
        lambda: [dump.symbolize(m.base + 0x1000) for m in dump.modules],
        lambda: dump.types().to_pandas(),
        lambda: dump.unreferenced().to_pandas(),
        lambda: heap_l_text(dump),
    ]:
        try:
            getter()
        except ntheap.DumpError:
            pass


def test_mutated_dumps_never_panic(tmp_path: Path) -> None:
    """Flipped bytes and truncations: only DumpError (or OSError) may come out."""
    rng = random.Random(1234)
    for name in ["x64_win10", "wow64_win7", "x86_win7"]:
        src, _ = fixture(name)
        original = src.read_bytes()
        for i in range(120):
            data = bytearray(original)
            if i % 3 == 0:
                data = data[: rng.randrange(len(data))]
            else:
                # Hit the header and directory hard, the rest lightly.
                for _ in range(rng.randrange(1, 24)):
                    pos = rng.randrange(min(len(data), 512)) if rng.random() < 0.5 else rng.randrange(len(data))
                    data[pos] = rng.randrange(256)
            path = tmp_path / f"m{i}.dmp"
            path.write_bytes(bytes(data))
            try:
                dump = ntheap.Dump(path)
            except ntheap.DumpError:
                continue
            except BaseException as e:  # a PanicException derives from BaseException
                pytest.fail(f"{name} mutation {i}: {type(e).__name__}: {e}")
            _touch_everything(dump)


def _stream(data: bytes, kind: int) -> int:
    """File offset of the first stream of ``kind`` (minidumpapiset.h directory layout)."""
    count, directory = struct.unpack_from("<II", data, 8)
    for i in range(count):
        t, _, rva = struct.unpack_from("<III", data, directory + 12 * i)
        if t == kind:
            return int(rva)
    raise AssertionError(f"no stream {kind}")


_INTERESTING = [0, 1, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1, (1 << 64) - 0x1000, (1 << 64) - 1]


def _sparse_mutation(original: bytes, rng: random.Random) -> bytes:
    """A few bytes, words or copied runs changed, so the heaps and stacks mostly survive and
    the walk gets deep before it meets the damage; now and then a truncation."""
    data = bytearray(original)
    for _ in range(rng.randrange(1, 9)):
        pos = rng.randrange(min(len(data), 256)) if rng.random() < 0.15 else rng.randrange(len(data))
        op = rng.randrange(4)
        if op == 0:
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:
            width = min(rng.choice([2, 4, 8]), len(data) - pos)
            data[pos:pos + width] = rng.choice(_INTERESTING).to_bytes(8, "little")[:width]
        elif op == 2:
            n = min(rng.randrange(1, 32), len(data) - pos)
            src = rng.randrange(len(data) - n + 1)
            data[pos:pos + n] = data[src:src + n]
        else:
            data[pos] = rng.randrange(256)
    if rng.random() < 0.15:
        del data[rng.randrange(len(data)):]
    return bytes(data)


def test_every_dump_mutated_never_panics_nor_hangs(tmp_path: Path) -> None:
    """Every builder fixture and sample, sparsely mutated: heaps, blocks, stacks, !heap -p -a and
    the summaries raise nothing but DumpError, and no dump takes more than a few seconds."""
    paths = sorted(FIXTURES.glob("*.dmp")) + sorted((ROOT / "samples").glob("*.dmp"))
    assert len(paths) >= 40
    rng = random.Random(20240611)
    slowest = (0.0, "")
    for src in paths:
        original = src.read_bytes()
        for i in range(4 if original else 1):
            data = original if i == 0 or not original else _sparse_mutation(original, rng)
            path = tmp_path / f"{src.stem}-{i}.dmp"
            path.write_bytes(data)
            started = time.perf_counter()
            try:
                dump = ntheap.Dump(path, symbol_path="")
                _touch_everything(dump)
            except ntheap.DumpError:
                pass
            except BaseException as e:  # a PanicException derives from BaseException
                pytest.fail(f"{src.name} variant {i}: {type(e).__name__}: {e}")
            slowest = max(slowest, (time.perf_counter() - started, f"{src.name} variant {i}"))
    assert slowest[0] < 5.0, f"{slowest[1]} took {slowest[0]:.1f} s"


def test_addresses_at_the_top_of_the_address_space(tmp_path: Path) -> None:
    """TEB and stack addresses are dump data: near 2**64 they must not wrap or overflow."""
    src, _ = fixture("heap_wow64_win7")
    data = bytearray(src.read_bytes())
    threads = _stream(data, 3)  # MINIDUMP_THREAD_LIST: count, then 48-byte MINIDUMP_THREADs
    (count,) = struct.unpack_from("<I", data, threads)
    last = threads + 4 + 48 * (count - 1)
    struct.pack_into("<Q", data, last + 16, (1 << 64) - 0x1000)  # Teb
    struct.pack_into("<Q", data, last + 24, (1 << 64) - 0x10)  # Stack.StartOfMemoryRange
    path = tmp_path / "top.dmp"
    path.write_bytes(bytes(data))
    dump = ntheap.Dump(path)
    assert dump.is_wow64 and dump.peb32 is not None
    t = dump.threads[-1]
    assert t.stack_start == (1 << 64) - 0x10 and t.stack_size > 0x10
    assert t.stack_end == (1 << 64) - 1  # saturated, not wrapped
    # The WOW64 32-bit TEB guess (TEB + 0x2000) lies past 2**64: in no region, no OverflowError.
    text = address_summary_text(dump)
    assert "TEB" in text and "Heap" in text


# Entry points and what makes Python call them. The panics are injected by the core's test hook
# (NTHEAP_INJECT_PANIC, read once per process), so each runs in a fresh interpreter.
_ENTRY_POINTS = {
    "Dump.peb": "dump.peb",
    "Dump.peb32": "dump.peb32",
    "Dump._region_columns": "dump.regions()",
    "Dump.read": "dump.read(0, 1)",
    "Dump.read_u8": "dump.read_u8(0)",
    "Dump.read_u16": "dump.read_u16(0)",
    "Dump.read_u32": "dump.read_u32(0)",
    "Dump.read_u64": "dump.read_u64(0)",
    "Dump.read_pointer": "dump.read_pointer(0)",
    "Dump.is_captured": "dump.is_captured(0)",
    "Dump.modules": "dump.modules",
    "Dump.arch": "dump.arch",
    "Dump.__repr__": "repr(dump)",
    "Dump.heaps": "dump.heaps",
    "Dump._block_source": "dump.blocks()",
    "BlockSource.columns": "dump.blocks()",
    "Dump._stack_columns": "dump.stacks()",
    "Dump._corruption_columns": "dump.corruption()",
    "Dump.allocation_at": "dump.allocation_at(0)",
    "Dump.symbolize": "dump.symbolize(0)",
    "Dump.symbol_status": "dump.symbol_status()",
    "Dump.heap_summary_text": "dump.heap_summary_text()",
    "Heap.blocks": "dump.heaps[0].blocks()",
    "Heap.segments": "dump.heaps[0].segments",
    "Heap.virtual_blocks": "dump.heaps[0].virtual_blocks",
    "Heap.__repr__": "repr(dump.heaps[0])",
    "Lfh.subsegments": "[h.lfh for h in dump.heaps if h.lfh][0].subsegments()",
    "Lfh.size_classes": "[h.lfh for h in dump.heaps if h.lfh][0].size_classes()",
    "Module.__repr__": "repr(dump.modules[0])",
    "Peb.__repr__": "repr(dump.peb)",
    "reading the heap headers": "dump.heaps",
    "walking the heaps": "dump.blocks()",
}


def _in_fresh_interpreter(inject: str, body: str) -> dict:
    script = textwrap.dedent(
        """
        import json, ntheap
        out = {}
        def attempt(name, f):
            try:
                f()
                out[name] = None
            except BaseException as e:
                out[name] = [type(e).__name__, isinstance(e, ntheap.DumpError), str(e),
                             getattr(e, "operation", None), getattr(e, "panic_message", None),
                             getattr(e, "path", None)]
        """
    ) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    env = dict(os.environ, NTHEAP_INJECT_PANIC=inject, RUST_BACKTRACE="0")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_panic_in_any_entry_point_is_an_internal_error() -> None:
    """A panic below a Python entry point arrives as ntheap.InternalError: a DumpError whose
    message calls it a bug in ntheap and names the operation and the panic; never
    UnsupportedDumpError ("no known structure layout") nor PanicException."""
    path, _ = fixture("lfh_win10_x64")
    # An entry point whose panic is injected cannot hand out the objects the next ones need, so
    # the Dump methods, the methods of the objects they return, and the walk run apart.
    groups = [
        [op for op in _ENTRY_POINTS if op.startswith("Dump.")],
        [op for op in _ENTRY_POINTS if op.split(".")[0] in {"Heap", "Lfh", "Module", "Peb", "BlockSource"}],
        ["reading the heap headers"],
        ["walking the heaps"],
    ]
    assert sorted(sum(groups, [])) == sorted(_ENTRY_POINTS)
    for group in groups:
        body = f"dump = ntheap.Dump({str(path)!r}, symbol_path='')\n" + "".join(
            f"attempt({op!r}, lambda: {_ENTRY_POINTS[op]})\n" for op in group
        )
        got = _in_fresh_interpreter(",".join(group), body)
        for op in group:
            cls, is_dump_error, message, operation, panic_message, _ = got[op]
            assert (cls, is_dump_error) == ("InternalError", True), (op, got[op])
            assert operation == op and panic_message == "injected by NTHEAP_INJECT_PANIC", (op, got[op])
            assert message.startswith(f"internal error in ntheap while {op}: injected by NTHEAP_INJECT_PANIC")
            assert "this is a bug in ntheap" in message and "layout" not in message


def test_a_panic_while_scanning_one_dump_is_that_dumps_internal_error() -> None:
    """The batch scan catches a panic per dump: the record carries the InternalError itself,
    the other dumps are unaffected, and raising the record raises that exception."""
    good, _ = fixture("heap_win7_x86")
    other, _ = fixture("x64_win10")
    body = f"""
    from ntheap.analysis import rebuild_error
    def reraise(record):
        if record["exception"] is not None:
            raise rebuild_error(record)
    from ntheap.scan import run_scan
    for r in run_scan([{str(good)!r}, {str(other)!r}], progress=False):
        attempt(r["path"], lambda: reraise(r))
    """
    got = _in_fresh_interpreter(f"analysing {good}", body)
    cls, is_dump_error, message, operation, panic_message, where = got[str(good)]
    assert (cls, is_dump_error, operation, where) == ("InternalError", True, f"analysing {good}", str(good))
    assert message.startswith(f"{good}: internal error in ntheap while analysing {good}")
    assert panic_message == "injected by NTHEAP_INJECT_PANIC"
    assert got[str(other)] is None


def test_scan_records_carry_the_exception_itself(tmp_path: Path) -> None:
    """A failed scan record holds the exception that opening the dump raises: same class, same
    attributes (offset, end, file_size), the path in front of its message and in ``path``."""
    from ntheap.analysis import rebuild_error
    from ntheap.scan import run_scan

    src, exp = fixture("truncated")
    garbage, _ = fixture("garbage")
    with pytest.raises(ntheap.TruncatedDumpError) as direct:
        ntheap.Dump(src)
    records = run_scan([str(src), str(garbage), str(tmp_path / "absent.dmp")], progress=False)
    trunc, junk, absent = (r["exception"] for r in records)
    assert type(trunc) is ntheap.TruncatedDumpError
    assert (trunc.offset, trunc.end, trunc.file_size) == (direct.value.offset, direct.value.end, direct.value.file_size)
    assert trunc.file_size == exp["size"] and trunc.path == str(src)
    assert str(trunc) == f"{src}: {direct.value}" and records[0]["error"] == str(direct.value)
    assert type(junk) is ntheap.NotAMinidumpError and records[1]["error_kind"] == "NotAMinidumpError"
    assert isinstance(absent, FileNotFoundError) and absent.path == str(tmp_path / "absent.dmp")
    again = rebuild_error(records[0])
    assert type(again) is ntheap.TruncatedDumpError and again is not trunc
    assert (again.offset, again.end, again.path, str(again)) == (trunc.offset, trunc.end, trunc.path, str(trunc))
