"""consolidation_mode="cascade" (DESIGN §8, docs/rule-notes.md "Cascade consolidation"):
engine vs reference, checkpoints (old files still load), determinism, memory only when on,
graded consolidation that rises with use and falls without it, plasticity after 10 tasks,
and config validation."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

import lpn
from lpn.reference import ReferenceNetwork

FIXTURES = Path(__file__).parent / "fixtures"
CASCADE = dict(consolidation_mode="cascade", cascade_tau=5.0, cascade_ratio=2.0,
               cascade_half=0.05)


def teacher(rng, n_in, n_out, steps, scale=0.3):
    w = (rng.normal(size=(n_out, n_in)) * scale).astype(np.float32)
    x = rng.normal(size=(steps, n_in)).astype(np.float32)
    return x, (x @ w.T).astype(np.float32)


def assert_bit_equal(net, ref, where):
    for k, (layer, rlayer) in enumerate(zip(net.layers, ref.layers)):
        got, want = layer.synapses(), rlayer.synapses()
        assert sorted(got) == sorted(want), f"{where}: layer {k} columns"
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"{where} {k} {name}")
        s, rs = layer.state(), rlayer.state()
        for name in ("bias", "error_trace", "activity_trace"):
            np.testing.assert_array_equal(s[name], rs[name], err_msg=f"{where} {k} {name}")
        assert s["budget"] == rs["budget"] and s["expanding"] == rs["expanding"]


EQUIV = {
    "tanh_grid_masks_restructure": (
        [lpn.LayerSpec(36, 25, dims=2, radius=0.3, activation="tanh"),
         lpn.LayerSpec(25, 6, radius=0.4)],
        dict(lr=0.3, kappa_long=0.5, restructure_every=40, **CASCADE),
        True,
    ),
    "linear_ring_four_levels_budget": (
        [lpn.LayerSpec(40, 24, radius=0.12)],
        dict(budget=0.3, pull=0.3, **{**CASCADE, "cascade_levels": 4, "cascade_max": 0.95,
                                      "cascade_anchor_level": 4}),
        False,
    ),
}


@pytest.mark.parametrize("name", sorted(EQUIV))
def test_engine_matches_reference_bit_for_bit(name):
    specs, cfg, masks = EQUIV[name]
    net = lpn.Network(specs, config=lpn.LearnConfig(**cfg), seed=3)
    ref = ReferenceNetwork.from_network(net)
    rng = np.random.default_rng(len(name))
    x, t = teacher(rng, net.n_in, net.n_out, 300)
    t[150:] = teacher(rng, net.n_in, net.n_out, 150)[1]  # the loss jumps: budget expands
    for step in range(300):
        mask = rng.random(net.n_out) < 0.7 if masks and step % 3 else None
        assert net.learn(x[step], t[step], mask=mask) == ref.learn(x[step], t[step], mask=mask)
        if step % 100 == 99:
            assert_bit_equal(net, ref, f"step {step}")
    assert_bit_equal(net, ref, "end")
    syn = net.layers[-1].synapses()
    levels = [k for k in syn if k.startswith("cascade_")]
    assert len(levels) == cfg["cascade_levels"] if "cascade_levels" in cfg else 3
    assert np.all(syn["consolidation"] < cfg.get("cascade_max", 0.5))
    assert syn["consolidation"].max() > 0.3  # the run really consolidated


def _header(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n])


def _fixture_data(step0, n, n_in=16, n_out=3):
    """The stream examples/write_fixture.rs (on main at ea59ff0) trained the fixture on."""
    s = np.arange(step0, step0 + n)[:, None]
    x = ((s * n_in + np.arange(n_in)) * 7919 % 200).astype(np.float32) / np.float32(100) - 1
    t = ((s * n_out + np.arange(n_out)) * 104729 % 100).astype(np.float32) / np.float32(100)
    return x.astype(np.float32), (t - np.float32(0.5)).astype(np.float32)


def test_old_checkpoint_loads_and_mode_none_is_todays_rule():
    """tests/fixtures/main_ea59ff0*.lpn were written by main before the cascade existed
    (two layers, replay, restructuring, auto and task-boundary consolidation): they load,
    save back to the same bytes, and 30 more steps give main's bytes again."""
    old = (FIXTURES / "main_ea59ff0.lpn").read_bytes()
    net = lpn.Network.from_bytes(old)
    assert net.config.consolidation_mode == "none"
    assert not any(k.startswith("cascade") for k in net.layers[0].synapses())
    assert net.to_bytes() == old
    x, t = _fixture_data(50, 30)
    net.learn(x, t, replay=1)
    assert net.to_bytes() == (FIXTURES / "main_ea59ff0_after30.lpn").read_bytes()
    meta = _header(net.to_bytes())["__metadata__"]
    assert "cascade" not in meta["config"] and "consolidation_mode" not in meta["config"]


