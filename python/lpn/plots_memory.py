"""Plots of the recall-memory experiments (registered into ``lpn.plots.PLOTTERS``)."""

from __future__ import annotations

import numpy as np

LPN_C = "tab:blue"
BASE_C = "tab:orange"


def _scenarios(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(len(c["query"]))
    ax1.bar(x - 0.2, c["hit"], 0.4, color=LPN_C, label="LPN memory")
    ax1.bar(x + 0.2, c["baseline_hit"], 0.4, color=BASE_C, label="raw cosine")
    ax1.set_xlabel("query")
    ax1.set_ylabel("right item ranked first")
    ax1.legend()
    ax2.bar(x, c["margin"], color=LPN_C)
    ax2.set_xlabel("query")
    ax2.set_ylabel("score margin: first - second")


def _digits(res, fig):
    c = res["curves"]
    axes = fig.subplots(1, 4, sharey=True)
    names = [k[4:] for k in c if k.startswith("lpn_")]
    for ax, name in zip(axes, names):
        ax.semilogx(c["capacity"], c[f"lpn_{name}"], "o-", color=LPN_C, label="LPN code")
        ax.semilogx(c["capacity"], c[f"baseline_{name}"], "s--", color=BASE_C,
                    label="raw cosine NN")
        ax.set_title(name.replace("_", " ") + "%")
        ax.set_xlabel("stored images")
    axes[0].set_ylabel("top-1 recall")
    axes[0].legend()


def _usage(res, fig):
    c = res["curves"]
    ax1, ax2 = fig.subplots(1, 2)
    for key, color, ls, label in (("lpn_frequent", LPN_C, "-", "LPN, frequent"),
                                  ("baseline_frequent", BASE_C, "-", "raw cosine, frequent"),
                                  ("lpn_rare", LPN_C, ":", "LPN, rare"),
                                  ("baseline_rare", BASE_C, ":", "raw cosine, rare")):
        ax1.plot(c["step"], c[key], color=color, ls=ls, label=label)
    ax1.set_xlabel("access")
    ax1.set_ylabel("top-1 recall (moving average)")
    ax1.legend(fontsize=8)
    t = np.asarray(c["idle_days"])
    for name, color in (("working", "tab:red"), ("episodic", "tab:green"),
                        ("semantic", "tab:purple")):
        ax2.plot(t, c[f"strength_{name}"], "o", ms=3, color=color, label=f"{name} item")
        ax2.plot(t, c[f"reference_{name}"], "-", lw=0.8, color=color,
                 label="exponential" if name != "semantic" else "power law")
    ax2.set_yscale("log")
    ax2.set_ylim(1e-4, 1.5)
    ax2.set_xlabel("idle days")
    ax2.set_ylabel("strength")
    ax2.legend(fontsize=8)


MEMORY_PLOTTERS = {
    "recall_scenarios": _scenarios,
    "recall_digits": _digits,
    "recall_usage": _usage,
}
