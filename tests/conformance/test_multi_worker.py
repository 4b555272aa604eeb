"""Training under ``tf.distribute`` with several worker processes (issue #25, "beyond one machine").

Each worker is a separate Python process on 127.0.0.1 (TF_CONFIG, RING collectives, CPU).
The contract: ``minibatch_size`` is the global batch, so two workers train exactly what one
process trains on the same global batch; the loss curves agree to float rounding (the
gradients are summed across workers in another order).

These tests start TensorFlow in several processes at once; with pytest-xdist two such tests
may run side by side, hence the generous timeouts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 240  # per process; the tests stay far below it on an idle machine

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, nengo, tensorflow as tf, keras
    from nhw.backends.tensorflow import Simulator

    mode, seed, shuffle = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "shuffle"
    if mode == "multi":
        ring = tf.distribute.experimental.CommunicationImplementation.RING
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=ring))
    elif mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        strategy = tf.distribute.get_strategy()
    with nengo.Network(seed=seed) as net:
        inp = nengo.Node(np.zeros(2), label="inp")
        ens = nengo.Ensemble(20, 2, neuron_type=nengo.RectifiedLinear(), label="ens")
        out = nengo.Node(size_in=1)
        nengo.Connection(inp, ens, synapse=None)
        nengo.Connection(ens, out, synapse=None, function=lambda x: x[0])
        p = nengo.Probe(out, synapse=None, label="out")
    rng = np.random.RandomState(1)
    x = rng.uniform(-1, 1, (32, 2, 2))
    y = x[..., :1] * x[..., 1:]
    with strategy.scope():
        sim = Simulator(net, minibatch_size=8, progress_bar=False)
        sim.compile(keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    # shuffled epochs, validation and evaluate: every path that reads distributed data
    hist = sim.fit(x, y, epochs=3, verbose=0, shuffle=shuffle, validation_data=(x[:16], y[:16]))
    ev = sim.evaluate(x, y, verbose=0)
    bias = sim.data[ens].bias.tolist()
    print("RESULT " + json.dumps({"history": hist.history, "eval": ev, "bias": bias}), flush=True)
    sim.close()
    """
)


def _env(**extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, stdout[-2000:]
    return json.loads(lines[0][len("RESULT "):])


def _one(mode: str, seed: int = 0, shuffle: str = "shuffle") -> dict:
    res = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(seed), shuffle], capture_output=True, text=True,
                         cwd=ROOT, env=_env(), timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr[-3000:]
    return _result(res.stdout)


def _workers(seeds: list[int]) -> list[subprocess.CompletedProcess]:
    """Run SCRIPT as len(seeds) workers of one local cluster (worker i builds with seeds[i])."""
    from nhw.backends.tensorflow.distribute_launch import local_tf_configs

    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, "multi", str(seed), "shuffle"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(TF_CONFIG=cfg))
             for seed, cfg in zip(seeds, local_tf_configs(len(seeds)))]
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return done


def _assert_same_training(a: dict, b: dict) -> None:
    assert set(a["history"]) == set(b["history"])
    for key, curve in a["history"].items():
        np.testing.assert_allclose(curve, b["history"][key], rtol=1e-5, atol=1e-7, err_msg=key)
    for key, value in a["eval"].items():
        np.testing.assert_allclose(value, b["eval"][key], rtol=1e-5, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(a["bias"], b["bias"], rtol=1e-5, atol=1e-6)


def test_two_workers_train_what_one_process_trains():
    single = _one("single")
    workers = _workers([0, 0])
    for i, res in enumerate(workers):
        assert res.returncode == 0, f"worker {i}: {res.stderr[-3000:]}"
    results = [_result(res.stdout) for res in workers]
    loss = single["history"]["loss"]
    assert len(loss) == 3 and loss[-1] != loss[0]  # it trained: the comparison is not of constants
    for res in results:
        _assert_same_training(res, single)
    assert "eagerly" not in workers[0].stderr  # the worker check runs traced, not eagerly


@pytest.mark.slow
def test_mirrored_strategy_trains_what_one_process_trains():
    # two local replicas of the same global batch (Keras splits it), shuffled epochs
    _assert_same_training(_one("mirrored"), _one("single"))


@pytest.mark.slow
def test_workers_that_built_different_networks_refuse_to_train():
    workers = _workers([0, 1])  # unequal seeds: different encoders, biases and decoders
    for i, res in enumerate(workers):
        assert res.returncode != 0, f"worker {i} trained a network that differs from its peer's"
        assert "WorkerMismatchError" in res.stderr and "Seed the network" in res.stderr, res.stderr[-2000:]
        assert "RESULT" not in res.stdout


def test_launcher_stops_the_others_when_a_worker_fails():
    from nhw.backends.tensorflow import distribute_launch as dl

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    failing = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert dl._wait([sleeper, failing], 0.05) == (1, 3)
    dl._stop([sleeper, failing], grace_s=10)
    assert sleeper.returncode is not None  # stopped, not left waiting for its peer


def test_launcher_reports_the_failing_workers_error(tmp_path):
    from nhw.backends.tensorflow.distribute_launch import WorkerFailedError, run_local_workers

    missing = tmp_path / "missing.yaml"
    with pytest.raises(WorkerFailedError, match=r"worker \d( \(chief\))? of 2 exited with status 2") as info:
        run_local_workers(["train", str(missing)], 2, env=_env())
    assert "missing.yaml" in str(info.value) or "printed above" in str(info.value)


def test_local_cluster_configs_are_distinct_workers():
    from nhw.backends.tensorflow.distribute import is_chief
    from nhw.backends.tensorflow.distribute_launch import local_tf_configs

    cfgs = [json.loads(c) for c in local_tf_configs(3)]
    hosts = cfgs[0]["cluster"]["worker"]
    assert len(set(hosts)) == 3 and all(c["cluster"]["worker"] == hosts for c in cfgs)
    assert [c["task"]["index"] for c in cfgs] == [0, 1, 2]
    assert [is_chief(c) for c in cfgs] == [True, False, False]
    assert is_chief({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}) is False
