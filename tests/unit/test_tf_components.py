"""Unit tests of the TensorFlow simulator's building blocks (no simulation)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from nengo.builder.signal import Signal  # noqa: E402
from nengo.exceptions import ValidationError  # noqa: E402
import nengo  # noqa: E402

from nhw.errors import UnsupportedFeatureError  # noqa: E402
from nhw.backends.tensorflow.runtime.predict import check_batch, normalize_inputs  # noqa: E402
from nhw.backends.tensorflow.registry import Registry  # noqa: E402
from nhw.backends.tensorflow.runtime.signals import SignalLayout, StepState, view_indices  # noqa: E402


def test_view_indices_follow_numpy_views():
    base = Signal(np.arange(12.0).reshape(3, 4), name="base")
    for view in (base, base[1:], base[:, 1], base[::2, 1:3], base.reshape(12)[3:9:2]):
        expected = np.asarray(view.initial_value).reshape(-1)
        assert np.array_equal(np.arange(12.0)[view_indices(view)], expected)


def test_layout_state_and_constants():
    import tensorflow as tf
    from nengo.builder.operator import Copy

    src = Signal(np.arange(4.0), name="src")
    dst = Signal(np.zeros(6), name="dst")
    op = Copy(src, dst[1:5])
    lay = SignalLayout([op], [], "float32")
    assert lay.is_state(dst) and not lay.is_state(src)
    assert [seg[:2] for seg in lay.segments(dst.base)] == [(0, 1), (1, 5), (5, 6)]
    st = StepState(lay, [tf.constant(v) for v in lay.initial_slots(2)], batch=2)
    st.write(dst[1:5], tf.reshape(st.read(src, batched=True), (4, 1)), "inc")
    st.write_flat(dst, tf.ones((2, 2)), "inc", idx=np.array([0, 0]))
    got = lay.assemble(dst, [t.numpy() for t in st.tensors])
    assert got.shape == (6, 2)
    assert np.allclose(got[:, 0], [2, 0, 1, 2, 3, 0]) and np.allclose(got[:, 1], got[:, 0])


def test_scattered_writes_match_numpy():
    """Writes at scattered indices (a gather from [current, new]; repeats: scatter-add) across segments."""
    import tensorflow as tf
    from nengo.builder.operator import Copy

    src = Signal(np.arange(3.0), name="src")
    dst = Signal(np.arange(10.0), name="dst")
    lay = SignalLayout([Copy(src, dst[2:6])], [], "float32")  # cuts dst into three segments
    assert len(lay.segments(dst.base)) == 3
    st = StepState(lay, [tf.constant(v) for v in lay.initial_slots(2)], batch=2)
    expected = np.repeat(np.arange(10.0)[:, None], 2, axis=1)
    cases = [("set", [9, 0, 4]), ("inc", [7, 3, 1]), ("inc", [5, 5, 8]), ("set", [6, 2])]
    for k, (mode, idx) in enumerate(cases):
        value = np.arange(2 * len(idx), dtype=np.float32).reshape(len(idx), 2) + 10 * k
        st.write_flat(dst, tf.constant(value), mode, idx=np.array(idx))
        if mode == "set":
            expected[idx] = value
        else:
            np.add.at(expected, idx, value)
    got = lay.assemble(dst, [t.numpy() for t in st.tensors])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("flat", [False, True])
def test_batch_major_slots_read_and_write_like_the_others(flat):
    # a base the loop holds (batch, n): every read/write path must see the same
    # values as for a (n, batch) base, and the storage order must round-trip
    import tensorflow as tf
    from nengo.builder.operator import Copy

    src = Signal(np.arange(4.0), name="src")
    dst = Signal(np.zeros(6), name="dst")
    lay = SignalLayout([Copy(src, dst[1:5])], [], "float32", batch_major=[dst.base], flat=[dst.base] if flat else [])
    assert lay.is_batch_major(dst) and not lay.is_batch_major(src)
    init = [tf.constant(v) for v in lay.initial_slots(2)]
    loop = lay.to_loop_order(init)
    assert [tuple(t.shape) for t in loop] == ([(2,), (8,), (2,)] if flat else [(2, 1), (2, 4), (2, 1)])
    st = StepState(lay, loop, batch=2)
    value = tf.constant(np.arange(8.0).reshape(4, 2), tf.float32)
    st.write_flat(dst[1:5], value)
    np.testing.assert_array_equal(st.read_flat(dst[2:4]).numpy(), value.numpy()[1:3])
    np.testing.assert_array_equal(st.read_batch_major(dst[1:5]).numpy(), value.numpy().T)
    st.write_batch_major(dst[2:4], tf.ones((2, 2)), "inc")
    st.write_flat(dst, tf.fill((2, 2), 5.0), "inc", idx=np.array([0, 5]))
    got = lay.assemble(dst, [t.numpy() for t in lay.to_storage_order(st.tensors)])
    want = np.concatenate([[[5.0, 5.0]], value.numpy() + [[0, 0], [1, 1], [1, 1], [0, 0]], [[5.0, 5.0]]])
    np.testing.assert_array_equal(got, want)


def test_flat_batch_last_slots_read_and_write_like_the_others():
    # a batch-last base the loop holds flat (n * batch,): reads, writes and the
    # storage order must be those of the (n, batch) layout; batch-major bases
    # named as flat batch-last stay batch-major
    import tensorflow as tf
    from nengo.builder.operator import Copy

    src = Signal(np.arange(4.0), name="src")
    dst = Signal(np.zeros(6), name="dst")
    other = Signal(np.zeros(2), name="other")
    ops = [Copy(src, dst[1:5]), Copy(src[:2], other)]
    results = []
    for flat in ([], [dst.base, other.base]):
        lay = SignalLayout(ops, [], "float32", batch_major=[other.base], flat_batch_last=flat)
        lay.finalize()
        assert not lay.flat_last_slots & lay.batch_major_slots
        loop = lay.to_loop_order([tf.constant(v) for v in lay.initial_slots(2)])
        dst_shapes = [tuple(loop[slot].shape) for _, _, slot in lay.segments(dst.base)]
        assert dst_shapes == ([(2,), (8,), (2,)] if flat else [(1, 2), (4, 2), (1, 2)])
        st = StepState(lay, loop, batch=2)
        value = tf.constant(np.arange(8.0).reshape(4, 2), tf.float32)
        st.write_flat(dst[1:5], value)
        np.testing.assert_array_equal(st.read_flat(dst[2:4]).numpy(), value.numpy()[1:3])
        st.write(dst[2:4], tf.ones((2, 2)), "inc")
        st.write_flat(dst, tf.fill((2, 2), 5.0), "inc", idx=np.array([0, 5]))
        st.write_flat(dst, tf.fill((2, 2), 1.0), "set", idx=np.array([4, 1]))
        results.append(lay.assemble(dst, [t.numpy() for t in lay.to_storage_order(st.tensors)]))
    want = np.array([[5, 5], [1, 1], [3, 4], [5, 6], [1, 1], [5, 5]], dtype=np.float32)
    np.testing.assert_array_equal(results[0], want)
    np.testing.assert_array_equal(results[1], want)


def test_elementwise_neuron_bases_are_those_only_builtin_steps_write():
    from nengo.builder.neurons import SimNeurons
    from nengo.builder.operator import Copy

    from nhw.backends.tensorflow.builders.neuron_builders import elementwise_neuron_bases
    from nhw.backends.neurons import LeakyReLU

    def pop(neurons, n=3, **state):
        J = Signal(np.zeros(n), name="J")
        out = Signal(np.zeros(n), name="out")
        sigs = {k: Signal(np.zeros(n), name=k) for k in state}
        return SimNeurons(neurons, J, out, state=sigs), out, sigs

    lif, lif_out, lif_state = pop(nengo.LIF(), voltage=0, refractory_time=0)
    rnd, rnd_out, _ = pop(nengo.StochasticSpiking(nengo.LIFRate()))
    extra, extra_out, _ = pop(LeakyReLU())  # registered extras take (n, batch)
    shared, shared_out, _ = pop(nengo.RectifiedLinear())
    also = Copy(Signal(np.ones(3), name="src"), shared_out, inc=True)  # not only a neuron step writes it
    got = set(elementwise_neuron_bases([lif, rnd, extra, shared, also]))
    assert got == {lif_out.base, lif_state["voltage"].base, lif_state["refractory_time"].base}


def test_matrix_slots_hold_one_matrix_and_read_like_the_others():
    # a batch-major loop variable holding exactly one (rows, cols) matrix is kept
    # (batch, rows, cols); one spanning only part of a matrix stays (batch, n);
    # reads, writes and the storage order are those of any other slot
    import tensorflow as tf
    from nengo.builder.operator import Copy

    w = Signal(np.zeros((2, 3)), name="w")
    half = Signal(np.zeros((2, 2)), name="half")
    src = Signal(np.arange(6.0).reshape(2, 3), name="src")
    ops = [Copy(src, w, inc=True), Copy(src[:, :2], half, inc=True), Copy(src[0, :2], half[0], inc=True)]
    lay = SignalLayout(ops, [], "float32", batch_major=[w.base, half.base], matrices=[w, half])
    lay.finalize()
    w_slot = lay.segments(w.base)[0][2]
    assert lay.matrix_slots == {w_slot: (2, 3)}  # half is cut in two by its row view
    loop = lay.to_loop_order([tf.constant(v) for v in lay.initial_slots(2)])
    assert tuple(loop[w_slot].shape) == (2, 2, 3)
    st = StepState(lay, loop, batch=2)
    value = tf.constant(np.arange(12.0).reshape(2, 6), tf.float32)  # (batch, n)
    st.write_batch_major(w, value, "inc")
    assert tuple(st.tensors[w_slot].shape) == (2, 2, 3)
    np.testing.assert_array_equal(st.read_batch_major(w[1]).numpy(), value.numpy()[:, 3:])
    np.testing.assert_array_equal(st.read_flat(w).numpy(), value.numpy().T)
    got = lay.assemble(w, [t.numpy() for t in lay.to_storage_order(st.tensors)])
    np.testing.assert_array_equal(got, value.numpy().T)


def test_registry_lookup_and_error():
    reg = Registry("thing")

    class A:
        pass

    class B(A):
        pass

    @reg.register(A)
    class ABuilder:
        pass

    assert reg.lookup(B) is ABuilder and reg.lookup(B, exact=True) is None
    with pytest.raises(UnsupportedFeatureError, match="no builder for thing type 'int'; supported: A"):
        reg.get(int)


def nodes():
    with nengo.Network():
        a = nengo.Node(np.zeros(3), label="a")
        b = nengo.Node(lambda t: [t, t], label="b")
    return [a, b]


def test_normalize_inputs_forms():
    a, b = nodes()
    x = np.ones((2, 4, 3))
    y = np.zeros((2, 4, 2))
    assert set(normalize_inputs(x, [a, b], None, "f")) == {a}
    assert set(normalize_inputs([x, y], [a, b], None, "f")) == {a, b}
    assert set(normalize_inputs({"b": y, a: x}, [a, b], 4, "f")) == {a, b}
    assert normalize_inputs(None, [a, b], None, "f") == {}
    assert check_batch(normalize_inputs(x, [a, b], None, "f"), 2, "f") == 2


@pytest.mark.parametrize(
    "x, n_steps, match",
    [
        (np.ones((2, 4)), None, r"Node 'a' has shape \(2, 4\); expected \(batch, n_steps, 3\)"),
        ({"c": np.ones((2, 4, 3))}, None, "'c' is not the label of an input Node"),
        ({"a": np.ones((2, 4, 3)), "b": np.ones((2, 5, 2))}, None, "same batch size and number of steps"),
        (np.ones((2, 4, 3)), 5, r"n_steps=5 but the input for Node 'a' has 4 steps"),
        (np.array([[[1, 2, np.inf]]]), None, r"contains inf at index \(0, 0, 2\)"),
        (np.array([[["x", "y", "z"]]]), None, "expected numbers"),
    ],
)
def test_normalize_inputs_errors(x, n_steps, match):
    with pytest.raises(ValidationError, match=match):
        normalize_inputs(x, nodes(), n_steps, "predict")


def test_check_batch_errors():
    a, b = nodes()
    data = normalize_inputs(np.ones((3, 1, 3)), [a, b], None, "f")
    with pytest.raises(ValidationError, match="batch size 3 .* expected 2"):
        check_batch(data, 2, "predict_on_batch")
    with pytest.raises(ValidationError, match="expected a multiple of 2"):
        check_batch(data, 2, "predict", multiple=True)
    assert check_batch(data, 1, "predict", multiple=True) == 3


def test_package_import_is_cheap():
    import subprocess
    import sys

    code = "import sys, nhw.backends.tensorflow; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
