"""Linear synapses stepped together: one operator for many ``SimProcess`` filters.

nengo's optimizer merges most operator types but never ``SimProcess``: a model with
one synapse per connection keeps one filter operator per connection, each with its
own state signal. In the time loop every one of them became its own small ops and
its own loop variables (a chain of 2000 one-dimensional ensembles: about 6000 loop
variables, two minutes of XLA compilation, where the step itself is tiny).

:func:`merge_filters` replaces each set of filters that can run at the same point
of the step (same depth in the operator dependency graph, so none depends on
another) and share a step form (see :func:`filter_form`) with one
:class:`MergedLinearFilters`: per-element coefficients, one state signal, one read
per input base and one write per output base. The arithmetic per element is the
one the single-filter builder does, so results are unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
from nengo.builder.operator import Operator
from nengo.builder.processes import SimProcess
from nengo.builder.signal import Signal
from nengo.synapses import LinearFilter
from nengo.utils.simulator import operator_dependency_graph

from nhw.backends.tensorflow.registry import PROCESSES, native_process_builder
from nhw.backends.tensorflow.runtime.signals import view_indices

#: step forms of a linear filter (nengo's NoX / OneX / NoD / General steppers)
FORMS = ("nox", "onex", "nod", "general")


def filter_form(process: LinearFilter, dt: float, state_shape: tuple) -> tuple:
    """``(form, A, B, C, D)`` of a linear filter discretised as nengo does.

    ``form`` names the stepper nengo itself would pick (one of :data:`FORMS`);
    ``A``, ``B``, ``C``, ``D`` are its state-space matrices (read-only: filters
    with the same parameters share them).
    """
    if type(process)._get_ss is not LinearFilter._get_ss:  # a subclass's own discretisation
        return _filter_form(process, dt, state_shape)
    # nengo's discretisation (a matrix exponential) costs ~0.2 ms; a model has
    # thousands of synapses but few distinct ones
    key = (type(process), process.num.tobytes(), process.den.tobytes(), process.num.shape,
           process.den.shape, process.analog, process.method, float(dt), tuple(state_shape))
    found = _FORMS_SEEN.get(key)
    if found is None:
        if len(_FORMS_SEEN) >= _FORMS_KEPT:
            _FORMS_SEEN.clear()
        found = _FORMS_SEEN[key] = _filter_form(process, dt, state_shape)
    return found


_FORMS_SEEN: dict = {}
_FORMS_KEPT = 4096


def _filter_form(process: LinearFilter, dt: float, state_shape: tuple) -> tuple:
    A, B, C, D = (np.array(m) for m in process._get_ss(dt))  # nengo's own discretisation, for parity
    for m in (A, B, C, D):
        m.setflags(write=False)
    X = np.zeros(state_shape)
    checks = (("nox", LinearFilter.NoX), ("onex", LinearFilter.OneX), ("nod", LinearFilter.NoD))
    form = next((name for name, stepper in checks if stepper.check(A, B, C, D, X)), "general")
    return form, A, B, C, D


def lti_step(form: str, A, B, C, D, X, u, reduce_sum=np.sum) -> tuple:
    """``(y, X_next)``: one step of a state-space filter in nengo's step form ``form``.

    ``A`` ``(order, order, ...)``, ``B`` and ``C`` ``(order, ...)`` and ``D`` broadcast
    against the state ``X`` ``(order, ...)`` and the input ``u``; for ``"onex"``,
    ``B`` holds ``C * B`` (nengo's OneX keeps ``C`` folded in and returns its
    state). ``reduce_sum`` is ``np.sum`` or ``tf.reduce_sum``: the numpy step of
    merged filters and both TensorFlow builders do this same arithmetic.
    """
    if form == "nox":
        return D * u, X
    if form == "onex":
        new = A[0] * X + B * u[None]
        return new[0], new
    new = reduce_sum(A * X[None], axis=1) + B * u[None]
    if form == "nod":
        return reduce_sum(C * new, axis=0), new
    return reduce_sum(C * X, axis=0) + D * u, new


def mergeable(op) -> bool:
    """Whether ``op`` is a native, input-driven linear filter on 1-D signals.

    Signals of other ranks, user subclasses with their own step function and
    processes other than :class:`nengo.LinearFilter` keep their own operator.
    """
    if not isinstance(op, SimProcess) or op.input is None:
        return False
    if not getattr(native_process_builder(op), "mergeable", False):
        return False
    x = op.state.get("X")
    return (
        x is not None and len(op.state) == 1 and op.input.ndim == 1 and op.output.ndim == 1
        and op.input.base.ndim == 1 and op.output.base.ndim == 1 and op.input.size == op.output.size
    )


def _access_plan(signals: Sequence[Signal]) -> tuple:
    """How the concatenation of ``signals`` (1-D views) is read or written, per base.

    Returns ``(plan, declared)``. ``plan`` is ``[(span, positions, indices)]``
    with one entry per base: ``span`` views the range of the base from the first
    to the last element used, ``positions`` says which elements of the
    concatenation live there and ``indices`` where they are inside ``span``.
    ``declared`` are the signals the operator says it accesses: the span where
    the signals fill it without gaps, else the signals themselves (so the
    operator never claims elements other operators write).
    """
    by_base: dict = {}
    pos = 0
    for sig in signals:
        by_base.setdefault(id(sig.base), []).append((sig, np.arange(pos, pos + sig.size), view_indices(sig)))
        pos += sig.size
    plan, declared = [], {}
    for members in by_base.values():
        base = members[0][0].base
        idx = np.concatenate([i for _, _, i in members])
        lo, hi = int(idx.min()), int(idx.max()) + 1
        span = base if (lo, hi) == (0, base.size) else base[lo:hi]
        plan.append((span, np.concatenate([p for _, p, _ in members]), idx - lo))
        gapless = np.unique(idx).size == hi - lo
        for sig in [span] if gapless else [sig for sig, _, _ in members]:
            declared.setdefault(id(sig), sig)
    return plan, list(declared.values())


class MergedLinearFilters(Operator):
    """Several linear-filter ``SimProcess`` operators of one step form, as one.

    Parameters
    ----------
    ops
        The filters (same form, state order and mode; none depends on another).
    dt
        Simulation time step (for the discretisation).

    Notes
    -----
    The operator's signal lists hold the filters' inputs and outputs (one view
    per base where they fill a range without gaps; see :func:`_access_plan`) and
    one new state signal,
    ``(order, total)`` row-major, replacing the filters' own states. The filters
    themselves stay available as :attr:`ops` (their element ranges in
    :attr:`offsets`).
    """

    def __init__(self, ops: Sequence[SimProcess], dt: float) -> None:
        super().__init__(tag=f"{len(ops)} merged linear filters")
        self.ops = list(ops)
        self.mode = ops[0].mode
        forms = [filter_form(op.process, dt, op.state["X"].shape) for op in ops]
        self.form = forms[0][0]
        nx = self.order = forms[0][1].shape[0]
        sizes = [op.output.size for op in ops]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self.offsets[-1])

        def per_element(mats, shape):
            # each filter's matrix repeated over its elements: (*shape, total)
            return np.concatenate([np.broadcast_to(np.asarray(m, dtype=np.float64).reshape(shape + (1,)), shape + (n,))
                                   for m, n in zip(mats, sizes)], axis=-1)

        A, B, C, D = ([f[k] for f in forms] for k in range(1, 5))
        if self.form == "onex":
            # nengo's OneX keeps C folded into B and returns the state itself
            B = [np.asarray(c).item() * np.asarray(b).item() for b, c in zip(B, C)]
        #: per-element state-space coefficients, ``(order, order, total)`` etc.
        self.A = per_element(A, (nx, nx))
        self.B = per_element(B, (nx,))
        self.C = per_element(C, (nx,))
        self.D = per_element([np.sum(d) for d in D], ())  # D is 1 x 1, or empty (0)
        self.state = None
        if nx:
            states = [np.asarray(op.state["X"].initial_value).reshape(nx, -1) for op in ops]
            self.state = Signal(np.concatenate(states, axis=1).reshape(-1),
                                name=f"merged filter state ({len(ops)} filters)")
        #: ``[(declared view, positions, indices)]`` of the inputs and outputs (see _access_plan)
        self.input_plan, inputs = _access_plan([op.input for op in ops])
        self.output_plan, outputs = _access_plan([op.output for op in ops])
        self.reads = [ops[0].t] + inputs
        self.sets, self.incs, self.updates = [], [], []
        {"set": self.sets, "inc": self.incs, "update": self.updates}[self.mode].extend(outputs)
        if self.state is not None:
            self.updates.append(self.state)
        #: what the loop layout should keep in one piece: each base's span, not
        #: each filter's view (``SignalLayout`` reads this instead of ``all_signals``)
        self.layout_signals = [span for span, _, _ in self.input_plan + self.output_plan] + (
            [self.state] if self.state is not None else [])

    @property
    def inputs(self) -> list:
        """Each filter's input signal, in the merged element order."""
        return [op.input for op in self.ops]

    @property
    def outputs(self) -> list:
        """Each filter's output signal, in the merged element order."""
        return [op.output for op in self.ops]

    def replaced_states(self) -> dict:
        """``{filter's own state signal: indices of its elements in self.state}`` (C order)."""
        out = {}
        for op, a, b in zip(self.ops, self.offsets[:-1], self.offsets[1:]):
            rows = np.arange(self.order)[:, None] * self.size
            out[op.state["X"]] = (rows + np.arange(a, b)[None, :]).reshape(-1)
        return out if self.state is not None else {}

    def advance(self, X, u, dtype=None, reduce_sum=np.sum) -> tuple:
        """``(y, X_next)`` from state ``X`` ``(order, total[, batch])`` and input ``u`` ``(total[, batch])``.

        :func:`lti_step` with the per-element coefficients (cast to ``dtype`` when
        given), broadcast over a trailing batch axis if ``u`` has one.
        """
        tail = (Ellipsis,) + (None,) * (len(u.shape) - 1)
        coefs = [(c if dtype is None else c.astype(dtype))[tail] for c in (self.A, self.B, self.C, self.D)]
        return lti_step(self.form, *coefs, X, u, reduce_sum)

    def make_step(self, signals, dt, rng):
        nx = self.order
        state = signals[self.state].reshape(nx, self.size) if self.state is not None else None
        ins = [signals[s] for s in self.inputs]
        outs = [signals[s] for s in self.outputs]
        spans = list(zip(self.offsets[:-1], self.offsets[1:]))
        inc = self.mode == "inc"

        def step_merged_linear_filters():
            u = np.concatenate([np.asarray(x).reshape(-1) for x in ins])
            y, new = self.advance(state, u)
            if state is not None:
                state[...] = new
            for out, (a, b) in zip(outs, spans):
                if inc:
                    out[...] += y[a:b]
                else:
                    out[...] = y[a:b]

        return step_merged_linear_filters


