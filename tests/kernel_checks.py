"""How the numpy kernel tests make inputs and compare a kernel with its reference: the dtypes
each runs in, host-made inputs, and the tolerance (a fused multiply-add's included)."""

from __future__ import annotations

import numpy as np

DTYPES = ["float32", "float64"]
RTOL = {"float32": 1e-5, "float64": 1e-6}


def host(rng, shape, dtype, low=-3.0, high=3.0):
    return rng.uniform(low, high, size=shape).astype(dtype)


def assert_close(actual, expected, dtype, fused: bool = False):
    """Equal to rtol; `fused` (a one-rounding multiply-add against the reference's two) also
    allows an absolute error of rtol times the largest value, since where p - lr * g nearly
    cancels the last-bit difference of the operands is large relative to the result."""
    assert np.asarray(actual).dtype == np.dtype(dtype), f"dtype {np.asarray(actual).dtype}, not {dtype}"
    assert np.shape(actual) == np.shape(expected)
    atol = RTOL[dtype] * float(np.max(np.abs(expected))) if fused else 0
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=atol)
