"""The Simulator contract every backend meets.

The contract is nengo's own ``nengo.Simulator`` interface, so code written for
nengo runs unchanged on any backend::

    with backends.get("opencl")(net, dt=0.001, seed=0) as sim:
        sim.run(1.0)
        sim.data[probe], sim.trange()

:class:`Simulator` is an abstract base class: adapters around existing simulators
(``reference``, ``opencl``) inherit it next to the wrapped class, new backends
(``tensorflow``, ``loihi-emu``) can inherit :class:`SimulatorBase`, which supplies
the bookkeeping (closing, ``run`` in seconds, ``trange``, context management).
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Mapping
from typing import Any, Iterator

import numpy as np
from nengo.utils.progress import Progress, ProgressBar, ProgressTracker

from nhw.errors import SimulationDataKeyError


class Simulator(abc.ABC):
    """Abstract Simulator contract (nengo's interface).

    Implementations take ``(network, dt=0.001, seed=None, progress_bar=True, **options)``
    and provide the members below.  ``dt`` is read-only; every method that advances
    or resets the simulation raises ``nengo.exceptions.SimulatorClosed`` once
    :meth:`close` was called.
    """

    #: True once :meth:`close` was called.
    closed: bool

    @property
    @abc.abstractmethod
    def dt(self) -> float:
        """Simulation time step in seconds (read-only)."""

    @property
    @abc.abstractmethod
    def n_steps(self) -> int:
        """Number of time steps simulated so far."""

    @property
    @abc.abstractmethod
    def time(self) -> float:
        """Simulated time in seconds so far."""

    #: Probe data (``data[probe]``) and built parameters (``data[ens]``); an
    #: attribute or property, so adapters of nengo's simulators qualify.
    data: Mapping

    @abc.abstractmethod
    def run(self, time_in_seconds: float, progress_bar: Any = None) -> None:
        """Simulate for ``time_in_seconds`` (rounded to whole steps)."""

    @abc.abstractmethod
    def run_steps(self, steps: int, progress_bar: Any = None) -> None:
        """Simulate for ``steps`` time steps."""

    @abc.abstractmethod
    def step(self) -> None:
        """Advance the simulation by one time step."""

    @abc.abstractmethod
    def reset(self, seed: int | None = None) -> None:
        """Return to time 0, optionally with a new seed; probe data is cleared."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources; further simulation raises ``SimulatorClosed``."""

    @abc.abstractmethod
    def trange(self, dt: float | None = None, sample_every: float | None = None) -> np.ndarray:
        """Times (s) of the samples recorded by probes."""

    def __enter__(self) -> "Simulator":
        if getattr(self, "closed", False):
            from nengo.exceptions import SimulatorClosed

            raise SimulatorClosed(f"{type(self).__name__}: cannot re-open: the simulator is closed")
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        self.close()


def _describe(obj: object) -> str:
    label = getattr(obj, "label", None)
    kind = type(obj).__name__
    return f"{kind} {label!r}" if label else repr(obj)


class SimulationData(Mapping):
    """Read-only view of probe data and built parameters with helpful errors.

    Parameters
    ----------
    params
        Mapping from nengo objects to built parameters (``Model.params``).
    probe_data
        Mapping from ``nengo.Probe`` to a list or array of recorded samples.
    """

    def __init__(self, params: Mapping, probe_data: Mapping | None = None) -> None:
        self._params = params
        self._probe_data = probe_data if probe_data is not None else {}
        self._cache: dict = {}

    def __getitem__(self, key: Any) -> Any:
        if key in self._probe_data:
            raw = self._probe_data[key]
            cached = self._cache.get(key)
            if cached is None or len(cached) != len(raw):
                cached = np.asarray(raw)
                cached.setflags(write=False)
                self._cache[key] = cached
            return cached
        try:
            return self._params[key]
        except KeyError:
            raise missing_data_error(key) from None

    def __iter__(self) -> Iterator:
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, key: object) -> bool:
        return key in self._probe_data or key in self._params

    def reset(self) -> None:
        """Forget cached arrays (after the backend cleared its probe buffers)."""
        self._cache.clear()


def missing_data_error(key: object) -> SimulationDataKeyError:
    """Build the error raised by ``sim.data[key]`` for an object that was not built.

    Parameters
    ----------
    key
        The object looked up.
    """
    return SimulationDataKeyError(
        f"sim.data[{_describe(key)}]: this object is not part of the network the "
        "Simulator was built from; add probes and objects to the network before "
        "creating the Simulator (or build a new Simulator)"
    )


