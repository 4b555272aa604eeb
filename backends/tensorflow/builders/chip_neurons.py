"""Chip neuron models for chip-aware training (``configure_settings(target="loihi-emu")``).

A network trained with nengo's LIF and SpikingRectifiedLinear loses accuracy on the
chip, whose neurons differ: decays are 12-bit registers, a LIF neuron is held for
a whole number of steps after a spike and fires on the first step its voltage passes
threshold (so its period is an integer number of steps and its rate lies at or below
nengo's), and a spiking ReLU is an integrate-and-fire compartment that resets to zero.
With ``target="loihi-emu"`` training uses the chip's forms instead, and so does
spiking inference (``predict``, ``run_steps``) unless ``chip_inference=False``: the
saved parameters and the frozen network keep nengo's types, so the frozen network
deploys on loihi-emu unchanged. (The same idea as nengo-loihi's LoihiLIF /
LoihiSpikingRectifiedLinear for NengoDL; the registers come from
:mod:`nhw.hw_emulator.neurons`, the model the loihi-emu target itself maps with.)

Rate training (``training_mode="rate"``)
    Forward: the chip's staircase rate curve, ``amplitude / (period * dt)`` with
    ``period = refractory_delay - 1 + floor(x) + 1`` steps, ``x`` the (real) number
    of integrating steps to threshold -- ``log1p(-1/J) / log(keep)`` for LIF,
    ``1 / (J dt)`` for integrate-and-fire. Backward: the same curve with
    ``floor(x) + 1`` replaced by its average ``x + 1/2``, which is smooth.
Spiking-aware training (``training_mode="spiking_aware"``)
    Forward: the chip's voltage update in floating point (``v <- keep * v + gain
    * J``, clipped below at ``min_voltage``, spike when ``v > 1``, reset to 0, then
    ``refractory_delay - 1`` held steps). Backward: the configured surrogate gradient
    of ``v - 1`` (:mod:`.surrogates`), or with ``surrogate="rate"`` the derivative of
    the smooth chip rate curve above.

Training does not model the integer rounding of the voltage (nor weight
quantisation: that is ``quantize=True``, :mod:`.chip_quantize`).

Inference (:func:`inference_step`)
    The chip's integer voltage update itself, step for step as loihi-emu runs it for
    the same input current.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nengo
from nhw.backends.tensorflow._tf import tf

#: targets whose neuron models training can use
TARGETS = ("loihi-emu",)

#: nengo types -> chip neuron kind name (hw_emulator.neurons.NEURON_KINDS)
_KINDS = {nengo.LIF: "LIF", nengo.SpikingRectifiedLinear: "SpikingRectifiedLinear"}


def chip_params(neurons: Any, dt: float) -> dict | None:
    """The chip registers of ``neurons`` as floats, or None for types the chip maps otherwise.

    Returns
    -------
    dict or None
        ``keep`` (voltage kept per step), ``gain`` (voltage gained per unit of
        ``J`` per step), ``held`` (refractory steps after a spike), ``min_voltage``
        and ``kind`` (``"LIF"`` or ``"SpikingRectifiedLinear"``).
    """
    from nhw.hw_emulator import LOIHI_V1
    from nhw.hw_emulator.neurons import NEURON_KINDS

    name = _KINDS.get(type(neurons))
    if name is None:
        _refuse_regular_spiking(neurons)
        return None
    p = NEURON_KINDS[name].params(neurons, dt, LOIHI_V1)
    keep = (LOIHI_V1.decay_max + 1 - p.decay_v) / (LOIHI_V1.decay_max + 1)
    return {"keep": float(keep), "gain": float(p.step_gain), "held": int(p.refractory_delay) - 1,
            "min_voltage": float(p.min_voltage), "kind": name}


def _refuse_regular_spiking(neurons: Any) -> None:
    """loihi-emu runs ``RegularSpiking(LIFRate / RectifiedLinear)`` as its LIF / IF
    model; the chip form here has no such variant (RegularSpiking keeps no refractory
    state), and nengo's own RegularSpiking would silently differ from the chip."""
    from nhw.backends.loihi_emu.chip_rules import REGULAR_SPIKING_BASES
    from nhw.errors import UnsupportedFeatureError

    base = getattr(neurons, "base_type", None) if type(neurons) is nengo.RegularSpiking else None
    if type(base) in REGULAR_SPIKING_BASES:
        spiking = "LIF" if isinstance(base, nengo.LIFRate) else "SpikingRectifiedLinear"
        raise UnsupportedFeatureError(
            f"{neurons}: with configure_settings(target='loihi-emu') the TensorFlow simulator "
            "runs neurons as the chip does, and it has no chip form of RegularSpiking; expected "
            f"nengo.{spiking}, which loihi-emu runs as the same chip model (or no target)"
        )


def voltage_scale(neurons: Any) -> float | None:
    """The chip's default voltage scale (``vth``) of ``neurons``' kind, or None (no chip form)."""
    from nhw.hw_emulator import LOIHI_V1

    name = _KINDS.get(type(neurons))
    if name is None:
        return None
    return float(LOIHI_V1.lif_voltage_scale if name == "LIF" else LOIHI_V1.if_voltage_scale)


def _steps_to_threshold(p: dict, J: Any, dt: float) -> tuple:
    """``(on, x)``: where the neuron fires, and the real number of integrating steps to threshold there."""
    if p["kind"] == "LIF":
        on = J > 1.0
        safe = tf.where(on, J, 2.0 * tf.ones_like(J))
        # v_k = J (1 - keep^k) > 1  <=>  k > log(1 - 1/J) / log(keep)
        x = tf.math.log1p(-1.0 / safe) / tf.math.log(tf.cast(p["keep"], J.dtype))
    else:
        on = J > 0.0
        safe = tf.where(on, J, tf.ones_like(J))
        x = 1.0 / (safe * dt)
    return on, x


