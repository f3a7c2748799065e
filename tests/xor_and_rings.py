"""The small sets the learning tests train on: XOR, and three rings no straight line separates."""

from __future__ import annotations

import numpy as np

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])


def rings(n=240, seed=0):
    """Three concentric rings in the plane, one class each: no straight line separates them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    radius = 1.3 * y + rng.uniform(0.0, 1.0, n)
    angle = rng.uniform(0.0, 2 * np.pi, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1), y
