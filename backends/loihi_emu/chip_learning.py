"""On-chip PES: which learned connections the chip can run, and how they are mapped.

A PES connection ``pre -> post`` becomes pre compartments -> a learning synapse group
-> on/off decode neurons -> ``post`` (on the chip, or decoded on the host when
``post`` is a Node); the host sends the rule's error every step (``SPEC.md``
section 8).
"""

from __future__ import annotations

import warnings

import nengo
import numpy as np
from nengo.connection import Connection
from nengo.ensemble import Ensemble
from nengo.learning_rules import PES
from nengo.node import Node
from nhw.hw_emulator.learning import PESPlan

from nhw.errors import UnsupportedFeatureError

from .chip_rules import describe, synapse_tau
from .taps import ChipOutput, LearningTap

#: Ridge regularisation (relative to the largest rate) for the identity decoders that
#: size learned weights; nengo's default solver regularisation.
_IDENTITY_REG = 0.1


class LearningMapper:
    """Mixin of the mapper: PES connections.

    The host class provides ``model``, ``opt``, ``spec``, ``pops``, ``out``,
    ``host_needed`` and the mapper's ``chip_matrix``, ``decoded_range``,
    ``decode_population``, ``chip_decoders``, ``post_encoders`` and ``connect``.
    """

    def check_learning(self, conn: Connection) -> None:
        """Raise unless ``conn`` is a PES connection the chip can learn."""
        rule = conn.learning_rule_type
        if type(rule) is not PES:
            raise UnsupportedFeatureError(
                f"{describe(conn)}: learning rule {rule} cannot run on the chip; loihi-emu learns with "
                "nengo.PES only (one rule per connection); run other rules on 'reference'"
            )
        if not isinstance(conn.pre_obj, Ensemble) or conn.solver.weights:
            raise UnsupportedFeatureError(
                f"{describe(conn)}: PES on the chip learns decoders, so it needs a decoded connection "
                f"from an Ensemble (got pre {describe(conn.pre_obj)}, solver weights={conn.solver.weights})"
            )
        if not isinstance(conn.post_obj, (Ensemble, Node)):
            raise UnsupportedFeatureError(
                f"{describe(conn)}: PES into {describe(conn.post_obj)} is not supported on the chip; "
                "connect the learned connection to an Ensemble or a Node"
            )
        synapse_tau(rule.pre_synapse, conn)  # the pre trace is a first-order filter

    def add_learned(self, conn: Connection) -> None:
        """A PES connection: pre -> learned weights -> decode neurons -> post (chip or host).

        The learned weights are one mantissa per (pre neuron, dimension), shared by
        that dimension's on (+) and off (-) decode neurons; the host sends the error.
        """
        pre, post = conn.pre_obj, conn.post_obj
        src = self.pops[pre]
        w = self.chip_matrix(conn)
        radius = post.radius if isinstance(post, Ensemble) else 1.0
        y_max = np.maximum(self.decoded_range(src, w), radius)
        dec, sign, dim, r1, a = self.decode_population(conn, src, y_max)
        dec.uniform_scale = True
        # the weight scale that decoding a value of size y_max needs: identity
        # decoders on the chip's rate curves, with 2x headroom for learning
        eb = self.model.params[pre]
        reg = _IDENTITY_REG
        built_points = self.model.params[conn].eval_points
        points = eb.eval_points if built_points is None else built_points
        d_id = self.chip_decoders(pre, points, points, reg) * src.amplitude
        r0 = float(self.opt.decode_rate)
        w_learn = sign[:, None] * w[dim] * r1[dim][:, None]
        w_max = max(float(np.abs(w_learn).max()), 2 * 0.8 * r0 * float(np.abs(d_id).max()) / pre.radius)
        rule = conn.learning_rule_type
        plan = PESPlan(
            describe(conn), float(rule.learning_rate), pre.n_neurons, synapse_tau(rule.pre_synapse, conn),
            dim, sign, r1, w_max, 2 * 0.8 * r0,
            np.full(conn.size_out, self.opt.error_range * radius / self.spec.error_max), int(self.opt.learn_epoch),
        )
        dec.learning[conn] = plan
        self.connect(src, dec, w_learn, conn, tau=synapse_tau(conn.synapse, conn))
        self.out.learning.append(LearningTap(conn.learning_rule, conn, plan))
        if isinstance(post, Ensemble):
            post_pop, enc = self.post_encoders(conn)
            self.connect(dec, post_pop, enc[:, dim] * (sign * a[dim]), conn, tau=self.opt.decode_tau)
        else:
            value = np.zeros((conn.size_out, dec.n))
            value[dim, np.arange(dec.n)] = sign * a[dim]
            self.host_needed.add(post)
            self.out.outputs.append(ChipOutput(conn, dec, value, 1.0, nengo.Lowpass(self.opt.decode_tau)))


