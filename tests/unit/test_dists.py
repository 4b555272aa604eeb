"""Weight-initialisation distributions (numpy/nengo only, any backend)."""

from __future__ import annotations

import subprocess
import sys

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow import dists

TRUNC_STD = 0.87962566103423978


def test_module_does_not_import_tensorflow():
    code = "import nhw.backends.tensorflow.api.dists, sys; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "dist",
    [
        dists.VarianceScaling(),
        dists.VarianceScaling(mode="fan_in", distribution="normal"),
        dists.Glorot(),
        dists.He(),
        dists.TruncatedNormal(),
    ],
)
def test_shapes(dist):
    rng = np.random.RandomState(0)
    assert dist.sample(7, rng=rng).shape == (7,)
    assert dist.sample(3, 5, rng=rng).shape == (3, 5)
    assert dist.sample(0, 4, rng=rng).shape == (0, 4)
    # default rng works too
    assert dist.sample(2, 2).shape == (2, 2)


def test_sample_is_seeded():
    a = dists.Glorot().sample(4, 6, rng=np.random.RandomState(3))
    b = dists.Glorot().sample(4, 6, rng=np.random.RandomState(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["uniform", "normal"])
def test_variance_scaling_statistics(mode, distribution):
    n, d, scale = 400, 100, 1.7  # fan_out=400, fan_in=100
    fan = {"fan_in": d, "fan_out": n, "fan_avg": (n + d) / 2}[mode]
    x = dists.VarianceScaling(scale, mode, distribution).sample(n, d, rng=np.random.RandomState(1))
    assert abs(np.mean(x)) < 0.03 * np.sqrt(scale / fan)  # ~6 standard errors
    # NengoDL's "normal" is a normal of std sqrt(scale/fan) cut at 2 std, not rescaled:
    # its variance is TRUNC_STD**2 of that
    want = scale / fan * (TRUNC_STD**2 if distribution == "normal" else 1)
    assert np.isclose(np.var(x), want, rtol=0.03)
    if distribution == "uniform":
        limit = np.sqrt(3 * scale / fan)
        assert np.all(np.abs(x) <= limit)
        assert np.max(np.abs(x)) > 0.99 * limit
    else:
        bound = 2 * np.sqrt(scale / fan)
        assert np.all(np.abs(x) <= bound)
        assert np.max(np.abs(x)) > 0.99 * bound


def test_one_dimensional_fan():
    # NengoDL: a 1-D sample has fan_in 1 and fan_out n
    x = dists.VarianceScaling(2.0, "fan_in").sample(20000, rng=np.random.RandomState(2))
    assert np.isclose(np.var(x), 2.0, rtol=0.05)
    y = dists.VarianceScaling(2.0, "fan_out").sample(20000, rng=np.random.RandomState(2))
    assert np.isclose(np.var(y), 2.0 / 20000, rtol=0.05)


def test_glorot_and_he_are_variance_scaling():
    g, h = dists.Glorot(), dists.He()
    assert isinstance(g, dists.VarianceScaling) and isinstance(h, dists.VarianceScaling)
    assert (g.scale, g.mode, g.distribution) == (1.0, "fan_avg", "uniform")
    # He's scale is a standard-deviation factor (NengoDL): default 1, variance factor scale**2
    assert (h.scale, h.mode, h.distribution) == (1.0, "fan_in", "normal")
    assert dists.He(np.sqrt(2)).scale == pytest.approx(2.0)
    rng = np.random.RandomState(4)
    x = dists.He(np.sqrt(2)).sample(300, 200, rng=rng)
    assert np.isclose(np.var(x), 2.0 / 200 * TRUNC_STD**2, rtol=0.03)
    y = dists.Glorot(distribution="normal").sample(300, 200, rng=rng)
    assert np.isclose(np.var(y), 1.0 / 250 * TRUNC_STD**2, rtol=0.03)


def test_truncated_normal():
    t = dists.TruncatedNormal(mean=1.5, stddev=0.5)
    assert t.limit == 1.0
    x = t.sample(200, 100, rng=np.random.RandomState(5))
    assert np.all(np.abs(x - 1.5) <= 1.0)
    assert np.isclose(np.mean(x), 1.5, atol=0.01)
    assert np.isclose(np.std(x), 0.5 * TRUNC_STD, rtol=0.02)
    # a tight explicit limit
    y = dists.TruncatedNormal(stddev=1.0, limit=0.1).sample(1000, rng=np.random.RandomState(6))
    assert np.all(np.abs(y) <= 0.1)
    assert np.isclose(np.var(y), 0.01 / 3, rtol=0.15)  # ~uniform on [-0.1, 0.1]


@pytest.mark.parametrize(
    "make, attr",
    [
        (lambda: dists.VarianceScaling(scale=0), "scale"),
        (lambda: dists.VarianceScaling(scale=-1), "scale"),
        (lambda: dists.VarianceScaling(mode="fan_sideways"), "mode"),
        (lambda: dists.VarianceScaling(distribution="cauchy"), "distribution"),
        (lambda: dists.Glorot(distribution="poisson"), "distribution"),
        (lambda: dists.He(scale="big"), "scale"),
        (lambda: dists.TruncatedNormal(stddev=0), "stddev"),
        (lambda: dists.TruncatedNormal(limit=-1), "limit"),
    ],
)
def test_bad_parameters(make, attr):
    with pytest.raises(ValidationError) as info:
        make()
    assert info.value.attr == attr


def test_bad_sample_arguments():
    with pytest.raises(ValidationError, match="non-negative integer"):
        dists.Glorot().sample(-1, 2)
    with pytest.raises(ValidationError, match="'d'"):
        dists.TruncatedNormal().sample(3, 2.5)


def test_as_transform_in_reference_simulator():
    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(40, 1)
        b = nengo.Ensemble(30, 1)
        conn = nengo.Connection(a.neurons, b.neurons, transform=dists.Glorot())
        conn2 = nengo.Connection(a.neurons, b.neurons, transform=dists.He(distribution="uniform"))
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    w = sim.data[conn].weights
    assert w.shape == (30, 40)
    assert np.all(np.abs(w) <= np.sqrt(3 / 35))
    assert np.all(np.abs(sim.data[conn2].weights) <= np.sqrt(3 * 2 / 40))
    assert np.std(w) > 0.5 * np.sqrt(1 / 35)
