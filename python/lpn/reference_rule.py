"""The learning rule of one layer, as docs/rule.md states it, step by step.

This is the specification the engine (src/rule.rs, src/layer.rs, src/budget.rs) is tested
against. Each function takes a ``ReferenceLayer`` (``lpn.reference``) and updates its arrays:
synapse columns ``weight``, ``short_trail``, ``long_trail``, ``consolidation``, ``anchor``
(one entry per synapse, rows ``post`` ascending, ``pre`` ascending inside a row), per-unit
``bias``, ``error_trace`` (h), ``activity_trace`` (u), and the budget state ``budget`` (f),
``loss_avg`` (m), ``has_loss_avg``, ``expanding``. The float-order plumbing that makes the
numbers bit-identical to the engine's lives in ``reference_float``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lpn.reference_float import F32, seq_sum64, top_in_rows


def step(layer: Any, x: np.ndarray, e: np.ndarray, involved: np.ndarray, loss: float) -> None:
    """One application of the rule (§3 steps 1-6), then the budget (§3.1), the traces and
    the task-free consolidation (§3.2).

    ``x`` is the layer's input, ``e`` its local error (float32, zero on rows that are not
    involved), ``loss`` the step loss ``L`` that drives the budget.
    """
    cfg = layer._cfg
    one = F32(1)
    eta = F32(cfg["lr"])
    eta_b = F32(cfg["lr"] if cfg.get("bias_lr") is None else cfg["bias_lr"])
    ks, kl = F32(cfg["kappa_short"]), F32(cfg["kappa_long"])
    beta = F32(cfg["beta"])
    rho_s, rho_l = F32(cfg["rho_short"]), F32(cfg["rho_long"])
    rho_h, rho_c = F32(cfg["rho_trace"]), F32(cfg["rho_consolidation"])
    pull, w_max, eps = F32(cfg["pull"]), F32(cfg["w_max"]), F32(cfg["eps"])

    x = np.asarray(x, dtype=F32)
    e = np.asarray(e, dtype=F32)
    post = layer.post
    live = involved[post]  # synapses of involved rows; everything else stays bit-identical
    xi = x[layer.pre]
    ej = e[post]
    s, l, c = layer.short_trail, layer.long_trail, layer.consolidation

    # 1-2. Co-activity a = |e_j x_i| and pheromone factor g, both from the state before this
    # step; while expanding, the short trail adds a bonus β·s to the priority.
    a = np.abs(ej * xi)
    inv_norm = one / (one + ks + kl)  # the engine divides once per step, never per synapse
    g = (one + ks * s + kl * l) * inv_norm
    # Routing: consolidated and long-used synapses lose priority, so the budget goes to free
    # capacity. Applied only when a weight is not 0: with both 0 the priority is the plain
    # a·g, even where c or l is not finite (a factor (1 - 0·c) would be NaN there).
    priority = a * g
    w_c, w_l = F32(cfg["route_consolidation"]), F32(cfg["route_long"])
    if w_c != 0 or w_l != 0:
        priority = priority * ((one - w_c * c) * (one - w_l * l))
    if layer.expanding:
        priority = priority + beta * s

    # 3. Budgeted selection: the k_j candidates (a > 0) of highest priority in each row.
    cand = live & (a > 0)
    n_cand = np.bincount(post[cand], minlength=layer.n_out)
    quota = quotas(layer, n_cand, involved)
    sel = top_in_rows(layer.pre, post, layer._row_start, layer._slot, priority, cand, quota)
    layer.touched = int(sel.sum())

    # 4. Normalised update, then the pull towards the anchor, then the clip at ±w_max.
    nx2 = layer._row_sum(xi * xi)
    w = layer.weight
    step = eta * e / (eps + nx2)  # per row: the normalised error step
    # The step carries g unless trails only steer the selection (trail_scaled_step=False).
    g_step = g if cfg["trail_scaled_step"] else one
    dw = step[post] * g_step * (one - c) * xi
    w = np.where(sel, w + dw, w)
    w = np.where(sel, w - eta * pull * c * (w - layer.anchor), w)
    w = np.where(sel, np.clip(w, -w_max, w_max), w)
    layer.weight = w.astype(F32)
    if layer.use_bias:
        db = eta_b * e / (one + nx2)
        layer.bias = np.where(involved, layer.bias + db, layer.bias).astype(F32)

    # 5. Trails: evaporate the whole involved row, deposit on the selected synapses
    # relative to the row's strongest selected co-activity, then follow with the long trail.
    max_sel_a = np.zeros(layer.n_out, dtype=F32)
    np.maximum.at(max_sel_a, post[sel], a[sel])
    s_new = rho_s * s
    with np.errstate(divide="ignore", invalid="ignore"):
        dep = (one - rho_s) / max_sel_a  # per row; inf only where nothing is selected
        deposit = a * dep[post]
    s_new = np.where(sel, np.minimum(one, s_new + deposit), s_new)
    l_new = rho_l * l + (one - rho_l) * s_new
    layer.short_trail = np.where(live, s_new, s).astype(F32)
    layer.long_trail = np.where(live, l_new, l).astype(F32)

    # 6. Optional consolidation decay.
    if rho_c != one:
        layer.consolidation = np.where(live, rho_c * c, c).astype(F32)

    # 7. Cascade consolidation (DESIGN §8): only with consolidation_mode="cascade".
    if cfg.get("consolidation_mode", "none") == "cascade":
        cascade(layer, live)

    update_budget(layer, loss)
    layer.error_trace = np.where(
        involved, rho_h * layer.error_trace + (one - rho_h) * np.abs(e), layer.error_trace
    ).astype(F32)
    layer.activity_trace = (rho_h * layer.activity_trace + (one - rho_h) * np.abs(x)).astype(F32)
    layer.steps += 1
    every = int(cfg["auto_consolidate_every"])
    if every > 0 and layer.steps % every == 0:
        auto_consolidate(layer)


def cascade_columns(cfg: Any) -> tuple[str, ...]:
    """Names of the cascade's level columns a config allocates (none unless the mode is on)."""
    if cfg.get("consolidation_mode", "none") != "cascade":
        return ()
    return tuple(f"cascade_{k + 1}" for k in range(int(cfg["cascade_levels"])))


