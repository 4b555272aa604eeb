"""NengoDL's documented ``nengo_dl.utils``: name helpers, output checks and progress bars.

Written for nhw from NengoDL's API reference (names, arguments and documented
behaviour). TensorFlow is imported only by the functions that need it, so
``import nhw.dl.utils`` stays light.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from nengo.exceptions import SimulationError

__all__ = [
    "NullProgressBar",
    "ProgressBar",
    "SubProgressBar",
    "align_func",
    "function_name",
    "numpy_function",
    "sanitize_name",
]

_INVALID = re.compile(r"[^A-Za-z0-9_.\-/]")


def sanitize_name(name: Any) -> str:
    """``name`` as a valid TensorFlow name: spaces and colons become ``_``, other
    characters outside ``[A-Za-z0-9_.-/]`` are dropped."""
    return _INVALID.sub("", str(name).replace(" ", "_").replace(":", "_"))


def function_name(func: Any, sanitize: bool = True) -> str:
    """The name of callable ``func`` (its class name when it has no ``__name__``)."""
    name = getattr(func, "__name__", type(func).__name__)
    return sanitize_name(name) if sanitize else name


def align_func(output_dtype: Any) -> Callable[[Callable], Callable]:
    """Decorator: the function's output as an array of ``output_dtype``.

    Raises
    ------
    nengo.exceptions.SimulationError
        When the function returns None, a non-finite value, or something that is
        not numeric.
    """
    dtype = getattr(output_dtype, "as_numpy_dtype", output_dtype)  # a tf.DType too

    def decorate(func: Callable) -> Callable:
        def aligned(*args: Any) -> np.ndarray:
            out = func(*args)
            name = function_name(func, sanitize=False)
            if out is None:
                raise SimulationError(f"Function '{name}' returned None")
            try:
                finite = bool(np.all(np.isfinite(out)))
            except (TypeError, ValueError) as exc:
                raise SimulationError(
                    f"Function '{name}' returned a value {out!r} of invalid type '{type(out).__name__}'"
                ) from exc
            if not finite:
                raise SimulationError(f"Function '{name}' returned invalid value {out!r}")
            return np.asarray(out, dtype=dtype)

        aligned.__name__ = getattr(func, "__name__", "aligned")
        return aligned

    return decorate


def numpy_function(func: Callable, inp: Any, Tout: Any, name: str | None = None) -> Any:
    """``tf.numpy_function`` on copies of the inputs, so ``func`` may change them in place."""
    from nhw.backends.tensorflow._tf import tf

    copies = [tf.identity(tf.roll(x, 0, 0)) if x.shape.ndims else x
              for x in map(tf.convert_to_tensor, tf.nest.flatten(inp))]
    return tf.numpy_function(func, tf.nest.pack_sequence_as(inp, copies), Tout, name=name)


class ProgressBar:
    """A one-line text progress bar for a tracked process.

    Parameters
    ----------
    present
        The process in the present tense ("Simulating").
    past
        The process in the past tense ("Simulation"; default ``present``).
    max_value
        Steps in the process, or None if unknown.
    stream
        Where the bar is written (default ``sys.stdout``).
    """

    def __init__(self, present: str = "", past: str | None = None, max_value: int | None = 1,
                 stream: Any = None) -> None:
        self.present = present
        self.past = present if past is None else past
        self.max_value = max_value
        self.value = 0
        self.finished: bool | None = None
        self.sub_bar: SubProgressBar | None = None
        self._stream = stream
        self._start = 0.0
        self._iterable: Iterator | None = None

    @property
    def max_steps(self) -> int | None:
        """Alias of ``max_value`` (nengo's progress-bar interface)."""
        return self.max_value

    @max_steps.setter
    def max_steps(self, n: int | None) -> None:
        self.max_value = n

    def _write(self, text: str, end: str = "\r") -> None:
        stream = self._stream or sys.stdout
        # padded: a shorter line must cover the longer one it overwrites
        stream.write(text.ljust(getattr(self, "_width", 0)) + end)
        stream.flush()
        self._width = 0 if end == "\n" else len(text)

    def _line(self) -> str:
        elapsed = time.perf_counter() - self._start
        if not self.max_value:
            return f"{self.present}: {self.value} ({elapsed:.1f} s)"
        frac = min(self.value / self.max_value, 1.0)
        eta = f"{elapsed / frac * (1 - frac):.1f} s" if frac > 0 else "--"
        return f"{self.present}: {100 * frac:3.0f}% ETA {eta}"

    def start(self) -> "ProgressBar":
        """Start tracking; returns the bar."""
        self._start = time.perf_counter()
        self.finished = False
        self._write(self._line())
        return self

    def update(self, value: int | None = None) -> None:
        """Set the value (or redraw) and redraw."""
        if value is not None:
            self.value = value
        if self.finished is False:
            self._write(self._line())

    def step(self) -> None:
        """Advance one step."""
        self.update(self.value + 1)

    def finish(self, end: str = "\n") -> None:
        """Stop tracking and print the elapsed time."""
        if self.sub_bar is not None and self.sub_bar.finished is False:
            self.sub_bar.finish()
        if self.finished:
            return
        elapsed = time.perf_counter() - self._start
        self.finished = True
        self._write(f"{self.past} finished in {elapsed:.2f} s", end=end)

    def sub(self, msg: str | None = None, **kwargs: Any) -> "SubProgressBar":
        """A bar for a sub-process (finishing the previous one)."""
        if self.sub_bar is not None and self.sub_bar.finished is False:
            self.sub_bar.finish()
        kwargs.setdefault("stream", self._stream)
        self.sub_bar = SubProgressBar(present=f"{self.present}: {msg}" if msg else self.present, **kwargs)
        return self.sub_bar

    def __call__(self, iterable: Iterable) -> "ProgressBar":
        """Track iteration over ``iterable`` (one step per item)."""
        self._iterable = iter(iterable)
        if self.max_value == 1 and hasattr(iterable, "__len__"):
            self.max_value = len(iterable)  # type: ignore[arg-type]
        return self

    def __iter__(self) -> "ProgressBar":
        if self.finished is not False:
            self.start()
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._iterable)  # type: ignore[arg-type]
        except StopIteration:
            self.finish()
            raise
        self.step()
        return item

    def __enter__(self) -> "ProgressBar":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.finish()


class SubProgressBar(ProgressBar):
    """A bar for a sub-task of a :class:`ProgressBar`; finishing it does not end the line."""

    def finish(self, end: str = "\r") -> None:
        super().finish(end=end)


class NullProgressBar(ProgressBar):
    """A progress bar that shows nothing (used where output is disabled)."""

    def _write(self, text: str, end: str = "\r") -> None:
        pass

    def sub(self, *args: Any, **kwargs: Any) -> "NullProgressBar":
        return self
