"""An epoch's full batches, each step replayed from one recorded CUDA graph.

On a GPU a dense network's training step is some forty small kernels, and below batches
of several thousand its time goes to launching them (CuPy's and PyTorch's Python code per
operation), not to their arithmetic. A CUDA graph records the launches once; replaying it
runs the whole sequence for the cost of one launch. What the recorded step touches must
then stay at fixed addresses. The epoch's shuffled order is copied once into a fixed
buffer, and the recorded step cuts its own batch from it at a device counter that it then
advances, gathers the rows, and adds the epoch's running totals (loss, hits, steps before a
non-finite loss) into fixed device scalars. A step is one launch instead of some forty, and
the host does nothing else per step. (On an H200 a batch-64 replay took about 115 us with
this and with the earlier per-step index copy alike: the kernels inside the graph, not the
host, set the pace there; a slower host or a smaller network gains.)

A recorded step freezes every number it was given as a plain Python value, the batch size
among them, so the last, shorter batch of an epoch runs as an ordinary step. What changes
between steps lives in device scalars that every replay reads (`Optimizer.hold_on_device`):
the learning rate, so a new rate needs no new recording, and Adam's step count, so its
bias-corrected step size advances on every replay.
"""

from __future__ import annotations

import numpy as np

from xpnet.backends.base import GraphUnavailable
from xpnet.train.steps import EagerSteps, EpochTotals
from xpnet.train.tally import count_correct


def graph_blocker(model, data, batch_size: int, context=None) -> str | None:
    """Why this training run cannot replay its steps as graphs, or None when it can."""
    if model.backend.capture_fn is None:
        return f"{model.backend.name} on {model.backend.device_name} has no CUDA graphs"
    if any(layer.draws_on_host for layer in model.layers):
        return "the network's dropout draws a new mask on the host every step, which a recording cannot replay"
    if context is not None and context.graphs_blocker:
        return context.graphs_blocker
    if data.streamed:
        return "the training set does not fit on the device, so batches come from the host"
    if data.n < batch_size:
        return "no batch is full"
    return None


class GraphedSteps:
    """Replays one recorded training step for every full batch of an epoch.

    `run_epoch(order)` zeroes the totals, calls `step(order, first)` for each full batch,
    which trains on order[first:first + batch_size] (the first call of a run trains for real
    and records; later calls replay), trains a shorter last batch as an ordinary step, and
    returns the epoch's totals, as `EagerSteps.run_epoch` does.
    """

    def __init__(self, model, opt, data, batch_size: int, context=None):
        backend = model.backend
        self.model, self.opt, self.data, self.batch_size = model, opt, data, batch_size
        self.tail = EagerSteps(model, opt, data, batch_size, context)  # the shorter last batch
        self.context = self.tail.context
        opt.hold_on_device()  # the rate, and Adam's step count, as device scalars each replay reads
        self.rows = backend.asarray(np.arange(batch_size))  # 0..B-1, offset into the order per step
        self.order = backend.asarray(np.arange(data.n))  # the epoch's order, refilled in place
        self.first = backend.asarray(np.zeros((), dtype=np.int64))  # where the next batch starts in it
        self._order_source = self._next_first = None  # what `order` and `first` hold now, host side
        self.loss_sum = backend.asarray(np.zeros(()), "float64")  # sum over samples of the loss
        self.correct = backend.asarray(np.zeros((), dtype=np.int64))
        self.finite_steps = backend.asarray(np.zeros((), dtype=np.int64))  # steps before a non-finite loss
        self.all_finite = backend.asarray(np.ones((), dtype=bool))
        self.steps = 0
        self._replay = None
        self.failure: str | None = None  # why recording failed, until the loop has said so

    def close(self) -> None:
        """Let the last batch's eager steps go (their threads, where they have any)."""
        self.tail.close()

    def start_epoch(self) -> None:
        """Zero the running totals, in place: the recorded step adds into these arrays."""
        for total in (self.loss_sum, self.correct, self.finite_steps):
            total[...] = 0
        self.all_finite[...] = True
        self.steps = 0

    def run_epoch(self, order) -> EpochTotals:
        """Train on every batch of this epoch's `order`: the full ones replayed, the rest eager."""
        self.start_epoch()
        full = self.data.n - self.data.n % self.batch_size
        for first in range(0, full, self.batch_size):
            self.step(order, first)
        replayed = (self.loss_sum, self.correct, self.finite_steps)
        if full == self.data.n:
            return EpochTotals(*replayed, steps=self.steps)
        tail = self.tail.run_epoch(order, first=full)
        both = combine_totals(self.model.backend.xp, replayed, (tail.loss_sum, tail.correct, tail.finite_steps),
                              self.steps)
        return EpochTotals(*both, steps=self.steps + tail.steps)

    def step(self, order, first: int) -> None:
        """Train on order[first:first + batch_size] (None: the stored order). Consecutive
        batches of one order cost one launch each: only a new order (one copy) or a jump
        (one scalar write) asks the host for more."""
        if order is not self._order_source:
            if order is not None:  # None: one batch holds the whole set, in the arange already there
                self.order[...] = order
            self._order_source, self._next_first = order, None
        if first != self._next_first:
            self.first[...] = first
        self._next_first = first + self.batch_size
        if self._replay is not None:
            self._replay()
        else:
            try:
                self._replay = self.model.backend.capture(self._recorded_step)
            except GraphUnavailable as exc:  # the step ran; it just cannot be replayed
                self._replay, self.failure = self._recorded_step, str(exc)
        self.steps += 1

    def _recorded_step(self) -> None:
        """Gather the batch, take the step, add to the totals: all device work, no reads."""
        xp, data = self.model.backend.xp, self.data
        index = xp.take(self.order, self.first + self.rows, axis=0)
        self.first += self.batch_size
        xb = xp.take(data.X, index, axis=0)
        if data.shifts is not None:  # the epoch's moves, refilled in place like the order
            xb = data.shifts.apply(xb, xp.take(data.moves, index, axis=0))
        tb = xp.take(data.T, index, axis=0)
        loss, out = self.model.train_step(xb, tb, self.opt)
        self.all_finite &= xp.isfinite(loss)
        self.finite_steps += xp.astype(self.all_finite, xp.int64)
        self.loss_sum += xp.astype(loss, xp.float64) * self.batch_size
        if data.classification:
            self.correct += count_correct(xp, out, tb)


def combine_totals(xp, first, second, first_steps: int):
    """The totals of two runs of steps, one after the other: sums add, and the second's
    finite steps count only if every step of the first was finite."""
    (loss_a, correct_a, finite_a), (loss_b, correct_b, finite_b) = first, second
    first_clean = xp.astype(finite_a == first_steps, finite_a.dtype)
    return (xp.astype(loss_a, xp.float64) + xp.astype(loss_b, xp.float64), correct_a + correct_b,
            finite_a + first_clean * xp.astype(finite_b, finite_a.dtype))


__all__ = ["GraphedSteps", "combine_totals", "graph_blocker"]
