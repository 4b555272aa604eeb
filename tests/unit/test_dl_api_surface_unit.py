"""NengoDL's module layout and Simulator surface on nhw, checked without TensorFlow.

Written from NengoDL 3.6's documented behaviour: ``nengo_dl.__version__``,
``nengo_dl.config.get_setting``, submodules importable by name, and the
Simulator's refusals (``train``/``loss``, pickling, ``tensor_graph``,
``keras_model`` after ``close``).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import nengo
import pytest
from nengo.exceptions import SimulationError, SimulatorClosed, ValidationError

import nhw
import nhw.dl as nengo_dl
from nhw.backends.tensorflow.api.dl_compat import DLCompatMixin
from nhw.backends.tensorflow.api.param_methods import _single, _state_flag

SUBMODULES = ["losses", "callbacks", "dists", "converter", "neurons", "config", "graph_optimizer",
              "simulator", "tensor_node"]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_version_is_nhws_own():
    assert nengo_dl.__version__ == nhw.__version__
    assert "__version__" in dir(nengo_dl)


@pytest.mark.parametrize("name", SUBMODULES)
def test_submodule_imports_by_name_and_is_the_attribute(name):
    # a fresh process: `from nhw.dl.<name> import ...` must work before `nhw.dl.<name>` was read
    code = (f"import importlib, nhw.dl as d; m = importlib.import_module('nhw.dl.{name}'); "
            f"print(m is d.{name}, m is __import__('sys').modules['nhw.dl.{name}'])")
    assert _run(code) == "True True"


def test_from_imports_give_the_same_objects_as_attributes():
    code = ("import nhw.dl as d; from nhw.dl.dists import Glorot; from nhw.dl.neurons import SoftLIFRate; "
            "from nhw.dl.config import configure_settings; "
            "from nhw.dl.graph_optimizer import greedy_planner; "
            "print(Glorot is d.dists.Glorot, SoftLIFRate is d.SoftLIFRate, "
            "configure_settings is d.configure_settings, greedy_planner is d.graph_optimizer.greedy_planner)")
    assert _run(code) == "True True True True"


def test_package_import_and_config_stay_free_of_tensorflow():
    code = ("import sys, nhw.dl as d; from nhw.dl.config import get_setting, configure_settings; "
            "d.__version__; d.config; print('tensorflow' in sys.modules)")
    assert _run(code) == "False"


def test_pyproject_lists_the_dl_package():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert "nhw.dl" in packages


def test_get_setting_follows_nengo_dl():
    from nengo.builder import Model

    from nhw.dl.config import configure_settings, get_setting

    with nengo.Network() as net:
        configure_settings(dtype="float64", keep_history=False, trainable=None)
        node = nengo.Node([0])
        p = nengo.Probe(node)
        ens = nengo.Ensemble(5, 1)
    assert get_setting(net, "dtype") == "float64"
    # unset settings give `default`, not nhw's built-in default (as NengoDL)
    assert get_setting(net, "stateful") is None
    assert get_setting(net, "stateful", default=7) == 7
    assert get_setting(net, "no_such_setting", default="d") == "d"
    # per-object values: the object's own, else the network's
    assert get_setting(net, "keep_history", obj=p) is False
    net.config[p].keep_history = True
    assert get_setting(net, "keep_history", obj=p) is True
    net.config[ens].trainable = False
    assert get_setting(net, "trainable", obj=ens) is False
    # a built model reads its top-level network; one without a network gives the default
    model = Model()
    assert get_setting(model, "dtype", default="x") == "x"
    model.toplevel = net
    assert get_setting(model, "dtype") == "float64"


@pytest.mark.parametrize("objs, single", [
    ("ens", True), ("neurons", True), ("view", True), ("node", True), ("[ens]", False), ("(ens,)", False),
    ("gen", False), ("str", True), ("int", True),
])
def test_single_object_detection(objs, single):
    with nengo.Network():
        ens = nengo.Ensemble(3, 1)
        node = nengo.Node([0, 0])
    value = {"ens": ens, "neurons": ens.neurons, "view": node[0], "node": node, "[ens]": [ens],
             "(ens,)": (ens,), "gen": (e for e in [ens]), "str": "ens", "int": 3}[objs]
    assert _single(value) is single


def test_include_non_trainable_is_a_deprecated_alias():
    assert _state_flag(True, None, "save_params") is True
    assert _state_flag(False, None, "save_params") is False
    with pytest.warns(DeprecationWarning, match="include_non_trainable is deprecated.*include_state"):
        assert _state_flag(False, True, "save_params") is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _state_flag(True, None, "load_params")


class _Base:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class _FakeSim(DLCompatMixin, _Base):
    pass


def test_keras_model_raises_simulator_closed_after_close():
    sim = _FakeSim()
    sim.keras_model = "model"
    assert sim.keras_model == "model"
    sim.close()
    with pytest.raises(SimulatorClosed, match="keras_model.*closed"):
        sim.keras_model  # noqa: B018


def test_keras_model_before_construction_is_an_attribute_error():
    sim = _FakeSim()
    assert not hasattr(sim, "keras_model")


def test_train_and_loss_point_to_compile_fit_evaluate():
    sim = _FakeSim()
    with pytest.raises(SimulationError, match=r"train.*sim\.compile.*sim\.fit"):
        sim.train(1, epochs=2)
    with pytest.raises(SimulationError, match=r"loss.*sim\.compile.*sim\.evaluate"):
        sim.loss()


def test_pickling_raises_not_implemented_with_the_alternatives():
    with pytest.raises(NotImplementedError, match="cannot be pickled.*save_params.*load_params"):
        pickle.dumps(_FakeSim())


def test_tensor_graph_is_an_attribute_error_pointing_to_the_migration_doc():
    sim = _FakeSim()
    with pytest.raises(AttributeError, match="no NengoDL TensorGraph.*docs/nengo-dl-migration.md"):
        sim.tensor_graph  # noqa: B018
    assert not hasattr(sim, "tensor_graph")


def test_get_name_delegates_to_the_io_naming_rule(monkeypatch):
    try:
        from nhw.backends.tensorflow.api import io_names
    except ImportError:  # pragma: no cover - written by another change
        pytest.skip("nhw.backends.tensorflow.api.io_names is not there yet")
    calls = []
    monkeypatch.setattr(io_names, "io_name", lambda sim, obj: calls.append((sim, obj)) or "the_name")
    sim = _FakeSim()
    assert sim.get_name("obj") == "the_name"
    assert calls == [(sim, "obj")]
