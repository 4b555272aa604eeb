"""The chip's input encoding and spike delivery, in the TF simulator's chip form.

On loihi-emu a value sent from a host Node to chip neurons crosses as spike counts:
per step and dimension, the sigma-delta count ``k = floor(A_t / amp) - floor(A_{t-1} /
amp)`` of the running sum ``A`` of ``transform @ f(x)``, clipped to ``+-pairs``
(:class:`nhw.backends.loihi_emu.codec.SpikeEncoder`), and each count adds a quantised
synapse weight to the post neurons' current. A network trained for the chip
(``configure_settings(target="loihi-emu")``) sees the same at spiking inference: after
nengo's build, :func:`insert_chip_operators` maps the model with loihi-emu's own mapping
(:func:`nhw.backends.loihi_emu.mapping.map_model`), and for every chip input that is a
direct Node -> chip connection inserts a :class:`ChipEncode` operator between the
connection's transform and its synapse. The operator emits ``clip(k) * out`` where
``out`` is the value one count stands for: the spike amplitude, or where the post is
Neurons (one synapse per dimension) that amplitude with the synapse weight rounded as
the mapping programs it (:func:`input_count_values`). Its residual is simulator state,
so ``sim.reset`` empties it as loihi-emu's ``reset`` does. Training steps pass values
through unchanged (the count has no gradient).

The chip also delivers a spike to its targets in the step after it is emitted (a host
Node's counts too: they reach the chip in the step after they are sent), where
nengo's ``synapse=None`` delivers it in the same step: every unfiltered connection
between two chip ensembles that the mapping programs as synapses, and every unfiltered
encoded Node input, gets a :class:`ChipDelay` (one step) at spiking inference. And a Lowpass synapse into chip
Neurons (one neuron per row) is the chip's integer current, decayed by the 12-bit
register and truncated each step (:class:`ChipLowpass`, replacing nengo's filter).

Not modelled: the integer current of synapses into Ensembles (decoded, dense encoders)
and the sum of several same-``tau`` connections into one neuron (the chip truncates the
summed current once, here each connection's is truncated), inputs whose Node reaches
the chip through a collapsed passthrough Node
(the mapping merges the transforms; they keep nengo's values and a warning says so),
and the weight rounding of inputs into Ensembles (dense encoders: their counts carry the
unrounded amplitude). The mapping runs with the network's ``target_options`` (loihi-emu's
``MapOptions``, e.g. ``input_pairs``, ``input_range``), which must be the deployment's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from nengo.builder.operator import Operator
from nengo.builder.processes import SimProcess
from nengo.builder.signal import Signal
from nengo.ensemble import Neurons
from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.builders.op_builders import OpBuilder
from nhw.backends.tensorflow.registry import OPS


class _StatefulMap(Operator):
    """``dst`` set from ``src`` and a state signal the operator updates (``state``)."""

    def __init__(self, src: Signal, dst: Signal, state: Signal, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.sets = [dst]
        self.incs = []
        self.reads = [src]
        self.updates = [state]

    @property
    def src(self) -> Signal:
        return self.reads[0]

    @property
    def dst(self) -> Signal:
        return self.sets[0]

    @property
    def state(self) -> Signal:
        return self.updates[0]


class ChipEncode(_StatefulMap):
    """``dst = clip(floor((r + src) / amp), -kmax, kmax) * out``; ``r`` keeps the remainder.

    Parameters
    ----------
    src, dst : Signal
        The host value (``transform @ f(x)``) and the value the chip receives.
    residual : Signal
        Running remainder in ``[0, amp)`` (updated each step; initial value 0).
    amp, kmax, out : np.ndarray
        Per row: value of one spike count, largest count per step, value delivered per count.
    """

    def __init__(self, src: Signal, dst: Signal, residual: Signal, amp: np.ndarray, kmax: np.ndarray,
                 out: np.ndarray, tag: str | None = None) -> None:
        super().__init__(src, dst, residual, tag=tag)
        self.amp, self.kmax, self.out = (np.asarray(a, dtype=np.float64) for a in (amp, kmax, out))

    @property
    def residual(self) -> Signal:
        return self.state

    def make_step(self, signals, dt, rng):
        src, dst, res = signals[self.src], signals[self.dst], signals[self.residual]
        amp, kmax, out = self.amp, self.kmax, self.out

        def step_chip_encode():
            acc = res + src
            k = np.floor(acc / amp)
            res[...] = acc - k * amp
            dst[...] = np.clip(k, -kmax, kmax) * out

        return step_chip_encode


class _InferenceOnlyBuilder(OpBuilder):
    """A chip-form operator's TF step: ``dst = src`` in training, :meth:`infer` otherwise."""

    def step(self, sc: Any) -> None:
        x = sc.state.read(self.op.src, batched=True)
        if sc.training:
            sc.state.write(self.op.dst, x, "set")
        else:
            self.infer(sc, x)

    def infer(self, sc: Any, x: Any) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError


