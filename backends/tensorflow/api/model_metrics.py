"""The simulator's Keras model reports only the metrics of its own ``compile``.

A TensorNode may hold a Keras layer that holds a whole compiled Keras model (NengoDL's
"Integrating a Keras model" notebook wraps a trained model, cloned with
``keras.models.clone_model``, which in Keras 3 also clones its compile state). Keras 3
collects every nested model's compile metrics through plain layers, and
``evaluate`` then asks those never-built metrics for a result and fails. NengoDL
reports only the simulator's own losses and metrics; so does this model.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def simulator_model_class() -> type:
    """``SimulatorModel`` whose ``metrics`` leaves out nested models' compile metrics.

    Defined on first use: subclassing a Keras class at import would import TensorFlow.
    """
    from nhw.backends.tensorflow._tf import keras
    from nhw.backends.tensorflow.api.keras_model import SimulatorModel

    class OwnMetricsModel(SimulatorModel):
        """A :class:`SimulatorModel` without the metrics of Keras models nested in its layers."""

        @property
        def metrics(self):
            nested = {id(m) for layer in self._flatten_layers(include_self=False)
                      if isinstance(layer, keras.Model) for m in layer.metrics}
            return [m for m in super().metrics if id(m) not in nested]

    return OwnMetricsModel
