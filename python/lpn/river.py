"""river estimators: `LPNRegressor` and `LPNClassifier` learning one dict at a time
(docs/estimators.md).

Features are dict keys. Each new key gets the next free input slot (new keys of one sample in
sorted order, so the order of a dict's keys never matters); a missing key reads 0. The network
is built at the first `learn_one` with `max_features` inputs (keys beyond that many are
ignored, with one warning) and, for the classifier, `max_classes` outputs: a class seen late
has been trained as "not this class" on every earlier sample, which is what one-vs-rest
needs. Before the first `learn_one`, `predict_one` gives 0.0 (regressor) or None (classifier)
and `predict_proba_one` an empty dict.

Needs the `river` extra: ``pip install 'lpn-pheromone[river]'``.
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any, Dict, Hashable, List, Optional, Sequence

import numpy as np

try:
    from river import base
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lpn.river needs river: pip install 'lpn-pheromone[river]'") from exc

from . import _estimators

__all__ = ["LPNClassifier", "LPNRegressor"]

# One-pass streams see each sample once, so the river defaults step further than the
# scikit-learn ones. Picked on river's bundled streams (docs/estimators.md): regression lr 0.5
# (TrumpApproval, lr 0.05-1.0 x budget 0.3/1.0), classification lr 0.1 (Phishing,
# ImageSegments); both update the whole row (budget 1.0).
REGRESSOR_LR = 0.5
CLASSIFIER_LR = 0.1


class _DictInputs(_estimators.Hyperparameters):
    """Maps dict keys to input slots; shared by both estimators."""

    _net: Any

    def _init_inputs(self, hidden_layer_sizes: Optional[Sequence[int]], radius: Optional[float],
                     fan_in: Optional[int], activation: str, lr: Optional[float],
                     budget: Optional[float], config: Any, max_features: int,
                     seed: Optional[int]) -> None:
        # Stored as given: river reads the parameters back off the instance.
        self._set_hyperparameters(hidden_layer_sizes, radius, fan_in, activation, lr, budget,
                                  config)
        self.max_features = max_features
        self.seed = seed
        self._slots: Dict[Hashable, int] = {}
        self._net = None
        self._warned_full = False

    def _vector(self, x: Dict[Hashable, Any], grow: bool) -> np.ndarray:
        if not isinstance(x, dict):
            raise TypeError(f"x must be a dict of feature -> number, got {type(x).__name__}")
        if grow:
            # Any: keys are tried for a natural order first, whatever their types.
            new: List[Any] = [k for k in x if k not in self._slots]
            if new:
                try:
                    new.sort()
                except TypeError:  # keys of mixed types: a total order on their text
                    new.sort(key=lambda k: (type(k).__name__, repr(k)))
                for k in new:
                    if len(self._slots) >= self.max_features:
                        if not self._warned_full:
                            warnings.warn(f"more than max_features={self.max_features} "
                                          f"distinct features: the others are ignored",
                                          stacklevel=3)
                            self._warned_full = True
                        break
                    self._slots[k] = len(self._slots)
        v = np.zeros(self.max_features, dtype=np.float32)
        for k, val in x.items():
            slot = self._slots.get(k)
            if slot is None:
                continue
            try:
                f = float(val)
            except (TypeError, ValueError):
                raise TypeError(f"feature {k!r} must be a number, got {type(val).__name__} "
                                f"{val!r}; encode it first (e.g. river's OneHotEncoder)") from None
            if not math.isfinite(f):
                raise ValueError(f"feature {k!r} must be finite, got {f}")
            v[slot] = f
        return v

    def _build(self, n_out: int):
        _estimators.check_count("max_features", self.max_features)
        seed = self.seed if self.seed is not None else random.SystemRandom().randrange(2**31)
        return self._network(self.max_features, n_out, self.hidden_layer_sizes or (), seed)


class LPNRegressor(_DictInputs, base.Regressor):
    """Online LPN regression on dicts: one `learn_one` is one step of the rule.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int or None, default=None
        Hidden layer widths; None (or `()`) is one dense linear layer.
    radius, fan_in : receptive field of every layer (None, None: dense).
    activation : str, default="tanh"
        Activation of hidden layers; the output is linear.
    lr, budget : float, default=0.5, 1.0 (classifier: 0.1, 1.0)
        Override the same fields of `config`.
    config : lpn.LearnConfig or dict or None
        Every other rule hyper-parameter.
    max_features : int, default=64
        Input slots; keys beyond this many are ignored.
    seed : int or None
        Seeds the network; None draws one.
    """

    def __init__(self, hidden_layer_sizes: Optional[Sequence[int]] = None, radius: Optional[float] = None,
                 fan_in: Optional[int] = None, activation: str = "tanh",
                 lr: Optional[float] = REGRESSOR_LR,
                 budget: Optional[float] = _estimators.DEFAULT_BUDGET, config: Any = None,
                 max_features: int = 64, seed: Optional[int] = None) -> None:
        self._init_inputs(hidden_layer_sizes, radius, fan_in, activation, lr, budget, config,
                          max_features, seed)

    @classmethod
    def _unit_test_params(cls):
        yield {"seed": 0}
        yield {"hidden_layer_sizes": (8,), "seed": 1}

    def learn_one(self, x: dict, y: float) -> None:
        """One step of the rule on `x` (a dict of numbers) towards the number `y`."""
        try:
            t = float(y)
        except (TypeError, ValueError):
            raise TypeError(f"y must be a number, got {type(y).__name__} {y!r}") from None
        if not math.isfinite(t):
            raise ValueError(f"y must be finite, got {t}")
        v = self._vector(x, grow=True)
        if self._net is None:
            self._net = self._build(1)
        self._net.learn(v, np.array([t], dtype=np.float32))

    def predict_one(self, x: dict) -> float:
        """The prediction for `x` (0.0 before the first `learn_one`)."""
        if self._net is None:
            return 0.0
        return float(self._net.predict(self._vector(x, grow=False))[0])


class LPNClassifier(_DictInputs, base.Classifier):
    """Online LPN classification on dicts: one output per class (up to `max_classes`),
    one-hot targets; `predict_proba_one` is a softmax over the classes seen so far of the
    outputs divided by `temperature`.

    Parameters are those of `LPNRegressor`, plus `max_classes` (default 16) and `temperature`
    (default 0.1).
    """

    def __init__(self, hidden_layer_sizes: Optional[Sequence[int]] = None, radius: Optional[float] = None,
                 fan_in: Optional[int] = None, activation: str = "tanh",
                 lr: Optional[float] = CLASSIFIER_LR,
                 budget: Optional[float] = _estimators.DEFAULT_BUDGET, config: Any = None,
                 max_features: int = 64, max_classes: int = 16, temperature: float = 0.1,
                 seed: Optional[int] = None) -> None:
        self._init_inputs(hidden_layer_sizes, radius, fan_in, activation, lr, budget, config,
                          max_features, seed)
        self.max_classes = max_classes
        self.temperature = temperature
        self._classes: Dict[Hashable, int] = {}

    @property
    def _multiclass(self) -> bool:
        return True

    @classmethod
    def _unit_test_params(cls):
        yield {"seed": 0}
        yield {"hidden_layer_sizes": (8,), "seed": 1}

    def learn_one(self, x: dict, y: Hashable) -> None:
        """One step towards the one-hot target of label `y` (any hashable); a new label takes the next output."""
        if y not in self._classes:
            if len(self._classes) >= self.max_classes:
                raise ValueError(f"label {y!r} would be class number {len(self._classes) + 1}, "
                                 f"above max_classes={self.max_classes}; raise max_classes")
        v = self._vector(x, grow=True)
        if self._net is None:
            self._net = self._build(int(self.max_classes))
        k = self._classes.setdefault(y, len(self._classes))
        t = np.zeros(self.max_classes, dtype=np.float32)
        t[k] = 1.0
        self._net.learn(v, t)

    def predict_proba_one(self, x: dict, **kwargs: Any) -> Dict[Any, float]:
        """Softmax over the labels seen so far of the outputs / `temperature`; `{}` before any label."""
        if self._net is None or not self._classes:
            return {}
        out = self._net.predict(self._vector(x, grow=False)).astype(np.float64)
        labels = list(self._classes)
        z = out[[self._classes[c] for c in labels]] / float(self.temperature)
        z -= z.max()
        p = np.exp(z)
        p /= p.sum()
        return {c: float(pc) for c, pc in zip(labels, p)}

    def predict_one(self, x: dict, **kwargs: Any) -> Any:
        """The most probable label seen so far, or None before the first `learn_one`."""
        proba = self.predict_proba_one(x)
        if not proba:
            return None
        return max(proba, key=lambda c: proba[c])
