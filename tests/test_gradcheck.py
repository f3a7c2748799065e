"""Backpropagation against central differences, in float64, on every backend.

Three levels: each loss's dJ/dh; each layer alone by llm.c's trick (a random upstream dy,
then the gradient of sum(y * dy) with respect to W, b and x); and whole 3-layer networks
through `model.gradcheck.gradient_check`, for every activation and both losses.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model import ACTIVATIONS, Dense, Network, gradient_check
from xpnet.model.activations import ModelError
from xpnet.model.gradcheck import relative_error
from xpnet.model.losses import quadratic, softmax_cross_entropy
from assertions import assert_on

EPS = 1e-6
SIZES = [4, 5, 4, 3]  # three Dense layers
WORST = 1e-6  # the bound on gradient_check's worst relative error


def data(seed=0, n=6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, SIZES[0]))
    onehot = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]
    soft = rng.uniform(0.1, 0.9, (n, SIZES[-1]))
    return X, onehot, soft


def preactivations(net, X) -> list[np.ndarray]:
    """Every layer's z = x @ W.T + b, on the host in float64 (to keep relu off its kink)."""
    zs, h = [], X
    for layer in net.layers:
        z = h @ net.backend.to_numpy(layer.W).T + net.backend.to_numpy(layer.b)
        zs.append(z)
        h = ACTIVATIONS[layer.activation][0](np, z)
    return zs


def central_differences(f, host: np.ndarray) -> np.ndarray:
    """df/dhost entry by entry; f takes a host array and returns a Python float."""
    grad = np.zeros_like(host)
    for idx in np.ndindex(host.shape):
        up, down = host.copy(), host.copy()
        up[idx] += EPS
        down[idx] -= EPS
        grad[idx] = (f(up) - f(down)) / (2 * EPS)
    return grad


# -- losses: dJ/dh ---------------------------------------------------------------------

@pytest.mark.parametrize("loss_fn", [quadratic, softmax_cross_entropy], ids=["quadratic", "cross_entropy"])
def test_loss_gradient_matches_central_differences(backend, loss_fn):
    X, onehot, soft = data(seed=1)
    h = np.random.default_rng(2).standard_normal(onehot.shape) * 2
    targets = backend.asarray(onehot if loss_fn is softmax_cross_entropy else soft)
    _, dh = loss_fn(backend.xp, backend.asarray(h), targets)
    numeric = central_differences(lambda hh: float(loss_fn(backend.xp, backend.asarray(hh), targets)[0]), h)
    assert_on(backend, dh, h.shape)
    np.testing.assert_allclose(backend.to_numpy(dh), numeric, rtol=1e-6, atol=1e-9)


# -- one layer at a time: llm.c's random-dy trick ----------------------------------------

def layer_inputs(seed, n_in=3, n_out=4, batch=5):
    """Host x, W, b, dy with every pre-activation at least 0.05 away from 0 (relu's kink)."""
    rng = np.random.default_rng(seed)
    while True:
        x = rng.standard_normal((batch, n_in))
        W = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        b = rng.standard_normal(n_out) * 0.1
        if np.min(np.abs(x @ W.T + b)) > 0.05:
            return x, W, b, rng.standard_normal((batch, n_out))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_layer_backward_is_the_gradient_of_sum_y_dy(backend, activation):
    x, W, b, dy = layer_inputs(seed=3)
    xp, to_dev = backend.xp, backend.asarray
    dy_dev = to_dev(dy)

    def f(x_host, W_host, b_host) -> float:
        y, _ = Dense(to_dev(W_host), to_dev(b_host), activation, backend).forward(to_dev(x_host))
        return float(xp.sum(y * dy_dev))

    layer = Dense(to_dev(W), to_dev(b), activation, backend)
    y, cache = layer.forward(to_dev(x))
    dx, (dW, db) = layer.backward(dy_dev, cache)
    assert_on(backend, dx, x.shape)
    assert_on(backend, dW, W.shape)
    assert_on(backend, db, b.shape)
    checks = {
        "dx": (dx, central_differences(lambda v: f(v, W, b), x)),
        "dW": (dW, central_differences(lambda v: f(x, v, b), W)),
        "db": (db, central_differences(lambda v: f(x, W, v), b)),
    }
    for name, (analytic, numeric) in checks.items():
        np.testing.assert_allclose(backend.to_numpy(analytic), numeric, rtol=1e-6, atol=1e-9, err_msg=name)


