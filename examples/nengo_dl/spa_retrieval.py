"""NengoDL notebook "Optimizing a cognitive model", with ``import nhw.dl as nengo_dl``.

A circular-convolution network unbinds a cued filler from a trace of role/filler
pairs (semantic pointers). The untrained NEF network's retrieval accuracy is
measured in one ``sim.step(data=...)``, then its parameters are trained with
``sim.fit`` and the accuracy measured again.

The notebook builds its vocabulary with ``nengo.spa``, which nengo 3 removed;
``nengo_spa.Vocabulary`` (nengo-spa 2, which works with nengo 4.1) takes its place,
with ``strict=False`` so that ``parse`` creates unknown pointers as nengo.spa did:
the same random unit vectors, ``parse`` of bound sums, ``normalized`` pointers.

    python examples/nengo_dl/spa_retrieval.py [--quick] [--out DIR]
"""

import nengo
import nengo_spa as spa
import numpy as np
from _notebook import parse_args  # first: loads TensorFlow quietly
import tensorflow as tf

import nhw.dl as nengo_dl  # was: import nengo_dl

args = parse_args(__doc__)


def get_data(n_items, pairs_per_item, vec_d, vocab_seed):
    """Traces (sums of bound role/filler pairs), cues (one role) and targets (its filler)."""
    rng = np.random.RandomState(vocab_seed)
    vocab = spa.Vocabulary(dimensions=vec_d, pointer_gen=rng, max_similarity=1, strict=False)
    traces = np.zeros((n_items, 1, vec_d))
    cues = np.zeros((n_items, 1, vec_d))
    targets = np.zeros((n_items, 1, vec_d))
    for n in range(n_items):
        roles = [f"ROLE_{n}_{i}" for i in range(pairs_per_item)]
        fillers = [f"FILLER_{n}_{i}" for i in range(pairs_per_item)]
        trace = vocab.parse("+".join(f"{r}*{f}" for r, f in zip(roles, fillers))).normalized()
        vocab.add(f"TRACE_{n}", trace)
        cue_idx = rng.randint(pairs_per_item)
        traces[n, 0] = vocab[f"TRACE_{n}"].v
        cues[n, 0] = vocab[roles[cue_idx]].v
        targets[n, 0] = vocab[fillers[cue_idx]].v
    return traces, cues, targets, vocab


seed = 0
dims = 32
minibatch_size = 50
n_pairs = 2

with nengo.Network(seed=seed) as net:
    net.config[nengo.Ensemble].neuron_type = nengo.RectifiedLinear()
    net.config[nengo.Connection].synapse = None
    trace_inp = nengo.Node(np.zeros(dims))
    cue_inp = nengo.Node(np.zeros(dims))
    # trace (*) inverse(cue): the cue's filler, plus noise from the other pairs
    cconv = nengo.networks.CircularConvolution(5, dims, invert_b=True)
    nengo.Connection(trace_inp, cconv.input_a)
    nengo.Connection(cue_inp, cconv.input_b)
    out = nengo.Probe(cconv.output)


def accuracy(output, vocab, targets, t_step=-1):
    """Share of outputs whose most similar vocabulary vector is the target."""
    output = output[:, t_step, :]
    idxs = np.argmax(np.dot(vocab.vectors, output.T), axis=0)
    return np.mean(np.all(vocab.vectors[idxs] == targets[:, 0], axis=1))


test_traces, test_cues, test_targets, test_vocab = get_data(minibatch_size, n_pairs, dims, vocab_seed=seed)
test_inputs = {trace_inp: test_traces, cue_inp: test_cues}

with nengo_dl.Simulator(net, minibatch_size=minibatch_size) as sim:
    sim.step(data=test_inputs)
before = accuracy(sim.data[out], test_vocab, test_targets)
print("Retrieval accuracy:", before)

sim = nengo_dl.Simulator(net, minibatch_size=minibatch_size, seed=seed)
train_traces, train_cues, train_targets, _ = get_data(
    n_items=1000 if args.quick else 5000, pairs_per_item=n_pairs, vec_d=dims, vocab_seed=seed + 1)
sim.compile(optimizer=tf.optimizers.RMSprop(2e-3), loss=tf.losses.mse)
sim.fit({trace_inp: train_traces, cue_inp: train_cues}, {out: train_targets},
        # the notebook trains 100 epochs; 20 here keep the full run to minutes on a CPU
        epochs=20, verbose=0)
sim.save_params(str(args.out / "spa_retrieval_params"))
sim.load_params(str(args.out / "spa_retrieval_params"))

sim.step(data=test_inputs)
after = accuracy(sim.data[out], test_vocab, test_targets)
print("Retrieval accuracy:", after)
sim.close()
print(f"retrieval accuracy {after:.2f} (before training {before:.2f})")
