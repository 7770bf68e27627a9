"""Fuzz the RecallMemory loader: a mutated file may only ever raise ValueError.

Whatever loads must also be usable: it is recalled from, observed into, reinforced, decayed,
forgotten from and saved again, so state that slips through validation cannot crash the engine
later either. 1,200 seeded cases: raw byte flips and truncations, and structure-aware mutations
of the header (config values, format fields, tensor shapes, dtypes and offsets) and of the
values of the item, link and log tensors. `LPN_FUZZ_SCALE` multiplies the number of cases.
"""

import json
import os
import random
import struct

import numpy as np
import pytest

from lpn.memory import RecallMemory

SCALE = float(os.environ.get("LPN_FUZZ_SCALE", "1"))
DIM = 6


def _base() -> bytes:
    m = RecallMemory(DIM, code_dim=8, seed=5, repeats=1, radius=0.5)
    m.observe(np.random.default_rng(0).normal(size=(7, DIM)), now=0.0)
    for _ in range(5):  # up to the semantic tier: a rehearsal in the log
        m.reinforce([0, 1, 2], now=1.0)
    return m.to_bytes()


BLOB = _base()
HEADER_LEN = struct.unpack("<Q", BLOB[:8])[0]
HEADER = json.loads(BLOB[8:8 + HEADER_LEN])
BODY = BLOB[8 + HEADER_LEN:]
NUMBERS = [0, 1, 2, 3, -1, 7, 255, 2**31, 2**32 - 1, 2**32, 2**53, 2**63, 2**64, 1e308, -1e308,
           0.5, 1e-300, "1", None, [], {}, True]


def rebuild(header: dict, body: bytes = BODY) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + body


def check(blob: bytes) -> bool:
    """True when the file loaded (and then behaved), False when it was refused."""
    try:
        m = RecallMemory.from_bytes(blob)
    except ValueError as exc:
        assert str(exc)
        return False
    q = np.linspace(-1, 1, m.dim * 2, dtype=np.float32).reshape(2, m.dim) + 0.1
    m.recall(q, k=3, now=10.0)
    try:
        ids = m.observe(q, now=11.0)
    except ValueError as exc:  # a file whose next free id is the last one: legitimately full
        assert "no free ids" in str(exc), exc
        ids = m.observe(q, ids=[10**6, 10**6 + 1], now=11.0)
    m.reinforce([int(i) for i in m.ids[:3]], now=12.0)
    m.strength(m.ids, now=13.0)
    m.forget(ids[:1])
    m.decay(threshold=0.01, now=14.0)
    assert RecallMemory.from_bytes(m.to_bytes()).to_bytes() == m.to_bytes()
    return True


def mutate_header(r: random.Random) -> bytes:
    h = json.loads(json.dumps(HEADER))
    kind = r.randrange(6)
    if kind == 0:  # a config value
        cfg = json.loads(h["__metadata__"]["config"])
        key = r.choice(list(cfg))
        if key == "tiers":
            cfg["tiers"][r.choice(list(cfg["tiers"]))] = r.choice(NUMBERS)
        else:
            cfg[key] = r.choice(NUMBERS)
        h["__metadata__"]["config"] = json.dumps(cfg)
    elif kind == 1:  # format fields
        k = r.choice(["format", "format_version", "lpn_version", "config"])
        h["__metadata__"][k] = r.choice(["", "lpn-memory", "2", "0", "{}", "x", "999"])
    elif kind == 2:  # a tensor's shape
        name = r.choice([n for n in h if n != "__metadata__"])
        h[name]["shape"] = [r.choice(NUMBERS[:12])] if r.random() < 0.8 else [2, 3]
    elif kind == 3:  # a tensor's dtype
        name = r.choice([n for n in h if n != "__metadata__"])
        h[name]["dtype"] = r.choice(["U8", "U32", "U64", "F32", "F64", "I64", "BOOL", "X"])
    elif kind == 4:  # a tensor's offsets
        name = r.choice([n for n in h if n != "__metadata__"])
        a, b = h[name]["data_offsets"]
        h[name]["data_offsets"] = [r.choice([a, b, 0, a + 1, len(BODY)]),
                                   r.choice([a, b, b - 1, len(BODY), 2**40])]
    else:  # a tensor removed
        name = r.choice([n for n in h if n != "__metadata__"])
        del h[name]
    return rebuild(h)


def mutate_values(r: random.Random) -> bytes:
    """Overwrite one element of an index-like tensor with a troublesome value."""
    name = r.choice(["items.ids", "items.uses", "items.tier", "items.last_access", "links.a",
                     "links.b", "links.weight", "log.ids", "log.kinds", "next_id",
                     "items.vectors"])
    t = HEADER[name]
    a, b = t["data_offsets"]
    width = {"U8": 1, "U32": 4, "U64": 8, "F32": 4, "F64": 8}[t["dtype"]]
    n = (b - a) // width
    at = a + width * r.randrange(max(1, n))
    if t["dtype"] in ("F32", "F64"):
        v = r.choice([float("nan"), float("inf"), -1.0, 0.0, 1e30, -1e30])
        raw = struct.pack("<f" if width == 4 else "<d", v)
    else:
        v = r.choice([0, 1, 2, 3, 6, 7, 9, 2**width - 1 if width < 8 else 2**64 - 1, 5])
        raw = (v % 2**(8 * width)).to_bytes(width, "little")
    body = BODY[:at] + raw + BODY[at + width:]
    return rebuild(HEADER, body)


def mutate_bytes(r: random.Random) -> bytes:
    b = bytearray(BLOB)
    if r.random() < 0.2:
        return bytes(b[:r.randrange(len(b))])
    for _ in range(r.randint(1, 4)):
        b[r.randrange(len(b))] = r.randrange(256)
    return bytes(b)


def test_unmutated_base_loads_and_behaves():
    assert check(BLOB)


def test_memory_checkpoint_fuzz_never_crashes():
    r = random.Random(2024)
    n_cases = max(1, int(1200 * SCALE))
    loaded = 0
    for case in range(n_cases):
        blob = r.choice([mutate_header, mutate_values, mutate_bytes])(r)
        try:
            loaded += check(blob)
        except Exception as exc:  # anything but ValueError is the bug looked for
            pytest.fail(f"case {case}: {type(exc).__name__}: {exc}")
    # Some mutations are harmless (a float value, a byte in padding): both paths ran.
    assert 0 < loaded < n_cases, loaded
