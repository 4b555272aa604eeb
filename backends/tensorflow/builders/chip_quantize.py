"""Quantisation-aware training for loihi-emu: the chip's weights and biases in the forward pass.

loihi-emu programs every neuron-to-neuron connection as one synapse group of 8-bit
mantissas sharing one exponent, and every compartment's bias as a 13-bit mantissa
with its own exponent (:mod:`nhw.hw_emulator.discretize`). Here the TensorFlow
simulator computes with exactly those values: before each run the trainable values
pass through the same arithmetic -- per post neuron ``i`` the nengo-to-chip factor
``k_i`` (gain, the pre neurons' amplitude, the synapse's current decay and the
compartment's current scale ``c_i``, all as the loihi-emu mapping sets them), the
group's exponent from its largest ``|w k|``, rounding and clipping of the mantissas,
the chip's shift -- and are divided by ``k_i`` again. The backward pass is the
identity (straight-through): gradients reach the float values, which keep
accumulating updates smaller than one mantissa step.

What is quantised
    Biases of ensembles whose neurons run on the chip (LIF, SpikingRectifiedLinear),
    and the weights of ``Neurons -> Neurons`` connections with a Dense, Sparse,
    Convolution or ConvolutionTranspose transform (the connections loihi-emu maps to
    synapses as given), whether they train or not: the chip rounds every weight it
    holds, so values configured ``trainable=False`` are computed with their chip
    values too (constants, refreshed with the factors). Connections from or to Nodes
    run on the host in floating point (loihi-emu sends a host value to the chip as
    spikes), so they are exact already, also when a passthrough Node between them is
    computed on the host; decoded connections (loihi-emu folds encoders and re-solves
    decoders on the chip's rate curve), ``Neurons -> Ensemble`` connections (the chip
    holds the post encoders times the transform), connections with a learning rule,
    sliced connections, connections folded through a passthrough Node into chip
    synapses, and convolutions into post neurons whose gains differ across the
    positions of one kernel entry are not quantised (:attr:`ChipQuantizer.skipped`
    lists them with the reason).

Convolutions
    loihi-emu expands a convolution's kernel over every output position
    (:func:`nhw.backends.loihi_emu.conv.conv_coo`), multiplies each synapse by its
    post neuron's factor and quantises all of them as one synapse group (one
    exponent for the whole kernel, all channels), giving the post block one
    voltage scale. A kernel entry therefore has one chip value as long as every
    post neuron it reaches has the same factor (equal gains), and the kernel
    itself can be quantised: entry ``j`` with the factor of the post neurons it
    reaches (:func:`conv_entry_rows`, which reads the same ``conv_coo``). Entries
    that reach no post neuron (a kernel larger than the padded input) have no
    synapse on the chip and pass unchanged; they do not enter the exponent.

The factors ``k_i`` come from mapping the simulator's model, with the current
parameter values, through loihi-emu's own mapping stage (:func:`chip_factors`);
they change only when a compartment's voltage scale does (a power of two), and
:meth:`ChipQuantizer.refresh` (called after every epoch by :func:`refresh_callback`)
re-reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nengo
import numpy as np
from nengo.ensemble import Neurons

from nhw.backends.tensorflow._tf import keras, tf
from nhw.errors import DiscretizationError, UnsupportedFeatureError


@dataclass(eq=False)
class _Entry:
    """One quantised parameter: its group, slice, kind and per-element chip factor."""

    param: Any  # runtime.params.Param
    group: int
    offset: int
    size: int
    kind: str  # "weights" or "bias"
    #: per element: index of the post neuron whose factor applies
    rows: np.ndarray
    #: non-trainable variable: the per-element factor (nengo units -> chip integers)
    factor: Any = None
    #: convolutions: ``(entry, post neuron)`` of every synapse, whose factors must
    #: equal their entry's (checked at each refresh)
    synapses: tuple | None = None
    #: False for a ``trainable=False`` value: a constant of the simulation whose chip
    #: value is held in ``fixed`` (a non-trainable variable) and spliced into its base
    trainable: bool = True
    fixed: Any = None


def weight_fake_quant(w: Any, factor: Any, spec: Any) -> Any:
    """``w`` (float) as the chip realises it: one synapse group, one exponent.

    Mirrors :func:`nhw.hw_emulator.discretize.quantize_weights` and
    :func:`~nhw.hw_emulator.discretize.effective_weights` on ``w * factor``, then
    divides by ``factor``; gradients pass straight through.

    Parameters
    ----------
    w
        Weights in nengo units (any shape).
    factor
        Same shape: chip integer units per nengo unit, per element.
    spec
        The chip (:class:`nhw.hw_emulator.chip.ChipSpec`).
    """
    w64 = tf.cast(w, tf.float64)
    f = tf.cast(factor, tf.float64)
    # a zero factor: no synapse on the chip (an unused kernel entry) or a zero
    # gain; the value changes nothing on either side and is passed through
    w_int = tf.stop_gradient(w64 * f)
    max_abs = tf.reduce_max(tf.abs(w_int))
    safe = tf.where(max_abs > 0, max_abs, tf.ones_like(max_abs))
    e = tf.math.ceil(tf.math.log(safe / spec.weight_mant_max) / np.log(2.0)) - spec.weight_shift
    e = tf.clip_by_value(e, spec.weight_exp_min, spec.weight_exp_max)
    e = tf.where(max_abs > 0, e, tf.cast(spec.weight_exp_min, tf.float64))
    scale = tf.pow(tf.constant(2.0, tf.float64), spec.weight_shift + e)
    m = tf.clip_by_value(tf.round(w_int / scale), -spec.weight_mant_max, spec.weight_mant_max)
    # m << s for s >= 0 (exact), an arithmetic m >> -s (floor) below
    achieved = tf.floor(m * scale)
    q = tf.where(f != 0, tf.math.divide_no_nan(achieved, f), w64)
    return tf.cast(w64 + tf.stop_gradient(q - w64), w.dtype)


def bias_fake_quant(b: Any, factor: Any, spec: Any) -> Any:
    """``b`` as the chip realises it: per compartment a 13-bit mantissa and an exponent 0..7.

    Mirrors :func:`nhw.hw_emulator.discretize.bias_registers` on ``b * factor``
    (clipped beyond the largest bias, as loihi-emu does); straight-through gradient.
    """
    b64 = tf.cast(b, tf.float64)
    f = tf.cast(factor, tf.float64)
    b_int = tf.stop_gradient(b64 * f)
    mmax = float(spec.bias_mant_max)
    need = tf.math.ceil(tf.math.log(tf.maximum(tf.abs(b_int), 1e-300) / mmax) / np.log(2.0))
    e = tf.clip_by_value(need, 0.0, float(spec.bias_exp_max))
    step = tf.pow(tf.constant(2.0, tf.float64), e)
    m = tf.clip_by_value(tf.round(b_int / step), -mmax, mmax)
    q = tf.math.divide_no_nan(m * step, f)
    return tf.cast(b64 + tf.stop_gradient(q - b64), b.dtype)


_FAKE_QUANT = {"weights": weight_fake_quant, "bias": bias_fake_quant}


def conv_entry_rows(transform: Any, kernel_shape: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which post neurons each kernel entry of a convolution reaches, as loihi-emu lays it out.

    Parameters
    ----------
    transform
        A ``nengo.Convolution`` or ``nengo.transforms.ConvolutionTranspose``.
    kernel_shape
        The built kernel's shape (``kernel_size + (in_channels // groups, n_filters)``).

    Returns
    -------
    first : ndarray
        Per kernel entry (flat, C order) the lowest post neuron it reaches, or -1.
    entry, post : ndarray
        Per synapse of the expanded convolution: its kernel entry and post neuron.
    """
    from nhw.backends.loihi_emu.conv import conv_coo

    size = int(np.prod(kernel_shape))
    # the kernel's entry numbers (1-based, exact in float64) expanded as loihi-emu
    # expands the weights: each synapse's value names its entry
    index = np.arange(1, size + 1, dtype=np.float64).reshape(kernel_shape)
    post, _, vals = conv_coo(transform, index)
    entry = vals.astype(np.int64) - 1
    first = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, entry, post.astype(np.int64))
    first[first == np.iinfo(np.int64).max] = -1
    return first, entry, post.astype(np.int64)


