"""The PES communication-channel network the TensorFlow learning tests share."""

from __future__ import annotations

import nengo
import numpy as np


def pes_net(d: int = 2, n_per_dim: int = 30, rate: float = 1e-3, seed: int = 3, probe_delta: bool = False):
    """``stim -> pre -(PES, from zero)-> post``, error ``post - stim``.

    Returns the network and its probes: ``post`` (filtered decoded output),
    ``weights`` (the learned decoders every 50 ms) and, with ``probe_delta``,
    the learning rule's ``delta``.
    """
    with nengo.Network(seed=seed) as net:
        stim = nengo.Node(lambda t: np.sin(2 * np.pi * t * np.arange(1, d + 1)))
        pre = nengo.Ensemble(n_per_dim * d, d)
        post = nengo.Ensemble(n_per_dim * d, d)
        err = nengo.Node(size_in=d)
        nengo.Connection(stim, pre)
        conn = nengo.Connection(pre, post, function=lambda x: np.zeros(d), learning_rule_type=nengo.PES(rate))
        nengo.Connection(post, err)
        nengo.Connection(stim, err, transform=-1)
        nengo.Connection(err, conn.learning_rule)
        probes = {
            "post": nengo.Probe(post, synapse=0.02),
            "weights": nengo.Probe(conn, "weights", sample_every=0.05),
        }
        if probe_delta:
            probes["delta"] = nengo.Probe(conn.learning_rule, "delta")
    return net, probes
