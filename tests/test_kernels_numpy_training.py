"""The numpy backend's kernels in whole training steps (dense, folded through BLAS, and a
CNN's) against kernels off; the window ops' work arrays; and the allocator that keeps freed
memory for the next step."""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.backends.numpy_blas import Blas
from xpnet.backends.numpy_kernels import Scratch, numpy_kernels
from xpnet.model import Network
from xpnet.model.ops import OPS
from xpnet.train.optimizers import make_optimizer

from kernel_checks import DTYPES, assert_close, host


# -- the whole step: kernels on against kernels off ---------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation,loss", [("relu", "cross_entropy"), ("sigmoid", "quadratic"),
                                             ("tanh", "cross_entropy")])
def test_training_step_matches_reference(activation, loss, dtype):
    fast = resolve_backend("numpy", "cpu", dtype)
    plain = dataclasses.replace(fast, kernels={})
    rng = np.random.default_rng(5)
    X = rng.standard_normal((16, 12))
    T = np.eye(5)[rng.integers(0, 5, size=16)]
    params = []
    for backend in (fast, plain):
        net = Network.from_sizes([12, 9, 7, 5], backend, activation=activation, loss=loss, seed=0)
        opt = make_optimizer("adam", backend, net.params, 1e-2)
        x, t = backend.asarray(X), backend.asarray(T)
        for _ in range(3):
            value, _, grads = net.loss_and_grads(x, t)
            net.params = opt.step(net.params, grads)
        params.append([value] + net.params)
    for mine, ref in zip(*params):
        assert_close(mine, ref, dtype)


@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_folded_training_through_blas_matches_the_plain_path(optimizer, dtype, decay):
    """A network big enough that every fold takes gemm and every bias sum gemv (checked),
    trained a few steps through `train_step`, against the plain xp path's gradients-then-step;
    with weight decay, which folds too."""
    fast = resolve_backend("numpy", "cpu", dtype)
    plain = dataclasses.replace(fast, kernels={})
    rng = np.random.default_rng(12)
    batch, sizes = 256, [200, 130, 128, 10]
    assert sizes[1] * sizes[0] >= Blas.MIN_FOLD and sizes[2] * sizes[1] >= Blas.MIN_FOLD
    assert batch * sizes[2] >= Blas.MIN_SUM and batch * sizes[1] >= Blas.MIN_SUM
    X, T = rng.standard_normal((batch, sizes[0])), np.eye(10)[rng.integers(0, 10, batch)]
    results = []
    for backend in (fast, plain):
        net = Network.from_sizes(sizes, backend, activation="relu", loss="cross_entropy", seed=0)
        opt = make_optimizer(optimizer, backend, net.params, 0.05, weight_decay=decay)
        assert opt.folds == (backend is fast)
        x, t = backend.asarray(X), backend.asarray(T)
        for _ in range(4):
            loss, _ = net.train_step(x, t, opt)
        results.append([loss] + net.params + list(opt.state().values()))
    for mine, ref in zip(*results):
        assert_close(mine, ref, dtype, fused=True)


