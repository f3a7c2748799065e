"""The epoch's totals, summed once at its end, equal the per-step sums they replace."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpnet.model import Network
from xpnet.train.device_data import DeviceData
from xpnet.train.loop import run_epoch
from xpnet.train.steps import EagerSteps
from xpnet.train.optimizers import SGD
from xpnet.train.tally import EpochTally


def blobs(n=203, seed=0):
    """Three classes; 203 rows, so batches of 32 leave a last batch of 11."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.7)
    return X, y


def stepwise_epoch(net, data, batch_size, rng):
    """The epoch as it was once written: loss and hits added up on the host after every step."""
    backend = net.backend
    opt = SGD(backend, net.params, 0.2)
    order = data.order(rng, batch_size)
    loss_sum, correct, steps = 0.0, 0, 0
    for first in range(0, data.n, batch_size):
        xb, tb = data.batch(order, first, batch_size)
        loss, out = net.train_step(xb, tb, opt)
        rows = out.shape[0]
        loss_sum += float(backend.to_numpy(loss)) * rows
        hits = np.argmax(backend.to_numpy(out), axis=1) == np.argmax(backend.to_numpy(tb), axis=1)
        correct += int(hits.sum())
        steps += 1
    return loss_sum / data.n, correct / data.n, steps


def test_the_epoch_record_equals_the_per_step_sums(backend):
    X, y = blobs()
    net = Network.from_sizes([4, 6, 3], backend, activation="tanh", seed=1)
    twin = net.copy()
    record = run_epoch(EagerSteps(net, SGD(backend, net.params, 0.2), DeviceData.from_host(net, X, y), 32),
                       np.random.default_rng(5))
    loss, accuracy, steps = stepwise_epoch(twin, DeviceData.from_host(twin, X, y), 32, np.random.default_rng(5))
    assert record["steps"] == steps == math.ceil(203 / 32)
    assert record["finite_steps"] == steps
    assert math.isclose(record["loss"], loss, rel_tol=1e-12)
    assert record["accuracy"] == accuracy
    assert 0.0 < accuracy < 1.0  # some right, some wrong: a count that cannot pass by accident


def test_streamed_and_resident_data_give_the_same_labels_in_the_same_order(reference):
    X, y = blobs()
    net = Network.from_sizes([4, 6, 3], reference)
    resident = DeviceData.from_host(net, X, y)
    streamed = DeviceData(X, resident.T, resident.n, True, reference, streamed=True)
    order = np.random.default_rng(2).permutation(len(y))
    np.testing.assert_array_equal(reference.to_numpy(resident.labels_in(reference.asarray(order))), y[order])
    np.testing.assert_array_equal(reference.to_numpy(streamed.labels_in(order)), y[order])
    np.testing.assert_array_equal(reference.to_numpy(resident.labels_in(None)), y)


@pytest.mark.parametrize("losses,before_bad", [((0.5, 0.25, 0.125), 3), ((0.5, 0.25, float("nan"), float("inf")), 2),
                                               ((float("inf"), 0.5, 0.25), 0), ((0.5, float("nan"), 0.25), 1)])
def test_the_steps_before_the_first_non_finite_loss_are_counted(backend, losses, before_bad):
    tally = EpochTally(backend, classification=False)
    out = backend.xp.zeros((4, 1), dtype=backend.dtype)
    for value in losses:
        tally.add(backend.asarray(np.array(value)), out)
    loss_sum, correct, finite_steps = tally.totals()
    assert float(finite_steps) == before_bad  # what the divergence message names as the bad step
    assert math.isfinite(float(loss_sum)) == (before_bad == len(losses))
    assert int(correct) == 0


def test_each_step_s_mean_loss_is_weighted_by_its_batch_size(backend):
    tally = EpochTally(backend, classification=True)
    for loss, rows in ((1.0, 3), (4.0, 1)):
        out = backend.asarray(np.eye(3)[:rows])  # predicts classes 0, 1, 2 in turn
        tally.add(backend.asarray(np.array(loss)), out)
    labels = backend.asarray(np.array([0, 2, 2, 0]))
    loss_sum, correct, finite_steps = tally.totals(labels)
    assert float(loss_sum) == 1.0 * 3 + 4.0 * 1
    assert int(correct) == 3  # rows 0, 2 and 3 right, row 1 wrong
    assert float(finite_steps) == 2.0
