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
  refractory period), ``min_voltage`` (NIR's LIF has no lower voltage bound; nengo's
  default clamps at 0) and nengo's (seeded, random) initial voltages ``v_init`` are kept
  in the node's metadata.
* ``Ensemble`` of ``SpikingRectifiedLinear`` -> ``IF(r=gain, v_threshold=1,
  v_reset=0)``, the bias carried by the ``Affine`` bias of one incoming connection;
  metadata records nengo's subtractive reset and rectified input.
* ``Connection`` -> ``Linear`` (or ``Affine``) holding the full weight matrix from the
  pre object's output (spikes of the pre neurons for decoded connections: the
  decoders, the transform and the post encoders / radius are multiplied out), then
  ``LI(tau, r=1, v_leak=0)`` for a ``Lowpass`` synapse not folded into a ``CubaLIF``.
* ``Connection`` with a ``nengo.Convolution`` transform (1-D or 2-D, from a ``Node`` or
  ``Neurons`` into a ``Node``, ``Neurons`` or ``Ensemble``) -> ``Conv1d`` / ``Conv2d`` (weights
  ``(C_out, C_in, *kernel)``, zero bias, dilation 1), then the same ``LI`` synapse as
  above.  ``padding="valid"`` is NIR padding 0; ``"same"`` is the symmetric NIR padding
  that selects the same windows (an error naming the connection when nengo pads
  asymmetrically, e.g. an even kernel, which NIR cannot express).  ``groups > 1`` is
  written as ``groups=1`` with the kernel expanded block-diagonally (zeros between the
  groups) and ``metadata["nengo_groups"]``, because ``nir`` derives a Conv node's input
  channels from ``weight.shape[1]`` and so would reject the grouped node's own input
  edge; the importer restores the grouping.  A convolution into an ``Ensemble``'s
  decoded input is followed by a ``Flatten`` and a ``Linear`` of the encoders (nengo
  itself refuses to build a convolution of an Ensemble's decoded *output*).
* ``Probe`` -> ``Output``, after the probe's decoders (``Linear``) and filter (``LI``).

Names.  Each NIR node is named after its object's label (other characters than letters,
digits and ``_`` replaced by ``_``).  Probes are named first, so an ``Output`` keeps its
probe's label exactly and an export -> import -> export round trip returns the same
output names; any later object or helper node (``<name>_syn``, ``<name>_decoders``, ...)
whose name is taken gets the first free ``_1``, ``_2``, ... suffix.  Probes sharing a
label are suffixed the same way in ``network.all_probes`` order.

Tensor shapes.  NIR tensors are channels-first: ``(C, N)`` for 1-D and ``(C, H, W)``
for 2-D convolutions, flattened in C order.  Every ``Node`` or ``Ensemble`` that a
convolution reads or writes gets that tensor shape: its NIR node (``Input``, ``Scale``,
``LIF``, ``CubaLIF``, ``IF``) has parameters of shape ``(C, H, W)``, so the graph's
edges type-check.  With ``channels_last=True`` nengo orders the same values as
``(H, W, C)``, so such an object's neurons are *permuted* in NIR:
``ExportResult.layouts[obj]`` gives ``(shape, order)`` with ``order[i]`` the nengo
index of NIR element ``i`` (flattened); an ``Input`` of such a node expects its data
in NIR order.  Dense connections and probes *from* a tensor-shaped object go through
a ``Flatten`` (``start_dim=0``; the connection's weight columns permuted by
``order``; probes get a permutation ``Linear`` so the ``Output`` is in nengo order).
A dense connection *into* a tensor-shaped object, two convolutions that disagree on
an object's shape, and a biased ``SpikingRectifiedLinear`` population with a tensor
shape (its bias travels on an unfiltered flat ``Affine``) are errors naming the
object: NIR has no reshape node to express them.

Spikes follow NIR's convention of unit-area events: nengo's spike of height
``amplitude / dt`` lasting one step has area ``amplitude``, which is multiplied into the
outgoing weights.  Anything NIR cannot express (Python functions, learning rules,
rate neurons, other synapses, the convolution cases above) is an error
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

