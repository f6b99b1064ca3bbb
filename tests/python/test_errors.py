"""Bad input gets a specific exception rooted at ntheap.DumpError, never a panic."""

from __future__ import annotations

import random
import struct
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
