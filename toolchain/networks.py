"""The model zoo: named network factories with typed parameters.

Every factory takes a validated parameter model and a seed and returns a
:class:`BuiltNetwork`: the ``nengo.Network`` plus its named input Nodes and output
Probes, and how many steps a default run lasts.  Configs name a zoo entry
(``network: {name: autoencoder, params: {n_hidden: 32}}``) or a user factory
(``network: {factory: "mypkg.nets:build"}``, which runs the user's own code).

>>> built = build("sin_x2_chain", {"n_per_dim": 20}, seed=0)   # doctest: +SKIP
>>> sorted(built.probes), sorted(built.inputs)                  # doctest: +SKIP
(['out', 'x'], ['x'])
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Literal

import nengo
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from nhw.backends.neuron_types import NEURON_TYPES
from nhw.toolchain import parity_networks as std
from nhw.toolchain.digits_cnn import digits_cnn
from nhw.errors import ConfigError, UnknownNameError, UserCodeError
from nhw.names import unknown

#: Config names of neuron types (the shared registry's names).
NeuronName = Literal[tuple(NEURON_TYPES.names())]  # type: ignore[valid-type]


@dataclass
class BuiltNetwork:
    """A network ready to simulate, with named inputs and outputs.

    Parameters
    ----------
    network
        The built ``nengo.Network``.
    inputs
        Input Nodes by name (data can be fed into them).
    probes
        Output Probes by name.
    n_steps
        Length of a default run in time steps.
    standard
        The standard parity network this was built from, if any (declares tolerances).
    """

    network: nengo.Network
    inputs: dict[str, nengo.Node]
    probes: dict[str, nengo.Probe]
    n_steps: int
    standard: std.ParityNetwork | None = None
    #: inputs that replay a stimulus stored with the network (a NIR export's), so need no feed
    replayed: frozenset[str] = frozenset()


class Params(BaseModel):
    """Base of every zoo parameter model: unknown parameters are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ZooEntry:
    """One named factory of the model zoo."""

    name: str
    params: type[Params]
    build: Callable[[Any, int], BuiltNetwork]
    description: str = ""


def input_nodes(network: nengo.Network) -> dict[str, nengo.Node]:
    """The Nodes of ``network`` that produce values without inputs, by label.

    Unlabelled nodes are named ``node0``, ``node1``...; repeated labels get a suffix.
    """
    out: dict[str, nengo.Node] = {}
    for i, node in enumerate(network.all_nodes):
        if node.size_in == 0 and node.output is not None:
            name = node.label or f"node{i}"
            key, k = name, 1
            while key in out:
                key, k = f"{name}_{k}", k + 1
            out[key] = node
    return out


def _glorot(fan_in: int, fan_out: int) -> nengo.dists.Uniform:
    # Keras' glorot_uniform, sampled by nengo's builder from the network seed.
    limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
    return nengo.dists.Uniform(-limit, limit)


# --- standard networks (toolchain.parity_networks), wrapped with typed parameters ----
class StandardParams(Params):
    """Parameters shared by the standard networks."""

    dimensions: PositiveInt | None = Field(None, description="dimensionality (default: the network's own)")
    n_per_dim: PositiveInt = Field(50, description="neurons per represented dimension")
    n_steps: PositiveInt | None = Field(None, description="default run length (default: the network's own)")


class IntegratorParams(StandardParams):
    tau: float = Field(0.1, gt=0, description="recurrent synapse time constant (s)")


class OscillatorParams(StandardParams):
    tau: float = Field(0.1, gt=0, description="recurrent synapse time constant (s)")
    hz: float = Field(1.0, gt=0, description="oscillation frequency")


def _standard(name: str, extra: tuple[str, ...] = ()) -> Callable[[StandardParams, int], BuiltNetwork]:
    net = std.NETWORKS[name]

    def build(p: StandardParams, seed: int) -> BuiltNetwork:
        kwargs = {k: getattr(p, k) for k in extra}
        case = net.build(p.dimensions or net.dimensions, p.n_per_dim, seed, **kwargs)
        return BuiltNetwork(case.network, input_nodes(case.network), dict(case.probes),
                            p.n_steps or case.n_steps, standard=net)

    return build


