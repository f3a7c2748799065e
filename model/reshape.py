"""Layers without weights that change how values are arranged or kept: Flatten, Dropout."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from xpnet.backends import Backend
from xpnet.model.activations import ModelError
from xpnet.model.layer import Layer


@dataclass
class Flatten(Layer):
    """(B, C, H, W) -> (B, C * H * W), channel first (PyTorch's flatten order), so the dense
    layers after a convolution see each image as one row."""

    backend: Backend
    in_shape: tuple

    @property
    def out_shape(self) -> tuple:
        return (self.n_in,)

    def describe(self) -> dict:
        return {"kind": "flatten"}

    def word(self) -> str:
        return "flatten"

    def forward(self, x, training: bool = False):
        return self.backend.xp.reshape(x, (x.shape[0], self.n_in)), x.shape

    def backward(self, dy, cache, need_dx: bool = True):
        return self.backend.xp.reshape(dy, cache), []


@dataclass
class Dropout(Layer):
    """While training, each value is zeroed with probability `rate` and the rest scaled by
    1 / (1 - rate), so no unit can lean on one input and the expected sum is unchanged; at
    test time it passes everything through.

    The masks are drawn on the host, like every random number in xpnet, from a generator
    seeded by (seed, steps): the same seed gives the same masks on every backend, and a
    resumed run (which restores `steps`) draws the masks an uninterrupted one would have.
    """

    rate: float
    seed: int
    backend: Backend
    in_shape: tuple
    steps: int = 0  # training steps taken: which mask comes next

    draws_on_host = True  # a recorded CUDA graph would replay the first mask forever

    def __post_init__(self):
        if not 0 <= self.rate < 1:
            raise ModelError(f"{self.word()}: the rate is a share of the values, at least 0 and below 1")
        if min(self.seed, self.steps) < 0:
            raise ModelError(f"{self.word()}: its seed and step count must be 0 or more, got {self.seed} and "
                             f"{self.steps}")

    def describe(self) -> dict:
        return {"kind": "dropout", "rate": self.rate, "seed": self.seed, "steps": self.steps}

    def word(self) -> str:
        return f"dropout{self.rate}"

    def forward(self, x, training: bool = False):
        if not training or self.rate == 0:
            return x, None
        bits = np.random.PCG64((self.seed, self.steps))  # the generator default_rng((seed, steps)) makes
        bits.advance(self.first_row * math.prod(x.shape[1:]))  # a piece of a batch: skip the rows before it
        keep = np.random.Generator(bits).random(tuple(x.shape)) >= self.rate
        mask = self.backend.asarray(keep / (1 - self.rate), self.backend.dtype_name)
        return x * mask, mask

    def backward(self, dy, cache, need_dx: bool = True):
        return dy if cache is None else dy * cache, []

    def advance(self) -> None:
        self.steps += 1
