"""Where a training job runs: one process, or one rank of an MPI job (train/distributed/).

One process is rank 0 of 1, so the job (train/jobs.py) and the loop (train/loop.py) are one
sequence of steps whatever runs them: every place where a data-parallel run differs is a
method here, and the single process's version of it is the plain thing to do.
"""

from __future__ import annotations

from xpnet.train.data import DataSet, load_data
from xpnet.train.device_data import DeviceData


def piece(rows: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank`'s slice (start, stop) of `rows` rows cut into `size` near-equal consecutive
    pieces: how an MPI job (train/distributed/) and a step's threads (train/threads.py) cut a batch."""
    return rows * rank // size, rows * (rank + 1) // size


class RunContext:
    """A single process: the root, the only rank, with nothing to share."""

    rank, size, is_root = 0, 1, True
    graphs_blocker: str | None = None  # why steps cannot be recorded as CUDA graphs here, if they cannot

    def place(self, backend, device_asked: str | None):
        """The backend this process trains on (a rank picks its own GPU)."""
        return backend

    def describe(self, batch_size: int | None = None) -> str | None:
        """A log line on how the job is spread out, if it is."""
        return None

    def threads_hint(self, backend) -> str | None:
        """Advice on CPU threads when processes share a machine, if any is needed."""
        return None

    def load_data(self, config, progress: bool = True) -> DataSet:
        return load_data(config.data, seed=config.seed, n_train=config.train_samples,
                         n_test=config.test_samples, progress=progress, small_letters=config.small_letters)

    def check_same_start(self, config, backend, net, data) -> None:
        """Stop when the processes of the job were started differently (one always agrees)."""

    def shard(self, model, X, y, what: str = "training data") -> DeviceData:
        """The training set as this process trains on it: here, all of it, on the device."""
        return DeviceData.from_host(model, X, y, what=what)

    def whole(self, train_set):
        """The whole training set, for what every process must compute alike (lr=auto's trials)."""
        return train_set

    def train_step(self, model, xb, tb, optimizer, global_rows: int):
        """One step on this process's share of a batch of `global_rows` rows; (loss, output)."""
        return model.train_step(xb, tb, optimizer)

    def epoch_totals(self, model, totals):
        """The epoch's totals over every process (here, this one's)."""
        return totals

    def share_validation(self, record: dict) -> dict:
        """The validation figures every process stops early by (here, its own)."""
        return record
