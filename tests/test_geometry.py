"""One geometry: tasks.py and the reference use the engine's positions, distances and radius
tolerance, so a generated support is exactly what a layer wires."""

import numpy as np
import pytest

import lpn
from lpn import _lpn, tasks
from lpn.reference import ReferenceNetwork

LAYOUTS = [
    dict(n_in=40, n_out=24, radius=0.1),
    dict(n_in=32, n_out=32, radius=0.125, periodic=False),  # units exactly on the radius
    dict(n_in=64, n_out=16, dims=2, radius=0.2),
    dict(n_in=12, n_out=20, dims=2, in_shape=(3, 4), out_shape=(4, 5), radius=0.3,
         periodic=False),
]


def wiring(net):
    s = net.layers[0].synapses()
    spec = net.layers[0].spec
    m = np.zeros((spec.n_out, spec.n_in), dtype=bool)
    m[s["post"], s["pre"]] = True
    return m


@pytest.mark.parametrize("kw", LAYOUTS)
def test_tasks_neighbourhood_is_the_engine_wiring(kw):
    net = lpn.Network([lpn.LayerSpec(**kw)], seed=0)
    sup = tasks.neighbourhood(kw["n_in"], kw["n_out"], kw["radius"], dims=kw.get("dims", 1),
                              in_shape=kw.get("in_shape"), out_shape=kw.get("out_shape"),
                              periodic=kw.get("periodic", True))
    assert np.array_equal(sup, wiring(net))


@pytest.mark.parametrize("kw", LAYOUTS)
def test_unit_positions_are_the_layers(kw):
    layer = lpn.Network([lpn.LayerSpec(**kw)], seed=0).layers[0]
    p_in, p_out = layer.positions()
    dims = kw.get("dims", 1)
    assert np.array_equal(_lpn.unit_positions(kw["n_in"], dims, kw.get("in_shape")), p_in)
    assert np.array_equal(_lpn.unit_positions(kw["n_out"], dims, kw.get("out_shape")), p_out)
    # tasks lists the row coordinate first on a grid (its documented convention).
    t = tasks.positions(kw["n_in"], dims, kw.get("in_shape"))
    assert np.array_equal(t, p_in[:, :1] if dims == 1 else p_in[:, ::-1])


def test_reference_growth_uses_engine_geometry():
    kw = LAYOUTS[1]
    net = lpn.Network([lpn.LayerSpec(**kw, growth_radius=0.25)], seed=0)
    ref = ReferenceNetwork.from_network(net)
    # Without positions handed in, the reference lays units out with the engine's function.
    d = ref.layers[0].synapses()
    d.update(n_in=32, n_out=32, radius=0.125, growth_radius=0.25, periodic=False)
    bare = ReferenceNetwork.from_state([d], {}).layers[0]
    assert np.array_equal(bare.pos_in, ref.layers[0].pos_in)
    for (i, di), (j, dj) in zip(bare.growth_neighbourhood(), ref.layers[0].growth_neighbourhood()):
        assert np.array_equal(i, j) and np.array_equal(di, dj)
    wide = tasks.neighbourhood(32, 32, 0.25, periodic=False)
    for row, (idx, _) in enumerate(ref.layers[0].growth_neighbourhood()):
        assert np.array_equal(idx, np.flatnonzero(wide[row]))


def test_bad_geometry_is_a_value_error():
    with pytest.raises(ValueError, match="perfect square"):
        _lpn.unit_positions(5, 2)
    with pytest.raises(ValueError, match="dims"):
        _lpn.unit_positions(4, 3)
    with pytest.raises(ValueError, match="columns"):
        _lpn.distances(np.zeros((2, 3)), np.zeros((2, 3)))
    # tasks.positions hands the engine exactly (h, w): any other length is a clear TypeError.
    with pytest.raises(TypeError, match=r"shape must be \(h, w\), got \(2, 3, 1\)"):
        tasks.positions(6, 2, shape=(2, 3, 1))
    assert np.array_equal(tasks.positions(6, 2, shape=np.array([2, 3])),
                          tasks.positions(6, 2, shape=(2, 3)))
