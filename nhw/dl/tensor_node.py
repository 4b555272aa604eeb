"""NengoDL's ``nengo_dl.tensor_node``: ``TensorNode``, ``Layer``, ``tensor_layer``.

This module is :mod:`nhw.backends.tensorflow.api.tensor_node` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.tensor_node")