def cascade_rates(cfg: Any) -> list:
    """α_k = 1 / τ_k with τ_k = cascade_tau · cascade_ratio^(k−1), multiplied out in float64
    one level at a time, then rounded once to float32 (as the engine does)."""
    tau, ratio = float(cfg["cascade_tau"]), float(cfg["cascade_ratio"])
    rates = []
    for _ in range(int(cfg["cascade_levels"])):
        rates.append(F32(1.0 / tau))
        tau *= ratio
    return rates


def cascade(layer: Any, live: np.ndarray) -> None:
    """Cascade consolidation of every synapse of the involved rows, after the trails:

    * ``v_1 ← v_1 + α_1 (l − v_1)``: the first level follows the synapse's long trail (its use);
    * ``v_k ← v_k + α_k (v_{k−1} − v_k)``: each deeper level follows the one above it,
      geometrically slower, so only sustained use reaches the deepest level;
    * ``c ← c_max · v_K / (v_K + θ)``: graded consolidation from the deepest level, below
      ``cascade_max < 1`` (never frozen), falling again as the levels drain when use stops;
    * ``w* ← w* + α_a (w − w*)``, ``a = cascade_anchor_level``: the anchor is the weight
      seen through that level's timescale (the pull then resists changes faster than ``τ_a``
      on long-used synapses, while sustained change passes).
    """
    cfg = layer._cfg
    drive = layer.long_trail
    rates = cascade_rates(cfg)
    for name, rate in zip(cascade_columns(cfg), rates):
        v = getattr(layer, name)
        setattr(layer, name, np.where(live, v + rate * (drive - v), v).astype(F32))
        drive = getattr(layer, name)
    c_max, half = F32(cfg["cascade_max"]), F32(cfg["cascade_half"])
    c = c_max * drive / (drive + half)
    layer.consolidation = np.where(live, c, layer.consolidation).astype(F32)
    rate_a = rates[int(cfg.get("cascade_anchor_level", 1)) - 1]
    anchor = layer.anchor + rate_a * (layer.weight - layer.anchor)
    layer.anchor = np.where(live, anchor, layer.anchor).astype(F32)


