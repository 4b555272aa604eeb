"""Simulator methods for trained parameters: read, freeze, save, load, check.

Saved parameter files are ``.npz`` archives keyed by parameter name (object
names from :func:`.params.object_names`, Keras paths for TensorNode layers),
with a JSON manifest inside (format version, shapes, SHA-256 of every array),
written atomically and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

import warnings

import numpy as np
import nengo
from nengo.base import ObjView
from nengo.ensemble import Neurons
from nengo.exceptions import SimulationError, ValidationError

from nhw.backends.atomic import write_bytes
from nhw.errors import ObjectTypeError
from nhw.backends.tensorflow.api.freeze import apply_params, connection_params, ensemble_params

FORMAT = "nhw-params/1"
_MANIFEST = "__manifest__"
#: prefix of the simulation-state entries written by ``save_params(include_state=True)``
_STATE = "state:"


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _single(objs: Any) -> bool:
    """Whether ``objs`` is one object rather than a collection of them.

    Nengo objects (and ``ens.neurons``, slices) define ``__getitem__``, so they
    iterate by accident; they, strings and non-iterables are single objects.
    """
    single_types = (nengo.base.NengoObject, nengo.Network, Neurons, ObjView, str, bytes)
    return isinstance(objs, single_types) or not isinstance(objs, Iterable)


def _state_flag(include_state: bool, include_non_trainable: bool | None, what: str) -> bool:
    """``include_state``, or NengoDL's deprecated ``include_non_trainable`` (with a warning)."""
    if include_non_trainable is None:
        return bool(include_state)
    warnings.warn(
        f"{what}: include_non_trainable is deprecated (as in NengoDL 3.2); use include_state instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return bool(include_non_trainable)


class ParamsMixin:
    """get_nengo_params / freeze_params / save_params / load_params / check_gradients."""

    # --- values ---------------------------------------------------------------
    def _named_values(self) -> dict:
        """``{name: variable}`` for every saved value (nengo params, layer weights)."""
        from nhw.backends.tensorflow.api.tensor_node import TensorNode, is_keras_layer

        out = {p.name: p.variable for p in self._params}
        seen = {id(v) for v in out.values()} | {id(v) for v in self.keras_model.param_vars}
        # TensorNode layers by their node's name and the weight's position: Keras'
        # own names carry a process-wide counter (dense, dense_1, ...), so they
        # differ between a network and the same network rebuilt
        for node, name in self._object_names.items():
            if isinstance(node, TensorNode) and is_keras_layer(node.tensor_func):
                for i, v in enumerate(node.tensor_func.weights):
                    if id(v) not in seen:
                        out[f"{name}/{i}"] = v
                        seen.add(id(v))
        for v in self.keras_model.weights:
            if id(v) not in seen:
                out[f"layer:{v.path}"] = v
        return out

    def _objects(self, objs: Any, what: str = "get_nengo_params") -> list:
        """The Ensembles and Connections ``objs`` names (a Network: all of its own).

        ``ens.neurons`` stands for its ensemble, as in NengoDL.
        """
        if isinstance(objs, nengo.Network):
            return list(objs.all_ensembles) + list(objs.all_connections)
        out = [objs] if _single(objs) else list(objs)
        out = [o.ensemble if isinstance(o, Neurons) else o for o in out]
        for o in out:
            if not isinstance(o, (nengo.Ensemble, nengo.Connection)):
                raise ValidationError(
                    f"{what}: expected Ensembles, Connections or ens.neurons; received "
                    f"{o!r} ({type(o).__name__})", attr="objs"
                )
        return out

    def get_nengo_params(self, objs: Iterable | Any, as_dict: bool = False) -> Any:
        """Constructor arguments reproducing the current (trained) values.

        Parameters
        ----------
        objs
            An Ensemble or Connection (``ens.neurons`` stands for its
            ensemble, as in NengoDL), or a list of them.
        as_dict
            Return ``{object label: params}`` instead of a list (NengoDL's
            option); every object then needs a label, unique among ``objs``.

        Returns
        -------
        dict or list of dict
            For an ensemble ``encoders``, ``gain``, ``bias``,
            ``normalize_encoders``; for a connection ``solver``/``function``/
            ``transform`` (decoded) or ``transform``. A single object gives a
            dict (with ``as_dict``: a one-entry dict keyed by its label).

        Raises
        ------
        nengo.exceptions.ValidationError
            (a ValueError, as NengoDL raises) for an object that is not an
            Ensemble or Connection of this network, or for an ensemble of
            ``nengo.Direct`` neurons (nengo ignores the encoders of those).
        """
        single = _single(objs)
        objs = self._objects(objs)
        for o in objs:
            if isinstance(o, nengo.Ensemble) and isinstance(o.neuron_type, nengo.Direct):
                raise ValidationError(
                    f"get_nengo_params: {o} has nengo.Direct neurons, whose parameters nengo's "
                    "builder ignores; expected an ensemble of spiking or rate neurons (read a "
                    "Direct ensemble's values from sim.data instead)", attr="objs"
                )
        out = [self._nengo_params(o) for o in objs]
        if as_dict:
            labels = [o.label for o in objs]
            unlabelled = [o for o in objs if o.label is None]
            if unlabelled:
                raise ValidationError(
                    f"get_nengo_params(as_dict=True): {unlabelled[0]} has no label; expected every "
                    "object to have a label (the dict keys)",
                    attr="as_dict",
                )
            dup = sorted({lab for lab in labels if labels.count(lab) > 1})
            if dup:
                raise ValidationError(
                    f"get_nengo_params(as_dict=True): label(s) {dup} name several of the objects; "
                    "expected unique labels (the dict keys)",
                    attr="as_dict",
                )
            return dict(zip(labels, out))
        return out[0] if single else out

    def _nengo_params(self, obj) -> dict:
        if obj not in self.model.params:
            raise ValidationError(f"get_nengo_params: {obj} is not part of this Simulator's network", attr="objs")
        built = self.data[obj]  # current (trained) values
        if isinstance(obj, nengo.Ensemble):
            if isinstance(obj.neuron_type, nengo.Direct):
                return {}
            return ensemble_params(obj, self.model.params[obj], built.scaled_encoders, built.bias)
        if built.weights is None:
            return {}
        trained = self._params_of.get(obj, [])
        weights = trained[0].variable.numpy() if trained else built.weights
        if hasattr(weights, "data") and not isinstance(weights, np.ndarray):
            weights = weights.data  # untrained sparse: its nonzero values
        return connection_params(obj, weights)

    def freeze_params(self, objs: Any) -> None:
        """Write the current values into the nengo objects (see :mod:`.freeze`).

        Freezing a Network also freezes untrained decoded connections, since
        nengo would otherwise re-solve them for the new ensemble parameters.

        Parameters
        ----------
        objs
            A Network, Ensemble or Connection of this Simulator's network, or a
            list of them.

        Raises
        ------
        nhw.errors.ObjectTypeError
            (a TypeError, as NengoDL raises) for another kind of object of the
            network, e.g. a Node or Probe, which have no parameters to store.
        nengo.exceptions.ValidationError
            For an object that is not part of this Simulator's network.
        """
        self._check_open("freeze_params")
        self._check_freezable(objs)
        todo = {}
        for o in self._objects(objs, "freeze_params"):
            params = self._nengo_params(o)
            if params:
                todo[o] = params
        apply_params(todo)

    def _check_freezable(self, objs: Any) -> None:
        """Raise NengoDL's error types for what ``freeze_params`` cannot store."""
        net = self.model.toplevel
        members = None if net is None else {id(o) for o in [net, *net.all_objects]}
        for o in [objs] if _single(objs) else list(objs):
            member = members is None or id(o) in members
            if member and not isinstance(o, (nengo.Network, nengo.Ensemble, nengo.Connection)):
                raise ObjectTypeError(
                    f"freeze_params: {o} is a {type(o).__name__}, which has no parameters to "
                    "store; expected a Network, Ensemble or Connection"
                )
            if not member:
                hint = f" (for its ensemble's parameters pass {o}.ensemble)" if isinstance(o, Neurons) else ""
                raise ValidationError(
                    f"freeze_params: {o!r} ({type(o).__name__}) is not a member of the network used "
                    f"to build this Simulator; expected its Network, Ensembles or Connections{hint}",
                    attr="objs",
                )

    def frozen_arrays(self, objs: Any = None) -> dict:
        """Trained values as ``{"<object name>/<attr>": array}`` for :func:`.freeze.apply_frozen`.

        Ensembles give ``encoders`` (unscaled, for ``normalize_encoders=False``),
        ``gain`` and ``bias``; connections with weights give ``weights`` (the raw
        built weights: decoders times transform, or the transform). Applying them
        to a network rebuilt by the same code needs no TensorFlow, which is how
        trained artifacts deploy on every target.
        """
        self._check_open("frozen_arrays")
        objs = self._objects(self.model.toplevel if objs is None else objs)
        out: dict = {}
        for o in objs:
            name = self._object_names.get(o)
            if name is None:
                continue
            if isinstance(o, nengo.Ensemble):
                if isinstance(o.neuron_type, nengo.Direct):
                    continue
                p = self._nengo_params(o)
                for k in ("encoders", "gain", "bias"):
                    out[f"{name}/{k}"] = np.asarray(p[k])
                continue
            built = self.data[o]
            if built.weights is None:
                continue
            trained = self._params_of.get(o, [])
            w = trained[0].variable.numpy() if trained else built.weights
            if hasattr(w, "data") and not isinstance(w, np.ndarray):
                w = w.data
            out[f"{name}/weights"] = np.asarray(w, dtype=np.float64)
        return out

    # --- files ---------------------------------------------------------------
    def _state_arrays(self) -> dict:
        """``{"state:<i>": array}``: the simulation state that carries between steps."""
        return {f"{_STATE}{i}": np.asarray(v) for i, v in enumerate(self._loop.state_values(self._tensors))}

    def save_params(self, path: str | os.PathLike, include_state: bool = False,
                    include_non_trainable: bool | None = None) -> Path:
        """Save every trainable value to ``path`` (``.npz``), atomically.

        Raises if any value is NaN/Inf (a diverged run never overwrites a good file).

        Parameters
        ----------
        path : str or os.PathLike
            The file; ``.npz`` is appended unless it ends so.
        include_state : bool
            Also save the simulation state (neuron voltages, synapse and
            learning-rule state: what carries from one step to the next), as
            NengoDL does. The simulation time is not saved.
        include_non_trainable : bool, optional
            NengoDL's deprecated name of ``include_state`` (warns).

        Returns
        -------
        pathlib.Path
            The file written.
        """
        include_state = _state_flag(include_state, include_non_trainable, "save_params")
        self._check_open("save_params")
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        arrays = {name: np.asarray(v.numpy()) for name, v in self._named_values().items()}
        if include_state:
            arrays.update(self._state_arrays())
        bad = [n for n, a in arrays.items() if not np.all(np.isfinite(a))]
        if bad:
            raise SimulationError(f"save_params: parameter(s) {bad[:5]} contain NaN/Inf; not saving to {path}")
        manifest = {
            "format": FORMAT,
            "params": {n: {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": _sha(a)} for n, a in arrays.items()},
        }
        arrays[_MANIFEST] = np.array(json.dumps(manifest, sort_keys=True))
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_bytes(path, buf.getvalue())
        return path

    def load_params(self, path: str | os.PathLike, include_state: bool = False,
                    include_non_trainable: bool | None = None) -> None:
        """Load values saved by :meth:`save_params`, matched by name.

        Every name, shape and checksum is verified before any value is
        assigned; on any mismatch nothing changes.

        Parameters
        ----------
        path : str or os.PathLike
            The file (``.npz`` may be left off).
        include_state : bool
            Also load the simulation state, which the file must hold
            (``save_params(include_state=True)``), as NengoDL does. Without it a
            saved state is left unused.
        include_non_trainable : bool, optional
            NengoDL's deprecated name of ``include_state`` (warns).
        """
        include_state = _state_flag(include_state, include_non_trainable, "load_params")
        self._check_open("load_params")
        path = Path(path)
        if not path.exists() and path.with_suffix(path.suffix + ".npz").exists():
            path = path.with_suffix(path.suffix + ".npz")
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ValidationError(f"load_params: {path} is not a parameter file ({e})", attr="path") from None
        if _MANIFEST not in arrays:
            raise ValidationError(f"load_params: {path} has no manifest (not written by save_params)", attr="path")
        manifest = json.loads(str(arrays.pop(_MANIFEST)))
        if manifest.get("format") != FORMAT:
            raise ValidationError(
                f"load_params: {path} has format {manifest.get('format')!r}; expected {FORMAT!r}", attr="path"
            )
        saved_state = {k: arrays.pop(k) for k in [k for k in arrays if k.startswith(_STATE)]}
        for name, a in saved_state.items():
            if manifest["params"].get(name, {}).get("sha256") != _sha(a):
                raise ValidationError(
                    f"load_params: {path}: checksum mismatch for {name!r} (file corrupted)", attr="path"
                )
        state = self._state_arrays() if include_state else {}
        if include_state:
            if not saved_state:
                raise ValidationError(
                    f"load_params(include_state=True): {path} holds no simulation state; expected a "
                    "file written by save_params(path, include_state=True)", attr="include_state"
                )
            if set(saved_state) != set(state) or any(saved_state[k].shape != state[k].shape for k in state):
                raise ValidationError(
                    f"load_params(include_state=True): the state in {path} does not match this "
                    f"Simulator's ({len(saved_state)} saved arrays, {len(state)} expected, or their "
                    "shapes differ: same network and minibatch_size expected)", attr="include_state"
                )
        targets = self._named_values()
        missing = sorted(set(targets) - set(arrays))
        extra = sorted(set(arrays) - set(targets))
        if missing or extra:
            raise ValidationError(
                f"load_params: {path} does not match this network: missing {missing[:5]}"
                f"{'...' if len(missing) > 5 else ''}, unknown {extra[:5]}{'...' if len(extra) > 5 else ''}",
                attr="path",
            )
        for name, a in arrays.items():
            info = manifest["params"].get(name, {})
            if info.get("sha256") != _sha(a):
                raise ValidationError(f"load_params: {path}: checksum mismatch for {name!r} (file corrupted)", attr="path")
            want = tuple(targets[name].shape)
            if tuple(a.shape) != want:
                raise ValidationError(
                    f"load_params: {path}: {name!r} has shape {tuple(a.shape)}; this network expects {want}",
                    attr="path",
                )
        for name, a in arrays.items():
            targets[name].assign(a.astype(targets[name].dtype))
        if include_state:
            self._tensors = self._loop.state_from_values(
                [saved_state[k].astype(state[k].dtype) for k in sorted(state, key=lambda k: int(k[len(_STATE):]))]
            )
            if self._data is not None:
                self._data.reset()

    # --- gradients -------------------------------------------------------------
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