class SimulatorBase(Simulator):
    """Shared bookkeeping for backends written in this project.

    Subclasses implement :meth:`_run_steps` (advance ``steps`` steps and record
    probes), :meth:`_reset` and optionally :meth:`_close`, and set ``self._dt``,
    ``self.model`` (nengo's built model) and ``self._probe_data`` in ``__init__``.
    """

    def __init__(self, dt: float) -> None:
        self._dt = float(dt)
        self._n_steps = 0
        self.closed = False
        self._probe_data: dict = {}
        self._data: SimulationData | None = None

    # --- read-only state -------------------------------------------------
    @property
    def dt(self) -> float:
        return self._dt

    @dt.setter
    def dt(self, value: float) -> None:
        from nengo.exceptions import ReadonlyError  # what nengo's own Simulator raises

        raise ReadonlyError(
            attr="dt",
            obj=self,
            msg=f"dt is read-only (tried to set it to {value!r}); build a new Simulator with that dt",
        )

    @property
    def n_steps(self) -> int:
        return self._n_steps

    @property
    def time(self) -> float:
        return self._n_steps * self._dt

    @property
    def data(self) -> SimulationData:
        if self._data is None:
            self._data = SimulationData(self.model.params, self._probe_data)
        return self._data

    # --- control ------------------------------------------------------------
    def _check_open(self, action: str) -> None:
        if self.closed:
            from nengo.exceptions import SimulatorClosed

            raise SimulatorClosed(
                f"{type(self).__name__}.{action}: the simulator is closed; "
                "create a new Simulator to simulate again"
            )

    def run(self, time_in_seconds: float, progress_bar: Any = None) -> None:
        if time_in_seconds < 0:
            from nengo.exceptions import ValidationError

            raise ValidationError(f"must be non-negative (got {time_in_seconds})", attr="time_in_seconds",
                                  obj=self)
        steps = int(np.round(float(time_in_seconds) / self._dt))
        if steps == 0:
            warnings.warn(
                f"{time_in_seconds!r} s is less than half a time step (dt={self._dt}); "
                "no steps simulated"
            )
            return
        self.run_steps(steps, progress_bar=progress_bar)

    def run_steps(self, steps: int, progress_bar: Any = None) -> None:
        self._check_open("run_steps")
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"run_steps: steps must be >= 0, got {steps}")
        if isinstance(progress_bar, ProgressBar) and steps > 1:
            self._run_steps_reporting(steps, progress_bar)
        else:
            self._run_steps(steps)
            self._n_steps += steps
        if self._data is not None:
            self._data.reset()

    def _run_steps_reporting(self, steps: int, progress_bar: Any) -> None:
        # in about 50 slices, so a live bar moves; state carries over between calls
        chunk = max(1, steps // 50)
        with ProgressTracker(progress_bar, Progress("Simulating", "Simulation", steps)) as tracker:
            done = 0
            while done < steps:
                n = min(chunk, steps - done)
                self._run_steps(n)
                self._n_steps += n
                done += n
                tracker.total_progress.step(n)

    def step(self) -> None:
        self.run_steps(1)

    def reset(self, seed: int | None = None) -> None:
        self._check_open("reset")
        self._reset(seed)
        self._n_steps = 0
        for key in self._probe_data:
            self._probe_data[key] = []
        if self._data is not None:
            self._data.reset()

    def close(self) -> None:
        if not self.closed:
            self._close()
        self.closed = True

    def trange(self, dt: float | None = None, sample_every: float | None = None) -> np.ndarray:
        if dt is not None:  # nengo's deprecated spelling of sample_every
            if sample_every is not None:
                from nengo.exceptions import ValidationError

                raise ValidationError("Cannot specify both `dt` and `sample_every`. Use `sample_every` only.",
                                      attr="dt", obj=self)
            warnings.warn("`dt` is deprecated. Use `sample_every` instead.", DeprecationWarning)
            sample_every = dt
        period = 1 if sample_every is None else sample_every / self._dt
        steps = np.arange(1, self._n_steps + 1)
        return self._dt * steps[steps % period < 1]

    # --- hooks --------------------------------------------------------------
    @abc.abstractmethod
    def _run_steps(self, steps: int) -> None:
        """Advance ``steps`` steps and append probe samples to ``self._probe_data``."""

    @abc.abstractmethod
    def _reset(self, seed: int | None) -> None:
        """Return all state to time 0."""

    def _close(self) -> None:
        """Release backend resources (default: nothing to release)."""
