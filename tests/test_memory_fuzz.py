"""Fuzz the RecallMemory API (issue 9 applied to the memory binding).

Every call is generated from a mix of valid and invalid arguments (shapes, dtypes, NaN, huge
and negative numbers, unknown and duplicate ids, wrong types). A call may succeed, or raise
`ValueError`/`TypeError` with a message; anything else (OverflowError, RuntimeError, a panic)
fails, and a rejected call must leave the memory's state — its checkpoint bytes — unchanged.
`LPN_FUZZ_SCALE` multiplies the number of cases.
"""

import os
import random

import numpy as np
import pytest

import lpn
from lpn.memory import RecallMemory

SCALE = float(os.environ.get("LPN_FUZZ_SCALE", "1"))
DIM = 6

SCALARS = [None, True, False, -1, 0, 1, 2, 3, 7, 2**31, 2**63, 2**64, -2**64, 2**70, 0.5, 1.5,
           -0.0, float("nan"), float("inf"), -float("inf"), 1e308, 1e-320, "a", b"x", [], [1, 2],
           (1, 2), {}, object(), np.uint64(2**64 - 1), np.int8(-3), np.float32(np.nan),
           np.float64(0.25), 1j]


def arrays(r: random.Random, width: int):
    shapes = [(width,), (1, width), (3, width), (0, width), (width + 1,), (2, width - 1), (),
              (2, 2, width), (width, 1)]
    shape = r.choice(shapes)
    kind = r.choice(["f32", "f64", "int", "bool", "obj", "complex", "nan", "inf", "big", "zero",
                     "list", "str"])
    n = int(np.prod(shape)) if shape else 1
    if kind == "f32":
        return np.asarray(np.linspace(-1, 1, n) + r.random(), np.float32).reshape(shape)
    if kind == "f64":
        return (np.linspace(-2, 2, n) + r.random()).reshape(shape)
    if kind == "int":
        return (np.arange(n).reshape(shape) % 3) + 1
    if kind == "bool":
        return (np.arange(n) % 2 == 0).reshape(shape)
    if kind == "obj":
        return np.array([None] * n, dtype=object).reshape(shape)
    if kind == "complex":
        return np.ones(shape, np.complex64)
    if kind == "nan":
        a = np.ones(shape, np.float32)
        a.reshape(-1)[: max(1, n // 2)] = np.nan if n else 0
        return a
    if kind == "inf":
        return np.full(shape, np.inf)
    if kind == "big":
        return np.full(shape, 1e38)
    if kind == "zero":
        return np.zeros(shape, np.float32)
    if kind == "list":
        return [0.1] * width
    return "not an array"


def vectors(r: random.Random):
    return arrays(r, DIM) if r.random() < 0.7 else r.choice(SCALARS)


def ids(r: random.Random, m: RecallMemory):
    known = [int(i) for i in m.ids]
    choice = r.randrange(8)
    if choice == 0 and known:
        return r.choice(known)
    if choice == 1 and known:
        return r.sample(known, min(len(known), r.randint(1, 3)))
    if choice == 2:
        return [r.randrange(1000, 2000) for _ in range(r.randint(1, 3))]
    if choice == 3 and known:
        return [known[0], known[0]]
    if choice == 4:
        return np.array([r.randrange(50, 100)], dtype=r.choice([np.int64, np.uint64, np.int8]))
    if choice == 5:
        return [-1]
    if choice == 6:
        return [2**64 - 1]
    return r.choice(SCALARS)


def maybe_now(r: random.Random):
    return r.choice([None, None, 10.0, 1e9, float("nan"), float("inf"), -5, "now", True,
                     2**80, np.float32(3)])


def one_call(r: random.Random, m: RecallMemory):
    op = r.randrange(12)
    if op == 0:
        return m.observe(vectors(r), ids=ids(r, m) if r.random() < 0.5 else None,
                         now=maybe_now(r))
    if op == 1:
        return m.recall(vectors(r), k=r.choice(SCALARS + [1, 3, 10] * 3), now=maybe_now(r))
    if op == 2:
        return m.score(vectors(r), vectors(r))
    if op == 3:
        return m.reinforce(ids(r, m), now=maybe_now(r))
    if op == 4:
        return m.forget(ids(r, m))
    if op == 5:
        return m.decay(threshold=r.choice(SCALARS + [0.01, 0.2]), now=maybe_now(r))
    if op == 6:
        return m.strength(ids(r, m), now=maybe_now(r))
    if op == 7:
        return m.info(r.choice(SCALARS), now=maybe_now(r))
    if op == 8:
        return m.link(r.choice(SCALARS), r.choice(SCALARS))
    if op == 9:
        return m.vector(r.choice(SCALARS))
    if op == 10:
        kw = {r.choice(["radius", "lr", "budget", "repeats", "completion", "strength_weight",
                        "link_weight", "link_rate", "spread_seeds", "consolidation",
                        "episodic_uses", "working_tau", "semantic_alpha", "nonsense"]):
              r.choice(SCALARS)}
        return RecallMemory(r.choice([DIM, 0, -1, 2**64, 1.5, None]),
                            code_dim=r.choice([8, 0, 2**40, "8"]),
                            seed=r.choice([0, -1, 2**64, None, 1.5]), **kw)
    return RecallMemory.from_bytes(r.choice(SCALARS + [b"", bytes(16), b"\xff" * 40]))


def fresh() -> RecallMemory:
    m = RecallMemory(DIM, code_dim=8, seed=5, repeats=1, radius=0.5)
    m.observe(np.random.default_rng(0).normal(size=(6, DIM)), now=0.0)
    return m


def test_memory_api_fuzz_rejections_change_nothing():
    r = random.Random(99)
    m = fresh()
    state = m.to_bytes()
    n_cases = max(1, int(800 * SCALE))
    rejected = accepted = 0
    for case in range(n_cases):
        try:
            one_call(r, m)
        except (ValueError, TypeError) as exc:
            rejected += 1
            assert str(exc), f"case {case}: an error without a message"
            assert m.to_bytes() == state, f"case {case}: a rejected call changed the state"
            continue
        except Exception as exc:  # anything but ValueError/TypeError is the bug looked for
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
        accepted += 1
        state = m.to_bytes()
        if len(m) > 60 or len(m) == 0:  # keep the memory small and non-empty
            m = fresh()
            state = m.to_bytes()
    assert rejected > n_cases // 3 and accepted > n_cases // 20, (rejected, accepted)


def test_panic_is_an_error_and_poisons_only_after_an_update():
    m = fresh()
    with pytest.raises(RuntimeError, match="internal error"):
        m._engine._panic_for_tests(False)
    assert len(m) == 6  # a read-only panic leaves the memory usable
    with pytest.raises(RuntimeError, match="internal error"):
        m._engine._panic_for_tests(True)
    with pytest.raises(RuntimeError, match="unusable"):
        m.recall(np.ones(DIM))


def test_load_refuses_fifos_and_devices(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="regular file"):
        RecallMemory.load(fifo)
    with pytest.raises(ValueError, match="regular file"):
        RecallMemory.load("/dev/zero")
    with pytest.raises(TypeError):
        RecallMemory.load(3.5)
    m = fresh()
    m.save(str(tmp_path / "m.safetensors").encode())  # bytes paths work
    assert RecallMemory.load(tmp_path / "m.safetensors").to_bytes() == m.to_bytes()


def test_save_bytes_are_deterministic():
    a, b = fresh(), fresh()
    for m in (a, b):
        m.reinforce([0, 1], now=1.0)
        m.observe(np.ones((2, DIM)), now=2.0)
        m.forget([3])
    blobs = {a.to_bytes() for _ in range(20)} | {b.to_bytes()}
    assert len(blobs) == 1
    assert RecallMemory.from_bytes(blobs.pop()).to_bytes() == a.to_bytes()


def test_recall_in_slices_matches_one_by_one():
    m = fresh()
    q = np.random.default_rng(1).normal(size=(40, DIM))
    ids, scores = m.recall(q, k=4, now=1.0)
    for i in range(0, 40, 7):
        one_ids, one_scores = m.recall(q[i], k=4, now=1.0)
        assert (one_ids == ids[i]).all() and (one_scores == scores[i]).all()
    # A bad row anywhere is refused before any work, whatever the batch size.
    q[-1, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        m.recall(q, k=4)
    assert lpn.RecallMemory is RecallMemory
