"""Fuzz the checkpoint loader: mutated files may only ever raise ValueError.

Whatever loads must also be usable: a file that passes validation is learned on, restructured
and predicted with, so state that slips through cannot crash the engine later either. Together
the tests below run a little over 2,000 cases (`LPN_FUZZ_SCALE` multiplies them).
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
    net.predict(X)
    net.learn(X, T, replay=1 if net.config.replay_capacity > 0 else 0)
    net.restructure()
    net.consolidate(0.5)
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
