#!/usr/bin/env bash
# The whole test suite: Rust (format, lints, tests) and Python (package build, pytest, stub check).
# Installs what it needs into the active Python environment first.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -r tests/requirements.txt

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy --all-targets --quiet --features python -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --quiet --features python
cargo test --quiet

# Build and install the package as a user does (one wheel build; its dependencies and extras
# come from tests/requirements.txt above, and pip check proves they satisfy the metadata).
python3 -m pip install --quiet --force-reinstall --no-deps .
python3 -m pip check

# pytest exits 5 when it collects no test; with set -e that fails the run, as it must.
# tests/python/test_notebooks.py executes every notebook under notebooks/ on a kernel of this
# Python and fails on the first cell that raises.
python3 -m pytest -q
python3 -m mypy python/ntheap --ignore-missing-imports
python3 -m mypy.stubtest ntheap._core --allowlist tests/stubtest-allowlist.txt
