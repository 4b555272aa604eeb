"""Generators and ``tf.data.Dataset`` inputs of ``predict``, ``fit`` and ``evaluate``.

NengoDL passes these "dynamic" inputs to Keras untouched. Their elements are
what Keras takes: ``x`` (predict) or ``(x, y)``/``(x, y, sample_weight)``
(fit, evaluate), where ``x`` and ``y`` are dicts keyed by NengoDL's string
names (see :mod:`.io_names`; labels and, in generators, Node and Probe objects
work too), a list in network order, or one array. ``x`` may hold the special
``"n_steps"`` input, ``(batch, 1)`` copies of the number of steps; Nodes
without data compute their own output.

The simulation needs a static batch size and number of steps. Elements whose
batch axis is not static (``dataset.batch(sim.minibatch_size)`` without
``drop_remainder``, the NengoDL docstring's example) are re-batched to
``minibatch_size``; a last partial minibatch is dropped (NengoDL would fail on
it). The number of steps is read from the data's shape, else from the first
element.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Callable

import numpy as np
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import tf  # imported on first use
from nhw.backends.tensorflow.runtime.predict import (STEPS_KEY, describe_type, normalize_inputs,
                                                     split_steps_input)

_ELEMENT_FORMS = ("x (a dict keyed by input name, a list in network order or one array), "
                  "or an (x, y) or (x, y, sample_weight) tuple")


def _parts(element: Any) -> tuple:
    """``(x, y, rest)`` of one element (Keras' convention: a tuple is ``(x, y, ...)``)."""
    if isinstance(element, tuple):
        if not 1 <= len(element) <= 3:
            raise ValidationError(
                f"x: a dataset element must be {_ELEMENT_FORMS}; received a tuple of {len(element)}",
                attr="x",
            )
        return element[0], (element[1] if len(element) > 1 else None), element[2:]
    return element, None, ()


def _numpy(tree: Any) -> Any:
    """Tensors in ``tree`` as numpy arrays (dicts, lists and tuples kept)."""
    if isinstance(tree, Mapping):
        return {k: _numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_numpy(v) for v in tree)
    return tree.numpy() if hasattr(tree, "numpy") else tree


def _elements(x: Any) -> Iterator:
    """The elements of a dataset (as numpy), a generator or a Keras ``PyDataset``."""
    if isinstance(x, tf.data.Dataset):
        return (_numpy(e) for e in x)
    if hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "__next__"):
        return (x[i] for i in range(len(x)))  # keras.utils.PyDataset / Sequence
    return iter(x)


# --- predict ------------------------------------------------------------------------------
def collect_inputs(sim: Any, x: Any, n_steps: int | None, steps: int | None, what: str) -> tuple:
    """All input data of a dynamic ``x`` for ``predict``, as one array per Node.

    Parameters
    ----------
    sim
        The Simulator (its input Nodes and their names).
    x
        A generator, ``tf.data.Dataset`` or Keras ``PyDataset``.
    n_steps
        The ``n_steps`` argument (None: from the data).
    steps
        Read at most this many elements (Keras' ``steps``).
    what
        Name of the calling method, used in messages.

    Returns
    -------
    tuple
        ``({node: array (samples, n_steps, size)}, n_steps, samples)``.
    """
    chunks: dict = {}
    samples = 0
    found = 0
    for i, element in enumerate(_elements(x)):
        if steps is not None and i >= int(steps):
            break
        found += 1
        ex, _, _ = _parts(element)
        ex, got_steps, rows = split_steps_input(_numpy(ex), None, f"{what} (element {i})")
        data = normalize_inputs(ex, sim.input_nodes, got_steps, f"{what} (element {i})", sim._input_names)
        if data:
            got_steps = next(iter(data.values())).shape[1]
            rows = next(iter(data.values())).shape[0]
        if got_steps is None:
            raise ValidationError(
                f"{what}: element {i} of x gives no input data and no 'n_steps' input; expected a "
                f"dict with an array per input Node or the 'n_steps' input (batch, 1)",
                attr="x",
            )
        if n_steps is not None and got_steps != n_steps:
            raise ValidationError(
                f"{what}: element {i} of x has {got_steps} steps; expected {n_steps} "
                "(the n_steps argument or the first element's)",
                attr="x",
            )
        n_steps = got_steps
        samples += rows
        for node, arr in data.items():
            chunks.setdefault(node, []).append(arr)
    if not found:
        raise ValidationError(f"{what}: x ({describe_type(x)}) produced no elements; expected at least one",
                              attr="x")
    data = {node: np.concatenate(parts, axis=0) for node, parts in chunks.items()}
    return data, n_steps, samples


