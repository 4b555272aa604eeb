"""loihi-emu host nodes: nodes reading the chip ("late") against nodes that do not
("early"), which the backend evaluates a chunk of steps ahead of the chip."""

from __future__ import annotations

import numpy as np
import nengo
import pytest

from nhw import backends

pytestmark = pytest.mark.skipif("loihi-emu" not in backends.available(), reason="loihi-emu unavailable")


def _net(closed_loop: bool) -> tuple[nengo.Network, nengo.Probe]:
    with nengo.Network(seed=0) as net:
        stim = nengo.Node(lambda t: np.sin(10 * t), label="stim")
        a = nengo.Ensemble(100, 1, label="a")
        nengo.Connection(stim, a)
        out = nengo.Node(size_in=2, label="out")  # reads the chip: a late node
        nengo.Connection(a, out[0])
        nengo.Connection(stim, out[1])  # filtered (default synapse) early -> late
        if closed_loop:  # the late node feeds the chip back: host and chip alternate every step
            b = nengo.Ensemble(100, 1, label="b")
            nengo.Connection(out[0], b)
        probe = nengo.Probe(out)
    return net, probe


@pytest.mark.parametrize("closed_loop", [False, True])
def test_late_node_reads_early_values_of_its_own_step(closed_loop):
    """The filtered stim -> out value is host arithmetic only, so it must equal
    reference's; it once read the chunk's last step (errors up to 2)."""
    net, probe = _net(closed_loop)
    data = {}
    for target in ("reference", "loihi-emu"):
        with backends.get(target)(net, progress_bar=False) as sim:
            sim.run_steps(250)
            sim.run_steps(250)  # across run calls (chunks) too
            data[target] = sim.data[probe]
    np.testing.assert_allclose(data["loihi-emu"][:, 1], data["reference"][:, 1], atol=1e-9)
    assert np.sqrt(np.mean((data["loihi-emu"][:, 0] - data["reference"][:, 0]) ** 2)) < 0.1


def test_closed_loop_run_steps_equals_single_steps():
    """Early nodes run ahead in chunks; the result must not depend on the chunking."""
    net, probe = _net(closed_loop=True)
    with backends.get("loihi-emu")(net, progress_bar=False) as a:
        a.run_steps(230)
        ya = a.data[probe]
    with backends.get("loihi-emu")(net, progress_bar=False) as b:
        for _ in range(230):
            b.step()
        yb = b.data[probe]
    np.testing.assert_array_equal(ya, yb)
