"""Export and import profiles: NIR graphs in the conventions of the field's NIR peers.

nhw's own export (profile ``spec``) is strict NIR: ensembles are ``LIF(r=gain,
v_leak=bias)``, passthrough Nodes are identity ``Scale`` nodes, probe filters are
``LI`` nodes and spikes are unit-area events.  All of that is allowed by the
specification, but the peers measured in ``shared/design/nir-peers.md`` each read a
narrower dialect.  A profile rewrites the spec graph into the *equivalent normalised*
graph that peer can run, and (for imports) rewrites a file written in the peer's
dialect back into strict NIR before :func:`~nhw.toolchain.nir.importer.import_nir`.

Normalisation common to every peer profile (:func:`to_profile`):

* identity ``Scale`` nodes (passthrough Nodes) are removed, their inputs wired to
  their outputs, and chains of ``Linear``/``Affine`` left behind are multiplied into one;
* neurons get ``r = 1`` and ``v_leak = 0``: the gain ``r`` multiplies the rows of every
  incoming weight (``Linear``/``Affine``/``Conv``, or an ``LI``'s ``r``) and the bias
  ``v_leak`` goes into the ``Affine`` bias of one incoming connection (for ``CubaLIF``
  that bias passes the synaptic filter: it reaches its value after a few ``tau_syn``
  instead of at once, a start-up transient); ``IF``'s gain likewise;
* nengo's random initial voltages (metadata ``v_init``) are dropped: peers start at 0;
* ``Linear``/``Affine`` nodes reading the same source into the same node are summed
  into one ``Affine`` (nirtorch, under snnTorch and Norse, does not add a node's inputs);
* a refractory period that matters (``tau_ref * max_rate > 1 %``, or any ``tau_ref > 0``
  when the maximum rate is unknown) is a :class:`NIRError` naming the ensemble, since no
  peer represents one;
* probe filters (``LI`` nodes feeding only ``Output`` nodes) are left out when the peer
  has no ``LI``; their time constants travel in the ``Output``'s metadata
  (``nhw_probe_taus``) so ``nhw import --from`` restores them.  Any other ``LI`` is an error
  for such a peer.
* peers that emit 1 per step instead of NIR's unit-area ``1/dt`` pulse get every weight
  directly downstream of a spiking node multiplied by ``1 / dt_peer``.

Each :class:`Profile` below documents what else it changes and why.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import nir
import numpy as np

from nhw.errors import NIRError

_NEURONS = (nir.LIF, nir.CubaLIF, nir.IF)
_CONV = (nir.Conv1d, nir.Conv2d)
_BASE = {nir.Input, nir.Output, nir.Linear, nir.Affine, nir.Flatten, nir.LIF, nir.CubaLIF}
#: ``tau_ref * max_rate`` above which a refractory period changes rates by more than 1 %.
REFRACTORY_TOLERANCE = 0.01
#: an ``IF`` written as ``LIF`` leaks with ``tau = 2**20`` peer steps: ``beta = 1 - 2**-20``
#: is exact in float32, and the leak loses 0.1 % of the voltage over 1000 steps.
IF_AS_LIF_STEPS = 2.0 ** 20
#: graph metadata key listing the ensembles whose lower voltage bound the peer lacks
UNCLAMPED_KEY = "nhw_unclamped"


@dataclass(frozen=True)
class Profile:
    """The NIR dialect of one peer (see the module docstring for the common changes)."""

    name: str
    #: what the profile changes and why (shown in ``nhw export --help`` and docs/nir.md)
    doc: str
    #: NIR node types the peer maps (after normalisation)
    node_types: frozenset = frozenset(_BASE)
    #: normalise the graph (False only for ``spec``)
    normalise: bool = True
    #: peer spikes are 1 per step: weights after spiking nodes x ``1 / dt_peer``
    spikes_per_step: bool = True
    #: the peer's fixed time step; ``None``: the export's ``dt``
    dt: float | None = None
    #: time constants written in steps (``tau / dt``) instead of seconds
    tau_in_steps: bool = False
    #: ``Linear`` written as ``Affine`` with a zero bias
    affine_only: bool = False
    #: ``CubaLIF.r`` must equal ``tau_mem / dt_peer`` (incoming weights divided to match)
    cuba_r_is_tau_over_dt: bool = False
    #: the peer's neurons reset by subtracting the threshold (as nengo's spiking ReLU)
    subtractive_reset: bool = False
    #: ``IF`` written as a ``LIF`` with a leak time constant of :data:`IF_AS_LIF_STEPS` steps
    #: (the peer maps ``LIF`` faithfully but not ``IF``)
    if_as_lif: bool = False
    #: neuron types whose input the peer adds once per step, without the factor of nengo's
    #: step (``1 - exp(-dt/tau)`` for ``LIF``, ``dt`` for ``IF``): the incoming weights
    #: (and bias) carry that factor
    input_per_step: frozenset = frozenset()
    #: the peer's neurons clamp their voltage from below at ``-v_threshold`` (``IF`` only)
    if_floor_at_minus_threshold: bool = False
    #: the peer steps ``LIF``/``CubaLIF`` states with Euler's rule (decay ``1 - dt/tau`` and
    #: input ``dt/tau`` per step) where nengo steps them exactly (``exp(-dt/tau)``): time
    #: constants are written as :func:`euler_tau` so that both make the same step
    euler_taus: bool = False
    #: files the peer's own exporter writes hold ``dt * tau`` where NIR has ``tau`` (Norse
    #: 1.1's ``to_nir`` writes ``dt / tau_mem_inv``): with ``from_profile(..., own_export=True)``
    #: read back as ``tau / dt``
    own_export_tau_times_dt: bool = False

    def peer_dt(self, dt: float) -> float:
        return float(self.dt if self.dt is not None else dt)


PROFILES: dict[str, Profile] = {p.name: p for p in [
    Profile(
        "spec", normalise=False, spikes_per_step=False,
        node_types=frozenset(),  # anything nhw writes
        doc="Strict NIR (the default): LIF(r=gain, v_leak=bias), identity Scale nodes for "
            "passthrough Nodes, LI probe filters, unit-area spikes, tau_ref and v_init in "
            "metadata.  Exact round trips through nhw."),
    Profile(
        "snntorch", dt=1e-4, cuba_r_is_tau_over_dt=True, if_as_lif=True, euler_taus=True,
        node_types=frozenset(_BASE | {nir.Conv2d}),
        doc="snnTorch 1.0 refuses r != 1 and v_leak != 0, maps neither Scale nor LI, "
            "hard-codes dt = 1e-4 s on import and emits 1 per step: the graph is "
            "normalised, probe filters are left out, weights after spiking layers are "
            "multiplied by 1 / 1e-4, and CubaLIF gets r = tau_mem / 1e-4 (snnTorch's "
            "requirement) with its incoming weights divided by the same factor.  snnTorch "
            "1.0 imports nir.IF as a leaky Leaky(beta=0.9) neuron (a snnTorch bug), so IF "
            "(nengo SpikingRectifiedLinear) is written as a LIF with tau = 2**20 steps "
            "(beta = 1 - 2**-20): an integrator to 0.1 % over 1000 steps, resetting to zero "
            "where nengo subtracts the threshold; --from snntorch restores the IF.  snnTorch "
            "steps a LIF with Euler's rule (beta = 1 - dt/tau) where nengo steps it exactly "
            "(exp(-dt/tau)): LIF and CubaLIF time constants are written as "
            "dt / (1 - exp(-dt/tau)), so both make the same step at dt = 1e-4 s, and "
            "--from snntorch reads them back with the inverse (also for snnTorch's own files)."),
    Profile(
        "norse", node_types=frozenset(_BASE | {nir.Conv2d, nir.IF}), input_per_step=frozenset({nir.IF}),
        euler_taus=True, own_export_tau_times_dt=True,
        doc="Norse 1.1 ignores r (with a warning), maps neither Scale nor LI, and emits 1 "
            "per step at the dt given to norse.torch.from_nir (pass "
            "dt=graph.metadata['peer_dt'], the export's dt): the graph is normalised, "
            "probe filters are left out, weights after spiking layers are multiplied by "
            "1 / dt.  Norse's IF (IAFCell) adds its input once per step without dt, so the "
            "weights into an IF are multiplied by dt; it resets to zero where nengo "
            "subtracts the threshold.  Norse steps LIF states with Euler's rule: time "
            "constants are written as dt / (1 - exp(-dt/tau)) (see snntorch).  Files written "
            "by Norse 1.1's own to_nir hold dt * tau instead of tau (it writes "
            "dt / tau_mem_inv): from_profile(graph, 'norse', dt=DT, own_export=True) divides "
            "them by DT, the dt given to to_nir (its default is 1e-3 s)."),
    Profile(
        "rockpool", node_types=frozenset(_BASE),
        doc="Rockpool 3.1 maps Linear, Affine and LIF (no Conv, IF, Scale; its LI import "
            "crashes): the graph is normalised, probe filters are left out, weights after "
            "spiking layers are multiplied by 1 / dt (Rockpool emits spike counts per "
            "step).  Rockpool 3.1's own LIF reader is broken (it reads a tau_mem attribute "
            "nir.LIF lacks), so this profile is the input its fixed reader needs."),
    Profile(
        "sinabs", tau_in_steps=True, affine_only=True, subtractive_reset=True,
        input_per_step=frozenset({nir.IF, nir.LIF}), if_floor_at_minus_threshold=True,
        node_types=frozenset((_BASE - {nir.Linear, nir.CubaLIF}) | {nir.IF, nir.Conv2d}),
        doc="Sinabs 3.1 has no dt (time constants are read in steps), refuses v_leak != 0, "
            "maps Affine but not Linear, resets by subtraction and emits spike counts per "
            "step: the graph is normalised, Linear is written as Affine, tau as tau / dt "
            "steps, weights after spiking layers are multiplied by 1 / dt, probe filters "
            "are left out; CubaLIF is refused (use synapse=None into ensembles).  Sinabs "
            "adds a neuron's input once per step (IAF, and LIF with norm_input=False, as "
            "its reader builds them), so weights into an IF carry dt and into a LIF "
            "1 - exp(-dt / tau) (sinabs decays by exp(-1 / tau steps), as nengo).  IF "
            "matches nengo's SpikingRectifiedLinear (subtractive reset) except that sinabs "
            "floors the voltage at -v_threshold where nengo ignores negative input.  A LIF "
            "does not match exactly: sinabs.from_nir builds it with a subtractive reset "
            "where nengo's LIF resets to zero, so above a few spikes per tau sinabs fires "
            "more (7 % at tau = 5 steps and 50 % of the maximum rate)."),
]}


def get_profile(name: str | Profile) -> Profile:
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise NIRError(f"unknown NIR profile {name!r}; known: {', '.join(PROFILES)}") from None


def euler_tau(tau: np.ndarray, dt: float) -> np.ndarray:
    """The time constant whose Euler step at ``dt`` (decay ``1 - dt/tau'``, input
    ``dt/tau'``) equals the exact step of ``tau`` (decay ``exp(-dt/tau)``)."""
    return dt / -np.expm1(-dt / _arr(tau))


def exact_tau(tau: np.ndarray, dt: float, where: str = "") -> np.ndarray:
    """Inverse of :func:`euler_tau`: the time constant nengo's exact step needs to make
    the Euler step of ``tau`` at ``dt``.

    Raises
    ------
    NIRError
        ``tau <= dt`` (an Euler step that decays to zero or below in one step).
    """
    tau = _arr(tau)
    if np.any(tau <= dt):
        raise NIRError(f"{where}: time constant {tau.min():g} s <= dt {dt:g} s; expected > dt "
                       "(its Euler step decays to zero or below)")
    return -dt / np.log1p(-dt / tau)


_TAU_ATTRS = {nir.LIF: ("tau",), nir.CubaLIF: ("tau_mem", "tau_syn")}


def _map_taus(g: _Graph, name: str, fn) -> None:
    """Apply ``fn(tau)`` to the time constants of ``LIF``/``CubaLIF`` node ``name``
    (not to an ``IF`` written as ``LIF``, whose time constant only marks it)."""
    node = g.nodes[name]
    attrs = _TAU_ATTRS.get(type(node), ())
    if attrs and "nhw_if_as_lif" not in (node.metadata or {}):
        g.set(name, **{a: fn(_arr(getattr(node, a)), f"node '{name}' {a}") for a in attrs})


# --- graph helpers --------------------------------------------------------------------
class _Graph:
    def __init__(self, graph: nir.NIRGraph) -> None:
        self.nodes = {k: copy.deepcopy(v) for k, v in graph.nodes.items()}
        self.edges = [tuple(e) for e in graph.edges]
        self.metadata = dict(graph.metadata or {})

    def preds(self, name):
        return [a for a, b in self.edges if b == name]

    def succs(self, name):
        return [b for a, b in self.edges if a == name]

    def bypass(self, name) -> None:
        """Remove ``name``, wiring each of its inputs to each of its outputs."""
        pre, post = self.preds(name), self.succs(name)
        self.edges = [e for e in self.edges if name not in e]
        self.edges += [(a, b) for a in pre for b in post if (a, b) not in self.edges]
        del self.nodes[name]

    def set(self, name, **changes) -> None:
        self.nodes[name] = dataclasses.replace(self.nodes[name], **changes)

    def graph(self) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=self.metadata)


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _bias_of(node) -> np.ndarray:
    return _arr(node.bias) if isinstance(node, nir.Affine) else np.zeros(_arr(node.weight).shape[0])


