"""Surrogate gradients for spiking-aware training.

A spike is a step function of the membrane voltage: its derivative is zero
everywhere but at the threshold, so plain backpropagation learns nothing. In
``training_mode="spiking_aware"`` the forward pass keeps the exact spikes and
the backward pass replaces the step's derivative by a smooth *surrogate*
``sigma'(x)`` of the distance to threshold ``x = v - 1`` (nengo's voltages are
normalised so that the threshold is 1). Because the surrogate is evaluated on
the membrane voltage, a neuron that stays silent still passes gradient to its
input current, and the voltage it carries from step to step is differentiated
too (backpropagation through time).

Surrogates, chosen with ``configure_settings(surrogate=NAME, surrogate_slope=K)``:

``"fast_sigmoid"`` (default slope 10)
    ``sigma'(x) = 1 / (1 + k |x|)**2`` -- SuperSpike (Zenke & Ganguli 2018);
    snnTorch's ``fast_sigmoid`` (same formula; snnTorch's default slope is 25).
    The default is wider than snnTorch's because a nengo LIF neuron resets to
    zero, a whole threshold (``x = -1``) below the spike, and is then held
    there for its refractory period: with ``k = 25`` the surrogate there is
    ``1/676`` of its peak, with ``k = 10`` ``1/121``, so a neuron that fires
    keeps learning from the steps after its spikes. ``surrogate_slope=25``
    gives snnTorch's slope.
``"arctan"`` (default slope 2)
    ``sigma'(x) = (k / 2) / (1 + (pi k x / 2)**2)`` -- the derivative of
    ``arctan(pi k x / 2) / pi`` (Fang et al. 2021); snnTorch's ``atan``, the
    surrogate its neurons use when given none.
``"rate"``
    The derivative of the neuron's rate model (``rate + stop_gradient(spikes -
    rate)``); smoothed with ``lif_smoothing`` (SoftLIFRate). This was the only
    choice before surrogates were added; it is zero for silent neurons.
    It takes no slope (its smoothing is ``lif_smoothing``).

The surrogate's *value* never reaches the forward pass: each is written as
``F(x) + stop_gradient(spikes - F(x))`` with ``F' = sigma'``, which keeps the
whole step made of ordinary TensorFlow ops (XLA compiles it, no
``tf.custom_gradient`` inside the simulation loop).
"""

from __future__ import annotations

import math
from typing import Any, Callable

from nengo.exceptions import ValidationError

#: surrogate name -> default slope (None: takes no slope)
DEFAULT_SLOPE: dict = {"fast_sigmoid": 10.0, "arctan": 2.0, "rate": None}

#: surrogate used by ``training_mode="spiking_aware"`` when none is configured
DEFAULT_SURROGATE = "fast_sigmoid"

KNOWN = tuple(DEFAULT_SLOPE)


def check_surrogate(name: Any, slope: Any = None) -> tuple:
    """Validated ``(name, slope)`` with the default slope filled in.

    Parameters
    ----------
    name : str
        One of :data:`KNOWN`.
    slope : float or None
        Steepness of the surrogate; None for the surrogate's default.

    Returns
    -------
    tuple
        ``(name, slope)``; slope is None for ``"rate"``.

    Raises
    ------
    nengo.exceptions.ValidationError
        For an unknown name, a slope that is not a positive number, or a slope
        given to ``"rate"``.
    """
    if not isinstance(name, str) or name not in DEFAULT_SLOPE:
        raise ValidationError(
            f"surrogate gradient: expected one of {', '.join(repr(k) for k in KNOWN)}; received {name!r}",
            attr="surrogate",
        )
    if DEFAULT_SLOPE[name] is None:
        if slope is not None:
            raise ValidationError(
                f"surrogate gradient {name!r}: takes no slope (its smoothing is the lif_smoothing "
                f"setting); received surrogate_slope={slope!r}",
                attr="surrogate_slope",
            )
        return name, None
    if slope is None:
        return name, DEFAULT_SLOPE[name]
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not slope > 0 or not math.isfinite(slope):
        raise ValidationError(
            f"surrogate gradient {name!r}: expected surrogate_slope to be a positive number; received {slope!r}",
            attr="surrogate_slope",
        )
    return name, float(slope)


def derivative(name: str, slope: float, x: Any) -> Any:
    """``sigma'(x)``: the surrogate's derivative of a spike w.r.t. ``x = v - threshold``.

    Works on numpy arrays and TensorFlow tensors alike (reference formula for tests).
    """
    if name == "fast_sigmoid":
        return 1.0 / (1.0 + slope * abs(x)) ** 2
    if name == "arctan":
        return (slope / 2.0) / (1.0 + (math.pi / 2.0 * slope * x) ** 2)
    raise ValidationError(
        f"surrogate derivative: expected 'fast_sigmoid' or 'arctan'; received {name!r}", attr="surrogate"
    )