def _cascade_net(seed=0, **kw):
    specs = [lpn.LayerSpec(36, 25, dims=2, radius=0.3, activation="tanh"),
             lpn.LayerSpec(25, 6, radius=0.4)]
    cfg = lpn.LearnConfig(replay_capacity=16, restructure_every=30, **{**CASCADE, **kw})
    return lpn.Network(specs, config=cfg, seed=seed)


def test_checkpoint_round_trip_keeps_the_levels():
    net = _cascade_net()
    rng = np.random.default_rng(1)
    x, t = teacher(rng, 36, 6, 120)
    net.learn(x[:60], t[:60], replay=1)
    data = net.to_bytes()
    header = _header(data)
    assert {f"layers.{k}.cascade_{i}" for k in (0, 1) for i in (1, 2, 3)} <= set(header)
    back = lpn.Network.from_bytes(data)
    assert back.same_state(net) and back.to_bytes() == data
    for a, b in zip(net.layers, back.layers):
        sa, sb = a.synapses(), b.synapses()
        for k in ("cascade_1", "cascade_2", "cascade_3"):
            np.testing.assert_array_equal(sa[k], sb[k])
    net.learn(x[60:], t[60:], replay=1)
    back.learn(x[60:], t[60:], replay=1)
    assert back.to_bytes() == net.to_bytes()


def test_checkpoint_whose_levels_do_not_match_its_config_is_refused():
    data = _cascade_net().to_bytes()
    fewer = data.replace(b'\\"cascade_levels\\":3', b'\\"cascade_levels\\":2')
    assert fewer != data
    with pytest.raises(ValueError, match="cascade_3 is present"):
        lpn.Network.from_bytes(fewer)
    more = data.replace(b'\\"cascade_levels\\":3', b'\\"cascade_levels\\":4')
    with pytest.raises(ValueError, match="cascade_4 is missing"):
        lpn.Network.from_bytes(more)


def test_same_numbers_for_any_thread_count():
    rng = np.random.default_rng(2)
    x, t = teacher(rng, 36, 6, 80)
    before = lpn.get_num_threads()
    out = []
    try:
        for n in (1, 2, 3):
            lpn.set_num_threads(n)
            net = _cascade_net(seed=5)
            net.learn(x, t, replay=1)
            out.append(net.to_bytes())
    finally:
        lpn.set_num_threads(before)
    assert out[0] == out[1] == out[2]


def _bytes_per_slot(net):
    """Synapse-column bytes per arena slot, from the checkpoint (which stores every slot of
    every allocated column, no more)."""
    h = _header(net.to_bytes())
    cols = ("pre", "weight", "short_trail", "long_trail", "consolidation", "anchor",
            "cascade_1", "cascade_2", "cascade_3", "cascade_4")
    total = slots = 0
    for k in range(len(net.layers)):
        for c in cols:
            entry = h.get(f"layers.{k}.{c}")
            if entry is not None:
                a, b = entry["data_offsets"]
                total += b - a
        slots += h[f"layers.{k}.pre"]["shape"][0]
    return total / slots


def test_memory_only_when_on():
    specs = [lpn.LayerSpec(64, 64, radius=0.2)]
    off = lpn.Network(specs, seed=0)
    assert _bytes_per_slot(off) == 24  # pre + five f32 columns, as before the cascade
    for k in (1, 3, 4):
        on = lpn.Network(specs, config=lpn.LearnConfig(consolidation_mode="cascade",
                                                       cascade_levels=k), seed=0)
        assert _bytes_per_slot(on) == 24 + 4 * k
        assert sum(n.startswith("cascade_") for n in on.layers[0].synapses()) == k
    # Cascade parameters without the mode allocate nothing.
    idle = lpn.Network(specs, config=lpn.LearnConfig(cascade_levels=4, cascade_tau=7.0), seed=0)
    assert _bytes_per_slot(idle) == 24


