"""Hand-computed checks of the NumPy reference rule (no engine involved).

The reference is what the engine is tested against, so it is checked here on cases small
enough to work out on paper: one step's Δw, selection and ties, the budget controller, the
expansion quota, trails, consolidation and masks.
"""

import importlib.util
import math
import pathlib
import sys

import numpy as np
import pytest

# Loaded by path: lpn/__init__ imports the compiled extension, and these tests must run
# without one.
_PATH = pathlib.Path(__file__).resolve().parents[1] / "python" / "lpn" / "reference.py"
_spec = importlib.util.spec_from_file_location("lpn_reference_under_test", _PATH)
ref = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = ref
_spec.loader.exec_module(ref)

ReferenceNetwork = ref.ReferenceNetwork
F32 = np.float32


def dense_layer(n_in, n_out, weight=None, **extra):
    """A fully connected layer dict (every output reads every input)."""
    post, pre = np.divmod(np.arange(n_in * n_out), n_in)
    d = {"n_in": n_in, "n_out": n_out, "pre": pre, "post": post, "activation": "linear"}
    if weight is not None:
        d["weight"] = np.asarray(weight, dtype=F32).ravel()
    else:
        d["weight"] = np.zeros(n_in * n_out, dtype=F32)
    d.update(extra)
    return d


def one_layer(n_in, n_out, config=None, **extra):
    return ReferenceNetwork.from_state([dense_layer(n_in, n_out, **extra)], config or {})


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=1e-6, atol=1e-9)


# ---- one full step by hand ---------------------------------------------------------------------


def test_single_step_by_hand():
    net = one_layer(3, 1, {"budget": 1.0}, weight=[0.1, -0.2, 0.3], bias=[0.05])
    x = np.array([1.0, 2.0, -1.0])
    loss = net.learn(x, [1.0])

    z = 0.05 + 0.1 - 0.4 - 0.3
    e = 1.0 - z  # linear output, φ' = 1
    close(loss, e * e)
    nx2 = 1 + 4 + 1
    g = 1 / 2  # κs = 1, κl = 0, no trail yet
    layer = net.layers[0]
    close(layer.weight, np.array([0.1, -0.2, 0.3]) + 0.5 * g * e * x / (1e-6 + nx2))
    close(layer.bias, [0.05 + 0.5 * e / (1 + nx2)])

    a = np.abs(e * x)
    s = 0.1 * a / a.max()
    close(layer.short_trail, s)
    close(layer.long_trail, 0.005 * s)
    close(layer.error_trace, [0.1 * e])
    close(layer.activity_trace, 0.1 * np.abs(x))
    assert layer.steps == 1
    assert layer.touched == 3
    close(net.predict(x), [layer.bias[0] + layer.weight @ x])


def test_state_dtypes_are_float32():
    net = one_layer(3, 2, weight=np.full(6, 0.1))
    net.learn(np.ones(3), np.zeros(2))
    syn = net.layers[0].synapses()
    assert syn["pre"].dtype == np.int64 and syn["post"].dtype == np.int64
    for name in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
        assert syn[name].dtype == np.float32, name
    st = net.layers[0].state()
    for name in ("bias", "error_trace", "activity_trace"):
        assert st[name].dtype == np.float32, name
    assert net.predict(np.ones(3)).dtype == np.float32


def test_activation_derivatives_enter_the_error():
    x = np.array([0.5, -1.0])
    w = [0.4, 0.3]
    def sig(z):
        return 1 / (1 + np.exp(-z))

    for act, phi, dphi in [
        ("tanh", np.tanh, lambda z: 1 - np.tanh(z) ** 2),
        ("sigmoid", sig, lambda z: sig(z) * (1 - sig(z))),
        ("relu", lambda z: max(z, 0.0), lambda z: float(z > 0)),
    ]:
        net = one_layer(2, 1, {"budget": 1.0}, weight=w, activation=act, use_bias=False)
        z = 0.4 * 0.5 - 0.3
        net.learn(x, [0.7])
        e = (0.7 - phi(z)) * dphi(z)
        close(net.layers[0].weight, np.array(w) + 0.25 * e * x / (1e-6 + 1.25))
        assert net.layers[0].bias[0] == 0  # use_bias=False keeps b at 0


# ---- selection -------------------------------------------------------------------------------


def changed(before, after):
    return np.flatnonzero(before != after).tolist()


