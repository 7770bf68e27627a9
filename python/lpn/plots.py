"""One PNG per experiment result (matplotlib, Agg backend: no display needed).

Each plotter takes the dict returned by :func:`lpn.experiments.run` and draws LPN and the
baseline on the same axes, so a reader sees the comparison the criterion is about.
"""

from __future__ import annotations

import os

from ._extras import require

require("lpn.plots", "experiments", "matplotlib")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["PLOTTERS", "plot_result"]

LPN_C = "tab:blue"
BASE_C = "tab:orange"
CTRL_C = "tab:gray"


def _switch(ax, res):
    for s in res["curves"].get("switch_step", []):
        ax.axvline(s, color="k", lw=0.8, ls=":", label="task switch")


def _title(fig, res):
    status = "PASS" if res["passed"] else "FAIL"
    fig.suptitle(f"{res['name']} — {status}", fontsize=11)


def _regression(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(c["step"], c["lpn_mse"], color=LPN_C, label="LPN")
    ax1.semilogy(c["baseline_step"], c["baseline_mse"], color=BASE_C, label="dense MLP")
    ax1.axhline(0.01, color="k", ls="--", lw=0.8, label="1% of variance")
    ax1.set_xlabel("online step")
    ax1.set_ylabel("test MSE / target variance")
    ax1.legend()
    ax2.plot(c["step"], c["budget"], color=LPN_C, label="budget f")
    ax2.set_xlabel("online step")
    ax2.set_ylabel("budget fraction f")
    ax3 = ax2.twinx()
    ax3.semilogy(c["step"], c["lpn_mse"], color="tab:green", alpha=0.6, label="LPN test MSE")
    ax3.set_ylabel("test MSE / target variance")
    h2, l2 = ax2.get_legend_handles_labels()
    h3, l3 = ax3.get_legend_handles_labels()
    ax2.legend(h2 + h3, l2 + [lbl + " (right axis)" for lbl in l3], loc="upper right", fontsize=8)
    # Say what the curve shows (it may rise: the budget grows whenever the loss worsens).
    b = c["budget"]
    ax2.set_title(f"budget fraction f per step: {b[0]:.3g} at start, {b[-1]:.3g} at end",
                  fontsize=10)


def _two_task(res, fig, lpn_label="LPN", base_label="dense MLP", control=False):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    for ax, task in ((ax1, "a"), (ax2, "b")):
        ax.semilogy(c["step"], np.maximum(c[f"lpn_err_{task}"], 1e-12), color=LPN_C,
                    label=lpn_label)
        if f"baseline_err_{task}" in c:
            ax.semilogy(c["step"], np.maximum(c[f"baseline_err_{task}"], 1e-12), color=BASE_C,
                        label=base_label)
        if control and f"control_err_{task}" in c:
            ax.semilogy(c["step"], np.maximum(c[f"control_err_{task}"], 1e-12), color=CTRL_C,
                        ls="--", label="LPN control (exp. 3)")
        _switch(ax, res)
        ax.set_xlabel("online step (A, then B)")
        ax.set_title(f"task {task.upper()}")
    ax1.set_ylabel("test MSE / target variance")
    ax1.legend(fontsize=8)


def _partitioned(res, fig):
    _two_task(res, fig)


def _conflicting(res, fig):
    _two_task(res, fig)


def _replay(res, fig):
    _two_task(res, fig, lpn_label="LPN + conflict replay", base_label="replay MLP",
              control=True)


def _consolidated(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(c["frontier_forgetting_a"], c["frontier_err_b"], "o-", color=LPN_C,
             label="LPN consolidate(strength)")
    for s, x, y in zip(c["strength"], c["frontier_forgetting_a"], c["frontier_err_b"]):
        ax1.annotate(f"{s:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax1.plot(*c["control_point"], "s", color=CTRL_C, label="LPN, no consolidation")
    lams = list(c["ewc_lambda"])
    ax1.plot(c["ewc_forgetting_a"], c["ewc_err_b"], "^-", color=BASE_C,
             label="EWC MLP, λ = " + ", ".join(f"{lam:g}" for lam in lams))
    # The EWC points crowd together: label only the two ends of the curve, on opposite
    # sides, so no two labels overlap; the legend lists every λ in order.
    if lams:
        ends = [(0, (6, -12), "left"), (len(lams) - 1, (-6, 8), "right")]
        for k, offset, ha in ends[: 1 if len(lams) == 1 else 2]:
            ax1.annotate(f"λ={lams[k]:g}", (c["ewc_forgetting_a"][k], c["ewc_err_b"][k]),
                         textcoords="offset points", xytext=offset, ha=ha, fontsize=8,
                         color=BASE_C)
    ax1.set_xlabel("A forgetting (stability: lower is better)")
    ax1.set_ylabel("B error after B (plasticity: lower is better)")
    ax1.set_title("stability–plasticity frontier")
    ax1.legend(fontsize=8)
    ax2.semilogy(c["step"], np.maximum(c["lpn_err_a"], 1e-12), color=LPN_C,
                 label="task A, consolidated")
    ax2.semilogy(c["step"], np.maximum(c["control_err_a"], 1e-12), color=CTRL_C, ls="--",
                 label="task A, control")
    ax2.semilogy(c["step"], np.maximum(c["lpn_err_b"], 1e-12), color="tab:green",
                 label="task B, consolidated")
    ax2.set_xlabel("online step (A, then B)")
    ax2.set_ylabel("test MSE / target variance")
    ax2.legend(fontsize=8)


def _structural(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(c["step"], np.maximum(c["lpn_mse"], 1e-12), color=LPN_C,
                 label="LPN with restructuring")
    ax1.semilogy(c["step"], np.maximum(c["fixed_mse"], 1e-12), color=CTRL_C, ls="--",
                 label="LPN, fixed wiring")
    ax1.semilogy(c["step"], np.maximum(c["baseline_mse"], 1e-12), color=BASE_C,
                 label="dense MLP")
    ax1.set_xlabel("online step")
    ax1.set_ylabel("test MSE / target variance")
    ax1.legend(fontsize=8)
    ax2.plot(c["step"], c["synapses"], color=LPN_C, label="synapses")
    ax2.axhline(c["bound"][0], color="r", ls="--", label="bound (max_fan_in)")
    ax2.set_xlabel("online step")
    ax2.set_ylabel("synapse count")
    ax2.set_ylim(0, c["bound"][0] * 1.1)
    ax2.legend(fontsize=8)


def _long_context(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogx(c["lag_centers"], c["lpn_recall_vs_lag"], "o-", color=LPN_C,
                 label="window + LPN memory")
    ax1.semilogx(c["lag_centers"], c["baseline_recall_vs_lag"], "s-", color=BASE_C,
                 label="window alone")
    ax1.axvline(c["W"][0], color="k", ls=":", label="window W")
    ax1.axhline(c["chance"][0], color=CTRL_C, ls="--", label="chance")
    ax1.set_xlabel("lag (steps between fact and query)")
    ax1.set_ylabel("recall")
    ax1.set_ylim(-0.02, 1.05)
    ax1.set_title(f"P = {c['capacity'][0]} facts")
    ax1.legend(fontsize=8)
    ax2.plot(c["P"], c["lpn_recall_vs_P"], "o-", color=LPN_C, label="window + LPN memory")
    ax2.plot(c["P"], c["baseline_recall_vs_P"], "s-", color=BASE_C, label="window alone")
    for key, label, col in (("delta_recall_vs_P", "window + dense delta memory", "tab:red"),
                            ("hebbian_recall_vs_P", "window + dense Hebbian memory",
                             "tab:purple")):
        if key in c:
            ax2.plot(c["P"], c[key], "^--", color=col, label=label)
    ax2.axvline(c["capacity"][0], color="k", ls=":", label="stated capacity")
    ax2.axhline(0.95, color="r", ls="--", lw=0.8, label="95%")
    ax2.set_xlabel("facts stored P")
    ax2.set_ylabel(f"recall at lag ≥ 4W = {4 * c['W'][0]}")
    ax2.set_ylim(-0.02, 1.05)
    ax2.legend(fontsize=8)


def _split_digits(res, fig):
    c = res["curves"]
    ax1, ax2, ax3 = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1]})
    colors = {"lpn": LPN_C, "mlp": BASE_C, "ewc_mlp": "tab:red", "replay_mlp": "tab:purple"}
    n_tasks = 1
    for m in c["models"]:
        seen = c[f"{m}_seen_acc"]
        n_tasks = max(n_tasks, len(seen))
        ax1.plot(range(1, len(seen) + 1), seen, "o-", color=colors.get(m), label=m)
    ax1.set_xticks(range(1, n_tasks + 1))  # whole tasks only
    ax1.set_xlabel("tasks learned")
    ax1.set_ylabel("mean accuracy on tasks seen so far")
    ax1.legend(fontsize=8)
    x = np.arange(len(c["models"]))
    bar_colors = [colors.get(m, CTRL_C) for m in c["models"]]
    # ACC and forgetting on their own axes: forgetting is a few points at most, invisible on
    # the accuracy scale.
    for ax, key, label in ((ax2, "acc", "ACC (mean final accuracy)"),
                           (ax3, "forgetting", "forgetting (max earlier - final)")):
        vals = np.asarray(c[key], dtype=float)
        ax.bar(x, vals, 0.6, color=bar_colors)
        for xi, v in zip(x, vals):
            ax.annotate(f"{v:.3f}", (xi, v), textcoords="offset points", xytext=(0, 2),
                        ha="center", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(c["models"], fontsize=7, rotation=20)
        ax.set_ylabel(label)
        top = float(vals.max()) if vals.size else 1.0
        ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)


def _digits_cl(res, fig):
    """Label-free digits: seen-task accuracy per learner, final ACC ± std, ablation bars."""
    c = res["curves"]
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for m in c["models"]:
        seen = c[f"{m}_seen_acc"]
        style = "o-" if m.startswith("lpn") else "s--"
        ax1.plot(range(1, len(seen) + 1), seen, style, ms=3, label=m)
    ax1.set_xlabel("tasks seen")
    ax1.set_ylabel("mean accuracy on tasks seen so far")
    ax1.set_ylim(0, 1.02)
    ax1.legend(fontsize=7)
    x = np.arange(len(c["models"]))
    colors = [LPN_C if m.startswith("lpn") else BASE_C for m in c["models"]]
    ax2.bar(x, c["acc"], 0.6, yerr=c["acc_std"], color=colors, capsize=2)
    ax2.set_xticks(x)
    ax2.set_xticklabels(c["models"], fontsize=7, rotation=45, ha="right")
    ax2.set_ylabel("final ACC (mean ± std over seeds)")
    ax2.set_ylim(0, 1.02)
    if c["ablation"]:
        full = c["acc"][c["models"].index("lpn_replay")]
        xa = np.arange(len(c["ablation"]) + 1)
        ax3.bar(xa, [full, *c["ablation_acc"]], 0.6,
                color=[LPN_C] + ["tab:gray"] * len(c["ablation"]))
        ax3.set_xticks(xa)
        ax3.set_xticklabels(["full", *[f"no {a}" for a in c["ablation"]]], fontsize=7,
                            rotation=45, ha="right")
        ax3.set_ylabel("LPN+replay ACC, one mechanism off")
        ax3.set_ylim(0, 1.02)


PLOTTERS = {
    "regression": _regression,
    "partitioned_memory": _partitioned,
    "conflicting_memory": _conflicting,
    "consolidated_conflict": _consolidated,
    "structural_plasticity": _structural,
    "replay": _replay,
    "long_context_memory": _long_context,
    "split_digits": _split_digits,
    "class_incremental_digits": _digits_cl,
    "permuted_digits": _digits_cl,
    "task_free_digits": _digits_cl,
}

from .plots_memory import MEMORY_PLOTTERS  # noqa: E402

PLOTTERS.update(MEMORY_PLOTTERS)


def plot_result(res: dict, out_dir) -> str:
    """Write ``<out_dir>/<name>.png`` and return its path."""
    os.makedirs(out_dir, exist_ok=True)
    fig = plt.figure(figsize=(11, 4.2))
    try:
        PLOTTERS[res["name"]](res, fig)
        _title(fig, res)
        fig.tight_layout()
        path = os.path.join(os.fspath(out_dir), f"{res['name']}.png")
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
