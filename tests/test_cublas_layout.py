"""backends/cublas.py's argument mapping, checked on the CPU against a column-major gemm.

cuBLAS is column-major and xpnet's arrays are row-major, so the direct product computes
C.T = B.T @ A.T and picks each operand's transpose flag and leading dimension from its
memory order. Getting one of those wrong gives garbage only on a GPU, which CI does not
have. Here a stand-in for libcublas does cuBLAS's documented arithmetic on host memory,
straight from the pointers it is given, so the mapping is held on every CI run; on a GPU,
tests/test_kernels_parity.py holds the real library to `xp.matmul`.
"""

from __future__ import annotations

import contextlib
import ctypes
from types import SimpleNamespace

import numpy as np
import pytest

from xpnet.backends.cublas import OP_N, Gemm


class DeviceArray:
    """A host array dressed as a CuPy one: `.data.ptr`, `.flags`, shape and dtype."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.data = SimpleNamespace(ptr=array.ctypes.data)
        self.shape, self.dtype, self.ndim, self.flags = array.shape, array.dtype, array.ndim, array.flags

    @property
    def T(self):
        return DeviceArray(self.array.T)

    def __getitem__(self, key):
        return DeviceArray(self.array[key])


class FakeCupy:
    """What Gemm uses of cupy: empty(), the current stream, dtypes."""

    uint8 = np.uint8

    def __init__(self):
        self.cuda = SimpleNamespace(get_current_stream=lambda: SimpleNamespace(ptr=self.stream))
        self.stream = 0

    def empty(self, shape, dtype):
        fill = np.nan if np.dtype(dtype).kind == "f" else 0  # NaN: an unwritten element shows
        return DeviceArray(np.full(shape, fill, dtype=dtype))


def column_major(address: int, rows: int, cols: int, ld: int, dtype) -> np.ndarray:
    """The rows x cols column-major matrix at `address` with leading dimension `ld`, as a view."""
    assert ld >= max(rows, 1)
    ctype = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    flat = np.ctypeslib.as_array((ctype * (ld * (cols - 1) + rows)).from_address(address))
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (flat.itemsize, ld * flat.itemsize))


class FakeCublas:
    """libcublas's gemm as documented: C = alpha op(A) op(B) + beta C, all column-major."""

    def __init__(self):
        self.calls: list[str] = []
        # plain functions, not methods: Gemm sets their ctypes argtypes, as on a CDLL's
        self.cublasSgemm_v2 = lambda *args: self._gemm(np.float32, *args)
        self.cublasDgemm_v2 = lambda *args: self._gemm(np.float64, *args)

    def cublasCreate_v2(self, handle_ref):
        handle_ref._obj.value = 1234
        return 0

    def cublasSetStream_v2(self, handle, stream):
        self.calls.append(f"stream {stream.value or 0}")
        return 0

    def cublasSetWorkspace_v2(self, handle, address, size):
        self.calls.append("workspace")
        return 0

    def cublasSetMathMode(self, handle, mode):
        self.calls.append(f"math {mode}")
        return 0

    def _gemm(self, dtype, handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        a = column_major(A, *((m, k) if transa == OP_N else (k, m)), lda, dtype)
        b = column_major(B, *((k, n) if transb == OP_N else (n, k)), ldb, dtype)
        c = column_major(C, m, n, ldc, dtype)
        a, b = (a if transa == OP_N else a.T), (b if transb == OP_N else b.T)
        product = alpha._obj.value * (a.astype(np.float64) @ b.astype(np.float64))
        c[...] = product if beta._obj.value == 0 else product + beta._obj.value * c
        self.calls.append("gemm")
        return 0


@pytest.fixture
def gemm():
    return Gemm(FakeCupy(), FakeCublas(), contextlib.nullcontext(), tf32=False)


HOST_XP = SimpleNamespace(matmul=lambda a, b: DeviceArray(a.array @ b.array))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_layout_a_layer_multiplies_gives_the_row_major_product(gemm, dtype):
    rng = np.random.default_rng(0)
    x, W, dz = (rng.standard_normal(s).astype(dtype) for s in ((7, 5), (3, 5), (7, 3)))
    row = rng.standard_normal((1, 5)).astype(dtype)
    cases = {"x @ W.T": (x, W.T), "dz @ W": (dz, W), "dz.T @ x": (dz.T, x), "one row": (row, W.T),
             "F @ F": (np.asfortranarray(x), np.asfortranarray(W.T))}
    for name, (a, b) in cases.items():
        got = gemm(HOST_XP, DeviceArray(a), DeviceArray(b)).array
        np.testing.assert_allclose(got, a.astype(np.float64) @ b.astype(np.float64),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
    assert gemm.lib.calls.count("gemm") == len(cases)


def test_strided_operands_and_other_dtypes_go_to_the_librarys_matmul(gemm):
    x = np.arange(35.0).reshape(7, 5)
    W = np.ones((3, 5))
    for a, b in ((x[::2], W.T), (x[:, ::2], W[:, ::2].T), (x.astype(np.int64), W.T.astype(np.int64))):
        got = gemm(HOST_XP, DeviceArray(a), DeviceArray(b)).array
        np.testing.assert_array_equal(got, a @ b)
    assert "gemm" not in gemm.lib.calls


def test_the_stream_is_bound_once_per_change_and_the_workspace_follows_it(gemm):
    a, b = DeviceArray(np.ones((2, 3))), DeviceArray(np.ones((3, 4)))
    gemm(HOST_XP, a, b)
    gemm(HOST_XP, a, b)
    gemm.cp.stream = 77  # a recording's side stream
    gemm(HOST_XP, a, b)
    assert gemm.lib.calls == ["stream 0", "workspace", "gemm", "gemm", "stream 77", "workspace", "gemm"]
