"""Plain NumPy reference of the LPN learning step (docs/rule.md, docs/rule-notes.md).

Three files: the rule of one layer, DESIGN §3 step by step, is ``lpn/reference_rule.py``; the
float-order helpers that make it bit-identical to the engine are ``lpn/reference_float.py``;
this module holds the layer and network state, structural plasticity (§5.2), the hidden-layer
signals (§4), replay (§5.3) and the contrastive step (§5.4).

Tests compare the Rust engine against this module, so it is written for clarity and for
numerical fidelity rather than speed:

* synapse state, biases, traces and every per-synapse formula are float32, with the
  operations in the order docs/rule-notes.md writes them;
* per-row sums (``z``, ``nx2``, the feedback product) add one term at a time in row storage
  order, exactly as a sequential float32 loop would;
* reductions that feed a discrete decision (``mean(h)``, ``mean(l > 0)``, the step loss
  ``L``) are sequential float64 sums of float32 terms, so quota and budget decisions agree
  with the engine bit for bit rather than "almost".

Structural plasticity (``restructure``, and ``restructure_every`` inside ``learn``) is modelled
exactly.  Replay is modelled except for the random draws: the engine's ChaCha stream cannot be
reproduced here, so ``learn(..., replay_samples=...)`` is handed the samples the engine drew
and applies them after the new one, as the engine does.  The reservoir itself is not kept here;
its policies are ``lpn.reference_replay.ReferenceReservoir``, which asks for every draw. The
softmax readout and its window (``output_error``, ``readout_window``) are modelled exactly.
Defaults and geometry (unit positions, distances, the radius tolerance) are the engine's,
read from ``lpn._lpn``: one definition of each, so the reference differs from the engine
only where the rule is written twice. A frozen layer is skipped by ``consolidate`` and
refused by ``contrastive_step``, as in the engine.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

# Absolute imports: tests also load this file by path, outside the package.
from lpn import _lpn
from lpn import reference_rule as rule
from lpn.reference_float import F32, dphi, phi, row_sum, seq_sum64, sigmoid64
from lpn.reference_replay import softmax_error, window_mask

__all__ = ["DEFAULT_CONFIG", "ReferenceLayer", "ReferenceNetwork"]

# The engine's defaults (the one source: src/config.rs), as a plain dict.
DEFAULT_CONFIG: dict[str, Any] = json.loads(_lpn.config_defaults())

ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid")
SIGNALS = ("output", "feedback", "frozen", "contrastive")

_SYNAPSE_FLOATS = ("weight", "short_trail", "long_trail", "consolidation", "anchor")
# LayerSpec fields that structural plasticity needs (the per-row max_fan_in comes from state()).
_GEOMETRY_KEYS = ("dims", "periodic", "radius", "growth_radius", "in_tags", "out_tags",
                  "tag_affinity", "tag_threshold", "in_shape", "out_shape")


def _vector(value: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=F32)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _mask(mask: Any, n: int) -> np.ndarray:
    if mask is None:
        return np.ones(n, dtype=bool)
    arr = np.asarray(mask)
    if arr.shape != (n,):
        raise ValueError(f"mask must have shape ({n},), got {arr.shape}")
    return arr.astype(bool)


def _tag_vector(tags: Any, n: int, name: str) -> np.ndarray:
    if tags is None:
        return np.zeros(n, dtype=np.int64)
    arr = np.asarray(tags, dtype=np.int64).ravel()
    if arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries, expected {n}")
    return arr


def _positions(pos: Any, n: int, dims: int, shape: Any, name: str) -> np.ndarray:
    """(n, 2) unit positions (x, y) as the engine's ``positions()`` gives them; without them,
    the engine's own layout (``_lpn.unit_positions``: a ring at y = 0.5, or an h x w grid)."""
    if pos is not None:
        arr = np.asarray(pos, dtype=np.float64)
        if arr.shape != (n, 2):
            raise ValueError(f"{name} must have shape ({n}, 2), got {arr.shape}")
        return arr
    try:
        return _lpn.unit_positions(n, dims, None if shape is None else tuple(shape))
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None


# --------------------------------------------------------------------------------------------
# one layer


