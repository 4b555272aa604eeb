"""Input handling for ``predict``, ``predict_on_batch`` and ``run_steps(data=...)``.

Inputs are given as one array (for the first input Node), a list (one per input
Node, in network order) or a dict keyed by Node, by its NengoDL name (``"node_1"``,
see :mod:`~nhw.backends.tensorflow.api.io_names`) or by its label; each array is
``(batch, n_steps, node.size_out)``. A dict may also hold NengoDL's special
``"n_steps"`` input, ``(batch, 1)`` copies of the number of steps. Everything is validated here so the loop
never sees a malformed array: errors name the Node, the expected and the
received shape or value.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator, Mapping
from typing import Any

import numpy as np
from nengo.exceptions import ValidationError


#: NengoDL's special input holding the number of steps, ``(batch, 1)``
STEPS_KEY = "n_steps"


def _name(node) -> str:
    return f"Node {node.label!r}" if node.label else repr(node)


def describe_type(x: Any) -> str:
    """A short description of what the user passed (for error messages)."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


def is_dynamic(x: Any) -> bool:
    """Whether ``x`` is a generator, an iterator or a ``tf.data.Dataset``-like input.

    Arrays, lists, tuples, dicts, tensors and None are static inputs.
    """
    if x is None or isinstance(x, (Mapping, list, tuple, np.ndarray, str, bytes, np.generic)):
        return False
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # a tensor
        return False
    kind = type(x)
    if any(c.__name__ in ("DatasetV2", "PyDataset", "Sequence") for c in kind.__mro__):
        return True
    return isinstance(x, (Iterator, Generator)) or hasattr(x, "__next__")


def split_steps_input(x: Any, n_steps: int | None, what: str) -> tuple:
    """Take NengoDL's special ``"n_steps"`` entry out of dict data.

    Parameters
    ----------
    x
        Input data in any of the forms :func:`normalize_inputs` takes.
    n_steps
        The ``n_steps`` argument of the call (None: not given).
    what
        Name of the calling method, used in error messages.

    Returns
    -------
    tuple
        ``(x without the entry, n_steps, batch)``: ``n_steps`` from the entry
        (or the argument), ``batch`` the entry's number of rows (None without one).

    Raises
    ------
    nengo.exceptions.ValidationError
        If the entry is not ``(batch, 1)`` copies of one positive integer, or
        disagrees with the ``n_steps`` argument.
    """
    if not isinstance(x, Mapping) or STEPS_KEY not in x:
        return x, n_steps, None
    rest = {k: v for k, v in x.items() if k != STEPS_KEY}
    raw = x[STEPS_KEY]
    a = np.asarray(raw)
    expected = "(batch, 1) copies of the number of steps, e.g. np.full((batch, 1), 10)"
    if a.dtype.kind not in "iuf" or a.ndim != 2 or a.shape[1] != 1 or a.shape[0] < 1:
        raise ValidationError(
            f"{what}: the 'n_steps' input must be {expected}; received {describe_type(raw)}",
            attr="x",
        )
    values = np.unique(a)
    if values.size != 1 or values[0] != int(values[0]) or values[0] < 1:
        raise ValidationError(
            f"{what}: the 'n_steps' input must hold one positive integer repeated ({expected}); "
            f"received the values {values[:5].tolist()}",
            attr="x",
        )
    steps = int(values[0])
    if n_steps is not None and int(n_steps) != steps:
        raise ValidationError(
            f"{what}: n_steps={n_steps!r} but the 'n_steps' input holds {steps}; expected the same number",
            attr="n_steps",
        )
    return rest, steps, int(a.shape[0])


def warn_list_length(x: list | tuple, input_nodes: list, what: str) -> None:
    """Warn when a list of inputs does not hold one array per input Node (NengoDL's rule).

    The list is then paired with the Nodes in network order as far as both go: extra
    arrays are dropped, Nodes left without one compute their own output.

    Parameters
    ----------
    x
        The list (or tuple) of input arrays the user gave.
    input_nodes
        Nodes that accept data, in network order.
    what
        Name of the calling method, used in the message.
    """
    if len(x) == len(input_nodes):
        return
    nodes = ", ".join(_name(n) for n in input_nodes) or "none"
    warnings.warn(
        f"{what}: got a list of {len(x)} input array(s) for {len(input_nodes)} input Node(s) ({nodes}); "
        "expected one per Node. They are paired in network order as far as both go (extra arrays are "
        "dropped, Nodes without one compute their own output); a dict keyed by Node or name says "
        "which array feeds which Node",
        UserWarning,
        stacklevel=4,
    )


