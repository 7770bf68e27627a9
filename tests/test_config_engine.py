"""The engine owns config defaults and rules: Python's dataclasses agree with it exactly.

Every default of `LearnConfig`/`LayerSpec` must equal the engine's, and every value the engine
refuses must be refused when the Python object is built (and by `replace()`), with the message
the engine gives when the same JSON reaches it directly.
"""

import dataclasses
import json

import pytest

import lpn
from lpn import _lpn

CONFIG_DEFAULTS = json.loads(_lpn.config_defaults())
SPEC_DEFAULTS = json.loads(_lpn.spec_defaults())


def test_config_defaults_are_the_engines():
    fields = {f.name: f.default for f in dataclasses.fields(lpn.LearnConfig)}
    assert fields == CONFIG_DEFAULTS
    assert lpn.LearnConfig().to_json_dict() == CONFIG_DEFAULTS
    # An empty config given to the engine is filled with the same defaults.
    assert json.loads(_lpn.validate_config("{}")) == CONFIG_DEFAULTS


def test_spec_defaults_are_the_engines():
    fields = {f.name: f.default for f in dataclasses.fields(lpn.LayerSpec)
              if f.name not in ("n_in", "n_out")}
    expect = {k: v for k, v in SPEC_DEFAULTS.items() if k not in ("n_in", "n_out")}
    assert fields == expect
    d = lpn.LayerSpec(3, 5).to_json_dict()
    assert d == {**SPEC_DEFAULTS, "n_in": 3, "n_out": 5}
    assert json.loads(_lpn.validate_spec('{"n_in": 3, "n_out": 5}')) == d


# One case per rule of LearnConfig::validate (src/config.rs).
BAD_CONFIGS = [
    dict(lr=-0.1),
    dict(bias_lr=-1.0),
    dict(budget=5.0),
    dict(budget=0.01),
    dict(budget_min=0.0),
    dict(budget_min=0.5, budget_max=0.4, budget=0.45),
    dict(budget_max=1.5),
    dict(shrink=0.0),
    dict(shrink=1.01),
    dict(grow=0.99),
    dict(kappa_short=-1.0),
    dict(kappa_long=-1.0),
    dict(beta=-0.5),
    dict(rho_short=1.5),
    dict(rho_long=-0.1),
    dict(rho_trace=2.0),
    dict(rho_consolidation=1.1),
    dict(pull=-0.1),
    dict(w_max=0.0),
    dict(init_std=-0.01),
    dict(eps=0.0),
    dict(auto_threshold=-1.0),
    dict(auto_increment=-1.0),
    dict(prune_weight=-1.0),
    dict(prune_long=-1.0),
    dict(conflict_ratio=-1.0),
    dict(hidden_signal="backprop"),
    dict(hidden_signal=("feedback", "sideways")),
    dict(output_error="hinge"),
    dict(readout_window=50),  # only with output_error="softmax"
    dict(replay_policy="fifo"),
]


@pytest.mark.parametrize("bad", BAD_CONFIGS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_every_invalid_config_is_refused_at_construction(bad):
    with pytest.raises(ValueError) as at_construction:
        lpn.LearnConfig(**bad)
    # The same JSON straight into the engine (no Python checks) fails with the same words.
    with pytest.raises(ValueError) as in_engine:
        _lpn.Engine(json.dumps([lpn.LayerSpec(4, 4).to_json_dict()]), json.dumps(bad), 0)
    assert str(at_construction.value) == str(in_engine.value)
    assert next(iter(bad)) in str(at_construction.value)
    with pytest.raises(ValueError) as in_replace:
        lpn.LearnConfig().replace(**bad)
    assert str(in_replace.value) == str(at_construction.value)


# One case per rule of LayerSpec::validate.
BAD_SPECS = [
    dict(n_in=0, n_out=3),
    dict(n_in=4, n_out=0),
    dict(n_in=2 ** 32 + 1, n_out=1),
    dict(n_in=4, n_out=3, dims=3),
    dict(n_in=4, n_out=3, radius=-0.1),
    dict(n_in=4, n_out=3, radius=0.3, growth_radius=0.2),
    dict(n_in=4, n_out=3, fan_in=0),
    dict(n_in=5, n_out=4, dims=2),
    dict(n_in=4, n_out=4, dims=2, in_shape=(1, 3)),
    dict(n_in=4, n_out=4, dims=2, in_shape=(2 ** 40, 2 ** 40)),
    dict(n_in=4, n_out=3, tag_affinity=[[1.0, 0.0]]),
    dict(n_in=4, n_out=3, in_tags=[0, 1, 2, 3], tag_affinity=[[1.0, 0.0], [0.0, 1.0]]),
    dict(n_in=4, n_out=3, activation="softmax"),
]


@pytest.mark.parametrize("bad", BAD_SPECS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_every_invalid_spec_is_refused_at_construction(bad):
    with pytest.raises(ValueError) as at_construction:
        lpn.LayerSpec(**bad)
    raw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in bad.items()}
    with pytest.raises(ValueError) as in_engine:
        _lpn.Engine(json.dumps([raw]), "{}", 0)
    assert str(in_engine.value) == f"layer 0: {at_construction.value}"
    with pytest.raises(ValueError) as in_replace:
        lpn.LayerSpec(4, 4).replace(**bad)
    assert str(in_replace.value) == str(at_construction.value)


def test_types_are_checked_in_python_and_values_kept():
    with pytest.raises(TypeError, match="lr must be a number"):
        lpn.LearnConfig(lr="fast")
    with pytest.raises(TypeError, match="grow_per_row must be an int"):
        lpn.LearnConfig(grow_per_row=2.5)
    with pytest.raises(TypeError, match="replay_on_conflict must be a bool"):
        lpn.LearnConfig(replay_on_conflict=1)
    with pytest.raises(TypeError, match="activation must be a str"):
        lpn.LayerSpec(4, 4, activation=None)
    with pytest.raises(ValueError, match="contrastive_threshold must be a finite number"):
        lpn.LearnConfig(contrastive_threshold=float("inf"))
    cfg = lpn.LearnConfig(lr=1, hidden_signal=["frozen"])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.hidden_signal == ("frozen",)
    assert cfg.replace(beta=0.25).beta == 0.25 and cfg.replace(beta=0.25).lr == 1.0