@OPS.register(ChipEncode)
class ChipEncodeBuilder(_InferenceOnlyBuilder):
    """TF step of :class:`ChipEncode` (float64 arithmetic, as the host encoder's)."""

    def __init__(self, op: ChipEncode, ctx: Any) -> None:
        super().__init__(op, ctx)
        shape = tuple(op.src.shape) + (1,)
        self.amp, self.kmax, self.out = (a.reshape(shape) for a in (op.amp, op.kmax, op.out))

    def infer(self, sc: Any, x: Any) -> None:
        st, op = sc.state, self.op
        f64 = tf.float64
        acc = tf.cast(st.read(op.residual, batched=True), f64) + tf.cast(x, f64)
        k = tf.floor(acc / self.amp)
        st.write(op.residual, acc - k * self.amp, "set")
        st.write(op.dst, tf.clip_by_value(k, -self.kmax, self.kmax) * self.out, "set")


class ChipDelay(_StatefulMap):
    """``dst = previous src`` (spiking inference) or ``dst = src`` (training); ``prev`` keeps ``src``.

    The chip delivers a spike to its targets in the step after it is emitted, where
    nengo's ``synapse=None`` delivers it in the same step.
    """

    def __init__(self, src: Signal, dst: Signal, prev: Signal, tag: str | None = None) -> None:
        super().__init__(src, dst, prev, tag=tag)

    @property
    def prev(self) -> Signal:
        return self.state

    def make_step(self, signals, dt, rng):
        src, dst, prev = signals[self.src], signals[self.dst], signals[self.prev]

        def step_chip_delay():
            dst[...] = prev
            prev[...] = src

        return step_chip_delay


@OPS.register(ChipDelay)
class ChipDelayBuilder(_InferenceOnlyBuilder):
    """TF step of :class:`ChipDelay`."""

    def infer(self, sc: Any, x: Any) -> None:
        st, op = sc.state, self.op
        st.write(op.dst, st.read(op.prev, batched=True), "set")
        st.write(op.prev, x, "set")


class ChipLowpass(Operator):
    """The chip's integer current of a Lowpass synapse, replacing nengo's float filter.

    Per row, with ``s`` the integer units of one unit of the filtered value (the post
    neuron's gain times its current scale): ``U <- trunc(U * keep) + round(x * du * s)``
    and ``output = U / s`` (spiking inference), or nengo's ``output <- a * output + (1 -
    a) * x`` (training). ``output`` is updated (visible the next step), as nengo's
    synapse does and as the chip delivers a spike, or a host input's counts, the step
    after it is sent.
    """

    def __init__(self, input: Signal, output: Signal, current: Signal, keep: float, du: float,
                 scale: np.ndarray, a: float, tag: str | None = None) -> None:
        super().__init__(tag=tag)
        self.keep, self.du, self.a = float(keep), float(du), float(a)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.sets = []
        self.incs = []
        self.reads = [input]
        self.updates = [output, current]

    @property
    def input(self) -> Signal:
        return self.reads[0]

    @property
    def output(self) -> Signal:
        return self.updates[0]

    @property
    def current(self) -> Signal:
        return self.updates[-1]

    def make_step(self, signals, dt, rng):
        x, y, u = signals[self.input], signals[self.output], signals[self.current]
        keep, du, scale = self.keep, self.du, self.scale

        def step_chip_lowpass():
            u[...] = np.trunc(u * keep) + np.round(x * du * scale)
            y[...] = u / scale

        return step_chip_lowpass


