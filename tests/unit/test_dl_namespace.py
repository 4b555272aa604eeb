"""``import nhw.dl as nengo_dl``: NengoDL's public names, resolved lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nhw.dl as nengo_dl

NENGO_DL_NAMES = ["Simulator", "TensorNode", "Layer", "configure_settings", "Converter", "SoftLIFRate",
                  "LeakyReLU", "SpikingLeakyReLU", "dists", "losses", "neurons", "callbacks", "tensor_layer",
                  "freeze_params", "get_nengo_params", "graph_optimizer"]


@pytest.mark.parametrize("name", NENGO_DL_NAMES)
def test_nengo_dl_name_resolves(name):
    assert getattr(nengo_dl, name) is not None
    assert name in dir(nengo_dl)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nhw.dl.*'Simulater'"):
        nengo_dl.Simulater  # noqa: B018


def test_submodules_reachable_as_attributes_of_the_tf_package():
    import nhw.backends.tensorflow as tfb

    assert tfb.dists.Glorot is nengo_dl.dists.Glorot
    assert tfb.losses.nan_mse is nengo_dl.losses.nan_mse


def test_import_does_not_load_tensorflow():
    code = "import sys, nhw.dl as d; d.dists; d.Layer; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_graph_optimizer_hooks_are_accepted_settings_and_refuse_direct_calls():
    import nengo

    from nhw.dl import graph_optimizer as go
    from nhw.errors import UnsupportedFeatureError

    with nengo.Network() as net:
        nengo_dl.configure_settings(planner=go.greedy_planner, sorter=go.order_signals,
                                    simplifications=[go.remove_constant_copies, go.remove_zero_incs])
    from nhw.backends.tensorflow.settings import get_setting

    assert get_setting(net, "planner") is go.greedy_planner
    with pytest.raises(UnsupportedFeatureError, match="graph_optimizer.tree_planner.*configure_settings"):
        go.tree_planner([])
