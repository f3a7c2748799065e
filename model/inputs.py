"""The one check of a network's inputs, for predicting and for training data alike."""

from __future__ import annotations

import numpy as np

from xpnet.model.activations import ModelError


def check_inputs(X, width: int, what: str = "inputs", error: type = ModelError, read: bool = True,
                 empty_ok: bool = False) -> np.ndarray:
    """Host inputs as a 2-D array of numbers `width` wide, every value finite; else `error`,
    in one line. The one check of inputs, for predicting (ModelError) and for training data
    (the caller's DataError); `read=False` leaves the values of a memory-mapped file unread,
    when they were checked as it was written. A 1-D X is a column for a one-input network."""
    X = np.asarray(X)
    if X.ndim == 1 and width == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise error(f"{what}: X must be 2-D (samples x features), (n, {width}) here, got shape {X.shape}")
    if X.shape[0] == 0 and not empty_ok:
        raise error(f"{what} is empty: give at least one sample")
    if X.shape[1] != width:
        raise error(f"{what}: samples have {X.shape[1]} features but the network takes {width} "
                    f"(X has shape {X.shape}; it must be (n, {width}))")
    if X.dtype.kind not in "fiub" or (read and X.dtype.kind == "f" and not np.all(np.isfinite(X))):
        raise error(f"{what}: X must be finite numbers (found NaN or inf, or non-numbers); clean the inputs")
    return X
