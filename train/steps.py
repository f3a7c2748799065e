"""How an epoch's batches are trained: ordinary (eager) steps, one after the other.

`run_steps` is the same without an epoch around it: a fixed number of steps (lr="auto"'s
trials, the parity check).

Every way of training an epoch, these eager steps and the recorded ones of train/graphs.py,
answers `run_epoch(order)` with the epoch's totals on the device, so the loop reads them
the same way. A step on several processes differs only in the run context's `train_step`
(train/context.py), not here; a step on several threads of one process is train/threads.py's.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np

from xpnet.train.context import RunContext
from xpnet.train.optimizers import make_optimizer
from xpnet.train.tally import EpochTally
from xpnet.train.threads import ThreadedStep, one_blas_thread


@dataclass
class EpochTotals:
    """An epoch's sums, as 0-d device arrays (or host numbers once summed over processes)."""

    loss_sum: object  # the loss summed over samples
    correct: object  # samples classified right (0 for regression)
    finite_steps: object  # steps before the first non-finite loss
    steps: int  # steps taken


class EagerSteps:
    """Each batch trained by the run context's step; the tally kept on the device."""

    failure: str | None = None  # eager steps always run: nothing to report

    def __init__(self, model, opt, data, batch_size: int, context=None, threads: int = 1, one_thread: bool = False):
        """`threads` above 1 split each batch (train/threads.py); `one_thread` keeps a single
        thread's BLAS to one thread too (`--threads 1`)."""
        self.model, self.opt, self.data, self.batch_size = model, opt, data, batch_size
        self.one_thread = one_thread
        self.context = context or RunContext()
        threads = min(threads, batch_size)  # a batch's rows keep no more busy: no copies for idle threads
        self.threaded = ThreadedStep(model, threads) if threads > 1 else None  # train/threads.py

    def run_epoch(self, order, first: int = 0) -> EpochTotals:
        """Train on the batches of `order` from row `first` on; their totals."""
        data, size = self.data, self.batch_size
        tally = EpochTally(self.model.backend, data.classification)
        step = self.threaded or self.context.train_step
        with one_blas_thread() if self.threaded or self.one_thread else nullcontext():
            for start in range(first, data.n, size):
                xb, tb = data.batch(order, start, size)
                tally.add(*step(self.model, xb, tb, self.opt, min(size, data.n - start)))
        labels = None
        if data.classification:  # the true classes of the rows trained, in the order trained
            labels = data.labels_in(order[first:] if first else order)
        return EpochTotals(*tally.totals(labels), steps=tally.steps)

    def close(self) -> None:
        """Let the step's threads go, where it has any."""
        if self.threaded:
            self.threaded.close()


def run_steps(model, data, optimizer: str, lr: float, batch_size: int,
              steps: int, rng: np.random.Generator, measure=None, at: tuple = ()) -> list:
    """A fixed number of minibatch steps with a fresh optimizer (used by lr="auto"), and
    `measure()` taken after each step count in `at` (lr="auto" watches J half-way)."""
    opt = make_optimizer(optimizer, model.backend, model.params, lr)
    order = data.order(rng, batch_size)
    starts = range(0, data.n, batch_size)
    seen = []
    for i in range(steps):
        if i in at:
            seen.append(measure())
        xb, tb = data.batch(order, starts[i % len(starts)], batch_size)
        model.train_step(xb, tb, opt)
    return seen
