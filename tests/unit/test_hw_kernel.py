"""The compiled emulator step (numba) against the numpy step: identical integers.

Random chip networks exercise every part of a step (host bursts, dense and table
delivery, shared population-axon lists, dendrite joins, negative voltage clips,
initial voltages and holds, q and u wraps) and learning (a PES network through the
loihi-emu Simulator); both kernels must give the same spikes, state and counters
at every step, both step by step and as one compiled run.
"""

from __future__ import annotations

import nengo
import numpy as np
import pytest

from nhw.errors import ConfigError
from nhw.hw_emulator import kernel as hw_kernel
from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, InputAxons, SynapseGroup
from nhw.hw_emulator.emulator import Emulator, choose_kernel
from nhw.hw_emulator.shared_synapses import SharedSynapseGroup

needs_numba = pytest.mark.skipif(not hw_kernel.AVAILABLE, reason="numba not installed (nhw[fast])")

U_TOP = (1 << 23) - 1


def _random_network(seed: int, big: bool, repeated: bool = False) -> ChipNetwork:
    """Host axons, three blocks (one a dendrite of another), dense, sparse, recurrent and
    shared groups; ``big``: weights large enough that q and u wrap; ``repeated``: one more
    dense group whose weights repeat columns and rows (as decode neurons' do)."""
    rng = np.random.RandomState(seed)
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", 30, 3))
    a = net.add_block(CompartmentBlock("a", 70, rng.randint(0, 4096, 70), rng.randint(0, 4096, 70), 64 * 150,
                                       rng.randint(0, 300, 70), 2, rng.randint(1, 4, 70), -(1 << 12), U_TOP,
                                       v_init=rng.randint(-500, 9000, 70), hold_init=rng.randint(0, 3, 70)))
    b = net.add_block(CompartmentBlock("b", 50, 741, 200, 64 * 300, 0, 0, 3, 0, U_TOP))
    d = net.add_block(CompartmentBlock("d", 50, 300, 4095, 64 * 300, 0, 0, 1, 0, U_TOP, parent=b))
    exp = 6 if big else 0
    net.add_group(SynapseGroup("ia", inp, a, rng.randint(-255, 256, (30, 70)), exp))
    net.add_group(SynapseGroup("ab", a, b, rng.randint(-255, 256, (70, 50)), exp))
    net.add_group(SynapseGroup("aa", a, a, rng.randint(-100, 100, (70, 70)) * (rng.rand(70, 70) < 0.1), 0))
    net.add_group(SynapseGroup("ad", a, d, rng.randint(-255, 256, (70, 50)) * (rng.rand(70, 50) < 0.2), 0))
    # a 1-D "convolution": source i reaches targets i..i+2 with one shared kernel
    src = np.repeat(np.arange(48), 3)
    tgt = src + np.tile(np.arange(3), 48)
    net.add_group(SharedSynapseGroup.from_coo("ba", b, a, src, tgt, np.tile([40, -90, 120], 48), 0,
                                              np.arange(50), np.zeros(50, np.int64)))
    if repeated:  # 70 rows from 12 distinct, 50 columns from 6 distinct
        w = rng.randint(-255, 256, (12, 6))[rng.randint(0, 12, 70)][:, rng.randint(0, 6, 50)]
        net.add_group(SynapseGroup("ab2", a, b, w, exp))
    return net


def _same_state(e1: Emulator, e2: Emulator) -> None:
    assert np.array_equal(e1.u, e2.u) and np.array_equal(e1.v, e2.v)
    assert np.array_equal(e1.refractory, e2.refractory)
    for attr in ("spike_count", "active_count", "u_overflows", "input_count"):
        assert np.array_equal(getattr(e1, attr), getattr(e2, attr)), attr
    assert e1.q_overflows == e2.q_overflows
    assert e1.synaptic_ops() == e2.synaptic_ops()


