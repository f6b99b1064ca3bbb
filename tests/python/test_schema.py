"""The block column list is declared once (src/heap/columns.rs); everything that spells it out
is generated from that declaration and must be current."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import ntheap
from ntheap import _schema

from conftest import ROOT, fixture


def test_generated_sections_are_current() -> None:
    stale = [str(p) for p, text in _schema.targets(ROOT) if p.read_text(encoding="utf-8") != text]
    assert not stale, f"regenerate with `python -m ntheap._schema --write`: {stale}"


def test_blocks_have_exactly_the_schema_columns_and_dtypes() -> None:
    path, _ = fixture("heap_win10_1809_x64")
    table = ntheap.Dump(path).blocks()
    assert table.columns == ntheap.BLOCK_COLUMNS
    for name, dtype, doc in ntheap.BLOCK_SCHEMA:
        assert table[name].dtype == np.dtype(dtype), name
        assert doc and not doc.startswith(" "), name


def test_the_schema_has_the_nesting_and_allocation_columns() -> None:
    names = set(ntheap.BLOCK_COLUMNS)
    assert {"parent", "level", "is_allocation", "not_decoded", "stack_id"} <= names
    assert len(names) == len(ntheap.BLOCK_COLUMNS)


def test_python_does_not_restate_the_allocation_rule() -> None:
    # One definition of "a user allocation": the is_allocation column, computed in Rust. No
    # module of the package may filter blocks by a list of kind names of its own.
    src = Path(ntheap.__file__).parent
    offenders = [p.name for p in src.glob("*.py") if "USER_KINDS" in p.read_text(encoding="utf-8")]
    assert not offenders
