"""The `Backend` value object: namespace, device, dtype and the two transfer functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any, Callable, Mapping

import numpy as np

from xpnet.backends.errors import BackendError, choose

FLOAT_DTYPES = ("float32", "float64")


class GraphUnavailable(Exception):
    """This backend cannot record a CUDA graph; the message says why."""


@dataclass(frozen=True)
class Backend:
    """Where arrays live and how to reach them; immutable so a model can own one safely.

    `xp` is the array-API namespace (through array-api-compat). `device` is the library's
    own device object and `device_name` its plain spelling ('cpu', 'cuda:0'). `dtype_name`
    is the float dtype used for parameters and activations. `kernels` holds optional
    faster versions of named ops (a fused CuPy kernel, say), keyed by the names of the op
    table in model/ops.py; the plain `xp` code there stays the reference and a parity test
    holds the two together.
    """

    name: str
    xp: ModuleType
    device: Any
    device_name: str
    dtype_name: str
    library_version: str
    to_device_fn: Callable[[np.ndarray, Any], Any] = field(repr=False)
    to_numpy_fn: Callable[[Any], np.ndarray] = field(repr=False)
    synchronize_fn: Callable[[], None] = field(repr=False, default=lambda: None)
    kernels: Mapping[str, Callable] = field(repr=False, default_factory=lambda: MappingProxyType({}))
    free_memory_fn: Callable[[], int | None] = field(repr=False, default=lambda: None)
    # capture_fn(fn): run fn once for real, then record it as a CUDA graph; returns replay()
    capture_fn: Callable[[Callable[[], Any]], Callable[[], None]] | None = field(repr=False, default=None)
    tf32: bool = False  # float32 matrix products in TF32 (faster, ~3 digits): only when asked
    # How MPI can read this backend's arrays: "host" (numpy buffers, directly), "cuda" (CUDA
    # device buffers, directly through a CUDA-aware MPI), "" (neither: staged through host memory)
    mpi_buffers: str = ""
    # Whether a training step may split its batch across CPU threads (train/threads.py): each
    # operation runs on one core and lets go of Python's lock, as numpy's do; cupy and torch
    # spread each operation over their own threads or the GPU instead.
    splits_batches: bool = False
    device_count_fn: Callable[[], int] = field(repr=False, default=lambda: 1)  # devices of this kind here
    note: str = ""  # why this backend was chosen (e.g. what `auto` found)

    def __post_init__(self):
        # frozen=True stops reassignment, not a dict edited in place: freeze the table too
        object.__setattr__(self, "kernels", MappingProxyType(dict(self.kernels)))

    @property
    def dtype(self):
        """The namespace's float dtype object (e.g. `xp.float32`)."""
        return getattr(self.xp, self.dtype_name)

    def asarray(self, host: Any, dtype: str | None = None):
        """Copy a host array onto the device; floats take the backend dtype unless told.

        Always a copy: `asarray` on numpy and torch CPU may alias the caller's buffer, and
        a model must never share memory with arrays its user still holds.
        """
        host = np.asarray(host)
        if dtype is None:
            dtype = self.dtype_name if host.dtype.kind == "f" else str(host.dtype)
        # order="C", not np.ascontiguousarray, which turns a 0-d array into a 1-d one
        return self.to_device_fn(np.asarray(host, dtype=dtype, order="C"), getattr(self.xp, dtype))

    def to_numpy(self, array: Any) -> np.ndarray:
        """Copy a device array back to a numpy array the caller owns."""
        return self.to_numpy_fn(array)

    def synchronize(self) -> None:
        """Wait for queued device work, so host timers measure what the device did."""
        self.synchronize_fn()

    def device_count(self) -> int:
        """How many devices of this backend's kind the machine has (1 for the CPU)."""
        return self.device_count_fn()

    def free_memory(self) -> int | None:
        """Free device memory in bytes, or None where arrays live in host memory."""
        return self.free_memory_fn()

    def capture(self, fn: Callable[[], Any]) -> Callable[[], None]:
        """Run `fn()` once, for real, then record its device work as a CUDA graph and
        return a function that replays it: every launch of `fn` again, on the same memory,
        for the cost of one launch. `fn` must keep its results in arrays that outlive it
        and read nothing back to the host. Where no graph can be recorded (every CPU
        backend, or a step the library refuses to record) it raises GraphUnavailable with
        the reason; `fn` has run exactly once either way."""
        if self.capture_fn is None:
            fn()
            raise GraphUnavailable(f"{self.name} on {self.device_name} has no CUDA graphs")
        return self.capture_fn(fn)

    def with_dtype(self, dtype_name: str) -> "Backend":
        """The same backend computing in another float dtype."""
        choose(dtype_name, FLOAT_DTYPES, "dtype", BackendError)
        return dataclasses.replace(self, dtype_name=dtype_name)

    def __str__(self) -> str:
        return f"{self.name} ({self.device_name}, {self.dtype_name})"
