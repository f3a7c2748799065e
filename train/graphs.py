"""An epoch's full batches, each step replayed from one recorded CUDA graph.

On a GPU a dense network's training step is some forty small kernels, and below batches
of several thousand its time goes to launching them (CuPy's and PyTorch's Python code per
operation), not to their arithmetic. A CUDA graph records the launches once; replaying it
runs the whole sequence for the cost of one launch. What the recorded step touches must
then stay at fixed addresses, so the step reads its batch through a fixed index buffer
that the host refills (one device copy a step) and gathers the rows inside the graph, and
it adds the epoch's running totals (loss, hits, steps before a non-finite loss) into fixed
device scalars itself. A step is two launches instead of some forty.

A recorded step freezes every number it was given as a plain Python value: the learning
rate, the batch size. So the last, shorter batch of an epoch runs as an ordinary step, a
changed learning rate is recorded anew, and Adam, whose bias-corrected step size changes
every step, counts its steps on the device (`Adam.count_on_device`).
"""

from __future__ import annotations

import numpy as np

from backends.base import GraphUnavailable
from train.tally import count_correct


def graph_blocker(model, opt, data, batch_size: int, distributed=None) -> str | None:
    """Why this training run cannot replay its steps as graphs, or None when it can."""
    if model.backend.capture_fn is None:
        return f"{model.backend.name} on {model.backend.device_name} has no CUDA graphs"
    if distributed is not None:
        return "a distributed step sums gradients through MPI between its kernels"
    if getattr(data, "streamed", False):
        return "the training set does not fit on the device, so batches come from the host"
    if data.n < batch_size:
        return "no batch is full"
    return None


class GraphedSteps:
    """Replays one recorded training step for every full batch of an epoch.

    `run_epoch(order)` zeroes the totals and calls `step(order, first)` for each full batch,
    which trains on order[first:first + batch_size]: the first call of a run trains for real
    and records; later calls refill the index buffer and replay. `totals()` gives the
    epoch's sums, like `EpochTally.totals`.
    """

    def __init__(self, model, opt, data, batch_size: int):
        backend = model.backend
        self.model, self.opt, self.data, self.batch_size = model, opt, data, batch_size
        self.lr = opt.lr
        if hasattr(opt, "count_on_device"):  # Adam: its step size must advance on each replay
            opt.count_on_device()
        self.index = backend.asarray(np.zeros(batch_size, dtype=np.int64))  # the batch's rows
        self.loss_sum = backend.asarray(np.zeros(()), "float64")  # sum over samples of the loss
        self.correct = backend.asarray(np.zeros((), dtype=np.int64))
        self.finite_steps = backend.asarray(np.zeros((), dtype=np.int64))  # steps before a non-finite loss
        self.all_finite = backend.asarray(np.ones((), dtype=bool))
        self._every_row = None  # the order of a batch that holds every sample (data.order gives None)
        self.steps = 0
        self._replay = None
        self.failure: str | None = None  # why recording failed, until the loop has said so

    def start_epoch(self) -> None:
        """Zero the running totals, in place: the recorded step adds into these arrays."""
        for total in (self.loss_sum, self.correct, self.finite_steps):
            total[...] = 0
        self.all_finite[...] = True
        self.steps = 0
        if self.opt.lr != self.lr:  # the rate is frozen into the recording: record anew
            self.lr, self._replay = self.opt.lr, None

    def run_epoch(self, order) -> int:
        """Train on every full batch of this epoch's `order`; returns how many rows that was."""
        self.start_epoch()
        full = self.data.n - self.data.n % self.batch_size
        for first in range(0, full, self.batch_size):
            self.step(order, first)
        return full

    def step(self, order, first: int) -> None:
        if order is None:  # one batch holds the whole set, in its stored order
            if self._every_row is None:
                self._every_row = self.model.backend.asarray(np.arange(self.data.n))
            order = self._every_row
        self.index[...] = order[first:first + self.batch_size]
        if self._replay is not None:
            self._replay()
        else:
            try:
                self._replay = self.model.backend.capture(self._recorded_step)
            except GraphUnavailable as exc:  # the step ran; it just cannot be replayed
                self._replay, self.failure = self._recorded_step, str(exc)
        self.steps += 1

    def totals(self):
        """(loss summed over samples, samples classified right, steps before the first
        non-finite loss), 0-d device arrays."""
        return self.loss_sum, self.correct, self.finite_steps

    def _recorded_step(self) -> None:
        """Gather the batch, take the step, add to the totals: all device work, no reads."""
        xp, data = self.model.backend.xp, self.data
        xb = xp.take(data.X, self.index, axis=0)
        tb = xp.take(data.T, self.index, axis=0)
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


__all__ = ["GraphUnavailable", "GraphedSteps", "combine_totals", "graph_blocker"]
