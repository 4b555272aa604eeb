"""Learning-rule operators (PES, BCM, Oja, Voja, RLS) lowered to TensorFlow.

Each computes ``delta`` (an update signal; nengo adds it to the weights with a
separate operator) following nengo's equations; the minibatch is the trailing
axis, so learned weights are per-sample state of shape ``(post, pre, batch)``.
"""

from __future__ import annotations

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nengo.builder.learning_rules import SimBCM, SimOja, SimPES, SimRLS, SimVoja

from nhw.backends.tensorflow.builders.op_builders import OpBuilder, StepContext
from nhw.backends.tensorflow.registry import OPS


def _vec(st, sig):
    """``sig`` as ``(n, batch)``."""
    v = st.read(sig, batched=True)
    return tf.broadcast_to(tf.reshape(v, (sig.size, -1)), (sig.size, st.batch))


@OPS.register(SimPES)
class SimPESBuilder(OpBuilder):
    """``delta = -lr * dt / n_pre * outer(error, pre_filtered)``."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        pre = _vec(st, op.pre_filtered)
        err = _vec(st, op.error)
        alpha = -op.learning_rate * self.ctx.dt / op.pre_filtered.shape[0]
        delta = alpha * err[:, None, :] * pre[None, :, :]
        st.write(op.delta, tf.reshape(delta, tuple(op.delta.shape) + (st.batch,)))


@OPS.register(SimBCM)
class SimBCMBuilder(OpBuilder):
    """``delta = lr * dt * outer(post * (post - theta), pre)``."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        pre, post, theta = _vec(st, op.pre_filtered), _vec(st, op.post_filtered), _vec(st, op.theta)
        alpha = op.learning_rate * self.ctx.dt
        delta = (alpha * post * (post - theta))[:, None, :] * pre[None, :, :]
        st.write(op.delta, delta)


@OPS.register(SimOja)
class SimOjaBuilder(OpBuilder):
    """``delta = -beta * w * (a * post^2) + outer(a * post, pre)``."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        pre, post = _vec(st, op.pre_filtered), _vec(st, op.post_filtered)
        w = st.read(op.weights, batched=True)
        alpha = op.learning_rate * self.ctx.dt
        post_sq = alpha * post * post
        delta = -op.beta * w * post_sq[:, None, :]
        delta = delta + (alpha * post)[:, None, :] * pre[None, :, :]
        st.write(op.delta, delta)


@OPS.register(SimVoja)
class SimVojaBuilder(OpBuilder):
    """Vector Oja on encoders, gated by the learning signal."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        pre = _vec(st, op.pre_decoded)
        post = _vec(st, op.post_filtered)
        enc = st.read(op.scaled_encoders, batched=True)
        learn = tf.reshape(st.read(op.learning_signal, batched=True), (1, 1, -1))
        alpha = op.learning_rate * self.ctx.dt
        scale = np.asarray(op.scale, dtype=st.layout.np_dtype)[:, None, None]
        delta = alpha * learn * (scale * post[:, None, :] * pre[None, :, :] - post[:, None, :] * enc)
        st.write(op.delta, delta)


@OPS.register(SimRLS)
class SimRLSBuilder(OpBuilder):
    """Recursive least squares: updates ``P`` (inv_gamma) and sets ``delta``."""

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        r = _vec(st, op.pre_filtered)
        err = _vec(st, op.error)
        n = op.inv_gamma.shape[0]
        P = tf.broadcast_to(st.read(op.inv_gamma, batched=True), (n, n, st.batch))
        Pr = tf.einsum("ijb,jb->ib", P, r)
        rPr1 = 1.0 / (1.0 + tf.reduce_sum(r * Pr, axis=0))
        P = P - Pr[:, None, :] * (Pr[None, :, :] * rPr1)
        st.write(op.inv_gamma, P)
        st.write(op.delta, err[:, None, :] * (-rPr1 * Pr)[None, :, :])