def test_ties_go_to_the_lower_input_index():
    net = one_layer(4, 1, {"budget": 0.5})
    net.learn(np.ones(4), [1.0])  # equal co-activity everywhere, k = ceil(0.5 * 4) = 2
    assert changed(np.zeros(4), net.layers[0].weight) == [0, 1]

    net = one_layer(4, 1, {"budget": 0.25})
    net.learn([1.0, 3.0, 2.0, 3.0], [1.0])  # inputs 1 and 3 tie at the top, k = 1
    assert changed(np.zeros(4), net.layers[0].weight) == [1]


def test_quota_is_ceil_of_budget_times_candidates():
    net = one_layer(5, 1, {"budget": 0.3})
    net.learn([1.0, 5.0, 4.0, 3.0, 2.0], [1.0])  # ceil(0.3 * 5) = 2
    assert changed(np.zeros(5), net.layers[0].weight) == [1, 2]


def test_trail_raises_priority():
    # Same co-activity on inputs 1 and 3; the short trail on 3 gives it the larger g.
    st = np.array([0.0, 0.0, 0.0, 0.5], dtype=F32)
    net = one_layer(4, 1, {"budget": 0.25}, short_trail=st)
    net.learn([1.0, 3.0, 2.0, 3.0], [1.0])
    assert changed(np.zeros(4), net.layers[0].weight) == [3]
    g3 = (1 + 0.5) / 2
    close(net.layers[0].weight[3], 0.5 * g3 * 1.0 * 3.0 / (1e-6 + 1 + 9 + 4 + 9))


def test_zero_coactivity_is_no_candidate_but_evaporates():
    st = np.array([0.4, 0.0, 0.4, 0.0], dtype=F32)
    lt = np.array([0.2, 0.0, 0.2, 0.0], dtype=F32)
    net = one_layer(4, 1, {"budget": 1.0}, short_trail=st, long_trail=lt)
    net.learn([0.0, 1.0, 0.0, 2.0], [1.0])
    layer = net.layers[0]
    assert changed(np.zeros(4), layer.weight) == [1, 3]
    close(layer.short_trail, [0.36, 0.05, 0.36, 0.1])
    kept = 0.995 * 0.2 + 0.005 * 0.36
    close(layer.long_trail, [kept, 0.005 * 0.05, kept, 0.005 * 0.1])


def test_zero_error_row_only_evaporates():
    st = np.full(2, 0.5, dtype=F32)
    net = one_layer(2, 1, short_trail=st, weight=[0.25, 0.25])
    net.learn([1.0, 1.0], [0.5])  # y = 0.5 = t, so e = 0
    layer = net.layers[0]
    assert layer.touched == 0
    close(layer.weight, [0.25, 0.25])
    close(layer.short_trail, [0.45, 0.45])


# ---- update details ----------------------------------------------------------------------------


def test_consolidation_scales_step_and_pulls_to_anchor():
    c = np.array([0.5, 0.0], dtype=F32)
    anchor = np.array([-0.4, 0.0], dtype=F32)
    net = one_layer(2, 1, {"budget": 1.0}, weight=[0.2, 0.0], consolidation=c, anchor=anchor,
                    use_bias=False)
    x = np.array([1.0, 1.0])
    net.learn(x, [1.0])
    e = 1.0 - 0.2
    step = 0.5 * 0.5 * e / (1e-6 + 2)
    w0 = 0.2 + step * (1 - 0.5)
    w0 = w0 - 0.5 * 0.1 * 0.5 * (w0 - (-0.4))
    close(net.layers[0].weight, [w0, step])
    close(net.layers[0].consolidation, [0.5, 0.0])  # rho_consolidation = 1: no decay


def test_consolidation_decay_on_involved_rows():
    c = np.full(2, 0.5, dtype=F32)
    net = one_layer(1, 2, {"rho_consolidation": 0.8}, consolidation=c)
    net.learn([1.0], [1.0, 1.0], mask=[True, False])
    close(net.layers[0].consolidation, [0.4, 0.5])


def test_weights_are_clipped():
    net = one_layer(1, 1, {"budget": 1.0, "w_max": 0.3, "lr": 1.0}, weight=[0.25])
    net.learn([1.0], [10.0])
    close(net.layers[0].weight, [0.3])
    net = one_layer(1, 1, {"budget": 1.0, "w_max": 0.3, "lr": 1.0}, weight=[-0.25])
    net.learn([1.0], [-10.0])
    close(net.layers[0].weight, [-0.3])


