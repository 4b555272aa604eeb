"""``Simulator.check_gradients``: backpropagated gradients against finite differences.

NengoDL's check (the Jacobian of every output probe with respect to every input
Node's data, in training mode), and nhw's parameter form (``wrt="params"``).
"""

from __future__ import annotations

from typing import Any

import nengo
import numpy as np
from nengo.exceptions import SimulationError, ValidationError



class GradientCheckMixin:
    """``check_gradients`` for :class:`~nhw.backends.tensorflow.Simulator`."""

    def check_gradients(
        self,
        inputs: Any = None,
        outputs: Any = None,
        atol: float = 1e-5,
        rtol: float = 1e-3,
        *,
        wrt: str | None = None,
        n_steps: int | None = None,
        n_checks: int | None = None,
        step: float | None = None,
        seed: int = 0,
    ) -> dict:
        """Compare backpropagated gradients with finite differences (NengoDL semantics).

        By default (``wrt="inputs"``), as NengoDL's ``Simulator.check_gradients``:
        the Jacobian of every output probe (all steps, training mode) with respect
        to every input Node's data is computed by backpropagation and by central
        differences, and :class:`nengo.exceptions.SimulationError` is raised where
        ``|analytic - numeric| > atol + rtol * |numeric|`` (plus the rounding noise
        of the difference quotient in the simulation dtype).

        Non-smooth functions (ReLU, LIF and other thresholds) have kinks where a
        difference quotient that straddles the kink is not the derivative on
        either side. Where the forward and backward one-sided quotients disagree
        (so the step crossed a kink), the element is re-checked with an 8 and 64
        times smaller step, and an analytic value that matches either one-sided
        derivative also passes (at an exact kink, e.g. ReLU at 0, backprop
        returns one of them). Where the function is smooth the quotients agree,
        so a wrong gradient still fails.

        Parameters
        ----------
        inputs : list of ndarray or dict, optional
            Data for the input Nodes (in ``sim.input_nodes`` order, or
            ``{node: array}``), each ``(minibatch_size, n_steps, node.size_out)``.
            Default: zeros for ``2 * unroll_simulation`` steps.
        outputs : list of nengo.Probe, optional
            Probes whose gradients are checked (default: all).
        atol : float
            Absolute tolerance.
        rtol : float
            Tolerance relative to the numeric gradient.
        wrt : {"inputs", "params"}, optional
            ``"params"`` (an nhw extension) instead checks the gradient of the sum
            of all probe outputs with respect to ``n_checks`` random elements of
            every trainable parameter, on uniform(-1, 1) inputs for ``n_steps``
            steps. Default ``"inputs"``, or ``"params"`` when ``n_checks`` is given.
        n_steps : int, optional
            Steps of the ``"params"`` check (default 5).
        n_checks : int, optional
            Elements checked per parameter in the ``"params"`` check (default 3).
        step : float, optional
            Finite-difference step (relative to ``max(1, |x|)``). Default: the cube
            root of the dtype's machine epsilon (``4.9e-3`` for float32, ``6e-6``
            for float64), which balances truncation and rounding error.
        seed : int
            Seed of the random inputs and elements of the ``"params"`` check.

        Returns
        -------
        grads : dict
            ``wrt="inputs"``: ``{probe: {"analytic": [...], "numeric": [...]}}``,
            one ``(y_size, x_size)`` Jacobian per input Node (``y_size`` = the
            probe's data size, ``x_size`` = the input's data size).
            ``wrt="params"``: ``{parameter name: max abs error}``.

        Raises
        ------
        nengo.exceptions.SimulationError
            If a gradient is NaN or disagrees, or the simulator was built with
            ``inference_only=True``.

        Notes
        -----
        As in NengoDL, calling this method resets the internal simulation state:
        afterwards ``sim.n_steps`` is 0 and the state is the initial one, as after
        ``reset(include_probes=False, include_trainable=False,
        include_processes=False)`` (recorded probe data and trained parameters
        are kept).
        """
        self._check_open("check_gradients")
        if getattr(self, "inference_only", False):
            raise SimulationError(
                "check_gradients: this Simulator was built with inference_only=True, so it "
                "computes no gradients; build it without inference_only"
            )
        for name, value in (("atol", atol), ("rtol", rtol)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 0:
                raise ValidationError(
                    f"check_gradients: expected {name} to be a non-negative number; received {value!r}", attr=name
                )
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float, np.number))
                                 or not 0 < step < 1):
            raise ValidationError(
                f"check_gradients: expected step to be a number in (0, 1); received {step!r}", attr="step"
            )
        if wrt is None:
            wrt = "params" if n_checks is not None else "inputs"
        if wrt not in ("inputs", "params"):
            raise ValidationError(
                f"check_gradients: expected wrt 'inputs' or 'params'; received {wrt!r}", attr="wrt"
            )
        h = float(np.finfo(self.dtype).eps) ** (1 / 3) if step is None else float(step)
        # as NengoDL: "Calling this method will reset the internal simulation state"
        # (reset(include_probes=False, include_trainable=False, include_processes=False)
        # before the check, whose runs then leave the state as they found it)
        self.reset(include_probes=False, include_trainable=False, include_processes=False)
        try:
            if wrt == "params":
                return self._check_param_gradients(5 if n_steps is None else n_steps,
                                                   3 if n_checks is None else n_checks, h, atol, rtol, seed)
            return self._check_input_gradients(inputs, outputs, h, atol, rtol)
        finally:
            self.reset(include_probes=False, include_trainable=False, include_processes=False)

    def _check_input_gradients(self, inputs, outputs, h: float, atol: float, rtol: float) -> dict:
        from nhw.backends.tensorflow._tf import tf

        nodes = list(self.input_nodes)
        if inputs is None:
            steps = 2 * int(getattr(self, "unroll", 1))
            inputs = [np.zeros((self._batch, steps, n.size_out)) for n in nodes]
        if isinstance(inputs, dict):
            unknown = [k for k in inputs if k not in nodes]
            if unknown or len(inputs) != len(nodes):
                raise ValidationError(
                    f"check_gradients: expected data for every input Node {nodes}; received keys "
                    f"{list(inputs)}", attr="inputs"
                )
            inputs = [inputs[n] for n in nodes]
        inputs = [np.array(x, dtype=self.dtype) for x in inputs]
        if len(inputs) != len(nodes):
            raise ValidationError(
                f"check_gradients: expected {len(nodes)} input arrays (one per input Node {nodes}); "
                f"received {len(inputs)}", attr="inputs"
            )
        steps = inputs[0].shape[1] if inputs and inputs[0].ndim == 3 else None
        for n, x in zip(nodes, inputs):
            want = (self._batch, steps, n.size_out)
            if x.shape != want:
                raise ValidationError(
                    f"check_gradients: data for {n} must have shape (minibatch_size, n_steps, size_out) = "
                    f"{want}; received {x.shape}", attr="inputs"
                )
        if outputs is None:
            outputs = list(self._probes)
        elif isinstance(outputs, nengo.Probe):
            outputs = [outputs]
        for p in outputs:
            if p not in self._probe_names:
                raise ValidationError(
                    f"check_gradients: expected outputs to be Probes of this network; received {p!r}",
                    attr="outputs",
                )
        if not nodes:
            return {p: {"analytic": [], "numeric": []} for p in outputs}
        names = [self._input_names[n] for n in nodes]
        model = self.keras_model
        saved, model.output_probes = model.output_probes, None

        def run(xs) -> dict:
            out = model(dict(zip(names, xs)), training=True)
            return {p: np.asarray(out[self._probe_names[p]], dtype=np.float64).ravel() for p in outputs}

        grads: dict = {}
        try:
            xs = [tf.constant(x) for x in inputs]
            analytic: dict = {}
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(xs)
                out = model(dict(zip(names, xs)), training=True)
                flat = {p: tf.reshape(out[self._probe_names[p]], (-1,)) for p in outputs}
            for p in outputs:
                jac = tape.jacobian(flat[p], xs, experimental_use_pfor=False)
                analytic[p] = [
                    np.zeros((int(flat[p].shape[0]), x.size)) if j is None
                    else np.asarray(j, dtype=np.float64).reshape(int(flat[p].shape[0]), x.size)
                    for j, x in zip(jac, inputs)
                ]
            del tape
            f0 = run(xs)
            numeric = {p: [np.zeros_like(a) for a in analytic[p]] for p in outputs}
            failures = []
            for k, x in enumerate(inputs):
                base = x.ravel()
                for i in range(base.size):
                    def f(delta, i=i, k=k):
                        pert = base.copy()
                        pert[i] += delta
                        ys = list(xs)
                        ys[k] = tf.constant(pert.reshape(x.shape))
                        return run(ys)

                    scale = h * max(1.0, abs(float(base[i])))
                    res = _difference_check(f, f0, {p: analytic[p][k][:, i] for p in outputs}, scale, atol, rtol,
                                            float(np.finfo(self.dtype).eps))
                    for p, (num, bad) in res.items():
                        numeric[p][k][:, i] = num
                        for r in np.nonzero(bad)[0]:
                            failures.append(
                                f"{p}: output element {r} wrt input {nodes[k]} element {i}: "
                                f"backprop {analytic[p][k][r, i]:.6g}, finite difference {num[r]:.6g}"
                            )
            for p in outputs:
                grads[p] = {"analytic": analytic[p], "numeric": numeric[p]}
        finally:
            model.output_probes = saved
        if any(np.isnan(a).any() for g in grads.values() for a in g["analytic"] + g["numeric"]):
            raise SimulationError("check_gradients: NaNs detected in gradient")
        if failures:
            raise SimulationError(
                f"check_gradients: gradient check failed ({len(failures)} elements):\n  "
                + "\n  ".join(failures[:20])
            )
        return grads

    def _check_param_gradients(self, n_steps: int, n_checks: int, h: float, atol: float, rtol: float,
                               seed: int) -> dict:
        from nhw.backends.tensorflow._tf import tf

        rng = np.random.RandomState(seed)
        x = {self._input_names[n]: rng.uniform(-1, 1, (self._batch, n_steps, n.size_out)).astype(self.dtype)
             for n in self.input_nodes}
        if not x:
            x = {"n_steps": np.zeros((self._batch, n_steps, 0), dtype=self.dtype)}
        model = self.keras_model
        saved, model.output_probes = model.output_probes, None
        eps = float(np.finfo(self.dtype).eps)

        def loss():
            out = model(x, training=True)
            return tf.add_n([tf.reduce_sum(tf.cast(v, tf.float64)) for v in out.values()])

        try:
            with tf.GradientTape() as tape:
                value = loss()
            grads = tape.gradient(value, model.trainable_variables)
            f0 = {"loss": np.array([float(value)])}
            errors, failures = {}, []
            # checked per parameter (a group variable holds several): name -> (start, size)
            parts: dict = {}
            for p in self._params:
                parts.setdefault(id(p.variable.group.variable), []).append(
                    (p.name, p.variable.offset, p.variable.size))
            for var, g in zip(model.trainable_variables, grads):
                g = np.zeros(var.shape) if g is None else np.asarray(tf.convert_to_tensor(g)).reshape(var.shape)
                flat0 = var.numpy().copy()
                for name, start, size in parts.get(id(var), [(var.path, 0, flat0.size)]):
                    worst = 0.0
                    for i in start + rng.choice(size, size=min(n_checks, size), replace=False):
                        idx = np.unravel_index(i, flat0.shape)

                        def f(delta, idx=idx):
                            pert = flat0.copy()
                            pert[idx] += delta
                            var.assign(pert)
                            try:
                                return {"loss": np.array([float(loss())])}
                            finally:
                                var.assign(flat0)

                        scale = h * max(1.0, abs(float(flat0[idx])))
                        (num, bad), = _difference_check(f, f0, {"loss": np.array([g[idx]])}, scale, atol, rtol,
                                                        eps).values()
                        worst = max(worst, abs(float(num[0]) - float(g[idx])))
                        if bad[0]:
                            failures.append(f"{name}[{i - start}]: backprop {g[idx]:.6g}, finite difference "
                                            f"{float(num[0]):.6g}")
                    errors[name] = worst
        finally:
            model.output_probes = saved
        if failures:
            raise SimulationError("check_gradients: gradients disagree:\n  " + "\n  ".join(failures))
        return errors


