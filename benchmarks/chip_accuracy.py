"""Decoded accuracy of loihi-emu and reference against the ideal function.

For every standard parity network (``toolchain/parity_networks.py``) and seed, each
named probe of ``reference`` and of ``loihi-emu`` is compared with an *ideal* run of the
same network; the table gives the rmse per probe (mean over seeds) and the ratio
loihi-emu / reference::

    python -m benchmarks.chip_accuracy --seeds 0-4
    python -m benchmarks.chip_accuracy --seeds 0-4 --networks basal_ganglia,neuron_chain
    python -m benchmarks.chip_accuracy --seeds 0-1 --emu-option decoder_rates=nengo
    python -m benchmarks.chip_accuracy --json accuracy.json    # per-seed errors as well
    python -m benchmarks.chip_accuracy --networks neuron_chain,pes_learning --chip-curve

The ideal run is the question "what would this network compute without spikes":

- Decoded networks (every connection from an ensemble is decoded): the same network
  with ``nengo.Direct`` neurons on ``reference``, i.e. the exact functions the
  connections ask for, filtered by the same synapses.
- Networks whose learned connections are taught a known function (:data:`TAUGHT`:
  ``pes_learning``, whose error is ``post - stim``): that function in Direct mode, the
  learning removed ("taught"), i.e. what learning converges to; both targets' errors
  include their learning transient.
- Other networks with a neuron-level object (a ``Neurons`` connection or probe, a
  learning rule, which needs pre activities): ``nengo.Direct`` has no neurons, so the ideal is
  the same network with nengo's rate-mode neurons (``nengo.LIF`` -> ``nengo.LIFRate``,
  spiking rectified linear -> ``RectifiedLinear``) on ``reference``.  The spiking
  network is an approximation of exactly this rate network (same gains, biases,
  weights and decoders); its neuron probes are firing rates in Hz, so their error is
  in Hz.

Both simulators see the same seeds, so sampled parameters (encoders, gains, evaluation
points) agree between the three runs.

``--chip-curve`` splits loihi-emu's error on rate-ideal networks in two: the same rate
network with the chip's discretised LIF rate curve (:func:`nhw.hw_emulator.rates.lif_rates`:
whole-step periods, at most ``1 / (tau_ref + dt)``) against the ideal (what the chip's
rate curve alone costs), and loihi-emu against that chip-curve network (what spiking,
quantisation and spike-coded inputs cost on top, to compare with reference's error).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

import nengo  # noqa: E402
import numpy as np  # noqa: E402

from nhw.errors import UnsupportedFeatureError  # noqa: E402

#: Spiking neuron type -> the rate type its ideal run uses (networks with neuron objects).
RATE_TYPES = {
    nengo.LIF: lambda n: nengo.LIFRate(tau_rc=n.tau_rc, tau_ref=n.tau_ref, amplitude=n.amplitude),
    nengo.SpikingRectifiedLinear: lambda n: nengo.RectifiedLinear(amplitude=n.amplitude),
}


class ChipCurveLIFRate(nengo.LIFRate):
    """A rate LIF on the chip's rate curve (discretised decay, whole-step periods,
    refractory register ``round(tau_ref/dt) + 1``) at the benchmark's time step."""

    dt = 0.001

    def step(self, dt, J, output):
        from nhw.hw_emulator import discretize, rates

        decay = discretize.decay_v_register(self.tau_rc, self.dt)
        ref = discretize.refractory_delay(self.tau_ref, self.dt)
        output[...] = rates.lif_rates(J, decay, ref, self.dt, self.amplitude)

    def rates(self, x, gain, bias):
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        self.step(self.dt, J, out)
        return out


@dataclass(frozen=True)
class ProbeError:
    """Errors of one probe against the ideal run, one entry per seed."""

    network: str
    probe: str
    ideal: str
    reference: tuple[float, ...]
    emulator: tuple[float, ...]
    #: loihi-emu against reference (the parity check): rmse and largest error, per seed
    parity_rmse: tuple[float, ...] = ()
    parity_max: tuple[float, ...] = ()
    #: ``--chip-curve`` (rate ideals only): the chip-curve rate network against the
    #: ideal, and loihi-emu against the chip-curve rate network, per seed
    curve: tuple[float, ...] = ()
    emu_vs_curve: tuple[float, ...] = ()

    @property
    def ratio(self) -> float:
        """Mean loihi-emu error over mean reference error (nan where both are exact:
        a Node's probe, which no neuron touches)."""
        ref, emu = float(np.mean(self.reference)), float(np.mean(self.emulator))
        if ref == 0.0:
            return float("nan") if emu == 0.0 else float("inf")
        return emu / ref


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


