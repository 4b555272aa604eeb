"""NengoDL notebook "Coming from Nengo to NengoDL", with ``import nhw.dl as nengo_dl``.

A sin(x^2) network of two 20-neuron ensembles runs in nengo's simulator and in
``nengo_dl.Simulator``; then batched runs (``minibatch_size``), input data fed through
``run(data=...)``, training of the ensembles' encoders and biases with
``sim.compile``/``sim.fit`` on single-step data, the test error before and after that
training, and a ``TensorNode`` next to a plain ``Node``.

    python examples/nengo_dl/from_nengo.py [--quick] [--out DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nengo
import numpy as np
from _notebook import parse_args, savefig  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)
seed = 0
np.random.seed(seed)

# --- the network: x -> x^2 -> sin(x^2)
with nengo.Network(seed=seed) as net:
    inpt = nengo.Node(nengo.processes.WhiteSignal(1, 5, rms=0.3))
    square = nengo.Ensemble(20, 1)
    sin = nengo.Ensemble(20, 1)
    outpt = nengo.Node(size_in=1)
    nengo.Connection(inpt, square)
    nengo.Connection(square, sin, function=np.square)
    nengo.Connection(sin, outpt, function=np.sin)
    inpt_p = nengo.Probe(inpt)
    outpt_p = nengo.Probe(outpt, synapse=0.01)


def plot(plot_sim, ax=None, idx=slice(None)):
    """Input, the ideal sin(x^2) and the network's output on one axis."""
    if ax is None:
        ax = plt.figure().gca()
    x = plot_sim.data[inpt_p][idx]
    ax.plot(plot_sim.trange(), x, label="x")
    ax.plot(plot_sim.trange(), np.sin(x**2), label="sin(x^2)")
    ax.plot(plot_sim.trange(), plot_sim.data[outpt_p][idx], label="output")
    ax.legend()
    return ax.figure


def rmse(plot_sim, idx=slice(None)):
    """Root-mean-square distance of the output from sin(x^2) over the run."""
    x = plot_sim.data[inpt_p][idx]
    return float(np.sqrt(np.mean((plot_sim.data[outpt_p][idx] - np.sin(x**2)) ** 2)))


# --- the same network in nengo and in NengoDL
with nengo.Simulator(net, seed=seed, progress_bar=False) as sim:
    sim.run(1.0)
nengo_out = sim.data[outpt_p].copy()
savefig(plot(sim), args.out, "from_nengo_nengo.png")

with nengo_dl.Simulator(net, seed=seed) as sim:
    sim.run(1.0)
savefig(plot(sim), args.out, "from_nengo_nengo_dl.png")
print(f"nengo vs nengo_dl output: max difference {np.max(np.abs(sim.data[outpt_p] - nengo_out)):.2g}")

# --- several runs at once: minibatch_size gives each batch element its own noise
reps = 3
with nengo_dl.Simulator(net, minibatch_size=reps) as sim:
    sim.run(1.0)
print("batched output shape:", sim.data[outpt_p].shape)
batch_inputs = sim.data[inpt_p]
print("batch elements differ:", not np.allclose(batch_inputs[0], batch_inputs[1]))

# --- feeding input data instead of the Node's own output
with nengo_dl.Simulator(net) as sim:
    sim.run(1.0, data={inpt: np.reshape(np.linspace(-1, 1, 1000), (1, 1000, 1))})
print(f"ramp input: output rmse from sin(x^2) {rmse(sim):.3f}")

with nengo_dl.Simulator(net, minibatch_size=reps) as sim:
    sim.run(1.0, data={inpt: (np.linspace(0.5, 1, reps)[:, None, None]
                              * np.linspace(-1, 1, 1000)[None, :, None])})
fig, axes = plt.subplots(1, reps, figsize=(15, 4))
for i in range(reps):
    plot(sim, ax=axes[i], idx=i)
savefig(fig, args.out, "from_nengo_batched_data.png")

# --- optimizing: no internal synapses, so one time step is one input -> output pass
for conn in net.all_connections:
    conn.synapse = None
with net:
    outpt_p_nofilt = nengo.Probe(outpt)
outpt_p.synapse = 0.04

with net:
    # train only the ensembles' encoders and biases
    nengo_dl.configure_settings(trainable=False)
    net.config[nengo.Ensemble].trainable = True

# the notebook's training set and epochs (fewer epochs in the quick form)
batch_size = 4096
epochs = 10 if args.quick else 25
minibatch_size = 32
vals = np.random.uniform(-1, 1, size=(batch_size, 1, 1))
inputs = {inpt: vals}
targets = {outpt_p_nofilt: np.sin(vals**2)}

test_steps = 100
test_vals = np.tile(np.random.uniform(-1, 1, size=(256 if args.quick else 1024, 1, 1)),
                    (1, test_steps, 1))
test_inputs = {inpt: test_vals}
test_targets = {outpt_p: np.sin(test_vals**2)}


def test_mse(y_true, y_pred):
    """MSE over the last 10 steps, once the filtered output has settled."""
    return tf.reduce_mean(tf.square(y_pred[:, -10:] - y_true[:, -10:]))


with nengo_dl.Simulator(net, minibatch_size=minibatch_size, seed=seed) as sim:
    sim.compile(loss={outpt_p: test_mse})
    before = sim.evaluate(test_inputs, test_targets, verbose=0)["loss"]
    print("Error before training:", before)

    sim.compile(optimizer=tf.optimizers.Adam(0.01), loss={outpt_p_nofilt: tf.losses.mse})
    sim.fit(inputs, targets, epochs=epochs, verbose=0)

    sim.compile(loss={outpt_p: test_mse})
    after = sim.evaluate(test_inputs, test_targets, verbose=0)["loss"]
    print("Error after training:", after)

    sim.run(1.0)
    savefig(plot(sim, idx=0), args.out, "from_nengo_trained.png")
print(f"from-nengo test mse {after:.4f} (before training {before:.4f})")

# --- a TensorNode next to a plain Node computing the same function
with net:
    exp_np = nengo.Node(lambda t, x: np.exp(x), size_in=1)
    nengo.Connection(outpt, exp_np)
    np_probe = nengo.Probe(exp_np, synapse=0.01)

    exp_tf = nengo_dl.TensorNode(lambda t, x: tf.exp(x), shape_in=(1,))
    nengo.Connection(outpt, exp_tf)
    tf_probe = nengo.Probe(exp_tf, synapse=0.01)

with nengo_dl.Simulator(net, seed=seed) as sim:
    sim.run(1.0)
diff = np.max(np.abs(sim.data[np_probe] - sim.data[tf_probe]))
print(f"Node vs TensorNode output: max difference {diff:.2g}")
