"""Fused CuPy kernels for elementwise chains (placeholder until the GPU kernels land)."""


def cupy_kernels() -> dict:
    return {}