#: Standard networks whose learned connections are taught a known function (their
#: error signal is ``post - f(stim)``): their ideal is that function in Direct mode, the
#: learning connections removed, i.e. what the learning converges to.
TAUGHT: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pes_learning": lambda x: x,  # error = post - stim
}


def teach(network: nengo.Network) -> bool:
    """Replace each learned connection of a :data:`TAUGHT` network by the function it is taught.

    Returns whether ``network`` is one (it is modified in place).
    """
    function = TAUGHT.get(network.label)
    if function is None:
        return False
    for net in [network, *network.all_networks]:
        for conn in list(net.connections):
            if isinstance(conn.post_obj, nengo.connection.LearningRule):
                net.connections.remove(conn)  # the error signal into the rule
    for conn in network.all_connections:
        if conn.learning_rule_type is not None:
            conn.learning_rule_type = None
            conn.function = function
    return True


def needs_neurons(network: nengo.Network) -> bool:
    """Whether the network has a neuron-level object that ``nengo.Direct`` cannot run."""
    neurons = any(isinstance(c.pre_obj, nengo.ensemble.Neurons) or isinstance(c.post_obj, nengo.ensemble.Neurons)
                  or c.learning_rule_type is not None for c in network.all_connections)
    return neurons or any(isinstance(p.target, nengo.ensemble.Neurons) for p in network.all_probes)


def ideal_mode(network: nengo.Network) -> str:
    """``"direct"`` or ``"rate"``: how :func:`ideal` runs ``network`` (module docstring)."""
    return "rate" if needs_neurons(network) else "direct"


def ideal(case, seed: int, chip_curve: bool = False) -> tuple[str, dict[str, np.ndarray]]:
    """Run ``case`` (a freshly built standard network; it is modified) without spikes.

    Parameters
    ----------
    case
        A freshly built standard network (its ensembles' neuron types are replaced).
    seed
        Simulator seed.
    chip_curve
        Rate-mode networks only: LIF neurons on the chip's rate curve
        (:class:`ChipCurveLIFRate`) instead of nengo's.

    Returns
    -------
    tuple
        The ideal's kind (``"direct"``, ``"taught"`` or ``"rate"``) and each named
        probe's data.
    """
    mode = "taught" if not chip_curve and teach(case.network) else ideal_mode(case.network)
    if mode == "taught" and needs_neurons(case.network):
        raise UnsupportedFeatureError(f"network {case.network.label!r}: a taught ideal still has neuron objects")
    for ens in case.network.all_ensembles:
        if chip_curve and type(ens.neuron_type) is nengo.LIF:
            ens.neuron_type = ChipCurveLIFRate(tau_rc=ens.neuron_type.tau_rc, tau_ref=ens.neuron_type.tau_ref,
                                               amplitude=ens.neuron_type.amplitude)
        elif mode in ("direct", "taught"):
            ens.neuron_type = nengo.Direct()
        else:
            convert = RATE_TYPES.get(type(ens.neuron_type))
            if convert is None:
                raise UnsupportedFeatureError(f"Ensemble {ens.label!r}: no rate-mode ideal for {ens.neuron_type}; "
                                f"expected one of {', '.join(t.__name__ for t in RATE_TYPES)}")
            ens.neuron_type = convert(ens.neuron_type)
    with nengo.Simulator(case.network, seed=seed, progress_bar=False) as sim:
        sim.run_steps(case.n_steps)
    return mode, {name: np.asarray(sim.data[p], dtype=np.float64) for name, p in case.probes.items()}