def antiderivative(name: str, slope: float) -> Callable:
    """``F`` with ``F' = sigma'`` as a TensorFlow function (its value is never used forward)."""
    from nhw.backends.tensorflow._tf import tf

    if name == "fast_sigmoid":
        # d/dx [x / (1 + k|x|)] = 1 / (1 + k|x|)^2
        return lambda x: x / (1.0 + slope * tf.abs(x))
    if name == "arctan":
        scale = math.pi / 2.0 * slope
        return lambda x: tf.atan(scale * x) / math.pi
    raise ValidationError(
        f"surrogate gradient: expected 'fast_sigmoid' or 'arctan'; received {name!r}", attr="surrogate"
    )


def spike_with_surrogate(spikes: Any, x: Any, F: Callable) -> Any:
    """``spikes`` forward, ``d spikes / d x = F'(x)`` backward."""
    from nhw.backends.tensorflow._tf import tf

    f = F(x)
    return f + tf.stop_gradient(tf.cast(spikes, f.dtype) - f)


def _with_gradient(value: Any, path: Any) -> Any:
    """``value`` forward, the derivative of ``path`` backward."""
    from nhw.backends.tensorflow._tf import tf

    return path + tf.stop_gradient(value - path)


def lif_step(spiking_fn: Callable, F: Callable, adaptive: bool = False) -> Callable:
    """Training step of a LIF (or AdaptiveLIF) population with surrogate gradients.

    The forward values are ``spiking_fn``'s (bit for bit what inference
    computes); only the derivatives change:

    - output: ``amplitude / dt * sigma'(v - 1)`` w.r.t. the voltage before the
      spike test, where ``v = v0 - (J - v0) expm1(-delta_t / tau_rc)`` carries
      gradient to ``J`` and to the previous voltage;
    - voltage carried to the next step: the reset to zero cuts the gradient
      of neurons that spiked (as the real dynamics do; the spike test inside
      the reset is not differentiated, which is snnTorch's detached reset
      applied to a reset to zero), but the clamp at
      ``min_voltage`` is passed straight through, so inhibited, silent
      neurons keep their voltage's gradient history;
    - refractory time: no gradient (its dependence on the exact spike time is
      ill-conditioned near ``J = 1`` and is not what the surrogate models).
    """
    from nhw.backends.tensorflow._tf import tf
    from nhw.backends.tensorflow.builders.lif_math import lif_expm1

    def step(n, dt, J, s, sc):
        out, new = spiking_fn(n, dt, J, s, sc)
        new = dict(new)
        Jin = J - s["adaptation"] if adaptive else J
        ref = tf.stop_gradient(s["refractory_time"]) - dt
        delta_t = tf.clip_by_value(dt - ref, 0.0, dt)
        v0 = s["voltage"]
        v = v0 - (Jin - v0) * lif_expm1(-delta_t / n.tau_rc, dt, n.tau_rc)
        spiked = tf.stop_gradient(v) > 1.0
        rate_out = spike_with_surrogate(spiked, v - 1.0, F) * (n.amplitude / dt)
        out = _with_gradient(out, tf.cast(rate_out, out.dtype))
        new["voltage"] = _with_gradient(new["voltage"], tf.where(spiked, tf.zeros_like(v), v))
        new["refractory_time"] = tf.stop_gradient(new["refractory_time"])
        if adaptive:
            a = s["adaptation"]
            new["adaptation"] = _with_gradient(new["adaptation"], a + (dt / n.tau_n) * (n.inc_n * out - a))
        return out, new

    return step


def if_step(spiking_fn: Callable, F: Callable) -> Callable:
    """Training step of SpikingRectifiedLinear (integrate-and-fire) with surrogate gradients.

    The voltage ``v = v0 + max(J, 0) dt`` is differentiated as ``v0 + J dt``
    (straight through the rectification, so a neuron driven below zero still
    learns), the output as ``amplitude / dt * sigma'(v - 1)``, and the
    subtractive reset is treated as a constant (as snnTorch's detached reset).
    """
    from nhw.backends.tensorflow._tf import tf

    def step(n, dt, J, s, sc):
        out, new = spiking_fn(n, dt, J, s, sc)
        new = dict(new)
        v0 = s["voltage"]
        v_path = v0 + J * dt
        v = _with_gradient(v0 + tf.maximum(J, 0.0) * dt, v_path)
        spikes = tf.stop_gradient(tf.floor(v))
        # x = v - 1: distance of the voltage to the first threshold
        rate_out = spike_with_surrogate(tf.minimum(spikes, 1.0), v - 1.0, F) * (n.amplitude / dt)
        out = _with_gradient(out, tf.cast(rate_out, out.dtype))
        new["voltage"] = _with_gradient(new["voltage"], v - spikes)
        return out, new

    return step
