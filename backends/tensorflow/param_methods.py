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

import numpy as np
import nengo
from nengo.exceptions import SimulationError, ValidationError

from ..atomic import write_bytes
from .freeze import apply_params, connection_params, ensemble_params

FORMAT = "nhw-params/1"
_MANIFEST = "__manifest__"


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


class ParamsMixin:
    """get_nengo_params / freeze_params / save_params / load_params / check_gradients."""

    # --- values ---------------------------------------------------------------
    def _named_values(self) -> dict:
        """``{name: variable}`` for every saved value (nengo params, layer weights)."""
        from .tensor_node import TensorNode, is_keras_layer

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

    def _objects(self, objs: Any) -> list:
        if isinstance(objs, nengo.Network):
            return list(objs.all_ensembles) + list(objs.all_connections)
        if isinstance(objs, (nengo.Ensemble, nengo.Connection)):
            return [objs]
        out = list(objs)
        for o in out:
            if not isinstance(o, (nengo.Ensemble, nengo.Connection)):
                raise ValidationError(
                    f"expected Ensembles and Connections; got {o!r} ({type(o).__name__})", attr="objs"
                )
        return out

    def get_nengo_params(self, objs: Iterable | Any) -> Any:
        """Constructor arguments reproducing the current (trained) values.

        Parameters
        ----------
        objs
            An Ensemble or Connection, or a list of them.

        Returns
        -------
        dict or list of dict
            For an ensemble ``encoders``, ``gain``, ``bias``,
            ``normalize_encoders``; for a connection ``solver``/``function``/
            ``transform`` (decoded) or ``transform``. A single object gives a dict.
        """
        single = isinstance(objs, (nengo.Ensemble, nengo.Connection))
        out = [self._nengo_params(o) for o in self._objects(objs)]
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
        """
        self._check_open("freeze_params")
        todo = {}
        for o in self._objects(objs):
            params = self._nengo_params(o)
            if params:
                todo[o] = params
        apply_params(todo)

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
    def save_params(self, path: str | os.PathLike) -> Path:
        """Save every trainable value to ``path`` (``.npz``), atomically.

        Raises if any value is NaN/Inf (a diverged run never overwrites a good file).
        """
        self._check_open("save_params")
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        arrays = {name: np.asarray(v.numpy()) for name, v in self._named_values().items()}
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

    def load_params(self, path: str | os.PathLike) -> None:
        """Load values saved by :meth:`save_params`, matched by name.

        Every name, shape and checksum is verified before any value is
        assigned; on any mismatch nothing changes.
        """
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

    # --- gradients -------------------------------------------------------------
    def check_gradients(self, n_steps: int = 5, eps: float = 1e-4, rtol: float = 1e-2, atol: float = 1e-4,
                        n_checks: int = 3, seed: int = 0) -> dict:
        """Compare backprop gradients with central finite differences.

        The loss is the sum of all probe outputs over a ``n_steps`` training-mode
        run with random inputs; ``n_checks`` random elements of every trainable
        parameter (and Keras layer weight) are perturbed by ``eps``. Returns
        ``{parameter name: max abs error}`` and raises :class:`SimulationError` where an error exceeds
        ``atol + rtol * |gradient|``. Use ``dtype="float64"`` for tight checks.
        """
        from ._tf import tf

        self._check_open("check_gradients")
        rng = np.random.RandomState(seed)
        x = {self._input_names[n]: rng.uniform(-1, 1, (self._batch, n_steps, n.size_out)).astype(self.dtype)
             for n in self.input_nodes}
        if not x:
            x = {"n_steps": np.zeros((self._batch, n_steps, 0), dtype=self.dtype)}
        model = self.keras_model
        saved, model.output_probes = model.output_probes, None

        def loss():
            out = model(x, training=True)
            return tf.add_n([tf.reduce_sum(tf.cast(v, tf.float64)) for v in out.values()])

        try:
            with tf.GradientTape() as tape:
                value = loss()
            grads = tape.gradient(value, model.trainable_variables)
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
                        vals = []
                        for sign in (1, -1):
                            pert = flat0.copy()
                            pert[idx] += sign * eps
                            var.assign(pert)
                            vals.append(float(loss()))
                        var.assign(flat0)
                        fd = (vals[0] - vals[1]) / (2 * eps)
                        err = abs(fd - g[idx])
                        worst = max(worst, err)
                        if err > atol + rtol * abs(g[idx]):
                            failures.append(f"{name}[{i - start}]: backprop {g[idx]:.6g}, finite difference {fd:.6g}")
                    errors[name] = worst
        finally:
            model.output_probes = saved
        if failures:
            raise SimulationError("check_gradients: gradients disagree:\n  " + "\n  ".join(failures))
        return errors