def quotas(layer: Any, n_cand: np.ndarray, involved: np.ndarray) -> np.ndarray:
    """Row quotas k_j (§3 step 3): ⌈f · candidates⌉, at least one; while expanding (§3.1)
    scaled by max(1, h_j / mean h over involved rows)."""
    f = layer.budget
    mean_h = 0.0
    if layer.expanding:
        h_inv = layer.error_trace[involved]
        if h_inv.size:
            mean_h = seq_sum64(h_inv) / h_inv.size
    quota = np.zeros(layer.n_out, dtype=np.int64)
    for j in np.flatnonzero(involved & (n_cand > 0)):
        c = int(n_cand[j])
        if layer.expanding and mean_h > 0.0:
            # Extra budget goes to rows whose recent error is above the layer's average.
            # ... and no row gets less than its plain quota.
            k = math.ceil((f * c) * max(1.0, float(layer.error_trace[j]) / mean_h))
            quota[j] = min(max(k, 1), c)
        else:
            quota[j] = min(math.ceil(f * c), c)
    return quota


def update_budget(layer: Any, loss: float) -> None:
    """§3.1: shrink f while the loss improves on its running average, grow it and expand
    (next step) while the loss worsens."""
    cfg = layer._cfg
    if not layer.has_loss_avg:
        layer.loss_avg = loss
        layer.has_loss_avg = True
        layer.expanding = False
    elif loss < layer.loss_avg:
        layer.budget = max(float(cfg["budget_min"]), float(cfg["shrink"]) * layer.budget)
        layer.expanding = False
    elif loss > layer.loss_avg:
        layer.budget = min(float(cfg["budget_max"]), float(cfg["grow"]) * layer.budget)
        layer.expanding = True  # takes effect on the next step
    else:
        layer.expanding = False
    # rule-notes put the average update after all three cases, the first step included.
    layer.loss_avg = 0.9 * layer.loss_avg + 0.1 * loss


def consolidate(layer: Any, strength: float = 1.0) -> None:
    """§3.2 at a task boundary: c ← min(1, c + strength · l / mean(l over l > 0)); a synapse
    whose consolidation grew is re-anchored at its current weight."""
    l = layer.long_trail
    positive = l[l > 0]
    if positive.size == 0:
        return  # mean(l over l > 0) is undefined: nothing has a trail to consolidate
    # The mean is a float64 reduction, but the per-synapse arithmetic is float32 like the
    # rest of the synapse state.
    mean_l = F32(seq_sum64(positive) / positive.size)
    c_old = layer.consolidation
    c_new = np.minimum(F32(1), c_old + F32(strength) * l / mean_l)
    grew = c_new > c_old
    layer.anchor = np.where(grew, layer.weight, layer.anchor).astype(F32)
    layer.consolidation = np.where(grew, c_new, c_old).astype(F32)


def auto_consolidate(layer: Any) -> None:
    """§3.2 without task boundaries: synapses whose long trail exceeds ``auto_threshold``
    gain ``auto_increment`` of consolidation; the anchor becomes the consolidation-weighted
    mean of the old anchor and the current weight."""
    theta = F32(layer._cfg["auto_threshold"])
    inc = F32(layer._cfg["auto_increment"])
    c_old = layer.consolidation
    c_new = np.where(layer.long_trail > theta, np.minimum(F32(1), c_old + inc), c_old)
    grew = c_new > c_old
    with np.errstate(divide="ignore", invalid="ignore"):
        blended = (c_old * layer.anchor + (c_new - c_old) * layer.weight) / c_new
    layer.anchor = np.where(grew, blended, layer.anchor).astype(F32)
    layer.consolidation = np.where(grew, c_new, c_old).astype(F32)


__all__ = [
    "auto_consolidate",
    "cascade",
    "cascade_columns",
    "cascade_rates",
    "consolidate",
    "quotas",
    "step",
    "update_budget",
]
