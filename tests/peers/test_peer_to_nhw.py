"""Networks written by snnTorch's own NIR export, read with ``--from snntorch`` and run
by nhw (nengo at snnTorch's dt = 1e-4 s): per-neuron spike counts within one spike."""

import sys
from pathlib import Path

import nengo
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peerlib  # noqa: E402

_peerlib.require()
import snntorch as snn  # noqa: E402
import torch  # noqa: E402
from nhw.toolchain.nir.importer import import_nir  # noqa: E402
from nhw.toolchain.nir.profiles import from_profile  # noqa: E402

DT, STEPS = 1e-4, 3000


def _leaky_net():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 12, bias=False), snn.Leaky(beta=0.995, init_hidden=True),
                              torch.nn.Linear(12, 6, bias=False), snn.Leaky(beta=0.99, init_hidden=True,
                                                                             output=True))
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 0.03)
        net[2].weight.uniform_(-0.1, 0.6)
    return net


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="snnTorch 1.0's export_to_nir fails nir 1.0.8's type check: batched sample "
                          "'input.output: [[1 3]] -> 0.input: [[3]]', unbatched '0.output: [[12]] -> 1.input: []'")
def test_snntorch_leaky_network_runs_in_nhw():
    from snntorch.export_nir import export_to_nir

    net = _leaky_net()
    x = torch.tensor([[0.8, 0.5, 0.9]])
    graph = export_to_nir(net, x[0])  # a batched sample fails nir 1.0.8's type check (snnTorch bug)
    out = next(n for n, node in graph.nodes.items() if type(node).__name__ == "Output")
    mod = _peerlib.module("snntorch", graph, DT)
    counts = _peerlib.run("snntorch", mod, x.numpy(), STEPS)[0]
    imported = import_nir(from_profile(graph, "snntorch"))
    inp = next(iter(imported.inputs.values()))
    inp.output = x.numpy()[0]
    with nengo.Simulator(imported.network, dt=DT, progress_bar=False) as sim:
        sim.run_steps(STEPS)
    ours = (sim.data[imported.outputs[out]] > 0).sum(0)
    print("snntorch", counts, "nhw", ours)
    assert counts.sum() > 20
    assert np.abs(ours - counts).max() <= 1, (counts, ours)
