"""`nhw train` scores every test item, though the simulator runs whole minibatches."""

from types import SimpleNamespace

import numpy as np
import pytest

from nhw.toolchain.train import _spiking_accuracy, epoch_order


class _Sim:
    """Runs whole minibatches only; item i's output favours class ``x[i, 0, 0]``."""

    def __init__(self, mb):
        self.minibatch_size = mb

    def predict(self, data):
        (x,), mb = data.values(), self.minibatch_size
        assert len(x) % mb == 0, "the simulator runs whole minibatches"
        out = np.zeros((len(x), x.shape[1], 10))
        out[np.arange(len(x)), :, x[:, 0, 0].astype(int)] = 1.0
        return {"probe": out}


@pytest.mark.parametrize("n, mb", [(449, 32), (449, 500), (64, 32), (5, 8)])
def test_every_test_item_is_scored(n, mb):
    rng = np.random.RandomState(n)
    classes = rng.randint(10, size=n)
    labels = np.where(rng.rand(n) < 0.3, (classes + 1) % 10, classes)  # 30 % wrong
    built = SimpleNamespace(inputs={"feed": "feed"}, probes={"p": "probe"})
    cfg = SimpleNamespace(deploy=SimpleNamespace(presentation_time=0.01, dt=0.001))
    acc = _spiking_accuracy(_Sim(mb), built, cfg, {"feed": classes[:, None, None].astype(float)}, labels, "p")
    assert acc == np.mean(classes == labels)  # over all n items, none left out


def test_each_epoch_leaves_out_a_different_remainder():
    """An epoch takes whole minibatches of a fresh permutation of all training items."""
    n_all, n_tr = 1348, 1344
    left_out = [set(range(n_all)) - set(epoch_order(0, e, n_all)[:n_tr]) for e in range(4)]
    assert all(len(s) == n_all - n_tr for s in left_out)
    assert len(set.union(*left_out)) > n_all - n_tr  # not always the same items
