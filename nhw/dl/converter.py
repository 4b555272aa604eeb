"""NengoDL's ``nengo_dl.converter``: ``Converter`` (Keras model to nengo network).

This module is :mod:`nhw.backends.tensorflow.api.converter` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.converter")
