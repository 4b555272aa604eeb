"""NengoDL's Simulator API on nhw: default minibatch_size, parameter files with state,
get_nengo_params/freeze_params argument handling, and the refusals.

Written from NengoDL 3.6's documented behaviour (API reference), not from its tests.
"""

from __future__ import annotations

import pickle

import nengo
import numpy as np
import pytest
from nengo.exceptions import SimulationError, SimulatorClosed, ValidationError

import nhw.dl as nengo_dl


def _net() -> nengo.Network:
    """Input Node -> LIF ensemble -> filtered Node: outputs depend on the carried state."""
    with nengo.Network(seed=3) as net:
        net.a = nengo.Node([0.6], label="a")
        net.e = nengo.Ensemble(12, 1, label="e")
        net.out = nengo.Node(size_in=1, label="out")
        net.c_in = nengo.Connection(net.a, net.e)
        net.c_out = nengo.Connection(net.e, net.out, synapse=0.02)
        net.p = nengo.Probe(net.out, label="p")
    return net


def _sim(net, **kw) -> nengo_dl.Simulator:
    return nengo_dl.Simulator(net, progress_bar=False, seed=0, **kw)


# --- F9: minibatch_size -------------------------------------------------------------
def test_minibatch_size_defaults_to_one_and_sim_data_keeps_no_batch_axis():
    net = _net()
    with _sim(net) as sim:
        assert sim.minibatch_size == 1
        x = np.full((sim.minibatch_size, 5, 1), 0.6)  # NengoDL's documented idiom
        out = sim.predict({net.a: x})[net.p]
        assert out.shape == (1, 5, 1)
        sim.run_steps(4)
        assert sim.data[net.p].shape == (4, 1)
        assert sim.signals[sim.model.sig[net.c_out]["out"]].shape == (1,)
    with _sim(net, minibatch_size=1) as sim:
        assert sim.minibatch_size == 1
        sim.run_steps(4)
        assert sim.data[net.p].shape == (1, 4, 1)  # given explicitly: a batch axis, as in NengoDL


def test_minibatch_size_default_and_explicit_one_simulate_the_same():
    net = _net()
    with _sim(net) as a, _sim(net, minibatch_size=1) as b:
        a.run_steps(20)
        b.run_steps(20)
        np.testing.assert_array_equal(a.data[net.p], b.data[net.p][0])


def test_dataset_batched_by_minibatch_size_trains():
    tf = pytest.importorskip("tensorflow")
    net = _net()
    with _sim(net) as sim:
        ds = tf.data.Dataset.from_tensor_slices(
            ({"a": np.ones((4, 3, 1), np.float32), "n_steps": np.full((4, 1), 3, np.int32)},
             {"p": np.zeros((4, 3, 1), np.float32)})
        ).batch(sim.minibatch_size)
        sim.compile(optimizer=tf.optimizers.SGD(0.0), loss="mse")
        hist = sim.fit(ds, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][0])


# --- F9: save_params / load_params with the simulation state --------------------------
def test_include_state_saves_and_restores_the_simulation_state(tmp_path):
    net = _net()
    with _sim(net) as sim:
        sim.run_steps(15)
        sim.save_params(tmp_path / "s", include_state=True)
        sim.run_steps(10)
        expected = sim.data[net.p][-10:]
        sim.reset()
        sim.load_params(tmp_path / "s", include_state=True)
        sim.run_steps(10)
        np.testing.assert_allclose(sim.data[net.p], expected, atol=1e-6)
        # without include_state the saved state is left unused: the run starts from rest
        sim.reset()
        sim.load_params(tmp_path / "s")
        sim.run_steps(10)
        assert not np.allclose(sim.data[net.p], expected, atol=1e-3)


def test_include_state_needs_a_file_with_state(tmp_path):
    net = _net()
    with _sim(net) as sim:
        sim.save_params(tmp_path / "plain")
        with pytest.raises(ValidationError, match="include_state=True.*holds no simulation state"):
            sim.load_params(tmp_path / "plain", include_state=True)


def test_include_state_refuses_a_state_of_another_minibatch_size(tmp_path):
    net = _net()
    with _sim(net, minibatch_size=2) as sim:
        sim.save_params(tmp_path / "b2", include_state=True)
    with _sim(net) as sim:
        with pytest.raises(ValidationError, match="does not match.*minibatch_size"):
            sim.load_params(tmp_path / "b2", include_state=True)
        sim.load_params(tmp_path / "b2")  # the parameters alone do fit


