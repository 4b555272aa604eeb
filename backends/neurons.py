"""Extra neuron types (NengoDL's), with numpy ``step`` functions so any nengo backend runs them.

This module uses numpy and nengo only (no TensorFlow); the TensorFlow step functions
for these types live in :mod:`nhw.backends.tensorflow.builders.neuron_extras`. Each type is
registered in :data:`~nhw.backends.neuron_types.NEURON_TYPES` under its config name.
"""

from __future__ import annotations

import numpy as np
import nengo
from nengo.params import NumberParam

from .neuron_types import NEURON_TYPES

__all__ = ["SoftLIFRate", "LeakyReLU", "SpikingLeakyReLU", "soft_lif_rate_np"]

#: below this value of ``j / sigma`` softplus(z) equals exp(z) to within float64
#: precision, so log(softplus(z)) is taken as ``z`` (this avoids log(0) underflow)
_LOG_SOFTPLUS_CUT = -30.0


def soft_lif_rate_np(
    J: np.ndarray, sigma: float, tau_rc: float, tau_ref: float, amplitude: float = 1.0
) -> np.ndarray:
    """Smoothed LIF rate curve (Hunsberger & Eliasmith 2015), in numpy.

    ``rate = amplitude / (tau_ref + tau_rc * log1p(1 / p))`` with
    ``p = sigma * softplus((J - 1) / sigma)``.

    Parameters
    ----------
    J
        Input currents.
    sigma
        Smoothing amount; as ``sigma -> 0`` this approaches the LIF rate curve.
    tau_rc, tau_ref, amplitude
        LIF parameters, as in :class:`nengo.LIFRate`.

    Returns
    -------
    rates
        Array of the same shape as ``J``.
    """
    J = np.asarray(J)
    z = (J - 1.0) / sigma
    # softplus(z) = log1p(exp(z)) computed without overflow for large z
    sp = np.logaddexp(0.0, z)
    p = sigma * sp
    big = p > 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # for p > 1, log1p(1/p) is accurate as is; for small p, log1p(1/p) =
        # log1p(p) - log(p) avoids forming 1/p (overflow) and loses no precision
        # because both terms are positive. log(p) is taken in log-space so that it
        # stays finite (and the rate smoothly tends to 0) even where p underflows.
        log_sp = np.where(z < _LOG_SOFTPLUS_CUT, z, np.log(np.where(z < _LOG_SOFTPLUS_CUT, 1.0, sp)))
        log_p = np.log(sigma) + log_sp
        small_term = np.log1p(p) - log_p
        big_term = np.log1p(1.0 / np.where(big, p, 1.0))
    term = np.where(big, big_term, small_term)
    # term is finite for every finite J; J = -inf gives term = inf and rate 0
    return amplitude / (tau_ref + tau_rc * term)


