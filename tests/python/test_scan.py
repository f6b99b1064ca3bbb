"""ntheap.scan: many dumps read in parallel into one ScanResult; failures are rows, not raises.

Expected block counts and bytes come from the builder's JSON beside each fixture."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, fixture

import ntheap
from ntheap.scan import BLOCK_COLUMNS, SUMMARY_COLUMNS, expand_paths

USER_KINDS = {"backend", "virtual"}


def busy_user_totals(exp: Dict[str, Any]) -> Tuple[int, int]:
    """(count, bytes) of busy backend and virtual blocks, from the builder's description."""
    blocks = [b for h in exp["heaps"] + exp.get("heaps32", []) if h.get("type", "nt") == "nt" for b in h["blocks"]]
    mine = [b for b in blocks if b["busy"] and b["kind"] in USER_KINDS]
    return len(mine), sum(b["user_size"] for b in mine)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with two good dumps, one that is not a minidump and a file that is not a .dmp."""
    for name in ["heap_ust_win7_x64", "heap_win10_1809_x64", "garbage"]:
        shutil.copy(FIXTURES / f"{name}.dmp", tmp_path / f"{name}.dmp")
    (tmp_path / "notes.txt").write_text("not a dump")
    return tmp_path


def test_expand_paths(folder: Path) -> None:
    got = expand_paths([folder, FIXTURES / "x64_win10.dmp"])
    assert [Path(p).name for p in got] == ["garbage.dmp", "heap_ust_win7_x64.dmp", "heap_win10_1809_x64.dmp", "x64_win10.dmp"]


def test_scan_folder_reports_the_bad_dump_and_goes_on(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = ntheap.scan(folder, workers=2, progress=True)
    assert "ntheap scan" in capsys.readouterr().err  # the progress bar goes to stderr
    assert len(res) == 3
    assert [Path(p).name for p in res.paths] == ["garbage.dmp", "heap_ust_win7_x64.dmp", "heap_win10_1809_x64.dmp"]

    assert list(res.errors.columns) == ["path", "error_kind", "error"]
    assert [Path(p).name for p in res.errors["path"]] == ["garbage.dmp"]
    assert list(res.errors["error_kind"]) == ["NotAMinidumpError"]
    assert "MDMP" in res.errors["error"][0]

    s = res.summary
    assert list(s.columns) == SUMMARY_COLUMNS
    for name in ["heap_ust_win7_x64", "heap_win10_1809_x64"]:
        _, exp = fixture(name)
        row = s[s["path"] == str(folder / f"{name}.dmp")].iloc[0]
        assert (int(row["blocks"]), int(row["bytes"])) == busy_user_totals(exp)
        assert int(row["pid"]) == exp["pid"]
        assert row["time"] == pd.Timestamp(exp["timestamp"], unit="s", tz="UTC")
        assert pd.isna(row["error"])
    bad = s[s["path"] == str(folder / "garbage.dmp")].iloc[0]
    assert (bad["blocks"], bad["bytes"], bad["error_kind"]) == (0, 0, "NotAMinidumpError")


def test_scan_blocks_frame(folder: Path) -> None:
    res = ntheap.scan(folder, progress=False)
    b = res.blocks
    assert list(b.columns) == BLOCK_COLUMNS
    assert str(b["dump"].dtype) == "category" and str(b["stack_key"].dtype) == "category"
    assert set(b["kind_name"]) <= USER_KINDS
    for name in ["heap_ust_win7_x64", "heap_win10_1809_x64"]:
        _, exp = fixture(name)
        mine = b[b["dump"] == str(folder / f"{name}.dmp")]
        assert (len(mine), int(mine["user_size"].sum())) == busy_user_totals(exp)
        want = sorted(
            blk["user_address"] for h in exp["heaps"] for blk in h["blocks"] if blk["busy"] and blk["kind"] in USER_KINDS
        )
        assert sorted(mine["user_address"].tolist()) == want
    # The +ust dump has stacks on its blocks; the other has none.
    ust = b[b["dump"] == str(folder / "heap_ust_win7_x64.dmp")]
    plain = b[b["dump"] == str(folder / "heap_win10_1809_x64.dmp")]
    assert (plain["stack_id"] == -1).all() and (plain["stack_key"] == "").all()
    assert (ust["stack_id"] >= 0).any()
    assert (ust.loc[ust["stack_id"] >= 0, "stack_key"] != "").all()


def test_scan_agrees_with_dump_objects(folder: Path) -> None:
    """The batch path (Rust ScanJob) and the one-dump path (Dump.blocks + Dump.stacks) give the
    same per-stack totals."""
    path = folder / "heap_ust_win7_x64.dmp"
    res = ntheap.scan([path], progress=False)
    via_scan = res.top_stacks(0, n=None)
    via_dump = ntheap.top_stacks(ntheap.Dump(path), n=None)
    cols = ["stack_id", "count", "bytes", "top_frame", "stack_key"]
    pd.testing.assert_frame_equal(via_scan[cols], via_dump[cols])


def test_scan_result_helpers_and_html(folder: Path) -> None:
    res = ntheap.scan(folder, progress=False)
    assert "3 dumps (2 read, 1 failed)" in repr(res)
    page = res._repr_html_()
    assert "<table" in page and "garbage.dmp" in page and "NotAMinidumpError" in page
    g = res.growth(progress=False)
    assert list(dict.fromkeys(g["dump"])) == [p for p in res.summary.sort_values("time", kind="stable")["path"] if "garbage" not in p]
    d = res.diff("heap_ust_win7_x64.dmp", "heap_win10_1809_x64.dmp")
    assert int(d["bytes_after"].sum()) == busy_user_totals(fixture("heap_win10_1809_x64")[1])[1]
    with pytest.raises(KeyError, match="garbage.dmp"):
        res.top_stacks("garbage.dmp")


def test_growth_skips_a_bad_dump_with_a_warning(folder: Path) -> None:
    paths = sorted(folder.glob("*.dmp"))
    with pytest.warns(ntheap.DumpSkippedWarning, match="garbage.dmp: NotAMinidumpError"):
        g = ntheap.growth(paths, progress=False)
    assert len(set(g["dump"])) == 2
    with pytest.raises(ntheap.NotAMinidumpError, match="garbage.dmp"):
        ntheap.growth(paths, progress=False, errors="raise")
    with pytest.raises(ntheap.NotAMinidumpError):
        ntheap.diff(paths[0], paths[1])


def test_to_parquet_round_trip(folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    res = ntheap.scan(folder, progress=False)
    out = res.to_parquet(tmp_path / "blocks.parquet")
    back = pd.read_parquet(out)
    assert list(back.columns) == BLOCK_COLUMNS and len(back) == len(res.blocks)
    assert back["user_size"].astype(np.uint64).sum() == res.blocks["user_size"].sum()
    assert back["stack_key"].astype(str).tolist() == res.blocks["stack_key"].astype(str).tolist()


def test_scan_nothing(tmp_path: Path) -> None:
    res = ntheap.scan(tmp_path, progress=True)
    assert len(res) == 0 and res.blocks.empty and res.errors.empty
    assert list(res.blocks.columns) == BLOCK_COLUMNS


def test_scan_missing_file(tmp_path: Path) -> None:
    res = ntheap.scan([tmp_path / "absent.dmp"], progress=False)
    assert len(res.errors) == 1
    assert res.errors["error_kind"][0] in {"FileNotFoundError", "OSError", "DumpError"}



def test_scan_series_folder_with_a_truncated_dump() -> None:
    """tests/fixtures/series_with_corrupt: three dumps of a leaking process and one cut short."""
    import json

    folder = FIXTURES / "series_with_corrupt"
    doc = json.loads((folder / "series_with_corrupt.json").read_text())
    res = ntheap.scan(folder, workers=2, progress=False)
    assert [Path(p).name for p in res.paths] == doc["files"]
    (bad,) = doc["corrupt"]
    assert [(Path(r.path).name, r.error_kind) for r in res.errors.itertuples()] == [(bad["file"], "TruncatedDumpError")]
    per_dump = {p["file"]: p for p in doc["series"]["per_dump"]}
    assert sorted(per_dump) == sorted(doc["good"])
    for row in res.summary.itertuples():
        name = Path(row.path).name
        if name == bad["file"]:
            continue
        want = per_dump[name]
        assert (row.blocks, row.bytes, row.stacks, row.pid) == (want["busy"]["count"], want["busy"]["bytes"], len(want["stacks"]), want["pid"])
        assert row.time == pd.Timestamp(want["timestamp"], unit="s", tz="UTC")
        mine = res.blocks[res.blocks["dump"] == row.path]
        per_stack = mine.groupby("stack_key", observed=True)["user_size"].agg(["sum", "count"])
        got = {k: {"bytes": int(v["sum"]), "count": int(v["count"])} for k, v in per_stack.iterrows() if k}
        assert got == {k: {"bytes": v["bytes"], "count": v["count"]} for k, v in want["stacks"].items()}
        assert (mine["stack_key"] == "").sum() == want["no_stack"]["count"]
        labels = mine.drop_duplicates("stack_key").set_index("stack_key")["top_frame"]
        assert all(labels[k] == ntheap.top_frame(k) for k in want["stacks"])
