"""NengoDL's Simulator surface that has no nhw machinery behind it.

* ``sim.keras_model`` raises ``SimulatorClosed`` once the simulator is closed;
* ``sim.train()`` / ``sim.loss()`` (removed in NengoDL 3) raise and name their
  replacements;
* ``sim.tensor_graph`` (NengoDL's internal graph) does not exist here and says so;
* pickling a Simulator raises ``NotImplementedError`` (TensorFlow state does not
  pickle; parameters travel through ``save_params``/``freeze_params``);
* ``sim.get_name(obj)`` gives the string name of an input Node or output Probe.

No TensorFlow here.
"""

from __future__ import annotations

from typing import Any, NoReturn

from nengo.exceptions import SimulationError, SimulatorClosed

from nhw.errors import UnsupportedFeatureError

#: where users porting from NengoDL read what replaced its internals
MIGRATION_DOC = "docs/nengo-dl-migration.md"


class DLCompatMixin:
    """NengoDL attributes and methods that only redirect or refuse (see the module doc)."""

    # --- keras_model --------------------------------------------------------------
    @property
    def keras_model(self) -> Any:
        """The simulation as a ``keras.Model`` (its weights are the trainable parameters).

        Raises
        ------
        nengo.exceptions.SimulatorClosed
            After :meth:`close`, as in NengoDL.
        """
        if self.__dict__.get("_released", False):
            raise SimulatorClosed(
                f"{type(self).__name__}.keras_model: the simulator is closed; expected an open "
                "Simulator (read keras_model inside the `with` block, or create a new Simulator)"
            )
        try:
            return self.__dict__["_keras_model"]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}.keras_model: not built yet (the Simulator's construction "
                "did not finish)"
            ) from None

    @keras_model.setter
    def keras_model(self, model: Any) -> None:
        self.__dict__["_keras_model"] = model

    def close(self) -> None:
        """Release resources; simulating or reading ``keras_model`` then raises ``SimulatorClosed``."""
        super().close()
        self.__dict__["_released"] = True

    # --- NengoDL internals and removed methods ------------------------------------
    @property
    def tensor_graph(self) -> NoReturn:
        """NengoDL's internal ``TensorGraph``: nhw has none; always raises AttributeError."""
        raise AttributeError(
            f"{type(self).__name__} has no attribute 'tensor_graph': nhw builds no NengoDL "
            "TensorGraph (its simulation is a compiled loop behind sim.keras_model); see "
            f"{MIGRATION_DOC} for what replaces each use of tensor_graph"
        )

    def train(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Removed in NengoDL 3: use :meth:`compile` and :meth:`fit`; always raises.

        Raises
        ------
        nengo.exceptions.SimulationError
            Always, naming the replacement.
        """
        raise SimulationError(
            "Simulator.train has been removed (as in NengoDL 3); expected "
            "sim.compile(optimizer=..., loss=...) followed by sim.fit(x, y, epochs=...)"
        )

    def loss(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Removed in NengoDL 3: use :meth:`compile` and :meth:`evaluate`; always raises.

        Raises
        ------
        nengo.exceptions.SimulationError
            Always, naming the replacement.
        """
        raise SimulationError(
            "Simulator.loss has been removed (as in NengoDL 3); expected "
            "sim.compile(loss=...) followed by sim.evaluate(x, y)"
        )

    def __getstate__(self) -> NoReturn:
        raise UnsupportedFeatureError(
            f"a {type(self).__name__} cannot be pickled (its TensorFlow state does not pickle); "
            "save the parameters with sim.save_params(path) and load them into a new Simulator "
            "with sim.load_params(path), or write them into the network with sim.freeze_params(net)"
        )

    # --- names ---------------------------------------------------------------------
    def get_name(self, obj: Any) -> str:
        """The string name of an input Node or output Probe (its key in Keras inputs/outputs).

        Parameters
        ----------
        obj : nengo.Node or nengo.Probe
            An input Node (``size_in == 0``) or a Probe of this Simulator's network.

        Returns
        -------
        str
            The name under which ``fit``/``predict``/``evaluate`` and ``keras_model``
            accept data for ``obj``.

        Raises
        ------
        nengo.exceptions.ValidationError
            If ``obj`` is not an input Node or Probe of this network.
        """
        from nhw.backends.tensorflow.api.io_names import io_name

        return io_name(self, obj)
