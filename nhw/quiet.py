"""TensorFlow and Keras without TensorFlow's start-up lines.

``import keras`` prints absl/XLA/cuda lines straight to the terminal's stderr,
whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Scripts that want the project's quiet
import write::

    from nhw.quiet import keras, tf

Both names are stand-ins that import the real module on first attribute access
(silencing stderr during that import only, unless ``TF_CPP_MIN_LOG_LEVEL`` is
below 2); afterwards they are the real modules' namespaces.
"""

from __future__ import annotations

from nhw.backends.tensorflow._tf import keras, tf

__all__ = ["keras", "tf"]