from nhw.backends.neuron_types import NEURON_TYPES
from nhw.errors import NIRError

#: Version tag written into every exported graph's metadata.
EXPORTER = "nhw-nir-export/1"


@dataclass
class ExportResult:
    """A NIR graph, the names given to the nengo objects, and what was left out."""

    graph: nir.NIRGraph
    names: dict = field(default_factory=dict)
    remainder: list[str] = field(default_factory=list)
    #: nengo object -> ``(shape, order)`` for objects given a channels-first tensor
    #: shape by a convolution (see the module docstring); others are flat, in order.
    layouts: dict = field(default_factory=dict)


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
        self.layouts: dict = {}
        self._taken: set[str] = set()
        self._parts: dict[tuple[str, str], str] = {}

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

    def part(self, owner: str, role: str) -> str:
        """The name of ``owner``'s helper node ``role`` (``<owner>_<role>``, e.g. ``x_syn``).

        Reserved like object names, so a helper never takes (or overwrites) the name
        of an object labelled the same; the same (owner, role) always gives the same name.
        """
        key = (owner, role)
        if key not in self._parts:
            base = f"{owner}_{role}"
            name, k = base, 1
            while name in self._taken:
                name, k = f"{base}_{k}", k + 1
            self._taken.add(name)
            self._parts[key] = name
        return self._parts[key]

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


def _channels_first(shape: nengo.transforms.ChannelShape) -> tuple[tuple[int, ...], np.ndarray]:
    """NIR's ``(C, *spatial)`` tensor shape for ``shape`` and the nengo index of each
    NIR element (flattened in C order)."""
    nir_shape = (shape.n_channels, *shape.spatial_shape)
    index = np.arange(shape.size).reshape(shape.shape)
    if shape.channels_last:
        index = np.moveaxis(index, -1, 0)
    return tuple(int(n) for n in nir_shape), index.reshape(-1)


