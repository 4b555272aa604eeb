"""Import a NIR graph as a ``nengo.Network`` that every nhw target can run.

Time discretisation: NIR is continuous time; the imported network is simulated with
nengo's own discretisation at the Simulator's ``dt``: LIF membranes with nengo's
exact exponential update (refractory period from ``metadata["tau_ref"]``, else 0; lower
voltage bound from ``metadata["min_voltage"]``, else nengo's 0),
synaptic and leaky-integrator filters as ``nengo.Lowpass`` (zero-order hold), and
NIR's unit-area spikes as nengo spikes of height ``1 / dt`` for one step.

Each NIR node becomes nengo objects with an *input port* (the object incoming edges
connect to, with the transform and synapse that the node applies to its input) and an
*output port*.  Every edge is one ``nengo.Connection``; NIR sums a node's inputs
before applying it, and every node here is linear in its summed input up to the
neurons, so one connection per edge with the node's transform is exact.

| NIR | nengo |
|---|---|
| Input | ``Node`` of zeros (set ``inputs[name].output`` to drive it) |
| Output | passthrough ``Node`` + ``Probe`` (``outputs[name]``) |
| Linear, Affine, Scale, Flatten | passthrough ``Node``; weights on incoming edges; bias from a constant ``Node`` |
| LI, CubaLI, I | passthrough ``Node``s with ``Lowpass``/integrator synapses on incoming edges |
| LIF, CubaLIF | ``Ensemble`` of ``LIF`` driven at ``.neurons`` (``gain = r / v_threshold``, ``bias = v_leak / v_threshold``) |
| IF | ``Ensemble`` of ``SpikingRectifiedLinear`` (nengo resets by subtraction; see :func:`import_nir`) |
| Conv1d, Conv2d | passthrough ``Node``; ``nengo.Convolution(channels_last=False)`` on incoming edges, or ``Sparse`` (see below); bias from a constant ``Node`` |
| SumPool2d, AvgPool2d | as a ``Conv2d`` with ``groups = C`` and a constant kernel (1, or ``1 / (kh * kw)``) |
| Threshold | ``Node`` computing ``x > threshold`` (a Python function: runs on ``reference``-like targets, not on loihi-emu) |
| Delay | two passthrough ``Node``s joined by ``LinearFilter([1], [1, 0, ..., 0], analog=False)``: ``z^-k``, ``k = round(delay / dt)`` |

Tensors are channels-first (``(C, N)`` or ``(C, H, W)``) and every nengo signal is the
tensor flattened in C order, so ``Flatten`` is the identity on nengo vectors.

Convolutions: NIR weights are ``(C_out, C_in / groups, *kernel)``, PyTorch style:
cross-correlation, symmetric zero padding ``p`` per dimension (or ``"valid"`` /
``"same"``), ``dilation``, ``groups``.  nengo's ``Convolution`` has only ``"valid"`` and
TensorFlow-style ``"same"`` and no dilation, so it is used when NIR's padding selects
exactly nengo's windows (``p == 0``; or nengo's leading ``"same"`` padding equals ``p``
with the same output size) and the dilation is 1; otherwise the convolution is
written out as an equivalent ``nengo.Sparse`` matrix (exact, one nonzero per kernel tap
that lands inside the input).  A node whose ``metadata["nengo_groups"]`` says it was a
grouped nengo convolution exported block-diagonally gets its grouping back.
``input_shape`` is required (``nir.read`` infers it from the graph).  Pooling: NIR
padding counts towards the average's denominator (``count_include_pad``, PyTorch's
default): ``AvgPool2d`` divides by ``kh * kw`` everywhere.

Time: ``Delay`` is discretised to ``k = round(delay / dt)`` whole steps, with ``dt``
from :func:`import_nir` (default: the graph's ``metadata["dt"]``, else 0.001 s); build
the Simulator with that ``dt``.  ``Threshold`` outputs the Heaviside value 1 (not a
unit-area spike) while its input is above the threshold, in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nengo
import nir
import numpy as np

from nhw.errors import NIRError
from nhw.toolchain.nir import stimulus


@dataclass
class ImportedNetwork:
    """A NIR graph as nengo objects: the network, its input Nodes and output Probes."""

    network: nengo.Network
    inputs: dict[str, nengo.Node] = field(default_factory=dict)
    outputs: dict[str, nengo.Probe] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)
    #: Input name -> steps of the stimulus recorded at export, which its Node replays
    replayed: dict[str, int] = field(default_factory=dict)


@dataclass
class _Port:
    """Where a NIR node receives and emits signals in the nengo network."""

    target: object | None  # None: the node takes no input
    source: object | None  # None: the node has no output
    size_in: int
    size_out: int
    transform: object = 1.0
    synapse: object = None


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=float).reshape(-1)


def _uniform(values, node_name: str, what: str) -> float:
    v = _flat(values)
    if not np.allclose(v, v[0], equal_nan=True):  # NaN: refused by _time_constant
        raise NIRError(f"node '{node_name}': {what} must be equal for all neurons to map to one nengo "
                       f"Ensemble, got values from {v.min():g} to {v.max():g}")
    return float(v[0])


def _time_constant(values, node_name: str, what: str) -> float:
    """A node's time constant: equal for all neurons (:func:`_uniform`) and > 0 (nengo
    would fail later with a traceback that names no NIR node)."""
    tau = _uniform(values, node_name, what)
    if not tau > 0:  # NaN too
        raise NIRError(f"node '{node_name}': {what} must be a time constant > 0 s; got {tau:g}")
    return tau


def _type_size(types: dict, node_name: str) -> int:
    if len(types) != 1:
        raise NIRError(f"node '{node_name}': expected one port, got {sorted(types)}")
    return int(np.prod(next(iter(types.values()))))


def _passthrough(name: str, size: int) -> nengo.Node:
    return nengo.Node(size_in=size, label=name)


def _bias(node: nengo.Node, bias, synapse=None) -> None:
    bias = _flat(bias)
    if np.any(bias != 0):
        nengo.Connection(nengo.Node(bias, label=f"{node.label}.bias"), node, synapse=synapse)


def _per_dim(value, nd: int, node_name: str, what: str) -> tuple[int, ...]:
    """``value`` (an int or one int per spatial dimension) as ``nd`` ints."""
    v = np.atleast_1d(np.asarray(value)).reshape(-1)
    if v.size == 1:
        v = np.repeat(v, nd)
    if v.size != nd or np.any(v != np.round(v)):
        raise NIRError(f"node '{node_name}': {what} must be an int or {nd} ints, got {value!r}")
    return tuple(int(x) for x in v)


def _padding_name(padding) -> str | None:
    """NIR padding given as a string (``nir.read`` returns bytes), else None."""
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SUO" and padding.ndim == 0:
        padding = padding.item()
    if isinstance(padding, bytes):
        padding = padding.decode()
    return padding if isinstance(padding, str) else None


def _nengo_padding(spatial, kernel, stride, pads) -> str | None:
    """nengo's padding mode selecting the same windows as NIR's symmetric ``pads``.

    nengo pads like TensorFlow (``"same"``: ``ceil(n / s)`` outputs, ``floor(total / 2)``
    zeros first); the windows agree when the leading padding and the output counts do.
    """
    if all(p == 0 for p in pads):
        return "valid"
    for n, k, s, p in zip(spatial, kernel, stride, pads):
        out = -(-n // s)
        if max((out - 1) * s + k - n, 0) // 2 != p or (n + 2 * p - k) // s + 1 != out:
            return None
    return "same"


def _conv_sparse(w, spatial, out_spatial, stride, pads, dilation, groups) -> nengo.Sparse:
    """A PyTorch-style convolution on channels-first tensors as an exact sparse matrix."""
    c_out, cg = w.shape[:2]
    c_in, per = cg * groups, c_out // groups
    rows, cols, vals = [], [], []
    outs = np.stack(np.meshgrid(*[np.arange(n) for n in out_spatial], indexing="ij"), -1).reshape(-1, len(spatial))
    out_flat = np.ravel_multi_index(tuple(outs.T), out_spatial)
    for tap in np.ndindex(*w.shape[2:]):
        pos = outs * np.array(stride) - np.array(pads) + np.array(tap) * np.array(dilation)
        inside = np.all((pos >= 0) & (pos < np.array(spatial)), axis=1)
        in_flat = np.ravel_multi_index(tuple(pos[inside].T), spatial)
        for co in range(c_out):
            for j in range(cg):
                ci = (co // per) * cg + j  # group co // per reads its own block of inputs
                rows.append(co * len(outs) + out_flat[inside])
                cols.append(ci * int(np.prod(spatial)) + in_flat)
                vals.append(np.full(inside.sum(), w[(co, j, *tap)]))
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    keep = vals != 0
    shape = (c_out * len(outs), c_in * int(np.prod(spatial)))
    if not np.any(keep):  # nengo.Sparse needs at least one entry
        keep[:1] = True
    return nengo.Sparse(shape, indices=np.stack([rows[keep], cols[keep]], 1), init=vals[keep])


def _regroup(w: np.ndarray, groups: int) -> np.ndarray | None:
    """The ``(C_out, C_in / groups, ...)`` kernel of a block-diagonal ``w``, or None
    when ``w`` has weights outside the blocks."""
    c_out, c_in = w.shape[:2]
    if c_out % groups or c_in % groups:
        return None
    per, cg = c_out // groups, c_in // groups
    blocks = [w[i * per:(i + 1) * per, i * cg:(i + 1) * cg] for i in range(groups)]
    mask = np.ones(w.shape[:2], bool)
    for i in range(groups):
        mask[i * per:(i + 1) * per, i * cg:(i + 1) * cg] = False
    return np.concatenate(blocks) if not np.any(w[mask]) else None


def _min_voltage(node) -> float:
    """nengo's lower voltage bound for a LIF node: ``metadata["min_voltage"]`` (nhw's
    export writes nengo's; peer profiles' imports write ``-inf``, NIR's unbounded LIF),
    else nengo's default 0."""
    value = float(np.asarray((node.metadata or {}).get("min_voltage", 0.0)))
    if value > 0:
        raise NIRError(f"metadata min_voltage must be <= 0, got {value:g}")
    return value


