"""Quantisation-aware training for loihi-emu (issue 29 item 1): the chip's weights in training."""

from __future__ import annotations

import nengo
import numpy as np
import pytest
import tensorflow as tf

from nhw.backends.loihi_emu.mapping import map_model
from nhw.backends.tensorflow import Simulator, configure_settings
from nhw.backends.tensorflow.builders import chip_quantize
from nhw.errors import UnsupportedFeatureError
from nhw.hw_emulator import LOIHI_V1
from nhw.hw_emulator import discretize as dz

N_IN, N_A, N_B = 12, 20, 16


def _net(seed=0, sparse=False, neuron=nengo.SpikingRectifiedLinear):
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed) as net:
        configure_settings(target="loihi-emu")
        inp = nengo.Node(np.zeros(N_IN), label="inp")
        a = nengo.Ensemble(N_A, 1, neuron_type=neuron(), max_rates=nengo.dists.Uniform(100, 200),
                           intercepts=nengo.dists.Uniform(-0.5, 0.1), label="a")
        b = nengo.Ensemble(N_B, 1, neuron_type=neuron(), max_rates=nengo.dists.Uniform(100, 200),
                           intercepts=nengo.dists.Uniform(-0.5, 0.1), label="b")
        out = nengo.Node(size_in=3, label="out")
        nengo.Connection(inp, a.neurons, transform=rng.uniform(-0.3, 0.3, (N_A, N_IN)), synapse=None)
        if sparse:
            idx = np.array([[i, j] for i in range(N_B) for j in range(N_A) if (i + j) % 3 == 0])
            t = nengo.Sparse((N_B, N_A), indices=idx, init=rng.uniform(-0.01, 0.01, len(idx)))
        else:
            t = rng.uniform(-0.01, 0.01, (N_B, N_A))
        ab = nengo.Connection(a.neurons, b.neurons, transform=t, synapse=0.005, label="ab")
        nengo.Connection(b.neurons, out, transform=rng.uniform(-0.1, 0.1, (3, N_B)), synapse=None)
        p = nengo.Probe(out, label="p")
    return net, inp, a, b, ab, p


def _emulator_weights(model, conn, k):
    """Effective nengo-unit weights (post x pre) loihi-emu programs for ``conn``."""
    mapped = map_model(model)
    (g,) = [g for g in mapped.chip.groups if g.owner is conn]
    eff = dz.effective_weights(g.mantissa, g.exponent, LOIHI_V1).astype(np.float64)
    full = np.zeros((conn.pre_obj.size_out, conn.post_obj.size_in))
    rows = np.arange(full.shape[0]) if g.src_index is None else g.src_index
    full[rows] = eff
    return full.T / k[:, None], mapped


def _train(net, inp, p, epochs=2):
    rng = np.random.RandomState(1)
    x = rng.uniform(0, 1, (40, 5, N_IN)).astype(np.float32)
    y = rng.uniform(-1, 1, (40, 5, 3)).astype(np.float32)
    sim = Simulator(net, minibatch_size=8, progress_bar=False)
    q = chip_quantize.quantize_for_chip(sim)
    sim.compile(tf.keras.optimizers.Adam(1e-2), loss={p: "mse"})
    sim.fit({inp: x}, {p: y}, epochs=epochs, verbose=0, callbacks=[chip_quantize.refresh_callback(q)])
    return sim, q


@pytest.mark.parametrize("sparse", [False, True])
def test_quantised_forward_equals_the_weights_loihi_emu_programs(sparse):
    net, inp, a, b, ab, p = _net(sparse=sparse)
    sim, q = _train(net, inp, p)
    assert {e.kind for e in q.entries} == {"weights", "bias"}
    chip = q.chip_values()
    trained = {pp.name: pp.variable.numpy() for pp in sim._params}
    sim.freeze_params(net)
    sim.close()
    # what loihi-emu programs for the frozen (float) network
    model = nengo.builder.Model(dt=0.001)
    model.build(net)
    _, ks = chip_quantize.chip_factors(model, {}, {ab: np.asarray(
        model.sig[ab]["weights"].initial_value.data if sparse else model.sig[ab]["weights"].initial_value)})
    emu, mapped = _emulator_weights(model, ab, ks[ab])
    name = "Connection:ab/weights"
    if sparse:
        idx = np.asarray(model.sig[ab]["weights"].initial_value.indices)
        tf_w = np.zeros((N_B, N_A))
        tf_w[idx[:, 0], idx[:, 1]] = chip[name]
    else:
        tf_w = chip[name]
    assert np.allclose(tf_w, emu, rtol=1e-9, atol=0), np.abs(tf_w - emu).max()
    # quantisation did something: the trained float weights are not on the chip's grid
    assert not np.allclose(np.asarray(trained[name]), chip[name], rtol=1e-6, atol=0)
    # the bias: mantissa * 2**exponent / c of the emulator's block
    for ens in (a, b):
        blk = mapped.ensemble_blocks[ens]
        emu_b = dz.bias_effective(blk.bias_mant, blk.bias_exp) / np.asarray(blk.current_scale)
        assert np.allclose(chip[f"Ensemble:{ens.label}/bias"], emu_b, rtol=1e-9, atol=1e-12)


