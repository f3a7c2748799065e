"""The course's questions of a trained model: `test(model, x)` answers, `evaluate` scores.

Both take raw data, as the user has it: the model applies the scaling it was trained under
(model/scaling.py), and a regression model answers in the targets' own units.
"""

from __future__ import annotations

import numpy as np

from xpnet.model import Network
from xpnet.train.device_data import DeviceData
from xpnet.train.loop import evaluate_device
from xpnet.train.metrics import regression_metrics
from xpnet.train.scaling import scaled_pair
from xpnet.train.targets import check_data


def evaluate(model: Network, X, y, batch_size: int | None = None) -> dict:
    """Scores of `model` on host data (X, y): the loss (as training measures it, on scaled
    targets), accuracy for class labels, and for regression values mse, rmse, mae and r2
    in the targets' own units."""
    X, y = check_data(model, X, y, "evaluation data")  # raw, before scaling: a wrong width is said as such
    result = evaluate_device(model, DeviceData.from_host(model, *scaled_pair(model, X, y), "evaluation data"),
                             batch_size)
    if y.dtype.kind == "f":
        result.update(regression_metrics(model.predict(X, batch_size), y))
    return result


def test(model: Network, x):
    """The course's `test(model, x)`: the model's answer for x.

    One sample in gives one answer out: a number for the circle model (test(model, 100) is
    the area of a circle of radius 100; [100] too), one 1-D row of the network's width (one
    image's pixels) a class index. A 2-D array of samples, even of one, gives an array:
    class indices for classifiers, values for regression (in the targets' own units); so
    does a 1-D array of several numbers for a one-input network, each number a sample.
    """
    arr = np.asarray(x, dtype=np.float64)
    one = arr.ndim == 0 or (arr.ndim == 1 and arr.shape[0] == model.sizes[0] and
                            (model.sizes[0] > 1 or arr.shape[0] == 1))
    out = model.predict(arr.reshape(1, -1) if one else arr)
    if out.ndim == 2 and out.shape[1] == 1:  # one output: a value per sample, not a row
        out = out[:, 0]
    if not one:
        return out
    return out[0].item() if out.ndim == 1 else out[0]


test.__test__ = False  # pytest: `from xpnet import test` in a test file is not itself a test