def _is_identity_scale(node) -> bool:
    return isinstance(node, nir.Scale) and np.all(_arr(node.scale) == 1)


def _fuse_linear_chains(g: _Graph) -> None:
    """``Linear``/``Affine`` nodes fed only by ``Linear``/``Affine`` nodes that feed only
    them are multiplied into those (what removing passthrough Nodes leaves)."""
    changed = True
    while changed:
        changed = False
        for name, q in list(g.nodes.items()):
            pre = g.preds(name)
            if not isinstance(q, (nir.Linear, nir.Affine)) or not pre:
                continue
            if not all(isinstance(g.nodes[p], (nir.Linear, nir.Affine)) and g.succs(p) == [name] for p in pre):
                continue
            wq = _arr(q.weight)
            for i, p in enumerate(pre):
                node = g.nodes[p]
                bias = wq @ _bias_of(node) + (_bias_of(q) if i == 0 else 0)
                g.nodes[p] = nir.Affine(wq @ _arr(node.weight), bias, metadata=node.metadata)
            post = g.succs(name)
            g.edges = [e for e in g.edges if name not in e] + [(p, b) for p in pre for b in post]
            del g.nodes[name]
            changed = True
            break


def _scale_rows(g: _Graph, name: str, factor: np.ndarray, what: str) -> None:
    """Multiply the output of weight node ``name`` element-wise by ``factor``."""
    node = g.nodes[name]
    if isinstance(node, (nir.Linear, nir.Affine)):
        f = factor.reshape(-1)
        changes = {"weight": _arr(node.weight) * f[:, None]}
        if isinstance(node, nir.Affine):
            changes["bias"] = _arr(node.bias) * f
        g.set(name, **changes)
    elif isinstance(node, nir.LI):
        g.set(name, r=_arr(node.r) * factor.reshape(_arr(node.r).shape))
    elif isinstance(node, _CONV):
        w = _arr(node.weight)
        per = factor.reshape(w.shape[0], -1)
        if not np.allclose(per, per[:, :1]):
            raise NIRError(f"{what}: its values differ within a channel and cannot be folded into the "
                           f"convolution '{name}' (NIR convolutions have per-channel weights)")
        f = per[:, 0]
        g.set(name, weight=w * f.reshape((-1,) + (1,) * (w.ndim - 1)), bias=_arr(node.bias) * f)
    else:
        raise NIRError(f"{what}: cannot fold a factor into its input '{name}' ({type(node).__name__})")


