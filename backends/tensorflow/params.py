"""Trainable parameters: which built signals train, and their TensorFlow values.

nengo's builder stores what training changes in three kinds of signals:
``model.sig[ens]["encoders"]`` (encoders with gain and radius folded in),
``model.sig[ens.neurons]["bias"]`` and ``model.sig[conn]["weights"]`` (decoders
times transform, or the transform itself). After nengo's optimizer these are
views into large merged bases. Each trainable view gets one variable; the
base the builders read is rebuilt from the variables once per run (outside the
time loop) by splicing them into the base's constant value, so merged
operators keep their single big matmul.

Parameters are named by object (see :func:`object_names`), which is how
``save_params``/``load_params`` match them, not by position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import nengo
from nengo.builder.signal import Signal

from .settings import trainable_map


@dataclass(eq=False)
class Param:
    """One trainable signal of one nengo object."""

    #: the nengo object (Ensemble, Connection)
    obj: Any
    #: "encoders" (scaled encoders), "bias" or "weights"
    key: str
    #: the (merged) signal the builders read
    signal: Signal
    #: stable name used by save/load, e.g. ``"Ensemble:hidden/encoders"``
    name: str
    #: sparse weights train their nonzero values only
    sparse: bool = False
    #: the Keras variable holding the value (set by the simulator's Keras model)
    variable: Any = None
    #: the signal lives in a base that is loop state (merged with learned weights);
    #: no operator writes this view, so its value is injected at the start of each run
    in_state: bool = False

    @property
    def shape(self) -> tuple:
        if self.sparse:
            return (len(np.asarray(self.signal.initial_value.data)),)
        return tuple(self.signal.shape)

    def initial(self) -> np.ndarray:
        """The built (untrained) value."""
        val = self.signal.initial_value
        if self.sparse:
            return np.asarray(val.data)
        return np.asarray(val).reshape(self.shape)


def object_names(network) -> dict:
    """Stable names for every ensemble, connection and node of ``network``.

    A labelled object whose label is unique among objects of its type is
    ``"Type:label"``; others are named by their position in the network
    hierarchy (``"Ensemble:networks[0].ensembles[2]"``), which is stable as
    long as the network is built by the same code.
    """
    groups = {
        "Ensemble": "all_ensembles",
        "Connection": "all_connections",
        "Node": "all_nodes",
        "Probe": "all_probes",
    }
    out: dict = {}
    for tname, attr in groups.items():
        objs = getattr(network, attr)
        counts: dict = {}
        for o in objs:
            counts[o.label] = counts.get(o.label, 0) + 1
        paths = _paths(network, attr[4:])
        for o in objs:
            if o.label is not None and counts[o.label] == 1:
                out[o] = f"{tname}:{o.label}"
            else:
                out[o] = f"{tname}:{paths[o]}"
    return out


def _paths(network, attr: str, prefix: str = "") -> dict:
    out = {o: f"{prefix}{attr}[{i}]" for i, o in enumerate(getattr(network, attr))}
    for j, sub in enumerate(network.networks):
        out.update(_paths(sub, attr, f"{prefix}networks[{j}]."))
    return out


def _written(operators, layout) -> dict:
    """``{state base: bool mask of the elements some operator writes}``."""
    masks: dict = {}
    for op in operators:
        for sig in list(op.sets) + list(op.incs) + list(op.updates):
            base = sig.base
            if base not in masks:
                masks[base] = np.zeros(base.size, dtype=bool)
            masks[base][layout.indices(sig)] = True
    return masks


def select_params(model, network, layout, operators=()) -> list:
    """The trainable parameters of a built, optimized model.

    Skipped: objects configured ``trainable=False``, Direct-mode ensembles,
    connections with a learning rule (their weights are simulation state,
    not gradient-trained), and empty signals. nengo's optimizer may merge a
    plain connection's weights into the same base as learned weights; such a
    view still trains as long as no operator writes it.
    """
    if network is None:
        return []
    flags = trainable_map(network)
    names = object_names(network)
    written = None
    out: list = []

    def add(obj, flag_obj, key, sig):
        nonlocal written
        if sig is None or sig.size == 0 or not flags.get(flag_obj, True):
            return
        in_state = layout.is_state(sig)
        if in_state:
            if written is None:
                written = _written(operators, layout)
            mask = written.get(sig.base)
            if mask is None or mask[layout.indices(sig)].any() or getattr(sig, "sparse", False):
                return
        sparse = bool(getattr(sig, "sparse", False))
        out.append(Param(obj=obj, key=key, signal=sig, name=f"{names[obj]}/{key}", sparse=sparse,
                         in_state=in_state))

    for ens in network.all_ensembles:
        if isinstance(ens.neuron_type, nengo.Direct):
            continue
        add(ens, ens, "encoders", model.sig[ens].get("encoders"))
        add(ens, ens.neurons, "bias", model.sig[ens.neurons].get("bias"))
    for conn in network.all_connections:
        if conn.learning_rule is not None:
            continue
        add(conn, conn, "weights", model.sig[conn].get("weights"))
    return out


class ParamAssembler:
    """Splices variable values into the read-only bases the builders read.

    Parameters
    ----------
    params
        The trainable parameters.
    layout
        The simulator's signal layout (constant values, view indices).
    """

    def __init__(self, params: list, layout) -> None:
        self.params = list(params)
        self.layout = layout
        self.by_base: dict = {}
        self.in_state = [i for i, p in enumerate(self.params) if p.in_state]
        for i, p in enumerate(self.params):
            if not p.in_state:
                self.by_base.setdefault(p.signal.base, []).append(i)

    def inject(self, tensors: list, values: list, batch: int) -> list:
        """Loop state with the values of parameters that live in state bases."""
        if not self.in_state:
            return tensors
        from ._tf import tf
        from .signals import StepState

        st = StepState(self.layout, tensors, batch)
        for i in self.in_state:
            sig = self.params[i].signal
            flat = tf.reshape(values[i], (-1, 1))
            st.write_flat(sig, tf.broadcast_to(flat, (sig.size, batch)))
        return st.tensors

    def __call__(self, values: list) -> dict:
        """``{base: flat tensor}`` from the parameters' current values."""
        from ._tf import tf

        out = {}
        for base, idxs in self.by_base.items():
            if self.params[idxs[0]].sparse:
                out[base] = tf.reshape(values[idxs[0]], (-1,))
                continue
            const = self.layout.constant(base).reshape(-1)
            spans = []
            scattered = []
            for i in idxs:
                vidx = self.layout.indices(self.params[i].signal)
                start = int(vidx[0])
                if np.array_equal(vidx, np.arange(start, start + vidx.size)):
                    spans.append((start, start + vidx.size, i))
                else:
                    scattered.append((vidx, i))
            spans.sort()
            parts = []
            pos = 0
            dtype = self.layout.value_dtype(base)
            for a, b, i in spans:
                if a > pos:
                    parts.append(tf.constant(const[pos:a]))
                parts.append(tf.cast(tf.reshape(values[i], (-1,)), dtype))
                pos = b
            if pos < const.size:
                parts.append(tf.constant(const[pos:]))
            flat = parts[0] if len(parts) == 1 else tf.concat(parts, axis=0)
            for vidx, i in scattered:
                flat = tf.tensor_scatter_nd_update(
                    flat, vidx[:, None], tf.cast(tf.reshape(values[i], (-1,)), dtype)
                )
            out[base] = flat
        return out
