"""TensorFlow builder of :class:`~.tensor_node.SimTensorNode` (TensorNodes).

At simulator construction the builder (1) builds a Keras layer's weights
eagerly, because variables cannot be created inside the compiled
``tf.while_loop``, and hands the layer to the simulator's Keras model; (2)
traces the function once on the simulator's exact shapes to check its output
shape and dtype, so a wrong function fails when the simulator is built, naming
the node; (3) lowers that trace to XLA HLO to learn whether the function can be
compiled with XLA (``tf.print``, ``tf.py_function``, string ops cannot), which
decides :attr:`OpBuilder.xla_ok` for this node.

Importing this module registers the builder in :data:`.registry.OPS`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from nhw.backends.tensorflow._tf import tf
from nengo.exceptions import ValidationError

from nhw.backends.tensorflow.builders.op_builders import BuildContext, OpBuilder, StepContext
from nhw.backends.tensorflow.registry import OPS
from nhw.backends.tensorflow.api.tensor_node import SimTensorNode, TensorNode, call_tensor_func, is_keras_layer

__all__ = ["SimTensorNodeBuilder"]


def _accepts_training(layer: Any) -> bool:
    """Whether a Keras layer's ``call`` takes a ``training`` argument."""
    try:
        params = inspect.signature(layer.call).parameters
    except (TypeError, ValueError):  # pragma: no cover - exotic callables
        return False
    return "training" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


