"""The standard networks every backend is checked against ``reference`` on.

Each :class:`ParityNetwork` builds a seeded ``nengo.Network`` with named probes and
declares how closely another backend must reproduce ``reference`` on each probe:
a default :class:`Tolerance`, per-target overrides (a target that approximates by
design, such as a chip emulator with quantised weights, declares looser bounds),
and per-target ``unsupported`` reasons.  The same builders feed the benchmark
harness (``benchmarks/``), so speed and parity are measured on the same models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import nengo
import numpy as np

from nhw.errors import UnknownNameError
from nhw.names import unknown


@dataclass(frozen=True)
class Tolerance:
    """Allowed deviation of a probe from ``reference``.

    Parameters
    ----------
    rmse
        Bound on the root-mean-square error over all samples and dimensions.
    max_abs
        Bound on the largest absolute error of any sample.
    """

    rmse: float
    max_abs: float


@dataclass(frozen=True)
class Case:
    """One built standard network, ready to simulate."""

    network: nengo.Network
    probes: dict[str, nengo.Probe]
    n_steps: int


@dataclass(frozen=True)
class ParityNetwork:
    """A named, parameterised standard network with declared tolerances.

    Parameters
    ----------
    name
        Registry key.
    build
        ``build(dimensions, n_per_dim, seed) -> Case``.
    tolerance
        Default tolerance against ``reference``: one for every probe, or a dict by
        probe name (probes in different units need different bounds).
    dimensions
        Default dimensionality for parity runs.
    per_target
        Target name -> tolerance (or dict by probe) overriding ``tolerance`` for that
        target; targets that approximate by design (a chip with quantised weights)
        declare their bounds here.
    unsupported
        Target name -> reason the network cannot run there.
    """

    name: str
    build: Callable[..., Case]
    tolerance: Tolerance | dict[str, Tolerance]
    dimensions: int = 1
    description: str = ""
    per_target: dict[str, Tolerance | dict[str, Tolerance]] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)

    def tolerance_for(self, target: str, probe: str) -> Tolerance:
        """The tolerance ``probe`` must meet on ``target``."""
        for spec in (self.per_target.get(target), self.tolerance):
            if isinstance(spec, Tolerance):
                return spec
            if isinstance(spec, dict) and probe in spec:
                return spec[probe]
        raise KeyError(f"network {self.name!r} declares no tolerance for probe {probe!r} on {target!r}")

    def case(self, dimensions: int | None = None, n_per_dim: int = 50, seed: int = 0) -> Case:
        """Build the network (``dimensions`` defaults to the network's own)."""
        return self.build(dimensions or self.dimensions, n_per_dim, seed)


def _sines(dimensions: int) -> Callable[[float], np.ndarray]:
    phases = np.linspace(0, np.pi, dimensions, endpoint=False)
    return lambda t: 0.8 * np.sin(2 * np.pi * t + phases)


def communication_channel(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """Node -> A -> B, each ensemble representing the input unchanged."""
    with nengo.Network(seed=seed, label="communication_channel") as net:
        stim = nengo.Node(_sines(dimensions), label="stim")
        a = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="a")
        b = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="b")
        nengo.Connection(stim, a)
        nengo.Connection(a, b)
        probes = {"a": nengo.Probe(a, synapse=0.02), "b": nengo.Probe(b, synapse=0.02)}
    return Case(net, probes, 1000)


def sin_x2_chain(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """The seed tutorial's NEF chain: x -> x**2 -> sin(x**2), from a white signal."""
    with nengo.Network(seed=seed, label="sin_x2_chain") as net:
        inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3), size_out=dimensions, label="x")
        ens0 = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="square")
        ens1 = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="sine")
        outpt = nengo.Node(size_in=dimensions, label="out")
        nengo.Connection(inpt, ens0)
        nengo.Connection(ens0, ens1, function=np.square)
        nengo.Connection(ens1, outpt, function=np.sin)
        probes = {"x": nengo.Probe(inpt), "out": nengo.Probe(outpt, synapse=0.01)}
    return Case(net, probes, 1000)


