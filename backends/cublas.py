"""cuBLAS's gemm called directly for cupy: matrix products that a CUDA graph can record.

CuPy's own cuBLAS bindings refuse every call while the current stream records a graph
(their setStream raises NotImplementedError; CuPy issue #6290), although cuBLAS itself
supports being recorded. So the cupy backend's products go to the libcublas CuPy already
loaded, through ctypes, on a handle of xpnet's own with its own workspace: cuBLAS's advice
for recording, since with a workspace set no allocation is recorded. Being a thin call
with no Python dispatch, it is also cheaper per product than cupy.matmul.

Row-major arrays are column-major transposes, so C = A @ B is computed as C.T = B.T @ A.T.
"""

from __future__ import annotations

import ctypes
import re

OP_N, OP_T = 0, 1
TF32_TENSOR_OP_MATH = 3
WORKSPACE_BYTES = 32 << 20  # cuBLAS's suggested workspace on Hopper GPUs


class CublasError(RuntimeError):
    """A cuBLAS call returned an error status."""


def loaded_cublas(cp) -> ctypes.CDLL | None:
    """The libcublas this process's CuPy loaded (Linux), or None."""
    cp.cuda.device.get_cublas_handle()  # CuPy loads cuBLAS lazily: make sure it is in
    major = f".so.{cp.cuda.runtime.runtimeGetVersion() // 1000}"
    # CuPy's CUDA major first: torch, loaded beside it, may bring another libcublas
    for path in sorted(_mapped_cublas(), key=lambda p: (major not in p, p)):
        try:
            lib = ctypes.CDLL(path)
            lib.cublasSgemm_v2, lib.cublasDgemm_v2  # noqa: B018  (both must be there)
            return lib
        except (OSError, AttributeError):
            continue
    return None


def _mapped_cublas() -> set[str]:
    try:
        with open("/proc/self/maps") as maps:
            return {m.group(1) for m in re.finditer(r"(/\S*/libcublas\.so[.\d]*)\s*$", maps.read(), re.M)}
    except OSError:
        return set()


class Gemm:
    """`matmul(xp, a, b)` for the cupy backend on one device, through cuBLAS directly.

    2-D float32/float64 operands that are C- or F-contiguous (x, W.T, dz.T: everything a
    Dense layer multiplies) go to cuBLAS; anything else goes to cupy.matmul.
    """

    def __init__(self, cp, lib: ctypes.CDLL, device, tf32: bool = False):
        self.cp, self.lib, self.device = cp, lib, device
        self.handle = ctypes.c_void_p()
        with device:
            _check(lib.cublasCreate_v2(ctypes.byref(self.handle)), "cublasCreate")
            if tf32:
                _check(lib.cublasSetMathMode(self.handle, TF32_TENSOR_OP_MATH), "cublasSetMathMode")
            self.workspace = cp.empty(WORKSPACE_BYTES, dtype=cp.uint8)  # for the handle's lifetime
        self._stream: int | None = None
        vp, i32 = ctypes.c_void_p, ctypes.c_int
        self._gemm = {}
        for char, name, real in (("f", "cublasSgemm_v2", ctypes.c_float), ("d", "cublasDgemm_v2", ctypes.c_double)):
            fn = getattr(lib, name)
            fn.argtypes = [vp, i32, i32, i32, i32, i32, vp, vp, i32, vp, i32, vp, vp, i32]
            fn.restype = i32
            self._gemm[char] = (fn, real(1.0), real(0.0))

    def __call__(self, xp, a, b):
        found = self._gemm.get(a.dtype.char)
        layout_a, layout_b = _layout(a), _layout(b)
        if (found is None or layout_a is None or layout_b is None or b.dtype != a.dtype
                or a.shape[1] != b.shape[0] or 0 in (a.shape[0], a.shape[1], b.shape[1])):
            return xp.matmul(a, b)
        (m, k), n = a.shape, b.shape[1]
        fn, one, zero = found
        with self.device:
            c = self.cp.empty((m, n), dtype=a.dtype)
            self._bind(self.cp.cuda.get_current_stream().ptr)
            status = fn(self.handle, layout_b[0], layout_a[0], n, m, k, ctypes.byref(one),
                        layout_b[1], layout_b[2], layout_a[1], layout_a[2], ctypes.byref(zero), c.data.ptr, n)
        _check(status, "cublasGemm")
        return c

    def _bind(self, stream: int) -> None:
        """Point the handle at the current stream; that resets its workspace, so set it again."""
        if stream == self._stream:
            return
        _check(self.lib.cublasSetStream_v2(self.handle, ctypes.c_void_p(stream)), "cublasSetStream")
        setter = getattr(self.lib, "cublasSetWorkspace_v2", None)  # cuBLAS 11.4 and newer
        if setter is not None:
            _check(setter(self.handle, ctypes.c_void_p(self.workspace.data.ptr), ctypes.c_size_t(WORKSPACE_BYTES)),
                   "cublasSetWorkspace")
        self._stream = stream


def _layout(a):
    """(cuBLAS op, address, leading dimension) that makes a row-major 2-D operand's
    column-major transpose, or None. A C-contiguous array already is its column-major
    transpose; an F-contiguous one (W.T, dz.T) is that transpose read with OP_T."""
    if a.ndim != 2:
        return None
    if a.flags.c_contiguous:
        return OP_N, a.data.ptr, max(a.shape[1], 1)
    if a.flags.f_contiguous:
        return OP_T, a.data.ptr, max(a.shape[0], 1)
    return None


def _check(status: int, what: str) -> None:
    if status != 0:
        raise CublasError(f"{what} failed with cuBLAS status {status}")


_MADE: dict = {}  # (device index, tf32) -> Gemm: one handle and workspace each, for the process


def make_gemm(cp, device, tf32: bool) -> Gemm | None:
    """The direct product for `device`, or None where libcublas cannot be reached this way.

    Every cupy backend on the same device and math mode shares one: a handle holds a 32 MiB
    workspace for the life of the process, and a test suite makes hundreds of backends."""
    key = (device.id, tf32)
    if key not in _MADE:
        try:
            with device:
                lib = loaded_cublas(cp)
                _MADE[key] = None if lib is None else Gemm(cp, lib, device, tf32)
        except (RuntimeError, AttributeError, OSError):  # CuPy's and cuBLAS's errors are RuntimeErrors
            _MADE[key] = None
    return _MADE[key]
