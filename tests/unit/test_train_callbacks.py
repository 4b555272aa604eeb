"""train.callbacks / validation_split, epoch by epoch (no TensorFlow)."""

import numpy as np
import pytest

from nhw.errors import ConfigError
from nhw.toolchain import train_callbacks as tcb
from nhw.toolchain.config import from_dict
from nhw.toolchain.config.schema import EarlyStoppingSection, LRScheduleSection


def test_learning_rate_schedules():
    step = LRScheduleSection(name="step", factor=0.5, every=2)
    assert [tcb.learning_rate(step, 1.0, e, 6) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    exp = LRScheduleSection(name="exponential", factor=0.9)
    assert tcb.learning_rate(exp, 1.0, 3, 6) == pytest.approx(0.729)
    cos = LRScheduleSection(name="cosine", min_lr=0.1)
    assert tcb.learning_rate(cos, 1.0, 0, 5) == pytest.approx(1.0)
    assert tcb.learning_rate(cos, 1.0, 4, 5) == pytest.approx(0.1)
    assert tcb.learning_rate(None, 0.3, 7, 9) == 0.3


def test_early_stopping_from_history_alone():
    es = tcb.EarlyStopping(EarlyStoppingSection(monitor="val_acc", patience=2), "c.yaml")
    h = {"val_acc": [0.5, 0.7, 0.69]}
    assert es.best_epoch(h) == 1 and not es.should_stop(h)
    h["val_acc"].append(0.7)  # a tie is no improvement: two epochs without one, as Keras counts
    assert es.best_epoch(h) == 1 and es.should_stop(h)
    loss = tcb.EarlyStopping(EarlyStoppingSection(monitor="loss", patience=1, min_delta=0.1), "c.yaml")
    assert loss.best_epoch({"loss": [1.0, 0.95, 0.8]}) == 2  # 0.95 is within min_delta
    assert loss.best_epoch({}) is None
    with pytest.raises(ConfigError, match="'loss' is not in the training history; known: acc"):
        loss.best_epoch({"acc": [1.0]})


def test_validation_split_holds_out_whole_minibatches_of_the_training_data():
    x = {"in": np.arange(100)[:, None]}
    y = {"out": np.arange(100)[:, None]}
    xt, yt, xv, yv, n = tcb.validation_split(x, y, 0.2, 8)
    assert n == 16 and len(xt["in"]) == 80 and len(xv["in"]) == 16
    assert not set(xt["in"].ravel()) & set(xv["in"].ravel())
    with pytest.raises(ConfigError, match="less than one minibatch"):
        tcb.validation_split(x, y, 0.01, 8)


def test_history_csv():
    text = tcb.history_csv({"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]})
    assert text == "epoch,loss,val_loss\n1,2,2.5\n2,1,1.5\n"


def test_monitoring_validation_values_needs_a_validation_split():
    cfg = {"network": {"name": "digits_classifier"}, "data": {"name": "digits"},
           "train": {"loss": {"logits": "sparse_categorical_crossentropy"},
                     "callbacks": {"early_stopping": {"monitor": "val_loss"}}}}
    with pytest.raises(ConfigError, match="needs validation data; expected validation_split > 0"):
        from_dict(cfg)
    cfg["train"]["validation_split"] = 0.1
    assert from_dict(cfg).train.callbacks.early_stopping.patience == 3
