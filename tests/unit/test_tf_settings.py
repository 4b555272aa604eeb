"""configure_settings, trainable flags and parameter names of the TF simulator (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nengo
import pytest
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow.runtime.params import object_names
from nhw.backends.tensorflow.settings import configure_settings, get_setting, trainable_map

ROOT = Path(__file__).resolve().parents[2]


def test_modules_do_not_import_tensorflow():
    code = (
        "import sys, nengo\n"
        "from nhw.backends.tensorflow.settings import configure_settings\n"
        "from nhw.backends.tensorflow.runtime.params import object_names, select_params\n"
        "from nhw.backends.tensorflow.api.freeze import apply_params, connection_params\n"
        "with nengo.Network() as net:\n"
        "    configure_settings(trainable=False, lif_smoothing=0.1)\n"
        "object_names(net)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("setting", [
    {"inference_only": True},
    {"lif_smoothing": 0.05},
    {"training_mode": "spiking_aware"},
    {"dtype": "float64"},
    {"keep_history": False},
])
def test_each_setting_alone_on_a_fresh_network(setting):
    # (regression: settings without trainable= failed on a network whose config
    # did not yet configure nengo.Network)
    with nengo.Network() as net:
        nengo.Ensemble(5, 1)
        configure_settings(**setting)
    (name, value), = setting.items()
    assert get_setting(net, name) == value
    other = nengo.Network()
    assert get_setting(other, name) != value


def test_settings_accumulate_and_defaults():
    with nengo.Network() as net:
        configure_settings(lif_smoothing=0.1)
        configure_settings(training_mode="spiking_aware")
    assert get_setting(net, "lif_smoothing") == 0.1
    assert get_setting(net, "training_mode") == "spiking_aware"
    assert get_setting(net, "inference_only") is False
    assert get_setting(None, "training_mode") == "rate"


@pytest.mark.parametrize("kwargs, match", [
    ({"bogus": 1}, "unknown setting 'bogus'"),
    ({"lif_smoothing": -1}, "lif_smoothing must be"),
    ({"lif_smoothing": True}, "lif_smoothing must be"),
    ({"training_mode": "spiking"}, "training_mode must be"),
    ({"dtype": "float16"}, "dtype must be"),
    ({"trainable": 1.5}, "trainable must be"),
    ({"inference_only": 1}, "inference_only must be"),
])
def test_bad_settings(kwargs, match):
    with nengo.Network():
        with pytest.raises(ValidationError, match=match):
            configure_settings(**kwargs)


def test_configure_outside_network():
    with pytest.raises(ValidationError, match="with net:"):
        configure_settings(lif_smoothing=0.1)


def test_trainable_resolution():
    with nengo.Network() as net:
        configure_settings(trainable=None)
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        c = nengo.Connection(a, b)
        net.config[a].trainable = False
        net.config[c].trainable = False
        with nengo.Network() as sub:
            d = nengo.Ensemble(5, 1)
            e = nengo.Ensemble(5, 1)
        net.config[sub].trainable = False
        with sub:
            configure_settings(trainable=None)
            sub.config[e].trainable = True  # the innermost network's explicit value wins
    flags = trainable_map(net)
    # ens: encoders; ens.neurons (biases) follow their ensemble unless configured (as NengoDL)
    assert flags[a] is False and flags[a.neurons] is False
    assert flags[b] is True and flags[c] is False
    assert flags[d] is False and flags[d.neurons] is False
    assert flags[e] is True


def test_trainable_false_default():
    with nengo.Network() as net:
        configure_settings(trainable=False)
        a = nengo.Ensemble(5, 1)
        b = nengo.Ensemble(5, 1)
        net.config[b].trainable = True
    flags = trainable_map(net)
    assert flags[a] is False and flags[a.neurons] is False
    assert flags[b] is True and flags[b.neurons] is False


def build_named():
    with nengo.Network() as net:
        a = nengo.Ensemble(5, 1, label="a")
        x1 = nengo.Ensemble(5, 1, label="dup")
        x2 = nengo.Ensemble(5, 1, label="dup")
        nengo.Connection(a, x1, label="c")
        with nengo.Network():
            inner = nengo.Ensemble(5, 1)
            nengo.Connection(inner, inner)
    return net, a, x1, x2, inner


def test_object_names_are_stable_and_unique():
    net, a, x1, x2, inner = build_named()
    names = object_names(net)
    assert names[a] == "Ensemble:a"
    assert names[x1] == "Ensemble:ensembles[1]" and names[x2] == "Ensemble:ensembles[2]"
    assert names[inner] == "Ensemble:networks[0].ensembles[0]"
    assert names[net.all_connections[0]] == "Connection:c"
    assert names[net.networks[0].connections[0]] == "Connection:networks[0].connections[0]"
    assert len(set(names.values())) == len(names)
    # the same code builds the same names
    net2 = build_named()[0]
    assert sorted(object_names(net2).values()) == sorted(names.values())
