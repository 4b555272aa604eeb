"""Networks written by snnTorch's and Norse's own NIR exports, read with ``--from PEER`` and run
by nhw (nengo at the peer's dt = 1e-4 s): per-neuron spike counts of the output layer
within one spike of the peer's own simulation of the original network.

snnTorch 1.0's ``export_to_nir`` writes a valid file (one that passes nir's type check)
when (its documented options) every neuron parameter is a per-neuron tensor (``beta``,
``alpha``, ``threshold``: a scalar gives the LIF an empty shape, ``'0.output: [[12]] ->
1.input: []'``) and the batch dimension of the sample is named in ``ignore_dims=[0]``
(else ``'input.output: [[1 3]] -> 0.input: [[3]]'``).  Its export drops
``reset_mechanism`` and ``reset_delay`` (the file's neurons reset to zero at the spike,
as NIR says and as snnTorch's own import builds them), so the originals here use
``reset_mechanism="zero", reset_delay=False``: what their files describe.
"""

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


def _per_neuron(shape, value):
    return torch.full(shape if isinstance(shape, tuple) else (shape,), value)


def _leaky(shape, beta, **kw):
    return snn.Leaky(beta=_per_neuron(shape, beta), threshold=_per_neuron(shape, 1.0), init_hidden=True,
                     reset_mechanism="zero", reset_delay=False, **kw)


def _synaptic(shape, alpha, beta, **kw):
    return snn.Synaptic(alpha=_per_neuron(shape, alpha), beta=_per_neuron(shape, beta),
                        threshold=_per_neuron(shape, 1.0), init_hidden=True, reset_mechanism="zero",
                        reset_delay=False, **kw)


def _leaky_net():
    net = torch.nn.Sequential(torch.nn.Linear(3, 12, bias=False), _leaky(12, 0.995),
                              torch.nn.Linear(12, 6, bias=False), _leaky(6, 0.99, output=True))
    return net, [(0, 0.0, 0.03), (2, -0.1, 0.6)], torch.tensor([[0.8, 0.5, 0.9]])


def _synaptic_net():
    net = torch.nn.Sequential(torch.nn.Linear(3, 12, bias=False), _synaptic(12, 0.98, 0.995),
                              torch.nn.Linear(12, 6, bias=False), _synaptic(6, 0.98, 0.99, output=True))
    return net, [(0, 0.0, 3e-4), (2, -0.002, 0.01)], torch.tensor([[0.8, 0.5, 0.9]])


def _conv_net():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, bias=False), _leaky((2, 6, 6), 0.995), torch.nn.Flatten(),
                              torch.nn.Linear(72, 5, bias=False), _leaky(5, 0.99, output=True))
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return net, [(0, -0.005, 0.02), (3, -0.1, 0.4)], x


@pytest.mark.parametrize("make", [_leaky_net, _synaptic_net, _conv_net], ids=["leaky", "synaptic", "conv2d"])
def test_snntorch_network_runs_in_nhw(make):
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net, weights, x = make()
    with torch.no_grad():
        for layer, lo, hi in weights:
            net[layer].weight.uniform_(lo, hi)
    graph = export_to_nir(net, x, ignore_dims=[0])
    theirs = _peerlib.steps("snntorch", net, x.numpy(), STEPS)[0].sum(0)
    imported = import_nir(from_profile(graph, "snntorch"))
    next(iter(imported.inputs.values())).output = x.numpy().reshape(-1)
    probe = next(iter(imported.outputs.values()))
    with nengo.Simulator(imported.network, dt=DT, progress_bar=False) as sim:
        sim.run_steps(STEPS)
    ours = (sim.data[probe] > 0).sum(0)
    print(make.__name__, "snntorch", theirs, "nhw", ours)
    assert theirs.min() > 20  # every output neuron is active
    assert np.abs(ours - theirs).max() <= 1, (theirs, ours)


def _norse_lif(shape, tau):
    import norse.torch as nt

    shape = shape if isinstance(shape, tuple) else (shape,)
    p = nt.LIFBoxParameters(tau_mem_inv=torch.full(shape, 1 / tau), v_th=torch.ones(shape),
                            v_leak=torch.zeros(shape), v_reset=torch.zeros(shape))
    return nt.LIFBoxCell(p, dt=DT)


