"""Make a ``nhw.dl`` submodule *be* the nhw module that implements it.

``from nhw.dl.losses import nan_mse`` must give the very objects that
``nhw.dl.losses.nan_mse`` gives (and that the simulator checks for), so each
submodule file replaces itself in ``sys.modules`` with its implementation; the
import system then binds that module as the attribute of :mod:`nhw.dl`.
"""

from __future__ import annotations

import importlib
import sys


def alias(name: str, target: str) -> None:
    """Make the module ``name`` (being imported) be the module ``target``.

    Parameters
    ----------
    name : str
        The submodule's own ``__name__``, e.g. ``"nhw.dl.losses"``.
    target : str
        The absolute name of the implementing module.
    """
    sys.modules[name] = importlib.import_module(target)
