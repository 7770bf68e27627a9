"""Layer specifications and learning hyper-parameters (docs/rule.md).

Both are plain frozen dataclasses: they validate on construction, print readably, compare by
value, and travel to the engine (and into checkpoints) as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

ACTIVATIONS = ("linear", "tanh", "relu", "sigmoid")
HIDDEN_SIGNALS = ("feedback", "contrastive", "frozen")


def _int(name: str, v: Any, *, minimum: int = 0, allow_none: bool = False) -> Optional[int]:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return int(v)


def _float(name: str, v: Any, *, allow_none: bool = False) -> Optional[float]:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    return v


def _tags(name: str, tags: Any, n: int) -> Optional[Tuple[int, ...]]:
    if tags is None:
        return None
    arr = np.asarray(tags)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {arr.min()}")
    return tuple(int(t) for t in arr)


@dataclass(frozen=True)
class LayerSpec:
    """One sparse local layer: `n_out` units, each reading inputs within `radius` whose tag is
    compatible (`tag_affinity[tag_in, tag_out] >= tag_threshold`; identity by default)."""

    n_in: int
    n_out: int
    dims: int = 1
    radius: float = 0.1
    fan_in: Optional[int] = None
    in_tags: Optional[Sequence[int]] = None
    out_tags: Optional[Sequence[int]] = None
    tag_affinity: Optional[Any] = None
    activation: str = "linear"
    bias: bool = True
    in_shape: Optional[Tuple[int, int]] = None
    out_shape: Optional[Tuple[int, int]] = None
    periodic: bool = True
    tag_threshold: float = 0.5
    growth_radius: Optional[float] = None
    max_fan_in: Optional[int] = None

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "n_in", _int("n_in", self.n_in, minimum=1))
        s(self, "n_out", _int("n_out", self.n_out, minimum=1))
        s(self, "dims", _int("dims", self.dims, minimum=1))
        if self.dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {self.dims}")
        s(self, "radius", _float("radius", self.radius))
        if self.radius < 0:
            raise ValueError(f"radius must be >= 0, got {self.radius}")
        s(self, "fan_in", _int("fan_in", self.fan_in, minimum=1, allow_none=True))
        s(self, "max_fan_in", _int("max_fan_in", self.max_fan_in, minimum=0, allow_none=True))
        s(self, "growth_radius", _float("growth_radius", self.growth_radius, allow_none=True))
        s(self, "tag_threshold", _float("tag_threshold", self.tag_threshold))
        s(self, "in_tags", _tags("in_tags", self.in_tags, self.n_in))
        s(self, "out_tags", _tags("out_tags", self.out_tags, self.n_out))
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}: expected one of {', '.join(ACTIVATIONS)}"
            )
        if not isinstance(self.bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {type(self.bias).__name__}")
        s(self, "bias", bool(self.bias))
        for name in ("in_shape", "out_shape"):
            shape = getattr(self, name)
            if shape is not None:
                if len(shape) != 2:
                    raise ValueError(f"{name} must be (h, w), got {shape!r}")
                s(self, name, (_int(name, shape[0], minimum=1), _int(name, shape[1], minimum=1)))
        if self.tag_affinity is not None:
            a = np.asarray(self.tag_affinity, dtype=np.float64)
            if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
                raise ValueError(f"tag_affinity must be a square T x T matrix, got shape {a.shape}")
            if not np.all(np.isfinite(a)):
                raise ValueError("tag_affinity contains NaN or inf")
            s(self, "tag_affinity", tuple(tuple(float(v) for v in row) for row in a))

    def to_json_dict(self) -> dict:
        """The fields as plain JSON types, as the engine reads them."""
        d = dataclasses.asdict(self)
        for k in ("in_tags", "out_tags", "tag_affinity", "in_shape", "out_shape"):
            if d[k] is not None:
                d[k] = [list(r) if isinstance(r, (tuple, list)) else r for r in d[k]]
        return d


@dataclass(frozen=True)
class LearnConfig:
    """Every hyper-parameter of the rule (docs/rule.md), with its defaults (see docs/rule-notes.md)."""

    lr: float = 0.5
    bias_lr: Optional[float] = None
    budget: float = 0.3
    budget_min: float = 0.02
    budget_max: float = 1.0
    shrink: float = 0.98
    grow: float = 1.05
    kappa_short: float = 1.0
    kappa_long: float = 0.0
    beta: float = 0.5
    rho_short: float = 0.9
    rho_long: float = 0.995
    rho_trace: float = 0.9
    rho_consolidation: float = 1.0
    pull: float = 0.1
    w_max: float = 10.0
    init_std: float = 0.01
    eps: float = 1e-6
    hidden_signal: Union[str, Tuple[str, ...]] = "feedback"
    auto_consolidate_every: int = 0
    auto_threshold: float = 0.5
    auto_increment: float = 0.1
    restructure_every: int = 0
    prune_weight: float = 1e-3
    prune_long: float = 0.01
    grow_per_row: int = 2
    replay_capacity: int = 0
    replay_on_conflict: bool = False
    conflict_ratio: float = 1.5
    contrastive_threshold: float = 1.0

    _INTS = ("auto_consolidate_every", "restructure_every", "grow_per_row", "replay_capacity")

    def __post_init__(self) -> None:
        s = object.__setattr__
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in self._INTS:
                s(self, f.name, _int(f.name, v))
            elif f.name == "bias_lr":
                s(self, f.name, _float(f.name, v, allow_none=True))
            elif f.name == "hidden_signal":
                sig = (v,) if isinstance(v, str) else tuple(v)
                for one in sig:
                    if one not in HIDDEN_SIGNALS:
                        raise ValueError(
                            f"unknown hidden_signal {one!r}: expected one of "
                            f"{', '.join(HIDDEN_SIGNALS)}"
                        )
                s(self, f.name, v if isinstance(v, str) else sig)
            elif f.name == "replay_on_conflict":
                if not isinstance(v, (bool, np.bool_)):
                    raise TypeError(f"replay_on_conflict must be a bool, got {type(v).__name__}")
                s(self, f.name, bool(v))
            else:
                s(self, f.name, _float(f.name, v))

    def to_json_dict(self) -> dict:
        """The fields as plain JSON types, as the engine reads them."""
        d = dataclasses.asdict(self)
        if not isinstance(d["hidden_signal"], str):
            d["hidden_signal"] = list(d["hidden_signal"])
        return d

    def replace(self, **changes: Any) -> "LearnConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def specs_to_json(specs: Sequence[LayerSpec]) -> str:
    """The layer specifications as the engine's JSON."""
    return json.dumps([s.to_json_dict() for s in specs])


def config_to_json(cfg: LearnConfig) -> str:
    """The learning configuration as the engine's JSON."""
    return json.dumps(cfg.to_json_dict())


def spec_from_dict(d: dict) -> LayerSpec:
    """Rebuild a `LayerSpec` from `to_json_dict()` output (validates every field)."""
    return LayerSpec(**d)


def config_from_dict(d: dict) -> LearnConfig:
    """Rebuild a `LearnConfig` from `to_json_dict()` output (validates every field)."""
    known = {f.name for f in dataclasses.fields(LearnConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown LearnConfig option(s): {', '.join(unknown)}")
    return LearnConfig(**d)


__all__ = ["LayerSpec", "LearnConfig"]
