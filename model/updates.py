"""The reference update rules, plain xp, in place: what each optimizer does to a parameter.

The course's rule is theta <- theta - alpha * dJ/dtheta (`sgd_update`); momentum and Adam
refine it (train/optimizers.py keeps their state). `matmul_add` and `sum_add` let plain SGD
take a layer's step straight from the products that would have made its gradient. A backend
may replace each by name with a fused kernel of the same signature (model/ops.py); tests
hold the two equal.
"""

from __future__ import annotations


def sgd_update(xp, p, g, lr):
    p -= lr * g


def momentum_update(xp, p, g, v, lr, momentum):
    v *= momentum
    v -= lr * g
    p += v


def adam_update(xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * (g * g)
    p -= step_size * m / (xp.sqrt(v) + eps_hat)


def matmul_add(xp, c, a, b, alpha, beta):
    """c = alpha * (a @ b) + beta * c, in place: a gradient's product folded into its update."""
    if beta != 1.0:
        c *= beta
    c += alpha * xp.matmul(a, b)


def sum_add(xp, c, a, alpha, beta):
    """c = alpha * (column sums of a) + beta * c, in place: the bias gradient's counterpart."""
    if beta != 1.0:
        c *= beta
    c += alpha * xp.sum(a, axis=0)