def clipping_message(tap: LearningTap, lw, error_max: int, weight_max: int, dt: float,
                     new: tuple) -> str:
    """The warning text for PES clipping of one learned connection (see :func:`warn_learning_clipping`).

    ``new`` is ``(clipped steps, weight saturations, steps, largest |error| in error units
    or None)`` of the run being reported (:meth:`LearnedWeights.clipping_since`).
    """
    clipped, saturated, steps, peak = new
    conn = tap.conn
    scale = np.asarray(tap.rule_regs.error_scale, np.float64)
    chip_range = float(scale.max()) * error_max
    post = conn.post_obj
    is_ens = isinstance(post, Ensemble)
    radius = float(post.radius) if is_ens else 1.0
    radius_src = (f"error_range {chip_range / radius:g} x radius {radius:g} of {describe(post)}" if is_ens
                  else f"error_range {chip_range:g} x 1: a Node post has radius 1")
    parts = [f"{describe(conn)}: on-chip PES learning was clipped in this run"]
    advice = []
    if clipped:
        e_peak = None if peak is None else peak * float(scale.max())
        seen = (f"the largest |error| was {e_peak:.3g} but the chip's error range is" if e_peak is not None
                else "the error reached the chip's error range,")
        parts.append(
            f"{seen} +-{chip_range:.3g} ({radius_src}); the error was clipped to it in {clipped} of {steps} "
            f"steps ({clipped * dt:.3g} s), so learning is slower there than in nengo")
        need = "" if e_peak is None else f" to {np.ceil(10 * e_peak / radius) / 10:g} or more"
        advice.append(f"raise the Simulator option error_range{need}"
                      + (" (or the post Ensemble's radius)" if is_ens else "")
                      + ", or scale the error (and the learned target) down")
    if saturated:
        parts.append(f"learned weights hit the +-{weight_max} mantissa limit {saturated} time(s) (the group's "
                     f"weights are sized for decoding values up to the post's radius {radius:g}, twice over), "
                     "so the learned function is cut off there")
        advice.append("keep the learned function within the post's radius ("
                      + ("a larger radius for the post Ensemble" if is_ens
                         else "scale the learned target into +-1 and scale it back up after the Node")
                      + ") or lower the learning rate")
    return "; ".join(parts) + ". To fix: " + "; ".join(advice) + ". Counts: hardware_report()."


def warn_learning_clipping(taps: list, emulator, dt: float) -> None:
    """Warn, once per run and learned connection, about PES errors clipped and weights saturated
    since the last call (the counters of :class:`~nhw.hw_emulator.learning.LearnedWeights`).
    """
    spec = emulator.spec
    for tap in taps:
        if tap.rule_regs is None or tap.rule_regs not in emulator.learned:
            continue
        lw = emulator.learned[tap.rule_regs][1]
        new = lw.clipping_since()
        if new is None:
            continue
        _, saturated, _, peak = new
        if not saturated and peak is not None and peak <= spec.error_max + 0.5:
            continue  # the error reached the limit without passing it: nothing was cut off
        warnings.warn(clipping_message(tap, lw, spec.error_max, spec.weight_mant_max, dt, new), stacklevel=3)
