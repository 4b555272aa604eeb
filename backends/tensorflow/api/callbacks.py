"""Keras callbacks for the TensorFlow Simulator (NengoDL's ``nengo_dl.callbacks``).

Pass them to ``sim.fit``/``sim.evaluate``/``sim.predict`` like any Keras
callback::

    sim.fit(x, y, callbacks=[callbacks.NengoSummaries("logs", sim, [ens, conn])])

* :class:`NengoSummaries` writes histograms of nengo parameters (encoders,
  biases, connection weights) for TensorBoard at the end of every epoch.
* :class:`TensorBoard` is Keras' TensorBoard callback that also records
  ``predict`` runs.
* :class:`IsolateState` makes every batch start from the simulation state the
  callback was created in, and returns the simulator to it afterwards.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import nengo
import numpy as np
from nengo.ensemble import Neurons
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow._tf import keras, tf  # imported on first use


def _sanitize(name: str) -> str:
    # TensorBoard tag names: keep them readable and free of characters that
    # TensorFlow's name scopes reject
    return re.sub(r"[^A-Za-z0-9_.\-/]+", "_", name)


class NengoSummaries(keras.callbacks.Callback):
    """Log nengo parameter values as TensorBoard histograms after every epoch.

    Parameters
    ----------
    log_dir : str or os.PathLike
        Directory of the TensorBoard event file.
    sim : Simulator
        The simulator whose (trained) values are logged.
    objects : list of nengo.Ensemble, nengo.ensemble.Neurons or nengo.Connection
        An Ensemble logs its encoders, ``ens.neurons`` its biases and a
        Connection its weights (decoders times transform, or the transform).

    Raises
    ------
    nengo.exceptions.ValidationError
        For an object of another type, or a Connection without weights.
    """

    def __init__(self, log_dir: Any, sim: Any, objects: Iterable) -> None:
        super().__init__()
        self.sim = sim
        self.summaries: list = []
        for obj in objects:
            if isinstance(obj, nengo.Ensemble):
                self.summaries.append((_sanitize(f"Ensemble_{obj.label}_encoders"), obj, "encoders"))
            elif isinstance(obj, Neurons):
                self.summaries.append((_sanitize(f"Ensemble.neurons_{obj.ensemble.label}_bias"), obj, "bias"))
            elif isinstance(obj, nengo.Connection):
                built = sim.model.params.get(obj) if obj in sim.model.params else None
                if built is None or getattr(built, "weights", None) is None:
                    raise ValidationError(
                        f"NengoSummaries: {obj} has no weights to log (expected a Connection "
                        "with a transform or decoders; got one that passes values through)",
                        attr="objects",
                    )
                self.summaries.append((_sanitize(f"Connection_{obj.label}_weights"), obj, "weights"))
            else:
                raise ValidationError(
                    f"NengoSummaries: cannot log {obj!r} ({type(obj).__name__}); expected an "
                    "Ensemble (encoders), ens.neurons (biases) or a Connection (weights)",
                    attr="objects",
                )
        # created last: a bad object must not leave an open event file behind
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Write one histogram per logged parameter."""
        values = self.sim.data.get_params(*[(obj, attr) for _, obj, attr in self.summaries])
        with self.writer.as_default():
            for (name, _, _), value in zip(self.summaries, values):
                tf.summary.histogram(name, value, step=epoch)
        self.writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        """Close the event file."""
        self.writer.close()


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback that also records ``sim.predict`` runs.

    Keras only logs training and evaluation; NengoDL users profile inference
    with this callback too, so predict batches are logged like training batches.
    """

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Open the writers as for training."""
        self.on_train_begin(logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Count predict batches like training batches."""
        self.on_train_batch_end(batch, _scalars(logs))

    def on_predict_end(self, logs: dict | None = None) -> None:
        """Close the writers as after training."""
        self.on_train_end(logs)


def _scalars(logs: dict | None) -> dict:
    # predict logs carry the output arrays (flattened by Keras into the logs),
    # which are not scalars to log
    return {k: v for k, v in (logs or {}).items() if k != "outputs" and np.ndim(v) == 0}


class IsolateState(keras.callbacks.Callback):
    """Start every batch from the simulation state at the time of creation.

    At the end of every batch (and so also after the whole call) the
    simulator's state, its time and its Processes' random state are restored
    to what they were when this callback was created. The simulator's own
    ``stateful=False`` runs behave this way already; the callback is for
    calls that pass ``stateful=True`` but want one batch isolated (in
    ``fit``/``evaluate`` the next batch then starts from the restored state too),
    and for NengoDL code that creates it explicitly.

    Parameters
    ----------
    sim : Simulator
        The simulator whose state is isolated.
    """

    def __init__(self, sim: Any) -> None:
        super().__init__()
        self.sim = sim
        self.saved_state = sim._save_state()

    def reset(self) -> None:
        """Restore the saved state (and simulation time)."""
        self.sim._restore_state(self.saved_state)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Restore the state after a training batch."""
        self.reset()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Restore the state after an evaluation batch."""
        self.reset()

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Restore the state after a predict batch."""
        self.reset()
