"""lpn.RecallMemory: API, validation (errors leave state unchanged), reinforcement, tiers,
exact forgetting, persistence and thread safety."""

import copy
import os
import pickle
import re
import threading

import numpy as np
import pytest

import lpn
from lpn.encoders import HashedNgramEncoder
from lpn.memory import RecallMemory


def data(n, dim, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.fixture
def mem():
    m = RecallMemory(16, code_dim=32, seed=3)
    m.observe(data(20, 16), now=0.0)
    return m


def test_observe_recall_shapes_and_self_recall(mem):
    X = data(20, 16)
    assert len(mem) == 20 and mem.ids.tolist() == list(range(20))
    ids, scores = mem.recall(X[4], k=3, now=0.0)
    assert ids.shape == (3,) and scores.dtype == np.float32 and ids[0] == 4
    assert np.all(np.diff(scores) <= 0)
    ids, scores = mem.recall(X, k=5, now=0.0)
    assert ids.shape == (20, 5) and (ids[:, 0] == np.arange(20)).all()
    ids, _ = mem.recall(X[:2], k=100, now=0.0)
    assert ids.shape == (2, 20)
    new = mem.observe(data(2, 16, 1), ids=[100, 70], now=1.0)
    assert new.tolist() == [100, 70] and 100 in mem and len(mem) == 22
    assert 99 not in mem and "a" not in mem and -1 not in mem
    assert mem.observe(data(1, 16, 2)[0], now=1.0).tolist() == [101]
    np.testing.assert_array_equal(mem.vector(70), data(2, 16, 1)[1])
    assert isinstance(lpn.RecallMemory(4), RecallMemory)


def test_score_is_code_cosine(mem):
    X = data(20, 16)
    s = mem.score(X[0], X[:5])
    assert s.shape == (5,) and np.argmax(s) == 0 and s[0] <= 1.0 + 1e-6
    # Without bonuses, recall scores are exactly these cosines.
    m = RecallMemory(16, code_dim=32, seed=3, strength_weight=0.0)
    m.observe(X, now=0.0)
    ids, scores = m.recall(X[0], k=5, now=0.0)
    np.testing.assert_array_equal(scores, m.score(X[0], X[ids.astype(int)]))


@pytest.mark.parametrize("call, exc, match", [
    (lambda m: m.observe(np.ones((2, 15)), now=0.0), ValueError, "dim = 16"),
    (lambda m: m.observe(np.full((1, 16), np.nan), now=0.0), ValueError, "finite"),
    (lambda m: m.observe(np.zeros(16), now=0.0), ValueError, "all zeros"),
    (lambda m: m.observe(np.ones((2, 16)), ids=[1, 50], now=0.0), ValueError, "already stored"),
    (lambda m: m.observe(np.ones((2, 16)), ids=[50, 50], now=0.0), ValueError, "twice"),
    (lambda m: m.observe(np.ones((2, 16)), ids=[50], now=0.0), ValueError, "ids for 2"),
    (lambda m: m.observe(np.ones((1, 16)), ids=[-1], now=0.0), ValueError, ">= 0"),
    (lambda m: m.observe(["a"] * 16, now=0.0), TypeError, "numeric"),
    (lambda m: m.observe(np.ones(16), now=float("nan")), ValueError, "finite time"),
    (lambda m: m.observe(np.ones(16), now="soon"), TypeError, "now"),
    (lambda m: m.recall(np.ones(16), k=0, now=0.0), ValueError, "positive"),
    (lambda m: m.recall(np.ones(16), k=-3, now=0.0), ValueError, "positive"),
    (lambda m: m.recall(np.ones(16), k=2.5, now=0.0), TypeError, "int"),
    (lambda m: m.recall(np.ones(17), now=0.0), ValueError, "dim = 16"),
    (lambda m: m.recall(np.full(16, np.inf), now=0.0), ValueError, "finite"),
    (lambda m: m.score(np.ones((2, 16)), np.ones((2, 16))), ValueError, "one query"),
    (lambda m: m.reinforce([1, 999], now=1.0), ValueError, "unknown id 999"),
    (lambda m: m.reinforce([1.5], now=1.0), TypeError, "integers"),
    (lambda m: m.forget([3, 999]), ValueError, "unknown id 999"),
    (lambda m: m.decay(threshold=1.5, now=1.0), ValueError, r"\[0, 1\]"),
    (lambda m: m.info(999, now=0.0), ValueError, "unknown id"),
])
def test_bad_input_is_an_error_and_changes_nothing(mem, call, exc, match):
    before = mem.to_bytes()
    with pytest.raises(exc, match=match):
        call(mem)
    assert mem.to_bytes() == before


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="positive"):
        RecallMemory(0)
    with pytest.raises(TypeError):
        RecallMemory(8, code_dim=2.0)
    with pytest.raises(ValueError, match="unknown field"):
        RecallMemory(8, nonsense=1)
    with pytest.raises(ValueError, match="episodic_uses"):
        RecallMemory(8, episodic_uses=4, semantic_uses=2)
    with pytest.raises(TypeError, match="clock"):
        RecallMemory(8, clock=3)