class _ModelView:
    """A built nengo model with some parameter values replaced (what the mapping reads)."""

    def __init__(self, model: Any, biases: dict, weights: dict) -> None:
        from nengo.builder.signal import Signal

        self._model = model
        self.params = dict(model.params)
        for ens, b in biases.items():
            self.params[ens] = model.params[ens]._replace(bias=np.asarray(b, dtype=np.float64))
        self.sig = dict(model.sig)
        for conn, w in weights.items():
            old = model.sig[conn]["weights"]
            val = old.initial_value
            if isinstance(val, nengo.transforms.SparseMatrix):
                new = nengo.transforms.SparseMatrix(val.indices, np.asarray(w, dtype=np.float64), val.shape)
            else:
                new = np.asarray(w, dtype=np.float64).reshape(np.shape(val))
            self.sig[conn] = dict(model.sig[conn])
            self.sig[conn]["weights"] = Signal(new, name=old.name)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


def chip_factors(model: Any, biases: dict, weights: dict, options: Any = None) -> tuple[dict, dict]:
    """Per-neuron chip factors of ``model`` mapped by loihi-emu with the given values.

    Parameters
    ----------
    model
        The built ``nengo.builder.Model``.
    biases, weights
        Current values by Ensemble (biases) and Connection (weights) replacing the built ones.
    options
        :class:`nhw.backends.loihi_emu.mapping.MapOptions` (default: loihi-emu's defaults).

    Returns
    -------
    (dict, dict)
        ``{ensemble: c}`` (chip integers of input per nengo current, per neuron) and
        ``{connection: k}`` (chip integers per nengo weight unit, per post neuron).
    """
    from nhw.backends.loihi_emu.chip_rules import synapse_tau
    from nhw.backends.loihi_emu.mapping import MapOptions, map_model
    from nhw.hw_emulator import discretize as dz

    opts = options or MapOptions()
    mapped = map_model(_ModelView(model, biases, weights), opts)
    spec = opts.spec
    cs = {ens: np.asarray(block.current_scale, dtype=np.float64) * np.ones(ens.n_neurons)
          for ens, block in mapped.ensemble_blocks.items()}
    ks = {}
    for conn in weights:
        post = conn.post_obj.ensemble
        pre = conn.pre_obj.ensemble
        du = (dz.decay_u_register(synapse_tau(conn.synapse, conn), float(model.dt), spec) + 1) / (spec.decay_max + 1)
        amp = float(getattr(pre.neuron_type, "amplitude", 1.0))
        gain = np.asarray(model.params[post].gain, dtype=np.float64)
        ks[conn] = gain * amp * (du / float(model.dt) * cs[post])
    return cs, ks