def test_consolidation_rises_with_use_and_falls_when_use_stops():
    """Inputs 0-7 carry the task for 600 steps, then only inputs 8-15 do: the first group's
    consolidation rises, then falls back towards 0 (nothing is frozen for ever) while the
    second group's rises."""
    cfg = lpn.LearnConfig(consolidation_mode="cascade", cascade_tau=20.0, cascade_ratio=2.0,
                          cascade_half=0.05)
    net = lpn.Network(lpn.LayerSpec(16, 2, radius=1.0), config=cfg, seed=0)
    rng = np.random.default_rng(0)
    w = rng.normal(size=(2, 16)).astype(np.float32)

    def block(active, n):
        x = np.zeros((n, 16), dtype=np.float32)
        x[:, active] = rng.normal(size=(n, 8))
        return x, x @ w.T

    first, second = slice(0, 8), slice(8, 16)

    def c_mean(group):
        s = net.layers[0].synapses()
        return float(s["consolidation"][(s["pre"] >= group.start) & (s["pre"] < group.stop)].mean())

    assert c_mean(first) == 0.0
    trace = []
    for _ in range(6):
        net.learn(*block(first, 100))
        trace.append(c_mean(first))
    assert trace[0] < trace[1] < trace[2] < trace[3], trace  # then it levels off near its ceiling
    peak = trace[-1]
    assert peak > 0.3, trace  # cascade_max = 0.5
    assert c_mean(second) < 0.05
    for _ in range(15):
        net.learn(*block(second, 100))
    assert c_mean(first) < 0.1 * peak, (peak, c_mean(first))
    assert c_mean(second) > 0.3


def _ten_tasks_then_one(mode, seed=0, steps=300):
    """10 linear-regression tasks in sequence on one layer, then an 11th; returns the 11th
    task's test MSE before and after learning it."""
    rng = np.random.default_rng(seed)
    cfg = lpn.LearnConfig(consolidation_mode="cascade") if mode == "cascade" else None
    net = lpn.Network(lpn.LayerSpec(32, 8, radius=0.5), config=cfg, seed=seed)
    for k in range(11):
        w = rng.normal(size=(8, 32)) / np.sqrt(32)
        x = rng.normal(size=(steps, 32))
        if k == 10:
            xt = rng.normal(size=(500, 32))
            before = float(np.mean((net.predict(xt) - xt @ w.T) ** 2))
        net.learn(x, x @ w.T)
        if mode == "consolidate" and k < 10:
            net.consolidate(1.0)
    return before, float(np.mean((net.predict(xt) - xt @ w.T) ** 2))


def test_plasticity_survives_ten_tasks():
    """After 10 tasks, cascade consolidation (defaults) still learns an 11th to 35 % of its
    starting error in 300 steps (measured 27 %; without any consolidation 0.6 %: the cascade
    trades speed for stability, at most by 1 - cascade_max); consolidate(1) after each task
    freezes the layer (the 11th stays above 90 % of its starting error)."""
    before, after = _ten_tasks_then_one("cascade")
    assert after <= 0.35 * before, (before, after)
    f_before, f_after = _ten_tasks_then_one("consolidate")
    assert f_after >= 0.9 * f_before, (f_before, f_after)


@pytest.mark.parametrize("bad, match", [
    (dict(consolidation_mode="cascades"), "unknown consolidation_mode"),
    (dict(cascade_levels=0), "cascade_levels must lie in"),
    (dict(cascade_levels=5), "cascade_levels must lie in"),
    (dict(cascade_tau=0.5), "cascade_tau must be"),
    (dict(cascade_ratio=0.9), "cascade_ratio must be"),
    (dict(cascade_tau=1e20, cascade_ratio=1e10, cascade_levels=3), "must be <= 1e30"),
    (dict(cascade_max=1.0), "cascade_max must lie in"),
    (dict(cascade_max=-0.1), "cascade_max must lie in"),
    (dict(cascade_half=0.0), "cascade_half must be"),
    (dict(cascade_anchor_level=0), "cascade_anchor_level must lie in"),
    (dict(cascade_levels=2, cascade_anchor_level=3), "cascade_anchor_level must lie in"),
    (dict(consolidation_mode="cascade", auto_consolidate_every=10), "auto_consolidate_every"),
    (dict(consolidation_mode="cascade", rho_consolidation=0.99), "rho_consolidation"),
])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        lpn.LearnConfig(**bad)


def test_config_types_and_consolidate_refused_without_change():
    with pytest.raises(TypeError):
        lpn.LearnConfig(consolidation_mode=1)
    with pytest.raises(TypeError):
        lpn.LearnConfig(cascade_levels=2.0)
    net = _cascade_net()
    rng = np.random.default_rng(3)
    net.learn(*teacher(rng, 36, 6, 20))
    data = net.to_bytes()
    with pytest.raises(ValueError, match="cascade sets consolidation"):
        net.consolidate(1.0)
    assert net.to_bytes() == data
    ref = ReferenceNetwork.from_network(net)
    with pytest.raises(ValueError, match="cascade sets consolidation"):
        ref.consolidate(1.0)
