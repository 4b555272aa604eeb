"""Chip facts of design/loihi-model.md that no other test checked, against the emulator.

Written from the fact sheet, not from the emulator's code: the threshold is strict, a
spike is never earlier than nengo's, the refractory hold rounds tau_ref to whole steps
(so rates stay at or below nengo's only when tau_ref is a whole number of steps),
current and voltage decay alike, the weight exponent fills the mantissa, vth and bias
scale together, and ChipSpec carries the fact sheet's formats, capacities and energy
figures.  The other facts are checked in test_emu_golden.py, test_emu_discretize.py,
test_emu_allocate.py and test_emu_spec_bounds.py.
"""

from __future__ import annotations

import math

import nengo
import numpy as np
import pytest
from nhw.backends.loihi_emu import Simulator
from nhw.hw_emulator import discretize as dz
from nhw.hw_emulator import kernel as hw_kernel
from nhw.hw_emulator.blocks import (
    ChipNetwork,
    CompartmentBlock,
    InputAxons,
    SynapseGroup,
)
from nhw.hw_emulator.chip import LOIHI_V1
from nhw.hw_emulator.emulator import Emulator

KERNELS = ["numpy"] + (["numba"] if hw_kernel.AVAILABLE else [])
VMAX = (1 << 23) - 1


@pytest.mark.parametrize("kernel", KERNELS)
def test_spike_needs_v_strictly_above_vth(kernel):
    # integrate-and-fire, bias 10 per step, vth 640: v = 640 = vth at step 64 is no spike
    net = ChipNetwork()
    net.add_block(CompartmentBlock("c", 1, 4095, 0, 640, 10, 0, 1, 0, VMAX))
    em = Emulator(net, kernel=kernel)
    vs, spikes = [], []
    for _ in range(130):
        spikes.append(bool(em.step()[0]))
        vs.append(int(em.v[0]))
    assert vs[63] == 640 and not spikes[63]
    assert (np.flatnonzero(spikes) + 1).tolist() == [65, 130]  # 650 > 640; refractory_delay 1: no hold


def _lif_network(biases, tau_rc: float, tau_ref: float):
    with nengo.Network(seed=0) as net:
        ens = nengo.Ensemble(len(biases), 1, gain=np.ones(len(biases)), bias=np.asarray(biases, float),
                             neuron_type=nengo.LIF(tau_rc=tau_rc, tau_ref=tau_ref,
                                                   initial_state={"voltage": nengo.dists.Choice([0.0])}))
        probe = nengo.Probe(ens.neurons)
    return net, ens, probe


BIASES = np.round(np.linspace(1.05, 60.0, 40), 3)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("tau_rc,tau_ref", [(0.02, 0.002), (0.05, 0.001), (0.01, 0.0024)])
def test_first_spike_is_never_earlier_than_nengos(tau_rc, tau_ref, kernel):
    net, _, probe = _lif_network(BIASES, tau_rc, tau_ref)
    with nengo.Simulator(net, progress_bar=False) as ref, Simulator(net, progress_bar=False, kernel=kernel) as chip:
        ref.run(0.2)
        chip.run(0.2)
        first_ref = (ref.data[probe] > 0).argmax(axis=0)
        first_chip = (chip.data[probe] > 0).argmax(axis=0)
    assert np.all((ref.data[probe] > 0).any(axis=0))
    # the chip spikes in the step its integer v passes vth: never before nengo's continuous
    # crossing, and (bias and decays rounded to 12 bits) at most one step after it
    assert np.all(first_chip >= first_ref), BIASES[first_chip < first_ref]
    assert np.all(first_chip <= first_ref + 1)


def _chip_periods(biases, tau_rc: float, tau_ref: float, kernel: str, dt: float = 0.001) -> np.ndarray:
    net, _, probe = _lif_network(biases, tau_rc, tau_ref)
    with Simulator(net, dt=dt, progress_bar=False, kernel=kernel) as chip:
        chip.run(0.5)
        spikes = chip.data[probe] > 0
    periods = []
    for i in range(len(biases)):
        times = np.flatnonzero(spikes[:, i])
        assert len(times) >= 3 and np.ptp(np.diff(times)) == 0  # a constant input gives a constant period
        periods.append(times[-1] - times[-2])
    return np.array(periods) * dt


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("tau_ref", [0.0, 0.001, 0.002, 0.005])
def test_rates_are_at_or_below_nengos_when_tau_ref_is_whole_steps(tau_ref, kernel):
    # hold round(tau_ref/dt) = tau_ref/dt steps, then whole integrating steps up to the
    # one that passes vth: the period is never shorter than nengo's tau_ref + t_threshold
    biases = np.round(np.linspace(1.2, 60.0, 30), 3)
    nengo_rates = nengo.LIF(tau_rc=0.02, tau_ref=tau_ref).rates(np.ones(1), np.ones(len(biases)), biases)[0]
    chip_rates = 1.0 / _chip_periods(biases, 0.02, tau_ref, kernel)
    assert np.all(chip_rates <= nengo_rates * (1 + 1e-12)), biases[chip_rates > nengo_rates]
    # saturation: the shortest period is the hold plus one integrating step
    assert chip_rates.max() <= 1.0 / (tau_ref + 0.001) + 1e-9


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_tau_ref_between_steps_rounds_the_hold_down_and_can_fire_above_nengo(kernel):
    # tau_ref = 2.4 ms holds round(2.4) = 2 steps: strongly driven neurons then beat
    # nengo's 1 / (2.4 ms + t_threshold) (the register formula, not an emulator error)
    assert dz.refractory_delay(0.0024, 0.001) == 3
    biases = np.array([11.5, 25.0])
    nengo_rates = nengo.LIF(tau_rc=0.02, tau_ref=0.0024).rates(np.ones(1), np.ones(2), biases)[0]
    chip_rates = 1.0 / _chip_periods(biases, 0.02, 0.0024, kernel)
    assert np.all(chip_rates > nengo_rates)
    assert chip_rates.max() <= 1.0 / 0.003 + 1e-9  # 2 held steps + 1: 1 / (round(tau_ref/dt)*dt + dt)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("tau", [0.002, 0.005, 0.02, 0.1, 1.0])
