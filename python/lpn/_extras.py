"""Optional dependencies: one clear line when an extra is missing.

The engine needs numpy only; the experiment suite, the estimator wrappers and the
distributed sweeps live behind extras. :func:`require` turns a missing module into a
:class:`MissingExtraError` whose message is the one command that fixes it.
"""

from __future__ import annotations

import importlib.util

__all__ = ["DISTRIBUTION", "MissingExtraError", "install_hint", "missing", "require"]

#: The name on PyPI (``lpn`` itself is taken there); the import name stays ``lpn``.
DISTRIBUTION = "lpn-pheromone"


class MissingExtraError(ImportError):
    """An optional dependency of ``lpn`` is not installed; the message says how to get it."""


def install_hint(extra: str) -> str:
    """The pip command that installs ``extra``, e.g. ``pip install 'lpn-pheromone[river]'``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def missing(*modules: str) -> list:
    """The top-level modules among ``modules`` that cannot be imported (without importing)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(what: str, extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` if any of ``modules`` is missing.

    ``what`` names the feature for the message, e.g. ``require("lpn run", "experiments",
    "sklearn", "matplotlib", "tqdm")`` gives ``lpn run needs the experiments extra (missing:
    sklearn): pip install 'lpn-pheromone[experiments]'``.
    """
    gone = missing(*modules)
    if gone:
        raise MissingExtraError(
            f"{what} needs the {extra} extra (missing: {', '.join(gone)}): "
            f"{install_hint(extra)}"
        )
