"""Saving and loading checkpoint files (the format itself lives in model/checkpoint.py)."""

from __future__ import annotations

from pathlib import Path

from backends import Backend
from model import Network
from model.checkpoint import CheckpointError, from_bytes, from_tensors, read, to_bytes
from train.files import atomic_write
from train.state import TrainingState

CHECKPOINT_NAME = "model.safetensors"


def save_checkpoint(net: Network, path: str | Path, metadata: dict | None = None,
                    state: TrainingState | None = None) -> Path:
    """Write `net`, its training metadata and (to resume) the training state, atomically."""
    meta = {"backend": net.backend.name, "device": net.backend.device_name, "dtype": net.backend.dtype_name}
    meta.update(metadata or {})
    extra = {}
    if state is not None:
        extra, entry = state.to_checkpoint()
        meta.update(entry)
    return atomic_write(path, to_bytes(net, meta, extra))


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the one inside a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path: str | Path, backend: Backend, expect: dict | None = None) -> tuple[Network, dict]:
    """Load a checkpoint file (or a run folder's) onto `backend`; one-line errors on bad files."""
    path = checkpoint_path(path)
    return from_bytes(_read(path), backend, source=str(path), expect=expect)


def load_for_resume(path: str | Path, backend: Backend, expect: dict | None = None):
    """(network, metadata, training state) from a run's checkpoint, to carry on training."""
    path = checkpoint_path(path)
    tensors, meta = read(_read(path), str(path))  # parsed and digest-checked once
    net = from_tensors(tensors, meta, backend, str(path), expect)
    return net, meta, TrainingState.from_checkpoint(net, tensors, meta, str(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
