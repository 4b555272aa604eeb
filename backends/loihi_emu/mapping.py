"""Map nengo's *built* model onto chip objects (the host-chip interface).

Input: a ``nengo.builder.Model`` after ``model.build(network)``.  Output: a
:class:`MappedModel` holding the :class:`~nhw.hw_emulator.blocks.ChipNetwork` (what runs on
the chip) and the host-side taps the backend needs: :class:`ChipInput` (a host value
entering as spikes), :class:`ChipOutput` (spikes leaving the chip, decoded on the
host) and probe plans.

What runs where:

* Ensembles with a neuron type in :data:`~nhw.hw_emulator.neurons.NEURON_KINDS` run on the
  chip; any other neuron type is an :class:`UnsupportedFeatureError` naming the ensemble.
* Nodes run on the host.  Node -> chip connections become pairs of on/off spike
  generators per dimension (``input_pairs`` copies each); chip -> host connections
  and probes are decoded from spikes on the host.
* Decoded chip -> chip connections use full neuron-to-neuron weights
  (``decode="weights"``) or on-chip decode neurons (``decode="neurons"``);
  ``decode="auto"`` (the default) chooses per target ensemble: weights while they
  fit the cores its compartments need, decode neurons for the largest connections
  when they do not (:meth:`_Mapper.resolve_auto`).
* Decoders of decoded connections from chip ensembles are solved, with the
  connection's own solver, on the chip's discretised rate curve
  (``decoder_rates="chip"``, the default) or kept as nengo solved them on its
  continuous curve (``decoder_rates="nengo"``).
* Lowpass (or no) synapses run on the chip; an ensemble receiving several time
  constants gets one dendrite compartment per extra time constant.

The chip objects themselves are numpy-only (:mod:`nhw.hw_emulator`); this module and
its helpers are the only code that reads nengo's built model for the chip.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from nengo.connection import Connection, LearningRule
from nengo.ensemble import Ensemble, Neurons
from nengo.node import Node
from nengo.probe import Probe
from nhw.hw_emulator.blocks import ChipNetwork, InputAxons
from nhw.hw_emulator.neurons import DECODE_KIND
from nhw.hw_emulator.populations import Population, make_blocks, make_group
from nhw.hw_emulator.sparse import SparseWeights

from nhw.errors import UnsupportedFeatureError

from .chip_decoders import DecoderSolver
from .chip_learning import LearningMapper
from .chip_rules import (
    FAIL,
    combine,
    dense_matrix,
    describe,
    fits_cores,
    incoming_cost,
    chip_neuron,
    post_matrix,
    select_matrix,
    synapse_tau,
)
from .conv import conv_coo, conv_dense, is_conv, pixel_atoms
from .taps import (
    ChipInput,
    ChipOutput,
    LearningTap,
    MapOptions,
    MappedModel,
    VoltageOutput,
)

__all__ = ["ChipInput", "ChipOutput", "LearningTap", "MapOptions", "MappedModel", "VoltageOutput", "map_model"]



#: Host-input weight matrices with at least this many entries, at most 5 % nonzero,
#: are kept as coordinates (:class:`~nhw.hw_emulator.sparse.SparseWeights`).
SPARSE_INPUT_MIN_SIZE = 1 << 16

class _Mapper(DecoderSolver, LearningMapper):
    """One mapping run: ensembles, connections, probes, then the chip objects.

    Decoder solving (:mod:`.chip_decoders`) and PES connections (:mod:`.chip_learning`)
    are mixed in from their own modules.
    """

    def __init__(self, model: Any, options: MapOptions) -> None:
        self.model = model
        self.opt = options
        self.spec = options.spec
        self.dt = float(model.dt)
        self.out = MappedModel(ChipNetwork(spec=self.spec), options=options)
        self.pops: dict = {}  # Ensemble -> Population
        self.extra: list = []  # decode-neuron populations
        #: decode="auto": (target, incoming entry, src, w, conn, tau) of weights to confirm
        self.pending: list = []

    # ---------------------------------------------------------------- objects
    def run(self) -> MappedModel:
        objs = list(self.model.params)
        for obj in objs:
            if isinstance(obj, Ensemble):
                self.add_ensemble(obj)
            elif isinstance(obj, Node):
                self.out.nodes.append(obj)
        conns = [c for c in objs if isinstance(c, Connection)]
        self.passthrough = {n for n in self.out.nodes if n.output is None}
        self.node_in: dict = {n: [] for n in self.out.nodes}
        for c in conns:
            if c.learning_rule_type is not None:
                self.check_learning(c)
            if isinstance(c.post_obj, Node):
                self.node_in[c.post_obj].append(c)
            elif isinstance(c.post_obj, LearningRule):
                self.node_in.setdefault(c.post_obj, []).append(c)
        self.host_needed: set = set()
        self.to_host: list = []  # (conn) whose post is a Node or Probe
        for c in conns:
            self.add_connection(c)
        for probe in self.model.probes:
            self.add_probe(probe)
        self.resolve_auto()
        self.resolve_host()
        self.finalize()
        return self.out

    def resolve_host(self) -> None:
        """Keep only the host nodes and chip outputs whose values are actually used."""
        needed = set(self.host_needed) | (set(self.out.nodes) - self.passthrough)
        needed |= {tap.rule for tap in self.out.learning}
        needed |= {p.target for p, plan in self.out.probe_plans.items() if plan[0] == "node"}
        stack = list(needed)
        while stack:
            node = stack.pop()
            for c in self.node_in.get(node, ()):
                if isinstance(c.pre_obj, Node) and c.pre_obj not in needed:
                    needed.add(c.pre_obj)
                    stack.append(c.pre_obj)
        self.out.nodes = [n for n in self.out.nodes if n in needed]
        for c in self.to_host:
            if isinstance(c.post_obj, Probe) or c.post_obj in needed:
                if isinstance(c.pre_obj, Node):
                    if isinstance(c.post_obj, (Node, LearningRule)):
                        self.out.host_connections.append(c)
                else:
                    self.out.outputs.append(ChipOutput(c, self.pops[self.pre_ens(c)], self.chip_matrix(c), 1.0, c.synapse))

    def pre_ens(self, c: Connection) -> Ensemble:
        return c.pre_obj if isinstance(c.pre_obj, Ensemble) else c.pre_obj.ensemble

    def chip_matrix(self, c: Connection) -> np.ndarray:
        """``size_out x n_pre`` map from pre spikes (amplitude 1/dt) to the connection's output."""
        pre = c.pre_obj
        if isinstance(pre, Ensemble):
            w = self.decoded_weights(c)
        else:
            t = self.transform_matrix(c)
            w = t @ select_matrix(c.size_mid, pre.ensemble.n_neurons, c.pre_slice)
        return w * self.pops[self.pre_ens(c)].amplitude

    def sources(self, node: Node, stack: tuple = ()) -> list | None:
        """Linear sources of a passthrough node: ``(kind, what, M, synapse, decoded)``.

        ``kind`` is ``"chip"`` (``what`` a population; ``M @ spikes/dt``) or ``"host"``
        (``what`` the first connection from a host node; ``M @ f(x[pre_slice])``).
        ``None`` when the node cannot be collapsed (a cycle, or two filters in series).
        """
        memo = self.__dict__.setdefault("_sources", {})
        if node in memo:
            return memo[node]
        if node in stack:
            return None
        out = []
        for c in self.node_in[node]:
            if c.learning_rule_type is not None:
                memo[node] = None  # a learned connection's output only exists on the chip
                return None
            pm = post_matrix(c.size_out, node.size_in, c.post_slice)
            pre = c.pre_obj
            if isinstance(pre, Node) and pre in self.passthrough and c.function is None:
                sub = self.sources(pre, stack + (node,))
                if sub is None:
                    memo[node] = None
                    return None
                t = self.transform_matrix(c)
                t = pm @ t @ select_matrix(c.size_mid, pre.size_out, c.pre_slice)
                for kind, what, m, syn, dec in sub:
                    both = combine(syn, c.synapse)
                    if both is FAIL:
                        memo[node] = None
                        return None
                    out.append((kind, what, t @ m, both, dec))
            elif isinstance(pre, Node):
                t = self.transform_matrix(c)
                out.append(("host", c, pm @ t, c.synapse, False))
            else:
                out.append(("chip", self.pops[self.pre_ens(c)], pm @ self.chip_matrix(c), c.synapse,
                            isinstance(pre, Ensemble)))
        memo[node] = out
        return out

    def add_ensemble(self, ens: Ensemble) -> None:
        kind, registers = chip_neuron(ens.neuron_type, ens)
        if ens.noise is not None:
            raise UnsupportedFeatureError(f"{describe(ens)}: ensemble noise ({ens.noise}) cannot run on the chip; remove it")
        built = self.model.params[ens]
        p = kind.params(registers, self.dt, self.spec)
        pop = Population(
            ens.label or f"ens{len(self.pops)}", ens, kind, p, ens.n_neurons,
            np.asarray(built.bias, dtype=np.float64), float(getattr(ens.neuron_type, "amplitude", 1.0)),
        )
        # nengo's initial neuron state (LIF voltages start uniformly in [0, 1))
        sig = self.model.sig[ens.neurons]
        if "voltage" in sig:
            v0 = np.asarray(sig["voltage"].initial_value, dtype=np.float64)
            if np.any(v0 != 0):
                pop.v_init_frac = np.clip(v0, p.min_voltage if np.isfinite(p.min_voltage) else -1.0, 1.0)
        if "refractory_time" in sig:
            r0 = np.asarray(sig["refractory_time"].initial_value, dtype=np.float64)
            if np.any(r0 != 0):
                pop.hold_init = np.round(r0 / self.dt).astype(np.int64)
        self.pops[ens] = pop

    # ------------------------------------------------------------ connections
    def add_connection(self, conn: Connection) -> None:
        pre, post = conn.pre_obj, conn.post_obj
        if conn.learning_rule_type is not None:
            self.add_learned(conn)
            return
        if isinstance(post, (Node, Probe, LearningRule)):
            self.to_host.append(conn)
            return
        if not isinstance(post, (Ensemble, Neurons)):
            raise UnsupportedFeatureError(f"{describe(conn)}: post object {describe(post)} cannot be mapped")
        if isinstance(pre, Node):
            srcs = self.sources(pre) if pre in self.passthrough and conn.function is None else None
            if srcs is None or any(combine(syn, conn.synapse) is FAIL for _, _, _, syn, _ in srcs):
                self.host_needed.add(pre)
                t = self.transform_matrix(conn)
                self.add_input(conn, t, conn, conn.synapse)
                return
            # collapse the passthrough node: route its sources straight to the post
            t = self.transform_matrix(conn)
            t = t @ select_matrix(conn.size_mid, pre.size_out, conn.pre_slice)
            for kind, what, m, syn, decoded in srcs:
                w, both = t @ m, combine(syn, conn.synapse)
                if not np.any(w):
                    continue
                if kind == "host":
                    self.host_needed.add(what.pre_obj)
                    self.add_input(what, w, conn, both)
                else:
                    self.chip_to_chip(what, w, conn, both, decoded)
            return
        if is_conv(conn.transform) and isinstance(pre, Neurons) and isinstance(post, Neurons):
            self.add_conv(conn)
            return
        if isinstance(pre, Ensemble) and conn.solver.weights:
            # nengo folds the post encoders (and post_slice) into these weights,
            # so there is one row per post neuron
            w_j = np.asarray(self.decoded_weights(conn))
            post_ens = post if isinstance(post, Ensemble) else post.ensemble
            full = w_j.reshape(post_ens.n_neurons, pre.n_neurons)
            src = self.pops[pre]
            self.connect(src, self.pops[post_ens], full * src.amplitude, conn)
            return
        if not isinstance(pre, (Ensemble, Neurons)):
            raise UnsupportedFeatureError(f"{describe(conn)}: pre object {describe(pre)} cannot be mapped")
        self.chip_to_chip(self.pops[self.pre_ens(conn)], self.chip_matrix(conn), conn, conn.synapse,
                          isinstance(pre, Ensemble))

    def transform_matrix(self, conn: Connection) -> np.ndarray:
        """``size_out x size_mid`` matrix of ``conn``'s transform as nengo built it
        (a convolution as its full matrix: host-side and non-shared uses)."""
        if is_conv(conn.transform):
            return conv_dense(conn.transform, self.built_weights(conn))
        return dense_matrix(self.built_weights(conn), conn.size_out, conn.size_mid, conn)

    def add_conv(self, conn: Connection) -> None:
        """A convolution between neurons as shared synapse lists on population axons.

        One population axon per input pixel of the pre neurons (its channel is the
        spike's atom); the kernel, times the post gains, is stored once per distinct
        footprint (:class:`~nhw.hw_emulator.shared_synapses.SharedSynapseGroup`).  The
        post block gets one voltage scale so that its neurons' weights stay equal.
        """
        pre_ens, post_ens = conn.pre_obj.ensemble, conn.post_obj.ensemble
        src, pop = self.pops[pre_ens], self.pops[post_ens]
        rows, cols, vals = conv_coo(conn.transform, self.built_weights(conn))
        pre_idx = np.arange(pre_ens.n_neurons)[conn.pre_slice]
        post_idx = np.arange(post_ens.n_neurons)[conn.post_slice]
        rows, cols = post_idx[rows], pre_idx[cols]
        gain = np.asarray(self.model.params[post_ens].gain, dtype=np.float64)
        vals = vals * gain[rows] * src.amplitude
        pix, atom = pixel_atoms(conn.transform.input_shape)
        # pre neurons outside pre_slice get axons of their own (they have no synapses here)
        n_pix = int(pix.max(initial=-1)) + 1
        axon_of = n_pix + np.arange(pre_ens.n_neurons)
        atom_of = np.zeros(pre_ens.n_neurons, np.int64)
        axon_of[pre_idx], atom_of[pre_idx] = pix, atom
        w = SparseWeights(rows, cols, vals, (post_ens.n_neurons, pre_ens.n_neurons), axon_of, atom_of)
        pop.uniform_scale = True
        self.connect(src, pop, w, conn, tau=synapse_tau(conn.synapse, conn))

    def chip_to_chip(self, src: Population, w: np.ndarray, conn: Connection, synapse: Any,
                     decoded: bool) -> None:
        """Synapses for ``conn``'s output ``w @ spikes/dt`` of ``src`` (``size_out x n_src``)."""
        tau = synapse_tau(synapse, conn)
        choice = self.opt.decode if decoded and isinstance(conn.post_obj, Ensemble) else "weights"
        if choice == "neurons":
            self.add_decode_neurons(conn, src, w, tau)
            self.note_choice(conn, "neurons")
            return
        pop, enc = self.post_encoders(conn)
        self.connect(src, pop, enc @ w, conn, tau=tau)
        if choice == "auto":
            # queued in place (so a kept weight matrix keeps its order among the
            # target's inputs) and confirmed once all of the target's inputs are known
            self.pending.append((pop, pop.incoming[-1], src, w, conn, tau))
        elif decoded and isinstance(conn.post_obj, Ensemble):
            self.note_choice(conn, "weights")

    def note_choice(self, conn: Connection, choice: str) -> None:
        """Record how a decoded chip -> chip connection was built (``MappedModel.decode_choices``)."""
        old = self.out.decode_choices.get(conn, choice)
        self.out.decode_choices[conn] = choice if old == choice else "weights+neurons"

    def resolve_auto(self) -> None:
        """``decode="auto"``: keep weights where they fit, else switch to decode neurons.

        Per target population, the incoming synapse memory and input axons
        (:func:`.chip_rules.incoming_cost`) must fit ``auto_core_factor`` times the cores
        its compartments need (:func:`.chip_rules.fits_cores`): weights are exact up to
        quantisation, so a few extra cores for them are worth it.  Otherwise the pending weight matrix with the most
        synapse bits is replaced by decode neurons (``2 x decode_pairs`` rows per
        dimension into the target), and the test repeats.
        """
        by_pop: dict = {}
        for pop, *item in self.pending:
            by_pop.setdefault(pop, []).append(item)
        spec = self.spec
        for pop, items in by_pop.items():
            costs: dict = {}  # id(incoming entry) -> (bits, axons), with the target's pieces

            def total(cores: int) -> list:
                out = []
                for entry in pop.incoming:
                    src, w_j = entry[0], entry[1]
                    copies = src.max_count if isinstance(src, InputAxons) else 1
                    if entry[3] in pop.learning:
                        w_j = np.ones_like(w_j)  # learned weights: every synapse exists
                    costs[id(entry)] = incoming_cost(w_j, copies, cores, spec)
                    out.append(costs[id(entry)])
                return out

            while True:
                taus = {entry[2] for entry in pop.incoming}
                n_comp = max(len(taus), 1)
                _, cores = fits_cores(pop.n, n_comp, [], spec)
                budget = cores * self.opt.auto_core_factor
                incoming = total(budget)
                ok = (sum(b for b, _ in incoming) <= budget * spec.synapse_memory_bits
                      and sum(a for _, a in incoming) <= spec.input_axons_per_core)
                if ok or not items:
                    break
                # the largest weight matrix into this target goes through decode neurons
                k = max(range(len(items)), key=lambda i: costs[id(items[i][0])][0])
                entry, src, w, conn, tau = items.pop(k)
                pop.incoming[:] = [e for e in pop.incoming if e is not entry]
                self.add_decode_neurons(conn, src, w, tau)
                self.note_choice(conn, "neurons")
            for _, _, _, conn, _ in items:
                self.note_choice(conn, "weights")
        self.pending = []

    def post_encoders(self, conn: Connection) -> tuple[Population, np.ndarray]:
        """Target population and ``n_post x size_out`` matrix from values to currents."""
        post = conn.post_obj
        if isinstance(post, Ensemble):
            pm = post_matrix(conn.size_out, post.size_in, conn.post_slice)
            return self.pops[post], self.model.params[post].scaled_encoders @ pm
        ens = post.ensemble
        pm = post_matrix(conn.size_out, ens.n_neurons, conn.post_slice)
        return self.pops[ens], self.model.params[ens].gain[:, None] * pm

    def add_input(self, conn: Connection, transform: np.ndarray, post_conn: Connection, synapse: Any) -> None:
        """Host value ``transform @ f(x[pre_slice])`` of ``conn`` sent as spikes to ``post_conn``'s post."""
        pop, enc = self.post_encoders(post_conn)
        tau = synapse_tau(synapse, post_conn)
        d, k = post_conn.size_out, int(self.opt.input_pairs)
        post = post_conn.post_obj
        radius = post.radius if isinstance(post, Ensemble) else 1.0
        amp = np.full(d, self.opt.input_range * radius / k)
        node = conn.pre_obj
        if not callable(node.output) and node.output is not None and not isinstance(node.output, nengo.Process):
            # a constant node: size the spike amplitude so its value is representable
            x = np.asarray(node.output, dtype=np.float64)[conn.pre_slice]
            if conn.function is not None:
                x = np.atleast_1d(np.asarray(conn.function(x), dtype=np.float64))
            amp = np.maximum(amp, np.abs(transform @ x) / (0.9 * k))
        axons = self.out.chip.add_input(InputAxons(f"{describe(post_conn)}.input", 2 * d, k, post_conn))
        self.out.inputs.append(ChipInput(conn, axons, transform, amp, k))
        # a count of one on axon (i, sign) is the value sign * amp[i] for one step
        a = amp * self.dt
        if enc.size >= SPARSE_INPUT_MIN_SIZE and np.count_nonzero(enc) <= 0.05 * enc.size:
            # e.g. values sent straight to neurons (a converted CNN's first layer: one
            # synapse per axon into thousands of neurons): coordinates, never dense;
            # each axon is its own population axon
            r, c = np.nonzero(enc)
            v = enc[r, c] * a[c]
            w = SparseWeights(np.concatenate([r, r]), np.concatenate([c, c + d]), np.concatenate([v, -v]),
                              (enc.shape[0], 2 * d), np.arange(2 * d), np.zeros(2 * d, np.int64))
        else:
            w = np.concatenate([enc * a, -enc * a], axis=1)
        self.connect(axons, pop, w, post_conn, tau=tau)

    def decoded_range(self, src: Population, w: np.ndarray) -> np.ndarray:
        """Largest ``|w @ rates|`` per output dimension over the pre ensemble's evaluation points."""
        pre = src.owner
        x = np.dot(self.model.params[pre].eval_points, self.model.params[pre].encoders.T / pre.radius)
        return np.abs(self.ens_rates(pre, x) @ w.T).max(axis=0)

    def decode_population(self, conn: Connection, src: Population, y_max: np.ndarray) -> tuple:
        """Biased on/off decode-neuron pairs for ``conn``: ``(population, sign, dim, r1, a)``.

        Each copy fires at ``r0 +- r1 * y`` (Hz): the bias keeps both neurons of a pair
        active, so nothing is rectified and the difference of their rates is linear in
        ``y`` to first order; copies get dithered biases so the integer-period
        staircase of each neuron averages out across copies.  ``r1 = 0.8 r0 / y_max``
        per dimension; a spike of the (sign, dim) neuron stands for ``sign * a[dim]``.
        """
        d, k = conn.size_out, int(self.opt.decode_pairs)
        r0 = float(self.opt.decode_rate)
        r1 = 0.8 * r0 / y_max  # per dimension
        p = DECODE_KIND.params(None, self.dt, self.spec)
        sign = np.repeat([1.0, -1.0], d * k)
        dim = np.tile(np.repeat(np.arange(d), k), 2)
        copy = np.tile(np.arange(k), 2 * d)
        dither = (copy + 0.5) / k - 0.5
        bias = r0 * (1.0 + 0.5 * dither)
        post_label = getattr(conn.post_obj, "label", None) or type(conn.post_obj).__name__
        dec = Population(f"{src.label}->{post_label}.decode", conn, DECODE_KIND, p, 2 * d * k, bias)
        dec.v_init_frac = ((copy * 0.618) % 1.0) * 0.99
        self.extra.append(dec)
        # slope of the chip's IF rate curve at r0 (reset to 0 loses ~half a step)
        slope = 1.0 / (1.0 + 0.5 * r0 * self.dt) ** 2
        a = 1.0 / (2 * k * r1 * slope)
        return dec, sign, dim, r1, a

    def add_decode_neurons(self, conn: Connection, src: Population, w: np.ndarray, tau: float) -> None:
        """Decoded value ``w @ spikes/dt`` of ``src`` re-encoded by decode neurons into the post."""
        # the decoded value's range (a transform can take it well beyond the post radius)
        y_max = np.maximum(self.decoded_range(src, w), 1e-3 * conn.post_obj.radius)
        dec, sign, dim, r1, a = self.decode_population(conn, src, y_max)
        if self.opt.decode_synapse == "post":
            # the integrate-and-fire decode neurons integrate the pre spikes
            # unfiltered, and the connection's own filter smooths their spikes into
            # the post: one filter per hop, as in nengo (a short extra filter there
            # let spike noise through the post's convex rate curve and biased each
            # hop upward).  nengo-loihi instead filters the decode neurons' input with
            # the connection's synapse and their output with a short one: "pre"
            tau_in, tau_out = 0.0, tau
        else:
            # the connection's filter acts on the decode neurons' input (before spiking)
            tau_in, tau_out = tau, self.opt.decode_tau
        self.connect(src, dec, sign[:, None] * w[dim] * r1[dim][:, None], conn, tau=tau_in)
        post_pop, enc = self.post_encoders(conn)
        self.connect(dec, post_pop, enc[:, dim] * (sign * a[dim]), conn, tau=tau_out)

    def connect(self, src: Any, dst: Population, w_j: np.ndarray, owner: Any, tau: float | None = None) -> None:
        """Queue synapses: ``w_j[i, j]`` nengo current per spike (amplitude 1/dt) of source j."""
        if tau is None:
            tau = synapse_tau(owner.synapse, owner)
        if not isinstance(w_j, SparseWeights):
            w_j = np.asarray(w_j, dtype=np.float64)
        dst.incoming.append((src, w_j, float(tau), owner))

    # ----------------------------------------------------------------- probes
    def add_probe(self, probe: Probe) -> None:
        obj, attr = probe.obj, probe.attr
        plans = self.out.probe_plans
        if isinstance(obj, Node) and attr == "output":
            srcs = self.sources(obj) if obj in self.passthrough else None
            if srcs and all(kind == "chip" for kind, *_ in srcs):
                # a probed passthrough node fed only by the chip: decode its sources
                # directly so that no host node sits between chip and probe
                outs = []
                for _, pop, m, syn, _ in srcs:
                    outs.append(ChipOutput(probe, pop, m, 1.0, syn))
                self.out.outputs.extend(outs)
                plans[probe] = ("sum", outs)
                # the probe's own synapse is applied on the host after the sum
            else:
                plans[probe] = ("node", obj)
        elif isinstance(obj, Ensemble) and attr == "decoded_output":
            conn = next(c for c in self.to_host if c.post_obj is probe)
            self.to_host.remove(conn)
            out = ChipOutput(probe, self.pops[obj], self.chip_matrix(conn), 1.0, probe.synapse)
            self.out.outputs.append(out)
            plans[probe] = ("output", out)
        elif isinstance(obj, Neurons) and attr in ("output", "spikes"):
            out = ChipOutput(probe, self.pops[obj.ensemble], None, self.pops[obj.ensemble].amplitude, probe.synapse)
            self.out.outputs.append(out)
            plans[probe] = ("output", out)
        elif isinstance(obj, Neurons) and attr in ("voltage", "input"):
            out = VoltageOutput(probe, self.pops[obj.ensemble], attr)
            self.out.voltages.append(out)
            plans[probe] = ("voltage", out)
        else:
            raise UnsupportedFeatureError(
                f"{describe(probe)}: probing {attr!r} of {describe(obj)} is not supported on the chip; "
                "probe an Ensemble's decoded output, Neurons' 'output'/'voltage'/'input', or a Node's output"
            )

    # --------------------------------------------------------------- finalize
    def finalize(self) -> None:
        pops = list(self.pops.values()) + self.extra
        for pop in pops:
            make_blocks(pop, self.out.chip, self.dt, self.spec)
        for pop in pops:
            for src, w_j, tau, owner in pop.incoming:
                make_group(src, pop, w_j, tau, owner, describe(owner), self.out.chip, self.dt, self.spec)
        for ens, pop in self.pops.items():
            self.out.ensemble_blocks[ens] = pop.block
        for o in self.out.outputs + self.out.voltages:
            o.block = o.block.block
        for pop in pops:
            self.out.quantization[pop.block.label] = pop.block.quant
        rules = {g.owner: g.learning for g in self.out.chip.groups if g.learning is not None}
        for tap in self.out.learning:
            tap.rule_regs = rules[tap.conn]

def map_model(model: Any, options: MapOptions | None = None) -> MappedModel:
    """Map a built nengo model onto chip objects.

    Parameters
    ----------
    model
        ``nengo.builder.Model`` after ``model.build(network)``.
    options
        Mapping choices; defaults to :class:`MapOptions()`.

    Raises
    ------
    UnsupportedFeatureError
        A neuron type, synapse, learning rule, probe or transform the chip cannot run.
    DiscretizationError
        A time constant or parameter with no chip representation.
    """
    return _Mapper(model, options or MapOptions()).run()