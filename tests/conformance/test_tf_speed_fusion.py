"""Matrix products take a materialized operand only where XLA would recompute it per row.

``_materialize`` puts a full extra pass (a divide by a runtime one) in front of a
product. That pays off where the product is an elementwise multiply and a reduction
(per-sample matrices with the batch axis last, and one-sample matrix-vector dots that
XLA may rewrite so), because XLA fuses the operand's producer into it and recomputes
it for every matrix row. A ``dot`` of a fixed matrix, or of per-sample matrices held
batch-major, with a batch of vectors reads its operand once, so there the barrier
is pure cost and is left out.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.backends.tensorflow.builders import op_builders
from nhw.backends.tensorflow.builders.op_builders import _reduces_per_row


@pytest.mark.parametrize(
    "batch_last_matrix, batch, expected",
    [(True, 8, True), (True, 1, True), (False, 1, True), (False, 8, False), (False, 2, False)],
)
def test_reduces_per_row(batch_last_matrix, batch, expected):
    assert _reduces_per_row(batch_last_matrix, batch) is expected


def _chain(d: int = 8, n: int = 80):
    # d >= 8 decoded dimensions: the decoders have enough rows for the barrier rule
    with nengo.Network(seed=1) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t * np.arange(1, d + 1)))
        a = nengo.Ensemble(n, d)
        b = nengo.Ensemble(n, d)
        nengo.Connection(stim, a)
        nengo.Connection(a, b)
        nengo.Connection(b, b, transform=0.5, synapse=0.05)
        probe = nengo.Probe(b, synapse=0.02)
    return net, probe


def _count_barriers(monkeypatch):
    calls = []
    original = op_builders._materialize

    def counting(x, sc):
        calls.append(tuple(x.shape))
        return original(x, sc)

    monkeypatch.setattr(op_builders, "_materialize", counting)
    return calls


@pytest.mark.parametrize("batch, barriers", [(4, False), (None, True)])
def test_fixed_matrix_products_skip_the_barrier_with_a_minibatch(monkeypatch, batch, barriers):
    from nhw.backends.tensorflow import Simulator

    net, probe = _chain()
    calls = _count_barriers(monkeypatch)
    with Simulator(net, progress_bar=False, minibatch_size=batch) as sim:
        sim.run_steps(200)  # long enough for the XLA-compiled loop
    assert bool(calls) is barriers, calls


def test_minibatch_without_barrier_matches_reference():
    from nhw.backends.tensorflow import Simulator

    net, probe = _chain()
    with nengo.Simulator(net, progress_bar=False) as ref:
        ref.run_steps(200)
    with Simulator(net, progress_bar=False, minibatch_size=4) as sim:
        sim.run_steps(200)
    got = sim.data[probe]
    for k in range(1, 4):  # every sample runs the same network
        np.testing.assert_allclose(got[k], got[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got[0], ref.data[probe], atol=2e-3)
