"""NengoDL's graph-optimizer names, so ``configure_settings(planner=...)`` code runs unchanged.

NengoDL let users choose how operators are merged and ordered (``planner``,
``sorter``) and which graph simplifications run (``simplifications``). nhw merges
operators with nengo's own optimizer and orders its signals itself, so these choices
never change a result, only NengoDL's build time: ``configure_settings`` accepts them
and the Simulator does not call them (``docs/nengo-dl-migration.md``). The names
exist so that ``from nhw.dl import graph_optimizer`` and the settings that name them
work; calling one directly raises, because nhw has no NengoDL operator graph to give it.
"""

from __future__ import annotations

from typing import Any, Callable

from nhw.errors import UnsupportedFeatureError

#: What each NengoDL hook did there (shown when one is called).
HOOKS: dict[str, str] = {
    "greedy_planner": "planner: merge operators greedily",
    "tree_planner": "planner: search merge orders",
    "transitive_planner": "planner: merge by transitive dependencies",
    "noop_planner": "planner: one operator at a time",
    "order_signals": "sorter: order signals for contiguous reads",
    "noop_order_signals": "sorter: keep the build order",
    "remove_unmodified_resets": "simplification: drop resets of signals nothing updates",
    "remove_zero_incs": "simplification: drop increments by zero",
    "remove_constant_copies": "simplification: fold copies of constants",
    "remove_identity_muls": "simplification: drop multiplications by one",
    "remove_reset_incs": "simplification: turn reset+increment into a copy",
    "mergeable": "whether an operator can join a planner's merged group",
}


def _hook(name: str) -> Callable[..., Any]:
    def hook(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedFeatureError(
            f"nengo_dl.graph_optimizer.{name} ({HOOKS[name]}) was called directly; nhw builds no NengoDL "
            f"operator graph to run it on. Pass it to configure_settings(planner=/sorter=/simplifications=), "
            f"where nhw accepts it and merges operators with nengo's optimizer (results are unchanged)"
        )

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = f"NengoDL's ``{name}`` ({HOOKS[name]}); accepted by ``configure_settings``, not run by nhw."
    return hook


greedy_planner = _hook("greedy_planner")
tree_planner = _hook("tree_planner")
transitive_planner = _hook("transitive_planner")
noop_planner = _hook("noop_planner")
order_signals = _hook("order_signals")
noop_order_signals = _hook("noop_order_signals")
remove_unmodified_resets = _hook("remove_unmodified_resets")
remove_zero_incs = _hook("remove_zero_incs")
remove_constant_copies = _hook("remove_constant_copies")
remove_identity_muls = _hook("remove_identity_muls")
remove_reset_incs = _hook("remove_reset_incs")
mergeable = _hook("mergeable")

#: NengoDL's default ``simplifications`` (users extend it: ``default_simplifications + (f,)``)
default_simplifications = (
    remove_unmodified_resets,
    remove_zero_incs,
    remove_identity_muls,
    remove_constant_copies,
    remove_reset_incs,
)

__all__ = sorted(HOOKS) + ["default_simplifications"]
