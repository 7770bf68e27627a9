"""Dense baselines a user would pick instead of LPN: an MLP trained online by backprop.

Everything is plain NumPy and deliberately mirrors the LPN calling convention
(``predict(x, mask)``, ``learn(x, t, mask)`` one online step per row, returning the mean
step loss with the same normalisation ``sum(mask * (t - y)**2) / max(1, sum(mask))``),
so experiments can run both models on the very same sample stream.

The output error is either the squared error above (``loss="mse"``, linear outputs) or
softmax cross-entropy on one-hot targets (``loss="softmax"``, the classification loss the
continual-learning literature uses; the returned loss is then the cross-entropy).

Standard continual-learning methods come with it:

* EWC (Kirkpatrick et al., 2017, the "online" variant that accumulates the diagonal
  Fisher over tasks): call :meth:`MLP.end_task` with samples of the task just learned;
* Synaptic Intelligence (Zenke et al., 2017, ``si_c > 0``): a per-parameter path integral
  of ``-g * dtheta`` during training, turned into an importance ``Omega`` at
  :meth:`MLP.end_task` and used as a quadratic pull, like EWC;
* experience replay: a reservoir buffer, ``replay`` stored samples after every new one;
* joint i.i.d. training (the upper bound) is the same MLP fed a shuffled stream.

:class:`NLMS` is a dense linear model trained with the same normalised step as an LPN
linear layer (``dw = lr * e * x / (eps + |x|^2)``): the fair dense counterpart of a local
linear map.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["MLP", "NLMS", "HebbianMemory", "dense_mlp", "ewc_mlp", "replay_mlp", "si_mlp", "softmax"]

LOSSES = ("mse", "softmax")


def softmax(z, axis=-1):
    """Numerically stable softmax."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _rows(x, t, n_in: int, n_out: int) -> Tuple[np.ndarray, np.ndarray]:
    """`x, t` as float64 batches `(B, n_in), (B, n_out)`; a ValueError naming both shapes."""
    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    T = np.atleast_2d(np.asarray(t, dtype=np.float64))
    if X.shape[1] != n_in or T.shape[1] != n_out or X.shape[0] != T.shape[0]:
        raise ValueError(f"expected x (B, {n_in}) and t (B, {n_out}), got {X.shape}, {T.shape}")
    return X, T


def _masked_out(Y: np.ndarray, mask) -> np.ndarray:
    """`Y` with masked-out outputs set to 0, as float32 (every baseline's predict output)."""
    if mask is not None:
        Y = Y * np.asarray(mask, dtype=bool)
    return Y.astype(np.float32)


def _pull(p: np.ndarray, rate: float, importance: np.ndarray, anchor: np.ndarray) -> None:
    """The quadratic consolidation penalty (EWC, SI) as an exact partial step towards
    `anchor`, in place: capping `rate * importance` at 1 keeps large entries from
    overshooting (plain SGD on the penalty diverges when it exceeds 2)."""
    p -= np.minimum(1.0, rate * importance) * (p - anchor)


def _accumulate(total: Optional[List[np.ndarray]], new: List[np.ndarray]) -> List[np.ndarray]:
    """Per-parameter importances summed over tasks (`new` alone after the first task)."""
    return new if total is None else [a + b for a, b in zip(total, new)]


_ACTS: Dict[str, Tuple[Callable[[Any], Any], Callable[[Any, Any], Any]]] = {
    "tanh": (np.tanh, lambda z, y: 1.0 - y * y),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z, y: (z > 0).astype(z.dtype)),
    "linear": (lambda z: z, lambda z, y: np.ones_like(z)),
}


