"""One compiled program per TensorFlow Simulator, whatever the run lengths.

Runs of different lengths (``step()``, short runs, runs longer than a chunk)
go through the same traced program, give the same results as one long run, and
``sim.data`` does not hold on to padded chunk buffers. Also the persistent XLA
cache's environment handling.
"""

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow import Simulator
from nhw.backends.tensorflow.runtime import xla_cache


def _net():
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t), label="stim")
        a = nengo.Ensemble(60, 1)
        b = nengo.Ensemble(40, 1)
        nengo.Connection(stim, a)
        nengo.Connection(a, b, function=np.square, synapse=0.01)
        net.p = nengo.Probe(b, synapse=0.01)
        net.spikes = nengo.Probe(a.neurons)
    return net


def _programs(sim):
    return [k for k in sim._loop._fns if k[0] == "program"]


def test_run_lengths_share_one_program_and_match_one_run():
    net = _net()
    lengths = [10, 1000, 1, 1, 7, 1500]  # 1500 > one XLA chunk: two calls of the same program
    with Simulator(net, progress_bar=False, seed=1) as split:
        for n in lengths[:2]:
            split.run_steps(n)
        split.step()
        split.step()
        for n in lengths[4:]:
            split.run_steps(n)
        assert len(_programs(split)) == 1
        loop = split._loop
        fn = loop._fns[(loop.xla, loop.shards if loop.xla else 1, loop.packs)]
        assert fn.experimental_get_tracing_count() == 1
        got = np.array(split.data[net.p])
        spikes = np.array(split.data[net.spikes])
    with Simulator(net, progress_bar=False, seed=1) as whole:
        whole.run_steps(sum(lengths))
        assert len(_programs(whole)) == 1
        np.testing.assert_allclose(got, whole.data[net.p], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(spikes, whole.data[net.spikes])
    assert got.shape == (sum(lengths), 1)


def test_step_keeps_no_padded_buffers():
    net = _net()
    with Simulator(net, progress_bar=False) as sim:
        assert sim._loop.xla and sim._loop.max_chunk > 1
        for _ in range(3):
            sim.step()
        for chunk in sim._probe_data[net.spikes]:
            root = chunk
            while isinstance(root.base, np.ndarray):
                root = root.base
            # one step's row, not a whole padded chunk
            assert root.nbytes <= 4 * chunk.size * 2


def test_minibatch_runs_share_one_program():
    net = _net()
    with Simulator(net, progress_bar=False, minibatch_size=4, seed=1) as sim:
        sim.run_steps(5)
        sim.step()
        sim.run_steps(300)
        assert len(_programs(sim)) == 1
        assert sim.data[net.p].shape == (4, 306, 1)


def test_xla_cache_environment():
    env = {"HOME": "/home/u", "NHW_XLA_CACHE": "off"}
    assert xla_cache.configure(env) is None and "TF_XLA_FLAGS" not in env

    env = {"HOME": "/home/u", "XDG_CACHE_HOME": "/c", "TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    assert xla_cache.cache_directory(env) == "/c/nhw/xla"

    env = {"TF_XLA_FLAGS": f"{xla_cache.FLAG}=/mine", "NHW_XLA_CACHE": "/other"}
    assert xla_cache.configure(env) == "/mine"
    assert env["TF_XLA_FLAGS"] == f"{xla_cache.FLAG}=/mine"


def test_xla_cache_flag_added(tmp_path):
    env = {"NHW_XLA_CACHE": str(tmp_path / "xla"), "TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    target = tmp_path / "xla" / xla_cache.environment_key(env)
    assert xla_cache.configure(env) == str(target)
    assert target.is_dir()
    assert env["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {xla_cache.FLAG}={target}"


def test_xla_cache_keyed_by_how_programs_are_compiled():
    """Programs compiled under other XLA options, TF flags or another TensorFlow are not shared."""
    base = {"NHW_XLA_CACHE": "/c"}
    key = xla_cache.environment_key(base)
    assert key.startswith("k") and len(key) == 17
    assert xla_cache.environment_key(dict(base)) == key  # deterministic
    assert xla_cache.environment_key(dict(base, NHW_XLA_CACHE="/elsewhere")) == key  # not the place
    assert xla_cache.environment_key(dict(base, XLA_FLAGS="--xla_cpu_use_fusion_emitters=false")) != key
    assert xla_cache.environment_key(dict(base, XLA_FLAGS="--xla_cpu_enable_fast_math=true")) != key
    assert xla_cache.environment_key(dict(base, TF_XLA_FLAGS="--tf_xla_auto_jit=2")) != key
    # the cache flag nhw itself added (inherited from a parent) is not part of the key
    inherited = dict(base, TF_XLA_FLAGS=f"{xla_cache.FLAG}=/c/{key}", **{xla_cache.ADDED_ENV: f"/c/{key}"})
    assert xla_cache.environment_key(inherited) == key


def test_xla_cache_key_follows_the_tensorflow_version_cpu_and_gpus(monkeypatch):
    env = {"NHW_XLA_CACHE": "/c"}
    key = xla_cache.environment_key(env)
    monkeypatch.setattr(xla_cache, "_tensorflow_version", lambda: "tensorflow==0.0.1")
    assert xla_cache.environment_key(env) != key
    monkeypatch.undo()
    monkeypatch.setattr(xla_cache, "_cpu", lambda: "another cpu")
    assert xla_cache.environment_key(env) != key
    monkeypatch.undo()
    monkeypatch.setattr(xla_cache, "_gpus", lambda: ["NVIDIA H100 80GB HBM3"])
    assert xla_cache.environment_key(env) != key


def test_xla_cache_key_without_tensorflow_metadata(monkeypatch):
    """TensorFlow installed without package metadata: its package file's place and time stand in."""
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    found = xla_cache._tensorflow_version()
    assert "tensorflow" in found and "@" in found


def test_xla_cache_key_reads_tensorflow_and_cpu():
    import tensorflow as tf

    assert xla_cache._tensorflow_version().endswith("==" + tf.__version__)
    assert xla_cache._cpu()  # at least the machine type


def test_xla_cache_child_decides_for_itself(tmp_path):
    """A child inherits the flag an nhw parent added; its own NHW_XLA_CACHE still decides."""
    parent = {"NHW_XLA_CACHE": str(tmp_path / "p"), "TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    assert xla_cache.configure(parent) == str(tmp_path / "p" / xla_cache.environment_key(parent))

    child = dict(parent, NHW_XLA_CACHE="off")
    assert xla_cache.cache_directory(child) is None
    assert xla_cache.configure(child) is None
    assert child["TF_XLA_FLAGS"] == "--tf_xla_auto_jit=0" and xla_cache.ADDED_ENV not in child

    child = dict(parent, NHW_XLA_CACHE=str(tmp_path / "c"))
    key = xla_cache.environment_key(child)
    assert xla_cache.configure(child) == str(tmp_path / "c" / key)
    assert child["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {xla_cache.FLAG}={tmp_path / 'c' / key}"

    same = dict(parent)  # nothing set differently: the same directory again, flag not doubled
    assert xla_cache.configure(same) == str(tmp_path / "p" / key)
    assert same["TF_XLA_FLAGS"] == parent["TF_XLA_FLAGS"]


@pytest.mark.parametrize("value", ["0", "false", "OFF", ""])
def test_xla_cache_off_values(value):
    assert xla_cache.cache_directory({"NHW_XLA_CACHE": value}) is None
