"""Synapses the ``loihi-emu`` target runs on the host (Node inputs, decoded outputs, probes).

nengo's Lowpass is the common case and gets a closed form, ``y[t] = e * y[t-1] +
(1 - e) * x[t]`` with ``e = exp(-dt/tau)``: one vector update per step, or
``scipy.signal.lfilter`` over a chunk of steps.  It is written out rather than run
through ``nengo.Lowpass.make_step`` because nengo's state-space step
(``X *= a; X += b * x``) rounds differently in the last bit, and loihi-emu's
results are defined by the closed form.  Any other synapse runs nengo's own step
function (``make_state`` / ``make_step``).
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from scipy.signal import lfilter

from . import host_kernels


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
    """A nengo synapse run on the host (``None`` passes values through).

    Parameters
    ----------
    synapse
        A nengo synapse, or ``None``.
    size
        Values filtered per step.
    dt
        Time step in seconds.
    """

    def __init__(self, synapse: Any, size: int, dt: float) -> None:
        self.synapse, self.size, self.dt = synapse, size, dt
        self._decay = lowpass_decay(synapse, dt) if type(synapse) is nengo.Lowpass else None
        self.reset()

    @classmethod
    def lowpass_bank(cls, decays: np.ndarray, dt: float) -> HostFilter:
        """Lowpass filters with one decay per value (decay 0: passed through)."""
        f = cls(None, len(decays), dt)
        f._decay = np.asarray(decays, dtype=np.float64)
        f.reset()
        return f

    def reset(self) -> None:
        """Zero state."""
        self.lowpass = self._decay
        self.fn = None
        if self.lowpass is not None:
            self.y = np.zeros(self.size)
        elif self.synapse is not None:
            shape = (self.size,)
            state = self.synapse.make_state(shape, shape, self.dt)
            self.fn = self.synapse.make_step(shape, shape, self.dt, rng=None, state=state)

    def __call__(self, t: float, x: np.ndarray) -> np.ndarray:
        """Filter one step's values ``x`` at time ``t``."""
        if self.lowpass is not None:
            e = self.lowpass
            if host_kernels.AVAILABLE and isinstance(e, float):  # one compiled call, same operations
                self.y = host_kernels.lowpass_step(self.y, e, np.reshape(np.asarray(x, np.float64), self.size))
            else:
                self.y = e * self.y + (1 - e) * np.reshape(x, self.size)
            return self.y
        return x if self.fn is None else np.array(self.fn(t, x), copy=True).reshape(self.size)

    def run(self, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Filter a chunk of inputs ``x`` (one row per step, at times ``ts``), keeping state."""
        if self.lowpass is not None:
            e = self.lowpass
            # the same recurrence as __call__, as a first-order IIR filter over the chunk
            y, _ = lfilter([1 - e], [1, -e], x, axis=0, zi=(e * self.y)[None, :])
            self.y = y[-1].copy()
            return y
        return np.array([self(t, row) for t, row in zip(ts, x)]).reshape(len(x), self.size)

    def run_rows(self, ts: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Filter a chunk row by row, exactly as successive calls would."""
        if self.synapse is None and self.lowpass is None:
            return x
        if self.lowpass is not None and host_kernels.AVAILABLE and len(x) > 1:
            # the same closed form, one compiled loop over the rows
            y = np.array(self.y, dtype=np.float64, copy=True)
            out = host_kernels.lowpass_rows(y, self.lowpass, np.reshape(x, (len(x), self.size)))
            self.y = y
            return out
        return np.array([self(t, row) for t, row in zip(ts, x)])
