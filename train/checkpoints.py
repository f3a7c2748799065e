"""Saving and loading checkpoint files (the format itself lives in model/checkpoint.py)."""

from __future__ import annotations

from pathlib import Path

from xpnet.backends import Backend, resolve_backend
from xpnet.model import Network
from xpnet.model.checkpoint import CheckpointError, from_bytes, from_tensors, read, to_bytes
from xpnet.train.files import OUT_ADVICE, atomic_write, is_regular
from xpnet.train.state import TrainingState

CHECKPOINT_NAME = "model.safetensors"


API_SAVE_ADVICE = "free space or save to another path"  # `save` is called with a path, not --out


def save_checkpoint(net: Network, path: str | Path, metadata: dict | None = None,
                    state: TrainingState | None = None, advice: str = OUT_ADVICE) -> Path:
    """Write `net`, its training metadata and (to resume) the training state, atomically; a
    failed write is one line ending in `advice`."""
    meta = {"backend": net.backend.name, "device": net.backend.device_name, "dtype": net.backend.dtype_name}
    meta.update(metadata or {})
    extra = {}
    if state is not None:
        extra, entry = state.to_checkpoint()
        meta.update(entry)
    return atomic_write(path, to_bytes(net, meta, extra), advice)


def save(model: Network, path: str | Path, *, classes=None) -> Path:
    """Save a model to a file (given a folder, its model.safetensors): the weights, the
    architecture and the class names (`classes`, else `model.classes`), so `load` rebuilds it
    on any backend. Returns the file written. The scaling the model was trained under
    (`model.scaling`) is saved with it, so the loaded model takes raw inputs too."""
    names = classes if classes is not None else model.classes
    if names and len(names) != model.sizes[-1]:
        raise CheckpointError(f"{len(names)} class names for a network of {model.sizes[-1]} outputs: give one "
                              "name per output")
    if names and len(set(map(str, names))) != len(names):  # two outputs one name: answers that cannot be told apart
        raise CheckpointError(f"class names must differ, got {list(names)}")
    return save_checkpoint(model, checkpoint_path(path), {"classes": list(names)} if names else None,
                           advice=API_SAVE_ADVICE)


def load(path: str | Path, backend: Backend | str | None = None, *, device: str | None = None,
         dtype: str | None = None) -> Network:
    """A saved model (a file, or a run folder from `xpnet train`) on `backend`: a Backend, or a
    name (numpy, cupy, torch, array_api_strict, auto; None: $XPNET_BACKEND, else auto), in
    the dtype it was saved in unless `dtype` says otherwise. Its class names are `model.classes`."""
    path = checkpoint_path(path)
    tensors, meta = read(_read(path), str(path))
    if not isinstance(backend, Backend):
        backend = resolve_backend(backend, device, dtype or meta.get("dtype"))
    elif device is not None:
        raise CheckpointError(f"device {device!r} given with a Backend, which has its own ({backend.device_name}): "
                              "give a backend name with it, or resolve the Backend on that device")
    elif dtype is not None:
        backend = backend.with_dtype(dtype)
    model = from_tensors(tensors, meta, backend, str(path))
    check_metadata(model, meta, str(path))
    model.classes = tuple(meta["classes"]) if meta.get("classes") else None
    return model


def checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or the one inside a run folder."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(path: str | Path, backend: Backend, expect: dict | None = None) -> tuple[Network, dict]:
    """Load a checkpoint file (or a run folder's) onto `backend`; one-line errors on bad files."""
    path = checkpoint_path(path)
    net, meta = from_bytes(_read(path), backend, source=str(path), expect=expect)
    return net, check_metadata(net, meta, str(path))


def load_for_resume(path: str | Path, backend: Backend, expect: dict | None = None):
    """(network, metadata, training state) from a run's checkpoint, to carry on training."""
    path = checkpoint_path(path)
    tensors, meta = read(_read(path), str(path))  # parsed and digest-checked once
    net = from_tensors(tensors, meta, backend, str(path), expect)
    check_metadata(net, meta, str(path))
    return net, meta, TrainingState.from_checkpoint(net, tensors, meta, str(path))


def check_metadata(net: Network, meta: dict, source: str) -> dict:
    """`meta`, once what the commands read from it is of the kind they expect: one class name
    per output of a classifier, each different; settings as `xpnet train` records them;
    a history of records with a loss. The digest proves only that a file is whole, and a file
    edited and signed again (or written by another program) was a traceback in evaluate,
    predict or report, or a class named `{}` in predict's answer."""
    classes, config, history = meta.get("classes"), meta.get("config"), meta.get("history")
    if classes and (not isinstance(classes, list) or not all(type(c) in (str, int) for c in classes)  # save() keeps ints
                    or len(set(map(str, classes))) != len(classes) or len(classes) != net.sizes[-1] or net.is_regression):
        what = "a regression network" if net.is_regression else f"{net.sizes[-1]} outputs"
        raise CheckpointError(f"{source}: its class names {str(classes)[:60]} are not one different name for each "
                              f"of {what} (damaged, or edited and signed again): retrain or restore it")
    counts_ok = isinstance(config, dict) and all(
        config.get(k) is None or (type(config.get(k)) is int and config[k] >= 1) for k in ("train_samples", "test_samples"))
    if config is not None and not (counts_ok and isinstance(config.get("data", ""), str)):
        raise CheckpointError(f"{source}: its record of the run's settings is damaged (edited and signed again?): "
                              "retrain or restore it")
    seed = meta.get("seed", 0)
    if type(seed) is not int or not 0 <= seed < 2**64:
        raise CheckpointError(f"{source}: its seed {str(seed)[:30]} is not a whole number from 0 to 2**64 - 1: "
                              "retrain or restore it")
    if history is not None and not (isinstance(history, list) and all(
            isinstance(r, dict) and type(r.get("loss")) in (int, float) for r in history)):
        raise CheckpointError(f"{source}: its copy of the history is damaged (a record without a loss): "
                              "retrain or restore it")
    return meta


def _read(path: Path) -> bytes:
    if path.exists() and not is_regular(path):
        raise CheckpointError(f"{path} is not a regular file (a named pipe, a device or a folder): a checkpoint "
                              "is a .safetensors file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}; give a run folder or a "
                              ".safetensors checkpoint") from None
