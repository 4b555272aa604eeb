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

import warnings

from dataclasses import dataclass
from typing import Any

import numpy as np
import nengo
from nengo.builder.signal import Signal

from nhw.backends.tensorflow.settings import set_trainable_true, trainable_map


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
            if set_trainable_true(network, conn):
                # NengoDL warns too; nhw never gradient-trains weights a rule writes
                warnings.warn(f"{conn} has a learning rule and is also set to be trainable; its weights are "
                              "changed by the learning rule only, not by fit", UserWarning, stacklevel=2)
            continue
        add(conn, conn, "weights", model.sig[conn].get("weights"))
    return out


@dataclass(eq=False)
class ParamGroup:
    """Parameters stored in one flat variable.

    Keras handles every variable separately (optimizer slots, update ops,
    tracing), which made networks with hundreds of objects slow to compile for
    training; nengo's optimizer has already merged their signals into a few
    large bases, so all trainable views of one base share one variable here.
    Sparse parameters and parameters in state bases keep a group of their own.
    """

    params: list
    #: offset of each parameter's values in the flat variable
    offsets: list
    #: "base" (views of one read-only base), "sparse" or "state"
    kind: str
    variable: Any = None

    @property
    def size(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.params)

    @property
    def name(self) -> str:
        if len(self.params) == 1:
            return self.params[0].name
        return f"{self.params[0].signal.base.name}[{len(self.params)} params]"

    def initial(self) -> np.ndarray:
        """Flat initial value (every parameter's built value, in order)."""
        return np.concatenate([np.asarray(p.initial()).reshape(-1) for p in self.params])


class ParamView:
    """One parameter's slice of its group's variable (``numpy``/``assign``/``shape``)."""

    def __init__(self, group: ParamGroup, offset: int, param: Param) -> None:
        self.group, self.offset, self.param = group, offset, param
        self.size = int(np.prod(param.shape))

    @property
    def shape(self) -> tuple:
        return tuple(self.param.shape)

    @property
    def dtype(self):
        return self.group.variable.dtype

    @property
    def path(self) -> str:
        return self.param.name

    def numpy(self) -> np.ndarray:
        flat = np.asarray(self.group.variable.numpy())
        return flat[self.offset:self.offset + self.size].reshape(self.shape).copy()

    def assign(self, value) -> None:
        flat = np.array(self.group.variable.numpy())
        flat[self.offset:self.offset + self.size] = np.asarray(value).reshape(-1)
        self.group.variable.assign(flat)


def group_params(params: list, layout) -> list:
    """Groups of parameters sharing a variable (see :class:`ParamGroup`), stable order."""
    groups: list = []
    by_base: dict = {}
    for p in params:
        if p.sparse or p.in_state:
            groups.append(ParamGroup([p], [0], "sparse" if p.sparse else "state"))
            continue
        g = by_base.get(p.signal.base)
        if g is None:
            g = by_base[p.signal.base] = ParamGroup([], [], "base")
            groups.append(g)
        g.params.append(p)
    for g in groups:
        if g.kind == "base":
            g.params.sort(key=lambda p: int(layout.indices(p.signal)[0]))
        offsets, pos = [], 0
        for p in g.params:
            offsets.append(pos)
            pos += int(np.prod(p.shape))
        g.offsets = offsets
    return groups


class ParamAssembler:
    """Splices group variable values into the bases the builders read.

    Parameters
    ----------
    groups
        The parameter groups (see :func:`group_params`); ``values`` passed to
        the methods hold one flat tensor per group, in this order.
    layout
        The simulator's signal layout (constant values, view indices).
    """

    def __init__(self, groups: list, layout) -> None:
        self.groups = list(groups)
        self.layout = layout
        self.by_base = {g.params[0].signal.base: g for g in self.groups if g.kind != "state"}

    def inject(self, tensors: list, values: list, batch: int) -> list:
        """Loop state (in loop order) with the values of parameters that live in state bases."""
        state = [(g, v) for g, v in zip(self.groups, values) if g.kind == "state"]
        if not state:
            return tensors
        from nhw.backends.tensorflow._tf import tf
        from nhw.backends.tensorflow.runtime.signals import StepState

        st = StepState(self.layout, tensors, batch)
        by_base: dict = {}
        for g, v in state:
            sig = g.params[0].signal
            by_base.setdefault(sig.base, []).append((sig, v))
        for base, items in by_base.items():
            idx = np.concatenate([self.layout.indices(sig) for sig, _ in items])
            if len(items) > 1 and np.unique(idx).size == idx.size:
                # one write per base: a model's biases are one parameter per
                # ensemble in one merged base, and a write each chained thousands
                # of copies of that base into the traced graph (seconds to trace
                # and compile at 1000 ensembles)
                value = tf.concat([tf.reshape(v, (-1,)) for _, v in items], axis=0)
                st.write_flat(base, tf.broadcast_to(value[:, None], (idx.size, batch)), idx=idx)
                continue
            for sig, v in items:
                st.write_flat(sig, tf.broadcast_to(tf.reshape(v, (-1, 1)), (sig.size, batch)))
        return st.tensors

    def __call__(self, values: list) -> dict:
        """``{base: flat tensor}`` from the groups' current values.

        Read-only bases get their trainable views spliced in. State bases are
        injected into the loop state instead (:meth:`inject`), but where no
        operator writes a parameter's elements (fixed decoders next to learned
        ones) its base is also assembled here, so builders can read those
        elements without a per-sample copy (``StepState.fixed``).
        """
        from nhw.backends.tensorflow._tf import tf

        out = {}
        pieces: dict = {}  # base -> [(param, group position, offset in its variable)]
        for gi, (g, val) in enumerate(zip(self.groups, values)):
            base = g.params[0].signal.base
            if g.kind == "sparse":
                out[base] = tf.reshape(val, (-1,))
                continue
            if g.kind == "state" and not all(self._fixed(p.signal) for p in g.params):
                continue
            for p, off in zip(g.params, g.offsets):
                pieces.setdefault(base, []).append((p, gi, off))
        for base, items in pieces.items():
            out[base] = self._splice(base, items, values)
        return out

    def _fixed(self, sig) -> bool:
        idx = self.layout.indices(sig)
        return self.layout.never_written(sig.base, int(idx.min()), int(idx.max()) + 1)

    def _splice(self, base, items: list, values: list):
        """Flat value of ``base``: its built values with the parameters ``items`` spliced in.

        One gather from ``[variables..., built values of the gaps]`` with a
        static index map: slicing each of a large network's thousand
        parameters out of its variable costs seconds of graph construction.
        """
        from nhw.backends.tensorflow._tf import tf

        dtype = self.layout.value_dtype(base)
        const = self.layout.constant(base).reshape(-1)
        table, start = [], {}
        pos = 0
        for _, gi, _ in items:
            if gi not in start:
                start[gi] = pos
                table.append(tf.cast(tf.reshape(values[gi], (-1,)), dtype))
                pos += self.groups[gi].size
        index = np.full(const.size, -1, dtype=np.int64)
        for p, gi, off in items:  # later parameters win where views overlap
            vidx = self.layout.indices(p.signal)
            index[vidx] = start[gi] + off + np.arange(vidx.size)
        gaps = np.nonzero(index < 0)[0]
        if gaps.size:
            index[gaps] = pos + np.arange(gaps.size)
            table.append(tf.constant(const[gaps]))
        flat = table[0] if len(table) == 1 else tf.concat(table, axis=0)
        if np.array_equal(index, np.arange(index.size)):
            return flat
        return tf.gather(flat, index)
