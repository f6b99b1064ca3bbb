"""Comparison over time: what grew between two dumps (UMDH's compare) and across a series, per
grouping key (``by="stack"``, ``"type"``, ``"size"`` or ``"content"``, see :mod:`ntheap.keys`).

Keys are matched across dumps by their text (the symbolized frames, the decorated type name,
the size), never by the dump-local ids. Without +ust, ``by="type"`` still finds what grows.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .allocations import Allocations, collect, is_pathlike
from .frames import FrameClassifier
from .keys import check_by, columns_of, group

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


DIFF_COLUMNS = ["top_frame", "bytes_before", "bytes_after", "bytes_delta", "count_before", "count_after", "count_delta", "stack_key"]


def diff_columns(by: str = "stack") -> List[str]:
    """The columns of :func:`diff` grouped ``by``."""
    key, label = check_by(by)
    return [label, *DIFF_COLUMNS[1:-1], key]


def diff(old: Any, new: Any, *, by: str = "stack", allocator_frames: Optional[Sequence[str]] = None,
         symbol_path: Optional[str] = None, progress: Optional[bool] = False) -> "pd.DataFrame":
    """What changed between two dumps of one process, per key (UMDH's compare for
    ``by="stack"``; ``"type"``, ``"size"`` and ``"content"`` work without +ust).

    Keys are matched by their text, not by id. Columns for ``by="stack"``: top_frame,
    bytes_before, bytes_after, bytes_delta, count_before, count_after, count_delta, stack_key;
    other keys have their own key and label columns (:data:`ntheap.keys.KEY_COLUMNS`). One row
    per key present in either dump, largest growth in bytes first. ``old`` and ``new`` are
    :class:`ntheap.Dump` objects or paths.

    Example:
        >>> d = ntheap.diff("samples/leaky-1.dmp", "samples/leaky-4.dmp")  # doctest: +SKIP
        >>> d[d.bytes_delta > 0].head()  # doctest: +SKIP
    """
    import pandas as pd

    key_col, label_col = check_by(by)
    before, after = collect([old, new], symbol_path=symbol_path, progress=progress)
    keys, labels, byt, cnt = _key_matrix([before, after], by, FrameClassifier(allocator_frames))
    df = pd.DataFrame(
        {
            "bytes_before": byt[0],
            "bytes_after": byt[1],
            "count_before": cnt[0],
            "count_after": cnt[1],
            key_col: pd.array(keys, dtype=object),
            label_col: pd.array(labels, dtype=object),
        }
    )
    df["bytes_delta"] = df["bytes_after"] - df["bytes_before"]
    df["count_delta"] = df["count_after"] - df["count_before"]
    df = df.sort_values(["bytes_delta", "count_delta", key_col], ascending=[False, False, True], kind="stable", ignore_index=True)
    return df[diff_columns(by)]


GROWTH_COLUMNS = ["time", "dump", "stack_key", "top_frame", "bytes", "count"]


def growth(dumps: Any, *, by: str = "stack", allocator_frames: Optional[Sequence[str]] = None,
           symbol_path: Optional[str] = None, progress: Optional[bool] = None, errors: str = "warn",
           workers: Optional[int] = None) -> "pd.DataFrame":
    """Bytes and count per key (allocation stack by default; ``by="type"`` works without +ust)
    in each dump of a series: a tidy DataFrame, ordered by dump time (then by the order given),
    with keys matched across dumps.

    Columns for ``by="stack"``: time (UTC), dump (path), stack_key, top_frame, bytes, count
    (other keys have their own key and label columns, :data:`ntheap.keys.KEY_COLUMNS`); dump,
    the key and the label are categoricals (each key is stored once however many dumps there are; group
    with ``observed=True``). Every stack seen in any dump has a row in every dump (0 where it holds nothing), so a plot shows it appear and
    disappear; within a dump, the stacks that grew most from the first dump to the last come
    first. ``dumps`` is a sequence of :class:`ntheap.Dump` objects, paths or folders (every
    ``*.dmp`` in it), or a :class:`ntheap.ScanResult`. Paths are read in parallel by
    :func:`ntheap.scan`. A dump that cannot be read is left out with a
    :class:`DumpSkippedWarning` (``errors="raise"`` raises instead, "ignore" is silent).

    Example:
        >>> g = ntheap.growth(sorted(glob.glob("samples/leaky-*.dmp")))  # doctest: +SKIP
        >>> g.pivot_table(index="top_frame", columns="time", values="bytes", aggfunc="sum")  # doctest: +SKIP
    """
    import pandas as pd

    key_col, label_col = check_by(by)
    if is_pathlike(dumps) or not isinstance(dumps, Iterable):
        dumps = [dumps]
    snaps = collect(list(dumps), symbol_path=symbol_path, progress=progress, errors=errors, workers=workers)
    order = sorted(range(len(snaps)), key=lambda i: (snaps[i].time is None, snaps[i].time or _EPOCH, i))
    snaps = [snaps[i] for i in order]
    if not snaps:
        dtypes = {"time": "datetime64[ns, UTC]", "dump": "category", key_col: "category", label_col: "category",
                  "bytes": np.int64, "count": np.int64}
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})  # type: ignore[call-overload]
    key_arr, labels, byt, cnt = _key_matrix(snaps, by, FrameClassifier(allocator_frames))
    # Most grown first, then biggest in the last dump, then by key.
    key_rank = np.argsort(np.argsort(key_arr, kind="stable"), kind="stable")
    rank = np.lexsort((key_rank, -byt[-1], -(byt[-1] - byt[0])))
    key_arr, labels, byt, cnt = key_arr[rank], labels[rank], byt[:, rank], cnt[:, rank]
    nd, nk = len(snaps), len(key_arr)
    times = pd.DatetimeIndex([pd.NaT if s.time is None else pd.Timestamp(s.time) for s in snaps]).tz_convert("UTC") \
        if any(s.time is not None for s in snaps) else pd.DatetimeIndex([pd.NaT] * nd, tz="UTC")
    paths = pd.Index(list(dict.fromkeys(s.path for s in snaps)), dtype=object)
    label_codes, label_values = pd.factorize(labels)
    return pd.DataFrame(
        {
            "time": np.repeat(times, nk),
            "dump": pd.Categorical.from_codes(np.repeat(paths.get_indexer([s.path for s in snaps]), nk), categories=paths),
            key_col: pd.Categorical.from_codes(np.tile(np.arange(nk), nd), categories=pd.Index(key_arr, dtype=object)),
            label_col: pd.Categorical.from_codes(np.tile(label_codes, nd), categories=pd.Index(np.asarray(label_values, dtype=object), dtype=object)),
            "bytes": byt.reshape(-1),
            "count": cnt.reshape(-1),
        }
    )


def _key_matrix(snaps: Sequence[Allocations], by: str, classifier: FrameClassifier
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(keys, labels, bytes, counts)``: every key of the dumps once with its label (from the
    first dump that has it), and per dump (rows) and key (columns) the bytes and block counts,
    zeros where a dump lacks the key."""
    import pandas as pd

    parts = [group(s, by, classifier) for s in snaps]
    offsets = np.cumsum([0] + [len(g.keys) for g in parts])
    pooled = np.concatenate([g.keys for g in parts]) if parts else np.zeros(0, dtype=object)
    pooled_labels = np.concatenate([g.labels for g in parts]) if parts else np.zeros(0, dtype=object)
    pool_codes, pool = pd.factorize(pooled)  # every distinct key once, hashed in C
    nk = len(pool)
    labels = np.empty(nk, dtype=object)
    labels[pool_codes[::-1]] = pooled_labels[::-1]  # the first occurrence wins
    byt = np.zeros((len(snaps), nk), dtype=np.int64)
    cnt = np.zeros((len(snaps), nk), dtype=np.int64)
    for i, (g, s) in enumerate(zip(parts, snaps)):
        ids = pool_codes[offsets[i]:offsets[i + 1]][g.codes]
        cnt[i] = np.bincount(ids, minlength=nk)
        byt[i] = np.bincount(ids, weights=np.asarray(s.table["user_size"]).astype(np.float64), minlength=nk).astype(np.int64)
    seen = (cnt > 0).any(axis=0)
    return np.asarray(pool, dtype=object)[seen], labels[seen], byt[:, seen], cnt[:, seen]


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


