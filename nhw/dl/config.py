"""NengoDL's ``nengo_dl.config``: ``configure_settings`` and ``get_setting``.

No TensorFlow here: settings live in the network's config.
"""

from __future__ import annotations

from typing import Any

import nengo
from nengo.builder import Model
from nengo.exceptions import ConfigError

from nhw.backends.tensorflow.settings import configure_settings, stored_settings

__all__ = ["configure_settings", "get_setting"]


def get_setting(model: nengo.Network | Model, setting: str, default: Any = None, obj: Any = None) -> Any:
    """The value a network's ``configure_settings`` gave ``setting``, else ``default``.

    Parameters
    ----------
    model : nengo.Network or nengo.builder.Model
        The network, or a model built from it (its top-level network is read).
    setting : str
        The setting's name, e.g. ``"dtype"`` or ``"keep_history"``.
    default
        What to return when the setting was not configured (also for a name
        that is no setting, and for a model with no network).
    obj : optional
        The object whose own config value to read (e.g. a Probe's
        ``keep_history``, an Ensemble's ``trainable``); where it has none, the
        network's value is returned. Default: the network itself.

    Returns
    -------
    Any
        The configured value, or ``default``.
    """
    if isinstance(model, Model):
        model = model.toplevel
    if model is None:
        return default
    if obj is not None and obj is not model:
        try:
            return getattr(model.config[obj], setting)
        except (AttributeError, KeyError, TypeError, ConfigError):
            pass  # no value of its own: the network's
    return stored_settings(model).get(setting, default)
