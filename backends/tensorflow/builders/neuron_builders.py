"""SimNeurons lowered natively to TensorFlow, one step function per neuron type.

Each step function takes ``(neurons, dt, J, state, sc)`` with tensors shaped
``(n, batch)`` and returns ``(output, new_state)``; they transcribe nengo's own
``NeuronType.step`` equations so results match the reference simulator.

Neuron types without a step here (user-defined ``NeuronType`` subclasses) run
their own numpy ``step`` on the host, called back from the loop
(:class:`~.process_builders.HostNeuronsBuilder`), with a one-time warning;
:func:`register_neuron_step` gives such a type a compiled TensorFlow step.
"""

from __future__ import annotations


import warnings
from typing import Callable, Iterable

from nhw.backends.tensorflow._tf import tf
import nengo
from nengo.builder.neurons import SimNeurons
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow.builders.lif_math import lif_expm1, lif_log1p
from nhw.backends.tensorflow.builders.op_builders import BuildContext, OpBuilder, StepContext, _materialize
from nhw.backends.tensorflow.registry import NEURONS, OPS
from nhw.backends.tensorflow.runtime.signals import writers_by_base
from nhw.backends.tensorflow.builders.training_neurons import training_step


def _rectified_linear(n, dt, J, s, sc):
    return n.amplitude * tf.maximum(J, 0.0), s


def _spiking_rectified_linear(n, dt, J, s, sc):
    v = s["voltage"] + tf.maximum(J, 0.0) * dt
    spikes = tf.floor(v)
    return (n.amplitude / dt) * spikes, {"voltage": v - spikes}


def _sigmoid(n, dt, J, s, sc):
    return (1.0 / n.tau_ref) * tf.sigmoid(J), s


def _tanh(n, dt, J, s, sc):
    return (1.0 / n.tau_ref) * tf.tanh(J), s


def _lif_rate_out(n, J):
    j = J - 1.0
    pos = j > 0
    # the safe denominator keeps log1p away from non-positive inputs (and NaN grads)
    safe = tf.where(pos, j, tf.ones_like(j))
    rate = n.amplitude / (n.tau_ref + n.tau_rc * tf.math.log1p(1.0 / safe))
    return tf.where(pos, rate, tf.zeros_like(j))


def _lif_rate(n, dt, J, s, sc):
    return _lif_rate_out(n, J), s


def _lif(n, dt, J, s, sc):
    ref = s["refractory_time"] - dt
    delta_t = tf.clip_by_value(dt - ref, 0.0, dt)
    v = s["voltage"]
    # bounded-domain polynomials (lif_math): as exact as the library functions in
    # float32, and most of the cost of a batched LIF step otherwise
    v = v - (J - v) * lif_expm1(-delta_t / n.tau_rc, dt, n.tau_rc)
    # four outputs (spikes, voltage, refractory time, and the voltage's clamp)
    # read this; XLA would otherwise recompute it in each of their fusions
    v = _materialize(v, sc)
    spiked = v > 1.0
    out = tf.where(spiked, n.amplitude / dt, 0.0)
    denom = tf.where(spiked, J - 1.0, tf.ones_like(J))
    t_spike = dt + n.tau_rc * lif_log1p(-(v - 1.0) / denom, dt, n.tau_rc)
    v = tf.where(v < n.min_voltage, tf.cast(n.min_voltage, v.dtype), v)
    v = tf.where(spiked, tf.zeros_like(v), v)
    ref = tf.where(spiked, n.tau_ref + t_spike, ref)
    return tf.cast(out, J.dtype), {"voltage": v, "refractory_time": ref}


def _adaptive(base):
    def step(n, dt, J, s, sc):
        a = s["adaptation"]
        base_state = {k: v for k, v in s.items() if k != "adaptation"}
        out, new = base(n, dt, J - a, base_state, sc)
        new = dict(new)
        new["adaptation"] = a + (dt / n.tau_n) * (n.inc_n * out - a)
        return out, new

    return step


def _izhikevich(n, dt, J, s, sc):
    J = tf.maximum(J, -30.0)
    v, u = s["voltage"], s["recovery"]
    dv = (0.04 * v**2 + 5 * v + 140 - u + J) * 1000
    v = v + dv * dt
    spiked = v >= 30
    out = tf.where(spiked, 1.0 / dt, 0.0)
    v = tf.where(spiked, tf.cast(n.reset_voltage, v.dtype), v)
    du = (n.tau_recovery * (n.coupling * v - u)) * 1000
    u = u + du * dt
    u = tf.where(spiked, u + n.reset_recovery, u)
    return tf.cast(out, J.dtype), {"voltage": v, "recovery": u}


def _regular_spiking(n, dt, J, s, sc):
    v = s["voltage"] + dt * J
    spikes = tf.floor(v)
    return (n.amplitude / dt) * spikes, {"voltage": v - spikes}


