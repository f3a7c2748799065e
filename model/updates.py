"""The reference update rules, plain xp: what each optimizer does to a parameter.

The course's rule is theta <- theta - alpha * dJ/dtheta (`sgd_update`); momentum and Adam
refine it (train/optimizers.py keeps their state). `matmul_add` and `sum_add` let plain SGD
take a layer's step straight from the products that would have made its gradient.

Each rule returns new arrays and changes none it is given, so it runs on any array API
library, those whose arrays cannot change (JAX) among them. A backend may replace each by
name with a fused kernel of the same signature (model/ops.py) that writes into the arrays it
was given and returns them: one pass, no new memory, and the fixed addresses a recorded CUDA
graph needs. The caller keeps whatever comes back either way; tests hold the two equal.
"""

from __future__ import annotations


def sgd_update(xp, p, g, lr):
    """-> the new p."""
    return p - lr * g


def momentum_update(xp, p, g, v, lr, momentum):
    """-> (the new p, the new velocity v)."""
    v = v * momentum - lr * g
    return p + v, v


def adam_update(xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
    """-> (the new p, the new first moment m, the new second moment v)."""
    m = m * beta1 + (1 - beta1) * g
    v = v * beta2 + (1 - beta2) * (g * g)
    return p - step_size * m / (xp.sqrt(v) + eps_hat), m, v


def matmul_add(xp, c, a, b, alpha, beta):
    """-> alpha * (a @ b) + beta * c: a gradient's product folded into its update."""
    return _scaled(c, beta) + alpha * xp.matmul(a, b)


def sum_add(xp, c, a, alpha, beta):
    """-> alpha * (column sums of a) + beta * c: the bias gradient's counterpart."""
    return _scaled(c, beta) + alpha * xp.sum(a, axis=0)


def _scaled(c, beta):
    return c if beta == 1.0 else c * beta
