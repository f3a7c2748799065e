"""PyTorch's parameter updates, written into the tensors they are given.

The reference updates (model/updates.py) return new arrays. On PyTorch that would allocate
every parameter and its optimizer state anew on every step, and inside a recorded CUDA
graph it would leave the model reading the addresses of the first recording. Tensors can
change where they live, so these do the reference's arithmetic, in its order, with in-place
operators, and return the tensors they changed; tests/test_kernels_parity.py holds them to
the reference. The learning rate may be a Python float or a 0-d tensor held on the device.
"""

from __future__ import annotations


def torch_kernels() -> dict:
    return {"sgd_update": sgd_update, "momentum_update": momentum_update, "adam_update": adam_update}


def sgd_update(xp, p, g, lr):
    p -= lr * g
    return p


def momentum_update(xp, p, g, v, lr, momentum):
    v *= momentum
    v -= lr * g
    p += v
    return p, v


def adam_update(xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    p -= step_size * m / (xp.sqrt(v) + eps_hat)
    return p, m, v