# --- the seed tutorial's networks and the digits classifier -----------------------
class AutoencoderParams(Params):
    """The seed tutorial's two-layer autoencoder."""

    n_in: PositiveInt = Field(784, description="input size (784 for MNIST, 64 for 8x8 digits)")
    n_hidden: PositiveInt = Field(64, description="hidden neurons")
    neuron_type: NeuronName = "relu"
    n_steps: PositiveInt = 1
    synapse: float | None = Field(
        None, ge=0, description="synapse of both connections (s); None as in the tutorial, so with "
                                "n_steps 1 the output depends on the input within the step and training has gradients")


def autoencoder(p: AutoencoderParams, seed: int) -> BuiltNetwork:
    """Node(n_in) -> Glorot -> n_hidden neurons -> Glorot -> n_in neurons (probed)."""
    neuron = NEURON_TYPES.by_name(p.neuron_type)()
    with nengo.Network(seed=seed, label="autoencoder") as net:
        a = nengo.Node(np.zeros(p.n_in), label="input")
        b = nengo.Ensemble(p.n_hidden, 1, neuron_type=neuron, label="hidden")
        nengo.Connection(a, b.neurons, transform=_glorot(p.n_in, p.n_hidden), synapse=p.synapse)
        c = nengo.Ensemble(p.n_in, 1, neuron_type=neuron, label="output")
        nengo.Connection(b.neurons, c.neurons, transform=_glorot(p.n_hidden, p.n_in), synapse=p.synapse)
        probes = {"output": nengo.Probe(c.neurons, label="output")}
    return BuiltNetwork(net, {"input": a}, probes, p.n_steps)


class RateSpikingParams(Params):
    """The seed tutorial's rate vs spiking comparison."""

    n_neurons: PositiveInt = 10
    hz: float = Field(1.0, gt=0, description="input sine frequency")
    synapse: float = Field(0.05, ge=0, description="filter of the 'filtered' spike probe (s)")
    n_steps: PositiveInt = 1000


def rate_spiking(p: RateSpikingParams, seed: int) -> BuiltNetwork:
    """One sine input into matched rate (ReLU) and spiking (spiking ReLU) ensembles."""
    with nengo.Network(seed=seed, label="rate_spiking") as net:
        a = nengo.Node(lambda t: np.sin(2 * np.pi * p.hz * t), label="input")
        # Same ensemble seed, so the rate and spiking neurons share their parameters.
        ens_seed = int(np.random.RandomState(seed).randint(2**31 - 1))
        rate = nengo.Ensemble(p.n_neurons, 1, neuron_type=nengo.RectifiedLinear(), seed=ens_seed, label="rate")
        spike = nengo.Ensemble(p.n_neurons, 1, neuron_type=nengo.SpikingRectifiedLinear(), seed=ens_seed, label="spiking")
        nengo.Connection(a, rate)
        nengo.Connection(a, spike)
        probes = {
            "input": nengo.Probe(a),
            "rate": nengo.Probe(rate.neurons),
            "spikes": nengo.Probe(spike.neurons),
            "filtered": nengo.Probe(spike.neurons, synapse=p.synapse or None),
        }
    return BuiltNetwork(net, {"input": a}, probes, p.n_steps)


class DigitsParams(Params):
    """A spiking classifier of 8x8 digits (64 inputs, 10 classes)."""

    n_in: PositiveInt = 64
    n_hidden: PositiveInt = 128
    n_classes: PositiveInt = 10
    neuron_type: NeuronName = "spiking_relu"
    max_rate: float = Field(200.0, gt=0, description="hidden neurons' maximum firing rate (Hz)")
    output_synapse: float | None = Field(0.01, ge=0, description="filter on the output probe (s)")
    n_steps: PositiveInt = 30


