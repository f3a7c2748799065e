"""How an epoch's batches are trained: ordinary (eager) steps, one after the other.

Every way of training an epoch, these eager steps and the recorded ones of train/graphs.py,
answers `run_epoch(order)` with the epoch's totals on the device, so the loop reads them
the same way. A step on several processes differs only in the run context's `train_step`
(train/context.py), not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpnet.train.tally import EpochTally


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

    def __init__(self, model, opt, data, batch_size: int, context):
        self.model, self.opt, self.data, self.batch_size, self.context = model, opt, data, batch_size, context

    def run_epoch(self, order, first: int = 0) -> EpochTotals:
        """Train on the batches of `order` from row `first` on; their totals."""
        data, size = self.data, self.batch_size
        tally = EpochTally(self.model.backend, data.classification)
        for start in range(first, data.n, size):
            xb, tb = data.batch(order, start, size)
            tally.add(*self.context.train_step(self.model, xb, tb, self.opt, min(size, data.n - start)))
        labels = data.labels_in(order) if data.classification else None
        if labels is not None and first:
            labels = labels[first:]
        return EpochTotals(*tally.totals(labels), steps=tally.steps)