class _Importer:
    def __init__(self, allow_subtractive_if: bool, dt: float) -> None:
        self.allow_subtractive_if = allow_subtractive_if
        self.dt = dt
        self.result = ImportedNetwork(nengo.Network(label="imported NIR graph"))

    # --- per node type -------------------------------------------------------
    def input(self, name, node):
        size = _type_size(node.input_type, name)
        obj = stimulus.replay(name, node.metadata, size)
        if obj is None:
            obj = nengo.Node(np.zeros(size), label=name)
        else:
            self.result.replayed[name] = stimulus.steps(node.metadata)
        self.result.inputs[name] = obj
        return _Port(None, obj, 0, size)

    def output(self, name, node):
        size = _type_size(node.output_type, name)
        obj = _passthrough(name, size)
        self.result.outputs[name] = nengo.Probe(obj, label=name)
        return _Port(obj, None, size, 0)

    def linear(self, name, node):
        w = np.asarray(node.weight, float)
        obj = _passthrough(name, w.shape[0])
        if isinstance(node, nir.Affine):
            _bias(obj, node.bias)
        return _Port(obj, obj, w.shape[1], w.shape[0], transform=w)

    def scale(self, name, node):
        s = _flat(node.scale)
        obj = _passthrough(name, s.size)
        return _Port(obj, obj, s.size, s.size, transform=np.diag(s) if np.any(s != 1) else 1.0)

    def flatten(self, name, node):
        size = _type_size(node.input_type, name)
        obj = _passthrough(name, size)
        return _Port(obj, obj, size, size)

    def li(self, name, node):
        tau = _time_constant(node.tau, name, "tau")
        r = _flat(node.r)
        obj = _passthrough(name, r.size)
        _bias(obj, node.v_leak, synapse=nengo.Lowpass(tau))
        return _Port(obj, obj, r.size, r.size, transform=np.diag(r), synapse=nengo.Lowpass(tau))

    def integrator(self, name, node):
        r = _flat(node.r)
        obj = _passthrough(name, r.size)
        return _Port(obj, obj, r.size, r.size, transform=np.diag(r), synapse=nengo.LinearFilter([1], [1, 0]))

    def cuba_li(self, name, node):
        syn = self.li(f"{name}.syn", nir.LI(tau=node.tau_syn, r=_flat(node.w_in) * np.ones_like(_flat(node.tau_syn)),
                                            v_leak=np.zeros_like(_flat(node.tau_syn))))
        mem = self.li(name, nir.LI(tau=node.tau_mem, r=node.r, v_leak=node.v_leak))
        nengo.Connection(syn.source, mem.target, transform=mem.transform, synapse=mem.synapse)
        return _Port(syn.target, mem.source, syn.size_in, mem.size_out, syn.transform, syn.synapse)

    def _ensemble(self, name, node, neuron_cls, r, v_threshold, v_leak, v_reset, **params) -> nengo.Ensemble:
        r = _flat(r)
        n = r.size
        # NIR states start at 0; graphs exported by nhw carry nengo's initial voltages.
        meta = node.metadata or {}
        v_init = _flat(meta.get("v_init", np.zeros(n))) / (_flat(v_threshold) * np.ones(n))
        if v_init.size != n:
            raise NIRError(f"node '{name}': metadata v_init has {v_init.size} values for {n} neurons")
        neuron_type = neuron_cls(initial_state={"voltage": v_init}, **params)
        thr = _flat(v_threshold) * np.ones(n)
        if np.any(thr <= 0):
            raise NIRError(f"node '{name}': v_threshold must be positive, got min {thr.min():g}")
        if v_reset is not None and np.any(_flat(v_reset) != 0):
            raise NIRError(f"node '{name}': v_reset must be 0 for nengo neurons, got {_flat(v_reset)[:3]}...")
        ens = nengo.Ensemble(n, 1, neuron_type=neuron_type, gain=r / thr, bias=_flat(v_leak) * np.ones(n) / thr,
                             encoders=np.ones((n, 1)), label=name)
        self.result.objects[name] = ens
        return ens

    def lif(self, name, node):
        tau_ref = float(node.metadata.get("tau_ref", 0.0)) if node.metadata else 0.0
        tau = _time_constant(node.tau, name, "tau")
        ens = self._ensemble(name, node, nengo.LIF, node.r, node.v_threshold, node.v_leak, node.v_reset,
                             tau_rc=tau, tau_ref=tau_ref, min_voltage=_min_voltage(node))
        return _Port(ens.neurons, ens.neurons, ens.n_neurons, ens.n_neurons)

    def cuba_lif(self, name, node):
        tau_ref = float(node.metadata.get("tau_ref", 0.0)) if node.metadata else 0.0
        tau_mem = _time_constant(node.tau_mem, name, "tau_mem")
        tau_syn = _time_constant(node.tau_syn, name, "tau_syn")
        ens = self._ensemble(name, node, nengo.LIF, node.r, node.v_threshold, node.v_leak, node.v_reset,
                             tau_rc=tau_mem, tau_ref=tau_ref, min_voltage=_min_voltage(node))
        w_in = _flat(node.w_in) * np.ones(ens.n_neurons)
        return _Port(ens.neurons, ens.neurons, ens.n_neurons, ens.n_neurons,
                     transform=np.diag(w_in) if np.any(w_in != 1) else 1.0, synapse=nengo.Lowpass(tau_syn))

    def if_(self, name, node):
        meta = node.metadata or {}
        if meta.get("reset") != "subtract" and not self.allow_subtractive_if:
            raise NIRError(
                f"node '{name}': NIR IF resets to v_reset, nengo's SpikingRectifiedLinear subtracts the "
                "threshold and ignores negative input; pass allow_subtractive_if=True to accept that"
            )
        ens = self._ensemble(name, node, nengo.SpikingRectifiedLinear, node.r, node.v_threshold, 0.0,
                             node.v_reset)
        return _Port(ens.neurons, ens.neurons, ens.n_neurons, ens.n_neurons)

    def _conv(self, name, weight, spatial, stride, padding, dilation, groups, bias) -> _Port:
        """Shared by Conv1d, Conv2d and the pooling nodes (all channels-first)."""
        nd = len(spatial)
        w = np.asarray(weight, float)
        if w.ndim != nd + 2:
            raise NIRError(f"node '{name}': weight has shape {w.shape}, expected (C_out, C_in, "
                           f"{', '.join(['k'] * nd)}) for input_shape {spatial}")
        stride = _per_dim(stride, nd, name, "stride")
        dilation = _per_dim(dilation, nd, name, "dilation")
        kernel = w.shape[2:]
        mode = _padding_name(padding)
        if mode == "valid":
            pads = (0,) * nd
        elif mode == "same":
            if any(s != 1 for s in stride):
                raise NIRError(f"node '{name}': padding 'same' with stride {stride} is undefined in NIR "
                               "(PyTorch allows it only with stride 1)")
            # PyTorch's 'same' pads d*(k-1) in all, the smaller half first
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            if any(t % 2 for t in total):
                raise NIRError(f"node '{name}': padding 'same' with kernel {kernel} pads asymmetrically; "
                               "give explicit padding")
            pads = tuple(t // 2 for t in total)
        elif mode is None:
            pads = _per_dim(padding, nd, name, "padding")
        else:
            raise NIRError(f"node '{name}': unknown padding {mode!r}")
        groups = int(groups)
        c_out, cg = w.shape[:2]
        if groups < 1 or c_out % groups:
            raise NIRError(f"node '{name}': {c_out} output channels are not divisible into {groups} groups")
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                    for n, p, d, k, s in zip(spatial, pads, dilation, kernel, stride))
        if any(o < 1 for o in out):
            raise NIRError(f"node '{name}': kernel {kernel} (dilation {dilation}, padding {pads}) does not "
                           f"fit input_shape {spatial}: weight shape {w.shape} disagrees with the input")
        c_in = cg * groups
        nengo_pad = _nengo_padding(spatial, kernel, stride, pads) if set(dilation) == {1} else None
        if nengo_pad is not None:
            # nengo's kernel is kernel_size + (C_in / groups, C_out)
            transform = nengo.Convolution(c_out, (c_in, *spatial), kernel_size=kernel, strides=stride,
                                          padding=nengo_pad, channels_last=False, groups=groups,
                                          init=np.moveaxis(w, (0, 1), (-1, -2)))
            if transform.output_shape.spatial_shape != out:
                raise NIRError(f"node '{name}': nengo's output shape {transform.output_shape.spatial_shape} "
                               f"differs from NIR's {out}")
        else:
            transform = _conv_sparse(w, spatial, out, stride, pads, dilation, groups)
        size_out = c_out * int(np.prod(out))
        obj = _passthrough(name, size_out)
        _bias(obj, np.repeat(_flat(bias) * np.ones(c_out), int(np.prod(out))))
        return _Port(obj, obj, c_in * int(np.prod(spatial)), size_out, transform=transform)

    def conv(self, name, node):
        nd = 1 if isinstance(node, nir.Conv1d) else 2
        if node.input_shape is None:
            raise NIRError(f"node '{name}': {type(node).__name__} needs input_shape (its spatial input size)")
        spatial = _per_dim(node.input_shape, nd, name, "input_shape")
        w, groups = np.asarray(node.weight, float), int(node.groups)
        regroup = int((node.metadata or {}).get("nengo_groups", 1))
        if groups == 1 and regroup > 1 and w.ndim == nd + 2:
            # exported by nhw from a grouped nengo convolution (see nir_export)
            grouped = _regroup(w, regroup)
            if grouped is not None:
                w, groups = grouped, regroup
        return self._conv(name, w, spatial, node.stride, node.padding, node.dilation, groups, node.bias)

    def pool(self, name, node):
        shape = node.input_type.get("input") if node.input_type else None
        if shape is None or len(np.atleast_1d(shape)) != 3:
            raise NIRError(f"node '{name}': {type(node).__name__} needs a (C, H, W) input type "
                           f"(nir.read infers it from the graph), got {shape}")
        c, *spatial = (int(n) for n in shape)
        kernel = _per_dim(node.kernel_size, 2, name, "kernel_size")
        value = 1.0 / np.prod(kernel) if isinstance(node, nir.AvgPool2d) else 1.0
        w = np.full((c, 1, *kernel), value)  # one constant kernel per channel
        return self._conv(name, w, tuple(spatial), node.stride, node.padding, 1, c, np.zeros(c))

    def threshold(self, name, node):
        thr = _flat(node.threshold)
        # a Python function of the input: exact Heaviside, but not mappable to loihi-emu
        obj = nengo.Node(lambda t, x: (x > thr).astype(float), size_in=thr.size, label=name)
        return _Port(obj, obj, thr.size, thr.size)

    def delay(self, name, node):
        steps = _flat(node.delay) / self.dt
        if np.any(steps < 0) or not np.all(np.isfinite(steps)):
            raise NIRError(f"node '{name}': delays must be finite and >= 0, got {_flat(node.delay)}")
        k = np.round(steps).astype(int)
        a, b = _passthrough(f"{name}.in", k.size), _passthrough(name, k.size)
        for steps_k in np.unique(k):
            idx = np.flatnonzero(k == steps_k)
            # z^-k on the sampled signal: y[n] = x[n - k], exactly
            synapse = None if steps_k == 0 else nengo.LinearFilter([1], [1] + [0] * int(steps_k), analog=False)
            sl = slice(None) if idx.size == k.size else list(idx)
            nengo.Connection(a[sl], b[sl], synapse=synapse)
        return _Port(a, b, k.size, k.size)

    # --- graph ------------------------------------------------------------------
    def run(self, graph: nir.NIRGraph) -> ImportedNetwork:
        ports: dict[str, _Port] = {}
        with self.result.network:
            for name, node in graph.nodes.items():
                factory = NODE_TYPES.get(type(node))
                if factory is None:
                    known = ", ".join(sorted(t.__name__ for t in NODE_TYPES))
                    raise NIRError(f"node '{name}': NIR type {type(node).__name__} has no nengo mapping; "
                                   f"supported: {known}")
                ports[name] = factory(self, name, node)
                self.result.objects.setdefault(name, ports[name].source or ports[name].target)
            for src, dst in graph.edges:
                for end in (src, dst):
                    if end not in ports:
                        raise NIRError(f"edge {src!r} -> {dst!r}: no node named {end!r}")
                a, b = ports[src], ports[dst]
                if a.source is None or b.target is None:
                    raise NIRError(f"edge {src!r} -> {dst!r}: '{src}' has no output or '{dst}' takes no input")
                if a.size_out != b.size_in:
                    raise NIRError(f"edge {src!r} -> {dst!r}: '{src}' emits {a.size_out} values, "
                                   f"'{dst}' expects {b.size_in}")
                nengo.Connection(a.source, b.target, transform=b.transform, synapse=b.synapse)
        return self.result


