#!/usr/bin/env python3
"""Soak test: a long online run with every mechanism on, checkpointing as it goes.

Default: 1,000,000 new samples (plus replays) in batched `learn` calls, with structural
plasticity, conflict-gated replay, auto consolidation and per-sample output masks, a checkpoint
every 100,000 samples (newest 3 kept). At every checkpoint it records the process RSS, checks
that nothing is NaN and that every weight lies within ±w_max; at the end it resumes from the
newest checkpoint and checks the resumed network continues bit for bit like the live one.

    python scripts/soak.py                      # the full run (a few minutes)
    python scripts/soak.py --samples 200000 --every 20000 --json report.json

Exit status 0 when every check held. Not part of CI (tests/test_soak.py runs it under
`pytest -m soak`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

import numpy as np

import lpn
from lpn import checkpoint as ckpt


def rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover - Linux fallback
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover


def build(seed: int) -> lpn.Network:
    cfg = lpn.LearnConfig(lr=0.3, restructure_every=500, replay_capacity=512,
                          replay_on_conflict=True, conflict_ratio=1.2,
                          auto_consolidate_every=1000, auto_threshold=0.2, kappa_long=0.5,
                          rho_consolidation=0.9999)
    specs = [lpn.LayerSpec(64, 256, radius=0.08, activation="tanh", max_fan_in=48),
             lpn.LayerSpec(256, 10, radius=0.25)]
    return lpn.Network(specs, config=cfg, seed=seed)


class Stream:
    """Drifting tasks: every `period` samples a new random teacher and a new active output
    subset, so conflicts, replay, consolidation and restructuring all keep happening."""

    def __init__(self, seed: int, period: int = 50_000) -> None:
        self.r = np.random.default_rng(seed)
        self.period = period
        self.pos = 0
        self._task()

    def _task(self) -> None:
        self.teacher = self.r.normal(size=(64, 10)).astype(np.float32) / 8
        self.active = self.r.random(10) < 0.6
        self.active[self.r.integers(10)] = True

    def batch(self, n: int):
        if self.pos // self.period != (self.pos + n - 1) // self.period:
            self._task()
        self.pos += n
        x = self.r.normal(size=(n, 64)).astype(np.float32)
        t = np.tanh(x @ self.teacher)
        mask = np.broadcast_to(self.active, (n, 10)) & (self.r.random((n, 10)) < 0.9)
        return x, t, np.ascontiguousarray(mask)


def health(net: lpn.Network) -> Dict[str, Any]:
    w_max = net.config.w_max
    worst, nan = 0.0, False
    for layer in net.layers:
        syn = layer.synapses()
        for k in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
            nan |= bool(np.isnan(syn[k]).any())
        worst = max(worst, float(np.abs(syn["weight"]).max(initial=0.0)))
        st = layer.state()
        nan |= bool(np.isnan(st["bias"]).any() or np.isnan(st["error_trace"]).any())
    return {"max_abs_weight": worst, "weights_bounded": worst <= w_max, "nan": nan}


def run(samples: int = 1_000_000, every: int = 100_000, batch: int = 1000,
        folder: Optional[str] = None, seed: int = 0, replay: int = 1,
        log=print) -> Dict[str, Any]:
    own = folder is None
    tmp = tempfile.TemporaryDirectory(prefix="lpn-soak-") if own else None
    folder = tmp.name if own else folder
    try:
        net = build(seed)
        net.checkpoint_every(every, folder, keep=3)
        stream = Stream(seed + 1)
        rows: List[Dict[str, Any]] = []
        t0 = time.perf_counter()
        log(f"soak: {samples:,} samples, batch {batch}, checkpoint every {every:,} -> {folder}")
        log(f"{'samples':>10} {'steps':>10} {'rss MiB':>8} {'synapses':>9} {'max|w|':>7} "
            f"{'loss':>8} {'sec':>7}")
        done, losses = 0, []
        next_report = every
        while done < samples:
            n = min(batch, samples - done)
            x, t, m = stream.batch(n)
            losses.append(net.learn(x, t, mask=m, replay=replay))
            done += n
            if done >= next_report:
                next_report += every
                st = net.stats()
                h = health(net)
                row = {"samples": st["samples"], "steps": st["steps"],
                       "replays": st["replays"], "rss_mib": round(rss_mib(), 1),
                       "synapses": sum(lay["synapses"] for lay in st["layers"]),
                       "capacity": sum(lay["capacity"] for lay in st["layers"]),
                       "pruned_total": sum(lay["pruned_total"] for lay in st["layers"]),
                       "grown_total": sum(lay["grown_total"] for lay in st["layers"]),
                       "loss": float(np.mean(losses[-50:])),
                       "seconds": round(time.perf_counter() - t0, 1), **h}
                rows.append(row)
                log(f"{row['samples']:>10,} {row['steps']:>10,} {row['rss_mib']:>8.1f} "
                    f"{row['synapses']:>9,} {row['max_abs_weight']:>7.3f} {row['loss']:>8.4f} "
                    f"{row['seconds']:>7.1f}")
        elapsed = time.perf_counter() - t0
        files = ckpt.list_checkpoints(folder)

        # Resume: the newest checkpoint must equal the live network where they coincide, and
        # continue exactly like it.
        resumed = lpn.Network.load_latest(folder)
        resumed_at = resumed.stats()["samples"]
        same_at_save = resumed_at == net.stats()["samples"] and resumed.same_state(net)
        net.checkpoint_every(None)
        x, t, m = stream.batch(2000)
        net.learn(x, t, mask=m, replay=replay)
        resumed.learn(x, t, mask=m, replay=replay)
        continues = resumed.same_state(net)

        rss = [r["rss_mib"] for r in rows]
        # Growth settles after the first re-layout; judge flatness on the later checkpoints.
        tail = rss[len(rss) // 2:] if len(rss) > 2 else rss
        report = {
            "samples": samples, "batch": batch, "every": every, "seconds": round(elapsed, 1),
            "samples_per_second": round(samples / elapsed),
            "steps": rows[-1]["steps"] if rows else 0, "checkpoints": rows,
            "files_kept": [os.path.basename(p) for _, p in files],
            "file_bytes": os.path.getsize(files[-1][1]) if files else 0,
            "rss_first_mib": rss[0] if rss else None, "rss_last_mib": rss[-1] if rss else None,
            "rss_growth_second_half_mib": round(max(tail) - min(tail), 1) if tail else None,
            "no_nan": not any(r["nan"] for r in rows),
            "weights_bounded": all(r["weights_bounded"] for r in rows),
            "resumed_from": resumed_at, "resume_same_state": same_at_save,
            "resume_continues_exactly": continues,
        }
        report["ok"] = bool(report["no_nan"] and report["weights_bounded"] and same_at_save
                            and continues and len(files) == min(3, samples // every)
                            and (report["rss_growth_second_half_mib"] or 0) < 64)
        log(f"done in {elapsed:.0f} s ({report['samples_per_second']:,} samples/s); "
            f"rss {report['rss_first_mib']} -> {report['rss_last_mib']} MiB; "
            f"kept {report['files_kept']}; resume exact: {continues}; ok: {report['ok']}")
        return report
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--replay", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", default=None, help="checkpoint folder (default: a temp folder)")
    p.add_argument("--json", default=None, help="write the report here")
    a = p.parse_args(argv)
    report = run(a.samples, a.every, a.batch, a.dir, a.seed, a.replay)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