def _norse_lif_net():
    import norse.torch as nt

    net = nt.SequentialState(torch.nn.Linear(3, 12, bias=False), _norse_lif(12, 0.02),
                             torch.nn.Linear(12, 6, bias=False), _norse_lif(6, 0.01))
    return net, [(0, 0.0, 3.0), (2, -10.0, 60.0)], torch.tensor([[0.8, 0.5, 0.9]])


def _norse_conv_net():
    """Conv2d -> LIF only: Norse 1.1's to_nir maps no Flatten (it writes a ``None`` node)
    and crashes on a Conv2d without a bias (``module.bias.detach()``)."""
    import norse.torch as nt

    net = nt.SequentialState(torch.nn.Conv2d(1, 2, 3), _norse_lif((2, 6, 6), 0.02))
    with torch.no_grad():
        net[0].bias.zero_()
    return net, [(0, -0.5, 2.0)], torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("make", [_norse_lif_net, _norse_conv_net], ids=["lif", "conv2d"])
def test_norse_network_runs_in_nhw(make):
    """Norse's own ``to_nir`` (per-neuron parameters, an unbatched sample: a batched one
    fails nir's type check) read with ``own_export=True``, which undoes its ``dt * tau``."""
    import norse.torch as nt

    torch.manual_seed(0)
    net, weights, x = make()
    with torch.no_grad():
        for layer, lo, hi in weights:
            net[layer].weight.uniform_(lo, hi)
    graph = nt.to_nir(net, x[0], dt=DT)
    theirs = _peerlib.steps("norse", net, x.numpy(), STEPS)[0].reshape(STEPS, -1).sum(0)
    imported = import_nir(from_profile(graph, "norse", dt=DT, own_export=True))
    next(iter(imported.inputs.values())).output = x.numpy().reshape(-1)
    probe = next(iter(imported.outputs.values()))
    with nengo.Simulator(imported.network, dt=DT, progress_bar=False) as sim:
        sim.run_steps(STEPS)
    ours = (sim.data[probe] > 0).sum(0)
    print(make.__name__, "norse", theirs, "nhw", ours)
    assert (theirs > 20).mean() > 0.5  # most output neurons are active
    assert np.abs(ours - theirs).max() <= 1, (theirs, ours)


def test_sinabs_network_runs_in_nhw():
    """Sinabs' own ``to_nir`` of an ``IAF`` network (input added per step, spike counts per
    step, subtractive reset: nengo's ``SpikingRectifiedLinear``), read with ``--from sinabs``
    and run by nengo at the profile's default ``dt``.  The weights are non-negative: nengo's
    neuron ignores negative input where sinabs' ``IAF`` integrates it (docs/nir.md, the
    lower voltage bound), which no ``IF`` type in nhw reproduces yet."""
    sinabs = pytest.importorskip("sinabs", reason=f"sinabs is installed by {_peerlib.INSTALL}")
    import sinabs.layers as sl

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 12, bias=False), sl.IAFSqueeze(batch_size=1),
                              torch.nn.Linear(12, 6, bias=False), sl.IAFSqueeze(batch_size=1))
    with torch.no_grad():
        net[0].weight.uniform_(0.0, 0.03)
        net[2].weight.uniform_(0.0, 0.5)
    x = torch.tensor([[0.8, 0.5, 0.9]])
    graph = sinabs.to_nir(net, x)
    with torch.no_grad():
        theirs = net(x.repeat(STEPS, 1)).sum(0).numpy()  # (time, channels) with batch_size=1
    dt = 1e-3
    imported = import_nir(from_profile(graph, "sinabs", dt=dt))
    next(iter(imported.inputs.values())).output = x.numpy().reshape(-1)
    probe = next(iter(imported.outputs.values()))
    with nengo.Simulator(imported.network, dt=dt, progress_bar=False) as sim:
        sim.run_steps(STEPS)
    ours = (sim.data[probe] * dt).sum(0)  # several spikes per step possible, as in sinabs
    print("sinabs", theirs, "nhw", ours)
    assert theirs.min() > 20
    assert np.abs(ours - theirs).max() <= 1, (theirs, ours)
