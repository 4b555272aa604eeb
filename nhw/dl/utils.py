"""NengoDL's ``nengo_dl.utils``: ``sanitize_name``, ``function_name``, ``align_func``,
``numpy_function`` and the progress bars.

This module is :mod:`nhw.backends.tensorflow.api.dl_utils` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.api.dl_utils")
