"""Checkpoints in the safetensors format: named tensors plus a JSON header.

safetensors stores raw little-endian tensors and a small JSON header and cannot run code on
load (unlike pickle), and PyTorch, numpy and others read it directly. Tensors are named
`layers.{i}.W` / `layers.{i}.b`, the input and target scaling the network was trained under
`scaling.x_shift` ... (model/scaling.py); the architecture, the task (classes or values), the
softmax temperature fitted for calibrated probabilities (1 where none was), the scaling's names and training metadata (backend, dtype, seed, epochs, accuracy...) are JSON
strings in the header's `__metadata__`. A checkpoint from before scaling and the task were
recorded loads as a network that takes its inputs as they came, its task guessed from its make.

This module turns a network into bytes and back; writing files (atomically) is train's job.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from xpnet.backends import Backend
from xpnet.model.activations import ModelError
from xpnet.model.dense import Dense
from xpnet.model.layers import layer_from
from xpnet.model.network import Network
from xpnet.model.scaling import PREFIX as SCALING_PREFIX, Scaling

FORMAT = "xpnet-checkpoint"
VERSION = "1"
RESERVED = ("format", "version", "architecture", "digest", "scaling", "task", "temperature")  # header entries metadata cannot replace


class CheckpointError(ModelError):
    """A file that is not a usable xpnet checkpoint."""


def to_bytes(net: Network, metadata: dict | None = None, extra: dict[str, np.ndarray] | None = None) -> bytes:
    """Serialise the weights (and optional extra host tensors, e.g. optimizer state)."""
    from safetensors.numpy import save

    clash = sorted(set(metadata or {}) & set(RESERVED))
    if clash:
        raise CheckpointError(f"metadata {', '.join(map(repr, clash))} would replace the checkpoint's own "
                              f"entries ({', '.join(RESERVED)}): rename it")
    tensors = tensor_dict(net)
    tensors.update(extra or {})
    header = {"format": FORMAT, "version": VERSION, "architecture": json.dumps(net.architecture()),
              "task": json.dumps("regression" if net.is_regression else "classification"),
              "temperature": json.dumps(net.temperature)}
    if net.scaling is not None:
        tensors.update(net.scaling.tensors())
        header["scaling"] = json.dumps(net.scaling.entry())
    header.update({k: json.dumps(v) for k, v in (metadata or {}).items()})
    header["digest"] = _digest(tensors, header)
    return save(tensors, metadata=header)


def tensor_dict(net: Network) -> dict[str, np.ndarray]:
    """layers.{i}.W and layers.{i}.b of each layer i with weights, in PyTorch's layouts
    (Linear's (out, in), Conv2d's (filters, channels, height, width))."""
    out = {}
    for i, layer in enumerate(net.layers):
        for name, param in zip(("W", "b"), layer.params):
            out[f"layers.{i}.{name}"] = net.backend.to_numpy(param)
    return out


def read(data: bytes, source: str = "checkpoint") -> tuple[dict[str, np.ndarray], dict]:
    """Parse checkpoint bytes into (tensors, metadata), verifying format and digest."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    header = _header(data, source)
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{source} is a safetensors file but not an xpnet checkpoint (no xpnet header)")
    if header.get("version") != VERSION:
        raise CheckpointError(f"{source} is an xpnet checkpoint of version {header.get('version')!r}; "
                              f"this xpnet reads version {VERSION}")
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{source} is damaged: {str(exc).splitlines()[0]}") from None
    if _digest(tensors, header) != header.get("digest"):
        raise CheckpointError(f"{source} fails its integrity check (edited or corrupted): retrain or restore it")
    meta = {}
    for key, value in header.items():
        try:
            meta[key] = json.loads(value) if key not in ("format", "version", "digest") else value
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deep
            raise CheckpointError(f"{source} has an unreadable header entry {key!r}") from None
    return tensors, meta


def from_bytes(data: bytes, backend: Backend, source: str = "checkpoint",
               expect: dict | None = None) -> tuple[Network, dict]:
    """Rebuild the network on `backend`. `expect` (sizes/activations/loss) must match if given."""
    tensors, meta = read(data, source)
    return from_tensors(tensors, meta, backend, source, expect), meta


def from_tensors(tensors: dict, meta: dict, backend: Backend, source: str = "checkpoint",
                 expect: dict | None = None) -> Network:
    """The network described by an already-read (tensors, metadata) pair, checked against `expect`."""
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{source} does not describe a network (its architecture entry is not an object)")
    if expect:
        for key, want in expect.items():
            if want is not None and arch.get(key) != want:
                raise CheckpointError(f"{source} holds {key}={arch.get(key)}, not the asked {want}")
    net = build(tensors, arch, backend, source)
    # an older checkpoint has no task: its make decides, once, so learning goes on as it was
    net.regression = meta["task"] == "regression" if meta.get("task") in ("regression", "classification") \
        else net.is_regression
    net.scaling = _scaling(meta.get("scaling"), tensors, net, source)
    net.temperature = _temperature(meta.get("temperature", 1.0), source)  # older checkpoints: none fitted
    return net


