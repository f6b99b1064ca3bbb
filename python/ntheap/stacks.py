"""``ntheap.StackTable``: the +ust allocation stacks of one dump, deduplicated and symbolized.

Every busy block of a +ust process points at the stack that allocated it. Blocks with the same
frames share one *stack id* (``Dump.blocks()["stack_id"]``; -1 for blocks without a stack).
The table holds each stack once, its frames in CSR form (``offsets`` into ``frame_address``),
and each distinct frame address symbolized once in Rust.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from . import _core
from .frames import FrameClassifier
from .table import Table

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

STACK_PROBLEM_NAMES: Dict[int, str] = dict(_core.STACK_PROBLEM_KINDS)
FRAME_SOURCE_NAMES: Dict[int, str] = dict(_core.FRAME_SOURCES)


def _objects(values: List[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class StackTable:
    """The distinct allocation stacks of a dump (``Dump.stacks()``).

    Attributes (numpy arrays, one entry per stack unless said otherwise):
        stack_id: 0 .. len-1 (int32), the ids ``Dump.blocks()["stack_id"]`` refers to.
        offsets: ``len + 1`` offsets into ``frame_address`` (uint32).
        depth: number of frames (uint16).
        frame_address: every stack's frames back to back, innermost first (uint64).
        trace_entry: the first ``_RTL_STACK_TRACE_ENTRY`` found with these frames (uint64).

    Example:
        >>> stacks = dump.stacks()  # doctest: +SKIP
        >>> stacks.text(0)  # doctest: +SKIP
        ['halcon!HXmalloc+0x8b', 'halcon!HXAllocRLTmp+0x265d', ...]
        >>> stacks.frames().to_pandas()  # doctest: +SKIP
    """

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.offsets: np.ndarray = columns["offsets"]
        self.depth: np.ndarray = columns["depth"]
        self.frame_address: np.ndarray = columns["frame_address"]
        self.trace_entry: np.ndarray = columns["trace_entry"]
        self.stack_id: np.ndarray = np.arange(len(self.depth), dtype=np.int32)
        self.entries_read: int = int(columns.get("entries_read", 0))
        self._frame_index: np.ndarray = columns["frame_index"].astype(np.intp)
        self._keys = _objects(list(columns["keys"]))
        self._u_address: np.ndarray = columns["unique_address"]
        self._u_module = _objects(list(columns["unique_module"]))
        self._u_symbol = _objects(list(columns["unique_symbol"]))
        self._u_offset: np.ndarray = columns["unique_offset"]
        self._u_text = _objects(list(columns["unique_text"]))
        self._u_jit: np.ndarray = columns["unique_jit_or_unknown"]
        self._u_source: np.ndarray = columns["unique_source"]
        self._problems: Dict[str, Any] = dict(columns["problems"])

    @classmethod
    def from_keys(cls, keys: "Sequence[str]") -> "StackTable":
        """A table of stacks known only by their keys (frame texts joined with "\\n", innermost
        first): each frame's module, symbol and offset are read back from its text
        (:func:`ntheap.frames.split_frame`); addresses are unknown (0). For hand-made data and
        keys saved elsewhere; a dump's own table comes from ``Dump.stacks()``."""
        import re

        from .frames import split_frame

        texts: List[str] = []
        index: Dict[str, int] = {}
        frame_index: List[int] = []
        offsets = [0]
        for key in keys:
            frames = [f for f in str(key).split("\n") if f.strip()] if key else []
            for f in frames:
                frame_index.append(index.setdefault(f, len(index)))
                if index[f] == len(texts):
                    texts.append(f)
            offsets.append(len(frame_index))
        modules, symbols, offs = [], [], []
        for t in texts:
            module, symbol = split_frame(t)
            m = re.search(r"\+(?:0x)?([0-9a-f`]+)$", t.strip(), re.IGNORECASE)
            modules.append(module or None)
            symbols.append(symbol or None)
            offs.append(int(m.group(1).replace("`", ""), 16) if m and module else 0)
        n = len(texts)
        empty_problems: Dict[str, Any] = {k: np.zeros(0, dtype=np.uint64) for k in ("trace_entry", "heap", "block")}
        empty_problems.update({"block_count": np.zeros(0, dtype=np.uint64), "kind": np.zeros(0, dtype=np.uint8),
                               "stack_id": np.zeros(0, dtype=np.int32), "detail": []})
        return cls({
            "offsets": np.asarray(offsets, dtype=np.uint32),
            "depth": np.diff(np.asarray(offsets, dtype=np.int64)).astype(np.uint16),
            "frame_address": np.zeros(len(frame_index), dtype=np.uint64),
            "trace_entry": np.zeros(len(keys), dtype=np.uint64),
            "frame_index": np.asarray(frame_index, dtype=np.uint32),
            "keys": list(keys),
            "unique_address": np.zeros(n, dtype=np.uint64),
            "unique_module": modules,
            "unique_symbol": symbols,
            "unique_offset": np.asarray(offs, dtype=np.uint64),
            "unique_text": texts,
            "unique_jit_or_unknown": np.array([m is None for m in modules], dtype=bool),
            "unique_source": np.zeros(n, dtype=np.uint8),
            "problems": empty_problems,
        })

    def __len__(self) -> int:
        return len(self.depth)

    def _check(self, stack_id: int) -> int:
        i = int(stack_id)
        if not 0 <= i < len(self):
            raise IndexError(f"stack id {stack_id} is not in 0..{len(self) - 1}")
        return i

    def text(self, stack_id: int) -> List[str]:
        """The frames of one stack as the debugger prints them, innermost first."""
        i = self._check(stack_id)
        idx = self._frame_index[self.offsets[i]:self.offsets[i + 1]]
        return [str(t) for t in self._u_text[idx]]

    def addresses(self, stack_id: int) -> np.ndarray:
        """The return addresses of one stack, innermost first."""
        i = self._check(stack_id)
        return self.frame_address[self.offsets[i]:self.offsets[i + 1]]

    def keys(self) -> np.ndarray:
        """One string per stack: its frame texts joined with "\\n", innermost first.

        Stack ids are local to a dump; this key is what identifies the same stack in another dump
        of the same process (same modules, same symbols).
        """
        return self._keys

    def callers(self, classifier: Optional[FrameClassifier] = None) -> "tuple[List[str], List[str]]":
        """Per stack: the text and module of its first frame past the allocator (see
        :mod:`ntheap.frames`), judged on the frames' module, symbol and offset."""
        return (classifier or FrameClassifier()).callers(self._u_module, self._u_symbol, self._u_offset, self._u_text,
                                                          self._frame_index, self.offsets)

    def frames(self) -> Table:
        """Every frame of every stack, one row each (long form).

        Columns: stack_id, depth (0 = the innermost frame, the allocator), address, module,
        symbol, offset, text, jit_or_unknown and source ("pdb", "export", "module", "none").
        """
        stack_id = np.repeat(self.stack_id, self.depth.astype(np.intp))
        starts = np.repeat(self.offsets[:-1].astype(np.int64), self.depth.astype(np.intp))
        depth = (np.arange(len(self.frame_address), dtype=np.int64) - starts).astype(np.uint16)
        idx = self._frame_index
        return Table(
            "stack_frames",
            {
                "stack_id": stack_id,
                "depth": depth,
                "address": self.frame_address,
                "module": self._u_module[idx],
                "symbol": self._u_symbol[idx],
                "offset": self._u_offset[idx],
                "text": self._u_text[idx],
                "jit_or_unknown": self._u_jit[idx],
                "source": _objects([FRAME_SOURCE_NAMES[int(s)] for s in self._u_source[idx]]),
            },
        )

    def problems(self) -> Table:
        """Trace entries that could not be used as they are, one row per entry.

        Columns: trace_entry, heap, block (the first block pointing at it), block_count, kind
        (code; ``kind_name``: not_captured, bad_frame_count, depth_fallback, table_full),
        stack_id (-1, except for depth_fallback, whose stack was kept) and detail.
        """
        p = dict(self._problems)
        p["kind_name"] = _objects([STACK_PROBLEM_NAMES.get(int(k), str(k)) for k in p["kind"]])
        p["detail"] = _objects(list(p["detail"]))
        order = ["trace_entry", "heap", "block", "block_count", "kind", "kind_name", "stack_id", "detail"]
        return Table("stack_problems", {k: p[k] for k in order})

    def to_pandas(self) -> "pd.DataFrame":
        """One row per stack: stack_id, depth, trace_entry, top (the innermost frame) and key."""
        import pandas as pd

        first = self._frame_index[self.offsets[:-1].astype(np.intp)] if len(self) else np.empty(0, dtype=np.intp)
        return pd.DataFrame(
            {
                "stack_id": self.stack_id,
                "depth": self.depth,
                "trace_entry": self.trace_entry,
                "top": self._u_text[first],
                "key": self._keys,
            }
        )

    def __repr__(self) -> str:
        return (
            f"<StackTable: {len(self)} stacks, {len(self.frame_address)} frames "
            f"({len(self._u_address)} distinct addresses), {len(self._problems['kind'])} problems>"
        )

    def _repr_html_(self) -> str:
        """Notebook view: the counts, then the first 20 stacks with the frame that asked for the
        memory (the first past the allocator) and their frames."""
        import html

        head = f"<p><b>{html.escape(repr(self))}</b></p>"
        if not len(self):
            return head + "<p>No allocation stacks: the process ran without +ust, or its trace database is not in the dump.</p>"
        shown = min(len(self), 20)
        callers = self.callers()[0]
        rows = "".join(
            f"<tr><td>{i}</td><td>{int(self.depth[i])}</td><td><code>{html.escape(callers[i])}</code></td>"
            f"<td><pre style='margin:0'>{html.escape(str(self._keys[i]))}</pre></td></tr>"
            for i in range(shown)
        )
        more = f"<p>{len(self) - shown} more stacks; <code>to_pandas()</code> lists them all.</p>" if len(self) > shown else ""
        return (
            head + "<table><thead><tr><th>stack_id</th><th>depth</th><th>allocated by</th><th>frames (innermost first)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{more}"
        )
