"""A damaged saved program does not stop a simulation: nhw removes it, compiles again and says so.

Each run is its own process: TensorFlow reads the cache flag when it runs its
first operation, which in this test process has long happened.
"""

import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")

SCRIPT = """
import nengo
from nhw.backends.tensorflow.simulator import Simulator
with nengo.Network(seed=0) as net:
    a = nengo.Ensemble(30, 1)
    nengo.Connection(nengo.Node(0.5), a)
    p = nengo.Probe(a, synapse=0.01)
with Simulator(net, progress_bar=False) as sim:
    sim.run_steps(100)
    sim.step()
print("RESULT", repr(float(sim.data[p][-1, 0])), sim.data[p].shape[0])
"""


FIT = """
import numpy as np, nengo
from nhw.backends.tensorflow.simulator import Simulator
from nhw.backends.tensorflow._tf import keras
from nhw.errors import BackendError
with nengo.Network(seed=0) as net:
    inp = nengo.Node(np.zeros(2))
    a = nengo.Ensemble(20, 2)
    nengo.Connection(inp, a, synapse=None)
    p = nengo.Probe(a, synapse=None)
with Simulator(net, minibatch_size=4, progress_bar=False, seed=0) as sim:
    sim.compile(optimizer=keras.optimizers.SGD(1e-4), loss="mse")
    x, y = np.ones((8, 1, 2)), np.full((8, 1, 2), 0.5)
    try:
        h = sim.fit({inp: x}, {p: y}, epochs=2, verbose=0)
    except BackendError as e:
        print("STOPPED", str(e).splitlines()[0])
        h = sim.fit({inp: x}, {p: y}, epochs=2, verbose=0)
print("RESULT", repr(h.history["loss"]))
"""


def _run(cache, script: str = SCRIPT) -> subprocess.CompletedProcess:
    env = {**os.environ, "NHW_XLA_CACHE": str(cache)}
    env.pop("TF_XLA_FLAGS", None)
    env.pop("NHW_XLA_CACHE_ADDED", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _result(out) -> str:
    return next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    cache = tmp_path_factory.mktemp("xla") / "cache"
    out = _run(cache)
    entries = sorted(cache.glob("k*/xla_compile_cache__*.pb"))
    assert entries, "the first run saved no program"
    return cache, _result(out)


def _damage_truncate(path):
    path.write_bytes(path.read_bytes()[:100])


def _damage_overwrite_middle(path):
    data = bytearray(path.read_bytes())
    data[1000:1100] = bytes(range(100, 200))
    path.write_bytes(bytes(data))


def _damage_replace(path):
    import random

    path.write_bytes(random.Random(0).randbytes(path.stat().st_size))


@pytest.mark.parametrize("damage, removed", [
    (_damage_truncate, True),
    (_damage_overwrite_middle, True),
    (_damage_replace, None),  # may still parse: TensorFlow's key check catches it
])
def test_damaged_entry_is_worked_around(filled, tmp_path, damage, removed):
    source, expected = filled
    cache = tmp_path / "cache"
    shutil.copytree(source, cache)
    entries = sorted(cache.glob("k*/xla_compile_cache__*.pb"))
    for path in entries:
        damage(path)
    out = _run(cache)
    assert _result(out) == expected
    assert "could not use a saved XLA program" in out.stderr
    if removed:
        assert not any(p.exists() for p in entries)
    if damage is _damage_truncate:  # (one mode is enough:) the program saved instead loads cleanly next time
        again = _run(cache)
        assert _result(again) == expected and "could not use a saved XLA program" not in again.stderr


def test_damaged_entry_in_fit_stops_with_a_clear_error_and_a_retry_trains(tmp_path):
    """Keras takes a truncated entry's OutOfRangeError for the end of the data: fit would train nothing."""
    cache = tmp_path / "cache"
    clean = _run(cache, FIT)
    assert "STOPPED" not in clean.stdout
    entries = sorted(cache.glob("k*/xla_compile_cache__*.pb"))
    assert entries
    for path in entries:
        _damage_truncate(path)
    out = _run(cache, FIT)
    stopped = [line for line in out.stdout.splitlines() if line.startswith("STOPPED")]
    assert stopped and "fit: TensorFlow could not use a saved XLA program" in stopped[0]
    assert "call fit again" in stopped[0]
    assert _result(out) == _result(clean)  # the retry trained from the same start
    assert "ran out of data" not in out.stderr
