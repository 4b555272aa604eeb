"""nengo's convolution transforms as sparse matrices, and their population axons.

A ``nengo.Convolution`` (or ``nengo.transforms.ConvolutionTranspose``) maps an input
image to an output image with one small kernel shared by every position.  The chip
stores such a kernel once per distinct boundary pattern and addresses it through
*population axons* (one input axon per input pixel; the spike's *atom* is its
channel), see :class:`nhw.hw_emulator.shared_synapses.SharedSynapseGroup`.  This
module gives the two things that mapping needs from nengo's transform object:

* :func:`conv_coo`: the transform as ``(rows, cols, values)`` of its
  ``size_out x size_in`` matrix (what nengo's ``ConvInc``/``ConvTransposeInc`` compute,
  1-D or 2-D, strides, ``"same"``/``"valid"`` padding, channels first or last, groups);
* :func:`pixel_atoms`: each input index's pixel (its population axon) and channel.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np

from nhw.errors import UnsupportedFeatureError

#: The convolution transform types the chip maps (shared kernels on population axons).
CONV_TYPES = (nengo.Convolution, nengo.transforms.ConvolutionTranspose)


def is_conv(transform: Any) -> bool:
    """Whether ``transform`` is one of nengo's convolution transforms."""
    return isinstance(transform, CONV_TYPES)


def _flat_index(spatial: np.ndarray, channel: np.ndarray, shape: Any) -> np.ndarray:
    """Flat index of (spatial flat index, channel) pairs in a ``ChannelShape``'s order."""
    if shape.channels_last:
        return spatial * shape.n_channels + channel
    return channel * int(np.prod(shape.spatial_shape)) + spatial


def pixel_atoms(shape: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (spatial flat index) and channel of every flat index of ``shape``.

    Parameters
    ----------
    shape
        A ``nengo.transforms.ChannelShape`` (a transform's ``input_shape``).
    """
    idx = np.arange(shape.size)
    n_pix = int(np.prod(shape.spatial_shape))
    if shape.channels_last:
        return idx // shape.n_channels, idx % shape.n_channels
    return idx % n_pix, idx // n_pix


def _same_pad_before(n_in: int, n_out: int, stride: int, k: int) -> int:
    # nengo pads 'same' inputs TensorFlow's way: the smaller half before
    return max((n_out - 1) * stride + k - n_in, 0) // 2


def _forward_coo(kernel: np.ndarray, in_shape: Any, out_shape: Any, strides: tuple, padding: str,
                 groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, cols, values)`` of a forward convolution ``in_shape -> out_shape``.

    ``kernel`` has shape ``kernel_size + (in_channels // groups, out_channels)``.
    """
    ks = kernel.shape[:-2]
    s_in, s_out = tuple(in_shape.spatial_shape), tuple(out_shape.spatial_shape)
    pad = [(_same_pad_before(s_in[d], s_out[d], strides[d], ks[d]) if padding == "same" else 0)
           for d in range(len(ks))]
    cig, n_f = kernel.shape[-2], kernel.shape[-1]
    fog = n_f // groups
    # channel pairs (c_in, f) that share a group, and the kernel's channel index of c_in
    f = np.arange(n_f)
    g = f // fog
    c_local = np.repeat(np.arange(cig)[:, None], n_f, axis=1)  # (cig, n_f)
    c_in = c_local + (g * cig)[None, :]
    c_local, c_in, f_all = c_local.ravel(), c_in.ravel(), np.tile(f, cig)
    o_grid = np.indices(s_out).reshape(len(s_out), -1)  # (D, n_out_pixels)
    o_flat = np.ravel_multi_index(o_grid, s_out)
    rows, cols, vals = [], [], []
    for kpos in np.ndindex(*ks):
        i_grid = o_grid * np.asarray(strides)[:, None] + (np.asarray(kpos) - np.asarray(pad))[:, None]
        ok = np.all((i_grid >= 0) & (i_grid < np.asarray(s_in)[:, None]), axis=0)
        if not ok.any():
            continue
        i_flat = np.ravel_multi_index(i_grid[:, ok], s_in)
        w = kernel[kpos][c_local, f_all]  # one weight per channel pair
        rows.append(_flat_index(o_flat[ok][:, None], f_all[None, :], out_shape).ravel())
        cols.append(_flat_index(i_flat[:, None], c_in[None, :], in_shape).ravel())
        vals.append(np.broadcast_to(w, (int(ok.sum()), w.size)).ravel())
    if not rows:
        z = np.zeros(0)
        return z.astype(np.int64), z.astype(np.int64), z
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals).astype(np.float64)


def conv_coo(transform: Any, kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The convolution as ``(rows, cols, values)`` of its ``size_out x size_in`` matrix.

    Parameters
    ----------
    transform
        A ``nengo.Convolution`` or ``nengo.transforms.ConvolutionTranspose``.
    kernel
        The kernel as nengo built it (``sim.data[conn].weights``), shape
        ``kernel_size + (input_channels // groups, n_filters)``.

    Raises
    ------
    UnsupportedFeatureError
        More than 2 spatial dimensions (nengo's own simulator refuses them too).
    """
    if transform.dimensions > 2:
        raise UnsupportedFeatureError(
            f"{type(transform).__name__} with {transform.dimensions} spatial dimensions: "
            "expected 1 or 2 (as nengo's reference simulator)"
        )
    kernel = np.asarray(kernel, dtype=np.float64)
    if isinstance(transform, nengo.transforms.ConvolutionTranspose):
        # the transpose (adjoint) of the forward convolution output_shape -> input_shape
        # whose kernel has its two channel axes swapped
        fwd = np.swapaxes(kernel, -1, -2)
        r, c, v = _forward_coo(fwd, transform.output_shape, transform.input_shape, tuple(transform.strides),
                               transform.padding, 1)
        return c, r, v
    return _forward_coo(kernel, transform.input_shape, transform.output_shape, tuple(transform.strides),
                        transform.padding, int(getattr(transform, "groups", 1)))


def conv_dense(transform: Any, kernel: np.ndarray) -> np.ndarray:
    """The convolution as a dense ``size_out x size_in`` matrix (host-side use)."""
    r, c, v = conv_coo(transform, kernel)
    m = np.zeros((transform.size_out, transform.size_in))
    np.add.at(m, (r, c), v)
    return m
