"""The target's mapping options, shared by the TF simulator's chip form and its quantiser.

The chip form (input encoding, integer synapses) and quantisation-aware training both
run loihi-emu's mapping on the network, so both must map it with the options the
deployment will use: ``configure_settings(target="loihi-emu", target_options={...})``
(``nhw train``/``nhw deploy`` fill it from ``deploy.options["loihi-emu"]``).
"""

from __future__ import annotations

from typing import Any, Mapping

from nengo.exceptions import ValidationError


def mapping_fields() -> set[str]:
    """Names of loihi-emu's mapping options (``MapOptions`` fields a user may set)."""
    from nhw.backends.loihi_emu.mapping import MapOptions

    return set(MapOptions.__dataclass_fields__) - {"spec"}


def map_options(given: Mapping[str, Any] | None, what: str = "target_options") -> Any:
    """loihi-emu ``MapOptions`` from ``given`` (None: the defaults).

    Raises
    ------
    nengo.exceptions.ValidationError
        An unknown option name or a value ``MapOptions`` refuses, naming it.
    """
    from nhw.backends.loihi_emu.mapping import MapOptions

    given = dict(given or {})
    unknown = sorted(set(given) - mapping_fields())
    if unknown:
        raise ValidationError(f"{what}: unknown loihi-emu mapping option(s) {unknown}; expected some of "
                              f"{sorted(mapping_fields())}", attr="target_options")
    try:
        return MapOptions(**given)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"{what}: {e}", attr="target_options") from None


def network_map_options(network) -> Any:
    """The ``MapOptions`` a network's settings ask for (``target_options``)."""
    from nhw.backends.tensorflow.settings import get_setting

    return map_options(get_setting(network, "target_options"))


def from_simulator_options(options: Mapping[str, Any] | None) -> dict:
    """The mapping options among a loihi-emu Simulator's keyword arguments (``deploy.options``)."""
    fields = mapping_fields()
    return {k: v for k, v in dict(options or {}).items() if k in fields}