#: NIR node type -> importer method.
NODE_TYPES: dict[type, Callable] = {
    nir.Input: _Importer.input,
    nir.Output: _Importer.output,
    nir.Linear: _Importer.linear,
    nir.Affine: _Importer.linear,
    nir.Scale: _Importer.scale,
    nir.Flatten: _Importer.flatten,
    nir.LI: _Importer.li,
    nir.CubaLI: _Importer.cuba_li,
    nir.I: _Importer.integrator,
    nir.LIF: _Importer.lif,
    nir.CubaLIF: _Importer.cuba_lif,
    nir.IF: _Importer.if_,
    nir.Conv1d: _Importer.conv,
    nir.Conv2d: _Importer.conv,
    nir.SumPool2d: _Importer.pool,
    nir.AvgPool2d: _Importer.pool,
    nir.Threshold: _Importer.threshold,
    nir.Delay: _Importer.delay,
}


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Read a NIR file, turning any failure into a :class:`NIRError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise NIRError(f"{path}: no such file")
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # h5py/NIR raise many types for a foreign file
        raise NIRError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NIRError(f"{path}: contains a single {type(graph).__name__} node, not a NIR graph")
    return graph


def import_nir(graph: nir.NIRGraph | str | Path, *, allow_subtractive_if: bool = False,
               dt: float | None = None) -> ImportedNetwork:
    """Build a ``nengo.Network`` from a NIR graph (see the module docstring).

    Parameters
    ----------
    graph
        A ``nir.NIRGraph`` or the path of a NIR file.
    allow_subtractive_if
        Accept NIR ``IF`` nodes not exported by nhw as nengo's
        ``SpikingRectifiedLinear``, which resets by subtracting the threshold and
        ignores negative input (NIR's IF resets to ``v_reset``).
    dt
        Time step ``Delay`` nodes are discretised for (``round(delay / dt)`` steps);
        default: the graph's ``metadata["dt"]`` (written by nhw's exporter), else 0.001.
        Simulate with the same ``dt``.

    Returns
    -------
    ImportedNetwork
        The network, ``inputs`` (NIR Input name -> Node: zeros, or the stimulus nhw's
        export recorded, named in ``replayed``) and ``outputs`` (NIR Output name -> Probe).

    Raises
    ------
    NIRError
        Unknown node types, shape mismatches between edges, or parameters nengo
        cannot represent; the message names the node or edge.
    """
    if not isinstance(graph, nir.NIRGraph):
        graph = read_graph(graph)
    if dt is None:
        dt = float((graph.metadata or {}).get("dt", 0.001))
    if not dt > 0:
        raise NIRError(f"dt must be positive, got {dt}")
    return _Importer(allow_subtractive_if, dt).run(graph)
