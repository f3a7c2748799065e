"""Subnormals flushed to zero inside training only, and the thread's mode restored after."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.model import Network
from xpnet.train import learn
from xpnet.train.subnormals import available, flush_subnormals

pytestmark = pytest.mark.skipif(not available(), reason="MXCSR is reached only on x86-64 Linux")

SUBNORMAL = np.float32(1e-40)  # below float32's smallest normal, 1.2e-38


def flushes() -> bool:
    """Whether this thread now reads a subnormal input as zero (DAZ) and flushes a subnormal
    result to zero (FTZ)."""
    read_as_zero = SUBNORMAL * np.float32(1e10) == 0
    result_flushed = np.float32(1e-38) * np.float32(0.5) == 0
    assert read_as_zero == result_flushed, "FTZ and DAZ are set together"
    return bool(read_as_zero)


def test_subnormals_flush_inside_the_block_and_not_after():
    assert not flushes()
    with flush_subnormals() as on:
        assert on and flushes()
    assert not flushes()


def test_the_mode_comes_back_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with flush_subnormals():
            raise RuntimeError("a failed epoch")
    assert not flushes()


def test_a_block_inside_another_leaves_the_outer_one_flushing():
    with flush_subnormals():
        with flush_subnormals():
            pass
        assert flushes()
    assert not flushes()


def test_learn_flushes_while_it_trains_and_restores_the_mode(reference):
    seen = []
    X = np.random.default_rng(0).standard_normal((32, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    net = Network.from_sizes([3, 4, 2], reference.with_dtype("float32"))
    learn(net, (X, y), epochs=2, batch_size=8, lr=0.1, log=None, on_epoch=lambda *a: seen.append(flushes()))
    assert seen == [True, True]
    assert not flushes()
