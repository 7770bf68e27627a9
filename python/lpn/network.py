"""The user-facing network: numpy in and out, validation before anything changes."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _lpn
from .config import LayerSpec, LearnConfig, config_to_json, specs_to_json


def _as_float32(name: str, a: Any) -> np.ndarray:
    """Cast to a C-contiguous float32 array with a clear error for what cannot be cast."""
    if isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy's own message is already clear
        raise TypeError(f"{name} must be an array of numbers: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a numeric array (float32/float64), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _check_finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"{name} must be finite, but {name}[{', '.join(map(str, bad))}] is "
                         f"{a[tuple(bad)]}")


def _samples(name: str, a: Any, width: int, what: str) -> Tuple[np.ndarray, bool]:
    """(B, width) float32 view of one sample or a batch; also whether the input was 1-D."""
    arr = _as_float32(name, a)
    if arr.ndim == 1:
        if arr.shape[0] != width:
            raise ValueError(f"{name} has shape {arr.shape}, expected ({width},) = ({what},) "
                             f"or (batch, {width})")
        return arr.reshape(1, width), True
    if arr.ndim == 2:
        if arr.shape[1] != width:
            raise ValueError(f"{name} has shape {arr.shape}, expected (batch, {width}) with "
                             f"{what} = {width}")
        return arr, False
    raise ValueError(f"{name} must be 1-D ({width},) or 2-D (batch, {width}), got {arr.ndim}-D "
                     f"shape {arr.shape}")


def _mask(mask: Any, n_out: int, batch: int) -> Optional[np.ndarray]:
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        if m.dtype == object or not np.issubdtype(m.dtype, np.integer):
            raise TypeError(f"mask must be a boolean array over the {n_out} outputs, "
                            f"got dtype {m.dtype}")
        if m.size and not np.all((m == 0) | (m == 1)):
            raise ValueError("an integer mask may hold only 0 and 1")
        m = m.astype(np.bool_)
    if m.shape == (n_out,):
        return np.ascontiguousarray(m)
    if m.shape == (batch, n_out):
        return np.ascontiguousarray(m).reshape(-1)
    raise ValueError(f"mask has shape {m.shape}, expected ({n_out},) or ({batch}, {n_out})")


class Layer:
    """A view of one layer of a network: inspection only; every call returns fresh arrays."""

    def __init__(self, net: "Network", index: int) -> None:
        self._net = net
        self.index = index

    @property
    def spec(self) -> LayerSpec:
        return self._net.specs[self.index]

    @property
    def signal(self) -> str:
        return self._net._engine.layer_state(self.index)["signal"]

    def synapses(self) -> Dict[str, np.ndarray]:
        """pre, post, weight, short_trail, long_trail, consolidation, anchor (one entry per
        synapse, rows in order, sorted by input within a row)."""
        return dict(self._net._engine.synapses(self.index))

    def state(self) -> Dict[str, Any]:
        """bias, error_trace, activity_trace, max_fan_in, budget, loss_avg, has_loss_avg,
        expanding, steps, signal."""
        return dict(self._net._engine.layer_state(self.index))

    def bias(self) -> np.ndarray:
        return self.state()["bias"]

    def feedback(self) -> Optional[np.ndarray]:
        """The fixed random feedback matrix of a hidden layer, (n_out, network n_out)."""
        return self._net._engine.feedback(self.index)

    def positions(self) -> Tuple[np.ndarray, np.ndarray]:
        """Unit positions in [0, 1)^2 of the inputs and outputs (y = 0.5 on a ring)."""
        return self._net._engine.positions(self.index)

    def __repr__(self) -> str:
        s = self.spec
        return f"<lpn layer {self.index}: {s.n_in} -> {s.n_out}, {s.activation}, {self.signal}>"


class Network:
    """A stack of sparse local layers learning online (DESIGN.md §6).

    Thread-safe: many threads may `predict` at once while one `learn`s; compute runs with the
    GIL released.
    """

    def __init__(self, layers: Sequence[LayerSpec], config: Optional[LearnConfig] = None,
                 seed: int = 0) -> None:
        if isinstance(layers, LayerSpec):
            layers = [layers]
        layers = list(layers)
        if not layers:
            raise ValueError("a network needs at least one LayerSpec, got an empty list")
        for k, s in enumerate(layers):
            if not isinstance(s, LayerSpec):
                raise TypeError(f"layers[{k}] must be an lpn.LayerSpec, got {type(s).__name__}")
        if config is None:
            config = LearnConfig()
        if not isinstance(config, LearnConfig):
            raise TypeError(f"config must be an lpn.LearnConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self._specs = tuple(layers)
        self._config = config
        self._engine = _lpn.Engine(specs_to_json(layers), config_to_json(config), int(seed))

    @classmethod
    def _from_engine(cls, engine: "_lpn.Engine", specs: Sequence[LayerSpec],
                     config: LearnConfig) -> "Network":
        net = cls.__new__(cls)
        net._specs = tuple(specs)
        net._config = config
        net._engine = engine
        return net

    # -- properties ---------------------------------------------------------------------------
    @property
    def specs(self) -> Tuple[LayerSpec, ...]:
        return self._specs

    @property
    def config(self) -> LearnConfig:
        return self._config

    @property
    def n_in(self) -> int:
        return self._engine.n_in

    @property
    def n_out(self) -> int:
        return self._engine.n_out

    @property
    def seed(self) -> int:
        return self._engine.seed

    @property
    def layers(self) -> List[Layer]:
        return [Layer(self, k) for k in range(self._engine.n_layers)]

    # -- compute ------------------------------------------------------------------------------
    def predict(self, x: Any, mask: Any = None) -> np.ndarray:
        """(n_in,) -> (n_out,) or (B, n_in) -> (B, n_out), float32; masked outputs are 0."""
        xs, single = _samples("x", x, self.n_in, "n_in")
        _check_finite("x", xs)
        m = _mask(mask, self.n_out, xs.shape[0])
        out = self._engine.predict(xs, m)
        return out[0] if single else out

    def learn(self, x: Any, t: Any, mask: Any = None, replay: int = 0) -> float:
        """One online step per sample, in order (plus `replay` replayed samples after each);
        returns the mean step loss of the new samples."""
        xs, _ = _samples("x", x, self.n_in, "n_in")
        ts, _ = _samples("t", t, self.n_out, "n_out")
        if xs.shape[0] != ts.shape[0]:
            raise ValueError(f"x has {xs.shape[0]} samples but t has {ts.shape[0]}")
        _check_finite("x", xs)
        _check_finite("t", ts)
        if isinstance(replay, bool) or not isinstance(replay, (int, np.integer)):
            raise TypeError(f"replay must be an int, got {type(replay).__name__}")
        if replay < 0:
            raise ValueError(f"replay must be >= 0, got {replay}")
        m = _mask(mask, self.n_out, xs.shape[0])
        return self._engine.learn(xs, ts, m, int(replay))

    def consolidate(self, strength: float = 1.0) -> None:
        """Task-boundary consolidation (§3.2): protect synapses in proportion to their long trail."""
        if isinstance(strength, bool) or not isinstance(strength, (int, float, np.number)):
            raise TypeError(f"strength must be a number, got {type(strength).__name__}")
        self._engine.consolidate(float(strength))

    def restructure(self) -> Tuple[int, int]:
        """One structural pass (§5.2); returns (pruned, grown)."""
        return self._engine.restructure()

    def contrastive_step(self, x_pos: Any, x_neg: Any, layer: int = 0) -> Tuple[float, float]:
        """Target-free step (§5.4) on `layer`; returns the goodness (G+, G-) before the update."""
        p = _as_float32("x_pos", x_pos)
        n = _as_float32("x_neg", x_neg)
        if p.shape != n.shape:
            raise ValueError(f"x_pos has shape {p.shape} but x_neg has shape {n.shape}")
        if p.shape != (self.n_in,):
            raise ValueError(f"x_pos and x_neg must have shape ({self.n_in},), got {p.shape}")
        _check_finite("x_pos", p)
        _check_finite("x_neg", n)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        n_layers = self._engine.n_layers
        if not 0 <= layer < n_layers:
            raise ValueError(f"layer index {layer} is out of range for a network of {n_layers} "
                             "layers")
        return self._engine.contrastive_step(p, n, int(layer))

    def stats(self) -> Dict[str, Any]:
        """Counters: steps, replays, goodness, and per layer synapses, budget, touched, pruned,
        grown, ..."""
        return dict(self._engine.stats())

    def same_state(self, other: "Network") -> bool:
        """True when both networks hold bit-for-bit the same learning state."""
        return self._engine.same_state(other._engine)

    def __repr__(self) -> str:
        shape = " -> ".join([str(self.n_in)] + [str(s.n_out) for s in self._specs])
        return f"<lpn.Network {shape}, seed={self.seed}>"
