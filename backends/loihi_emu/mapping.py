"""Map nengo's *built* model onto chip objects (the only hw_emulator module using nengo).

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
  (``decode="weights"``) or on-chip decode neurons (``decode="neurons"``).
* Decoders of decoded connections from chip ensembles are solved, with the
  connection's own solver, on the chip's discretised rate curve
  (``decoder_rates="chip"``, the default) or kept as nengo solved them on its
  continuous curve (``decoder_rates="nengo"``).
* Lowpass (or no) synapses run on the chip; an ensemble receiving several time
  constants gets one dendrite compartment per extra time constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import nengo
from nengo.builder.connection import get_targets
from nengo.connection import Connection
from nengo.ensemble import Ensemble, Neurons
from nengo.learning_rules import PES
from nengo.connection import LearningRule
from nengo.node import Node
from nengo.probe import Probe

from .blocks import ChipNetwork, CompartmentBlock, InputAxons
from .chip import LOIHI_V1, ChipSpec
from nhw.errors import UnsupportedFeatureError
from .learning import PESPlan
from .neurons import DECODE_KIND, NEURON_KINDS, NeuronKind
from .populations import Population, make_blocks, make_group

DECODE_STRATEGIES = ("weights", "neurons")
#: Rate curves the decoders of chip ensembles can be solved on (``MapOptions.decoder_rates``).
DECODER_RATES = ("chip", "nengo")
#: Ridge regularisation (relative to the largest rate) for the identity decoders that
#: size learned weights; nengo's default solver regularisation.
_IDENTITY_REG = 0.1


@dataclass(frozen=True)
class MapOptions:
    """Choices of the mapping stage.

    Parameters
    ----------
    decode
        ``"weights"`` (neuron-to-neuron weights) or ``"neurons"`` (decode neurons).
    input_pairs
        On/off spike generators per dimension for host -> chip values.
    input_range
        Largest value per dimension (times the post radius) the host encoder can send.
    decode_pairs
        On/off decode-neuron pairs per dimension (``decode="neurons"``).
    decode_rate
        Bias firing rate (Hz) of each decode neuron (at a decoded value of 0).
    decode_tau
        Synapse time constant from decode neurons to the post ensemble (the
        connection's own synapse filters the decode neurons' input).
    decoder_rates
        Which rate curve the decoders of decoded connections (and probes) from chip
        ensembles are solved on.  ``"chip"`` (default): the connection's solver is run
        again on the chip's discretised LIF / spiking-ReLU rates (integer periods,
        discretised voltage decay, the chip's refractory hold) at the connection's
        evaluation points, as nengo-loihi does, so decoded values are unbiased on the
        chip.  ``"nengo"``: keep the decoders nengo solved on its continuous rate
        curve (the chip then decodes values biased by the difference of the curves).
        Connections with user-given decoders (``NoSolver``) always keep them.
    error_range
        Largest PES error value per dimension (times the post radius) the host can
        send to the chip; larger errors are clipped to it.
    learn_epoch
        Steps per PES weight update (1..64); each update applies ``learn_epoch``
        steps' worth of learning with the traces and error of that step.
    """

    decode: str = "weights"
    input_pairs: int = 16
    input_range: float = 2.0
    decode_pairs: int = 10
    decode_rate: float = 200.0
    decode_tau: float = 0.002
    decoder_rates: str = "chip"
    error_range: float = 1.0
    learn_epoch: int = 4
    spec: ChipSpec = LOIHI_V1

    def __post_init__(self) -> None:
        if self.decode not in DECODE_STRATEGIES:
            raise ValueError(f"decode={self.decode!r}; expected one of {', '.join(DECODE_STRATEGIES)}")
        if self.decoder_rates not in DECODER_RATES:
            raise ValueError(
                f"decoder_rates={self.decoder_rates!r}; expected one of {', '.join(DECODER_RATES)}"
            )
        for name in ("input_pairs", "decode_pairs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 1 <= int(self.learn_epoch) <= 64:
            raise ValueError(f"learn_epoch must be in 1..64 steps, got {self.learn_epoch!r}")
        if not self.error_range > 0:
            raise ValueError(f"error_range must be > 0, got {self.error_range!r}")


@dataclass(eq=False)
class ChipInput:
    """A host value (``transform @ function(node_output[pre_slice])``) sent as spikes."""

    conn: Connection
    axons: InputAxons
    transform: np.ndarray  # size_out x size_mid
    amplitude: np.ndarray  # value per spike count, per dimension
    pairs: int


@dataclass(eq=False)
class ChipOutput:
    """Spikes of ``block`` decoded on the host: ``decoders @ spikes / dt``, then ``synapse``."""

    key: Any  # a Connection or a Probe
    block: CompartmentBlock
    decoders: np.ndarray | None  # size_out x n, None: amplitude * identity
    amplitude: float
    synapse: Any


@dataclass(eq=False)
class VoltageOutput:
    """State readout of ``block`` in nengo units: ``attr`` ``"voltage"`` (``v / vth``) or
    ``"input"`` (the current ``J``: ``(u + bias) / c``, dendrites joined into their soma)."""

    probe: Probe
    block: CompartmentBlock
    attr: str = "voltage"


@dataclass(eq=False)
class LearningTap:
    """Host side of an on-chip PES rule: its error input is sent to ``rule_regs`` each step."""

    rule: LearningRule
    conn: Connection
    plan: PESPlan
    rule_regs: Any = None  # the group's PESRule, set when the group is created


@dataclass
class MappedModel:
    """The chip program plus the host taps that drive and read it."""

    chip: ChipNetwork
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    voltages: list = field(default_factory=list)
    host_connections: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    ensemble_blocks: dict = field(default_factory=dict)
    probe_plans: dict = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)
    learning: list = field(default_factory=list)
    options: MapOptions = field(default_factory=MapOptions)


# ------------------------------------------------------------------------ helpers
def _name(obj: Any) -> str:
    label = getattr(obj, "label", None)
    return f"{type(obj).__name__} {label!r}" if label else str(obj)


def synapse_tau(synapse: Any, owner: Any) -> float:
    """Time constant of a chip synapse: ``None`` -> 0, ``Lowpass(tau)`` -> tau.

    Raises
    ------
    UnsupportedFeatureError
        Any other synapse (the chip's current is a first-order filter).
    """
    if synapse is None:
        return 0.0
    if type(synapse) is nengo.Lowpass:
        return float(synapse.tau)
    raise UnsupportedFeatureError(
        f"{_name(owner)}: synapse {synapse} cannot run on the chip (its current is a "
        "first-order filter); use nengo.Lowpass(tau) or synapse=None"
    )


def neuron_kind(ens: Ensemble) -> NeuronKind:
    """Registry lookup of the chip model of ``ens.neuron_type`` (exact type, no subclasses)."""
    nt = ens.neuron_type
    kind = NEURON_KINDS.get(type(nt).__name__) if type(nt).__module__.startswith("nengo") else None
    if kind is None:
        raise UnsupportedFeatureError(
            f"{_name(ens)}: neuron type {nt} cannot run on the chip; use one of "
            f"{', '.join('nengo.' + k for k in NEURON_KINDS)}"
        )
    return kind


_FAIL = object()


def _combine(a: Any, b: Any) -> Any:
    """One synapse for two in series: fine when at most one filters, else ``_FAIL``."""
    if a is None:
        return b
    if b is None:
        return a
    return _FAIL


def _matrix(w: Any, size_out: int, size_in: int, owner: Any) -> np.ndarray:
    """Built connection weights as a dense ``size_out x size_in`` matrix."""
    if hasattr(w, "toarray"):
        w = w.toarray()
    w = np.asarray(w, dtype=np.float64)
    if w.ndim == 0:
        return w * np.eye(size_out, size_in)
    if w.ndim == 1:
        return np.diag(w)
    if w.shape != (size_out, size_in):
        raise UnsupportedFeatureError(f"{_name(owner)}: weights of shape {w.shape} cannot be mapped")
    return w


def _select(size_mid: int, n: int, pre_slice: Any) -> np.ndarray:
    """``size_mid x n`` selection matrix of ``pre_slice``."""
    idx = np.arange(n)[pre_slice]
    sel = np.zeros((len(idx), n))
    sel[np.arange(len(idx)), idx] = 1.0
    return sel


def _post_matrix(size_out: int, size_in: int, post_slice: Any) -> np.ndarray:
    """``size_in x size_out`` matrix placing a connection's output into ``post_slice``."""
    return _select(size_out, size_in, post_slice).T


# ------------------------------------------------------------------ populations
class _Mapper:
    def __init__(self, model: Any, options: MapOptions) -> None:
        self.model = model
        self.opt = options
        self.spec = options.spec
        self.dt = float(model.dt)
        self.out = MappedModel(ChipNetwork(spec=self.spec), options=options)
        self.pops: dict = {}  # Ensemble -> Population
        self.extra: list = []  # decode-neuron populations

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
            t = _matrix(self.built_weights(c), c.size_out, c.size_mid, c)
            w = t @ _select(c.size_mid, pre.ensemble.n_neurons, c.pre_slice)
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
            pm = _post_matrix(c.size_out, node.size_in, c.post_slice)
            pre = c.pre_obj
            if isinstance(pre, Node) and pre in self.passthrough and c.function is None:
                sub = self.sources(pre, stack + (node,))
                if sub is None:
                    memo[node] = None
                    return None
                t = _matrix(self.built_weights(c), c.size_out, c.size_mid, c)
                t = pm @ t @ _select(c.size_mid, pre.size_out, c.pre_slice)
                for kind, what, m, syn, dec in sub:
                    both = _combine(syn, c.synapse)
                    if both is _FAIL:
                        memo[node] = None
                        return None
                    out.append((kind, what, t @ m, both, dec))
            elif isinstance(pre, Node):
                t = _matrix(self.built_weights(c), c.size_out, c.size_mid, c)
                out.append(("host", c, pm @ t, c.synapse, False))
            else:
                out.append(("chip", self.pops[self.pre_ens(c)], pm @ self.chip_matrix(c), c.synapse,
                            isinstance(pre, Ensemble)))
        memo[node] = out
        return out

    def add_ensemble(self, ens: Ensemble) -> None:
        kind = neuron_kind(ens)
        if ens.noise is not None:
            raise UnsupportedFeatureError(f"{_name(ens)}: ensemble noise ({ens.noise}) cannot run on the chip; remove it")
        built = self.model.params[ens]
        p = kind.params(ens.neuron_type, self.dt, self.spec)
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

    def built_weights(self, conn: Connection) -> Any:
        """The weight signal's value as nengo built it (transform, times decoders if decoded)."""
        sig = self.model.sig[conn].get("weights")
        return np.float64(1.0) if sig is None else sig.initial_value  # None: NoTransform

    def ens_rates(self, ens: Ensemble, x: np.ndarray) -> np.ndarray:
        pop = self.pops[ens]
        b = self.model.params[ens]
        return pop.kind.rates(x * b.gain + b.bias, pop.params, self.dt, pop.amplitude)

    def decoded_weights(self, conn: Connection) -> np.ndarray:
        """Decoders (times transform; times post encoders for weight solvers) of a
        decoded connection, solved on the rate curve ``MapOptions.decoder_rates`` names."""
        memo = self.__dict__.setdefault("_decoded", {})
        if conn in memo:
            return memo[conn]
        built = self.model.params[conn]
        w = np.asarray(self.built_weights(conn), dtype=np.float64)
        if (self.opt.decoder_rates == "nengo" or built.eval_points is None
                or isinstance(conn.solver, nengo.solvers.NoSolver)):
            # nengo's own decoders (user-given decoders are always kept as they are)
            memo[conn] = w
            return w
        memo[conn] = self.solve_on_chip(conn, w)
        return memo[conn]

    def solve_on_chip(self, conn: Connection, w: np.ndarray) -> np.ndarray:
        """Re-run ``conn``'s solver on the chip's rate curve; same layout as ``w``.

        Parameters
        ----------
        conn
            A decoded connection from an on-chip ensemble.
        w
            nengo's built weights of ``conn``: ``T @ D.T`` for decoders ``D``
            (``n x size_mid``) and transform ``T``, or ``E @ T @ D.T`` for a
            compositional weight solver (``E`` the post's scaled encoders).

        Returns
        -------
        numpy.ndarray
            The same product with ``D`` solved, by ``conn.solver`` with nengo's
            targets, on the chip's rates at the built evaluation points.  Where the
            transform is not a fixed matrix (a distribution, a sparse transform) the
            product's left factor is recovered from ``w`` and nengo's own decoders.
        """
        pre = conn.pre_obj
        built = self.model.params[conn]
        eval_points = np.asarray(built.eval_points, dtype=np.float64)
        a_chip = self._chip_activities(pre, eval_points)
        if not np.any(a_chip):
            # no evaluation point drives any neuron above threshold on the chip:
            # nothing to solve on, so nengo's decoders are the best available
            return w
        targets = np.asarray(get_targets(conn, eval_points, dtype=np.float64), dtype=np.float64)
        t = self._fixed_transform(conn)
        solver = conn.solver

        def solve(a: np.ndarray, y: np.ndarray) -> np.ndarray:
            # the connection's seed, as nengo's build uses it (most solvers ignore it)
            return np.asarray(solver(a, y, rng=np.random.RandomState(self.model.seeds[conn]))[0])

        if solver.weights and not solver.compositional:
            if t is None:
                return w  # nengo itself requires a Dense transform here
            # nengo folds transform and post encoders into the targets
            _, enc = self.post_encoders(conn)
            return solve(a_chip, targets @ t.T @ enc.T).T.reshape(w.shape)
        d_chip = solve(a_chip, targets)  # n x size_mid
        if t is not None:
            out = t @ d_chip.T
            if solver.weights:
                out = self.post_encoders(conn)[1] @ out
            return out.reshape(w.shape)
        # recover the left factor L of w = L @ D_nengo.T from nengo's own decoders
        a_nengo = self._nengo_activities(pre, eval_points)
        d_nengo = solve(a_nengo, targets)
        left = w.reshape(-1, d_nengo.shape[0]) @ np.linalg.pinv(d_nengo.T)
        return (left @ d_chip.T).reshape(w.shape)

    def _fixed_transform(self, conn: Connection) -> np.ndarray | None:
        """``size_out x size_mid`` transform matrix, or ``None`` if it is not a fixed
        dense matrix (sampled from a distribution, sparse, convolution)."""
        tr = conn.transform
        if isinstance(tr, nengo.transforms.NoTransform):
            return np.eye(conn.size_out, conn.size_mid)
        if isinstance(tr, nengo.transforms.Dense) and not isinstance(tr.init, nengo.dists.Distribution):
            return _matrix(tr.init, conn.size_out, conn.size_mid, conn)
        return None

    def _chip_activities(self, pre: Ensemble, eval_points: np.ndarray) -> np.ndarray:
        """Chip rates of ``pre``'s neurons at ``eval_points`` (memoised: an ensemble's
        connections and probes usually share evaluation points)."""
        memo = self.__dict__.setdefault("_chip_acts", {})
        key = (pre, eval_points.shape, hash(np.ascontiguousarray(eval_points).tobytes()))
        if key not in memo:
            x = np.dot(eval_points, self.model.params[pre].encoders.T / pre.radius)
            memo[key] = self.ens_rates(pre, x)
        return memo[key]

    def _nengo_activities(self, pre: Ensemble, eval_points: np.ndarray) -> np.ndarray:
        """nengo's (continuous) rates of ``pre``'s neurons at ``eval_points``."""
        eb = self.model.params[pre]
        x = np.dot(eval_points, eb.encoders.T / pre.radius)
        return pre.neuron_type.rates(x, eb.gain, eb.bias)

    def _rate_tables(self, pre: Ensemble, eval_points: np.ndarray, reg: float) -> tuple:
        """``(nengo rates, chip rates, inverse ridge Gram matrix)`` at ``eval_points``, memoised:
        an ensemble's connections usually share its evaluation points, and the rates and
        the ``n x n`` inverse dominate mapping time."""
        memo = self.__dict__.setdefault("_tables", {})
        key = (pre, reg, eval_points.shape, hash(np.ascontiguousarray(eval_points).tobytes()))
        if key not in memo:
            eb = self.model.params[pre]
            x = np.dot(eval_points, eb.encoders.T / pre.radius)
            a = self.ens_rates(pre, x)
            sigma = reg * max(float(a.max()), 1e-12)
            g_inv = np.linalg.inv(a.T @ a + a.shape[0] * sigma**2 * np.eye(a.shape[1]))
            memo[key] = (pre.neuron_type.rates(x, eb.gain, eb.bias), a, g_inv)
        return memo[key]

    def chip_decoders(self, pre: Ensemble, eval_points: np.ndarray, targets: np.ndarray, reg: float) -> np.ndarray:
        """Ridge-regression decoders (``size x n``) of ``targets`` from the chip's rate curves."""
        _, a, g_inv = self._rate_tables(pre, eval_points, reg)
        return (g_inv @ (a.T @ targets)).T

    # ------------------------------------------------------------ connections
    def add_connection(self, conn: Connection) -> None:
        pre, post = conn.pre_obj, conn.post_obj
        if conn.learning_rule_type is not None:
            self.add_learned(conn)
            return
        if isinstance(conn.transform, (nengo.Convolution, nengo.transforms.ConvolutionTranspose)):
            raise UnsupportedFeatureError(
                f"{_name(conn)}: {type(conn.transform).__name__} transforms are not supported by "
                "loihi-emu (neither on chip nor on the host); use a Dense or Sparse transform"
            )
        if isinstance(post, (Node, Probe, LearningRule)):
            self.to_host.append(conn)
            return
        if not isinstance(post, (Ensemble, Neurons)):
            raise UnsupportedFeatureError(f"{_name(conn)}: post object {_name(post)} cannot be mapped")
        if isinstance(pre, Node):
            srcs = self.sources(pre) if pre in self.passthrough and conn.function is None else None
            if srcs is None or any(_combine(syn, conn.synapse) is _FAIL for _, _, _, syn, _ in srcs):
                self.host_needed.add(pre)
                t = _matrix(self.built_weights(conn), conn.size_out, conn.size_mid, conn)
                self.add_input(conn, t, conn, conn.synapse)
                return
            # collapse the passthrough node: route its sources straight to the post
            t = _matrix(self.built_weights(conn), conn.size_out, conn.size_mid, conn)
            t = t @ _select(conn.size_mid, pre.size_out, conn.pre_slice)
            for kind, what, m, syn, decoded in srcs:
                w, both = t @ m, _combine(syn, conn.synapse)
                if not np.any(w):
                    continue
                if kind == "host":
                    self.host_needed.add(what.pre_obj)
                    self.add_input(what, w, conn, both)
                else:
                    self.chip_to_chip(what, w, conn, both, decoded)
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
            raise UnsupportedFeatureError(f"{_name(conn)}: pre object {_name(pre)} cannot be mapped")
        self.chip_to_chip(self.pops[self.pre_ens(conn)], self.chip_matrix(conn), conn, conn.synapse,
                          isinstance(pre, Ensemble))

    def chip_to_chip(self, src: Population, w: np.ndarray, conn: Connection, synapse: Any,
                     decoded: bool) -> None:
        """Synapses for ``conn``'s output ``w @ spikes/dt`` of ``src`` (``size_out x n_src``)."""
        tau = synapse_tau(synapse, conn)
        if decoded and self.opt.decode == "neurons" and isinstance(conn.post_obj, Ensemble):
            self.add_decode_neurons(conn, src, w, tau)
            return
        pop, enc = self.post_encoders(conn)
        self.connect(src, pop, enc @ w, conn, tau=tau)

    def post_encoders(self, conn: Connection) -> tuple[Population, np.ndarray]:
        """Target population and ``n_post x size_out`` matrix from values to currents."""
        post = conn.post_obj
        if isinstance(post, Ensemble):
            pm = _post_matrix(conn.size_out, post.size_in, conn.post_slice)
            return self.pops[post], self.model.params[post].scaled_encoders @ pm
        ens = post.ensemble
        pm = _post_matrix(conn.size_out, ens.n_neurons, conn.post_slice)
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
        axons = self.out.chip.add_input(InputAxons(f"{_name(post_conn)}.input", 2 * d, k, post_conn))
        self.out.inputs.append(ChipInput(conn, axons, transform, amp, k))
        # a count of one on axon (i, sign) is the value sign * amp[i] for one step
        w = np.concatenate([enc * (amp * self.dt), -enc * (amp * self.dt)], axis=1)
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
        # the connection's filter acts on the decode neurons' input (before spiking)
        self.connect(src, dec, sign[:, None] * w[dim] * r1[dim][:, None], conn, tau=tau)
        post_pop, enc = self.post_encoders(conn)
        self.connect(dec, post_pop, enc[:, dim] * (sign * a[dim]), conn, tau=self.opt.decode_tau)

    # --------------------------------------------------------------- learning
    def check_learning(self, conn: Connection) -> None:
        """Raise unless ``conn`` is a PES connection the chip can learn."""
        rule = conn.learning_rule_type
        if type(rule) is not PES:
            raise UnsupportedFeatureError(
                f"{_name(conn)}: learning rule {rule} cannot run on the chip; loihi-emu learns with "
                "nengo.PES only (one rule per connection); run other rules on 'reference'"
            )
        if not isinstance(conn.pre_obj, Ensemble) or conn.solver.weights:
            raise UnsupportedFeatureError(
                f"{_name(conn)}: PES on the chip learns decoders, so it needs a decoded connection "
                f"from an Ensemble (got pre {_name(conn.pre_obj)}, solver weights={conn.solver.weights})"
            )
        if not isinstance(conn.post_obj, (Ensemble, Node)):
            raise UnsupportedFeatureError(
                f"{_name(conn)}: PES into {_name(conn.post_obj)} is not supported on the chip; "
                "connect the learned connection to an Ensemble or a Node"
            )
        synapse_tau(rule.pre_synapse, conn)  # the pre trace is a first-order filter

    def add_learned(self, conn: Connection) -> None:
        """A PES connection: pre -> learned weights -> decode neurons -> post (chip or host).

        The learned weights are one mantissa per (pre neuron, dimension), shared by
        that dimension's on (+) and off (-) decode neurons; the host sends the error.
        """
        pre, post = conn.pre_obj, conn.post_obj
        src = self.pops[pre]
        w = self.chip_matrix(conn)
        radius = post.radius if isinstance(post, Ensemble) else 1.0
        y_max = np.maximum(self.decoded_range(src, w), radius)
        dec, sign, dim, r1, a = self.decode_population(conn, src, y_max)
        dec.uniform_scale = True
        # the weight scale that decoding a value of size y_max needs: identity
        # decoders on the chip's rate curves, with 2x headroom for learning
        eb = self.model.params[pre]
        reg = _IDENTITY_REG
        built_points = self.model.params[conn].eval_points
        points = eb.eval_points if built_points is None else built_points
        d_id = self.chip_decoders(pre, points, points, reg) * src.amplitude
        r0 = float(self.opt.decode_rate)
        w_learn = sign[:, None] * w[dim] * r1[dim][:, None]
        w_max = max(float(np.abs(w_learn).max()), 2 * 0.8 * r0 * float(np.abs(d_id).max()) / pre.radius)
        rule = conn.learning_rule_type
        plan = PESPlan(
            _name(conn), float(rule.learning_rate), pre.n_neurons, synapse_tau(rule.pre_synapse, conn),
            dim, sign, r1, w_max, 2 * 0.8 * r0,
            np.full(conn.size_out, self.opt.error_range * radius / self.spec.error_max), int(self.opt.learn_epoch),
        )
        dec.learning[conn] = plan
        self.connect(src, dec, w_learn, conn, tau=synapse_tau(conn.synapse, conn))
        self.out.learning.append(LearningTap(conn.learning_rule, conn, plan))
        if isinstance(post, Ensemble):
            post_pop, enc = self.post_encoders(conn)
            self.connect(dec, post_pop, enc[:, dim] * (sign * a[dim]), conn, tau=self.opt.decode_tau)
        else:
            value = np.zeros((conn.size_out, dec.n))
            value[dim, np.arange(dec.n)] = sign * a[dim]
            self.host_needed.add(post)
            self.out.outputs.append(ChipOutput(conn, dec, value, 1.0, nengo.Lowpass(self.opt.decode_tau)))

    def connect(self, src: Any, dst: Population, w_j: np.ndarray, owner: Any, tau: float | None = None) -> None:
        """Queue synapses: ``w_j[i, j]`` nengo current per spike (amplitude 1/dt) of source j."""
        if tau is None:
            tau = synapse_tau(owner.synapse, owner)
        dst.incoming.append((src, np.asarray(w_j, dtype=np.float64), float(tau), owner))

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
                f"{_name(probe)}: probing {attr!r} of {_name(obj)} is not supported on the chip; "
                "probe an Ensemble's decoded output, Neurons' 'output'/'voltage'/'input', or a Node's output"
            )

    # --------------------------------------------------------------- finalize
    def finalize(self) -> None:
        pops = list(self.pops.values()) + self.extra
        for pop in pops:
            make_blocks(pop, self.out.chip, self.dt, self.spec)
        for pop in pops:
            for src, w_j, tau, owner in pop.incoming:
                make_group(src, pop, w_j, tau, owner, _name(owner), self.out.chip, self.dt, self.spec)
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
