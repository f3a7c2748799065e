"""Choosing a backend at run time: argument > environment variable > `auto`."""

from __future__ import annotations

import dataclasses
import os

from xpnet.backends.base import FLOAT_DTYPES, Backend
from xpnet.backends.errors import choose
from xpnet.backends.libraries import (
    BackendError,
    make_array_api_strict,
    make_cupy,
    make_numpy,
    make_torch,
)

BACKENDS = {
    "numpy": make_numpy,
    "cupy": make_cupy,
    "torch": make_torch,
    "array_api_strict": make_array_api_strict,
}
DEFAULT_DTYPE = "float32"
# Every backend on each kind of device it runs on: what `xpnet parity` and the tests' backend
# fixture go through (bench/options.py keeps its own copy: it must not import xpnet early).
PLACES = (("numpy", "cpu"), ("array_api_strict", "cpu"), ("torch", "cpu"), ("cupy", "cuda"), ("torch", "cuda"))


def resolve_backend(name: str | None = None, device: str | None = None, dtype: str | None = None,
                    tf32: bool | None = None) -> Backend:
    """The backend to use, by the precedence: explicit argument, then $XPNET_BACKEND, then auto.

    The environment is read here, at call time, not at import; an empty variable counts as
    unset. A backend that was named and cannot run raises `BackendError`: never a silent
    fallback. `auto` picks cupy when a CUDA device is usable, else numpy, and its `note`
    says why. `tf32` (default: $XPNET_TF32 == "1", else off) lets a GPU compute float32
    matrix products in TF32: faster, but only ~3 significant digits.
    """
    if tf32 is None:
        tf32 = os.environ.get("XPNET_TF32", "") == "1"
    name = name or os.environ.get("XPNET_BACKEND") or "auto"
    device = device or os.environ.get("XPNET_DEVICE") or None
    dtype = dtype or DEFAULT_DTYPE
    choose(dtype, FLOAT_DTYPES, "dtype", BackendError)
    if choose(name, BACKENDS, "backend", BackendError, extra=("auto",)) == "auto":
        return _auto(device, dtype, tf32)
    return BACKENDS[name](device, dtype, tf32)


def _auto(device: str | None, dtype: str, tf32: bool) -> Backend:
    if device == "cpu":
        return dataclasses.replace(make_numpy(device, dtype), note="auto: numpy (device cpu asked)")
    try:
        backend = make_cupy(device, dtype, tf32)
        return dataclasses.replace(backend, note=f"auto: cupy ({backend.device_name} is usable)")
    except BackendError as exc:
        if device is not None:  # a GPU was asked for by name: say why it cannot be had
            raise
        return dataclasses.replace(make_numpy(None, dtype), note=f"auto: numpy ({exc})")


def describe_all() -> list[dict]:
    """One row per backend: installed version, usable or why not, the device it would use."""
    rows = []
    for name, make in BACKENDS.items():
        try:
            backend = make(None, DEFAULT_DTYPE)
            rows.append({"backend": name, "version": backend.library_version, "usable": "yes",
                         "device": backend.device_name, "why": ""})
        except BackendError as exc:
            rows.append({"backend": name, "version": _installed_version(name), "usable": "no",
                         "device": "-", "why": str(exc)})
    return rows


def _installed_version(name: str) -> str:
    from importlib import metadata

    dist = {"array_api_strict": "array-api-strict"}.get(name, name)
    candidates = [dist] if name != "cupy" else ["cupy", "cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x"]
    for candidate in candidates:
        try:
            return metadata.version(candidate)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


__all__ = ["BACKENDS", "BackendError", "DEFAULT_DTYPE", "describe_all", "resolve_backend"]
