"""Learning happens: `learn` drives the loss down and accuracy up, on every backend.

Training runs in float32 (the default a user gets); sizes stay small because the
array_api_strict run is several times slower than numpy's. lr="auto"'s search:
test_learning_rate_auto.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet.backends import XpnetError
from xpnet.model import ModelError, Network
from xpnet import train
from xpnet.train import evaluate, learn
from xpnet.train.context import RunContext
from xpnet.train.targets import DataError
from assertions import assert_on, one_line
from xor_and_rings import XOR_X, XOR_Y, rings

EPOCH_KEYS = {"epoch", "loss", "seconds", "samples_per_s"}


def test_xor_reaches_full_accuracy(single):
    net = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
    trained = learn(net, (XOR_X, XOR_Y), epochs=300, batch_size=None, lr=0.5, log=None)
    assert trained is net
    assert net.history[-1]["accuracy"] == 1.0
    assert net.history[-1]["loss"] < net.history[0]["loss"] / 10
    np.testing.assert_array_equal(net.predict(XOR_X), XOR_Y)
    assert evaluate(net, XOR_X, XOR_Y)["accuracy"] == 1.0
    for p in net.params:  # still float32, still on the device
        assert_on(single, p)


def test_rings_multiclass_reaches_95_percent(single):
    X, y = rings()
    net = Network.from_sizes([2, 16, 3], single, activation="tanh", seed=0)
    learn(net, (X, y), epochs=40, batch_size=16, lr=0.05, optimizer="momentum", log=None)
    assert net.history[-1]["accuracy"] > 0.95
    assert net.history[-1]["loss"] < net.history[0]["loss"] / 3
    X_new, y_new = rings(seed=1)  # fresh points from the same rings
    assert evaluate(net, X_new, y_new)["accuracy"] > 0.9


def test_integer_inputs_train_exactly_like_float_inputs(single):
    """XOR written as ints is the same data; training must neither crash (array_api_strict
    refuses int/float mixing) nor compute in float64 behind a float32 run."""
    runs = []
    for X in (XOR_X.astype(np.int64), XOR_X.astype(np.float32)):
        net = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
        learn(net, (X, XOR_Y), epochs=5, batch_size=2, lr=0.5, log=None)
        runs.append((net.history, [single.to_numpy(p) for p in net.params]))
        for p in net.params:
            assert_on(single, p)
    assert [r["loss"] for r in runs[0][0]] == [r["loss"] for r in runs[1][0]]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b, strict=True)


def test_a_linear_network_cannot_learn_xor(reference):
    """The control for the XOR test: without a hidden non-linearity XOR stays unlearnt."""
    net = Network.from_sizes([2, 4, 2], reference, activation="identity", seed=0)
    learn(net, (XOR_X, XOR_Y), epochs=300, batch_size=None, lr=0.5, log=None)
    assert net.history[-1]["accuracy"] <= 0.75


# -- the loop's bookkeeping ------------------------------------------------------------

def test_history_has_one_record_per_epoch_with_the_documented_keys(single):
    X, y = rings(n=64)
    net = Network.from_sizes([2, 8, 3], single, activation="tanh", seed=0)
    seen = []
    learn(net, (X, y), epochs=3, batch_size=16, lr=0.1, validation=rings(n=32, seed=2), log=seen.append,
          on_epoch=lambda model, record, state: seen.append(record))
    assert [r["epoch"] for r in net.history] == [1, 2, 3]
    for record in net.history:
        assert set(record) == EPOCH_KEYS | {"accuracy", "val_loss", "val_accuracy"}
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in record.values())
        assert 0.0 <= record["accuracy"] <= 1.0 and 0.0 <= record["val_accuracy"] <= 1.0
    lines = [s for s in seen if isinstance(s, str)  # a GPU says it records; the scaling of the rings is said
             and not s.startswith(("CUDA graphs: on", "scale: "))]
    assert len(lines) == 4 and lines[0].startswith("epoch 1/3  loss ") and "val_acc" in lines[0]
    assert lines[3].startswith("calibration: temperature")  # validation data fits the temperature
    records = [s for s in seen if isinstance(s, dict)]
    assert records[:3] == net.history and records[3] is net.history[-1]  # again, to save the temperature


def test_regression_history_has_no_accuracy(single):
    X = np.linspace(-1, 1, 20)[:, None]
    net = Network.from_sizes([1, 4, 1], single, activation="tanh", output="identity", loss="quadratic")
    learn(net, (X, 0.5 * X[:, 0]), epochs=2, batch_size=5, lr=0.1, log=None)
    assert len(net.history) == 2 and all(set(r) == EPOCH_KEYS for r in net.history)


def test_early_stopping_stops_when_validation_stops_improving(single):
    """Validate on the XOR labels flipped: the better the model learns, the worse it
    validates, so the validation loss stops improving almost at once."""
    lines = []
    net = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
    learn(net, (XOR_X, XOR_Y), epochs=100, batch_size=None, lr=0.5, validation=(XOR_X, 1 - XOR_Y),
          patience=3, log=lines.append)
    val = [r["val_loss"] for r in net.history]
    assert len(val) < 100
    best = int(np.argmin(val))
    assert len(val) == best + 1 + 3  # exactly `patience` epochs without improvement
    assert lines[-3] == "early stop: validation loss has not improved for 3 epochs"
    assert lines[-2].startswith(f"restored epoch {best + 1}'s weights, the best on validation")
    assert lines[-1].startswith("calibration: temperature")  # fitted to the restored weights
    # the weights now are the best epoch's: they score its validation loss, not the last epoch's
    assert evaluate(net, XOR_X, 1 - XOR_Y)["loss"] == pytest.approx(val[best], rel=1e-5)
    assert val[-1] > val[best]


def test_patience_without_validation_data_is_a_one_line_error_naming_the_fix(reference):
    """It used to be ignored silently: training ran its epochs as if no patience were given."""
    net = Network.from_sizes([2, 4, 2], reference, activation="tanh", seed=0)
    with pytest.raises(DataError) as info:
        learn(net, (XOR_X, XOR_Y), epochs=5, batch_size=None, lr=0.5, patience=1, log=None)
    assert "--val-fraction" in one_line(info.value) and "validation_fraction" in str(info.value)
    assert net.history == []


def test_same_seed_same_training(single):
    X, y = rings(n=64)
    runs = []
    for _ in range(2):
        net = Network.from_sizes([2, 8, 3], single, activation="tanh", seed=0)
        learn(net, (X, y), epochs=2, batch_size=16, lr=0.1, seed=5, log=None)
        runs.append([single.to_numpy(p) for p in net.params])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# -- test(model, x): the course's question ---------------------------------------------

def test_test_of_a_scalar_is_a_float(single):
    net = Network.from_sizes([1, 4, 1], single, activation="tanh", output="identity", loss="quadratic")
    answer = train.test(net, 3.0)
    assert type(answer) is float
    assert answer == pytest.approx(float(net.predict(np.array([[3.0]]))[0, 0]))
    assert type(train.test(net, 3)) is float  # an int radius too


def test_test_of_a_vector_is_an_array(single):
    net = Network.from_sizes([1, 4, 1], single, activation="tanh", output="identity", loss="quadratic")
    answers = train.test(net, [1.0, 2.0, 3.0])
    assert isinstance(answers, np.ndarray) and answers.shape == (3,)


def test_test_of_a_classifier_gives_class_indices(single):
    net = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
    labels = train.test(net, XOR_X)
    assert labels.shape == (4,) and labels.dtype.kind == "i"
    one = train.test(net, XOR_X[1])  # one sample, one row of the network's width: one answer
    assert type(one) is int and one == labels[1]


def test_test_answers_one_sample_with_one_answer_and_a_2d_array_with_an_array(single):
    circle = Network.from_sizes([1, 4, 1], single, activation="tanh", output="identity", loss="quadratic")
    assert type(train.test(circle, [3.0])) is float  # one radius in a list: still one sample
    assert train.test(circle, [[3.0]]).shape == (1,)  # 2-D: an array, even of one
    classifier = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
    assert type(train.test(classifier, XOR_X[1])) is int
    assert train.test(classifier, XOR_X[1:2]).shape == (1,)
    regression = Network.from_sizes([2, 4, 1], single, activation="tanh", output="identity", loss="quadratic")
    assert type(train.test(regression, XOR_X[1])) is float
    assert train.test(regression, XOR_X[1:2]).shape == (1,)


def test_test_of_nan_inputs_is_a_one_line_error(single):
    """An all-NaN image used to come back as class 0, as if it were an answer."""
    net = Network.from_sizes([2, 4, 2], single, activation="tanh", seed=0)
    with pytest.raises(ModelError, match="NaN or inf"):
        train.test(net, [[0.0, np.nan]])


# -- refusals --------------------------------------------------------------------------

@pytest.mark.parametrize("X,y,words", [
    (XOR_X, np.array([0, 1, 2, 0]), "labels must be in 0..1"),
    (XOR_X[:, :1], XOR_Y, "features"),
    (XOR_X, XOR_Y[:3], "must match"),
    (np.array([[0.0, np.nan]] * 4), XOR_Y, "finite"),
    (np.zeros((0, 2)), np.zeros(0, int), "empty"),
], ids=["label-range", "width", "length", "nan", "empty"])
def test_bad_data_is_a_one_line_data_error(reference, X, y, words):
    net = Network.from_sizes([2, 4, 2], reference, seed=0)
    with pytest.raises(DataError) as info:
        learn(net, (X, y), epochs=1, log=None)
    assert words in one_line(info.value)


@pytest.mark.parametrize("settings", [dict(epochs=0), dict(epochs=2.5), dict(batch_size=0), dict(lr=-1.0),
                                      dict(optimizer="lbfgs")])
def test_bad_settings_are_one_line_errors(reference, settings):
    net = Network.from_sizes([2, 4, 2], reference, seed=0)
    with pytest.raises(XpnetError) as info:
        learn(net, (XOR_X, XOR_Y), log=None, **settings)
    one_line(info.value)


def test_a_loss_far_above_where_training_started_is_reported_once(reference):
    """h = w + b fitted to 0 from x = 1 with lr 5: each step multiplies the error by -9, so
    the loss is finite but millions of times its start after one epoch: said then, once."""
    net = Network.from_sizes([1, 1], reference, activation="identity", loss="quadratic", seed=0)
    lines: list[str] = []
    learn(net, (np.ones((32, 1)), np.zeros(32)), epochs=3, batch_size=8, lr=5.0, log=lines.append)
    warned = [i for i, line in enumerate(lines) if "times what training started from" in line]
    assert len(warned) == 1 and "learning rate 5 is probably too high: try --lr 0.5" in lines[warned[0]]
    assert lines[warned[0] - 1].startswith("epoch 1/3")
    assert all(math.isfinite(r["loss"]) for r in net.history)
    quiet: list[str] = []
    learn(Network.from_sizes([1, 1], reference, activation="identity", loss="quadratic", seed=0),
          (np.ones((32, 1)), np.zeros(32)), epochs=3, batch_size=8, lr=0.1, log=quiet.append)
    assert not any("times what training started from" in line for line in quiet)


def test_data_sorted_by_target_gives_no_false_alarm(reference):
    """Where training starts from is measured on rows spread over the set: the first rows of
    a file sorted by target are the easy ones, and against them a healthy epoch looked 100x
    worse (a helper's repro: y = x^3 on sorted x)."""
    x = np.linspace(0, 3, 8000)[:, None]
    net = Network.from_sizes([1, 16, 1], reference, activation="tanh", output="identity", loss="quadratic", seed=0)
    lines: list[str] = []
    learn(net, (x, x[:, 0] ** 3), epochs=2, batch_size=64, lr=0.001, optimizer="adam", log=lines.append)
    assert net.history[-1]["loss"] < net.history[0]["loss"]
    assert not any("times what training started from" in line for line in lines), lines


def test_every_step_and_epoch_goes_through_the_run_context(reference):
    """One loop for a single process and the ranks of an MPI job: what differs is the run
    context's (train/context.py), and a context's step and totals are the ones used."""
    X, y = rings(n=100)
    seen = {"steps": 0, "epochs": 0}

    class Watching(RunContext):
        def train_step(self, model, xb, tb, optimizer, global_rows):
            seen["steps"] += 1
            assert global_rows == xb.shape[0]  # one process holds all of each batch
            return super().train_step(model, xb, tb, optimizer, global_rows)

        def epoch_totals(self, model, totals):
            seen["epochs"] += 1
            return totals

    watched = Network.from_sizes([2, 8, 3], reference, activation="tanh", seed=0)
    plain = Network.from_sizes([2, 8, 3], reference, activation="tanh", seed=0)
    learn(watched, (X, y), epochs=2, batch_size=32, lr=0.1, log=None, context=Watching())
    learn(plain, (X, y), epochs=2, batch_size=32, lr=0.1, log=None)
    assert seen == {"steps": 2 * 4, "epochs": 2}  # 100 rows: batches of 32, 32, 32 and 4
    for a, b in zip(watched.params, plain.params):
        np.testing.assert_array_equal(reference.to_numpy(a), reference.to_numpy(b))
    assert watched.history[-1]["loss"] == plain.history[-1]["loss"]
