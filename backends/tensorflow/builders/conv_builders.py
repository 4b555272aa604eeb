"""ConvInc and ConvTransposeInc (1-D and 2-D, any ``groups``) on ``tf.nn`` convolutions.

The minibatch moves from the trailing axis (loop layout) to the leading axis
(``tf.nn`` layout) around each convolution; channels-first signals are transposed
to channels-last. Grouped convolutions run one ``tf.nn`` call per group, with
nengo's layout of groups (consecutive blocks of input and output channels).
"""

from __future__ import annotations

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nengo.builder.transforms import ConvInc, ConvTransposeInc

from nhw.errors import UnsupportedFeatureError
from nhw.backends.tensorflow.builders.op_builders import BuildContext, OpBuilder, StepContext
from nhw.backends.tensorflow.registry import OPS


@OPS.register(ConvInc, ConvTransposeInc)
class ConvIncBuilder(OpBuilder):
    """``Y += conv(W, X)`` or its transpose."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        conv = op.conv
        if conv.dimensions > 2:
            raise UnsupportedFeatureError(
                f"tensorflow backend: {op}: {conv.dimensions}-D convolution is not "
                "supported (1-D and 2-D are)"
            )
        if ctx.layout.is_state(op.W):
            raise UnsupportedFeatureError(
                f"tensorflow backend: {op}: convolution kernels that change during the "
                "simulation (learning rules on a Convolution) are not supported"
            )
        self.transpose = op.is_transpose
        self.groups = conv.groups
        self.kernel_shape = tuple(conv.kernel_shape)
        self.kernels = [
            np.ascontiguousarray(k)
            for k in self._split(ctx.layout.constant(op.W).reshape(self.kernel_shape), np.swapaxes)
        ]
        self.stride = tuple(conv.strides)
        if conv.dimensions == 1:
            self.stride = (1,) + self.stride
        self.padding = conv.padding.upper()
        self.in_shape = conv.input_shape
        self.out_shape = conv.output_shape

    def _split(self, W, swapaxes) -> list:
        """Per-group kernels in tf.nn's layout: (h, w, in, out) for conv and
        (h, w, out, in) for conv_transpose (numpy or TF ``W``)."""
        if len(self.kernel_shape) == 3:  # 1-D convolution runs as 2-D with h=1
            W = W[None]
        k = W.shape[-1] // self.groups
        parts = [W[..., g * k:(g + 1) * k] for g in range(self.groups)]
        return [swapaxes(wg, 2, 3) if self.transpose else wg for wg in parts]

    def _to_nhwc(self, x, shape):
        # x: (*shape.shape, batch) -> (batch, H, W, C)
        x = tf.reshape(x, tuple(shape.shape) + (-1,))
        nd = len(shape.shape)
        if shape.channels_last:
            perm = (nd,) + tuple(range(nd))
        else:
            perm = (nd,) + tuple(range(1, nd)) + (0,)
        x = tf.transpose(x, perm)
        if shape.dimensions == 1:
            x = x[:, None]
        return x

    def _from_nhwc(self, y, shape):
        if shape.dimensions == 1:
            y = y[:, 0]
        nd = len(shape.shape)
        if shape.channels_last:
            perm = tuple(range(1, nd + 1)) + (0,)
        else:
            perm = (nd,) + tuple(range(1, nd)) + (0,)
        return tf.transpose(y, perm)

    def step(self, sc: StepContext) -> None:
        st = sc.state
        op = self.op
        x = st.read(op.X, batched=True)
        x = tf.broadcast_to(x, tuple(op.X.shape) + (st.batch,))
        x = self._to_nhwc(tf.cast(x, st.layout.dtype), self.in_shape)
        c_in = x.shape[-1] // self.groups
        kernels = self.kernels
        trained = st.param(op.W)  # trainable kernel: rebuilt from its variable
        if trained is not None:
            W = tf.reshape(tf.cast(trained, x.dtype), self.kernel_shape)
            kernels = self._split(W, lambda w, a, b: tf.transpose(w, (0, 1, 3, 2)))
        outs = []
        for g, w in enumerate(kernels):
            xg = x[..., g * c_in:(g + 1) * c_in] if self.groups > 1 else x
            if self.transpose:
                sp = tuple(self.out_shape.spatial_shape)
                if self.out_shape.dimensions == 1:
                    sp = (1,) + sp
                out_shape = (st.batch,) + sp + (w.shape[2],)
                outs.append(
                    tf.nn.conv2d_transpose(
                        xg, w, out_shape, strides=self.stride, padding=self.padding
                    )
                )
            else:
                outs.append(tf.nn.conv2d(xg, w, strides=self.stride, padding=self.padding))
        y = outs[0] if len(outs) == 1 else tf.concat(outs, axis=-1)
        y = self._from_nhwc(y, self.out_shape)
        st.write(op.Y, tf.reshape(y, tuple(op.Y.shape) + (st.batch,)), "inc")
