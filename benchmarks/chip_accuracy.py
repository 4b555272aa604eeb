"""Decoded accuracy of loihi-emu and reference against the ideal function.

For every standard parity network (``toolchain/parity_networks.py``) and seed, each
named probe of ``reference`` and of ``loihi-emu`` is compared with an *ideal* run of the
same network; the table gives the rmse per probe (mean over seeds) and the ratio
loihi-emu / reference::

    python -m benchmarks.chip_accuracy --seeds 0-4
    python -m benchmarks.chip_accuracy --seeds 0-4 --networks basal_ganglia,neuron_chain
    python -m benchmarks.chip_accuracy --seeds 0-1 --emu-option decoder_rates=nengo
    python -m benchmarks.chip_accuracy --json accuracy.json    # per-seed errors as well

The ideal run is the question "what would this network compute without spikes":

- Decoded networks (every connection from an ensemble is decoded): the same network
  with ``nengo.Direct`` neurons on ``reference``, i.e. the exact functions the
  connections ask for, filtered by the same synapses.
- Networks with a neuron-level object (a ``Neurons`` connection or probe, a learning
  rule, which needs pre activities): ``nengo.Direct`` has no neurons, so the ideal is
  the same network with nengo's rate-mode neurons (``nengo.LIF`` -> ``nengo.LIFRate``,
  spiking rectified linear -> ``RectifiedLinear``) on ``reference``.  The spiking
  network is an approximation of exactly this rate network (same gains, biases,
  weights and decoders); its neuron probes are firing rates in Hz, so their error is
  in Hz.

Both simulators see the same seeds, so sampled parameters (encoders, gains, evaluation
points) agree between the three runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYOPENCL_CTX", "0")

import nengo  # noqa: E402
import numpy as np  # noqa: E402

#: Spiking neuron type -> the rate type its ideal run uses (networks with neuron objects).
RATE_TYPES = {
    nengo.LIF: lambda n: nengo.LIFRate(tau_rc=n.tau_rc, tau_ref=n.tau_ref, amplitude=n.amplitude),
    nengo.SpikingRectifiedLinear: lambda n: nengo.RectifiedLinear(amplitude=n.amplitude),
}


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


def needs_neurons(network: nengo.Network) -> bool:
    """Whether the network has a neuron-level object that ``nengo.Direct`` cannot run."""
    neurons = any(isinstance(c.pre_obj, nengo.ensemble.Neurons) or isinstance(c.post_obj, nengo.ensemble.Neurons)
                  or c.learning_rule_type is not None for c in network.all_connections)
    return neurons or any(isinstance(p.target, nengo.ensemble.Neurons) for p in network.all_probes)


def ideal_mode(network: nengo.Network) -> str:
    """``"direct"`` or ``"rate"``: how :func:`ideal` runs ``network`` (module docstring)."""
    return "rate" if needs_neurons(network) else "direct"


def ideal(case, seed: int) -> tuple[str, dict[str, np.ndarray]]:
    """Run ``case`` (a freshly built standard network; it is modified) without spikes.

    Returns
    -------
    tuple
        The ideal's kind (``"direct"`` or ``"rate"``) and each named probe's data.
    """
    mode = ideal_mode(case.network)
    for ens in case.network.all_ensembles:
        if mode == "direct":
            ens.neuron_type = nengo.Direct()
        else:
            convert = RATE_TYPES.get(type(ens.neuron_type))
            if convert is None:
                raise TypeError(f"Ensemble {ens.label!r}: no rate-mode ideal for {ens.neuron_type}; "
                                f"expected one of {', '.join(t.__name__ for t in RATE_TYPES)}")
            ens.neuron_type = convert(ens.neuron_type)
    with nengo.Simulator(case.network, seed=seed, progress_bar=False) as sim:
        sim.run_steps(case.n_steps)
    return mode, {name: np.asarray(sim.data[p], dtype=np.float64) for name, p in case.probes.items()}


def measure(name: str, seeds, n_per_dim: int = 50, **emu_options) -> list[ProbeError]:
    """Errors of every probe of standard network ``name`` on reference and loihi-emu.

    Parameters
    ----------
    name
        Standard parity network.
    seeds
        Seeds to build and simulate with (network seed = simulator seed).
    n_per_dim
        Neurons per represented dimension.
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
    return [ProbeError(name, p, mode, tuple(ref_err[p]), tuple(emu_err[p]), tuple(par_rmse[p]), tuple(par_max[p]))
            for p in ref_err]


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
    ap.add_argument("--json", metavar="PATH", help="also write every per-seed error to PATH")
    args = ap.parse_args(argv)
    options = dict(_option(o) for o in args.emu_option)
    rows: list[ProbeError] = []
    for name in args.networks.split(","):
        rows.extend(measure(name, _seeds(args.seeds), args.n_per_dim, **options))
        print(f"{name}: " + ", ".join(f"{r.probe} {r.ratio:.2f}x" for r in rows if r.network == name),
              file=sys.stderr, flush=True)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([dict(dataclasses.asdict(r), ratio=r.ratio) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