class DigitsCNNParams(Params):
    """A spiking convolutional classifier of 8x8 digits (:mod:`nhw.toolchain.digits_cnn`)."""

    filters1: PositiveInt = Field(8, description="filters of the first 3x3 convolution (stride 1)")
    filters2: PositiveInt = Field(16, description="filters of the second 3x3 convolution (stride 2)")
    n_classes: PositiveInt = 10
    neuron_type: NeuronName = "spiking_relu"
    max_rate: float = Field(200.0, gt=0, description="neurons' firing rate at input 1 (Hz)")
    transform: Literal["sparse", "convolution"] = Field(
        "sparse", description="how the convolutions are built (quantisation-aware training quantises 'sparse' only)")
    output_synapse: float | None = Field(0.01, ge=0, description="filter on the output probe (s)")
    n_steps: PositiveInt = 30


def _digits_cnn(p: DigitsCNNParams, seed: int) -> BuiltNetwork:
    """8x8 pixels -> conv 3x3 -> conv 3x3 stride 2 -> 10 logits (see :mod:`nhw.toolchain.digits_cnn`)."""
    net, inp, probes = digits_cnn(p, seed)
    return BuiltNetwork(net, {"input": inp}, probes, p.n_steps)


def digits_classifier(p: DigitsParams, seed: int) -> BuiltNetwork:
    """Node(64) -> Glorot -> spiking hidden layer -> Glorot -> Node(10) (logits)."""
    with nengo.Network(seed=seed, label="digits_classifier") as net:
        inp = nengo.Node(np.zeros(p.n_in), label="input")
        hidden = nengo.Ensemble(p.n_hidden, 1, neuron_type=NEURON_TYPES.by_name(p.neuron_type)(),
                                max_rates=nengo.dists.Choice([p.max_rate]),
                                intercepts=nengo.dists.Choice([0.0]), label="hidden")
        out = nengo.Node(size_in=p.n_classes, label="output")
        nengo.Connection(inp, hidden.neurons, transform=_glorot(p.n_in, p.n_hidden), synapse=None)
        nengo.Connection(hidden.neurons, out, transform=_glorot(p.n_hidden, p.n_classes), synapse=None)
        probes = {
            "output": nengo.Probe(out, synapse=p.output_synapse or None, label="output"),
            # unfiltered logits: what training's loss sees (a synapse delays a
            # one-step training sample's output past its only step)
            "logits": nengo.Probe(out, label="logits"),
            "hidden": nengo.Probe(hidden.neurons, label="hidden"),
        }
    return BuiltNetwork(net, {"input": inp}, probes, p.n_steps)


class NIRParams(Params):
    """A network imported from a NIR file (see ``nhw.toolchain.nir.importer``)."""

    path: str = Field(..., description="NIR file to import (absolute, or relative to the config file)")
    n_steps: PositiveInt = Field(1000, description="default run length")
    zero_inputs: bool = Field(
        False, description="run NIR Inputs that nothing feeds with zeros; off, deploying such a network "
                           "is refused (a NIR Input carries no data: set deploy.feed and data instead)")
    allow_subtractive_if: bool = Field(False, description="accept foreign IF nodes as SpikingRectifiedLinear")


def nir_file(p: NIRParams, seed: int) -> BuiltNetwork:
    """Import ``p.path``: NIR Inputs become input Nodes, NIR Outputs become Probes."""
    from nhw.toolchain.nir.importer import import_nir  # reads h5py only when a NIR network is used

    imported = import_nir(p.path, allow_subtractive_if=p.allow_subtractive_if)
    imported.network.seed = seed
    return BuiltNetwork(imported.network, dict(imported.inputs), dict(imported.outputs), p.n_steps,
                        replayed=frozenset(imported.replayed))


_ENTRIES = [
    ZooEntry("autoencoder", AutoencoderParams, autoencoder, "seed tutorial: two-layer ReLU autoencoder"),
    ZooEntry("rate_spiking", RateSpikingParams, rate_spiking, "seed tutorial: rate vs spiking neurons on a sine"),
    ZooEntry("digits_classifier", DigitsParams, digits_classifier, "spiking classifier of 8x8 digits (64 -> 10)"),
    ZooEntry("digits_cnn", DigitsCNNParams, _digits_cnn,
             "spiking convolutional classifier of 8x8 digits (conv 3x3 -> conv 3x3 s2 -> 10)"),
    ZooEntry("sin_x2_chain", StandardParams, _standard("sin_x2_chain"), std.NETWORKS["sin_x2_chain"].description),
    ZooEntry("integrator", IntegratorParams, _standard("integrator", ("tau",)), std.NETWORKS["integrator"].description),
    ZooEntry("oscillator", OscillatorParams, _standard("oscillator", ("tau", "hz")), std.NETWORKS["oscillator"].description),
]
_ENTRIES += [
    ZooEntry(name, StandardParams, _standard(name), net.description)
    for name, net in std.NETWORKS.items()
    if name not in {e.name for e in _ENTRIES}
]