@OPS.register(ChipLowpass)
class ChipLowpassBuilder(OpBuilder):
    """TF step of :class:`ChipLowpass` (float64 arithmetic)."""

    def __init__(self, op: ChipLowpass, ctx: Any) -> None:
        super().__init__(op, ctx)
        self.scale = op.scale.reshape(tuple(op.input.shape) + (1,))

    def step(self, sc: Any) -> None:
        st, op = sc.state, self.op
        x = tf.cast(st.read(op.input, batched=True), tf.float64)
        if sc.training:
            y = tf.cast(st.read(op.output, batched=True), tf.float64)
            st.write(op.output, op.a * y + (1.0 - op.a) * x, "set")
            return
        u = tf.cast(st.read(op.current, batched=True), tf.float64)
        u = tf.math.sign(u) * tf.floor(tf.abs(u) * op.keep) + tf.round(x * (op.du * self.scale))
        st.write(op.current, u, "set")
        st.write(op.output, u / self.scale, "set")


def input_count_values(inp: Any, mapped: Any, model: Any, voltage_scale: float) -> np.ndarray | None:
    """Value one count of ``inp`` (a ``ChipInput`` into Neurons) delivers, with the chip's weight rounding.

    The mapping programs the synapse of dimension ``i`` into neuron ``j`` as the integer
    ``gain_j * amp_i * c_j`` (``c_j`` the neuron's current scale) rounded to the
    weight format (:func:`nhw.hw_emulator.populations.weight_ints`,
    :func:`nhw.hw_emulator.discretize.quantize_weights`: one exponent per group). The
    TF chip neuron turns ``J`` into ``round(J * S * step_gain)``; the returned value
    ``w_ij / (gain_j * S * step_gain)`` makes that product the programmed integer.
    None where a dimension does not reach exactly one neuron.
    """
    from nhw.backends.loihi_emu.chip_rules import post_matrix, synapse_tau
    from nhw.hw_emulator import discretize as dz
    from nhw.hw_emulator.populations import weight_ints

    conn = inp.conn
    post = conn.post_obj
    if not isinstance(post, Neurons):
        return None
    ens = post.ensemble
    pm = post_matrix(conn.size_out, ens.n_neurons, conn.post_slice)  # neuron j <- dimension i
    if not np.all(np.count_nonzero(pm, axis=0) == 1):
        return None
    j = np.argmax(pm, axis=0)  # the neuron of each dimension
    block = mapped.ensemble_blocks[ens]
    spec, dt = block.spec, model.dt
    c = (np.asarray(block.current_scale, dtype=np.float64) * np.ones(ens.n_neurons))[j]
    vth = (np.asarray(block.vth, dtype=np.float64) * np.ones(ens.n_neurons))[j]
    gain = np.asarray(model.params[ens].gain, dtype=np.float64)[j]
    tau = synapse_tau(conn.synapse, conn)
    # the on and off axons' synapses (nengo current per count), as the mapping connects them
    w_j = (gain * np.asarray(inp.amplitude, dtype=np.float64) * dt)[:, None]
    w_int = weight_ints(None, w_j, tau, c, dt, spec)[:, 0]
    wq = dz.quantize_weights(np.concatenate([w_int, -w_int])[:, None], spec)  # one exponent per group
    w_eff = dz.effective_weights(wq.mantissa, wq.exponent, spec)[:len(w_int), 0].astype(np.float64)
    du = (dz.decay_u_register(tau, dt, spec) + 1) / (spec.decay_max + 1)
    step_gain = c / vth
    safe = np.where(gain != 0, gain, 1.0)
    return np.where(gain != 0, w_eff / (du * safe * voltage_scale * step_gain), 0.0)


