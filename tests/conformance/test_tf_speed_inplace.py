"""Learned per-sample weights updated block by block in their own buffer.

``signals.add_in_place`` must equal ``cur + inc`` exactly (eagerly and under XLA), and a
PES network whose weight update takes that path must give the very same probes and
weights as the plain update.
"""

from __future__ import annotations

import numpy as np
import pytest

from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.passes import outer_delta
from nhw.backends.tensorflow.runtime import signals
from nhw.backends.tensorflow.runtime.signals import add_in_place
from pes_nets import pes_net


@pytest.mark.parametrize("shape, blocks", [((3, 7), 2), ((4, 5, 9), 2), ((2, 11, 3), 3), ((2, 1, 6), 2)])
@pytest.mark.parametrize("xla", [False, True])
def test_add_in_place_equals_add(shape, blocks, xla):
    rng = np.random.RandomState(0)
    cur = rng.randn(*shape).astype(np.float32)
    inc = rng.randn(*shape).astype(np.float32)

    def f(c, i):
        return add_in_place(c, i, blocks=blocks)

    fn = tf.function(f, jit_compile=True) if xla else f
    got = fn(tf.constant(cur), tf.constant(inc)).numpy()
    np.testing.assert_array_equal(got, cur + inc)


def _run(monkeypatch, in_place_bytes: int):
    from nhw.backends.tensorflow import Simulator

    calls = []

    def counting(cur, inc, **kwargs):
        calls.append(tuple(cur.shape))
        return add_in_place(cur, inc, **kwargs)

    monkeypatch.setattr(outer_delta, "IN_PLACE_BYTES", in_place_bytes)
    monkeypatch.setattr(signals, "add_in_place", counting)
    net, probes = pes_net(d=3, n_per_dim=40)
    with Simulator(net, progress_bar=False, minibatch_size=4) as sim:
        sim.run_steps(200)  # long enough for the XLA-compiled loop
        return {k: sim.data[p] for k, p in probes.items()}, calls


def test_pes_in_place_update_equals_plain_update(monkeypatch):
    plain, plain_calls = _run(monkeypatch, 1 << 60)
    in_place, in_place_calls = _run(monkeypatch, 0)
    assert not plain_calls and in_place_calls  # each run took the path it names
    assert np.abs(plain["weights"]).max() > 0  # the weights did learn
    for name in plain:
        np.testing.assert_array_equal(in_place[name], plain[name], err_msg=name)
