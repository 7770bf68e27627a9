"""Sweeps: overrides reach the experiments, cells are cached, failures reported, threads per
worker, the CLI, and the Ray backend on a local instance."""

import json
import os

import pytest

import lpn
from lpn import experiments, sweeps
from lpn.cli import main
from lpn.experiments import _common

# long_context_memory is the fastest experiment in quick form (well under a second): one-shot
# writes at lr 1 recall every fact; at lr 0.2 they are too weak (recall 0.64 / 0.78, seeds 0/1).
FAST = "long_context_memory"


def test_run_applies_overrides_and_records_them():
    base = experiments.run(FAST, seed=0, quick=True, progress=False)
    over = experiments.run(FAST, seed=0, quick=True, progress=False, overrides={"lr": 0.2})
    assert base["overrides"] == {} and over["overrides"] == {"lr": 0.2}
    assert base["lpn"] == 1.0 and over["lpn"] < 0.9
    with pytest.raises(ValueError, match="unknown LearnConfig field"):
        experiments.run(FAST, quick=True, progress=False, overrides={"lrr": 1})
    with pytest.raises((ValueError, TypeError), match="budget"):
        experiments.run(FAST, quick=True, progress=False, overrides={"budget": "x"})


def test_learn_config_helper_layers_overrides_on_the_experiment_settings():
    with _common.config_overrides({"lr": 0.1}) as applied:
        cfg = _common.learn_config(lr=0.5, budget=0.2)
    assert (cfg.lr, cfg.budget) == (0.1, 0.2) and applied == [cfg]
    assert _common.learn_config(lr=0.5).lr == 0.5  # nothing leaks out of the block


def test_cells_grid_and_validation():
    grid = sweeps.cells(["regression", "replay"], 2, {"lr": [0.1, 0.5], "budget": 0.3})
    assert len(grid) == 2 * 2 * 2
    assert grid[0] == ("regression", 0, {"budget": 0.3, "lr": 0.1})
    assert sweeps.cells("regression", [4, 7], [{"lr": 0.2}])[1] == ("regression", 7,
                                                                    {"lr": 0.2})
    with pytest.raises(ValueError, match="unknown experiment"):
        sweeps.cells("nope")
    with pytest.raises(ValueError, match="unknown LearnConfig"):
        sweeps.cells("regression", 1, {"speed": [1]})
    with pytest.raises(ValueError, match="empty"):
        sweeps.cells("regression", 1, {"lr": []})


def test_available_cores_honours_thread_limits(monkeypatch):
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert sweeps.available_cores() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert sweeps.available_cores() == len(os.sched_getaffinity(0))


def test_joblib_sweep_table_cache_and_threads(tmp_path):
    out = str(tmp_path / "s")
    res = lpn.sweep(FAST, seeds=2, overrides={"lr": [0.2, 1.0]}, quick=True, n_jobs=2,
                    out=out)
    assert (res["ran"], res["cached"], res["failed"]) == (4, 0, [])
    assert [r["overrides"] for r in res["rows"]] == [{"lr": 0.2}, {"lr": 1.0}]
    assert [r["passed"] for r in res["rows"]] == [0, 2]
    cells = {}
    for name in os.listdir(os.path.join(out, "cells")):
        with open(os.path.join(out, "cells", name)) as f:
            rec = json.load(f)
        cells[(rec["result"]["seed"], rec["result"]["overrides"]["lr"])] = rec
        # two jobs on this machine's cores: lpn's pool in each worker is cores // 2
        assert rec["threads"] == max(1, sweeps.available_cores() // 2)
    assert len(cells) == 4
    for row in res["rows"]:
        vals = [cells[(s, row["overrides"]["lr"])]["result"]["lpn"] for s in (0, 1)]
        mean = sum(vals) / 2
        assert row["lpn_mean"] == pytest.approx(mean)
        # two seeds: t(0.975, 1) * sd / sqrt(2) = 12.706 * |a - b| / 2
        assert row["lpn_ci95"] == pytest.approx(12.706 * abs(vals[0] - vals[1]) / 2)
        assert row["ok"] == row["seeds"] == 2
    for key in ("md", "json", "png"):
        assert os.path.getsize(res["files"][key]) > 0
    with open(res["files"]["md"]) as f:
        assert "lr=0.2" in f.read()
    again = lpn.sweep(FAST, seeds=2, overrides={"lr": [0.2, 1.0]}, quick=True, n_jobs=2,
                      out=out, plot=False)
    assert (again["ran"], again["cached"]) == (0, 4)
    assert again["rows"] == res["rows"]


def test_failed_cells_are_reported_and_retried(tmp_path):
    out = str(tmp_path / "f")
    # the replay experiment asks for replay: without a buffer every step is refused
    res = lpn.sweep("replay", seeds=[1], overrides={"replay_capacity": 0}, quick=True,
                    n_jobs=1, out=out, plot=False)
    assert res["ran"] == 1 and len(res["failed"]) == 1
    fail = res["failed"][0]
    assert fail["seed"] == 1 and "replay buffer" in fail["error"]
    assert res["rows"][0]["failed"] == 1 and res["rows"][0]["ok"] == 0
    assert os.listdir(os.path.join(out, "cells")) == []  # not cached: a re-run retries it
    again = lpn.sweep("replay", seeds=[1], overrides={"replay_capacity": 0}, quick=True,
                      n_jobs=1, out=out, plot=False)
    assert again["ran"] == 1
    lpn.set_num_threads(0)


def test_cli_sweep(tmp_path, capsys):
    out = str(tmp_path / "c")
    rc = main(["sweep", FAST, "--seeds", "0,1", "--set", "lr=1.0", "--quick", "--jobs", "1",
               "--out", out])
    lpn.set_num_threads(0)
    assert rc == 0
    text = capsys.readouterr().out
    assert f"| {FAST} | lr=1.0 |" in text and "2 cells run, 0 cached" in text
    assert main(["sweep", "regression", "--set", "lr", "--out", out]) == 2
    assert main(["sweep", "regression", "--seeds", "x-y", "--out", out]) == 2


def test_ray_backend_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = lpn.sweep(FAST, seeds=2, overrides={"lr": 0.2}, quick=True, backend="ray",
                        out=str(tmp_path / "r"), plot=False)
    finally:
        ray.shutdown()
    assert (res["ran"], res["failed"]) == (2, [])
    row = res["rows"][0]
    local = [experiments.run(FAST, seed=s, quick=True, progress=False,
                             overrides={"lr": 0.2})["lpn"] for s in (0, 1)]
    assert row["lpn_mean"] == sum(local) / 2  # the same numbers as a local run


def test_lpn_honours_omp_num_threads_in_worker_processes():
    import subprocess
    import sys

    code = "import lpn; print(lpn.get_num_threads())"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("RAYON_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "1"
    env["RAYON_NUM_THREADS"] = "2"  # rayon's own variable wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "2"
