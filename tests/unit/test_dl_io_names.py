"""NengoDL's names of input Nodes and Probes (``io_names``), without a Simulator.

Written from NengoDL 3.6's documented naming: labels sanitised for TensorFlow,
unlabelled objects ``"node"``/``"probe"`` with a number appended to repeats.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow.api.io_names import io_name, io_names, sanitize_name
from nhw.backends.tensorflow.runtime.predict import normalize_inputs, split_steps_input


@pytest.mark.parametrize("label, name", [
    ("my probe", "my_probe"), ("a:b", "a_b"), ("layer/1", "layer/1"), ("x-y.z", "x-y.z"),
    ("é!x(1)", "x1"), (3, "3"),
])
def test_sanitize_name(label, name):
    assert sanitize_name(label) == name


def test_unlabelled_objects_are_numbered_in_network_order():
    with nengo.Network() as net:
        n0 = nengo.Node([0])
        n1 = nengo.Node([0])
        passthrough = nengo.Node(size_in=1)
        n2 = nengo.Node([0], label="Node")  # counted with "node" (case-insensitive)
        p0 = nengo.Probe(n0)
        p1 = nengo.Probe(n1, label="my probe")
        p2 = nengo.Probe(n1)
    names = io_names(net)
    assert [names[o] for o in (n0, n1, n2)] == ["node", "node_1", "Node_2"]
    assert passthrough not in names
    assert [names[p] for p in (p0, p1, p2)] == ["probe", "my_probe", "probe_1"]
    assert io_name(net, p1) == "my_probe"


def test_subnetwork_probes_are_named_in_build_order():
    """nengo builds a sub-network's probes before its parent's: NengoDL numbers them so."""
    with nengo.Network() as net:
        a = nengo.Node([0])
        top = nengo.Probe(a)
        with nengo.Network():
            inner = nengo.Probe(a)
    names = io_names(net)
    assert names[inner] == "probe" and names[top] == "probe_1"


def test_colliding_names_stay_unique():
    with nengo.Network() as net:
        labelled = nengo.Node([0], label="node_1")
        n0 = nengo.Node([0])
        n1 = nengo.Node([0])
        steps = nengo.Node([0], label="n_steps")
    names = io_names(net)
    assert len(set(names.values())) == 4
    assert names[labelled] == "node_1" and names[n0] == "node"
    assert names[n1] == "node_2" and names[steps] == "n_steps_1"


def test_io_name_errors_name_the_object():
    with nengo.Network() as net:
        a = nengo.Node([0])
        b = nengo.Node(size_in=1)
        e = nengo.Ensemble(5, 1)
    with nengo.Network():
        other = nengo.Probe(nengo.Node([0]))
    with pytest.raises(ValidationError, match="not an input Node"):
        io_name(net, b)
    with pytest.raises(ValidationError, match="not part of this network"):
        io_name(net, other)
    with pytest.raises(ValidationError, match="Ensemble; expected a nengo.Node"):
        io_name(net, e)
    assert io_name(net, a) == "node"


def test_string_keys_match_names_then_labels():
    with nengo.Network():
        n0 = nengo.Node([0])
        n1 = nengo.Node([0], label="my input")
    names = {n0: "node", n1: "my_input"}
    x = np.ones((1, 2, 1))
    for key in ("my_input", "my input"):
        assert list(normalize_inputs({key: x}, [n0, n1], None, "predict", names)) == [n1]
    assert list(normalize_inputs({"node": x}, [n0, n1], None, "predict", names)) == [n0]
    with pytest.raises(ValidationError, match=r"expected one of \['my_input', 'node'\]"):
        normalize_inputs({"node_1": x}, [n0, n1], None, "predict", names)


def test_steps_input():
    x = {"a": np.ones((2, 3, 1)), "n_steps": np.full((2, 1), 3)}
    rest, steps, rows = split_steps_input(x, None, "predict")
    assert list(rest) == ["a"] and steps == 3 and rows == 2
    with pytest.raises(ValidationError, match=r"one positive integer repeated.*received the values \[3, 4\]"):
        split_steps_input({"n_steps": np.array([[3], [4]])}, None, "predict")
    with pytest.raises(ValidationError, match=r"\(batch, 1\) copies.*received ndarray of shape \(2,\)"):
        split_steps_input({"n_steps": np.array([3, 3])}, None, "predict")
    with pytest.raises(ValidationError, match="n_steps=5 but the 'n_steps' input holds 3"):
        split_steps_input(x, 5, "predict")


def test_generator_where_arrays_are_needed_is_named():
    with nengo.Network():
        a = nengo.Node([0], label="a")
    gen = (np.ones((1, 2, 1)) for _ in range(2))
    with pytest.raises(ValidationError, match="x must be an array.*received generator") as info:
        normalize_inputs(gen, [a], None, "predict_on_batch")
    assert "dtype object" not in str(info.value)
    with pytest.raises(ValidationError, match="input for Node 'a' is a generator; expected an array"):
        normalize_inputs({"a": gen}, [a], None, "run_steps")
