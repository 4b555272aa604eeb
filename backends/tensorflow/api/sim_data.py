"""What ``sim.data`` and ``sim.signals`` of the TensorFlow simulator read.

``sim.data`` concatenates each probe's recorded chunks along the time axis and reads
built (and trained) parameters; ``sim.signals`` reads any signal carried between steps.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import nengo
import numpy as np
from nengo.ensemble import Neurons
from nengo.exceptions import ValidationError

from nhw.backends.base import SimulationData
from nhw.backends.tensorflow.passes.filter_merge import MergedLinearFilters
from nhw.errors import SimulationDataKeyError


class TFSimulationData(SimulationData):
    """``sim.data``: probe chunks concatenated along the time axis."""

    def __init__(self, params: Mapping, probe_data: Mapping, time_axis: int, current=None,
                 is_closed=None) -> None:
        super().__init__(params, probe_data)
        self._axis = time_axis
        self._current = current
        self._is_closed = is_closed

    def __getitem__(self, key: Any) -> Any:
        if key in self._probe_data:
            chunks = self._probe_data[key]
            cached = self._cache.get(key)
            if cached is None or cached[0] != len(chunks):
                arr = _concat(chunks, key, self._axis)
                arr.setflags(write=False)
                cached = (len(chunks), arr)
                self._cache[key] = cached
            return cached[1]
        built = super().__getitem__(key)
        return built if self._current is None else self._current(key, built)

    def get_params(self, *obj_attrs: tuple) -> list:
        """Current values of ``(object, attribute)`` pairs, as NengoDL's ``get_params``.

        Parameters
        ----------
        *obj_attrs : tuple of (nengo object, str)
            ``(ens, "encoders")`` gives the scaled encoders (gain and radius
            folded in: the values that train), ``(ens, "bias")`` or
            ``(ens.neurons, "bias")`` the biases, ``(conn, "weights")`` the
            connection weights; any other attribute of the built object
            (``(ens, "gain")``, ...) is read from ``sim.data[obj]``.

        Returns
        -------
        list of numpy.ndarray
            One value per pair, in order. A closed Simulator cannot read its
            trained values: it warns and returns the built (initial) values.
        """
        closed = self._is_closed is not None and self._is_closed()
        if closed:
            warnings.warn(
                "sim.data.get_params: the Simulator is closed, so its trained values are gone; "
                "returning the initial (built) values"
            )
        out = []
        for pair in obj_attrs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], str)):
                raise ValidationError(
                    f"sim.data.get_params: expected (object, attribute name) pairs; got {pair!r}",
                    attr="obj_attrs",
                )
            obj, attr = pair
            if isinstance(obj, Neurons):
                obj = obj.ensemble  # biases live in the ensemble's built parameters
            elif isinstance(obj, nengo.Ensemble) and attr == "encoders":
                attr = "scaled_encoders"  # the trained signal (NengoDL's "encoders" signal)
            built = self._params[obj] if closed else self[obj]
            if not hasattr(built, attr):
                raise ValidationError(
                    f"sim.data.get_params: {obj} has no parameter {pair[1]!r}; expected one of "
                    f"{', '.join(getattr(built, '_fields', ())) or 'none'}",
                    attr="obj_attrs",
                )
            out.append(np.asarray(getattr(built, attr)))
        return out


def _concat(chunks: list, probe, axis: int) -> np.ndarray:
    if chunks:
        return np.concatenate(chunks, axis=axis)
    return np.zeros((0,) + tuple(getattr(probe, "size_in", None) and () or ()))


class SignalValues(Mapping):
    """``sim.signals``: signal -> current value (``(batch, *shape)`` with a minibatch)."""

    def __init__(self, sim: Any) -> None:
        self._sim = sim
        sigs: dict = {}
        #: filter states now inside a merged synapse operator's state: (its signal, indices)
        self._moved: dict = {}
        for op in sim._exec_order:
            for sig in op.all_signals:
                sigs[sig] = None
            for old, idx in (op.replaced_states() if isinstance(op, MergedLinearFilters) else {}).items():
                self._moved[old] = (op.state, idx)
                sigs[old] = None
        self._sigs = [sig for sig in sigs if not sim._layout.is_step_local(sig)]

    def __getitem__(self, sig):
        sim = self._sim
        lay = sim._layout
        if lay.is_step_local(sig):
            raise SimulationDataKeyError(
                f"sim.signals[{sig}]: with a minibatch this signal lives within one step (a "
                "neuron input current, set afresh every step) and is not kept between steps; "
                "expected a signal carried across steps; probe it instead, e.g. "
                "nengo.Probe(ens.neurons, 'input')"
            )
        if sig in self._moved or lay.is_state(sig):
            holder, idx = self._moved.get(sig, (sig, None))
            flat = lay.assemble(holder.base, sim._loop.state_values(sim._tensors))[lay.indices(holder)]
            val = (flat if idx is None else flat[idx]).reshape(tuple(sig.shape) + (sim._batch,))
            val = np.moveaxis(val, -1, 0) if sim._minibatched else val[..., 0]
        elif getattr(sig, "sparse", False):
            val = sig.initial_value
        elif sig.base in sim._assemble.by_base:
            flat = sim._assemble(sim._param_values())[sig.base].numpy()
            val = flat[lay.indices(sig)].reshape(sig.shape)
        else:
            val = lay.constant(sig)
        if isinstance(val, np.ndarray):
            val = val.view()
            val.setflags(write=False)
        return val

    def __iter__(self):
        return iter(self._sigs)

    def __len__(self) -> int:
        return len(self._sigs)
