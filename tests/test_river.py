"""river estimators: river's own estimator checks and a progressive validation on a bundled
stream next to river's linear model."""

import numpy as np
import pytest

river = pytest.importorskip("river")

from river import checks, datasets, evaluate, linear_model, metrics, optim, preprocessing  # noqa: E402

from lpn.river import LPNClassifier, LPNRegressor  # noqa: E402


def _river_checks():
    for est in (LPNRegressor(seed=0), LPNClassifier(seed=0),
                LPNClassifier(hidden_layer_sizes=(8,), seed=1)):
        for check in checks.yield_checks(est):
            if check.__name__ not in est._unit_test_skips():
                yield pytest.param(est, check, id=f"{type(est).__name__}-{check.__name__}")


@pytest.mark.parametrize("estimator, check", list(_river_checks()))
def test_river_estimator_checks(estimator, check):
    # check_no_state_aliasing_with_input compares pickle bytes of one unchanged model: it runs
    # strictly, since checkpoint bytes are deterministic (issue 9).
    check(estimator.clone())


def _mae(model):
    return evaluate.progressive_val_score(datasets.TrumpApproval(), model, metrics.MAE()).get()


def test_trump_approval_progressive_mae_next_to_river_linear_regression():
    # Bundled with river (no download). Both sides at their defaults, and both with the best
    # setting of a stated grid (docs/estimators.md): river LinearRegression SGD lr
    # {0.003, 0.01, 0.03, 0.1, 0.3} x intercept_lr {0.01, 0.1, 0.3, 1}; lpn lr
    # {0.05, 0.1, 0.3, 0.5, 1} x bias_lr {lr, 0.5, 1, 2, 5} x budget {0.3, 1}.
    lpn_default = _mae(preprocessing.StandardScaler() | LPNRegressor(seed=0))
    river_default = _mae(preprocessing.StandardScaler() | linear_model.LinearRegression())
    lpn_tuned = _mae(preprocessing.StandardScaler()
                     | LPNRegressor(lr=0.5, budget=1.0, config={"bias_lr": 1.0}, seed=0))
    river_tuned = _mae(preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(0.003), intercept_lr=0.3))
    print(f"TrumpApproval progressive MAE: lpn {lpn_default:.3f} (defaults), "
          f"{lpn_tuned:.3f} (tuned); river LinearRegression {river_default:.3f} (defaults), "
          f"{river_tuned:.3f} (tuned)")
    # Measured: lpn 0.948 / 0.319, river 1.315 / 0.237: lpn beats river's default, loses
    # to river's tuned linear model. Pinned loosely so a regression in either shows.
    assert lpn_default < river_default
    assert lpn_tuned < 0.4
    assert river_tuned < lpn_tuned


def test_classifier_learns_phishing_and_handles_late_classes():
    model = preprocessing.StandardScaler() | LPNClassifier(seed=0)
    acc = evaluate.progressive_val_score(datasets.Phishing(), model, metrics.Accuracy()).get()
    assert acc > 0.85  # measured 0.894; river's LogisticRegression 0.893
    clf = LPNClassifier(seed=0, max_classes=3)
    assert clf.predict_one({"a": 1.0}) is None and clf.predict_proba_one({"a": 1.0}) == {}
    for _ in range(20):
        clf.learn_one({"a": 1.0, "b": 0.0}, "x")
        clf.learn_one({"a": 0.0, "b": 1.0}, "y")
    assert clf.predict_one({"a": 1.0, "b": 0.0}) == "x"
    clf.learn_one({"a": 1.0, "b": 1.0}, "z")
    proba = clf.predict_proba_one({"a": 0.0, "b": 1.0})
    assert set(proba) == {"x", "y", "z"} and abs(sum(proba.values()) - 1) < 1e-9
    before = clf._net.to_bytes()
    with pytest.raises(ValueError, match="max_classes"):
        clf.learn_one({"a": 1.0}, "w")
    with pytest.raises(TypeError, match="encode"):
        clf.learn_one({"a": "red"}, "x")
    assert clf._net.to_bytes() == before
    assert clf._net.stats()["samples"] == 41  # the refused samples were not learned


def test_regressor_feature_slots_ignore_key_order():
    a, b = LPNRegressor(seed=3), LPNRegressor(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(30):
        v = rng.normal(size=3)
        a.learn_one({"x": v[0], "y": v[1], "z": v[2]}, float(v.sum()))
        b.learn_one({"z": v[2], "x": v[0], "y": v[1]}, float(v.sum()))
    assert a._net.same_state(b._net)
    assert a.predict_one({"x": 1.0}) == b.predict_one({"x": 1.0})
