"""Fuzz the checkpoint loader: mutated files may only ever raise ValueError.

Whatever loads must also be usable: a file that passes validation is predicted with, learned
on, restructured, consolidated and given contrastive steps, so state that slips through cannot
crash the engine later either. The hypothesis tests run ~2,150 cases; the seeded structure-aware
loop at the end runs 10,000 more (metadata: sizes, radius, tags, shapes, config; tensor
headers: offsets, shapes, dtypes; values of index tensors). `LPN_FUZZ_SCALE` multiplies all.
"""

import json
import os
import struct
from typing import Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lpn
from lpn.config import config_to_json, specs_to_json

SCALE = float(os.environ.get("LPN_FUZZ_SCALE", "1"))


def cases(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _base():
    cfg = lpn.LearnConfig(restructure_every=5, replay_capacity=6, auto_consolidate_every=3,
                          auto_threshold=0.05, replay_on_conflict=True, kappa_long=0.5)
    specs = [lpn.LayerSpec(6, 8, radius=0.4, activation="tanh"), lpn.LayerSpec(8, 3, radius=0.5)]
    net = lpn.Network(specs, config=cfg, seed=1)
    r = np.random.default_rng(0)
    net.learn(r.normal(size=(40, 6)), (r.random((40, 3)) < 0.4), mask=r.random((40, 3)) < 0.8,
              replay=2)
    return net.to_bytes()


BLOB = _base()
HEADER_LEN = struct.unpack("<Q", BLOB[:8])[0]
HEADER = json.loads(BLOB[8:8 + HEADER_LEN])
X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(2, 6)
T = np.array([[1, 0, 0], [0, 1, 1]], np.float32)


def check(blob: bytes) -> None:
    try:
        net = lpn.Network.from_bytes(blob)
    except ValueError:
        return
    # It loaded: it must now behave like any network (no panic, no hang).
    x = np.resize(X, (2, net.n_in))
    t = np.resize(T, (2, net.n_out))
    net.predict(x)
    net.learn(x, t, replay=1 if net.config.replay_capacity > 0 else 0)
    net.restructure()
    net.consolidate(0.5)
    for layer in range(len(net.layers)):
        try:
            net.contrastive_step(x[0], x[1], layer=layer)
        except ValueError as exc:  # only a frozen layer refuses
            assert "frozen" in str(exc), exc
    net.stats()
    assert lpn.Network.from_bytes(net.to_bytes()).same_state(net)


def rebuild(header: dict, body: Optional[bytes] = None) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + (BLOB[8 + HEADER_LEN:] if body is None else body)


def test_unmutated_base_loads():
    assert lpn.Network.from_bytes(BLOB).stats()["samples"] == 40


@cases(700)
@given(st.lists(st.tuples(st.integers(0, len(BLOB) - 1), st.integers(0, 7)),
                min_size=1, max_size=8))
def test_bit_flips(flips):
    b = bytearray(BLOB)
    for pos, bit in flips:
        b[pos] ^= 1 << bit
    check(bytes(b))


@cases(250)
@given(st.integers(0, len(BLOB) - 1), st.binary(max_size=16))
def test_truncations_and_trailing_garbage(cut, tail):
    check(BLOB[:cut])
    if tail:
        check(BLOB + tail)


@cases(350)
@given(st.integers(0, HEADER_LEN + 7), st.binary(min_size=1, max_size=12))
def test_header_byte_overwrites(pos, patch):
    b = bytearray(BLOB)
    b[pos:pos + len(patch)] = patch
    check(bytes(b[:len(BLOB)]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)
TENSOR_NAMES = sorted(k for k in HEADER if k != "__metadata__")


@cases(450)
@given(st.data())
def test_metadata_edits(data):
    header = json.loads(json.dumps(HEADER))
    meta = header["__metadata__"]
    which = data.draw(st.sampled_from(["config", "specs", "format", "format_version", "drop",
                                       "raw"]))
    if which == "config":
        cfg = json.loads(meta["config"])
        key = data.draw(st.sampled_from(sorted(cfg) + ["unknown"]))
        cfg[key] = data.draw(JSON_VALUES)
        meta["config"] = json.dumps(cfg)
    elif which == "specs":
        specs = json.loads(meta["specs"])
        layer = data.draw(st.integers(0, len(specs) - 1))
        key = data.draw(st.sampled_from(sorted(specs[layer]) + ["unknown"]))
        specs[layer][key] = data.draw(JSON_VALUES | st.integers(0, 40))
        meta["specs"] = json.dumps(specs)
    elif which in ("format", "format_version"):
        meta[which] = data.draw(st.text(max_size=6) | st.sampled_from(["1", "0", "2", ""]))
    elif which == "drop":
        del meta[data.draw(st.sampled_from(sorted(meta)))]
    else:
        key = data.draw(st.sampled_from(sorted(meta)))
        s = meta[key]
        i = data.draw(st.integers(0, max(0, len(s) - 1)))
        meta[key] = s[:i] + data.draw(st.text(max_size=4)) + s[i + 1:]
    check(rebuild(header))


@cases(400)
@given(st.data())
def test_tensor_header_edits(data):
    header = json.loads(json.dumps(HEADER))
    name = data.draw(st.sampled_from(TENSOR_NAMES))
    info = header[name]
    what = data.draw(st.sampled_from(["dtype", "shape", "offsets", "drop", "rename"]))
    if what == "dtype":
        info["dtype"] = data.draw(st.sampled_from(["F32", "F64", "U8", "U32", "U64", "I64",
                                                   "BOOL", "F16", "XX"]))
    elif what == "shape":
        info["shape"] = data.draw(st.lists(st.integers(0, 2 ** 33), max_size=3))
    elif what == "offsets":
        info["data_offsets"] = data.draw(st.lists(st.integers(0, 2 ** 40), min_size=2,
                                                  max_size=2))
    elif what == "drop":
        del header[name]
    else:
        header[data.draw(st.text(min_size=1, max_size=8))] = header.pop(name)
    check(rebuild(header))


SPECIAL = st.sampled_from([0, 1, 2, 255, 2 ** 31, 2 ** 32 - 1, 2 ** 63, 2 ** 64 - 1])
FLOATS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e38, -1e38, 1e-45, float("nan"),
                          float("inf"), 3.0, 1e6])


