"""A recall memory for agents and caches on the LPN engine (docs/memory.md).

``RecallMemory`` stores vectors under integer ids, learns each one by self-association on a
local LPN layer, and ranks stored items for a query in the layer's code space. Items used
together strengthen a link and rank higher for each other's queries; items fade by tiers
(working → episodic: exponential; semantic: power law); ``forget`` removes an item and its
contribution to the layer exactly. All compute runs in Rust with the GIL released; one memory
may be shared between threads.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from . import _lpn
from . import checkpoint as _ckpt

__all__ = ["RecallMemory", "TIERS"]

TIERS = ("working", "episodic", "semantic")

_TIER_KEYS = ("episodic_uses", "semantic_uses", "working_tau", "episodic_tau", "semantic_tau",
              "semantic_alpha")


def _float_rows(name: str, a: Any, dim: int) -> Tuple[np.ndarray, bool]:
    """(B, dim) C-contiguous float32 and whether the input was a single 1-D vector."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy's message is clear enough
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr, single = arr.reshape(1, -1), True
    elif arr.ndim == 2:
        single = False
    else:
        raise ValueError(f"{name} must be 1-D (dim,) or 2-D (batch, dim), got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise ValueError(f"{name} has {arr.shape[1]} columns, expected dim = {dim}")
    # C order and aligned: a misaligned view (np.frombuffer at an odd offset) is copied.
    return np.require(arr, dtype=np.float32, requirements=["C", "A", "E"]), single


def _id_array(name: str, ids: Any) -> np.ndarray:
    """Ids as a 1-D uint64 array; one int is accepted as a list of one."""
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        ids = [ids]
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be an int or a 1-D sequence of ints, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.signedinteger) and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {int(arr.min())}")
    return np.require(arr, dtype=np.uint64, requirements=["C", "A", "E"])


def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v}")
    return int(v)


