"""What a network asks of each of its layers, written once.

Every layer has the same shape as `Dense`: `forward(x, training)` returns its output and
what backward needs; `backward(dy, cache, need_dx)` returns the gradient for its input and
its parameters' gradients, in `params` order. Neither changes an array it is given. A
layer knows one sample's shape in and out (no batch axis), so a network can check that its
layers chain before any data arrives, and `describe()` is its entry in a checkpoint (the
table in model/layers.py rebuilds it).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np

from xpnet.model.activations import ModelError

MAX_EVAL_ROWS = 4096  # rows per forward pass when only evaluating: enough for BLAS to run at speed
EVAL_BYTES = 128 * 2**20  # what one such pass may hold in its busiest layer (see `eval_rows`)


class Layer:
    """The base of every layer; a layer without parameters keeps the defaults."""

    backend = None
    in_shape: tuple = ()
    activation: str | None = None  # the non-linearity after the layer's weights, where it has one
    draws_on_host = False  # draws random numbers on the host every training step (Dropout's masks)
    first_row = 0  # this input's first row in the batch it is a piece of (see `drawing_from_row`)

    @property
    def out_shape(self) -> tuple:
        return self.in_shape

    @property
    def params(self) -> list:
        return []

    @params.setter
    def params(self, values: list) -> None:
        values = list(values)
        if values:
            raise ModelError(f"{self.word()} has no parameters, got {len(values)}")

    def forward(self, x, training: bool = False):
        raise NotImplementedError

    def backward(self, dy, cache, need_dx: bool = True):
        raise NotImplementedError

    def advance(self) -> None:
        """Called after every training step: a layer that draws randomness moves on."""

    def describe(self) -> dict:
        """The layer's settings, with its kind: what a checkpoint needs to rebuild it."""
        raise NotImplementedError

    def word(self) -> str:
        """The layer as `--layers` writes it (conv32x3, maxpool2, 256): the network's summary,
        and the name its errors give it."""
        raise NotImplementedError

    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    def floats_per_row(self) -> int:
        """The values one row's forward pass holds at once in this layer: its input and output
        (a convolution adds its windows)."""
        return self.n_in + self.n_out


def eval_rows(layers, backend) -> int:
    """Rows per forward pass when only evaluating (validation, calibration, predict): up to
    MAX_EVAL_ROWS, as many as keep the busiest layer's arrays within EVAL_BYTES. 4096 letters
    at once through `--preset cnn`'s second convolution hold 600 MB of windows and outputs, and
    a validation pass over 5,000 took 3-4 s; in chunks of 700 (this budget) to 2,048, 0.6-0.8 s.
    A dense network's rows are small enough for 4096."""
    per_row = max(layer.floats_per_row() for layer in layers) * np.dtype(backend.dtype_name).itemsize
    return max(1, min(MAX_EVAL_ROWS, EVAL_BYTES // per_row))


class Weighted(Layer):
    """A layer with weights W and a bias b (dense and convolutional layers), its parameters in that order."""

    W = b = None

    @property
    def params(self) -> list:
        return [self.W, self.b]

    @params.setter
    def params(self, values: list) -> None:
        self.W, self.b = values


@contextmanager
def drawing_from_row(layers, start: int):
    """Within the block, layers that draw randomness (Dropout) draw as if their input began at
    row `start` of a whole batch: a batch split across threads (train/threads.py) or MPI ranks
    then draws the masks one process would, rather than each piece the same first rows."""
    drawing = [layer for layer in layers if layer.draws_on_host]
    for layer in drawing:
        layer.first_row = start
    try:
        yield
    finally:
        for layer in drawing:
            layer.first_row = 0