def _symmetric_padding(conv: nengo.Convolution, conn) -> tuple[int, ...]:
    """NIR's symmetric per-dimension padding that reproduces nengo's ``conv.padding``.

    nengo pads like TensorFlow: ``"same"`` gives ``ceil(n / stride)`` outputs and puts
    ``floor(total / 2)`` zeros before the input.  NIR (PyTorch) pads ``p`` zeros on
    both sides; the windows are the same when ``p`` is nengo's leading padding and
    both give the same number of outputs (any extra trailing zeros are never read).
    """
    if conv.padding == "valid":
        return (0,) * conv.dimensions
    pads = []
    for n, k, s in zip(conv.input_shape.spatial_shape, conv.kernel_size, conv.strides):
        out = -(-n // s)
        before = max((out - 1) * s + k - n, 0) // 2
        if (n + 2 * before - k) // s + 1 != out:
            raise NIRError(
                f"{conn}: padding='same' with kernel {k}, stride {s} on {n} inputs pads "
                "asymmetrically, which NIR's symmetric padding cannot express")
        pads.append(before)
    return tuple(pads)


def _nir_kernel(conv: nengo.Convolution, kernel: np.ndarray) -> np.ndarray:
    """nengo's ``kernel_size + (C_in / groups, C_out)`` kernel as NIR's
    ``(C_out, C_in, *kernel_size)`` with the groups expanded into zero blocks."""
    w = np.moveaxis(np.asarray(kernel, float), (-1, -2), (0, 1))  # (C_out, C_in/g, *k)
    g = conv.groups
    if g == 1:
        return w
    c_out, cg = w.shape[:2]
    full = np.zeros((c_out, cg * g, *w.shape[2:]))
    per = c_out // g
    for i in range(g):
        # PyTorch and nengo both give group i the i-th block of input and of output channels
        full[i * per:(i + 1) * per, i * cg:(i + 1) * cg] = w[i * per:(i + 1) * per]
    return full


class _Exporter(_Builder):
    def run(self) -> ExportResult:
        net, model = self.network, self.model
        for conn in net.all_connections:
            if isinstance(conn.transform, nengo.Convolution):
                self._guard(conn, self._conv_layouts, conn)
        incoming: dict = {}
        for conn in net.all_connections:
            incoming.setdefault(conn.post_obj, []).append(conn)
            incoming.setdefault(getattr(conn.post_obj, "ensemble", None), []).append(conn)
        for probe in net.all_probes:
            # probes are the graph's outputs, read back by name: their labels come
            # first, so another object labelled the same is the one that gets a suffix
            self.name(probe, "probe")
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
        return ExportResult(graph, dict(self.names), list(self.problems), dict(self.layouts))

    def _guard(self, obj, method, *args) -> None:
        if obj in self.skipped:  # already reported (e.g. by the layout pass)
            return
        try:
            method(*args)
        except NIRError as exc:
            self.problem(obj, str(exc))

    # --- tensor layouts -------------------------------------------------------------
    def _conv_layouts(self, conn: nengo.Connection) -> None:
        """Give the objects a convolution reads and writes its channels-first shape."""
        conv = conn.transform
        # (nengo itself refuses to build a convolution of an Ensemble's decoded value)
        ends = {"from": (conn.pre_obj, conv.input_shape), "into": (conn.post_obj, conv.output_shape)}
        if isinstance(conn.post_obj, nengo.Ensemble):
            del ends["into"]  # encoded after a Flatten (see _convolution): no tensor shape
        for side, (obj, shape) in ends.items():
            if not isinstance(obj, (nengo.Node, nengo.ensemble.Neurons)):
                raise NIRError(f"a Convolution {side} {type(obj).__name__} cannot be expressed in NIR")
        if conn.pre_slice != slice(None) or conn.post_slice != slice(None):
            raise NIRError("a sliced Convolution connection cannot be expressed in NIR")
        if conv.dimensions not in (1, 2):
            raise NIRError(f"a {conv.dimensions}-D Convolution cannot be expressed in NIR (1-D and 2-D can)")
        for obj, shape in ends.values():
            obj = getattr(obj, "ensemble", obj)
            layout = _channels_first(shape)
            known = self.layouts.get(obj)
            if known is None:
                self.layouts[obj] = layout
            elif known[0] != layout[0] or not np.array_equal(known[1], layout[1]):
                raise NIRError(f"{obj} is read or written by convolutions as both channels-first shape "
                               f"{known[0]} and {layout[0]} (or a different channel order); a NIR node "
                               "has one tensor shape")

    def _shaped(self, obj, values) -> np.ndarray:
        """Per-element ``values`` of ``obj`` in NIR's order and tensor shape."""
        values = np.asarray(values, float)
        if obj not in self.layouts:
            return values
        shape, order = self.layouts[obj]
        return values[order].reshape(shape)

    def _flat_source(self, obj) -> tuple[str, int, float, np.ndarray | None]:
        """Like :meth:`_source`, but a flat output: a tensor-shaped source goes through
        one shared ``Flatten``, whose elements are in NIR order (``order``, else None)."""
        src, size, area = self._source(obj)
        owner = getattr(obj, "ensemble", obj)
        if owner not in self.layouts:
            return src, size, area, None
        shape, order = self.layouts[owner]
        flat = self.part(src, "flatten")
        if flat not in self.nodes:
            self.add(flat, nir.Flatten(input_type=np.array(shape), start_dim=0))
            self.edges.append((src, flat))
        return flat, size, area, order

    # --- objects ------------------------------------------------------------------
    def node(self, node: nengo.Node) -> None:
        name = self.name(node, "node")
        shape = self.layouts[node][0] if node in self.layouts else None
        if node.output is None:
            self.add(name, nir.Scale(np.ones(shape or node.size_in)))
        elif node.size_in == 0:
            self.add(name, nir.Input(input_type={"input": np.array(shape or [node.size_out])}))
        else:
            raise NIRError("a Node computing a Python function of its input cannot be expressed in NIR")

    def ensemble(self, ens: nengo.Ensemble, conns: list) -> None:
        name = self.name(ens, "ens")
        built = self.model.params[ens]
        gain, bias = np.asarray(built.gain, float), np.asarray(built.bias, float)
        neurons = ens.neuron_type
        # nengo starts neurons at random voltages (seeded); NIR states start at 0, so
        # the built values travel in the metadata for exact round trips.
        voltage = self.model.sig[ens.neurons].get("voltage")
        v_init = [] if voltage is None else self._shaped(ens, voltage.initial_value).reshape(-1).tolist()
        if ens in self.layouts and type(neurons) is nengo.SpikingRectifiedLinear and np.any(bias != 0):
            raise NIRError("a biased SpikingRectifiedLinear population with a convolution's tensor shape "
                           "cannot be expressed in NIR (IF has no bias; nhw carries it on a flat Affine, "
                           "and NIR has no reshape node); use bias=0, or LIF neurons")
        shape = self.layouts[ens][0] if ens in self.layouts else ens.n_neurons  # NIR's parameter shape
        gain, bias = self._shaped(ens, gain), self._shaped(ens, bias)
        write = NEURON_TYPES.lookup(type(neurons), "nir", exact=True)
        if write is None:
            raise NIRError(
                f"{ens}: neuron type {type(neurons).__name__} cannot be expressed in NIR "
                f"({' and '.join(NEURON_TYPES.supported('nir'))} can)"
            )
        write(self, name, neurons, gain, bias, shape, v_init, conns)

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
        post_ens = getattr(post, "ensemble", post)
        dst = self.names.get(post_ens)
        if post_ens in self.skipped or dst is None:
            raise NIRError(f"its target {post_ens} was not exported")
        if isinstance(conn.transform, nengo.Convolution):
            self._convolution(conn, dst)
            return
        if post_ens in self.layouts:
            raise NIRError(f"a {type(conn.transform).__name__} connection into {post_ens}, which a "
                           f"convolution gives the tensor shape {self.layouts[post_ens][0]}, cannot be "
                           "expressed in NIR (no node reshapes a vector into a tensor)")
        built = self.model.params[conn]
        src, src_size, area, order = self._flat_source(conn.pre_obj)
        if isinstance(conn.pre_obj, nengo.Ensemble):
            if conn.solver.weights:
                raise NIRError("solver weights=True is not exported yet; use decoders")
            w = np.asarray(built.weights, float)  # (size_out, n_pre): decoders with the transform
        else:
            w = _place(_transform_matrix(conn, built), slice(None), conn.pre_slice, (conn.size_out, src_size))
        w = w * area
        if order is not None:
            w = w[:, order]  # the Flatten emits the source in NIR order
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
                affine = self.add(self.part(dst, "bias"), nir.Affine(np.zeros((len(bias), src_size)), bias))
                self.edges += [(src, affine), (affine, dst)]
        self.add(name, nir.Linear(w))
        self.edges.append((src, name))
        self._synapse(conn, name, w.shape[:1], dst)

    def _synapse(self, conn, name: str, shape: tuple, dst: str) -> None:
        """Edge from ``name`` to ``dst`` through ``conn``'s synapse as an ``LI`` of ``shape``
        (none when the synapse is folded into a ``CubaLIF`` target)."""
        tau = _lowpass_tau(conn.synapse)
        if tau is not None and not isinstance(self.nodes[dst], nir.CubaLIF):
            syn = self.add(self.part(name, "syn"), nir.LI(tau=np.full(shape, tau), r=np.ones(shape),
                                                          v_leak=np.zeros(shape)))
            self.edges.append((name, syn))
            name = syn
        self.edges.append((name, dst))

    def _convolution(self, conn: nengo.Connection, dst: str) -> None:
        """A ``nengo.Convolution`` connection as NIR ``Conv1d`` / ``Conv2d`` (+ ``LI``)."""
        conv = conn.transform
        src, _, area = self._source(conn.pre_obj)  # tensor-shaped by _conv_layouts
        weight = _nir_kernel(conv, self.model.params[conn].weights) * area
        padding = _symmetric_padding(conv, conn)
        meta = {"nengo_groups": int(conv.groups)} if conv.groups > 1 else {}
        bias = np.zeros(conv.n_filters)  # nengo convolutions have no bias
        if conv.dimensions == 1:
            node = nir.Conv1d(input_shape=int(conv.input_shape.spatial_shape[0]), weight=weight,
                              stride=int(conv.strides[0]), padding=padding[0], dilation=1, groups=1,
                              bias=bias, metadata=meta)
        else:
            node = nir.Conv2d(input_shape=tuple(int(n) for n in conv.input_shape.spatial_shape), weight=weight,
                              stride=tuple(int(n) for n in conv.strides), padding=padding, dilation=(1, 1),
                              groups=1, bias=bias, metadata=meta)
        shape, order = _channels_first(conv.output_shape)
        if tuple(int(n) for n in node.output_type["output"]) != shape:  # guards the padding algebra
            raise NIRError(f"NIR computes output shape {tuple(node.output_type['output'])} for this "
                           f"convolution, nengo {shape}")
        name = self.add(self.name(conn, "conv"), node)
        self.edges.append((src, name))
        post = conn.post_obj
        if isinstance(post, nengo.Ensemble):
            # an Ensemble's input is its encoders applied to a vector: flatten the tensor
            # and fold encoders / gain (columns in NIR order) into a Linear, as for Dense
            params = self.model.params[post]
            enc = np.asarray(params.scaled_encoders, float) / np.asarray(params.gain, float)[:, None]
            flat = self.add(self.part(name, "flatten"), nir.Flatten(input_type=np.array(shape), start_dim=0))
            encode = self.add(self.part(name, "encoders"), nir.Linear(enc[:, order]))
            self.edges += [(name, flat), (flat, encode)]
            name, shape = encode, (post.n_neurons,)
        self._synapse(conn, name, shape, dst)

    def probe(self, probe: nengo.Probe) -> None:
        target = probe.target
        name = self.name(probe, "probe")
        if isinstance(target, nengo.Ensemble) and probe.attr == "decoded_output":
            src, _, area, order = self._flat_source(target)
            hidden = next(k for k in self.model.params if isinstance(k, nengo.Connection) and k.post_obj is probe)
            w = np.asarray(self.model.params[hidden].weights, float) * area
            last = self.add(self.part(name, "decoders"), nir.Linear(w if order is None else w[:, order]))
            self.edges.append((src, last))
            size = w.shape[0]
        elif isinstance(target, (nengo.ensemble.Neurons, nengo.Node)) and probe.attr == "output":
            last, size, _, order = self._flat_source(target)
            if order is not None and np.any(order != np.arange(size)):
                # the Output is in nengo's order, so probe data compares directly
                perm = np.zeros((size, size))
                perm[order, np.arange(size)] = 1.0
                last = self.add(self.part(name, "order"), nir.Linear(perm))
                self.edges.append((self.part(self.names[getattr(target, 'ensemble', target)], "flatten"), last))
        else:
            raise NIRError(f"probing {type(target).__name__}.{probe.attr} cannot be expressed in NIR")
        tau = _lowpass_tau(probe.synapse)
        if tau is not None:
            syn = self.add(self.part(name, "syn"), nir.LI(tau=np.full(size, tau), r=np.ones(size),
                                                          v_leak=np.zeros(size)))
            self.edges.append((last, syn))
            last = syn
        self.add(name, nir.Output(output_type={"output": np.array([size])}))
        self.edges.append((last, name))


def export_nir(network: nengo.Network, *, dt: float = 0.001, allow_partial: bool = False,
               names: dict | None = None, profile: str = "spec") -> ExportResult:
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
    profile
        ``"spec"`` (strict NIR, the default) or a peer's name in
        :data:`nhw.toolchain.nir.profiles.PROFILES` (``snntorch``, ``norse``,
        ``rockpool``, ``sinabs``): the equivalent normalised graph that peer runs.

    Returns
    -------
    ExportResult
        ``graph`` (a ``nir.NIRGraph``), ``names`` (nengo object -> NIR node name) and
        ``remainder`` (what was left out, with the reason; for a peer profile also the
        ensembles whose lower voltage bound the peer lacks, see
        :func:`nhw.toolchain.nir.profiles.to_profile`).

    Raises
    ------
    NIRError
        Something in the network has no NIR equivalent (all problems are listed).
    """
    model = Model(dt=dt)
    model.build(network)
    from nhw.toolchain.nir.profiles import UNCLAMPED_KEY, get_profile, to_profile

    chosen = get_profile(profile)  # an unknown name fails before the build's work is done
    exporter = _Exporter(network, model, allow_partial)
    for obj, name in (names or {}).items():
        exporter.name(obj, name)
    result = exporter.run()
    if chosen.normalise:
        rates = {}
        for ens in network.all_ensembles:
            built = model.params.get(ens)
            if ens in result.names and built is not None and getattr(built, "max_rates", None) is not None:
                rates[result.names[ens]] = float(np.max(built.max_rates))
        labels = {name: obj.label for obj, name in result.names.items()
                  if isinstance(obj, nengo.Ensemble) and obj.label and obj.label != name}
        result.graph = to_profile(result.graph, chosen, dt=dt, max_rates=rates, labels=labels)
        # what the peer cannot represent but may not matter for this input: listed, not refused
        result.remainder += [f"lower voltage bound: {line}"
                             for line in (result.graph.metadata or {}).get(UNCLAMPED_KEY, [])]
    return result


# --- NIR node writers, by neuron type (the shared registry's "nir" entries) ----------
def _write_lif(exp: _Exporter, name: str, neurons: nengo.LIF, gain, bias, shape, v_init: list, conns: list) -> None:
    """``CubaLIF`` when one Lowpass synapse feeds the ensemble, else ``LIF``."""
    # NIR's LIF has no lower voltage bound; nengo's clamps at min_voltage (0 by default,
    # -inf is NIR's LIF exactly): recorded for nhw, and reported by peer profiles
    meta = {"tau_ref": float(neurons.tau_ref), "min_voltage": float(neurons.min_voltage), "v_init": v_init,
            "nengo_neuron_type": "LIF"}
    taus = {_lowpass_tau(c.synapse) for c in conns}
    common = dict(r=gain, v_leak=bias, v_threshold=np.ones(shape), v_reset=np.zeros(shape), metadata=meta)
    if len(taus) == 1 and None not in taus:
        exp.add(name, nir.CubaLIF(tau_syn=np.full(shape, taus.pop()), tau_mem=np.full(shape, neurons.tau_rc),
                                  w_in=np.ones(shape), **common))
    else:
        exp.add(name, nir.LIF(tau=np.full(shape, neurons.tau_rc), **common))


def _write_if(exp: _Exporter, name: str, neurons: nengo.SpikingRectifiedLinear, gain, bias, shape,
              v_init: list, conns: list) -> None:
    """``IF`` with nengo's subtractive reset recorded; the bias rides on the incoming ``Affine``."""
    if np.any(bias != 0) and not conns:
        raise NIRError("a SpikingRectifiedLinear bias needs an incoming connection to carry it")
    meta = {"reset": "subtract", "rectified_input": True, "v_init": v_init,
            "nengo_neuron_type": "SpikingRectifiedLinear"}
    exp.add(name, nir.IF(r=gain, v_threshold=np.ones(shape), v_reset=np.zeros(shape), metadata=meta))


NEURON_TYPES.attach(nengo.LIF, "nir", _write_lif)
NEURON_TYPES.attach(nengo.SpikingRectifiedLinear, "nir", _write_if)