class RecallMemory:
    """Observe vectors, recall the best stored ids for a cue, reinforce on use, forget.

    Parameters
    ----------
    dim: length of the vectors you store (any embedding; see ``lpn.encoders`` for a built-in
        text encoder).
    code_dim: width of the learned code (the LPN layer is ``code_dim → code_dim``).
    seed: fixes the projection and the layer; same seed and calls ⇒ same results and bytes.
    clock: a function returning the current time in seconds (default ``time.time``); every
        time-dependent method also takes ``now=`` to pass time explicitly.
    radius, lr, budget, repeats: the layer's wiring radius and learning rule settings, and how
        many passes each observed batch gets.
    completion: share of the layer's completed code in a query's code (0 uses the cue alone).
    strength_weight, link_weight, link_rate, spread_seeds: ranking bonuses for strength and
        co-access links, and how fast links grow.
    consolidation, rho_consolidation: consolidation applied when an item becomes semantic, and
        its per-step fade.
    episodic_uses, semantic_uses, working_tau, episodic_tau, semantic_tau, semantic_alpha: the
        tiers (uses to move up; exponential time constants; power-law scale and exponent).
    """

    def __init__(self, dim: int, code_dim: int = 128, seed: int = 0,
                 clock: Optional[Callable[[], float]] = None, **options: Any) -> None:
        dim = _positive_int("dim", dim)
        code_dim = _positive_int("code_dim", code_dim)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must lie in [0, 2**64), got {seed}")
        if clock is not None and not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}")
        tiers = {k: options.pop(k) for k in _TIER_KEYS if k in options}
        cfg: Dict[str, Any] = {"dim": dim, "code_dim": code_dim, "seed": int(seed), **options}
        if tiers:
            cfg["tiers"] = tiers
        self._engine = _lpn.Memory(json.dumps(cfg))
        self._clock = clock
        self._dim = dim

    @classmethod
    def _from_engine(cls, engine: "_lpn.Memory",
                     clock: Optional[Callable[[], float]] = None) -> "RecallMemory":
        self = cls.__new__(cls)
        self._engine = engine
        self._clock = clock
        self._dim = int(json.loads(engine.config_json())["dim"])
        return self

    # -- time ---------------------------------------------------------------------------------
    def _now(self, now: Optional[float]) -> float:
        if now is None:
            now = (self._clock or time.time)()
        if isinstance(now, bool) or not isinstance(now, (int, float, np.integer, np.floating)):
            raise TypeError(f"now must be a number of seconds, got {type(now).__name__}")
        return float(now)

    # -- configuration ------------------------------------------------------------------------
    @property
    def config(self) -> Dict[str, Any]:
        """The memory's settings as a dict (the engine's values, defaults filled in)."""
        return json.loads(self._engine.config_json())

    @property
    def dim(self) -> int:
        """Dimension of the stored vectors."""
        return self._dim

    @property
    def code_dim(self) -> int:
        """Dimension of the learned code space."""
        return int(self.config["code_dim"])

    # -- storing and recalling ----------------------------------------------------------------
    def observe(self, vectors: Any, ids: Any = None, now: Optional[float] = None) -> np.ndarray:
        """Learn and store one vector ``(dim,)`` or a batch ``(n, dim)`` under ``ids`` (ints;
        default: the next free ids). Returns the ids. Bad input changes nothing."""
        x, single = _float_rows("vectors", vectors, self.dim)
        id_arr = None
        if ids is not None:
            id_arr = _id_array("ids", ids)
            if id_arr.shape[0] != x.shape[0]:
                raise ValueError(f"got {id_arr.shape[0]} ids for {x.shape[0]} vectors")
        return self._engine.observe(x, id_arr, self._now(now))

    def recall(self, query: Any, k: int = 10,
               now: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The best ``k`` stored ids and their scores, best first: 1-D arrays for one query,
        ``(batch, k)`` for a batch (fewer columns when fewer items are stored)."""
        # More results than items is the same as all items; the cap keeps k within int64.
        k = min(_positive_int("k", k), 2**62)
        q, single = _float_rows("query", query, self.dim)
        ids, scores = self._engine.recall(q, k, self._now(now))
        if single:
            return ids[0], scores[0]
        return ids, scores

    def score(self, query: Any, candidates: Any) -> np.ndarray:
        """Cosine similarity in code space between one query and candidate vectors ``(m, dim)``
        that the application keeps itself (no strength or link bonus)."""
        q, single = _float_rows("query", query, self.dim)
        if not single:
            raise ValueError(f"score takes one query of shape ({self.dim},), got {q.shape}")
        c, _ = _float_rows("candidates", candidates, self.dim)
        return self._engine.score(q[0], c)

    def reinforce(self, ids: Any, now: Optional[float] = None) -> None:
        """Mark ``ids`` as used together now: each gains a use (and may move up a tier) and
        every pair's co-access link strengthens. Unknown ids: ``ValueError``, nothing changes."""
        self._engine.reinforce(_id_array("ids", ids), self._now(now))

    def forget(self, ids: Any) -> None:
        """Remove items and their whole contribution: rows, links, and their part in the layer
        (rebuilt as if they had never been observed)."""
        self._engine.forget(_id_array("ids", ids))

    def decay(self, threshold: float = 0.05, now: Optional[float] = None) -> np.ndarray:
        """Forget every item whose tiered strength at ``now`` is below ``threshold``; returns
        the ids forgotten (ascending)."""
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
            raise TypeError(f"threshold must be a number in [0, 1], got {threshold!r}")
        return self._engine.decay(self._now(now), float(threshold))

    def strength(self, ids: Any, now: Optional[float] = None) -> np.ndarray:
        """Tiered strength in (0, 1] of each id at ``now``."""
        return self._engine.info(_id_array("ids", ids), self._now(now))[3]

    def info(self, id: int, now: Optional[float] = None) -> Dict[str, Any]:
        """Uses, tier, last access and strength of one item."""
        uses, tier, last, strength = self._engine.info(_id_array("id", [id]), self._now(now))
        return {"uses": int(uses[0]), "tier": TIERS[int(tier[0])],
                "last_access": float(last[0]), "strength": float(strength[0])}

    def link(self, a: int, b: int) -> float:
        """Co-access link weight in [0, 1] between two stored items."""
        a_, b_ = _id_array("a", [a])[0], _id_array("b", [b])[0]
        return float(self._engine.link(int(a_), int(b_)))

    def vector(self, id: int) -> np.ndarray:
        """The stored vector of ``id``."""
        return self._engine.vector(int(_id_array("id", [id])[0]))

    @property
    def ids(self) -> np.ndarray:
        """Stored ids (storage order)."""
        return self._engine.ids()

    def __len__(self) -> int:
        return len(self._engine)

    def __contains__(self, id: Any) -> bool:
        if isinstance(id, bool) or not isinstance(id, (int, np.integer)) or not 0 <= id < 2**64:
            return False
        return self._engine.contains(int(id))

    def __repr__(self) -> str:
        return f"<lpn.RecallMemory dim={self.dim}, code_dim={self.code_dim}, items={len(self)}>"

    # -- persistence --------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The whole state as one safetensors file (deterministic bytes)."""
        return self._engine.to_bytes()

    @classmethod
    def from_bytes(cls, data: Union[bytes, bytearray, memoryview],
                   clock: Optional[Callable[[], float]] = None) -> "RecallMemory":
        """A memory restored from `to_bytes()` output (exact resume)."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(f"memory data must be bytes, got {type(data).__name__}")
        return cls._from_engine(_lpn.Memory.from_bytes(data), clock)

    def save(self, path: "_ckpt.PathLike") -> str:
        """Write the memory to ``path`` atomically; returns the path."""
        return _ckpt.atomic_write(path, self.to_bytes())

    @classmethod
    def load(cls, path: "_ckpt.PathLike",
             clock: Optional[Callable[[], float]] = None) -> "RecallMemory":
        """A memory saved by ``save``; resumes exactly. Never executes code from the file."""
        # A regular file only: a FIFO or a device is refused instead of blocking or reading
        # without end (the same reader as `Network.load`).
        data = _ckpt.read_file(path)
        try:
            return cls.from_bytes(data, clock)
        except ValueError as exc:
            raise ValueError(f"{_ckpt.fspath(path)}: {exc}") from None

    def __reduce__(self) -> Tuple[Any, Tuple[Any, ...]]:
        # Through the checkpoint bytes: copies are exact and independent; the clock travels by
        # reference (None means time.time).
        return (_restore, (self.to_bytes(), self._clock))


def _restore(data: bytes, clock: Optional[Callable[[], float]]) -> RecallMemory:
    return RecallMemory.from_bytes(data, clock)