def test_bias_lr_is_separate():
    net = one_layer(1, 1, {"lr": 0.5, "bias_lr": 0.1}, use_bias=True)
    net.learn([1.0], [1.0])
    close(net.layers[0].bias, [0.1 * 1.0 / 2])


# ---- budget --------------------------------------------------------------------------------------


def budget_net(**state):
    # w = 0 and t = 0.5 give y = 0 and L = 0.25 exactly.
    return one_layer(2, 1, {"budget": 0.5}, **state)


def test_first_step_sets_the_average_without_moving_the_budget():
    net = budget_net(expanding=True)
    net.learn([1.0, 1.0], [0.5])
    st = net.layers[0].state()
    assert st["budget"] == 0.5 and st["has_loss_avg"] and not st["expanding"]
    assert st["loss_avg"] == 0.9 * 0.25 + 0.1 * 0.25


def test_budget_shrinks_when_loss_improves():
    net = budget_net(has_loss_avg=True, loss_avg=1.0, expanding=True)
    net.learn([1.0, 1.0], [0.5])
    st = net.layers[0].state()
    assert st["budget"] == 0.98 * 0.5 and not st["expanding"]
    assert st["loss_avg"] == 0.9 * 1.0 + 0.1 * 0.25


def test_budget_grows_and_expands_when_loss_worsens():
    net = budget_net(has_loss_avg=True, loss_avg=0.1)
    net.learn([1.0, 1.0], [0.5])
    st = net.layers[0].state()
    assert st["budget"] == 1.05 * 0.5 and st["expanding"]


def test_budget_holds_on_equal_loss():
    net = budget_net(has_loss_avg=True, loss_avg=0.25, expanding=True)
    net.learn([1.0, 1.0], [0.5])
    st = net.layers[0].state()
    assert st["budget"] == 0.5 and not st["expanding"] and st["loss_avg"] == 0.25


def test_budget_is_clamped():
    net = one_layer(1, 1, {"budget": 0.02}, has_loss_avg=True, loss_avg=1.0)
    net.learn([1.0], [0.5])
    assert net.layers[0].budget == 0.02
    net = one_layer(1, 1, {"budget": 1.0}, has_loss_avg=True, loss_avg=0.0)
    net.learn([1.0], [0.5])
    assert net.layers[0].budget == 1.0


def test_masked_loss_averages_over_active_outputs():
    net = one_layer(1, 3)
    loss = net.learn([1.0], [1.0, 2.0, 3.0], mask=[True, False, True])
    assert loss == (1.0 + 9.0) / 2
    net = one_layer(1, 2)
    assert net.learn([1.0], [1.0, 2.0], mask=[False, False]) == 0.0


# ---- expansion -----------------------------------------------------------------------------------


