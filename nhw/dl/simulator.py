"""NengoDL's ``nengo_dl.simulator``: ``Simulator``.

This module is :mod:`nhw.backends.tensorflow.simulator` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.simulator")
