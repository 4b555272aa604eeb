"""The LMU memory built from nengo objects holds the input's recent window."""

import sys
from pathlib import Path

import nengo
import numpy as np
import pytest
from scipy.special import eval_legendre

# the LMU library ships with the examples that use it
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from lmu_network import LegendreMemory, discretize, legendre_memory, solve_readout  # noqa: E402


def test_matrices_match_known_small_case():
    a, b = legendre_memory(2, 1.0)
    assert np.allclose(a, [[-1, -1], [3, -3]]) and np.allclose(b.ravel(), [1, -3])


@pytest.mark.parametrize("r", [0.0, 0.5, 1.0])
def test_memory_reconstructs_delayed_input(r):
    order, theta, dt = 8, 0.1, 0.001
    with nengo.Network() as net:
        stim = nengo.Node(nengo.processes.WhiteSignal(1.0, high=10, rms=0.5, seed=1))
        lmu = LegendreMemory(order, theta, dt=dt)
        nengo.Connection(stim, lmu.input, synapse=None)
        pm, pu = nengo.Probe(lmu.memory), nengo.Probe(stim)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run(1.0)
    c = np.array([eval_legendre(i, 2 * r - 1) for i in range(order)])
    k = int(round(r * theta / dt)) + 1  # the window's point r, plus the one-step input delay
    y, u = sim.data[pm] @ c, sim.data[pu][:, 0]
    nrmse = np.sqrt(np.mean((y[200:] - u[200 - k:len(u) - k]) ** 2) / np.mean(u**2))
    assert nrmse < 0.05


def test_discretize_matches_euler_for_small_dt():
    a, b = legendre_memory(4, 0.5)
    ad, bd = discretize(a, b, 1e-6)
    assert np.allclose(ad, np.eye(4) + a * 1e-6, atol=1e-9) and np.allclose(bd, b * 1e-6, atol=1e-9)


def test_solve_readout_recovers_linear_map():
    rng = np.random.RandomState(0)
    x = rng.randn(500, 6)
    w = rng.randn(2, 6)
    assert np.allclose(solve_readout(x, x @ w.T, reg=1e-6), w, atol=1e-4)


def test_bad_parameters():
    with pytest.raises(ValueError, match="order >= 1 and theta > 0"):
        legendre_memory(0, 1.0)