def test_co_access_ranks_partners_higher():
    X = data(40, 16, 5)
    m = RecallMemory(16, code_dim=32, seed=1, strength_weight=0.0)
    m.observe(X, now=0.0)
    ids, _ = m.recall(X[0], k=40, now=0.0)
    partner = int(ids[6])
    for _ in range(3):
        m.reinforce([0, partner], now=1.0)
    assert m.link(0, partner) == pytest.approx(0.875)
    after, _ = m.recall(X[0], k=40, now=1.0)
    assert list(after).index(partner) < 6
    # Symmetric: item 0 also rises for the partner's query.
    m2 = RecallMemory(16, code_dim=32, seed=1, strength_weight=0.0)
    m2.observe(X, now=0.0)
    r0 = list(m2.recall(X[partner], k=40, now=0.0)[0]).index(0)
    r1 = list(m.recall(X[partner], k=40, now=1.0)[0]).index(0)
    assert r1 < r0


def test_tier_curves_match_formulas():
    m = RecallMemory(8, code_dim=8, seed=0, working_tau=100.0, episodic_tau=1000.0,
                     semantic_tau=50.0, semantic_alpha=0.7, episodic_uses=1, semantic_uses=3)
    ids = m.observe(data(3, 8), now=0.0)
    m.reinforce([1], now=0.0)
    for _ in range(3):
        m.reinforce([2], now=0.0)
    assert [m.info(i, now=0.0)["tier"] for i in ids] == ["working", "episodic", "semantic"]
    t = np.array([0.0, 10.0, 100.0, 1e3, 1e4])
    got = np.array([m.strength(ids, now=s) for s in t])
    np.testing.assert_allclose(got[:, 0], np.exp(-t / 100.0), rtol=1e-12)
    np.testing.assert_allclose(got[:, 1], np.exp(-t / 1000.0), rtol=1e-12)
    np.testing.assert_allclose(got[:, 2], (1 + t / 50.0) ** -0.7, rtol=1e-12)
    # decay forgets exactly the items below the threshold.
    assert m.decay(threshold=0.05, now=1e3).tolist() == [0]
    assert len(m) == 2


def test_clock_is_used_when_now_is_not_given():
    t = [0.0]
    m = RecallMemory(8, code_dim=8, clock=lambda: t[0])
    (i,) = m.observe(data(1, 8))
    t[0] = 3600.0
    assert m.info(int(i))["strength"] == pytest.approx(np.exp(-1.0))
    m.reinforce([i])
    assert m.info(int(i))["last_access"] == 3600.0


def test_forget_removes_item_and_its_contribution():
    X = data(10, 16, 7)
    a = RecallMemory(16, code_dim=32, seed=2)
    a.observe(X, now=0.0)
    for t in range(6):
        a.reinforce([2, 3], now=float(t))
    a.forget([3, 8])
    keep = [i for i in range(10) if i not in (3, 8)]
    b = RecallMemory(16, code_dim=32, seed=2)
    b.observe(X[keep], ids=keep, now=0.0)
    for t in range(6):
        b.reinforce([2], now=float(t))
    Q = data(6, 16, 9)
    for x, y in zip(a.recall(Q, k=8, now=9.0), b.recall(Q, k=8, now=9.0)):
        np.testing.assert_array_equal(x, y)
    assert 3 not in set(a.recall(X[3], k=8, now=9.0)[0].tolist())
    with pytest.raises(ValueError):
        a.link(2, 3)


