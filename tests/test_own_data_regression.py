"""Your own data, trained well by default: regression answered in values, and validation
splits and early stopping that keeps the best epoch."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model import Network
from xpnet.train import evaluate, learn, test
from xpnet.train.data import DataError
from xpnet.train.metrics import regression_metrics
from xpnet.train.prepare import split_validation
from xpnet.train.report import spans_decades


# -- regression ----------------------------------------------------------------------------------

def test_the_apis_default_output_becomes_linear_for_values_and_says_so(numpy32):
    """The issue's case: from_sizes([2, 32, 32, 1], loss="quadratic") predicted 1.0 for
    everything (a sigmoid output); negative targets need a linear one too."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (1000, 2))
    y = 5 * X[:, 0] - X[:, 1] ** 2 - 4  # -22..11
    net = Network.from_sizes([2, 32, 32, 1], numpy32, loss="quadratic")
    assert net.activations[-1] == "sigmoid"  # the course's classifier, until values arrive
    lines = []
    learn(net, (X, y), epochs=20, optimizer="adam", log=lines.append)
    assert net.activations == ["sigmoid", "sigmoid", "identity"]
    assert lines[0].startswith("regression (float targets): the output layer is identity")
    answers = net.predict(X)
    assert answers.min() < -10 and answers.max() > 5
    assert evaluate(net, X, y)["r2"] > 0.8


@pytest.mark.parametrize("output", ["sigmoid", "relu", "tanh"])
def test_a_capped_output_asked_for_values_is_refused_naming_output(numpy32, output):
    net = Network.from_sizes([2, 4, 1], numpy32, loss="quadratic", output=output)
    with pytest.raises(DataError) as info:
        learn(net, (np.zeros((8, 2)), np.linspace(-1, 1, 8)), epochs=1, log=None)
    assert 'output="identity"' in str(info.value) and output in str(info.value)


def test_a_regression_network_of_several_outputs_answers_values_not_indices(numpy32):
    """Network.predict used argmax for every network of more than one output."""
    X = np.random.default_rng(1).uniform(-1, 1, (400, 2))
    Y = np.c_[X[:, 0] + X[:, 1], X[:, 0] - 3 * X[:, 1]] * 100
    net = Network.from_sizes([2, 16, 2], numpy32, activation="tanh", loss="quadratic")
    learn(net, (X, Y), epochs=40, optimizer="adam", lr=0.01, log=None)
    answers = net.predict(X[:5])
    assert answers.shape == (5, 2) and answers.dtype.kind == "f"
    one = test(net, X[0])
    assert one.shape == (2,) and np.allclose(one, answers[0])
    assert evaluate(net, X, Y)["r2"] > 0.9


def test_regression_metrics_are_the_textbook_ones():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    scores = regression_metrics(y + np.array([0.5, -0.5, 0.5, -0.5]), y)
    assert scores["mse"] == 0.25 and scores["rmse"] == 0.5 and scores["mae"] == 0.5
    assert scores["r2"] == pytest.approx(1 - 0.25 / 1.25)
    assert regression_metrics(np.full(4, 2.5), y)["r2"] == pytest.approx(0.0)  # the mean: R^2 0


def test_curves_switch_to_a_log_scale_where_the_loss_spans_decades():
    assert spans_decades([100.0, 3.0, 0.5])
    assert not spans_decades([0.9, 0.5, 0.3])
    assert not spans_decades([1.0, 0.0])  # a zero has no logarithm: stay linear


# -- validation and early stopping -----------------------------------------------------------------

def test_a_validation_split_is_stratified_and_the_same_every_time():
    y = np.r_[np.zeros(90, int), np.ones(10, int)]  # a rare class
    X = np.arange(100.0)[:, None]
    (X_train, y_train), (X_val, y_val) = split_validation(X, y, 0.2, seed=3)
    assert np.bincount(y_val).tolist() == [18, 2] and len(y_train) == 80
    assert sorted(np.r_[X_train[:, 0], X_val[:, 0]].tolist()) == list(range(100))  # a partition
    again = split_validation(X, y, 0.2, seed=3)[1][0]
    np.testing.assert_array_equal(again, X_val)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, "0.1", True])
def test_a_bad_validation_fraction_is_one_line(fraction):
    with pytest.raises(DataError, match="between 0 and 1"):
        split_validation(np.zeros((10, 1)), np.arange(10) % 2, fraction, seed=0)


def test_validation_fraction_in_learn_validates_and_stops_early_on_the_best_epoch(numpy32):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 2))
    y = (X[:, 0] > 0).astype(np.int64)
    y[:60] = 1 - y[:60]  # noise to overfit: validation stops improving
    net = Network.from_sizes([2, 64, 2], numpy32, activation="relu", init="he")
    lines = []
    learn(net, (X, y), epochs=200, batch_size=16, lr=0.1, optimizer="momentum", validation_fraction=0.25,
          patience=3, log=lines.append)
    assert any(line.startswith("validation: 75 of the 300 training samples held back") for line in lines)
    val = [r["val_loss"] for r in net.history]
    best = int(np.argmin(val))
    assert len(val) == best + 4
    assert f"restored epoch {best + 1}'s weights" in lines[-2] and lines[-1].startswith("calibration: temperature")


def test_validation_and_a_validation_fraction_together_are_refused(numpy32):
    net = Network.from_sizes([2, 4, 2], numpy32)
    X, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(DataError, match="not both"):
        learn(net, (X, y), epochs=1, validation=(X, y), validation_fraction=0.2, log=None)