class ChipQuantizer:
    """Wraps a simulator's parameter assembler so every run computes with the chip's values.

    Parameters
    ----------
    sim
        A :class:`nhw.backends.tensorflow.Simulator` (not inference-only).
    options
        loihi-emu mapping options (``deploy.options["loihi-emu"]`` of a config).

    Attributes
    ----------
    entries
        The quantised parameters.
    skipped
        ``(name, reason)`` of weights and biases (trainable or not) that are not quantised.
    fixed
        The quantised values configured ``trainable=False``.
    """

    def __init__(self, sim: Any, options: Any = None) -> None:
        from nhw.backends.loihi_emu.chip_rules import neuron_kind
        from nhw.hw_emulator import LOIHI_V1

        self.sim = sim
        self.options = options
        self.spec = getattr(options, "spec", None) or LOIHI_V1
        self.inner = sim._assemble
        self.entries: list[_Entry] = []
        self.fixed: list[_Entry] = []
        self.skipped: list[tuple[str, str]] = []
        self._mapped_groups = None  # loihi-emu's synapse groups, mapped when first needed
        on_chip = set()
        for ens in sim.model.params:
            if isinstance(ens, nengo.Ensemble):
                try:
                    neuron_kind(ens)
                except UnsupportedFeatureError:
                    continue
                on_chip.add(ens)
        for gi, g in enumerate(sim._groups):
            for p, off in zip(g.params, g.offsets):
                kind, rows, why = self._classify(p, on_chip)
                if kind is None:
                    if why:
                        self.skipped.append((p.name, why))
                    continue
                synapses = None
                if isinstance(rows, tuple):  # a convolution: (first post per entry, entry, post)
                    rows, synapses = rows[0], rows[1:]
                self.entries.append(_Entry(p, gi, off, int(np.prod(p.shape)), kind, rows, synapses=synapses))
        for p in _fixed_params(sim):
            kind, rows, why = self._classify(p, on_chip)
            if kind is not None and sim._layout.is_state(p.signal):
                kind, why = None, ("a constant inside simulation state here (merged with learned weights), "
                                   "which the quantiser does not rewrite")
            if kind is None:
                if why:
                    self.skipped.append((p.name, why))
                continue
            synapses = None
            if isinstance(rows, tuple):
                rows, synapses = rows[0], rows[1:]
            self.fixed.append(_Entry(p, -1, 0, int(np.prod(p.shape)), kind, rows, synapses=synapses,
                                     trainable=False))
        self._by_group: dict = {}
        for e in self.entries:
            self._by_group.setdefault(e.group, []).append(e)
        self._fixed_by_base: dict = {}
        for e in self.fixed:
            self._fixed_by_base.setdefault(e.param.signal.base, []).append(e)
        self.refresh()

    def _classify(self, p: Any, on_chip: set) -> tuple[str | None, Any, str]:
        obj = p.obj
        if p.key == "bias":
            if obj in on_chip:
                return "bias", np.arange(obj.n_neurons), ""
            return None, None, "ensemble does not run on the chip"
        if p.key != "weights":
            return None, None, ("encoders reach the chip through decoded connections and host inputs, "
                                "which are not quantised" if isinstance(obj, nengo.Ensemble) else "")
        pre, post = obj.pre_obj, obj.post_obj
        if not (isinstance(pre, Neurons) and isinstance(post, Neurons)):
            if isinstance(pre, nengo.Node) or isinstance(post, nengo.Node):
                if self._through_passthrough(obj, on_chip) and self._folded(obj):
                    return None, None, (
                        "joins chip neurons through a passthrough Node, which loihi-emu folds into chip "
                        "synapses whose weights are the product of the connections (not quantised here)")
                # host side (a passthrough Node that loihi-emu computes on the host included):
                # float on loihi-emu too
                return None, None, ""
            if isinstance(pre, Neurons):
                return None, None, (
                    "Neurons -> Ensemble: loihi-emu programs the post ensemble's encoders times this "
                    "transform as one synapse per post neuron, a product that quantising the transform "
                    "alone does not give")
            return None, None, "decoded connection (loihi-emu re-solves its decoders on the chip)"
        if pre.ensemble not in on_chip or post.ensemble not in on_chip:
            return None, None, "an end of the connection does not run on the chip"
        if obj.pre_slice != slice(None) or obj.post_slice != slice(None):
            return None, None, "sliced connection"
        t = obj.transform
        if isinstance(t, nengo.Sparse):
            return "weights", np.asarray(p.signal.initial_value.indices)[:, 0], ""
        if isinstance(t, nengo.Dense) and np.ndim(p.signal.initial_value) == 2:
            n_post, n_pre = p.shape
            return "weights", np.repeat(np.arange(n_post), n_pre), ""
        if isinstance(t, nengo.Dense):
            return "weights", np.arange(int(np.prod(p.shape))), ""
        if isinstance(t, (nengo.Convolution, nengo.transforms.ConvolutionTranspose)):
            return self._classify_conv(p, obj)
        return None, None, f"{type(t).__name__} transform"

    def _through_passthrough(self, conn: Any, on_chip: set) -> bool:
        """Whether ``conn`` is one leg of a chip-to-chip path through passthrough Nodes."""
        conns = [c for c in self.sim.model.params if isinstance(c, nengo.Connection)]

        def chip_end(obj: Any) -> bool:
            ens = obj.ensemble if isinstance(obj, Neurons) else obj
            return isinstance(ens, nengo.Ensemble) and ens in on_chip

        def reaches(node: Any, downstream: bool, seen: set) -> bool:
            # along connections out of (downstream) or into the node, past further passthrough nodes
            if node in seen:
                return False
            seen.add(node)
            for c in conns:
                here, there = (c.pre_obj, c.post_obj) if downstream else (c.post_obj, c.pre_obj)
                if here is not node:
                    continue
                if chip_end(there) or (isinstance(there, nengo.Node) and there.output is None
                                       and reaches(there, downstream, seen)):
                    return True
            return False

        pre, post = conn.pre_obj, conn.post_obj
        passthrough = [(end, down) for end, down in ((post, True), (pre, False))
                       if isinstance(end, nengo.Node) and end.output is None]
        if not passthrough:
            return False
        # both sides must reach chip neurons: this end directly or through its other node
        sides = {down: reaches(end, down, set()) for end, down in passthrough}
        up = sides.get(False, chip_end(pre))
        down = sides.get(True, chip_end(post))
        return bool(up and down)

    def _folded(self, conn: Any) -> bool:
        """Whether loihi-emu's mapping turns ``conn`` (touching a passthrough Node) into chip synapses.

        loihi-emu collapses a passthrough Node into chip -> chip synapses only where the
        synapses along the path combine into one (at most one filter); otherwise the
        node runs on the host and both legs stay floating point there.
        """
        if self._mapped_groups is None:
            from nhw.backends.loihi_emu.mapping import MapOptions, map_model
            from nhw.hw_emulator.blocks import InputAxons

            mapped = map_model(self.sim.model, self.options or MapOptions())
            # a group owned by a connection out of a Node and fed by chip neurons is a fold
            self._mapped_groups = {g.owner for g in mapped.chip.groups
                                   if not isinstance(g.source, InputAxons)
                                   and isinstance(getattr(g.owner, "pre_obj", None), nengo.Node)}
        folded = self._mapped_groups
        if isinstance(conn.post_obj, (nengo.Ensemble, Neurons)):
            return conn in folded
        # a leg into a passthrough Node: folded when some chip connection downstream of it is
        conns = [c for c in self.sim.model.params if isinstance(c, nengo.Connection)]
        stack, seen = [conn.post_obj], set()
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for c in conns:
                if c.pre_obj is not node:
                    continue
                if c in folded:
                    return True
                if isinstance(c.post_obj, nengo.Node) and c.post_obj.output is None:
                    stack.append(c.post_obj)
        return False

    def _classify_conv(self, p: Any, conn: Any) -> tuple[str | None, Any, str]:
        """A convolution's kernel, quantisable when each entry's post neurons share one gain."""
        first, entry, post = conv_entry_rows(conn.transform, p.shape)
        gain = np.asarray(self.sim.model.params[conn.post_obj.ensemble].gain, dtype=np.float64)
        differ = gain[post] != gain[first[entry]]
        if differ.any():
            j = int(entry[np.argmax(differ)])
            return None, None, (
                f"{type(conn.transform).__name__} into neurons whose gains differ across the positions of "
                f"kernel entry {j} (expected one gain per output channel; loihi-emu then programs one "
                "value per synapse, which no kernel expresses)")
        return "weights", (first, entry, post), ""

    # ------------------------------------------------------------------ factors
    def current_values(self) -> tuple[dict, dict]:
        """``({ensemble: bias}, {connection: weights})`` of the quantised parameters, as trained now."""
        biases, weights = {}, {}
        for e in self.entries + self.fixed:
            (biases if e.kind == "bias" else weights)[e.param.obj] = _current(e)
        return biases, weights

    def refresh(self) -> None:
        """Re-read the chip factors from loihi-emu's mapping of the current values."""
        biases, weights = self.current_values()
        cs, ks = chip_factors(self.sim.model, biases, weights, self.options)
        for e in self.entries + self.fixed:
            per_row = cs[e.param.obj] if e.kind == "bias" else ks[e.param.obj]
            value = np.where(e.rows >= 0, per_row[np.maximum(e.rows, 0)], 0.0).astype(np.float64)
            if e.synapses is not None:
                entry, post = e.synapses
                if not np.array_equal(per_row[post], value[entry]):
                    raise DiscretizationError(
                        f"quantize_for_chip: {e.param.name}: loihi-emu's factors differ across the post "
                        "neurons of one kernel entry (expected one voltage scale and gain per output "
                        "channel), so the chip's values are not one kernel")
            if e.factor is None:
                e.factor = tf.Variable(value, trainable=False, dtype=tf.float64,
                                       name=f"chip_factor_{len(self.entries)}")
            else:
                e.factor.assign(value)
            if not e.trainable:  # a constant: its chip value changes only with the factors
                chip = _FAKE_QUANT[e.kind](tf.constant(_current(e).reshape(-1)), e.factor, self.spec)
                if e.fixed is None:
                    e.fixed = tf.Variable(chip, trainable=False, dtype=tf.float64,
                                          name=f"chip_fixed_{len(self.fixed)}")
                else:
                    e.fixed.assign(chip)

    # ------------------------------------------------------------------ values
    def quantize(self, values: list) -> list:
        """The groups' flat values with every quantised parameter replaced by its chip value."""
        out = list(values)
        for gi, entries in self._by_group.items():
            flat = tf.reshape(values[gi], (-1,))
            pieces, pos = [], 0
            for e in sorted(entries, key=lambda e: e.offset):
                if e.offset > pos:
                    pieces.append(flat[pos:e.offset])
                pieces.append(_FAKE_QUANT[e.kind](flat[e.offset:e.offset + e.size], e.factor, self.spec))
                pos = e.offset + e.size
            if pos < self.sim._groups[gi].size:
                pieces.append(flat[pos:])
            out[gi] = tf.reshape(tf.concat(pieces, axis=0), tf.shape(values[gi]))
        return out

    def with_fixed(self, bases: dict) -> dict:
        """``bases`` (the assembler's ``{base: flat value}``) with the chip values of the
        ``trainable=False`` weights and biases spliced in; bases holding nothing
        trainable are added (the builders read a base's value here before its constant)."""
        out = dict(bases)
        layout = self.sim._layout
        for base, entries in self._fixed_by_base.items():
            dtype = layout.value_dtype(base)
            if entries[0].param.sparse:  # a sparse base's value is its nonzero values
                out[base] = tf.cast(entries[0].fixed, dtype)
                continue
            flat = out.get(base)
            if flat is None:
                flat = tf.constant(layout.constant(base).reshape(-1))
            idx = np.concatenate([layout.indices(e.param.signal) for e in entries])
            vals = tf.concat([tf.cast(e.fixed, dtype) for e in entries], axis=0)
            out[base] = tf.tensor_scatter_nd_update(flat, idx[:, None], vals)
        return out

    def chip_values(self) -> dict:
        """``{parameter name: value}`` as the chip realises the current values (numpy)."""
        out = {}
        for e in self.entries + self.fixed:
            flat = tf.constant(_current(e).reshape(-1))
            out[e.param.name] = _FAKE_QUANT[e.kind](flat, e.factor, self.spec).numpy().reshape(e.param.shape)
        return out

    def report(self) -> dict:
        """Per quantised parameter what the chip's formats cost now, and what was not quantised.

        Returns
        -------
        dict
            ``{"quantized": {name: {"kind", "trainable", "max_abs_error", "max_rel_error",
            "n_zeroed"}}, "skipped": {name: reason}}``; errors are in nengo units, relative
            to the parameter's largest magnitude; ``n_zeroed`` counts nonzero values the
            chip rounds to zero; ``trainable`` is False for values configured
            ``trainable=False`` (quantised all the same: the chip rounds every weight).
        """
        chip = self.chip_values()
        out = {}
        for e in self.entries + self.fixed:
            v = _current(e).reshape(e.param.shape)
            err = np.abs(chip[e.param.name] - v)
            top = float(np.abs(v).max()) if v.size else 0.0
            out[e.param.name] = {
                "kind": e.kind,
                "trainable": e.trainable,
                "max_abs_error": float(err.max()) if v.size else 0.0,
                "max_rel_error": float(err.max() / top) if top > 0 else 0.0,
                "n_zeroed": int(np.count_nonzero((chip[e.param.name] == 0) & (v != 0))),
            }
        return {"quantized": out, "skipped": dict(self.skipped)}

    def __call__(self, values: list) -> dict:
        return self.with_fixed(self.inner(self.quantize(values)))

    def inject(self, tensors: list, values: list, batch: int) -> list:
        return self.inner.inject(tensors, self.quantize(values), batch)

    def __getattr__(self, name: str) -> Any:
        # the simulator reads the assembler's other attributes (by_base, ...)
        return getattr(self.__dict__["inner"], name)


