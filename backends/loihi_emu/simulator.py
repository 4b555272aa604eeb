"""The ``loihi-emu`` Simulator: nengo networks on the integer chip emulator.

Build with nengo's own builder, map the built model onto chip objects
(:mod:`.mapping`), place them on cores (:mod:`nhw.hw_emulator.allocate`) and run the
integer emulator (:mod:`nhw.hw_emulator.emulator`).  Nodes run here, on the host
(:mod:`.host`); their values enter the chip as spikes and chip outputs come back as
spikes decoded on the host (:mod:`.codec`).

>>> with Simulator(net, dt=0.001, decode="auto", n_chips=None) as sim:   # doctest: +SKIP
...     sim.run(1.0)
...     print(sim.hardware_report().to_table())
"""

from __future__ import annotations

import warnings
from typing import Any

import nengo
import numpy as np
from nengo.builder import Model
from nengo.cache import get_default_decoder_cache
from nhw.hw_emulator.allocate import allocate
from nhw.hw_emulator.chip import LOIHI_V1, BoardSpec, ChipSpec
from nhw.hw_emulator.emulator import Emulator
from nhw.hw_emulator.learning import quantize_error
from nhw.hw_emulator.report import HardwareReport, build_report
from nhw.hw_emulator.report_layout import ReportLayout, report_layout
from scipy import sparse

from ..base import SimulatorBase
from . import host_kernels
from .chip_learning import warn_learning_clipping
from .closed_loop import LoopPlan
from .codec import OutputDecoder, SpikeEncoder
from .early import EarlyRun
from .host import Host
from .mapping import MapOptions, map_model
from .probes import Probes