@needs_numba
@pytest.mark.parametrize("fast_dense", [None, 300], ids=["runs", "dense-rows"])
@pytest.mark.parametrize("big", [False, True], ids=["in-range", "wrapping"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_step_equals_numpy_step(seed, big, fast_dense):
    # fast_dense: the compiled step's dense-row delivery (four rows per pass, then the
    # rest) for the groups of at least that many weights; None: every synapse in runs
    net = _random_network(seed, big)
    fast = Emulator(net, kernel="numba", dense_min_size=fast_dense)
    ref = Emulator(net, kernel="numpy", dense_min_size=300)
    assert fast.kernel == "numba" and ref.kernel == "numpy" and ref._dense  # both numpy delivery paths used
    assert len(fast._dense) == (0 if fast_dense is None else len(ref._dense))
    rng = np.random.RandomState(100 + seed)
    for _ in range(150):
        counts = rng.randint(0, 4, 30) * (rng.rand(30) < 0.4)
        assert np.array_equal(fast.step(counts), ref.step(counts))
        np.testing.assert_array_equal(fast.currents(slice(0, fast.n)), ref.currents(slice(0, ref.n)))
    _same_state(fast, ref)
    assert ref.spike_count.sum() > 100
    if big:
        assert ref.q_overflows and ref.u_overflows.any()  # the wraps were exercised


@needs_numba
@pytest.mark.parametrize("big", [False, True], ids=["in-range", "wrapping"])
def test_compiled_distinct_columns_equal_numpy_step(big):
    # a dense group with repeated columns is summed over its distinct columns, then copied
    net = _random_network(5, big, repeated=True)
    fast = Emulator(net, kernel="numba", dense_min_size=300)
    ref = Emulator(net, kernel="numpy", dense_min_size=300)
    meta = fast._dense_args[0]
    assert (meta[:, 7] >= 0).sum() == 1 and meta[meta[:, 7] >= 0][0, 4] == 6  # 6 columns stored
    rng = np.random.RandomState(7)
    for _ in range(150):
        counts = rng.randint(0, 4, 30) * (rng.rand(30) < 0.4)
        assert np.array_equal(fast.step(counts), ref.step(counts))
    _same_state(fast, ref)
    assert ref.spike_count.sum() > 100
    counts = rng.randint(0, 4, (60, 30))
    s1, _ = fast.run(60, counts, np.arange(fast.n))  # one compiled loop
    s2, _ = ref.run(60, counts, np.arange(ref.n))
    assert np.array_equal(s1, s2)
    _same_state(fast, ref)


@needs_numba
@pytest.mark.parametrize("seed", [0, 3])
def test_compiled_run_equals_numpy_run(seed):
    net = _random_network(seed, big=seed == 3)
    fast, ref = Emulator(net, kernel="numba"), Emulator(net, kernel="numpy")
    rng = np.random.RandomState(seed)
    record = rng.choice(fast.n, 40, replace=False)
    for steps, with_input in ((120, True), (1, True), (60, False)):
        counts = rng.randint(0, 4, (steps, 30)) if with_input else None
        s1, _ = fast.run(steps, counts, record)
        s2, _ = ref.run(steps, counts, record)
        assert np.array_equal(s1, s2)
        _same_state(fast, ref)
    assert fast.n_steps == ref.n_steps == 181


@needs_numba
def test_compiled_run_with_recorded_state_equals_numpy():
    # a run recording state goes step by step (still one compiled call per step)
    net = _random_network(4, big=False)
    fast, ref = Emulator(net, kernel="numba"), Emulator(net, kernel="numpy")
    counts = np.random.RandomState(4).randint(0, 4, (80, 30))
    what = [slice(0, 70), ("input", slice(70, 120))]
    s1, v1 = fast.run(80, counts, np.arange(fast.n), what)
    s2, v2 = ref.run(80, counts, np.arange(ref.n), what)
    assert np.array_equal(s1, s2) and all(np.array_equal(x, y) for x, y in zip(v1, v2))
    _same_state(fast, ref)


def _pes_network() -> nengo.Network:
    with nengo.Network(seed=3) as net:
        stim = nengo.Node(lambda t: [np.sin(6 * t), np.cos(4 * t)])
        pre = nengo.Ensemble(100, 2)
        post = nengo.Ensemble(100, 2)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(pre, post, function=lambda x: [0, 0], learning_rule_type=nengo.PES(2e-4))
        err = nengo.Node(size_in=2)
        nengo.Connection(post, err)
        nengo.Connection(stim, err, transform=-1)
        nengo.Connection(err, conn.learning_rule)
        net.probe = nengo.Probe(post, synapse=0.01)
        net.spikes = nengo.Probe(pre.neurons)
    return net


@needs_numba
def test_loihi_emu_results_do_not_depend_on_the_kernel():
    from nhw.backends.loihi_emu.simulator import Simulator

    net = _pes_network()
    data = {}
    for kernel in ("numba", "numpy"):
        with Simulator(net, seed=0, kernel=kernel) as sim:
            assert sim.emulator.kernel == kernel and sim.emulator.learned
            sim.run(0.4)
            data[kernel] = (sim.data[net.probe], sim.data[net.spikes], sim.emulator.spike_count)
    for x, y in zip(data["numba"], data["numpy"]):
        assert np.array_equal(x, y)
    assert np.abs(data["numpy"][0][-100:]).max() > 0.1  # it learned something


def test_kernel_choice():
    assert choose_kernel("numpy") == "numpy"
    assert choose_kernel("auto") == ("numba" if hw_kernel.AVAILABLE else "numpy")
    with pytest.raises(ConfigError, match="'fast'"):
        choose_kernel("fast")
    if not hw_kernel.AVAILABLE:
        with pytest.raises(ConfigError, match="numba is not installed"):
            choose_kernel("numba")