@OPS.register(SimTensorNode)
class SimTensorNodeBuilder(OpBuilder):
    """Calls a TensorNode's ``tensor_func`` inside the time loop.

    Inside the loop signals are ``(*shape, batch)`` (minibatch last) while the
    function sees and returns minibatch-first tensors, so the input is
    transposed in and the output transposed back.

    Parameters
    ----------
    op : SimTensorNode
        The operator (never merged: nengo's optimizer has no merger for it).
    ctx : BuildContext
        Shared build information.
    """

    def __init__(self, op: SimTensorNode, ctx: BuildContext) -> None:
        super().__init__(op, ctx)
        node: TensorNode = op.node
        self.node = node
        self.func = node.tensor_func
        self.layer = self.func if is_keras_layer(self.func) else None
        self.training_arg = self.layer is not None and _accepts_training(self.layer)
        self.dtype = tf.as_dtype(ctx.dtype)
        self.batch = int(ctx.batch)
        self.shape_in = node.shape_in
        self.shape_out = tuple(node.shape_out)
        if self.layer is not None:
            self._build_layer()
            # a layer shared by several TensorNodes is one set of weights
            if not any(existing is self.layer for existing in ctx.keras_layers):
                ctx.keras_layers.append(self.layer)
        self.xla_ok = self._check_function()
        # user code may mix samples (batch statistics, reductions over the batch)
        self.samples_independent = False

    # --- construction ---------------------------------------------------------
    def _specs(self) -> tuple:
        """TensorSpecs of the call arguments on this simulator's exact shapes."""
        specs: tuple = ()
        if self.node.pass_time:
            specs += (tf.TensorSpec((), self.dtype),)
        if self.shape_in is not None:
            specs += (tf.TensorSpec((self.batch,) + self.shape_in, self.dtype),)
        return specs

    def _build_layer(self) -> None:
        """Create a Keras layer's weights now, outside any traced function."""
        if self.layer.built:
            return
        with tf.init_scope():
            args = tuple(tf.zeros(s.shape, s.dtype) for s in self._specs())
            shapes = [tuple(a.shape) for a in args]
            try:
                self._call(args, training=False)
            except Exception as e:
                raise ValidationError(
                    f"{self.node}: building Keras layer {self.layer.name!r} by calling it on "
                    f"zeros shaped {shapes if len(shapes) > 1 else shapes[0]} failed "
                    f"({type(e).__name__}: {e})",
                    attr="tensor_func",
                    obj=self.node,
                ) from e

    def _check_function(self) -> bool:
        """Trace once to validate the output; return whether XLA can compile it.

        Tracing runs no TensorFlow ops (``tf.print`` prints nothing), only the
        function's Python code.
        """
        specs = self._specs()

        def traced(*args):
            return self._output(self._call(args, training=False), self.batch)

        # the output check raises inside the trace, naming the node
        tf.function(traced, autograph=False).get_concrete_function(*specs)
        try:
            tf.function(traced, jit_compile=True, autograph=False).experimental_get_compiler_ir(
                *specs
            )(stage="hlo")
        except Exception:  # noqa: BLE001 - any lowering failure means "not XLA"
            # e.g. tf.print / py_function / string ops: the loop then runs without
            # XLA (slower, but correct); the function itself is fine
            return False
        return True

    # --- tracing --------------------------------------------------------------
    def _call(self, args: tuple, training: bool):
        """Call the function, passing ``training`` to Keras layers that take it.

        ``args`` are the inputs ``(t, x)``, ``(t,)`` or ``(x,)``; a Keras layer
        gets them as one list argument, ``layer([t, x])``, as in NengoDL
        (:func:`~.tensor_node.call_tensor_func`).
        """
        if self.training_arg:
            return call_tensor_func(self.func, args, training=training)
        return call_tensor_func(self.func, args)

    def _output(self, out, batch: int) -> tf.Tensor:
        """Validate the function's result and return it as ``(batch,) + shape_out``."""
        expected = (batch,) + self.shape_out
        try:
            out = tf.convert_to_tensor(out)
        except (TypeError, ValueError) as e:
            raise ValidationError(
                f"{self.node}: tensor_func must return a tensor shaped {expected}; got "
                f"{type(out).__name__} {out!r}",
                attr="tensor_func",
                obj=self.node,
            ) from e
        if not out.dtype.is_floating:
            raise ValidationError(
                f"{self.node}: tensor_func must return a float tensor; got dtype "
                f"{out.dtype.name} (expected shape {expected})",
                attr="tensor_func",
                obj=self.node,
            )
        if out.dtype != self.dtype and not self._layer_dtype(out.dtype):
            # NengoDL's validate_output: "TensorNode output should have dtype ..."
            raise ValidationError(
                f"{self.node}: TensorNode output should have dtype {self.dtype.name} (the "
                f"simulation dtype; got {out.dtype.name}): return tensors in the dtype of "
                "the inputs (e.g. tf.cast(y, x.dtype))",
                attr="tensor_func",
                obj=self.node,
            )
        shape = out.shape
        if shape.is_compatible_with(expected):
            out = tf.reshape(out, expected)  # also pins dimensions unknown statically
        elif shape.is_compatible_with((1,) + self.shape_out):
            # no minibatch dependence (e.g. a function of t only): same for all samples
            out = tf.broadcast_to(tf.reshape(out, (1,) + self.shape_out), expected)
        else:
            got = tuple(shape) if shape.rank is not None else "unknown"
            raise ValidationError(
                f"{self.node}: tensor_func returned shape {got}; expected "
                f"(minibatch_size,) + shape_out = {expected}",
                attr="shape_out",
                obj=self.node,
            )
        return tf.cast(out, self.dtype)

    def _layer_dtype(self, dtype) -> bool:
        """Whether ``dtype`` is the Keras layer's own compute dtype (then it is cast).

        Keras 3 layers cast their inputs to their dtype policy (float32 unless
        given ``dtype=``) and compute in it, so a layer made for the default
        precision runs in a float64 simulation with its output cast.
        """
        if self.layer is None:
            return False
        try:
            return tf.as_dtype(self.layer.compute_dtype) == dtype
        except (AttributeError, TypeError, ValueError):
            return False

    def step(self, sc: StepContext) -> None:
        st = sc.state
        # the step's own batch: the Keras (training) model may trace another one
        batch = int(st.batch)
        args: tuple = ()
        if self.node.pass_time:
            args += (tf.cast(sc.time, self.dtype),)
        if self.shape_in is not None:
            x = st.read(self.op.input, batched=True)  # (size_in, batch) or (size_in, 1)
            x = tf.broadcast_to(x, (x.shape[0], batch))
            x = tf.reshape(tf.transpose(x), (batch,) + self.shape_in)
            args += (tf.cast(x, self.dtype),)
        out = self._output(self._call(args, training=bool(sc.training)), batch)
        value = tf.transpose(tf.reshape(out, (batch, int(np.prod(self.shape_out)))))
        st.write(self.op.output, value, "set")
