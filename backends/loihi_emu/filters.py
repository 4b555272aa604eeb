"""Synapses the ``loihi-emu`` target runs on the host (Node inputs, decoded outputs, probes).

nengo's Lowpass is the common case and gets a closed form (one decay per step, or
``scipy.signal.lfilter`` over a chunk of steps); any other synapse runs its own nengo
step function.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from scipy.signal import lfilter


def synapse_key(synapse: Any) -> tuple:
    """Hashable identity of a host synapse: equal Lowpass filters share one key."""
    if synapse is None:
        return ("none",)
    if type(synapse) is nengo.Lowpass:
        return ("lowpass", float(synapse.tau))
    return ("obj", id(synapse))


def lowpass_decay(synapse: nengo.Lowpass, dt: float) -> float:
    """Per-step decay ``exp(-dt/tau)`` of a Lowpass (0 for ``tau = 0``: no filtering)."""
    return 0.0 if synapse.tau == 0 else float(np.exp(-dt / synapse.tau))


class HostFilter:
    """A nengo synapse run on the host (``None`` passes values through)."""

    def __init__(self, synapse: Any, size: int, dt: float) -> None:
        self.synapse, self.size, self.dt = synapse, size, dt
        self.reset()

    def reset(self) -> None:
        self.lowpass = None
        if self.synapse is None:
            self.fn = None
            return
        if type(self.synapse) is nengo.Lowpass:
            # nengo's Lowpass, y = e * y + (1 - e) * x, without its general state-space step
            self.lowpass = lowpass_decay(self.synapse, self.dt)
            self.y = np.zeros(self.size)
            return
        shape = (self.size,)
        state = self.synapse.make_state(shape, shape, self.dt)
        self.fn = self.synapse.make_step(shape, shape, self.dt, rng=None, state=state)

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        if self.lowpass is not None:
            e = self.lowpass
            self.y = e * self.y + (1 - e) * np.reshape(x, self.size)
            return self.y
        return x if self.fn is None else np.array(self.fn(t, x), copy=True).reshape(self.size)

    def run(self, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Filter a chunk of inputs ``x`` (one row per step, at times ``ts``), keeping state."""
        if self.lowpass is not None:
            e = self.lowpass
            y, _ = lfilter([1 - e], [1, -e], x, axis=0, zi=(e * self.y)[None, :])
            self.y = y[-1].copy()
            return y
        return np.array([self(t, row) for t, row in zip(ts, x)]).reshape(len(x), self.size)