def _stochastic_spiking(n, dt, J, s, sc):
    mag = tf.abs(J) if n.negative else J
    e = dt * mag
    # np.modf truncates toward zero; rates are non-negative here except with
    # negative=True where we took the absolute value first
    whole = tf.where(e >= 0, tf.floor(e), tf.math.ceil(e))
    frac = e - whole
    u = tf.random.stateless_uniform(tf.shape(J), sc.seed, dtype=J.dtype)
    spikes = whole + tf.cast(u < frac, J.dtype)
    out = (n.amplitude / dt) * spikes
    if n.negative:
        out = out * tf.sign(J)
    return out, s


def _poisson_spiking(n, dt, J, s, sc):
    lam = (tf.abs(J) if n.negative else J) * dt
    counts = tf.random.stateless_poisson(tf.shape(J), sc.seed, tf.maximum(lam, 0.0), dtype=J.dtype)
    out = (n.amplitude / dt) * counts
    if n.negative:
        out = out * tf.sign(J)
    return out, s


_STEPS = {
    nengo.RectifiedLinear: _rectified_linear,
    nengo.SpikingRectifiedLinear: _spiking_rectified_linear,
    nengo.Sigmoid: _sigmoid,
    nengo.Tanh: _tanh,
    nengo.LIFRate: _lif_rate,
    nengo.LIF: _lif,
    nengo.AdaptiveLIFRate: _adaptive(_lif_rate),
    nengo.AdaptiveLIF: _adaptive(_lif),
    nengo.Izhikevich: _izhikevich,
    nengo.RegularSpiking: _regular_spiking,
    nengo.StochasticSpiking: _stochastic_spiking,
    nengo.PoissonSpiking: _poisson_spiking,
}
for _t, _f in _STEPS.items():
    NEURONS.register(_t)(_f)

#: neuron types whose random draws XLA on CPU cannot compile
_NO_XLA = (nengo.PoissonSpiking,)
#: neuron types that draw random numbers inside the loop
_RANDOM = (nengo.StochasticSpiking, nengo.PoissonSpiking)
#: types whose step above is elementwise with scalar parameters, so it runs the
#: same on flat ``(n * batch,)`` tensors (random draws are shaped, so not those;
#: registered extras are documented as taking ``(n, batch)``)
_ELEMENTWISE = frozenset(t for t in _STEPS if not issubclass(t, _RANDOM))


def elementwise_neuron_bases(operators: Iterable) -> list:
    """State bases that only elementwise neuron steps write (``SignalLayout(flat_batch_last=...)``).

    With a minibatch, carrying these flat lets XLA vectorise the neuron update's
    loops (see :class:`~.signals.SignalLayout`): 7-24 % faster steps at batch
    8-64 on the integrator, cconv, basal ganglia and PES benchmark networks.
    """
    return [
        base for base, ops in writers_by_base(operators).items()
        if all(isinstance(op, SimNeurons) and type(op.neurons) in _ELEMENTWISE for op in ops)
    ]


#: neuron types already warned about running on the host (one warning per type)
_HOST_WARNED: set = set()


def register_neuron_step(neuron_type: type, step: Callable | None = None) -> Callable:
    """Register a TensorFlow step function for a (user-defined) neuron type.

    Without one, a :class:`nengo.neurons.NeuronType` subclass runs its own numpy
    ``step`` on the host, called back from the compiled loop (slower, no XLA,
    and no gradients through it); a registered TensorFlow step is compiled into
    the loop and differentiable, like nhw's built-in types.

    Parameters
    ----------
    neuron_type
        The neuron class. The lookup is exact: subclasses need their own
        registration (they may have changed the equations).
    step
        ``step(neurons, dt, J, state) -> (output, new_state)``. ``neurons`` is
        the neuron type instance (read its parameters from it), ``dt`` the
        time step, ``J`` the input currents as a tensor shaped
        ``(n_neurons, minibatch_size)`` in the simulation dtype, and ``state``
        a dict of the same-shaped tensors named as the type's ``state``
        (e.g. ``{"voltage": ...}``). Return the output tensor shaped like ``J``
        and a dict with the new value of every state entry (return ``state``
        itself when there is none). While training, the same step runs (write
        its rate model as a separate type if the spiking one has no useful
        gradient). Omit it to use ``register_neuron_step`` as a decorator.

    Returns
    -------
    step
        ``step`` unchanged (so it can be used as a decorator).

    Examples
    --------
    >>> @register_neuron_step(SpikingTanh)                      # doctest: +SKIP
    ... def spiking_tanh_step(neurons, dt, J, state):
    ...     v = state["voltage"] + tf.tanh(J) * dt / neurons.tau_ref
    ...     spikes = tf.floor(v)
    ...     return spikes / dt, {"voltage": v - spikes}
    """
    if not (isinstance(neuron_type, type) and issubclass(neuron_type, nengo.neurons.NeuronType)):
        raise ValidationError(
            "register_neuron_step: expected neuron_type to be a nengo.neurons.NeuronType subclass; "
            f"received {neuron_type!r}",
            attr="neuron_type",
        )
    if step is None:
        return lambda fn: register_neuron_step(neuron_type, fn)
    if not callable(step):
        raise ValidationError(
            f"register_neuron_step({neuron_type.__name__}): expected step to be callable "
            f"(neurons, dt, J, state) -> (output, new_state); received {step!r}",
            attr="step",
        )

    def internal(n, dt, J, s, sc):
        # the internal convention also passes the step context, which users need not see
        return step(n, dt, J, s)

    NEURONS.register(neuron_type)(internal)
    return step