def test_include_non_trainable_is_the_deprecated_name_of_include_state(tmp_path):
    net = _net()
    with _sim(net) as sim:
        sim.run_steps(5)
        with pytest.warns(DeprecationWarning, match="include_non_trainable is deprecated"):
            sim.save_params(tmp_path / "old", include_non_trainable=True)
        with pytest.warns(DeprecationWarning, match="include_non_trainable is deprecated"):
            sim.load_params(tmp_path / "old", include_non_trainable=True)
        with pytest.warns(DeprecationWarning):
            sim.load_params(tmp_path / "old", include_non_trainable=False)


# --- F9: refusals and names -------------------------------------------------------------
def test_removed_and_internal_api_raise_nengo_dl_like_errors():
    net = _net()
    sim = _sim(net)
    with sim:
        with pytest.raises(SimulationError, match="compile.*fit"):
            sim.train()
        with pytest.raises(SimulationError, match="compile.*evaluate"):
            sim.loss()
        with pytest.raises(NotImplementedError, match="cannot be pickled"):
            pickle.dumps(sim)
        with pytest.raises(AttributeError, match="TensorGraph.*nengo-dl-migration.md"):
            sim.tensor_graph  # noqa: B018
        assert sim.keras_model is not None
    with pytest.raises(SimulatorClosed, match="keras_model"):
        sim.keras_model  # noqa: B018


def test_get_name_names_input_nodes_and_probes():
    pytest.importorskip("nhw.backends.tensorflow.api.io_names",
                        reason="the io_names module (naming rule) is written by another change")
    net = _net()
    with _sim(net) as sim:
        assert sim.get_name(net.a) == "a"
        assert sim.get_name(net.p) == "p"


# --- F11: get_nengo_params / freeze_params arguments ------------------------------------
def test_get_nengo_params_of_neurons_is_that_of_their_ensemble():
    net = _net()
    with _sim(net) as sim:
        want = sim.get_nengo_params(net.e)
        got = sim.get_nengo_params(net.e.neurons)
        assert isinstance(got, dict) and sorted(got) == sorted(want)
        for k in ("encoders", "gain", "bias"):
            np.testing.assert_array_equal(got[k], want[k])
        (listed,) = sim.get_nengo_params([net.e.neurons])
        np.testing.assert_array_equal(listed["bias"], want["bias"])
        assert list(sim.get_nengo_params([net.e.neurons], as_dict=True)) == ["e"]


def test_get_nengo_params_names_the_actual_type_of_a_wrong_object():
    net = _net()
    with _sim(net) as sim:
        with pytest.raises(ValueError, match=r"received <Node 'a'.*\(Node\)") as info:
            sim.get_nengo_params(net.a)
        assert "ObjView" not in str(info.value)


def test_get_nengo_params_refuses_a_direct_ensemble():
    with nengo.Network() as net:
        d = nengo.Ensemble(1, 1, neuron_type=nengo.Direct(), label="d")
        nengo.Probe(d)
    with _sim(net) as sim:
        with pytest.raises(ValueError, match="Direct"):
            sim.get_nengo_params(d)
        sim.freeze_params(net)  # freezing the network skips it


@pytest.mark.parametrize("what", ["node", "probe", "list"])
def test_freeze_params_of_an_object_without_parameters_is_a_type_error(what):
    net = _net()
    obj = {"node": net.a, "probe": net.p, "list": [net.e, net.a]}[what]
    with _sim(net) as sim:
        with pytest.raises(TypeError, match=r"freeze_params: <(Node 'a'|Probe .p.).* is a (Node|Probe), which has no"):
            sim.freeze_params(obj)


def test_freeze_params_of_something_outside_the_network_is_a_value_error():
    net = _net()
    with nengo.Network():
        other = nengo.Ensemble(3, 1)
    with _sim(net) as sim:
        with pytest.raises(ValueError, match=r"not a member.*pass .*\.ensemble"):
            sim.freeze_params(net.e.neurons)
        with pytest.raises(ValueError, match="not a member"):
            sim.freeze_params(other)
        sim.freeze_params([net.e, net.c_out])  # members of the right types still freeze