def test_the_simulator_computes_with_the_quantised_values():
    net, inp, a, b, ab, p = _net()
    # 20 steps: over 10, with the Node input arriving a step late (as on the chip), the
    # outputs came out allclose before and after quantisation
    x = np.random.RandomState(2).uniform(0, 1, (8, 20, N_IN)).astype(np.float32)
    with Simulator(net, minibatch_size=8, progress_bar=False) as sim:
        before = sim.predict({inp: x})[p]
        q = chip_quantize.quantize_for_chip(sim)
        after = sim.predict({inp: x})[p]
        chip = q.chip_values()
    # same network with the chip values written in: same outputs as the quantised simulator
    ab.transform = chip["Connection:ab/weights"]
    with Simulator(net, minibatch_size=8, progress_bar=False) as sim2:
        for ens in (a, b):
            pv = [pp for pp in sim2._params if pp.name == f"Ensemble:{ens.label}/bias"][0]
            pv.variable.assign(chip[pv.name])
        exact = sim2.predict({inp: x})[p]
    assert not np.allclose(before, after)
    assert np.allclose(after, exact, atol=1e-5)


def test_gradients_pass_straight_through():
    w = tf.Variable(np.linspace(-0.02, 0.03, 50))
    f = tf.constant(np.full(50, 1234.5))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(chip_quantize.weight_fake_quant(w, f, LOIHI_V1) * np.arange(50.0))
    assert np.array_equal(tape.gradient(y, w).numpy(), np.arange(50.0))
    b = tf.Variable(np.linspace(-3, 3, 7))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(chip_quantize.bias_fake_quant(b, tf.constant(np.full(7, 3000.0)), LOIHI_V1) ** 2)
    qb = chip_quantize.bias_fake_quant(b, tf.constant(np.full(7, 3000.0)), LOIHI_V1).numpy()
    assert np.allclose(tape.gradient(y, b).numpy(), 2 * qb)


def test_fake_quant_matches_discretize_at_its_boundaries():
    # exponents at both ends of the range, ties, clipping, zeros
    rng = np.random.RandomState(0)
    for top in (0.3, 1.0, 200.0, 255.5, 1e3, 3e4, 1e9):
        w_int = rng.uniform(-top, top, 64)
        w_int[:3] = [0.0, top, -top]
        f = rng.uniform(10, 1000, 64)
        want = dz.quantize_weights(w_int, LOIHI_V1)
        eff = dz.effective_weights(want.mantissa, want.exponent, LOIHI_V1) / f
        got = chip_quantize.weight_fake_quant(tf.constant(w_int / f), tf.constant(f), LOIHI_V1).numpy()
        assert np.allclose(got, eff, rtol=1e-12, atol=0), top
    b_int = np.array([0.0, 0.5, 1.5, -2.5, 4095.0, 4096.0, 8191.0, -9000.0, 4095.0 * 128, 1e7, -1e7])
    c = np.full(b_int.shape, 37.0)
    m, e, _ = dz.bias_registers(b_int)
    got = chip_quantize.bias_fake_quant(tf.constant(b_int / c), tf.constant(c), LOIHI_V1).numpy()
    assert np.allclose(got * c, dz.bias_effective(m, e), rtol=1e-12, atol=1e-9)


def test_inference_only_simulator_is_refused():
    net, inp, a, b, ab, p = _net()
    with net:
        configure_settings(inference_only=True)
    with Simulator(net, progress_bar=False) as sim:
        with pytest.raises(UnsupportedFeatureError, match="no trainable parameters"):
            chip_quantize.quantize_for_chip(sim)


def test_configure_settings_quantize_installs_the_chip_quantiser():
    """One setting in Python, as train.quantize in YAML: the simulator computes with chip values."""
    import nengo
    import pytest
    from nengo.exceptions import ValidationError

    from nhw.backends.tensorflow import Simulator, configure_settings
    from nhw.backends.tensorflow.builders.chip_quantize import ChipQuantizer

    with nengo.Network(seed=0) as net:
        configure_settings(target="loihi-emu", quantize=True)
        a = nengo.Ensemble(20, 1, neuron_type=nengo.SpikingRectifiedLinear())
        b = nengo.Ensemble(10, 1, neuron_type=nengo.SpikingRectifiedLinear())
        nengo.Connection(nengo.Node([0.5]), a)
        nengo.Connection(a.neurons, b.neurons, transform=np.random.RandomState(0).randn(10, 20) * 0.01)
        nengo.Probe(b.neurons)
    with Simulator(net, progress_bar=False) as sim:
        assert isinstance(sim.quantizer, ChipQuantizer) and sim._assemble is sim.quantizer
    with net:
        configure_settings(target=None)
    with pytest.raises(ValidationError, match="needs the target whose formats to use"):
        Simulator(net, progress_bar=False)
