"""NengoDL's string names of a network's input Nodes and Probes.

Keras inputs and outputs, metric keys (``<probe>_loss``) and string keys of
``x``/``y`` data use these names, so code written for NengoDL finds the same
ones here:

- a labelled object is named by its label with characters TensorFlow does
  not allow in a name removed (spaces and ``:`` become ``_``; see
  :func:`sanitize_name`);
- an unlabelled one by its type in lower case (``"node"``, ``"probe"``);
- names repeat-count case-insensitively in one sequence, input Nodes first
  (in ``network.all_nodes`` order), then Probes (in build order): the second
  ``"node"`` is ``"node_1"``, the third ``"node_2"``.

Input Nodes, for naming, are NengoDL's: every Node with ``size_in == 0`` that
is not a TensorNode. Where NengoDL's counting would give two objects the same
name (an unlabelled Node beside one labelled ``"node_1"``), the later one
takes the next free number instead, and the name ``"n_steps"`` is reserved
for the special steps input.
"""

from __future__ import annotations

import re
from typing import Any

import nengo
from nengo.exceptions import ValidationError

#: the special input that carries the number of steps (NengoDL's name)
STEPS_NAME = "n_steps"

_INVALID = re.compile(r"[^A-Za-z0-9_.\-/]")


def sanitize_name(name: Any) -> str:
    """``name`` with the characters TensorFlow forbids in names removed.

    Parameters
    ----------
    name
        A label (anything else is converted with ``str``).

    Returns
    -------
    str
        Spaces and ``:`` replaced by ``_``; other characters outside
        ``[A-Za-z0-9_.-/]`` dropped (NengoDL's ``utils.sanitize_name``).
    """
    text = str(name).replace(" ", "_").replace(":", "_")
    return _INVALID.sub("", text)


def _is_tensor_node(node: Any) -> bool:
    from nhw.backends.tensorflow.api.tensor_node import TensorNode

    return isinstance(node, TensorNode)


def _build_order_probes(network: nengo.Network) -> list:
    """Probes in the order nengo's builder builds them (sub-networks first)."""
    out: list = []
    for sub in network.networks:
        out.extend(_build_order_probes(sub))
    out.extend(network.probes)
    return out


def _named_objects(sim_or_network: Any) -> tuple[list, list]:
    """``(input Nodes, Probes)`` in naming order, of a Simulator or a network."""
    if isinstance(sim_or_network, nengo.Network):
        network, probes = sim_or_network, _build_order_probes(sim_or_network)
    else:
        model = getattr(sim_or_network, "model", None)
        network = getattr(model, "toplevel", None)
        probes = list(getattr(sim_or_network, "_probes", None) or getattr(model, "probes", []))
    nodes = [] if network is None else [
        n for n in network.all_nodes if n.size_in == 0 and not _is_tensor_node(n)
    ]
    # Nodes the simulator feeds beyond NengoDL's (none, normally) are named after them
    known = set(nodes)
    extra = [n for n in getattr(sim_or_network, "input_nodes", None) or [] if n not in known]
    return nodes + extra, probes


def io_names(sim_or_network: Any) -> dict:
    """NengoDL's names of every input Node and Probe.

    Parameters
    ----------
    sim_or_network
        A TensorFlow :class:`~nhw.backends.tensorflow.Simulator` or a
        ``nengo.Network``.

    Returns
    -------
    dict
        ``{Node or Probe: name}``, input Nodes first (see the module docstring).
    """
    nodes, probes = _named_objects(sim_or_network)
    counts: dict = {}
    used = {STEPS_NAME}
    names: dict = {}
    for obj in nodes + probes:
        base = type(obj).__name__.lower() if obj.label is None else sanitize_name(obj.label)
        if not base:  # a label made only of forbidden characters
            base = type(obj).__name__.lower()
        key = base.lower()
        name = base
        while True:
            n = counts.get(key, 0)
            counts[key] = n + 1
            name = base if n == 0 else f"{base}_{n}"
            if name not in used:
                break
        used.add(name)
        names[obj] = name
    return names


def io_name(sim_or_network: Any, obj: Any) -> str:
    """NengoDL's name of an input Node or a Probe (``Simulator.get_name``).

    Parameters
    ----------
    sim_or_network
        A TensorFlow Simulator or a ``nengo.Network``.
    obj
        An input Node (``size_in == 0``) or a Probe of that network.

    Returns
    -------
    str
        The name used for ``obj`` in string-keyed data and metric names.

    Raises
    ------
    nengo.exceptions.ValidationError
        If ``obj`` is not a Node or Probe, not an input Node, or not part of
        the network.
    """
    names = io_names(sim_or_network)
    if obj in names:
        return names[obj]
    if isinstance(obj, nengo.Node):
        why = ("is not an input Node (expected a nengo.Node with size_in == 0)" if obj.size_in
               else "is not part of this network")
    elif isinstance(obj, nengo.Probe):
        why = "is not part of this network"
    else:
        why = f"is a {type(obj).__name__}; expected a nengo.Node (size_in == 0) or a nengo.Probe"
    raise ValidationError(f"get_name: {obj!r} {why}", attr="obj")


def apply_io_names(sim: Any) -> None:
    """Name ``sim``'s Keras inputs and outputs with :func:`io_names`.

    Sets the simulator's ``_input_names``, ``_probe_names`` and
    ``_probe_by_name`` maps, which the Keras model, training and prediction read.
    """
    names = io_names(sim)
    sim._input_names = {n: names[n] for n in sim.input_nodes}
    sim._probe_names = {p: names[p] for p in sim._probes}
    sim._probe_by_name = {v: k for k, v in sim._probe_names.items()}
