"""Grouping keys: what makes two allocations "the same thing" within a dump and across dumps.

Every analysis (top lists, diff, growth, plots, the report) groups allocations by one of:

* ``"stack"``: the allocation stack (+ust). Key: the stack's frame texts joined with "\\n",
  innermost first (stack ids are local to a dump, keys compare across dumps). Label: the first
  frame past the allocator (:mod:`ntheap.frames`), chosen from the structured frames (module,
  symbol, offset), never by re-parsing frame text. Blocks without a stack share the key ``""``,
  labelled ``(no stack)``.
* ``"type"``: leak-triage.md §2.4: the C++ type's decorated name (``.?AVSession@net@contoso@@``;
  the same in every image that defines the class) for blocks named by RTTI, else the content
  class (``ascii``, ``zero``, ...). Label: the undecorated type, or the class in parentheses.
  This is what works without +ust.
* ``"size"``: the requested size (key: its decimal digits; label ``64 bytes``).
* ``"content"``: the content class alone (leak-triage.md §3).

:func:`group` returns per-block codes into the distinct keys of one dump, with their labels and
modules; :data:`KEY_COLUMNS` names the key and label columns the DataFrames use for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

import numpy as np

from . import _core
from .frames import NO_STACK, NO_STACK_LABEL, FrameClassifier

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .allocations import Allocations

#: The groupings, and for each the (key column, label column) of the analysis DataFrames.
KEY_COLUMNS: Dict[str, Tuple[str, str]] = {
    "stack": ("stack_key", "top_frame"),
    "type": ("type_key", "type"),
    "size": ("size_key", "size"),
    "content": ("content_key", "content"),
}
CONTENT_NAMES: Dict[int, str] = dict(_core.CONTENT_CLASSES)


def check_by(by: str) -> Tuple[str, str]:
    """The (key column, label column) of grouping ``by``; ValueError for an unknown one."""
    if by not in KEY_COLUMNS:
        raise ValueError(f"by must be one of {', '.join(repr(k) for k in KEY_COLUMNS)}, not {by!r}")
    return KEY_COLUMNS[by]


def columns_of(df: "pd.DataFrame") -> Tuple[str, str, str]:
    """``(by, key column, label column)`` of an analysis DataFrame, from the key column it has."""
    for by, (key, label) in KEY_COLUMNS.items():
        if key in df.columns:
            return by, key, label
    raise ValueError(f"not a grouped analysis frame: none of {[k for k, _ in KEY_COLUMNS.values()]} in {list(df.columns)}")


@dataclass
class Grouping:
    """One dump's allocations grouped by a key.

    ``codes[i]`` is allocation i's index into ``keys`` (object array of distinct key strings);
    ``labels`` and ``modules`` give each key's readable label and module ("" when none).
    """

    by: str
    codes: np.ndarray
    keys: np.ndarray
    labels: np.ndarray
    modules: np.ndarray


def _objects(values: object) -> np.ndarray:
    seq = list(values)  # type: ignore[call-overload]
    out = np.empty(len(seq), dtype=object)
    out[:] = seq
    return out


def stack_keys(a: "Allocations", classifier: Optional[FrameClassifier] = None
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stack keys of ``a``: per stack id + 1 (0: no stack) the code of its key, and per key
    (in that order of first appearance) the key, its label and its module (those of its first
    stack id)."""
    import pandas as pd

    tops, mods = a.stacks.callers(classifier or FrameClassifier())
    per_id_keys = np.concatenate([_objects([NO_STACK]), np.asarray(a.stacks.keys(), dtype=object)])
    key_codes, uniq = pd.factorize(per_id_keys)
    first = np.unique(key_codes, return_index=True)[1]
    return (key_codes, np.asarray(uniq, dtype=object), _objects([NO_STACK_LABEL, *tops])[first],
            _objects([NO_STACK_LABEL, *mods])[first])


def type_key(a: "Allocations", type_id: int, content: int = 0) -> Tuple[str, str, str]:
    """Key, label and module of a block of ``a`` with ``type_id`` (-1: none, then its
    ``content`` class names it): the decorated name, the undecorated one (or the decorated one
    when undecorating failed) and the type's module; or the content class, it in parentheses
    and ""."""
    if type_id >= 0:
        decorated = a.types["decorated"][type_id]
        return decorated, a.types["name"][type_id] or decorated, a.types["module"][type_id]
    c = CONTENT_NAMES.get(content, str(content))
    return c, f"({c})", ""


def group(a: "Allocations", by: str, classifier: Optional[FrameClassifier] = None) -> Grouping:
    """Group the allocations of ``a`` by ``by`` ("stack", "type", "size" or "content")."""
    import pandas as pd

    check_by(by)
    t = a.table
    if by == "stack":
        sid = np.asarray(t["stack_id"]).astype(np.int64)
        n = len(a.stacks)
        if len(sid) and (int(sid.max()) >= n or int(sid.min()) < -1):
            bad = sid[(sid >= n) | (sid < -1)][0]
            raise ValueError(f"{a.path}: block refers to stack id {bad}, but the dump has {n} stacks")
        key_codes, keys, labels, modules = stack_keys(a, classifier)
        return Grouping(by, key_codes[sid + 1], keys, labels, modules)
    if by == "size":
        size = np.asarray(t["user_size"]).astype(np.int64)
        codes, uniq = pd.factorize(size)
        u = np.asarray(uniq, dtype=np.int64)
        return Grouping(by, codes, _objects(str(int(s)) for s in u), _objects(f"{int(s)} bytes" for s in u),
                        _objects("" for _ in u))
    content = np.asarray(t["content"]).astype(np.int64)

    def content_name(c: int) -> str:
        return CONTENT_NAMES.get(c, str(c))

    if by == "content":
        codes, uniq = pd.factorize(content)
        u = _objects(content_name(int(c)) for c in uniq)
        return Grouping(by, codes, u, u.copy(), _objects("" for _ in u))
    # One integer per row (a type id, or -1 - content class for an unnamed block), factorized
    # without a Python object per row; the strings are made once per distinct value.
    tid = np.asarray(t["type_id"]).astype(np.int64)
    ikey = np.where(tid >= 0, tid, -1 - content)
    codes, uniq = pd.factorize(ikey)
    named = [type_key(a, int(u)) if u >= 0 else type_key(a, -1, int(-1 - u)) for u in uniq]
    keys = _objects(k for k, _, _ in named)
    labels = _objects(label for _, label, _ in named)
    modules = _objects(m for _, _, m in named)
    # The same class in two images is two type ids but one key (its decorated name).
    kcodes, kuniq = pd.factorize(keys)
    first = np.unique(kcodes, return_index=True)[1] if len(kcodes) else np.zeros(0, dtype=np.intp)
    return Grouping(by, kcodes[codes] if len(codes) else codes, np.asarray(kuniq, dtype=object), labels[first], modules[first])
