"""NengoDL's ``nengo_dl.dists``: ``Glorot``, ``He``, ``TruncatedNormal``, ``VarianceScaling``.

This module is :mod:`nhw.backends.tensorflow.api.dists` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.dists")