def warn_one_step_synapses(network: Any, probes: list, n_steps: int, stateful: bool, what: str) -> None:
    """Warn about running one step through synaptic filters (NengoDL's rule).

    A filtered connection or probe delays its signal by at least one step, so with
    ``n_steps=1`` its effect never shows. Stateful calls are not warned about: a later
    call sees the filtered state.

    Parameters
    ----------
    network
        The simulated ``nengo.Network`` (None: nothing to check).
    probes
        The probes whose values are wanted (NengoDL: those with a loss once compiled).
    n_steps
        Steps per call.
    stateful
        Whether the call keeps its final state.
    what
        Name of the calling method, used in the message.
    """
    if stateful or n_steps != 1 or network is None:
        return
    filtered = next((o for o in (*network.all_connections, *probes) if o.synapse is not None), None)
    if filtered is None:
        return
    warnings.warn(
        f"{what}: running n_steps=1, but {filtered} has synapse={filtered.synapse}, and a synaptic filter "
        "delays its signal by at least one step, so its effect cannot show in one step; "
        "expected synapse=None on the connections and probes, or more steps",
        UserWarning,
        stacklevel=4,
    )


def normalize_inputs(
    x: Any, input_nodes: list, n_steps: int | None, what: str, names: dict | None = None
) -> dict:
    """Map ``x`` to ``{node: float array (batch, n_steps, size_out)}``.

    Parameters
    ----------
    x
        None, an array, a list of arrays or a dict keyed by Node, name or label
        (and optionally the special ``"n_steps"`` input).
    input_nodes
        Nodes that accept data, in network order.
    n_steps
        Expected number of steps, or None to take it from the data.
    what
        Name of the calling method, used in error messages.
    names
        ``{node: NengoDL name}`` (string keys match these first, then labels).

    Raises
    ------
    nengo.exceptions.ValidationError
        For unknown keys, non-numeric or misshapen arrays, or a generator or
        dataset given where only arrays are accepted.
    """
    if x is None:
        return {}
    if is_dynamic(x):
        raise ValidationError(
            f"{what}: x must be an array, a list of arrays or a dict of arrays "
            "(generators and tf.data.Datasets are accepted by predict, fit and evaluate); "
            f"received {describe_type(x)}",
            attr="x",
        )
    x, n_steps, steps_batch = split_steps_input(x, n_steps, what)
    by_name = {v: k for k, v in (names or {}).items()}
    by_label: dict = {}
    for node in input_nodes:
        if node.label is not None:
            by_label.setdefault(node.label, []).append(node)
    if isinstance(x, Mapping):
        items = list(x.items())
    elif isinstance(x, (list, tuple)):
        warn_list_length(x, input_nodes, what)
        items = list(zip(input_nodes, x))
    else:
        if not input_nodes:
            raise ValidationError(
                f"{what}: got input data but the network has no Node that accepts "
                "input (a Node with size_in=0 and an output)",
                attr="x",
            )
        items = [(input_nodes[0], x)]

    out: dict = {}
    allowed = set(input_nodes)
    for key, arr in items:
        node = key
        if isinstance(key, str):
            matches = [by_name[key]] if key in by_name else by_label.get(key, [])
            if len(matches) != 1:
                valid = sorted(by_name) if by_name else []
                raise ValidationError(
                    f"{what}: input key {key!r} "
                    + ("matches several Nodes" if matches else "is not the label of an input Node")
                    + (f" or an input name (sim.get_name); expected one of {valid}" if valid and not matches else "")
                    + f"; input Nodes: {', '.join(_name(n) for n in input_nodes) or 'none'}",
                    attr="x",
                )
            node = matches[0]
            if node not in allowed:
                raise ValidationError(
                    f"{what}: input key {key!r} names {_name(node)}, which computes its own "
                    "output and takes no input data here",
                    attr="x",
                )
        elif node not in allowed:
            raise ValidationError(
                f"{what}: {node!r} cannot take input data; input Nodes (size_in=0 with "
                f"an output) are: {', '.join(_name(n) for n in input_nodes) or 'none'}",
                attr="x",
            )
        if is_dynamic(arr):
            raise ValidationError(
                f"{what}: input for {_name(node)} is a {type(arr).__name__}; expected an array "
                f"(batch, n_steps, {node.size_out}) (a generator or tf.data.Dataset must be x "
                "itself, yielding dicts of arrays keyed by name)",
                attr="x",
            )
        try:
            a = np.asarray(arr)
        except (TypeError, ValueError) as exc:  # ragged nested lists
            raise ValidationError(
                f"{what}: input for {_name(node)} cannot be read as an array ({exc}); expected "
                f"numbers shaped (batch, n_steps, {node.size_out}); received {describe_type(arr)}",
                attr="x",
            ) from None
        if a.dtype.kind not in "fiub":
            raise ValidationError(
                f"{what}: input for {_name(node)} has dtype {a.dtype}; expected numbers shaped "
                f"(batch, n_steps, {node.size_out}); received {describe_type(arr)}",
                attr="x",
            )
        a = a.astype(np.float64)
        if a.ndim != 3 or a.shape[2] != node.size_out:
            raise ValidationError(
                f"{what}: input for {_name(node)} has shape {a.shape}; expected "
                f"(batch, n_steps, {node.size_out})",
                attr="x",
            )
        if not np.all(np.isfinite(a)):
            bad = np.argwhere(~np.isfinite(a))[0]
            raise ValidationError(
                f"{what}: input for {_name(node)} contains {a[tuple(bad)]} at index "
                f"{tuple(int(i) for i in bad)}; expected finite values",
                attr="x",
            )
        out[node] = a

    shapes = {n: a.shape for n, a in out.items()}
    batches = {s[0] for s in shapes.values()}
    if steps_batch is not None and batches and batches != {steps_batch}:
        node, shape = next(iter(shapes.items()))
        raise ValidationError(
            f"{what}: the 'n_steps' input has {steps_batch} rows but the input for {_name(node)} "
            f"has batch size {shape[0]} (shape {shape}); expected the same batch size",
            attr="x",
        )
    steps = {s[1] for s in shapes.values()}
    if len(batches) > 1 or len(steps) > 1:
        desc = ", ".join(f"{_name(n)}: {s}" for n, s in shapes.items())
        raise ValidationError(
            f"{what}: all inputs need the same batch size and number of steps; got {desc}",
            attr="x",
        )
    if n_steps is not None and steps and steps != {n_steps}:
        node, shape = next(iter(shapes.items()))
        raise ValidationError(
            f"{what}: n_steps={n_steps} but the input for {_name(node)} has "
            f"{shape[1]} steps (shape {shape}); expected (batch, {n_steps}, {node.size_out})",
            attr="n_steps",
        )
    return out


