"""Import a NIR graph as a ``nengo.Network`` that every nhw target can run.

Time discretisation: NIR is continuous time; the imported network is simulated with
nengo's own discretisation at the Simulator's ``dt``: LIF membranes with nengo's
exact exponential update (refractory period from ``metadata["tau_ref"]``, else 0),
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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nengo
import nir
import numpy as np

from .errors import NIRError


@dataclass
class ImportedNetwork:
    """A NIR graph as nengo objects: the network, its input Nodes and output Probes."""

    network: nengo.Network
    inputs: dict[str, nengo.Node] = field(default_factory=dict)
    outputs: dict[str, nengo.Probe] = field(default_factory=dict)
    objects: dict[str, object] = field(default_factory=dict)


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
    if not np.allclose(v, v[0]):
        raise NIRError(f"node '{node_name}': {what} must be equal for all neurons to map to one nengo "
                       f"Ensemble, got values from {v.min():g} to {v.max():g}")
    return float(v[0])


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


class _Importer:
    def __init__(self, allow_subtractive_if: bool) -> None:
        self.allow_subtractive_if = allow_subtractive_if
        self.result = ImportedNetwork(nengo.Network(label="imported NIR graph"))

    # --- per node type -------------------------------------------------------
    def input(self, name, node):
        size = _type_size(node.input_type, name)
        obj = nengo.Node(np.zeros(size), label=name)
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
        tau = _uniform(node.tau, name, "tau")
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
        tau = _uniform(node.tau, name, "tau")
        ens = self._ensemble(name, node, nengo.LIF, node.r, node.v_threshold, node.v_leak, node.v_reset,
                             tau_rc=tau, tau_ref=tau_ref)
        return _Port(ens.neurons, ens.neurons, ens.n_neurons, ens.n_neurons)

    def cuba_lif(self, name, node):
        tau_ref = float(node.metadata.get("tau_ref", 0.0)) if node.metadata else 0.0
        tau_mem = _uniform(node.tau_mem, name, "tau_mem")
        tau_syn = _uniform(node.tau_syn, name, "tau_syn")
        ens = self._ensemble(name, node, nengo.LIF, node.r, node.v_threshold, node.v_leak, node.v_reset,
                             tau_rc=tau_mem, tau_ref=tau_ref)
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


def import_nir(graph: nir.NIRGraph | str | Path, *, allow_subtractive_if: bool = False) -> ImportedNetwork:
    """Build a ``nengo.Network`` from a NIR graph (see the module docstring).

    Parameters
    ----------
    graph
        A ``nir.NIRGraph`` or the path of a NIR file.
    allow_subtractive_if
        Accept NIR ``IF`` nodes not exported by nhw as nengo's
        ``SpikingRectifiedLinear``, which resets by subtracting the threshold and
        ignores negative input (NIR's IF resets to ``v_reset``).

    Returns
    -------
    ImportedNetwork
        The network, ``inputs`` (NIR Input name -> Node of zeros; set its ``output``)
        and ``outputs`` (NIR Output name -> Probe).

    Raises
    ------
    NIRError
        Unknown node types, shape mismatches between edges, or parameters nengo
        cannot represent; the message names the node or edge.
    """
    if not isinstance(graph, nir.NIRGraph):
        graph = read_graph(graph)
    return _Importer(allow_subtractive_if).run(graph)
