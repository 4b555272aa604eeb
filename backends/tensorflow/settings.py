"""``configure_settings``: options of the TensorFlow simulator, kept in network configs.

As in NengoDL (``nengo_dl/config.py``), every setting except ``trainable`` is
stored on the outermost network being built (``nengo.Network.context[0]``),
also when ``configure_settings`` is called inside a sub-network, and the
Simulator reads them from the network it simulates. ``trainable`` is a default
of the innermost network's config (so sub-networks can be frozen separately):

>>> with net:                                     # doctest: +SKIP
...     configure_settings(trainable=None, lif_smoothing=0.01)
...     net.config[ens].trainable = False         # per-object override

No TensorFlow here: configuring a network must not import it.
"""

from __future__ import annotations

from typing import Any, Iterable

import nengo
import numpy as np
from nengo.ensemble import Neurons
from nengo.exceptions import ConfigError, ValidationError

#: setting -> (default, validator description, validator)
_SETTINGS: dict = {
    "trainable": (None, "True, False or None", lambda v: v in (True, False, None)),
    "stateful": (True, "a bool", lambda v: isinstance(v, bool)),
    "keep_history": (True, "a bool", lambda v: isinstance(v, bool)),
    "inference_only": (False, "a bool", lambda v: isinstance(v, bool)),
    "lif_smoothing": (
        None,
        "None or a positive number",
        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0),
    ),
    "dtype": (
        None,
        "None, 'float32' or 'float64' (or tf.float32/tf.float64)",
        lambda v: _dtype_name(v) in (None, "float32", "float64"),
    ),
    "training_mode": (
        "rate",
        "'rate' or 'spiking_aware'",
        lambda v: v in ("rate", "spiking_aware"),
    ),
    # surrogate gradient of spiking-aware training (None: fast_sigmoid), see
    # backends/tensorflow/surrogates.py; names kept here so configuring needs no TF
    "surrogate": (
        None,
        "None or one of 'fast_sigmoid', 'arctan', 'rate'",
        lambda v: v is None or v in ("fast_sigmoid", "arctan", "rate"),
    ),
    "surrogate_slope": (
        None,
        "None or a positive number",
        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0),
    ),
    # train LIF / SpikingRectifiedLinear as this target's neuron models (chip_neurons)
    "target": (None, "None or 'loihi-emu'", lambda v: v is None or v == "loihi-emu"),
    # with target: compute with that target's quantised weights and biases (chip_quantize)
    "quantize": (False, "a bool", lambda v: isinstance(v, bool)),
    # with target: spiking inference runs that target's neuron models (None: yes)
    "chip_inference": (None, "None, True or False", lambda v: v is None or isinstance(v, bool)),
    # with target: the target's mapping options (loihi-emu: MapOptions fields), so the chip
    # form and quantisation map the network as the deployment will (builders/chip_options.py)
    "target_options": (None, "None or a dict of mapping options", lambda v: v is None or isinstance(v, dict)),
    # sim.fit stops with an error when no trainable parameter moves in the first update
    # (every gradient zero) although the loss and learning rate are not (api/train_checks.py)
    "zero_gradient_check": (True, "a bool", lambda v: isinstance(v, bool)),
    "batch_shards": (
        None,
        "None or a positive int",
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v > 0),
    ),
    # --- NengoDL options kept for drop-in compatibility (see docs/nengo-dl-migration.md)
    # nhw always compiles its own loop and accepts any n_steps, so a loop-free
    # build changes nothing a NengoDL program can observe
    "use_loop": (True, "a bool", lambda v: isinstance(v, bool)),
    # forcing Keras' training/inference phase needs the loop's training flag;
    # accepted here, refused (with the replacement) when a Simulator is built
    "learning_phase": (None, "True, False or None", lambda v: v in (True, False, None)),
    # NengoDL's graph-optimizer hooks: nhw merges operators with nengo's own
    # optimizer, so these only ever changed speed, never results
    "planner": (None, "a callable or None", lambda v: v is None or callable(v)),
    "sorter": (None, "a callable or None", lambda v: v is None or callable(v)),
    "simplifications": (
        None,
        "a list of callables or None",
        lambda v: v is None or (isinstance(v, (list, tuple)) and all(callable(f) for f in v)),
    ),
}


def _dtype_name(value: Any) -> Any:
    """``"float32"`` for ``"float32"``/``tf.float32``/``np.float32`` (NengoDL accepts each)."""
    if value is None or isinstance(value, str):
        return value
    name = getattr(value, "name", None)  # tf.DType
    if isinstance(name, str):
        return name
    try:
        return np.dtype(value).name
    except TypeError:
        return value

#: object types whose ``trainable`` flag can be set through ``net.config``
TRAINABLE_TYPES = (nengo.Ensemble, Neurons, nengo.Connection, nengo.Network, nengo.Node)

_KEY = "nhw_settings"


