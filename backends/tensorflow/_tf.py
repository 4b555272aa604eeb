"""The one place TensorFlow is imported, quietly.

TensorFlow 2.21 prints absl/XLA start-up lines ("All log messages before
absl::InitializeLog() ...", "Could not find cuda drivers ...") straight to file
descriptor 2 during import, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Unless the
user asked for TensorFlow's logs (``TF_CPP_MIN_LOG_LEVEL`` < 2), stderr is
pointed at /dev/null for the duration of the import only; Python exceptions
are raised after it is restored.
"""

from __future__ import annotations

import os
import sys


def _import_quietly():
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") < "2":
        import tensorflow

        return tensorflow
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. some embedded interpreters)
        import tensorflow

        return tensorflow
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


tf = _import_quietly()