@cases(450)
@given(st.data())
def test_tensor_value_edits(data):
    """Well-formed files whose numbers are wrong: the engine's own checks must catch them."""
    name = data.draw(st.sampled_from(TENSOR_NAMES))
    info = HEADER[name]
    start, end = info["data_offsets"]
    if end == start:
        return
    base = 8 + HEADER_LEN
    width = {"F32": 4, "F64": 8, "U32": 4, "U64": 8, "U8": 1}[info["dtype"]]
    k = data.draw(st.integers(0, (end - start) // width - 1))
    fmt = {"F32": "<f", "F64": "<d", "U32": "<I", "U64": "<Q", "U8": "<B"}[info["dtype"]]
    if info["dtype"] in ("F32", "F64"):
        value = data.draw(FLOATS)
    else:
        value = data.draw(SPECIAL | st.integers(0, 64)) % (1 << (8 * width))
    b = bytearray(BLOB)
    pos = base + start + k * width
    b[pos:pos + width] = struct.pack(fmt, value)
    check(bytes(b))


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9])
def test_tiny_inputs(n):
    with pytest.raises(ValueError):
        lpn.Network.from_bytes(bytes(n))


# -- structure-aware mutations, as a fast seeded loop -------------------------------------------
def _bases():
    out = [BLOB]
    cfg = lpn.LearnConfig(replay_capacity=3, hidden_signal="contrastive", restructure_every=4)
    specs = [lpn.LayerSpec(9, 16, dims=2, radius=0.35, in_tags=[0, 1, 2] * 3,
                           out_tags=[0, 1] * 8,
                           tag_affinity=[[1, 0.2, 0], [0.7, 1, 0], [0, 0, 1]]),
             lpn.LayerSpec(16, 3, radius=0.5, fan_in=4, max_fan_in=6, periodic=False)]
    net = lpn.Network(specs, config=cfg, seed=2)
    r = np.random.default_rng(1)
    net.learn(r.normal(size=(6, 9)), r.normal(size=(6, 3)), replay=1)
    net.restructure()
    out.append(net.to_bytes())
    # A layer with no synapses (Network() refuses to build one, but pruning can reach it and
    # checkpoints must load it), built through the engine directly.
    spec = lpn.LayerSpec(6, 3, radius=0.0, bias=False, activation="sigmoid")
    engine = lpn._lpn.Engine(specs_to_json([spec]), config_to_json(lpn.LearnConfig()), 3)
    out.append(bytes(engine.to_bytes()))
    return out


BASES = _bases()
SPECIAL_INTS = [0, 1, 2, 3, 5, 6, 8, 9, 16, 17, 2**16, 2**31, 2**32 - 1, 2**32, 2**63, -1]
SPECIAL_FLOATS = [0.0, 1e-9, 0.05, 0.5, 1.0, 1.9, 2.0, 2.5, 1e308, -1.0]


def _split(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8:8 + n]), blob[8 + n:]


SPLIT_BASES = [(json.dumps(_split(b)[0]), _split(b)[1]) for b in BASES]