def _weight_inputs(g: _Graph, name: str) -> list[str]:
    """The weight nodes whose output reaches ``name`` directly (through ``Flatten``)."""
    out = []
    for p in g.preds(name):
        if isinstance(g.nodes[p], nir.Flatten):
            out += _weight_inputs(g, p)
        else:
            out.append(p)
    return out


def _downstream_weights(g: _Graph, name: str) -> list[str]:
    out = []
    for s in g.succs(name):
        node = g.nodes[s]
        if isinstance(node, nir.Flatten):
            out += _downstream_weights(g, s)
        elif isinstance(node, (nir.Linear, nir.Affine, nir.LI, *_CONV)):
            out.append(s)
        elif not isinstance(node, nir.Output):
            raise NIRError(f"node '{name}' feeds spikes straight into '{s}' ({type(node).__name__}); "
                           "the per-step spike convention needs a weight in between")
    return out


# --- export ---------------------------------------------------------------------------
def to_profile(graph: nir.NIRGraph, profile: str | Profile, *, dt: float,
               max_rates: dict[str, float] | None = None, labels: dict[str, str] | None = None) -> nir.NIRGraph:
    """The graph ``profile``'s peer runs, equivalent to the strict-NIR ``graph``.

    Parameters
    ----------
    graph
        A graph written by :func:`~nhw.toolchain.nir.export.export_nir` (profile ``spec``).
    profile
        A name in :data:`PROFILES` or a :class:`Profile`.
    dt
        The export's time step (the peer's when the profile fixes none).
    max_rates
        NIR node name -> highest firing rate (Hz) of that ensemble, used to decide
        whether a refractory period matters.
    labels
        NIR node name -> the nengo label of its ensemble, where they differ (a probe
        labelled the same took the name): messages name the ensemble as labelled.

    Raises
    ------
    NIRError
        Something the peer cannot represent (all problems listed, naming the nodes).
    """
    profile = get_profile(profile)
    if not profile.normalise:
        return graph
    g = _Graph(graph)
    pdt = profile.peer_dt(dt)
    problems = []
    max_rates = max_rates or {}
    for name, node in list(g.nodes.items()):
        if _is_identity_scale(node):
            g.bypass(name)
    changed = nir.LI not in profile.node_types
    while changed:  # cascaded probe filters: the last one first
        changed = False
        for name, node in list(g.nodes.items()):
            post = g.succs(name)
            if not (isinstance(node, nir.LI) and post and all(isinstance(g.nodes[s], nir.Output) for s in post)):
                continue
            tau = np.unique(_arr(node.tau))
            if tau.size != 1 or not np.all(_arr(node.r) == 1) or np.any(_arr(node.v_leak) != 0):
                continue  # not a plain Lowpass: reported below as an LI the peer cannot read
            for s in post:
                meta = dict(g.nodes[s].metadata or {})
                meta["nhw_probe_taus"] = [float(tau[0])] + list(meta.get("nhw_probe_taus", []))
                g.set(s, metadata=meta)
            g.bypass(name)
            changed = True
    _fuse_linear_chains(g)
    if profile.if_as_lif:
        for name, node in list(g.nodes.items()):
            if isinstance(node, nir.IF):
                g.nodes[name] = _if_as_lif(node, IF_AS_LIF_STEPS * pdt)
    for name, node in g.nodes.items():
        meta = node.metadata or {}
        if isinstance(node, (nir.LIF, nir.CubaLIF)):
            tau_ref = float(meta.get("tau_ref", 0.0))
            rate = max_rates.get(name)
            if tau_ref > 0 and (rate is None or tau_ref * rate > REFRACTORY_TOLERANCE):
                how = f"at its maximum rate {rate:g} Hz" if rate is not None else "(maximum rate unknown)"
                problems.append(
                    f"ensemble '{name}': refractory period tau_ref={tau_ref:g} s matters {how} and "
                    f"{profile.name} has no refractory period; build it with LIF(tau_ref=0) (and "
                    "re-solve/re-train), or export --for spec")
        kind = nir.Affine if profile.affine_only and type(node) is nir.Linear else type(node)
        if profile.node_types and kind not in profile.node_types:
            hint = {nir.LI: " (a connection synapse not folded into its ensemble: give each ensemble one "
                            "Lowpass synapse or none)",
                    nir.IF: " (SpikingRectifiedLinear)", nir.CubaLIF: " (an ensemble with a Lowpass input "
                    "synapse: use synapse=None into it)"}.get(type(node), "")
            problems.append(f"node '{name}': {type(node).__name__}{hint} cannot be read by {profile.name}")
    if problems:
        raise NIRError(f"cannot export for {profile.name}:\n  " + "\n  ".join(problems))

    # gain and bias into the incoming weights: r = 1, v_leak = 0
    for name, node in list(g.nodes.items()):
        if not isinstance(node, _NEURONS):
            continue
        shape = _arr(node.r).shape
        r = _arr(node.r)
        v_leak = _arr(getattr(node, "v_leak", np.zeros(shape))) * np.ones(shape)
        inputs = _weight_inputs(g, name)
        for p in inputs:
            if len(g.succs(p)) != 1:
                raise NIRError(f"ensemble '{name}': its input '{p}' also feeds other nodes")
            if not np.all(r == 1):
                _scale_rows(g, p, r, f"ensemble '{name}' gain")
        if np.any(v_leak != 0):
            target = next((p for p in inputs if isinstance(g.nodes[p], (nir.Linear, nir.Affine))), None)
            conv = next((p for p in inputs if isinstance(g.nodes[p], _CONV)), None)
            if target is not None:
                t = g.nodes[target]
                g.nodes[target] = nir.Affine(_arr(t.weight), _bias_of(t) + v_leak.reshape(-1), metadata=t.metadata)
            elif conv is not None:
                c = g.nodes[conv]
                per = v_leak.reshape(_arr(c.weight).shape[0], -1)
                if not np.allclose(per, per[:, :1]):
                    raise NIRError(f"ensemble '{name}': its bias differs within a channel and cannot go into "
                                   f"the bias of convolution '{conv}'")
                g.set(conv, bias=_arr(c.bias) + per[:, 0])
            elif inputs:
                src = inputs[0]
                n = v_leak.size
                g.nodes[f"{name}_bias"] = nir.Affine(np.zeros((n, n)), v_leak.reshape(-1))
                g.edges += [(src, f"{name}_bias"), (f"{name}_bias", name)]
            else:
                raise NIRError(f"ensemble '{name}': has a bias but no input to carry it")
        meta = {k: v for k, v in (node.metadata or {}).items() if k != "v_init"}
        changes = {"r": np.ones(shape), "metadata": meta}
        if not isinstance(node, nir.IF):
            changes["v_leak"] = np.zeros(shape)
        g.set(name, **changes)

    _merge_parallel_weights(g)
    unclamped = _unclamped(g, profile, labels or {})
    if profile.spikes_per_step:
        for name, node in list(g.nodes.items()):
            if isinstance(node, _NEURONS):
                for s in _downstream_weights(g, name):
                    if len(g.preds(s)) != 1 and not isinstance(g.nodes[s], nir.LI):
                        raise NIRError(f"node '{s}' sums spikes and other inputs; cannot rescale it")
                    _scale_rows_input(g, s, 1.0 / pdt)
    for name, node in list(g.nodes.items()):
        factor = _per_step_factor(node, profile, pdt)
        if factor is not None:
            for p in _weight_inputs(g, name):
                _scale_rows(g, p, factor, f"ensemble '{name}' per-step input")

    for name, node in list(g.nodes.items()):
        if profile.euler_taus:
            _map_taus(g, name, lambda tau, where: euler_tau(tau, pdt))
            node = g.nodes[name]
        if profile.cuba_r_is_tau_over_dt and isinstance(node, nir.CubaLIF):
            k = _arr(node.tau_mem) / pdt
            for p in _weight_inputs(g, name):
                _scale_rows(g, p, 1.0 / k, f"ensemble '{name}' snnTorch r")
            g.set(name, r=k)
        if profile.tau_in_steps:
            for attr in ("tau", "tau_mem", "tau_syn"):
                if hasattr(node, attr):
                    g.set(name, **{attr: _arr(getattr(g.nodes[name], attr)) / pdt})
        if profile.affine_only and type(node) is nir.Linear:
            g.nodes[name] = nir.Affine(_arr(node.weight), np.zeros(_arr(node.weight).shape[0]),
                                       metadata=node.metadata)
    g.metadata.update({"nhw_profile": profile.name, "peer_dt": pdt})
    if unclamped:
        g.metadata[UNCLAMPED_KEY] = unclamped
    return g.graph()


