"""What every data source returns and raises: `DataSet` and `DataError`.

They live here, not in the package's `__init__`, so that the sources (`glyph`, `spec`,
`idx`, ...) can import them without importing the package that imports those sources:
the package re-exports both, and nothing here imports a source.
"""

from dataclasses import dataclass, field

import numpy as np

from xpnet.backends.errors import XpnetError


class DataError(XpnetError):
    """A data set could not be loaded; the one-line message says what was wrong and what to do."""


@dataclass(frozen=True, eq=False)
class DataSet:
    """Samples as rows, ready for the network: X float32, y int64 labels (float32 targets for regression).

    Images are flattened to `image_shape[0] * image_shape[1]` features in [0, 1], bright ink on
    dark, so any source trains and predicts the same way. `X_test`/`y_test` are None when the
    source has no held-out split; `classes` is None for regression. `info` records where the
    data came from (JSON-serialisable) so a run can be reproduced and reported. `X_val`/`y_val`
    are a validation split a source draws apart from both (the letters' own unseen designs and
    writers), for calibrating and early stopping; None where it has none.
    """

    X_train: np.ndarray  # (N, D) float32
    y_train: np.ndarray  # (N,) int64, or (N,) / (N, k) float32 for regression
    X_test: np.ndarray | None  # (M, D) float32 or None
    y_test: np.ndarray | None
    classes: tuple[str, ...] | None
    image_shape: tuple[int, int] | None
    info: dict = field(default_factory=dict)
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

    def __post_init__(self):
        _check_pair(self.X_train, self.y_train, "train")
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test must both be given or both be None")
        if self.X_test is not None:
            _check_pair(self.X_test, self.y_test, "test")
            if self.X_test.shape[1] != self.X_train.shape[1]:
                raise ValueError("train and test samples have different numbers of features")
        if (self.X_val is None) != (self.y_val is None):
            raise ValueError("X_val and y_val must both be given or both be None")
        if self.X_val is not None:
            _check_pair(self.X_val, self.y_val, "validation")


def _check_pair(X, y, side):
    """Catch a malformed DataSet where it is built, not deep inside training."""
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"{side}: X must be (N, D) with one label per row, got {X.shape} and {y.shape}")
