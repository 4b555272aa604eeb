"""What spiking neurons compute while a training step is traced.

Spikes have no useful gradient, so training swaps each spiking type for a
differentiable stand-in, chosen by the ``training_mode`` setting:

``"rate"`` (default)
    The neuron's rate model replaces it outright: LIF -> LIFRate (or
    SoftLIFRate with ``lif_smoothing``), SpikingRectifiedLinear ->
    RectifiedLinear, Regular/Stochastic/PoissonSpiking -> their base rate type,
    AdaptiveLIF -> AdaptiveLIFRate. Fast and smooth; the trained network is
    then run with spikes, so it works best when the spiking output is later
    low-pass filtered or averaged over enough steps.
``"spiking_aware"``
    The forward pass runs the real spiking dynamics (the loss sees spike
    noise, quantisation, refractoriness) while the backward pass uses a
    surrogate gradient (setting ``surrogate``, see :mod:`.surrogates`): by
    default the fast sigmoid of the membrane voltage's distance to threshold
    for LIF, AdaptiveLIF and SpikingRectifiedLinear, so silent neurons learn
    too; ``surrogate="rate"`` keeps the rate model's derivative
    (``rate + stop_gradient(spikes - rate)``), which the other spiking types
    (Regular/Stochastic/PoissonSpiking) always use. It trains for what the
    spiking network actually does, which matters with few time steps or
    little synaptic filtering.

Rate neuron types train as they are in both modes.
"""

from __future__ import annotations

from typing import Callable

import nengo
from nhw.backends.tensorflow._tf import tf

from nhw.backends.tensorflow.registry import NEURONS
from nhw.backends.tensorflow.builders import surrogates

#: spiking type -> rate type used in training (exact types; subclasses of the
#: spiking types change their equations and get no stand-in)
RATE_MODEL: dict = {
    nengo.LIF: nengo.LIFRate,
    nengo.SpikingRectifiedLinear: nengo.RectifiedLinear,
    nengo.AdaptiveLIF: nengo.AdaptiveLIFRate,
}

#: types whose rate model is their ``base_type`` parameter
_BASE_TYPED = (nengo.RegularSpiking, nengo.StochasticSpiking, nengo.PoissonSpiking)

MODES = ("rate", "spiking_aware")


def _soft_lif(sigma: float, amplitude: float, tau_rc: float, tau_ref: float):
    from nhw.backends.tensorflow.builders.neuron_extras import soft_lif_rate

    def step(n, dt, J, s, sc):
        return soft_lif_rate(J, sigma, tau_rc, tau_ref, amplitude), s

    return step


def rate_step(neurons, lif_smoothing: float | None) -> Callable | None:
    """The TF step function of ``neurons``' rate model, or None if it has none."""
    t = type(neurons)
    if isinstance(neurons, _BASE_TYPED) and t in _BASE_TYPED:
        base = neurons.base_type
        fn = NEURONS.lookup(type(base), exact=True)
        if fn is None:
            return None
        amp = neurons.amplitude

        def scaled(n, dt, J, s, sc):
            out, _ = fn(base, dt, J, {}, sc)
            return amp * out, s

        if lif_smoothing and type(base) is nengo.LIFRate:
            soft = _soft_lif(lif_smoothing, amp * base.amplitude, base.tau_rc, base.tau_ref)
            return lambda n, dt, J, s, sc: soft(base, dt, J, s, sc)
        return scaled
    rate_t = RATE_MODEL.get(t)
    if rate_t is None:
        return None
    if lif_smoothing and t is nengo.LIF:
        return _soft_lif(lif_smoothing, neurons.amplitude, neurons.tau_rc, neurons.tau_ref)
    return NEURONS.lookup(rate_t, exact=True)


def training_step(
    neurons,
    spiking_fn: Callable,
    mode: str,
    lif_smoothing: float | None,
    surrogate: str | None = None,
    surrogate_slope: float | None = None,
    target: str | None = None,
    dt: float = 0.001,
) -> Callable:
    """Step function used while tracing a training step.

    Parameters
    ----------
    neurons
        The neuron type instance.
    spiking_fn
        Its normal (inference) step function.
    mode
        ``"rate"`` or ``"spiking_aware"``.
    lif_smoothing
        ``sigma`` of SoftLIFRate for LIF neurons, or None.
    surrogate
        Surrogate gradient of ``"spiking_aware"`` training (None: the default,
        :data:`.surrogates.DEFAULT_SURROGATE`).
    surrogate_slope
        Its slope (None: the surrogate's default).
    target
        Hardware target whose neuron models LIF and SpikingRectifiedLinear
        train as (:mod:`.chip_neurons`), or None for nengo's own.
    dt
        Simulation time step (the chip's registers depend on it).
    """
    if target is not None and mode in MODES:
        from nhw.backends.tensorflow.builders import chip_neurons

        chip_rate = chip_neurons.rate_step(neurons, dt)
        if chip_rate is not None:
            if mode == "rate":
                return chip_rate
            name, slope = surrogates.check_surrogate(surrogate or surrogates.DEFAULT_SURROGATE, surrogate_slope)
            F = None if name == "rate" else surrogates.antiderivative(name, slope)
            return chip_neurons.spiking_step(neurons, dt, F)
    rate = rate_step(neurons, lif_smoothing)
    if rate is None:  # rate types (and types without a rate model) train as they are
        return spiking_fn
    if mode == "rate":
        return rate
    name, slope = surrogates.check_surrogate(surrogate or surrogates.DEFAULT_SURROGATE, surrogate_slope)
    t = type(neurons)
    if name != "rate" and t in (nengo.LIF, nengo.AdaptiveLIF):
        return surrogates.lif_step(spiking_fn, surrogates.antiderivative(name, slope), t is nengo.AdaptiveLIF)
    if name != "rate" and t is nengo.SpikingRectifiedLinear:
        return surrogates.if_step(spiking_fn, surrogates.antiderivative(name, slope))

    def spiking_aware(n, dt, J, s, sc):
        spikes, new = spiking_fn(n, dt, J, s, sc)
        r, _ = rate(n, dt, J, s, sc)
        r = tf.cast(r, spikes.dtype)
        return r + tf.stop_gradient(spikes - r), new

    return spiking_aware