def test_save_load_pickle_exact_and_deterministic(tmp_path, mem):
    mem.reinforce([1, 2], now=5.0)
    raw = mem.to_bytes()
    assert raw == mem.to_bytes()
    path = mem.save(tmp_path / "m.safetensors")
    back = RecallMemory.load(path)
    assert back.to_bytes() == raw
    # A file that is not a memory: the error names the path as text, for a bytes path too.
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a memory")
    with pytest.raises(ValueError, match=f"^{re.escape(str(bad))}: not a readable lpn memory file"):
        RecallMemory.load(os.fsencode(bad))
    for other in (pickle.loads(pickle.dumps(mem)), copy.deepcopy(mem)):
        assert other.to_bytes() == raw
    X = data(3, 16, 4)
    mem.observe(X, now=6.0)
    back.observe(X, now=6.0)
    mem.forget([5])
    back.forget([5])
    assert mem.to_bytes() == back.to_bytes()
    assert RecallMemory(16, code_dim=32, seed=3).to_bytes() == RecallMemory(
        16, code_dim=32, seed=3).to_bytes()
    for bad in (raw[:100], b"x" * 64, lpn.Network([lpn.LayerSpec(2, 2)]).to_bytes()):
        with pytest.raises(ValueError):
            RecallMemory.from_bytes(bad)
    with pytest.raises(TypeError):
        RecallMemory.from_bytes("text")


def test_threads_share_one_memory():
    m = RecallMemory(16, code_dim=32, seed=0)
    m.observe(data(200, 16), now=0.0)
    Q = data(20, 16, 1)
    want = m.recall(Q, k=5, now=0.0)
    errors = []

    def reader():
        try:
            for _ in range(20):
                ids, scores = m.recall(Q, k=5, now=0.0)
                assert ids.shape == (20, 5) and (np.diff(scores, axis=1) <= 0).all()
                assert (ids[:, 0] == want[0][:, 0]).mean() > 0.5
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def writer(base):
        try:
            for j in range(10):
                m.observe(data(1, 16, 1000 + base + j) * 10, ids=[10_000 + base + j], now=1.0)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=reader) for _ in range(3)]
    ts += [threading.Thread(target=writer, args=(b,)) for b in (0, 100)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert len(m) == 220
    # Readers alone see one state: identical answers from every thread.
    out = [None] * 4

    def read(j):
        out[j] = m.recall(Q, k=5, now=0.0)

    ts = [threading.Thread(target=read, args=(j,)) for j in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for o in out[1:]:
        np.testing.assert_array_equal(o[0], out[0][0])
        np.testing.assert_array_equal(o[1], out[0][1])


def test_text_encoder_is_stable_and_similar_texts_are_close():
    enc = HashedNgramEncoder(dim=128)
    a, b, c = enc(["reset my password", "password reset please", "quarterly tax report"])
    assert a.shape == (128,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert a @ b > a @ c
    np.testing.assert_array_equal(enc("reset my password"), a)
    assert enc([]).shape == (0, 128)
    with pytest.raises(TypeError):
        enc.encode_one(3)


def test_same_answers_and_bytes_for_any_thread_count():
    X = data(5000, 8, 11)  # more rows than one scan chunk: the scan really splits
    Q = data(70, 8, 12)
    out = []
    for n in (1, 2):
        lpn.set_num_threads(n)
        try:
            m = RecallMemory(8, code_dim=16, seed=4, radius=0.1, repeats=1)
            m.observe(X, now=0.0)
            m.reinforce([1, 2, 3], now=5.0)
            out.append((m.recall(Q, k=7, now=9.0), m.to_bytes()))
        finally:
            lpn.set_num_threads(0)
    (a, ba), (b, bb) = out
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert ba == bb


def test_misaligned_vectors_and_ids_are_copied_not_refused():
    # np.frombuffer at an odd byte offset gives views the engine cannot read in place.
    X = data(5, 16, seed=4)
    buf = bytearray(X.nbytes + 1)
    xm = np.frombuffer(buf, dtype=np.float32, count=X.size, offset=1).reshape(5, 16)
    xm[...] = X
    ids = np.arange(100, 105, dtype=np.uint64)
    ibuf = bytearray(ids.nbytes + 1)
    im = np.frombuffer(ibuf, dtype=np.uint64, count=5, offset=1)
    im[...] = ids
    assert not xm.flags.aligned and not im.flags.aligned
    a, b = RecallMemory(16, code_dim=32, seed=3), RecallMemory(16, code_dim=32, seed=3)
    a.observe(X, ids=ids, now=0.0)
    b.observe(xm, ids=im, now=0.0)
    assert a.to_bytes() == b.to_bytes()
    np.testing.assert_array_equal(a.strength(ids, now=1.0), b.strength(im, now=1.0))
    np.testing.assert_array_equal(a.score(X[0], X), b.score(xm[0], xm))
