"""NengoDL's ``nengo_dl.callbacks``: ``NengoSummaries``, ``TensorBoard``, ``IsolateState``.

This module is :mod:`nhw.backends.tensorflow.api.callbacks` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.callbacks")
