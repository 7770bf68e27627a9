"""What the scikit-learn and river wrappers share: building a network from estimator
hyper-parameters, and the defaults that make a first model learn.

The defaults differ from `LearnConfig()` on purpose (docs/estimators.md): `LearnConfig.lr = 0.5`
corrects half of each sample's error in one step, right for the noiseless local maps of the
experiment suite; on noisy labels that step size makes the weights follow the last samples.
The estimators default to `lr=0.02` with the whole row updated (`budget=1.0`), dense layers
(every output reads every input) and several passes: the online least-squares readout that
the digits and blobs measurements in docs/estimators.md were made with.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .config import LayerSpec, LearnConfig
from .network import Network, radius_for_fan_in

# Measured on digits (docs/estimators.md); also what both wrappers document.
DEFAULT_LR = 0.02
DEFAULT_BUDGET = 1.0


def learn_config(config: Any, lr: Optional[float], budget: Optional[float]) -> LearnConfig:
    """`config` (None, a LearnConfig or a dict of LearnConfig fields) with `lr` and `budget`
    applied on top when they are not None."""
    if config is None:
        cfg = LearnConfig()
    elif isinstance(config, LearnConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = LearnConfig(**config)
    else:
        raise TypeError(f"config must be None, an lpn.LearnConfig or a dict of its fields, got "
                        f"{type(config).__name__}")
    changes = {}
    if lr is not None:
        changes["lr"] = lr
    if budget is not None:
        changes["budget"] = budget
        # A budget above the controller's ceiling or below its floor is what the user asked for.
        changes["budget_max"] = max(cfg.budget_max, float(budget))
        changes["budget_min"] = min(cfg.budget_min, float(budget))
    return cfg.replace(**changes) if changes else cfg


def check_count(name: str, value: Any) -> int:
    """`value` as an int >= 1 (a Python or NumPy integer, not a bool); a ValueError naming
    `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


class Hyperparameters:
    """The architecture and rule hyper-parameters both wrappers take.

    Stored exactly as given: scikit-learn and river read them back off the instance under the
    names of the estimator's `__init__` (for `clone`, `get_params`), and validate on use.
    """

    hidden_layer_sizes: Any
    radius: Optional[float]
    fan_in: Optional[int]
    activation: str
    lr: Optional[float]
    budget: Optional[float]
    config: Any

    def _set_hyperparameters(self, hidden_layer_sizes: Any, radius: Optional[float],
                             fan_in: Optional[int], activation: str, lr: Optional[float],
                             budget: Optional[float], config: Any) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.radius = radius
        self.fan_in = fan_in
        self.activation = activation
        self.lr = lr
        self.budget = budget
        self.config = config

    def _network(self, n_in: int, n_out: int, hidden_layer_sizes: Sequence[int],
                 seed: int) -> Network:
        """A fresh network `n_in -> hidden_layer_sizes -> n_out` with these hyper-parameters."""
        cfg = learn_config(self.config, self.lr, self.budget)
        return build_network(n_in, n_out, hidden_layer_sizes, self.radius, self.fan_in,
                             self.activation, cfg, seed)


def build_network(n_in: int, n_out: int, hidden_layer_sizes: Sequence[int], radius: Any,
                  fan_in: Optional[int], activation: str, config: LearnConfig,
                  seed: int) -> Network:
    """Layers `n_in -> hidden... -> n_out` in 1-D; `radius=None` makes them dense, and with
    `fan_in` the radius is the smallest that gives every output that many inputs."""
    if isinstance(hidden_layer_sizes, (int, np.integer)):
        hidden_layer_sizes = (int(hidden_layer_sizes),)
    sizes = [int(n_in), *[int(h) for h in hidden_layer_sizes], int(n_out)]
    specs = []
    for k in range(len(sizes) - 1):
        a, b = sizes[k], sizes[k + 1]
        if radius is None:
            r = radius_for_fan_in(a, "all" if fan_in is None else min(int(fan_in), a))
        else:
            r = float(radius)
        act = activation if k < len(sizes) - 2 else "linear"
        specs.append(LayerSpec(a, b, radius=r, fan_in=fan_in if fan_in is None else
                               min(int(fan_in), a), activation=act))
    return Network(specs, config=config, seed=int(seed))
