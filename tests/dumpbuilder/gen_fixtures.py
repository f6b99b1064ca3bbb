"""Write every scenario dump and its expected values, plus malformed files.

    python tests/dumpbuilder/gen_fixtures.py [OUTDIR]     # default: tests/fixtures

For each scenario NAME: NAME.dmp and NAME.json (the heap_* scenarios add
heaps[], heaps32[], stack_trace_db, heap_conventions and corruption[] to the
JSON; see scenarios.py; the stacks_* scenarios add symbols, stack_blocks[] and
stacks[], see stack_scenarios.py; the ntdll_* scenarios add ntdll_pdb, see
ntdll_scenarios.py; the pageheap_* scenarios add page-heap and NormalHeap
records with block-model rows, see pageheap_scenarios.py; the lfh_* scenarios
are heap scenarios whose heaps carry an lfh object and nested block rows, plus
lfh_conventions and lfh_keys, see lfh_scenarios.py; the triage_* scenarios are LFH heap
scenarios with C++ images and a triage object -- RTTI names, content classes, reachability --
plus triage_series for triage_series_1..3, see triage_scenarios.py).  Malformed inputs:
empty.dmp, garbage.dmp, truncated.dmp, bad_directory.dmp, each with a .json
that says what is wrong with it.  series_with_corrupt/: three dumps of one
process an hour apart and a fourth one cut inside its ModuleListStream, with
series_with_corrupt.json (series.py).  Output is byte-for-byte deterministic.
"""

from __future__ import annotations

import json
import os
import struct
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from dumpbuilder import structs as fmt  # noqa: E402
    from dumpbuilder.scenarios import SCENARIOS  # noqa: E402
    from dumpbuilder.series import leaky_dump, series_expected  # noqa: E402
else:
    from . import structs as fmt
    from .scenarios import SCENARIOS
    from .series import leaky_dump, series_expected

DEFAULT_OUTDIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
GARBAGE_SIZE = 4096
GARBAGE_SEED = 0x6E746865  # any fixed non-zero value