def test_first_layer_skips_dx(backend):
    x, W, b, dy = layer_inputs(seed=4)
    layer = Dense(backend.asarray(W), backend.asarray(b), "tanh", backend)
    _, cache = layer.forward(backend.asarray(x))
    dx, (dW, db) = layer.backward(backend.asarray(dy), cache, need_dx=False)
    assert dx is None
    assert_on(backend, dW, W.shape)


# -- whole networks through model.gradcheck ----------------------------------------------

NETWORKS = {
    # hidden activation with cross-entropy (identity output: logits)
    "sigmoid": dict(activation="sigmoid"),
    "tanh": dict(activation="tanh"),
    "relu": dict(activation="relu"),
    "identity": dict(activation="identity"),
    "softmax-hidden": dict(activation="softmax"),
    # quadratic loss, with the output activations it allows
    "sigmoid-quadratic": dict(activation="sigmoid", loss="quadratic"),
    "softmax-output-quadratic": dict(activation="tanh", output="softmax", loss="quadratic"),
    "softmax-hidden-quadratic": dict(activation="softmax", output="sigmoid", loss="quadratic"),
    "relu-identity-quadratic": dict(activation="relu", output="identity", loss="quadratic"),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_gradients_match_central_differences(backend, name):
    settings = NETWORKS[name]
    X, onehot, soft = data()
    targets = soft if settings.get("loss") == "quadratic" else onehot
    net = Network.from_sizes(SIZES, backend, seed=1, **settings)
    if "relu" in name:  # central differences across relu's kink would be meaningless
        assert min(np.min(np.abs(z)) for z in preactivations(net, X)[:-1]) > 1e-3
    assert gradient_check(net, X, targets, eps=EPS) < WORST


def test_gradient_check_leaves_the_weights_as_they_were(backend):
    X, onehot, _ = data()
    net = Network.from_sizes(SIZES, backend, activation="tanh", seed=1)
    before = [backend.to_numpy(p) for p in net.params]
    gradient_check(net, X, onehot)
    for p, host in zip(net.params, before):
        assert_on(backend, p, host.shape)
        np.testing.assert_array_equal(backend.to_numpy(p), host)


def test_gradient_check_catches_a_wrong_gradient(backend, monkeypatch):
    """The check can fail: a backward pass whose dW is 1% off must read far above the bound.

    (Dense.backward is wrapped rather than an activation replaced, so a backend's fused
    kernels cannot route around the mistake.)
    """
    original = Dense.backward

    def off_by_one_percent(self, dy, cache, need_dx=True, update=None):
        dx, (dW, db) = original(self, dy, cache, need_dx)
        return dx, [dW * 1.01, db]

    monkeypatch.setattr(Dense, "backward", off_by_one_percent)
    X, onehot, _ = data()
    net = Network.from_sizes(SIZES, backend, activation="tanh", seed=1)
    assert gradient_check(net, X, onehot) > 1e-3


def test_relative_error_ignores_rounding_noise_in_tiny_components():
    """Central differences carry ~1e-11 of rounding noise. A gradient with one tiny component
    (1e-6, routine for a softmax hidden layer) must not read as a 1e-5 relative error when
    backprop is right, or a correct network fails the 1e-6 bound."""
    exact = np.array([[0.3, -0.2, 1e-6], [0.05, 0.4, -0.1]])
    noisy = exact + np.array([[1e-11, -1e-11, 2e-11], [0.0, 1e-11, -1e-11]])
    assert relative_error(exact, noisy) < 1e-8


def test_relative_error_sees_a_one_percent_mistake():
    exact = np.array([[0.3, -0.2, 0.01], [0.05, 0.4, -0.1]])
    wrong = exact.copy()
    wrong[1, 2] *= 1.01
    assert relative_error(exact, wrong) > 1e-4


def test_a_float32_network_with_class_labels_is_checked_in_float64(reference):
    """As the README calls it: a float32 model (the default) and integer labels. The check
    runs on a float64 copy, so it reads ~1e-8, and leaves the model as it was."""
    net = Network.from_sizes([4, 5, 3], reference.with_dtype("float32"), seed=0)
    before = [net.backend.to_numpy(p) for p in net.params]
    X = np.random.default_rng(0).standard_normal((6, 4))
    assert gradient_check(net, X, np.array([0, 1, 2, 0, 1, 2])) < 1e-6
    assert net.backend.dtype_name == "float32"
    for p, old in zip(net.params, before):
        np.testing.assert_array_equal(net.backend.to_numpy(p), old)
    with pytest.raises(ModelError, match="labels must be in 0..2"):
        gradient_check(net, X, np.array([0, 1, 2, 0, 1, 3]))
