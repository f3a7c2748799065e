"""Parity: every backend computes what numpy float64 computes, from the same host-made inputs.

Forward outputs, gradients and a whole training run's per-step loss curve (minibatches,
shuffled by the engine's own loop) are compared with the reference: float64 to rtol 1e-10,
float32 to rtol 1e-4 with a small atol. array_api_strict wraps numpy, so it must match
numpy bit for bit in both dtypes: its forward pass and gradients match numpy's fused
kernels (which keep the reference's roundings), its training runs match numpy's plain `xp`
path (the kernels fold SGD's update into a BLAS product, which rounds once where the
reference rounds twice; tests/test_kernels_numpy.py bounds that).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train import learn
from assertions import assert_on

SIZES = [5, 8, 6, 3]
CONFIGS = {
    "sigmoid-cross_entropy": dict(activation="sigmoid"),
    "relu-cross_entropy": dict(activation="relu"),
    "tanh-softmax-quadratic": dict(activation="tanh", output="softmax", loss="quadratic"),
}
TOLERANCE = {"float64": dict(rtol=1e-10, atol=1e-13), "float32": dict(rtol=1e-4, atol=1e-6)}
N, BATCH, EPOCHS = 40, 8, 12  # 5 steps an epoch: 60 SGD steps


def host_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, SIZES[0]))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int) + (X[:, 2] > 0.5)  # three classes
    return X, y


def targets(y):
    return np.eye(SIZES[-1])[y]


def forward_and_gradients(backend, settings):
    """(output, [grads]) as host arrays, after asserting where the device arrays live."""
    net = Network.from_sizes(SIZES, backend, seed=11, **settings)
    X, y = host_data()
    loss, out, grads = net.loss_and_grads(backend.asarray(X), backend.asarray(targets(y)))
    assert_on(backend, loss, ())
    assert_on(backend, out, (N, SIZES[-1]))
    for g, p in zip(grads, net.params):
        assert_on(backend, g, tuple(p.shape))
    return float(loss), backend.to_numpy(out), [backend.to_numpy(g) for g in grads]


def training_run(backend, settings):
    """Per-step losses of a real `learn` run, and the final weights, on the host."""
    net = Network.from_sizes(SIZES, backend, seed=11, **settings)
    steps = []
    compute = net.train_step

    def recording(x, t, optimizer):
        loss, out = compute(x, t, optimizer)
        steps.append(float(loss))
        return loss, out

    net.train_step = recording
    learn(net, host_data(), epochs=EPOCHS, batch_size=BATCH, lr=0.5, seed=3, log=None)
    for p in net.params:
        assert_on(backend, p)
    return np.array(steps), [backend.to_numpy(p) for p in net.params], net.history


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_forward_and_gradients_match_the_reference(backend, reference, dtype, config):
    b = backend.with_dtype(dtype)
    loss, out, grads = forward_and_gradients(b, CONFIGS[config])
    ref_loss, ref_out, ref_grads = forward_and_gradients(reference, CONFIGS[config])
    tol = TOLERANCE[dtype]
    assert out.dtype == np.dtype(dtype) and all(g.dtype == np.dtype(dtype) for g in grads)
    assert loss == pytest.approx(ref_loss, rel=tol["rtol"])
    np.testing.assert_allclose(out, ref_out, **tol)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        np.testing.assert_allclose(g, r, **tol, err_msg=f"gradient {i}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_training_curve_matches_the_reference(backend, reference, dtype, config):
    b = backend.with_dtype(dtype)
    steps, weights, history = training_run(b, CONFIGS[config])
    ref_steps, ref_weights, ref_history = training_run(reference, CONFIGS[config])
    assert len(steps) == len(ref_steps) == EPOCHS * N // BATCH
    assert ref_steps[-5:].mean() < ref_steps[:5].mean()  # the curve is a learning curve
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(steps, ref_steps, **tol)
    np.testing.assert_allclose([r["loss"] for r in history], [r["loss"] for r in ref_history], **tol)
    assert [r["accuracy"] for r in history] == [r["accuracy"] for r in ref_history]
    for w, r in zip(weights, ref_weights):
        assert w.dtype == np.dtype(dtype)
        np.testing.assert_allclose(w, r, rtol=tol["rtol"], atol=10 * tol["atol"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_array_api_strict_is_numpy_bit_for_bit(dtype, config):
    numpy_b = resolve_backend("numpy", "cpu", dtype)
    strict_b = resolve_backend("array_api_strict", "cpu", dtype)
    loss, out, grads = forward_and_gradients(strict_b, CONFIGS[config])
    np_loss, np_out, np_grads = forward_and_gradients(numpy_b, CONFIGS[config])
    assert loss == np_loss
    np.testing.assert_array_equal(out, np_out, strict=True)  # strict: same dtype and shape too
    for g, r in zip(grads, np_grads):
        np.testing.assert_array_equal(g, r, strict=True)
    steps, weights, _ = training_run(strict_b, CONFIGS[config])
    np_steps, np_weights, _ = training_run(dataclasses.replace(numpy_b, kernels={}), CONFIGS[config])
    np.testing.assert_array_equal(steps, np_steps, strict=True)
    for w, r in zip(weights, np_weights):
        np.testing.assert_array_equal(w, r, strict=True)


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_other_optimizers_train_the_same_everywhere(backend, reference, optimizer):
    runs = []
    for b in (backend, reference):
        net = Network.from_sizes(SIZES, b, activation="tanh", seed=2)
        learn(net, host_data(), epochs=3, batch_size=BATCH, lr=0.01, optimizer=optimizer, seed=1, log=None)
        runs.append((net.history, [b.to_numpy(p) for p in net.params]))
    (history, weights), (ref_history, ref_weights) = runs
    np.testing.assert_allclose([r["loss"] for r in history], [r["loss"] for r in ref_history], rtol=1e-10)
    for w, r in zip(weights, ref_weights):
        np.testing.assert_allclose(w, r, rtol=1e-10, atol=1e-12)


def test_predictions_match_the_reference(backend, reference):
    X, _ = host_data(seed=5)
    net = Network.from_sizes(SIZES, backend, activation="tanh", seed=4)
    ref = Network.from_sizes(SIZES, reference, activation="tanh", seed=4)
    np.testing.assert_allclose(net.predict_proba(X), ref.predict_proba(X), rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(net.predict(X), ref.predict(X))