def _merge_parallel_weights(g: _Graph) -> None:
    """``Linear``/``Affine`` nodes reading the same source and feeding only the same node
    become one ``Affine`` (their sum): nirtorch 2.6, under snnTorch and Norse, passes a
    node's second input as its state instead of adding it (e.g. an ``IF`` bias)."""
    for name in list(g.nodes):
        groups: dict = {}
        for p in g.preds(name):
            node = g.nodes[p]
            if isinstance(node, (nir.Linear, nir.Affine)) and g.succs(p) == [name] and len(g.preds(p)) == 1:
                groups.setdefault(g.preds(p)[0], []).append(p)
        for src, parts in groups.items():
            if len(parts) < 2:
                continue
            keep, *rest = parts
            w = sum(_arr(g.nodes[p].weight) for p in parts)
            b = sum(_bias_of(g.nodes[p]) for p in parts)
            g.nodes[keep] = nir.Affine(w, b, metadata=g.nodes[keep].metadata)
            for p in rest:
                del g.nodes[p]
            g.edges = [e for e in g.edges if e[0] not in rest and e[1] not in rest]


def _if_as_lif(node: nir.IF, tau: float) -> nir.LIF:
    """``IF`` (``dv/dt = r I``) as ``LIF`` (``tau dv/dt = -v + r tau I``): equal while ``t << tau``."""
    shape = _arr(node.r).shape
    meta = {**(node.metadata or {}), "nhw_if_as_lif": float(tau)}
    return nir.LIF(tau=np.full(shape, tau), r=_arr(node.r) * tau, v_leak=np.zeros(shape),
                   v_threshold=_arr(node.v_threshold) * np.ones(shape),
                   v_reset=_arr(node.v_reset) * np.ones(shape), metadata=meta)


