"""A data set on the device, cut into shuffled minibatches.

The whole set is moved to the device once; each epoch the host draws the shuffled order
from the run's seeded generator and only that permutation crosses over. A set too large for
the device stays on the host and goes over a batch at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from xpnet.model import Network
from xpnet.train.targets import check_data, is_classification, targets_for


# Keep a data set on the device only if it takes at most this share of the free memory;
# activations, gradients and the optimizer need the rest.
DEVICE_SHARE = 0.5


@dataclass
class DeviceData:
    """A data set's inputs and float targets, ready for batches, plus what kind of task it is.

    Normally both live on the device, moved there once. A set too large for the device's
    free memory stays on the host (`streamed`) and each batch is copied over as it is used.
    """

    X: object
    T: object
    n: int
    classification: bool
    backend: object
    streamed: bool = False
    shifts: object = None  # a train/augment.py Shifts that moves each picture every epoch, or None
    _labels: object = field(default=None, repr=False)  # classes, once `labels_in` has needed them
    moves: object = field(default=None, repr=False)  # this epoch's move of each sample, where shifting

    @classmethod
    def from_host(cls, net: Network, X, y, what: str = "data") -> "DeviceData":
        X, y = check_data(net, X, y, what)
        b = net.backend
        X = np.asarray(X, dtype=b.dtype_name)
        T = np.asarray(targets_for(net, y), dtype=b.dtype_name)
        free = b.free_memory()
        if free is not None and X.nbytes + T.nbytes > DEVICE_SHARE * free:
            return cls(X, T, X.shape[0], is_classification(net, y), b, streamed=True)
        return cls(b.asarray(X), b.asarray(T), X.shape[0], is_classification(net, y), b)

    def order(self, rng: np.random.Generator, batch_size: int):
        """This epoch's shuffled sample order (None for full batches), where batches are cut;
        then, where the pictures are shifted, this epoch's moves."""
        order = None if batch_size >= self.n else rng.permutation(self.n)
        if self.shifts is not None:
            self._draw_moves(rng)
        return order if self.streamed or order is None else self.backend.asarray(order)

    def _draw_moves(self, rng: np.random.Generator) -> None:
        """Moves for every sample, refilled in place after the first epoch, where a recorded
        CUDA graph reads them (train/graphs.py)."""
        moves = self.shifts.draw(rng, self.n)
        if self.streamed:
            self.moves = moves
        elif self.moves is None:
            self.moves = self.backend.asarray(moves)
        else:
            self.moves[...] = self.backend.asarray(moves)

    def batch(self, order, first: int, batch_size: int):
        """Device arrays (inputs, targets) of the batch starting at position `first`, its
        pictures moved where this set is shifted."""
        if order is None:
            idx, (xb, tb) = None, self.rows(0, self.n)
        else:
            idx = order[first:min(first + batch_size, self.n)]  # the standard leaves out-of-range slices undefined
            xb, tb = self._gather(idx)
        return (xb, tb) if self.shifts is None else (self.shifts.apply(xb, self._moves_of(idx)), tb)

    def _gather(self, idx):
        """Device arrays of the rows `idx` (host indices for a streamed set, else device ones), as stored."""
        if self.streamed:
            return self.backend.asarray(self.X[idx]), self.backend.asarray(self.T[idx])
        xp = self.backend.xp
        return xp.take(self.X, idx, axis=0), xp.take(self.T, idx, axis=0)

    def _moves_of(self, idx):
        """This epoch's moves of the rows `idx` (None: every row), on the device."""
        if self.streamed:
            return self.backend.asarray(self.moves if idx is None else self.moves[idx])
        return self.moves if idx is None else self.backend.xp.take(self.moves, idx, axis=0)

    def labels_in(self, order):
        """The true classes of every sample, in the order `batch` hands them out (device ints)."""
        if self._labels is None:  # argmax of the one-hot targets: one pass, kept for every epoch
            self._labels = (np.argmax(self.T, axis=1) if self.streamed
                            else self.backend.xp.argmax(self.T, axis=1))
        if self.streamed:
            return self.backend.asarray(self._labels if order is None else self._labels[order])
        return self._labels if order is None else self.backend.xp.take(self._labels, order, axis=0)

    def spread(self, rows: int):
        """Device arrays of up to `rows` samples spread evenly over the set: a probe that a
        file sorted by class or by target does not bias."""
        picked = np.unique(np.linspace(0, self.n - 1, min(rows, self.n)).astype(np.int64))
        return self._gather(picked if self.streamed else self.backend.asarray(picked))  # never shifted

    def rows(self, first: int, last: int):
        """Device arrays of samples first..last-1, in their stored order."""
        last = min(last, self.n)
        if self.streamed:
            return self.backend.asarray(self.X[first:last]), self.backend.asarray(self.T[first:last])
        if first == 0 and last == self.n:
            return self.X, self.T
        return self.X[first:last, ...], self.T[first:last, ...]