def configure_settings(**settings: Any) -> None:
    """Set simulator options of the network being built (``with net:``).

    As in NengoDL, ``trainable`` goes to the config of the innermost network
    being built; every other setting goes to the outermost one
    (``nengo.Network.context[0]``), also when called inside a sub-network's
    ``with`` block, so it applies to the whole simulated model.

    Parameters
    ----------
    trainable : bool or None
        Adds a ``trainable`` parameter to the config of ensembles (encoders),
        ``ens.neurons`` (biases), connections (weights), nodes (TensorNode
        layers) and sub-networks; its value is the default for objects that do
        not set it (``None``: everything trains unless set False).
    stateful : bool
        Whether ``predict``/``run`` keep state between calls by default.
    keep_history : bool
        Whether probes record every step (False: only the last step).
    inference_only : bool
        Build for inference only: ``fit`` raises, memory for training is saved.
    lif_smoothing : float or None
        Train LIF neurons through ``SoftLIFRate`` with this ``sigma`` (else LIFRate).
    dtype : str or None
        Default simulation dtype (``"float32"``/``"float64"``) when the
        Simulator is not given one.
    use_loop : bool
        Accepted for NengoDL code; nhw always runs a compiled loop that takes
        any ``n_steps``, which gives the same results as NengoDL's loop-free
        build (``use_loop=False``) does for the runs it allows.
    learning_phase : bool or None
        NengoDL's forced phase: None (default) trains ``fit`` in training mode
        and simulates everything else in inference mode; True runs every call
        (``run_steps``, ``predict``, ``evaluate``, ``fit``) in training mode
        (spiking neurons as their rate models, Keras layers with
        ``training=True``); False runs every call, ``fit`` included, in
        inference mode.
    planner, sorter, simplifications
        NengoDL's graph-optimizer hooks; accepted and unused (nhw merges
        operators with nengo's optimizer; these never changed results).
    training_mode : str
        ``"rate"`` (spiking neurons train through their rate model) or
        ``"spiking_aware"`` (spikes forward, surrogate gradient backward).
    surrogate : str or None
        Surrogate gradient of ``"spiking_aware"`` training: ``"fast_sigmoid"``
        (the default; ``1 / (1 + k |v - 1|)**2``, SuperSpike),
        ``"arctan"`` (``(k / 2) / (1 + (pi k (v - 1) / 2)**2)``) or ``"rate"``
        (the rate model's derivative, smoothed by ``lif_smoothing``; zero for
        silent neurons). Applies to LIF, AdaptiveLIF and SpikingRectifiedLinear;
        other spiking types always use their rate model's derivative.
    surrogate_slope : float or None
        The surrogate's slope ``k`` (None: 10 for fast_sigmoid, 2 for arctan;
        ``"rate"`` takes none).
    target : str or None
        ``"loihi-emu"``: while training, LIF and SpikingRectifiedLinear neurons
        run as the chip's neuron models (integer refractory period and 12-bit
        decay; integrate-and-fire with reset to zero): the chip's staircase
        rate curve with a smooth gradient in rate training, the chip's voltage
        update with the surrogate gradient in spiking-aware training. The frozen
        network keeps nengo's types, to deploy on that target.
    chip_inference : bool or None
        With ``target``: spiking inference (``predict``, ``run_steps``, ``nhw
        deploy --target tensorflow``) runs LIF and SpikingRectifiedLinear as the
        target's neurons too, in its integer voltage units, so the TF simulator's
        spiking accuracy is the one the target gives. None (default) or True: on;
        False: nengo's own spiking neurons.
    zero_gradient_check : bool
        ``sim.fit`` raises :class:`~nhw.backends.tensorflow.api.train_checks.TrainingError`
        when no trainable parameter changed in the first update although the model has
        trainable parameters, the learning rate is positive and the loss finite and
        nonzero: every gradient was zero, usually because the neurons never fire (True,
        the default); False trains anyway.
    batch_shards : int or None
        Split a minibatch into this many equal parts that run concurrently
        (XLA on a CPU uses one core per compiled loop). ``None``: one part per
        available CPU core (at least 4 samples each) when the samples do not
        interact and the simulation is not on a GPU, and more parts (at least 8
        samples each) when the cores' share of the loop state would not fit in
        half the last-level cache, or when that makes one part's per-sample
        learned weights fit a core's level-2 cache. Results agree with the
        unsplit run to float rounding (XLA may vectorise a narrower batch
        differently, as between two minibatch sizes).
    """
    if not nengo.Network.context:
        raise ValidationError(
            "configure_settings must be called inside a 'with net:' block", attr="settings"
        )
    # NengoDL: trainable is set on the nearest enclosing network, every other
    # setting on the top-level one (Network.context[0]), wherever it is called
    net = nengo.Network.context[-1]
    top = nengo.Network.context[0]
    for name, value in settings.items():
        if name not in _SETTINGS:
            raise ValidationError(
                f"configure_settings: unknown setting {name!r}; known: {', '.join(sorted(_SETTINGS))}",
                attr=name,
            )
        _, what, ok = _SETTINGS[name]
        if not ok(value):
            raise ValidationError(
                f"configure_settings: {name} must be {what}; got {value!r}", attr=name
            )
    if "trainable" in settings:
        cfg = net.config
        for cls in TRAINABLE_TYPES:
            try:
                cfg[cls]
            except ConfigError:
                cfg.configures(cls)
            cfg[cls].set_param(
                "trainable", nengo.params.BoolParam("trainable", default=settings["trainable"], optional=True)
            )
    rest = {k: v for k, v in settings.items() if k != "trainable"}
    if not rest:
        return
    cfg = top.config
    if "keep_history" in settings:
        # NengoDL: also a per-probe config parameter (net.config[probe].keep_history = False)
        try:
            cfg[nengo.Probe]
        except ConfigError:
            cfg.configures(nengo.Probe)
        cfg[nengo.Probe].set_param(
            "keep_history", nengo.params.BoolParam("keep_history", default=settings["keep_history"], optional=True)
        )
    try:
        cfg[nengo.Network]
    except ConfigError:
        cfg.configures(nengo.Network)
    if _KEY not in _params(cfg, nengo.Network):
        cfg[nengo.Network].set_param(_KEY, nengo.params.Parameter(_KEY, default=None, optional=True))
    stored = dict(getattr(cfg[nengo.Network], _KEY) or {})
    stored.update(rest)
    if "dtype" in stored:
        stored["dtype"] = _dtype_name(stored["dtype"])
    setattr(cfg[nengo.Network], _KEY, stored)


