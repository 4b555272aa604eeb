"""``Converter.verify``: the converted network against the Keras model it came from."""

from __future__ import annotations

import logging
from typing import Callable

import nengo
import numpy as np

from nhw.backends.tensorflow._tf import keras  # the quiet import
from nhw.backends.tensorflow.api.converter_base import VerificationError

logger = logging.getLogger(__name__)

#: what ``verify(training=True)`` runs on both sides (NengoDL's recipe)
TRAIN_EPOCHS, TRAIN_LEARNING_RATE = 3, 0.1


def _as_list(inputs) -> list[np.ndarray]:
    if isinstance(inputs, np.ndarray):
        return [inputs]
    return [np.asarray(x) for x in inputs]


def verify_converter(conv, training, inputs, atol: float, rtol: float, simulator: Callable | None,
                     seed: int) -> bool:
    """See :meth:`.Converter.verify`."""
    if not isinstance(training, (bool, np.bool_)) and inputs is None:
        # nhw's earlier form verify(inputs): an array where NengoDL has ``training``
        inputs, training = training, False
    model = conv.model
    in_tensors, out_tensors = list(model.inputs), list(model.outputs)
    if inputs is None:
        prefix = (2, 10) if conv.temporal_model else (2,)
        xs = [np.ones(prefix + tuple(t.shape[len(prefix):])) for t in in_tensors]
    else:
        xs = _as_list(inputs)
    if len(xs) != len(in_tensors):
        raise VerificationError(f"verify: model '{model.name}' has {len(in_tensors)} inputs, got {len(xs)} arrays")
    batch = xs[0].shape[0]
    n_steps = xs[0].shape[1] if conv.temporal_model else 1
    step_x = [x.reshape(batch, n_steps, -1) for x in xs]
    keras_in = xs[0] if len(xs) == 1 else xs

    if training:
        ys = [np.ones((batch,) + ((n_steps,) if conv.temporal_model else ()) + tuple(t.shape[conv.n_prefix:]))
              for t in out_tensors]
        model.compile(optimizer=keras.optimizers.SGD(TRAIN_LEARNING_RATE), loss="mse")
        model.fit(keras_in, ys[0] if len(ys) == 1 else ys, epochs=TRAIN_EPOCHS, batch_size=batch, verbose=0)
    expected = model.predict(keras_in, verbose=0)
    expected = [np.asarray(e) for e in (expected if isinstance(expected, (list, tuple)) else [expected])]

    in_nodes = [conv.inputs[t] for t in in_tensors]
    probes = [conv.outputs[t] for t in out_tensors]
    if simulator is None:
        from nhw.backends.tensorflow.simulator import Simulator

        simulator = Simulator
    from nhw.backends.tensorflow.simulator import Simulator as TFSimulator

    if isinstance(simulator, type) and issubclass(simulator, TFSimulator):
        got = _run_tf(conv, simulator, in_nodes, probes, step_x, batch, n_steps, training, seed,
                      ys if training else None)
    else:
        if training:
            raise VerificationError(f"verify(training=True) trains in nhw's TensorFlow Simulator; "
                                    f"{getattr(simulator, '__name__', simulator)} cannot train")
        got = _run_stepwise(simulator, conv.net, in_nodes, probes, step_x, seed)

    worst = 0.0
    for tensor, want, have in zip(out_tensors, expected, got):
        want, have = np.ravel(want), np.ravel(have)
        if want.size != have.size:
            raise VerificationError(f"verify: output '{tensor.name}' has {have.size} values in nengo, "
                                    f"{want.size} in Keras")
        diff = np.abs(want - have)
        worst = max(worst, float(diff.max(initial=0.0)))
        bad = ~np.isclose(want, have, atol=atol, rtol=rtol)
        if np.any(bad):
            conv.verify_error = worst
            logger.info("verify: Keras %s, nengo %s", want[bad], have[bad])
            raise VerificationError(
                f"verify: output '{tensor.name}' of the converted network differs from Keras at "
                f"{int(bad.sum())} of {bad.size} values (largest difference {diff[bad].max():.3g}; "
                f"atol={atol:g}, rtol={rtol:g})")
    conv.verify_error = worst
    return True


def _run_tf(conv, simulator, in_nodes, probes, step_x, batch, n_steps, training, seed, ys) -> list:
    with simulator(conv.net, minibatch_size=batch, seed=seed, progress_bar=False) as sim:
        if training:
            keras_count = sum(int(np.prod(w.shape)) for w in conv.model.trainable_weights)
            nengo_count = sum(int(np.prod(w.shape)) for w in sim.keras_model.trainable_weights)
            if keras_count != nengo_count:
                raise VerificationError(
                    f"verify(training=True): the converted network has {nengo_count} trainable "
                    f"parameters, the Keras model {keras_count}")
            targets = {p: y.reshape(batch, n_steps, -1) for p, y in zip(probes, ys)}
            sim.compile(optimizer=keras.optimizers.SGD(TRAIN_LEARNING_RATE), loss={p: "mse" for p in probes})
            sim.fit(dict(zip(in_nodes, step_x)), targets, epochs=TRAIN_EPOCHS, verbose=0)
        out = sim.predict(dict(zip(in_nodes, step_x)))
    return [out[p] for p in probes]


def _run_stepwise(simulator, net, in_nodes, probes, step_x, seed) -> list:
    """Another target: each (batch item, step) presented for one step, in order."""
    originals = [n.output for n in in_nodes]
    batch, n_steps = step_x[0].shape[:2]
    try:
        for node, x in zip(in_nodes, step_x):
            node.output = nengo.processes.PresentInput(x.reshape(batch * n_steps, -1), presentation_time=0.001)
        with simulator(net, progress_bar=False, seed=seed) as sim:
            sim.run_steps(batch * n_steps)
            return [sim.data[p] for p in probes]
    finally:
        for node, out in zip(in_nodes, originals):
            node.output = out
