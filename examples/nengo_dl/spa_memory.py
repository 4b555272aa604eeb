"""NengoDL notebook "Optimizing a cognitive model with temporal dynamics", with ``import nhw.dl as nengo_dl``.

Two spiking-free (RectifiedLinear) NEF memories trained over time with ``sim.fit``:
first an integrator that has to hold a semantic pointer after a short presentation,
then a role/filler binding memory (circular convolution in, an integrator, circular
correlation with a cue out) trained with ``nengo_dl.losses.nan_mse`` and extra
targets on its intermediate outputs. Each prints its test loss (and the binding
memory its retrieval accuracy) before and after training.

The notebook builds its vocabulary with ``nengo.spa``, which nengo 3 removed;
``nengo_spa.Vocabulary`` (nengo-spa 2, which works with nengo 4.1) takes its place,
with ``strict=False`` so that ``parse`` creates unknown pointers as nengo.spa did.

    python examples/nengo_dl/spa_memory.py [--quick] [--out DIR]
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nengo
import nengo_spa as spa
import numpy as np
from _notebook import parse_args, savefig  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)


def get_memory_data(n_inputs, vec_d, vocab_seed, presentation_time, delay_time, dt=0.001):
    """Pointers shown for ``presentation_time``; the target ramps up to them and holds."""
    int_steps = int(presentation_time / dt)
    n_steps = int_steps + int(delay_time / dt)
    vocab = spa.Vocabulary(dimensions=vec_d, pointer_gen=np.random.RandomState(vocab_seed),
                           max_similarity=1, strict=False)
    inputs = np.zeros((n_inputs, n_steps, vec_d))
    outputs = np.zeros((n_inputs, n_steps, vec_d))
    for n in range(n_inputs):
        name = f"SP_{n}"
        vocab.add(name, vocab.create_pointer())
        inputs[n, :int_steps] = vocab[name].v
        outputs[n] = vocab[name].v
    ramp = np.concatenate((np.arange(int_steps) / int_steps, np.ones(n_steps - int_steps)))
    return inputs, outputs * ramp[None, :, None], vocab


seed = 0
t_int = 0.01  # presentation time
t_mem = 0.04  # time to hold the pointer
dims = 32
n_neurons = 3 * dims
minibatch_size = 32

with nengo.Network(seed=seed) as net:
    net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
    net.config[nengo.Ensemble].gain = nengo.dists.Choice([1])
    net.config[nengo.Ensemble].bias = nengo.dists.Choice([0])
    sp_input = nengo.Node(np.zeros(dims))
    memory = nengo.Ensemble(n_neurons, dims)
    tau = 0.01
    nengo.Connection(sp_input, memory, transform=tau / t_int, synapse=tau)
    nengo.Connection(memory, memory, transform=1, synapse=tau)
    sp_probe = nengo.Probe(sp_input)
    memory_probe = nengo.Probe(memory)

test_inputs, test_targets, test_vocab = get_memory_data(minibatch_size, dims, seed, t_int, t_mem)


def held_similarity(plot_sim):
    """Mean similarity of the memory to its own pointer on the last step."""
    return float(np.mean(np.sum(plot_sim.data[memory_probe][:, -1] * test_targets[:, -1], axis=-1)))


def plot_memory_example(plot_sim, vocab, name):
    """Similarities of input, target and memory to every pointer, for item 0."""
    fig, axes = plt.subplots(3, 1, figsize=(8, 8))
    for ax, data in zip(axes, (test_inputs[0], test_targets[0], plot_sim.data[memory_probe][0])):
        ax.plot(plot_sim.trange(), spa.similarity(data, vocab), color="black", alpha=0.2)
        ax.plot(plot_sim.trange(), spa.similarity(data, vocab["SP_0"].v[None, :]), label="SP_0")
        ax.set_ylim([-0.2, 1.1])
    savefig(fig, args.out, name)


with nengo_dl.Simulator(net, seed=seed, minibatch_size=minibatch_size) as sim:
    sim.run(t_int + t_mem, data={sp_input: test_inputs})
plot_memory_example(sim, test_vocab, "spa_memory_before.png")
print(f"memory: similarity to the held pointer before training {held_similarity(sim):.3f}")

train_inputs, train_targets, _ = get_memory_data(128 if args.quick else 1000, dims, seed, t_int, t_mem)
with nengo_dl.Simulator(net, minibatch_size=minibatch_size, seed=seed) as sim:
    # the notebook's 1e-4 with 100 epochs; fewer epochs here, so a larger step
    sim.compile(optimizer=tf.optimizers.RMSprop(1e-3), loss={memory_probe: tf.losses.mse})
    mem_before = sim.evaluate({sp_input: test_inputs}, {memory_probe: test_targets}, verbose=0)["loss"]
    print("Test loss before:", mem_before)
    sim.fit({sp_input: train_inputs}, {memory_probe: train_targets},
            epochs=3 if args.quick else 20, verbose=0)
    mem_after = sim.evaluate({sp_input: test_inputs}, {memory_probe: test_targets}, verbose=0)["loss"]
    print("Test loss after:", mem_after)
    sim.save_params(str(args.out / "mem_params"))

with nengo_dl.Simulator(net, seed=seed, minibatch_size=minibatch_size) as sim:
    sim.load_params(str(args.out / "mem_params"))
    sim.run(t_int + t_mem, data={sp_input: test_inputs})
plot_memory_example(sim, test_vocab, "spa_memory_after.png")
print(f"memory: similarity to the held pointer after training {held_similarity(sim):.3f}")
print(f"memory test loss {mem_after:.4f} (before training {mem_before:.4f})")


def get_binding_data(n_items, pairs_per_item, vec_d, rng_seed, presentation_time, delay_time, dt=0.001):
    """Role/filler pairs shown one after another, then a cue; the target is its filler
    during the delay (NaN before: any output is fine there)."""
    int_steps = int(presentation_time / dt)
    mem_steps = int(delay_time / dt)
    n_steps = int_steps * pairs_per_item + mem_steps
    rng = np.random.RandomState(rng_seed)
    vocab = spa.Vocabulary(dimensions=vec_d, pointer_gen=rng, max_similarity=1, strict=False)
    roles, fills, cues, binding, output = (np.zeros((n_items, n_steps, vec_d)) for _ in range(5))
    for n in range(n_items):
        role_names = [f"ROLE_{n}_{i}" for i in range(pairs_per_item)]
        filler_names = [f"FILLER_{n}_{i}" for i in range(pairs_per_item)]
        for i in range(pairs_per_item):
            span = slice(i * int_steps, (i + 1) * int_steps)
            roles[n, span] = vocab.parse(role_names[i]).v
            fills[n, span] = vocab.parse(filler_names[i]).v
            binding[n, span] = vocab.parse(f"{role_names[i]}*{filler_names[i]}").v
        cue_idx = rng.randint(pairs_per_item)
        cues[n, -mem_steps:] = vocab[role_names[cue_idx]].v
        output[n, -mem_steps:] = vocab[filler_names[cue_idx]].v
        output[n, :-mem_steps] = np.nan
    mem = np.cumsum(binding, axis=1) * dt / presentation_time
    return roles, fills, cues, binding, mem, output, vocab


t_int = 0.01
t_mem = 0.03
n_pairs = 2
t_run = n_pairs * t_int + t_mem
dims = 32 if args.quick else 64  # the notebook's 64; 32 builds faster for CI
neurons_per_dim = 3
minibatch_size = 32 if args.quick else 64

with nengo.Network(seed=seed) as net:
    net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
    net.config[nengo.Ensemble].gain = nengo.dists.Choice([1])
    net.config[nengo.Ensemble].bias = nengo.dists.Choice([0])
    net.config[nengo.Connection].synapse = None
    role_inp = nengo.Node(np.zeros(dims))
    fill_inp = nengo.Node(np.zeros(dims))
    cue_inp = nengo.Node(np.zeros(dims))
    cconv = nengo.networks.CircularConvolution(neurons_per_dim, dims)
    nengo.Connection(role_inp, cconv.input_a)
    nengo.Connection(fill_inp, cconv.input_b)
    memory = nengo.Ensemble(neurons_per_dim * dims, dims)
    tau = 0.01
    nengo.Connection(cconv.output, memory, transform=tau / t_int, synapse=tau)
    nengo.Connection(memory, memory, transform=1, synapse=tau)
    ccorr = nengo.networks.CircularConvolution(neurons_per_dim, dims, invert_b=True)
    nengo.Connection(memory, ccorr.input_a)
    nengo.Connection(cue_inp, ccorr.input_b)
    conv_probe = nengo.Probe(cconv.output, label="conv_probe")
    memory_probe = nengo.Probe(memory, label="memory_probe")
    output_probe = nengo.Probe(ccorr.output, label="output_probe")


def accuracy(output, vocab, targets, t_step=-1):
    """Share of outputs whose most similar vocabulary vector is the target."""
    output = output[:, t_step, :]
    idxs = np.argmax(np.dot(vocab.vectors, output.T), axis=0)
    return np.mean(np.all(vocab.vectors[idxs] == targets[:, -1], axis=1))


test_roles, test_fills, test_cues, _, _, test_targets, test_vocab = get_binding_data(
    minibatch_size, n_pairs, dims, seed + 1, t_int, t_mem)
test_inputs = {role_inp: test_roles, fill_inp: test_fills, cue_inp: test_cues}

with nengo_dl.Simulator(net, seed=seed, minibatch_size=minibatch_size) as sim:
    sim.run(t_run, data=test_inputs)
acc_before = accuracy(sim.data[output_probe], test_vocab, test_targets)
print("Retrieval accuracy:", acc_before)

(train_roles, train_fills, train_cues, train_binding, train_memory, train_targets, _) = \
    get_binding_data(128 if args.quick else 1000, n_pairs, dims, seed, t_int, t_mem)
train_inputs = {role_inp: train_roles, fill_inp: train_fills, cue_inp: train_cues}
train_targets = {output_probe: train_targets, conv_probe: train_binding, memory_probe: train_memory}

with nengo_dl.Simulator(net, minibatch_size=minibatch_size, seed=seed) as sim:
    sim.compile(loss={output_probe: nengo_dl.losses.nan_mse})
    loss_before = sim.evaluate(test_inputs, {output_probe: test_targets}, verbose=0)["loss"]
    print("Test loss before:", loss_before)
    sim.compile(optimizer=tf.optimizers.RMSprop(1e-3 if args.quick else 3e-4),
                loss=nengo_dl.losses.nan_mse,
                loss_weights={output_probe: 1.0, conv_probe: 0.25, memory_probe: 0.25})
    sim.fit(train_inputs, train_targets, epochs=2 if args.quick else 10, verbose=0)
    sim.compile(loss={output_probe: nengo_dl.losses.nan_mse})
    loss_after = sim.evaluate(test_inputs, {output_probe: test_targets}, verbose=0)["loss"]
    print("Test loss after:", loss_after)
    sim.save_params(str(args.out / "mem_binding_params"))

with nengo_dl.Simulator(net, seed=seed, minibatch_size=minibatch_size) as sim:
    sim.load_params(str(args.out / "mem_binding_params"))
    sim.run(t_run, data=test_inputs)
acc_after = accuracy(sim.data[output_probe], test_vocab, test_targets)
print("Retrieval accuracy:", acc_after)
print(f"binding memory test loss {loss_after:.4f} (before training {loss_before:.4f}); "
      f"retrieval accuracy {acc_after:.2f} (before training {acc_before:.2f})")
