"""Probes of the ``loihi-emu`` target: what each probe reads, filtered and sampled as nengo does.

The mapping stage gives each probe a plan: ``"output"`` (a decoded chip output,
filtered by the decoder), ``"sum"`` (a probed passthrough Node fed only by the chip:
its sources' decoded sum), ``"node"`` (a host Node's value) or ``"voltage"`` (a
compartment state).  Filtered probes lag their input one step, as nengo's probes
(filtered in "update" mode) do: a decoded chip output through the decoder's
:meth:`~.codec.OutputDecoder.host_view` (the rule every filtered chip output follows),
the others here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from nhw.hw_emulator.emulator import Emulator

from .codec import OutputDecoder
from .filters import HostFilter
from .host import Host
from .taps import MappedModel


def _ps(probe: Any) -> Any:
    return slice(None) if probe.slice is None else probe.slice


class Probes:
    """Recorded probe data of a run, one list of rows per probe.

    Parameters
    ----------
    mapped
        The mapped model (its probe plans and voltage readouts).
    probes
        The built model's probes.
    host, decoder, emulator
        Where the probed values come from.
    dt
        Time step in seconds.
    """

    def __init__(self, mapped: MappedModel, probes: list, host: Host, decoder: OutputDecoder,
                 emulator: Emulator, dt: float) -> None:
        self.plans, self.host, self.decoder, self.emulator, self.dt = mapped.probe_plans, host, decoder, emulator, dt
        self.voltages = mapped.voltages
        self.volt_sl = {v: emulator.slice_of(v.block) for v in mapped.voltages}
        self.state_scale = {v: v.block.voltage_scale if v.attr == "voltage" else v.block.current_scale
                            for v in mapped.voltages}
        # nengo parameter reads cost microseconds each; the per-step code reads copies
        # (a probed chip output is lagged by the decoder, OutputDecoder.host_view, with every
        # other filtered chip output; the others are delayed here)
        self.spec = {
            p: (p.synapse is not None and self.plans[p][0] != "output",
                1 if p.sample_every is None else p.sample_every / dt, _ps(p),
                self._slice(p))
            for p in probes
        }
        self.data: dict = {p: [] for p in probes}

    def _slice(self, probe: Any) -> Any:
        """``probe.slice`` for signal probes (decoded probes slice through their connection)."""
        kind, what = self.plans[probe]
        if kind == "output" and what.decoders is not None:
            return slice(None)
        return _ps(probe)

    def _size(self, probe: Any) -> int:
        kind, what = self.plans[probe]
        if kind == "sum":
            full = what[0].decoders.shape[0]
        else:
            full = what.size_out if kind == "node" else what.block.n
        return len(np.arange(full)[self._slice(probe)])

    def reset(self) -> None:
        """Zero the filter states (the simulator empties the recorded data)."""
        self.last: dict = {}
        self.filters = {
            p: HostFilter(p.synapse, self._size(p), self.dt)
            for p, plan in self.plans.items() if plan[0] in ("node", "voltage", "sum")
        }

    def record_chunk(self, y: np.ndarray | None, node_rec: dict, volts: dict, n0: int, steps: int) -> None:
        """Record steps ``n0 + 1 .. n0 + steps`` of an open-loop chunk.

        ``y`` are the chunk's filtered decoded outputs, ``node_rec`` the probed nodes'
        values and ``volts`` the probed compartment states, one row per step.
        """
        dec, dt = self.decoder, self.dt
        ts = (n0 + 1 + np.arange(steps)) * dt
        for p in self.data:
            kind, what = self.plans[p]
            if kind == "output":
                vals = y[:, dec.rows[what]]
            elif kind == "sum":
                vals = self.filters[p].run_rows(ts, sum(y[:, sl] for sl in dec.sum_rows[p])[:, _ps(p)])
            elif kind == "node":
                vals = self.filters[p].run_rows(ts, node_rec[what][:, _ps(p)])
            else:
                vals = self.filters[p].run_rows(ts, (volts[what] / self.state_scale[what])[:, _ps(p)])
            if kind == "output" and what.decoders is None:
                vals = vals[:, _ps(p)]
            vals = self._delay(p, vals)
            period = 1 if p.sample_every is None else p.sample_every / dt
            steps_idx = np.arange(n0 + 1, n0 + steps + 1)
            self.data[p].extend(np.array(vals[steps_idx % period < 1]))

    def recorders(self) -> list:
        """``(probe, append, sample period in steps)`` of every probe, for stepwise runs."""
        return [(p, self.data[p].append, self.spec[p][1]) for p in self.data]

    def value(self, p: Any, t: float) -> np.ndarray:
        """Probe ``p``'s value at the current step (time ``t``), delayed as nengo's."""
        now = self._value_now(p, t)
        if not self.spec[p][0]:
            return now
        # one step of _delay: the previous step's value goes out, this one is kept
        last = self.last.get(p)
        self.last[p] = np.array(now, copy=True)
        return np.zeros(now.shape) if last is None else last

    def _delay(self, p: Any, vals: np.ndarray) -> np.ndarray:
        """nengo filters probes in "update" mode: a filtered probe lags its input one step."""
        if not self.spec[p][0]:
            return vals
        last = self.last.get(p)
        self.last[p] = np.array(vals[-1], copy=True)
        if last is None:
            last = np.zeros(vals.shape[1:])
        return np.concatenate([last[None], vals[:-1]], axis=0)

    def _value_now(self, p: Any, t: float) -> np.ndarray:
        kind, what = self.plans[p]
        ps, probe_sl = self.spec[p][2:]
        if kind == "output":
            return self.host.out_value(what)[probe_sl].copy()
        if kind == "node":
            return self.filters[p](t, self.host.node_val[what][ps].copy())
        if kind == "sum":
            return self.filters[p](t, sum(self.host.y_all[sl] for sl in self.decoder.sum_rows[p])[ps])
        v = self.emulator.state(what.attr, self.volt_sl[what]) / self.state_scale[what]
        return self.filters[p](t, v[ps])
