"""NengoDL's ``nengo_dl.graph_optimizer``: the planner/sorter/simplification names ``configure_settings`` accepts.

This module is :mod:`nhw.backends.tensorflow.graph_optimizer` (see :mod:`nhw.dl._alias`).
"""

from nhw.dl._alias import alias

alias(__name__, "nhw.backends.tensorflow.graph_optimizer")
