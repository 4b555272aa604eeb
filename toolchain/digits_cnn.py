"""A spiking convolutional classifier of scikit-learn's 8x8 digits (``configs/digits_cnn.yaml``).

``Node(8x8x1) -> conv 3x3 (stride 1) -> spiking ReLU (6x6xF1) -> conv 3x3 (stride 2)
-> spiking ReLU (2x2xF2) -> dense -> Node(10)`` (logits).

The convolutions are built as ``nengo.Convolution`` transforms or, with
``transform="sparse"`` (the default), as ``nengo.Sparse`` transforms holding the same
kernel at every position: loihi-emu maps Sparse transforms (as synapses on the chip
between the two convolutional layers) but not yet ``nengo.Convolution``. A Sparse
transform trains every position's copy of the kernel separately, so after training
the layers are locally connected rather than strictly convolutional.

Layer outputs have amplitude ``1 / max_rate``, so a neuron at its top rate outputs
about 1 and every layer sees inputs of the same order (the "firing-rate scaling" of
converted networks).
"""

from __future__ import annotations

from typing import Literal

import nengo
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from nhw.backends.neuron_types import NEURON_TYPES
from nhw.toolchain.networks import BuiltNetwork

#: Config names of neuron types (the shared registry's names).
NeuronName = Literal[tuple(NEURON_TYPES.names())]  # type: ignore[valid-type]


class DigitsCNNParams(BaseModel):
    """Parameters of :func:`digits_cnn` (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    filters1: PositiveInt = Field(8, description="filters of the first 3x3 convolution (stride 1)")
    filters2: PositiveInt = Field(16, description="filters of the second 3x3 convolution (stride 2)")
    n_classes: PositiveInt = 10
    neuron_type: NeuronName = "spiking_relu"
    max_rate: float = Field(200.0, gt=0, description="neurons' firing rate at input 1 (Hz)")
    transform: Literal["sparse", "convolution"] = Field(
        "sparse", description="how the convolutions are built (loihi-emu maps 'sparse' only)")
    output_synapse: float | None = Field(0.01, ge=0, description="filter on the output probe (s)")
    n_steps: PositiveInt = 30


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


def digits_cnn(seed: int = 0, **params) -> BuiltNetwork:
    """Build the convolutional digits classifier (parameters: :class:`DigitsCNNParams`).

    Returns
    -------
    BuiltNetwork
        Input ``input`` (64 pixels); probes ``output`` (filtered logits), ``logits``
        (unfiltered: what one-step training sees), ``conv1`` and ``conv2`` (neurons).
    """
    p = DigitsCNNParams.model_validate(params)
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
    return BuiltNetwork(net, {"input": inp}, probes, p.n_steps)
