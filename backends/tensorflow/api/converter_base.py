"""The Converter's shared pieces: its errors, the tensor-keyed lookup tables and the
value every layer handler returns.

No handler and no Converter here: :mod:`.converter_layers` (built-in handlers),
:mod:`.converter_user` (NengoDL's ``LayerConverter`` for user converters) and
:mod:`.converter` (the graph walk) all import from this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from nhw.backends.tensorflow._tf import keras  # the quiet import: TensorFlow's start-up lines stay hidden
from nhw.errors import UnsupportedFeatureError


class ConversionError(UnsupportedFeatureError):
    """A Keras model (or one of its layers) that cannot be converted."""


class LayerNotConvertibleError(ConversionError, TypeError):
    """A layer without a native nengo equivalent while ``allow_fallback=False``.

    Also a ``TypeError``: NengoDL raises that for the same case.
    """


class SharedWeightsError(ConversionError, ValueError):
    """A layer with weights applied more than once while ``split_shared_weights=False``.

    Also a ``ValueError``: NengoDL raises that for the same case.
    """


class InputShapeError(ConversionError, ValueError):
    """A model input whose shape is not fixed (after batch, and time in a temporal model).

    Also a ``ValueError``: NengoDL raises that for the same case.
    """


class VerificationError(ConversionError, ValueError):
    """``Converter.verify``: the converted network computes something else than Keras.

    Also a ``ValueError``: NengoDL raises that for the same case.
    """


class _NotNative(ConversionError):
    """This layer (configuration) has no native nengo equivalent: a TensorNode may run it."""


@dataclass(frozen=True)
class _Out:
    """The nengo object holding one Keras tensor, and that tensor's shape (one time step,
    no batch axis)."""

    obj: Any
    shape: tuple[int, ...]
    spiking_source: bool = False  # output of neurons: gets the converter's synapse

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def is_keras_tensor(value: Any) -> bool:
    """Whether ``value`` is a symbolic Keras tensor (a layer's input or output)."""
    return isinstance(value, keras.KerasTensor)


class KerasTensorDict(Mapping):
    """A mapping keyed by Keras tensors, layers, or lists of tensors.

    Keras tensors overload ``==`` (it builds a symbolic comparison), so they are matched
    by identity. A ``Layer`` key that was stored directly is found directly; any other
    layer is looked up through its output tensor, which Keras defines only for a layer
    called once (a layer called several times is ambiguous: use the output tensor of
    the call you mean).
    """

    def __init__(self) -> None:
        self._values: dict = {}
        self._keys: dict = {}  # normalised key -> the key as given (keeps it alive)

    @staticmethod
    def _norm(key: Any) -> Any:
        if isinstance(key, (list, tuple)):
            if len(key) == 1:
                return KerasTensorDict._norm(key[0])
            return tuple(KerasTensorDict._norm(k) for k in key)
        return ("id", id(key))

    def __setitem__(self, key: Any, value: Any) -> None:
        k = self._norm(key)
        self._values[k] = value
        self._keys[k] = key

    def __delitem__(self, key: Any) -> None:
        k = self._norm(key)
        del self._values[k]
        del self._keys[k]

    def __getitem__(self, key: Any) -> Any:
        k = self._norm(key)
        if k in self._values:
            return self._values[k]
        if isinstance(key, keras.layers.Layer):
            if len(getattr(key, "_inbound_nodes", ())) > 1:
                raise KeyError(f"layer '{key.name}' is called {len(key._inbound_nodes)} times, so it is "
                               "ambiguous; use the output tensor of one call as the key")
            try:
                output = key.output
            except (AttributeError, ValueError) as e:  # never called, or called several times
                raise KeyError(f"layer '{key.name}' has no single output tensor ({e}); "
                               "use the output tensor of one call as the key") from None
            k = self._norm(output)
            if k in self._values:
                return self._values[k]
        name = getattr(key, "name", None) or repr(key)
        raise KeyError(f"{name!r} is not a key of this converter mapping")

    def __contains__(self, key: Any) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        names = [getattr(k, "name", repr(k)) for k in self._keys.values()]
        return f"KerasTensorDict({names})"
