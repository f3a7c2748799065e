"""An epoch's running totals (loss, correct answers, steps before any went bad), cheap per step.

Adding each step's loss, finite flag and hit count into device scalars as training goes
costs eleven small array operations a step: on a GPU eleven kernel launches, on numpy
eleven calls of a few microseconds, as much as the arithmetic of a small network's step.
The tally instead keeps what each step already made (its 0-d loss and the argmax of its
output, one operation) and does the arithmetic once, at the end of the epoch, still on the
device."""

from __future__ import annotations

import numpy as np


def count_correct(xp, out, targets):
    """How many rows' largest output is the true class, as a 0-d int64 device array."""
    hits = xp.argmax(out, axis=1) == xp.argmax(targets, axis=1)
    return xp.sum(xp.astype(hits, xp.int64))


class EpochTally:
    """Per-step losses and predicted classes of one epoch, summed on the device at its end."""

    def __init__(self, backend, classification: bool):
        self.backend = backend
        self.classification = classification
        self.losses: list = []  # each step's mean loss, a 0-d device array
        self.rows: list[int] = []  # each step's batch size, to weight its mean
        self.predictions: list = []  # each step's predicted classes, in the order trained

    @property
    def steps(self) -> int:
        return len(self.losses)

    def add(self, loss, out) -> None:
        """Keep one step's mean loss and, for classes, its predicted classes (B,)."""
        self.losses.append(loss)
        self.rows.append(out.shape[0])
        if self.classification:
            self.predictions.append(self.backend.xp.argmax(out, axis=1))

    def totals(self, labels=None):
        """(loss summed over samples, samples classified right, steps before the first
        non-finite loss), each a 0-d device array. `labels` are the true classes in the order
        trained."""
        backend, xp = self.backend, self.backend.xp
        losses = xp.stack(self.losses)  # (steps,)
        rows = backend.asarray(np.asarray(self.rows, dtype=np.float64))  # one small copy an epoch
        loss_sum = xp.sum(losses * rows)
        correct = xp.zeros((), dtype=xp.int64, device=backend.device)
        if self.classification:
            correct = xp.sum(xp.astype(xp.concat(self.predictions) == labels, xp.int64))
        return loss_sum, correct, self._steps_before_non_finite(losses)

    def _steps_before_non_finite(self, losses):
        """How many steps came before the first non-finite loss (all of them if none was)."""
        xp = self.backend.xp
        bad = xp.astype(~xp.isfinite(losses), self.backend.dtype)
        first_bad = xp.argmax(bad)  # the first maximum: the first bad step, or 0 when none is
        none_bad = xp.astype(xp.max(bad) == 0, first_bad.dtype)
        return xp.astype(first_bad + none_bad * self.steps, self.backend.dtype)