def dump_json(obj: dict) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def garbage_bytes(size: int = GARBAGE_SIZE, seed: int = GARBAGE_SEED) -> bytes:
    """xorshift32 stream: deterministic, not starting with 'MDMP'."""
    x = seed & 0xFFFFFFFF
    words = []
    for _ in range((size + 3) // 4):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        words.append(x)
    data = struct.pack(f"<{len(words)}I", *words)[:size]
    assert data[:4] != b"MDMP"
    return data


def _write(outdir: str, name: str, data: bytes, meta: dict) -> list[str]:
    dmp = os.path.join(outdir, name + ".dmp")
    js = os.path.join(outdir, name + ".json")
    with open(dmp, "wb") as f:
        f.write(data)
    with open(js, "w", encoding="utf-8", newline="\n") as f:
        f.write(dump_json(meta))
    return [dmp, js]


def malformed(x64_win10_bytes: bytes,
              streams: list[tuple[str, int, int, int]]) -> dict[str, tuple[bytes, dict]]:
    """The malformed files, derived from the x64_win10 dump where one is needed."""
    out: dict[str, tuple[bytes, dict]] = {}
    out["empty"] = (b"", {
        "kind": "empty", "size": 0,
        "expect": "open fails: file is smaller than a MINIDUMP_HEADER (32 bytes)",
    })
    out["garbage"] = (garbage_bytes(), {
        "kind": "garbage", "size": GARBAGE_SIZE, "seed": GARBAGE_SEED,
        "first_bytes": garbage_bytes()[:8].hex(),
        "expect": "open fails: Signature is not 'MDMP' (0x504d444d)",
    })

    # Cut in the middle of the ModuleListStream's data.
    by_name = {s[0]: s for s in streams}
    _, mtype, mrva, msize = by_name["ModuleListStream"]
    cut = mrva + msize // 2
    status = []
    for name, stype, rva, size in streams:
        if rva + size <= cut:
            state = "intact"
        elif rva >= cut:
            state = "missing"
        else:
            state = "cut"
        status.append({"name": name, "type": stype, "rva": rva, "size": size, "state": state})
    out["truncated"] = (x64_win10_bytes[:cut], {
        "kind": "truncated", "source": "x64_win10",
        "original_size": len(x64_win10_bytes), "size": cut,
        "cut_stream": "ModuleListStream", "cut_stream_type": mtype,
        "cut_stream_rva": mrva, "cut_stream_size": msize, "cut_offset_in_stream": cut - mrva,
        "streams": status,
        "expect": "header and directory parse; ModuleListStream and every later "
                  "stream end past EOF",
    })

    # Header whose StreamDirectoryRva points past EOF.
    bad = bytearray(x64_win10_bytes)
    bad_rva = len(bad) + 0x1000
    struct.pack_into("<I", bad, 0x0C, bad_rva)
    nstreams = struct.unpack_from("<I", bad, 0x08)[0]
    out["bad_directory"] = (bytes(bad), {
        "kind": "bad_directory", "source": "x64_win10", "size": len(bad),
        "number_of_streams": nstreams, "stream_directory_rva": bad_rva,
        "expect": "open fails: stream directory "
                  f"({nstreams} x {fmt.DIRECTORY_ENTRY_SIZE} bytes) lies past EOF",
    })
    return out


SERIES_DIR = "series_with_corrupt"
SERIES_START = (2026, 3, 3, 8)


def _stream_status(streams: list[tuple[str, int, int, int]], cut: int) -> list[dict]:
    out = []
    for name, stype, rva, size in streams:
        state = "intact" if rva + size <= cut else ("missing" if rva >= cut else "cut")
        out.append({"name": name, "type": stype, "rva": rva, "size": size, "state": state})
    return out


def series_with_corrupt(outdir: str) -> list[str]:
    """Three good dumps of one process an hour apart, and the fourth dump cut inside
    its ModuleListStream (open fails), for batch processing of a folder."""
    folder = os.path.join(outdir, SERIES_DIR)
    os.makedirs(folder, exist_ok=True)
    written, good = [], []
    for hour in range(4):
        b, exp, rows = leaky_dump(hour, start=SERIES_START, small_per_hour=10, name="batch")
        data = b.to_bytes()
        path = os.path.join(folder, exp["scenario"] + ".dmp")
        if hour < 3:
            with open(path, "wb") as f:
                f.write(data)
            good.append((exp, rows))
        else:
            streams = b.layout().streams
            by_name = {st[0]: st for st in streams}
            _, mtype, mrva, msize = by_name["ModuleListStream"]
            cut = mrva + msize // 2
            with open(path, "wb") as f:
                f.write(data[:cut])
            corrupt = {
                "file": os.path.basename(path), "kind": "truncated", "original_size": len(data),
                "size": cut, "cut_stream": "ModuleListStream", "cut_stream_type": mtype,
                "cut_stream_rva": mrva, "cut_stream_size": msize,
                "cut_offset_in_stream": cut - mrva, "streams": _stream_status(streams, cut),
                "timestamp": exp["timestamp"],
                "expect": "open fails (truncated: ModuleListStream and every later stream end "
                          "past EOF); a batch over the folder reports this file as failed and "
                          "still processes the other three",
            }
        written.append(path)
    meta = {
        "folder": SERIES_DIR,
        "files": sorted(os.path.basename(p) for p in written),
        "good": [exp["scenario"] + ".dmp" for exp, _ in good],
        "good_file_sizes": {exp["scenario"] + ".dmp": os.path.getsize(
            os.path.join(folder, exp["scenario"] + ".dmp")) for exp, _ in good},
        "corrupt": [corrupt],
        "series": series_expected(good, name="batch"),
    }
    js = os.path.join(folder, SERIES_DIR + ".json")
    with open(js, "w", encoding="utf-8", newline="\n") as f:
        f.write(dump_json(meta))
    return written + [js]


def generate(outdir: str = DEFAULT_OUTDIR) -> list[str]:
    os.makedirs(outdir, exist_ok=True)
    written: list[str] = []
    x64 = None
    for name, make in SCENARIOS.items():
        b, expected = make()
        data = b.to_bytes()
        expected = dict(expected)
        expected["file_size"] = len(data)
        written += _write(outdir, name, data, expected)
        if name == "x64_win10":
            x64 = (data, b.layout().streams)
    assert x64 is not None
    for name, (data, meta) in malformed(*x64).items():
        written += _write(outdir, name, data, meta)
    written += series_with_corrupt(outdir)
    return written


def main(argv: list[str]) -> int:
    outdir = argv[1] if len(argv) > 1 else DEFAULT_OUTDIR
    for path in generate(outdir):
        print(f"{os.path.getsize(path):>8}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
