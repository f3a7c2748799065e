"""Checking a data set against a network and turning labels into training targets.

Bad data caught here costs one line; caught by numpy deep inside a matrix product it costs
a traceback the user cannot read, or worse, a silent wrong answer (a label 26 in a
26-class problem would simply never be predicted).
"""

from __future__ import annotations

import numpy as np

from xpnet.model import Network
from xpnet.model.inputs import check_inputs
from xpnet.train.data import DataError


def is_classification(net: Network, y: np.ndarray) -> bool:
    """Integer labels mean classes; float targets mean regression."""
    return np.asarray(y).dtype.kind in "iub"


def check_data(net: Network, X, y, what: str = "data", read_inputs: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Host (X, y) validated for `net`: same length, non-empty, finite, right width and labels.
    `read_inputs=False`: X is a memory-mapped file whose values were checked as it was written."""
    y = np.asarray(y)
    X = check_inputs(X, net.sizes[0], what, DataError, read=read_inputs)
    if X.shape[0] != y.shape[0]:
        raise DataError(f"{what}: X has {X.shape[0]} samples but y has {y.shape[0]}; they must match")
    check_targets_fit_loss(net.loss, y, what)
    if net.loss == "cross_entropy" and net.sizes[-1] < 2:
        raise DataError(f"{what}: cross_entropy over a single output is always 0, so nothing would be learnt; "
                        "a classifier needs at least two classes")
    if y.dtype.kind == "f":
        return X, _check_regression(net, y, what)
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise DataError(f"{what}: y must be 1-D integer class labels or float targets, got {y.dtype} {y.shape}")
    n_classes = net.sizes[-1]
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(f"{what}: labels must be in 0..{n_classes - 1} for this {n_classes}-output "
                        f"network, found {y.min()}..{y.max()}")
    return X, y


def check_targets_fit_loss(loss: str, y, what: str = "data") -> None:
    """Float y means regression; cross-entropy over one output is 0 whatever the network does,
    so float class labels would train "successfully" and learn nothing."""
    y = np.asarray(y)
    if loss == "cross_entropy" and y.dtype.kind == "f" and (y.ndim == 1 or y.shape[1] == 1):
        raise DataError(f"{what}: y holds floats, which xpnet reads as regression targets, but the "
                        "cross_entropy loss needs integer class labels: save y as integers for classes, "
                        "or use --loss quadratic (the default for float targets) for regression")


def _check_regression(net: Network, y: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(y)):
        raise DataError(f"{what}: targets contain NaN or inf; clean them")
    y = y.reshape(len(y), -1)
    if y.shape[1] != net.sizes[-1]:
        raise DataError(f"{what}: targets have width {y.shape[1]} but the network outputs {net.sizes[-1]}")
    return y


def targets_for(net: Network, y: np.ndarray) -> np.ndarray:
    """Float targets on the host: one-hot rows for labels, the values themselves otherwise."""
    if y.dtype.kind == "f":
        return y.reshape(len(y), -1)
    return np.eye(net.sizes[-1], dtype=np.float64)[y]