def integrator(dimensions: int, n_per_dim: int, seed: int, tau: float = 0.1) -> Case:
    """A recurrent NEF integrator driven by a brief pulse, then holding."""
    with nengo.Network(seed=seed, label="integrator") as net:
        stim = nengo.Node(
            nengo.processes.Piecewise({0: np.full(dimensions, 0.0), 0.1: np.full(dimensions, 1.0), 0.4: np.zeros(dimensions)}),
            label="stim",
        )
        ens = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="memory")
        nengo.Connection(stim, ens, transform=tau * 2.0, synapse=tau)
        nengo.Connection(ens, ens, synapse=tau)
        probes = {"memory": nengo.Probe(ens, synapse=0.02)}
    return Case(net, probes, 1000)


def oscillator(dimensions: int, n_per_dim: int, seed: int, tau: float = 0.1, hz: float = 1.0) -> Case:
    """A 2-D harmonic oscillator per dimension pair, kicked once."""
    pairs = max(1, dimensions // 2)
    omega = 2 * np.pi * hz
    rot = np.array([[1.0, -omega * tau], [omega * tau, 1.0]])
    with nengo.Network(seed=seed, label="oscillator") as net:
        kick = nengo.Node(lambda t: [1.0, 0.0] if t < 0.1 else [0.0, 0.0], label="kick")
        probes = {}
        for k in range(pairs):
            ens = nengo.Ensemble(n_per_dim * 2, 2, label=f"osc{k}")
            nengo.Connection(kick, ens)
            nengo.Connection(ens, ens, transform=rot, synapse=tau)
            probes[f"osc{k}"] = nengo.Probe(ens, synapse=0.02)
    return Case(net, probes, 1000)


def circular_convolution(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """nengo's circular convolution network binding two fixed vectors."""
    rng = np.random.RandomState(seed)
    a_vec, b_vec = (v / np.linalg.norm(v) for v in rng.randn(2, dimensions))
    with nengo.Network(seed=seed, label="circular_convolution") as net:
        a = nengo.Node(a_vec, label="a")
        b = nengo.Node(b_vec, label="b")
        cconv = nengo.networks.CircularConvolution(n_per_dim, dimensions)
        nengo.Connection(a, cconv.input_a)
        nengo.Connection(b, cconv.input_b)
        probes = {"out": nengo.Probe(cconv.output, synapse=0.03)}
    return Case(net, probes, 500)


def basal_ganglia(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """nengo's basal ganglia selecting the largest of ``dimensions`` utilities."""
    utilities = np.linspace(0.3, 0.8, dimensions)
    with nengo.Network(seed=seed, label="basal_ganglia") as net:
        stim = nengo.Node(utilities, label="utilities")
        bg = nengo.networks.BasalGanglia(dimensions, n_neurons_per_ensemble=n_per_dim)
        nengo.Connection(stim, bg.input)
        probes = {"output": nengo.Probe(bg.output, synapse=0.01)}
    return Case(net, probes, 500)


def pes_learning(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """PES learns a communication channel from a zero-initialised connection."""
    with nengo.Network(seed=seed, label="pes_learning") as net:
        stim = nengo.Node(_sines(dimensions), label="stim")
        pre = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="pre")
        post = nengo.Ensemble(n_per_dim * dimensions, dimensions, label="post")
        error = nengo.Node(size_in=dimensions, label="error")
        nengo.Connection(stim, pre)
        conn = nengo.Connection(
            pre, post, function=lambda x: np.zeros(dimensions), learning_rule_type=nengo.PES(1e-3)
        )
        nengo.Connection(post, error)
        nengo.Connection(stim, error, transform=-1)
        nengo.Connection(error, conn.learning_rule)
        probes = {"post": nengo.Probe(post, synapse=0.02)}
    return Case(net, probes, 1000)


def neuron_chain(dimensions: int, n_per_dim: int, seed: int) -> Case:
    """Two neuron-to-neuron dense connections (full weight matrices, no decoders)."""
    n = n_per_dim * dimensions
    rng = np.random.RandomState(seed)
    with nengo.Network(seed=seed, label="neuron_chain") as net:
        stim = nengo.Node(_sines(dimensions), label="stim")
        a = nengo.Ensemble(n, dimensions, label="a")
        b = nengo.Ensemble(n, dimensions, label="b")
        c = nengo.Ensemble(n, dimensions, label="c")
        nengo.Connection(stim, a)
        w1 = rng.uniform(-1, 1, (n, n)) * (0.5 / n)
        w2 = rng.uniform(-1, 1, (n, n)) * (0.5 / n)
        nengo.Connection(a.neurons, b.neurons, transform=w1)
        nengo.Connection(b.neurons, c.neurons, transform=w2)
        probes = {
            "b_rates": nengo.Probe(b.neurons, synapse=0.05),
            "c_decoded": nengo.Probe(c, synapse=0.05),
        }
    return Case(net, probes, 500)


# Default tolerances are for targets computing nengo's float arithmetic (opencl in
# float32, tensorflow): spike timing may drift by a step, nothing more.  loihi-emu
# quantises weights, biases and decays, codes Node inputs as spikes and fires at the
# chip's whole-step periods (at or below nengo's LIF rates); its decoders are solved on
# that rate curve.  Its bounds are its worst error against reference over seeds 0-4
# with a margin of about 1.1-1.3x.  b_rates (Hz) compares raw neuron rates, which
# differ from nengo's by design (no decoders absorb the chip's rate curve there).
_EMU = "loihi-emu"
_STANDARD = [
    ParityNetwork("communication_channel", communication_channel, Tolerance(0.02, 0.08), description="Node -> A -> B",
                  per_target={_EMU: Tolerance(0.025, 0.09)}),
    ParityNetwork("sin_x2_chain", sin_x2_chain, Tolerance(0.02, 0.08), description="seed tutorial x -> x^2 -> sin",
                  per_target={_EMU: Tolerance(0.014, 0.052)}),
    ParityNetwork("integrator", integrator, Tolerance(0.03, 0.1), description="recurrent integrator, pulse input",
                  per_target={_EMU: Tolerance(0.05, 0.12)}),
    ParityNetwork("oscillator", oscillator, Tolerance(0.05, 0.2), dimensions=2, description="recurrent 2-D oscillator",
                  per_target={_EMU: Tolerance(0.05, 0.15)}),
    ParityNetwork("circular_convolution", circular_convolution, Tolerance(0.02, 0.08), dimensions=4,
                  description="nengo.networks.CircularConvolution", per_target={_EMU: Tolerance(0.11, 0.33)}),
    ParityNetwork("basal_ganglia", basal_ganglia, Tolerance(0.03, 0.15), dimensions=4,
                  description="nengo.networks.BasalGanglia", per_target={_EMU: Tolerance(0.20, 0.80)}),
    # on chip PES learns with 8-bit errors and stochastically rounded weights (SPEC.md section 8)
    ParityNetwork("pes_learning", pes_learning, Tolerance(0.03, 0.1), description="PES-learned channel",
                  per_target={_EMU: Tolerance(0.045, 0.15)}),
    ParityNetwork("neuron_chain", neuron_chain,
                  {"b_rates": Tolerance(2.0, 20.0), "c_decoded": Tolerance(0.02, 0.08)},
                  description="neuron->neuron dense chain (b_rates in Hz)",
                  per_target={_EMU: {"b_rates": Tolerance(80.0, 210.0), "c_decoded": Tolerance(0.11, 0.20)},
                              # float32: single spikes flip (rmse 1.13 Hz, max 38 Hz; float64: 1e-12)
                              "tensorflow": {"b_rates": Tolerance(3.0, 60.0)}}),
]

#: Registry of standard networks by name.
NETWORKS: dict[str, ParityNetwork] = {n.name: n for n in _STANDARD}


def get_network(name: str) -> ParityNetwork:
    """Look up a standard network; unknown names list the known ones."""
    try:
        return NETWORKS[name]
    except KeyError:
        raise UnknownNameError(unknown("standard network", name, NETWORKS)) from None
