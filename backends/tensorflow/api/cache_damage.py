"""A damaged saved XLA program met by Keras' training, evaluation or prediction: a clear error.

The simulator's own loop works around such an entry by itself (``runtime/loop.py``).
``fit``, ``evaluate`` and Keras' ``predict`` call Keras' traced functions instead, and
a truncated entry reaches Keras as ``OutOfRangeError``, which Keras takes for the end
of the data: ``fit`` would stop at once, with a warning and an empty history, having
trained nothing. TensorFlow also remembers a failed load for the function it traced,
so a retry in the same process would fail the same way. So each traced function is
wrapped: on TensorFlow's damaged-cache errors the damaged entries are removed, the
model's traced functions are dropped (the next call traces them under new names, so
new cache keys), and the call stops with a :class:`BackendError` that says so.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from nhw.backends.tensorflow.runtime import xla_cache
from nhw.errors import BackendError

#: the Keras model's traced functions, and the simulator calls that use them
FUNCTIONS = {"train_function": "fit", "test_function": "evaluate", "predict_function": "predict"}


def guarded(fn: Callable | None, model: Any, name: str) -> Callable | None:
    """``fn`` (the model's traced ``name``), raising :class:`BackendError` where TensorFlow cannot load its program."""
    if fn is None or getattr(fn, "_nhw_guarded", False):
        return fn

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if not xla_cache.is_damage(err):
                raise
            raise _stopped(err, model, FUNCTIONS[name]) from err

    call._nhw_guarded = True
    return call


def _stopped(err: BaseException, model: Any, call: str) -> BackendError:
    directory, found = xla_cache.mend(err)
    for name in FUNCTIONS:
        setattr(model, name, None)
    return BackendError(
        f"{call}: {xla_cache.describe(err, directory, found)} and will trace the program anew: call "
        f"{call} again (it stopped at its first use of that program: with validation data that "
        "may be after the first epoch's updates), or set NHW_XLA_CACHE=off"
    )
