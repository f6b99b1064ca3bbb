"""The ntheap command line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import fixture

from ntheap.cli import main


def test_info_prints_the_dump(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("wow64_win7")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
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
