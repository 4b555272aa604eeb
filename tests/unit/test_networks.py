"""The model zoo: every entry builds with typed parameters, named inputs and probes."""

import nengo
import numpy as np
import pytest

from nhw.toolchain import networks as zoo
from nhw.errors import ConfigError, UnknownNameError
from nhw.toolchain.parity_networks import NETWORKS

SMALL = {
    "autoencoder": {"n_in": 16, "n_hidden": 8},
    "rate_spiking": {"n_neurons": 5, "n_steps": 50},
    "digits_classifier": {"n_hidden": 16},
    "digits_cnn": {"filters1": 2, "filters2": 3},
}


def test_zoo_has_the_issue_networks():
    required = {"autoencoder", "sin_x2_chain", "rate_spiking", "digits_classifier", "integrator",
                "oscillator", "circular_convolution", "basal_ganglia", "pes_learning"}
    assert required <= set(zoo.ZOO)
    assert set(NETWORKS) <= set(zoo.ZOO)  # every standard parity network is in the zoo


@pytest.fixture(scope="module")
def nir_path(tmp_path_factory):
    from nhw.toolchain.nir.export import export_nir
    from nhw.toolchain.nir.files import write_nir

    path = tmp_path_factory.mktemp("nir") / "cc.nir"
    write_nir(path, export_nir(zoo.build("communication_channel", {"n_per_dim": 5}).network).graph)
    return str(path)


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_every_entry_builds_and_runs(name, nir_path):
    params = {"path": nir_path} if name == "nir" else SMALL.get(name, {"n_per_dim": 5, "n_steps": 20})
    built = zoo.build(name, params, seed=1)
    assert isinstance(built.network, nengo.Network) and built.probes and built.n_steps > 0
    for p in built.probes.values():
        assert p in built.network.all_probes
    for node in built.inputs.values():
        assert node in built.network.all_nodes and node.size_in == 0
    with nengo.Simulator(built.network, progress_bar=False) as sim:
        sim.run_steps(5)
        assert all(np.all(np.isfinite(sim.data[p])) for p in built.probes.values())


def test_standard_entries_keep_their_declared_tolerances():
    built = zoo.build("integrator", {"n_per_dim": 5, "tau": 0.05})
    assert built.standard is NETWORKS["integrator"]
    assert zoo.build("autoencoder", SMALL["autoencoder"]).standard is None


def test_seed_tutorial_shapes():
    ae = zoo.build("autoencoder", {})
    assert ae.inputs["input"].size_out == 784  # the tutorial's MNIST size by default
    digits = zoo.build("digits_classifier", {})
    assert digits.inputs["input"].size_out == 64 and digits.probes["output"].size_in == 10
    rs = zoo.build("rate_spiking", {})
    assert set(rs.probes) == {"input", "rate", "spikes", "filtered"}


def test_rate_and_spiking_ensembles_share_parameters():
    built = zoo.build("rate_spiking", {"n_neurons": 6})
    with nengo.Simulator(built.network, progress_bar=False) as sim:
        rate, spike = (e for e in built.network.all_ensembles)
        np.testing.assert_array_equal(sim.data[rate].gain, sim.data[spike].gain)
        np.testing.assert_array_equal(sim.data[rate].bias, sim.data[spike].bias)


def test_same_seed_same_weights_other_seed_others():
    def weights(seed):
        built = zoo.build("autoencoder", SMALL["autoencoder"], seed=seed)
        with nengo.Simulator(built.network, progress_bar=False) as sim:
            return sim.data[built.network.all_connections[0]].weights

    np.testing.assert_array_equal(weights(3), weights(3))
    assert not np.array_equal(weights(3), weights(4))
    w = weights(3)
    assert np.abs(w).max() <= np.sqrt(6 / (16 + 8))  # Glorot uniform limit


def test_typed_params():
    with pytest.raises(ConfigError, match=r"params.n_hiden: Extra inputs"):
        zoo.build("autoencoder", {"n_hiden": 3})
    with pytest.raises(ConfigError, match=r"params.n_hidden: Input should be greater than 0"):
        zoo.build("autoencoder", {"n_hidden": 0})
    assert zoo.validate_params("integrator", {"tau": 0.2}).tau == 0.2


def test_unknown_name_suggests():
    with pytest.raises(UnknownNameError, match="did you mean 'integrator'"):
        zoo.get_entry("integator")


def test_factory_return_forms(tmp_path, monkeypatch):
    (tmp_path / "zoo_user.py").write_text(
        "import nengo\n"
        "from nhw.toolchain.networks import BuiltNetwork\n"
        "def _net():\n"
        "    with nengo.Network() as net:\n"
        "        a = nengo.Node([1.0], label='a')\n"
        "        p = nengo.Probe(a, label='pa')\n"
        "    return net, a, p\n"
        "def plain():\n"
        "    return _net()[0]\n"
        "def pair(seed):\n"
        "    net, a, p = _net(); net.seed = seed\n"
        "    return net, {'value': p}\n"
        "def full(n_steps=7):\n"
        "    net, a, p = _net()\n"
        "    return BuiltNetwork(net, {'in': a}, {'value': p}, n_steps)\n"
        "def bad():\n"
        "    return 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(zoo.build_factory("zoo_user:plain").probes) == ["pa"]
    built = zoo.build_factory("zoo_user:pair", seed=5)
    assert built.network.seed == 5 and list(built.probes) == ["value"] and list(built.inputs) == ["a"]
    assert zoo.build_factory("zoo_user:full", {"n_steps": 9}).n_steps == 9
    with pytest.raises(ConfigError, match="returned int"):
        zoo.build_factory("zoo_user:bad")
    with pytest.raises(ConfigError, match="expected 'module:function'"):
        zoo.build_factory("zoo_user")
