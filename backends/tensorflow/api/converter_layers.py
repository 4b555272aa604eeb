"""Built-in Keras layer handlers of the :class:`~.converter.Converter`: the registry
:data:`LAYERS` (Keras layer class -> handler).

A handler ``handler(conv, layer, ins) -> _Out`` builds the nengo objects for one call
of ``layer`` on the inputs ``ins`` (one :class:`_Out` per input tensor) and returns the
object holding the output. Shapes are one time step's, without the batch axis, in
Keras' own axis order (nengo signals are flat, row-major). A handler raises
:class:`_NotNative` for a configuration nengo cannot express: the converter then runs
the Keras layer in a TensorNode (``allow_fallback=True``) or reports the layer.
"""

from __future__ import annotations

from typing import Callable

import nengo
import numpy as np
import scipy.sparse

from nhw.backends.tensorflow._tf import keras  # the quiet import
from nhw.backends.tensorflow.api.converter_base import _NotNative, _Out
from nhw.backends.tensorflow.builders.sparse_conv import sparse_convolution

#: largest number of non-zeros of a convolution written out as a Sparse transform
MAX_SPARSE_NNZ = 20_000_000

#: Keras arguments NengoDL converts natively only with ``inference_only=True``: a
#: regulariser or constraint changes training, which the nengo network cannot repeat
TRAINING_ARGS = ("kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                 "bias_constraint")


def _weights(layer) -> dict[str, np.ndarray]:
    return {w.path.split("/")[-1]: np.asarray(w.numpy()) for w in layer.weights}


def _check_training_args(conv, layer) -> None:
    if conv.inference_only:
        return
    for arg in TRAINING_ARGS:
        if getattr(layer, arg, None) is not None:
            raise _NotNative(f"layer '{layer.name}': {arg}={getattr(layer, arg)!r} changes training, which "
                             "the nengo network cannot repeat (convert with inference_only=True)")


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") != "channels_first"


def _axis(conv, layer, axis: int, ndim: int) -> int:
    """A Keras axis (counting batch, and time in a temporal model) -> an axis of our shapes."""
    if axis < 0:
        return axis + ndim
    return axis - conv.n_prefix


def _is_identity(transform) -> bool:
    return isinstance(transform, (int, float)) and transform == 1


# --- dense and convolutions --------------------------------------------------------------
def _dense(conv, layer, ins):
    (src,) = ins
    _check_training_args(conv, layer)
    w = _weights(layer)
    kernel = w["kernel"]
    prefix = int(np.prod(src.shape[:-1]))
    transform = kernel.T if prefix == 1 else nengo.Sparse(
        (prefix * kernel.shape[1], src.size), init=scipy.sparse.kron(scipy.sparse.eye(prefix), kernel.T).tocsr())
    return conv._output(layer, ins, [transform], conv.out_shape(layer, ins), w.get("bias"), trainable=True)


def _dilate(kernel: np.ndarray, rate: tuple[int, ...]) -> np.ndarray:
    """Insert zeros between kernel taps: a dilated convolution as a plain one."""
    spatial = kernel.shape[: len(rate)]
    out = np.zeros(tuple(r * (k - 1) + 1 for k, r in zip(spatial, rate)) + kernel.shape[len(rate):])
    out[tuple(slice(None, None, r) for r in rate)] = kernel
    return out


def _conv_nnz(layer, in_shape, kernel, out_shape) -> None:
    nnz = int(np.prod(out_shape[:-1]) * np.prod(kernel.shape))
    if nnz > MAX_SPARSE_NNZ:
        raise _NotNative(f"layer '{layer.name}': a {len(in_shape) - 1}-D convolution needs a sparse transform "
                         f"with ~{nnz:.3g} non-zeros (> MAX_SPARSE_NNZ={MAX_SPARSE_NNZ:.3g})")


def _conv_transform(layer, in_shape: tuple, kernel: np.ndarray, strides: tuple, padding: str, groups: int,
                    out_shape: tuple, sparse: bool = False, channels_last: bool = True):
    """``nengo.Convolution`` for 1-D/2-D, a ``Sparse`` matrix for 3-D (no nengo builder runs
    3-D) or with ``sparse`` (targets without convolution, such as loihi-emu)."""
    if len(in_shape) <= 3 and not sparse:
        transform = nengo.Convolution(
            n_filters=kernel.shape[-1], input_shape=in_shape, kernel_size=kernel.shape[:-2],
            strides=tuple(strides), padding=padding, channels_last=channels_last, init=kernel, groups=groups)
        shape = tuple(transform.output_shape.shape)
    else:
        if not channels_last:
            raise _NotNative(f"layer '{layer.name}': data_format='channels_first' is supported only for "
                             "1-D/2-D layers written as nengo.Convolution (not sparse_convolutions)")
        _conv_nnz(layer, in_shape, kernel, out_shape)
        matrix, shape = sparse_convolution(in_shape, kernel, strides, padding, groups)
        transform = nengo.Sparse(matrix.shape, init=matrix)
    if shape != out_shape:
        raise _NotNative(f"layer '{layer.name}': nengo's output shape {shape} "
                         f"differs from Keras' {out_shape} (strides with dilation?)")
    return transform


def _conv(conv, layer, ins):
    (src,) = ins
    _check_training_args(conv, layer)
    if layer.padding not in ("valid", "same"):
        raise _NotNative(f"layer '{layer.name}': padding '{layer.padding}' is not supported (valid, same)")
    last = _channels_last(layer)
    w = _weights(layer)
    kernel = w["kernel"]
    channels = src.shape[-1] if last else src.shape[0]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        mult = kernel.shape[-1]
        kernel = kernel.reshape(kernel.shape[:2] + (1, channels * mult))
        groups = channels
    else:
        groups = getattr(layer, "groups", 1)
    kernel = _dilate(kernel, tuple(layer.dilation_rate))
    out_shape = conv.out_shape(layer, ins)
    transform = _conv_transform(layer, src.shape, kernel, layer.strides, layer.padding, groups, out_shape,
                                conv.sparse_convolutions, last)
    return conv._output(layer, ins, [transform], out_shape, w.get("bias"), trainable=True,
                        bias_axis=-1 if last else 0)


def _conv_transpose(conv, layer, ins):
    """Keras' transposed convolution is the transpose (gradient) of the forward
    convolution that maps Keras' output shape (``output_padding`` included) back to
    the input shape, with the same kernel, strides and padding."""
    (src,) = ins
    _check_training_args(conv, layer)
    if not _channels_last(layer):
        raise _NotNative(f"layer '{layer.name}': only data_format='channels_last' is supported")
    w = _weights(layer)
    kernel = _dilate(w["kernel"], tuple(layer.dilation_rate))  # kernel_size + (filters, in channels)
    out_shape = conv.out_shape(layer, ins)
    if len(src.shape) <= 3:
        try:
            transform = nengo.ConvolutionTranspose(
                n_filters=out_shape[-1], input_shape=src.shape, output_shape=out_shape,
                kernel_size=kernel.shape[:-2], strides=tuple(layer.strides), padding=layer.padding,
                channels_last=True, init=np.swapaxes(kernel, -1, -2))
        except nengo.exceptions.ValidationError as e:
            raise _NotNative(f"layer '{layer.name}': nengo's ConvolutionTranspose cannot express it ({e})") from e
    else:
        _conv_nnz(layer, out_shape, kernel, src.shape)
        forward, shape = sparse_convolution(out_shape, kernel, layer.strides, layer.padding)
        if shape != src.shape:
            raise _NotNative(f"layer '{layer.name}': the forward convolution of Keras' output shape "
                             f"{out_shape} gives {shape}, not the input shape {src.shape}")
        matrix = forward.T.tocsr()
        transform = nengo.Sparse(matrix.shape, init=matrix)
    return conv._output(layer, ins, [transform], out_shape, w.get("bias"), trainable=True)


# --- pooling -------------------------------------------------------------------------------
def _avg_pool(conv, layer, ins):
    (src,) = ins
    if getattr(layer, "padding", "valid") != "valid":
        raise _NotNative(f"layer '{layer.name}': pooling with padding='same' averages over fewer "
                         "inputs at the border, which a convolution cannot express; use 'valid'")
    last = _channels_last(layer)
    pool = tuple(layer.pool_size)
    channels = src.shape[-1] if last else src.shape[0]
    kernel = np.ones(pool + (1, channels)) / np.prod(pool)
    out_shape = conv.out_shape(layer, ins)
    transform = _conv_transform(layer, src.shape, kernel, tuple(layer.strides), "valid", channels,
                                out_shape, conv.sparse_convolutions, last)
    return conv._output(layer, ins, [transform], out_shape)


def _max_pool(conv, layer, ins):
    if not conv.max_to_avg_pool:
        raise _NotNative(f"layer '{layer.name}': max pooling has no linear nengo equivalent; "
                         "pass max_to_avg_pool=True to convert it to average pooling")
    return (_global_avg_pool if "Global" in type(layer).__name__ else _avg_pool)(conv, layer, ins)


def _global_avg_pool(conv, layer, ins):
    (src,) = ins
    last = _channels_last(layer)
    channels = src.shape[-1] if last else src.shape[0]
    positions = src.size // channels
    block = np.eye(channels) / positions
    # channels-last inputs interleave channels (position-major); channels-first ones
    # hold each channel's positions contiguously
    transform = np.tile(block, positions) if last else np.repeat(block, positions, axis=1)
    return conv._output(layer, ins, [transform], conv.out_shape(layer, ins))


# --- normalisation and element-wise ---------------------------------------------------------
def _batch_norm(conv, layer, ins):
    (src,) = ins
    if not conv.inference_only and layer.trainable:
        raise _NotNative(f"layer '{layer.name}': a trainable BatchNormalization normalises with batch "
                         "statistics in training; convert with inference_only=True (or set "
                         "layer.trainable=False) to fold its moving statistics into a scale and shift")
    axes = [layer.axis] if isinstance(layer.axis, int) else list(layer.axis)
    if len(axes) != 1:
        raise _NotNative(f"layer '{layer.name}': BatchNormalization over several axes {axes}")
    axis = _axis(conv, layer, axes[0], len(src.shape))
    w = _weights(layer)
    channels = src.shape[axis]
    gamma = w.get("gamma", np.ones(channels))
    beta = w.get("beta", np.zeros(channels))
    scale = gamma / np.sqrt(w["moving_variance"] + layer.epsilon)
    shift = beta - w["moving_mean"] * scale
    view = [1] * len(src.shape)
    view[axis] = channels
    full_scale = np.broadcast_to(scale.reshape(view), src.shape).reshape(-1)
    full_shift = np.broadcast_to(shift.reshape(view), src.shape).reshape(-1)
    return conv._output(layer, ins, [nengo.Dense((src.size, src.size), init=full_scale)], src.shape, full_shift)


def _identity(conv, layer, ins):
    (src,) = ins
    return _Out(src.obj, conv.out_shape(layer, ins), src.spiking_source)


def _activation(conv, layer, ins):
    return conv._output(layer, ins, [1.0], ins[0].shape)


def _relu_layer(conv, layer, ins):
    if layer.threshold or layer.max_value is not None:
        raise _NotNative(f"layer '{layer.name}': ReLU with threshold/max_value has no nengo neuron type")
    if layer.negative_slope:
        return conv._output(layer, ins, [1.0], ins[0].shape, activation="leaky_relu",
                            negative_slope=layer.negative_slope)
    return conv._output(layer, ins, [1.0], ins[0].shape, activation="relu")


def _leaky_relu_layer(conv, layer, ins):
    return conv._output(layer, ins, [1.0], ins[0].shape, activation="leaky_relu",
                        negative_slope=layer.negative_slope)


def _add(conv, layer, ins):
    return conv._output(layer, ins, [1.0] * len(ins), ins[0].shape)


def _average(conv, layer, ins):
    return conv._output(layer, ins, [1.0 / len(ins)] * len(ins), ins[0].shape)


# --- index layers: concatenation, padding, cropping, upsampling ---------------------------
def _indexed(conv, layer, src: _Out, out_shape: tuple, post_index=None, pre_index=None) -> _Out:
    """A passthrough Node of ``out_shape``; ``src`` (or ``src[pre_index]``) feeds
    ``node[post_index]`` (all of it if None). Unfed elements stay zero."""
    node = nengo.Node(size_in=int(np.prod(out_shape)), label=layer.name)
    pre = src if pre_index is None else _Out(src.obj[np.asarray(pre_index).reshape(-1)], src.shape,
                                              src.spiking_source)
    conv._connect(pre, node if post_index is None else node[np.asarray(post_index).reshape(-1)])
    return _Out(node, out_shape)


def _concatenate(conv, layer, ins):
    out_shape = conv.out_shape(layer, ins)
    axis = _axis(conv, layer, layer.axis, len(out_shape))
    if not 0 <= axis < len(out_shape):
        raise _NotNative(f"layer '{layer.name}': cannot concatenate along the batch (or time) axis {layer.axis}")
    index = np.arange(int(np.prod(out_shape))).reshape(out_shape)
    parts = np.split(index, np.cumsum([i.shape[axis] for i in ins])[:-1], axis=axis)
    node = nengo.Node(size_in=index.size, label=layer.name)
    for src, part in zip(ins, parts):
        conv._connect(src, node[part.reshape(-1)])
    return _Out(node, out_shape)


def _spatial(layer, shape: tuple) -> tuple[list[int], bool]:
    """The spatial axes of ``shape`` (channels last unless the layer says otherwise)."""
    last = _channels_last(layer)
    return (list(range(len(shape) - 1)) if last else list(range(1, len(shape)))), last


def _pairs(value, n: int) -> list[tuple[int, int]]:
    """Keras' padding/cropping: an int, one (a, b) pair (1-D) or one pair per axis."""
    if isinstance(value, int):
        return [(value, value)] * n
    value = tuple(value)
    if n == 1 and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [value]
    return [(v, v) if isinstance(v, int) else tuple(v) for v in value]


def _zero_padding(conv, layer, ins):
    (src,) = ins
    out_shape = conv.out_shape(layer, ins)
    axes, _ = _spatial(layer, out_shape)
    index = np.arange(int(np.prod(out_shape))).reshape(out_shape)
    inner = [slice(None)] * len(out_shape)
    for ax, (before, after) in zip(axes, _pairs(layer.padding, len(axes))):
        inner[ax] = slice(before, out_shape[ax] - after)
    return _indexed(conv, layer, src, out_shape, post_index=index[tuple(inner)])


def _cropping(conv, layer, ins):
    (src,) = ins
    out_shape = conv.out_shape(layer, ins)
    axes, _ = _spatial(layer, src.shape)
    index = np.arange(src.size).reshape(src.shape)
    inner = [slice(None)] * len(src.shape)
    for ax, (before, after) in zip(axes, _pairs(layer.cropping, len(axes))):
        inner[ax] = slice(before, src.shape[ax] - after)
    return _indexed(conv, layer, src, out_shape, pre_index=index[tuple(inner)])


def _upsampling(conv, layer, ins):
    (src,) = ins
    if getattr(layer, "interpolation", "nearest") != "nearest":
        raise _NotNative(f"layer '{layer.name}': interpolation={layer.interpolation!r} (only 'nearest' "
                         "repeats inputs, which index connections express)")
    out_shape = conv.out_shape(layer, ins)
    axes, _ = _spatial(layer, src.shape)
    sizes = [layer.size] * len(axes) if isinstance(layer.size, int) else list(layer.size)
    index = np.arange(src.size).reshape(src.shape)
    for ax, size in zip(axes, sizes):
        index = np.repeat(index, size, axis=ax)
    if index.shape != out_shape:
        raise _NotNative(f"layer '{layer.name}': repeating gives shape {index.shape}, Keras {out_shape}")
    return _indexed(conv, layer, src, out_shape, pre_index=index)


L = keras.layers
#: Keras layer class -> handler (the first isinstance match wins; order matters
#: only where classes inherit from each other, e.g. DepthwiseConv2D).
LAYERS: dict[type, Callable] = {
    L.Dense: _dense,
    L.DepthwiseConv2D: _conv,
    L.Conv1D: _conv,
    L.Conv2D: _conv,
    L.Conv3D: _conv,
    L.Conv1DTranspose: _conv_transpose,
    L.Conv2DTranspose: _conv_transpose,
    L.Conv3DTranspose: _conv_transpose,
    L.AveragePooling1D: _avg_pool,
    L.AveragePooling2D: _avg_pool,
    L.AveragePooling3D: _avg_pool,
    L.MaxPooling1D: _max_pool,
    L.MaxPooling2D: _max_pool,
    L.MaxPooling3D: _max_pool,
    L.GlobalAveragePooling1D: _global_avg_pool,
    L.GlobalAveragePooling2D: _global_avg_pool,
    L.GlobalAveragePooling3D: _global_avg_pool,
    L.GlobalMaxPooling1D: _max_pool,
    L.GlobalMaxPooling2D: _max_pool,
    L.GlobalMaxPooling3D: _max_pool,
    L.BatchNormalization: _batch_norm,
    L.Flatten: _identity,
    L.Reshape: _identity,
    L.Dropout: _identity,  # SpatialDropout1D/2D/3D are subclasses
    L.GaussianNoise: _identity,
    L.GaussianDropout: _identity,
    L.AlphaDropout: _identity,
    L.ActivityRegularization: _identity,
    L.Identity: _identity,
    L.Activation: _activation,
    L.ReLU: _relu_layer,
    L.LeakyReLU: _leaky_relu_layer,
    L.Add: _add,
    L.Average: _average,
    L.Concatenate: _concatenate,
    L.ZeroPadding1D: _zero_padding,
    L.ZeroPadding2D: _zero_padding,
    L.ZeroPadding3D: _zero_padding,
    L.Cropping1D: _cropping,
    L.Cropping2D: _cropping,
    L.Cropping3D: _cropping,
    L.UpSampling1D: _upsampling,
    L.UpSampling2D: _upsampling,
    L.UpSampling3D: _upsampling,
}
del L


def handler_for(layer) -> Callable | None:
    """The built-in handler of ``layer`` (its class's nearest registered ancestor), or None."""
    for cls in type(layer).__mro__:
        if cls in LAYERS:
            return LAYERS[cls]
    return None
