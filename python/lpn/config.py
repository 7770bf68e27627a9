"""Layer specifications and learning hyper-parameters (docs/rule.md).

Both are plain frozen dataclasses: they hold Python types, print readably, compare by value,
and travel to the engine (and into checkpoints) as JSON. Their defaults and validation rules
are the engine's (`_lpn.config_defaults()`, `_lpn.validate_config()`, and the same for specs):
one source, one error wording.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _lpn

# The engine owns every default and every rule (src/config.rs): the dataclasses below read
# their defaults from it and hand every new value to its validator, so the two cannot drift.
_CONFIG_DEFAULTS: dict = json.loads(_lpn.config_defaults())
_SPEC_DEFAULTS: dict = json.loads(_lpn.spec_defaults())
_U64 = 2 ** 64


def _int(name: str, v: Any) -> int:
    """An unsigned integer, the engine's type for counts and sizes."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if not 0 <= v < _U64:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return int(v)


def _float(name: str, v: Any) -> float:
    """A finite float (JSON, the engine's transport, has no NaN or inf)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
    v = float(v)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {v}")
    return v


def _opt_int(name: str, v: Any) -> Optional[int]:
    return None if v is None else _int(name, v)


def _opt_float(name: str, v: Any) -> Optional[float]:
    return None if v is None else _float(name, v)


def _bool(name: str, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__}")
    return bool(v)


def _str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"{name} must be a str, got {type(v).__name__} {v!r}")
    return v


def _tags(name: str, tags: Any, n: int) -> Optional[Tuple[int, ...]]:
    if tags is None:
        return None
    arr = np.asarray(tags)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= 2 ** 32):
        raise ValueError(f"{name} must lie in [0, 2**32), got {arr.min()}..{arr.max()}")
    return tuple(int(t) for t in arr)


def _shape(name: str, shape: Any) -> Optional[Tuple[int, int]]:
    if shape is None:
        return None
    if len(shape) != 2:
        raise ValueError(f"{name} must be (h, w), got {shape!r}")
    return (_int(name, shape[0]), _int(name, shape[1]))


def _affinity(a: Any) -> Optional[Tuple[Tuple[float, ...], ...]]:
    if a is None:
        return None
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"tag_affinity must be a square T x T matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("tag_affinity contains NaN or inf")
    return tuple(tuple(float(v) for v in row) for row in arr)


# Python type of each field, by the annotation string (`from __future__ import annotations`).
_CONVERT: Dict[str, Callable[[str, Any], Any]] = {
    "int": _int,
    "Optional[int]": _opt_int,
    "float": _float,
    "Optional[float]": _opt_float,
    "bool": _bool,
    "str": _str,
}


def _convert(obj: Any, skip: Sequence[str] = ()) -> None:
    for f in dataclasses.fields(obj):
        if f.name not in skip:
            # `f.type` is the annotation string here (see _CONVERT), typed str | type by typeshed.
            object.__setattr__(obj, f.name, _CONVERT[str(f.type)](f.name, getattr(obj, f.name)))


@dataclass(frozen=True)
class LayerSpec:
    """One sparse local layer: `n_out` units, each reading inputs within `radius` whose tag is
    compatible (`tag_affinity[tag_in, tag_out] >= tag_threshold`; identity by default).

    Defaults and rules are the engine's; an invalid spec raises `ValueError` at construction
    with the engine's message."""

    n_in: int
    n_out: int
    dims: int = _SPEC_DEFAULTS["dims"]
    radius: float = _SPEC_DEFAULTS["radius"]
    fan_in: Optional[int] = _SPEC_DEFAULTS["fan_in"]
    in_tags: Optional[Sequence[int]] = _SPEC_DEFAULTS["in_tags"]
    out_tags: Optional[Sequence[int]] = _SPEC_DEFAULTS["out_tags"]
    tag_affinity: Optional[Any] = _SPEC_DEFAULTS["tag_affinity"]
    activation: str = _SPEC_DEFAULTS["activation"]
    bias: bool = _SPEC_DEFAULTS["bias"]
    in_shape: Optional[Tuple[int, int]] = _SPEC_DEFAULTS["in_shape"]
    out_shape: Optional[Tuple[int, int]] = _SPEC_DEFAULTS["out_shape"]
    periodic: bool = _SPEC_DEFAULTS["periodic"]
    tag_threshold: float = _SPEC_DEFAULTS["tag_threshold"]
    growth_radius: Optional[float] = _SPEC_DEFAULTS["growth_radius"]
    max_fan_in: Optional[int] = _SPEC_DEFAULTS["max_fan_in"]

    _COMPOUND = ("in_tags", "out_tags", "tag_affinity", "in_shape", "out_shape")

    def __post_init__(self) -> None:
        s = object.__setattr__
        _convert(self, skip=self._COMPOUND)
        s(self, "in_tags", _tags("in_tags", self.in_tags, self.n_in))
        s(self, "out_tags", _tags("out_tags", self.out_tags, self.n_out))
        s(self, "in_shape", _shape("in_shape", self.in_shape))
        s(self, "out_shape", _shape("out_shape", self.out_shape))
        s(self, "tag_affinity", _affinity(self.tag_affinity))
        _lpn.validate_spec(json.dumps(self.to_json_dict()))

    def to_json_dict(self) -> dict:
        """The fields as plain JSON types, as the engine reads them."""
        d = dataclasses.asdict(self)
        for k in self._COMPOUND:
            if d[k] is not None:
                d[k] = [list(r) if isinstance(r, (tuple, list)) else r for r in d[k]]
        return d

    def replace(self, **changes: Any) -> "LayerSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _hidden_signal(v: Any) -> Union[str, Tuple[str, ...]]:
    if isinstance(v, str):
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(one, str) for one in v):
        return tuple(v)
    raise TypeError(f"hidden_signal must be a str or a sequence of str, got {v!r}")


