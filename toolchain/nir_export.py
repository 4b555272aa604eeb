"""Export a (frozen) nengo network to a NIR graph.

The network is built with nengo's own builder, so the exported numbers are exactly
the ones every nhw target simulates (gains, biases, decoders, encoders, transforms).

Mapping (nengo -> NIR):

* ``Node`` with a fixed output and no input -> ``Input`` (the data is supplied at run
  time); a passthrough ``Node`` (``output=None``) -> ``Scale`` of ones.
* ``Ensemble`` of ``LIF`` -> ``LIF(tau=tau_rc, r=gain, v_leak=bias, v_threshold=1,
  v_reset=0)``: nengo's current ``J = gain * x + bias`` folds into ``r`` and ``v_leak``;
  when every incoming connection has the same ``Lowpass(tau)`` synapse the synapse is
  folded too, as ``CubaLIF(tau_syn=tau, ...)``.  ``tau_ref`` (NIR's LIF has no
  refractory period) and nengo's (seeded, random) initial voltages ``v_init`` are kept
  in the node's metadata.
* ``Ensemble`` of ``SpikingRectifiedLinear`` -> ``IF(r=gain, v_threshold=1,
  v_reset=0)``, the bias carried by the ``Affine`` bias of one incoming connection;
  metadata records nengo's subtractive reset and rectified input.
* ``Connection`` -> ``Linear`` (or ``Affine``) holding the full weight matrix from the
  pre object's output (spikes of the pre neurons for decoded connections: the
  decoders, the transform and the post encoders / radius are multiplied out), then
  ``LI(tau, r=1, v_leak=0)`` for a ``Lowpass`` synapse not folded into a ``CubaLIF``.
* ``Probe`` -> ``Output``, after the probe's decoders (``Linear``) and filter (``LI``).

Spikes follow NIR's convention of unit-area events: nengo's spike of height
``amplitude / dt`` lasting one step has area ``amplitude``, which is multiplied into the
outgoing weights.  Anything NIR cannot express (Python functions, learning rules,
rate neurons, other synapses, convolution, which is not exported yet) is an error
naming the object, or, with ``allow_partial=True``, left out and listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import nengo
import nir
import numpy as np
from nengo.builder import Model
from nengo.transforms import Dense, NoTransform, Sparse

from .errors import NIRError

#: Version tag written into every exported graph's metadata.
EXPORTER = "nhw-nir-export/1"


@dataclass
class ExportResult:
    """A NIR graph, the names given to the nengo objects, and what was left out."""

    graph: nir.NIRGraph
    names: dict = field(default_factory=dict)
    remainder: list[str] = field(default_factory=list)


class _Builder:
    """Accumulates NIR nodes and edges while walking a built nengo model."""

    def __init__(self, network: nengo.Network, model: Model, allow_partial: bool) -> None:
        self.network, self.model, self.allow_partial = network, model, allow_partial
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.names: dict = {}
        self.problems: list[str] = []
        self.skipped: set = set()
        self.if_biased: set[str] = set()
        self._taken: set[str] = set()

    # --- names ----------------------------------------------------------------
    def name(self, obj, prefix: str) -> str:
        if obj not in self.names:
            base = re.sub(r"[^A-Za-z0-9_]+", "_", obj.label or prefix).strip("_") or prefix
            name, k = base, 1
            while name in self._taken:
                name, k = f"{base}_{k}", k + 1
            self._taken.add(name)
            self.names[obj] = name
        return self.names[obj]

    def problem(self, obj, message: str) -> None:
        self.problems.append(f"{obj}: {message}")  # obj's repr names type and label
        self.skipped.add(obj)

    def add(self, name: str, node: nir.NIRNode) -> str:
        self.nodes[name] = node
        return name


def _lowpass_tau(synapse) -> float | None:
    """The time constant of a ``Lowpass`` synapse, ``None`` for no synapse."""
    if synapse is None:
        return None
    if type(synapse) is nengo.Lowpass:
        return float(synapse.tau)
    raise NIRError(f"synapse {synapse} cannot be expressed in NIR (only Lowpass or None)")


def _transform_matrix(conn: nengo.Connection, built) -> np.ndarray:
    """The (size_out, size_mid) matrix of a non-decoded connection."""
    transform = conn.transform
    if isinstance(transform, NoTransform):
        return np.eye(conn.size_mid)
    if isinstance(transform, Sparse):
        return np.asarray(transform.sample().toarray())  # scipy and nengo sparse both densify
    if isinstance(transform, Dense):
        w = np.asarray(built.weights if built.weights is not None else transform.sample(), dtype=float)
        if w.ndim == 0:
            return float(w) * np.eye(conn.size_mid)
        if w.ndim == 1:
            return np.diag(w)
        return w
    raise NIRError(f"transform {type(transform).__name__} is not exported to NIR yet "
                   "(Dense, Sparse and the default are)")


def _place(matrix: np.ndarray, rows, cols, shape: tuple[int, int]) -> np.ndarray:
    """Embed ``matrix`` at ``rows`` x ``cols`` of a zero matrix of ``shape``."""
    full = np.zeros(shape)
    r = np.arange(shape[0])[rows]
    c = np.arange(shape[1])[cols]
    full[np.ix_(np.atleast_1d(r), np.atleast_1d(c))] += matrix
    return full


class _Exporter(_Builder):
    def run(self) -> ExportResult:
        net, model = self.network, self.model
        incoming: dict = {}
        for conn in net.all_connections:
            incoming.setdefault(conn.post_obj, []).append(conn)
            incoming.setdefault(getattr(conn.post_obj, "ensemble", None), []).append(conn)
        for node in net.all_nodes:
            self._guard(node, self.node, node)
        for ens in net.all_ensembles:
            self._guard(ens, self.ensemble, ens, incoming.get(ens, []))
        for conn in net.all_connections:
            self._guard(conn, self.connection, conn)
        for probe in net.all_probes:
            self._guard(probe, self.probe, probe)
        if self.problems and not self.allow_partial:
            raise NIRError("cannot export to NIR:\n  " + "\n  ".join(self.problems))
        metadata = {"exporter": EXPORTER, "dt": model.dt, "nengo_version": nengo.__version__}
        graph = nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)
        return ExportResult(graph, dict(self.names), list(self.problems))

    def _guard(self, obj, method, *args) -> None:
        try:
            method(*args)
        except NIRError as exc:
            self.problem(obj, str(exc))

    # --- objects ------------------------------------------------------------------
    def node(self, node: nengo.Node) -> None:
        name = self.name(node, "node")
        if node.output is None:
            self.add(name, nir.Scale(np.ones(node.size_in)))
        elif node.size_in == 0:
            self.add(name, nir.Input(input_type={"input": np.array([node.size_out])}))
        else:
            raise NIRError("a Node computing a Python function of its input cannot be expressed in NIR")

    def ensemble(self, ens: nengo.Ensemble, conns: list) -> None:
        name = self.name(ens, "ens")
        built = self.model.params[ens]
        n = ens.n_neurons
        gain, bias = np.asarray(built.gain, float), np.asarray(built.bias, float)
        neurons = ens.neuron_type
        # nengo starts neurons at random voltages (seeded); NIR states start at 0, so
        # the built values travel in the metadata for exact round trips.
        voltage = self.model.sig[ens.neurons].get("voltage")
        v_init = [] if voltage is None else np.asarray(voltage.initial_value, float).tolist()
        if type(neurons) is nengo.LIF:
            if neurons.min_voltage != 0:
                raise NIRError(f"LIF min_voltage={neurons.min_voltage} has no NIR equivalent (only 0)")
            meta = {"tau_ref": float(neurons.tau_ref), "v_init": v_init, "nengo_neuron_type": "LIF"}
            taus = {_lowpass_tau(c.synapse) for c in conns}
            common = dict(r=gain, v_leak=bias, v_threshold=np.ones(n), v_reset=np.zeros(n), metadata=meta)
            if len(taus) == 1 and None not in taus:
                self.add(name, nir.CubaLIF(tau_syn=np.full(n, taus.pop()), tau_mem=np.full(n, neurons.tau_rc),
                                           w_in=np.ones(n), **common))
            else:
                self.add(name, nir.LIF(tau=np.full(n, neurons.tau_rc), **common))
        elif type(neurons) is nengo.SpikingRectifiedLinear:
            if np.any(bias != 0) and not conns:
                raise NIRError("a SpikingRectifiedLinear bias needs an incoming connection to carry it")
            meta = {"reset": "subtract", "rectified_input": True, "v_init": v_init,
                    "nengo_neuron_type": "SpikingRectifiedLinear"}
            self.add(name, nir.IF(r=gain, v_threshold=np.ones(n), v_reset=np.zeros(n), metadata=meta))
        else:
            raise NIRError(
                f"{ens}: neuron type {type(neurons).__name__} cannot be expressed in NIR "
                "(LIF and SpikingRectifiedLinear can)"
            )

    def _source(self, obj) -> tuple[str, int, float]:
        """NIR node producing ``obj``'s output, its size, and the spike area factor."""
        if isinstance(obj, nengo.ensemble.Neurons):
            obj = obj.ensemble
        if obj in self.skipped or obj not in self.names:
            raise NIRError(f"its source {obj} was not exported")
        if isinstance(obj, nengo.Ensemble):
            return self.names[obj], obj.n_neurons, float(obj.neuron_type.amplitude)
        return self.names[obj], obj.size_out, 1.0

    def connection(self, conn: nengo.Connection) -> None:
        if conn.learning_rule_type is not None:
            raise NIRError("learning rules cannot be expressed in NIR")
        post = conn.post_obj
        if not isinstance(post, (nengo.Ensemble, nengo.ensemble.Neurons, nengo.Node)):
            raise NIRError(f"connections into {type(post).__name__} cannot be expressed in NIR")
        built = self.model.params[conn]
        src, src_size, area = self._source(conn.pre_obj)
        if isinstance(conn.pre_obj, nengo.Ensemble):
            if conn.solver.weights:
                raise NIRError("solver weights=True is not exported yet; use decoders")
            w = np.asarray(built.weights, float)  # (size_out, n_pre): decoders with the transform
        else:
            w = _place(_transform_matrix(conn, built), slice(None), conn.pre_slice, (conn.size_out, src_size))
        w = w * area
        post_ens = getattr(post, "ensemble", post)
        dst = self.names.get(post_ens)
        if post_ens in self.skipped or dst is None:
            raise NIRError(f"its target {post_ens} was not exported")
        if isinstance(post, nengo.Ensemble):
            enc = np.asarray(self.model.params[post].scaled_encoders, float) / self.model.params[post].gain[:, None]
            w = enc[:, conn.post_slice] @ w if isinstance(conn.post_slice, slice) else (
                enc @ _place(w, conn.post_slice, slice(None), (post.dimensions, w.shape[1])))
        else:
            size = post.ensemble.n_neurons if isinstance(post, nengo.ensemble.Neurons) else post.size_in
            w = _place(w, conn.post_slice, slice(None), (size, w.shape[1]))
        name = self.name(conn, "conn")
        target = self.nodes[dst]
        if isinstance(target, nir.IF) and dst not in self.if_biased:
            # IF has no leak term to hold nengo's bias; an unfiltered Affine from the
            # same source adds bias / gain, which IF's r (= gain) scales back.
            self.if_biased.add(dst)
            params = self.model.params[post_ens]
            bias = np.asarray(params.bias, float) / np.asarray(params.gain, float)
            if np.any(bias != 0):
                self.add(f"{dst}_bias", nir.Affine(np.zeros((len(bias), src_size)), bias))
                self.edges += [(src, f"{dst}_bias"), (f"{dst}_bias", dst)]
        self.add(name, nir.Linear(w))
        self.edges.append((src, name))
        tau = _lowpass_tau(conn.synapse)
        if tau is not None and not isinstance(target, nir.CubaLIF):
            syn = self.add(f"{name}_syn", nir.LI(tau=np.full(w.shape[0], tau), r=np.ones(w.shape[0]),
                                                 v_leak=np.zeros(w.shape[0])))
            self.edges.append((name, syn))
            name = syn
        self.edges.append((name, dst))

    def probe(self, probe: nengo.Probe) -> None:
        target = probe.target
        name = self.name(probe, "probe")
        if isinstance(target, nengo.Ensemble) and probe.attr == "decoded_output":
            src, _, area = self._source(target)
            hidden = next(k for k in self.model.params if isinstance(k, nengo.Connection) and k.post_obj is probe)
            w = np.asarray(self.model.params[hidden].weights, float) * area
            last = self.add(f"{name}_decoders", nir.Linear(w))
            self.edges.append((src, last))
            size = w.shape[0]
        elif isinstance(target, nengo.ensemble.Neurons) and probe.attr == "output":
            last, size, _ = self._source(target)
        elif isinstance(target, nengo.Node) and probe.attr == "output":
            last, size, _ = self._source(target)
        else:
            raise NIRError(f"probing {type(target).__name__}.{probe.attr} cannot be expressed in NIR")
        tau = _lowpass_tau(probe.synapse)
        if tau is not None:
            syn = self.add(f"{name}_syn", nir.LI(tau=np.full(size, tau), r=np.ones(size), v_leak=np.zeros(size)))
            self.edges.append((last, syn))
            last = syn
        self.add(name, nir.Output(output_type={"output": np.array([size])}))
        self.edges.append((last, name))


def export_nir(network: nengo.Network, *, dt: float = 0.001, allow_partial: bool = False,
               names: dict | None = None) -> ExportResult:
    """Export ``network`` to a NIR graph (see the module docstring for the mapping).

    Parameters
    ----------
    network
        The network to export, usually frozen after training.
    dt
        Time step used to build the network (decoders are solved at build time).
    allow_partial
        Leave out what NIR cannot express and list it in ``ExportResult.remainder``
        instead of raising.
    names
        Preferred NIR node names for nengo objects (e.g. a zoo network's named inputs
        and probes); other objects are named from their labels.

    Returns
    -------
    ExportResult
        ``graph`` (a ``nir.NIRGraph``), ``names`` (nengo object -> NIR node name) and
        ``remainder`` (what was left out, with the reason).

    Raises
    ------
    NIRError
        Something in the network has no NIR equivalent (all problems are listed).
    """
    model = Model(dt=dt)
    model.build(network)
    exporter = _Exporter(network, model, allow_partial)
    for obj, name in (names or {}).items():
        exporter.name(obj, name)
    return exporter.run()
