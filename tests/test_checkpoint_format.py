"""The checkpoint bytes: safetensors tensors plus an xpnet header, and every way they can be bad.

`model.checkpoint` works on bytes only (files are train's business), so these tests never
touch the disk. Every refusal is a CheckpointError with a one-line message.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.model import CheckpointError, ModelError, Network
from xpnet.model import checkpoint
from assertions import assert_on, one_line

SIZES = [3, 5, 4]
META = {"seed": 7, "epochs": 12, "accuracy": 0.875, "backend": "numpy", "note": "circle"}


def trained_like(backend, seed=1):
    """A network with non-zero biases too, so every tensor carries information."""
    net = Network.from_sizes(SIZES, backend, activation="tanh", seed=seed)
    rng = np.random.default_rng(seed + 100)
    for layer in net.layers:
        layer.b[...] = backend.asarray(rng.standard_normal(tuple(layer.b.shape)))
    return net


def host_inputs(n=6):
    return np.random.default_rng(0).standard_normal((n, SIZES[0]))


@pytest.fixture
def saved(reference):
    net = trained_like(reference)
    return net, checkpoint.to_bytes(net, META)


def expect_refusal(data, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        checkpoint.from_bytes(data, resolve_backend("numpy", "cpu", "float64"), source="ck.safetensors", **kwargs)
    return one_line(info.value)


def header_of(data: bytes) -> tuple[int, dict]:
    size = int.from_bytes(data[:8], "little")
    return size, json.loads(data[8:8 + size])


# -- round trips -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_on_every_backend_gives_identical_predictions(backend, dtype):
    b = backend.with_dtype(dtype)
    net = trained_like(b)
    data = checkpoint.to_bytes(net, META)
    assert isinstance(data, bytes)
    again, meta = checkpoint.from_bytes(data, b)
    assert again.architecture() == net.architecture() and again.backend is b
    for p, q in zip(again.params, net.params):
        assert_on(b, p, tuple(q.shape))
        np.testing.assert_array_equal(b.to_numpy(p), b.to_numpy(q))
    np.testing.assert_array_equal(again.predict_proba(host_inputs()), net.predict_proba(host_inputs()))
    assert {k: meta[k] for k in META} == META  # numbers and strings come back as they went in
    assert meta["format"] == "xpnet-checkpoint" and meta["version"] == "1"
    assert meta["architecture"] == net.architecture()


def test_checkpoint_content_does_not_depend_on_the_backend(backend, reference):
    """The same weights saved from any backend hold the same tensors and the same digest.
    (Not always the same bytes: safetensors writes the metadata in hash-map order.)"""
    tensors, meta = checkpoint.read(checkpoint.to_bytes(trained_like(backend), META))
    ref_tensors, ref_meta = checkpoint.read(checkpoint.to_bytes(trained_like(reference), META))
    assert meta == ref_meta  # digest included
    assert sorted(tensors) == sorted(ref_tensors)
    for name in tensors:
        np.testing.assert_array_equal(tensors[name], ref_tensors[name], strict=True)


def test_saved_from_torch_loads_on_numpy_identically(reference):
    try:
        torch_b = resolve_backend("torch", "cpu", "float64")
    except Exception as exc:  # BackendError: no torch here
        pytest.skip(f"torch unavailable here: {exc}")
    net = trained_like(torch_b)
    again, _ = checkpoint.from_bytes(checkpoint.to_bytes(net), reference)
    assert_on(reference, again.layers[0].W, (SIZES[1], SIZES[0]))
    for p, q in zip(again.params, net.params):
        np.testing.assert_array_equal(reference.to_numpy(p), torch_b.to_numpy(q))
    np.testing.assert_allclose(again.predict_proba(host_inputs()), net.predict_proba(host_inputs()),
                               rtol=1e-13, atol=1e-16)


def test_float32_checkpoint_loads_into_a_float64_backend(reference):
    single = trained_like(reference.with_dtype("float32"))
    tensors, _ = checkpoint.read(checkpoint.to_bytes(single))
    assert all(t.dtype == np.float32 for t in tensors.values())
    again, _ = checkpoint.from_bytes(checkpoint.to_bytes(single), reference)
    assert_on(reference, again.layers[0].W)
    np.testing.assert_array_equal(again.layers[0].W, single.layers[0].W.astype(np.float64))


def test_the_bytes_open_in_pytorch(saved):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors.torch is unavailable")
    net, data = saved
    tensors = safetensors_torch.load(data)
    assert sorted(tensors) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    for i, layer in enumerate(net.layers):
        assert tensors[f"layers.{i}.W"].dtype == torch.float64
        np.testing.assert_array_equal(tensors[f"layers.{i}.W"].numpy(), layer.W)
        np.testing.assert_array_equal(tensors[f"layers.{i}.b"].numpy(), layer.b)


def test_the_bytes_open_with_plain_safetensors_numpy(saved):
    from safetensors.numpy import load

    net, data = saved
    np.testing.assert_array_equal(load(data)["layers.1.W"], net.layers[1].W)
    _, header = header_of(data)
    assert header["__metadata__"]["format"] == "xpnet-checkpoint"
    assert json.loads(header["__metadata__"]["architecture"])["sizes"] == SIZES


def test_extra_tensors_travel_with_the_weights(reference):
    net = trained_like(reference)
    velocity = np.arange(15.0).reshape(5, 3)
    tensors, _ = checkpoint.read(checkpoint.to_bytes(net, extra={"optimizer.velocity.0": velocity}))
    np.testing.assert_array_equal(tensors["optimizer.velocity.0"], velocity)


def test_expect_that_matches_is_accepted(saved):
    _, data = saved
    net, _ = checkpoint.from_bytes(data, resolve_backend("numpy", "cpu", "float64"),
                                   expect={"sizes": SIZES, "activations": None, "loss": "cross_entropy"})
    assert net.sizes == SIZES


# -- refusals --------------------------------------------------------------------------

def test_every_truncation_is_refused(saved):
    _, data = saved
    for cut in range(len(data)):
        with pytest.raises(CheckpointError) as info:
            checkpoint.read(data[:cut])
        one_line(info.value)


@pytest.mark.parametrize("junk", [b"", b"\x00" * 8, b"hello, world", b"\xff" * 64,
                                  (12).to_bytes(8, "little") + b"not json at all!",
                                  (2).to_bytes(8, "little") + b"\xc3\x28", (4).to_bytes(8, "little") + b"[1] "],
                         ids=["empty", "zero-length-header", "text", "ff", "bad-json", "bad-utf8", "json-list"])
def test_junk_is_refused(junk):
    expect_refusal(junk)


def test_random_bytes_are_refused():
    rng = np.random.default_rng(0)
    for size in (9, 100, 1000):
        for _ in range(20):
            expect_refusal(rng.integers(0, 256, size, dtype=np.uint8).tobytes())


def test_a_safetensors_file_that_is_not_a_checkpoint_is_refused():
    from safetensors.numpy import save

    text = expect_refusal(save({"embedding": np.zeros((4, 2), np.float32)}))
    assert "not an xpnet checkpoint" in text
    text = expect_refusal(save({"x": np.zeros(2)}, metadata={"format": "pt"}))
    assert "not an xpnet checkpoint" in text


def tamper(data: bytes, old: str, new: str) -> bytes:
    """Replace text inside the JSON header, keeping its length so the file stays well formed."""
    size, _ = header_of(data)
    head = data[8:8 + size].decode()
    assert len(old) == len(new) and head.count(old) == 1, f"{old!r} is not in the header once"
    edited = data[:8] + head.replace(old, new).encode() + data[8 + size:]
    assert len(edited) == len(data) and header_of(edited)[0] == size
    return edited


@pytest.mark.parametrize("old,new", [
    ('"seed":"7"', '"seed":"8"'),                      # a metadata value
    ('"accuracy":"0.875"', '"accuracy":"0.999"'),      # a flattering edit
    ('\\"tanh\\"', '\\"relu\\"'),                      # the architecture itself
], ids=["seed", "accuracy", "activation"])
def test_a_tampered_header_fails_the_integrity_check(saved, old, new):
    _, data = saved
    assert "integrity" in expect_refusal(tamper(data, old, new))


def test_tampered_tensor_bytes_fail_the_integrity_check(saved):
    _, data = saved
    edited = bytearray(data)
    edited[-3] ^= 0x01  # one bit of the last bias
    assert "integrity" in expect_refusal(bytes(edited))


def test_every_single_byte_corruption_is_refused_or_harmless(saved):
    """Flip each byte in turn: the result is a CheckpointError, never another exception,
    and never a silently different network."""
    net, data = saved
    reference = resolve_backend("numpy", "cpu", "float64")
    for i in range(len(data)):
        edited = bytearray(data)
        edited[i] ^= 0x20
        try:
            again, _ = checkpoint.from_bytes(bytes(edited), reference)
        except CheckpointError as exc:
            one_line(exc)
            continue
        for p, q in zip(again.params, net.params):  # a flip in padding may be harmless
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("expect,word", [({"sizes": [3, 6, 4]}, "sizes"), ({"loss": "quadratic"}, "loss"),
                                         ({"activations": ["relu", "identity"]}, "activations")])
def test_a_mismatched_expected_architecture_is_refused(saved, expect, word):
    _, data = saved
    text = expect_refusal(data, expect=expect)
    assert word in text and "ck.safetensors" in text


def craft(tensors: dict, architecture, version: str = "1", **meta) -> bytes:
    """A checkpoint made by hand with a *valid* digest: the digest guards against accidents,
    not forgery, so what it vouches for must still be checked."""
    from safetensors.numpy import save

    header = {"format": "xpnet-checkpoint", "version": version, "architecture": json.dumps(architecture)}
    header.update({k: json.dumps(v) for k, v in meta.items()})
    header["digest"] = checkpoint._digest(tensors, header)
    return save(tensors, metadata=header)


def good_tensors(dtype=np.float64) -> dict:
    net = trained_like(resolve_backend("numpy", "cpu", "float64"))
    return {k: v.astype(dtype) for k, v in checkpoint.tensor_dict(net).items()}


GOOD_ARCH = {"sizes": SIZES, "activations": ["tanh", "identity"], "loss": "cross_entropy"}


def test_a_crafted_checkpoint_with_a_valid_digest_loads():
    net, _ = checkpoint.from_bytes(craft(good_tensors(), GOOD_ARCH), resolve_backend("numpy", "cpu", "float64"))
    assert net.architecture() == GOOD_ARCH


@pytest.mark.parametrize("architecture", [
    "a string", [3, 5, 4], {"sizes": SIZES}, {**GOOD_ARCH, "sizes": [3, 5]},
    {**GOOD_ARCH, "sizes": [3, 6, 4]}, {**GOOD_ARCH, "activations": ["swish", "identity"]},
    {**GOOD_ARCH, "loss": "hinge"},
], ids=["string", "list", "incomplete", "too-few-sizes", "wrong-shapes", "unknown-activation", "unknown-loss"])
@pytest.mark.parametrize("with_expect", [False, True], ids=["plain", "expect"])
def test_a_checkpoint_describing_an_impossible_network_is_refused(architecture, with_expect):
    data = craft(good_tensors(), architecture)
    expect = {"sizes": SIZES} if with_expect else None
    text = expect_refusal(data, expect=expect)
    assert "ck.safetensors" in text


def test_a_checkpoint_of_an_unknown_format_version_is_refused():
    """A future layout must not be read as if it were this one."""
    text = expect_refusal(craft(good_tensors(), GOOD_ARCH, version="2"))
    assert "version" in text


def test_integer_weights_are_refused():
    assert "ck.safetensors" in expect_refusal(craft(good_tensors(np.int32), GOOD_ARCH))


@pytest.mark.parametrize("key", ["format", "version", "architecture", "digest"])
def test_metadata_cannot_overwrite_the_checkpoint_own_entries(reference, key):
    """A caller's metadata named like a header entry must not silently replace it: either
    to_bytes refuses it, or the checkpoint still reads back as the network it holds."""
    net = trained_like(reference)
    try:
        data = checkpoint.to_bytes(net, {key: {"sizes": [9, 9]}})
    except ModelError as exc:
        one_line(exc)
        return
    again, meta = checkpoint.from_bytes(data, reference)
    assert again.architecture() == net.architecture() and meta["format"] == "xpnet-checkpoint"


def test_checkpoint_errors_are_model_errors():
    assert issubclass(CheckpointError, ModelError)
