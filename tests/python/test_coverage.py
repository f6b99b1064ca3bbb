"""Honest answers: every view says when its answer is partial or empty, why, how much, and what
to do, with the documented exit statuses (0 full, 1 gaps, 2 no answer). One test per situation
users met; expected values come from the builder's JSON (tests/dumpbuilder/coverage_scenarios.py
and the heap scenarios)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pytest
from conftest import ROOT, fixture

import ntheap
from ntheap.cli import main
from ntheap.coverage import series_warnings

SAMPLES = ROOT / "samples"
ADVICE = "take a full-memory dump (e.g. `procdump -ma`, or WinDbg `.dump /ma`)"


def run(argv: List[str], capsys: pytest.CaptureFixture[str]) -> Tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# 1. A dump without heap memory ------------------------------------------------------------------

def test_crash_minidump_says_the_heaps_are_not_in_the_dump_without_walking() -> None:
    path, exp = fixture("crash_minidump_x64")
    dump = ntheap.Dump(path)
    cov = dump.coverage(walk=False)
    assert not dump.is_walked
    assert list(cov.columns) == ntheap.COVERAGE_COLUMNS
    (row,) = cov.to_pandas().itertuples()
    heaps = exp["coverage"]["listed_heaps"]
    assert (row.scope, row.heap, row.what, row.count) == ("dump", 0, "not_captured:heap_header", len(heaps))
    assert row.bytes == sum(exp["coverage"]["uncaptured_committed"].values())
    assert row.message.startswith(f"0 of {len(heaps)} heaps' headers are in the dump")
    assert ADVICE in row.message and all(f"{h:#x}" in row.message for h in heaps)


@pytest.mark.parametrize("command", [["top"], ["heap", "-s"], ["heap", "-l"], ["report", "--no-plot", "-q"]])
def test_crash_minidump_views_exit_2_with_the_reason(command: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("crash_minidump_x64")
    code, out, _ = run([*command, str(path)], capsys)
    assert code == 2
    assert f"0 of {len(exp['coverage']['listed_heaps'])} heaps' headers are in the dump" in out and ADVICE in out
    assert "corruption records" not in out  # missing memory is not corruption


def test_segment_range_not_captured_is_counted_by_the_survey(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_page_missing")
    dump = ntheap.Dump(path)
    rows = dump.coverage(walk=False).to_pandas()
    assert not dump.is_walked
    (gap,) = rows[rows.what == "not_captured:segment_range"].itertuples()
    (c,) = exp["corruption"]
    assert (gap.heap, gap.count, gap.bytes) == (c["heap"], 1, c["size"])
    walked = dump.coverage().to_pandas()
    assert "unparsed:not_captured" in set(walked.what)
    code, out, _ = run(["heap", "-s", str(path)], capsys)
    assert code == 1 and f"{c['size']} committed bytes in 1 segment range of heap {c['heap']:#x}" in out


# 2. A process whose heap is not a Windows heap ----------------------------------------------------

def test_wine_like_process_names_what_it_found(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("wine_like_x64")
    heap = exp["coverage"]["listed_heaps"][0]
    word = exp["coverage"]["process_heap_signature"]
    dump = ntheap.Dump(path)
    (h,) = dump.heaps
    assert (h.address, h.kind, h.status, h.signature_word) == (heap, "unknown", "not_walked", word)
    assert f"signature word {word:#010x}" in repr(h)
    tags = set(dump.coverage(walk=False)["what"])
    assert tags == {"no_nt_heap", "not_walked:unknown_signature"}
    code, out, _ = run(["info", str(path)], capsys)
    assert code == 1
    assert f"(process heap {heap:#x}): no heap listed in ProcessHeaps" in out
    assert f"not a Windows heap (signature word {word:#010x})" in out
    assert "does not use the Windows heap manager" in out
    for command in (["heap", "-s"], ["top"], ["report", "--no-plot", "-q"]):
        code, out, _ = run([*command, str(path)], capsys)
        assert code == 2, command
        assert f"{word:#010x}" in out and "NumberOfHeaps 0" in out, command
    code, out, err = run(["heap", "-h", f"{heap:x}", str(path)], capsys)
    assert code == 1 and not err
    assert f"not a Windows heap: the signature word at +0x10 is {word:#010x}" in out


# 3. heap -h of an address that is not a heap -------------------------------------------------------

def test_heap_h_of_a_non_heap_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    path, exp = fixture("heap_win10_1809_x64")
    code, out, err = run(["heap", "-h", "1234", str(path)], capsys)
    assert code == 2 and not out
    assert err.startswith("ntheap: NoSuchHeapError: no heap at 0x1234: the dump lists")
    assert all(f"{h['address']:#x}" in err for h in exp["heaps"]) and "Traceback" not in err


# 4. report without a readable dump, or with one dump -----------------------------------------------

def test_report_of_no_readable_dump_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    bad = [str(fixture(n)[0]) for n in ("garbage", "empty")]
    code, out, _ = run(["report", "--no-plot", "-q", *bad], capsys)
    assert code == 2 and out.endswith("No dump could be read.\n")


def test_report_of_one_dump_says_growth_needs_two(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["report", "--no-plot", "-q", str(SAMPLES / "leaky-2.dmp")], capsys)
    assert code == 1 and "warning: one dump (leaky-2.dmp): growth needs at least two" in out


def test_growth_of_one_dump_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["growth", "-q", str(SAMPLES / "leaky-2.dmp")], capsys)
    assert code == 1 and "one dump: growth needs at least two" in err


# 5. A directory, a missing file ------------------------------------------------------------------

def test_a_directory_is_not_a_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["info", str(tmp_path)], capsys)
    assert code == 2 and not out
    assert f"cannot open {tmp_path}: it is a directory; give a .dmp file" in err
    with pytest.raises(IsADirectoryError):
        ntheap.Dump(tmp_path)
    code, _, err = run(["report", "-q", str(tmp_path)], capsys)
    assert code == 2 and f"no .dmp file in {tmp_path}" in err


def test_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["top", str(tmp_path / "nope.dmp")], capsys)
    assert code == 2 and "FileNotFoundError" in err and "nope.dmp" in err and "Traceback" not in err


# 6. Stable order ---------------------------------------------------------------------------------

def test_address_summary_orders_ties_by_name() -> None:
    df = ntheap.Dump(SAMPLES / "sample-x64-win10.dmp").address_summary()
    for _, part in df.groupby("section", sort=False):
        keys = list(zip(-part["size"], part["name"]))
        assert keys == sorted(keys)


def test_address_summary_is_the_same_whatever_the_hash_seed() -> None:
    path = str(SAMPLES / "sample-x64-win10.dmp")
    outs = set()
    for seed in ("1", "2", "3"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-m", "ntheap.cli", "address", "-summary", path],
                                env=env, capture_output=True, text=True, check=True).stdout)
    assert len(outs) == 1


# 7. Dumps of different processes, out of order ------------------------------------------------------

def test_diff_warns_about_different_processes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["diff", "-q", str(SAMPLES / "leaky-1.dmp"), str(SAMPLES / "sample-x64-win10.dmp")], capsys)
    assert code == 1 and "Compared leaky-1.dmp" in out
    assert "warning: the dumps come from different processes (pids 12100, 14072;" in err
    assert "main modules leaky.exe, leakyapp.exe" in err


def test_diff_warns_when_old_is_newer(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["diff", "-q", str(SAMPLES / "leaky-3.dmp"), str(SAMPLES / "leaky-1.dmp")], capsys)
    assert code == 1 and "leaky-1.dmp (2026-03-02 08:00:00 UTC) was written before leaky-3.dmp" in err
    code, _, err = run(["diff", "-q", str(SAMPLES / "leaky-1.dmp"), str(SAMPLES / "leaky-3.dmp")], capsys)
    assert code == 0 and not err


def test_growth_and_report_warn_about_mixed_processes(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(SAMPLES / "leaky-1.dmp"), str(SAMPLES / "sample-x64-win10.dmp")]
    code, _, err = run(["growth", "-q", *paths], capsys)
    assert code == 1 and "different processes" in err
    code, out, _ = run(["report", "-q", "--no-plot", *paths], capsys)
    assert code == 1 and "warning: the dumps come from different processes" in out
    res = ntheap.scan(paths, progress=False)
    assert res.series_warnings() and not series_warnings(res.allocations()[:1])


# 8. Arguments, progress bars, hex ----------------------------------------------------------------

def test_negative_stacks_and_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["top", "--stacks", "-1", str(SAMPLES / "leaky-1.dmp")])
    assert e.value.code == 2 and "must be 0 or more" in capsys.readouterr().err
    code, out, err = run([], capsys)
    assert code == 2 and not out
    for command in ("info", "heap -s", "address -summary", "top", "diff", "growth", "report"):
        assert f"ntheap {command}" in err


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "exit status:" in out and "an answer with gaps" in out and "130" in out


def test_no_progress_bar_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(SAMPLES / "leaky-1.dmp"), str(SAMPLES / "leaky-2.dmp")]
    ntheap.scan(paths)  # default: a bar only when stderr is a terminal, and here it is not
    assert capsys.readouterr().err == ""
    ntheap.scan(paths, progress=True)
    assert "ntheap scan" in capsys.readouterr().err
    code, _, err = run(["growth", "--progress", *paths], capsys)
    assert code == 0 and "ntheap scan" in err


def test_addresses_show_in_hex() -> None:
    path, exp = fixture("heap_win10_1809_x64")
    dump = ntheap.Dump(path)
    blocks = dump.blocks()
    first = exp["heaps"][0]["address"]
    html = blocks._repr_html_()
    assert f"{first:#x}" in html
    df = blocks.to_pandas(["heap", "address", "user_size"], hex=True)
    assert df["address"].iloc[0] == f"{int(blocks['address'][0]):#x}"
    assert str(df["user_size"].dtype) == "uint64"
    assert blocks.to_pandas(["address"])["address"].dtype == np.uint64  # the default keeps the numbers
    assert f"{first:#x}" in list(df["heap"].cat.categories)
    h = dump.heap(first)
    assert f"Heap({first:#x}" in repr(h) and f"{h.segments[0].base:#x}" in repr(h.segments[0])


# 9. One coverage table, in scans too --------------------------------------------------------------

def test_scan_records_carry_coverage() -> None:
    res = ntheap.scan([str(fixture("heap_page_missing")[0]), str(SAMPLES / "leaky-1.dmp")], progress=False)
    cov = res.coverage
    assert list(cov.columns) == ["path", *ntheap.COVERAGE_COLUMNS]
    assert set(cov["what"]) == {"not_captured:segment_range", "unparsed:not_captured"}
    assert all(p.endswith("heap_page_missing.dmp") for p in cov["path"])


def test_a_heap_list_that_cannot_be_read_is_a_coverage_row() -> None:
    dump = ntheap.Dump(fixture("peb_not_captured")[0])
    (row,) = dump.coverage(walk=False).to_pandas().itertuples()
    assert row.what == "not_read:heap_list" and ADVICE in row.message


# 10. Limits ---------------------------------------------------------------------------------------

def test_limits_defaults_and_validation() -> None:
    d = ntheap.Limits()
    assert (d.max_rows, d.max_list_nodes, d.max_stack_depth, d.max_symbol_file_bytes) == (200_000_000, 1_000_000, 32, 2 << 30)
    assert ntheap.Dump(SAMPLES / "leaky-1.dmp").limits == d
    with pytest.raises(ValueError, match="max_stack_depth"):
        ntheap.Limits(max_stack_depth=0)
    with pytest.raises(ValueError, match="max_list_nodes"):
        ntheap.Limits(max_list_nodes=0)
    assert "max_rows=5" in repr(ntheap.Limits(max_rows=5))


def test_row_cap_leaves_later_heaps_unwalked() -> None:
    path, exp = fixture("heap_win10_1809_x64")
    dump = ntheap.Dump(path, limits=ntheap.Limits(max_rows=1))
    blocks = dump.blocks()
    first = exp["heaps"][0]
    assert len(blocks) == len(first["blocks"])
    rows = dump.coverage().to_pandas()
    (cap,) = rows[rows.what == "truncated:max_rows"].itertuples()
    assert cap.count == len(exp["heaps"]) - 1 and "Limits.max_rows" in cap.message
    assert [h.status for h in dump.heaps][1:] == ["not_walked"] * (len(exp["heaps"]) - 1)


def test_list_cap_is_a_coverage_row() -> None:
    path, exp = fixture("heap_cyclic_virtual_list")
    dump = ntheap.Dump(path, limits=ntheap.Limits(max_list_nodes=1))
    rows = dump.coverage(walk=False).to_pandas()
    assert "truncated:list_length" in set(rows.what)
    assert all(len(h.virtual_blocks) <= 1 for h in dump.heaps)


def test_stack_depth_cap() -> None:
    path, _ = fixture("heap_ust_win7_x64")
    full = ntheap.Dump(path, symbol_path="")
    deep = max(len(full.stacks().text(i)) for i in range(len(full.stacks())))
    assert deep > 2
    dump = ntheap.Dump(path, symbol_path="", limits=ntheap.Limits(max_stack_depth=2))
    stacks = dump.stacks()
    assert max(len(stacks.text(i)) for i in range(len(stacks))) == 2
    rows = dump.coverage().to_pandas()
    (cap,) = rows[rows.what == "truncated:stack_depth"].itertuples()
    assert cap.count > 0 and "Limits.max_stack_depth (2 frames)" in cap.message


def test_symbol_file_cap() -> None:
    path, _ = fixture("stacks_pdb_x64")
    pdb_dir = ROOT / "tests" / "pdb"
    dump = ntheap.Dump(path, symbol_path=str(pdb_dir), limits=ntheap.Limits(max_symbol_file_bytes=16))
    dump.stacks().frames()  # symbolizes every frame
    status = {s[0]: s for s in dump.symbol_status()}
    assert status["tiny"][2] == "export"
    rows = dump.coverage().to_pandas()
    assert "truncated:symbol_file" in set(rows.what)


# 11. Ctrl-C ---------------------------------------------------------------------------------------

_INTERRUPT = textwrap.dedent("""
    import os, signal, sys, threading, time
    sys.path.insert(0, {builder!r})
    from dumpbuilder.bigdump import write_big_heap_dump
    write_big_heap_dump({dump!r}, blocks=200_000)
    import ntheap
    dump = ntheap.Dump({dump!r})
    fired = []
    def fire():
        time.sleep(0.3)
        fired.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=fire, daemon=True).start()
    try:
        dump.blocks()
    except KeyboardInterrupt:
        late = time.monotonic() - fired[0]
        assert not dump.is_walked
        print(f"interrupted after {{late:.3f}} s")
    else:
        print("walk not interrupted")
        sys.exit(1)
    threading.Thread(target=fire, daemon=True).start()
    try:
        ntheap.scan([{dump!r}], progress=False)
    except KeyboardInterrupt:
        print(f"scan interrupted after {{time.monotonic() - fired[-1]:.3f}} s")
        sys.exit(0)
    print("scan not interrupted")
    sys.exit(1)
""")


def test_ctrl_c_interrupts_the_walk(tmp_path: Path) -> None:
    """A real SIGINT while the walk runs without the GIL, then while a scan runs: KeyboardInterrupt
    arrives promptly and nothing half-walked is kept. The walk of the small big-heap dump is slowed down before each
    heap by the NTHEAP_TEST_PAUSE_MS hook (the pause itself ends when the flag is set)."""
    script = _INTERRUPT.format(builder=str(ROOT / "tests"), dump=str(tmp_path / "big.dmp"))
    env = dict(os.environ, NTHEAP_TEST_PAUSE_MS="2000")
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    for what in ("", "scan "):
        late = float(run.stdout.split(f"\n{what}interrupted after " if what else "interrupted after ")[1].split()[0])
        assert late < 1.0, run.stdout
