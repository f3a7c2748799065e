"""Activations against their closed forms, computed independently in numpy float64.

Forward values and the backward pass (a vector-Jacobian product with dy) are both checked on
every backend; neither may modify the arrays it was given.
"""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model.activations import ACTIVATIONS, ModelError, check_activation
from assertions import assert_on, one_line

NAMES = list(ACTIVATIONS)


def ref_sigmoid(z):
    """1 / (1 + e^-z) without overflow: e^-|z| is at most 1."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ref_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


REF_FORWARD = {
    "sigmoid": ref_sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "identity": lambda z: z,
    "softmax": ref_softmax,
}


def ref_backward(name, z, dy):
    """dJ/dz from dJ/dy, by each derivative's textbook form in terms of z."""
    if name == "sigmoid":
        s = ref_sigmoid(z)
        return dy * s * (1 - s)
    if name == "tanh":
        return dy / np.cosh(z) ** 2
    if name == "relu":
        return dy * (z > 0)
    if name == "identity":
        return dy
    s = ref_softmax(z)  # full Jacobian per row: diag(s) - s s^T, applied to dy
    jac = np.einsum("bi,ij->bij", s, np.eye(z.shape[1])) - np.einsum("bi,bj->bij", s, s)
    return np.einsum("bij,bi->bj", jac, dy)


def inputs(seed=0, shape=(5, 4)):
    """Host z and dy; z kept 0.05 away from 0 so relu's kink is never touched."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.05, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return z, rng.standard_normal(shape)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_closed_form(backend, name):
    z, _ = inputs()
    forward, _ = ACTIVATIONS[name]
    y = forward(backend.xp, backend.asarray(z))
    assert_on(backend, y, z.shape)
    np.testing.assert_allclose(backend.to_numpy(y), REF_FORWARD[name](z), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_backward_matches_closed_form(backend, name):
    z, dy = inputs(seed=1)
    forward, backward = ACTIVATIONS[name]
    xp = backend.xp
    y = forward(xp, backend.asarray(z))
    dz = backward(xp, y, backend.asarray(dy))
    assert_on(backend, dz, z.shape)
    np.testing.assert_allclose(backend.to_numpy(dz), ref_backward(name, z, dy), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_leave_their_inputs_alone(backend, name):
    z, dy = inputs(seed=2)
    forward, backward = ACTIVATIONS[name]
    xp = backend.xp
    z_dev, dy_dev = backend.asarray(z), backend.asarray(dy)
    y = forward(xp, z_dev)
    y_before = backend.to_numpy(y)
    backward(xp, y, dy_dev)
    np.testing.assert_array_equal(backend.to_numpy(z_dev), z)
    np.testing.assert_array_equal(backend.to_numpy(dy_dev), dy)
    np.testing.assert_array_equal(backend.to_numpy(y), y_before)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(backend, name):
    """No silent float64 upcast: masks and constants take the input's dtype."""
    b = backend.with_dtype("float32")
    z, dy = inputs(seed=3)
    forward, backward = ACTIVATIONS[name]
    y = forward(b.xp, b.asarray(z))
    dz = backward(b.xp, y, b.asarray(dy))
    assert_on(b, y, z.shape)
    assert_on(b, dz, z.shape)
    np.testing.assert_allclose(b.to_numpy(y), REF_FORWARD[name](z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.to_numpy(dz), ref_backward(name, z, dy), rtol=1e-4, atol=1e-5)


def test_sigmoid_is_stable_at_large_inputs(backend):
    """No overflow, no NaN, exact limits, and absolute error at rounding level everywhere.

    (Computed as (1 + tanh(z/2)) / 2, tiny values like sigmoid(-40) = 4e-18 round to 0:
    the absolute error stays below 1e-16, which is what a layer's output needs.)
    """
    z = np.concatenate([[-1000.0, -40.0, 0.0, 40.0, 1000.0], np.linspace(-60, 60, 241)])[None, :]
    forward, backward = ACTIVATIONS["sigmoid"]
    y = forward(backend.xp, backend.asarray(z))
    got = backend.to_numpy(y)[0]
    assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got, ref_sigmoid(z[0]), rtol=0, atol=2.3e-16)
    assert np.all(np.diff(got[5:]) >= 0)  # monotone
    assert got[0] == 0.0 and got[2] == 0.5 and got[4] == 1.0
    dz = backend.to_numpy(backward(backend.xp, y, backend.asarray(np.ones_like(z))))[0]
    assert np.all(np.isfinite(dz)) and dz[0] == 0.0 and dz[4] == 0.0 and dz[2] == 0.25


def test_softmax_rows_sum_to_one_and_survive_huge_logits(backend):
    z = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0], [0.0, 0.0, 0.0], [-5e3, -5e3, -5e3]])
    forward, _ = ACTIVATIONS["softmax"]
    y = forward(backend.xp, backend.asarray(z))
    assert_on(backend, y, z.shape)
    got = backend.to_numpy(y)
    assert np.all(np.isfinite(got)) and np.all(got >= 0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(got[0], ref_softmax(np.array([0.0, 1.0, 2.0])), rtol=1e-14)
    np.testing.assert_allclose(got[1], [0.0, 0.0, 1.0], atol=1e-300)
    np.testing.assert_allclose(got[2], 1 / 3, rtol=1e-14)
    np.testing.assert_allclose(got[3], 1 / 3, rtol=1e-14)


def test_softmax_backward_ignores_a_constant_shift_in_dy(backend):
    """softmax is invariant to adding a constant to a row, so its VJP kills constant dy."""
    z, _ = inputs(seed=4)
    forward, backward = ACTIVATIONS["softmax"]
    y = forward(backend.xp, backend.asarray(z))
    dz = backward(backend.xp, y, backend.asarray(np.full(z.shape, 3.0)))
    np.testing.assert_allclose(backend.to_numpy(dz), 0.0, atol=1e-14)


def test_unknown_activation_is_a_one_line_error():
    with pytest.raises(ModelError) as info:
        check_activation("swish")
    text = one_line(info.value)
    assert "'swish'" in text and all(name in text for name in NAMES)
