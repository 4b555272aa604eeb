"""What makes ``sim.step()`` cheap must not change what it computes.

Between calls the TensorFlow Simulator holds its loop state packed (one tensor
per dtype) and reuses the previous call's host-input tensor when a short run's
input rows are the same. Checked here against one long run, against
user data that changes from step to step, and through reset, ``sim.signals``
and ``stateful=False``.
"""

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow import Simulator
from nhw.backends.tensorflow.runtime.packed_state import PackedState


def _net():
    with nengo.Network(seed=5) as net:
        # changes every 4 steps: consecutive steps see equal and different rows
        stim = nengo.Node(lambda t: np.floor(t * 250) % 3 - 1.0, label="stim")
        a = nengo.Ensemble(50, 1)
        b = nengo.Ensemble(30, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b, synapse=0.01)
        net.stim = stim
        net.b = b
        net.p = nengo.Probe(b, synapse=0.01)
        net.s = nengo.Probe(a.neurons)
    return net


def test_steps_equal_one_run_and_state_is_packed():
    net = _net()
    with Simulator(net, progress_bar=False, seed=2) as steps, Simulator(net, progress_bar=False, seed=2) as whole:
        assert steps._loop.packs
        for _ in range(40):
            steps.step()
        steps.run_steps(3)
        steps.step()
        assert isinstance(steps._tensors, PackedState)
        whole.run_steps(44)
        np.testing.assert_array_equal(steps.data[net.s], whole.data[net.s])
        np.testing.assert_allclose(steps.data[net.p], whole.data[net.p], rtol=1e-6, atol=1e-7)
        sig = steps.model.sig[net.b]["encoders"]
        np.testing.assert_array_equal(steps.signals[sig], whole.signals[sig])


def test_user_data_rows_changing_between_steps():
    net = _net()
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, size=(1, 30, 1)).astype(np.float32)
    data[:, 10:20] = data[:, 9:10]  # repeated rows: the cached tensor is reused there
    data[:, 20] = -0.0
    with Simulator(net, progress_bar=False, seed=2) as steps, Simulator(net, progress_bar=False, seed=2) as whole:
        for k in range(30):
            steps.step(data={net.stim: data[:, k:k + 1]})
        whole.run_steps(30, data={net.stim: data})
        np.testing.assert_array_equal(steps.data[net.s], whole.data[net.s])
        np.testing.assert_allclose(steps.data[net.p], whole.data[net.p], rtol=1e-6, atol=1e-7)


def test_reset_and_unstateful_runs_keep_packed_state_right():
    net = _net()
    with Simulator(net, progress_bar=False, seed=2) as sim:
        sim.run_steps(25)
        first = np.array(sim.data[net.p])
        before = sim._tensors
        sim.run_steps(10, stateful=False)  # NengoDL: state and time stay as they were
        assert sim._tensors is before and sim.n_steps == 25
        sim.reset()
        for _ in range(25):
            sim.step()
        np.testing.assert_allclose(sim.data[net.p], first, rtol=1e-6, atol=1e-7)


def test_minibatch_split_into_parts_keeps_a_slot_list():
    net = _net()
    with Simulator(net, progress_bar=False, seed=2, minibatch_size=8) as sim:
        if sim._loop.shards == 1:
            pytest.skip("one core: the minibatch is not split, so the state stays packed")
        assert not sim._loop.packs and isinstance(sim._tensors, list)
        sim.step()
        sim.run_steps(4)
        assert sim.data[net.p].shape == (8, 5, 1)
