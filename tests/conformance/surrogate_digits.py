"""The held-out spiking digits benchmark of issue 29 (shared by the surrogate tests).

64-128-10 LIF classifier on scikit-learn's digits: 1400 training images, each
presented for 30 steps, Adam 1e-3, minibatch 50, cross-entropy of the
time-averaged output spikes, trained spiking-aware; scored by the spiking test
accuracy (argmax of the time-averaged output of the LIF output layer).

    python tests/conformance/surrogate_digits.py [--epochs 5] [--surrogates rate,fast_sigmoid,arctan]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import nengo  # noqa: E402
import numpy as np  # noqa: E402

STEPS = 30
BATCH = 50
DT = 0.001
#: input gain 1 / (1 - exp(-dt / tau_rc)): a nengo LIF voltage tends to J, an snnTorch
#: Leaky membrane (mem = beta mem + I) to I / (1 - beta); this gain gives both the same drive
GAIN = float(1.0 / -np.expm1(-DT / 0.02))


def digits(n_train: int = 1400, seed: int = 0):
    """Shuffled digits in [0, 1]: ``(x_train, y_train), (x_test, y_test)``, test = the rest (whole minibatches)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    order = np.random.RandomState(seed).permutation(len(d.target))
    x = (d.data[order] / 16.0).astype("float32")
    y = d.target[order]
    n_test = (len(y) - n_train) // BATCH * BATCH
    return (x[:n_train], y[:n_train]), (x[n_train:n_train + n_test], y[n_train:n_train + n_test])


def _ensembles_gain_matched(gain: float) -> dict:
    """Gain ``gain`` and zero bias on every neuron (the benchmark's network)."""
    return dict(gain=nengo.dists.Choice([gain]), bias=nengo.dists.Choice([0.0]))


#: the 64-128-10 network in three parameterisations (``--network``):
#: ``gain_matched`` (default): Glorot weights, ensemble gain GAIN, biases 0 (trainable, current units);
#: ``snntorch_like``: snnTorch's ``nn.Linear`` parameterisation (weights and biases U(+-1/sqrt(fan_in)),
#: the bias a trainable connection from a constant Node, so it is scaled by the gain as in snnTorch);
#: ``nengo_default``: nengo's default ensembles (max rates U(200, 400), intercepts U(-1, 1)), Glorot weights
NETWORKS = ("gain_matched", "snntorch_like", "nengo_default")


def build(surrogate: str | None, slope: float | None = None, seed: int = 0,
          gain: float = GAIN, network: str = "gain_matched"):
    """64 -> 128 LIF -> 10 LIF; spikes are 0/1 per step (amplitude = dt), as in snnTorch."""
    from nhw.backends.tensorflow import configure_settings, dists

    if network not in NETWORKS:
        raise ValueError(f"network: expected one of {NETWORKS}; got {network!r}")
    settings = dict(training_mode="spiking_aware", surrogate=surrogate, surrogate_slope=slope)
    with nengo.Network(seed=seed) as net:
        configure_settings(**settings)
        net.config[nengo.Connection].synapse = None
        lif = nengo.LIF(amplitude=DT)
        net.inp = nengo.Node(np.zeros(64), label="inp")
        kw = {} if network == "nengo_default" else _ensembles_gain_matched(gain)
        hid = nengo.Ensemble(128, 1, neuron_type=lif, label="hidden", **kw)
        out = nengo.Ensemble(10, 1, neuron_type=lif, label="out", **kw)
        if network == "snntorch_like":
            one = nengo.Node([1.0], label="one")
            for pre, post, fan_in in ((net.inp, hid, 64), (hid.neurons, out, 128)):
                init = nengo.dists.Uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in))
                nengo.Connection(pre, post.neurons, transform=init)
                nengo.Connection(one, post.neurons, transform=init)
        else:
            nengo.Connection(net.inp, hid.neurons, transform=dists.Glorot())
            nengo.Connection(hid.neurons, out.neurons, transform=dists.Glorot())
        net.p = nengo.Probe(out.neurons, label="p")
    return net


def mean_ce(y_true, y_pred):
    """Cross-entropy of the time-averaged output (logits = spikes averaged over the steps)."""
    import keras

    logits = keras.ops.mean(y_pred, axis=1)
    labels = keras.ops.cast(y_true[:, 0, 0], "int32")
    return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def run(surrogate: str | None, slope: float | None = None, epochs: int = 5, n_train: int = 1400,
        seed: int = 0, n_test: int | None = None, gain: float | None = None,
        network: str = "gain_matched") -> dict:
    """Train and score one configuration; returns accuracy and seconds per epoch."""
    import keras

    from nhw.backends.tensorflow import Simulator

    (xt, yt), (xe, ye) = digits(n_train, seed)
    if n_test is not None:
        xe, ye = xe[:n_test], ye[:n_test]
    net = build(surrogate, slope, seed, GAIN if gain is None else gain, network)
    keras.utils.set_random_seed(seed)
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)

    with Simulator(net, minibatch_size=BATCH, progress_bar=False, seed=seed) as sim:
        sim.compile(optimizer=keras.optimizers.Adam(1e-3), loss={net.p: mean_ce})
        x = np.repeat(xt[:, None], STEPS, axis=1)
        y = yt.reshape(-1, 1, 1).astype("float32")
        sim.fit({net.inp: x}, {net.p: np.repeat(y, STEPS, axis=1)}, epochs=epochs, verbose=0,
                callbacks=[Timer()])
        out = sim.predict({net.inp: np.repeat(xe[:, None], STEPS, axis=1)}, stateful=False)[net.p]
        acc = float(np.mean(np.argmax(out.mean(axis=1), axis=-1) == ye))
    return {"surrogate": surrogate, "slope": slope, "network": network, "epochs": epochs, "accuracy": acc,
            "epoch_s": times}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--surrogates", default="rate,fast_sigmoid,arctan")
    ap.add_argument("--gain", type=float, default=GAIN)
    ap.add_argument("--network", choices=NETWORKS, default="gain_matched")
    ap.add_argument("--json")
    a = ap.parse_args()
    res = []
    for name in a.surrogates.split(","):
        r = run(name, epochs=a.epochs, gain=a.gain, network=a.network)
        print(json.dumps(r), flush=True)
        res.append(r)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f)