def _lif_as_if(node: nir.LIF) -> nir.IF:
    """Undo :func:`_if_as_lif` (the LIF's ``r`` is 1 once normalised: ``IF.r = r / tau``)."""
    meta = dict(node.metadata or {})
    tau = float(meta.pop("nhw_if_as_lif"))
    return nir.IF(r=_arr(node.r) / tau, v_threshold=_arr(node.v_threshold), v_reset=_arr(node.v_reset),
                  metadata=meta)


def _per_step_factor(node, profile: Profile, pdt: float) -> np.ndarray | None:
    """What the weights into ``node`` are multiplied by for a peer adding input per step
    (``1 - exp(-dt / tau)`` for LIF, ``dt`` for IF; tau in seconds), or None.

    nengo's LIF step is ``v <- exp(-dt/tau) v + (1 - exp(-dt/tau)) J``; a peer that decays
    by ``exp(-dt/tau)`` and adds its input unscaled (sinabs) needs that input factor to
    make the same step (``dt / tau``, its first-order form, made sinabs fire up to 23 %
    more at tau = 5 steps)."""
    if type(node) not in profile.input_per_step:
        return None
    if isinstance(node, nir.IF):
        return np.full(_arr(node.r).shape, pdt)
    return -np.expm1(-pdt / _arr(node.tau))


