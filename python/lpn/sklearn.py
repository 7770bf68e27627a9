"""scikit-learn estimators: `LPNRegressor` and `LPNClassifier` (docs/estimators.md).

Both wrap an `lpn.Network`: the architecture (`hidden_layer_sizes`, `radius`, `fan_in`,
`activation`) and the rule (`lr`, `budget`, and any other `LearnConfig` field through
`config`) are hyper-parameters, so `clone`, `GridSearchCV` and pipelines work as usual.
`fit` learns `max_iter` online passes over the data (shuffled each pass when `shuffle`);
`partial_fit` learns one pass in the given order. The fitted network is `net_`.

Needs the `sklearn` extra: ``pip install 'lpn-pheromone[sklearn]'``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("lpn.sklearn needs scikit-learn: pip install 'lpn-pheromone[sklearn]'") from exc

from . import _estimators
from .network import Network

__all__ = ["LPNClassifier", "LPNRegressor"]

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(est, *args, **kwargs):
        return est._validate_data(*args, **kwargs)

# Rows per engine call within a pass: the order is the same as one big call, and a long pass
# stays responsive to Ctrl-C between chunks.
_CHUNK = 4096


class _LPNBase(_estimators.Hyperparameters, BaseEstimator):
    """Shared parameters and the training loop."""

    def __init__(self, hidden_layer_sizes: Sequence[int] = (), *, radius: Optional[float] = None,
                 fan_in: Optional[int] = None, activation: str = "tanh",
                 lr: Optional[float] = _estimators.DEFAULT_LR,
                 budget: Optional[float] = _estimators.DEFAULT_BUDGET, config: Any = None,
                 max_iter: int = 10, shuffle: bool = True,
                 random_state: Any = None) -> None:
        self._set_hyperparameters(hidden_layer_sizes, radius, fan_in, activation, lr, budget,
                                  config)
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state

    # -- helpers --------------------------------------------------------------------------
    def _new_network(self, n_in: int, n_out: int, rng: np.random.RandomState) -> Network:
        _estimators.check_count("max_iter", self.max_iter)
        return self._network(n_in, n_out, self.hidden_layer_sizes, int(rng.randint(0, 2**31 - 1)))

    def _learn_pass(self, X: np.ndarray, T: np.ndarray, order: Optional[np.ndarray]) -> float:
        total, n = 0.0, X.shape[0]
        for start in range(0, n, _CHUNK):
            idx = slice(start, min(n, start + _CHUNK)) if order is None else \
                order[start:start + _CHUNK]
            xs, ts = X[idx], T[idx]
            total += self.net_.learn(xs, ts) * xs.shape[0]
        return total / max(n, 1)

    def _fit_passes(self, X: np.ndarray, T: np.ndarray, rng: np.random.RandomState) -> None:
        self.loss_curve_ = []
        for _ in range(int(self.max_iter)):
            order = rng.permutation(X.shape[0]) if self.shuffle else None
            self.loss_curve_.append(self._learn_pass(X, T, order))
        self.n_iter_ = int(self.max_iter)

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "net_")
        X = _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.net_.predict(X).astype(np.float64)


class LPNRegressor(RegressorMixin, _LPNBase):
    """Online LPN regression: one output per target column, squared-error rule.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=()
        Hidden layer widths; `()` is a single layer (a linear readout).
    radius : float or None, default=None
        Receptive-field radius of every layer (1-D layout); None makes the layers dense.
    fan_in : int or None, default=None
        Inputs per output (the nearest ones); with `radius=None` the radius is
        `lpn.radius_for_fan_in(n_in, fan_in)`.
    activation : str, default="tanh"
        Activation of hidden layers; the output layer is linear.
    lr, budget : float, default=0.02, 1.0
        Learning rate and initial update budget (fraction of each row's candidates); they
        override the same fields of `config`. None keeps `config`'s.
    config : LearnConfig or dict or None
        Every other rule hyper-parameter (`lpn.LearnConfig` fields).
    max_iter : int, default=10
        Passes over the data in `fit`.
    shuffle : bool, default=True
        Shuffle the samples before each pass of `fit`.
    random_state : int, RandomState or None
        Seeds the network and the shuffles.

    Attributes
    ----------
    net_ : lpn.Network
    n_features_in_, n_outputs_, n_iter_, loss_curve_ (mean test-then-train loss per pass)
    """

    def fit(self, X: Any, y: Any) -> "LPNRegressor":
        """Build a fresh network and learn `max_iter` passes over `X, y` (y: (n,) or (n, n_targets))."""
        X, Y = self._check_xy(X, y, reset=True)
        rng = check_random_state(self.random_state)
        self.net_ = self._new_network(X.shape[1], Y.shape[1], rng)
        self._fit_passes(X, Y, rng)
        return self

    def partial_fit(self, X: Any, y: Any) -> "LPNRegressor":
        """One pass over `X, y` in order; the first call builds the network."""
        first = not hasattr(self, "net_")
        X, Y = self._check_xy(X, y, reset=first)
        if first:
            self.net_ = self._new_network(X.shape[1], Y.shape[1],
                                          check_random_state(self.random_state))
            self.loss_curve_ = []
            self.n_iter_ = 0
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} target columns, but {type(self).__name__} "
                             f"was fitted with {self.n_outputs_}")
        self.loss_curve_.append(self._learn_pass(X, Y, None))
        self.n_iter_ += 1
        return self

    def _check_xy(self, X, y, reset):
        X, y = _validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                              dtype=(np.float64, np.float32))
        y = np.asarray(y)
        if reset:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, Y

    def predict(self, X: Any) -> np.ndarray:
        """Predictions, `(n,)` when fitted on a 1-D `y`, else `(n, n_outputs)`; float64."""
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    # Tags: one output per target column, so multi-output regression is native.
    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}


class LPNClassifier(ClassifierMixin, _LPNBase):
    """Online LPN classification: one output per class trained on one-hot targets
    (squared error); `predict` is the arg-max, `predict_proba` a softmax of the outputs
    divided by `temperature`.

    Parameters are those of `LPNRegressor`, plus

    temperature : float, default=0.1
        Softmax temperature of `predict_proba` (outputs approximate one-hot targets in
        [0, 1], so 0.1 spreads a unit difference over e^10). Not a calibration: wrap in
        `CalibratedClassifierCV` for calibrated probabilities.

    Attributes
    ----------
    net_, classes_, n_features_in_, n_iter_, loss_curve_
    """

    def __init__(self, hidden_layer_sizes: Sequence[int] = (), *, radius: Optional[float] = None,
                 fan_in: Optional[int] = None, activation: str = "tanh",
                 lr: Optional[float] = _estimators.DEFAULT_LR,
                 budget: Optional[float] = _estimators.DEFAULT_BUDGET, config: Any = None,
                 max_iter: int = 10, shuffle: bool = True, random_state: Any = None,
                 temperature: float = 0.1) -> None:
        super().__init__(hidden_layer_sizes, radius=radius, fan_in=fan_in,
                         activation=activation, lr=lr, budget=budget, config=config,
                         max_iter=max_iter, shuffle=shuffle, random_state=random_state)
        self.temperature = temperature

    def fit(self, X: Any, y: Any) -> "LPNClassifier":
        """Build a fresh network (one output per class in `y`) and learn `max_iter` passes."""
        X, y = _validate_data(self, X, y, reset=True, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self.classes_ = unique_labels(y)
        self._check_classes()
        T = self._one_hot(y)
        rng = check_random_state(self.random_state)
        self.net_ = self._new_network(X.shape[1], T.shape[1], rng)
        self._fit_passes(X, T, rng)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "LPNClassifier":
        """One pass over `X, y` in order. The first call needs `classes` (every label that
        will ever appear), as the network has one output per class."""
        first = not hasattr(self, "net_")
        X, y = _validate_data(self, X, y, reset=first, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every label that will appear: one output per class)")
            self.classes_ = unique_labels(np.asarray(classes))
            self._check_classes()
        elif classes is not None and not np.array_equal(unique_labels(np.asarray(classes)),
                                                        self.classes_):
            raise ValueError(f"classes {np.asarray(classes)!r} differ from the classes of the "
                             f"first partial_fit call {self.classes_!r}")
        T = self._one_hot(y)
        if first:
            self.net_ = self._new_network(X.shape[1], T.shape[1],
                                          check_random_state(self.random_state))
            self.loss_curve_ = []
            self.n_iter_ = 0
        self.loss_curve_.append(self._learn_pass(X, T, None))
        self.n_iter_ += 1
        return self

    def _check_classes(self) -> None:
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes, got "
                             f"1 class: {self.classes_[0]!r}")

    def _one_hot(self, y: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.classes_, y)
        bad = (idx >= len(self.classes_)) | (self.classes_[np.minimum(idx, len(self.classes_)
                                                                      - 1)] != y)
        if np.any(bad):
            raise ValueError(f"y holds labels not in classes_: {np.unique(y[bad])!r}; "
                             f"classes_ = {self.classes_!r}")
        T = np.zeros((len(y), len(self.classes_)), dtype=np.float32)
        T[np.arange(len(y)), idx] = 1.0
        return T

    def decision_function(self, X: Any) -> np.ndarray:
        """The network's outputs, one column per class; for two classes `(n,)`, the second
        class's output minus the first's (positive means `classes_[1]`)."""
        out = self._outputs(X)
        if len(self.classes_) == 2:
            return out[:, 1] - out[:, 0]
        return out

    def predict(self, X: Any) -> np.ndarray:
        """The class of the largest output for each sample."""
        out = self._outputs(X)
        return self.classes_[np.argmax(out, axis=1)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax of the outputs divided by `temperature`, columns in `classes_` order."""
        out = self._outputs(X)
        t = float(self.temperature)
        if not np.isfinite(t) or t <= 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        z = out / t
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The log of `predict_proba`."""
        return np.log(self.predict_proba(X))