def check_batch(data: dict, batch: int, what: str, multiple: bool = False) -> int:
    """Check the batch size of normalized ``data`` against ``minibatch_size``.

    Returns the data's batch size (``batch`` when there is no data).
    """
    if not data:
        return batch
    node, arr = next(iter(data.items()))
    got = arr.shape[0]
    ok = got % batch == 0 and got > 0 if multiple else got == batch
    if not ok:
        need = f"a multiple of {batch}" if multiple else str(batch)
        raise ValidationError(
            f"{what}: input for {_name(node)} has batch size {got} (shape {arr.shape}); "
            f"expected {need} (the Simulator's minibatch_size)",
            attr="x",
        )
    return got


def truncate_batch(data: dict, batch: int, what: str, targets: dict | None = None) -> Any:
    """Cut normalized ``data`` down to a whole number of minibatches (NengoDL's rule).

    NengoDL simulates whole minibatches only: data whose number of samples is
    not a multiple of ``minibatch_size`` loses its last partial minibatch,
    with a warning.

    Parameters
    ----------
    data
        ``{key: array (n, n_steps, size)}`` (empty: nothing to do).
    batch
        The minibatch size.
    what
        Name of the calling method, used in messages.
    targets
        Optional second dict (training targets) truncated the same way; when
        given, ``(data, targets)`` is returned.

    Raises
    ------
    nengo.exceptions.ValidationError
        If there are fewer samples than one minibatch.
    """
    arrays = list(data.values()) + list((targets or {}).values())
    if not arrays:
        return data if targets is None else (data, targets)
    got = arrays[0].shape[0]
    keep = got - got % batch
    if keep == 0:
        key = next(iter(data), None)
        desc = _name(key) if key is not None and not isinstance(key, str) else repr(key)
        raise ValidationError(
            f"{what}: input for {desc} has {got} sample(s) (shape {arrays[0].shape}); expected at "
            f"least one minibatch of {batch} (the Simulator's minibatch_size)",
            attr="x",
        )
    if keep != got:
        warnings.warn(
            f"{what}: {got} samples is not a multiple of the Simulator's minibatch_size ({batch}); "
            f"the data is truncated to the first {keep} samples (as NengoDL does)",
            UserWarning,
            stacklevel=3,
        )
        data = {k: v[:keep] for k, v in data.items()}
        if targets is not None:
            targets = {k: v[:keep] for k, v in targets.items()}
    return data if targets is None else (data, targets)


def fmt_seconds(seconds: float) -> str:
    """``H:MM:SS.ss``: nengo's duration format with hundredths (sub-second stages are the usual case)."""
    cs = int(round(seconds * 100))
    s, frac = divmod(cs, 100)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}.{frac:02d}"