def _ensemble(name: str, labels: dict[str, str]) -> str:
    """``ensemble 'label'`` as the user labelled it (and the NIR node's name where it differs)."""
    label = labels.get(name, name)
    return f"ensemble '{label}'" + (f" (NIR node '{name}')" if label != name else "")


def _unclamped(g: _Graph, profile: Profile, labels: dict[str, str]) -> list[str]:
    """Ensembles whose lower voltage bound the peer lacks, and whose input can go negative.

    nengo's ``LIF`` clamps its voltage at ``min_voltage`` (0 by default) and its
    ``SpikingRectifiedLinear`` ignores negative input; NIR's neurons and every peer's
    integrate negative input below zero.  The two agree while the input stays >= 0; with
    a negative weight or bias (inputs and spikes taken as >= 0) they can differ: such an
    inhibited neuron fires later in the peer than in nengo.  An ``IF`` that the profile
    rewrote as a ``LIF`` (:func:`_if_as_lif`) is still nengo's ``SpikingRectifiedLinear``
    and is described as one (``LIF(min_voltage=...)`` is no advice for it).
    """
    out = []
    for name, node in g.nodes.items():
        meta = node.metadata or {}
        was_if = isinstance(node, nir.IF) or "nhw_if_as_lif" in meta
        if was_if and meta.get("rectified_input"):
            what = "nengo's SpikingRectifiedLinear ignores negative input"
        elif isinstance(node, (nir.LIF, nir.CubaLIF)) and not was_if:
            floor = float(meta.get("min_voltage", 0.0))
            if not np.isfinite(floor):
                continue
            what = f"nengo clamps its voltage at min_voltage={floor:g}"
        else:
            continue
        negative = any(np.any(_arr(g.nodes[p].weight) < 0) or np.any(_arr(getattr(g.nodes[p], "bias", 0.0)) < 0)
                       for p in _weight_inputs(g, name)
                       if isinstance(g.nodes[p], (nir.Linear, nir.Affine, *_CONV)))
        if not negative:
            continue
        peer = ("floors it at -v_threshold" if isinstance(node, nir.IF) and profile.if_floor_at_minus_threshold
                else "has no lower bound")
        fix = (" (build it with LIF(min_voltage=-np.inf), NIR's unbounded LIF, for an exact match)"
               if not was_if else "")
        out.append(f"{_ensemble(name, labels)}: {what} and {profile.name} {peer}; its input can be negative, "
                   f"so while it is, the peer's voltage goes lower and its spikes come later{fix}")
    return out