def merge_filters(operators: Sequence, dt: float, dg: dict | None = None) -> list:
    """``operators`` (a valid step order) with mergeable filters combined.

    Filters merge when they have the same form, state order and mode and sit
    at the same depth of the dependency graph (the longest chain of operators
    before them): no path joins two operators of equal depth, so the merged
    operator can run where any of them could. When something merges, the
    result is ordered by depth (a valid step order); otherwise ``operators``
    comes back unchanged. ``dg`` is the operators' dependency graph
    (``{op: ops that depend on it}``, e.g. the one nengo's optimizer returns);
    computed when omitted.
    """
    if not len(PROCESSES):
        # which filters merge is the process builders' answer; asked before they
        # registered, every answer would be "no" and nothing would merge, silently
        raise RuntimeError("merge_filters: no process builders are registered; "
                           "import nhw.backends.tensorflow.builders.process_builders first")
    ops = list(operators)
    candidates = [op for op in ops if mergeable(op)]
    if len(candidates) < 2:
        return ops
    if dg is None:
        dg = operator_dependency_graph(ops)
    depth = {op: 0 for op in ops}
    for op in ops:  # a step order is topological, so depths settle in one sweep
        for child in dg.get(op, ()):
            if child in depth:
                depth[child] = max(depth[child], depth[op] + 1)
    groups: dict = defaultdict(list)
    for op in candidates:
        form, A = filter_form(op.process, dt, op.state["X"].shape)[:2]
        groups[(depth[op], form, A.shape[0], op.mode, np.dtype(op.output.dtype).str)].append(op)
    replace = {}
    for members in groups.values():
        if len(members) > 1:
            # in output memory order: the writes are then slices, not scatters
            # (bases in step order, not by id: the same network builds the same)
            rank: dict = {}
            for op in members:
                rank.setdefault(op.output.base, len(rank))
            members.sort(key=lambda op: (rank[op.output.base], int(view_indices(op.output)[0])))
            merged = MergedLinearFilters(members, dt)
            for op in members:
                replace[op] = merged
    if not replace:
        return ops
    order = {op: i for i, op in enumerate(ops)}
    seen: set = set()
    out = []
    for op in sorted(ops, key=lambda o: (depth[o], order[o])):
        new = replace.get(op, op)
        if id(new) not in seen:
            seen.add(id(new))
            out.append(new)
    return out
