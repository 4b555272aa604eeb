"""Writing trained values back into nengo objects (``freeze_params``).

After ``freeze_params`` every backend (``nengo.Simulator``, opencl, loihi-emu,
a fresh TF Simulator) builds the trained network:

* Ensembles keep their gains (connections into ``ens.neurons`` apply them
  separately) and get ``encoders = trained scaled encoders * radius / gain``
  with ``normalize_encoders=False`` and the trained ``bias``.
* Decoded connections get ``solver=NoSolver(W.T)`` (``weights=True`` when the
  solver solved for full weights), an identity transform and a function of
  the right output size (NoSolver ignores its targets).
* Connections from Nodes or Neurons get their transform's ``init`` replaced
  (Dense, Sparse, Convolution or ConvolutionTranspose).

No TensorFlow here: the values come from ``sim.get_nengo_params``-style dicts.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import nengo
from nengo.exceptions import ValidationError
from nengo.solvers import NoSolver
from nengo.transforms import Convolution, ConvolutionTranspose, Dense, Sparse, SparseMatrix


class FrozenWeights(NoSolver):
    """``NoSolver`` holding a full, trained weight matrix (``weights=True``).

    Not compositional: nengo must use the matrix as it is instead of multiplying
    it by the post ensemble's encoders again.
    """

    compositional = False

    def __init__(self, values) -> None:
        super().__init__(values, weights=True)


def _zeros_function(size: int):
    # a named function (not a lambda) so frozen networks stay picklable
    return _Zeros(size)


class _Zeros:
    """``f(x) -> zeros(size)``: the function of a frozen decoded connection."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, x):
        return np.zeros(self.size)

    def __repr__(self) -> str:
        return f"frozen_zeros({self.size})"


def ensemble_params(ens: nengo.Ensemble, built, scaled_encoders, bias) -> dict:
    """Constructor arguments reproducing trained ensemble values.

    Parameters
    ----------
    ens
        The ensemble.
    built
        ``model.params[ens]`` (for the gains and the untrained values).
    scaled_encoders, bias
        Trained values, or None where they did not train.
    """
    gain = np.asarray(built.gain, dtype=np.float64)
    out: dict = {"gain": gain.copy()}
    enc = built.scaled_encoders if scaled_encoders is None else scaled_encoders
    out["encoders"] = np.asarray(enc, dtype=np.float64) * ens.radius / gain[:, None]
    out["normalize_encoders"] = False
    out["bias"] = np.asarray(built.bias if bias is None else bias, dtype=np.float64).copy()
    out.update(_RATE_DEFAULTS)
    return out


#: gain and bias fix the tuning curves; back to nengo's defaults these say so
#: (nengo warns that non-default max_rates/intercepts would be ignored)
_RATE_DEFAULTS = {
    "max_rates": nengo.Ensemble.max_rates.default,
    "intercepts": nengo.Ensemble.intercepts.default,
}


def connection_params(conn: nengo.Connection, weights) -> dict:
    """Connection attributes reproducing trained ``weights`` (as built by nengo)."""
    pre = conn.pre_obj
    decoded = isinstance(pre, nengo.Ensemble) and not isinstance(pre.neuron_type, nengo.Direct)
    if decoded:
        if not isinstance(conn.transform, (Dense, nengo.transforms.NoTransform)):
            raise ValidationError(
                f"freeze_params: {conn}: decoded connections with a "
                f"{type(conn.transform).__name__} transform cannot be frozen (only Dense)",
                attr="transform",
            )
        W = np.asarray(weights, dtype=np.float64)
        if W.ndim < 2:
            raise ValidationError(
                f"freeze_params: {conn}: expected 2-D decoded weights; got shape {W.shape}", attr="weights"
            )
        solver = FrozenWeights(W.T.copy()) if conn.solver.weights else NoSolver(W.T.copy())
        return {
            "solver": solver,
            "function": _zeros_function(W.shape[0] if not conn.solver.weights else conn.post_obj.size_in),
            "transform": None,
        }
    t = conn.transform
    if isinstance(t, Sparse):
        init = t.init
        data = np.asarray(weights, dtype=np.float64)
        if isinstance(init, SparseMatrix):
            return {"transform": Sparse(t.shape, indices=np.array(init.indices), init=data)}
        new = init.copy()  # scipy matrix: same structure, trained values
        new.data = data
        return {"transform": Sparse(t.shape, init=new)}
    if isinstance(t, ConvolutionTranspose):  # not a Convolution subclass in nengo
        return {
            "transform": ConvolutionTranspose(
                t.n_filters,
                t.input_shape,
                output_shape=t.output_shape,
                kernel_size=t.kernel_size,
                strides=t.strides,
                padding=t.padding,
                channels_last=t.channels_last,
                init=np.asarray(weights, dtype=np.float64).reshape(t.kernel_shape),
            )
        }
    if isinstance(t, Convolution):
        kernel = np.asarray(weights, dtype=np.float64).reshape(t.kernel_shape)
        return {
            "transform": Convolution(
                t.n_filters,
                t.input_shape,
                kernel_size=t.kernel_size,
                strides=t.strides,
                padding=t.padding,
                channels_last=t.channels_last,
                init=kernel,
                groups=t.groups,
            )
        }
    if isinstance(t, (Dense, nengo.transforms.NoTransform)):
        W = np.array(weights, dtype=np.float64)
        if W.ndim == 0:  # a scalar gain on an identity (built as ElementwiseInc)
            return {"transform": Dense((conn.size_out, conn.size_mid), init=float(W))}
        return {"transform": Dense(W.shape, init=W)}
    raise ValidationError(
        f"freeze_params: {conn}: cannot freeze a {type(t).__name__} transform", attr="transform"
    )