class Simulator(SimulatorBase):
    """nengo-compatible Simulator running on the Loihi-style chip emulator.

    Every keyword option below can be set from a YAML config under
    ``deploy.options.loihi-emu`` (e.g. ``{decode: neurons, n_chips: 2}``).

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
        How decoded connections between on-chip ensembles are mapped:
        ``"auto"`` (default) chooses per target ensemble: neuron-to-neuron weights
        while its incoming synapses fit the synapse memory and input axons of the
        cores its neurons need anyway, else on-chip decode neurons for its largest
        decoded connections (as nengo-loihi maps decoded connections) until they fit.
        ``"weights"`` or ``"neurons"`` force one mapping for all of them.  What was
        chosen is in ``sim.mapped.decode_choices``.
    max_compartments_per_core
        Split and pack blocks with at most this many compartments per core.
    pack
        Pack several small blocks onto one core (``False``: one block per core).
    n_chips
        Chips on the board.  ``None`` (default) sizes the board to the network (as
        many chips as its cores fill); a number fixes the board, and a network
        needing more cores than it has raises
        :class:`~nhw.errors.ResourceError` with cores needed vs available.  The
        cores and chips used are in :meth:`hardware_report`.
    chip
        The chip spec (default: Loihi generation 1).
    model
        A ``nengo.builder.Model`` to build into (as ``nengo.Simulator`` accepts).
    kernel
        The emulator's step implementation: ``"auto"`` (default; the compiled one when
        numba is installed), ``"numba"`` or ``"numpy"``.  Results are identical; see
        :class:`~nhw.hw_emulator.emulator.Emulator`.
    **map_options
        Further :class:`~nhw.backends.loihi_emu.mapping.MapOptions` fields (``input_pairs``,
        ``decode_pairs``, ``decode_synapse``, ...).  ``decoder_rates="chip"`` (default) solves the
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
        decode: str = "auto",
        max_compartments_per_core: int | None = None,
        pack: bool = True,
        n_chips: int | None = None,
        chip: ChipSpec = LOIHI_V1,
        model: Model | None = None,
        kernel: str = "auto",
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
                + ", ".join(["decode", "max_compartments_per_core", "pack", "n_chips", "chip", "model", "kernel",
                             *sorted(known)])
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
        self.emulator = Emulator(self.mapped.chip, seed=self._seed, kernel=kernel)
        self._report_layout: ReportLayout | None = None
        self._setup_host()
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
        """The vectorised host work: one encoder and one decoder for all taps, the nodes, the probes."""
        m, em = self.mapped, self.emulator
        self.encoder = SpikeEncoder(m, em, self.options.input_range)
        self.decoder = OutputDecoder(m, em, self.dt)
        self.host = Host(m, self.model, self.dt, self.decoder.rows, self.encoder.sig_specs)
        self.probes = Probes(m, list(self.model.probes), self.host, self.decoder, em, self.dt)
        self._probe_data = self.probes.data
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
        # a closed loop whose host side is arithmetic only runs a chunk per compiled call
        self._loop_plan = LoopPlan.make(self) if self._closed_loop else None
        self._overflow_warned = False
        self._q_overflow_warned = False

    def _reset(self, seed: int | None) -> None:
        if seed is not None:
            self._seed = int(seed)
        self.emulator.reset()
        self.host.reset(np.random.RandomState(self._seed), self.decoder.n_out)
        self.encoder.reset()
        self.decoder.reset()
        self.probes.reset()

    # ------------------------------------------------------------------- run
    def _run_steps(self, steps: int) -> None:
        if self._loop_plan is not None and self.fast_host:
            self._loop_plan.run(steps)
        elif self._closed_loop:
            self._run_stepwise(steps)
        else:
            done = 0
            while done < steps:
                chunk = min(steps - done, self.batch_steps)
                self._run_batch(chunk, offset=done)
                done += chunk
        # at most one warning per learned connection per run (a second call is silent)
        warn_learning_clipping(self.mapped.learning, self.emulator, self.dt)
        if self.emulator.q_overflows and not self._q_overflow_warned:
            self._q_overflow_warned = True
            warnings.warn(
                f"the synaptic input q overflowed {self.emulator.spec.q_bits} bits and wrapped {self.emulator.q_overflows} "
                "time(s), as the chip would; decoded values are wrong there. Reduce the weights."
            )
        over = self.emulator.u_overflows
        if not self._overflow_warned and over.any():
            self._overflow_warned = True
            i = int(np.flatnonzero(over)[0])
            em = self.emulator
            block = next(b for b in self.mapped.chip.blocks if em.slice_of(b).start <= i < em.slice_of(b).stop)
            warnings.warn(
                f"Block {block.label!r}: the current u of {int(np.count_nonzero(over))} compartment(s) "
                f"overflowed {em.spec.u_bits} bits and wrapped ({int(over.sum())} times), as the chip would; "
                "decoded values are wrong there. Reduce the connection weights into it."
            )

    def _early(self, n0: int, steps: int, signal: bool) -> EarlyRun:
        return EarlyRun(self.host, n0, steps, signal=signal and self.encoder.transform.size > 0,
                        tables=self.fast_host)

    def _run_batch(self, steps: int, offset: int = 0) -> None:
        """Open-loop chunk: host inputs for all steps, then the chip, then decoding.

        ``offset``: steps of the same ``run_steps`` call already run (``n_steps``
        only advances when the whole call returns).
        """
        em, dt, n0, host, dec = self.emulator, self.dt, self.n_steps + offset, self.host, self.decoder
        probed_nodes = {w for k, w in self.mapped.probe_plans.values() if k == "node"}
        early = self._early(n0, steps, signal=True)
        node_rec = {nd: early.values[nd] if nd in early.values else np.zeros((steps, nd.size_out))
                    for nd in probed_nodes}
        # host spikes take one step to arrive: chip step n gets host step n - 1's counts
        counts = self.encoder.arrive(self.encoder.encode(early.signal)) if early.signal is not None else None
        y, volts = None, {}
        if self.fast_host and em.can_run_decoded and not self.mapped.voltages:
            # the compiled loop decodes as it goes (no spike raster); equal to the product below
            y = em.run_decoded(steps, counts, dec.cols, dec.sub)
        else:
            raster, vrec = em.run(steps, counts, dec.cols,
                                  [(v.attr, self.probes.volt_sl[v]) for v in self.mapped.voltages])
            volts = dict(zip(self.mapped.voltages, vrec))
            if len(dec.cols):
                y = np.asarray(sparse.csr_matrix(raster, dtype=np.float64) @ dec.sub)
        if len(dec.cols):
            # what the host reads in each step (filtered outputs a step late, as nengo's)
            y = dec.host_view(dec.filter(y / dt, n0))
            host.y_all = y[-1].copy()
        if host.late_nodes:
            for i in range(steps):
                if y is not None:
                    host.y_all = y[i]
                early.restore(i)
                host.eval_nodes((n0 + i + 1) * dt, "late")
                for nd, rec in node_rec.items():
                    if nd in host.late_nodes:
                        rec[i] = host.node_val[nd]
            if y is not None:
                host.y_all = y[-1].copy()
            early.finish()
        self.probes.record_chunk(y, node_rec, volts, n0, steps)

    def _run_stepwise(self, steps: int) -> None:
        """Closed loop (chip outputs feed host nodes): chip and host alternate every step.

        Step n, in the order the open-loop batch (:meth:`_run_batch`) and the compiled
        loop (:mod:`.loop_kernel`) follow too: the host sends the learning error of its
        current state; the chip runs step n on the host spikes of step n - 1 (they take
        one step to arrive); its outputs are decoded and filtered (the host reads filtered
        ones a step late, :meth:`.codec.OutputDecoder.host_view`); the late host nodes of
        step n run; their chip input is encoded for step n + 1; the probes record step n.
        """
        em, dt, host, dec = self.emulator, self.dt, self.host, self.decoder
        probes, probe_value = self.probes.recorders(), self.probes.value
        has_inputs = em.n_inputs > 0
        # (tap, rule registers, learned state): the error goes straight to the learned state
        taps = [(tap, tap.rule_regs, em.learned[tap.rule_regs][1]) for tap in self.mapped.learning]
        spec = em.spec
        dec_cols, lowpass_only, bank = dec.cols, dec.lowpass_only, dec.bank
        if len(dec_cols) and dec_cols[-1] - dec_cols[0] + 1 == len(dec_cols):
            dec_cols = slice(int(dec_cols[0]), int(dec_cols[-1]) + 1)  # a view, not a gather
        dec_sub = dec.sub / dt
        # compiled host steps (the same IEEE operations): the error quantisation, and the
        # decode plus Lowpass bank of the chip outputs in one call
        compiled = self.fast_host and host_kernels.AVAILABLE
        inv_scales = [1.0 / np.broadcast_to(np.asarray(rule.error_scale, np.float64), (host.nspec[tap][0],))
                      for tap, rule, _ in taps]
        error_max = float(spec.error_max)
        decode_bank = compiled and lowpass_only and dec_sub.size > 0
        dec_idx = np.ascontiguousarray(dec.cols, np.intp)
        encoder = self.encoder
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
                early = self._early(n - 1, min(self.early_chunk, steps - i), signal=host.signal_early)
                if has_inputs and early.signal is not None:
                    counts = encoder.arrive(encoder.encode(early.signal))
            early.restore(k)
            for (tap, rule, lw), inv in zip(taps, inv_scales):
                # the host sends this step's error (the rule's filtered input) to the chip
                e = host.node_input(tap, t)
                if compiled:
                    lw.note_error_peak(float(np.abs(e * inv).max(initial=0.0)))
                    lw.error = host_kernels.quantize_error(e, inv, error_max)
                else:
                    lw.error = quantize_error(e, rule, spec, weights=lw)
            if has_inputs:
                c_in = counts[k] if early.signal is not None else encoder.pending
            else:
                c_in = None
            spikes = em.step(c_in)
            if decode_bank:
                bank.y = host_kernels.decode_lowpass_step(spikes, dec_idx, dec_sub, bank.y, bank.lowpass)
                host.y_all = dec.host_view(bank.y[None])[0]
            elif dec_sub.size:
                y = dec_sub[spikes[dec_cols].nonzero()[0]].sum(axis=0)
                y = bank(t, y) if lowpass_only else dec.filter(y[None], n - 1)[0]
                host.y_all = dec.host_view(y[None])[0]
            host.eval_nodes(t, "late")
            if has_inputs and early.signal is None:
                encoder.arrive(encoder.encode(host.signal()[None, :]))  # waits in encoder.pending
            for p, append, period in probes:
                value = probe_value(p, t)
                if n % period < 1:
                    append(value)
        if early is not None:
            early.finish()

    #: Batched host paths: source Nodes as whole-chunk arrays, the open-loop chunk decoded
    #: inside the compiled emulator loop, arithmetic-only closed loops as compiled chunks
    #: (:mod:`.closed_loop`). ``False`` runs the per-step host code instead
    #: (identical results; kept as the reference the fast paths are tested against).
    fast_host = True
    #: Steps per batch when the host work is batched (open-loop networks).
    batch_steps = 1000
    #: Steps the early host nodes run ahead of the chip in closed-loop runs.
    early_chunk = 100

    # ---------------------------------------------------------------- report
    def hardware_report(self) -> HardwareReport:
        """Chip resources, activity and an energy/time *estimate* of the run so far (since
        the last reset)."""
        # the placement-only part is computed once: a reset (e.g. one per fed item)
        # zeroes the counters but changes no resource
        layout = self._report_layout
        if layout is None or layout.placement is not self.placement:
            layout = self._report_layout = report_layout(self.placement)
        return build_report(self.placement, self.emulator, self.mapped.quantization, self.dt, layout)
