"""TensorFlow step functions for the extra neuron types in :mod:`.neurons`.

Importing this module registers :class:`~nhw.backends.neurons.SoftLIFRate`,
:class:`~.neurons.LeakyReLU` and :class:`~.neurons.SpikingLeakyReLU` in the
simulator's neuron registry, using the same convention as :mod:`.neuron_builders`:
step functions ``(neurons, dt, J, state, sc) -> (output, new_state)`` on tensors
shaped ``(n_neurons, batch)``.

It also provides :func:`soft_lif_rate`, the smoothed LIF rate curve with finite
gradients everywhere, for training LIF networks with a differentiable surrogate.
"""

from __future__ import annotations

from nhw.backends.tensorflow._tf import tf

from nhw.backends.neurons import LeakyReLU, SoftLIFRate, SpikingLeakyReLU
from nhw.backends.tensorflow.registry import NEURONS

__all__ = ["soft_lif_rate"]

#: below this ``z = (J - 1) / sigma``, log(softplus(z)) is replaced by ``z`` (they
#: agree to ~1e-14 relative), so log never sees an underflowed zero
_LOG_SOFTPLUS_CUT = -30.0


def soft_lif_rate(
    J: tf.Tensor,
    sigma: float | tf.Tensor,
    tau_rc: float | tf.Tensor,
    tau_ref: float | tf.Tensor,
    amplitude: float | tf.Tensor = 1.0,
) -> tf.Tensor:
    """Smoothed LIF rate curve (Hunsberger & Eliasmith 2015) on TensorFlow tensors.

    ``rate = amplitude / (tau_ref + tau_rc * log1p(1 / p))`` with
    ``p = sigma * softplus((J - 1) / sigma)``. The value and its gradient with
    respect to ``J`` are finite for every finite ``J`` (no NaN below threshold).

    Parameters
    ----------
    J
        Input currents (floating-point tensor of any shape).
    sigma
        Smoothing amount (``> 0``); as ``sigma -> 0`` this approaches LIFRate.
    tau_rc
        Membrane RC time constant, in seconds.
    tau_ref
        Absolute refractory period, in seconds.
    amplitude
        Scaling factor on the output.

    Returns
    -------
    rates
        Tensor with the shape and dtype of ``J``.
    """
    J = tf.convert_to_tensor(J)
    dt = J.dtype
    sigma, tau_rc, tau_ref, amplitude = (tf.cast(v, dt) for v in (sigma, tau_rc, tau_ref, amplitude))
    z = (J - 1.0) / sigma
    sp = tf.nn.softplus(z)
    p = sigma * sp
    big = p > 1.0
    # Above p = 1 the textbook log1p(1/p) is accurate; below it we use
    # log1p(1/p) = log1p(p) - log(p), which never forms 1/p (whose gradient
    # -1/p**2 overflows to inf and then NaN). Every branch is fed "safe" inputs so
    # the branch tf.where discards still has a finite gradient.
    low = z < _LOG_SOFTPLUS_CUT
    log_sp = tf.where(low, z, tf.math.log(tf.where(low, tf.ones_like(sp), sp)))
    small_term = tf.math.log1p(tf.where(big, tf.ones_like(p), p)) - (tf.math.log(sigma) + log_sp)
    big_term = tf.math.log1p(1.0 / tf.where(big, p, tf.ones_like(p)))
    term = tf.where(big, big_term, small_term)
    return amplitude / (tau_ref + tau_rc * term)


def _soft_lif_rate_step(n, dt, J, s, sc):
    return soft_lif_rate(J, n.sigma, n.tau_rc, n.tau_ref, n.amplitude), s


def _leaky_relu_step(n, dt, J, s, sc):
    return n.amplitude * tf.where(J > 0, J, n.negative_slope * J), s


def _spiking_leaky_relu_step(n, dt, J, s, sc):
    v = s["voltage"] + tf.where(J > 0, J, n.negative_slope * J) * dt
    # truncation toward zero (as np.trunc): positive and negative spikes alike
    spikes = tf.where(v >= 0, tf.floor(v), tf.math.ceil(v))
    return (n.amplitude / dt) * spikes, {"voltage": v - spikes}


NEURONS.register(SoftLIFRate)(_soft_lif_rate_step)
NEURONS.register(LeakyReLU)(_leaky_relu_step)
NEURONS.register(SpikingLeakyReLU)(_spiking_leaky_relu_step)
