"""How the ranks of an MPI job share a global batch, tested without MPI: each rank's pieces
make up the batch one process trains on, a batch smaller than the ranks leaves some idle, and
each rank's step moves dropout to its next mask."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train.distributed import ShardedData, piece
from xpnet.train.device_data import DeviceData
from mpi_jobs import N_TRAIN


# -- the split, without MPI --------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("batch_size", [64, 1000])
def test_the_ranks_pieces_make_up_each_global_batch(size, batch_size):
    """Every rank draws the same shuffle; its pieces, put back together, are the batch one process trains on."""
    backend = resolve_backend("numpy", "cpu", "float64")
    net = Network.from_sizes([3, 4, 5], backend)
    X = np.arange(N_TRAIN * 3, dtype=np.float64).reshape(N_TRAIN, 3)
    y = np.arange(N_TRAIN) % 5
    whole = DeviceData.from_host(net, X, y)
    shards = [ShardedData(X, y, N_TRAIN, True, net, rank, size) for rank in range(size)]
    order = whole.order(np.random.default_rng(7), batch_size)
    orders = [shard.order(np.random.default_rng(7), batch_size) for shard in shards]
    trained = [[] for _ in shards]  # each rank's targets, in the order it trains on them
    for first in range(0, N_TRAIN, batch_size):
        xb, tb = whole.batch(order, first, batch_size)
        pieces = [shard.batch(o, first, batch_size) for shard, o in zip(shards, orders)]
        np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces]), xb)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), tb)
        for mine, p in zip(trained, pieces):
            mine.append(p[1])
    for shard, o, mine in zip(shards, orders, trained):  # what the epoch's accuracy compares against
        np.testing.assert_array_equal(shard.labels_in(o), np.argmax(np.concatenate(mine), axis=1))


def test_pieces_are_consecutive_and_near_equal():
    assert [piece(10, r, 4) for r in range(4)] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert [piece(2, r, 4) for r in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]


def test_a_global_batch_smaller_than_the_ranks_says_some_idle():
    class FakeMPI:
        @staticmethod
        def Get_library_version():
            return "MPICH Version: 5.0.2"

    from xpnet.train.distributed import Distributed

    ctx = Distributed.__new__(Distributed)
    ctx.MPI, ctx.size, ctx.machines, ctx.transfer, ctx.timeout = FakeMPI, 4, 1, "numpy buffers go to MPI directly", 300
    assert "global batch 3 is smaller than the 4 ranks, so 1 of them idle every step" in ctx.describe(3)
    assert "global batch 64 = about 16 per rank" in ctx.describe(64)


def test_a_step_of_many_ranks_moves_dropout_to_its_next_mask(reference):
    """Each rank's step must advance dropout as a single process's does, or every step of an
    MPI run would drop the same units."""
    from xpnet.model import Network
    from xpnet.train.distributed import Distributed
    from xpnet.train.optimizers import make_optimizer

    ctx = Distributed.__new__(Distributed)
    ctx.size = 2
    ctx.loss_and_grads = lambda model, xb, tb, rows: model.loss_and_grads(xb, tb)  # one rank's sum is its own
    net = Network.from_layers(["dropout0.5", 4], (3,), 2, reference, seed=0)
    opt = make_optimizer("sgd", reference, net.params, 0.1)
    x, t = reference.asarray(np.ones((4, 3))), reference.asarray(np.eye(2)[[0, 1, 0, 1]])
    for _ in range(3):
        ctx.train_step(net, x, t, opt, 8)
    assert net.layers[0].steps == 3
