"""Pooling: each k x k block of an image becomes one value, its largest or its mean.

After a convolution finds strokes, pooling keeps whether a stroke was in each block and
forgets exactly where, so a letter moved a pixel or two reads the same, and the next layer
sees a quarter of the pixels. Blocks do not overlap (the stride is k); rows and columns
that do not fill a whole block are dropped, as PyTorch's MaxPool2d(k) does.
"""

from __future__ import annotations

from dataclasses import dataclass

from xpnet.backends import Backend
from xpnet.model.activations import ModelError
from xpnet.model.layer import Layer
from xpnet.model.ops import op
from xpnet.model.windows import blocks


@dataclass
class Pool2D(Layer):
    """The shared part: cutting (B, C, H, W) into (B, C, Ho, Wo, k * k) blocks and back."""

    size: int
    backend: Backend
    in_shape: tuple

    kind = ""  # "maxpool" or "avgpool"

    def __post_init__(self):
        if len(self.in_shape) != 3:
            raise ModelError(f"{self.kind}{self.size}: pools images (channels, height, width), "
                             f"got input of shape {self.in_shape}: put it after a conv layer")
        if self.size < 1 or self.size > min(self.in_shape[1:]):
            raise ModelError(f"{self.kind}{self.size}: a {self.size}x{self.size} block does not fit in its "
                             f"{self.in_shape[1]}x{self.in_shape[2]} input")
        self._xp = self.backend.xp
        self._unpool = op(self.backend, "unpool")
        self._maxpool, self._maxpool_grad = op(self.backend, "maxpool"), op(self.backend, "maxpool_grad")

    @property
    def out_shape(self) -> tuple:
        C, H, W = self.in_shape
        return (C, H // self.size, W // self.size)

    def describe(self) -> dict:
        return {"kind": self.kind, "size": self.size}

    def word(self) -> str:
        return f"{self.kind}{self.size}"

    def _gather(self, pieces):
        """The inverse of `blocks`: (B, C, H, W) with each piece's values at its position in
        every block, and zeros in the rows and columns the blocks left out."""
        B, C = pieces[0].shape[:2]
        return self._unpool(self._xp, pieces, (B, C, *self.in_shape[1:]), self.size)


class MaxPool2D(Pool2D):
    """The largest value of each block; its gradient goes to that one pixel (the first, on a tie)."""

    kind = "maxpool"

    def forward(self, x, training: bool = False):
        """y, and the masks of where each block's maximum was (all backward needs)."""
        return self._maxpool(self._xp, x, self.size)

    def backward(self, dy, cache, need_dx: bool = True):
        return self._maxpool_grad(self._xp, dy, cache, (dy.shape[0], *self.in_shape), self.size), []


class AvgPool2D(Pool2D):
    """The mean of each block; its gradient is shared equally by the block's pixels."""

    kind = "avgpool"

    def forward(self, x, training: bool = False):
        pieces = blocks(x, self.size)
        total = pieces[0]
        for piece in pieces[1:]:
            total = total + piece
        return total / (self.size ** 2), None

    def backward(self, dy, cache, need_dx: bool = True):
        share = dy / (self.size ** 2)
        return self._gather([share] * self.size ** 2), []
