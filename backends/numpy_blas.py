"""A ctypes binding to the OpenBLAS that numpy ships, for the routines numpy does not expose.

The numpy kernels (numpy_kernels.py) use it to update parameters in one pass (axpy, axpby)
and to fold SGD's update into the gradient's product (gemm, gemv). It is kept apart from
the kernels because it is a different kind of code: finding a shared library, declaring C
signatures, and checking the library computes correctly before anything trusts it.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache

import numpy as np


class Blas:
    """numpy's own OpenBLAS, for the routines numpy does not expose.

    numpy's wheels bundle OpenBLAS with 64-bit integers and `scipy_`-prefixed symbols
    (older wheels: no prefix, the same `64_` suffix). Where numpy was built another way
    (conda's MKL, Apple's Accelerate) or the library fails a self-check, `load()` returns
    None and the ufunc paths run.

    Level 1 (axpy, axpby) saves numpy's temporary in p -= lr * g. Levels 2 and 3 (gemv,
    gemm) compute c = alpha * (a @ b) + beta * c in one call, which is how SGD folds its
    update into the gradient's product: W -= lr * dz.T @ x never forms dz.T @ x at all.
    """

    MIN_SIZE = 1 << 16  # below this an axpy's ctypes call costs more than the pass it saves
    MIN_FOLD = 1 << 14  # below this, gemm's c is cheaper updated by ufuncs (measured crossover)
    MIN_SUM = 1 << 15  # the same for gemv's summed array
    PREFIXES = ("scipy_", "")
    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # the CBLAS enums

    def __init__(self, lib, prefix: str):
        i64, vp, enum = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int
        self._routines = {}
        for char, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            def routine(name, *argtypes):
                fn = getattr(lib, f"{prefix}cblas_{char}{name}64_")
                fn.argtypes, fn.restype = list(argtypes), None
                return fn

            self._routines[np.dtype(real).char] = {
                "axpy": routine("axpy", i64, real, vp, i64, vp, i64),
                "axpby": routine("axpby", i64, real, vp, i64, real, vp, i64),
                "gemv": routine("gemv", enum, enum, i64, i64, real, vp, i64, vp, i64, real, vp, i64),
                "gemm": routine("gemm", enum, enum, enum, i64, i64, i64, real, vp, i64, vp, i64,
                                real, vp, i64),
            }

    @classmethod
    @lru_cache(maxsize=None)  # one probe per process: the library does not change
    def load(cls) -> "Blas | None":
        """numpy's bundled OpenBLAS if it is there and computes correctly, else None."""
        base = os.path.dirname(np.__file__)
        paths = glob.glob(base + ".libs/*openblas*") + glob.glob(os.path.join(base, ".dylibs", "*openblas*"))
        for path in sorted(paths):
            for prefix in cls.PREFIXES:
                try:
                    blas = cls(ctypes.CDLL(path), prefix)
                except (OSError, AttributeError):
                    continue
                if blas._self_check():
                    return blas
        return None

    def fits(self, y: np.ndarray, x: np.ndarray) -> bool:
        """Whether y += a * x can go to BLAS: same float dtype and shape, contiguous, large."""
        return (y.size >= self.MIN_SIZE and y.dtype == x.dtype and y.dtype.char in self._routines
                and y.shape == x.shape and y.flags.c_contiguous and x.flags.c_contiguous
                and y.flags.writeable)

    def axpy(self, alpha: float, x: np.ndarray, y: np.ndarray) -> None:
        """y += alpha * x, in place, in one pass."""
        self._routines[y.dtype.char]["axpy"](y.size, alpha, x.ctypes.data, 1, y.ctypes.data, 1)

    def axpby(self, alpha: float, x: np.ndarray, beta: float, y: np.ndarray) -> None:
        """y = alpha * x + beta * y, in place, in one pass."""
        self._routines[y.dtype.char]["axpby"](y.size, alpha, x.ctypes.data, 1, beta, y.ctypes.data, 1)

    def matmul_add(self, c: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: float, beta: float) -> bool:
        """c = alpha * (a @ b) + beta * c in one gemm; False, with c untouched, where the
        operands are not BLAS-shaped (another dtype, a strided view, an empty side)."""
        routines = self._routines_for(c, a, b)
        if routines is None or not (a.ndim == b.ndim == c.ndim == 2):
            return False
        (m, k), n = a.shape, b.shape[1]
        a_layout, b_layout = _layout(a), _layout(b)
        if (a_layout is None or b_layout is None or not c.flags.c_contiguous or not (m and n and k)
                or b.shape[0] != k or c.shape != (m, n)):
            return False
        routines["gemm"](self.ROW_MAJOR, a_layout[0], b_layout[0], m, n, k, alpha, a_layout[1], a_layout[2],
                         b_layout[1], b_layout[2], beta, _address(c), n)
        return True

    def sum_add(self, c: np.ndarray, a: np.ndarray, ones: np.ndarray, alpha: float, beta: float) -> bool:
        """c = alpha * (column sums of a) + beta * c as one gemv of a.T with a ones vector;
        False, with c untouched, where the operands are not BLAS-shaped."""
        routines = self._routines_for(c, a, ones)
        if routines is None or not (a.ndim == 2 and c.ndim == 1):
            return False
        m, n = a.shape
        if not (a.flags.c_contiguous and c.flags.c_contiguous and c.shape == (n,)
                and ones.shape == (m,) and m and n):
            return False
        routines["gemv"](self.ROW_MAJOR, self.TRANS, m, n, alpha, _address(a), n, _address(ones), 1, beta,
                         _address(c), 1)
        return True

    def _routines_for(self, c: np.ndarray, a: np.ndarray, b: np.ndarray) -> dict | None:
        """c's dtype's routines when a and b share that BLAS float dtype and c is writeable.
        (Written out, not with all(): this runs every layer of every step.)"""
        dtype = c.dtype
        routines = self._routines.get(dtype.char)
        if routines is None or a.dtype != dtype or b.dtype != dtype or not c.flags.writeable:
            return None
        return routines

    def _self_check(self) -> bool:
        rng = np.random.default_rng(0)
        for dtype in (np.float32, np.float64):
            x, y = np.arange(1.0, 6.0, dtype=dtype), np.full(5, 2.0, dtype=dtype)
            self.axpy(-0.5, x, y)
            self.axpby(2.0, x, 0.5, y)
            if not np.array_equal(y, 0.5 * (2.0 - 0.5 * np.arange(1.0, 6.0)) + 2.0 * np.arange(1.0, 6.0)):
                return False
            # Small integers, so every product and sum is exact in either precision.
            a, b, c = (rng.integers(-4, 5, shape).astype(dtype) for shape in ((3, 4), (4, 5), (3, 5)))
            for a_, b_ in ((a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b))):
                out = c.copy()
                if not (self.matmul_add(out, a_, b_, -2.0, 0.5) and np.array_equal(out, -2.0 * (a @ b) + 0.5 * c)):
                    return False
            out = c[0].copy()
            if not (self.sum_add(out, b, np.ones(4, dtype), 3.0, 2.0)
                    and np.array_equal(out, 3.0 * b.sum(axis=0) + 2.0 * c[0])):
                return False
        return True


def _layout(a: np.ndarray):
    """(CBLAS transpose flag, address, leading dimension) of a 2-D operand, or None.

    A C-contiguous array goes as it is; an F-contiguous one (the transpose of a C-contiguous
    array, like dz.T) goes as its transpose with the TRANS flag, so nothing is copied."""
    flags = a.flags
    if flags.c_contiguous:
        return Blas.NO_TRANS, _address(a), a.shape[1]
    if flags.f_contiguous:
        return Blas.TRANS, _address(a.T), a.shape[0]
    return None


def _address(a: np.ndarray) -> int:
    """The address of a C-contiguous array's first element. Through the buffer protocol it
    costs a quarter of `a.ctypes.data`, which matters on tiny networks; read-only arrays
    refuse a writable buffer and take the slow way."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(a))
    except (TypeError, ValueError, BufferError):
        return a.ctypes.data
