"""One small constructor per array library: probe it honestly, then build its `Backend`.

Each `make_*` returns a Backend or raises `BackendError` with one line that says what is
missing and how to fix it. Probing runs a real operation on the device, because a library
that imports is not yet a library that can run (a CuPy wheel without a driver imports fine).
"""

from __future__ import annotations

import os

import numpy as np

from xpnet.backends.base import Backend
from xpnet.backends.errors import BackendError
from xpnet.backends.graphs import cupy_capture, torch_capture
from xpnet.backends.numpy_memory import keep_freed_memory


def _numpy_copy(array) -> np.ndarray:
    return np.array(array, copy=True)


def make_numpy(device: str | None, dtype: str, tf32: bool = False) -> Backend:
    """Plain numpy on the CPU, through array-api-compat's namespace."""
    import array_api_compat.numpy as xp

    _require_cpu("numpy", device)
    keep_freed_memory()  # numpy's fresh arrays reuse freed memory instead of faulting pages in
    return Backend(
        name="numpy", xp=xp, device="cpu", device_name="cpu", dtype_name=dtype,
        library_version=np.__version__,
        to_device_fn=lambda host, dt: np.array(host, dtype=dt, copy=True),
        to_numpy_fn=_numpy_copy,
        kernels=_numpy_kernels(), mpi_buffers="host", splits_batches=True,
    )


def make_array_api_strict(device: str | None, dtype: str, tf32: bool = False) -> Backend:
    """array-api-strict: no speed, but it refuses anything outside the standard.

    Its pretend second device, `device1`, stands in for a GPU in the tests: an array made
    without the backend's device lands on the CPU device, and mixing the two raises, as
    mixing host and GPU arrays would.
    """
    try:
        import array_api_strict as xp
    except ImportError:
        raise BackendError("array_api_strict is not installed: pip install array-api-strict") from None
    if device not in (None, "cpu", "device1"):
        raise BackendError(f"array_api_strict runs on the CPU only (devices cpu and device1, a pretend second "
                           f"device for tests), not {device!r}: use --backend cupy or torch for a GPU")
    where, home = xp.Device("device1" if device == "device1" else "CPU_DEVICE"), xp.Device("CPU_DEVICE")
    return Backend(
        name="array_api_strict", xp=xp, device=where, device_name=device or "cpu",
        dtype_name=dtype, library_version=xp.__version__,
        to_device_fn=lambda host, dt: xp.asarray(host, dtype=dt, device=where, copy=True),
        to_numpy_fn=lambda a: np.array(np.from_dlpack(a.to_device(home)), copy=True),
    )


def make_torch(device: str | None, dtype: str, tf32: bool = False) -> Backend:
    """PyTorch eager, on the CPU or a CUDA device (default: CUDA when usable).

    On CUDA, TF32 matrix products are set explicitly to `tf32` (off unless asked for), so
    float32 results match numpy's to float32 precision.
    """
    try:
        import torch
        import array_api_compat.torch as xp
    except ImportError:
        raise BackendError("torch is not installed: pip install 'xpnet[torch]'") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        _probe_torch_cuda(torch, device)
    elif device != "cpu":
        raise BackendError(f"torch device {device!r} is not understood: use cpu, cuda or cuda:N")
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # 'cuda' means the current device: name it, as arrays do
        dev = torch.device("cuda", torch.cuda.current_device())
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32  # torch's own switch is process-wide
        torch.backends.cudnn.allow_tf32 = tf32
    return Backend(
        name="torch", xp=xp, device=dev, device_name=str(dev), dtype_name=dtype,
        library_version=torch.__version__,
        to_device_fn=lambda host, dt: torch.tensor(host, dtype=dt, device=dev),
        to_numpy_fn=lambda t: t.detach().to("cpu").numpy().copy(),
        synchronize_fn=(lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None),
        free_memory_fn=(lambda: torch.cuda.mem_get_info(dev)[0]) if dev.type == "cuda" else (lambda: None),
        capture_fn=torch_capture(dev) if dev.type == "cuda" else None,
        tf32=tf32 and dev.type == "cuda",
        device_count_fn=torch.cuda.device_count if dev.type == "cuda" else (lambda: 1),
        kernels=_torch_kernels(),
    )


