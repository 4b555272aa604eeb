"""The stimulus and experiment sections an nhw NIR export carries (no backend)."""

import json
from pathlib import Path

import nengo
import numpy as np
import pytest

from nhw.errors import NIRError
from nhw.toolchain.nir import sections, stimulus


def test_record_leaves_the_network_as_it_was_and_samples_the_node():
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: [t, -t])
    recorded = stimulus.record(net, {"s": stim}, n_steps=5, dt=0.001, seed=0)
    assert net.probes == []
    np.testing.assert_allclose(recorded["s"], np.outer(np.arange(1, 6) * 0.001, [1, -1]))


def test_replay_gives_the_samples_step_by_step():
    data = np.arange(6.0).reshape(3, 2)
    with nengo.Network() as net:
        node = stimulus.replay("x", {stimulus.STIMULUS_KEY: data, stimulus.STIMULUS_DT_KEY: 0.001}, 2)
        p = nengo.Probe(node)
    with nengo.Simulator(net, progress_bar=False) as sim:
        sim.run_steps(3)
    np.testing.assert_allclose(sim.data[p], data)


@pytest.mark.parametrize("data, dt, message", [
    (np.full((3, 2), np.nan), 0.001, "NaN or Inf"),
    (np.zeros((3, 5)), 0.001, "(steps, 2) array"),
    (np.zeros((3, 2)), 0.0, "positive time step"),
])
def test_replay_refuses_bad_samples(data, dt, message):
    with nengo.Network(), pytest.raises(NIRError, match=message.replace("(", r"\(").replace(")", r"\)")):
        stimulus.replay("x", {stimulus.STIMULUS_KEY: data, stimulus.STIMULUS_DT_KEY: dt}, 2)


def test_no_stimulus_means_none():
    assert stimulus.replay("x", {}, 2) is None and stimulus.steps(None) is None


def test_sections_make_data_paths_relative_to_the_new_config(tmp_path):
    meta = {sections.SECTIONS_KEY: json.dumps({"data": {"path": str(tmp_path / "d" / "x.npz")},
                                               "deploy": {"feed": "in"}, "seed": 3})}
    got = sections.import_sections(meta, tmp_path / "cfg" / "c.yaml")
    assert got["data"]["path"] == str(Path("..") / "d" / "x.npz") and got["seed"] == 3


def test_sections_refuse_foreign_metadata(tmp_path):
    with pytest.raises(NIRError, match="not JSON"):
        sections.import_sections({sections.SECTIONS_KEY: "{oops"}, tmp_path / "c.yaml")
    with pytest.raises(NIRError, match="expected an object"):
        sections.import_sections({sections.SECTIONS_KEY: json.dumps({"train": {}})}, tmp_path / "c.yaml")