def rate_step(neurons: Any, dt: float) -> Callable | None:
    """TF rate step of ``neurons``' chip form: staircase forward, smooth backward (None: no chip form)."""
    p = chip_params(neurons, dt)
    if p is None:
        return None

    def step(n, dt_, J, s, sc):
        on, x = _steps_to_threshold(p, J, dt)
        exact = n.amplitude / ((p["held"] + tf.floor(x) + 1.0) * dt)
        smooth = n.amplitude / ((p["held"] + x + 0.5) * dt)
        r = smooth + tf.stop_gradient(exact - smooth)
        return tf.where(on, r, tf.zeros_like(r)), s

    return step


def spiking_step(neurons: Any, dt: float, F: Callable | None) -> Callable | None:
    """TF spiking step of ``neurons``' chip form, with surrogate antiderivative ``F``.

    ``F`` None: the backward pass is that of :func:`rate_step` (rate-model gradient).
    Uses nengo's own state signals (``voltage``, and ``refractory_time`` for LIF,
    counted in seconds) so nothing else in the build changes.
    """
    from nhw.backends.tensorflow.builders.surrogates import spike_with_surrogate

    p = chip_params(neurons, dt)
    if p is None:
        return None
    rate = rate_step(neurons, dt)
    lif = p["kind"] == "LIF"

    def step(n, dt_, J, s, sc):
        v0 = s["voltage"]
        held = s["refractory_time"] > 0.5 * dt if lif else tf.zeros_like(v0, dtype=tf.bool)
        v = p["keep"] * v0 + p["gain"] * J
        spiked = tf.stop_gradient(tf.where(held, tf.zeros_like(v), v)) > 1.0
        spikes = tf.cast(spiked, J.dtype)
        if F is not None:
            out = spike_with_surrogate(spikes, v - 1.0, F) * (n.amplitude / dt)
        else:
            r, _ = rate(n, dt, J, s, sc)
            out = r + tf.stop_gradient(spikes * (n.amplitude / dt) - r)
        # clip below like the chip's vmin; the clip is passed straight through so
        # inhibited neurons keep their voltage's gradient (as in surrogates.lif_step)
        clipped = tf.maximum(v, p["min_voltage"])
        v_new = v + tf.stop_gradient(clipped - v)
        v_new = tf.where(spiked | held, tf.zeros_like(v_new), v_new)
        new = {"voltage": v_new}
        if lif:
            ref = tf.stop_gradient(s["refractory_time"])
            new["refractory_time"] = tf.where(spiked, p["held"] * dt * tf.ones_like(ref),
                                              tf.where(held, ref - dt, tf.zeros_like(ref)))
        return out, new

    return step


def inference_step(neurons: Any, dt: float) -> Callable | None:
    """TF spiking step of ``neurons``' chip form at inference (no gradient), or None (no chip form).

    The compartment update of loihi-emu (``hw_emulator/SPEC.md``) in the chip's own
    integer units: with ``S`` the chip's default voltage scale (``vth``) of the kind,
    the input is ``u2 = round(J * S * gain)``, the voltage ``V <- trunc(V * keep_int /
    2**decay_bits) + u2``, clipped to ``[vmin, vmax]``, held at 0 for
    ``refractory_delay - 1`` steps after a spike, spikes when ``V > S`` and resets to
    0. The state keeps nengo's signals (``voltage = V / S``, exact in float32 because
    ``S`` is a power of two; ``refractory_time`` counts held steps in seconds).

    What is not modelled: the mapping's per-neuron smaller ``vth`` where weights or
    biases overflow, the bias registers' coarser rounding (13-bit mantissa with an
    exponent: exact only where ``bias * S * gain`` is representable, as with
    ``quantize=True``), and the chip's integer current filter (``J`` is nengo's
    filtered current, rounded once per step).
    """
    from nhw.hw_emulator import LOIHI_V1
    from nhw.hw_emulator.discretize import vmax_register

    p = chip_params(neurons, dt)
    if p is None:
        return None
    spec = LOIHI_V1
    lif = p["kind"] == "LIF"
    S = voltage_scale(neurons)
    denom = float(spec.decay_max + 1)
    keep_int = float(round(p["keep"] * denom))
    in_scale = S * p["gain"]
    vmin = float(max(round(p["min_voltage"] * S), spec.v_min_limit))
    vmax = float(vmax_register(int(S), spec)[1])
    S = float(S)

    def step(n, dt_, J, s, sc):
        f64 = tf.float64
        V = tf.cast(s["voltage"], f64) * S  # integer-valued: the chip's voltage register
        u2 = tf.round(tf.cast(J, f64) * in_scale)
        # decay toward zero (the chip decays the magnitude and truncates)
        V = tf.sign(V) * tf.floor(tf.abs(V) * keep_int / denom) + u2
        V = tf.clip_by_value(V, vmin, vmax)
        if lif:
            ref = s["refractory_time"]
            held = ref > 0.5 * dt
            V = tf.where(held, tf.zeros_like(V), V)
        spiked = V > S
        V = tf.where(spiked, tf.zeros_like(V), V)
        out = tf.cast(spiked, J.dtype) * (n.amplitude / dt)
        new = {"voltage": tf.cast(V / S, s["voltage"].dtype)}
        if lif:
            new["refractory_time"] = tf.where(spiked, p["held"] * dt * tf.ones_like(ref),
                                              tf.where(held, ref - dt, tf.zeros_like(ref)))
        return out, new

    return step
