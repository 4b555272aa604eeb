"""The ``loihi-emu`` target: nengo networks on the integer chip emulator.

Build with nengo's own builder, map the built model onto chip objects
(:mod:`nhw.hw_emulator.mapping`), place them on cores (:mod:`nhw.hw_emulator.allocate`) and
run the integer emulator (:mod:`nhw.hw_emulator.emulator`).  Nodes run here, on the
host; their values enter the chip as spikes and chip outputs come back as spikes
decoded on the host.

>>> with Simulator(net, dt=0.001, decode="weights") as sim:   # doctest: +SKIP
...     sim.run(1.0)
...     print(sim.hardware_report().to_table())
"""

from __future__ import annotations

import warnings
from graphlib import CycleError, TopologicalSorter
from typing import Any

import numpy as np
import nengo
from nengo.builder import Model
from nengo.connection import LearningRule
from nengo.cache import get_default_decoder_cache
from nengo.exceptions import SimulationError
from nengo.node import Node
from nengo.processes import Process
from scipy import sparse
from scipy.signal import lfilter

from nhw.hw_emulator.allocate import allocate
from nhw.hw_emulator.chip import LOIHI_V1, BoardSpec, ChipSpec
from nhw.hw_emulator.emulator import Emulator
from nhw.hw_emulator.mapping import MapOptions, map_model
from nhw.hw_emulator.report import HardwareReport, build_report

from .base import SimulatorBase
from .loihi_emu_early import EarlyRun
from .loihi_emu_filters import HostFilter, lowpass_decay, synapse_key


def _describe(obj: Any) -> str:
    label = getattr(obj, "label", None)
    return f"{type(obj).__name__} {label!r}" if label else str(obj)


