"""``nengo.RegularSpiking`` on loihi-emu, as nengo-loihi maps it: ``RegularSpiking(LIFRate)``
runs as the chip's LIF model and ``RegularSpiking(RectifiedLinear)`` as its
integrate-and-fire model, with the base type's ``tau_rc``/``tau_ref`` and the
``RegularSpiking``'s own ``amplitude`` (nengo-loihi ``builder/ensemble.py``,
``build_regularspiking``); other bases and a base ``amplitude != 1`` are refused."""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw import backends
from nhw.errors import UnsupportedFeatureError

Emu = backends.get("loihi-emu")


def _channel(neuron_type, amplitude_out=None):
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t), label="stim")
        a = nengo.Ensemble(60, 1, neuron_type=neuron_type, label="a")
        b = nengo.Ensemble(60, 1, label="b")
        nengo.Connection(stim, a)
        nengo.Connection(a, b, synapse=0.01)
        net.p = nengo.Probe(b, synapse=0.02)
        net.s = nengo.Probe(a.neurons)
    return net


def _run(net, steps=500):
    with Emu(net, seed=1, progress_bar=False) as sim:
        sim.run_steps(steps)
        return sim.data[net.p], sim.data[net.s]


@pytest.mark.parametrize("spiking, rate", [
    (nengo.LIF(tau_rc=0.03, tau_ref=0.0025), nengo.LIFRate(tau_rc=0.03, tau_ref=0.0025)),
    (nengo.SpikingRectifiedLinear(), nengo.RectifiedLinear()),
])
def test_regular_spiking_runs_as_the_chip_model_of_its_base(spiking, rate):
    """Same built decoders (the rate curves agree) and the same chip registers: the
    spikes equal those of the spiking type the chip model implements."""
    y_spk, s_spk = _run(_channel(spiking))
    y_reg, s_reg = _run(_channel(nengo.RegularSpiking(rate)))
    assert s_reg.sum() > 100  # it does spike
    np.testing.assert_array_equal(s_reg > 0, s_spk > 0)
    np.testing.assert_allclose(y_reg, y_spk, atol=1e-12)


def test_regular_spiking_amplitude_scales_the_spikes():
    y1, s1 = _run(_channel(nengo.RegularSpiking(nengo.LIFRate())))
    y2, s2 = _run(_channel(nengo.RegularSpiking(nengo.LIFRate(), amplitude=0.5)))
    np.testing.assert_array_equal(s1 > 0, s2 > 0)
    np.testing.assert_allclose(s2[s2 > 0], 0.5 * s1[s1 > 0])


def test_regular_spiking_tracks_reference():
    """Decoded output within the standard LIF tolerance of nengo's own RegularSpiking."""
    net = _channel(nengo.RegularSpiking(nengo.LIFRate()))
    y, _ = _run(net, 1000)
    with nengo.Simulator(net, seed=1, progress_bar=False) as ref:
        ref.run_steps(1000)
    assert np.sqrt(np.mean((y - ref.data[net.p]) ** 2)) < 0.1


@pytest.mark.parametrize("neuron_type, match", [
    (nengo.RegularSpiking(nengo.Tanh()), r"Ensemble 'a'.*RegularSpiking\(nengo.LIFRate\(\)\)"),
    (nengo.RegularSpiking(nengo.LIFRate(amplitude=0.5)), r"Ensemble 'a'.*amplitude=0.5.*base amplitude 1"),
    (nengo.Sigmoid(), r"Ensemble 'a'.*cannot run on the chip.*nengo.LIF"),
])
def test_unsupported_regular_spiking_is_refused_naming_the_ensemble(neuron_type, match):
    with pytest.raises(UnsupportedFeatureError, match=match):
        Emu(_channel(neuron_type), progress_bar=False)


def test_tf_chip_form_refuses_regular_spiking_instead_of_differing_from_the_chip():
    """The TF simulator's chip form (target='loihi-emu') has no RegularSpiking variant:
    a clear error, not nengo's RegularSpiking where loihi-emu runs the chip's LIF."""
    import nhw.dl as nengo_dl

    net = _channel(nengo.RegularSpiking(nengo.LIFRate()))
    with net:
        nengo_dl.configure_settings(target="loihi-emu")
    with pytest.raises(UnsupportedFeatureError, match=r"RegularSpiking.*expected nengo.LIF"):
        nengo_dl.Simulator(net, progress_bar=False)
