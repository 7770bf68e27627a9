#!/usr/bin/env bash
# Installs lpn with its test dependencies and runs every test: Rust (cargo test) and Python
# (pytest). This is the README's test command and what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q ".[test]"
cargo test -q
python3 -m pytest -q "$@"
