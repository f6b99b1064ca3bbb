"""Every notebook under notebooks/ runs top to bottom without an error, on a kernel of the Python
that runs the tests (where ntheap is installed), and is checked in with its outputs stripped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest
from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's path-migration warning
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")


def _outputs(nb: Any) -> List[Dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "notebooks/ has no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert not _outputs(nb), f"{path.name} is checked in with outputs; clear them before committing"
    assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


# Runs in a child process: the kernel client's sockets and threads stay out of the test process
# (pytest turns their ResourceWarnings at interpreter exit into errors).
RUNNER = r"""
import json, os, sys, tempfile
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

src, dst = sys.argv[1], sys.argv[2]
root = tempfile.mkdtemp()
os.mkdir(os.path.join(root, "ntheap-tests"))
with open(os.path.join(root, "ntheap-tests", "kernel.json"), "w") as f:
    json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
               "display_name": "Python (ntheap tests)", "language": "python"}, f)
nb = nbformat.read(src, as_version=4)
km = KernelManager(kernel_name="ntheap-tests", kernel_spec_manager=KernelSpecManager(kernel_dirs=[root]))
client = NotebookClient(nb, km=km, timeout=300, resources={"metadata": {"path": os.path.dirname(src)}})
try:
    client.execute()
except CellExecutionError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
finally:
    nbformat.write(nb, dst)
"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path) -> None:
    """Every cell runs without an error, on a kernel of the Python that runs the tests (where
    ntheap is installed), whatever 'python3' means on the machine's PATH."""
    executed = tmp_path / path.name
    env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1")
    run = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(executed)], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, f"{path.name} failed:\n{run.stderr[-6000:]}"
    nb = nbformat.read(executed, as_version=4)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    warnings = [o["text"] for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr" and "Warning" in o["text"]]
    assert not warnings, warnings
    if path.name == "leak-investigation.ipynb":
        assert any("image/png" in o.get("data", {}) for o in outputs), "the growth plot was not shown"
        assert any("text/html" in o.get("data", {}) and "ScanResult" in o["data"]["text/html"] for o in outputs)