class MLP:
    """Fully connected network trained online with SGD (one step per sample).

    ``hidden=()`` gives a dense linear model.  The output layer is linear, like the LPN
    layers used in the regression experiments.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden=(64,),
        activation: str = "tanh",
        lr: float = 0.02,
        seed: int = 0,
        ewc_lambda: float = 0.0,
        replay_capacity: int = 0,
        replay: int = 0,
        grad_clip: float | None = 10.0,
        loss: str = "mse",
        si_c: float = 0.0,
        si_xi: float = 0.1,
    ):
        if activation not in _ACTS:
            raise ValueError(f"activation must be one of {sorted(_ACTS)}, got {activation!r}")
        if n_in <= 0 or n_out <= 0:
            raise ValueError(f"n_in and n_out must be positive, got {n_in}, {n_out}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.loss = loss
        self.si_c = float(si_c)
        self.si_xi = float(si_xi)
        self.hidden = tuple(int(h) for h in hidden)
        self.activation = activation
        self.lr = float(lr)
        self.ewc_lambda = float(ewc_lambda)
        self.replay_capacity = int(replay_capacity)
        self.replay = int(replay)
        self.grad_clip = grad_clip
        self.rng = np.random.default_rng(seed)
        sizes = (self.n_in, *self.hidden, self.n_out)
        self.W = []
        self.b = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            # LeCun-normal init keeps tanh units out of saturation at the start.
            self.W.append(self.rng.normal(0.0, 1.0 / np.sqrt(a), size=(b, a)))
            self.b.append(np.zeros(b))
        self.fisher: Optional[List[np.ndarray]] = None
        self.anchor: Optional[List[np.ndarray]] = None
        # Synaptic Intelligence: running path integral, the task-start parameters and the
        # accumulated importance (Omega) with its anchor, pulled by ``_pull`` like EWC's.
        self.si_omega: Optional[List[np.ndarray]] = None
        self.si_anchor: List[np.ndarray] = []
        self.si_w: Optional[List[np.ndarray]] = None
        self.si_start: List[np.ndarray] = []
        if self.si_c > 0:
            self.si_w = [np.zeros_like(p) for p in self.params()]
            self.si_start = [p.copy() for p in self.params()]
        self.buffer: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self.seen = 0
        self.steps = 0
        self.replays = 0

    # -- parameters as a flat list, for EWC ---------------------------------------------
    def params(self):
        """The trainable arrays: every weight matrix, then every bias vector."""
        return [*self.W, *self.b]

    # -- forward / backward -------------------------------------------------------------
    def _forward(self, x):
        act, _ = _ACTS[self.activation]
        hs = [x]
        zs = []
        h = x
        last = len(self.W) - 1
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            z = W @ h + b
            zs.append(z)
            h = z if k == last else act(z)
            hs.append(h)
        return zs, hs

    def predict(self, x, mask=None) -> np.ndarray:
        """Forward pass: `(n_in,) -> (n_out,)` or `(B, n_in) -> (B, n_out)`; masked-out outputs are 0."""
        x = np.asarray(x, dtype=np.float64)
        single = x.ndim == 1
        X = x[None, :] if single else x
        if X.shape[-1] != self.n_in:
            raise ValueError(f"expected inputs with {self.n_in} features, got {X.shape}")
        act, _ = _ACTS[self.activation]
        H = X
        last = len(self.W) - 1
        for k, (W, b) in enumerate(zip(self.W, self.b)):
            Z = H @ W.T + b
            H = Z if k == last else act(Z)
        if self.loss == "softmax":
            H = softmax(H, axis=-1)
        H = _masked_out(H, mask)
        return H[0] if single else H

    def _grads(self, x, t, mask):
        _, dact = _ACTS[self.activation]
        zs, hs = self._forward(x)
        y = hs[-1]
        m = np.ones(self.n_out) if mask is None else mask.astype(np.float64)
        if self.loss == "softmax":
            # Cross-entropy over the unmasked classes: softmax restricted to them, so a
            # masked output neither gets a gradient nor takes probability mass.
            zm = np.where(m > 0, y, -np.inf)
            p = softmax(zm)
            p = np.where(m > 0, p, 0.0)
            q = t * m
            q = q / q.sum() if q.sum() > 0 else q
            loss = float(-(q * np.log(np.maximum(p, 1e-300))).sum())
            delta = p - q if q.sum() > 0 else np.zeros_like(p)
        else:
            denom = max(1.0, float(m.sum()))
            r = m * (t - y)
            loss = float((r * r).sum() / denom)
            delta = -2.0 * r / denom
        gW = [None] * len(self.W)
        gb = [None] * len(self.W)
        for k in range(len(self.W) - 1, -1, -1):
            gW[k] = np.outer(delta, hs[k])
            gb[k] = delta
            if k > 0:
                delta = (self.W[k].T @ delta) * dact(zs[k - 1], hs[k])
        return loss, gW, gb

    def _sgd(self, x, t, mask):
        loss, gW, gb = self._grads(x, t, mask)
        grads = [*gW, *gb]
        if self.grad_clip is not None:
            # Online SGD on a single sample can blow up on an outlier; clipping the global
            # norm keeps the baseline stable without tuning lr per experiment.
            norm = np.sqrt(sum(float((g * g).sum()) for g in grads))
            if norm > self.grad_clip:
                grads = [g * (self.grad_clip / norm) for g in grads]
        params = self.params()
        for k, (p, g) in enumerate(zip(params, grads)):
            before = p.copy() if self.si_w is not None else None
            if self.fisher is not None and self.anchor is not None and self.ewc_lambda > 0:
                # EWC's penalty lambda/2 * F * (p - anchor)^2.
                _pull(p, self.lr * self.ewc_lambda, self.fisher[k], self.anchor[k])
            if self.si_omega is not None:
                # SI's surrogate loss c * Omega * (p - anchor)^2.
                _pull(p, 2.0 * self.lr * self.si_c, self.si_omega[k], self.si_anchor[k])
            p -= self.lr * g
            if self.si_w is not None:
                # Path integral of the task loss along the actual trajectory (Zenke et al.
                # eq. 3): -g . dtheta, with g the gradient of the task loss only.
                self.si_w[k] -= g * (p - before)
        self.steps += 1
        return loss

    def learn(self, x, t, mask=None) -> float:
        """One online SGD step per row (plus replays); returns the mean loss of new rows."""
        X, T = _rows(x, t, self.n_in, self.n_out)
        M = None if mask is None else np.asarray(mask, dtype=bool)
        losses = []
        for r in range(X.shape[0]):
            mr = None if M is None else (M if M.ndim == 1 else M[r])
            losses.append(self._sgd(X[r], T[r], mr))
            if self.replay_capacity > 0:
                for _ in range(self.replay if self.buffer else 0):
                    bx, bt, bm = self.buffer[int(self.rng.integers(len(self.buffer)))]
                    self._sgd(bx, bt, bm)
                    self.replays += 1
                self._offer(X[r], T[r], mr)
        return float(np.mean(losses))

    def _offer(self, x, t, mask):
        item = (x.copy(), t.copy(), None if mask is None else mask.copy())
        if len(self.buffer) < self.replay_capacity:
            self.buffer.append(item)
        else:
            k = int(self.rng.integers(self.seen + 1))
            if k < self.replay_capacity:
                self.buffer[k] = item
        self.seen += 1

    def end_task(self, x=None, t=None, mask=None, n_samples: int = 200) -> None:
        """Task boundary: EWC adds this task's diagonal empirical Fisher (from ``x, t``) and
        SI turns its path integral into importance; both re-anchor at the current weights."""
        if self.si_w is not None:
            params = self.params()
            omega = [w / ((p - p0) ** 2 + self.si_xi)
                     for w, p, p0 in zip(self.si_w, params, self.si_start)]
            # Negative contributions (the loss went up along the path) carry no importance.
            self.si_omega = _accumulate(self.si_omega, [np.maximum(o, 0.0) for o in omega])
            self.si_anchor = [p.copy() for p in params]
            self.si_start = [p.copy() for p in params]
            self.si_w = [np.zeros_like(p) for p in params]
        if self.ewc_lambda <= 0 or x is None:
            return
        X = np.atleast_2d(np.asarray(x, dtype=np.float64))
        T = np.atleast_2d(np.asarray(t, dtype=np.float64))
        M = None if mask is None else np.asarray(mask, dtype=bool)
        n = min(n_samples, X.shape[0])
        idx = self.rng.choice(X.shape[0], size=n, replace=False)
        F = [np.zeros_like(p) for p in self.params()]
        for r in idx:
            mr = None if M is None else (M if M.ndim == 1 else M[r])
            _, gW, gb = self._grads(X[r], T[r], mr)
            for k, g in enumerate([*gW, *gb]):
                F[k] += g * g / n
        self.fisher = _accumulate(self.fisher, F)
        self.anchor = [p.copy() for p in self.params()]


def dense_mlp(n_in, n_out, **kw) -> MLP:
    """The plain online MLP baseline (keywords as :class:`MLP`)."""
    return MLP(n_in, n_out, **kw)


def ewc_mlp(n_in, n_out, ewc_lambda=100.0, **kw) -> MLP:
    """The MLP with elastic weight consolidation (EWC) of strength `ewc_lambda`."""
    return MLP(n_in, n_out, ewc_lambda=ewc_lambda, **kw)


def replay_mlp(n_in, n_out, replay_capacity=200, replay=1, **kw) -> MLP:
    """The MLP with a reservoir replay buffer of `replay_capacity`, `replay` draws per step."""
    return MLP(n_in, n_out, replay_capacity=replay_capacity, replay=replay, **kw)


def si_mlp(n_in, n_out, si_c=1.0, **kw) -> MLP:
    """The MLP with Synaptic Intelligence of strength `si_c` (call `end_task` at boundaries)."""
    return MLP(n_in, n_out, si_c=si_c, **kw)


class NLMS:
    """Dense linear model ``y = W x + b`` with the normalised LMS step of an LPN layer.

    Per sample: ``e = t - y``; ``W += lr * e x^T / (eps + |x|^2)``;
    ``b += lr * e / (1 + |x|^2)`` (the LPN step of docs/rule-notes.md with every input in the
    neighbourhood, full budget and no trails).  Same ``predict``/``learn`` convention as
    :class:`MLP`, so experiments can swap it in.
    """

    def __init__(self, n_in: int, n_out: int, lr: float = 0.5, eps: float = 1e-6,
                 bias: bool = True):
        if n_in <= 0 or n_out <= 0:
            raise ValueError(f"n_in and n_out must be positive, got {n_in}, {n_out}")
        if not 0.0 < lr < 2.0:
            raise ValueError(f"lr must be in (0, 2) for a stable normalised step, got {lr}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.lr, self.eps, self.bias = float(lr), float(eps), bool(bias)
        self.W = np.zeros((self.n_out, self.n_in))
        self.b = np.zeros(self.n_out)

    def params(self):
        """The trainable arrays: the weight matrix, then the bias."""
        return [self.W, self.b]

    def predict(self, x, mask=None) -> np.ndarray:
        """`W x + b` for one row or a batch; masked-out outputs are 0; float32 out."""
        X = np.asarray(x, dtype=np.float64)
        if X.shape[-1] != self.n_in:
            raise ValueError(f"expected inputs with {self.n_in} features, got {X.shape}")
        return _masked_out(X @ self.W.T + self.b, mask)

    def learn(self, x, t, mask=None) -> float:
        """One normalised step per row, in order; returns the mean masked squared error."""
        X, T = _rows(x, t, self.n_in, self.n_out)
        m = np.ones(self.n_out) if mask is None else np.asarray(mask, dtype=np.float64)
        losses = []
        for x_r, t_r in zip(X, T):
            e = m * (t_r - (self.W @ x_r + self.b))
            losses.append(float((e * e).sum() / max(1.0, m.sum())))
            n2 = float(x_r @ x_r)
            self.W += self.lr * np.outer(e, x_r) / (self.eps + n2)
            if self.bias:
                self.b += self.lr * e / (1.0 + n2)
        return float(np.mean(losses))


class HebbianMemory:
    """Dense linear associative memory written by the outer-product (Hebbian) rule.

    ``W += t x^T`` per sample, recall ``W x`` (Kohonen / Anderson's correlation matrix
    memory).  A zero target writes nothing, so tokens without a value leave it unchanged;
    with ±1 keys the cross-talk between stored items grows like ``sqrt(P / n_in)``.
    """

    def __init__(self, n_in: int, n_out: int):
        if n_in <= 0 or n_out <= 0:
            raise ValueError(f"n_in and n_out must be positive, got {n_in}, {n_out}")
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.W = np.zeros((self.n_out, self.n_in))

    def predict(self, x, mask=None) -> np.ndarray:
        """Recall `W x` for one key or a batch; masked-out outputs are 0; float32 out."""
        return _masked_out(np.asarray(x, dtype=np.float64) @ self.W.T, mask)

    def learn(self, x, t, mask=None) -> float:
        """Add `t x^T` for every row; returns the mean squared recall error before the write."""
        X, T = _rows(x, t, self.n_in, self.n_out)
        loss = float(((T - X @ self.W.T) ** 2).mean())
        self.W += T.T @ X  # the sum of outer products, order-free
        return loss
