"""Sweeps: experiments x seeds x config overrides, on joblib (local) or Ray (docs/sweeps.md).

``lpn.sweep(["regression", "replay"], seeds=5, overrides={"lr": [0.2, 0.5]}, out="sweep")``
runs every cell (experiment, seed, setting) once: each finished cell is a JSON file under
``out/cells/`` keyed by the cell, so a re-run skips it and only runs what is missing or
failed. The result (and ``out/sweep.md``, ``out/sweep.json``, ``out/sweep.png``) is one row per
(experiment, setting): mean and 95 % confidence interval over seeds of the LPN and baseline
metric, criteria passed, and the failed cells with their errors.

Local runs use joblib processes with lpn's threads set to cores / jobs in each worker, where
"cores" honours the CPU affinity and an ``RAYON_NUM_THREADS``/``OMP_NUM_THREADS`` limit of
the calling process; ``backend="ray"`` sends the cells to a Ray cluster (``address``, or a
local instance). Needs the ``experiments`` extra, plus ``ray`` for the Ray backend.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import sys
import traceback
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["available_cores", "cells", "sweep", "summarize", "table_md"]

Setting = Dict[str, Any]
Cell = Tuple[str, int, Setting]

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom (then the normal 1.96):
# the CI of a mean over a handful of seeds must not pretend to be normal.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def available_cores() -> int:
    """CPUs this process may use: its affinity mask, capped by RAYON_NUM_THREADS or
    OMP_NUM_THREADS when either is set to a positive int."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    for var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.strip().isdigit() and int(v) > 0:
            n = min(n, int(v))
            break
    return max(1, n)


def _settings(overrides: Any) -> List[Setting]:
    """None -> [{}]; a dict of field -> value or list of values -> the grid; a list of dicts
    -> those settings."""
    if overrides is None:
        return [{}]
    if isinstance(overrides, Mapping):
        keys = sorted(overrides)
        values = [v if isinstance(v, (list, tuple)) else [v] for v in
                  (overrides[k] for k in keys)]
        for k, v in zip(keys, values):
            if not v:
                raise ValueError(f"overrides[{k!r}] is an empty list")
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    if isinstance(overrides, (list, tuple)):
        out = []
        for k, s in enumerate(overrides):
            if not isinstance(s, Mapping):
                raise TypeError(f"overrides[{k}] must be a dict, got {type(s).__name__}")
            out.append(dict(s))
        return out or [{}]
    raise TypeError(f"overrides must be None, a dict or a list of dicts, got "
                    f"{type(overrides).__name__}")


def cells(experiments: Union[str, Sequence[str]], seeds: Union[int, Iterable[int]] = 1,
          overrides: Any = None) -> List[Cell]:
    """Every (experiment, seed, setting), validated before anything runs."""
    from .experiments import NAMES
    from .experiments._common import check_overrides

    if isinstance(experiments, str):
        experiments = list(NAMES) if experiments == "all" else [experiments]
    experiments = list(experiments)
    for name in experiments:
        if name not in NAMES:
            raise ValueError(f"unknown experiment {name!r}; expected one of {', '.join(NAMES)}")
    if isinstance(seeds, bool):
        raise TypeError("seeds must be a count or a list of ints, got a bool")
    seed_list = list(range(int(seeds))) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list or any(s < 0 for s in seed_list):
        raise ValueError(f"seeds must be a positive count or non-negative ints, got {seeds!r}")
    settings = [check_overrides(s) for s in _settings(overrides)]
    return [(e, s, o) for e in experiments for o in settings for s in seed_list]


def _cell_key(cell: Cell, quick: bool) -> str:
    from . import __version__

    name, seed, over = cell
    blob = json.dumps({"experiment": name, "seed": seed, "overrides": over, "quick": quick,
                       "version": __version__}, sort_keys=True, default=repr)
    return f"{name}-s{seed}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def _run_cell(cell: Cell, quick: bool, threads: int) -> Dict[str, Any]:
    """One cell in a worker: lpn's threads set first; an exception becomes a failed record."""
    import lpn
    from lpn import experiments

    name, seed, over = cell
    lpn.set_num_threads(int(threads))
    try:
        res = experiments.run(name, seed=seed, quick=quick, progress=False, overrides=over)
        res.pop("curves", None)  # plots of single runs belong to `lpn run`
        return {"ok": True, "result": res, "threads": lpn.get_num_threads()}
    except Exception as exc:  # a failed cell is reported, the sweep goes on
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(), "experiment": name, "seed": seed,
                "overrides": over}


