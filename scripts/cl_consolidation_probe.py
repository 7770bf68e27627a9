"""Probe (docs/experiments.md): LPN+replay on the label-free digit streams with the existing
decay of consolidation (``rho_consolidation``) instead of the reported ``1`` (never decays).

Runs on the validation seed only (1000), at LPN+replay's usual grid point; prints ACC,
forgetting and plasticity.  Not part of the evaluated configuration.
"""

from __future__ import annotations

import lpn
from lpn import metrics, tasks
from lpn.experiments import _digits_cl as D

_extra: dict = {}
_orig = lpn.LearnConfig


def _patched(**kw):
    kw.update(_extra)
    return _orig(**kw)


def main() -> None:
    D.lpn.LearnConfig = _patched
    streams = {"permuted": lambda s: tasks.permuted_digits(s, 5, fraction=0.4),
               "class-incremental": lambda s: tasks.class_incremental_digits(s, 5)}
    try:
        for name, make in streams.items():
            for rho in (1.0, 0.999, 0.99):
                _extra["rho_consolidation"] = rho
                R = D.one_run("lpn_replay", 1000, {"lr": 0.5, "budget": 1.0}, make, False)
                s = metrics.summary(R)
                print(f"{name:18s} rho_consolidation={rho:<6g} acc={s['acc']:.3f} "
                      f"forgetting={s['forgetting']:.3f} plasticity={s['plasticity']:.3f}")
    finally:
        D.lpn.LearnConfig = _orig


if __name__ == "__main__":
    main()
