"""Small shared utilities for the tests."""

import lpn


def clone(net: lpn.Network) -> lpn.Network:
    """An independent copy of a network's full state, through the engine."""
    return lpn.Network._from_engine(net._engine.clone_engine(), net.specs, net.config)
