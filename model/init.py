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


def seeded_rng(seed) -> np.random.Generator:
    """The one host generator weights are drawn from: a Generator as given, or one from a whole
    number seed (0 or more, as numpy takes them)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ModelError(f"seed must be a whole number, 0 or more, or a numpy Generator, got {seed!r}")
    return np.random.default_rng(seed)


def check_init(name: str) -> str:
    return choose(name, INITS, "init", ModelError)
