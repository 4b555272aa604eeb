"""Decoders of chip ensembles solved on the chip's own (discretised) rate curves.

nengo solves decoders on its continuous rate curves; the chip fires at whole-step
periods, so decoded values would be biased.  :class:`DecoderSolver` re-runs each
decoded connection's solver on the chip's rates (``MapOptions.decoder_rates="chip"``),
as nengo-loihi does, and gives the identity decoders that size learned weights.
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from nengo.builder.connection import get_targets
from nengo.connection import Connection
from nengo.ensemble import Ensemble

from .chip_rules import dense_matrix


class DecoderSolver:
    """Mixin of the mapper: decoded weights of connections from chip ensembles.

    The host class provides ``model`` (the built nengo model), ``opt``
    (:class:`~.taps.MapOptions`), ``dt``, ``pops`` (Ensemble -> Population) and
    ``post_encoders(conn)``.
    """

    def built_weights(self, conn: Connection) -> Any:
        """The weight signal's value as nengo built it (transform, times decoders if decoded)."""
        sig = self.model.sig[conn].get("weights")
        return np.float64(1.0) if sig is None else sig.initial_value  # None: NoTransform

    def ens_rates(self, ens: Ensemble, x: np.ndarray) -> np.ndarray:
        pop = self.pops[ens]
        b = self.model.params[ens]
        return pop.kind.rates(x * b.gain + b.bias, pop.params, self.dt, pop.amplitude)

    def decoded_weights(self, conn: Connection) -> np.ndarray:
        """Decoders (times transform; times post encoders for weight solvers) of a
        decoded connection, solved on the rate curve ``MapOptions.decoder_rates`` names."""
        memo = self.__dict__.setdefault("_decoded", {})
        if conn in memo:
            return memo[conn]
        built = self.model.params[conn]
        w = np.asarray(self.built_weights(conn), dtype=np.float64)
        if (self.opt.decoder_rates == "nengo" or built.eval_points is None
                or isinstance(conn.solver, nengo.solvers.NoSolver)):
            # nengo's own decoders (user-given decoders are always kept as they are)
            memo[conn] = w
            return w
        memo[conn] = self.solve_on_chip(conn, w)
        return memo[conn]

    def solve_on_chip(self, conn: Connection, w: np.ndarray) -> np.ndarray:
        """Re-run ``conn``'s solver on the chip's rate curve; same layout as ``w``.

        Parameters
        ----------
        conn
            A decoded connection from an on-chip ensemble.
        w
            nengo's built weights of ``conn``: ``T @ D.T`` for decoders ``D``
            (``n x size_mid``) and transform ``T``, or ``E @ T @ D.T`` for a
            compositional weight solver (``E`` the post's scaled encoders).

        Returns
        -------
        numpy.ndarray
            The same product with ``D`` solved, by ``conn.solver`` with nengo's
            targets, on the chip's rates at the built evaluation points.  Where the
            transform is not a fixed matrix (a distribution, a sparse transform) the
            product's left factor is recovered from ``w`` and nengo's own decoders.
        """
        pre = conn.pre_obj
        built = self.model.params[conn]
        eval_points = np.asarray(built.eval_points, dtype=np.float64)
        a_chip = self._chip_activities(pre, eval_points)
        if not np.any(a_chip):
            # no evaluation point drives any neuron above threshold on the chip:
            # nothing to solve on, so nengo's decoders are the best available
            return w
        targets = np.asarray(get_targets(conn, eval_points, dtype=np.float64), dtype=np.float64)
        t = self._fixed_transform(conn)
        solver = conn.solver

        def solve(a: np.ndarray, y: np.ndarray) -> np.ndarray:
            # the connection's seed, as nengo's build uses it (most solvers ignore it)
            return np.asarray(solver(a, y, rng=np.random.RandomState(self.model.seeds[conn]))[0])

        if solver.weights and not solver.compositional:
            if t is None:
                return w  # nengo itself requires a Dense transform here
            # nengo folds transform and post encoders into the targets
            _, enc = self.post_encoders(conn)
            return solve(a_chip, targets @ t.T @ enc.T).T.reshape(w.shape)
        d_chip = solve(a_chip, targets)  # n x size_mid
        if t is not None:
            out = t @ d_chip.T
            if solver.weights:
                out = self.post_encoders(conn)[1] @ out
            return out.reshape(w.shape)
        # recover the left factor L of w = L @ D_nengo.T from nengo's own decoders
        a_nengo = self._nengo_activities(pre, eval_points)
        d_nengo = solve(a_nengo, targets)
        left = w.reshape(-1, d_nengo.shape[0]) @ np.linalg.pinv(d_nengo.T)
        return (left @ d_chip.T).reshape(w.shape)

    def _fixed_transform(self, conn: Connection) -> np.ndarray | None:
        """``size_out x size_mid`` transform matrix, or ``None`` if it is not a fixed
        dense matrix (sampled from a distribution, sparse, convolution)."""
        tr = conn.transform
        if isinstance(tr, nengo.transforms.NoTransform):
            return np.eye(conn.size_out, conn.size_mid)
        if isinstance(tr, nengo.transforms.Dense) and not isinstance(tr.init, nengo.dists.Distribution):
            return dense_matrix(tr.init, conn.size_out, conn.size_mid, conn)
        return None

    def _chip_activities(self, pre: Ensemble, eval_points: np.ndarray) -> np.ndarray:
        """Chip rates of ``pre``'s neurons at ``eval_points`` (memoised: an ensemble's
        connections and probes usually share evaluation points)."""
        memo = self.__dict__.setdefault("_chip_acts", {})
        key = (pre, eval_points.shape, hash(np.ascontiguousarray(eval_points).tobytes()))
        if key not in memo:
            x = np.dot(eval_points, self.model.params[pre].encoders.T / pre.radius)
            memo[key] = self.ens_rates(pre, x)
        return memo[key]

    def _nengo_activities(self, pre: Ensemble, eval_points: np.ndarray) -> np.ndarray:
        """nengo's (continuous) rates of ``pre``'s neurons at ``eval_points``."""
        eb = self.model.params[pre]
        x = np.dot(eval_points, eb.encoders.T / pre.radius)
        return pre.neuron_type.rates(x, eb.gain, eb.bias)

    def _rate_tables(self, pre: Ensemble, eval_points: np.ndarray, reg: float) -> tuple:
        """``(nengo rates, chip rates, inverse ridge Gram matrix)`` at ``eval_points``, memoised:
        an ensemble's connections usually share its evaluation points, and the rates and
        the ``n x n`` inverse dominate mapping time."""
        memo = self.__dict__.setdefault("_tables", {})
        key = (pre, reg, eval_points.shape, hash(np.ascontiguousarray(eval_points).tobytes()))
        if key not in memo:
            eb = self.model.params[pre]
            x = np.dot(eval_points, eb.encoders.T / pre.radius)
            a = self.ens_rates(pre, x)
            sigma = reg * max(float(a.max()), 1e-12)
            g_inv = np.linalg.inv(a.T @ a + a.shape[0] * sigma**2 * np.eye(a.shape[1]))
            memo[key] = (pre.neuron_type.rates(x, eb.gain, eb.bias), a, g_inv)
        return memo[key]

    def chip_decoders(self, pre: Ensemble, eval_points: np.ndarray, targets: np.ndarray, reg: float) -> np.ndarray:
        """Ridge-regression decoders (``size x n``) of ``targets`` from the chip's rate curves."""
        _, a, g_inv = self._rate_tables(pre, eval_points, reg)
        return (g_inv @ (a.T @ targets)).T