def _temperature(value, source: str) -> float:
    """The fitted softmax temperature: a finite number above 0, or the file is damaged."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise CheckpointError(f"{source}: its temperature {value!r} is not a finite number above 0 "
                              "(damaged or from another program)")
    return float(value)


def _scaling(entry, tensors: dict, net: Network, source: str) -> Scaling:
    """The recorded scaling, each part the width of the side it scales."""
    scaling = Scaling.from_checkpoint(entry, tensors)
    for name, width in (("x_shift", net.sizes[0]), ("x_scale", net.sizes[0]),
                        ("y_shift", net.sizes[-1]), ("y_scale", net.sizes[-1])):
        part = getattr(scaling, name)
        if part is not None and (part.shape != (width,) or part.dtype.kind != "f" or not np.all(np.isfinite(part))):
            raise CheckpointError(f"{source}: its {SCALING_PREFIX}{name} is not {width} finite numbers "
                                  "(damaged or from another program)")
    return scaling


def build(tensors: dict, arch: dict, backend: Backend, source: str) -> Network:
    if "layers" in arch:
        return _build_layers(tensors, arch, backend, source)
    try:
        sizes, acts, loss = arch["sizes"], arch["activations"], arch["loss"]
        layers = []
        for i, act in enumerate(acts):
            W, b = tensors[f"layers.{i}.W"], tensors[f"layers.{i}.b"]
            if W.dtype.kind != "f" or b.dtype.kind != "f":
                raise CheckpointError(f"{source}: layer {i} tensors are {W.dtype} and {b.dtype}, not floats")
            if W.shape != (sizes[i + 1], sizes[i]) or b.shape != (sizes[i + 1],):
                raise CheckpointError(f"{source}: layer {i} tensors have shapes {W.shape}, {b.shape}, "
                                      f"not those of a {sizes[i]}->{sizes[i + 1]} layer")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):  # it would answer NaN, or resume into it
                raise CheckpointError(f"{source}: layer {i} holds NaN or infinite weights, so the network "
                                      "cannot compute anything; retrain it or restore an earlier checkpoint")
            layers.append(Dense(backend.asarray(W), backend.asarray(b), act, backend))
        return Network(layers, loss)
    except CheckpointError:
        raise
    except ModelError as exc:  # an unknown activation or loss, layers that do not chain
        raise CheckpointError(f"{source} describes a network xpnet cannot build: {exc}") from None
    except (KeyError, TypeError, IndexError) as exc:
        raise CheckpointError(f"{source} does not describe a complete network (missing {exc})") from None


def _build_layers(tensors: dict, arch: dict, backend: Backend, source: str) -> Network:
    """A network of any layers: the input shape, then each layer's description, its
    parameters named layers.{i}.W and layers.{i}.b after its place in the sequence."""
    try:
        layers, shape = [], tuple(int(s) for s in arch["input"])
        for i, desc in enumerate(arch["layers"]):
            names = [f"layers.{i}.W", f"layers.{i}.b"] if desc.get("kind") in ("dense", "conv") else []
            params = [tensors[name] for name in names]
            if any(p.dtype.kind != "f" for p in params):
                raise CheckpointError(f"{source}: layer {i} tensors are not floats")
            if not all(np.isfinite(p).all() for p in params):  # it would answer NaN, or resume into it
                raise CheckpointError(f"{source}: layer {i} holds NaN or infinite weights, so the network "
                                      "cannot answer; retrain it or restore an earlier checkpoint")
            layers.append(layer_from(desc, shape, backend, params or None))
            shape = layers[-1].out_shape
        return Network(layers, arch["loss"])
    except CheckpointError:
        raise
    except ModelError as exc:
        raise CheckpointError(f"{source} describes a network xpnet cannot build: {exc}") from None
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source} does not describe a complete network (missing {exc})") from None


def _header(data: bytes, source: str) -> dict:
    """The safetensors header's metadata, read by hand to give a one-line error on junk."""
    if len(data) < 8:
        raise CheckpointError(f"{source} is not a checkpoint (too short to be a safetensors file)")
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or 8 + size > len(data):
        raise CheckpointError(f"{source} is not a checkpoint or is truncated (header length {size} "
                              f"does not fit in {len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise CheckpointError(f"{source} is not a checkpoint (its header is not JSON)") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def _digest(tensors: dict[str, np.ndarray], header: dict) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes plus the header entries."""
    h = hashlib.sha256()
    for key in sorted(header):
        if key != "digest":
            h.update(f"{key}={header[key]}\n".encode())
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}\n".encode())
        h.update(arr.tobytes())
    return h.hexdigest()
