"""Golden single-compartment traces: the emulator against SPEC.md's equations.

The reference below re-implements SPEC.md section 2 with Python integers, one
compartment at a time, independently of the vectorised emulator.
"""

from __future__ import annotations

import numpy as np
import pytest

from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, InputAxons, SynapseGroup
from nhw.hw_emulator.chip import LOIHI_V1
from nhw.hw_emulator.discretize import effective_weights
from nhw.hw_emulator.emulator import Emulator


def _wrap(x: int, bits: int) -> int:
    half = 1 << (bits - 1)
    return ((x + half) % (1 << bits)) - half


def _decay(x: int, keep: int) -> int:
    m = (abs(x) * keep) // 4096
    return m if x >= 0 else -m


class RefCompartment:
    """SPEC.md section 2 for one compartment, in Python integers."""

    def __init__(self, decay_u, decay_v, vth, bias, ref_delay, vmin, vmax):
        self.p = (decay_u, decay_v, vth, bias, ref_delay, vmin, vmax)
        self.u = self.v = 0
        self.hold = 0
        self.t = 0

    def step(self, q: int) -> bool:
        du, dv, vth, bias, d, vmin, vmax = self.p
        self.t += 1
        q = _wrap(q, 22)
        self.u = _wrap(_decay(self.u, 4095 - du) + q, 24)
        v = _decay(self.v, 4096 - dv) + self.u + bias
        v = min(max(v, vmin), vmax)
        if self.t <= self.hold:
            v = 0
        spike = v > vth
        if spike:
            v = 0
            self.hold = self.t + d - 1
        self.v = v
        return spike


def _single(decay_u, decay_v, vth, bias_mant, bias_exp, ref, vmin, vmax, mant, exp, max_count):
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", 1, max_count))
    blk = net.add_block(CompartmentBlock("c", 1, decay_u, decay_v, vth, bias_mant, bias_exp, ref, vmin, vmax))
    net.add_group(SynapseGroup("g", inp, blk, np.array([[mant]]), exp))
    return net, Emulator(net)


