"""Convolutions written out as sparse matrices (numpy/scipy only).

nengo's ``Convolution`` transform builds only for 1-D and 2-D inputs, and some
targets (loihi-emu) map no convolution at all; an exact ``Sparse`` transform
expresses any N-d, grouped, strided convolution for every target.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse


def same_pad(size: int, kernel: int, stride: int, out: int) -> int:
    """Zeros before the input of a 'same' convolution (TensorFlow's convention)."""
    return max((out - 1) * stride + kernel - size, 0) // 2


def sparse_convolution(in_shape: tuple, kernel: np.ndarray, strides: tuple, padding: str, groups: int = 1,
                 out_spatial: tuple | None = None) -> tuple[scipy.sparse.csr_matrix, tuple]:
    """An N-d (grouped) channels-last convolution as a sparse ``(out size, in size)`` matrix.

    ``kernel`` has shape ``kernel_size + (in_channels // groups, filters)``; the output
    spatial shape is the usual one unless ``out_spatial`` is given.
    """
    spatial, c_in = np.array(in_shape[:-1]), in_shape[-1]
    ksize, (c_grp, c_out) = np.array(kernel.shape[:-2]), kernel.shape[-2:]
    strides = np.array(strides)
    if out_spatial is None:
        out_spatial = -(-(spatial - (ksize - 1 if padding == "valid" else 0)) // strides)
    out_spatial = np.array(out_spatial)
    pad = np.zeros_like(spatial) if padding == "valid" else np.array(
        [same_pad(*a) for a in zip(spatial, ksize, strides, out_spatial)])
    # channel pairs within each group: input channel, output channel, kernel row
    per_out = c_out // groups
    co = np.arange(c_out)
    ci = (co // per_out)[:, None] * c_grp + np.arange(c_grp)[None, :]  # (c_out, c_grp)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in out_spatial], indexing="ij"), -1).reshape(-1, len(spatial))
    out_pos = np.arange(len(grid))
    rows, cols, data = [], [], []
    for k in np.ndindex(*ksize):
        pos = grid * strides + np.array(k) - pad
        ok = np.all((pos >= 0) & (pos < spatial), axis=1)
        in_pos = np.ravel_multi_index(tuple(pos[ok].T), tuple(spatial))
        w = kernel[k].T  # (c_out, c_grp), matching ci
        rows.append(np.broadcast_to((out_pos[ok] * c_out)[:, None, None] + co[None, :, None],
                                    (ok.sum(), c_out, c_grp)).ravel())
        cols.append(((in_pos * c_in)[:, None, None] + ci[None]).ravel())
        data.append(np.broadcast_to(w, (ok.sum(), c_out, c_grp)).ravel())
    out_shape = tuple(int(n) for n in out_spatial) + (c_out,)
    matrix = scipy.sparse.coo_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
        shape=(int(np.prod(out_shape)), int(np.prod(in_shape)))).tocsr()
    matrix.eliminate_zeros()
    return matrix, out_shape