def _params(cfg, cls) -> Iterable[str]:
    try:
        return list(cfg[cls]._extra_params) + list(cfg[cls].default_params)
    except (AttributeError, KeyError, ConfigError):
        return []


def stored_settings(network) -> dict:
    """The settings ``configure_settings`` gave ``network`` (a copy; no defaults filled in).

    Parameters
    ----------
    network : nengo.Network
        The network whose config is read.

    Returns
    -------
    dict
        ``{setting: value}`` for each setting configured on the network, except
        ``trainable`` (a per-object config parameter).
    """
    try:
        stored = getattr(network.config[nengo.Network], _KEY)
    except (AttributeError, KeyError, ConfigError):
        stored = None
    return dict(stored or {})


def get_setting(network, name: str, default: Any = None) -> Any:
    """Value of setting ``name`` on ``network`` (else its default or ``default``)."""
    if name not in _SETTINGS:
        raise KeyError(name)
    if network is not None:
        try:
            stored = getattr(network.config[nengo.Network], _KEY)
        except (AttributeError, KeyError, ConfigError):
            stored = None
        if stored and name in stored:
            return stored[name]
    return _SETTINGS[name][0] if default is None else default


def _explicit(cfg, obj) -> Any:
    """``cfg[obj].trainable`` if that config knows the parameter, else None."""
    try:
        return getattr(cfg[obj], "trainable")
    except (AttributeError, KeyError, TypeError, ConfigError):
        return None


def set_trainable_true(network, obj) -> bool:
    """Whether some network's config sets ``trainable = True`` on ``obj`` itself (not by class)."""
    for net in [network, *network.all_networks]:
        try:
            params = net.config[obj]
            if "trainable" in params and params.trainable is True:
                return True
        except (AttributeError, KeyError, TypeError, ConfigError):
            continue
    return False


def trainable_map(network) -> dict:
    """``{obj: bool}`` for every ensemble, ``ens.neurons``, connection and node.

    Resolution, as in NengoDL, first match wins: a value for the object in the
    config of the innermost enclosing network that has one (an explicit
    instance value, a class value such as ``config[nengo.Ensemble].trainable``,
    or the default given to ``configure_settings``), then (nhw extension) a
    ``trainable`` value set for an enclosing sub-network in its parent's
    config, then True. ``ens.neurons`` (the biases) that nothing configures
    follow their ensemble, so ``trainable=False`` on an ensemble, instance or
    class, freezes its encoders and its biases; a value given for the neurons
    themselves (``config[ens.neurons]`` or ``config[nengo.ensemble.Neurons]``,
    the latter also set by ``configure_settings(trainable=True/False)``) takes
    precedence.
    """
    out: dict = {}

    def visit(net, chain):
        chain = chain + [net]
        net_flag = None
        for parent, child in zip(chain[:-1], chain[1:]):
            v = _explicit(parent.config, child)
            if v is not None:
                net_flag = v

        def configured(obj):
            for n in reversed(chain):
                flag = _explicit(n.config, obj)
                if flag is not None:
                    return bool(flag)
            return None

        for obj in list(net.ensembles) + list(net.connections) + list(net.nodes):
            flag = configured(obj)
            if flag is None:
                flag = net_flag
            out[obj] = True if flag is None else bool(flag)
        for ens in net.ensembles:
            flag = configured(ens.neurons)
            out[ens.neurons] = out[ens] if flag is None else flag
        for sub in net.networks:
            visit(sub, chain)

    if network is not None:
        visit(network, [])
    return out
