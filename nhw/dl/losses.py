"""NengoDL's ``nengo_dl.losses``: loss functions such as ``nan_mse``.

This module is :mod:`nhw.backends.tensorflow.api.losses` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.losses")
