"""State that every step rebuilds before using it, so the time loop need not carry it.

Everything an operator writes is loop state by default (``SignalLayout``): the
loop body returns its new value and XLA stores it each step. For the neurons'
input currents that store is pure cost: nengo sets them afresh every step (the
bias ``Copy``, then the encoders' and neuron connections' increments), the neuron
update is their only reader, and with a minibatch XLA fuses the whole current
computation into the neuron update's kernels, so the stored copy is read by
nobody, so not carrying them saves one store per neuron per step.

Other rebuilt state (decoded values, spikes, synapse inputs) stays carried: it
feeds matrix products, which do not fuse, and without the store XLA recomputes
the cheap producers inside every consumer (measurements: docs/performance.md).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from nengo.builder.neurons import SimNeurons

from nhw.backends.tensorflow.runtime.signals import view_indices


def _accesses(op) -> list:
    """``(signal, kind)`` of one operator, reads first (an operator reads before it writes).

    ``kind`` is ``"use"`` (read, increment or update: needs the current value) or
    ``"set"``. nengo lists a neuron population's state among ``SimNeurons.sets``
    although the update reads it, so those count as uses.
    """
    carried = set(op.state.values()) if isinstance(op, SimNeurons) else set()
    uses = list(op.reads) + list(op.incs) + list(op.updates) + [s for s in op.sets if s in carried]
    return [(s, "use") for s in uses] + [(s, "set") for s in op.sets if s not in carried]


def set_before_use(operators: Iterable, bases: Iterable) -> list:
    """Those of ``bases`` whose every element each step sets before anything uses it.

    Parameters
    ----------
    operators
        Operators in step order.
    bases
        Candidate base signals.
    """
    done = {base: np.zeros(base.size, dtype=bool) for base in bases}
    ok = dict.fromkeys(done, True)
    for op in operators:
        for sig, kind in _accesses(op):
            base = sig.base
            if base not in done or not ok[base]:
                continue
            idx = view_indices(sig)
            if kind == "set":
                done[base][idx] = True
            elif not done[base][idx].all():
                ok[base] = False
    return [base for base in done if ok[base] and done[base].all()]


def neuron_input_bases(operators: Iterable) -> list:
    """Bases of the neurons' input currents (``SimNeurons.J``) each step sets before use.

    ``SignalLayout(step_local=...)`` then keeps them out of the loop state.
    """
    operators = list(operators)
    candidates = {op.J.base: None for op in operators if isinstance(op, SimNeurons)}
    return set_before_use(operators, candidates)
