"""The one exception hierarchy of nhw.

Every error nhw raises is a :class:`NhwError` and also a builtin category, so a caller
can catch the whole package (``except NhwError``), one layer (``except EmulatorError``)
or the usual Python kind (``except ValueError``). This module imports nothing but the
standard library: it sits below every other module of the package, the chip emulator
included.
"""

from __future__ import annotations


class NhwError(Exception):
    """Base class of every error raised by nhw."""


class _PlainKeyMessage:
    # KeyError.__str__ quotes its argument; these errors carry a sentence.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnsupportedFeatureError(NhwError, NotImplementedError):
    """A neuron type, synapse, probe or other feature that a target cannot run.

    Raised by every backend and by the chip emulator alike, so one ``except`` catches
    a refusal whichever layer made it.
    """


# --- backends -----------------------------------------------------------------------
class BackendError(NhwError):
    """Base class of the errors of simulation targets (``nhw.backends``)."""


class UnknownBackendError(_PlainKeyMessage, BackendError, KeyError):
    """A target name that is not registered."""


class BackendUnavailableError(BackendError, RuntimeError):
    """A registered target whose dependency or device is missing."""


class SimulationDataKeyError(_PlainKeyMessage, BackendError, KeyError):
    """``sim.data[obj]`` for an object that the simulator did not build."""


class ObjectTypeError(BackendError, TypeError):
    """An object of a type that an operation does not take (``freeze_params`` on a Node)."""


# --- chip emulator ------------------------------------------------------------------
class EmulatorError(NhwError):
    """Base class of the errors of the chip emulator (``nhw.hw_emulator``)."""


class ResourceError(EmulatorError, ValueError):
    """A network does not fit the chip: too many compartments, axons, synapses or cores."""


class DiscretizationError(EmulatorError, ValueError):
    """A float parameter that has no representation in the chip's integer formats."""


# --- toolchain ----------------------------------------------------------------------
class ToolchainError(NhwError):
    """Base class of the errors of the pipeline (``nhw.toolchain``)."""


class UnknownNameError(_PlainKeyMessage, ToolchainError, KeyError):
    """A name (network, probe, dataset) that is not registered."""


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


class UserCodeError(ToolchainError, RuntimeError):
    """The user's own code (a config's ``network.factory``) raised.

    The message names the factory and the exception; the original exception is the
    ``__cause__`` (``nhw -v`` prints its traceback).
    """
