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
    _labels: object = field(default=None, repr=False)  # classes, once `labels_in` has needed them

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
        """This epoch's shuffled sample order (None for full batches), where batches are cut."""
        if batch_size >= self.n:
            return None
        order = rng.permutation(self.n)
        return order if self.streamed else self.backend.asarray(order)

    def batch(self, order, first: int, batch_size: int):
        """Device arrays (inputs, targets) of the batch starting at position `first`."""
        last = min(first + batch_size, self.n)  # the standard leaves out-of-range slices undefined
        if order is None:
            return self.rows(0, self.n)
        if self.streamed:
            idx = order[first:last]
            return self.backend.asarray(self.X[idx]), self.backend.asarray(self.T[idx])
        xp, idx = self.backend.xp, order[first:last]
        return xp.take(self.X, idx, axis=0), xp.take(self.T, idx, axis=0)

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
        return self.batch(picked if self.streamed else self.backend.asarray(picked), 0, len(picked))

    def rows(self, first: int, last: int):
        """Device arrays of samples first..last-1, in their stored order."""
        last = min(last, self.n)
        if self.streamed:
            return self.backend.asarray(self.X[first:last]), self.backend.asarray(self.T[first:last])
        if first == 0 and last == self.n:
            return self.X, self.T
        return self.X[first:last, ...], self.T[first:last, ...]
