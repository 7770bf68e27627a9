"""API fuzz: thousands of generated calls with odd arguments. A call either works or raises
`ValueError`/`TypeError` — never anything else (no OverflowError, no panic, no hang) — and a
rejected call leaves the network bit for bit as it was (checked through its checkpoint bytes,
which are deterministic).

A plain seeded loop rather than hypothesis: ~2,500 calls in a few seconds. `LPN_FUZZ_SCALE`
multiplies the count.
"""

import math
import os
import random

import numpy as np
import pytest

import lpn

SCALE = float(os.environ.get("LPN_FUZZ_SCALE", "1"))
N_IN, N_OUT = 6, 4

SCALARS = [None, True, False, -1, 0, 1, 2, 3, 7, 2**31, 2**32 - 1, 2**63, 2**64, -2**64, 0.5,
           1.5, 1.99, 2.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e308, 1e-320, "a",
           b"x", [], [1, 2], (1, 2), {}, object(), np.uint64(2**64 - 1), np.int8(-3),
           np.float32(np.nan), np.float64(0.25), 1j]


def arrays(r: random.Random, width: int):
    shapes = [(width,), (1, width), (3, width), (0, width), (width + 1,), (2, width - 1), (),
              (2, 2, width), (width, 1)]
    shape = r.choice(shapes)
    kind = r.choice(["f32", "f64", "int", "bool", "obj", "complex", "nan", "inf", "big", "list",
                     "str"])
    n = int(np.prod(shape)) if shape else 1
    if kind == "f32":
        return np.asarray(np.linspace(-1, 1, n), np.float32).reshape(shape)
    if kind == "f64":
        return np.linspace(-2, 2, n).reshape(shape)
    if kind == "int":
        return np.arange(n).reshape(shape) % 3
    if kind == "bool":
        return (np.arange(n) % 2 == 0).reshape(shape)
    if kind == "obj":
        return np.array([None] * n, dtype=object).reshape(shape)
    if kind == "complex":
        return np.ones(shape, np.complex64)
    if kind == "nan":
        a = np.zeros(shape, np.float32)
        a.reshape(-1)[: max(1, n // 2)] = np.nan if n else 0
        return a
    if kind == "inf":
        return np.full(shape, np.inf)
    if kind == "big":
        return np.full(shape, 1e38)
    if kind == "list":
        return [0.1] * width
    return "not an array"


def value(r: random.Random, width: int):
    return arrays(r, width) if r.random() < 0.6 else r.choice(SCALARS)


def fresh():
    cfg = lpn.LearnConfig(replay_capacity=4, restructure_every=3, auto_consolidate_every=2)
    return lpn.Network([lpn.LayerSpec(N_IN, 8, radius=0.4, activation="tanh"),
                        lpn.LayerSpec(8, N_OUT, radius=0.5)], cfg, seed=3)


def spec_kwargs(r: random.Random) -> dict:
    kw = {"n_in": r.choice([1, 4, 9, 0, -1, 2**32, 2**64, 1.5, None]),
          "n_out": r.choice([1, 4, 9, 0, 2**40])}
    for name in ("dims", "radius", "fan_in", "growth_radius", "max_fan_in", "tag_threshold",
                 "in_shape", "out_shape", "activation", "bias", "periodic", "in_tags",
                 "out_tags", "tag_affinity"):
        if r.random() < 0.3:
            kw[name] = r.choice(SCALARS + [[0] * 4, [2**32 - 1] * 4, [[1.0]], (2, 2), "tanh"])
    return kw


CONFIG_FIELDS = ["lr", "bias_lr", "budget", "budget_min", "budget_max", "shrink", "grow",
                 "rho_short", "rho_long", "w_max", "eps", "replay_capacity", "grow_per_row",
                 "restructure_every", "hidden_signal", "pull", "conflict_ratio"]


def one_call(r: random.Random, net: lpn.Network, tmp_path):
    op = r.randrange(10)
    if op == 0:
        return net.learn(value(r, N_IN), value(r, N_OUT),
                         mask=value(r, N_OUT) if r.random() < 0.3 else None,
                         replay=r.choice(SCALARS) if r.random() < 0.5 else 0)
    if op == 1:
        return net.predict(value(r, N_IN), mask=value(r, N_OUT) if r.random() < 0.3 else None)
    if op == 2:
        return net.consolidate(r.choice(SCALARS))
    if op == 3:
        return net.contrastive_step(value(r, N_IN), value(r, N_IN), layer=r.choice(SCALARS))
    if op == 4:
        return net.checkpoint_every(r.choice(SCALARS), tmp_path / "ck", keep=r.choice(SCALARS))
    if op == 5:
        return lpn.Network([lpn.LayerSpec(**spec_kwargs(r))])
    if op == 6:
        kw = {f: r.choice(SCALARS) for f in r.sample(CONFIG_FIELDS, r.randint(1, 3))}
        return lpn.Network([lpn.LayerSpec(4, 4)], lpn.LearnConfig(**kw),
                           seed=r.choice(SCALARS))
    if op == 7:
        return lpn.Network.from_bytes(r.choice(SCALARS + [b"", bytes(16), b"\xff" * 40]))
    if op == 8:
        return net.layers[0].synapses() if r.random() < 0.5 else net.stats()
    return lpn.set_num_threads(r.choice(SCALARS))


# float64 values beyond float32's range are cast to inf (then refused as non-finite); failed
# automatic checkpoints warn. Neither is what this test looks for.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_api_fuzz_rejections_change_nothing(tmp_path):
    r = random.Random(1234)
    net = fresh()
    net.learn(np.ones((3, N_IN)), np.ones((3, N_OUT)))
    state = net.to_bytes()
    n_cases = max(1, int(2500 * SCALE))
    rejected = accepted = 0
    try:
        for case in range(n_cases):
            try:
                one_call(r, net, tmp_path)
            except (ValueError, TypeError):
                rejected += 1
                now = net.to_bytes()
                assert now == state, f"case {case}: a rejected call changed the state"
                continue
            except Exception as exc:
                pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
            accepted += 1
            net.checkpoint_every(None)
            state = net.to_bytes()
            out = net.predict(np.zeros(N_IN))
            assert out.shape == (N_OUT,)
            if not np.all(np.isfinite(out)):
                # Extreme but finite inputs (1e38) may overflow float32: start afresh.
                net = fresh()
                state = net.to_bytes()
    finally:
        lpn.set_num_threads(0)
    assert rejected > n_cases // 3 and accepted > n_cases // 20, (rejected, accepted)
    assert math.isfinite(rejected)
