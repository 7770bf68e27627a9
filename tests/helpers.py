"""Small shared utilities for the tests."""

import importlib.util
import os

import lpn


def clone(net: lpn.Network) -> lpn.Network:
    """An independent copy of a network's full state, through the engine."""
    return lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)


def load_script(name: str):
    """The module `scripts/{name}.py` (scripts are not a package), loaded afresh."""
    path = os.path.join(os.path.dirname(__file__), "..", "scripts", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"lpn_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
