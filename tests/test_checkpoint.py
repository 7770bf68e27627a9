"""Checkpoints: exact resume, atomic saves, pickling, series, and clear errors for bad files."""

import copy
import json
import os
import pathlib
import pickle
import struct

import numpy as np
import pytest

import lpn
from lpn import checkpoint as ckpt


def busy_config(**kw):
    """Every mechanism that carries state across steps switched on."""
    base = dict(restructure_every=13, replay_capacity=16, auto_consolidate_every=7,
                auto_threshold=0.05, replay_on_conflict=True, conflict_ratio=1.0,
                kappa_long=0.5)
    base.update(kw)
    return lpn.LearnConfig(**base)


def make_net(seed=3, **kw):
    specs = [lpn.LayerSpec(12, 16, radius=0.3, activation="tanh"),
             lpn.LayerSpec(16, 4, radius=0.4, max_fan_in=12)]
    return lpn.Network(specs, config=busy_config(**kw), seed=seed)


def data(n, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 12)).astype(np.float32)
    t = (r.random((n, 4)) < 0.3).astype(np.float32)
    m = r.random((n, 4)) < 0.7
    return x, t, m


def same_stats(a, b):
    # json spells NaN (unset goodness) the same on both sides, where == would not.
    return json.dumps(a.stats(), sort_keys=True) == json.dumps(b.stats(), sort_keys=True)


def train(net, x, t, m, batch=5):
    for k in range(0, len(x), batch):
        net.learn(x[k:k + batch], t[k:k + batch], mask=m[k:k + batch], replay=2)


def test_resume_is_bit_exact(tmp_path):
    x, t, m = data(300)
    straight = make_net()
    train(straight, x, t, m)
    st = straight.stats()
    assert st["replays"] > 0 and sum(lay["pruned_total"] + lay["grown_total"]
                                     for lay in st["layers"]) > 0

    first = make_net()
    train(first, x[:170], t[:170], m[:170])
    path = tmp_path / "net.safetensors"
    first.save(path)
    resumed = lpn.Network.load(path)
    assert resumed.same_state(first)
    assert resumed.config == first.config and resumed.specs == first.specs
    assert same_stats(resumed, first)
    train(resumed, x[170:], t[170:], m[170:])
    assert resumed.same_state(straight)
    np.testing.assert_array_equal(resumed.predict(x), straight.predict(x))
    assert same_stats(resumed, straight)


def test_everything_inspectable_survives(tmp_path):
    net = make_net()
    train(net, *data(120))
    net.contrastive_step(np.ones(12), -np.ones(12), layer=0)
    net.consolidate(0.5)
    back = lpn.Network.load(net.save(str(tmp_path / "a.safetensors")))
    for a, b in zip(net.layers, back.layers):
        for k, v in a.synapses().items():
            np.testing.assert_array_equal(v, b.synapses()[k])
        sa, sb = a.state(), b.state()
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k])
        fa, fb = a.feedback(), b.feedback()
        assert (fa is None) == (fb is None)
        if fa is not None:
            np.testing.assert_array_equal(fa, fb)
    for u, v in zip(net._engine.replay_buffer(), back._engine.replay_buffer()):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(net._engine.last_replayed(), back._engine.last_replayed())
    assert same_stats(net, back)


def test_fresh_and_configured_variants_round_trip():
    specs_2d = [lpn.LayerSpec(16, 9, dims=2, radius=0.4, in_tags=[0, 1] * 8,
                              out_tags=[0, 1, 0, 1, 0, 1, 0, 1, 0],
                              tag_affinity=[[1.0, 0.2], [0.7, 1.0]], activation="relu"),
                lpn.LayerSpec(9, 3, fan_in=4, bias=False, growth_radius=0.8)]
    for cfg in (lpn.LearnConfig(), lpn.LearnConfig(hidden_signal="contrastive", lr=0.1),
                lpn.LearnConfig(hidden_signal=("frozen",), bias_lr=0.25)):
        net = lpn.Network(specs_2d, config=cfg, seed=9)
        back = lpn.Network.from_bytes(net.to_bytes())
        assert back.same_state(net) and back.config == cfg and back.specs == net.specs


def test_pickle_and_copies_are_exact_and_independent():
    net = make_net()
    x, t, m = data(80)
    train(net, x, t, m)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net), copy.copy(net),
                  pickle.loads(pickle.dumps(net, protocol=2))):
        assert isinstance(other, lpn.Network)
        assert other.same_state(net)
        other.learn(x[:3], t[:3])
        assert not other.same_state(net)


def test_checkpointing_settings_do_not_travel_with_copies(tmp_path):
    net = make_net()
    net.checkpoint_every(10, tmp_path)
    assert copy.deepcopy(net)._checkpointer is None