class SoftLIFRate(nengo.LIFRate):
    """LIF rate neuron with a smoothed (differentiable) firing threshold.

    The rate is ``amplitude / (tau_ref + tau_rc * log1p(1 / p))`` with
    ``p = sigma * softplus((J - 1) / sigma)`` (Hunsberger & Eliasmith, 2015), which
    approaches :class:`nengo.LIFRate` as ``sigma -> 0``. It is mainly a training aid
    for LIF networks.

    Parameters
    ----------
    sigma
        Amount of smoothing around the firing threshold (``> 0``).
    tau_rc
        Membrane RC time constant, in seconds.
    tau_ref
        Absolute refractory period, in seconds.
    amplitude
        Scaling factor on the neuron output.
    initial_state
        Initial values for state variables (this type has none).

    Notes
    -----
    ``gain_bias`` and ``max_rates_intercepts`` are inherited from LIFRate (the
    smoothing only slightly changes the curve near threshold), while ``rates`` uses
    the smoothed curve so decoders are solved for what the neurons actually output.
    """

    sigma = NumberParam("sigma", low=0, low_open=True)

    def __init__(
        self,
        sigma: float = 1.0,
        tau_rc: float = 0.02,
        tau_ref: float = 0.002,
        amplitude: float = 1.0,
        initial_state: dict | None = None,
    ) -> None:
        super().__init__(tau_rc=tau_rc, tau_ref=tau_ref, amplitude=amplitude, initial_state=initial_state)
        self.sigma = sigma

    def rates(self, x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Firing rates for inputs ``x``, from the smoothed curve.

        As NengoDL's ``SoftLIFRate.rates``, the current is ``J = gain * x + bias``
        with numpy broadcasting: ``x`` shaped ``(n_neurons,)`` gives one rate per
        neuron, ``(n_samples, n_neurons)`` (what nengo's decoder solving and
        tuning curves pass) or ``(n_samples, 1)`` gives ``(n_samples,
        n_neurons)``. An ``x`` that does not broadcast against ``gain`` (nengo's
        ``(n_samples,)`` of scalar inputs, ``n_samples != n_neurons``) falls back
        to nengo's :meth:`~nengo.neurons.NeuronType.current`, ``(n_samples,
        n_neurons)``.
        """
        x = np.asarray(x, dtype=float)
        gain = np.asarray(gain, dtype=float)
        bias = np.asarray(bias, dtype=float)
        try:
            J = gain * x + bias
        except ValueError:  # no broadcast: nengo's scalar-inputs semantics
            J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        SoftLIFRate.step(self, dt=1.0, J=J, output=out)
        return out

    def step(self, dt: float, J: np.ndarray, output: np.ndarray) -> None:
        """Compute the smoothed LIF rate into ``output``."""
        output[...] = soft_lif_rate_np(J, self.sigma, self.tau_rc, self.tau_ref, self.amplitude)


class LeakyReLU(nengo.RectifiedLinear):
    """Rectified linear neuron with a non-zero slope for negative currents.

    ``output = amplitude * J`` for ``J > 0`` and ``amplitude * negative_slope * J``
    otherwise, so the output can be negative.

    Parameters
    ----------
    negative_slope
        Slope of the response for negative currents.
    amplitude
        Scaling factor on the neuron output.
    initial_state
        Initial values for state variables (this type has none).
    """

    negative = True

    negative_slope = NumberParam("negative_slope", low=0)

    def __init__(
        self, negative_slope: float = 0.3, amplitude: float = 1.0, initial_state: dict | None = None
    ) -> None:
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.negative_slope = negative_slope

    def step(self, dt: float, J: np.ndarray, output: np.ndarray) -> None:
        """Compute the leaky rectified-linear response into ``output``."""
        output[...] = self.amplitude * np.where(J > 0, J, self.negative_slope * J)


class SpikingLeakyReLU(nengo.SpikingRectifiedLinear):
    """Spiking version of :class:`LeakyReLU`, emitting negative spikes.

    The voltage integrates ``J`` for positive currents and ``negative_slope * J``
    for negative ones. Each time it passes ``+1`` (``-1``) a spike of
    ``+amplitude / dt`` (``-amplitude / dt``) is emitted and the voltage moves one
    unit back towards zero, so the mean output equals :class:`LeakyReLU`'s rate.

    Parameters
    ----------
    negative_slope
        Slope of the response for negative currents.
    amplitude
        Scaling factor on the spike output.
    initial_state
        Initial values for state variables (``voltage``).
    """

    negative = True

    negative_slope = NumberParam("negative_slope", low=0)

    def __init__(
        self, negative_slope: float = 0.3, amplitude: float = 1.0, initial_state: dict | None = None
    ) -> None:
        super().__init__(amplitude=amplitude, initial_state=initial_state)
        self.negative_slope = negative_slope

    def rates(self, x: np.ndarray, gain: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """Mean firing rates for inputs ``x`` (the :class:`LeakyReLU` curve)."""
        J = self.current(x, gain, bias)
        out = np.zeros_like(J)
        LeakyReLU.step(self, dt=1.0, J=J, output=out)
        return out

    def step(self, dt: float, J: np.ndarray, output: np.ndarray, voltage: np.ndarray) -> None:
        """Integrate the voltage and emit positive or negative spikes."""
        voltage += np.where(J > 0, J, self.negative_slope * J) * dt
        # truncation toward zero spikes when |voltage| >= 1 and keeps the sign
        n_spikes = np.trunc(voltage)
        output[...] = (self.amplitude / dt) * n_spikes
        voltage -= n_spikes


NEURON_TYPES.register(SoftLIFRate, "soft_lif_rate")
NEURON_TYPES.register(LeakyReLU, "leaky_relu")
NEURON_TYPES.register(SpikingLeakyReLU, "spiking_leaky_relu")
