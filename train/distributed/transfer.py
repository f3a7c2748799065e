"""How gradients reach MPI from a backend's arrays, and a digest to check the ranks agree."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def weights_digest(model) -> bytes:
    """sha256 of every parameter's bytes: equal on every rank while the ranks agree."""
    digest = hashlib.sha256()
    for p in model.params:
        digest.update(np.ascontiguousarray(model.backend.to_numpy(p)).tobytes())
    return digest.digest()


def transfer_for(backend) -> tuple[bool, str]:
    """(whether MPI reads the backend's arrays directly, how the gradients travel, in words)."""
    if backend.mpi_buffers == "host":
        return True, f"{backend.name} buffers go to MPI directly"
    if backend.mpi_buffers == "cuda":
        aware = mpi_cuda_support()
        if aware:
            return True, f"{backend.name} buffers go to MPI directly (the MPI library reports CUDA support)"
        why = "does not report CUDA support" if aware is False else "cannot say whether it supports CUDA"
        return False, f"{backend.name} buffers are staged through host memory (the MPI library {why})"
    return False, f"{backend.name} buffers are staged through host memory (MPI takes numpy and CUDA buffers)"


def mpi_cuda_support() -> bool | None:
    """Whether the loaded MPI library says it can read CUDA device memory
    (MPIX_Query_cuda_support, in MPICH and Open MPI); None when it cannot say."""
    import ctypes

    for path in loaded_libmpi():
        try:
            query = ctypes.CDLL(path).MPIX_Query_cuda_support
        except (OSError, AttributeError):
            continue
        query.restype = ctypes.c_int
        return bool(query())
    return None


def loaded_libmpi() -> list[str]:
    """Paths of the libmpi shared libraries this process has loaded (Linux; else none)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    return sorted({line.split()[-1] for line in maps.splitlines()
                   if "/" in line and Path(line.split()[-1]).name.startswith("libmpi.so")})
