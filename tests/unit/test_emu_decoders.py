"""Decoders of chip ensembles: solved on the chip's rate curve by default (``decoder_rates``)."""

from __future__ import annotations

import warnings

import nengo
import numpy as np
import pytest

from nhw.backends.loihi_emu import Simulator
from nhw.backends.loihi_emu.mapping import MapOptions


def _channel(function=None, transform=1.0, solver=None):
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(0.5)
        a = nengo.Ensemble(80, 1, label="a")
        out = nengo.Node(lambda t, x: x, size_in=1, label="out")
        nengo.Connection(stim, a)
        kw = {} if solver is None else {"solver": solver}
        # decoded on the host, so the decoders reach the host unquantised
        conn = nengo.Connection(a, out, function=function, transform=transform, **kw)
        probe = nengo.Probe(out, synapse=0.05)
    return net, a, conn, probe


def _chip_rates(sim, ens, x):
    # the chip's rate curve, from the chip registers: integer periods of
    # round(tau_ref/dt) held steps plus the integrating steps, at the discretised decay
    eb = sim.model.params[ens]
    nt = ens.neuron_type
    dt = sim.dt
    dv = int(round(4095 * (1 - np.exp(-dt / nt.tau_rc)))) / 4096
    held = int(round(nt.tau_ref / dt))
    J = x @ eb.encoders.T / ens.radius * eb.gain + eb.bias
    out = np.zeros_like(J)
    on = J > 1
    k = np.floor(np.log1p(-1.0 / J[on]) / np.log1p(-dv)) + 1
    out[on] = 1.0 / ((held + k) * dt)
    return out


def _decoders(sim, conn):
    """The host decoders of ``conn`` (pre amplitude 1)."""
    (out,) = [o for o in sim.mapped.outputs if o.key is conn]
    return out.decoders


def test_default_decoders_are_solved_on_the_chip_rate_curve():
    net, a, conn, _ = _channel(function=np.square, transform=[[0.5]])
    with Simulator(net, progress_bar=False) as sim:
        assert sim.options.decoder_rates == "chip"
        built = sim.model.params[conn]
        a_chip = _chip_rates(sim, a, built.eval_points)
        targets = np.square(built.eval_points)
        dec, _ = conn.solver(a_chip, targets)
        expected = 0.5 * dec.T
        got = _decoders(sim, conn)
        assert np.allclose(got, expected, rtol=1e-8, atol=1e-12)
        assert not np.allclose(got, sim.model.sig[conn]["weights"].initial_value)


def test_nengo_option_keeps_nengos_decoders():
    net, _, conn, _ = _channel()
    with Simulator(net, progress_bar=False, decoder_rates="nengo") as sim:
        got = _decoders(sim, conn)
        assert np.array_equal(got, sim.model.sig[conn]["weights"].initial_value)


def test_distribution_transform_recovered_from_built_weights():
    net, a, conn, _ = _channel(transform=nengo.dists.Choice([[-0.7]]))
    with Simulator(net, progress_bar=False) as sim:
        built = sim.model.params[conn]
        dec, _ = conn.solver(_chip_rates(sim, a, built.eval_points), built.eval_points)
        got = _decoders(sim, conn)
        assert np.allclose(got, -0.7 * dec.T, rtol=1e-6, atol=1e-9)


def test_chip_decoders_remove_the_rate_bias():
    # chip rates are at or below nengo's: nengo's decoders decode values shrunk towards 0
    net, _, _, probe = _channel()
    vals = {}
    for curve in ("chip", "nengo"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Simulator(net, progress_bar=False, decoder_rates=curve) as sim:
                sim.run(0.6)
        vals[curve] = float(sim.data[probe][300:].mean())
    assert abs(vals["chip"] - 0.5) < 0.03
    assert abs(vals["chip"] - 0.5) < abs(vals["nengo"] - 0.5)


def test_decoder_rates_option_is_checked():
    with pytest.raises(ValueError, match="decoder_rates"):
        MapOptions(decoder_rates="ideal")
    net, _, _, _ = _channel()
    with pytest.raises(TypeError, match="refit_decoders"):
        Simulator(net, progress_bar=False, refit_decoders=True)
