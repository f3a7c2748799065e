"""Property tests of the checkpoint reader: random bytes, damaged checkpoints, and headers or
tensors edited under a valid digest are refused in one line (an `XpnetError`) or load the
same network; never another exception.

Each test is bounded (tests/fuzz_settings.py); a failure prints the smallest input
hypothesis found, which is the bug report.
"""

from __future__ import annotations

import functools
import json

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model import Network
from xpnet.model.checkpoint import _digest, from_bytes, read, to_bytes
from xpnet.train.state import TrainingState

from fuzz_settings import FAST, SLOWER


@functools.lru_cache(maxsize=None)
def valid_checkpoint():
    """(bytes, network) of a small checkpoint with an Adam training state."""
    numpy = resolve_backend("numpy")
    net = Network.from_sizes([3, 4, 2], numpy, seed=1)
    state = TrainingState.fresh(net, "adam", 0.01, seed=0)
    extra, entry = state.to_checkpoint()
    return to_bytes(net, {"epochs": 1, **entry}, extra), net


def load_all(data: bytes):
    """Everything xpnet does with checkpoint bytes: parse, build the network, rebuild the state."""
    numpy = resolve_backend("numpy")
    net, meta = from_bytes(data, numpy, source="fuzzed")
    tensors, _ = read(data, "fuzzed")
    TrainingState.from_checkpoint(net, tensors, meta, "fuzzed")
    return net


def refused_in_one_line(data: bytes):
    try:
        return load_all(data)
    except XpnetError as exc:
        assert "\n" not in str(exc)
        return None


@FAST
@given(data=st.binary(max_size=400))
def test_checkpoint_reader_on_random_bytes(data):
    assert refused_in_one_line(data) is None


@FAST
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=6),
       cut=st.integers(0, 10**6), truncate=st.booleans())
def test_checkpoint_reader_on_damaged_checkpoints(flips, cut, truncate):
    data, net = valid_checkpoint()
    damaged = bytearray(data)
    for where, mask in flips:
        damaged[where % len(damaged)] ^= mask
    if truncate:
        damaged = damaged[:cut % len(damaged)]
    loaded = refused_in_one_line(bytes(damaged))
    if loaded is not None:  # a harmless change (header padding): the same network
        for a, b in zip(loaded.params, net.params):
            np.testing.assert_array_equal(a, b)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def replace_at(obj, path: list[int], value):
    """A copy of JSON `obj` with the node reached by following `path` (indices mod size) replaced."""
    if not path or not isinstance(obj, (dict, list)) or not obj:
        return value
    keys = list(obj) if isinstance(obj, dict) else list(range(len(obj)))
    key = keys[path[0] % len(keys)]
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[key] = replace_at(obj[key], path[1:], value)
    return copy


def resigned(tensors: dict, metadata: dict) -> bytes:
    """A checkpoint with a freshly computed digest, as a bug (or an attacker) could write it."""
    from safetensors.numpy import save

    header = {k: v for k, v in metadata.items() if k != "digest"}
    header["digest"] = _digest(tensors, header)
    return save(tensors, metadata=header)


@SLOWER
@given(entry=st.sampled_from(["architecture", "training_state", "epochs", "format", "version"]),
       path=st.lists(st.integers(0, 50), max_size=4), value=json_values, raw_text=st.booleans())
@example(entry="training_state", path=[0], value=float("inf"), raw_text=False)  # epoch = Infinity
@example(entry="training_state", path=[5], value={"state": {"state": -1, "inc": 1}}, raw_text=False)
@example(entry="architecture", path=[0], value=[3, 4, 2, 7], raw_text=False)
def test_checkpoint_reader_on_edited_headers_with_a_valid_digest(entry, path, value, raw_text):
    """Past the integrity check: any architecture or training state is refused in one line."""
    data, _ = valid_checkpoint()
    from safetensors.numpy import load

    tensors = load(data)
    size = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8:8 + size])["__metadata__"]
    if raw_text:  # not even JSON
        metadata[entry] = json.dumps(value)[::-1]
    elif entry in ("format", "version"):  # plain strings in the header, not JSON
        metadata[entry] = json.dumps(value)
    else:
        metadata[entry] = json.dumps(replace_at(json.loads(metadata[entry]), path, value))
    refused_in_one_line(resigned(tensors, metadata))


@SLOWER
@given(name=st.sampled_from(["layers.0.W", "layers.1.b", "optimizer.m.0", "optimizer.v.3"]),
       shape=st.lists(st.integers(0, 5), max_size=3), dtype=st.sampled_from(["float32", "float64", "int32",
                                                                               "uint8", "float16"]),
       drop=st.booleans())
def test_checkpoint_reader_on_swapped_tensors_with_a_valid_digest(name, shape, dtype, drop):
    data, _ = valid_checkpoint()
    from safetensors.numpy import load

    tensors = load(data)
    size = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8:8 + size])["__metadata__"]
    if drop:
        del tensors[name]
    else:
        tensors[name] = np.ones(shape, dtype=dtype)
    refused_in_one_line(resigned(tensors, metadata))
