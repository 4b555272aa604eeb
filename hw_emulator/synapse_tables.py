"""How the emulator stores synapses for delivery: dense weight rows, one table, compiled runs.

The :class:`~nhw.hw_emulator.emulator.Emulator` flattens every synapse group into global
indices (:class:`GroupView`), keeps big mostly-dense groups as weight rows (with their
repeated rows and columns stored once, :func:`distinct_rows`, :func:`distinct_cols`) and
puts every other synapse into one table indexed by source axon: padded or CSR for the
numpy step (:func:`synapse_table`, read by :func:`deliver`), runs of consecutive target
columns for the compiled step (:func:`synapse_runs`).  Every layout holds the same
integers, so every delivery path gives the same sums.
"""

from __future__ import annotations

import numpy as np


class GroupView:
    """Flattened synapse group: global source/target indices and effective weights.

    Parameters
    ----------
    group
        The :class:`~nhw.hw_emulator.blocks.SynapseGroup`.
    src_offset, tgt_offset
        Global index of the group's source (compartment or host axon) and target block.
    from_input
        Whether the source is host input axons (indices then count host axons).
    """

    __slots__ = ("from_input", "src", "src_slice", "tgt", "w", "coo", "row_nnz", "group")

    def __init__(self, group, src_offset: int, tgt_offset: int, from_input: bool) -> None:
        self.group = group
        self.from_input = from_input
        self.src = group.src_index + src_offset
        self.src_slice = as_slice(self.src)
        tgt = group.tgt_index + tgt_offset
        self.tgt = as_slice(tgt) or tgt
        if group.shared:
            # shared (population-axon) lists, expanded into their synapses: the
            # same integers reach the same compartments; never held dense
            s, t, w = group.effective_coo()
            self.w = None
            self.coo = (s, t, w)  # local source row, local target column, weight
            self.row_nnz = np.bincount(s, minlength=len(group.src_index)).astype(np.int64)
        else:
            self.w = np.ascontiguousarray(group.weights, dtype=np.int64)
            self.coo = None  # the dense rows are the synapses (see the synapse table)
            self.row_nnz = np.count_nonzero(group.synapse_mask, axis=1).astype(np.int64)

    def col_abs_sum(self) -> np.ndarray:
        """``sum_j |w[j, i]|`` per target column."""
        if self.w is not None:
            return np.abs(self.w).sum(axis=0)
        _, t, w = self.coo
        return np.bincount(t, np.abs(w).astype(np.float64), minlength=len(self.group.tgt_index))


def as_slice(idx: np.ndarray) -> slice | None:
    """``idx`` as a slice when it is a nonempty run of consecutive integers, else ``None``."""
    if idx.size and idx[0] + idx.size - 1 == idx[-1] and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return None


def distinct_rows(w: np.ndarray, dtype) -> tuple[np.ndarray | None, np.ndarray]:
    """``(rowmap, rows)`` with ``w == rows[rowmap]`` when ``w`` repeats rows a lot, else ``(None, w)``.

    Decode neurons of one dimension and polarity all carry the same outgoing weights
    (e.g. PES's 320 decode rows into a 16-d ensemble are 32 distinct rows): summing
    spike counts per distinct row first turns a gather of every active row into one
    small product.  Exact: ``count * weight`` and every partial sum are sums of
    row-spikes, as in the plain gather.
    """
    rows, rowmap = np.unique(w, axis=0, return_inverse=True)
    if 4 * len(rows) > len(w):
        return None, np.ascontiguousarray(w, dtype=dtype)
    return rowmap.reshape(-1).astype(np.intp), np.ascontiguousarray(rows, dtype=dtype)


