"""Initial weights, drawn on the host from one seeded numpy Generator.

Drawing on the host and copying to the device is what makes the same seed give the same
starting network on every backend: each library's own random generator would not.
"""

from __future__ import annotations

import numpy as np

from xpnet.backends.errors import choose
from xpnet.model.activations import ModelError


def normal_scaled(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """N(0, 1/n_in): keeps each unit's weighted input near unit variance (Nielsen, ch. 3)."""
    return rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)


def xavier(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """Glorot uniform, limit sqrt(6 / (n_in + n_out)): suits sigmoid and tanh."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_out, n_in))


def he(rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """N(0, 2/n_in): compensates for ReLU zeroing half its inputs (He et al. 2015)."""
    return rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)


INITS = {"normal": normal_scaled, "xavier": xavier, "he": he}


def init_weights(name: str, rng: np.random.Generator, n_in: int, n_out: int) -> np.ndarray:
    """Host float64 weights of shape (n_out, n_in) by scheme `name`; biases start at zero."""
    return INITS[check_init(name)](rng, n_in, n_out)


def check_init(name: str) -> str:
    return choose(name, INITS, "init", ModelError)
