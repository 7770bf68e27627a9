"""Helpers shared by the experiment modules."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import sys
from typing import Any, Dict, Iterator, Mapping, Optional

import numpy as np

from ..baselines import MLP
from ..config import LearnConfig


class Bar:
    """A tqdm bar when ``progress`` is on and stderr is a terminal, a no-op otherwise.

    Experiments declare their total work (in learning steps) once and tick as they go, so
    the CLI shows one honest bar per experiment.  The bar is created at the first
    :meth:`add_total`, so it never prints an empty ``0step`` line, and nothing is written
    when stderr is a file or a pipe (logs stay clean).
    """

    def __init__(self, desc: str, progress: bool):
        self._desc = desc
        self._on = bool(progress) and _stderr_is_terminal()
        self._bar = None

    def add_total(self, n: int) -> None:
        """Add ``n`` steps of planned work (creates the bar on first call)."""
        if not self._on:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=int(n), desc=self._desc, unit="step", leave=True,
                             dynamic_ncols=True)
        else:
            self._bar.total += int(n)
            self._bar.refresh()

    def update(self, n: int) -> None:
        """Record ``n`` finished steps."""
        if self._bar is not None:
            self._bar.update(int(n))

    def close(self) -> None:
        """Finish the bar (no-op when none was drawn)."""
        if self._bar is not None:
            self._bar.close()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def rel_mse(pred, target, mask=None) -> float:
    """MSE over (masked) outputs divided by the variance of those targets.

    Relative error makes "≤ 1 % of target variance" a direct read-out and lets tasks of
    different scale share one plot.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        pred = pred[..., mask]
        target = target[..., mask]
    var = float(target.var())
    return float(((pred - target) ** 2).mean() / (var if var > 0 else 1.0))


def learn_in_chunks(model, X, T, bar, chunk, mask=None, replay=0, on_chunk=None):
    """Feed ``X, T`` to ``model.learn`` in order, ``chunk`` rows at a time.

    The model sees exactly the same online sequence as one big call; chunking only gives
    the progress bar and the learning curves a place to hook in.
    """
    n = X.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        if replay:
            model.learn(X[start:stop], T[start:stop], mask=mask, replay=replay)
        else:
            model.learn(X[start:stop], T[start:stop], mask=mask)
        bar.update(stop - start)
        if on_chunk is not None:
            on_chunk(stop)


def mlp(n_in, n_out, seed, **kw) -> MLP:
    """The dense baseline every experiment uses unless it says otherwise.

    Hidden size and learning rate were picked on the regression task (1500 online steps,
    64 -> 64 local linear map): lr 0.02/0.05/0.1/0.2 with 64 tanh units gave relative test
    MSE 0.44/0.18/0.09/0.07, with 128 units 0.28/0.09/0.05/0.04; 0.1 is the fastest that
    stays stable on every task here.
    """
    kw.setdefault("hidden", (128,))
    kw.setdefault("lr", 0.1)
    return MLP(n_in, n_out, seed=seed, **kw)



# -- config overrides (sweeps) -------------------------------------------------------------
# `experiments.run(..., overrides=...)` sets these for the duration of one run; every
# experiment builds its LearnConfig through `learn_config`, which applies them on top of the
# experiment's own settings. A context variable, so concurrent runs in threads stay apart.
_OVERRIDES: contextvars.ContextVar[Optional[Dict[str, Any]]] = contextvars.ContextVar(
    "lpn_experiment_overrides", default=None)
_APPLIED: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar(
    "lpn_experiment_overrides_applied", default=None)


def check_overrides(overrides: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """`overrides` as a plain dict of LearnConfig fields, each value validated by LearnConfig;
    a ValueError naming unknown fields."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a dict of LearnConfig fields, got "
                        f"{type(overrides).__name__}")
    known = {f.name for f in dataclasses.fields(LearnConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown LearnConfig field(s) in overrides: {', '.join(unknown)}; "
                         f"expected some of {', '.join(sorted(known))}")
    out = dict(overrides)
    LearnConfig().replace(**out)  # validates every value
    return out


@contextlib.contextmanager
def config_overrides(overrides: Mapping[str, Any]) -> Iterator[list]:
    """Apply `overrides` to every `learn_config` call inside the block; yields a list that
    collects each LearnConfig built, so the caller can see whether they were used."""
    applied: list = []
    tok_o = _OVERRIDES.set(dict(overrides))
    tok_a = _APPLIED.set(applied)
    try:
        yield applied
    finally:
        _OVERRIDES.reset(tok_o)
        _APPLIED.reset(tok_a)


def learn_config(**fields: Any) -> LearnConfig:
    """The experiment's `LearnConfig(**fields)` with the active overrides on top. Every
    experiment builds its config here, so `run(..., overrides=...)` reaches all of them."""
    over = _OVERRIDES.get()
    cfg = LearnConfig(**{**fields, **over}) if over else LearnConfig(**fields)
    applied = _APPLIED.get()
    if applied is not None:
        applied.append(cfg)
    return cfg
