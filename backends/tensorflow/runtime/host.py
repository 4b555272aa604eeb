"""Host side of the simulation: input-free Nodes and Processes, and Node feeds.

Anything whose output does not depend on the simulation (Nodes without input,
constant Nodes, input-free Processes such as WhiteSignal or WhiteNoise) is
computed here for a whole chunk of steps before the compiled loop runs, with
nengo's own step functions on a numpy :class:`~nengo.builder.signal.SignalDict`
and the same ``RandomState`` stream the reference simulator uses (the same
operator order, the same draws), so these inputs match ``nengo.Simulator``
exactly. The loop reads them as a ``(n_steps, n_columns, batch)`` array.

With a minibatch, each batch element of an input-free Process (WhiteSignal,
WhiteNoise, ...) gets its own step function and random stream, drawn one after
the other from the simulator's stream, as NengoDL does: a batched run is that
many different simulations, not one simulation repeated. Element 0 draws first,
so a minibatch of one matches ``nengo.Simulator``. Processes whose output is a function
of time alone (fixed-value ``Piecewise``, ``PresentInput``) run once per step for the
whole minibatch; the seeds the other elements would have drawn are still drawn, so
later Processes see the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from nengo.builder.neurons import SimNeurons
from nengo.builder.processes import SimProcess
from nengo.builder.signal import SignalDict
from nengo.processes import Piecewise, PresentInput

from nhw.backends.tensorflow.registry import runs_on_host_neurons


@dataclass(eq=False)
class Feed:
    """One host-written signal: its columns in the per-step input and its source.

    ``op`` is the nengo operator whose numpy step function produces the value,
    or None for a constant Node (the value is then the signal's initial value).
    ``node`` is the Node the feed belongs to, when user data may replace it.
    """

    signal: Any
    op: Any
    mode: str
    cols: tuple
    node: Any = None

    @property
    def key(self):
        return self.op if self.op is not None else self.signal

    @property
    def size(self) -> int:
        return self.cols[1] - self.cols[0]


class HostPlan:
    """Numpy signals, host step functions and the per-chunk input generator.

    Parameters
    ----------
    model : nengo.builder.Model
        The built (and optimized) model.
    step_order : list
        Operators in nengo's step order.
    host_ops : list
        Operators whose step functions run here (precomputed or called back).
    feeds : list of Feed
        Signals written from the host each step.
    dtype : numpy dtype
        Simulation dtype of the produced inputs.
    batch : int
        Minibatch size: input-free Processes get one step function per element.
    """

    def __init__(self, model, step_order: list, host_ops: list, feeds: list, dtype,
                 batch: int = 1) -> None:
        self.model = model
        self.dt = model.dt
        self.step_order = step_order
        # neuron populations without a TensorFlow step run nengo's numpy step,
        # called back from the loop (HostNeuronsBuilder), so they need one too
        self.host_ops = set(host_ops) | {op for op in step_order if runs_on_host_neurons(op)}
        self.feeds = feeds
        self.dtype = np.dtype(dtype)
        self.n_cols = sum(f.size for f in feeds)
        self.signals = SignalDict()
        for op in model.operators:
            op.init_signals(self.signals)
        self.batch = int(batch)
        self.steps: dict = {}
        #: op -> [(step, output array)] for batch elements 1.. of input-free Processes
        self.batch_steps: dict = {}
        self._calls_cache: dict = {}
        self._op_feeds = [f for f in feeds if f.op is not None]
        self._const_row = np.zeros(self.n_cols, dtype=self.dtype)
        for f in feeds:
            if f.op is None:
                a, b = f.cols
                self._const_row[a:b] = np.asarray(f.signal.initial_value).reshape(-1)

    def reset(self, seed: int) -> None:
        """Rebuild step functions exactly as ``nengo.Simulator.reset`` does.

        Only host-run operators need a real step function; other SimProcess
        operators still draw their seed from the stream so later draws line up.
        """
        for key in list(self.signals):
            self.signals.reset(key)
        rng = np.random.RandomState(seed)
        self.steps.clear()
        self.batch_steps.clear()
        self._calls_cache.clear()
        for op in self.step_order:
            if op in self.host_ops:
                self.steps[op] = op.make_step(self.signals, self.dt, rng)
                if self.batch > 1 and _per_element(op):
                    if _same_for_every_element(op):
                        for _ in range(1, self.batch):
                            op.process.get_rng(rng)  # the draw each element's step would take
                    else:
                        self.batch_steps[op] = [self._element_step(op, rng) for _ in range(1, self.batch)]
            elif isinstance(op, SimProcess):
                op.process.get_rng(rng)

    def _element_step(self, op, rng):
        """A step function of ``op`` for one more batch element: own output and state."""
        own = {sig: np.array(self.signals[sig], copy=True)
               for sig in (op.output, *op.state.values())}
        own[op.t] = self.signals[op.t]  # the shared clock
        return op.make_step(own, self.dt, rng), own[op.output]

    def inputs(self, n: int, step0: int, batch: int, data: dict | None = None) -> np.ndarray:
        """Per-step host input for steps ``step0 + 1 .. step0 + n``.

        Parameters
        ----------
        n
            Number of steps.
        step0
            Steps simulated before this chunk.
        batch
            Minibatch size.
        data
            Optional user data ``{feed: array (batch, n, size)}`` replacing a feed.
        """
        data = data or {}
        out = np.empty((n, self.n_cols, batch), dtype=self.dtype)
        out[...] = self._const_row[None, :, None]
        live = [f for f in self._op_feeds if f not in data] if data else self._op_feeds
        # ops without a Node feed (e.g. side-effect Nodes) still run each step
        if live or self._calls(live):
            self._run_host(out, n, step0, live)
        for f, arr in data.items():
            a, b = f.cols
            out[:, a:b, :] = np.moveaxis(np.asarray(arr, dtype=self.dtype).reshape(batch, n, -1), 0, -1)
        return out

    def _calls(self, live: list) -> list:
        """``[(step functions, feed or None)]`` run each step when ``live`` feeds are not user data.

        Cached per set of live feeds until :meth:`reset` makes new step functions:
        ``sim.step()`` would otherwise rebuild this list for every step.
        """
        key = tuple(live)
        calls = self._calls_cache.get(key)
        if calls is not None:
            return calls
        sig = self.signals
        feed_of = {f.op: f for f in live}
        replaced = {f.op for f in self._op_feeds} - set(feed_of)
        calls = []
        for op in self.step_order:
            if op in self.steps and _input_free(op) and op not in replaced:
                f = feed_of.get(op)
                arr = sig[f.signal] if f is not None and f.signal is not None else None
                fns = [(self.steps[op], arr)] + self.batch_steps.get(op, [])
                calls.append((fns, f if arr is not None else None))
        self._calls_cache[key] = calls
        return calls

    def _run_host(self, out: np.ndarray, n: int, step0: int, live: list) -> None:
        sig = self.signals
        model = self.model
        calls = self._calls(live)
        t_arr = sig[model.time] if model.time in sig else None
        s_arr = sig[model.step] if model.step in sig else None
        for k in range(n):
            step = step0 + k + 1
            if s_arr is not None:
                s_arr[...] = step
            if t_arr is not None:
                # exact time, as the reference simulator: processes such as
                # PresentInput index their data by it
                t_arr[...] = step * self.dt
            for fns, f in calls:
                for j, (fn, arr) in enumerate(fns):
                    if f is not None and f.mode == "inc":
                        arr[...] = 0
                    fn()
                    if f is None:
                        continue
                    a, b = f.cols
                    if len(fns) == 1:  # one stream: every batch element sees it
                        out[k, a:b, :] = np.asarray(arr).reshape(-1, 1)
                    else:
                        out[k, a:b, j] = np.asarray(arr).reshape(-1)


def _per_element(op) -> bool:
    """Whether ``op`` is an input-free Process whose output is its own signal."""
    return isinstance(op, SimProcess) and op.input is None and op.output is not None


def _same_for_every_element(op) -> bool:
    """Whether an input-free Process's output is a function of time alone.

    Such a Process (zero-order or interpolated ``Piecewise`` with fixed values,
    ``PresentInput``) uses no random draws and no user code, so every batch element
    would compute the same values: one step function serves them all (the loop
    broadcasts it), instead of ``batch`` Python calls per step.
    """
    proc = op.process
    if type(proc) is PresentInput:
        return True
    if type(proc) is Piecewise:
        return not any(callable(v) for v in proc.data.values())
    return False


def _input_free(op) -> bool:
    if isinstance(op, SimNeurons):
        return False  # reads its input current J: called back from the loop
    x = getattr(op, "x", None) if not isinstance(op, SimProcess) else op.input
    return x is None
