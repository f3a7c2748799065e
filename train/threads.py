"""Several CPU threads in one training step: each batch cut into pieces, one per thread.

numpy runs every array operation on one core, and the matrix products of a small
convolutional network are too small for BLAS's own threads to help: `--preset cnn` ran
as fast on OpenBLAS's two threads as on one (docs/cnn.md). numpy does let go of Python's
lock inside its loops and its BLAS calls, though, so two threads that each backpropagate
half of the batch through their own copy of the network do run at once. Each copy holds the
same weight arrays (no copy is made); the pieces' gradients, each weighted by its share of the
rows, add up to the whole batch's, and one optimizer step follows, as in a single thread. It
is the data-parallel step of an MPI job (train/distributed/), inside one process.

The answers are the single thread's up to the order of the floating-point sums, and the
same on every run with the same thread count. While the threads run, BLAS keeps to one
thread of its own per piece (threadpoolctl), so the cores are not asked twice.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from xpnet.backends import XpnetError
from xpnet.model.conv import Conv2D
from xpnet.model.layer import drawing_from_row
from xpnet.train.context import piece
from xpnet.train.subnormals import flush_subnormals

MAX_AUTO = 4  # threads chosen by themselves (2 measured, on a 2-core machine); more only when asked for
MIN_ROWS = 16  # rows per piece below which a thread's fixed costs outweigh its share of the work
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")  # a container's CPU quota, where cgroup v2 sets one
CFS_DIR = Path("/sys/fs/cgroup/cpu")  # cgroup v1's: cpu.cfs_quota_us over cpu.cfs_period_us


class ThreadsError(XpnetError):
    """--threads asked for what cannot be had: threads on a backend that is not numpy's, say."""


def check_threads(asked: int | None, backend, distributed: bool) -> None:
    """Refuse, before any work, threads the backend or the job cannot use."""
    if asked is None or asked == 1:
        return
    if not backend.splits_batches:
        raise ThreadsError(f"{asked} threads: only the numpy backend splits a batch across threads "
                           f"({backend.name} runs its own); leave --threads (threads=) out")
    if distributed:
        raise ThreadsError(f"{asked} threads: an MPI job already runs a rank per core; "
                           "start more ranks instead of --threads")


