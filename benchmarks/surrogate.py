"""Surrogate-gradient training: nhw's spiking-aware training against snnTorch (issue 29).

The held-out benchmark: a 64-128-10 LIF classifier of scikit-learn's digits, 1400
training images each presented for 30 steps, Adam 1e-3, minibatch 50, cross-entropy of
the time-averaged output spikes; scored by the spiking test accuracy on the remaining
digits (350), after each number of epochs asked for; time per epoch (after the first,
which includes tracing) reported too.

    python -m benchmarks.surrogate --epochs 5,15                       # nhw (defaults)
    python -m benchmarks.surrogate --only nhw --network snntorch_like  # snnTorch's parameterisation
    /path/to/venv-with-torch/bin/python benchmarks/surrogate.py --only snntorch --epochs 5,15

The nhw part is ``tests/conformance/surrogate_digits.py`` (the network and its
defaults: ``fast_sigmoid`` surrogate, input gain matched to snnTorch's membrane).
The snnTorch part runs only where ``torch`` and ``snntorch`` import: two
``nn.Linear`` layers, each followed by ``snn.Leaky`` with ``beta = exp(-dt / tau_rc)``
(the nengo LIF's decay, ``tau_rc = 20 ms``), snnTorch's default surrogate (arctan),
the same split of the same digits (the split below is the nhw part's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS, BATCH, N_TRAIN, DT, TAU_RC = 30, 50, 1400, 0.001, 0.02


def _nhw_part():
    """``tests/conformance/surrogate_digits.py``: the network, its defaults and the data split."""
    here = str(Path(__file__).resolve().parents[1] / "tests" / "conformance")
    if here not in sys.path:
        sys.path.insert(0, here)
    import surrogate_digits

    return surrogate_digits


def digits(n_train: int = N_TRAIN, seed: int = 0):
    """The nhw part's split: shuffled, scaled to [0, 1], whole test minibatches (both tools train on it)."""
    return _nhw_part().digits(n_train, seed)


def run_nhw(epochs: int, seed: int = 0, surrogate: str | None = None, network: str = "gain_matched") -> dict:
    """nhw's spiking-aware training with its defaults (``surrogate=None``: the default surrogate).

    ``network``: one of ``surrogate_digits.NETWORKS`` (how the 64-128-10 network is parameterised).
    """
    r = _nhw_part().run(surrogate, epochs=epochs, seed=seed, network=network)
    return {"tool": "nhw", "surrogate": surrogate or "default", "network": network, "epochs": epochs,
            "accuracy": r["accuracy"],
            "epoch_s": [round(t, 3) for t in r["epoch_s"]]}


def run_snntorch(epochs: int, seed: int = 0, threads: int | None = None) -> dict:
    """The same benchmark in snnTorch (its default arctan surrogate); ``threads``: torch's intra-op threads."""
    import snntorch as snn
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    (xt, yt), (xe, ye) = digits(seed=seed)
    beta = float(np.exp(-DT / TAU_RC))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(64, 128), snn.Leaky(beta=beta)
            self.fc2, self.lif2 = nn.Linear(128, 10), snn.Leaky(beta=beta)

        def forward(self, x):
            m1, m2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            out = []
            cur1 = self.fc1(x)  # the image is a constant input current for every step
            for _ in range(STEPS):
                s1, m1 = self.lif1(cur1, m1)
                s2, m2 = self.lif2(self.fc2(s1), m2)
                out.append(s2)
            return torch.stack(out).mean(0)  # time-averaged output spikes

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.tensor(xt), torch.tensor(yt, dtype=torch.long)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for i in range(0, len(x) // BATCH * BATCH, BATCH):
            idx = perm[i:i + BATCH]
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(round(time.perf_counter() - t0, 3))
    with torch.no_grad():
        pred = net(torch.tensor(xe)).argmax(1).numpy()
    return {"tool": "snntorch", "surrogate": "atan (snntorch default)", "epochs": epochs,
            "accuracy": float(np.mean(pred == ye)), "epoch_s": times, "threads": torch.get_num_threads()}


def _torch_available() -> bool:
    try:
        import snntorch  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


RUNNERS = {"nhw": run_nhw, "snntorch": run_snntorch}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", default="5,15", help="comma-separated epoch counts (one training run each)")
    ap.add_argument("--only", choices=sorted(RUNNERS), help="run one tool (default: nhw, and snnTorch if it imports)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network", default="gain_matched",
                    help="nhw part: gain_matched (default), snntorch_like or nengo_default")
    ap.add_argument("--torch-threads", type=int, help="snnTorch: torch's intra-op threads (default: torch's)")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args(argv)
    tools = [a.only] if a.only else ["nhw"] + (["snntorch"] if _torch_available() else [])
    if not a.only and "snntorch" not in tools:
        print("snntorch/torch do not import here: snnTorch not run", file=sys.stderr)
    results = []
    for tool in tools:
        for e in (int(v) for v in a.epochs.split(",")):
            r = (run_snntorch(e, a.seed, a.torch_threads) if tool == "snntorch"
                 else RUNNERS[tool](e, a.seed, network=a.network))
            later = r["epoch_s"][1:] or r["epoch_s"]
            r["median_epoch_s_after_first"] = round(float(np.median(later)), 3)
            print(json.dumps(r), flush=True)
            results.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
