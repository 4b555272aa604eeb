"""``import nhw.dl as nengo_dl``: NengoDL's public names, resolved lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nhw.dl as nengo_dl

NENGO_DL_NAMES = ["Simulator", "TensorNode", "Layer", "configure_settings", "Converter", "SoftLIFRate",
                  "LeakyReLU", "SpikingLeakyReLU", "dists", "losses", "neurons", "callbacks", "tensor_layer",
                  "freeze_params", "get_nengo_params"]


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