def _scale_rows_input(g: _Graph, name: str, k: float) -> None:
    """Multiply what weight node ``name`` applies to its input by ``k`` (not a bias)."""
    node = g.nodes[name]
    if isinstance(node, nir.LI):
        g.set(name, r=_arr(node.r) * k)
    else:
        g.set(name, weight=_arr(node.weight) * k)


# --- import ---------------------------------------------------------------------------
def from_profile(graph: nir.NIRGraph, profile: str | Profile, *, dt: float | None = None,
                 own_export: bool = False) -> nir.NIRGraph:
    """Strict NIR equivalent to ``graph``, a file written in ``profile``'s conventions.

    Undoes what :func:`to_profile` does where it changes meaning (per-step spikes, tau
    in steps, snnTorch's ``CubaLIF.r``) and restores probe filters recorded by nhw;
    checks that the graph is one the peer could have written.

    Parameters
    ----------
    dt
        The peer's time step (for peers that take one); default: the profile's fixed
        one, else the graph's ``metadata["peer_dt"]`` or ``["dt"]``, else 0.001 s.
    own_export
        The file was written by the peer's own exporter: undo that exporter's known
        deviations from NIR (:attr:`Profile.own_export_tau_times_dt`).

    Raises
    ------
    NIRError
        The graph cannot be a ``profile`` file (the message names the node and why).
    """
    profile = get_profile(profile)
    if not profile.normalise:
        return graph
    meta = graph.metadata or {}
    claimed = meta.get("nhw_profile")
    if isinstance(claimed, bytes):
        claimed = claimed.decode()
    if claimed is not None and str(claimed) != profile.name:
        raise NIRError(f"the file was exported by nhw for {claimed}, not {profile.name}")
    if dt is None:
        dt = profile.dt if profile.dt is not None else float(meta.get("peer_dt", meta.get("dt", 0.001)))
    g = _Graph(graph)
    problems = []
    for name, node in g.nodes.items():
        if type(node) not in profile.node_types:
            problems.append(f"node '{name}': {profile.name} does not write {type(node).__name__} nodes")
        if isinstance(node, _NEURONS):
            r = _arr(node.r)
            if isinstance(node, nir.CubaLIF) and profile.cuba_r_is_tau_over_dt:
                if not np.allclose(r, _arr(node.tau_mem) / dt, rtol=1e-6):
                    problems.append(f"node '{name}': CubaLIF r must be tau_mem / {dt:g} in a {profile.name} file")
            elif profile.cuba_r_is_tau_over_dt and isinstance(node, nir.LIF) and \
                    np.allclose(r, _arr(node.tau) / dt, rtol=1e-6):
                pass  # snnTorch's own export: r = tau / dt (input added once per step), valid NIR
            elif not np.all(r == 1):
                problems.append(f"node '{name}': r != 1 ({profile.name} neither writes nor reads it)")
            if np.any(_arr(getattr(node, "v_leak", 0.0)) != 0) and profile.name != "norse":
                problems.append(f"node '{name}': v_leak != 0 ({profile.name} neither writes nor reads it)")
        for attr in ("tau", "tau_mem", "tau_syn"):
            if hasattr(node, attr) and not isinstance(node, nir.Delay) and \
                    "nhw_if_as_lif" not in (node.metadata or {}):  # an IF: tau is 2**20 steps
                tau = _arr(getattr(node, attr))
                if profile.tau_in_steps and np.any(tau < 1):
                    problems.append(f"node '{name}': {attr} {tau.min():g} < 1 is not in steps, as {profile.name} "
                                    "writes it (a file in seconds?)")
                elif not profile.tau_in_steps and np.any(tau >= 1):
                    problems.append(f"node '{name}': {attr} {tau.max():g} >= 1 s: time constants in steps "
                                    f"(a sinabs file?), not {profile.name}'s seconds")
    if problems:
        raise NIRError(f"not a {profile.name} NIR file:\n  " + "\n  ".join(problems))
    if own_export and claimed is not None:
        raise NIRError(f"own_export=True: the file was exported by nhw for {claimed}, not by {profile.name}")
    own_export = own_export and profile.own_export_tau_times_dt
    for name, node in list(g.nodes.items()):
        if own_export:
            _map_taus(g, name, lambda tau, where: tau / dt)
        if profile.euler_taus:
            try:
                _map_taus(g, name, lambda tau, where: exact_tau(tau, dt, where))
            except NIRError as e:
                if not profile.own_export_tau_times_dt or own_export:
                    raise
                raise NIRError(f"{e}; {profile.name}'s own exporter writes dt * tau: if it wrote this "
                               "file, read it with own_export=True (nhw import --own-export)") from None
        if profile.tau_in_steps:
            for attr in ("tau", "tau_mem", "tau_syn"):
                if hasattr(node, attr):
                    g.set(name, **{attr: _arr(getattr(g.nodes[name], attr)) * dt})
        factor = _per_step_factor(g.nodes[name], profile, dt)
        if factor is not None:
            for p in _weight_inputs(g, name):
                _scale_rows(g, p, 1.0 / factor, f"node '{name}' per-step input")
        node = g.nodes[name]
        if isinstance(node, nir.LIF) and "nhw_if_as_lif" in (node.metadata or {}):
            g.nodes[name] = node = _lif_as_if(node)
        if isinstance(node, (nir.LIF, nir.CubaLIF)) and "min_voltage" not in (node.metadata or {}):
            # the peers' neurons have no lower voltage bound (nengo's LIF clamps at 0)
            g.set(name, metadata={**(node.metadata or {}), "min_voltage": -np.inf})
            node = g.nodes[name]
        if isinstance(node, nir.CubaLIF) and profile.cuba_r_is_tau_over_dt:
            g.set(name, w_in=_arr(node.w_in) * _arr(node.r), r=np.ones_like(_arr(node.r)))
        if isinstance(node, nir.IF) and profile.subtractive_reset:
            g.set(name, metadata={**(node.metadata or {}), "reset": "subtract"})
    if profile.spikes_per_step:
        for name, node in list(g.nodes.items()):
            if isinstance(node, _NEURONS):
                for s in _downstream_weights(g, name):
                    _scale_rows_input(g, s, dt)
    for name, node in list(g.nodes.items()):
        taus = (node.metadata or {}).get("nhw_probe_taus") if isinstance(node, nir.Output) else None
        size = int(np.prod(node.output_type["output"])) if taus is not None else 0
        for i, tau in enumerate(np.atleast_1d(taus) if taus is not None else []):
            syn = f"{name}_syn{i}"  # the first in the list is nearest the Output
            g.nodes[syn] = nir.LI(tau=np.full(size, float(tau)), r=np.ones(size), v_leak=np.zeros(size))
            g.edges = [(a, syn if b == name else b) for a, b in g.edges] + [(syn, name)]
    g.metadata.setdefault("dt", dt)
    return g.graph()