class Simulator(SimulatorBase):
    """nengo-compatible Simulator running on the Loihi-style chip emulator.

    Parameters
    ----------
    network
        The ``nengo.Network`` to run.
    dt
        Time step in seconds.
    seed
        Seed for host-side random processes (the chip itself has no noise).
    progress_bar
        Accepted for compatibility; no progress bar is shown.
    decode
        ``"weights"`` (neuron-to-neuron weights, default) or ``"neurons"`` (on-chip
        decode neurons) for decoded connections between on-chip ensembles.
    max_compartments_per_core
        Split and pack blocks with at most this many compartments per core.
    pack
        Pack several small blocks onto one core (``False``: one block per core).
    n_chips
        Chips on the board; ``None`` allows as many as needed.
    chip
        The chip spec (default: Loihi generation 1).
    model
        A ``nengo.builder.Model`` to build into (as ``nengo.Simulator`` accepts).
    **map_options
        Further :class:`nhw.hw_emulator.mapping.MapOptions` fields (``input_pairs``,
        ``decode_pairs``, ...).  ``decoder_rates="chip"`` (default) solves the
        decoders of chip ensembles on the chip's discretised rate curve, as
        nengo-loihi does; ``decoder_rates="nengo"`` keeps nengo's decoders, solved on
        its continuous rate curve.
    """

    def __init__(
        self,
        network: nengo.Network | None,
        dt: float = 0.001,
        seed: int | None = None,
        progress_bar: Any = True,
        *,
        decode: str = "weights",
        max_compartments_per_core: int | None = None,
        pack: bool = True,
        n_chips: int | None = 1,
        chip: ChipSpec = LOIHI_V1,
        model: Model | None = None,
        **map_options: Any,
    ) -> None:
        super().__init__(dt)
        self.closed = True  # until construction succeeds (no "deallocated while open" warning)
        if model is None:
            model = Model(dt=float(dt), label=f"{network}, dt={dt:f}", decoder_cache=get_default_decoder_cache())
        if network is not None:
            model.build(network)  # as nengo.Simulator: a given model is built into
        self.model = model
        known = set(MapOptions.__dataclass_fields__) - {"decode", "spec"}
        unknown = sorted(set(map_options) - known)
        if unknown:
            raise TypeError(
                f"loihi-emu Simulator: unknown option(s) {', '.join(map(repr, unknown))}; available: "
                + ", ".join(["decode", "max_compartments_per_core", "pack", "n_chips", "chip", "model", *sorted(known)])
            )
        self.options = MapOptions(decode=decode, spec=chip, **map_options)
        self.mapped = map_model(model, self.options)
        self.placement = allocate(
            self.mapped.chip, BoardSpec(chip, n_chips),
            max_compartments_per_core=max_compartments_per_core, pack=pack,
        )
        if seed is None:
            # like nengo: a seeded network seeds the simulator too
            seed = network.seed + 1 if network is not None and network.seed is not None else None
        self._seed = np.random.randint(np.iinfo(np.int32).max) if seed is None else int(seed)
        self.emulator = Emulator(self.mapped.chip, seed=self._seed)
        self._setup_host()
        self._probe_data = {p: [] for p in self.model.probes}
        self._reset(self._seed)
        self.closed = False

    @property
    def seed(self) -> int:
        """Seed of the host-side random processes."""
        return self._seed

    def __del__(self) -> None:
        if not getattr(self, "closed", True) and warnings is not None and warnings.warn is not None:
            warnings.warn(
                f"{type(self).__name__} deallocated while open; use it as a context manager or call close()",
                ResourceWarning,
            )

    # ------------------------------------------------------------------ host
    def _setup_host(self) -> None:
        """Precompute the vectorised host work: one encoder and one decoder for all taps."""
        self._setup_node_order()
        self._setup_encoder()
        self._setup_decoder()
        self._setup_output_filters()
        self._setup_sinks()

    def _setup_node_order(self) -> None:
        """Order host Nodes so that values passed without a synapse are computed first."""
        m = self.mapped
        nodes = m.nodes
        deps = {n: set() for n in nodes}
        for c in m.host_connections:
            if c.synapse is None and c.post_obj in deps:  # (a learning rule reads its input later)
                deps[c.post_obj].add(c.pre_obj)
        try:
            self._node_order = list(TopologicalSorter(deps).static_order())
        except CycleError as e:
            raise SimulationError(
                f"Nodes form an algebraic loop (connections without synapse): {e.args[1]}"
            ) from None

    def _setup_encoder(self) -> None:
        """Every ChipInput's value is ``T_all @ (concatenated host signals)``."""
        m, em = self.mapped, self.emulator
        self._signals = []  # unique first connections whose f(x[pre_slice]) is needed
        col = {}
        for inp in m.inputs:
            if inp.conn not in col:
                col[inp.conn] = sum(c.size_mid for c in self._signals)
                self._signals.append(inp.conn)
        n_sig = sum(c.size_mid for c in self._signals)
        # nengo parameter access is slow; read each connection's fields once
        self._sig_specs = [(c.pre_obj, c.pre_slice, c.function, c.size_mid) for c in self._signals]
        rows = sum(inp.transform.shape[0] for inp in m.inputs)
        self._enc_t = np.zeros((rows, n_sig))
        self._enc_amp = np.ones(rows)
        self._enc_k = np.ones(rows)
        on, off = [], []
        r = 0
        for inp in m.inputs:
            d = inp.transform.shape[0]
            c0 = col[inp.conn]
            self._enc_t[r:r + d, c0:c0 + inp.conn.size_mid] = inp.transform
            self._enc_amp[r:r + d] = inp.amplitude
            self._enc_k[r:r + d] = inp.pairs
            sl = em.input_slice(inp.axons)
            on.append(np.arange(sl.start, sl.start + d))
            off.append(np.arange(sl.start + d, sl.stop))
            r += d
        self._enc_on = np.concatenate(on) if on else np.zeros(0, np.intp)
        self._enc_off = np.concatenate(off) if off else np.zeros(0, np.intp)
        self._enc_owner = np.concatenate([[i] * inp.transform.shape[0] for i, inp in enumerate(m.inputs)]) \
            if m.inputs else np.zeros(0, int)

    def _setup_decoder(self) -> None:
        """Every ChipOutput is a slice of ``y_all = spikes @ D_all / dt``.

        The sources of one summed probe that share a synapse share one row block.
        """
        m, em = self.mapped, self.emulator
        self._out_rows = []
        dec_rows = []
        entry_rows: dict = {}
        sum_probe = {p for p, plan in m.probe_plans.items() if plan[0] == "sum"}
        r = 0
        for o in m.outputs:
            sl = em.slice_of(o.block)
            d = o.decoders if o.decoders is not None else o.amplitude * np.eye(o.block.n)
            key = (id(o.key), synapse_key(o.synapse)) if o.key in sum_probe else (id(o),)
            if key in entry_rows:
                rows_ = entry_rows[key]
                dec_rows[rows_[0]][:, sl] += d
                self._out_rows.append(rows_[1])
                continue
            full = np.zeros((d.shape[0], em.n))
            full[:, sl] = d
            entry_rows[key] = (len(dec_rows), slice(r, r + d.shape[0]))
            dec_rows.append(full)
            self._out_rows.append(slice(r, r + d.shape[0]))
            r += d.shape[0]
        self._sum_rows = {
            p: list({(sl.start, sl.stop): sl for sl in
                     (self._out_rows[m.outputs.index(o)] for o in plan[1])}.values())
            for p, plan in m.probe_plans.items() if plan[0] == "sum"
        }
        dec_t = np.concatenate(dec_rows).T if dec_rows else np.zeros((em.n, 0))
        self._dec_cols = np.flatnonzero(np.any(dec_t != 0, axis=1))
        self._dec_sub = np.ascontiguousarray(dec_t[self._dec_cols])
        self._n_out = dec_t.shape[1]

    def _setup_output_filters(self) -> None:
        """Find chip -> host -> chip loops and group the output synapses."""
        m, em = self.mapped, self.emulator
        # without chip -> host -> chip loops the host work can be batched over steps
        # (a learning rule's error is host -> chip too)
        upstream = {inp.conn.pre_obj for inp in m.inputs} | {tap.rule for tap in m.learning}
        stack = list(upstream)
        while stack:
            nd = stack.pop()
            for c in m.host_connections:
                if c.post_obj is nd and c.pre_obj not in upstream:
                    upstream.add(c.pre_obj)
                    stack.append(c.pre_obj)
        fed = {getattr(o.key, "post_obj", None) for o in m.outputs}
        # the error is sent every step, so learning runs step by step
        self._closed_loop = bool(fed & upstream) or bool(m.learning)
        self._out_index = {o: j for j, o in enumerate(m.outputs)}
        self._volt_sl = {v: em.slice_of(v.block) for v in m.voltages}
        self._state_scale = {v: v.block.voltage_scale if v.attr == "voltage" else v.block.current_scale
                             for v in m.voltages}
        # filters grouped by (type, tau) so equal synapses filter in one call
        groups: dict = {}
        seen_rows: set = set()
        for o, rows_ in zip(m.outputs, self._out_rows):
            if (rows_.start, rows_.stop) in seen_rows:
                continue
            seen_rows.add((rows_.start, rows_.stop))
            groups.setdefault(synapse_key(o.synapse), (o.synapse, []))[1].append(np.arange(rows_.start, rows_.stop))
        self._out_groups = [(syn, np.concatenate(ix)) for syn, ix in groups.values()]
        self._lp_decay = [lowpass_decay(syn, self.dt) if type(syn) is nengo.Lowpass else None
                          for syn, _ in self._out_groups]
        # stepwise runs filter all outputs in one vector update when every synapse is
        # a Lowpass (or none: decay 0)
        self._lp_only = all(syn is None or type(syn) is nengo.Lowpass for syn, _ in self._out_groups)
        self._lp_e = np.zeros(self._n_out)
        for (syn, ix), e in zip(self._out_groups, self._lp_decay):
            self._lp_e[ix] = 0.0 if e is None else e

    def _setup_sinks(self) -> None:
        """Who reads what on the host, and which Nodes run before or after the chip."""
        m = self.mapped
        nodes = m.nodes
        # host sinks: nodes, and learning rules keyed by their tap (a LearningRule
        # hashes all its parameters, far too slow for a per-step lookup)
        sink = {n: n for n in nodes}
        sink.update({tap.rule: tap for tap in m.learning})
        self._node_in = {k: [] for k in sink.values()}
        for c in m.host_connections:
            self._node_in[sink[c.post_obj]].append(("node", c))
        for o in m.outputs:
            post = getattr(o.key, "post_obj", None)
            if isinstance(post, (Node, LearningRule)) and post in sink:
                self._node_in[sink[post]].append(("chip", o))
        # host nodes reading chip outputs are evaluated after the chip in batch mode
        self._late_nodes = {nd for nd in nodes if self._depends_on_chip(nd)}
        self._post_idx = {c: np.arange(c.post_obj.size_in)[c.post_slice] for c in m.host_connections}
        self._post_idx.update({o: np.arange(o.key.post_obj.size_in)[o.key.post_slice] for o in m.outputs
                               if isinstance(getattr(o.key, "post_obj", None), (Node, LearningRule))})
        self._filtered_conns = [c for c in m.host_connections if c.synapse is not None]
        # early nodes (not reading the chip) run ahead of it, a chunk of steps at a time
        self._early_nodes = [nd for nd in self._node_order if nd not in self._late_nodes]
        self._early_conns = [c for c in self._filtered_conns if c.pre_obj not in self._late_nodes]
        # those read only by late nodes or learning rules are computed a chunk at a time
        early_set = set(self._early_nodes)
        self._bulk_conns = [c for c in self._early_conns if c.post_obj not in early_set]
        self._pass = {
            "early": (self._early_nodes, [c for c in self._early_conns if c.post_obj in early_set]),
            "late": ([nd for nd in self._node_order if nd in self._late_nodes],
                     [c for c in self._filtered_conns if c.pre_obj in self._late_nodes]),
        }
        self._signal_early = all(nd not in self._late_nodes for nd, *_ in self._sig_specs)
        # nengo parameter reads cost microseconds each; the per-step host code reads copies
        self._nspec = {n: (n.size_in, n.size_out, isinstance(n.output, Process), n.output is None) for n in nodes}
        self._nspec.update({tap: (tap.rule.size_in, 0, False, True) for tap in m.learning})
        self._cspec = {c: (c.pre_obj, c.pre_slice, c.function, c.synapse is not None) for c in m.host_connections}
        self._pspec = {
            p: (p.synapse is not None, 1 if p.sample_every is None else p.sample_every / self.dt, self._ps(p),
                self._probe_slice(p))
            for p in self.model.probes
        }
        self._conn_w = {}
        for c in m.host_connections:
            sig = self.model.sig[c].get("weights")
            self._conn_w[c] = 1.0 if sig is None else sig.initial_value  # None: NoTransform
        self._conn_w_2d = {c: np.ndim(w) == 2 for c, w in self._conn_w.items()}
        self._saturated: set = set()
        self._overflow_warned = False
        self._q_overflow_warned = False

    def _depends_on_chip(self, node: Node, seen: frozenset = frozenset()) -> bool:
        if node in seen:
            return False
        for kind, item in self._node_in.get(node, ()):
            if kind == "chip" or self._depends_on_chip(item.pre_obj, seen | {node}):
                return True
        return False

    def _make_node_fn(self, node: Node, rng: np.random.RandomState):
        out = node.output
        if out is None:
            return lambda t, x: x
        if isinstance(out, Process):
            shape_in, shape_out = (node.size_in,), (node.size_out,)
            state = out.make_state(shape_in, shape_out, self.dt)
            # a seeded process ignores the simulator's seed, as in nengo
            step = out.make_step(shape_in, shape_out, self.dt, out.get_rng(rng), state)
            return (lambda t, x: step(t)) if node.size_in == 0 else step
        if callable(out):
            return (lambda t, x: out(t)) if node.size_in == 0 else out
        value = np.asarray(out, dtype=np.float64)
        return lambda t, x: value

    def _reset(self, seed: int | None) -> None:
        if seed is not None:
            self._seed = int(seed)
        rng = np.random.RandomState(self._seed)
        m = self.mapped
        self.emulator.reset()
        # processes draw their seeds from the simulator's rng in turn, as in nengo
        self._node_fn = {n: self._make_node_fn(n, rng) for n in m.nodes}
        self._node_val = {n: np.zeros(n.size_out) for n in m.nodes}
        self._conn_filters = {c: HostFilter(c.synapse, c.size_out, self.dt) for c in m.host_connections}
        self._conn_next = {c: np.zeros(c.size_out) for c in self._filtered_conns}
        self._out_filters = [HostFilter(syn, len(ix), self.dt) for syn, ix in self._out_groups]
        self._y_all = np.zeros(self._n_out)
        self._lp_state = [np.zeros(len(ix)) for _, ix in self._out_groups]
        self._lp_z = np.zeros(self._n_out)
        self._acc = np.zeros(len(self._enc_amp))
        self._probe_last: dict = {}
        self._probe_filters = {
            p: HostFilter(p.synapse, self._plan_size(p), self.dt)
            for p, plan in m.probe_plans.items() if plan[0] in ("node", "voltage", "sum")
        }

    def _plan_size(self, probe) -> int:
        kind, what = self.mapped.probe_plans[probe]
        if kind == "sum":
            full = what[0].decoders.shape[0]
        else:
            full = what.size_out if kind == "node" else what.block.n
        return len(np.arange(full)[self._probe_slice(probe)])

    def _probe_slice(self, probe) -> Any:
        """``probe.slice`` for signal probes (decoded probes slice through their connection)."""
        kind, what = self.mapped.probe_plans[probe]
        if kind == "output" and what.decoders is not None:
            return slice(None)
        return self._ps(probe)

    @staticmethod
    def _ps(probe) -> Any:
        return slice(None) if probe.slice is None else probe.slice

    def _out_value(self, o) -> np.ndarray:
        return self._y_all[self._out_rows[self._out_index[o]]]

    def _node_input(self, node: Node, t: float) -> np.ndarray:
        x = np.zeros(self._nspec[node][0])
        for kind, item in self._node_in[node]:
            if kind == "node":
                y = self._conn_next[item] if self._cspec[item][3] else self._conn_value(item, t)
            else:
                y = self._out_value(item)
            x[self._post_idx[item]] += y
        return x

    def _conn_value(self, c, t: float) -> np.ndarray:
        pre, pre_slice, function, _ = self._cspec[c]
        x = self._node_val[pre][pre_slice]
        if function is not None:
            x = np.atleast_1d(np.asarray(function(x), dtype=np.float64))
        w = self._conn_w[c]
        y = w @ x if self._conn_w_2d[c] else w * x
        return self._conn_filters[c](t, np.atleast_1d(y))

    # ------------------------------------------------------------------- run
    def _run_steps(self, steps: int) -> None:
        if self._closed_loop:
            self._run_stepwise(steps)
        else:
            done = 0
            while done < steps:
                chunk = min(steps - done, self.batch_steps)
                self._run_batch(chunk, offset=done)
                done += chunk
        if self.emulator.q_overflows and not self._q_overflow_warned:
            self._q_overflow_warned = True
            warnings.warn(
                f"the synaptic input q overflowed 22 bits and wrapped {self.emulator.q_overflows} "
                "time(s), as the chip would; decoded values are wrong there. Reduce the weights."
            )
        over = self.emulator.u_overflows
        if not self._overflow_warned and over.any():
            self._overflow_warned = True
            i = int(np.flatnonzero(over)[0])
            block = next(b for b in self.mapped.chip.blocks if self.emulator.slice_of(b).start <= i < self.emulator.slice_of(b).stop)
            warnings.warn(
                f"Block {block.label!r}: the current u of {int(np.count_nonzero(over))} compartment(s) "
                f"overflowed 24 bits and wrapped ({int(over.sum())} times), as the chip would; "
                "decoded values are wrong there. Reduce the connection weights into it."
            )

    def _eval_nodes(self, t: float, which: str) -> None:
        """Evaluate the ``"early"`` (not reading the chip) or ``"late"`` host nodes at time ``t``."""
        nodes, conns = self._pass[which]
        for node in nodes:
            size_in, size_out, is_process, passthrough = self._nspec[node]
            x = self._node_input(node, t) if size_in else None
            if passthrough:  # its input is a sum of already checked values
                self._node_val[node] = x
                continue
            y = self._node_fn[node](t, x)
            if size_out:
                if is_process:
                    # nengo does not validate process outputs (None becomes NaN)
                    y = np.asarray(np.nan if y is None else y, dtype=np.float64)
                    self._node_val[node] = np.broadcast_to(y, (size_out,)).copy()
                else:
                    self._node_val[node] = self._check_output(node, y, size_out)
        for c in conns:
            # filtered host connections deliver next step, as nengo's do
            self._conn_next[c] = self._conn_value(c, t)

    def _check_output(self, node: Node, y: Any, size_out: int) -> np.ndarray:
        """Node output as a float vector; ``None``, non-numeric or non-finite values are errors."""
        if y is None:
            raise SimulationError(f"{_describe(node)}: output function returned None; expected {size_out} values")
        try:
            y = np.asarray(y, dtype=np.float64).reshape(size_out)
        except (TypeError, ValueError) as e:
            raise SimulationError(f"{_describe(node)}: output {y!r} is not {size_out} numbers ({e})") from None
        if not np.all(np.isfinite(y)):
            raise SimulationError(f"{_describe(node)}: output contains NaN or Inf: {y}")
        return y

    def _signal(self) -> np.ndarray:
        sig = []
        vals = self._node_val
        for node, sl, fn, size in self._sig_specs:
            x = vals[node][sl]
            if fn is not None:
                x = np.asarray(fn(x), dtype=np.float64).reshape(size)
            sig.append(x)
        return np.concatenate(sig) if len(sig) > 1 else sig[0]

    def _encode(self, y: np.ndarray) -> np.ndarray:
        """Sigma-delta encode host values ``y`` (steps x rows) into spike counts per step.

        The count of step t is ``floor(A_t/amp) - floor(A_{t-1}/amp)`` for the running
        sum ``A`` of the values, so the emitted total never lags the input by more
        than one spike's worth; the residual carries over to the next call.
        """
        amp, kmax = self._enc_amp, self._enc_k
        if len(y) == 1:  # stepwise runs: the residual is in [0, amp), so k = floor(A/amp)
            acc = self._acc + y[0]
            k = np.floor(acc / amp)
            self._acc = acc - k * amp
            k = k[None]
        else:
            acc = self._acc + np.cumsum(y, axis=0)
            f = np.floor(acc / amp)
            k = np.diff(f, axis=0, prepend=np.zeros((1, f.shape[1])))
            self._acc = acc[-1] - f[-1] * amp
        over = np.abs(k) > kmax
        if over.any():
            self._warn_saturated(over.any(axis=0))
            np.clip(k, -kmax, kmax, out=k)
        counts = np.zeros((len(k), self.emulator.n_inputs), np.int64)
        counts[:, self._enc_on] = np.maximum(k, 0)
        counts[:, self._enc_off] = np.maximum(-k, 0)
        return counts

    def _filter_outputs(self, y: np.ndarray, t0: int) -> np.ndarray:
        """Filter decoded outputs (steps x M) with each group's synapse, keeping state."""
        out = np.empty_like(y)
        for gi, (syn, ix) in enumerate(self._out_groups):
            x = y[:, ix]
            if syn is None:
                out[:, ix] = x
            elif type(syn) is nengo.Lowpass:
                # nengo's Lowpass: y[t] = e * y[t-1] + (1 - e) * x[t]
                e = self._lp_decay[gi]
                if len(x) == 1:  # stepwise runs: lfilter's call overhead would dominate
                    yf = e * self._lp_state[gi] + (1 - e) * x[0]
                    self._lp_state[gi] = yf
                    out[0, ix] = yf
                    continue
                yf, zf = lfilter([1 - e], [1, -e], x, axis=0, zi=(e * self._lp_state[gi])[None, :])
                self._lp_state[gi] = yf[-1]
                out[:, ix] = yf
            else:
                f = self._out_filters[gi]
                for i in range(len(x)):
                    out[i, ix] = f((t0 + i + 1) * self.dt, x[i])
        return out

    def _run_batch(self, steps: int, offset: int = 0) -> None:
        """Open-loop chunk: host inputs for all steps, then the chip, then decoding.

        ``offset``: steps of the same ``run_steps`` call already run (``n_steps``
        only advances when the whole call returns).
        """
        em, dt, n0 = self.emulator, self.dt, self.n_steps + offset
        probed_nodes = {w for k, w in self.mapped.probe_plans.values() if k == "node"}
        early = EarlyRun(self, n0, steps, signal=True)
        node_rec = {nd: early.values[nd] if nd in early.values else np.zeros((steps, nd.size_out))
                    for nd in probed_nodes}
        sig = early.signal
        counts = self._encode(sig @ self._enc_t.T) if sig is not None else None
        cols = self._dec_cols
        raster, vrec = em.run(steps, counts, cols, [(v.attr, self._volt_sl[v]) for v in self.mapped.voltages])
        volts = dict(zip(self.mapped.voltages, vrec))
        y = None
        if len(cols):
            y = np.asarray(sparse.csr_matrix(raster, dtype=np.float64) @ self._dec_sub) / dt
            y = self._filter_outputs(y, n0)
            self._y_all = y[-1].copy()
        if self._late_nodes:
            for i in range(steps):
                if y is not None:
                    self._y_all = y[i]
                early.restore(i)
                self._eval_nodes((n0 + i + 1) * dt, "late")
                for nd, rec in node_rec.items():
                    if nd in self._late_nodes:
                        rec[i] = self._node_val[nd]
            if y is not None:
                self._y_all = y[-1].copy()
            early.finish()
        for p in self._probe_data:
            kind, what = self.mapped.probe_plans[p]
            if kind == "output":
                vals = y[:, self._out_rows[self._out_index[what]]]
            elif kind == "sum":
                vals = self._filter_rows(p, sum(y[:, sl] for sl in self._sum_rows[p])[:, self._ps(p)], n0)
            elif kind == "node":
                vals = self._filter_rows(p, node_rec[what][:, self._ps(p)], n0)
            else:
                vals = self._filter_rows(p, (volts[what] / self._state_scale[what])[:, self._ps(p)], n0)
            if kind == "output" and what.decoders is None:
                vals = vals[:, self._ps(p)]
            vals = self._delay(p, vals)
            period = 1 if p.sample_every is None else p.sample_every / dt
            steps_idx = np.arange(n0 + 1, n0 + steps + 1)
            self._probe_data[p].extend(np.array(vals[steps_idx % period < 1]))

    def _filter_rows(self, p, x: np.ndarray, t0: int) -> np.ndarray:
        f = self._probe_filters[p]
        if f.synapse is None:
            return x
        return np.array([f((t0 + i + 1) * self.dt, row) for i, row in enumerate(x)])

    def _run_stepwise(self, steps: int) -> None:
        """Closed loop (chip outputs feed host nodes): host and chip alternate every step."""
        em, dt = self.emulator, self.dt
        probes = [(p, self._probe_data[p].append, self._pspec[p][1]) for p in self._probe_data]
        has_inputs = em.n_inputs > 0
        # (tap, learned state, 1/error scale): the error goes straight to the learned state
        taps = [(tap, em.learned[tap.rule_regs][1], 1.0 / tap.rule_regs.error_scale) for tap in self.mapped.learning]
        e_max = float(em.spec.error_max)
        dec_cols, lp_only, lp_e = self._dec_cols, self._lp_only, self._lp_e
        if len(dec_cols) and dec_cols[-1] - dec_cols[0] + 1 == len(dec_cols):
            dec_cols = slice(int(dec_cols[0]), int(dec_cols[-1]) + 1)  # a view, not a gather
        dec_sub = self._dec_sub / dt
        n0 = self.n_steps
        counts, early = None, None
        for i in range(steps):
            n = n0 + i + 1
            t = n * dt
            k = i % self.early_chunk
            if k == 0:
                # early nodes (and the chip input when only they feed it) a chunk ahead
                if early is not None:
                    early.finish()
                early = EarlyRun(self, n - 1, min(self.early_chunk, steps - i), signal=self._signal_early)
                if has_inputs and early.signal is not None:
                    counts = self._encode(early.signal @ self._enc_t.T)
            early.restore(k)
            self._eval_nodes(t, "late")
            if has_inputs:
                c_in = counts[k] if early.signal is not None else self._encode(self._signal()[None, :] @ self._enc_t.T)[0]
            else:
                c_in = None
            for tap, lw, inv_scale in taps:
                # the host sends this step's error (the rule's filtered input) to the chip,
                # rounded and clipped to the error format (see quantize_error)
                e = np.rint(self._node_input(tap, t) * inv_scale)
                np.minimum(e, e_max, out=e)  # (np.clip costs twice as much here)
                np.maximum(e, -e_max, out=e)
                lw.error = e.astype(np.int64)
            spikes = em.step(c_in)
            if dec_sub.size:
                y = dec_sub[spikes[dec_cols].nonzero()[0]].sum(axis=0)
                if lp_only:
                    self._lp_z = lp_e * self._lp_z + (1 - lp_e) * y
                    self._y_all = self._lp_z
                else:
                    self._y_all = self._filter_outputs(y[None], n - 1)[0]
            for p, append, period in probes:
                value = self._probe_value(p, t)
                if n % period < 1:
                    append(value)
        if early is not None:
            early.finish()

    def _delay(self, p, vals: np.ndarray) -> np.ndarray:
        """nengo filters probes in "update" mode: a filtered probe lags its input one step."""
        if not self._pspec[p][0]:
            return vals
        last = self._probe_last.get(p)
        self._probe_last[p] = np.array(vals[-1], copy=True)
        if last is None:
            last = np.zeros(vals.shape[1:])
        return np.concatenate([last[None], vals[:-1]], axis=0)

    def _probe_value(self, p, t: float) -> np.ndarray:
        return self._delay(p, self._probe_value_now(p, t)[None])[0]

    def _probe_value_now(self, p, t: float) -> np.ndarray:
        kind, what = self.mapped.probe_plans[p]
        ps, probe_sl = self._pspec[p][2:]
        if kind == "output":
            return self._out_value(what)[probe_sl].copy()
        if kind == "node":
            return self._probe_filters[p](t, self._node_val[what][ps].copy())
        if kind == "sum":
            return self._probe_filters[p](t, sum(self._y_all[sl] for sl in self._sum_rows[p])[ps])
        v = self.emulator.state(what.attr, self._volt_sl[what]) / self._state_scale[what]
        return self._probe_filters[p](t, v[ps])

    #: Steps per batch when the host work is batched (open-loop networks).
    batch_steps = 1000
    #: Steps the early host nodes run ahead of the chip in closed-loop runs.
    early_chunk = 100

    def _warn_saturated(self, over: np.ndarray) -> None:
        conn = self.mapped.inputs[int(self._enc_owner[np.flatnonzero(over)[0]])].conn
        if conn not in self._saturated:
            self._saturated.add(conn)
            warnings.warn(
                f"{_describe(conn)}: the host value exceeds the spike encoder's range "
                f"({self.options.input_range} x post radius per dimension); it is clipped. "
                "Raise input_range or input_pairs."
            )

    # ---------------------------------------------------------------- report
    def hardware_report(self) -> HardwareReport:
        """Chip resources, activity and an energy/time *estimate* of the run so far."""
        return build_report(self.placement, self.emulator, self.mapped.quantization, self.dt)
