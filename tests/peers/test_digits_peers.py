"""The trained digits classifier exported by nhw, classified by snnTorch, Norse and Sinabs.

Done-when of the peer tier: the peers' test accuracy within 1 percentage point of
nhw's own spiking accuracy, compared like for like: the same 449 test digits, the same
``dt`` (1e-4 s, snnTorch's fixed step; Norse and Sinabs get the same), 30 ms per digit, and
each digit started from a zero state on both sides.  nhw's side is the same file read
back with ``--from PEER`` and run by nengo (``nhw deploy``'s reference simulator), reset
before every digit.  Two decisions are scored on both sides: the argmax of the readout
summed over the presentation, and ``nhw deploy``'s rule (argmax of the output filtered by
the exported probe synapse, averaged over the last 20 % of the presentation).

Why a fresh state per digit and not ``nhw deploy``'s back-to-back presentation: nengo's
``SpikingRectifiedLinear`` ignores negative input (its voltage never drops below 0), NIR's
``IF`` and every peer's neuron do not, and a NIR file cannot carry that bound (the
export lists the ensemble in ``metadata["nhw_unclamped"]``).  Shown digits back to back,
a peer's hidden neurons that an earlier digit inhibited start the next digit below zero;
from a zero state with a constant input the bound never acts, so both sides run the same
dynamics.  ``nhw deploy``'s back-to-back number is printed next to the compared ones
(docs/nir.md lists the peers' back-to-back numbers).
"""

import json
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _peerlib  # noqa: E402

_peerlib.require()
import nengo  # noqa: E402
from nhw.toolchain.cli import main  # noqa: E402
from nhw.toolchain.data import digits  # noqa: E402
from nhw.toolchain.deploy import decisions  # noqa: E402
from nhw.toolchain.nir.importer import import_nir  # noqa: E402
from nhw.toolchain.nir.profiles import from_profile  # noqa: E402

PRESENT = 0.03
#: both peers at snnTorch's fixed step: Norse at nhw's default 1 ms resets to zero after
#: a spike where nengo subtracts the threshold, losing up to ``J * dt`` of voltage per spike
DT = 1e-4
EPOCHS = 10


def _cli(*args):
    out = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out.output


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    _cli("train", "configs/digits.yaml", "--out", root / "run", "--set", f"train.epochs={EPOCHS}")
    _cli("deploy", root / "run", "--target", "reference", "--out", root / "deploy", "--set", f"deploy.dt={DT}")
    summary = json.loads((root / "deploy" / "summary.json").read_text())
    return root, summary["metrics"]["output_accuracy"]


def _accuracies(steps: np.ndarray, labels: np.ndarray, tau: float) -> tuple[float, float]:
    """(summed-readout accuracy, ``nhw deploy``-rule accuracy) of per-step readouts
    ``steps`` shaped ``(items, steps per item, classes)``, each item filtered from 0."""
    summed = steps.sum(1).argmax(1)
    filtered = nengo.Lowpass(tau).filt(steps, dt=DT, axis=1)
    n, per = steps.shape[:2]
    deploy_rule = decisions(filtered.reshape(n * per, -1), n, per)
    return float(np.mean(summed == labels)), float(np.mean(deploy_rule == labels))


def _nhw_steps(graph: nir.NIRGraph, peer: str, x: np.ndarray, per: int) -> np.ndarray:
    """nengo on the file read back with ``--from peer``: each item from a zero state."""
    imported = import_nir(from_profile(graph, peer))
    current = {"x": x[0]}
    imported.inputs["input"].output = lambda t: current["x"]
    readout = next(a for a, b in graph.edges if b == "output")
    with imported.network:  # the readout before the restored probe filter, like the peer's output
        probe = nengo.Probe(imported.objects[readout], synapse=None)
    steps = []
    with nengo.Simulator(imported.network, dt=DT, progress_bar=False) as sim:
        for item in x:
            sim.reset()  # zero voltages: the read-back file carries no initial voltages
            current["x"] = item
            sim.run_steps(per)
            steps.append(sim.data[probe])
    return np.stack(steps)


@pytest.mark.parametrize("peer", ["snntorch", "norse", "sinabs"])
def test_peer_classifies_like_nhw(trained, peer):
    if peer == "sinabs":
        pytest.importorskip("sinabs", reason=f"sinabs is installed by {_peerlib.INSTALL}")
    root, deploy_accuracy = trained
    f = root / f"digits_{peer}.nir"
    _cli("export", root / "run", "--for", peer, "-o", f, "--set", f"deploy.dt={DT}")
    graph = nir.read(str(f))
    assert float(graph.metadata["peer_dt"]) == DT
    tau = float(graph.nodes["output"].metadata["nhw_probe_taus"][0])
    ds = digits(seed=0, test_fraction=0.25)
    per = round(PRESENT / DT)
    mod = _peerlib.module(peer, _peerlib.only(graph, "output"), DT, batch_size=len(ds.x_test))
    theirs = _accuracies(_peerlib.steps(peer, mod, ds.x_test, per), ds.y_test, tau)
    ours = _accuracies(_nhw_steps(graph, peer, ds.x_test, per), ds.y_test, tau)
    print(f"{peer} (summed, deploy rule): {theirs}; nhw fresh per digit {ours}; "
          f"nhw deploy back to back {deploy_accuracy:.4f}; "
          f"{len(ds.y_test)} test digits")
    assert ours[0] > 0.85
    assert np.allclose(theirs, ours, atol=0.01), (theirs, ours)
