"""Live progress on a terminal: a spinner while a target builds, a bar while it simulates.

The CLI switches it on when stderr is a terminal (and not ``--json``); elsewhere
(pipes, CI logs, tests, library use) nothing is drawn and nothing changes. Bars are
drawn with rich on stderr, so stdout stays the command's result.

>>> with progress.stage("building on loihi-emu"):             # doctest: +SKIP
...     sim = Simulator(net)
>>> with progress.stage("simulating", total=1000) as bar:     # doctest: +SKIP
...     sim.run_steps(1000, progress_bar=bar)                 # nengo's ProgressBar contract
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from nengo.utils.progress import ProgressBar

_state = {"console": None}


def enable(console=None) -> None:
    """Draw progress from now on, on ``console`` (default: a rich Console on stderr)."""
    if console is None:
        from rich.console import Console

        console = Console(stderr=True)
    _state["console"] = console


def disable() -> None:
    """Draw nothing (the default)."""
    _state["console"] = None


def enabled() -> bool:
    """Whether progress is drawn."""
    return _state["console"] is not None


class _RichBar(ProgressBar):
    """nengo's ProgressBar interface (``update(progress)``, ``close()``) on a rich task."""

    def __init__(self, live, task) -> None:
        self._live, self._task = live, task

    def update(self, progress) -> None:
        self._live.update(self._task, completed=progress.n_steps, total=progress.max_steps)

    def close(self) -> None:
        pass  # the stage finishes the task with its final count and time


def _Seconds():
    """A rich column with the task's elapsed time in seconds (``0:00:00`` says nothing about short stages)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Seconds(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.elapsed or 0.0:6.1f} s", style="progress.elapsed")

    return Seconds()


@contextlib.contextmanager
def stage(label: str, total: int | None = None) -> Iterator[ProgressBar | None]:
    """Show ``label`` with its elapsed time while the block runs.

    With ``total``, yields a nengo ``ProgressBar`` to pass to ``run_steps(progress_bar=...)``
    (a bar with steps done of ``total``); otherwise a spinner. Yields ``None`` when
    progress is off, so callers pass the simulator's default.
    """
    console = _state["console"]
    if console is None:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    columns = [SpinnerColumn(finished_text="[green]done"), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn(), TextColumn("steps")]
    columns.append(_Seconds())
    with Progress(*columns, console=console, transient=False) as live:
        task = live.add_task(label, total=total)
        yield _RichBar(live, task) if total is not None else None
        live.update(task, completed=total if total is not None else 1, total=total if total is not None else 1)