def _warn_host_neurons(neurons) -> None:
    t = type(neurons)
    if t in _HOST_WARNED:
        return
    _HOST_WARNED.add(t)
    warnings.warn(
        f"tensorflow backend: neuron type {t.__name__} has no TensorFlow step, so its numpy "
        "step runs on the host, called back from the compiled loop: it is not compiled "
        "(no XLA, slower) and not differentiable (no gradient flows through these neurons "
        "in training). Register a TensorFlow step with "
        f"nhw.backends.tensorflow.builders.neuron_builders.register_neuron_step({t.__name__}, step) "
        "to compile it.",
        UserWarning,
        stacklevel=2,
    )


def chip_inference(neurons, ctx: BuildContext) -> Callable | None:
    """The target's spiking step of ``neurons`` for inference, or None (nengo's own step runs).

    With ``configure_settings(target=...)`` a network trained for that target also runs
    its neurons as the target's at inference (``chip_inference=False`` keeps nengo's).
    """
    if ctx.target is None or ctx.chip_inference is False:
        return None
    from nhw.backends.tensorflow.builders import chip_neurons

    return chip_neurons.inference_step(neurons, ctx.dt)


@OPS.register(SimNeurons)
class SimNeuronsBuilder(OpBuilder):
    """Runs a neuron population's step function natively."""

    def __init__(self, op, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        neurons = op.neurons
        # exact lookup: a user subclass may change ``step`` and must not silently
        # run its parent's equations
        fn = NEURONS.lookup(type(neurons), exact=True)
        if fn is None:
            from nhw.backends.tensorflow.builders.process_builders import HostNeuronsBuilder  # deferred: it imports this module's peers

            _warn_host_neurons(neurons)
            self.impl = HostNeuronsBuilder(op, ctx)
            self.xla_ok = False
            self.samples_independent = True
            self.elementwise = False
            return
        self.impl = None
        self.fn = chip_inference(neurons, ctx) or fn
        self.train_fn = training_step(
            neurons, fn, ctx.training_mode, ctx.lif_smoothing, ctx.surrogate, ctx.surrogate_slope,
            ctx.target, ctx.dt,
        )
        self.xla_ok = not isinstance(neurons, _NO_XLA)
        # stateless random draws of shape (n, batch): splitting the batch changes them
        self.samples_independent = not isinstance(neurons, _RANDOM)
        self.elementwise = type(neurons) in _ELEMENTWISE

    def step(self, sc: StepContext) -> None:
        if self.impl is not None:
            self.impl.step(sc)
            return
        st = sc.state
        op = self.op
        J = st.read(op.J, batched=True)
        n = op.J.size
        J = tf.broadcast_to(tf.reshape(J, (n, -1)), (n, st.batch))
        J = tf.cast(J, st.layout.dtype)
        state = {k: tf.reshape(st.read(sig, batched=True), (n, -1)) for k, sig in op.state.items()}
        state = {k: tf.broadcast_to(v, (n, st.batch)) for k, v in state.items()}
        fn = self.train_fn if sc.training else self.fn
        # flat, XLA vectorises the update over neurons and samples together; with
        # (n, batch) and 16 or 32 samples it emits scalar code (SignalLayout)
        if st.batch > 1 and self.elementwise and not sc.training:
            flat = {k: tf.reshape(v, (-1,)) for k, v in state.items()}
            out, new = fn(op.neurons, self.ctx.dt, tf.reshape(J, (-1,)), flat, sc)
            out = tf.reshape(out, (n, st.batch))
            # state a step left alone stays the same tensor (and is not written back)
            new = {k: state[k] if v is flat.get(k) else tf.reshape(v, (n, st.batch)) for k, v in new.items()}
        else:
            out, new = fn(op.neurons, self.ctx.dt, J, state, sc)
        st.write(op.output, tf.reshape(out, tuple(op.output.shape) + (st.batch,)), "set")
        for k, sig in op.state.items():
            if k in new and new[k] is not state[k]:
                st.write(sig, tf.reshape(new[k], tuple(sig.shape) + (st.batch,)), "set")
