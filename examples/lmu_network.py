"""Legendre Memory Units as native nengo objects.

The LMU's memory is the linear system ``theta m'(t) = A m(t) + B u(t)`` whose state
holds the Legendre coefficients of the input's last ``theta`` seconds (Voelker et al.,
NeurIPS 2019).  Here it is discretised exactly (zero-order hold) and built from plain
nengo objects: a passthrough ``Node`` holding ``m`` with a recurrent connection
``Ad`` and an input connection ``Bd``, both with ``synapse=0`` (a one-step delay), so
``m[k] = Ad m[k-1] + Bd u[k-1]``.  No Python runs per step, so every nhw target that
builds Nodes and connections can run it.  Readouts are ordinary connections: solve them
by least squares (:func:`solve_readout`) or train them.
"""

from __future__ import annotations

import nengo
import numpy as np
from scipy.linalg import expm


def legendre_memory(order: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Continuous-time ``(A, B)`` of the Legendre delay system, already divided by ``theta``.

    Parameters
    ----------
    order
        Number of Legendre coefficients kept (memory dimensions).
    theta
        Length of the window remembered, in seconds.
    """
    if order < 1 or theta <= 0:
        raise ValueError(f"legendre_memory: need order >= 1 and theta > 0, got order={order}, theta={theta}")
    q = np.arange(order)
    r = (2 * q + 1)[:, None]
    i, j = np.meshgrid(q, q, indexing="ij")
    a = np.where(i < j, -1.0, (-1.0) ** (i - j + 1)) * r
    b = ((-1.0) ** q)[:, None] * r
    return a / theta, b / theta


def discretize(a: np.ndarray, b: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation: ``m[k] = Ad m[k-1] + Bd u[k-1]``."""
    n = a.shape[0]
    # expm of the augmented matrix gives both Ad and Bd, even when A is singular
    aug = np.zeros((n + b.shape[1], n + b.shape[1]))
    aug[:n, :n], aug[:n, n:] = a * dt, b * dt
    e = expm(aug)
    return e[:n, :n], e[:n, n:]


class LegendreMemory(nengo.Network):
    """An LMU memory for a ``size_in``-dimensional input, as nengo objects.

    Parameters
    ----------
    order
        Legendre coefficients per input dimension.
    theta
        Window length in seconds.
    size_in
        Input dimensions (each gets its own ``order`` coefficients).
    dt
        The simulator time step the memory is discretised for.

    Attributes
    ----------
    input : nengo.Node
        Connect the signal to remember here.
    memory : nengo.Node
        ``size_in * order`` coefficients (input dimension major).
    """

    def __init__(self, order: int, theta: float, size_in: int = 1, dt: float = 0.001, **kwargs) -> None:
        super().__init__(**kwargs)
        a, b = discretize(*legendre_memory(order, theta), dt)
        eye = np.eye(size_in)
        self.order, self.theta, self.dt = order, theta, dt
        with self:
            self.input = nengo.Node(size_in=size_in, label="input")
            self.memory = nengo.Node(size_in=size_in * order, label="memory")
            nengo.Connection(self.input, self.memory, transform=np.kron(eye, b), synapse=0)
            nengo.Connection(self.memory, self.memory, transform=np.kron(eye, a), synapse=0)


def solve_readout(activities: np.ndarray, targets: np.ndarray, reg: float = 1e-3) -> np.ndarray:
    """Ridge-regression readout ``W`` (targets ~ activities @ W.T), as a connection transform.

    Parameters
    ----------
    activities
        ``(samples, n)`` values of what the readout reads (memory or neurons).
    targets
        ``(samples, d)`` desired outputs.
    reg
        Regularisation relative to the largest activity.
    """
    x = np.asarray(activities, float)
    lam = (reg * np.max(np.abs(x))) ** 2 * len(x)
    gram = x.T @ x + lam * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ np.asarray(targets, float)).T
