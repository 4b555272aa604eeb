"""``<probe>_loss`` of a model with one loss, reported as Keras reports per-output losses.

Keras names per-output losses only when a model has several; NengoDL programs read
``<probe>_loss`` in any case. Keras computes each output's loss with the output's
sample weights and the loss's own reduction (sum over the batch size), then averages
the batches' values weighted by their sizes; this metric does the same, so with
``sample_weight`` or ``class_weight`` it equals ``loss`` (less regularization and
``loss_weights``) instead of an unweighted mean.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["output_loss"]


def output_loss(loss: Any, name: str) -> Any:
    """A Keras metric tracking ``loss`` (a loss name, function or ``keras.losses.Loss``) as Keras tracks an output's loss."""
    return _output_loss_class()(loss, name=name)


@lru_cache(maxsize=1)
def _output_loss_class() -> type:
    # defined on first use: subclassing a Keras class at import would import TensorFlow
    from nhw.backends.tensorflow._tf import keras, tf

    class FunctionLoss(keras.losses.Loss):
        """A loss function with Keras's default reduction and sample weighting."""

        def __init__(self, fn: Any) -> None:
            super().__init__(name=getattr(fn, "__name__", "loss"))
            self.fn = fn

        def call(self, y_true, y_pred):
            return self.fn(y_true, y_pred)

    class OutputLoss(keras.metrics.Metric):
        """Batch-size-weighted mean of one output's (sample-weighted) loss."""

        def __init__(self, loss: Any, name: str) -> None:
            super().__init__(name=name)
            fn = keras.losses.get(loss) if isinstance(loss, str) else loss
            self._loss = fn if isinstance(fn, keras.losses.Loss) else FunctionLoss(fn)
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            value = tf.cast(self._loss(y_true, y_pred, sample_weight), self.dtype)
            # Keras scales a loss down by the replicas in sync; the metric reports it whole
            value *= tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, self.dtype)
            n = tf.cast(tf.shape(y_pred)[0], self.dtype)
            self.total.assign_add(value * n)
            self.count.assign_add(n)

        def result(self):
            return tf.math.divide_no_nan(self.total, self.count)

        def reset_state(self):
            self.total.assign(0.0)
            self.count.assign(0.0)

    return OutputLoss
