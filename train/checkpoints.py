"""Saving and loading checkpoint files (the format itself lives in model/checkpoint.py)."""

from __future__ import annotations

from pathlib import Path

from backends import Backend
from model import Network
from model.checkpoint import CheckpointError, from_bytes, to_bytes
from train.files import atomic_write

CHECKPOINT_NAME = "model.safetensors"


def save_checkpoint(net: Network, path: str | Path, metadata: dict | None = None) -> Path:
    """Write `net` and its training metadata to `path`, atomically."""
    meta = {"backend": net.backend.name, "device": net.backend.device_name, "dtype": net.backend.dtype_name}
    meta.update(metadata or {})
    return atomic_write(path, to_bytes(net, meta))


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the one inside a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path: str | Path, backend: Backend, expect: dict | None = None) -> tuple[Network, dict]:
    """Load a checkpoint file (or a run folder's) onto `backend`; one-line errors on bad files."""
    path = checkpoint_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    return from_bytes(data, backend, source=str(path), expect=expect)
