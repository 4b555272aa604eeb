"""TensorFlow is imported after nengo's builder has run, never before.

nengo's decoder solves need ~0.8 GB transiently for a 3200-neuron ensemble and
TensorFlow's resident image is ~0.6 GB; loading TensorFlow only after the build keeps
the two from adding up (the 64-d benchmark networks peaked at 1.55 GB, now 0.97 GB).
Each check runs in a fresh interpreter, since this test process may have loaded
TensorFlow already.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs tensorflow")

_CHECK = r"""
import json, sys
import nengo
from nhw import backends
from nhw.backends.tensorflow import simulator

seen = {"after_import": "tensorflow" in sys.modules}
build = nengo.builder.Model.build

def recording_build(self, obj, *args, **kwargs):
    seen.setdefault("at_build", "tensorflow" in sys.modules)
    return build(self, obj, *args, **kwargs)

nengo.builder.Model.build = recording_build
with nengo.Network(seed=0) as net:
    a = nengo.Ensemble(20, 1)
    p = nengo.Probe(a, synapse=0.01)
with backends.get("tensorflow")(net, progress_bar=False) as sim:
    sim.run_steps(5)
seen["probe_shape"] = list(sim.data[p].shape)
seen["after_run"] = "tensorflow" in sys.modules
print(json.dumps(seen))
"""


def _run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_simulator_module_imports_without_tensorflow_and_builds_before_it():
    seen = _run(_CHECK)
    assert seen == {"after_import": False, "at_build": False, "probe_shape": [5, 1], "after_run": True}


def test_late_module_loads_on_first_attribute_and_then_is_the_real_namespace():
    seen = _run(
        "import json, sys\n"
        "from nhw.backends.tensorflow._tf import keras, loaded, tf\n"
        "before = loaded()\n"
        "dt = tf.float32\n"
        "import tensorflow\n"
        "print(json.dumps({'before': before, 'after': loaded(), 'same': dt is tensorflow.float32,\n"
        "  'dict_hit': 'constant' in vars(tf), 'plain': type(tf).__name__, 'lazy_sub': tf.nn is tensorflow.nn,\n"
        "  'keras_model': keras.Model.__module__.startswith('keras')}))\n"
    )
    assert seen == {"before": False, "after": True, "same": True, "dict_hit": True, "plain": "module",
                    "lazy_sub": True, "keras_model": True}