def apply_params(params: dict) -> None:
    """Set ``{obj: {attribute: value}}`` on the objects, validating first.

    Every object is checked before any is changed, so a bad value leaves the
    network untouched.
    """
    for obj, attrs in params.items():
        for name in attrs:
            if not hasattr(obj, name):
                raise ValidationError(f"freeze_params: {obj} has no attribute {name!r}", attr=name)
    for obj, attrs in params.items():
        # normalize_encoders first: nengo checks encoders against it on assignment
        for name in sorted(attrs, key=lambda n: n != "normalize_encoders"):
            setattr(obj, name, attrs[name])


def get_nengo_params(objs: Iterable, sim=None, as_dict: bool = False) -> Any:
    """Nengo constructor arguments reproducing the trained values of ``objs``.

    Parameters
    ----------
    objs
        Ensembles and Connections (a single object is accepted too).
    sim
        The TF Simulator holding the trained values.
    as_dict
        Key the result by object label (see ``Simulator.get_nengo_params``).

    Returns
    -------
    list of dict
        One dict per object, e.g. ``{"encoders": ..., "gain": ..., "bias": ...,
        "normalize_encoders": False}`` for an ensemble, usable as
        ``nengo.Ensemble(n, d, **params)``.
    """
    if sim is None:
        raise ValidationError("get_nengo_params: pass sim= (the Simulator with trained values)", attr="sim")
    return sim.get_nengo_params(objs, as_dict=as_dict)


def freeze_params(network_or_objects: Any, sim=None) -> None:
    """Write the trained values of ``sim`` into the nengo objects.

    Parameters
    ----------
    network_or_objects
        A Network (all its trained objects), or an object/list of objects.
    sim
        The TF Simulator holding the trained values.
    """
    if sim is None:
        raise ValidationError("freeze_params: pass sim= (the Simulator with trained values)", attr="sim")
    sim.freeze_params(network_or_objects)


# --- frozen arrays: trained values as plain arrays, applied without TensorFlow ----------
_ENSEMBLE_KEYS = ("encoders", "gain", "bias")


def apply_frozen(network: nengo.Network, arrays: dict) -> list:
    """Apply ``{"<object name>/<attr>": array}`` (from ``sim.frozen_arrays()``) to ``network``.

    The network must be built by the same code as the trained one (objects are
    matched by :func:`~nhw.backends.tensorflow.runtime.params.object_names`). Every name and
    shape is checked before any object changes. Returns the changed objects.

    Raises
    ------
    nengo.exceptions.ValidationError
        On an unknown name, a missing value or a shape mismatch.
    """
    from nhw.backends.tensorflow.runtime.params import object_names

    by_name = {name: obj for obj, name in object_names(network).items()}
    grouped: dict = {}
    for key, value in arrays.items():
        name, _, attr = key.rpartition("/")
        obj = by_name.get(name)
        if obj is None:
            raise ValidationError(
                f"apply_frozen: {key!r} names no object of this network (is it built by the same code?)",
                attr="arrays",
            )
        grouped.setdefault(obj, {})[attr] = np.asarray(value)
    todo: dict = {}
    for obj, vals in grouped.items():
        if isinstance(obj, nengo.Ensemble):
            missing = [k for k in _ENSEMBLE_KEYS if k not in vals]
            if missing or set(vals) - set(_ENSEMBLE_KEYS):
                raise ValidationError(
                    f"apply_frozen: {obj}: expected {list(_ENSEMBLE_KEYS)}; got {sorted(vals)}", attr="arrays"
                )
            want = {"encoders": (obj.n_neurons, obj.dimensions), "gain": (obj.n_neurons,), "bias": (obj.n_neurons,)}
            for k, shape in want.items():
                if vals[k].shape != shape:
                    raise ValidationError(
                        f"apply_frozen: {obj}: {k} has shape {vals[k].shape}; expected {shape}", attr="arrays"
                    )
            todo[obj] = {
                "normalize_encoders": False,
                **{k: vals[k].astype(np.float64) for k in _ENSEMBLE_KEYS},
                **_RATE_DEFAULTS,
            }
        elif isinstance(obj, nengo.Connection) and set(vals) == {"weights"}:
            todo[obj] = connection_params(obj, vals["weights"])
        else:
            raise ValidationError(f"apply_frozen: cannot apply {sorted(vals)} to {obj}", attr="arrays")
    apply_params(todo)
    return list(todo)
