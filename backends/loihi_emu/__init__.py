"""The ``loihi-emu`` target: nengo networks on the Loihi-style integer chip emulator.

The chip itself (:mod:`nhw.hw_emulator`) knows no nengo; this package is the
host-chip interface, one module per idea:

``taps``           what the mapping hands the host: options, inputs, outputs, taps
``chip_rules``     what the chip can run; built weights as dense matrices
``chip_decoders``  decoders re-solved on the chip's discretised rate curves
``chip_learning``  PES connections: checks and learning synapse groups
``mapping``        nengo's built model -> chip objects and host taps
``filters``        host-side synapses (one Lowpass; nengo's own steps for the rest)
``host``           host Nodes and connections, evaluated step by step
``early``          host Nodes that do not read the chip, run a chunk ahead
``codec``          host values -> input spikes; output spikes -> decoded values
``probes``         what each probe reads, filtered and sampled as nengo does
``simulator``      the nengo-compatible :class:`Simulator`

>>> from nhw.backends.loihi_emu import Simulator   # doctest: +SKIP
"""

from .mapping import MapOptions, map_model
from .simulator import Simulator

__all__ = ["MapOptions", "Simulator", "map_model"]
