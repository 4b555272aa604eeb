"""NengoDL's ``nengo_dl.neurons``: ``SoftLIFRate``, ``LeakyReLU``, ``SpikingLeakyReLU``.

This module is :mod:`nhw.backends.neurons` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.neurons")
