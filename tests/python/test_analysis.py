"""Leak analysis: per-stack totals, size histogram, modules, diff and growth.

Two kinds of tests. The first half feeds hand-made allocations (DumpAllocations built in the
test, values worked out by hand) to the analysis functions, so the arithmetic and the frame
rules are checked without any dump. The second half runs the same functions on the sample leak
series (samples/leaky-*.dmp) and compares with the values the dump builder wrote beside it
(samples/leaky-series.json), which never come from the reader.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, ROOT, fixture

import ntheap
from ntheap.analysis import DumpAllocations, FrameClassifier, split_frame

UTC = dt.timezone.utc

# Stacks, innermost frame first, as the symbolizer writes them.
K_SESSION = "ntdll!RtlpAllocateHeapInternal+0x4f\nntdll!RtlAllocateHeap+0x3c\nucrtbase!_malloc_base+0x36\napp!Session::Open+0x20\napp!main+0x10"
K_CACHE = "ntdll!RtlAllocateHeap+0x3c\napp!operator new+0x1e\napp!Cache::Grow+0x44\napp!main+0x30"
K_PLUGIN = "ntdll+0x2a1f3\nKERNELBASE+0x1b4c7\nplugin+0x10f9\napp!main+0x50"
K_JIT = "ntdll!RtlAllocateHeap+0x3c\n0x00007ff6`12345678"


def allocs(path: str, when: dt.datetime, keys: List[str], blocks: List[tuple]) -> DumpAllocations:
    """blocks: (stack_id, user_size, kind) per busy block."""
    n = len(blocks)
    return DumpAllocations.from_columns(
        path=path,
        time=when,
        pid=4242,
        columns={
            "heap": np.full(n, 0x10000, dtype=np.uint64),
            "address": np.arange(n, dtype=np.uint64) * 0x100 + 0x20000,
            "user_address": np.arange(n, dtype=np.uint64) * 0x100 + 0x20010,
            "user_size": np.array([b[1] for b in blocks], dtype=np.uint64),
            "kind": np.array([b[2] for b in blocks], dtype=np.uint8),
            "stack_id": np.array([b[0] for b in blocks], dtype=np.int32),
        },
        stack_keys=np.array(keys, dtype=object),
    )


T1 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
T2 = dt.datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
T3 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# Dump A: K_SESSION 3 x 100, K_CACHE 1 x 1000, two blocks without a stack (8 each), K_PLUGIN one
# virtual block of 64.
A = allocs("a.dmp", T1, [K_SESSION, K_CACHE, K_PLUGIN],
           [(0, 100, 0), (0, 100, 0), (0, 100, 0), (1, 1000, 0), (-1, 8, 0), (-1, 8, 0), (2, 64, 1)])
# Dump B: ids in another order, and K_CACHE under two ids (the symbolizer may give two traces
# the same text): K_SESSION 5 x 100, K_CACHE 1000 + 2 x 500, K_JIT 4096, one 8 without a stack.
B = allocs("b.dmp", T2, [K_CACHE, K_SESSION, K_JIT, K_CACHE],
           [(1, 100, 0)] * 5 + [(0, 1000, 0), (3, 500, 0), (3, 500, 0), (2, 4096, 1), (-1, 8, 0)])
# Dump C, the latest: K_CACHE keeps growing, K_JIT is gone.
C = allocs("c.dmp", T3, [K_CACHE], [(0, 1000, 0)] * 4)


# ---------------------------------------------------------------------------------------------
# Frames


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ucrtbase!_malloc_base+0x36", ("ucrtbase", "_malloc_base")),
        ("app!std::operator+<char>+0x1a", ("app", "std::operator+<char>")),
        ("app!Session::Open", ("app", "Session::Open")),
        ("leaky+0x1a40", ("leaky", "")),
        ("KERNELBASE.dll+0x1b4c7", ("KERNELBASE", "")),
        (r"C:\Windows\System32\ntdll.dll+0x10", ("ntdll", "")),
        ("0x00007ff6`12345678", ("", "")),
        ("00007ff612345678", ("", "")),
        ("0x401000", ("", "")),
    ],
)
def test_split_frame(text: str, expected: tuple) -> None:
    assert split_frame(text) == expected


def test_top_frame_skips_allocator_frames() -> None:
    assert ntheap.top_frame(K_SESSION) == "app!Session::Open+0x20"
    assert ntheap.top_frame(K_CACHE) == "app!Cache::Grow+0x44"  # operator new in the app's module
    assert ntheap.top_frame(K_PLUGIN) == "plugin+0x10f9"  # unsymbolized ntdll/KERNELBASE frames
    assert ntheap.top_frame(K_JIT) == "0x00007ff6`12345678"
    assert ntheap.top_frame("") == "(no stack)"
    # Only allocator frames: the innermost one names the stack.
    assert ntheap.top_frame("ntdll!RtlAllocateHeap+0x3c\nntdll+0x1234") == "ntdll!RtlAllocateHeap+0x3c"


@pytest.mark.parametrize(
    "frame",
    [
        "ntdll!RtlpAllocateHeapInternal+0x4f", "NTDLL!RtlDebugAllocateHeap+0x10", "ntdll!RtlReAllocateHeap+0x9",
        "KERNELBASE!HeapAlloc+0x1", "kernel32!LocalAlloc+0x2", "KERNELBASE!GlobalAlloc+0x3",
        "ucrtbase!malloc+0xe", "msvcrt!_calloc_base+0x4", "app!realloc+0x1", "ucrtbased!_malloc_dbg+0x20",
        "app!??2@YAPEAX_K@Z+0x1e", "app32!??2@YAPAXI@Z+0x8", "app!??_U@YAPEAX_K@Z+0x5",
        "app!operator new[]+0x3", "app!operator new(unsigned __int64)+0x3", "msvcrt+0x1234", "vcruntime140+0x10",
    ],
)
def test_allocator_frames(frame: str) -> None:
    assert FrameClassifier().is_allocator(frame)


@pytest.mark.parametrize(
    "frame",
    ["app!Session::Open+0x20", "ntdll!RtlUserThreadStart+0x21", "app!mallocate_table+0x3", "app!??2Foo@@QEAA@XZ+0x2",
     "app+0x1000", "0x00007ff6`12345678", "app!operator newline+0x1"],
)
def test_not_allocator_frames(frame: str) -> None:
    assert not FrameClassifier().is_allocator(frame)


def test_allocator_frames_are_user_extendable(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "ntdll!RtlAllocateHeap+0x3c\napp!CPool::Alloc+0x10\napp!Parser::Node+0x44"
    assert ntheap.top_frame(key) == "app!CPool::Alloc+0x10"
    assert ntheap.top_frame(key, allocator_frames=ntheap.ALLOCATOR_FRAMES + ["app!CPool::*"]) == "app!Parser::Node+0x44"
    monkeypatch.setattr(ntheap.frames, "ALLOCATOR_FRAMES", ntheap.ALLOCATOR_FRAMES + ["CPool::Alloc"])
    assert ntheap.top_frame(key) == "app!Parser::Node+0x44"
    # "*" is the only wildcard: "?" in a decorated name is literal.
    assert not FrameClassifier(["??2@*"]).is_allocator("app!xx2@foo")


# ---------------------------------------------------------------------------------------------
# One dump, hand-made


def test_top_stacks_by_bytes() -> None:
    df = ntheap.top_stacks(A)
    assert list(df.columns) == ["stack_id", "count", "bytes", "pct", "top_frame", "module", "stack_key"]
    assert df[["stack_id", "count", "bytes"]].values.tolist() == [[1, 1, 1000], [0, 3, 300], [2, 1, 64], [-1, 2, 16]]
    assert list(df["top_frame"]) == ["app!Cache::Grow+0x44", "app!Session::Open+0x20", "plugin+0x10f9", "(no stack)"]
    assert list(df["module"]) == ["app", "app", "plugin", "(no stack)"]
    assert list(df["stack_key"]) == [K_CACHE, K_SESSION, K_PLUGIN, ""]
    assert df["pct"].tolist() == pytest.approx([100 * b / 1380 for b in (1000, 300, 64, 16)])
    assert df["stack_id"].dtype == np.int32 and df["bytes"].dtype == np.int64


def test_top_stacks_by_count_and_n() -> None:
    df = ntheap.top_stacks(A, by="count", n=2)
    assert df[["stack_id", "count", "bytes"]].values.tolist() == [[0, 3, 300], [-1, 2, 16]]
    with pytest.raises(ValueError, match="by must be"):
        ntheap.top_stacks(A, by="size")


def test_top_stacks_keeps_ids_apart_even_with_equal_text() -> None:
    df = ntheap.top_stacks(B, n=None)
    # Equal bytes: more blocks first.
    assert df[["stack_id", "count", "bytes"]].values.tolist() == [[2, 1, 4096], [3, 2, 1000], [0, 1, 1000], [1, 5, 500], [-1, 1, 8]]
    assert int(df["bytes"].sum()) == 4096 + 500 + 2000 + 8


def test_size_histogram() -> None:
    df = ntheap.size_histogram(B)
    assert list(df.columns) == ["size", "count", "total", "pct"]
    assert df[["size", "count", "total"]].values.tolist() == [[4096, 1, 4096], [1000, 1, 1000], [500, 2, 1000], [100, 5, 500], [8, 1, 8]]
    assert float(df["pct"].sum()) == pytest.approx(100.0)


def test_top_modules() -> None:
    df = ntheap.top_modules(B)
    assert list(df.columns) == ["module", "stacks", "count", "bytes", "pct"]
    assert df[["module", "stacks", "count", "bytes"]].values.tolist() == [
        ["(jit or unknown)", 1, 1, 4096], ["app", 3, 8, 2500], ["(no stack)", 1, 1, 8],
    ]


def test_bad_stack_id_is_an_error() -> None:
    bad = allocs("bad.dmp", T1, [K_SESSION], [(0, 1, 0), (5, 1, 0)])
    with pytest.raises(ValueError, match="stack id 5, but the dump has 1 stacks"):
        ntheap.top_stacks(bad)


# ---------------------------------------------------------------------------------------------
# Several dumps, hand-made


def test_diff_matches_stacks_by_text() -> None:
    df = ntheap.diff(A, B)
    assert list(df.columns) == ["top_frame", "bytes_before", "bytes_after", "bytes_delta", "count_before", "count_after", "count_delta", "stack_key"]
    assert df["stack_key"].tolist() == [K_JIT, K_CACHE, K_SESSION, "", K_PLUGIN]
    assert df[["bytes_before", "bytes_after", "bytes_delta", "count_before", "count_after", "count_delta"]].values.tolist() == [
        [0, 4096, 4096, 0, 1, 1],
        [1000, 2000, 1000, 1, 3, 2],
        [300, 500, 200, 3, 5, 2],
        [16, 8, -8, 2, 1, -1],
        [64, 0, -64, 1, 0, -1],
    ]
    assert df["top_frame"].tolist()[:3] == ["0x00007ff6`12345678", "app!Cache::Grow+0x44", "app!Session::Open+0x20"]


def test_diff_of_a_dump_with_itself_is_zero() -> None:
    df = ntheap.diff(B, B)
    assert (df["bytes_delta"] == 0).all() and (df["count_delta"] == 0).all()
    assert df["bytes_after"].sum() == 4096 + 500 + 2000 + 8


def test_growth_orders_by_time_and_fills_zeros() -> None:
    df = ntheap.growth([C, A, B])  # given out of order
    assert list(df.columns) == ["time", "dump", "stack_key", "top_frame", "bytes", "count"]
    assert list(dict.fromkeys(df["dump"])) == ["a.dmp", "b.dmp", "c.dmp"]
    assert list(dict.fromkeys(df["time"])) == [pd.Timestamp(T1), pd.Timestamp(T2), pd.Timestamp(T3)]
    assert str(df["time"].dtype) == "datetime64[ns, UTC]" or str(df["time"].dtype).startswith("datetime64[")
    assert len(df) == 3 * 5  # every stack in every dump
    table = df.pivot(index="stack_key", columns="dump", values="bytes")
    assert table.loc[K_CACHE].tolist() == [1000, 2000, 4000]
    assert table.loc[K_SESSION].tolist() == [300, 500, 0]
    assert table.loc[K_JIT].tolist() == [0, 4096, 0]
    assert table.loc[""].tolist() == [16, 8, 0]
    counts = df.pivot(index="stack_key", columns="dump", values="count")
    assert counts.loc[K_CACHE].tolist() == [1, 3, 4]
    # Within a dump, the stack that grew most from first to last comes first.
    assert df[df["dump"] == "a.dmp"]["stack_key"].tolist()[0] == K_CACHE


def test_growing_stacks() -> None:
    from ntheap.analysis import growing_stacks

    top = growing_stacks(ntheap.growth([A, B, C]), top=None)
    assert top[["top_frame", "bytes_first", "bytes_last", "bytes_delta", "count_delta", "never_fell"]].values.tolist() == [
        ["app!Cache::Grow+0x44", 1000, 4000, 3000, 3, True],
    ]
    # Least-squares slope over hours 0, 1, 2 of 1000, 2000, 4000 bytes and 1, 3, 4 blocks.
    assert top["bytes_per_hour"].tolist() == pytest.approx([1500.0])
    assert top["count_per_hour"].tolist() == pytest.approx([1.5])


def test_growth_of_nothing() -> None:
    df = ntheap.growth([])
    assert df.empty and list(df.columns) == ["time", "dump", "stack_key", "top_frame", "bytes", "count"]


def test_scan_record_rows_are_taken_as_the_scan_gives_them() -> None:
    # The scan keeps the is_allocation rows in Rust; Python does not filter a second time.
    rec: Dict[str, Any] = {
        "path": "x.dmp", "error": None, "error_kind": None, "timestamp_unix": 1_700_000_000, "pid": 7,
        "blocks": {
            "heap": np.array([1, 1], dtype=np.uint64), "address": np.array([16, 48], dtype=np.uint64),
            "user_address": np.array([32, 64], dtype=np.uint64), "user_size": np.array([10, 30], dtype=np.uint64),
            "kind": np.array([0, 8], dtype=np.uint8), "stack_id": np.array([0, -1], dtype=np.int32),
        },
        "stack_keys": [K_SESSION],
    }
    a = DumpAllocations.from_scan_record(rec)
    assert a.columns["user_size"].tolist() == [10, 30]
    assert a.time == dt.datetime.fromtimestamp(1_700_000_000, UTC) and a.pid == 7


# ---------------------------------------------------------------------------------------------
# Plots


def test_plot_growth_draws_the_growing_stacks(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    fig = ntheap.plot_growth(ntheap.growth([A, B, C]), top=5)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["app!Cache::Grow+0x44  (+1.5 KiB/h)"]  # the only stack that grew from a.dmp to c.dmp
    (line,) = ax.get_lines()
    assert line.get_ydata().tolist() == pytest.approx([1000 / 1024, 2000 / 1024, 4000 / 1024])
    assert ax.get_ylabel() == "busy KiB" and ax.get_yscale() == "linear"
    # Stacks of very different sizes get a log axis, so the small one is not a flat line at 0.
    big = allocs("big.dmp", T3, [K_CACHE, K_SESSION], [(0, 1 << 30, 1), (1, 100, 0)])
    small = allocs("small.dmp", T1, [K_CACHE, K_SESSION], [(0, 1 << 20, 1), (1, 10, 0)])
    ax2 = ntheap.plot_growth(ntheap.growth([small, big]), top=5).axes[0]
    assert ax2.get_yscale() == "log" and [ln.get_ydata().tolist() for ln in ax2.get_lines()] == [[1 << 20, 1 << 30], [10, 100]]
    assert ntheap.plot_growth(ntheap.growth([small, big]), scale="linear").axes[0].get_yscale() == "linear"
    out = tmp_path / "g.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_growth_into_given_axes_and_duplicate_labels() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    other = K_CACHE.replace("app!main+0x30", "app!worker+0x30")  # same caller, another stack
    d1 = allocs("1.dmp", T1, [K_CACHE, other], [(0, 10, 0), (1, 10, 0)])
    d2 = allocs("2.dmp", T2, [K_CACHE, other], [(0, 50, 0), (1, 30, 0)])
    fig = Figure()
    ax = fig.add_subplot()
    assert ntheap.plot_growth(ntheap.growth([d1, d2]), ax=ax) is fig
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["app!Cache::Grow+0x44  (+40 B/h)", "app!Cache::Grow+0x44 [2]  (+20 B/h)"]


def test_plot_growth_without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'ntheap\[plot\]'"):
        ntheap.plot_growth(ntheap.growth([A, B]))


# ---------------------------------------------------------------------------------------------
# Builder-made +ust dumps: every block's frames are in the builder's JSON


def builder_stacks(exp: Dict[str, Any]) -> Dict[tuple, List[int]]:
    """frames -> [count, bytes] of the busy user blocks, from the builder's description (the
    empty tuple collects the blocks without a stack)."""
    out: Dict[tuple, List[int]] = {}
    for h in exp["heaps"] + exp.get("heaps32", []):
        for b in h.get("blocks", []):
            if b["busy"] and b["kind"] in ("backend", "virtual"):
                acc = out.setdefault(tuple(b.get("frames", [])), [0, 0])
                acc[0] += 1
                acc[1] += b["user_size"]
    return out


def builder_caller_module(exp: Dict[str, Any], frames: tuple) -> str:
    """The module of the first frame outside the system allocator modules (these fixtures'
    frames are module+offset, or named from exports by their own module's functions)."""
    system = {"ntdll", "kernelbase", "kernel32", "ucrtbase"}
    for f in frames:
        m = next((m for m in exp["modules"] if m["base"] <= f < m["base"] + m["size"]), None)
        name = Path(m["name"].replace("\\", "/")).stem if m else "(unknown)"
        if name.lower() not in system:
            return name
    return "(jit or unknown)"


BUILDER_UST = [FIXTURES / "heap_ust_win7_x64.dmp", FIXTURES / "heap_ust_win10_x86.dmp", ROOT / "samples" / "sample-x64-win10.dmp"]


@pytest.mark.parametrize("path", BUILDER_UST, ids=[p.stem for p in BUILDER_UST])
def test_top_stacks_on_builder_dumps(path: Path) -> None:
    exp = json.loads(path.with_suffix(".json").read_text())
    want = builder_stacks(exp)
    dump = ntheap.Dump(path)
    stacks = dump.stacks()
    df = ntheap.top_stacks(dump, n=None)
    got = {
        (tuple(int(a) for a in stacks.addresses(r.stack_id)) if r.stack_id >= 0 else ()): [r.count, r.bytes]
        for r in df.itertuples()
    }
    assert got == want
    assert df["bytes"].tolist() == sorted(df["bytes"].tolist(), reverse=True)
    for r in df.itertuples():
        if r.stack_id >= 0:
            frames = tuple(int(a) for a in stacks.addresses(r.stack_id))
            assert r.module == builder_caller_module(exp, frames), r.stack_key
            assert r.stack_key == "\n".join(stacks.text(r.stack_id))
    # The histogram covers the same blocks.
    hist = ntheap.size_histogram(dump)
    assert int(hist["count"].sum()) == sum(c for c, _ in want.values())
    assert int(hist["total"].sum()) == sum(b for _, b in want.values())


# ---------------------------------------------------------------------------------------------
# Dump series made by the builder, with the analysis results it computed from its own inputs

JIT_OR_UNKNOWN = {"<jit_or_unknown>": "(jit or unknown)"}
SERIES = {
    "series_with_corrupt": (FIXTURES / "series_with_corrupt", FIXTURES / "series_with_corrupt" / "series_with_corrupt.json"),
    "leaky_samples": (ROOT / "samples", ROOT / "samples" / "leaky-series.json"),
}


def load_series(name: str) -> Tuple[List[Path], Dict[str, Any]]:
    folder, path = SERIES[name]
    doc = json.loads(path.read_text())
    exp = doc["series"] if isinstance(doc.get("series"), dict) else doc
    return [folder / f for f in exp["dumps"]], exp


def stack_rows(df: "pd.DataFrame") -> List[tuple]:
    return [(r.stack_key, r.bytes, r.count) for r in df.itertuples() if r.stack_id >= 0]


@pytest.mark.parametrize("name", list(SERIES))
def test_series_per_dump(name: str) -> None:
    paths, exp = load_series(name)
    for path, want in zip(paths, exp["per_dump"]):
        dump = ntheap.Dump(path)
        assert (dump.pid, dump.timestamp_unix) == (want["pid"], want["timestamp"])
        top = ntheap.top_stacks(dump, n=None)
        assert stack_rows(top) == [(t["key"], t["bytes"], t["count"]) for t in want["top_by_bytes"]]
        no_stack = top[top.stack_id == -1]
        assert (int(no_stack["bytes"].sum()), int(no_stack["count"].sum())) == (want["no_stack"]["bytes"], want["no_stack"]["count"])
        assert (int(top["bytes"].sum()), int(top["count"].sum())) == (want["busy"]["bytes"], want["busy"]["count"])
        by_count = ntheap.top_stacks(dump, by="count", n=None)
        assert stack_rows(by_count) == [(t["key"], t["bytes"], t["count"]) for t in want["top_by_count"]]
        # The first three by bytes with n=3, as UMDH users ask for them.
        assert stack_rows(ntheap.top_stacks(dump, n=3)) == stack_rows(top)[:3] or top.stack_id.head(3).min() < 0

        hist = ntheap.size_histogram(dump)
        assert sorted(hist[["size", "count", "total"]].values.tolist()) == [
            [h["user_size"], h["count"], h["total"]] for h in want["size_histogram"]
        ]
        assert hist["total"].tolist() == sorted(hist["total"].tolist(), reverse=True)

        mods = ntheap.top_modules(dump)
        mods = mods[mods.module != "(no stack)"]
        assert {r.module: {"bytes": r.bytes, "count": r.count, "stacks": r.stacks} for r in mods.itertuples()} == {
            JIT_OR_UNKNOWN.get(k, k): v for k, v in want["by_module"].items()
        }
        for key, st in want["stacks"].items():
            assert ntheap.top_frame(key) == next(
                (t for t in st["frame_texts"] if not FrameClassifier().is_allocator(t)), st["frame_texts"][0]
            )


@pytest.mark.parametrize("name", list(SERIES))
def test_series_diff_first_last(name: str) -> None:
    paths, exp = load_series(name)
    want = exp["diff_first_last"]
    assert (paths[0].name, paths[-1].name) == (want["from"], want["to"])
    df = ntheap.diff(paths[0], paths[-1])
    got = {
        r.stack_key: {c: getattr(r, c) for c in ("bytes_before", "bytes_after", "bytes_delta", "count_before", "count_after", "count_delta")}
        for r in df.itertuples() if r.stack_key != ""
    }
    assert got == want["stacks"]
    assert df["bytes_delta"].tolist() == sorted(df["bytes_delta"].tolist(), reverse=True)
    # Dump objects give the same answer as paths.
    pd.testing.assert_frame_equal(ntheap.diff(ntheap.Dump(paths[0]), ntheap.Dump(paths[-1])), df)


@pytest.mark.parametrize("name", list(SERIES))
def test_series_growth(name: str) -> None:
    from ntheap.analysis import growing_stacks

    paths, exp = load_series(name)
    g = ntheap.growth(list(reversed(paths)), progress=False)  # any order in, time order out
    assert [Path(d).name for d in dict.fromkeys(g["dump"])] == exp["dumps"]
    assert [t.timestamp() for t in dict.fromkeys(g["time"])] == [p["timestamp"] for p in exp["per_dump"]]
    for key, want in exp["growth_per_hour"].items():
        mine = g[g.stack_key == key]
        assert mine["bytes"].tolist() == want["bytes"] and mine["count"].tolist() == want["counts"]
    top = growing_stacks(g, top=None)
    assert set(top["stack_key"]) == set(exp["leaking_stacks"])
    for r in top.itertuples():
        want = exp["growth_per_hour"][r.stack_key]
        assert r.bytes_per_hour == pytest.approx(want["bytes_per_hour"])
        assert r.count_per_hour == pytest.approx(want["count_per_hour"])
        assert r.never_fell
    # Every stack of every dump is in the frame, with its exact bytes.
    for p, want_dump in zip(exp["dumps"], exp["per_dump"]):
        here = g[[Path(d).name == p for d in g["dump"]]]
        assert {k: v for k, v in zip(here["stack_key"], here["bytes"]) if v and k} == {k: v["bytes"] for k, v in want_dump["stacks"].items()}


@pytest.mark.parametrize("name", list(SERIES))
def test_series_plot(name: str) -> None:
    pytest.importorskip("matplotlib")
    paths, exp = load_series(name)
    fig = ntheap.plot_growth(paths, top=5, progress=False)
    labels = [t.get_text().split("  (")[0] for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(labels) == sorted(ntheap.top_frame(k) for k in exp["leaking_stacks"])


# ---------------------------------------------------------------------------------------------
# Command line, on the sample series


def _n(x: int) -> str:
    return f"{x:,}"


def test_cli_top(capsys: pytest.CaptureFixture[str]) -> None:
    from ntheap.cli import main

    paths, exp = load_series("leaky_samples")
    last = exp["per_dump"][-1]
    assert main(["top", str(paths[-1]), "-n", "3", "--stacks", "1"]) == 0
    out = capsys.readouterr().out
    assert f"Busy user allocations: {_n(last['busy']['count'])} blocks, {_n(last['busy']['bytes'])} bytes" in out
    table = out.split("\n\n")[0]
    for t in last["top_by_bytes"][:3]:
        assert f"{_n(t['bytes'])}" in table and ntheap.top_frame(t["key"]) in table
    assert ntheap.top_frame(last["top_by_bytes"][3]["key"]) not in table
    assert last["top_by_bytes"][0]["key"].replace("\n", "\n    ") in out  # the full frames of the first stack
    assert main(["top", str(paths[-1]), "--by", "count", "-n", "1", "--stacks", "0"]) == 0
    out = capsys.readouterr().out
    assert ntheap.top_frame(last["top_by_count"][0]["key"]) in out


def test_cli_diff(capsys: pytest.CaptureFixture[str]) -> None:
    from ntheap.cli import main

    paths, exp = load_series("leaky_samples")
    assert main(["diff", str(paths[0]), str(paths[-1]), "-q"]) == 0
    out = capsys.readouterr().out
    d = exp["diff_first_last"]["stacks"]
    grew = sorted((k for k in d if d[k]["bytes_delta"] > 0), key=lambda k: -d[k]["bytes_delta"])
    assert f"{len(grew)} stacks grew" in out
    for i, k in enumerate(grew, 1):
        v = d[k]
        assert f"Leak suspect {i}: {v['bytes_delta']:+,} bytes ({_n(v['bytes_before'])} -> {_n(v['bytes_after'])}), " \
               f"{v['count_delta']:+,} allocations" in out
        assert k.replace("\n", "\n    ") in out


def test_cli_growth_with_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from ntheap.cli import main

    paths, exp = load_series("leaky_samples")
    png = tmp_path / "growth.png"
    assert main(["growth", *map(str, paths), "--plot", str(png), "-q"]) == 0
    captured = capsys.readouterr()
    assert png.read_bytes()[:4] == b"\x89PNG" and f"growth plot written to {png}" in captured.err
    for k, g in exp["growth_per_hour"].items():
        assert " ".join(_n(b) for b in g["bytes"]) in captured.out
        assert ntheap.top_frame(k) in captured.out


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    from ntheap.cli import main

    paths, exp = load_series("leaky_samples")
    out_file, png = tmp_path / "report.txt", tmp_path / "leak.png"
    assert main(["report", *map(str, paths), "--out", str(out_file), "--plot", str(png), "-q"]) == 0
    err = capsys.readouterr().err
    assert f"report written to {out_file}" in err and png.exists()
    text = out_file.read_text()
    first_section = text.split("Trend over")[0]
    for k in exp["leaking_stacks"]:
        assert ntheap.top_frame(k) in first_section
    assert f"Growth plot written to {png.resolve()}" in text
    for section in ["!address -summary", "!heap -s", "Biggest heaps", "Top allocation stacks", "!heap -stat -h"]:
        assert section in text
    for p in exp["per_dump"]:
        assert f"{p['file']}  {p['time'].replace('T', ' ').replace('Z', ' UTC')}  pid {p['pid']}  {_n(p['busy']['count'])} busy blocks" in text


def test_cli_report_on_a_folder_with_a_bad_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ntheap.cli import main

    folder = FIXTURES / "series_with_corrupt"
    doc = json.loads((folder / "series_with_corrupt.json").read_text())
    # One dump of the folder cannot be read: a report with a gap.
    assert main(["report", str(folder), "--no-plot", "-q"]) == 1
    out = capsys.readouterr().out
    (bad,) = doc["corrupt"]
    assert f"{bad['file']}  NOT READ: TruncatedDumpError" in out
    assert f"Latest dump: {doc['good'][-1]}" in out
    assert "Growth plot" not in out


def test_cli_report_single_dump(capsys: pytest.CaptureFixture[str]) -> None:
    from ntheap.cli import main

    paths, exp = load_series("leaky_samples")
    assert main(["report", str(paths[0]), "-q"]) == 1
    out = capsys.readouterr().out
    assert "Leak suspects" not in out and "Growth plot" not in out
    assert f"warning: one dump ({paths[0].name}): growth needs at least two" in out
    assert exp["per_dump"][0]["top_by_bytes"][0]["key"].replace("\n", "\n    ") in out


def test_readme_command(tmp_path: Path) -> None:
    """`ntheap report samples/leaky-*.dmp` as the README runs it: the report on stdout, the plot
    in the current directory, where it went on stderr."""
    pytest.importorskip("matplotlib")
    import subprocess
    import sys

    paths, exp = load_series("leaky_samples")
    run = subprocess.run([sys.executable, "-m", "ntheap.cli", "report", *map(str, paths)], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert "Leak suspect 1" in run.stdout and "Leak suspect 2" in run.stdout
    assert (tmp_path / "leak-growth.png").exists()
    assert f"growth plot written to {tmp_path / 'leak-growth.png'}" in run.stderr


def test_stack_table_html() -> None:
    paths, exp = load_series("leaky_samples")
    page = ntheap.Dump(paths[-1]).stacks()._repr_html_()
    assert "StackTable" in page
    for k in exp["per_dump"][-1]["stacks"]:
        assert ntheap.top_frame(k).replace("<", "&lt;").replace(">", "&gt;") in page
    assert "without +ust" in ntheap.Dump(FIXTURES / "heap_win7_x64.dmp").stacks()._repr_html_()


def test_report_goes_on_when_a_view_is_unavailable() -> None:
    """The latest dump lacks MemoryInfoList (and its heaps): the report says there is no heap to
    report on, the address summary says why it is missing, !heap -s shows the heaps listed."""
    from ntheap.leakreport import build_report

    path, _ = fixture("no_memory_info")
    out = build_report([str(path)], make_plot=False, progress=False)
    assert out.status == 2
    assert "No heap of these dumps could be read" in out.text
    assert "Address space (!address -summary):\n  unavailable: MissingStreamError" in out.text
    assert "Heaps (!heap -s):" in out.text
