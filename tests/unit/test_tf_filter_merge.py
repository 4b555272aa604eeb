"""Synapse merging (numpy only: no TensorFlow)."""

import numpy as np
import nengo
import pytest
from nengo.builder import Model
from nengo.builder.processes import SimProcess
from nengo.utils.graphs import toposort
from nengo.utils.simulator import operator_dependency_graph

from nhw.backends.tensorflow.builders import process_builders  # noqa: F401 (registers the builders the pass asks)
from nhw.backends.tensorflow.passes.filter_merge import MergedLinearFilters, filter_form, merge_filters
from nhw.backends.tensorflow.passes.opmerge import optimize, stable_toposort

#: one synapse of each step form nengo distinguishes
SYNAPSES = {
    "nox": nengo.LinearFilter([2.0], [1.0]),
    "onex": nengo.Lowpass(0.005),
    "nod": nengo.Alpha(0.004),
    "general": nengo.LinearFilter([0.5, 1.0], [0.01, 1.0]),
}


def _nodes_with_synapses(synapses, n=3):
    """Independent Node -> Node connections, one per synapse (plus a second Lowpass)."""
    with nengo.Network(seed=1) as net:
        for i, syn in enumerate(synapses):
            a = nengo.Node(lambda t, i=i: np.sin(7 * t + np.arange(n) + i), label=f"a{i}")
            b = nengo.Node(size_in=n, label=f"b{i}")
            nengo.Connection(a, b, synapse=syn)
            nengo.Probe(b)
    return net


def _step_order(net):
    model = Model(dt=0.001)
    model.build(net)
    dg = optimize(model, operator_dependency_graph(model.operators))
    return model, [op for op in toposort(dg) if hasattr(op, "make_step")]


@pytest.mark.parametrize("form", sorted(SYNAPSES))
def test_filter_form_names_nengos_stepper(form):
    op_net = _nodes_with_synapses([SYNAPSES[form]])
    _, ops = _step_order(op_net)
    (proc,) = [op for op in ops if isinstance(op, SimProcess) and op.input is not None]
    assert filter_form(proc.process, 0.001, proc.state["X"].shape)[0] == form


@pytest.mark.parametrize("form", sorted(SYNAPSES))
def test_merged_step_equals_nengos_separate_steps(form):
    """Two filters of one form (different constants) merged: same outputs and states as nengo's steps."""
    other = {"nox": nengo.LinearFilter([-0.5], [1.0]), "onex": nengo.Lowpass(0.02),
             "nod": nengo.Alpha(0.01), "general": nengo.LinearFilter([2.0, 1.0], [0.003, 1.0])}[form]
    model, ops = _step_order(_nodes_with_synapses([SYNAPSES[form], other]))
    filters = [op for op in ops if isinstance(op, SimProcess) and op.input is not None]
    merged = MergedLinearFilters(filters, model.dt)
    assert merged.form == form

    def run(step_ops):
        signals = nengo.builder.signal.SignalDict()
        for op in ops + ([merged] if merged in step_ops else []):
            op.init_signals(signals)
        rng = np.random.RandomState(0)
        inputs = [signals[f.input] for f in filters]
        steps = [op.make_step(signals, model.dt, rng) for op in step_ops]
        outs = []
        for k in range(30):
            for x in inputs:
                x[...] = np.cos(0.3 * k + np.arange(x.size))
            for fn in steps:
                fn()
            outs.append(np.concatenate([np.array(signals[f.output]) for f in filters]))
        return np.array(outs)

    expected = run(filters)
    got = run([merged])
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_merge_groups_by_form_and_keeps_singletons():
    syn = [SYNAPSES["onex"], nengo.Lowpass(0.02), nengo.Lowpass(0.1), SYNAPSES["nod"], SYNAPSES["general"]]
    model, ops = _step_order(_nodes_with_synapses(syn))
    out = merge_filters(ops, model.dt)
    merged = [op for op in out if isinstance(op, MergedLinearFilters)]
    assert [len(m.ops) for m in merged] == [3]  # the Lowpasses; Alpha and the general filter differ in form
    assert merged[0].form == "onex"
    remaining = [op for op in out if isinstance(op, SimProcess) and op.input is not None]
    assert len(remaining) == 2
    # every original operator is either kept or inside exactly one merged one
    covered = [op for op in out if not isinstance(op, MergedLinearFilters)] + merged[0].ops
    assert sorted(map(id, covered)) == sorted(map(id, ops))
    # and the new order is a valid step order: nothing runs before what it depends on
    dg = operator_dependency_graph(out)
    pos = {op: i for i, op in enumerate(out)}
    assert all(pos[a] < pos[b] for a in out for b in dg[a])


