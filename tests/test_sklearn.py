"""scikit-learn estimators: the full estimator checks, pipelines, grid search, digits."""

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import lpn
from lpn.sklearn import LPNClassifier, LPNRegressor


@parametrize_with_checks([LPNRegressor(random_state=0), LPNClassifier(random_state=0),
                          LPNClassifier(hidden_layer_sizes=(8,), random_state=0)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_digits_defaults_in_a_pipeline(digits):
    # sklearn's SGDClassifier (5 passes, same split and scaler) scores 0.944 here.
    Xtr, Xte, ytr, yte = digits
    model = make_pipeline(StandardScaler(), LPNClassifier(random_state=0)).fit(Xtr, ytr)
    acc = model.score(Xte, yte)
    sgd = make_pipeline(StandardScaler(), SGDClassifier(max_iter=5, tol=None, random_state=0))
    sgd_acc = sgd.fit(Xtr, ytr).score(Xte, yte)
    print(f"digits test accuracy: LPNClassifier() {acc:.4f}, SGDClassifier 5 passes "
          f"{sgd_acc:.4f}")
    assert acc >= 0.93, acc
    proba = model.predict_proba(Xte)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)], model.predict(Xte))
    assert isinstance(model[-1].net_, lpn.Network)
    assert model[-1].net_.n_in == 64 and model[-1].net_.n_out == 10
    # the model survives pickling with identical predictions
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.decision_function(Xte), model.decision_function(Xte))


def test_grid_search_on_digits(digits):
    Xtr, Xte, ytr, yte = digits
    pipe = make_pipeline(StandardScaler(), LPNClassifier(max_iter=3, random_state=0))
    grid = GridSearchCV(pipe, {"lpnclassifier__lr": [0.002, 0.02],
                               "lpnclassifier__config": [None, {"kappa_short": 0.0}]}, cv=2)
    grid.fit(Xtr, ytr)
    assert grid.best_params_["lpnclassifier__lr"] == 0.02  # 0.002 is far too slow in 3 passes
    assert grid.score(Xte, yte) >= 0.9
    # the config dict reached the network
    best = grid.best_estimator_[-1]
    kappa = grid.best_params_["lpnclassifier__config"]
    assert best.net_.config.kappa_short == (1.0 if kappa is None else 0.0)
    assert best.net_.config.lr == 0.02


def test_partial_fit_needs_classes_and_matches_one_pass(digits):
    Xtr, _, ytr, _ = digits
    X = StandardScaler().fit_transform(Xtr)
    with pytest.raises(ValueError, match="classes"):
        LPNClassifier().partial_fit(X[:10], ytr[:10])
    a = LPNClassifier(random_state=3)
    a.partial_fit(X[:100], ytr[:100], classes=np.arange(10))
    a.partial_fit(X[100:], ytr[100:])
    b = LPNClassifier(random_state=3, max_iter=1, shuffle=False).fit(X, ytr)
    # two partial_fit calls in order == one unshuffled pass (same seed, same sample order)
    assert a.net_.same_state(b.net_)
    with pytest.raises(ValueError, match="labels not in classes_"):
        a.partial_fit(X[:5], np.full(5, 11))
    with pytest.raises(ValueError, match="features"):
        a.partial_fit(X[:5, :10], ytr[:5])


def test_regressor_config_and_architecture_reach_the_network():
    X, y = make_regression(n_samples=200, n_features=6, noise=0.1, random_state=0)
    y = y / y.std()
    reg = LPNRegressor(hidden_layer_sizes=(12,), fan_in=4, lr=0.05, budget=0.5,
                       config=lpn.LearnConfig(kappa_short=0.5), random_state=0).fit(X, y)
    net = reg.net_
    assert [s.n_out for s in net.specs] == [12, 1]
    assert net.config.lr == 0.05 and net.config.budget == 0.5 and net.config.kappa_short == 0.5
    assert [row["max"] for row in net.fan_in()] == [4, 4]
    assert reg.predict(X).shape == (200,)
    assert len(reg.loss_curve_) == reg.n_iter_ == 10
    # the default linear readout fits a linear target
    lin = LPNRegressor(random_state=0, max_iter=20).fit(X, y)
    assert lin.score(X, y) > 0.99
    with pytest.raises(TypeError, match="config"):
        LPNRegressor(config="fast").fit(X, y)
    with pytest.raises(ValueError, match="max_iter"):
        LPNRegressor(max_iter=0).fit(X, y)


def test_clone_keeps_params_not_the_network():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    reg = LPNRegressor(lr=0.03, random_state=1).fit(X, y)
    fresh = clone(reg)
    assert fresh.get_params() == reg.get_params()
    assert not hasattr(fresh, "net_")