def _pre_synapse_signal(model: Any, conn: Any) -> Signal | None:
    """The signal ``transform @ f(x)`` of ``conn`` before its synapse (None: not found)."""
    weighted = model.sig[conn]["weighted"]
    if conn.synapse is None:
        return weighted
    for op in model.operators:
        if isinstance(op, SimProcess) and op.process is conn.synapse and weighted in op.updates + op.sets:
            return op.input
    return None


def _lowpass_into_neurons(model: Any, mapped: Any, conn: Any) -> tuple | None:
    """A :class:`ChipLowpass` for ``conn``'s synapse (a Lowpass into chip Neurons, one neuron per row), or None."""
    import nengo
    from nhw.backends.loihi_emu.chip_rules import post_matrix
    from nhw.hw_emulator import discretize as dz

    post = conn.post_obj
    if type(conn.synapse) is not nengo.Lowpass or not isinstance(post, Neurons):
        return None
    ens = post.ensemble
    if ens not in mapped.ensemble_blocks:
        return None
    pm = post_matrix(conn.size_out, ens.n_neurons, conn.post_slice)
    if not np.all(np.count_nonzero(pm, axis=0) == 1):
        return None
    synop = next((op for op in model.operators if isinstance(op, SimProcess) and op.process is conn.synapse
                  and model.sig[conn]["weighted"] in op.updates), None)
    if synop is None:
        return None
    j = np.argmax(pm, axis=0)
    block = mapped.ensemble_blocks[ens]
    spec, dt, tau = block.spec, model.dt, float(conn.synapse.tau)
    c = (np.asarray(block.current_scale, dtype=np.float64) * np.ones(ens.n_neurons))[j]
    gain = np.asarray(model.params[ens].gain, dtype=np.float64)[j]
    reg = dz.decay_u_register(tau, dt, spec)
    keep = float(dz.u_retained(reg, spec))
    du = (reg + 1) / (spec.decay_max + 1)
    scale = np.where(gain != 0, gain * c, 1.0).reshape(synop.input.shape)
    out = model.sig[conn]["weighted"]
    return synop, ChipLowpass(synop.input, out, Signal(np.zeros(out.shape), name=f"{out.name}.chip_current"),
                              keep, du, scale, float(np.exp(-dt / tau)),
                              tag=f"{conn}.chip_lowpass")


def _reroute(model: Any, src: Signal, what: str) -> Signal:
    """A new signal that every operator reading ``src`` reads instead."""
    dst = Signal(shape=src.shape, name=f"{src.name}.{what}")
    for op in model.operators:
        if src in op.reads:
            op.reads[:] = [dst if s is src else s for s in op.reads]
    return dst


def _neuron_connections(model: Any, mapped: Any) -> set:
    """Connections between the neurons (or decoded values) of two chip ensembles."""
    from nengo.connection import Connection
    from nengo.ensemble import Ensemble

    def chip_ens(obj):
        ens = obj if isinstance(obj, Ensemble) else getattr(obj, "ensemble", None)
        return ens if ens in mapped.ensemble_blocks else None

    return {c for c in model.params if isinstance(c, Connection) and c.learning_rule_type is None
            and chip_ens(c.pre_obj) is not None and chip_ens(c.post_obj) is not None}


