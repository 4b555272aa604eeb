"""PackPlan: the loop state packed into one flat tensor per dtype between calls."""

import numpy as np
import pytest

from nhw.backends.tensorflow._tf import tf
from nhw.backends.tensorflow.runtime.packed_state import PackedState, PackPlan


def _slots():
    rng = np.random.default_rng(0)
    return [
        np.array([[7]], dtype=np.int64),
        rng.standard_normal((3, 2)).astype(np.float32),
        np.zeros((0, 2), dtype=np.float32),  # an empty slot keeps its place
        np.array([[1, 2]], dtype=np.int64),
        rng.standard_normal((5, 2)).astype(np.float32),
    ]


def test_groups_by_dtype_in_order_of_first_appearance():
    plan = PackPlan.of(_slots())
    assert plan.dtypes == [np.dtype(np.int64), np.dtype(np.float32)]
    assert plan.where == [(0, 0, 1), (1, 0, 6), (1, 6, 6), (0, 1, 3), (1, 6, 16)]


def test_numpy_pack_and_values_round_trip_exactly():
    slots = _slots()
    plan = PackPlan.of(slots)
    state = plan.pack_arrays(slots)
    assert isinstance(state, PackedState) and len(state.flat) == 2
    assert state.flat[1].dtype == tf.float32 and state.flat[0].dtype == tf.int64
    for got, want in zip(plan.values(state), slots):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


def test_traced_pack_and_unpack_are_inverse():
    slots = _slots()
    plan = PackPlan.of(slots)

    @tf.function(jit_compile=True, autograph=False)
    def round_trip(flat):
        tensors = plan.unpack(flat)
        return plan.pack([t + tf.ones_like(t) for t in tensors])

    out = round_trip(list(plan.pack_arrays(slots).flat))
    for got, want in zip(plan.values(PackedState(tuple(out))), slots):
        np.testing.assert_array_equal(got, want + 1)


def test_wrong_number_of_slots_is_refused():
    plan = PackPlan.of(_slots())
    with pytest.raises(ValueError, match="expected 5 state slots, got 4"):
        plan.pack_arrays(_slots()[:4])