# -- the window ops: what the generic parity test (tests/test_kernels_parity.py) does not reach ----
@pytest.mark.parametrize("dtype", DTYPES)
def test_col2im_on_a_padded_grid_matches_the_reference_call_after_call(dtype):
    """The grid is a work array kept from call to call, zero except where dz goes: new values
    of one shape, then other shapes (one of them the same grid length), then the first again,
    must each match the reference; a strided convolution takes the plain path."""
    kernel = numpy_kernels()["col2im_matmul"]
    rng = np.random.default_rng(21)
    cases = [((4, 3, 9, 8), 3, 3, 1, 5), ((4, 3, 9, 8), 3, 3, 1, 5), ((2, 3, 18, 8), 3, 3, 1, 5),
             ((3, 2, 7, 7), 5, 5, 1, 4), ((2, 2, 9, 9), 3, 3, 2, 3), ((4, 3, 9, 8), 3, 3, 1, 5)]
    for (B, C, H, W), kh, kw, stride, F in cases:
        n = B * ((H - kh) // stride + 1) * ((W - kw) // stride + 1)
        a, b = host(rng, (C * kh * kw, F), dtype), host(rng, (F, n), dtype)
        got = kernel(np, a, b, (B, C, H, W), kh, kw, stride, OPS["matmul"])
        want = OPS["col2im_matmul"](np, a, b, (B, C, H, W), kh, kw, stride, OPS["matmul"])
        assert_close(got, want, dtype)


def test_a_product_row_is_padded_off_a_multiple_of_4_kib():
    from xpnet.backends.numpy_windows import unaliased

    for n, itemsize in [(16384, 4), (12544, 4), (50176, 4), (8192, 8), (7, 4), (1, 8)]:
        m = unaliased(n, itemsize)
        assert n <= m <= n + 4096 // itemsize and (m * itemsize) % 4096 not in range(0, 512)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_gradient_takes_dy_in_any_memory_order(dtype):
    """A convolution's output is a (B, C, H, W) view of (C, B, H, W) memory; the gradient
    coming back may be in either order, and the answer must not depend on it."""
    kernels = numpy_kernels()
    rng = np.random.default_rng(22)
    x = np.round(host(rng, (3, 2, 7, 9), dtype)).transpose(1, 0, 2, 3)  # ties, and a row and column left over
    y, winners = kernels["maxpool"](None, x, 2)
    want_y, want_winners = OPS["maxpool"](np, np.ascontiguousarray(x), 2)
    np.testing.assert_array_equal(y, want_y)
    for got, want in zip(winners, want_winners):
        np.testing.assert_array_equal(got, want)
    dy = host(rng, y.shape, dtype)
    want = OPS["maxpool_grad"](np, dy, want_winners, x.shape, 2)
    for order in (dy, np.ascontiguousarray(dy.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)):
        assert_close(kernels["maxpool_grad"](None, order, winners, x.shape, 2), want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_cnn_training_step_matches_the_reference(dtype):
    """`--preset cnn`'s shape of network, small: every window kernel on the path at once,
    in the memory orders the layers hand each other, against kernels off."""
    fast = resolve_backend("numpy", "cpu", dtype)
    plain = dataclasses.replace(fast, kernels={})
    rng = np.random.default_rng(23)
    X, T = rng.random((6, 10 * 10)), np.eye(4)[rng.integers(0, 4, size=6)]
    results = []
    for backend in (fast, plain):
        net = Network.from_layers(["conv4x3", "pool2", "conv6x3", "pool2", 8], (1, 10, 10), 4, backend, seed=0)
        opt = make_optimizer("adam", backend, net.params, 1e-2)
        x, t = backend.asarray(X), backend.asarray(T)
        for _ in range(3):
            loss, _ = net.train_step(x, t, opt)
        results.append([loss] + net.params)
    for mine, ref in zip(*results):
        assert_close(mine, ref, dtype)


# -- the allocator: freed blocks kept for the next step (backends/numpy_memory.py) ----------------
FAULTS = """
import resource, numpy as np
from xpnet.backends import resolve_backend
from xpnet.backends.numpy_memory import keep_freed_memory
resolve_backend("numpy")
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):  # as a step's intermediates: 24 MiB live at once, then freed
    held = [np.ones(1 << 19) for _ in range(6)]
    del held
print(keep_freed_memory(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
                    reason="mallopt is glibc's")
def test_a_numpy_process_reuses_freed_memory_instead_of_faulting_it_in_again():
    import subprocess

    runs = {}
    for keep in ("1", "0"):
        env = {**os.environ, "XPNET_KEEP_FREED": keep}
        out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, env=env, check=True)
        taken, faults = out.stdout.split()
        runs[keep] = (taken, int(faults))
    pages = 6 * (4 << 20) // 4096  # one round's
    assert runs["1"][0] == "True" and runs["1"][1] < 2 * pages, runs  # the first round's faults, then reuse
    assert runs["0"][0] == "False" and runs["0"][1] > 5 * runs["1"][1], runs  # glibc's default: faulted anew


def test_work_arrays_are_dropped_past_a_byte_limit():
    """A sweep over batch sizes makes a col2im grid and product for each: the scratch space
    must let go of old ones rather than hold every shape's."""
    work = Scratch()
    work.MAX_BYTES = 3 * 8 * 1000
    first = work.empty((1000,), np.float64, "a")
    assert work.empty((1000,), np.float64, "a") is first  # kept and reused
    work.empty((1000,), np.float64, "b")
    work.empty((1000,), np.float64, "c")  # 24,000 bytes: at the limit, all kept
    assert work.empty((1000,), np.float64, "a") is first
    work.empty((1001,), np.float64, "d")  # past it: the old ones go
    assert work.empty((1000,), np.float64, "a") is not first
