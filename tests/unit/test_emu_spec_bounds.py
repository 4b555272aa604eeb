"""The emulator's exact float paths follow the chip spec: a modified ``ChipSpec`` (wider
weights, wider state) either stays bit-exact against an independent integer reference
or is refused with a clear error, never silently rounded.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from nhw.hw_emulator.blocks import (
    ChipNetwork,
    CompartmentBlock,
    InputAxons,
    SynapseGroup,
)
from nhw.hw_emulator.chip import LOIHI_V1
from nhw.hw_emulator.discretize import effective_weights
from nhw.hw_emulator.emulator import Emulator
from nhw.hw_emulator.learning import LearnedWeights, PESRule, TraceRegisters

from nhw.errors import DiscretizationError, UnsupportedFeatureError

#: 16-bit weight mantissas (65535 would wrap the int16 mantissas of Loihi), with q, u
#: and v widened so the larger sums are not just wrapped away
WIDE = replace(LOIHI_V1, name="wide-weights", weight_bits=16, q_bits=36, u_bits=40, v_bits=40)


def test_loihi_v1_bounds_are_the_former_literals():
    s = LOIHI_V1
    assert s.lif_voltage_scale == 1 << 18 and s.if_voltage_scale == 1 << 21
    assert s.accumulator_bits == 23 and s.decay_product_bits == 35 and s.float64_state_exact
    # the dense float32 path used to require fewer than 2**16 row-spikes
    n = s.max_exact_row_spikes()
    assert n >= (1 << 16) - 1 and n * s.weight_mant_max <= 1 << 24
    assert s.learn_product_bits == 22 and s.weight_mant_dtype == "int16"
    assert s.weight_max == 255 << 13


def _wrap(x, bits):
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def _decay(x, keep, bits):
    m = (np.abs(x) * keep) >> bits
    return np.where(x < 0, -m, m)


class _IntReference:
    """SPEC.md section 2 for any chip spec, in int64 (no floats anywhere)."""

    def __init__(self, spec, blocks, groups, n_inputs):
        self.s, self.blocks = spec, blocks
        self.off = np.cumsum([0] + [b.n for b in blocks])
        self.n = int(self.off[-1])
        cat = lambda f: np.concatenate([np.broadcast_to(f(b), b.n) for b in blocks]).astype(np.int64)
        self.du, self.dv, self.vth = cat(lambda b: b.decay_u), cat(lambda b: b.decay_v), cat(lambda b: b.vth)
        self.bias, self.ref = cat(lambda b: b.bias), cat(lambda b: b.refractory_delay)
        self.vmin, self.vmax = cat(lambda b: b.vmin), cat(lambda b: b.vmax)
        # one int64 matrix (chip sources, then host axons) x targets
        self.W = np.zeros((self.n + n_inputs, self.n), np.int64)
        for g in groups:
            src = g.src_index + (self.n if isinstance(g.source, InputAxons) else self.off[blocks.index(g.source)])
            tgt = g.tgt_index + self.off[blocks.index(g.target)]
            self.W[np.ix_(src, tgt)] += effective_weights(g.mantissa, g.exponent, spec)
        self.u = np.zeros(self.n, np.int64)
        self.v = np.zeros(self.n, np.int64)
        self.hold = np.zeros(self.n, np.int64)
        self.spk = np.zeros(self.n, np.int64)
        self.t = 0

    def step(self, counts):
        s = self.s
        self.t += 1
        q = _wrap(np.concatenate([self.spk, counts]) @ self.W, s.q_bits)
        self.u = _wrap(_decay(self.u, s.decay_max - self.du, s.decay_bits) + q, s.u_bits)
        v = _decay(self.v, s.decay_max + 1 - self.dv, s.decay_bits) + self.u + self.bias
        v = np.clip(v, self.vmin, self.vmax)
        v[self.t <= self.hold] = 0
        spk = v > self.vth
        v[spk] = 0
        self.hold[spk] = self.t + self.ref[spk] - 1
        self.v, self.spk = v, spk.astype(np.int64)
        return spk


def _wide_network(spec, rng):
    """Host axons (bursts of 3) and a 1500-compartment block driving 40 targets with
    mantissas near the top of the spec's range (odd, all of one sign)."""
    top = spec.weight_mant_max
    net = ChipNetwork(spec=spec)
    inp = net.add_input(InputAxons("in", 300, 3))
    a = net.add_block(CompartmentBlock("a", 1500, 4095, 300, 64 * 1000, rng.randint(100, 900, 1500), 3, 2,
                                       spec=spec))
    b = net.add_block(CompartmentBlock("b", 40, 100, 50, 64 * 100000, 0, 0, 2, spec=spec))
    odd = lambda shape: (top - 2 * rng.randint(0, top // 8, shape)).astype(np.int64)
    groups = [
        net.add_group(SynapseGroup("ab", a, b, odd((1500, 40)), 0, spec=spec)),
        net.add_group(SynapseGroup("ib", inp, b, -odd((300, 40)), 1, spec=spec)),
    ]
    return net, [a, b], groups


@pytest.mark.parametrize("spec", [LOIHI_V1, WIDE], ids=["loihi-v1", "wide-weights"])
@pytest.mark.parametrize("dense_min_size", [4096, None], ids=["dense", "table"])
def test_emulator_matches_integer_reference(spec, dense_min_size):
    rng = np.random.RandomState(7)
    net, blocks, groups = _wide_network(spec, rng)
    em = Emulator(net, dense_min_size=dense_min_size)
    if dense_min_size is not None:
        assert len(em._dense) == 2
        if spec is WIDE:  # 1500 rows (900 host row-spikes) of 16-bit mantissas: beyond float32
            assert all(w.dtype == np.float64 for *_, w, _ in em._dense)
    ref = _IntReference(spec, blocks, groups, 300)
    wrapped = False
    for _ in range(60):
        counts = rng.randint(0, 4, 300)
        assert np.array_equal(em.step(counts), ref.step(counts))
        assert np.array_equal(em.u, ref.u) and np.array_equal(em.v, ref.v)
        wrapped |= bool(em.q_overflows)
    assert em.spike_count[:1500].sum() > 0
    if spec is WIDE:
        assert not wrapped  # the sums were kept, not wrapped away, so exactness was tested
        # ... and they are sums that float32 does round: the old fixed bound (fewer than
        # 2**16 row-spikes) would have summed them in float32
        w = groups[0].weights
        assert np.any(w.sum(axis=0) != w.astype(np.float32).sum(axis=0, dtype=np.float32).astype(np.int64))


def test_wide_mantissas_are_stored_without_wrapping():
    blk = CompartmentBlock("b", 2, 0, spec=WIDE)
    g = SynapseGroup("g", blk, blk, np.array([[65535, -65535], [1, 0]]), 0, spec=WIDE)
    assert g.mantissa.dtype == np.int32 and int(g.mantissa[0, 0]) == 65535
    with pytest.raises(DiscretizationError, match="exceeds 255"):
        SynapseGroup("g", CompartmentBlock("b", 2, 0), CompartmentBlock("c", 2, 0), np.full((2, 2), 65535), 0)


def test_parts_of_another_spec_are_refused():
    with pytest.raises(ValueError, match="wide-weights"):
        ChipNetwork().add_block(CompartmentBlock("a", 4, 0, spec=WIDE))


def test_state_beyond_float64_is_refused():
    spec = replace(LOIHI_V1, u_bits=48, v_bits=48)
    assert not spec.float64_state_exact
    net = ChipNetwork(spec=spec)
    net.add_block(CompartmentBlock("a", 4, 0, spec=spec))
    with pytest.raises(UnsupportedFeatureError, match=r"2\*\*53"):
        Emulator(net)


def test_weight_sums_beyond_float64_are_refused():
    spec = replace(LOIHI_V1, weight_bits=40)
    net = ChipNetwork(spec=spec)
    a = net.add_block(CompartmentBlock("a", 8, 0, spec=spec))
    net.add_group(SynapseGroup("aa", a, a, np.full((8, 8), spec.weight_mant_max), spec.weight_exp_max, spec=spec))
    with pytest.raises(UnsupportedFeatureError, match="exactly"):
        Emulator(net)


def _rule(n_src, mant):
    return PESRule("pes", 1, np.zeros(2, np.int64), np.array([1, -1]), np.full((n_src, 1), mant, np.int64),
                   TraceRegisters(100, 10, 1.0), np.array([1]), 0, np.ones(1))


@pytest.mark.parametrize("spec,dtype", [(LOIHI_V1, np.float32), (replace(LOIHI_V1, weight_bits=20), np.float64),
                                        (replace(LOIHI_V1, learn_rate_bits=12), np.float64)])
def test_learning_arithmetic_widens_with_the_spec(spec, dtype):
    n_src = 300
    top = spec.weight_mant_max
    lw = LearnedWeights(_rule(n_src, top - 2), slice(0, n_src), slice(n_src, n_src + 2), spec.weight_shift, spec)
    assert lw.mant.dtype == dtype
    d = lw.deliver(np.ones(n_src, bool))
    expect = n_src * (top - 2) << spec.weight_shift
    assert d.tolist() == [expect, -expect]


def test_learning_with_fractional_weights_is_refused():
    with pytest.raises(UnsupportedFeatureError, match="exponent"):
        LearnedWeights(_rule(4, 1), slice(0, 4), slice(4, 6), -1, LOIHI_V1)


def test_float32_delivery_would_have_rounded_the_wide_network():
    """The former fixed bound (fewer than 2**16 row-spikes: float32) is wrong for 16-bit
    weights: forcing float32 on the network above departs from the integer reference."""
    rng = np.random.RandomState(7)
    net, blocks, groups = _wide_network(WIDE, rng)
    em = Emulator(net)
    em._dense = [(src, tgt, rowmap, w.astype(np.float32), c) for src, tgt, rowmap, w, c in em._dense]
    ref = _IntReference(WIDE, blocks, groups, 300)
    differ = 0
    for _ in range(20):
        counts = rng.randint(0, 4, 300)
        em.step(counts)
        ref.step(counts)
        differ += not np.array_equal(em.u, ref.u)
    assert differ > 0
