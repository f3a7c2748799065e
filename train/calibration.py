"""Calibrated probabilities: one temperature, fitted on validation data, that makes a stated
90% right about nine times in ten.

A network trained with cross-entropy states probabilities that are too sure of themselves,
most of all on pictures unlike its training data. Temperature scaling (Guo et al., "On
Calibration of Modern Neural Networks", 2017) divides every logit by one number T before the
softmax: T > 1 softens the answers, T < 1 sharpens them, and since the order of the logits is
kept the answers themselves never change. T is the value that minimises the cross-entropy on
validation data the network did not train on; it must never be fitted on the test set, whose
calibration error it is then judged by.
"""

from __future__ import annotations

import numpy as np

from xpnet.model import Network
from xpnet.model.layer import eval_rows
from xpnet.train.device_data import DeviceData

BOUNDS = (0.05, 20.0)  # the temperatures searched: far past any a trained network needs
STEPS = 60  # golden-section steps: the interval shrinks to 1e-12 of its width
UNSURE_BELOW = 0.5  # `predict` calls an answer unsure when its calibrated probability is under this


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in BOUNDS that minimises the mean cross-entropy of softmax(logits / T).

    The loss is convex in 1/T (a log-sum-exp of terms linear in it, minus one of them), so a
    golden-section search over 1/T finds its one minimum without derivatives."""
    z, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)

    def loss(beta: float) -> float:
        return _cross_entropy(z, labels, 1 / beta)

    lo, hi = 1 / BOUNDS[1], 1 / BOUNDS[0]
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(STEPS):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(1 / ((lo + hi) / 2))


def raw_outputs(model: Network, data: DeviceData, batch_size: int | None = None) -> np.ndarray:
    """The network's logits for a device data set, on the host, in float64."""
    batch_size = batch_size or eval_rows(model.layers, model.backend)
    parts = [model.backend.to_numpy(model.forward(data.rows(first, first + batch_size)[0]))
             for first in range(0, data.n, batch_size)]
    return np.concatenate(parts).astype(np.float64)


def calibrate(model: Network, validation: DeviceData, log) -> float:
    """Fit the model's temperature on validation data (as the network sees it: scaled, on the
    device) and say what it did to the validation loss; returns the temperature."""
    logits = raw_outputs(model, validation)
    labels = model.backend.to_numpy(validation.labels_in(None)).astype(np.int64)
    if np.all(logits.argmax(axis=1) == labels):
        # No temperature fits: the loss only falls as the answers sharpen, so the search would
        # end at its bound and make every later answer 20 times surer for no gain.
        model.temperature = 1.0
        if log is not None:
            log(f"calibration: temperature kept at 1: every one of the {validation.n} validation samples is "
                "answered right, so they cannot say how sure to be (a larger validation set can)")
        return model.temperature
    before = _cross_entropy(logits, labels, 1.0)
    model.temperature = fit_temperature(logits, labels)
    after = _cross_entropy(logits, labels, model.temperature)
    if log is not None:
        log(f"calibration: temperature {model.temperature:.3f} fitted on {validation.n} validation samples "
            f"(their loss {before:.4f} -> {after:.4f}; answers unchanged, probabilities "
            f"{'softened' if model.temperature > 1 else 'sharpened'})")
    return model.temperature


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels]))