def insert_chip_operators(model: Any, network: Any) -> list:
    """Insert the chip's input encoders and spike delays into ``model`` (after nengo's build).

    A :class:`ChipEncode` for every direct Node -> chip input, a :class:`ChipDelay` for
    every unfiltered chip -> chip connection programmed as synapses, a
    :class:`ChipLowpass` for every Lowpass synapse of those into chip Neurons. Does nothing
    unless ``network`` is configured with a target and ``chip_inference`` is not False,
    or when ``model`` has them already.

    Returns
    -------
    list
        The inserted operators.
    """
    from nhw.backends.tensorflow.settings import get_setting

    if network is None or get_setting(network, "target") is None or get_setting(network, "chip_inference") is False:
        return []
    if any(isinstance(op, (ChipEncode, ChipDelay)) for op in model.operators):
        return []  # already inserted: a second encoder in series would encode the counts again
    from nhw.backends.loihi_emu.mapping import map_model
    from nhw.backends.tensorflow.builders.chip_options import network_map_options

    from nhw.errors import NhwError

    options = network_map_options(network)
    try:
        mapped = map_model(model, options)
    except NhwError as e:
        warnings.warn(f"chip inference: the network does not map onto loihi-emu ({e}); Node inputs keep "
                      "nengo's values (the chip's spike encoding is not modelled)", stacklevel=2)
        return []
    added, skipped, encoded = [], [], set()
    for inp in mapped.inputs:
        conn = inp.conn
        post_conn = inp.axons.owner
        src = _pre_synapse_signal(model, conn) if post_conn is conn else None
        if src is None:
            skipped.append(conn)
            continue
        amp = np.asarray(inp.amplitude, dtype=np.float64).reshape(-1)
        scale = None
        if isinstance(conn.post_obj, Neurons):
            from nhw.backends.tensorflow.builders.chip_neurons import voltage_scale

            scale = voltage_scale(conn.post_obj.ensemble.neuron_type)
        out = None if scale is None else input_count_values(inp, mapped, model, scale)
        if out is None:
            out = amp
        dst = _reroute(model, src, "chip_encoded")
        enc = ChipEncode(src, dst, Signal(np.zeros(src.shape), name=f"{src.name}.chip_residual"),
                         amp.reshape(src.shape), np.full(src.shape, float(inp.pairs)), out.reshape(src.shape),
                         tag=f"{conn}.chip_encode")
        model.add_op(enc)
        added.append(enc)
        encoded.add(conn)
        if conn.synapse is None:
            # the counts reach the chip in the next step (loihi-emu's SpikeEncoder.arrive);
            # through a Lowpass the ChipLowpass below delays them (updated, not set)
            arrived = _reroute(model, dst, "chip_arrived")
            delay = ChipDelay(dst, arrived, Signal(np.zeros(dst.shape), name=f"{dst.name}.chip_in_flight"),
                              tag=f"{conn}.chip_input_delay")
            model.add_op(delay)
            added.append(delay)
    chip_conns = _neuron_connections(model, mapped)
    for conn in [c for c in model.params if c in chip_conns]:  # the build's order: deterministic
        if conn.synapse is None and mapped.decode_choices.get(conn, "weights") == "weights":
            src = model.sig[conn]["weighted"]
            dst = _reroute(model, src, "chip_delayed")
            delay = ChipDelay(src, dst, Signal(np.zeros(src.shape), name=f"{src.name}.chip_prev"),
                              tag=f"{conn}.chip_delay")
            model.add_op(delay)
            added.append(delay)
    for conn in [c for c in model.params if c in chip_conns or c in encoded]:
        # host counts, like chip spikes, enter the current in the step after they are sent
        found = _lowpass_into_neurons(model, mapped, conn)
        if found is not None:
            synop, lowpass = found
            model.operators.remove(synop)
            model.add_op(lowpass)
            added.append(lowpass)
    if skipped:
        warnings.warn(f"chip inference: {len(skipped)} Node input(s) reach the chip through a passthrough Node "
                      f"(e.g. {skipped[0]}); their spike encoding is not modelled", stacklevel=2)
    return added