def _difference_check(f, f0: dict, analytic: dict, h: float, atol: float, rtol: float, eps: float) -> dict:
    """Finite-difference estimates of one input direction and where they refute ``analytic``.

    ``f(delta)`` returns ``{key: flat float64 outputs}`` with the input moved by
    ``delta``; ``f0`` is ``f(0)``. Returns ``{key: (numeric, bad)}``: the central
    difference at step ``h`` and a mask of outputs whose analytic derivative
    matches no estimate. The tolerance adds the rounding noise of the quotients
    (``8 * eps * |f| / h``: the simulation's own rounding, not the gradient's
    error). Where the forward and backward quotients disagree the step
    straddles a kink, so the outputs are retried with 8 and 64 times smaller
    steps and may also match either one-sided quotient.
    """
    out: dict = {}
    pending = {k: np.ones(v.shape, dtype=bool) for k, v in analytic.items()}
    for level, step in enumerate((h, h / 8, h / 64)):
        fp, fm = f(step), f(-step)
        for k, a in analytic.items():
            mag = np.maximum(np.maximum(np.abs(fp[k]), np.abs(fm[k])), np.abs(f0[k]))
            noise = 8 * eps * mag / step
            central = (fp[k] - fm[k]) / (2 * step)
            fwd = (fp[k] - f0[k]) / step
            bwd = (f0[k] - fm[k]) / step
            tol = atol + rtol * np.abs(central) + noise
            ok = np.abs(a - central) <= tol
            kink = np.abs(fwd - bwd) > 2 * (atol + rtol * np.abs(central)) + 4 * noise
            one_sided = (np.abs(a - fwd) <= atol + rtol * np.abs(fwd) + noise) | (
                np.abs(a - bwd) <= atol + rtol * np.abs(bwd) + noise)
            ok |= kink & one_sided
            if level == 0:
                out[k] = [central, np.zeros(a.shape, dtype=bool)]
            still = pending[k] & ~ok
            # report the estimate that agreed, else the first central difference
            out[k][0] = np.where(pending[k] & ok, central, out[k][0])
            # only a kink justifies a smaller step: smooth disagreements are final
            out[k][1] |= still & ~kink
            pending[k] = still & kink
        if not any(v.any() for v in pending.values()):
            break
    for k in out:
        out[k][1] |= pending[k]
    return {k: (v[0], v[1]) for k, v in out.items()}
