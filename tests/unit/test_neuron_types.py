"""The shared neuron-type registry: names, MRO lookups, equations that change the model."""

from __future__ import annotations

import nengo
import pytest

from nhw.backends.neuron_types import NEURON_TYPES, NeuronTypeRegistry
from nhw.errors import UnsupportedFeatureError


class ParamLIF(nengo.LIF):
    """Only other parameters: still nengo's LIF equations."""


class OwnStepLIF(nengo.LIF):
    def step(self, dt, J, output, voltage, refractory_time):
        output[...] = J


def test_lookup_walks_the_mro_but_not_past_new_equations():
    reg = NeuronTypeRegistry()
    reg.register(nengo.LIF, "lif")
    reg.attach(nengo.LIF, "chip", "lif-model")
    assert reg.lookup(nengo.LIF, "chip") == "lif-model"
    assert reg.lookup(ParamLIF, "chip") == "lif-model"
    assert reg.lookup(ParamLIF, "chip", exact=True) is None
    assert reg.lookup(OwnStepLIF, "chip") is None
    assert reg.lookup(nengo.RectifiedLinear, "chip") is None


def test_get_names_the_target_and_the_supported_types():
    reg = NeuronTypeRegistry()
    reg.register(nengo.LIF, "lif")
    reg.attach(nengo.LIF, "chip", object())
    with pytest.raises(UnsupportedFeatureError, match="chip: neuron type OwnStepLIF is not supported; supported: LIF"):
        reg.get(OwnStepLIF, "chip", "chip")


def test_names_are_unique_and_types_only():
    reg = NeuronTypeRegistry()
    reg.register(nengo.LIF, "lif")
    with pytest.raises(ValueError, match="already names LIF"):
        reg.register(nengo.LIFRate, "lif")
    with pytest.raises(ValueError, match="NeuronType subclass"):
        reg.register(int, "int")
    with pytest.raises(KeyError, match="unknown neuron type 'lifx'; known: lif"):
        reg.by_name("lifx")


def test_config_names_build_their_types():
    for name in NEURON_TYPES.names():
        assert isinstance(NEURON_TYPES.by_name(name)(), nengo.neurons.NeuronType)


@pytest.mark.opencl
def test_opencl_attaches_its_types_in_one_place():
    pytest.importorskip("nengo_ocl")
    import nhw.backends.opencl  # noqa: F401 (attaches its neuron checks)

    assert set(NEURON_TYPES.supported("opencl")) >= {"LIF", "LIFRate", "RectifiedLinear", "SpikingRectifiedLinear"}
    # nengo-ocl dispatches on the class name: a parameter-only subclass is not covered
    assert NEURON_TYPES.lookup(ParamLIF, "opencl", exact=True) is None
