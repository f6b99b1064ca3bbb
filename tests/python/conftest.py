"""Shared test fixtures: the builder's dumps (tests/fixtures) and the real ones (../shared)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REAL = ROOT.parent / "shared" / "fixtures" / "real"

# The dump builder lives beside the tests; it never imports the package under test.
sys.path.insert(0, str(ROOT / "tests"))


def fixture(name: str) -> Tuple[Path, Dict[str, Any]]:
    """Path of a builder-made dump and the values the builder says a reader must report."""
    return FIXTURES / f"{name}.dmp", json.loads((FIXTURES / f"{name}.json").read_text())


def real_dump(name: str) -> Path:
    """Path of a real dump from ../shared/fixtures/real, or skip the test saying why."""
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared real-dump fixtures are not beside this checkout")
    return path