def distinct_cols(rowmap: np.ndarray | None,
                  w: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """``(rowmap, w, colmap)`` of a dense group (rows as :func:`distinct_rows` left them)
    with its distinct columns stored once when it has at most a quarter as many as columns.

    Target ``j`` then receives column ``colmap[j]`` of the new ``w``: the same weights, so
    the same sums (the compiled step adds each distinct column once, then copies it to
    every target that shares it). Fewer columns can repeat rows that differed only in
    the dropped ones; those rows are merged too (``rowmap`` composed).
    """
    cols, colmap = np.unique(w, axis=1, return_inverse=True)
    if 4 * cols.shape[1] > w.shape[1]:
        return rowmap, w, None
    new_map, cols = distinct_rows(cols, w.dtype)
    if new_map is not None:
        rowmap = new_map if rowmap is None else new_map[rowmap]
    return rowmap, np.ascontiguousarray(cols), colmap.reshape(-1).astype(np.intp)


def table_coo(groups: list[GroupView], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(row, column, weight)`` of every synapse of ``groups``, rows sorted.

    Rows index the activity vector (``n`` compartments, then host axons), columns the
    target compartments; weights are integers in float64.
    """
    rows, cols, vals = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)]
    for g in groups:
        if g.coo is not None:
            r, c, w = g.coo
        else:
            r, c = np.nonzero(g.w)
            w = g.w[r, c]
        n_tgt = len(g.group.tgt_index)
        tgt = np.arange(n_tgt) + g.tgt.start if isinstance(g.tgt, slice) else g.tgt
        rows.append(g.src[r] + (n if g.from_input else 0))
        cols.append(tgt[c])
        vals.append(w)
    rows, cols, vals = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order].astype(np.intp), vals[order].astype(np.float64)


def synapse_runs(groups: list[GroupView], n: int, n_inputs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The synapses of ``groups`` as ``(run_ptr, runs, vals)`` over the activity vector
    (:func:`.kernel.deliver_runs`): per source, runs of consecutive target columns.

    ``vals`` is float32 when every weight is a float32 (the kernel multiplies and sums
    in float64, so the integers are the same), else float64.
    """
    rows, cols, vals = table_coo(groups, n)
    n_rows = n + n_inputs
    brk = np.ones(len(rows), bool)  # a run starts at a new source or a gap in the targets
    brk[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1] + 1)
    starts = np.flatnonzero(brk)
    runs = np.stack([cols[starts], starts, np.diff(np.append(starts, len(rows)))], axis=1)
    runs = runs.astype(np.int64)
    run_ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows[starts], minlength=n_rows), out=run_ptr[1:])
    v32 = vals.astype(np.float32)
    return run_ptr, runs.reshape(-1, 3), v32 if np.array_equal(v32, vals) else vals


def synapse_table(groups: list[GroupView], n: int, n_inputs: int) -> tuple[tuple | None, np.ndarray]:
    """The synapses of ``groups`` as rows indexed by source axon (compartments, then host axons).

    Stored padded ("ELL": every row as long as the longest, padding pointing at
    a dummy compartment ``n``) when that at most doubles the storage, since the
    per-step gather is then two fancy-index operations; otherwise as CSR.

    Returns
    -------
    table : tuple or None
        ``("ell", columns, weights, rowmap)`` or ``("csr", indptr, columns, weights)``
        (what :func:`deliver` reads); ``None`` without synapses.
    has_row : ndarray of bool
        Per activity-vector row, whether it has synapses in the table.
    """
    n_rows = n + n_inputs
    if not groups:
        return None, np.zeros(n_rows, bool)
    rows, cols, vals = table_coo(groups, n)
    length = np.bincount(rows, minlength=n_rows)
    has_row = length > 0
    indptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(length, out=indptr[1:])
    width = int(length.max(initial=0))
    nonempty = np.flatnonzero(length)
    if width and (len(nonempty) + 1) * width <= 2 * len(vals) + 64:
        # rows without synapses all map to one trailing padding-only row
        rowmap = np.full(n_rows, len(nonempty), np.intp)
        rowmap[nonempty] = np.arange(len(nonempty))
        ell_c = np.full((len(nonempty) + 1, width), n, np.intp)
        ell_v = np.zeros((len(nonempty) + 1, width), np.float64)
        pos = np.arange(len(vals)) - indptr[rows]
        ell_c[rowmap[rows], pos] = cols
        ell_v[rowmap[rows], pos] = vals
        return ("ell", ell_c, ell_v, rowmap), has_row
    return ("csr", indptr, cols, vals), has_row


def deliver(table: tuple, idx: np.ndarray, mult: np.ndarray | None, n: int) -> np.ndarray:
    """Synaptic input per compartment from active source rows ``idx`` of ``table`` (float64, exact).

    Parameters
    ----------
    table
        A table of :func:`synapse_table`.
    idx
        Active rows of the activity vector.
    mult
        Spike count of each active row, or ``None`` for one spike each.
    n
        Number of compartments.

    Notes
    -----
    float64 holds every partial sum exactly (``|sum| <= spec.max_abs_weight_sum <
    2**53``, checked at build), which lets ``np.bincount`` do the scatter-add in one call.
    """
    if table[0] == "ell":
        r = table[3][idx]
        c, w = table[1][r], table[2][r]
        if mult is not None:
            w = w * mult[:, None]
        return np.bincount(c.reshape(-1), w.reshape(-1), n + 1)[:n]
    indptr, cols, vals = table[1], table[2], table[3]
    start = indptr[idx]
    length = indptr[idx + 1] - start
    total = int(length.sum())
    ends = np.cumsum(length)
    sel = np.repeat(start - ends + length, length) + np.arange(total)
    w = vals[sel] if mult is None else vals[sel] * np.repeat(mult, length)
    return np.bincount(cols[sel], w, n)
