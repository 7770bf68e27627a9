"""The user-facing network: numpy in and out, validation before anything changes."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from . import _lpn
from . import checkpoint as _ckpt
from .config import (
    LayerSpec,
    LearnConfig,
    config_from_dict,
    config_to_json,
    spec_from_dict,
    specs_to_json,
)

#: Most replays per new sample `learn(replay=...)` accepts (the engine's bound).
MAX_REPLAY: int = _lpn.max_replay()


def _as_float32(name: str, a: Any) -> np.ndarray:
    """Cast to a C-contiguous float32 array with a clear error for what cannot be cast."""
    if (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
            and a.flags.aligned):
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
    # C order and aligned (a view at an odd byte offset, from np.frombuffer, is copied: the
    # engine reads whole float32s); copied only when needed, 0-d shapes kept for the errors.
    return np.require(arr, dtype=np.float32, requirements=["C", "A", "E"])


def _samples(name: str, a: Any, width: int, what: str) -> Tuple[np.ndarray, bool]:
    """(B, width) float32 view of one sample or a batch; also whether the input was 1-D."""
    arr = _as_float32(name, a)
    if arr.ndim == 0:
        raise ValueError(f"{name} must be 1-D ({width},) or 2-D (batch, {width}), got a 0-d "
                         f"scalar of shape ()")
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


def _targets(t: Any, n_out: int, batch: int, x_was_1d: bool) -> np.ndarray:
    """(batch, n_out) float32 targets, with the shapes a new user reaches for handled or named.

    A 1-D `t` is one target vector only for a single sample; for a batch it is one value per
    sample, accepted when the network has one output (regression) and refused otherwise, so a
    batch of `n_out` samples is never silently read as one target vector."""
    arr = _as_float32("t", t)
    raw = np.asarray(t)
    labels = raw.dtype != np.bool_ and np.issubdtype(raw.dtype, np.integer)
    hint = (f"; t looks like integer class labels: learn() takes one target value per output, "
            f"so one-hot encode them, e.g. t = np.eye({n_out}, dtype=np.float32)[labels], or use "
            f"lpn.sklearn.LPNClassifier, which accepts labels") if labels and n_out > 1 else ""
    if raw.ndim == 0:
        if n_out == 1 and batch == 1:
            return arr.reshape(1, 1)
        raise ValueError(f"t is a scalar, expected ({n_out},) or (batch, {n_out}){hint}")
    if arr.ndim == 1 and not x_was_1d:
        if n_out == 1 and arr.shape[0] == batch:
            return arr.reshape(batch, 1)
        raise ValueError(f"t has shape {arr.shape} for a batch of {batch} samples, expected "
                         f"({batch}, {n_out}) (a 1-D target per sample only fits a network "
                         f"with one output){hint}")
    if arr.ndim == 1 and arr.shape[0] != n_out:
        raise ValueError(f"t has shape {arr.shape}, expected ({n_out},) = (n_out,) or "
                         f"(batch, {n_out}){hint}")
    if arr.ndim > 2:
        raise ValueError(f"t must be 1-D ({n_out},) or 2-D (batch, {n_out}), got {arr.ndim}-D "
                         f"shape {arr.shape}")
    out, _ = _samples("t", arr, n_out, "n_out")
    return out


# Fan-in statistics read every synapse index; above this many synapses `repr` shows the mean only.
_FAN_IN_SCAN_LIMIT = 1 << 22


def radius_for_fan_in(n_in: int, fan_in: Union[int, str], dims: int = 1,
                      in_shape: Optional[Tuple[int, int]] = None, periodic: bool = True) -> float:
    """The smallest radius that gives *every* output at least `fan_in` inputs of a layer with
    `n_in` inputs laid out as `LayerSpec` lays them out (1-D: unit k at (k + 0.5)/n; 2-D: an
    `in_shape` grid, square by default). Pair it with `fan_in=` for exactly that many (the
    nearest ones): `LayerSpec(n_in, n_out, radius=radius_for_fan_in(n_in, 16), fan_in=16)`.
    `fan_in="all"` (or `fan_in >= n_in`) gives a radius that covers every input: a dense layer.
    Tags are not counted: incompatible tags can only remove inputs from a row."""
    if isinstance(n_in, bool) or not isinstance(n_in, (int, np.integer)) or n_in < 1:
        raise ValueError(f"n_in must be an int >= 1, got {n_in!r}")
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 or 2, got {dims!r}")
    if isinstance(fan_in, str):
        if fan_in != "all":
            raise ValueError(f"fan_in must be an int >= 1 or 'all', got {fan_in!r}")
        k = int(n_in)
    elif isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) or fan_in < 1:
        raise ValueError(f"fan_in must be an int >= 1 or 'all', got {fan_in!r}")
    else:
        k = min(int(fan_in), int(n_in))
    # A little over the exact distance: the engine keeps units at the radius up to float noise.
    slack = 1.0 + 1e-9
    if dims == 1:
        if k >= n_in:
            return (0.5 if periodic else 1.0) * slack
        # A closed interval of length L holds at least floor(L * n) units spaced 1/n apart; an
        # output near a non-periodic edge sees one side only.
        return (k / n_in if not periodic else k / (2.0 * n_in)) * slack
    if in_shape is None:
        side = math.isqrt(int(n_in))
        if side * side != n_in:
            raise ValueError(f"dims=2 needs in_shape or a square n_in, got n_in={n_in}")
        in_shape = (side, side)
    h, w = int(in_shape[0]), int(in_shape[1])
    if h * w != n_in:
        raise ValueError(f"in_shape {in_shape} does not hold n_in={n_in} units")
    span = 0.5 if periodic else 1.0
    if k >= n_in:
        return math.hypot(span, span) * slack
    # A disk of radius r holds the square of half-side r / sqrt(2) around its centre, and an
    # axis-aligned square of side s holds at least floor(s*h) * floor(s*w) grid units.
    for s_units in range(1, max(h, w) + 1):
        s = s_units / min(h, w)
        if math.floor(s * h + 1e-9) * math.floor(s * w + 1e-9) >= k:
            if not periodic and s > 0.5:
                break  # the square may no longer fit beside an output at an edge
            r = (s if periodic else 2.0 * s) / math.sqrt(2.0)
            return min(r, math.hypot(span, span)) * slack
    return math.hypot(span, span) * slack


def _fan_in_text(row: Dict[str, Any]) -> str:
    if row["min"] is None:
        return f"mean {row['mean']:.1f}/{row['n_in']}"
    if row["min"] == row["max"]:
        return f"{row['min']}/{row['n_in']}"
    return f"{row['min']}-{row['max']} (mean {row['mean']:.1f})/{row['n_in']}"


class LowFanInWarning(UserWarning):
    """A layer left at the default receptive field reads only a small part of its inputs."""


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
        """The `LayerSpec` this layer was built from."""
        return self._net.specs[self.index]

    @property
    def signal(self) -> str:
        """How the layer learns: `"output"`, `"feedback"`, `"contrastive"` or `"frozen"`."""
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
        """The per-output biases (a fresh float32 copy)."""
        return self.state()["bias"]

    def fan_in(self) -> np.ndarray:
        """How many inputs each output reads now, `(n_out,)` int64."""
        post = self._net._engine.synapses(self.index)["post"]
        return np.bincount(post, minlength=self.spec.n_out)

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
    """A stack of sparse local layers learning online (docs/rule.md; API in docs/api.md).

    Thread-safe, and no call holds the GIL while it computes or waits for the network: any
    number of threads may `predict` (and read `stats`, ...) at once; a `learn` call excludes
    them only while it updates, in slices of at most ~20 ms, so predictions interleave with a
    long batch (seeing the state after some whole sample, never a half-updated one). Concurrent
    `learn` batches run one after the other. Ctrl-C interrupts a long `learn` or `predict`
    within about 20 ms; the network then holds every sample learned so far (docs/long-running.md).
    """

    def __init__(self, layers: Union[LayerSpec, Sequence[LayerSpec]], config: Optional[LearnConfig] = None,
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
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not 0 <= int(seed) <= 2 ** 64 - 1:
            raise ValueError(f"seed must lie in [0, 2**64 - 1], got {seed!r}")
        self._specs = tuple(layers)
        self._config = config
        self._engine = _lpn.Engine(specs_to_json(layers), config_to_json(config), int(seed))
        self._check_fan_in()

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
        """The layer specifications, input side first."""
        return self._specs

    @property
    def config(self) -> LearnConfig:
        """The `LearnConfig` the network learns with."""
        return self._config

    @property
    def n_in(self) -> int:
        """Width of the input vector."""
        return self._engine.n_in

    @property
    def n_out(self) -> int:
        """Width of the output vector."""
        return self._engine.n_out

    @property
    def seed(self) -> int:
        """The seed the network was built with."""
        return self._engine.seed

    @property
    def layers(self) -> List[Layer]:
        """One `Layer` view per layer, for inspection (synapses, state, positions)."""
        return [Layer(self, k) for k in range(self._engine.n_layers)]

    # -- compute ------------------------------------------------------------------------------
    def predict(self, x: ArrayLike, mask: Optional[ArrayLike] = None) -> np.ndarray:
        """(n_in,) -> (n_out,) or (B, n_in) -> (B, n_out), float32; masked outputs are 0.

        With `output_error="softmax"` these are the logits `z`: apply a softmax for
        probabilities (the argmax is the class either way)."""
        if mask is None:
            # One C-contiguous float32 sample: the engine predicts it (checking it is finite),
            # or declines (None) and the general checks below run.
            y = self._engine.predict_one(x)
            if y is not None:
                return y
        xs, single = _samples("x", x, self.n_in, "n_in")
        # The engine checks finiteness (and names the bad element) before touching anything.
        m = _mask(mask, self.n_out, xs.shape[0])
        out = self._engine.predict(xs, m)
        return out[0] if single else out

    def learn(self, x: ArrayLike, t: ArrayLike, mask: Optional[ArrayLike] = None,
              replay: int = 0) -> float:
        """One online step per sample, in order (plus `replay` replayed samples after each).

        `x` is `(n_in,)` or `(B, n_in)`; `t` is `(n_out,)` or `(B, n_out)`, and with one output
        also a scalar or `(B,)`. Targets are real values per output: one-hot encode class
        labels. Returns the mean step loss of the new samples, each measured *before* its own
        update (test-then-train, the online "prequential" error), so a falling return value is
        honest generalisation to unseen samples, not training fit. The step loss is the masked
        mean squared error, or the cross-entropy with `output_error="softmax"`."""
        if mask is None and type(replay) is int and replay == 0:
            # One C-contiguous float32 sample (what an online loop passes): the engine checks
            # that itself and learns it, or declines (None) and the general checks below run.
            loss = self._engine.learn_one(x, t)
            if loss is not None:
                if self._checkpointer is not None:
                    self._checkpointer.after_learn(self)
                return loss
        xs, single = _samples("x", x, self.n_in, "n_in")
        ts = _targets(t, self.n_out, xs.shape[0], single)
        if xs.shape[0] != ts.shape[0]:
            raise ValueError(f"x has {xs.shape[0]} samples but t has {ts.shape[0]}")
        if isinstance(replay, bool) or not isinstance(replay, (int, np.integer)):
            raise TypeError(f"replay must be an int, got {type(replay).__name__}")
        if replay < 0:
            raise ValueError(f"replay must be >= 0, got {replay}")
        if int(replay) > MAX_REPLAY:
            raise ValueError(f"replay must lie in [0, {MAX_REPLAY}] (replays per new sample), "
                             f"got {replay}")
        m = _mask(mask, self.n_out, xs.shape[0])
        loss = self._engine.learn(xs, ts, m, int(replay))
        if self._checkpointer is not None:
            self._checkpointer.after_learn(self)
        return loss

    def consolidate(self, strength: float = 1.0) -> None:
        """Task-boundary consolidation (§3.2): protect synapses in proportion to their long trail."""
        if isinstance(strength, bool) or not isinstance(strength, (int, float, np.number)):
            raise TypeError(f"strength must be a number, got {type(strength).__name__}")
        self._engine.consolidate(float(strength))

    def restructure(self) -> Tuple[int, int]:
        """One structural pass (§5.2); returns (pruned, grown)."""
        return self._engine.restructure()

    def contrastive_step(self, x_pos: ArrayLike, x_neg: ArrayLike,
                         layer: int = 0) -> Tuple[float, float]:
        """Target-free step (§5.4) on `layer`; returns the goodness (G+, G-) before the update."""
        p = _as_float32("x_pos", x_pos)
        n = _as_float32("x_neg", x_neg)
        if p.shape != n.shape:
            raise ValueError(f"x_pos has shape {p.shape} but x_neg has shape {n.shape}")
        if p.shape != (self.n_in,):
            raise ValueError(f"x_pos and x_neg must have shape ({self.n_in},), got {p.shape}")
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

    def fan_in(self) -> List[Dict[str, Any]]:
        """Per layer: how many inputs each output reads, `{"n_in", "min", "mean", "max"}`.
        `min`/`max` are None for layers above ~4M synapses (the mean comes from the count)."""
        out = []
        for k, (spec, report) in enumerate(zip(self._specs, self._engine.stats()["layers"])):
            n_syn = int(report["synapses"])
            row: Dict[str, Any] = {"n_in": spec.n_in, "mean": n_syn / spec.n_out,
                                   "min": None, "max": None}
            if n_syn <= _FAN_IN_SCAN_LIMIT:
                counts = self.layers[k].fan_in()
                row["min"], row["max"] = int(counts.min()), int(counts.max())
            out.append(row)
        return out

    def _check_fan_in(self) -> None:
        """A layer without synapses cannot learn: an error. A narrowing layer (n_out < n_in)
        at the default receptive field (radius 0.1, no fan_in) that gives some output fewer
        than half of its inputs gets a `LowFanInWarning`: the default suits same-size local
        maps, rarely a readout (LayerSpec(64, 10) reads 12-13 of 64 pixels per output)."""
        default_radius = LayerSpec(1, 1).radius
        reports = self._engine.stats()["layers"]
        for k, (spec, report) in enumerate(zip(self._specs, reports)):
            if int(report["synapses"]) == 0:
                raise ValueError(
                    f"layer {k} ({spec.n_in} -> {spec.n_out}, dims={spec.dims}, "
                    f"radius={spec.radius}) has no synapses: no compatible input lies within "
                    f"the radius of any output. Use a larger radius, e.g. "
                    f"radius=lpn.radius_for_fan_in({spec.n_in}, 16), or check the tags")
            if spec.fan_in is not None or spec.radius != default_radius \
                    or spec.n_out >= spec.n_in:
                continue  # a receptive field chosen on purpose, or a same-size local map
            row = self.fan_in()[k]
            low = row["min"] if row["min"] is not None else row["mean"]
            if low < spec.n_in / 2:
                warnings.warn(
                    f"layer {k} ({spec.n_in} -> {spec.n_out}) uses the default radius "
                    f"{spec.radius}: each output reads {_fan_in_text(row)} inputs. For a "
                    f"dense layer pass radius=lpn.radius_for_fan_in({spec.n_in}, 'all'); to "
                    f"keep a local map, set fan_in or radius explicitly",
                    LowFanInWarning, stacklevel=3)

    def __repr__(self) -> str:
        shape = " -> ".join([str(self.n_in)] + [str(s.n_out) for s in self._specs])
        fans = ", ".join(_fan_in_text(row) for row in self.fan_in())
        return f"<lpn.Network {shape}, fan-in per output {fans}, seed={self.seed}>"

    # -- checkpoints, resume, pickling (docs/long-running.md) --------------------------------
    # Set by `checkpoint_every`; a class attribute so networks built any way start without one.
    _checkpointer: Optional[_ckpt.Checkpointer] = None

    def to_bytes(self) -> bytes:
        """The whole learning state as checkpoint bytes (a safetensors file, see `save`)."""
        return self._engine.to_bytes()

    @classmethod
    def from_bytes(cls, data: Any) -> "Network":
        """A network from `to_bytes` output; `ValueError` naming the problem for anything that
        is not an intact lpn checkpoint."""
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TypeError(f"checkpoint data must be bytes, got {type(data).__name__}")
        engine = _lpn.Engine.from_bytes(data)
        try:
            specs = [spec_from_dict(d) for d in json.loads(engine.specs_json())]
            config = config_from_dict(json.loads(engine.config_json()))
        except (TypeError, ValueError) as exc:  # the engine accepted what Python would not
            raise ValueError(f"invalid lpn checkpoint: {exc}") from None
        return cls._from_engine(engine, specs, config)

    def save(self, path: "_ckpt.PathLike") -> str:
        """Write a checkpoint of every bit of state to `path` (str or os.PathLike), atomically:
        a crash mid-save leaves any previous file at `path` intact. Returns the path."""
        return _ckpt.atomic_write(path, self._engine.to_bytes())

    @classmethod
    def load(cls, path: "_ckpt.PathLike") -> "Network":
        """Resume from a checkpoint written by `save`; training continues bit for bit as if
        never interrupted. Never executes code from the file."""
        p = _ckpt.fspath(path)
        data = _ckpt.read_file(p)
        try:
            return cls.from_bytes(data)
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None

    @classmethod
    def load_latest(cls, dir_or_pattern: "_ckpt.PathLike") -> "Network":
        """Load the newest checkpoint of a series written by `checkpoint_every` (a directory,
        or a pattern with a `{step}` field); unreadable newer files are skipped with a warning."""
        return _ckpt.latest_loadable(cls, dir_or_pattern)

    def checkpoint_every(self, steps: Optional[int], path: "_ckpt.PathLike" = "checkpoints",
                         keep: int = 3) -> None:
        """From now on, save from within `learn` whenever the new-sample counter crosses a
        multiple of `steps`, to `path` (a directory, or a pattern with a `{step}` field such as
        `"run/net-{step:09d}.safetensors"`), keeping the newest `keep` files (0 keeps all).
        `steps=None` or 0 turns it off."""
        if steps is None or (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool)
                             and steps == 0):
            self._checkpointer = None
            return
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
            raise TypeError(f"steps must be an int, got {type(steps).__name__}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 0:
            raise ValueError(f"keep must be an int >= 0, got {keep!r}")
        pattern = _ckpt.series_pattern(path)
        self._checkpointer = _ckpt.Checkpointer(int(steps), pattern, int(keep),
                                                self._engine.samples)

    def __reduce__(self) -> Tuple[Any, Tuple[bytes]]:
        # Pickles, copy.copy and copy.deepcopy all go through the checkpoint bytes: the copy is
        # independent and exact, and unpickling runs no code from the payload. Checkpointing
        # settings stay with the original (a copy writing to the same files would clobber them).
        return (type(self).from_bytes, (self._engine.to_bytes(),))
