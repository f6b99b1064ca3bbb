"""The block columns, from the one declaration in the Rust core (``_core.BLOCK_SCHEMA``).

The column list is declared once, in ``src/heap/columns.rs``. This module renders it into the
two places that spell it out for readers, so they cannot drift: the Columns table of
``docs/block-model.md`` and the ``_BlockColumns`` TypedDict of ``_core.pyi``. A test checks
both; after changing the schema, rewrite them with::

    python -m ntheap._schema --write
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import List, Tuple

from . import _core

#: (name, numpy dtype, meaning) of every column of ``Dump.blocks()``, in order.
BLOCK_SCHEMA: List[Tuple[str, str, str]] = [(c[0], c[1], c[2]) for c in _core.BLOCK_SCHEMA]
#: The columns stored per row (the others are derived on first use).
STORED_COLUMNS: List[str] = [c[0] for c in _core.BLOCK_SCHEMA if c[3]]
#: The column names, in order.
BLOCK_COLUMNS: List[str] = [c[0] for c in BLOCK_SCHEMA]
#: The columns ``Dump.blocks()`` computes on first access (the leak-triage passes).
LAZY_COLUMNS: List[str] = [c[0] for c in _core.TRIAGE_SCHEMA]

_DOC_BEGIN = "<!-- BEGIN GENERATED: block columns (python -m ntheap._schema --write) -->"
_DOC_END = "<!-- END GENERATED: block columns -->"
_PYI_BEGIN = "# BEGIN GENERATED: block columns (python -m ntheap._schema --write)"
_PYI_END = "# END GENERATED: block columns"


def columns_markdown() -> str:
    """The Columns table of docs/block-model.md."""
    rows = ["| column | dtype | stored | meaning |", "|---|---|---|---|"]
    for name, dtype, doc, stored in _core.BLOCK_SCHEMA:
        how = "per row" if stored else "triage pass" if name in LAZY_COLUMNS else "derived"
        rows.append(f"| `{name}` | {dtype} | {how} | {' '.join(doc.split())} |")
    return "\n".join(rows)


def columns_typed_dict() -> str:
    """The ``_BlockColumns`` TypedDict of _core.pyi (the stored columns; the derived ones come
    one at a time from ``BlockSource``, the triage ones from ``_triage_column``)."""
    lines = ["class _BlockColumns(TypedDict):"]
    lines += [f"    {name}: npt.NDArray[np.{dtype if dtype != 'bool' else 'bool_'}]" for name, dtype, _, stored in _core.BLOCK_SCHEMA if stored]
    return "\n".join(lines)


def _splice(text: str, begin: str, end: str, body: str) -> str:
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers {begin!r} / {end!r} not found")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def targets(root: Path) -> List[Tuple[Path, str]]:
    """Each generated file under the repository ``root`` with the text it should have."""
    doc = root / "docs" / "block-model.md"
    pyi = root / "python" / "ntheap" / "_core.pyi"
    return [
        (doc, _splice(doc.read_text(encoding="utf-8"), _DOC_BEGIN, _DOC_END, columns_markdown())),
        (pyi, _splice(pyi.read_text(encoding="utf-8"), _PYI_BEGIN, _PYI_END, columns_typed_dict())),
    ]


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ntheap._schema", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: the current directory)")
    parser.add_argument("--write", action="store_true", help="rewrite the generated sections")
    args = parser.parse_args(argv)
    stale = []
    for path, text in targets(args.root):
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if args.write:
                path.write_text(text, encoding="utf-8", newline="\n")
    for path in stale:
        print(f"{'rewrote' if args.write else 'stale'}: {path}")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