def measure(name: str, seeds, n_per_dim: int = 50, chip_curve: bool = False, **emu_options) -> list[ProbeError]:
    """Errors of every probe of standard network ``name`` on reference and loihi-emu.

    Parameters
    ----------
    name
        Standard parity network.
    seeds
        Seeds to build and simulate with (network seed = simulator seed).
    n_per_dim
        Neurons per represented dimension.
    chip_curve
        Rate-ideal networks: also run the chip-curve rate network (module docstring).
    **emu_options
        Extra loihi-emu Simulator options.
    """
    from nhw.toolchain.parity import simulate
    from nhw.toolchain.parity_networks import get_network

    net = get_network(name)
    ref_err: dict[str, list[float]] = {}
    emu_err: dict[str, list[float]] = {}
    par_rmse: dict[str, list[float]] = {}
    par_max: dict[str, list[float]] = {}
    curve: dict[str, list[float]] = {}
    emu_curve: dict[str, list[float]] = {}
    mode = ""
    for seed in seeds:
        mode, want = ideal(net.case(None, n_per_dim, seed), seed)
        ref = simulate("reference", net.case(None, n_per_dim, seed), seed=seed)
        emu = simulate("loihi-emu", net.case(None, n_per_dim, seed), seed=seed, **emu_options)
        for probe, data in want.items():
            ref_err.setdefault(probe, []).append(_rmse(ref[probe], data))
            emu_err.setdefault(probe, []).append(_rmse(emu[probe], data))
            par_rmse.setdefault(probe, []).append(_rmse(emu[probe], ref[probe]))
            par_max.setdefault(probe, []).append(float(np.max(np.abs(emu[probe] - ref[probe]))))
        if chip_curve and mode == "rate":
            _, on_curve = ideal(net.case(None, n_per_dim, seed), seed, chip_curve=True)
            for probe, data in want.items():
                curve.setdefault(probe, []).append(_rmse(on_curve[probe], data))
                emu_curve.setdefault(probe, []).append(_rmse(emu[probe], on_curve[probe]))
    return [ProbeError(name, p, mode, tuple(ref_err[p]), tuple(emu_err[p]), tuple(par_rmse[p]), tuple(par_max[p]),
                       tuple(curve.get(p, ())), tuple(emu_curve.get(p, ()))) for p in ref_err]


def table(rows: list[ProbeError]) -> str:
    """Markdown table: per probe the mean rmse of reference and loihi-emu against the
    ideal, their ratio, and loihi-emu's worst seed against reference (rmse / max)."""
    lines = ["| network | probe | ideal | reference rmse | loihi-emu rmse | ratio | "
             "parity worst rmse | parity worst max |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "exact" if np.isnan(r.ratio) else f"{r.ratio:.2f}"
        lines.append(f"| {r.network} | {r.probe} | {r.ideal} | {np.mean(r.reference):.4g} | "
                     f"{np.mean(r.emulator):.4g} | {ratio} | {max(r.parity_rmse):.4g} | {max(r.parity_max):.4g} |")
    split = [r for r in rows if r.curve]
    if split:
        lines += ["", "| network | probe | chip-curve rate net vs ideal | loihi-emu vs chip-curve net | "
                  "reference vs ideal |", "|---|---|---:|---:|---:|"]
        lines += [f"| {r.network} | {r.probe} | {np.mean(r.curve):.4g} | {np.mean(r.emu_vs_curve):.4g} | "
                  f"{np.mean(r.reference):.4g} |" for r in split]
    return "\n".join(lines)


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"True": True, "False": False}.get(value, value)


def main(argv: list[str] | None = None) -> int:
    from nhw.toolchain.parity_networks import NETWORKS

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,2,5")
    ap.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated standard networks")
    ap.add_argument("--n-per-dim", type=int, default=50)
    ap.add_argument("--emu-option", action="append", default=[], metavar="KEY=VALUE",
                    help="extra loihi-emu Simulator option (repeatable)")
    ap.add_argument("--chip-curve", action="store_true",
                    help="rate-ideal networks: split loihi-emu's error at the chip-curve rate network")
    ap.add_argument("--json", metavar="PATH", help="also write every per-seed error to PATH")
    args = ap.parse_args(argv)
    options = dict(_option(o) for o in args.emu_option)
    rows: list[ProbeError] = []
    for name in args.networks.split(","):
        rows.extend(measure(name, _seeds(args.seeds), args.n_per_dim, args.chip_curve, **options))
        print(f"{name}: " + ", ".join(f"{r.probe} {r.ratio:.2f}x" for r in rows if r.network == name),
              file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(dataclasses.asdict(r), ratio=r.ratio) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