# --- fit / evaluate ------------------------------------------------------------------------
def _first_input(sim: Any, what: str) -> str:
    if not sim.input_nodes:
        raise ValidationError(
            f"{what}: x holds an array but the network has no input Node; expected a dict with the "
            "'n_steps' input",
            attr="x",
        )
    return sim._input_names[sim.input_nodes[0]]


def _x_key(sim: Any, key: Any, what: str) -> str:
    """The Keras input name of a key of ``x`` (a name, label, Node or ``"n_steps"``)."""
    names = sim._input_names
    if key == STEPS_KEY:
        return STEPS_KEY
    if not isinstance(key, str):
        if key in names:
            return names[key]
    else:
        if key in names.values():
            return key
        matches = [n for n in sim.input_nodes if n.label == key]
        if len(matches) == 1:
            return names[matches[0]]
    raise ValidationError(
        f"{what}: x has the key {key!r}, which is not an input of this network; expected one of "
        f"{sorted(names.values()) + [STEPS_KEY]}",
        attr="x",
    )


def _named(sim: Any, tree: Any, what: str, inputs: bool) -> Any:
    """``tree`` (x or y of one element) as a dict keyed by Keras names."""
    if tree is None:
        return None
    if isinstance(tree, Mapping):
        if inputs:
            return {_x_key(sim, k, what): v for k, v in tree.items()}
        return {sim._probe_key(k, what): v for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        objs = sim.input_nodes if inputs else sim._probes
        names = sim._input_names if inputs else sim._probe_names
        if len(tree) > len(objs):
            raise ValidationError(
                f"{what}: {'x' if inputs else 'y'} is a list of {len(tree)}; the network has "
                f"{len(objs)} {'input Nodes' if inputs else 'Probes'}",
                attr="x" if inputs else "y",
            )
        return {names[o]: v for o, v in zip(objs, tree)}
    if inputs:
        return {_first_input(sim, what): tree}
    losses = sorted(getattr(sim, "_compiled_losses", ()) or ())
    if len(losses) != 1:
        raise ValidationError(
            f"{what}: the targets are one array but {len(losses)} probes have a loss ({losses}); "
            "expected a dict keyed by probe name",
            attr="y",
        )
    return {losses[0]: tree}


def _generator_dataset(sim: Any, x: Any, what: str) -> Any:
    """A ``tf.data.Dataset`` of a generator's (or ``PyDataset``'s) elements, keyed by name."""
    reiterable = hasattr(x, "__getitem__") and hasattr(x, "__len__") and not hasattr(x, "__next__")
    source = _elements(x)
    try:
        first = next(source)
    except StopIteration:
        raise ValidationError(f"{what}: x ({describe_type(x)}) produced no elements; expected at least one",
                              attr="x") from None

    def convert(element: Any) -> tuple:
        ex, ey, rest = _parts(_numpy(element))
        out = (_named(sim, ex, what, True),)
        if ey is not None:
            out += (_named(sim, ey, what, False),)
        return out + tuple(np.asarray(r) for r in rest)

    head = convert(first)

    def spec(a: Any) -> Any:
        a = np.asarray(a)
        if a.dtype.kind not in "fiub":
            raise ValidationError(
                f"{what}: x yielded {describe_type(a)}; expected numeric arrays", attr="x"
            )
        return tf.TensorSpec((None,) + a.shape[1:], tf.as_dtype(a.dtype))

    signature = tf.nest.map_structure(spec, head)
    state = {"advanced": False}

    def elements() -> Iterator:
        if reiterable:  # a fresh pass per epoch
            yield from (convert(e) for e in _elements(x))
            return
        # a generator runs once; its first element is read ahead (for the signature) and
        # repeats for passes that begin before the generator moved on (a look at the
        # first element for the number of steps)
        if not state["advanced"]:
            yield head
        for e in source:
            state["advanced"] = True
            yield convert(e)

    return tf.data.Dataset.from_generator(elements, output_signature=signature)


def keras_dataset(sim: Any, x: Any, n_steps: int | None, what: str, need_y: bool) -> Any:
    """A dynamic ``x`` as the static-shape ``(inputs, targets)`` dataset the Keras model takes.

    Parameters
    ----------
    sim
        The Simulator (names, dtype, compiled losses, minibatch size).
    x
        A ``tf.data.Dataset``, generator or Keras ``PyDataset`` of ``(x, y)`` elements.
    n_steps
        The ``n_steps`` argument (None: from the data).
    what
        Name of the calling method, used in messages.
    need_y
        Whether the elements must carry targets for the probes with a loss.

    Raises
    ------
    nengo.exceptions.ValidationError
        For unknown names, misshapen elements, missing targets or a number of
        steps that cannot be found.
    """
    ds = x if isinstance(x, tf.data.Dataset) else _generator_dataset(sim, x, what)
    ex, ey, rest = _parts(ds.element_spec)
    if need_y and ey is None:
        raise ValidationError(
            f"{what}: x yields inputs only; expected (inputs, targets) elements (with a dataset or "
            "generator the targets come from it, not from y)",
            attr="x",
        )
    ex = _named(sim, ex, what, True)
    ey = _named(sim, ey, what, False)
    _check_specs(sim, ex, ey, what, need_y)
    dtype = tf.as_dtype(sim.dtype)
    node_keys = sorted(k for k in ex if k != STEPS_KEY)
    steps = n_steps
    if node_keys:
        steps = steps if ex[node_keys[0]].shape[1] is None else int(ex[node_keys[0]].shape[1])
        if n_steps is not None and steps != int(n_steps):
            raise ValidationError(
                f"{what}: n_steps={n_steps!r} but x's inputs have {steps} steps; expected the same",
                attr="n_steps",
            )
    restructure = _restructurer(sim, ds.element_spec, what, ey is not None)

    def to_keras(*element: Any) -> tuple:
        sx, sy, srest = restructure(element)
        out_x = {k: tf.cast(v, dtype) for k, v in sx.items() if k != STEPS_KEY}
        if not out_x:
            n = sx[STEPS_KEY]
            out_x[STEPS_KEY] = tf.zeros((tf.shape(n)[0], steps_holder[0], 0), dtype)
        out = (out_x,)
        if sy is not None:
            out += ({k: tf.cast(v, dtype) for k, v in sy.items()},)
        return out + tuple(srest)

    steps_holder = [steps]
    if not node_keys:
        if STEPS_KEY not in ex:
            raise ValidationError(
                f"{what}: x gives no input data and no 'n_steps' input; expected the 'n_steps' input "
                "(batch, 1) or arrays for input Nodes",
                attr="x",
            )
        if steps is None:  # the steps are a value: read the first element's
            first = next(iter(ds.take(1)), None)
            if first is None:
                raise ValidationError(f"{what}: x is empty; expected at least one element", attr="x")
            fx = restructure(first if isinstance(first, tuple) else (first,))[0]
            _, steps, _ = split_steps_input({STEPS_KEY: np.asarray(fx[STEPS_KEY])}, None, what)
            steps_holder[0] = steps
    ds = ds.map(to_keras)
    if steps is None:  # node data with a dynamic steps axis: fix it to the first element's
        first = next(iter(ds.take(1)))[0]
        steps_holder[0] = steps = int(next(iter(first.values())).shape[1])
    ds = ds.map(lambda *e: _ensure_steps(e, steps))
    first_x = next(iter(ds.element_spec[0].values()))
    if first_x.shape[0] is None:
        if int(ds.cardinality()) > 0:
            # batches of a known count (``.batch(sim.minibatch_size)``): kept as they are,
            # so Keras knows the epoch's length; each must be one minibatch, as in NengoDL
            ds = ds.map(lambda *e: _ensure_batch(e, sim._batch, what))
        else:
            ds = ds.unbatch().batch(sim._batch, drop_remainder=True)
    return ds


def _ensure_batch(element: tuple, batch: int, what: str) -> tuple:
    """One element with its batch axis checked to be ``batch`` (the minibatch size)."""
    got = tf.shape(next(iter(element[0].values())))[0]
    check = tf.debugging.assert_equal(
        got, batch,
        message=(f"{what}: a batch of x has another number of samples than the Simulator's "
                 f"minibatch_size ({batch}); expected every batch to have {batch} (batch the "
                 f"dataset with .batch({batch}, drop_remainder=True))"),
    )
    with tf.control_dependencies([check]):
        return tf.nest.map_structure(lambda t: tf.ensure_shape(tf.identity(t), (batch,) + tuple(t.shape[1:])),
                                     element)


def _ensure_steps(element: tuple, steps: int) -> tuple:
    """Inputs of one element with their steps axis fixed to ``steps``."""
    ex = {k: tf.ensure_shape(v, (None, steps) + tuple(v.shape[2:])) for k, v in element[0].items()}
    return (ex,) + tuple(element[1:])


def _restructurer(sim: Any, spec: Any, what: str, has_y: bool) -> Callable:
    """A function mapping one raw element (as ``Dataset.map`` passes it) to named ``(x, y, rest)``."""

    def restructure(element: tuple) -> tuple:
        raw = element[0] if len(element) == 1 and not isinstance(spec, tuple) else tuple(element)
        ex, ey, rest = _parts(raw)
        return _named(sim, ex, what, True), (_named(sim, ey, what, False) if has_y else None), rest

    return restructure


def _check_specs(sim: Any, ex: dict, ey: dict | None, what: str, need_y: bool) -> None:
    """Shapes of the named inputs and targets, as far as the dataset's spec tells."""
    by_name = {v: k for k, v in sim._input_names.items()}
    for name, s in ex.items():
        if name == STEPS_KEY:
            if s.shape.rank is not None and (s.shape.rank != 2 or s.shape[1] not in (None, 1)):
                raise ValidationError(
                    f"{what}: the 'n_steps' input has shape {s.shape}; expected (batch, 1) copies of "
                    "the number of steps",
                    attr="x",
                )
            continue
        node = by_name[name]
        if s.shape.rank != 3 or s.shape[2] not in (None, node.size_out):
            raise ValidationError(
                f"{what}: x's input {name!r} has shape {s.shape}; expected (batch, n_steps, "
                f"{node.size_out})",
                attr="x",
            )
    if ey is None or not need_y:
        return
    compiled = set(getattr(sim, "_compiled_losses", ()) or ())
    missing, unknown = sorted(compiled - set(ey)), sorted(set(ey) - compiled)
    if missing or unknown:
        raise ValidationError(
            f"{what}: x's targets are for probe(s) {sorted(ey)}; expected targets for the probes "
            f"with a loss: {sorted(compiled)}",
            attr="x",
        )
    for name, s in ey.items():
        if s.shape.rank != 3:
            raise ValidationError(
                f"{what}: x's targets for {name!r} have shape {s.shape}; expected (batch, n_steps, size)",
                attr="x",
            )

