"""Non-linear activations g, each with its derivative written in terms of its output.

Without a non-linearity between them, stacked layers collapse into one linear map (matrix
products associate), so the network could only draw straight decision boundaries. Every
derivative here is expressed through the activation's output y = g(z), which is what the
layer keeps for backpropagation; that is also what lets a backend fuse the bias add, the
activation and, later, its derivative into single kernels.

`forward(xp, z)` and `backward(xp, y, dy)` return new arrays and never modify their inputs.
"""

from __future__ import annotations

from xpnet.backends.errors import XpnetError, choose


class ModelError(XpnetError):
    """A model was asked for something it cannot be (unknown name, wrong shape...)."""


def sigmoid_forward(xp, z):
    """1 / (1 + e^-z), computed as (1 + tanh(z / 2)) / 2: the same function, one
    transcendental call, and no overflow of e^-z for very negative z."""
    return 0.5 + 0.5 * xp.tanh(0.5 * z)


def sigmoid_backward(xp, y, dy):
    """sigmoid'(z) = y (1 - y)."""
    return dy * y * (1 - y)


def tanh_forward(xp, z):
    return xp.tanh(z)


def tanh_backward(xp, y, dy):
    """tanh'(z) = 1 - y^2."""
    return dy * (1 - y * y)


def relu_forward(xp, z):
    return xp.maximum(z, xp.zeros((), dtype=z.dtype, device=z.device))


def relu_backward(xp, y, dy):
    """relu'(z) is 1 where the unit fired (y > 0), else 0; the mask takes dy's dtype."""
    return dy * xp.astype(y > 0, dy.dtype)


def identity_forward(xp, z):
    return z


def identity_backward(xp, y, dy):
    return dy


def softmax_forward(xp, z):
    """e^z / sum(e^z) per row, shifted by the row max so exp cannot overflow."""
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_backward(xp, y, dy):
    """Jacobian-vector product of softmax: y * (dy - sum(dy * y))."""
    return y * (dy - xp.sum(dy * y, axis=-1, keepdims=True))


ACTIVATIONS = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
    "identity": (identity_forward, identity_backward),
    "softmax": (softmax_forward, softmax_backward),
}


def check_activation(name: str) -> str:
    return choose(name, ACTIVATIONS, "activation", ModelError)
