"""ntheap.dask: one partition per dump, computed on a local dask.distributed cluster of two
worker processes (so the partition function and its arguments must travel by pickle)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from conftest import FIXTURES

import ntheap
from ntheap.scan import BLOCK_COLUMNS

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
import ntheap.dask  # noqa: E402  (needs dask, skipped above without it)

NAMES = ["heap_ust_win7_x64", "heap_win10_1809_x64", "heap_ust_win10_x86"]


@pytest.fixture(scope="module")
def client() -> Iterator["distributed.Client"]:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in NAMES + ["garbage"]:
        shutil.copy(FIXTURES / f"{name}.dmp", tmp_path / f"{name}.dmp")
    return tmp_path


def test_read_blocks_matches_scan(client: "distributed.Client", folder: Path) -> None:
    paths = [folder / f"{n}.dmp" for n in NAMES]
    ddf = ntheap.dask.read_blocks(paths)
    assert ddf.npartitions == len(paths)
    assert list(ddf.columns) == BLOCK_COLUMNS
    per_dump = ddf.groupby("dump", observed=True)["user_size"].agg(["sum", "count"]).compute()
    expected = ntheap.scan(paths, progress=False).summary.set_index("path")
    for p in paths:
        assert (int(per_dump.loc[str(p), "sum"]), int(per_dump.loc[str(p), "count"])) == (
            int(expected.loc[str(p), "bytes"]),
            int(expected.loc[str(p), "blocks"]),
        )
    # Per-stack totals over the series agree with the in-process scan.
    got = ddf.groupby(["dump", "stack_key"], observed=True)["user_size"].sum().compute()
    want = ntheap.scan(paths, progress=False).blocks.groupby(["dump", "stack_key"], observed=True)["user_size"].sum()
    got.index = got.index.set_levels([lvl.astype(str) for lvl in got.index.levels])
    want.index = want.index.set_levels([lvl.astype(str) for lvl in want.index.levels])
    pd.testing.assert_series_equal(got.sort_index().astype("uint64"), want.sort_index().astype("uint64"), check_names=False)


def test_bad_dump_raises_or_is_empty(client: "distributed.Client", folder: Path) -> None:
    with pytest.raises(ntheap.NotAMinidumpError):
        ntheap.dask.read_blocks(folder / "garbage.dmp").compute()
    ddf = ntheap.dask.read_blocks(folder, errors="ignore")
    assert ddf.npartitions == len(NAMES) + 1
    total = int(ddf["user_size"].sum().compute())
    assert total == int(ntheap.scan(folder, progress=False).summary["bytes"].sum())


def test_read_blocks_needs_dumps(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no dump files"):
        ntheap.dask.read_blocks(tmp_path)
