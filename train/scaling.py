"""Fitting the input and target scaling on the training data (`--scale`, `learn(scale=)`).

Gradient descent on raw features of very different sizes (an area of 50-300 beside a price of
1e5-1e6) needs a rate small enough for the largest, at which the rest barely move, and
usually diverges first. Standardising each feature (minus its mean, over its standard
deviation, both of the training data) puts every one near [-1, 1]; regression targets get the
same, so the quadratic loss starts near 1 whatever the units. The numbers are kept on the
network (model/scaling.py) and go into its checkpoint, so `predict`, `test`, `evaluate` and
`xpnet predict` take raw inputs and answer in raw units.

By default (scale None): inputs are standardised unless every value already lies in [0, 1],
which is how xpnet's image sources (letters, IDX, folders) and most image data come: those
keep their scale, as the course trains them. Regression targets are always standardised by
default. Asking for a scaler by name applies it whatever the data hold.
"""

from __future__ import annotations

import numpy as np

from xpnet.backends.errors import choose
from xpnet.model.scaling import Scaling
from xpnet.train.data import DataError


def _standard(a: np.ndarray):
    """Mean and standard deviation per column (a constant column is shifted, not stretched)."""
    spread = a.std(axis=0)
    return a.mean(axis=0), np.where(spread > 0, spread, 1.0)


def _minmax(a: np.ndarray):
    """Each column onto [0, 1] (a constant column onto 0)."""
    low, span = a.min(axis=0), np.ptp(a, axis=0)
    return low, np.where(span > 0, span, 1.0)


SCALERS = {  # name -> (shift, scale) per column of the training data, or None: left as it is
    "standard": _standard,  # (x - mean) / std: the default for inputs not already in [0, 1], and for targets
    "minmax": _minmax,  # (x - min) / (max - min): onto [0, 1]
    "none": None,  # as given
}
DEFAULT = "standard unless every input lies in [0, 1] (images); regression targets standard"


def check_scale(name: str | None) -> str | None:
    return None if name is None else choose(name, SCALERS, "scale", DataError)


def fit_scaling(scale: str | None, X, y, regression: bool) -> Scaling:
    """The scaling `scale` asks for, fitted on the training data (X, y)."""
    X = np.asarray(X)
    inputs = scale or ("none" if _in_unit_range(X) else "standard")
    targets = (scale or "standard") if regression else "none"
    x_shift, x_scale = _fit(inputs, X)
    y_shift, y_scale = _fit(targets, np.asarray(y).reshape(len(y), -1))
    return Scaling(inputs, targets, x_shift, x_scale, y_shift, y_scale)


def _in_unit_range(X: np.ndarray) -> bool:
    return X.size > 0 and bool(X.min() >= 0) and bool(X.max() <= 1)


def _fit(name: str, a: np.ndarray):
    if SCALERS[name] is None:
        return None, None
    with np.errstate(over="ignore", invalid="ignore"):  # values near float64's limit: checked below
        shift, scale = SCALERS[name](a.astype(np.float64))
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale))):
        raise DataError(f"the training data's values are too large to {name}-scale (up to {np.abs(a).max():.3g}); "
                        "check the data for a wrong unit or a corrupt row")
    return shift, scale


def scaled_pair(net, X, y):
    """Host (X, y) as `net` trains on them: inputs scaled, regression targets too."""
    s = net.scaling
    if s is None:
        return X, y
    # in float64 whatever X came as (float32 from a file, the compute dtype from an MPI job's
    # mapped file): the same numbers either way, cast to the compute dtype on the device
    if s.x_shift is not None:
        X = (np.asarray(X, np.float64) - s.x_shift) / s.x_scale
    y = np.asarray(y)
    if s.y_shift is not None and y.dtype.kind == "f":
        y = ((y.reshape(len(y), -1).astype(np.float64) - s.y_shift) / s.y_scale).reshape(y.shape)
    return X, y


def describe(scaling: Scaling, regression: bool, asked: bool) -> str | None:
    """The log line saying what was done to the data, and that the model keeps it (None
    where nothing was done: a classifier on images, or scale="none")."""
    if scaling.x_shift is None and scaling.y_shift is None:
        return None
    said = {"none": "kept as given", "standard": "standardised (mean 0, std 1)", "minmax": "scaled onto [0, 1]"}
    line = f"scale: inputs {said[scaling.inputs]}"
    if scaling.inputs == "none" and not asked:
        line += " (every value is in [0, 1], as image pixels are)"
    if regression:
        line += f", targets {said[scaling.targets]}"
    return line + "; the model keeps this and applies it to raw inputs when it predicts"
