"""Bad input gets a specific exception rooted at ntheap.DumpError, never a panic."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import fixture

import ntheap


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


def _touch_everything(dump: ntheap.Dump) -> None:
    for getter in [
        lambda: dump.peb,
        lambda: dump.peb32,
        lambda: dump.regions().to_pandas(),
        lambda: dump.modules_df(),
        lambda: dump.threads_df(),
        lambda: dump.read(0x7FFF0000, 64),
        lambda: repr(dump),
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
