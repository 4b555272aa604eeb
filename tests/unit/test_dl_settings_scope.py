"""Where ``configure_settings`` stores settings, and ``SoftLIFRate.rates`` shapes (no TensorFlow).

Specification: NengoDL 3.6 ``nengo_dl/config.py`` (``configure_settings``) and
``nengo_dl/neurons.py`` (``SoftLIFRate.rates``).
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.neurons import SoftLIFRate, soft_lif_rate_np
from nhw.backends.tensorflow.settings import configure_settings, get_setting, stored_settings, trainable_map
from nhw.dl.config import get_setting as dl_get_setting


def test_settings_in_subnetwork_go_to_top_level_network():
    """NengoDL config.py: ``config = Network.context[0].config`` ("get the toplevel
    network"); every setting except ``trainable`` is set there, so a call inside
    a sub-network configures the whole model."""
    with nengo.Network() as net:
        with nengo.Network() as sub:
            with nengo.Network() as subsub:
                configure_settings(dtype="float64", keep_history=False, stateful=False, lif_smoothing=0.05)
    assert get_setting(net, "dtype") == "float64"
    assert get_setting(net, "keep_history") is False
    assert get_setting(net, "stateful") is False
    assert get_setting(net, "lif_smoothing") == 0.05
    assert dl_get_setting(net, "lif_smoothing") == 0.05
    # nothing is stored on the sub-networks themselves
    assert stored_settings(sub) == {} and stored_settings(subsub) == {}
    # keep_history is also the default of the top-level config's Probe parameter
    with net:
        p = nengo.Probe(nengo.Node([0.0]))
    assert net.config[p].keep_history is False


def test_later_subnetwork_call_updates_top_level_settings():
    """NengoDL sets each setting as a parameter of the top-level config, so the
    last call wins, wherever it was made."""
    with nengo.Network() as net:
        configure_settings(dtype="float32", inference_only=True)
        with nengo.Network():
            configure_settings(dtype="float64")
    assert get_setting(net, "dtype") == "float64"
    assert get_setting(net, "inference_only") is True


def test_trainable_stays_on_innermost_network():
    """NengoDL config.py: "for trainable, we set it on the nearest containing
    network (rather than the top-level)"."""
    with nengo.Network() as net:
        a = nengo.Ensemble(2, 1)
        with nengo.Network() as sub:
            configure_settings(trainable=False)
            b = nengo.Ensemble(2, 1)
    flags = trainable_map(net)
    assert flags[a] is True and flags[b] is False
    assert sub.config[nengo.Ensemble].trainable is False
    with pytest.raises(AttributeError):
        net.config[nengo.Ensemble].trainable  # noqa: B018 - not configured on the top level
    assert stored_settings(net) == {}  # trainable alone stores no simulator setting


def _nengo_dl_soft_lif(J, sigma, tau_rc=0.02, tau_ref=0.002, amplitude=1.0):
    """NengoDL 3.6 neurons.py SoftLIFRate.step, restated for the reference values."""
    j = J - 1
    js = j / sigma
    z = np.where(js > 30, js, np.log1p(np.exp(np.minimum(js, 30)))) * sigma
    with np.errstate(divide="ignore"):
        q = np.where(js > -20, np.log1p(1 / z), -js - np.log(sigma))
    return amplitude / (tau_ref + tau_rc * q)


def test_soft_lif_rates_elementwise_like_nengo_dl():
    """NengoDL neurons.py SoftLIFRate.rates: ``J = gain * x; J += bias`` (element-wise
    with broadcasting), so ``x`` of shape (n,) gives n rates, one per neuron."""
    J = np.array([-3, -1, 0, 0.5, 0.9, 1.0, 1.1, 1.5, 2, 4.0])
    for sigma in (1.0, 0.1):
        out = SoftLIFRate(sigma=sigma).rates(J, np.ones_like(J), np.zeros_like(J))
        assert out.shape == J.shape
        np.testing.assert_allclose(out, _nengo_dl_soft_lif(J, sigma), rtol=1e-9)
    gain, bias = np.array([1.0, 2.0, 0.5]), np.array([0.5, -0.2, 1.0])
    x = np.array([0.3, 0.9, 2.0])
    np.testing.assert_allclose(SoftLIFRate(sigma=0.2).rates(x, gain, bias),
                               soft_lif_rate_np(gain * x + bias, 0.2, 0.02, 0.002))


def test_soft_lif_rates_keeps_nengo_sample_semantics():
    """(n_samples, n_neurons) inputs (nengo's decoder solving, tuning curves) give
    (n_samples, n_neurons) rates, as with NengoDL's broadcasting formula; a 1-D
    ``x`` of n_samples != n_neurons scalar inputs keeps nengo's NeuronType.current
    semantics."""
    neuron = SoftLIFRate(sigma=0.1)
    gain, bias = np.array([1.0, 2.0, 0.5]), np.array([0.5, -0.2, 1.0])
    x2 = np.linspace(-1, 1, 12).reshape(4, 3)
    out = neuron.rates(x2, gain, bias)
    assert out.shape == (4, 3)
    np.testing.assert_allclose(out, soft_lif_rate_np(gain * x2 + bias, 0.1, 0.02, 0.002))
    col = np.linspace(-1, 1, 5)[:, None]
    assert neuron.rates(col, gain, bias).shape == (5, 3)
    samples = np.linspace(-1, 1, 5)
    out = neuron.rates(samples, gain, bias)
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, neuron.rates(samples[:, None], gain, bias))
    # an ensemble of SoftLIFRate neurons still builds and solves its decoders
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(20, 1, neuron_type=SoftLIFRate(sigma=0.05))
        nengo.Connection(ens, nengo.Node(size_in=1))
    with nengo.Simulator(net, progress_bar=False) as sim:
        pass
    assert sim.data[ens].gain.shape == (20,)