def _current(e: _Entry) -> np.ndarray:
    """The float value of an entry now: its variable's, or the built constant's."""
    var = e.param.variable
    val = var.numpy() if (e.trainable and var is not None) else e.param.initial()
    return np.asarray(val, dtype=np.float64)


def _fixed_params(sim: Any) -> list:
    """Weights and biases configured ``trainable=False`` (the constants the chip rounds too).

    The same objects and signals :func:`~nhw.backends.tensorflow.runtime.params.select_params`
    considers, less those it selected.
    """
    from nhw.backends.tensorflow.runtime.params import Param, object_names

    network = getattr(sim.model, "toplevel", None)
    if network is None:
        return []
    trained = {(p.obj, p.key) for p in sim._params}
    names = object_names(network)
    candidates = [(ens, "bias", sim.model.sig.get(ens.neurons, {}).get("bias")) for ens in network.all_ensembles
                  if not isinstance(ens.neuron_type, nengo.Direct)]
    candidates += [(conn, "weights", sim.model.sig.get(conn, {}).get("weights")) for conn in network.all_connections
                   if conn.learning_rule is None]
    return [Param(obj=obj, key=key, signal=sig, name=f"{names[obj]}/{key}",
                  sparse=bool(getattr(sig, "sparse", False)))
            for obj, key, sig in candidates
            if sig is not None and sig.size > 0 and (obj, key) not in trained]


