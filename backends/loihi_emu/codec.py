"""Host values to chip spikes and back: the input encoder and the output decoder.

All of a model's chip inputs are encoded by one matrix product and all of its chip
outputs decoded by another, so the per-step host work is a few vector operations
whatever the number of connections.
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
from nhw.hw_emulator.emulator import Emulator

from nhw.errors import DiscretizationError

from . import host_kernels
from .chip_rules import describe
from .filters import HostFilter, lowpass_decay, synapse_key
from .taps import MappedModel


class SpikeEncoder:
    """Sigma-delta encoder of every ``ChipInput``: ``value = T_all @ (host signals)``.

    Parameters
    ----------
    mapped
        The mapped model (its ``inputs``).
    emulator
        The emulator (its input axon slices).
    input_range
        ``MapOptions.input_range``, named in the saturation warning.
    """

    def __init__(self, mapped: MappedModel, emulator: Emulator, input_range: float) -> None:
        self.mapped, self.n_inputs, self.input_range = mapped, emulator.n_inputs, input_range
        signals = []  # unique first connections whose f(x[pre_slice]) is needed
        col = {}
        for inp in mapped.inputs:
            if inp.conn not in col:
                col[inp.conn] = sum(c.size_mid for c in signals)
                signals.append(inp.conn)
        n_sig = sum(c.size_mid for c in signals)
        # nengo parameter access is slow; read each connection's fields once
        self.sig_specs = [(c.pre_obj, c.pre_slice, c.function, c.size_mid) for c in signals]
        rows = sum(inp.transform.shape[0] for inp in mapped.inputs)
        self.transform = np.zeros((rows, n_sig))
        self.amp = np.ones(rows)
        self.kmax = np.ones(rows)
        on, off = [], []
        r = 0
        for inp in mapped.inputs:
            d = inp.transform.shape[0]
            c0 = col[inp.conn]
            self.transform[r:r + d, c0:c0 + inp.conn.size_mid] = inp.transform
            self.amp[r:r + d] = inp.amplitude
            self.kmax[r:r + d] = inp.pairs
            sl = emulator.input_slice(inp.axons)
            on.append(np.arange(sl.start, sl.start + d))
            off.append(np.arange(sl.start + d, sl.stop))
            r += d
        self.on = np.concatenate(on) if on else np.zeros(0, np.intp)
        self.off = np.concatenate(off) if off else np.zeros(0, np.intp)
        self.owner = np.concatenate([[i] * inp.transform.shape[0] for i, inp in enumerate(mapped.inputs)]) \
            if mapped.inputs else np.zeros(0, int)
        self.saturated: set = set()
        #: multi-step chunks are encoded by the compiled loop (same counts and residuals)
        self.compiled = host_kernels.AVAILABLE
        self.reset()

    def reset(self) -> None:
        """Empty the residuals and the spikes in flight."""
        self.acc = np.zeros(len(self.amp))
        #: counts of the last host step encoded, delivered in the next chip step
        self.pending = np.zeros(self.n_inputs, np.int64)

    def encode(self, signal: np.ndarray) -> np.ndarray:
        """Spike counts per host step (steps x input axons) of host signals (steps x columns).

        Step by step, ``A = residual + value``, the count is ``floor(A/amp)`` and the
        residual ``A - count * amp`` carries over (also to the next call), so the emitted
        total never lags the input by more than one spike's worth, and the counts do not
        depend on how the steps are split into calls.  The counts of host step t reach
        the chip in step t + 1 (:meth:`arrive`).
        """
        y = signal @ self.transform.T
        if not np.isfinite(y).all():
            self._refuse_non_finite(y)
        amp, kmax = self.amp, self.kmax
        if self.compiled and len(y) > 1:
            counts, over = host_kernels.encode_counts(y, self.acc, amp, kmax, self.on, self.off, self.n_inputs)
            if over.any():
                self._warn_saturated(over)
            return counts
        k = np.empty_like(y)
        acc = self.acc
        for i, row in enumerate(y):  # the recurrence of host_kernels.encode_counts, operation for operation
            acc = acc + row
            k[i] = np.floor(acc / amp)
            acc = acc - k[i] * amp
        self.acc = acc
        over = np.abs(k) > kmax
        if over.any():
            self._warn_saturated(over.any(axis=0))
            np.clip(k, -kmax, kmax, out=k)
        counts = np.zeros((len(k), self.n_inputs), np.int64)
        counts[:, self.on] = np.maximum(k, 0)
        counts[:, self.off] = np.maximum(-k, 0)
        return counts

    def arrive(self, counts: np.ndarray) -> np.ndarray:
        """The counts the chip receives in the same steps as ``counts`` (host steps) were encoded.

        Host spikes take one step to arrive, as on the chip (nengo-loihi's emulator,
        ``emulator/interface.py``: "input spikes take one time-step to arrive"): chip
        step t receives the counts of host step t - 1; the last row waits in
        :attr:`pending` for the next call.
        """
        if not len(counts):
            return counts
        out = np.concatenate([self.pending[None], counts[:-1]])
        self.pending = np.array(counts[-1], copy=True)
        return out

    def _refuse_non_finite(self, y: np.ndarray) -> None:
        # a NaN has no spike count (numpy and the compiled loop would each invent one)
        step, row = (int(i[0]) for i in np.nonzero(~np.isfinite(y)))
        conn = self.mapped.inputs[int(self.owner[row])].conn
        raise DiscretizationError(
            f"{describe(conn)}: the host value sent to the chip is {y[step, row]} (step {step + 1} of this run "
            "chunk); the chip's spike encoder needs finite values. Check the Node's output for NaN or inf."
        )

    def _warn_saturated(self, over: np.ndarray) -> None:
        conn = self.mapped.inputs[int(self.owner[np.flatnonzero(over)[0]])].conn
        if conn not in self.saturated:
            self.saturated.add(conn)
            warnings.warn(
                f"{describe(conn)}: the host value exceeds the spike encoder's range "
                f"({self.input_range} x post radius per dimension); it is clipped. "
                "Raise input_range or input_pairs."
            )


class OutputDecoder:
    """Every ``ChipOutput`` is a slice of ``y_all = spikes @ D_all / dt``, then its synapse.

    The sources of one summed probe that share a synapse share one row block; equal
    synapses filter their rows in one call.

    Parameters
    ----------
    mapped
        The mapped model (its ``outputs`` and ``probe_plans``).
    emulator
        The emulator (the compartment slice of each block).
    dt
        Time step in seconds.
    """

    def __init__(self, mapped: MappedModel, emulator: Emulator, dt: float) -> None:
        self.dt = dt
        out_rows = []
        dec_rows = []
        entry_rows: dict = {}
        sum_probe = {p for p, plan in mapped.probe_plans.items() if plan[0] == "sum"}
        r = 0
        for o in mapped.outputs:
            sl = emulator.slice_of(o.block)
            d = o.decoders if o.decoders is not None else o.amplitude * np.eye(o.block.n)
            key = (id(o.key), synapse_key(o.synapse)) if o.key in sum_probe else (id(o),)
            if key in entry_rows:
                rows_ = entry_rows[key]
                dec_rows[rows_[0]][:, sl] += d
                out_rows.append(rows_[1])
                continue
            full = np.zeros((d.shape[0], emulator.n))
            full[:, sl] = d
            entry_rows[key] = (len(dec_rows), slice(r, r + d.shape[0]))
            dec_rows.append(full)
            out_rows.append(slice(r, r + d.shape[0]))
            r += d.shape[0]
        #: ChipOutput -> its rows of ``y_all``
        self.rows = dict(zip(mapped.outputs, out_rows))
        self.sum_rows = {
            p: list({(sl.start, sl.stop): sl for sl in (self.rows[o] for o in plan[1])}.values())
            for p, plan in mapped.probe_plans.items() if plan[0] == "sum"
        }
        dec_t = np.concatenate(dec_rows).T if dec_rows else np.zeros((emulator.n, 0))
        #: compartments any output reads, and their decoder rows
        self.cols = np.flatnonzero(np.any(dec_t != 0, axis=1))
        self.sub = np.ascontiguousarray(dec_t[self.cols])
        self.n_out = dec_t.shape[1]
        # filters grouped by synapse key so equal synapses filter in one call
        groups: dict = {}
        seen_rows: set = set()
        for o, rows_ in zip(mapped.outputs, out_rows):
            if (rows_.start, rows_.stop) in seen_rows:
                continue
            seen_rows.add((rows_.start, rows_.stop))
            groups.setdefault(synapse_key(o.synapse), (o.synapse, []))[1].append(np.arange(rows_.start, rows_.stop))
        self.groups = [(syn, np.concatenate(ix)) for syn, ix in groups.values()]
        # when every synapse is a Lowpass (or none: decay 0), stepwise runs filter all
        # outputs in one vector update with a decay per row
        self.lowpass_only = all(syn is None or type(syn) is nengo.Lowpass for syn, _ in self.groups)
        self.decays = np.zeros(self.n_out)
        #: rows with a synapse: nengo filters in "update" mode, so the host sees them a step late
        self.lagged = np.zeros(self.n_out, bool)
        for syn, ix in self.groups:
            self.decays[ix] = lowpass_decay(syn, dt) if type(syn) is nengo.Lowpass else 0.0
            self.lagged[ix] = syn is not None
        self.reset()

    def reset(self) -> None:
        """Zero filter states."""
        self.filters = [HostFilter(syn, len(ix), self.dt) for syn, ix in self.groups]
        self.bank = HostFilter.lowpass_bank(self.decays, self.dt)
        #: the filtered outputs of the last step decoded (the lagged rows' next host value)
        self.prev = np.zeros(self.n_out)

    def host_view(self, y: np.ndarray) -> np.ndarray:
        """What the host reads in each step (rows) of filtered outputs ``y`` (steps x rows).

        A nengo connection or probe filter runs in "update" mode: its value in step t is
        the filter's state after step t - 1.  Rows with a synapse therefore read the
        previous step's filtered value; rows without one read this step's decoded value.
        Every path (batched, stepwise, compiled loop) goes through this one rule.
        """
        out = np.array(y, dtype=np.float64, copy=True)
        if len(y) and self.lagged.any():
            lag = self.lagged
            out[1:, lag] = y[:-1, lag]
            out[0, lag] = self.prev[lag]
        if len(y):
            self.prev = np.array(y[-1], dtype=np.float64, copy=True)
        return out

    def filter(self, y: np.ndarray, t0: int) -> np.ndarray:
        """Filter decoded outputs (steps x rows) of steps ``t0 + 1 ...``, keeping state."""
        out = np.empty_like(y)
        ts = (t0 + 1 + np.arange(len(y))) * self.dt
        for f, (syn, ix) in zip(self.filters, self.groups):
            x = y[:, ix]
            if syn is None:
                out[:, ix] = x
            elif len(x) == 1:  # stepwise runs: a whole chunk call's overhead would dominate
                out[0, ix] = f(ts[0], x[0])
            else:
                out[:, ix] = f.run(ts, x)
        return out