class ReferenceLayer:
    """One sparse local layer with the state the engine keeps for it.

    Synapse arrays have one entry per synapse, rows (``post``) ascending and, inside a row,
    ``pre`` ascending: the engine's storage order, which fixes the order of every row sum.
    """

    def __init__(self, d: dict[str, Any], config: dict[str, Any]):
        self.n_in = int(d["n_in"])
        self.n_out = int(d["n_out"])
        self.activation = str(d.get("activation", "linear"))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}, expected one of {ACTIVATIONS}"
            )
        self.use_bias = bool(d.get("use_bias", True))
        self.signal = str(d.get("signal", "output"))
        if self.signal not in SIGNALS:
            raise ValueError(f"unknown signal {self.signal!r}, expected one of {SIGNALS}")
        fb = d.get("feedback")
        self.feedback: np.ndarray | None = None if fb is None else np.array(fb, dtype=F32)

        pre = np.asarray(d["pre"], dtype=np.int64).ravel()
        post = np.asarray(d["post"], dtype=np.int64).ravel()
        n = pre.size
        if post.size != n:
            raise ValueError(f"pre has {n} entries but post has {post.size}")
        if n and (pre.min() < 0 or pre.max() >= self.n_in):
            raise ValueError(f"pre indices must lie in [0, {self.n_in})")
        if n and (post.min() < 0 or post.max() >= self.n_out):
            raise ValueError(f"post indices must lie in [0, {self.n_out})")
        # Storage order is part of the numerics, so put synapses in it whatever order came in.
        order = np.lexsort((pre, post))
        self.pre = pre[order]
        self.post = post[order]
        if n > 1 and np.any((np.diff(self.post) == 0) & (np.diff(self.pre) == 0)):
            raise ValueError("duplicate synapse (pre, post)")

        def syn(name: str) -> np.ndarray:
            if d.get(name) is None:
                return np.zeros(n, dtype=F32)
            arr = np.array(d[name], dtype=F32).ravel()
            if arr.size != n:
                raise ValueError(f"{name} has {arr.size} entries, expected {n}")
            return arr[order]

        self.weight = syn("weight")
        self.short_trail = syn("short_trail")
        self.long_trail = syn("long_trail")
        self.consolidation = syn("consolidation")
        self.anchor = syn("anchor")
        # Cascade levels (docs/rule-notes.md), present only with consolidation_mode="cascade".
        self._synapse_floats = _SYNAPSE_FLOATS + rule.cascade_columns(config)
        for name in self._synapse_floats[len(_SYNAPSE_FLOATS):]:
            setattr(self, name, syn(name))

        def vec(name: str, size: int) -> np.ndarray:
            if d.get(name) is None:
                return np.zeros(size, dtype=F32)
            arr = np.array(d[name], dtype=F32).ravel()
            if arr.size != size:
                raise ValueError(f"{name} has {arr.size} entries, expected {size}")
            return arr

        self.bias = vec("bias", self.n_out)
        self.error_trace = vec("error_trace", self.n_out)
        self.activity_trace = vec("activity_trace", self.n_in)
        self.budget = float(d["budget"]) if d.get("budget") is not None else float(config["budget"])
        self.loss_avg = float(d.get("loss_avg", 0.0))
        self.has_loss_avg = bool(d.get("has_loss_avg", False))
        self.expanding = bool(d.get("expanding", False))
        self.steps = int(d.get("steps", 0))
        self.touched = 0  # synapses selected by the last step, for comparison with stats()

        self._cfg = config
        self._index_rows()

        # Geometry for structural plasticity; a fresh layer's defaults when absent.
        self.dims = int(d.get("dims", 1))
        self.periodic = bool(d.get("periodic", True))
        self.radius = float(d.get("radius", 0.1))
        gr = d.get("growth_radius")
        self.growth_radius = 1.5 * self.radius if gr is None else float(gr)
        self.in_tags = _tag_vector(d.get("in_tags"), self.n_in, "in_tags")
        self.out_tags = _tag_vector(d.get("out_tags"), self.n_out, "out_tags")
        aff = d.get("tag_affinity")
        self.tag_affinity = None if aff is None else np.asarray(aff, dtype=np.float64)
        self.tag_threshold = float(d.get("tag_threshold", 0.5))
        self.pos_in = _positions(d.get("pos_in"), self.n_in, self.dims, d.get("in_shape"), "pos_in")
        self.pos_out = _positions(
            d.get("pos_out"), self.n_out, self.dims, d.get("out_shape"), "pos_out"
        )
        mf = d.get("max_fan_in")
        if mf is None:
            mf = 2 * np.bincount(self.post, minlength=self.n_out)
        self.max_fan_in = np.broadcast_to(np.asarray(mf, dtype=np.int64), (self.n_out,)).copy()
        self._growth: list[tuple[np.ndarray, np.ndarray]] | None = None
        self.pruned = self.grown = 0  # last structural pass, as stats() reports them
        self.pruned_total = self.grown_total = 0

    def _index_rows(self) -> None:
        """Row starts and in-row slots of the (post, pre)-sorted synapse arrays."""
        n = self.pre.size
        counts = np.bincount(self.post, minlength=self.n_out)
        self._row_start = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        self._slot = np.arange(n, dtype=np.int64) - self._row_start[self.post]
        self._width = int(counts.max()) if n else 0

    # ---- inspection -------------------------------------------------------------------------

    def synapses(self) -> dict[str, np.ndarray]:
        """Fresh copies of the synapse arrays, as `Layer.synapses()` returns them."""
        out = {"pre": self.pre.copy(), "post": self.post.copy()}
        for name in self._synapse_floats:
            out[name] = getattr(self, name).copy()
        return out

    def state(self) -> dict[str, Any]:
        """Fresh copies of the row and layer state (bias, traces, budget, counters)."""
        return {
            "bias": self.bias.copy(),
            "error_trace": self.error_trace.copy(),
            "activity_trace": self.activity_trace.copy(),
            "budget": self.budget,
            "loss_avg": self.loss_avg,
            "has_loss_avg": self.has_loss_avg,
            "expanding": self.expanding,
            "steps": self.steps,
        }

    # ---- structural plasticity (docs/rule.md) -------------------------------------------------

    def _compatible(self) -> np.ndarray:
        """(n_in, n_out) tag compatibility."""
        if self.tag_affinity is None:
            return self.in_tags[:, None] == self.out_tags[None, :]
        affinity = self.tag_affinity[self.in_tags[:, None], self.out_tags[None, :]]
        return affinity >= self.tag_threshold

    def growth_neighbourhood(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per output row: (inputs ascending, their distances) within ``growth_radius`` and
        tag-compatible. All pairs at once: the reference is for small layers."""
        if self._growth is None:
            # The engine's distance and radius tolerance (src/topology.rs), not a copy.
            d = self.dims
            dist = _lpn.distances(self.pos_in[:, :d], self.pos_out[:, :d], self.periodic)
            ok = (dist <= _lpn.reach(self.growth_radius)) & self._compatible()
            self._growth = []
            for j in range(self.n_out):
                idx = np.flatnonzero(ok[:, j])
                self._growth.append((idx, dist[idx, j]))
        return self._growth

    def restructure(self, config: dict[str, Any] | None = None) -> tuple[int, int]:
        """One prune-then-grow pass as src/structural.rs does it; returns (pruned, grown)."""
        cfg = self._cfg if config is None else {**self._cfg, **config}
        tw, tl = F32(cfg["prune_weight"]), F32(cfg["prune_long"])
        dead = (np.abs(self.weight) < tw) & (self.long_trail < tl) & (self.consolidation == 0)
        pruned = int(dead.sum())
        keep = ~dead
        self.pre, self.post = self.pre[keep], self.post[keep]
        for name in self._synapse_floats:
            setattr(self, name, getattr(self, name)[keep])

        # Growth sees the rows as pruning left them, and the mean of h over every row.
        mean_h = seq_sum64(self.error_trace) / self.n_out
        lens = np.bincount(self.post, minlength=self.n_out)
        per_row = int(cfg["grow_per_row"])
        new_pre: list[int] = []
        new_post: list[int] = []
        for j in np.flatnonzero(self.error_trace.astype(np.float64) > mean_h):
            limit = min(per_row, max(0, int(self.max_fan_in[j]) - int(lens[j])))
            if limit == 0:
                continue
            idx, dist = self.growth_neighbourhood()[j]
            free = ~np.isin(idx, self.pre[self.post == j])
            idx, dist = idx[free], dist[free]
            # Most active input first; ties nearer, then lower index (lexsort: last key first).
            order = np.lexsort((idx, dist, -self.activity_trace[idx]))[:limit]
            new_pre.extend(int(i) for i in idx[order])
            new_post.extend([int(j)] * order.size)
        grown = len(new_pre)
        if grown:
            pre = np.concatenate((self.pre, np.asarray(new_pre, dtype=np.int64)))
            post = np.concatenate((self.post, np.asarray(new_post, dtype=np.int64)))
            order = np.lexsort((pre, post))
            self.pre, self.post = pre[order], post[order]
            for name in self._synapse_floats:
                # w = l = c = w* = 0 (and cascade levels 0) and a fresh scout trail s = 1 (§5.2)
                fill = 1.0 if name == "short_trail" else 0.0
                grown_part = np.full(grown, fill, dtype=F32)
                setattr(self, name, np.concatenate((getattr(self, name), grown_part))[order])
        self._index_rows()
        self.pruned, self.grown = pruned, grown
        self.pruned_total += pruned
        self.grown_total += grown
        return pruned, grown

    # ---- numerics ---------------------------------------------------------------------------

    def _row_sum(self, per_synapse: np.ndarray) -> np.ndarray:
        return row_sum(per_synapse, self.post, self._slot, self.n_out, self._width)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`(z, y)`: pre-activations and outputs for one input vector."""
        z = self.bias + self._row_sum(self.weight * x[self.pre])
        return z, phi(self.activation, z)

    def derivative(self, z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """`phi'(z)` of the layer's activation, given `z` and `y = phi(z)`."""
        return dphi(self.activation, z, y)

    # ---- the rule (reference_rule.py reads as DESIGN §3) -------------------------------------

    def step(self, x: np.ndarray, e: np.ndarray, involved: np.ndarray, loss: float) -> None:
        """One application of the rule (§3 steps 1-6), then the budget and trace updates."""
        rule.step(self, x, e, involved, loss)

    def consolidate(self, strength: float = 1.0) -> None:
        """Task-boundary consolidation of this layer (docs/rule.md)."""
        rule.consolidate(self, strength)


# --------------------------------------------------------------------------------------------
# network


def _as_dict(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj)


class ReferenceNetwork:
    """A stack of ``ReferenceLayer`` s with the engine's network-level step (docs/rule.md, networks of layers)."""

    def __init__(self, layers: list[ReferenceLayer], config: dict[str, Any]):
        if not layers:
            raise ValueError("a network needs at least one layer")
        for k, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
            if a.n_out != b.n_in:
                raise ValueError(
                    f"layer {k} has n_out={a.n_out} but layer {k + 1} has n_in={b.n_in}"
                )
        self.layers = layers
        self.config = config
        # Rule applications (new and replayed), new samples, replayed samples: as stats().
        self.steps = self.samples = self.replays = 0
        n_final = layers[-1].n_out
        self.softmax = config.get("output_error", "mse") == "softmax"
        self.window = int(config.get("readout_window", 0))
        if self.softmax and layers[-1].activation != "linear":
            raise ValueError(
                'output_error="softmax" reads the output layer\'s z as logits: its activation '
                f'must be "linear", got "{layers[-1].activation}"'
            )
        # The readout window's 1-based index of the last new sample with t_j > 0 (0: never).
        self.last_positive = np.zeros(n_final if self.window else 0, dtype=np.uint64)
        for k, layer in enumerate(layers[:-1]):
            if layer.signal == "output":
                raise ValueError(f"layer {k} is hidden but has signal 'output'")
            if layer.signal == "feedback":
                fb = layer.feedback
                if fb is None or fb.shape != (layer.n_out, n_final):
                    got = None if fb is None else fb.shape
                    raise ValueError(
                        f"layer {k} needs a feedback matrix of shape ({layer.n_out}, {n_final}), "
                        f"got {got}"
                    )

    @property
    def n_in(self) -> int:
        """Width of the input vector."""
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        """Width of the output vector."""
        return self.layers[-1].n_out

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def from_state(cls, layers: list[dict[str, Any]], config: dict[str, Any]) -> ReferenceNetwork:
        """Build from plain dicts: the keys of ``synapses()`` and ``state()`` plus ``n_in``,
        ``n_out``, ``activation``, ``use_bias``, ``feedback`` and ``signal``.

        Missing optional keys take the values of a fresh layer (zero trails, consolidation,
        anchor, bias and traces; budget from ``config``; the last layer's signal is
        ``"output"``, others follow ``config["hidden_signal"]``). ``config`` may be partial;
        absent fields take the ``LearnConfig`` defaults.
        """
        cfg = dict(DEFAULT_CONFIG)
        unknown = set(config) - set(cfg)
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        cfg.update(config)
        built = []
        n_hidden = len(layers) - 1
        for k, d in enumerate(layers):
            d = dict(d)
            if d.get("signal") is None:
                if k == n_hidden:
                    d["signal"] = "output"
                else:
                    hs = cfg["hidden_signal"]
                    d["signal"] = hs if isinstance(hs, str) else list(hs)[k]
            built.append(ReferenceLayer(d, cfg))
        return cls(built, cfg)

    @classmethod
    def from_network(cls, net: Any) -> ReferenceNetwork:
        """Copy every piece of state out of an ``lpn.Network`` through its public inspection
        API (the compiled module is otherwise used only for geometry and defaults)."""
        config = _as_dict(net.config)
        dicts = []
        for layer in net.layers:
            spec = _as_dict(layer.spec)
            d: dict[str, Any] = {k: spec[k] for k in _GEOMETRY_KEYS if k in spec}
            if hasattr(layer, "positions"):
                d["pos_in"], d["pos_out"] = layer.positions()
            d.update(layer.synapses())
            d.update(layer.state())
            d["n_in"] = spec["n_in"]
            d["n_out"] = spec["n_out"]
            d["activation"] = spec.get("activation", "linear")
            d["use_bias"] = spec.get("bias", True)
            d["feedback"] = layer.feedback()
            d["signal"] = layer.signal
            dicts.append(d)
        ref = cls.from_state(dicts, config)
        if hasattr(net, "stats"):
            stats = net.stats()
            ref.steps, ref.samples = int(stats["steps"]), int(stats["samples"])
            ref.replays = int(stats["replays"])
        engine = getattr(net, "_engine", None)
        if engine is not None and ref.window:
            ref.last_positive = np.array(engine.readout_last(), dtype=np.uint64)
        return ref

    # ---- forward ----------------------------------------------------------------------------

    def _forward_all(self, x: np.ndarray, upto: int | None = None):
        """Inputs, pre-activations and outputs of layers ``0..upto`` (all by default)."""
        last = len(self.layers) - 1 if upto is None else upto
        inputs, zs, ys = [], [], []
        h = x
        for layer in self.layers[: last + 1]:
            z, y = layer.forward(h)
            inputs.append(h)
            zs.append(z)
            ys.append(y)
            h = y
        return inputs, zs, ys

    def predict(self, x: Any, mask: Any = None) -> np.ndarray:
        """Forward through every layer; same shapes and mask rule as `Network.predict`."""
        arr = np.asarray(x, dtype=F32)
        if arr.ndim == 2:
            out = np.zeros((arr.shape[0], self.n_out), dtype=F32)
            for b, row in enumerate(arr):
                out[b] = self.predict(row, mask)
            return out
        x = _vector(arr, self.n_in, "x")
        m = _mask(mask, self.n_out)
        y = self._forward_all(x)[2][-1].copy()
        y[~m] = 0
        return y

    # ---- learning ---------------------------------------------------------------------------

    def learn(self, x: Any, t: Any, mask: Any = None, replay_samples: Any = ()) -> float:
        """One online step on one sample, then one step on each of ``replay_samples`` (the
        ``(x, t, mask)`` the engine drew from its buffer, in order); returns the new sample's
        step loss ``L``. With ``readout_window > 0`` the new sample (not the replayed ones)
        involves only ``mask`` and the classes with a positive target among the last
        ``readout_window`` new samples. With ``restructure_every = K > 0`` a structural pass follows every
        step that brings the network's step count to a multiple of K."""
        x = _vector(x, self.n_in, "x")
        t = _vector(t, self.n_out, "t")
        m = _mask(mask, self.n_out)
        replays = [
            (_vector(rx, self.n_in, "replayed x"), _vector(rt, self.n_out, "replayed t"),
             _mask(rm, self.n_out))
            for rx, rt, rm in replay_samples
        ]
        if self.window:
            m = window_mask(self.last_positive, t, m, self.samples + 1, self.window)
        loss = self._step(x, t, m)
        self.samples += 1
        for rx, rt, rm in replays:
            self._step(rx, rt, rm)
            self.replays += 1
        return loss

    def conflict(self, loss: float, avg_before: float, had_avg: bool = True) -> bool:
        """Whether a step with loss ``loss`` counts as a conflict (§5.3) given the output
        layer's loss average before it."""
        return had_avg and loss > float(self.config["conflict_ratio"]) * avg_before

    def _step(self, x: np.ndarray, t: np.ndarray, m: np.ndarray) -> float:
        inputs, zs, ys = self._forward_all(x)

        out = self.layers[-1]
        if self.softmax:
            e_out, loss = softmax_error(zs[-1], t, m)
        else:
            diff = t - ys[-1]
            e_out = np.where(m, diff * out.derivative(zs[-1], ys[-1]), F32(0)).astype(F32)
            loss = seq_sum64(diff[m], square=True) / max(1, int(m.sum()))

        # Every error comes from the activations of the one forward pass above, so the order
        # in which layers then apply their steps does not matter.
        plans = []
        for k, layer in enumerate(self.layers[:-1]):
            if layer.signal != "feedback":
                continue  # frozen and contrastive hidden layers never learn here
            fb = layer.feedback
            assert fb is not None  # every "feedback" layer has its matrix
            involved = np.any(fb[:, m] != 0, axis=1)
            back = np.zeros(layer.n_out, dtype=F32)
            for j in range(fb.shape[1]):  # F·e summed over outputs in order, in float32
                back += fb[:, j] * e_out[j]
            e_h = (back * layer.derivative(zs[k], ys[k])).astype(F32)
            hidden_loss = seq_sum64(e_h, square=True) / layer.n_out
            plans.append((layer, inputs[k], e_h, involved, hidden_loss))
        plans.append((out, inputs[-1], e_out, m, loss))

        for layer, x_in, e, involved, layer_loss in plans:
            layer.step(x_in, e, involved, layer_loss)
        self.steps += 1
        every = int(self.config.get("restructure_every", 0))
        if every > 0 and self.steps % every == 0:
            self.restructure()
        return loss

    def restructure(self) -> tuple[int, int]:
        """One structural pass over every layer that is not frozen; returns (pruned, grown)."""
        pruned = grown = 0
        for layer in self.layers:
            if layer.signal != "frozen":
                p, g = layer.restructure()
                pruned += p
                grown += g
        return pruned, grown

    def consolidate(self, strength: float = 1.0) -> None:
        """Consolidation on every layer that learns (docs/rule.md): a frozen layer never changes, so it is skipped
        (as the engine does). Refused, as by the engine, when the cascade sets consolidation."""
        if self.config.get("consolidation_mode", "none") == "cascade":
            raise ValueError(
                'consolidate() is the task-boundary rule (consolidation_mode="none"); with '
                'consolidation_mode="cascade" the cascade sets consolidation on every step'
            )
        for layer in self.layers:
            if layer.signal != "frozen":
                layer.consolidate(strength)

    def contrastive_step(self, x_pos: Any, x_neg: Any, layer: int = 0) -> tuple[float, float]:
        """Target-free step of docs/rule.md on layer ``layer``; inputs are network inputs and
        pass through the layers below first. Returns ``(G+, G-)``."""
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must be in [0, {len(self.layers)}), got {layer}")
        target = self.layers[layer]
        if target.signal == "frozen":
            # The engine's refusal, word for word: a frozen layer never learns.
            raise ValueError(
                f'layer {layer} is frozen (hidden_signal="frozen"); it never learns'
            )
        theta = float(F32(self.config["contrastive_threshold"]))
        x_pos = _vector(x_pos, self.n_in, "x_pos")
        x_neg = _vector(x_neg, self.n_in, "x_neg")

        # Both passes use the weights from before either update.
        passes = []
        for x, sign in ((x_pos, 1.0), (x_neg, -1.0)):
            inputs, zs, ys = self._forward_all(x, upto=layer)
            y, z = ys[-1], zs[-1]
            goodness = seq_sum64(y, square=True) / target.n_out
            # e+ pushes G up towards theta, e- pushes it down.
            p = sigmoid64(sign * (theta - goodness))
            e = (F32(sign * p) * y * target.derivative(z, y)).astype(F32)
            passes.append((inputs[-1], e, goodness))

        everyone = np.ones(target.n_out, dtype=bool)
        for x_in, e, _ in passes:
            target.step(x_in, e, everyone, seq_sum64(e, square=True) / target.n_out)
        return passes[0][2], passes[1][2]