def test_expansion_quota_follows_the_error_trace():
    # Three rows with four candidates each; f = 0.5 gives a plain quota of 2 per row.
    # Dyadic traces keep f·|C|·h/mean exact. With h = (0.35, 0.05, 0.2) instead, the float64
    # mean of the float32 values falls just below float32(0.2) and the third row gets 3, not 2.
    h = np.array([0.75, 0.125, 0.625], dtype=F32)  # mean 0.5
    net = one_layer(4, 3, {"budget": 0.5}, error_trace=h, expanding=True)
    net.learn([4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    w = net.layers[0].weight.reshape(3, 4)
    # ceil(2 · 0.75 / 0.5) = 3, ceil(2 · max(1, 0.125 / 0.5)) = 2 (never below the plain
    # quota, DESIGN §3.1), ceil(2 · 0.625 / 0.5) = 3.
    assert [int(np.count_nonzero(r)) for r in w] == [3, 2, 3]


def test_expansion_quota_is_floored_at_plain_quota_and_clamped_to_candidates():
    h = np.array([0.9, 0.0, 0.0], dtype=F32)  # mean 0.3: ceil(6) → 4; h = 0 keeps the plain 2
    net = one_layer(4, 3, {"budget": 0.5}, error_trace=h, expanding=True)
    net.learn([4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0])
    w = net.layers[0].weight.reshape(3, 4)
    assert [int(np.count_nonzero(r)) for r in w] == [4, 2, 2]


def test_expansion_with_zero_trace_uses_plain_quota():
    net = one_layer(4, 2, {"budget": 0.5}, expanding=True)
    net.learn([4.0, 3.0, 2.0, 1.0], [1.0, 1.0])
    w = net.layers[0].weight.reshape(2, 4)
    assert [int(np.count_nonzero(r)) for r in w] == [2, 2]


def test_expansion_mean_is_over_involved_rows_only():
    # Row 1 is masked out, so mean_h is row 0's own trace and row 0 keeps its plain quota.
    h = np.array([0.1, 5.0], dtype=F32)
    net = one_layer(4, 2, {"budget": 0.5}, error_trace=h, expanding=True)
    net.learn([4.0, 3.0, 2.0, 1.0], [1.0, 1.0], mask=[True, False])
    assert int(np.count_nonzero(net.layers[0].weight[:4])) == 2


def test_expanding_adds_trail_bonus_to_priority():
    st = np.array([0.5, 0.0], dtype=F32)
    cfg = {"budget": 0.5, "kappa_short": 0.0}  # g = 1, so only the β·s bonus differs
    x, t = [1.0, 1.2], [1.0]
    plain = one_layer(2, 1, cfg, short_trail=st)
    plain.learn(x, t)
    assert changed(np.zeros(2), plain.layers[0].weight) == [1]
    bonus = one_layer(2, 1, cfg, short_trail=st, expanding=True, error_trace=[0.3])
    bonus.learn(x, t)  # priorities 1 + 0.5·0.5 = 1.25 against 1.2
    assert changed(np.zeros(2), bonus.layers[0].weight) == [0]


# ---- masks ---------------------------------------------------------------------------------------


def test_masked_rows_are_frozen_bit_for_bit():
    rng = np.random.default_rng(0)
    n = 3 * 4
    state = {
        "weight": rng.normal(0, 0.3, n).astype(F32),
        "short_trail": rng.uniform(0, 1, n).astype(F32),
        "long_trail": rng.uniform(0, 1, n).astype(F32),
        "consolidation": rng.uniform(0, 1, n).astype(F32),
        "anchor": rng.normal(0, 0.3, n).astype(F32),
        "bias": rng.normal(0, 0.3, 3).astype(F32),
        "error_trace": rng.uniform(0, 1, 3).astype(F32),
    }
    net = one_layer(4, 3, {"rho_consolidation": 0.9, "budget": 1.0}, **state)
    before = net.layers[0].synapses()
    bias_before = net.layers[0].bias.copy()
    h_before = net.layers[0].error_trace.copy()
    mask = np.array([True, False, True])
    net.learn(rng.normal(size=4), rng.normal(size=3), mask=mask)
    after = net.layers[0].synapses()
    frozen = after["post"] == 1
    for name in ("weight", "short_trail", "long_trail", "consolidation", "anchor"):
        assert np.array_equal(before[name][frozen], after[name][frozen]), name
        assert not np.array_equal(before[name][~frozen], after[name][~frozen]) or name == "anchor"
    assert net.layers[0].bias[1] == bias_before[1] and net.layers[0].error_trace[1] == h_before[1]
    assert net.layers[0].bias[0] != bias_before[0]

    y = net.predict(np.ones(4), mask=mask)
    assert y[1] == 0 and y.dtype == np.float32
    close(y[[0, 2]], net.predict(np.ones(4))[[0, 2]])


# ---- consolidation -------------------------------------------------------------------------------


def test_consolidate_by_hand():
    lt = np.array([0.2, 0.0, 0.6], dtype=F32)
    c = np.array([0.0, 0.3, 0.2], dtype=F32)
    w = np.array([0.7, -0.1, 0.4], dtype=F32)
    anchor = np.array([9.0, 9.0, 9.0], dtype=F32)
    net = one_layer(3, 1, long_trail=lt, consolidation=c, weight=w, anchor=anchor)
    net.consolidate()  # mean_l over l > 0 is 0.4
    close(net.layers[0].consolidation, [0.5, 0.3, 1.0])
    close(net.layers[0].anchor, [0.7, 9.0, 0.4])

    net = one_layer(3, 1, long_trail=lt, consolidation=c, weight=w, anchor=anchor)
    net.consolidate(strength=0.5)
    close(net.layers[0].consolidation, [0.25, 0.3, 0.95])


def test_consolidate_without_trails_does_nothing():
    net = one_layer(2, 1, weight=[0.3, 0.4])
    net.consolidate()
    close(net.layers[0].consolidation, [0.0, 0.0])
    close(net.layers[0].anchor, [0.0, 0.0])


def test_auto_consolidation_every_k_steps():
    lt = np.array([0.9, 0.1], dtype=F32)
    c = np.array([0.2, 0.0], dtype=F32)
    anchor = np.array([1.0, 0.0], dtype=F32)
    w = np.array([0.5, 0.5], dtype=F32)
    cfg = {"auto_consolidate_every": 2}
    # Masked-out row: weights and trails hold still, only the periodic consolidation acts.
    net = one_layer(2, 1, cfg, long_trail=lt, consolidation=c, anchor=anchor, weight=w)
    net.learn([1.0, 1.0], [0.0], mask=[False])
    close(net.layers[0].consolidation, [0.2, 0.0])
    net.learn([1.0, 1.0], [0.0], mask=[False])
    assert net.layers[0].steps == 2
    close(net.layers[0].consolidation, [0.3, 0.0])
    close(net.layers[0].anchor, [(0.2 * 1.0 + 0.1 * 0.5) / 0.3, 0.0])


# ---- networks ------------------------------------------------------------------------------------


def two_layer(signal="feedback", mask_feedback=False):
    fb = np.array([[0.5], [0.0]] if mask_feedback else [[0.5], [-0.25]], dtype=F32)
    hidden = dense_layer(2, 2, weight=[0.2, 0.1, -0.3, 0.4], feedback=fb, signal=signal)
    out = dense_layer(2, 1, weight=[0.6, -0.5])
    return ReferenceNetwork.from_state([hidden, out], {"budget": 1.0})


def test_hidden_layer_learns_from_feedback():
    net = two_layer()
    x = np.array([1.0, 2.0])
    h = np.array([0.2 + 0.2, -0.3 + 0.8])
    y = 0.6 * h[0] - 0.5 * h[1]
    loss = net.learn(x, [1.0])
    e = 1.0 - y
    close(loss, e * e)
    e_h = np.array([0.5, -0.25]) * e
    hid = net.layers[0]
    dw = 0.25 * np.repeat(e_h, 2) * np.tile(x, 2) / (1e-6 + 5)
    expected = np.array([0.2, 0.1, -0.3, 0.4]) + dw
    close(hid.weight, expected)
    close(hid.state()["loss_avg"], np.mean(e_h**2))
    close(hid.activity_trace, 0.1 * x)
    # The output layer learns from the hidden activations of the same forward pass.
    close(net.layers[1].weight, np.array([0.6, -0.5]) + 0.25 * e * h / (1e-6 + h @ h))


def test_hidden_row_without_feedback_is_not_involved():
    net = two_layer(mask_feedback=True)
    before = net.layers[0].synapses()
    net.learn([1.0, 2.0], [1.0])
    after = net.layers[0].synapses()
    row1 = after["post"] == 1
    for name in ("weight", "short_trail", "long_trail"):
        assert np.array_equal(before[name][row1], after[name][row1])
    assert not np.array_equal(before["weight"][~row1], after["weight"][~row1])


@pytest.mark.parametrize("signal", ["frozen", "contrastive"])
def test_frozen_and_contrastive_hidden_layers_do_not_learn(signal):
    net = two_layer(signal)
    before = net.layers[0].synapses()
    net.learn([1.0, 2.0], [1.0])
    after = net.layers[0].synapses()
    for name in before:
        assert np.array_equal(before[name], after[name])
    assert net.layers[0].steps == 0 and net.layers[1].steps == 1


def test_contrastive_step_by_hand():
    net = one_layer(2, 1, {"budget": 1.0}, weight=[0.5, 1.0], use_bias=False)
    x_pos, x_neg = np.array([1.0, 1.0]), np.array([1.0, -0.5])
    y_pos, y_neg = 1.5, 0.0
    g_pos, g_neg = net.contrastive_step(x_pos, x_neg)
    close([g_pos, g_neg], [y_pos**2, y_neg**2])
    p_pos = 1 / (1 + math.exp(-(1.0 - y_pos**2)))
    e_pos = p_pos * y_pos
    w = np.array([0.5, 1.0]) + 0.25 * e_pos * x_pos / (1e-6 + 2)
    # y⁻ was 0 with the old weights, so e⁻ = 0 and the second step only evaporates.
    close(net.layers[0].weight, w)
    close(net.layers[0].short_trail, 0.9 * 0.1 * np.ones(2))
    assert net.layers[0].steps == 2
    close(net.layers[0].activity_trace, 0.9 * 0.1 * np.abs(x_pos) + 0.1 * np.abs(x_neg))


def test_contrastive_negative_pushes_goodness_down():
    net = one_layer(2, 1, {"budget": 1.0}, weight=[0.5, 1.0], use_bias=False)
    x = np.array([1.0, 1.0])
    g0 = float(net.predict(x)[0] ** 2)
    net.contrastive_step(np.zeros(2), x)
    assert float(net.predict(x)[0] ** 2) < g0


def test_contrastive_step_on_upper_layer_reads_lower_layer_output():
    net = two_layer("contrastive")
    before = net.layers[0].synapses()
    x = np.array([1.0, 2.0])
    g_pos, _ = net.contrastive_step(x, np.zeros(2), layer=1)
    h = np.array([0.4, 0.5])
    close(g_pos, (0.6 * 0.4 - 0.5 * 0.5) ** 2)
    assert np.array_equal(before["weight"], net.layers[0].synapses()["weight"])
    close(net.layers[1].activity_trace, 0.9 * 0.1 * h)


# ---- construction --------------------------------------------------------------------------


def test_from_state_puts_synapses_in_storage_order():
    d = {"n_in": 3, "n_out": 2, "pre": [2, 0, 1, 0], "post": [1, 1, 0, 0],
         "weight": [0.3, 0.1, 0.2, 0.4]}
    net = ReferenceNetwork.from_state([d], {})
    syn = net.layers[0].synapses()
    assert syn["post"].tolist() == [0, 0, 1, 1] and syn["pre"].tolist() == [0, 1, 0, 2]
    close(syn["weight"], [0.4, 0.2, 0.1, 0.3])


def test_from_state_rejects_bad_input():
    with pytest.raises(ValueError):
        ReferenceNetwork.from_state([dense_layer(2, 1)], {"no_such_option": 1})
    with pytest.raises(ValueError):
        ReferenceNetwork.from_state([dict(dense_layer(2, 1), pre=[0, 0])], {})
    with pytest.raises(ValueError):  # hidden feedback layer without its matrix
        ReferenceNetwork.from_state([dense_layer(2, 2), dense_layer(2, 1)], {})
    net = one_layer(2, 1)
    with pytest.raises(ValueError):
        net.learn([1.0], [1.0])
    with pytest.raises(ValueError):
        net.learn([1.0, 2.0], [1.0], mask=[True, False])


def test_from_network_reads_the_public_api():
    import dataclasses

    @dataclasses.dataclass
    class Spec:
        n_in: int
        n_out: int
        activation: str = "tanh"
        bias: bool = False

    @dataclasses.dataclass
    class Config:
        lr: float = 0.25
        budget: float = 1.0

    src = one_layer(3, 2, {"lr": 0.25, "budget": 1.0}, weight=np.linspace(-0.3, 0.3, 6),
                    activation="tanh", use_bias=False)
    src.learn([1.0, -1.0, 0.5], [0.2, -0.2])

    class FakeLayer:
        spec = Spec(3, 2)
        signal = "output"

        def synapses(self):
            return src.layers[0].synapses()

        def state(self):
            return src.layers[0].state()

        def feedback(self):
            return None

    class FakeNet:
        def __init__(self):
            self.config = Config()
            self.layers = [FakeLayer()]

    copy = ReferenceNetwork.from_network(FakeNet())
    assert copy.config["lr"] == 0.25 and copy.layers[0].activation == "tanh"
    assert not copy.layers[0].use_bias
    for name, value in src.layers[0].synapses().items():
        assert np.array_equal(copy.layers[0].synapses()[name], value)
    x, t = [0.3, 0.2, -0.1], [0.1, 0.4]
    assert src.learn(x, t) == copy.learn(x, t)
    assert np.array_equal(src.layers[0].weight, copy.layers[0].weight)
    assert src.layers[0].state()["budget"] == copy.layers[0].state()["budget"]


def test_predict_batch_matches_single_rows():
    net = one_layer(3, 2, weight=np.linspace(-1, 1, 6), bias=[0.1, -0.1])
    xs = np.arange(6, dtype=np.float64).reshape(2, 3)
    ys = net.predict(xs)
    assert ys.shape == (2, 2) and ys.dtype == np.float32
    for x, y in zip(xs, ys):
        assert np.array_equal(net.predict(x), y)


def test_sums_are_sequential_float32_in_row_order():
    # 1e8 + 1 − 1e8 is 0 in float32 when added left to right (1 is lost), 1 when pairwise-exact.
    net = one_layer(3, 1, weight=[1e8, 1.0, -1e8], use_bias=False)
    assert net.predict([1.0, 1.0, 1.0])[0] == 0.0
