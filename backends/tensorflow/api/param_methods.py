"""Simulator methods for trained parameters: read, freeze, save, load (the gradient check: gradient_check.py).

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
