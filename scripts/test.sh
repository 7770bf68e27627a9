#!/usr/bin/env bash
# Installs lpn with its test dependencies and runs every test: Rust (cargo test) and Python
# (pytest). This is the README's test command and what CI runs.
# LPN_WHEEL=path/to.whl tests that built wheel instead of building from source (CI uses it to
# test exactly the manylinux wheel it ships).
set -euo pipefail
cd "$(dirname "$0")/.."
# The distribution was called `lpn` before 0.1 was renamed `lpn-pheromone`: an old install's
# version-specific extension (_lpn.cpython-*.so) would shadow the new abi3 one.
python3 -m pip uninstall -q -y lpn >/dev/null 2>&1 || true
if [ -n "${LPN_WHEEL:-}" ]; then
    python3 -m pip install -q --force-reinstall --no-deps "$LPN_WHEEL"
    python3 -m pip install -q "${LPN_WHEEL}[test]"
else
    python3 -m pip install -q ".[test]"
fi
cargo test -q
python3 -m pytest -q "$@"
