"""A spiking convolutional classifier of scikit-learn's 8x8 digits (``configs/digits_cnn.yaml``).

``Node(8x8x1) -> conv 3x3 (stride 1) -> spiking ReLU (6x6xF1) -> conv 3x3 (stride 2)
-> spiking ReLU (2x2xF2) -> dense -> Node(10)`` (logits).

The convolutions are built as ``nengo.Convolution`` transforms or, with
``transform="sparse"`` (the default), as ``nengo.Sparse`` transforms holding the same
kernel at every position: quantisation-aware training quantises Sparse transforms
(as loihi-emu programs them: synapses between the two convolutional layers) but not
``nengo.Convolution``. A Sparse transform trains every position's copy of the kernel
separately, so after training the layers are locally connected rather than strictly
convolutional. Also the zoo entry ``network.name: digits_cnn``.

Layer outputs have amplitude ``1 / max_rate``, so a neuron at its top rate outputs
about 1 and every layer sees inputs of the same order (the "firing-rate scaling" of
converted networks).
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np

from nhw.backends.neuron_types import NEURON_TYPES
__all__ = ["digits_cnn"]


def _conv_indices(shape_in: tuple, k: int, stride: int, filters: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(indices, kernel index, shape_out)`` of a valid 2-D convolution as a sparse matrix (channels last)."""
    h, w, c = shape_in
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    rows, cols, kern = [], [], []
    for y in range(ho):
        for x in range(wo):
            for f in range(filters):
                out = (y * wo + x) * filters + f
                for dy in range(k):
                    for dx in range(k):
                        for ch in range(c):
                            rows.append(out)
                            cols.append(((y * stride + dy) * w + x * stride + dx) * c + ch)
                            kern.append(((dy * k + dx) * c + ch) * filters + f)
    return np.stack([rows, cols], axis=1), np.asarray(kern), (ho, wo, filters)


def _conv(shape_in: tuple, k: int, stride: int, filters: int, kind: str, rng: np.random.RandomState):
    """A Glorot-uniform convolution as ``(transform, shape_out)``."""
    fan_in, fan_out = k * k * shape_in[2], k * k * filters
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    kernel = rng.uniform(-limit, limit, (k, k, shape_in[2], filters))
    if kind == "convolution":
        t = nengo.Convolution(filters, shape_in, kernel_size=(k, k), strides=(stride, stride), init=kernel)
        return t, t.output_shape.shape
    idx, kern, shape_out = _conv_indices(shape_in, k, stride, filters)
    n_in, n_out = int(np.prod(shape_in)), int(np.prod(shape_out))
    return nengo.Sparse((n_out, n_in), indices=idx, init=kernel.reshape(-1)[kern]), shape_out


def digits_cnn(p: Any, seed: int = 0) -> tuple[nengo.Network, nengo.Node, dict[str, nengo.Probe]]:
    """Build the convolutional digits classifier.

    Parameters
    ----------
    p
        Validated parameters (the zoo entry's
        :class:`nhw.toolchain.networks.DigitsCNNParams`; this module does not import
        the zoo, which builds through it).
    seed
        Network and weight seed.

    Returns
    -------
    (network, input, probes)
        Input Node ``input`` (64 pixels); probes ``output`` (filtered logits),
        ``logits`` (unfiltered: what one-step training sees), ``conv1`` and ``conv2``
        (neurons).
    """
    rng = np.random.RandomState(seed)
    neuron = NEURON_TYPES.by_name(p.neuron_type)
    with nengo.Network(seed=seed, label="digits_cnn") as net:
        inp = nengo.Node(np.zeros(64), label="input")
        t1, s1 = _conv((8, 8, 1), 3, 1, p.filters1, p.transform, rng)
        t2, s2 = _conv(s1, 3, 2, p.filters2, p.transform, rng)
        layers = []
        for name, shape in (("conv1", s1), ("conv2", s2)):
            layers.append(nengo.Ensemble(
                int(np.prod(shape)), 1, neuron_type=neuron(amplitude=1.0 / p.max_rate),
                max_rates=nengo.dists.Choice([p.max_rate]), intercepts=nengo.dists.Choice([0.0]), label=name))
        c1, c2 = layers
        out = nengo.Node(size_in=p.n_classes, label="output")
        nengo.Connection(inp, c1.neurons, transform=t1, synapse=None)
        nengo.Connection(c1.neurons, c2.neurons, transform=t2, synapse=None)
        n2 = c2.n_neurons
        limit = np.sqrt(6.0 / (n2 + p.n_classes))
        nengo.Connection(c2.neurons, out, transform=rng.uniform(-limit, limit, (p.n_classes, n2)), synapse=None)
        probes = {
            "output": nengo.Probe(out, synapse=p.output_synapse or None, label="output"),
            "logits": nengo.Probe(out, label="logits"),
            "conv1": nengo.Probe(c1.neurons, label="conv1"),
            "conv2": nengo.Probe(c2.neurons, label="conv2"),
        }
    return net, inp, probes
