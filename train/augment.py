"""Training pictures moved a few whole pixels, a fresh draw every epoch.

A letter drawn a pixel further left is the same letter, but a dense network sees other inputs
light up. Each epoch moves every training picture by up to `pixels` whole pixels up or down
and left or right (each amount drawn uniformly, each sample on its own), so the network
learns the letter rather than where its strokes fell. On the letters job, 2 pixels over 16
epochs read 2 points more held out, most on unseen hands (docs/letters.md). Pixels moved in
at an edge repeat the edge (the background, whatever the input scaling made of it).

The moves are drawn on the host from the run's seeded generator, one per sample and epoch,
after the epoch's shuffle, so a resumed or distributed run moves every sample as an unbroken
single-process run does. They cross to the device once an epoch, as the shuffled order does;
moving a batch is then two gathers on the device.
"""

from __future__ import annotations

import numpy as np

from xpnet.model.activations import ModelError
from xpnet.model.layers import image_shape
from xpnet.train.data import DataError

MAX_SHIFT = 8  # pixels: beyond this a letter of the 28-pixel frame would leave it


class Shifts:
    """Moves a batch of flattened (channels, height, width) pictures by per-sample amounts."""

    def __init__(self, pixels: int, image: tuple[int, int, int], backend):
        self.pixels, self.backend = int(pixels), backend
        self._sources = backend.asarray(source_table(self.pixels, image))  # (moves, F): where each pixel reads

    @classmethod
    def for_model(cls, pixels: int, model) -> "Shifts":
        """The model's samples as pictures: its (channels, height, width), or a square one-channel one."""
        if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)):
            raise DataError(f"shift must be a whole number of pixels, got {pixels!r}")
        shape = tuple(model.input_shape)
        features = int(np.prod(shape))
        try:
            image = shape if len(shape) == 3 else image_shape(features)
        except ModelError:
            raise DataError(f"shift={pixels} moves pictures, but a sample of {features} values is not a square "
                            "picture, and a dense first layer takes no other shape: leave shift at 0, or start "
                            "the network with a convolution and give its picture shape (--image)") from None
        most = min(MAX_SHIFT, image[1] - 1, image[2] - 1)
        if not 0 <= pixels <= most:
            raise DataError(f"shift={pixels} pixels is out of range for {image[1]}x{image[2]} pictures: "
                            f"give 0 (none) to {most}")
        return cls(pixels, image, model.backend)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """This epoch's moves, one per sample: whole pixels down and right, each drawn uniformly
        from [-pixels, pixels], as one row number of the source table."""
        down, right = rng.integers(-self.pixels, self.pixels + 1, size=(2, n))
        return (down + self.pixels) * (2 * self.pixels + 1) + (right + self.pixels)

    def apply(self, x, moves):
        """x (B, F) with each sample moved by its move (B,), on the device: two gathers."""
        xp = self.backend.xp
        batch, features = x.shape
        starts = xp.arange(batch, dtype=self._sources.dtype, device=x.device)[:, None] * features  # (B, 1)
        source = xp.take(self._sources, moves, axis=0) + starts  # (B, F) where each value comes from in flat x
        return xp.reshape(xp.take(xp.reshape(x, (-1,)), xp.reshape(source, (-1,)), axis=0), (batch, features))


def source_table(pixels: int, image: tuple[int, int, int]) -> np.ndarray:
    """For each move (down, right) in [-pixels, pixels]^2, row (down + pixels) * (2 pixels + 1)
    + right + pixels: where each value of the moved picture is read from in the original, the
    pixel that many up and left of it, clamped to the picture (so edges repeat)."""
    channels, height, width = image
    index = np.arange(channels * height * width)
    plane, row, col = index // (height * width), index // width % height, index % width
    steps = np.arange(-pixels, pixels + 1)
    down, right = np.repeat(steps, len(steps))[:, None], np.tile(steps, len(steps))[:, None]
    rows, cols = np.clip(row - down, 0, height - 1), np.clip(col - right, 0, width - 1)
    return (plane * height + rows) * width + cols


__all__ = ["MAX_SHIFT", "Shifts", "source_table"]
