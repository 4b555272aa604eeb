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


class ConfigError(ToolchainError, ValueError):
    """An experiment config that cannot be read or does not validate.

    The message reads ``FILE: dotted.path: what is wrong``.
    """


class DataError(ToolchainError, ValueError):
    """A dataset that cannot be loaded (missing file, missing arrays, pickled data)."""


class ArtifactError(ToolchainError, ValueError):
    """A run or artifact directory that cannot be written or trusted when read back."""


class NIRError(ToolchainError, ValueError):
    """A network that cannot be exported to NIR, or a NIR graph that cannot be imported.

    The message names the nengo object or NIR node and the value that is not supported.
    """


class DeployError(ToolchainError, RuntimeError):
    """A network that could not be built or run on a target."""