def quantize_for_chip(sim: Any, options: Any = None) -> ChipQuantizer:
    """Make ``sim`` compute with loihi-emu's quantised weights and biases (training and inference).

    Call before ``sim.compile``/``sim.fit``. Trained (and frozen) values stay
    floating point; loihi-emu quantises them to the values used here.

    Parameters
    ----------
    sim
        A :class:`nhw.backends.tensorflow.Simulator` built with trainable parameters.
    options
        loihi-emu mapping options (:class:`nhw.backends.loihi_emu.mapping.MapOptions`).

    Returns
    -------
    ChipQuantizer
        The installed quantiser (``refresh()`` after parameters changed outside ``fit``).
    """
    if getattr(sim, "inference_only", False):
        raise UnsupportedFeatureError(f"quantize_for_chip: {sim!r} has no trainable parameters to quantise "
                                      "(built with inference_only=True)")
    if isinstance(sim._assemble, ChipQuantizer):
        return sim._assemble
    q = ChipQuantizer(sim, options)
    if not (q.entries or q.fixed or sim._params):
        raise UnsupportedFeatureError(f"quantize_for_chip: {sim!r} has no weights or biases that loihi-emu "
                                      "programs from the simulator's values; expected chip neurons' biases "
                                      "or Neurons -> Neurons weights")
    sim._assemble = q
    sim._loop.assemble_params = q
    sim._loop._fns.clear()  # traced runs captured the float assembler
    return q


def refresh_callback(quantizer: ChipQuantizer) -> Any:
    """A Keras callback re-reading the chip factors after every epoch."""
    class _Refresh(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            quantizer.refresh()

    return _Refresh()
