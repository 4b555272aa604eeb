"""The fusion barrier and per-sample matvec used by the TensorFlow dot builders.

``_materialize`` must be an exact identity (it only changes how XLA fuses), and
``_batched_matvec`` must equal the einsum it replaces; a learned (PES) network
must still match nengo's reference simulator, with and without a minibatch.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.builders.op_builders import _batched_matvec, _materialize
from pes_nets import pes_net


class _Ctx:
    def __init__(self, step: int) -> None:
        self.step = tf.constant(step, tf.int64)


@pytest.mark.parametrize("step", [1, 7, 123456789])
def test_materialize_is_exact_identity(step):
    # normal numbers only: TensorFlow's CPU kernels flush subnormals to zero in
    # every arithmetic op, so they never reach a builder's operands anyway
    x = np.array([0.0, -0.0, 1.2e-38, -3.5, 1e30, 3.4e38, np.inf, -np.inf, 1000.0], np.float32)
    out = _materialize(tf.constant(x), _Ctx(step)).numpy()
    np.testing.assert_array_equal(out, x)
    assert np.array_equal(np.signbit(out), np.signbit(x))


def test_materialize_is_exact_under_xla():
    x = np.random.RandomState(0).randn(50, 4).astype(np.float32)

    class _TraceCtx:
        def __init__(self, step) -> None:
            self.step = step

    @tf.function(jit_compile=True)
    def f(v, step):
        return _materialize(v, _TraceCtx(step))

    np.testing.assert_array_equal(f(tf.constant(x), tf.constant(3, tf.int64)).numpy(), x)


def test_batched_matvec_matches_einsum():
    rng = np.random.RandomState(1)
    a = rng.randn(3, 5, 7, 4).astype(np.float32)
    x = rng.randn(3, 7, 4).astype(np.float32)
    got = _batched_matvec(tf.constant(a), tf.constant(x), axis=2).numpy()
    want = np.einsum("krcb,kcb->krb", a.astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    a2, x2 = a[0], x[0]
    got2 = _batched_matvec(tf.constant(a2), tf.constant(x2), axis=1).numpy()
    np.testing.assert_allclose(got2, np.einsum("ijb,jb->ib", a2, x2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch", [None, 3])
def test_learned_weights_match_reference(batch):
    from nhw.backends.tensorflow import Simulator

    net, probes = pes_net()
    p, w = probes["post"], probes["weights"]
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    # 200 steps > SMALL_RUN: the XLA-compiled loop, where the fusion matters
    with Simulator(net, progress_bar=False, minibatch_size=batch) as sim:
        sim.run_steps(200)
    got_p, got_w = sim.data[p], sim.data[w]
    if batch is not None:
        for k in range(batch):  # every sample runs the same network
            np.testing.assert_allclose(got_p[k], got_p[0], rtol=0, atol=1e-6)
        got_p, got_w = got_p[0], got_w[0]
    np.testing.assert_allclose(got_w, ref.data[w], atol=1e-4)
    np.testing.assert_allclose(got_p, ref.data[p], atol=2e-3)