def _write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=repr)
    os.replace(tmp, path)


def _joblib_results(todo: List[Cell], quick: bool, n_jobs: int,
                    threads: int) -> Iterator[Tuple[Cell, Dict[str, Any]]]:
    try:
        from joblib import Parallel, delayed
    except ImportError as exc:  # pragma: no cover - joblib comes with scikit-learn
        raise ImportError("lpn sweeps need joblib: pip install 'lpn-pheromone[experiments]'") from exc
    if n_jobs == 1:
        for c in todo:
            yield c, _run_cell(c, quick, threads)
        return
    par = Parallel(n_jobs=n_jobs, return_as="generator")
    yield from zip(todo, par(delayed(_run_cell)(c, quick, threads) for c in todo))


def _ray_results(todo: List[Cell], quick: bool, n_jobs: Optional[int], address: Optional[str],
                 threads: Optional[int]) -> Iterator[Tuple[Cell, Dict[str, Any]]]:
    try:
        import ray
    except ImportError as exc:
        raise ImportError("the Ray backend needs ray: pip install 'lpn-pheromone[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    jobs = max(1, min(len(todo), n_jobs or cpus))
    # A task asking for more CPUs than the cluster has would never be scheduled.
    per = min(cpus, threads) if threads else max(1, cpus // jobs)
    remote = ray.remote(num_cpus=per)(_run_cell)
    pending = {remote.remote(c, quick, per): c for c in todo}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            cell = pending.pop(ref)
            try:
                yield cell, ray.get(ref)
            except Exception as exc:  # the worker died: the cell failed, others go on
                yield cell, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                             "experiment": cell[0], "seed": cell[1], "overrides": cell[2]}


def sweep(experiments: Union[str, Sequence[str]], seeds: Union[int, Iterable[int]] = 1,
          overrides: Any = None, *, quick: bool = False, n_jobs: Optional[int] = None,
          backend: str = "joblib", address: Optional[str] = None, threads: Optional[int] = None,
          out: Optional[str] = "sweep", plot: bool = True,
          verbose: bool = False) -> Dict[str, Any]:
    """Run experiments x seeds x settings and summarise them.

    experiments: a name, a list of names, or "all". seeds: a count (0..n-1) or a list.
    overrides: None, a dict of LearnConfig field -> value or list of values (their grid), or
    a list of dicts (those settings). n_jobs: parallel cells (default: one per core, at most
    the number of cells). threads: lpn threads per cell (default: cores // n_jobs).
    backend: "joblib" (local processes) or "ray" (`address` of a cluster, else local).
    out: directory for the cell cache and the summary files (None: no cache, no files).

    Returns {"rows": [...], "failed": [...], "ran": n, "cached": n, "files": {...}}.
    """
    if backend not in ("joblib", "ray"):
        raise ValueError(f"backend must be 'joblib' or 'ray', got {backend!r}")
    grid = cells(experiments, seeds, overrides)
    cache_dir = os.path.join(out, "cells") if out is not None else None
    if cache_dir is not None:
        os.makedirs(cache_dir, exist_ok=True)
    records: Dict[int, Dict[str, Any]] = {}
    todo: List[Cell] = []
    keys = [_cell_key(c, bool(quick)) for c in grid]
    for i, (c, key) in enumerate(zip(grid, keys)):
        path = os.path.join(cache_dir, key + ".json") if cache_dir else None
        if path and os.path.exists(path):
            try:
                with open(path) as f:
                    records[i] = {**json.load(f), "cached": True}
                continue
            except (OSError, ValueError):
                pass  # an unreadable cache entry is run again
        todo.append(c)
    index = {id(c): i for i, c in enumerate(grid)}
    cores = available_cores()
    if backend == "joblib":
        jobs = max(1, min(len(todo) or 1, n_jobs or cores))
        per = threads or max(1, cores // jobs)
        stream = _joblib_results(todo, bool(quick), jobs, per)
    else:
        stream = _ray_results(todo, bool(quick), n_jobs, address, threads)
    ran = 0
    for cell, rec in stream:
        i = index[id(cell)]
        records[i] = rec
        ran += 1
        if rec["ok"] and cache_dir is not None:
            _write_json(os.path.join(cache_dir, keys[i] + ".json"), rec)
        if verbose:
            status = "ok" if rec["ok"] else f"FAILED ({rec['error']})"
            print(f"[{ran}/{len(todo)}] {cell[0]} seed {cell[1]} {cell[2] or ''}: {status}",
                  flush=True)
    ordered = [records[i] for i in range(len(grid))]
    summary = summarize(ordered, grid)
    summary["ran"] = ran
    summary["cached"] = len(grid) - ran
    summary["files"] = {}
    if out is not None:
        summary["files"]["json"] = os.path.join(out, "sweep.json")
        _write_json(summary["files"]["json"], {k: v for k, v in summary.items() if k != "files"})
        summary["files"]["md"] = os.path.join(out, "sweep.md")
        with open(summary["files"]["md"], "w") as f:
            f.write(table_md(summary))
        if plot:
            summary["files"]["png"] = plot_summary(summary, os.path.join(out, "sweep.png"))
    return summary


def _mean_ci(values: Sequence[float]) -> Tuple[float, float]:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return float("nan"), float("nan")
    n = len(vals)
    mean = sum(vals) / n
    if n == 1:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    return mean, t * sd / math.sqrt(n)


def summarize(records: Sequence[Dict[str, Any]], grid: Sequence[Cell]) -> Dict[str, Any]:
    """One row per (experiment, setting): seeds run, mean ± 95 % CI (Student t) of the LPN
    and baseline metric, criteria passed; plus every failed cell."""
    groups: Dict[Tuple[str, str], List[Tuple[Cell, Dict[str, Any]]]] = {}
    for cell, rec in zip(grid, records):
        groups.setdefault((cell[0], json.dumps(cell[2], sort_keys=True)), []).append((cell, rec))
    rows, failed = [], []
    for (name, over_key), items in groups.items():
        ok = [r["result"] for _, r in items if r["ok"]]
        for cell, r in items:
            if not r["ok"]:
                failed.append({"experiment": cell[0], "seed": cell[1], "overrides": cell[2],
                               "error": r["error"]})
        lpn_m, lpn_ci = _mean_ci([r["lpn"] for r in ok])
        base_m, base_ci = _mean_ci([r["baseline"] for r in ok])
        rows.append({
            "experiment": name, "overrides": json.loads(over_key),
            "metric": ok[0]["metric"] if ok else "", "seeds": len(items), "ok": len(ok),
            "failed": len(items) - len(ok), "lpn_mean": lpn_m, "lpn_ci95": lpn_ci,
            "baseline_mean": base_m, "baseline_ci95": base_ci,
            "passed": sum(bool(r["passed"]) for r in ok),
        })
    return {"rows": rows, "failed": failed}


def _pm(mean: float, ci: float) -> str:
    if math.isnan(mean):
        return "-"
    f = (lambda x: f"{x:.4g}") if 1e-3 <= abs(mean) < 1e4 or mean == 0 else \
        (lambda x: f"{x:.3e}")
    return f(mean) if math.isnan(ci) else f"{f(mean)} ± {f(ci)}"


def _setting_text(over: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(over.items())) or "defaults"


def table_md(summary: Mapping[str, Any]) -> str:
    """The summary as a Markdown table, failed cells listed below it."""
    lines = ["| experiment | setting | metric | LPN (mean ± 95% CI) | baseline (mean ± 95% CI) | "
             "passed | failed |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["rows"]:
        lines.append(f"| {r['experiment']} | {_setting_text(r['overrides'])} | {r['metric']} | "
                     f"{_pm(r['lpn_mean'], r['lpn_ci95'])} | "
                     f"{_pm(r['baseline_mean'], r['baseline_ci95'])} | "
                     f"{r['passed']}/{r['ok']} | {r['failed']} |")
    text = "\n".join(lines) + "\n"
    if summary["failed"]:
        text += "\nFailed cells:\n\n" + "".join(
            f"- {f['experiment']} seed {f['seed']} {_setting_text(f['overrides'])}: "
            f"{f['error']}\n" for f in summary["failed"])
    return text


def plot_summary(summary: Mapping[str, Any], path: str) -> str:
    """One panel per experiment: LPN and baseline mean with 95 % CI per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["experiment"] for r in summary["rows"]))
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.8 * max(1, len(names))),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        rows = [r for r in summary["rows"] if r["experiment"] == name]
        xs = list(range(len(rows)))
        for key, label, dx in (("lpn", "LPN", -0.08), ("baseline", "baseline", 0.08)):
            m = [r[f"{key}_mean"] for r in rows]
            e = [0.0 if math.isnan(r[f"{key}_ci95"]) else r[f"{key}_ci95"] for r in rows]
            ax.errorbar([x + dx for x in xs], m, yerr=e, fmt="o", capsize=4, label=label)
        ax.set_xticks(xs)
        ax.set_xticklabels([_setting_text(r["overrides"]) for r in rows], fontsize=8)
        ax.set_title(f"{name} (n = {rows[0]['seeds']} seeds, 95% CI)", fontsize=10)
        ax.set_ylabel(rows[0]["metric"] or "metric", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- command line: lpn sweep ---------------------------------------------------------------
def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _parse_seeds(text: str) -> List[int]:
    """"5" -> 0..4; "3-6" -> 3..6; "0,2,7" -> those."""
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        if "-" in text.strip("-"):
            lo, hi = text.split("-", 1)
            return list(range(int(lo), int(hi) + 1))
        return list(range(int(text)))
    except ValueError:
        raise ValueError(f"--seeds must be a count (5), a range (3-6) or a list (0,2,7), "
                         f"got {text!r}") from None


def add_cli_parser(sub: Any) -> None:
    """Add the `lpn sweep` subcommand to the `lpn` command's subparsers."""
    from .experiments import NAMES

    p = sub.add_parser("sweep", help="experiments x seeds x config overrides, in parallel",
                       description="Run every (experiment, seed, setting) cell, skip cells "
                       "finished by an earlier run, write sweep.md/.json/.png to --out.")
    p.add_argument("names", nargs="+", choices=[*NAMES, "all"], metavar="NAME",
                   help=f"experiments ({', '.join(NAMES)}) or 'all'")
    p.add_argument("--seeds", default="3", help="count (3), range (0-4) or list (0,2,7); "
                   "default 3")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=V1,V2",
                   help="LearnConfig override values (repeat for a grid), e.g. --set lr=0.2,0.5")
    p.add_argument("--jobs", type=int, default=None, help="parallel cells (default: cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="lpn threads per cell (default: cores // jobs)")
    p.add_argument("--backend", choices=("joblib", "ray"), default="joblib")
    p.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    p.add_argument("--quick", action="store_true", help="small CI-sized experiments")
    p.add_argument("--out", default="sweep", help="output and cache directory (default ./sweep)")


def cli_main(args: Any) -> int:
    """Exit status 0 when every cell ran (criteria may fail: the table says), 1 when a cell
    failed, 2 for a usage error."""
    try:
        seeds = _parse_seeds(args.seeds)
        grid: Dict[str, List[Any]] = {}
        for item in args.set:
            field, sep, values = item.partition("=")
            if not sep or not field.strip() or not values.strip():
                raise ValueError(f"--set takes FIELD=V1,V2,..., got {item!r}")
            grid[field.strip()] = [_parse_value(v) for v in values.split(",")]
        names = list(dict.fromkeys(args.names))
        res = sweep("all" if "all" in names else names, seeds, grid or None, quick=args.quick,
                    n_jobs=args.jobs, backend=args.backend, address=args.address,
                    threads=args.threads, out=args.out, verbose=True)
    except (ValueError, TypeError) as exc:
        print(f"lpn sweep: error: {exc}", file=sys.stderr)
        return 2
    print()
    print(table_md(res))
    print(f"{res['ran']} cells run, {res['cached']} cached; results in "
          f"{os.path.abspath(args.out)}")
    return 1 if res["failed"] else 0
