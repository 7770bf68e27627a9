"""Frozen layers in the engine and the reference: the same behaviour, stated and tested.

A frozen hidden layer never learns. Both implementations skip it in ``consolidate`` (even
when it carries trails from an earlier life) and both refuse ``contrastive_step`` on it with
the same message, leaving every other layer untouched.
"""

import json
import struct

import numpy as np
import pytest
from test_reference import assert_same

import lpn
from lpn.reference import ReferenceNetwork


def refreeze(net: lpn.Network) -> lpn.Network:
    """The same state with hidden_signal="frozen": a layer that learned contrastively keeps
    its trails but becomes frozen (what a user gets by editing a saved config)."""
    blob = net.to_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    cfg = json.loads(header["__metadata__"]["config"])
    cfg["hidden_signal"] = "frozen"
    header["__metadata__"]["config"] = json.dumps(cfg)
    h = json.dumps(header).encode()
    return lpn.Network.from_bytes(struct.pack("<Q", len(h)) + h + blob[8 + n:])


@pytest.fixture
def trailed_frozen(rng):
    specs = [lpn.LayerSpec(12, 10, radius=0.3, activation="tanh"), lpn.LayerSpec(10, 3)]
    net = lpn.Network(specs, lpn.LearnConfig(hidden_signal="contrastive"), seed=4)
    for _ in range(30):
        net.contrastive_step(rng.normal(size=12), rng.normal(size=12) * 0.1, layer=0)
        net.learn(rng.normal(size=12), rng.normal(size=3))
    frozen = refreeze(net)
    assert frozen.layers[0].signal == "frozen"
    assert np.any(frozen.layers[0].synapses()["long_trail"] > 0)
    return frozen


def test_consolidate_skips_frozen_layers_in_both(trailed_frozen):
    net = trailed_frozen
    ref = ReferenceNetwork.from_network(net)
    before = net.layers[0].synapses()
    net.consolidate(1.0)
    ref.consolidate(1.0)
    after = net.layers[0].synapses()
    for name in ("consolidation", "anchor"):
        assert np.array_equal(after[name], before[name]), name
        assert np.array_equal(ref.layers[0].synapses()[name], before[name]), name
    # The output layer did consolidate, identically in both.
    assert np.any(net.layers[1].synapses()["consolidation"] > 0)
    assert_same(net, ref, "after consolidate")


def test_contrastive_step_on_frozen_layer_is_refused_by_both(trailed_frozen, rng):
    net = trailed_frozen
    ref = ReferenceNetwork.from_network(net)
    x = rng.normal(size=12)
    with pytest.raises(ValueError) as engine_err:
        net.contrastive_step(x, -x, layer=0)
    with pytest.raises(ValueError) as ref_err:
        ref.contrastive_step(x, -x, layer=0)
    assert str(engine_err.value) == str(ref_err.value)
    assert "frozen" in str(ref_err.value)
    # Nothing moved in either.
    assert_same(net, ref, "after the refused step")
    assert net.stats()["contrastive_steps"] == 30
