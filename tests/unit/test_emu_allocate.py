"""Allocation of chip objects to cores and chips, and ResourceError messages."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nhw.hw_emulator.allocate import allocate
from nhw.hw_emulator.blocks import ChipNetwork, CompartmentBlock, InputAxons, SynapseGroup
from nhw.hw_emulator.chip import LOIHI_V1, BoardSpec
from nhw.hw_emulator.emulator import Emulator
from nhw.errors import ResourceError
from nhw.hw_emulator.report import build_report


def _block(label, n, **kw):
    return CompartmentBlock(label, n, 4095, 200, 64 * 100, 5, 0, 2, 0, (1 << 23) - 1, **kw)


def test_big_block_splits_and_small_blocks_pack():
    net = ChipNetwork()
    big = net.add_block(_block("big", 2500))
    smalls = [net.add_block(_block(f"s{i}", 100)) for i in range(5)]
    pl = allocate(net)
    assert len(np.unique(pl.core_of[big])) == 3  # 2500 / 1024 -> 3 pieces
    assert all(c.compartments <= 1024 for c in pl.cores)
    # first fit: three pieces of 834 leave room for one small block each, the
    # remaining two share a fourth core
    assert len(pl.cores) == 4
    assert {int(pl.core_of[b][0]) for b in smalls} == {0, 1, 2, 3}
    unpacked = allocate(net, pack=False)
    assert len(unpacked.cores) == 3 + 5
    limited = allocate(net, max_compartments_per_core=100)
    assert len(limited.cores) == 25 + 5


def test_dendrites_stay_with_their_soma():
    net = ChipNetwork()
    soma = net.add_block(_block("soma", 600))
    net.add_block(_block("dend", 600, parent=soma))
    pl = allocate(net)
    assert all(c.compartments <= 1024 for c in pl.cores)
    assert len(pl.cores) == 2  # 600 neurons x 2 compartments
    with pytest.raises(ResourceError, match="needs 2 compartments; a core holds 1"):
        allocate(net, max_compartments_per_core=1)


def test_too_many_cores_names_the_board():
    net = ChipNetwork()
    for i in range(130):
        net.add_block(_block(f"b{i}", 10))
    with pytest.raises(ResourceError, match=r"needs 130 cores; 1 chip\(s\) x 128 cores = 128"):
        allocate(net, BoardSpec(LOIHI_V1, 1), pack=False)
    pl = allocate(net, BoardSpec(LOIHI_V1, 2), pack=False)
    assert pl.n_chips == 2
    assert allocate(net, BoardSpec(LOIHI_V1, None), pack=False).n_chips == 2


def test_synapse_memory_splits_then_errors_with_used_vs_limit():
    spec = LOIHI_V1.with_limits(synapse_memory_bytes=16 * 1024)
    net = ChipNetwork(spec=spec)
    src = net.add_block(CompartmentBlock("src", 200, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    dst = net.add_block(CompartmentBlock("dst", 100, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    net.add_group(SynapseGroup("g", src, dst, np.ones((200, 100)), 0, spec=spec))
    pl = allocate(net, BoardSpec(spec, None))
    assert all(c.synapse_bits <= spec.synapse_memory_bits for c in pl.cores)
    assert len(np.unique(pl.core_of[dst])) > 1  # split by synapse memory, not compartments
    tiny = LOIHI_V1.with_limits(synapse_memory_bytes=64)
    net2 = ChipNetwork(spec=tiny)
    a = net2.add_block(CompartmentBlock("a", 200, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=tiny))
    b = net2.add_block(CompartmentBlock("b", 1, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=tiny))
    net2.add_group(SynapseGroup("g", a, b, np.ones((200, 1)), 0, spec=tiny))
    with pytest.raises(ResourceError, match=r"Block 'b' neuron 0: synapse memory [\d.]+ KiB exceeds 0.1 KiB"):
        allocate(net2, BoardSpec(tiny, None))


def test_input_axon_limit():
    spec = LOIHI_V1.with_limits(input_axons_per_core=50)
    net = ChipNetwork(spec=spec)
    a = net.add_block(CompartmentBlock("a", 60, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    b = net.add_block(CompartmentBlock("b", 4, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    net.add_group(SynapseGroup("g", a, b, np.ones((60, 4)), 0, spec=spec))
    with pytest.raises(ResourceError, match="60 input axons exceed 50 per core"):
        allocate(net, BoardSpec(spec, None))


def test_output_axons_split_the_source_then_error_per_neuron():
    spec = LOIHI_V1.with_limits(output_axons_per_core=5, compartments_per_core=4)
    net = ChipNetwork(spec=spec)
    a = net.add_block(CompartmentBlock("a", 3, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    b = net.add_block(CompartmentBlock("b", 8, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    net.add_group(SynapseGroup("g", a, b, np.ones((3, 8)), 0, spec=spec))
    # each of a's 3 compartments reaches 2 cores of b: 6 output axons > 5 on one
    # core, so a is split (2 + 1 compartments: 4 and 2 output axons)
    pl = allocate(net, BoardSpec(spec, None), pack=False)
    assert len(np.unique(pl.core_of[a])) == 2
    assert all(c.output_axons <= 5 for c in pl.cores)
    assert sum(c.output_axons for c in pl.cores) == 6
    # packing must not put the pieces back together
    assert all(c.output_axons <= 5 for c in allocate(net, BoardSpec(spec, None)).cores)
    # one compartment reaching more cores than a core has output axons cannot be split
    net2 = ChipNetwork(spec=spec)
    a2 = net2.add_block(CompartmentBlock("a", 1, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    b2 = net2.add_block(CompartmentBlock("b", 24, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    net2.add_group(SynapseGroup("g", a2, b2, np.ones((1, 24)), 0, spec=spec))
    with pytest.raises(ResourceError, match=r"Block 'a' neuron 0: 6 output axons .* exceed 5 per core"):
        allocate(net2, BoardSpec(spec, None))


def test_board_is_sized_to_the_network():
    spec = LOIHI_V1.with_limits(cores_per_chip=4)
    net = ChipNetwork(spec=spec)
    for i in range(9):
        net.add_block(CompartmentBlock(f"b{i}", 10, 4095, 0, 64, 0, 0, 1, 0, (1 << 23) - 1, spec=spec))
    board = BoardSpec(spec, None)
    assert board.chips_for(9) == 3 and board.chips_for(0) == 1
    pl = allocate(net, board, pack=False)
    assert len(pl.cores) == 9 and pl.n_chips == 3
    with pytest.raises(ResourceError, match=r"needs 9 cores; 2 chip\(s\) x 4 cores = 8 available, 3 chip\(s\) needed"):
        allocate(net, BoardSpec(spec, 2), pack=False)


def test_report_counts_and_formats():
    net = ChipNetwork()
    inp = net.add_input(InputAxons("in", 2, 3))
    a = net.add_block(_block("a", 10))
    b = net.add_block(_block("b", 20))
    net.add_group(SynapseGroup("ia", inp, a, np.ones((2, 10)), 0))
    mant = np.zeros((10, 20))
    mant[:, :5] = 3
    net.add_group(SynapseGroup("ab", a, b, mant, 0))
    pl = allocate(net)
    em = Emulator(net)
    for t in range(50):
        em.step(np.array([t % 2, 3]))
    rep = build_report(pl, em, {}, 0.001)
    spikes_a = int(em.spike_count[:10].sum())
    expected = int(em.input_count @ np.array([10, 10])) + spikes_a * 5
    assert rep.total_synaptic_ops == expected == sum(c.synaptic_ops for c in rep.cores)
    assert rep.total_spikes == int(em.spike_count.sum())
    assert rep.n_steps == 50 and rep.n_cores == 1 and rep.n_chips == 1
    assert rep.board_chips == 1 and "used: 1 core(s) on 1 chip(s)" in rep.to_table()
    data = json.loads(rep.to_json())
    assert data["cores"][0]["compartments"] == 30
    assert data["cores"][0]["synapse_memory_limit_bytes"] == 128 * 1024
    table = rep.to_table()
    assert "ESTIMATE" in table and "synapse memory" in table
    assert rep.energy_estimate_j > 0 and "ESTIMATE" in rep.estimate_note
    c = rep.cores[0]
    assert c.active_updates + c.inactive_updates == 30 * 50
    e = LOIHI_V1.energy
    expected_pj = (rep.total_synaptic_ops * e.synop_pj + c.active_updates * e.compartment_active_pj
                   + c.inactive_updates * e.compartment_inactive_pj + rep.total_spikes * e.spike_in_tile_pj)
    assert np.isclose(rep.energy_estimate_j, expected_pj * 1e-12)
    assert np.isclose(rep.energy_estimate_per_step_j * 50, rep.energy_estimate_j)
