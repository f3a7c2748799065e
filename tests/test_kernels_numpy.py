"""The numpy backend's fused kernels against the plain xp references they replace.

The keys come from `numpy_kernels()` itself, so an override added without a reference here
fails `test_every_override_has_a_reference` instead of going unchecked. Each kernel sees
the same host-made float32 and float64 inputs as its reference; the values must agree,
the dtype must survive (no float64 upcast in a float32 run), and inputs the contract
protects must come back untouched. Whole training steps, the window ops and the allocator:
test_kernels_numpy_training.py.
"""

from __future__ import annotations

import glob
import os
import sys
import threading

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.backends.numpy_blas import Blas
from xpnet.backends.numpy_kernels import Scratch, numpy_kernels
from xpnet.model import updates
from xpnet.model.ops import OPS

from kernel_checks import DTYPES, assert_close, host

KEYS = sorted(numpy_kernels())
BIG = (Scratch.MIN_SIZE // 64 + 3, 64)  # large enough for the kernels' reused work arrays


def reference_for(key: str):
    """The plain xp function an override must match (the op table's), or None when there is none."""
    return OPS.get(key)


@pytest.fixture
def xp():
    return resolve_backend("numpy", "cpu", "float64").xp


@pytest.mark.parametrize("key", KEYS)
def test_every_override_has_a_reference(key):
    assert reference_for(key) is not None, f"override {key!r} has no reference to be tested against"


def test_numpy_backend_carries_the_kernels():
    backend = resolve_backend("numpy", "cpu", "float32")
    assert sorted(backend.kernels) == KEYS


def test_bundled_openblas_is_found_where_numpy_ships_one():
    """A numpy upgrade that renames the library or its symbols must fail here, not silently
    fall back to the slower two-pass updates."""
    base = os.path.dirname(np.__file__)
    if not glob.glob(base + ".libs/*openblas*") + glob.glob(os.path.join(base, ".dylibs", "*openblas*")):
        pytest.skip("this numpy was not built with a bundled OpenBLAS (conda, Accelerate...)")
    assert Blas.load() is not None


def test_updates_from_two_threads_do_not_share_work_arrays(xp):
    """Two training loops in two threads on one backend: each thread gets its own work arrays
    (numpy drops the GIL inside its loops, so a shared one would mix the two gradients)."""
    kernel = numpy_kernels(use_blas=False)["sgd_update"]
    grads = [np.full((1024, 256), sign, np.float32) for sign in (1.0, -1.0)]
    params = [np.zeros((1024, 256), np.float32) for _ in range(2)]

    def train(i):
        for _ in range(300):
            kernel(xp, params[i], grads[i], 1.0)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=train, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    np.testing.assert_array_equal(params[0], -300.0)
    np.testing.assert_array_equal(params[1], 300.0)


def test_blas_updates_a_non_contiguous_parameter_through_ufuncs(xp):
    """A strided view must not reach BLAS (which would read it as contiguous memory)."""
    rng = np.random.default_rng(6)
    base = host(rng, (2 * Blas.MIN_SIZE,), "float32")
    g = host(rng, (Blas.MIN_SIZE,), "float32")
    expected = base.copy()
    expected[::2] -= 0.1 * g
    numpy_kernels()["sgd_update"](xp, base[::2], g, 0.1)
    np.testing.assert_allclose(base, expected, rtol=1e-6)


# -- bias_act.<act>(xp, z, b): may overwrite z, never b ---------------------------------------
@pytest.mark.parametrize("rows,cols", [(33, 17), BIG], ids=["small", "big"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", [k for k in KEYS if k.startswith("bias_act.")])
def test_bias_act(xp, key, dtype, rows, cols):
    rng = np.random.default_rng(1)
    z, b = host(rng, (rows, cols), dtype, -12, 12), host(rng, (cols,), dtype)
    z[0, :3] = 0
    expected = reference_for(key)(xp, z.copy(), b.copy())
    b_before = b.copy()
    actual = numpy_kernels()[key](xp, z.copy(), b)
    assert_close(actual, expected, dtype)
    np.testing.assert_array_equal(b, b_before)


# -- act_grad.<act>(xp, y, dy): touches neither --------------------------------------------------
def activation_outputs(rng, name, shape, dtype):
    """Outputs y the activation can produce, plus exact zeros (the ReLU boundary)."""
    low, high = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (-1.0, 3.0)}.get(name, (-3.0, 3.0))
    y = host(rng, shape, dtype, low, high)
    if name == "relu":
        y = np.maximum(y, 0).astype(dtype)
    y[0, :5] = 0
    return y


@pytest.mark.parametrize("shape", [(29, 13), BIG], ids=["small", "big"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", [k for k in KEYS if k.startswith("act_grad.")])
def test_act_grad(xp, key, dtype, shape):
    rng = np.random.default_rng(2)
    y = activation_outputs(rng, key.split(".")[1], shape, dtype)
    dy = host(rng, shape, dtype)
    y_before, dy_before = y.copy(), dy.copy()
    kernel = numpy_kernels()[key]
    for _ in range(2):  # twice: work arrays reused from the first call must not leak into the second
        actual = kernel(xp, y, dy)
        assert_close(actual, reference_for(key)(xp, y, dy), dtype)
        assert not np.shares_memory(actual, y) and not np.shares_memory(actual, dy)
    np.testing.assert_array_equal(y, y_before)
    np.testing.assert_array_equal(dy, dy_before)


# -- loss.<name>(xp, h, targets): touches neither -------------------------------------------------
def loss_inputs(rng, name, dtype):
    h = host(rng, (31, 7), dtype, -20, 20)
    if name == "cross_entropy":
        targets = np.eye(7, dtype=dtype)[rng.integers(0, 7, size=31)]
        targets[:3] = host(rng, (3, 7), dtype, 0, 1)  # soft targets too
    else:
        targets = host(rng, (31, 7), dtype, 0, 1)
    return h, targets


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", [k for k in KEYS if k.startswith("loss.")])
def test_loss(xp, key, dtype):
    rng = np.random.default_rng(3)
    h, targets = loss_inputs(rng, key.split(".")[1], dtype)
    h_before, t_before = h.copy(), targets.copy()
    loss, dh = numpy_kernels()[key](xp, h, targets)
    ref_loss, ref_dh = reference_for(key)(xp, h, targets)
    assert np.shape(loss) == ()
    assert_close(loss, ref_loss, dtype)
    assert_close(dh, ref_dh, dtype)
    np.testing.assert_array_equal(h, h_before)
    np.testing.assert_array_equal(targets, t_before)


# -- <optimizer>_update: p and the state change in place and come back, g never changes ----------
UPDATE_SETTINGS = {
    "sgd_update": (0.05,),
    "momentum_update": (0.05, 0.9),
    "adam_update": (1e-3, 0.9, 0.999, 1e-8),
}
N_STATE = {"sgd_update": 0, "momentum_update": 1, "adam_update": 2}


@pytest.mark.parametrize("use_blas", [True, False], ids=["blas", "ufuncs"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("key", [k for k in KEYS if k.endswith("_update")])
def test_update(xp, key, dtype, use_blas):
    assert key in UPDATE_SETTINGS, f"no settings to test {key!r} with: add them to UPDATE_SETTINGS"
    rng = np.random.default_rng(4)
    big = (Blas.MIN_SIZE // 100 + 1, 100)  # large enough for the BLAS path, where there is one
    for shape in [(23, 11), (11,), big, (23, 11), big]:  # repeats reuse the kernels' work arrays
        p, g = host(rng, shape, dtype), host(rng, shape, dtype)
        state = [host(rng, shape, dtype, 0, 1) for _ in range(N_STATE[key])]
        g_before = g.copy()
        ours = [p.copy()] + [s.copy() for s in state]
        theirs = [p.copy()] + [s.copy() for s in state]
        kernel = numpy_kernels(use_blas)[key]
        for _ in range(3):
            returned = as_tuple(kernel(xp, ours[0], g, *ours[1:], *UPDATE_SETTINGS[key]))
            assert len(returned) == len(ours) and all(r is a for r, a in zip(returned, ours))
            theirs = list(as_tuple(reference_for(key)(xp, theirs[0], g, *theirs[1:], *UPDATE_SETTINGS[key])))
        for mine, ref in zip(ours, theirs):
            assert_close(mine, ref, dtype, fused=use_blas)
        np.testing.assert_array_equal(g, g_before)


def as_tuple(returned) -> tuple:
    """An update returns p, or (p, state...): as a tuple either way."""
    return returned if isinstance(returned, tuple) else (returned,)


# -- matmul_add / sum_add: c changes in place and comes back, a and b never change -----------------
FOLD_BIG = (190, 190)  # c at least Blas.MIN_FOLD, so the gemm path runs
SUM_BIG = (Blas.MIN_SUM // 64 + 1, 64)  # a at least Blas.MIN_SUM, so the gemv path runs


def product_operands(rng, dtype, layout, m, n, k=29):
    """(a, b) for c (m, n) += a @ b with inner size k, laid out as the optimizer's fold
    passes them (a = dz.T, a transposed view) or otherwise."""
    dz, x = host(rng, (k, m), dtype), host(rng, (k, n), dtype)
    if layout == "fold":  # a = dz.T (F-contiguous), b = x
        return dz.T, x
    if layout == "both-transposed":
        return dz.T, np.ascontiguousarray(x.T).T
    return np.ascontiguousarray(dz.T), x[:, :]  # both C-contiguous


@pytest.mark.parametrize("shape", [(17, 23), FOLD_BIG], ids=["small", "big"])
@pytest.mark.parametrize("beta", [1.0, 0.9])
@pytest.mark.parametrize("layout", ["fold", "both-transposed", "c-order"])
@pytest.mark.parametrize("use_blas", [True, False], ids=["blas", "ufuncs"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_add(xp, dtype, use_blas, layout, beta, shape):
    rng = np.random.default_rng(7)
    a, b = product_operands(rng, dtype, layout, *shape)
    c = host(rng, shape, dtype)
    a_before, b_before = a.copy(), b.copy()
    ours, theirs = c.copy(), c.copy()
    kernel = numpy_kernels(use_blas)["matmul_add"]
    for _ in range(2):
        assert kernel(xp, ours, a, b, -0.05, beta) is ours
        theirs = updates.matmul_add(xp, theirs, a, b, -0.05, beta)
    assert_close(ours, theirs, dtype, fused=True)
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(b, b_before)


@pytest.mark.parametrize("shape", [(29, 17), SUM_BIG], ids=["small", "big"])
@pytest.mark.parametrize("beta", [1.0, 0.9])
@pytest.mark.parametrize("use_blas", [True, False], ids=["blas", "ufuncs"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_add(xp, dtype, use_blas, beta, shape):
    rng = np.random.default_rng(8)
    a, c = host(rng, shape, dtype), host(rng, shape[1:], dtype)
    a_before = a.copy()
    ours, theirs = c.copy(), c.copy()
    for _ in range(2):
        assert numpy_kernels(use_blas)["sum_add"](xp, ours, a, -0.05, beta) is ours
        theirs = updates.sum_add(xp, theirs, a, -0.05, beta)
    assert_close(ours, theirs, dtype, fused=True)
    np.testing.assert_array_equal(a, a_before)


def test_blas_takes_the_fold_and_refuses_what_it_cannot_read():
    """The training step's operands (dz.T, x, a C-ordered W) must reach gemm, or the fold
    silently loses its point; a strided view or a mixed dtype must not (BLAS would read
    the wrong memory) and leaves c untouched for the ufunc path."""
    blas = Blas.load()
    if blas is None:
        pytest.skip("no bundled OpenBLAS in this numpy (see the test above)")
    rng = np.random.default_rng(9)
    dz, x = host(rng, (64, 10), "float32"), host(rng, (64, 256), "float32")
    W, b = host(rng, (10, 256), "float32"), host(rng, (10,), "float32")
    assert blas.matmul_add(W.copy(), dz.T, x, -0.1, 1.0)
    assert blas.sum_add(b.copy(), dz, np.ones(64, np.float32), -0.1, 1.0)
    half = np.ascontiguousarray(x[:, :128])
    refused = {
        "inner sizes differ": (W, dz.T, x[:32]),
        "strided b": (np.zeros((10, 128), np.float32), dz.T, x[:, ::2]),
        "mixed dtypes": (W, dz.T.astype(np.float64), x),
        "strided c": (W[:, ::2], dz.T, half),
        "F-ordered c": (np.asfortranarray(W), dz.T, x),
    }
    for why, (c, a, b_) in refused.items():
        before = c.copy()
        assert not blas.matmul_add(c, a, b_, -0.1, 1.0), why
        np.testing.assert_array_equal(c, before, err_msg=why)
    assert not blas.sum_add(b[:5].copy(), dz[:, ::2], np.ones(64, np.float32), -0.1, 1.0)
