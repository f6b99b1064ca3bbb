"""The ntheap command line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import fixture

from ntheap.cli import main


def test_info_prints_the_dump(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("wow64_win7")
    # The scenario lists its heaps without capturing them: an answer with a gap (exit 1).
    assert main(["info", str(path)]) == 1
    out = capsys.readouterr().out
    assert "heaps' headers are in the dump" in out
    assert f"Windows {exp['os_version']}" in out
    assert "WOW64" in out
    assert f"PID:           {exp['pid']}" in out
    assert "+ust" in out  # the 32-bit PEB of this scenario has NtGlobalFlag 0x1000
    for m in exp["modules"]:
        assert m["name"] in out and f"{m['base']:#x}" in out
    for t in exp["threads"]:
        assert f"{t['teb']:#x}" in out
    assert ", ".join(f"{h:#x}" for h in exp["peb32"]["heaps"]) in out


def test_info_error_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = fixture("garbage")
    assert main(["info", str(path)]) == 2
    assert "NotAMinidumpError" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    out = subprocess.run([sys.executable, "-m", "ntheap.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ntheap ")


def test_heap_s(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_wow64_win7")
    assert main(["heap", "-s", str(path)]) == 0
    out = capsys.readouterr().out
    assert "32-bit heaps (WOW64 PEB)" in out
    for h in exp["heaps"]:
        assert f"{h['address']:016x} {h['flags']:08x} {h['totals']['reserved'] // 1024:>7} {h['totals']['committed'] // 1024:>6}" in out
    for h in exp["heaps32"]:
        assert f"{h['address']:08x} {h['flags']:08x} {h['totals']['reserved'] // 1024:>7} {h['totals']['committed'] // 1024:>6}" in out


def test_heap_h(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_win7_x86")
    h = exp["heaps"][0]
    assert main(["heap", "-h", f"{h['address']:x}", str(path)]) == 0
    out = capsys.readouterr().out
    for s in h["segments"]:
        assert f"Segment at {s['base']:08x} to {s['last_valid_entry']:08x} ({s['committed']:08x} bytes committed)" in out
        for u in s["uncommitted_ranges"]:
            assert f"{u['address']:08x}: {u['size']:08x}" in out
    for v in h["virtual_blocks"]:
        assert f"{v['address']:08x}: user {v['user_address']:08x} size {v['user_size']:#x}" in out
    assert "Granularity:          8 bytes" in out


def test_address_summary(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_win7_x64")
    assert main(["address", "-summary", str(path)]) == 0
    out = capsys.readouterr().out
    assert "--- Usage Summary" in out and "--- State Summary" in out and "--- Type Summary" in out
    heap_line = next(line for line in out.splitlines() if line.startswith("Heap "))
    heap_regions = [
        r for r in exp["regions"]
        if any(r["allocation_base"] in ({h["address"]} | {s["base"] for s in h["segments"]} | {v["address"] for v in h["virtual_blocks"]}) for h in exp["heaps"])
    ]
    size = sum(r["size"] for r in heap_regions)
    assert heap_line.split()[1] == str(len(heap_regions))
    assert f"{size >> 32:x}`{size & 0xFFFFFFFF:08x}" in heap_line


def test_heap_s_walk_fills_list_length(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_win7_x64")
    assert main(["heap", "-s", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'List length "?"' in out
    assert main(["heap", "-s", "--walk", str(path)]) == 0
    out = capsys.readouterr().out
    assert "List length" not in out
    for h in exp["heaps"]:
        row = next(line for line in out.splitlines() if line.startswith(f"{h['address']:016x} "))
        assert row.split()[5:7] == [str(h["free"]["bytes"] // 1024), str(h["free"]["count"])]