def test_current_and_voltage_decay_alike(tau, kernel):
    # the register offset of 1 on decayU: a current with decay_u_register(tau) and a
    # voltage with decay_v_register(tau) fall by the same integers after the same impulse
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", 1, 1))
    cur = net.add_block(CompartmentBlock("u", 1, dz.decay_u_register(tau, 0.001), 4095, LOIHI_V1.vth_max,
                                         0, 0, 1, 0, VMAX))
    volt = net.add_block(CompartmentBlock("v", 1, 4095, dz.decay_v_register(tau, 0.001), LOIHI_V1.vth_max,
                                          0, 0, 1, 0, VMAX))
    net.add_group(SynapseGroup("iu", inp, cur, np.array([[255]]), 7))
    net.add_group(SynapseGroup("iv", inp, volt, np.array([[255]]), 7))
    em = Emulator(net, kernel=kernel)
    us, vs = [], []
    for t in range(300):
        em.step(np.array([int(t == 0)]))
        us.append(int(em.u[0]))
        vs.append(int(em.v[1]))
    assert us[0] == vs[0] == 255 << 13
    assert us == vs
    assert us[-1] < us[0]  # it decayed


def test_weight_exponent_makes_the_largest_weight_use_the_full_mantissa():
    rng = np.random.RandomState(0)
    filled = 0
    for magnitude in [3.0, 200.0, 1e3, 7e4, 2e6]:
        w = rng.uniform(-1, 1, (20, 30)) * magnitude
        q = dz.quantize_weights(w)
        assert q.n_clipped == 0
        top = int(np.abs(q.mantissa).max())
        if q.exponent == LOIHI_V1.weight_exp_min:
            assert magnitude < 128 * q.scale  # no smaller exponent to fill the mantissa with
            continue
        # the top bit of the 8-bit magnitude is used: one exponent lower would clip
        assert LOIHI_V1.weight_mant_max // 2 < top <= LOIHI_V1.weight_mant_max, (magnitude, q.exponent, top)
        filled += 1
    assert filled == 4


def test_vth_and_bias_scale_together():
    # a bias beyond the 13-bit format at the default scale makes those neurons use a
    # smaller vth; bias / vth (the per-step input relative to threshold) is unchanged
    biases = np.array([1.5, 5.0, 60.0, 150.0])
    net, ens, _ = _lif_network(biases, 0.02, 0.002)
    with Simulator(net, progress_bar=False) as sim:
        block = sim.mapped.ensemble_blocks[ens]
        block = block[0] if isinstance(block, (list, tuple)) else block
        vth = np.broadcast_to(block.vth, (block.n,)).astype(float)
        bias = np.asarray(block.bias_mant, float) * 2.0 ** np.asarray(block.bias_exp)
    assert vth[-1] < vth[0]  # shrunk by a power of two
    assert math.log2(vth[0] / vth[-1]).is_integer()
    step_gain = dz.decay_v_register(0.02, 0.001) / 4096  # c = vth * decayV / 4096
    np.testing.assert_allclose(bias / vth, biases * step_gain, rtol=2e-3)
    assert np.all(np.abs(bias) <= LOIHI_V1.bias_max)


def test_chip_spec_holds_the_fact_sheets_formats_capacities_and_energy():
    s = LOIHI_V1
    # number formats
    assert (s.u_bits, s.v_bits, s.q_bits, s.decay_max) == (24, 24, 22, 4095)
    assert (s.vth_mant_max, s.vth_shift, s.vth_max) == (131071, 6, 8_388_544)
    assert (s.bias_mant_max, s.bias_exp_max, s.bias_max) == (4095, 7, 524_160)
    assert (s.weight_mant_max, s.weight_exp_min, s.weight_exp_max, s.weight_shift) == (255, -7, 7, 6)
    assert (s.refractory_min, s.refractory_max) == (1, 63)
    assert [s.vmax_for_exponent(e) for e in range(8)] == [2 ** (9 + 2 * e) - 1 for e in range(8)]
    assert s.vmax_for_exponent(7) == 2**23 - 1
    # capacities
    assert (s.cores_per_chip, s.compartments_per_core) == (128, 1024)
    assert s.cores_per_chip * s.compartments_per_core == 131_072
    assert (s.input_axons_per_core, s.output_axons_per_core) == (4096, 4096)
    assert s.synapse_memory_bytes == 128 * 1024 and s.cores_per_chip * s.synapse_memory_bytes == 16 * 2**20
    assert s.delay_bits == 6
    # published per-event energy (pJ) and time (ns)
    e = s.energy
    assert (e.synop_pj, e.synop_ns) == (23.6, 3.5)
    assert (e.synupdate_pj, e.synupdate_ns) == (120.0, 6.1)
    assert (e.compartment_active_pj, e.compartment_active_ns) == (81.0, 8.4)
    assert (e.compartment_inactive_pj, e.compartment_inactive_ns) == (52.0, 5.3)
    assert (e.spike_in_tile_pj, e.spike_in_tile_ns) == (1.7, 2.1)
    assert e.static_power_w_per_chip == 0.1