_ENTRIES.append(ZooEntry("nir", NIRParams, nir_file, "a network imported from a NIR file (params.path)"))

#: The model zoo by name.
ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}


def get_entry(name: str) -> ZooEntry:
    """Look up a zoo entry; unknown names get a suggestion and the known names."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        raise UnknownNameError(unknown("network", name, list(ZOO))) from None


def validate_params(name: str, params: dict[str, Any]) -> Params:
    """Validate ``params`` for zoo entry ``name``.

    Raises
    ------
    pydantic.ValidationError
        Unknown or ill-typed parameters (callers format the locations).
    """
    return get_entry(name).params.model_validate(params)


def build(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> BuiltNetwork:
    """Build zoo network ``name`` with ``params`` (validated) and ``seed``.

    Parameters
    ----------
    name
        A key of :data:`ZOO`.
    params
        Factory parameters; unknown keys and wrong types are errors.
    seed
        Network seed (every random choice in the network derives from it).
    """
    entry = get_entry(name)
    try:
        p = entry.params.model_validate(params or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"network {name!r}: params.{loc}: {err['msg']}") from None
    return entry.build(p, seed)


def load_factory(spec: str) -> Callable[..., Any]:
    """Import a user factory ``"module:function"`` (this runs the user's module)."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"factory {spec!r}: expected 'module:function'")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"factory {spec!r}: cannot import {module!r}: {exc}") from None
    func = getattr(mod, attr, None)
    if not callable(func):
        raise ConfigError(f"factory {spec!r}: {module!r} has no function {attr!r}")
    return func


def build_factory(spec: str, params: dict[str, Any] | None = None, seed: int = 0,
                  n_steps: int = 1000) -> BuiltNetwork:
    """Build a network with a user factory ``"module:function"``.

    The function is called with ``params`` as keyword arguments (plus ``seed=`` when
    it accepts one) and returns a :class:`BuiltNetwork`, a ``(network, probes)``
    pair, or a ``nengo.Network`` whose probes are named by label.
    """
    func = load_factory(spec)
    kwargs = dict(params or {})
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature
        sig = None
    if sig is not None:
        if "seed" in sig.parameters:
            kwargs["seed"] = seed
        try:
            # checked before the call, so a misspelt parameter is a config error, not a
            # TypeError from deep inside the user's code
            sig.bind(**kwargs)
        except TypeError as exc:
            takes = [n for n, p in sig.parameters.items() if n != "seed"
                     and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
            raise ConfigError(f"network.params: factory {spec!r} cannot be called with "
                              f"{sorted(params or {})}: {exc}; it takes: {', '.join(takes) or 'no parameters'}") from None
    try:
        result = func(**kwargs)
    except Exception as exc:  # the user's code: say whose, keep the traceback as the cause
        raise UserCodeError(f"factory {spec!r} raised {type(exc).__name__}: {exc}") from exc
    if isinstance(result, BuiltNetwork):
        return result
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nengo.Network):
        net, probes = result
        return BuiltNetwork(net, input_nodes(net), dict(probes), n_steps)
    if isinstance(result, nengo.Network):
        probes = {p.label or f"probe{i}": p for i, p in enumerate(result.all_probes)}
        return BuiltNetwork(result, input_nodes(result), probes, n_steps)
    raise ConfigError(
        f"factory {spec!r} returned {type(result).__name__}; expected a nengo.Network, "
        "(network, probes) or toolchain.networks.BuiltNetwork"
    )


def describe() -> list[tuple[str, str]]:
    """``(name, description)`` of every zoo entry."""
    return [(e.name, e.description) for e in ZOO.values()]