@dataclass(frozen=True)
class LearnConfig:
    """Every hyper-parameter of the rule (docs/rule.md), with its defaults (see docs/rule-notes.md).

    Defaults and rules are the engine's (src/config.rs); an invalid value raises `ValueError`
    at construction and in `replace()`, with the engine's message."""

    lr: float = _CONFIG_DEFAULTS["lr"]
    bias_lr: Optional[float] = _CONFIG_DEFAULTS["bias_lr"]
    budget: float = _CONFIG_DEFAULTS["budget"]
    budget_min: float = _CONFIG_DEFAULTS["budget_min"]
    budget_max: float = _CONFIG_DEFAULTS["budget_max"]
    shrink: float = _CONFIG_DEFAULTS["shrink"]
    grow: float = _CONFIG_DEFAULTS["grow"]
    kappa_short: float = _CONFIG_DEFAULTS["kappa_short"]
    kappa_long: float = _CONFIG_DEFAULTS["kappa_long"]
    beta: float = _CONFIG_DEFAULTS["beta"]
    rho_short: float = _CONFIG_DEFAULTS["rho_short"]
    rho_long: float = _CONFIG_DEFAULTS["rho_long"]
    rho_trace: float = _CONFIG_DEFAULTS["rho_trace"]
    rho_consolidation: float = _CONFIG_DEFAULTS["rho_consolidation"]
    pull: float = _CONFIG_DEFAULTS["pull"]
    w_max: float = _CONFIG_DEFAULTS["w_max"]
    init_std: float = _CONFIG_DEFAULTS["init_std"]
    eps: float = _CONFIG_DEFAULTS["eps"]
    hidden_signal: Union[str, Tuple[str, ...]] = _CONFIG_DEFAULTS["hidden_signal"]
    auto_consolidate_every: int = _CONFIG_DEFAULTS["auto_consolidate_every"]
    auto_threshold: float = _CONFIG_DEFAULTS["auto_threshold"]
    auto_increment: float = _CONFIG_DEFAULTS["auto_increment"]
    restructure_every: int = _CONFIG_DEFAULTS["restructure_every"]
    prune_weight: float = _CONFIG_DEFAULTS["prune_weight"]
    prune_long: float = _CONFIG_DEFAULTS["prune_long"]
    grow_per_row: int = _CONFIG_DEFAULTS["grow_per_row"]
    replay_capacity: int = _CONFIG_DEFAULTS["replay_capacity"]
    replay_on_conflict: bool = _CONFIG_DEFAULTS["replay_on_conflict"]
    conflict_ratio: float = _CONFIG_DEFAULTS["conflict_ratio"]
    contrastive_threshold: float = _CONFIG_DEFAULTS["contrastive_threshold"]
    consolidation_mode: str = _CONFIG_DEFAULTS["consolidation_mode"]
    cascade_levels: int = _CONFIG_DEFAULTS["cascade_levels"]
    cascade_tau: float = _CONFIG_DEFAULTS["cascade_tau"]
    cascade_ratio: float = _CONFIG_DEFAULTS["cascade_ratio"]
    cascade_max: float = _CONFIG_DEFAULTS["cascade_max"]
    cascade_half: float = _CONFIG_DEFAULTS["cascade_half"]
    cascade_anchor_level: int = _CONFIG_DEFAULTS["cascade_anchor_level"]
    route_consolidation: float = _CONFIG_DEFAULTS["route_consolidation"]
    route_long: float = _CONFIG_DEFAULTS["route_long"]
    trail_scaled_step: bool = _CONFIG_DEFAULTS["trail_scaled_step"]
    output_error: str = _CONFIG_DEFAULTS["output_error"]
    readout_window: int = _CONFIG_DEFAULTS["readout_window"]
    replay_policy: str = _CONFIG_DEFAULTS["replay_policy"]

    def __post_init__(self) -> None:
        _convert(self, skip=("hidden_signal",))
        object.__setattr__(self, "hidden_signal", _hidden_signal(self.hidden_signal))
        _lpn.validate_config(json.dumps(self.to_json_dict()))

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