CASES = {
    # name: (decay_u, decay_v, vth, bias_m, bias_e, ref, vmin, vmax, mant, exp, max_count)
    "lif": (741, 200, 64 * 900, 0, 0, 3, 0, (1 << 23) - 1, 100, 0, 3),
    "lif_bias_negative_input": (200, 200, 64 * 500, 300, 2, 2, 0, (1 << 23) - 1, -120, 1, 4),
    "integrator_if": (4095, 0, 64 * 2000, 0, 0, 1, 0, (1 << 23) - 1, 200, 2, 2),
    "u_and_q_wrap": (0, 4095, 64 * 131071, 0, 0, 1, -((1 << 23) - 1), (1 << 23) - 1, 255, 7, 4),
    "v_clip_both_sides": (4095, 100, 64 * 100, 0, 0, 1, -511, 511, -250, -3, 3),
    "long_refractory": (4095, 3, 64 * 10, 4000, 3, 63, 0, (1 << 23) - 1, 0, 0, 1),
    "negative_shift_weights": (2000, 50, 64 * 3, 0, 0, 2, -2047, 2047, -77, -7, 4),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_single_compartment_matches_spec(name):
    du, dv, vth, bm, be, ref, vmin, vmax, mant, exp, k = CASES[name]
    _, em = _single(du, dv, vth, bm, be, ref, vmin, vmax, mant, exp, k)
    golden = RefCompartment(du, dv, vth, bm << be, ref, vmin, vmax)
    w = int(effective_weights(np.array([mant]), exp)[0])
    rng = np.random.RandomState(hash(name) % 2**31)
    counts = rng.randint(0, k + 1, size=400)
    counts[300:] = 0  # watch the decay afterwards
    n_spikes = 0
    for t, c in enumerate(counts):
        spk = em.step(np.array([c]))
        g = golden.step(int(c) * w)
        assert (int(em.u[0]), int(em.v[0]), bool(spk[0])) == (golden.u, golden.v, g), f"step {t + 1}"
        n_spikes += g
    if name in ("lif", "long_refractory", "integrator_if"):
        assert n_spikes > 0  # the case exercises spiking and the refractory hold


def test_u_wraps_and_v_clips_are_exercised():
    du, dv, vth, bm, be, ref, vmin, vmax, mant, exp, _ = CASES["u_and_q_wrap"]
    # one spike per step: q = 255 << 13 fits 22 bits, u passes 2**23 after 5 steps
    _, em = _single(du, dv, vth, bm, be, ref, vmin, vmax, mant, exp, 1)
    us = []
    for _ in range(20):
        em.step(np.array([1]))
        us.append(int(em.u[0]))
    assert min(us) < 0 < max(us)  # positive input only, so negative u means a wrap
    # four spikes per step: q itself exceeds 22 bits and wraps negative
    _, em = _single(du, dv, vth, bm, be, ref, vmin, vmax, mant, exp, 4)
    em.step(np.array([4]))
    assert int(em.u[0]) == _wrap(4 * (255 << 13), 22) < 0
    _, em = _single(*CASES["v_clip_both_sides"])
    vs = [(em.step(np.array([3])), int(em.v[0]))[1] for _ in range(10)]
    assert min(vs) == -511


def test_refractory_hold_exact_period():
    # constant u2 = bias, vth = 640, no decay: v reaches bias*k; period = (D-1) + n
    net = ChipNetwork()
    blk = net.add_block(CompartmentBlock("c", 1, 4095, 0, 64 * 10, 100, 0, 5, 0, (1 << 23) - 1))
    em = Emulator(net)
    spikes = [bool(em.step()[0]) for _ in range(100)]
    times = np.flatnonzero(spikes) + 1
    assert times[0] == 7  # 100 * 7 > 640 first at k = 7
    assert np.all(np.diff(times) == (5 - 1) + 7)
    assert blk.n == 1


def test_spikes_delivered_next_step_and_vectorised_blocks():
    # A spikes from its bias; B (three compartments, different decays) receives A's
    # spikes of step t-1 at step t.
    net = ChipNetwork()
    a = net.add_block(CompartmentBlock("a", 1, 4095, 0, 64 * 10, 200, 0, 1, 0, (1 << 23) - 1))
    b = net.add_block(CompartmentBlock("b", 3, [0, 741, 4095], [0, 200, 4095], 64 * 1000, 0, 0, 2, 0,
                                       (1 << 23) - 1))
    mant = np.array([[50, -30, 255]])
    net.add_group(SynapseGroup("ab", a, b, mant, 0))
    em = Emulator(net)
    ra = RefCompartment(4095, 0, 640, 200, 1, 0, (1 << 23) - 1)
    rb = [RefCompartment(du, dv, 64000, 0, 2, 0, (1 << 23) - 1) for du, dv in [(0, 0), (741, 200), (4095, 4095)]]
    w = effective_weights(mant, 0)[0]
    prev = False
    for t in range(60):
        spk = em.step()
        sa = ra.step(0)
        sb = [r.step(int(w[i]) if prev else 0) for i, r in enumerate(rb)]
        prev = sa
        assert bool(spk[0]) == sa
        assert [bool(x) for x in spk[1:]] == sb, f"step {t + 1}"
        assert [int(x) for x in em.v[1:]] == [r.v for r in rb]
        assert [int(x) for x in em.u[1:]] == [r.u for r in rb]


def test_dendrite_join_adds_current_to_soma():
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", 2, 1))
    soma = net.add_block(CompartmentBlock("soma", 1, 741, 200, 64 * 100000, 0, 0, 1, 0, (1 << 23) - 1))
    dend = net.add_block(CompartmentBlock("dend", 1, 200, 4095, 64 * 100000, 0, 0, 1, 0, (1 << 23) - 1,
                                          parent=soma))
    net.add_group(SynapseGroup("s", inp, soma, np.array([[10], [0]]), 0))
    net.add_group(SynapseGroup("d", inp, dend, np.array([[0], [20]]), 0))
    em = Emulator(net)
    us = us_d = v = 0
    for t in range(50):
        c = np.array([t % 3 == 0, t % 5 == 0], dtype=np.int64)
        em.step(c)
        us = _wrap(_decay(us, 4095 - 741) + int(c[0]) * 640, 24)
        us_d = _wrap(_decay(us_d, 4095 - 200) + int(c[1]) * 1280, 24)
        v = _decay(v, 4096 - 200) + us + us_d
        assert int(em.v[0]) == v and int(em.u[0]) == us and int(em.u[1]) == us_d


def test_spec_constants():
    s = LOIHI_V1
    assert (s.u_min, s.u_max) == (-(1 << 23), (1 << 23) - 1)
    assert s.vth_max == 131071 * 64 == 8388544
    assert s.bias_max == 4095 * 128 == 524160
    assert s.vmax_for_exponent(7) == (1 << 23) - 1
    assert s.synapse_memory_bytes == 128 * 1024 and s.cores_per_chip == 128
    with pytest.raises(Exception):
        s.u_bits = 3  # frozen


def _input_and_two_blocks(rng, n_in: int, max_count: int) -> tuple:
    """Host axons and two blocks ``a`` (80, biased) and ``b`` (90) for delivery tests."""
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", n_in, max_count))
    a = net.add_block(CompartmentBlock("a", 80, 741, 200, 64 * 200, rng.randint(0, 400, 80), 2, 2, 0,
                                       (1 << 23) - 1))
    b = net.add_block(CompartmentBlock("b", 90, 300, 100, 64 * 300, 0, 0, 3, 0, (1 << 23) - 1))
    return net, inp, a, b


def _assert_same_runs(dense: Emulator, sparse: Emulator, rng, n_in: int, max_count: int, steps: int) -> None:
    for _ in range(steps):
        counts = rng.randint(0, max_count + 1, n_in)
        assert np.array_equal(dense.step(counts), sparse.step(counts))
        assert np.array_equal(dense.u, sparse.u) and np.array_equal(dense.v, sparse.v)


def test_dense_and_sparse_delivery_agree():
    rng = np.random.RandomState(1)
    net, inp, a, b = _input_and_two_blocks(rng, 4, 2)
    net.add_group(SynapseGroup("ia", inp, a, rng.randint(-255, 256, (4, 80)), 0))
    net.add_group(SynapseGroup("ab", a, b, rng.randint(-255, 256, (80, 90)), -1))
    net.add_group(SynapseGroup("aa", a, a, rng.randint(-100, 100, (80, 80)) * (rng.rand(80, 80) < 0.1), 0))
    dense, sparse = Emulator(net, dense_min_size=300), Emulator(net, dense_min_size=None)
    assert len(dense._dense) == 2 and not sparse._dense  # host input and a -> b
    _assert_same_runs(dense, sparse, rng, 4, 2, 200)
    assert dense.spike_count.sum() > 0


def test_repeated_weight_rows_deliver_exactly():
    """Groups whose rows repeat (decode neurons) sum spikes per distinct row first; the
    result must equal the row-by-row table delivery bit for bit."""
    rng = np.random.RandomState(2)
    net, inp, a, b = _input_and_two_blocks(rng, 40, 3)
    distinct_in = rng.randint(-255, 256, (5, 80))
    distinct_ab = rng.randint(-255, 256, (6, 90))
    net.add_group(SynapseGroup("ia", inp, a, distinct_in[rng.randint(0, 5, 40)], 0))
    net.add_group(SynapseGroup("ab", a, b, distinct_ab[rng.randint(0, 6, 80)], 1))
    dense, sparse = Emulator(net, dense_min_size=300), Emulator(net, dense_min_size=None)
    assert [len(w) for _, _, rowmap, w, _ in dense._dense if rowmap is not None] == [5, 6]
    _assert_same_runs(dense, sparse, rng, 40, 3, 300)
    assert dense.spike_count[80:].sum() > 0


# ------------------------------------------------------------------ chip LIF timing
# Written from design/loihi-model.md (not from the emulator's code): the refractory
# register is round(tau_ref/dt) + 1, a counter set to it on a spike and counted down
# each step, the compartment held at v = 0 while it is still positive.
def _chip_registers(tau_rc: float, tau_ref: float, dt: float) -> tuple[int, int]:
    decay_v = int(round(4095 * (1 - np.exp(-dt / tau_rc))))
    return decay_v, int(round(tau_ref / dt)) + 1


class ChipLIFReference:
    """One LIF compartment with constant ``u + bias`` (no synaptic input), integers only."""

    def __init__(self, decay_v: int, bias: int, vth: int, refractory_delay: int, vmax: int):
        self.decay_v, self.bias, self.vth, self.delay, self.vmax = decay_v, bias, vth, refractory_delay, vmax
        self.u = self.v = 0
        self.counter = 0  # refractory counter

    def step(self) -> bool:
        self.u = 0  # no input: u stays 0 (its decay of 0 is 0)
        v = _decay(self.v, 4096 - self.decay_v) + self.u + self.bias
        v = min(max(v, 0), self.vmax)  # LIF: vmin = 0 (nengo's min_voltage)
        if self.counter > 0:
            self.counter -= 1
        if self.counter > 0:
            v = 0  # held for refractory_delay - 1 steps after a spike
        spike = v > self.vth
        if spike:
            v = 0
            self.counter = self.delay
        self.v = v
        return spike


#: gain 1 and these biases give the chip's counts 0, 50, 91, 125, 143, 167, 200, 200 in
#: 1 s at tau_rc 20 ms, tau_ref 2 ms, dt 1 ms (periods of 20, 11, 8, 7, 6, 5, 5 steps)
EIGHT_BIASES = [0.5, 1.7, 3.0, 4.0, 5.0, 7.0, 9.0, 10.0]
EIGHT_COUNTS = [0, 50, 91, 125, 143, 167, 200, 200]


def _lif_sim(biases, tau_rc=0.02, tau_ref=0.002, dt=0.001):
    import nengo

    from nhw.backends.loihi_emu import Simulator

    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(len(biases), 1, gain=np.ones(len(biases)), bias=np.asarray(biases, float),
                             neuron_type=nengo.LIF(tau_rc=tau_rc, tau_ref=tau_ref,
                                                   initial_state={"voltage": nengo.dists.Choice([0.0])}))
        probe = nengo.Probe(ens.neurons)
    return Simulator(net, dt=dt, progress_bar=False), ens, probe


@pytest.mark.parametrize("tau_rc,tau_ref", [(0.02, 0.002), (0.02, 0.0), (0.02, 0.001), (0.05, 0.005),
                                            (0.02, 0.0024)])
def test_lif_trace_matches_chip_reference(tau_rc, tau_ref):
    dt = 0.001
    sim, ens, _ = _lif_sim(EIGHT_BIASES + [40.0], tau_rc, tau_ref, dt)
    with sim:
        block = sim.mapped.ensemble_blocks[ens]
        block = block[0] if isinstance(block, (list, tuple)) else block
        decay_v, delay = _chip_registers(tau_rc, tau_ref, dt)
        assert np.all(block.decay_v == decay_v) and np.all(block.refractory_delay == delay)
        sl = sim.emulator.slice_of(block)
        bias = [int(m) << int(e) for m, e in zip(block.bias_mant, block.bias_exp)]
        refs = [ChipLIFReference(decay_v, b, int(vth), delay, int(block.vmax))
                for b, vth in zip(bias, np.broadcast_to(block.vth, (block.n,)))]
        n_spikes = 0
        for t in range(400):
            spk = sim.emulator.step()[sl]
            u, v = sim.emulator.u[sl], sim.emulator.v[sl]
            for i, r in enumerate(refs):
                s = r.step()
                assert (int(u[i]), int(v[i]), bool(spk[i])) == (r.u, r.v, s), f"neuron {i}, step {t + 1}"
                n_spikes += s
        assert n_spikes > 0
        # the strongly driven neuron spikes at the shortest period, round(tau_ref/dt) + 1 steps
        assert delay == int(round(tau_ref / dt)) + 1


def test_eight_lif_neurons_fire_the_chips_counts():
    sim, ens, probe = _lif_sim(EIGHT_BIASES)
    with sim:
        sim.run(1.0)
        counts = (sim.data[probe] > 0).sum(axis=0)
    assert counts.tolist() == EIGHT_COUNTS
    # the same counts from the reference recurrence
    decay_v, delay = _chip_registers(0.02, 0.002, 0.001)
    s = 1 << 20
    ref_counts = []
    for b in EIGHT_BIASES:
        r = ChipLIFReference(decay_v, int(round(b * s * decay_v / 4096)), s, delay, (1 << 23) - 1)
        ref_counts.append(sum(r.step() for _ in range(1000)))
    assert ref_counts == EIGHT_COUNTS


def test_lif_saturates_at_one_over_tau_ref_plus_dt():
    sim, ens, probe = _lif_sim([1000.0], tau_ref=0.002)
    with sim:
        sim.run(0.1)
        times = np.flatnonzero(sim.data[probe][:, 0])
    assert np.all(np.diff(times) == 3)  # 2 held steps + 1: 1 / (tau_ref + dt)
