"""The TensorFlow simulator against nengo's reference simulator, and its API."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import nengo  # noqa: E402
from nengo.exceptions import SimulatorClosed, ValidationError  # noqa: E402

from nhw.backends.tensorflow import Simulator  # noqa: E402


def sin_chain(seed=0):
    with nengo.Network(seed=seed) as net:
        inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3), label="x")
        ens0 = nengo.Ensemble(50, 1)
        ens1 = nengo.Ensemble(50, 1)
        outpt = nengo.Node(size_in=1)
        nengo.Connection(inpt, ens0)
        nengo.Connection(ens0, ens1, function=np.square)
        nengo.Connection(ens1, outpt, function=np.sin)
        net.p_in = nengo.Probe(inpt)
        net.p_out = nengo.Probe(outpt, synapse=0.005)
    return net


def run_both(net, steps, dtype="float64", **kwargs):
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run_steps(steps)
    with Simulator(net, seed=0, progress_bar=False, dtype=dtype, **kwargs) as sim:
        sim.run_steps(steps)
    return ref, sim


def test_seed_example_matches_reference_and_shapes(capsys):
    net = sin_chain()
    with Simulator(net, seed=0) as sim:
        sim.run_steps(1000)
    out = capsys.readouterr().out
    for line in ("Build finished in 0:00:", "Optimization finished in", "Construction finished in",
                 "Simulation finished in"):
        assert line in out
    with nengo.Simulator(net, seed=0, progress_bar=False) as ref:
        ref.run_steps(1000)
    assert sim.data[net.p_out].shape == (1000, 1)
    # the WhiteSignal input is generated from the same random stream as reference
    assert np.allclose(sim.data[net.p_in], ref.data[net.p_in], atol=1e-6)
    target = np.sin(ref.data[net.p_in] ** 2)
    err = np.sqrt(np.mean((sim.data[net.p_out] - target) ** 2))
    ref_err = np.sqrt(np.mean((ref.data[net.p_out] - target) ** 2))
    assert err < ref_err * 1.05 + 1e-3
    assert np.allclose(sim.trange(), ref.trange())


def test_silent_without_progress_bar(capsys):
    with Simulator(sin_chain(), progress_bar=False) as sim:
        sim.run_steps(3)
    assert capsys.readouterr().out == ""


def test_float64_is_near_identical_to_reference():
    net = sin_chain()
    ref, sim = run_both(net, 300)
    assert np.allclose(sim.data[net.p_out], ref.data[net.p_out], atol=1e-9)


def test_recurrent_lif_and_learning_match_reference():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: [np.sin(6 * t), np.cos(5 * t)])
        a = nengo.Ensemble(60, 2)
        b = nengo.Ensemble(60, 2, neuron_type=nengo.AdaptiveLIF())
        nengo.Connection(stim, a)
        nengo.Connection(a, a, transform=0.5, synapse=0.1)
        conn = nengo.Connection(a, b, learning_rule_type=nengo.PES(1e-3), function=lambda x: [0, 0])
        err = nengo.Node(size_in=2)
        nengo.Connection(b, err)
        nengo.Connection(stim, err, transform=-1)
        nengo.Connection(err, conn.learning_rule)
        p = nengo.Probe(b, synapse=0.03)
        pw = nengo.Probe(conn, "weights", sample_every=0.01)
    ref, sim = run_both(net, 400)
    assert np.allclose(sim.data[p], ref.data[p], atol=1e-8)
    assert sim.data[pw].shape == ref.data[pw].shape
    assert np.allclose(sim.data[pw], ref.data[pw], atol=1e-8)


def test_minibatch_shapes_and_independent_samples():
    """NengoDL: a minibatch runs independent simulations; a WhiteSignal input differs per element."""
    net = sin_chain()
    with Simulator(net, minibatch_size=3, progress_bar=False, seed=0) as sim:
        sim.run_steps(20)
        data = sim.data[net.p_out]
    assert data.shape == (3, 20, 1)
    assert not np.allclose(data[0], data[1]) and not np.allclose(data[0], data[2])


def test_time_only_processes_run_once_for_the_whole_minibatch(monkeypatch):
    """Piecewise/PresentInput give every element the same values from one step function;
    a later WhiteSignal still gets the per-element streams it got before (same seed draws)."""
    from nhw.backends.tensorflow.runtime import host

    with nengo.Network(seed=3) as net:
        pw = nengo.Node(nengo.processes.Piecewise({0: [0.0, 1.0], 0.005: [2.0, -1.0]}), label="pw")
        pi = nengo.Node(nengo.processes.PresentInput(np.arange(6.0).reshape(3, 2), 0.003), label="pi")
        ws = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3), label="ws")
        probes = [nengo.Probe(n, synapse=None) for n in (pw, pi, ws)]

    def run():
        with Simulator(net, minibatch_size=3, progress_bar=False, seed=0) as sim:
            sim.run_steps(12)
            return [np.array(sim.data[p]) for p in probes]

    shared = run()
    monkeypatch.setattr(host, "_same_for_every_element", lambda op: False)
    per_element = run()
    for got, want in zip(shared, per_element):
        np.testing.assert_array_equal(got, want)
    with nengo.Simulator(net, progress_bar=False, seed=0) as ref:
        ref.run_steps(12)
    for p, got in zip(probes[:2], shared[:2]):
        for element in got:
            np.testing.assert_allclose(element, ref.data[p])
    assert not np.allclose(shared[2][0], shared[2][1])  # WhiteSignal: independent elements


def test_step_run_reset_close_and_time():
    net = sin_chain()
    with Simulator(net, progress_bar=False, unroll_simulation=3) as sim:
        sim.step()
        sim.run(0.01)
        sim.run_steps(5)
        assert sim.n_steps == 16
        assert np.isclose(sim.time, 0.016)
        assert np.allclose(sim.trange(), 0.001 * np.arange(1, 17))
        first = np.array(sim.data[net.p_out])
        assert first.shape == (16, 1)
        sim.reset()
        assert sim.n_steps == 0 and sim.data[net.p_out].shape[0] == 0
        sim.run_steps(16)
        assert np.allclose(sim.data[net.p_out], first)
        with pytest.raises(Exception, match="read-only"):
            sim.dt = 0.002
    with pytest.raises(SimulatorClosed):
        sim.run_steps(1)


def test_data_params_are_available():
    net = sin_chain()
    with Simulator(net, progress_bar=False) as sim:
        ens = net.ensembles[0]
        assert sim.data[ens].encoders.shape == (50, 1)
        assert sim.data[ens].gain.shape == (50,)
        assert sim.data[net.connections[1]].weights.shape == (1, 50)


def autoencoder(n_in=6, n_hidden=4):
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.zeros(n_in), label="a")
        b = nengo.Ensemble(n_hidden, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(a, b.neurons, transform=np.ones((n_hidden, n_in)) * 0.1)
        c = nengo.Ensemble(n_in, 1, neuron_type=nengo.RectifiedLinear())
        nengo.Connection(b.neurons, c.neurons, transform=np.ones((n_in, n_hidden)) * 0.1)
        net.p = nengo.Probe(c.neurons)
        net.a = a
    return net


def test_predict_array_list_dict_and_label():
    net = autoencoder()
    x = np.ones((5, 1, 6))
    with Simulator(net, minibatch_size=5, progress_bar=False) as sim:
        outs = [
            sim.predict(x)[net.p],
            sim.predict([x])[net.p],
            sim.predict({net.a: x})[net.p],
            sim.predict_on_batch({"a": x})[net.p],
        ]
        assert sim.n_steps == 0  # stateful=False leaves the simulator untouched
    for o in outs:
        assert o.shape == (5, 1, 6)
        assert np.allclose(o, outs[0])
    # relu(relu(0.1 * 6) * 0.4) with the default bias of each neuron
    assert np.all(outs[0] >= 0)


def test_predict_without_data_uses_node_output_and_stateful_advances():
    net = sin_chain()
    with Simulator(net, minibatch_size=2, progress_bar=False, seed=0) as sim:
        out = sim.predict(n_steps=10)
        assert out[net.p_out].shape == (2, 10, 1)
        sim.predict(n_steps=10, stateful=True)
        assert sim.n_steps == 10
        sim.run_steps(0)
    with Simulator(net, progress_bar=False, seed=0) as sim1:
        sim1.run_steps(10)
    assert np.allclose(out[net.p_out][0], sim1.data[net.p_out], atol=1e-6)


def test_predict_data_overrides_node_and_is_per_sample():
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: 0.0, label="stim")
        out = nengo.Node(size_in=1)
        nengo.Connection(stim, out, synapse=None, transform=2)
        p = nengo.Probe(out)
    x = np.arange(2 * 4).reshape(2, 4, 1).astype(float)
    with Simulator(net, minibatch_size=2, progress_bar=False) as sim:
        res = sim.predict_on_batch({stim: x})[p]
        sim.run_steps(4, data={"stim": x})
    assert np.allclose(res, 2 * x)
    assert np.allclose(sim.data[p], 2 * x)


@pytest.mark.parametrize(
    "x, n_steps, match",
    [
        (np.ones((5, 1, 3)), None, r"shape \(5, 1, 3\); expected \(batch, n_steps, 6\)"),
        (np.ones((4, 1, 6)), None, r"batch size 4 .* expected a multiple of 5|batch size 4"),
        ({"nope": np.ones((5, 1, 6))}, None, r"'nope' is not the label of an input Node"),
        (np.ones((5, 2, 6)), 3, r"n_steps=3 but the input for Node 'a' has 2 steps"),
        (np.full((5, 1, 6), np.nan), None, r"Node 'a' contains nan"),
        (None, None, r"n_steps must be given"),
    ],
)
def test_predict_bad_input(x, n_steps, match):
    net = autoencoder()
    with Simulator(net, minibatch_size=5, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match=match):
            sim.predict_on_batch(x, n_steps=n_steps)


def test_predict_rejects_nodes_that_cannot_take_input():
    with nengo.Network() as net:
        a = nengo.Node(size_in=1)
        b = nengo.Node([0.0], label="b")
        nengo.Connection(b, a)
        nengo.Probe(a)
    with Simulator(net, progress_bar=False) as sim:
        with pytest.raises(ValidationError, match="cannot take input data"):
            sim.predict({a: np.ones((1, 2, 1))})
        with pytest.raises(ValidationError, match="batch size 2"):
            sim.predict_on_batch({b: np.ones((2, 2, 1))})


def test_bad_constructor_arguments():
    net = autoencoder()
    with pytest.raises(ValidationError, match="dtype"):
        Simulator(net, dtype="int8", progress_bar=False)
    with pytest.raises(ValidationError, match="minibatch_size"):
        Simulator(net, minibatch_size=0, progress_bar=False)
    with pytest.raises(ValidationError, match="unroll_simulation"):
        Simulator(net, unroll_simulation=0, progress_bar=False)


def test_registered_target_loads():
    from nhw import backends

    assert backends.get("tensorflow") is Simulator


def test_many_simulators_do_not_warn_about_retracing():
    # each Simulator traces its own loop functions once; TensorFlow must not see
    # that as one function retraced (it counts traces per code object)
    import logging

    import tensorflow as tf

    class Collect(logging.Handler):
        def __init__(self):
            super().__init__()
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    with nengo.Network(seed=0) as net:
        a = nengo.Ensemble(20, 1)
        nengo.Connection(nengo.Node(0.5), a)
        nengo.Probe(a, synapse=0.01)
    handler = Collect()
    tf.get_logger().addHandler(handler)
    try:
        for i in range(7):
            # batch 8 is split in two parts: the sharded function is traced too
            with Simulator(net, progress_bar=False, minibatch_size=8 if i % 2 else None) as sim:
                sim.run_steps(50)  # XLA-compiled chunk
                sim.step()  # plain graph function
    finally:
        tf.get_logger().removeHandler(handler)
    assert not [m for m in handler.messages if "retracing" in m], handler.messages
