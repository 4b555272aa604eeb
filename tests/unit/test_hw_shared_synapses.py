"""Shared synapse lists (population axons) and nengo convolutions as matrices."""

import itertools

import numpy as np
import nengo
import pytest
from nengo.builder.transforms import GeneralConvInc

from nhw.backends.loihi_emu.conv import conv_coo, conv_dense, pixel_atoms
from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, SynapseGroup
from nhw.hw_emulator.emulator import Emulator
from nhw.hw_emulator.shared_synapses import SharedSynapseGroup


def _nengo_matrix(transform, kernel):
    """The matrix nengo's own convolution operator applies, one unit input at a time."""
    with nengo.Network() as net:
        a = nengo.Node(np.zeros(transform.size_in))
        b = nengo.Node(size_in=transform.size_out)
        nengo.Connection(a, b, transform=transform, synapse=None)
    model = nengo.builder.Model()
    model.build(net)
    op = next(o for o in model.operators if isinstance(o, GeneralConvInc))
    m = np.zeros((transform.size_out, transform.size_in))
    for j in range(transform.size_in):
        sig = {op.W: kernel.copy(), op.X: np.eye(transform.size_in)[j], op.Y: np.zeros(transform.size_out)}
        op.make_step(sig, 0.001, None)()
        m[:, j] = sig[op.Y]
    return m


CASES = list(itertools.product((1, 2), ("same", "valid"), (True, False), (1, 2), (1, 3)))


@pytest.mark.parametrize("dims,padding,last,stride,k", CASES)
@pytest.mark.parametrize("kind", ["conv", "groups", "transpose"])
def test_conv_matrix_is_nengos(dims, padding, last, stride, k, kind):
    shape = (5, 2) if dims == 1 else (5, 4, 2)
    if not last:
        shape = tuple(np.roll(shape, 1))
    ks, st = (k,) * dims, (stride,) * dims
    kw = dict(kernel_size=ks, strides=st, padding=padding, channels_last=last)
    if kind == "transpose":
        t = nengo.transforms.ConvolutionTranspose(4, shape, **kw)
    else:
        t = nengo.Convolution(4, shape, groups=2 if kind == "groups" else 1, **kw)
    kernel = np.random.RandomState(0).randn(*t.kernel_shape)
    t = type(t)(**{**{a: getattr(t, a) for a in ("n_filters", "input_shape")}, **kw, "init": kernel,
                   **({"groups": t.groups} if kind != "transpose" else {})})
    np.testing.assert_allclose(conv_dense(t, kernel), _nengo_matrix(t, kernel), atol=1e-12)


def test_pixel_atoms():
    t = nengo.Convolution(2, (3, 2, 4), channels_last=False, kernel_size=(1, 1))
    pix, atom = pixel_atoms(t.input_shape)
    assert list(pix[:9]) == [0, 1, 2, 3, 4, 5, 6, 7, 0] and list(atom[:9]) == [0] * 8 + [1]


def _shared_example():
    tr = nengo.Convolution(3, (6, 6, 2), kernel_size=(3, 3), padding="same")
    kernel = np.random.RandomState(1).randint(-9, 10, tr.kernel_shape).astype(float)
    r, c, v = conv_coo(tr, kernel)
    net = ChipNetwork()
    src = net.add_block(CompartmentBlock("src", tr.size_in, 0))
    tgt = net.add_block(CompartmentBlock("tgt", tr.size_out, 0))
    pix, atom = pixel_atoms(tr.input_shape)
    g = SharedSynapseGroup.from_coo("g", src, tgt, c, r, v.astype(int), 0, pix, atom)
    return tr, kernel, net, src, tgt, g, (r, c, v)


def test_shared_group_round_trip_and_sharing():
    tr, kernel, _, _, _, g, (r, c, v) = _shared_example()
    s, t, m = g.coo()
    dense = np.zeros((tr.size_out, tr.size_in))
    dense[t, s] = m
    np.testing.assert_array_equal(dense, conv_dense(tr, kernel))
    # 'same' 3x3 on 6x6: 3 row kinds x 3 column kinds of footprint
    assert len(g.lists) == 9
    assert g.n_stored < g.n_synapses
    bits, axons = g.piece_cost(0, tr.size_out)
    assert axons == 36  # one population axon per input pixel
    assert bits < g.discrete_cost(0, tr.size_out)
    # split in two pieces: each piece stores its own parts of the lists
    b1, a1 = g.piece_cost(0, 50)
    b2, a2 = g.piece_cost(50, tr.size_out)
    assert b1 + b2 >= bits and a1 + a2 >= axons


def test_shared_group_delivers_like_discrete_synapses():
    tr, kernel, net, src, tgt, g, (r, c, v) = _shared_example()
    net.add_group(g)
    net2 = ChipNetwork()
    src2 = net2.add_block(CompartmentBlock("src", tr.size_in, 0))
    tgt2 = net2.add_block(CompartmentBlock("tgt", tr.size_out, 0))
    net2.add_group(SynapseGroup("d", src2, tgt2, conv_dense(tr, kernel).T.astype(int), 0))
    e1, e2 = Emulator(net), Emulator(net2)
    rng = np.random.RandomState(0)
    for _ in range(5):
        spikes = rng.rand(tr.size_in) < 0.3
        for e, b in ((e1, src), (e2, src2)):
            e.spikes = np.zeros(e.n, bool)
            e.spikes[e.slice_of(b)] = spikes
            e._act[: e.n] = e.spikes
            e.step()
        np.testing.assert_array_equal(e1.u, e2.u)
    assert np.any(e1.u != 0)