def choose_threads(asked: int | None, model, batch_size: int, distributed: bool) -> tuple[int, str | None]:
    """(threads per step, a log line saying why, or None where there is nothing to say).

    None (the default) takes every core the process may use, up to MAX_AUTO and one per
    MIN_ROWS rows of the batch, for a network with convolutions on a backend that splits
    batches (numpy); else one. A dense network's products are large enough for BLAS's threads,
    and numpy's SGD folds its update into them, which a split batch cannot; an MPI job already
    runs one rank per core.
    """
    check_threads(asked, model.backend, distributed)
    if asked is not None:
        return asked, _asked_note(asked, batch_size, model.backend)
    convolutional = any(isinstance(layer, Conv2D) for layer in model.layers)
    if not (model.backend.splits_batches and convolutional) or distributed:
        return 1, None
    threads = max(1, min(usable_cores(), MAX_AUTO, batch_size // MIN_ROWS))
    if threads == 1:
        return 1, None
    return threads, (f"threads: each batch of {batch_size} is split across {threads} CPU threads "
                     "(numpy's operations use one core each; --threads 1 to keep to one)")


def keeps_to_one_thread(asked: int | None, backend) -> bool:
    """Whether a run was told to keep to one thread where BLAS is numpy's: then BLAS keeps to
    one as well (a user who asks for one thread, to run two jobs side by side say, means one core)."""
    return asked == 1 and backend.splits_batches


def _asked_note(asked: int, batch_size: int, backend) -> str | None:
    """What a count given by hand does: one thread keeps BLAS to one as well; a warning where
    it is more than the cores or the rows, which leaves threads waiting for a core or a piece."""
    if asked == 1:
        return "threads: 1, as given (BLAS keeps to one thread too)" if keeps_to_one_thread(asked, backend) else None
    cores = usable_cores()
    line = f"threads: each batch of {batch_size} is split across {asked} CPU threads, as given"
    if asked > cores:
        line += f"; warning: this process may use {cores} core(s), so they take turns: give --threads {cores}"
    if asked > batch_size:
        line += f"; a batch's {batch_size} rows keep only {batch_size} of them busy"
    return line


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (a taskset or container may allow
    fewer than the machine has), and a container's CPU quota where one is set, which the
    affinity does not show."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = cpu_quota()
    return max(1, min(cores, quota or cores))


def cpu_quota(cpu_max: Path = CPU_MAX, cfs: Path = CFS_DIR) -> int | None:
    """A container's CPU quota in whole cores, rounded up: cgroup v2's ("QUOTA PERIOD", or
    "max PERIOD" for none), else cgroup v1's (a quota of -1 for none); None where neither
    sets one or can be read."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = ((cfs / f"cpu.cfs_{name}_us").read_text().strip() for name in ("quota", "period"))
        except OSError:
            return None
    try:
        return None if quota in ("max", "-1") else math.ceil(int(quota) / int(period))
    except (ValueError, ZeroDivisionError):
        return None


class ThreadedStep:
    """One training step over `threads` pieces of the batch, each on its own thread and copy
    of the network; the interface of `RunContext.train_step`."""

    def __init__(self, model, threads: int):
        self.copies = [model] + [model.copy() for _ in range(threads - 1)]
        self.pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="xpnet-step")

    def __call__(self, model, xb, tb, optimizer, global_rows: int):
        """(loss, output) of the batch, after the optimizer's step on its whole gradient (`model`
        is the network the copies were made of; `global_rows`, for MPI's pieces, is unused)."""
        xp, rows = model.backend.xp, xb.shape[0]
        n = min(len(self.copies), rows)
        for copy in self.copies[1:n]:
            copy.params = model.params  # the same arrays: nothing is copied
        pieces = [(copy, *piece(rows, k, n)) for k, copy in enumerate(self.copies[:n])]  # as MPI cuts a batch
        errors = np.geterr()  # numpy's warnings are set per thread: the loop's choice holds in every piece
        running = [self.pool.submit(_piece, *one, xb, tb, errors) for one in pieces[1:]]
        results = [_piece(*pieces[0], xb, tb, errors)] + [future.result() for future in running]
        shares = [(stop - start) / rows for _, start, stop in pieces]
        loss = sum(share * piece_loss for share, (piece_loss, _, _) in zip(shares, results))
        out = xp.concat([piece_out for _, piece_out, _ in results]) if n > 1 else results[0][1]
        grads = [sum(share * piece_grads[i] for share, (_, _, piece_grads) in zip(shares, results))
                 for i in range(len(model.params))]
        model.params = optimizer.step(model.params, grads)
        for copy in self.copies:
            copy.advance()  # dropout's next masks, on every copy alike
        return loss, out

    def limit_blas(self):
        """A context in which BLAS keeps to one thread: the pieces' threads are the parallelism."""
        return one_blas_thread()

    def close(self) -> None:
        """Let the threads go once their pieces are done (training is over, or stopped)."""
        self.pool.shutdown(wait=True)


def one_blas_thread():
    """A context in which BLAS (OpenBLAS, MKL or BLIS, whichever numpy loaded) keeps to one
    thread: for the pieces of a split batch, and for a run told to keep to one thread, whose
    BLAS would otherwise start a thread per core and, beside another such run, spin against it."""
    return threadpool_limits(limits=1, user_api="blas")


def _piece(copy, start: int, stop: int, xb, tb, errors: dict):
    """One piece's (mean loss, output, mean gradients), on the calling thread, with the
    caller's floating-point settings: numpy's warnings and subnormals are each thread's own."""
    with drawing_from_row(copy.layers, start), flush_subnormals(), np.errstate(**errors):
        return copy.loss_and_grads(xb[start:stop], tb[start:stop])
