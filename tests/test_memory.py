"""Memory limits: data sets too big for the device are streamed; running out is one line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xpnet.train.loop as loop
from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train import learn
from xpnet.train.device_data import DeviceData
from xpnet.train.memory import OutOfMemory


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    return X, y


def with_free_memory(backend, free_bytes):
    """The same backend, reporting `free_bytes` of device memory (as a small GPU would)."""
    return dataclasses.replace(backend, free_memory_fn=lambda: free_bytes)


def test_a_set_that_fits_moves_to_the_device_once(backend):
    X, y = blobs()
    net = Network.from_sizes([5, 8, 3], with_free_memory(backend, 10**12))
    data = DeviceData.from_host(net, X, y)
    assert not data.streamed
    assert type(data.X) is type(backend.asarray(np.zeros(1)))


def test_a_set_larger_than_free_memory_is_streamed_and_trains_identically(backend):
    X, y = blobs()
    small = with_free_memory(backend, 1000)  # far less than the 300 x 8 floats
    streamed = Network.from_sizes([5, 8, 3], small, activation="tanh", seed=3)
    resident = Network.from_sizes([5, 8, 3], backend, activation="tanh", seed=3)
    assert DeviceData.from_host(streamed, X, y).streamed
    assert isinstance(DeviceData.from_host(streamed, X, y).X, np.ndarray)  # stays on the host
    for net in (streamed, resident):  # ordinary steps both: a streamed set is never replayed from a graph,
        # and a graph's epoch totals add in another order (tests/test_graphs.py holds those to 1e-12)
        learn(net, (X, y), epochs=3, batch_size=32, lr=0.3, validation=(X[:50], y[:50]), log=None,
              cuda_graphs=False)
    for a, b in zip(streamed.params, resident.params):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    for key in ("val_loss", "loss", "accuracy"):  # the labels for accuracy come from the host too
        assert [r[key] for r in streamed.history] == [r[key] for r in resident.history]


class OutOfMemoryError(RuntimeError):
    """Named like cupy.cuda.memory.OutOfMemoryError and torch.OutOfMemoryError."""


@pytest.mark.parametrize("raised, where", [(OutOfMemoryError("cudaMalloc failed"), "GPU"),
                                           (MemoryError(), "host")])
def test_running_out_of_memory_is_one_line_naming_the_batch_size(monkeypatch, raised, where):
    def failing_epoch(*args, **kwargs):
        raise raised

    monkeypatch.setattr(loop, "run_epoch", failing_epoch)
    X, y = blobs()
    net = Network.from_sizes([5, 8, 3], resolve_backend("numpy"))
    with pytest.raises(OutOfMemory) as info:
        learn(net, (X, y), epochs=1, batch_size=256, log=None)
    message = str(info.value)
    assert "\n" not in message and where in message
    assert "batch size 256" in message and "--batch-size 128" in message


def test_a_step_past_half_the_hosts_memory_is_refused_before_it_is_taken(monkeypatch):
    """Linux kills (SIGKILL, no message) a process that touches memory it does not have, so a
    step too big is refused first, naming its biggest layer and a batch size that fits."""
    import xpnet.train.memory as memory

    net = Network.from_layers(["conv8x3", 4], (1, 6, 6), 3, resolve_backend("numpy"))
    per_row = sum(layer.floats_per_row() for layer in net.layers) * 4  # the float32 bytes a row holds
    monkeypatch.setattr(memory, "memory_budget", lambda: 10 * per_row)
    monkeypatch.setattr(loop, "run_epoch", lambda *a, **k: pytest.fail("a step was taken"))
    X, y = np.random.default_rng(0).random((64, 36)), np.arange(64) % 3
    with pytest.raises(OutOfMemory) as info:
        learn(net, (X, y), epochs=1, batch_size=32, log=None)
    assert "\n" not in str(info.value) and "batch size 32" in str(info.value)
    assert "conv8x3 the most" in str(info.value) and "try --batch-size 10" in str(info.value)
    memory.check_step_fits(net, 10)  # the batch it advised fits
    on_a_gpu = Network.from_layers(["conv8x3", 4], (1, 6, 6), 3, with_free_memory(resolve_backend("numpy"), 1))
    memory.check_step_fits(on_a_gpu, 10**6)  # device memory: its allocator refuses in time, and is caught


def test_other_errors_are_not_mistaken_for_memory(monkeypatch):
    monkeypatch.setattr(loop, "run_epoch", lambda *a, **k: (_ for _ in ()).throw(ValueError("bug")))
    X, y = blobs()
    with pytest.raises(ValueError, match="bug"):
        learn(Network.from_sizes([5, 3], resolve_backend("numpy")), (X, y), epochs=1, log=None)


def test_tf32_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv("XPNET_TF32", raising=False)
    assert resolve_backend("numpy").tf32 is False
    monkeypatch.setenv("XPNET_TF32", "1")
    assert resolve_backend("numpy").tf32 is False  # a CPU has no TF32 to turn on


@pytest.mark.parametrize("name", ["torch", "cupy"])
def test_tf32_on_a_gpu_is_an_explicit_opt_in(name, monkeypatch):
    from conftest import make_backend

    monkeypatch.delenv("XPNET_TF32", raising=False)
    monkeypatch.delenv("CUPY_TF32", raising=False)
    backend = make_backend(name, "cuda", "float32")
    assert backend.tf32 is False
    if name == "torch":
        import torch

        assert torch.backends.cuda.matmul.allow_tf32 is False
        assert resolve_backend("torch", "cuda", tf32=True).tf32 is True
        assert torch.backends.cuda.matmul.allow_tf32 is True
        resolve_backend("torch", "cuda")  # back off for the tests after this one
        assert torch.backends.cuda.matmul.allow_tf32 is False
