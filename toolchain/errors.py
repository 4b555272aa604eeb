"""Exceptions raised by the ``toolchain`` package."""

from __future__ import annotations


class ToolchainError(Exception):
    """Base class of every error raised by ``toolchain``."""


class UnknownNameError(ToolchainError, KeyError):
    """A name (network, probe, target) that is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParityError(ToolchainError, RuntimeError):
    """A parity run could not be carried out (not: a probe out of tolerance)."""
