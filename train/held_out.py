"""What a training job does with the data it does not train on.

Two sets, two jobs. The validation data (the letters' own unseen designs and writers, or
--val-fraction's share of the training rows) is where choices are made: early stopping and
the temperature that calibrates the probabilities. The held-out test set is only watched:
its accuracy, overall and per group, is recorded each epoch and reported at the end, and
nothing is chosen on it, so its figures stay honest.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from xpnet.model import Network
from xpnet.train.config import TrainConfig
from xpnet.train.data import DataSet
from xpnet.train.metrics import group_accuracies

Log = Callable[[str], None]


def job_validation(config: TrainConfig, data: DataSet, held_out, log: Log):
    """(validation data for learn, whether to calibrate on it): the data's own validation split
    (the letters' unseen designs and writers) or --val-fraction's share of the training rows,
    else the held-out set, for the curves alone: a temperature fitted on the test set would make
    its calibration error meaningless."""
    if config.val_fraction:
        return None, True
    if data.X_val is not None:
        return (data.X_val, data.y_val), True
    if data.classes and config.loss == "cross_entropy":
        log("probabilities: not calibrated (no validation data; --val-fraction 0.1 holds back a tenth of the "
            "training samples to fit a temperature on)")
    if config.patience is not None and held_out is not None:
        log("warning: --patience stops on the held-out set, so the test accuracy is measured on the rows that "
            "chose the epoch and flatters the run; --val-fraction 0.1 keeps the two apart")
    return held_out, False


def scoring(save, held_out, groups: list):
    """The on_epoch callback `save`, each epoch's record first gaining the held-out accuracy,
    overall and per group (`test_accuracy`, `test_groups`), so history.json holds every group's
    curve. The test set is only watched: nothing is chosen on it (early stopping and the
    temperature use the validation data)."""
    if held_out is None:
        return save

    def on_epoch(model: Network, record: dict, state) -> None:
        if "test_accuracy" not in record and not model.is_regression:
            X, y = held_out
            pred = model.predict(X)
            record["test_accuracy"] = float(np.mean(pred == y))
            if groups:
                record["test_groups"] = {r["name"]: r["accuracy"] for r in group_accuracies(y, pred, groups)}
        save(model, record, state)

    return on_epoch