def test_filter_reading_another_filters_output_is_not_merged_with_it():
    """A probe filtering a connection's filtered output reads it before that filter updates it."""
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.sin)
        b = nengo.Node(size_in=1)
        conn = nengo.Connection(a, b, synapse=0.01)
        nengo.Probe(conn, "output", synapse=0.02)
    model, ops = _step_order(net)
    filters = [op for op in ops if isinstance(op, SimProcess) and op.input is not None]
    assert len(filters) == 2
    out = merge_filters(ops, model.dt)
    assert not any(isinstance(op, MergedLinearFilters) for op in out)
    assert out == ops  # nothing merged: the order is left alone


def test_synapses_in_series_merge():
    """Synapse outputs are updates (read before written), so a chain's synapses do not depend on each other."""
    with nengo.Network(seed=0) as net:
        a = nengo.Node(np.sin)
        b = nengo.Node(size_in=1)
        c = nengo.Node(size_in=1)
        nengo.Connection(a, b, synapse=0.01)
        nengo.Connection(b, c, synapse=0.02)
        nengo.Probe(c)
    model, ops = _step_order(net)
    merged = [op for op in merge_filters(ops, model.dt) if isinstance(op, MergedLinearFilters)]
    assert [len(m.ops) for m in merged] == [2]


def test_merged_filter_signals_cover_each_base_once():
    model, ops = _step_order(_nodes_with_synapses([nengo.Lowpass(0.005)] * 4, n=2))
    (merged,) = [op for op in merge_filters(ops, model.dt) if isinstance(op, MergedLinearFilters)]
    assert len({id(s.base) for s in merged.updates}) == len(merged.updates)
    assert merged.state.shape == (merged.order * merged.size,)
    assert merged.size == 8


def test_merge_with_the_optimizers_graph_equals_merge_with_a_fresh_one():
    syn = [SYNAPSES["onex"], nengo.Lowpass(0.02), SYNAPSES["nod"], nengo.Alpha(0.02), SYNAPSES["general"]]
    model = Model(dt=0.001)
    model.build(_nodes_with_synapses(syn))
    dg = optimize(model, operator_dependency_graph(model.operators))
    ops = [op for op in toposort(dg) if hasattr(op, "make_step")]
    fresh, reused = merge_filters(ops, model.dt), merge_filters(ops, model.dt, dg=dg)
    assert [type(op) for op in fresh] == [type(op) for op in reused]
    groups = [[id(o) for o in op.ops] for op in fresh if isinstance(op, MergedLinearFilters)]
    assert groups == [[id(o) for o in op.ops] for op in reused if isinstance(op, MergedLinearFilters)]
    assert sorted(len(g) for g in groups) == [2, 2]


def test_filter_form_is_shared_by_equal_synapses_only():
    a = filter_form(nengo.Lowpass(0.005), 0.001, (1, 3))
    assert filter_form(nengo.Lowpass(0.005), 0.001, (1, 3)) is a  # another object, same filter
    assert filter_form(nengo.Lowpass(0.006), 0.001, (1, 3)) is not a
    assert filter_form(nengo.Lowpass(0.005), 0.002, (1, 3))[1][0, 0] != a[1][0, 0]  # dt matters
    assert not a[1].flags.writeable  # shared matrices cannot be changed by a caller

    class Scaled(nengo.LinearFilter):  # its own discretisation: never taken from the cache
        def _get_ss(self, dt):
            A, B, C, D = super()._get_ss(dt)
            return A, B, 2 * C, D

    scaled = filter_form(Scaled([1], [0.005, 1]), 0.001, (1, 3))
    np.testing.assert_allclose(scaled[3], 2 * filter_form(nengo.LinearFilter([1], [0.005, 1]), 0.001, (1, 3))[3])


def _merged_filter_order(net):
    model = Model(dt=0.001)
    model.build(net)
    dg = optimize(model, operator_dependency_graph(model.operators))
    ops = [op for op in stable_toposort(dg) if hasattr(op, "make_step")]
    return [[(m.output.shape, m.output.offset, m.output.base.shape) for m in op.ops]
            for op in merge_filters(ops, 0.001, dg=dg) if isinstance(op, MergedLinearFilters)]


def test_merged_filters_list_their_members_the_same_in_every_build():
    # members on different bases used to be ordered by the bases' ids
    from nhw.toolchain.parity_networks import get_network

    def make():
        return get_network("basal_ganglia").case(4, 20, seed=0).network

    first = _merged_filter_order(make())
    assert any(len({base for _, _, base in g}) > 1 for g in first) or len(first) > 1
    for _ in range(5):
        assert _merged_filter_order(make()) == first
