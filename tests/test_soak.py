"""A long run stays healthy: memory does not grow per epoch and throughput does not drift.

A small network trains for many epochs the way `xpnet train` does: validation every epoch,
the checkpoint and history.json rewritten after each. Two runs, because tracing memory
slows numpy several-fold and itself drifts as more blocks are traced:

- memory: the traced heap (Python objects and numpy buffers, via tracemalloc, measured
  after a full garbage collection so uncollected cycles do not pass for a leak) may grow
  only by about what the history itself keeps;
- throughput: the median cost of an epoch in the last third of the run must stay within a
  stated ratio of the first third's. An epoch's cost is the training thread's CPU time in
  `run_epoch` divided by that of a fixed reference workload timed right after it, since this
  machine's speed per CPU-second swings by up to 2x; medians, so a stray slow epoch cannot
  fake a drift either.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import tracemalloc

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.model import Network
import xpnet.train.loop as loop
from xpnet.train import learn
from xpnet.train.checkpoints import save_checkpoint
from xpnet.train.files import atomic_write_json

EPOCHS = 240  # the throughput run
MEMORY_EPOCHS = 160  # the traced run
WARM_UP = 40  # epochs before memory is measured: caches, BLAS buffers and first-use allocations settle
EVERY = 20  # epochs between memory measurements (each after a full garbage collection)
GROWTH_PER_EPOCH = 4096  # bytes; one history record is ~0.5 KiB, one leaked batch (32 x 32 float32) is 4 KiB a step
THROUGHPUT_RATIO = 0.85  # first third's median epoch cost over the last third's, both in reference units


def rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096
    except OSError:
        return None


def train_like_the_job(folder, epochs: int, after_epoch=None):
    """A 32-64-32-4 network, Adam, 512 samples in batches of 32 plus 128 for validation,
    the checkpoint and history rewritten after every epoch, as `xpnet train` does."""
    numpy = resolve_backend("numpy", "cpu", "float32")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((640, 32)).astype(np.float32)
    y = (X[:, :4].argmax(axis=1)).astype(np.int64)
    net = Network.from_sizes([32, 64, 32, 4], numpy, activation="relu", init="he", seed=0)

    def checkpoint(model, record, state):
        save_checkpoint(model, folder / "model.safetensors", {"epochs": record["epoch"]}, state)
        atomic_write_json(folder / "history.json", model.history)
        if after_epoch is not None:
            after_epoch(record["epoch"])

    learn(net, (X[:512], y[:512]), epochs=epochs, batch_size=32, lr=0.001, optimizer="adam",
          validation=(X[512:], y[512:]), log=None, on_epoch=checkpoint)
    assert len(net.history) == epochs and net.history[-1]["loss"] < net.history[0]["loss"]
    return net


@pytest.mark.slow
def test_many_epochs_without_memory_growth(tmp_path):
    traced, rss = {}, {}

    def measure(epoch: int) -> None:
        if epoch % EVERY == 0:
            gc.collect()
            traced[epoch] = tracemalloc.get_traced_memory()[0]
            rss[epoch] = rss_bytes()

    started = time.monotonic()
    tracemalloc.start()
    try:
        net = train_like_the_job(tmp_path, MEMORY_EPOCHS, measure)
    finally:
        tracemalloc.stop()
    history_bytes = sum(sys.getsizeof(r) + sum(sys.getsizeof(v) for v in r.values()) for r in net.history)
    per_epoch = (traced[MEMORY_EPOCHS] - traced[WARM_UP]) / (MEMORY_EPOCHS - WARM_UP)
    assert per_epoch < GROWTH_PER_EPOCH, (
        f"traced memory grew {per_epoch:.0f} B/epoch after warm-up (the history keeps "
        f"{history_bytes / MEMORY_EPOCHS:.0f} B/epoch): something is kept per epoch or per step")
    assert max(traced.values()) - traced[WARM_UP] < GROWTH_PER_EPOCH * MEMORY_EPOCHS, "a spike, not a slope"
    if rss[WARM_UP] is not None:  # the process as the OS sees it, a coarser view: 32 MiB of slack
        grew = rss[MEMORY_EPOCHS] - rss[WARM_UP]
        assert grew < 32 * 2**20, f"resident memory grew {grew / 2**20:.1f} MiB"
    assert time.monotonic() - started < 45, "the memory soak must stay well under a minute"


@pytest.mark.slow
def test_many_epochs_without_throughput_drift(tmp_path, monkeypatch):
    relative_cost = []  # each epoch's CPU time over a fixed reference workload's, timed right after it
    reference = reference_workload()

    def timed_epoch(*args, **kwargs):
        cpu = time.thread_time()
        record = real_run_epoch(*args, **kwargs)
        epoch_cpu = time.thread_time() - cpu
        relative_cost.append(epoch_cpu / reference())
        return record

    real_run_epoch = loop.run_epoch
    monkeypatch.setattr(loop, "run_epoch", timed_epoch)
    started = time.monotonic()
    train_like_the_job(tmp_path, EPOCHS)
    steady = relative_cost[10:]  # the first epochs warm caches up
    third = len(steady) // 3
    first, last = statistics.median(steady[:third]), statistics.median(steady[-third:])
    assert first / last > THROUGHPUT_RATIO, f"an epoch's cost drifted from {first:.2f} to {last:.2f} references"
    assert time.monotonic() - started < 30, "the throughput soak must stay well under a minute"


def reference_workload():
    """A function timing (in this thread's CPU seconds) a fixed, unchanging piece of work:
    gradients of a network like the job's on one batch, never updated. This machine's speed
    per CPU-second itself swings up to 2x within a minute (shared hosts), so an epoch's cost
    is measured in units of this reference, taken right after it."""
    numpy = resolve_backend("numpy", "cpu", "float32")
    net = Network.from_sizes([32, 64, 32, 4], numpy, activation="relu", init="he", seed=1)
    rng = np.random.default_rng(1)
    x = numpy.asarray(rng.standard_normal((32, 32)))
    t = numpy.asarray(np.eye(4)[rng.integers(0, 4, 32)])

    def cpu_seconds() -> float:
        cpu = time.thread_time()
        for _ in range(16):  # an epoch is 16 steps of 32
            net.loss_and_grads(x, t)
        return max(time.thread_time() - cpu, 1e-9)

    return cpu_seconds