def make_cupy(device: str | None, dtype: str, tf32: bool = False) -> Backend:
    """CuPy on a CUDA device; the probe allocates and runs a kernel before saying yes.

    CuPy reads CUPY_TF32 once, at import: asking for TF32 sets it first; a CUPY_TF32=1
    already in the environment is reported in the backend's `tf32` and note.
    """
    if tf32:
        os.environ["CUPY_TF32"] = "1"
    try:
        import cupy as cp
        import array_api_compat.cupy as xp
    except ImportError:
        raise BackendError(
            "cupy is not installed: pip install 'xpnet[cuda12]' (CUDA 12) or 'xpnet[cuda13]' (CUDA 13)"
        ) from None
    index = _cuda_index("cupy", device)
    dev = _probe_cupy(cp, index)
    # CuPy launches every kernel on the current device and refuses arrays that live on
    # another, so the device the backend computes on must be the current one: the last cupy
    # backend made wins, which is right for a process that trains on one GPU (each MPI rank
    # takes its own), not for one that alternates between two.
    dev.use()
    tf32_on = os.environ.get("CUPY_TF32") == "1"  # what CuPy read at import, whoever set it

    def to_device(host, dt):
        with dev:
            return cp.array(host, dtype=dt, copy=True)

    return Backend(
        name="cupy", xp=xp, device=dev, device_name=f"cuda:{index}", dtype_name=dtype,
        library_version=cp.__version__,
        to_device_fn=to_device, to_numpy_fn=cp.asnumpy,
        synchronize_fn=lambda: dev.synchronize(), kernels=_cupy_overrides(cp, dev, tf32_on),
        free_memory_fn=lambda: _cupy_free_memory(cp, dev), capture_fn=cupy_capture(dev), tf32=tf32_on,
        mpi_buffers="cuda", device_count_fn=cp.cuda.runtime.getDeviceCount,
    )


def _cupy_overrides(cp, dev, tf32: bool) -> dict:
    """The fused elementwise kernels and the direct cuBLAS product (backends/cublas.py);
    none with XPNET_FUSED=0."""
    if not _fused_enabled():
        return {}
    from xpnet.backends.cublas import make_gemm
    from xpnet.backends.cupy_kernels import cupy_kernels

    gemm = make_gemm(cp, dev, tf32)
    return {**cupy_kernels(), **({"matmul": gemm} if gemm is not None else {})}


def _cupy_free_memory(cp, dev) -> int:
    """Free on the device plus what CuPy's pool holds but no array uses."""
    with dev:
        free, _ = cp.cuda.runtime.memGetInfo()
        pool = cp.get_default_memory_pool()
        return free + pool.total_bytes() - pool.used_bytes()


def _fused_enabled() -> bool:
    """XPNET_FUSED=0 turns fused kernels off, to compare them with the plain xp path."""
    return os.environ.get("XPNET_FUSED", "1") != "0"


def _probe_cupy(cp, index: int):
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError and friends: no driver, no device
        raise BackendError(f"cupy is installed but no usable CUDA device: {_first_line(exc)}") from None
    if index >= count:
        raise BackendError(f"cupy: CUDA device {index} does not exist ({count} found); use --device cuda:0")
    dev = cp.cuda.Device(index)
    try:
        with dev:
            assert int((cp.arange(4, dtype=cp.float32) * 2).sum()) == 12
    except Exception as exc:  # driver too old, NVRTC missing, out of memory...
        raise BackendError(f"cupy is installed but cannot run on cuda:{index}: {_first_line(exc)}") from None
    return dev


def _probe_torch_cuda(torch, device: str) -> None:
    if not torch.cuda.is_available():
        raise BackendError(
            f"torch {torch.__version__} cannot use CUDA here (CPU build or no GPU): use --device cpu"
        )
    index = _cuda_index("torch", device)
    if index >= torch.cuda.device_count():
        raise BackendError(f"torch: CUDA device {index} does not exist; use --device cuda:0")


def _cuda_index(library: str, device: str | None) -> int:
    if device in (None, "cuda"):
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    raise BackendError(f"{library} runs on CUDA devices only: use --device cuda or cuda:N, not {device!r}")


def _require_cpu(library: str, device: str | None) -> None:
    if device not in (None, "cpu"):
        raise BackendError(
            f"{library} runs on the CPU only, not {device!r}: use --backend cupy or torch for a GPU"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _torch_kernels():
    from xpnet.backends.torch_kernels import torch_kernels

    return torch_kernels() if _fused_enabled() else {}


def _numpy_kernels():
    from xpnet.backends.numpy_kernels import numpy_kernels

    return numpy_kernels()