GROWING_COLUMNS = ["stack_key", "top_frame", "bytes_first", "bytes_last", "bytes_delta", "count_first", "count_last",
                   "count_delta", "bytes_per_hour", "count_per_hour", "never_fell"]


def growing(growth_df: "pd.DataFrame", top: Optional[int] = 5) -> "pd.DataFrame":
    """The keys of a :func:`growth` frame that gained bytes from the first dump to the last,
    most first.

    Columns (for a frame grouped by stack; others have their own key and label columns):
    stack_key, top_frame, bytes_first, bytes_last, bytes_delta, count_first, count_last,
    count_delta, bytes_per_hour and count_per_hour (least-squares slopes over the dump times;
    NaN when fewer than two dumps have distinct known times) and never_fell (the bytes did not
    drop from any dump to the next: the signature of a leak rather than a cache). ``top=None``
    keeps all of them.
    """
    import pandas as pd

    _, key_col, label_col = columns_of(growth_df)
    columns = [key_col, label_col, *GROWING_COLUMNS[2:]]
    if growth_df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    dump_codes, dumps = pd.factorize(growth_df["dump"])
    key_codes, keys = pd.factorize(growth_df[key_col])
    bv = np.zeros((len(keys), len(dumps)), dtype=np.int64)
    cv = np.zeros((len(keys), len(dumps)), dtype=np.int64)
    np.add.at(bv, (key_codes, dump_codes), growth_df["bytes"].to_numpy(np.int64))
    np.add.at(cv, (key_codes, dump_codes), growth_df["count"].to_numpy(np.int64))
    first_row = np.unique(key_codes, return_index=True)[1]
    labels = growth_df[label_col].to_numpy(object)[first_row]
    times = growth_df.drop_duplicates("dump").set_index("dump")["time"].reindex(dumps)
    out = pd.DataFrame(
        {
            key_col: pd.array(np.asarray(keys, dtype=object), dtype=object),
            label_col: pd.array(labels, dtype=object),
            "bytes_first": bv[:, 0],
            "bytes_last": bv[:, -1],
            "bytes_delta": bv[:, -1] - bv[:, 0],
            "count_first": cv[:, 0],
            "count_last": cv[:, -1],
            "count_delta": cv[:, -1] - cv[:, 0],
            "bytes_per_hour": _slope_per_hour(times, bv),
            "count_per_hour": _slope_per_hour(times, cv),
            "never_fell": (np.diff(bv, axis=1) >= 0).all(axis=1),
        }
    )
    out = out[out["bytes_delta"] > 0].sort_values(["bytes_delta", "count_delta", key_col], ascending=[False, False, True], kind="stable", ignore_index=True)
    return out if top is None else out.head(top).reset_index(drop=True)


#: The earlier name of :func:`growing`.
growing_stacks = growing


def _slope_per_hour(times: "pd.Series", values: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``values`` against the dump times, per hour."""
    known = times.notna().to_numpy()
    if known.sum() < 2:
        return np.full(len(values), np.nan)
    hours = np.array([t.timestamp() for t in times[known]], dtype=np.float64) / 3600.0
    hours -= hours.mean()
    denom = float((hours**2).sum())
    if denom == 0.0:
        return np.full(len(values), np.nan)
    y = values[:, known].astype(np.float64)
    return ((y - y.mean(axis=1, keepdims=True)) @ hours) / denom
