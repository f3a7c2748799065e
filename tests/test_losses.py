"""Losses against closed forms in numpy float64, on every backend; inputs are never modified."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model.activations import ModelError
from xpnet.model.losses import LOSSES, check_loss, quadratic, softmax_cross_entropy
from assertions import assert_on, one_line


def ref_log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def ref_quadratic(h, t):
    return ((h - t) ** 2).sum() / (2 * h.shape[0]), (h - t) / h.shape[0]


def ref_cross_entropy(z, t):
    log_p = ref_log_softmax(z)
    return -(t * log_p).sum() / z.shape[0], (np.exp(log_p) - t) / z.shape[0]


def batch(seed=0, n=6, k=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)) * 2, np.eye(k)[rng.integers(0, k, n)]


CASES = [("quadratic", quadratic, ref_quadratic), ("cross_entropy", softmax_cross_entropy, ref_cross_entropy)]


@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_match_closed_form(backend, name, fn, ref):
    h, t = batch()
    loss, dh = fn(backend.xp, backend.asarray(h), backend.asarray(t))
    assert_on(backend, loss, ())
    assert_on(backend, dh, h.shape)
    want_loss, want_dh = ref(h, t)
    assert float(loss) == pytest.approx(want_loss, rel=1e-13)
    np.testing.assert_allclose(backend.to_numpy(dh), want_dh, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
def test_losses_leave_their_inputs_alone(backend, name, fn, ref):
    h, t = batch(seed=1)
    h_dev, t_dev = backend.asarray(h), backend.asarray(t)
    fn(backend.xp, h_dev, t_dev)
    np.testing.assert_array_equal(backend.to_numpy(h_dev), h)
    np.testing.assert_array_equal(backend.to_numpy(t_dev), t)


@pytest.mark.parametrize("name,fn,ref", CASES, ids=[c[0] for c in CASES])
def test_float32_losses_stay_float32(backend, name, fn, ref):
    b = backend.with_dtype("float32")
    h, t = batch(seed=2)
    loss, dh = fn(b.xp, b.asarray(h), b.asarray(t))
    assert_on(b, loss, ())
    assert_on(b, dh, h.shape)
    assert float(loss) == pytest.approx(ref(h, t)[0], rel=1e-5)


def test_quadratic_is_the_course_formula_on_a_hand_example(backend):
    """Two samples, one output: J = ((3-1)^2 + (0-2)^2) / (2*2) = 2, dJ/dh = (h - y) / 2."""
    h, y = np.array([[3.0], [0.0]]), np.array([[1.0], [2.0]])
    loss, dh = quadratic(backend.xp, backend.asarray(h), backend.asarray(y))
    assert float(loss) == 2.0
    np.testing.assert_array_equal(backend.to_numpy(dh), [[1.0], [-1.0]])


def test_cross_entropy_of_uniform_logits_is_log_k(backend):
    k = 5
    t = np.eye(k)[[0, 3]]
    loss, dh = softmax_cross_entropy(backend.xp, backend.asarray(np.zeros((2, k))), backend.asarray(t))
    assert float(loss) == pytest.approx(np.log(k), rel=1e-14)
    np.testing.assert_allclose(backend.to_numpy(dh), (1 / k - t) / 2, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_is_stable_at_huge_logits(backend, dtype):
    """exp(1000) overflows in both dtypes; the fused log-softmax never forms it."""
    b = backend.with_dtype(dtype)
    z = np.array([[1000.0, 0.0, -1000.0], [1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    t = np.eye(3)[[0, 2, 1]]
    loss, dh = softmax_cross_entropy(b.xp, b.asarray(z), b.asarray(t))
    assert_on(b, loss, ())
    # row 0 is right with certainty (0), row 1 is 2000 nats wrong, row 2 is uniform (log 3)
    assert float(loss) == pytest.approx((0.0 + 2000.0 + np.log(3)) / 3, rel=1e-6)
    got = b.to_numpy(dh)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, (np.exp(ref_log_softmax(z)) - t) / 3, atol=1e-7)


def test_cross_entropy_gradient_rows_sum_to_zero(backend):
    """softmax and a one-hot row both sum to one, so each row of dJ/dz sums to zero."""
    h, t = batch(seed=3, n=8, k=6)
    _, dh = softmax_cross_entropy(backend.xp, backend.asarray(h), backend.asarray(t))
    np.testing.assert_allclose(backend.to_numpy(dh).sum(axis=1), 0.0, atol=1e-16)


def test_losses_average_over_the_batch(backend):
    """Repeating every sample leaves the loss unchanged and halves each row's gradient."""
    for fn in (quadratic, softmax_cross_entropy):
        h, t = batch(seed=4)
        loss1, dh1 = fn(backend.xp, backend.asarray(h), backend.asarray(t))
        loss2, dh2 = fn(backend.xp, backend.asarray(np.vstack([h, h])), backend.asarray(np.vstack([t, t])))
        assert float(loss2) == pytest.approx(float(loss1), rel=1e-14)
        np.testing.assert_allclose(backend.to_numpy(dh2)[:6], backend.to_numpy(dh1) / 2, rtol=1e-14)


def test_unknown_loss_is_a_one_line_error():
    with pytest.raises(ModelError) as info:
        check_loss("hinge")
    text = one_line(info.value)
    assert "'hinge'" in text and all(name in text for name in LOSSES)