def _join(header, body):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def _mutate_spec(r, spec, n_tags_hint):
    key = r.choice(["n_in", "n_out", "radius", "growth_radius", "fan_in", "max_fan_in", "dims",
                    "in_shape", "out_shape", "in_tags", "out_tags", "tag_affinity",
                    "tag_threshold", "periodic", "activation", "bias"])
    if key in ("n_in", "n_out", "fan_in", "max_fan_in"):
        spec[key] = r.choice(SPECIAL_INTS + [spec.get(key) or 1] * 2) + r.choice([0, 0, 1, -1])
    elif key in ("radius", "growth_radius", "tag_threshold"):
        spec[key] = r.choice(SPECIAL_FLOATS + [None])
    elif key == "dims":
        spec[key] = r.choice([1, 2, 3, 0])
    elif key in ("in_shape", "out_shape"):
        spec[key] = r.choice([None, [3, 3], [4, 4], [2, 8], [1, 1], [2**32, 2**32], [0, 5]])
    elif key in ("in_tags", "out_tags"):
        n = spec["n_in" if key == "in_tags" else "n_out"]
        n = max(0, min(int(n) if isinstance(n, int) else 4, 64) + r.choice([0, 0, 1, -1]))
        spec[key] = r.choice([None, [r.choice([0, 1, 2, 2**32 - 1, n_tags_hint])
                                     for _ in range(n)]])
    elif key == "tag_affinity":
        t = r.choice([0, 1, 2, 3, 4])
        spec[key] = r.choice([None, [[r.choice([0.0, 1.0, 0.5]) for _ in range(t)]
                                     for _ in range(t)], [[1.0, 0.0]]])
    elif key == "periodic" or key == "bias":
        spec[key] = r.choice([True, False, 0, "x"])
    else:
        spec[key] = r.choice(["linear", "tanh", "relu", "sigmoid", "softmax"])


def _mutate(r, header, body):
    """One mutation of a (header, body) pair, in place for the header; returns the pair."""
    meta = header["__metadata__"]
    names = sorted(k for k in header if k != "__metadata__")
    kind = r.randrange(6)
    if kind == 0:  # layer specs
        specs = json.loads(meta["specs"])
        for _ in range(r.randint(1, 3)):
            _mutate_spec(r, r.choice(specs), 3)
        meta["specs"] = json.dumps(specs)
    elif kind == 1:  # config
        cfg = json.loads(meta["config"])
        key = r.choice(["replay_capacity", "lr", "bias_lr", "hidden_signal", "restructure_every",
                        "grow_per_row", "budget", "budget_min", "budget_max",
                        "auto_consolidate_every"])
        cfg[key] = r.choice(SPECIAL_INTS + SPECIAL_FLOATS + ["feedback", "frozen",
                                                             ["frozen"], None])
        meta["config"] = json.dumps(cfg)
    elif kind == 2:  # offsets: shift one tensor's window, or every window after a point
        name = r.choice(names)
        d = r.choice([-8, -4, -1, 1, 4, 8, 2**32, -2**20])
        a, b = header[name]["data_offsets"]
        which = r.randrange(3)
        header[name]["data_offsets"] = [a + d * (which != 1), b + d * (which != 0)]
        if r.random() < 0.3 and abs(d) <= 8:  # and the body grown or cut to match
            body = body + bytes(d) if d > 0 else body[:d]
    elif kind == 3:  # shapes consistent with the bytes but not with the specs, or neither
        name = r.choice(names)
        a, b = header[name]["data_offsets"]
        width = {"F32": 4, "F64": 8, "U32": 4, "U64": 8, "U8": 1}[header[name]["dtype"]]
        n = (b - a) // width
        header[name]["shape"] = r.choice([[n + 1], [max(0, n - 1)], [1, n], [n, 1], [],
                                          [2**40]])
    elif kind == 4:  # values of index and size tensors
        name = r.choice([n for n in names if header[n]["dtype"] in ("U32", "U64", "U8")])
        info = header[name]
        a, b = info["data_offsets"]
        width, fmt = {"U32": (4, "<I"), "U64": (8, "<Q"), "U8": (1, "<B")}[info["dtype"]]
        if b > a:
            k = r.randrange((b - a) // width)
            v = r.choice(SPECIAL_INTS) % (1 << (8 * width))
            body = bytearray(body)
            body[a + k * width:a + (k + 1) * width] = struct.pack(fmt, v)
            body = bytes(body)
    else:  # float values
        name = r.choice([n for n in names if header[n]["dtype"] in ("F32", "F64")])
        info = header[name]
        a, b = info["data_offsets"]
        width, fmt = {"F32": (4, "<f"), "F64": (8, "<d")}[info["dtype"]]
        if b > a:
            k = r.randrange((b - a) // width)
            body = bytearray(body)
            v = r.choice([float("nan"), float("inf"), -1.0, 1e30, 3.0, -0.0])
            body[a + k * width:a + (k + 1) * width] = struct.pack(fmt, v)
            body = bytes(body)
    return header, body


def test_structure_aware_mutations():
    import random

    r = random.Random(99)
    n = max(1, int(10000 * SCALE))
    loaded = 0
    for case in range(n):
        header_text, body = r.choice(SPLIT_BASES)
        header = json.loads(header_text)
        for _ in range(r.choice([1, 1, 1, 2, 3])):
            header, body = _mutate(r, header, body)
        blob = _join(header, body)
        try:
            lpn.Network.from_bytes(blob)
        except ValueError:
            continue
        loaded += 1
        try:
            check(blob)
        except Exception as exc:
            raise AssertionError(f"case {case}: {type(exc).__name__}: {exc}") from exc
    # Enough mutations must produce loadable files for the drive-through to mean something.
    assert loaded > n // 20, loaded
