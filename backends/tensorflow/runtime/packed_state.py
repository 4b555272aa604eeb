"""The loop state as one flat tensor per dtype, across calls of the compiled program.

Each argument and result of a TensorFlow function call costs a few microseconds of
host work, and a network's loop state is tens of tensors (one per state slot). A
``sim.step()`` runs one step per call, so that cost was larger than the step.
Between calls the state is therefore held packed: the slots of one dtype,
flattened and concatenated in slot order. The compiled program unpacks it on
entry and packs it on exit, once per call rather than once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from nhw.backends.tensorflow._tf import tf


@dataclass(frozen=True)
class PackedState:
    """Loop state held as one flat tensor per dtype group of a :class:`PackPlan`."""

    flat: tuple


class PackPlan:
    """Where every state slot lives in the packed tensors.

    Parameters
    ----------
    shapes
        Shape of every slot, in slot order.
    dtypes
        Numpy dtype of every slot, in slot order.
    """

    def __init__(self, shapes: Sequence[tuple], dtypes: Sequence) -> None:
        if len(shapes) != len(dtypes):
            raise ValueError(f"PackPlan: {len(shapes)} shapes but {len(dtypes)} dtypes")
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        self.dtypes: list = []  # one per group, in order of first appearance
        #: per slot: (group, start, stop) in the group's flat tensor
        self.where: list = []
        ends: list = []
        for shape, dtype in zip(self.shapes, dtypes):
            dtype = np.dtype(dtype)
            if dtype not in self.dtypes:
                self.dtypes.append(dtype)
                ends.append(0)
            g = self.dtypes.index(dtype)
            size = int(np.prod(shape, dtype=np.int64))
            self.where.append((g, ends[g], ends[g] + size))
            ends[g] += size

    @classmethod
    def of(cls, arrays: Sequence[np.ndarray]) -> "PackPlan":
        """The plan of slots with these values' shapes and dtypes."""
        return cls([a.shape for a in arrays], [a.dtype for a in arrays])

    def _groups(self, items: Sequence) -> list:
        groups: list = [[] for _ in self.dtypes]
        for (g, _, _), item in zip(self.where, items):
            groups[g].append(item)
        return groups

    def pack_arrays(self, arrays: Sequence[np.ndarray]) -> PackedState:
        """Pack numpy slot values (no TensorFlow operation runs per slot)."""
        self._check(arrays)
        # every group holds at least one slot: groups are made from the slots' dtypes
        return PackedState(tuple(
            tf.constant(np.concatenate([np.asarray(a, dtype=dt).reshape(-1) for a in group]))
            for dt, group in zip(self.dtypes, self._groups(arrays))
        ))

    def pack(self, tensors: Sequence) -> list:
        """Pack slot tensors inside a traced function (one concat per dtype)."""
        self._check(tensors)
        return [
            tf.concat([tf.reshape(t, [-1]) for t in group], axis=0) if len(group) > 1
            else tf.reshape(group[0], [-1])
            for group in self._groups(tensors)
        ]

    def unpack(self, flat: Sequence) -> list:
        """Slot tensors from packed tensors inside a traced function."""
        return [tf.reshape(flat[g][a:b], shape) for (g, a, b), shape in zip(self.where, self.shapes)]

    def values(self, state: PackedState) -> list:
        """Numpy views of every slot of a packed state (for reading signals)."""
        flat = [np.asarray(f) for f in state.flat]
        return [flat[g][a:b].reshape(shape) for (g, a, b), shape in zip(self.where, self.shapes)]

    def _check(self, items: Sequence) -> None:
        if len(items) != len(self.shapes):
            raise ValueError(f"PackPlan: expected {len(self.shapes)} state slots, got {len(items)}")