def test_save_is_atomic_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net = make_net()
    net.save(path)
    before = path.read_bytes()
    train(net, *data(40))

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    for target in ("fsync", "replace"):
        with monkeypatch.context() as mp:
            mp.setattr(ckpt.os, target, boom)
            with pytest.raises(OSError, match="simulated"):
                net.save(path)
        assert path.read_bytes() == before
        assert sorted(os.listdir(tmp_path)) == ["net.safetensors"], "temp file left behind"
    assert lpn.Network.load(path).same_state(make_net())


def test_save_is_atomic_on_keyboard_interrupt(tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    make_net().save(path)
    before = path.read_bytes()
    real_fdopen = os.fdopen

    class Half:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, b):
            self.f.write(b[: len(b) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "fdopen", lambda fd, mode: Half(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        make_net(seed=4).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.safetensors"]


def test_paths_may_be_str_or_pathlike(tmp_path):
    net = make_net()
    p1 = net.save(str(tmp_path / "s.safetensors"))
    p2 = net.save(pathlib.Path(tmp_path) / "p.safetensors")
    assert lpn.Network.load(p1).same_state(lpn.Network.load(pathlib.Path(p2)))


def test_checkpoint_every_keeps_the_last_k_and_resumes(tmp_path):
    x, t, m = data(230)
    straight = make_net()
    train(straight, x, t, m, batch=7)

    net = make_net()
    net.checkpoint_every(50, tmp_path / "run", keep=2)
    train(net, x, t, m, batch=7)
    files = ckpt.list_checkpoints(tmp_path / "run")
    # Batches of 7 cross 50, 100, 150, 200 at samples 56, 105, 154, 203.
    assert [s for s, _ in files] == [154, 203]
    latest = lpn.Network.load_latest(tmp_path / "run")
    assert latest.stats()["samples"] == 203
    train(latest, x[203:], t[203:], m[203:], batch=7)
    assert latest.same_state(straight)

    net.checkpoint_every(None)
    net.learn(x[:60], t[:60])
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "run")] == [154, 203]


def test_checkpoint_pattern_and_keep_all(tmp_path):
    net = make_net()
    pattern = str(tmp_path / "sub" / "net-{step:06d}.lpn")
    net.checkpoint_every(10, pattern, keep=0)
    x, t, m = data(35)
    for k in range(35):
        net.learn(x[k], t[k])
    assert sorted(os.listdir(tmp_path / "sub")) == ["net-000010.lpn", "net-000020.lpn",
                                                    "net-000030.lpn"]
    assert lpn.Network.load_latest(pattern).stats()["samples"] == 30


def test_load_latest_skips_a_damaged_newest_file(tmp_path):
    net = make_net()
    net.checkpoint_every(5, tmp_path, keep=0)
    x, t, m = data(12)
    for k in range(12):
        net.learn(x[k], t[k])
    newest = ckpt.list_checkpoints(tmp_path)[-1][1]
    with open(newest, "r+b") as f:
        f.truncate(100)
    with pytest.warns(RuntimeWarning, match="skipping unreadable"):
        back = lpn.Network.load_latest(tmp_path)
    assert back.stats()["samples"] == 5
    with pytest.raises(FileNotFoundError):
        lpn.Network.load_latest(tmp_path / "nothing-here")


def test_checkpoint_every_validates():
    net = make_net()
    with pytest.raises(TypeError):
        net.checkpoint_every(2.5, "x")
    with pytest.raises(ValueError):
        net.checkpoint_every(-1, "x")
    with pytest.raises(ValueError):
        net.checkpoint_every(10, "x", keep=-1)
    with pytest.raises(ValueError, match="only one"):
        net.checkpoint_every(10, "x/{step}-{other}")


# -- bad files --------------------------------------------------------------------------------

def header_of(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return n, json.loads(blob[8:8 + n])


def with_header(blob, header):
    n, _ = header_of(blob)
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + blob[8 + n:]


def bad(blob, match):
    with pytest.raises(ValueError, match=match):
        lpn.Network.from_bytes(blob)


def test_truncated_file(tmp_path):
    blob = make_net().to_bytes()
    for cut in (0, 3, 8, 100, len(blob) // 2, len(blob) - 1):
        bad(blob[:cut], "truncated or corrupted")
    p = tmp_path / "t.safetensors"
    p.write_bytes(blob[:500])
    with pytest.raises(ValueError, match=str(p.name)):
        lpn.Network.load(p)


def test_foreign_files():
    bad(b"", "truncated")
    bad(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "not a readable lpn checkpoint")
    bad(pickle.dumps({"a": 1}), "not a readable")
    pytest.importorskip("safetensors")  # test-only: crafts foreign files
    from safetensors.numpy import save
    bad(save({"w": np.zeros(3, np.float32)}), "no __metadata__")
    bad(save({"w": np.zeros(3, np.float32)}, metadata={"format": "pt"}), "format is \"pt\"")
    bad(save({"w": np.zeros(3, np.float32)}, metadata={"x": "y"}), "no \"format\"")


def test_wrong_version():
    blob = make_net().to_bytes()
    _, h = header_of(blob)
    h["__metadata__"]["format_version"] = "2"
    bad(with_header(blob, h), "format version 2 is not supported")


def test_edited_metadata_is_rejected():
    blob = make_net().to_bytes()
    _, h = header_of(blob)

    def edit(key, fn, match):
        hh = json.loads(json.dumps(h))
        hh["__metadata__"][key] = fn(hh["__metadata__"][key])
        bad(with_header(blob, hh), match)

    def spec_edit(**kw):
        def f(s):
            specs = json.loads(s)
            specs[0].update(kw)
            return json.dumps(specs)
        return f

    edit("config", lambda s: s[:-3], "config")
    edit("config", lambda s: json.dumps({**json.loads(s), "lr": -1}), "lr")
    edit("config", lambda s: json.dumps({**json.loads(s), "bogus": 1}), "bogus")
    edit("config", lambda s: json.dumps({**json.loads(s), "w_max": 0}), "w_max")
    edit("specs", lambda s: "[]", "no layers")
    edit("specs", spec_edit(n_out=17), "layer 1 has n_in")
    edit("specs", spec_edit(n_in=13), "activity_trace|input")
    edit("specs", spec_edit(in_shape=[2 ** 40, 2 ** 40], dims=2), "overflow")
    edit("specs", spec_edit(in_tags=[5] * 12, tag_affinity=[[1, 0], [0, 1]]), "tag 5")
    edit("config", lambda s: json.dumps({**json.loads(s), "hidden_signal": "frozen"}),
         "feedback matrix")


def test_edited_tensors_are_rejected():
    pytest.importorskip("safetensors")  # test-only: crafts foreign files
    from safetensors.numpy import load, save
    net = make_net()
    train(net, *data(60))
    blob = net.to_bytes()
    meta = header_of(blob)[1]["__metadata__"]

    def edit(fn, match):
        tensors = load(blob)
        fn(tensors)
        bad(save(tensors, metadata=meta), match)

    def set_(name, idx, value):
        def f(ts):
            ts[name][idx] = value
        return f

    edit(set_("layers.0.pre", 0, 10 ** 6), "input index")
    edit(set_("layers.0.row_start", 3, 10 ** 12), "row_start|slots")
    edit(set_("layers.0.row_len", 0, 10 ** 6), "more live synapses")
    edit(set_("layers.0.feedback", 5, np.inf), "finite")
    edit(set_("replay.x", 0, np.nan), "finite")
    edit(set_("layers.0.budget", 0, -1.0), "budget")
    edit(set_("layers.0.budget", 0, np.nan), "budget")
    edit(set_("layers.0.budget_flags", 1, 7), "0 or 1")
    edit(set_("layers.0.max_fan_in", 0, 2 ** 31), "max_fan_in")
    edit(set_("replay.mask", 0, 2), "replay.mask")
    edit(set_("replay.seen", 0, 3), "replay buffer holds")
    edit(set_("rng.word_pos", 1, 2 ** 40), "68-bit")
    edit(set_("net.last_replayed", 0, 999), "last_replayed")
    edit(lambda ts: ts.pop("layers.0.feedback"), "feedback")
    edit(lambda ts: ts.pop("layers.1.bias"), "layers.1.bias is missing")
    edit(lambda ts: ts.update(extra=np.zeros(1, np.float32)), "unexpected tensor")
    edit(lambda ts: ts.update({"layers.0.bias": np.zeros(3, np.float32)}), "expected 16")
    edit(lambda ts: ts.update({"layers.0.bias": np.zeros(16, np.float64)}), "dtype")
    edit(lambda ts: ts.update({"layers.0.bias": np.zeros((4, 4), np.float32)}), "dimension")
    edit(lambda ts: ts.update({"replay.x": np.zeros(13, np.float32)}), "multiple of n_in")


def test_bad_argument_types(tmp_path):
    with pytest.raises(TypeError):
        lpn.Network.from_bytes("not bytes")
    with pytest.raises(FileNotFoundError):
        lpn.Network.load(tmp_path / "missing.safetensors")
    assert lpn.Network.from_bytes(bytearray(make_net().to_bytes())).same_state(make_net())


def test_file_is_plain_safetensors(tmp_path):
    """Other tools can read the file: numbers are plain little-endian tensors."""
    pytest.importorskip("safetensors")  # test-only: crafts foreign files
    from safetensors import safe_open
    net = make_net()
    p = net.save(tmp_path / "n.safetensors")
    with safe_open(p, framework="numpy") as f:
        meta = f.metadata()
        assert meta["format"] == "lpn-checkpoint" and meta["format_version"] == "1"
        assert json.loads(meta["config"])["restructure_every"] == 13
        w = f.get_tensor("layers.1.weight")
    np.testing.assert_array_equal(np.sort(w), np.sort(net.layers[1].synapses()["weight"]))
