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
keep their scale, as the course trains them. Inputs that look like 8-bit pixels (whole numbers
in 0..255, at least PIXEL_COLUMNS of them: MNIST's 0-255, scikit-learn's digits' 0-16) share
one unit, so they are standardised as one: minus the mean of every pixel of every training
image, over their standard deviation. Standardising each pixel alone divides an edge pixel,
dark in all but a few training images, by a tiny spread, so a stroke there in a new image
reaches tens of units (2.3 points lost held-out on MNIST); centring them, rather than keeping
0..1, gains on the 8x8 digits (docs/your-data.md has both). Regression targets are always
standardised by default. Asking for a scaler by name applies it whatever the data hold.
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


def _pixels(a: np.ndarray):
    """One mean and standard deviation for every column: pixels keep their relative brightness."""
    mean, spread = (a.mean(), a.std()) if a.size else (0.0, 0.0)
    return np.full(a.shape[1:], mean), np.full(a.shape[1:], spread if spread > 0 else 1.0)


SCALERS = {  # name -> (shift, scale) per column of the training data, or None: left as it is
    "standard": _standard,  # (x - mean) / std: the default for inputs not images, and for targets
    "minmax": _minmax,  # (x - min) / (max - min) per column: onto [0, 1]
    "pixels": _pixels,  # (x - mean) / std over all columns at once: the default for 8-bit images
    "none": None,  # as given
}
PIXEL_COLUMNS = 64  # the fewest inputs read as an image by default: 8x8, scikit-learn's digits
DEFAULT = ("none if every input lies in [0, 1], pixels for 8-bit images (whole numbers in 0..255, "
           f"{PIXEL_COLUMNS}+ columns), else standard; regression targets standard")


def check_scale(name: str | None) -> str | None:
    return None if name is None else choose(name, SCALERS, "scale", DataError)


def fit_scaling(scale: str | None, X, y, regression: bool) -> Scaling:
    """The scaling `scale` asks for, fitted on the training data (X, y)."""
    X = np.asarray(X)
    inputs = scale or _default_inputs(X)
    targets = (scale or "standard") if regression else "none"
    x_shift, x_scale = _fit(inputs, X)
    y_shift, y_scale = _fit(targets, np.asarray(y).reshape(len(y), -1))
    return Scaling(inputs, targets, x_shift, x_scale, y_shift, y_scale)


def _default_inputs(X: np.ndarray) -> str:
    if X.size == 0:
        return "standard"
    low, high = X.min(), X.max()
    if low >= 0 and high <= 1:
        return "none"
    if X[0].size >= PIXEL_COLUMNS and low >= 0 and high <= 255 and _whole(X):
        return "pixels"
    return "standard"


def _whole(X: np.ndarray) -> bool:
    """Every value a whole number (checked a block of rows at a time, so no copy of X is made whole)."""
    if X.dtype.kind in "iub":
        return True
    return all(bool(np.all(np.mod(X[i:i + 4096], 1) == 0)) for i in range(0, len(X), 4096))


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
    said = {"none": "kept as given", "standard": "standardised (mean 0, std 1)", "minmax": "scaled onto [0, 1]",
            "pixels": "standardised as pixels (one mean and std for all columns)"}
    line = f"scale: inputs {said[scaling.inputs]}"
    if scaling.inputs == "none" and not asked:
        line += " (every value is in [0, 1], as image pixels are)"
    if scaling.inputs == "pixels" and not asked:
        line += f" (whole numbers 0-255 in {PIXEL_COLUMNS}+ columns, as 8-bit images hold)"
    if regression:
        line += f", targets {said[scaling.targets]}"
    return line + "; the model keeps this and applies it to raw inputs when it predicts"
