"""Sparse incoming weights whose sources are grouped into population axons (numpy only).

A convolution's ``n_target x n_source`` matrix is mostly zeros and repeats one
kernel at every position; :class:`SparseWeights` holds it as coordinates (never
dense) together with each source's *population axon* (its input pixel) and *atom*
(its channel), which :class:`~nhw.hw_emulator.shared_synapses.SharedSynapseGroup`
uses to store the repeated kernels once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(eq=False)
class SparseWeights:
    """``shape = (n_target, n_source)`` weights as coordinates ``(rows, cols, vals)``.

    Parameters
    ----------
    rows, cols, vals
        Target index, source index and value of every nonzero weight.
    shape
        ``(n_target, n_source)``.
    axon_of, atom_of
        Per source: its population axon (e.g. the input pixel) and its atom (e.g. the
        channel); sources with equal axons share one input axon on the chip.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    shape: tuple
    axon_of: np.ndarray
    atom_of: np.ndarray

    def __post_init__(self) -> None:
        self.rows = np.asarray(self.rows, dtype=np.int64)
        self.cols = np.asarray(self.cols, dtype=np.int64)
        self.vals = np.asarray(self.vals, dtype=np.float64)
        self.shape = (int(self.shape[0]), int(self.shape[1]))
        self.axon_of = np.asarray(self.axon_of, dtype=np.int64)
        self.atom_of = np.asarray(self.atom_of, dtype=np.int64)
        if not (len(self.rows) == len(self.cols) == len(self.vals)):
            raise ValueError(f"SparseWeights: rows/cols/vals lengths differ "
                             f"({len(self.rows)}, {len(self.cols)}, {len(self.vals)})")
        if self.axon_of.shape != (self.shape[1],) or self.atom_of.shape != (self.shape[1],):
            raise ValueError(f"SparseWeights: axon_of/atom_of need shape ({self.shape[1]},), got "
                             f"{self.axon_of.shape}/{self.atom_of.shape}")
        keep = self.vals != 0
        if not keep.all():
            self.rows, self.cols, self.vals = self.rows[keep], self.cols[keep], self.vals[keep]

    def scale_rows(self, factor) -> "SparseWeights":
        """A copy with row ``i`` multiplied by ``factor[i]`` (or a scalar ``factor``)."""
        f = np.asarray(factor, dtype=np.float64)
        vals = self.vals * (f[self.rows] if f.ndim else f)
        return SparseWeights(self.rows, self.cols, vals, self.shape, self.axon_of, self.atom_of)

    def row_abs_max(self) -> np.ndarray:
        """``max_j |w[i, j]|`` per row (0 for empty rows)."""
        out = np.zeros(self.shape[0])
        np.maximum.at(out, self.rows, np.abs(self.vals))
        return out

    def row_sum(self, vals: np.ndarray | None = None) -> np.ndarray:
        """``sum_j w[i, j]`` per row (or of other per-entry ``vals``)."""
        return np.bincount(self.rows, self.vals if vals is None else vals, minlength=self.shape[0])

    def row_sign_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the sum of its positive weights and of the magnitudes of its negative ones."""
        return self.row_sum(np.clip(self.vals, 0, None)), self.row_sum(-np.clip(self.vals, None, 0))

    @property
    def n_source_rows(self) -> int:
        """Sources with at least one weight."""
        return int(np.unique(self.cols).size)

    @property
    def nnz(self) -> int:
        return int(self.vals.size)

    def toarray(self) -> np.ndarray:
        """Dense ``shape`` array (tests and small cases only)."""
        m = np.zeros(self.shape)
        np.add.at(m, (self.rows, self.cols), self.vals)
        return m
