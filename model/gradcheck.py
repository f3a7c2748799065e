"""Checking backpropagation against numerical differences.

Backprop is easy to get subtly wrong; central differences (f(t+h) - f(t-h)) / 2h are slow
but need no calculus, so agreement between the two is strong evidence both are right.
Run in float64: in float32 the difference quotient drowns in rounding.
"""

from __future__ import annotations

import numpy as np

from xpnet.model.activations import ModelError
from xpnet.model.network import Network


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a||, ||b||) over the whole array.

    Entry by entry, a component that is tiny but right (1e-6, common under softmax) carries
    central differences' ~1e-11 of rounding noise and reads as a 1e-5 "error"; measured
    against the array's norm, rounding stays ~1e-8 while a real mistake still stands out.
    """
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)), 1e-300)
    return float(np.linalg.norm(a - b)) / scale


def numerical_gradients(net: Network, X: np.ndarray, T: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """dJ/dparam for every parameter by central differences, on the host, in float64."""
    backend = net.backend
    x, t = backend.asarray(X), backend.asarray(T)
    grads = []
    for param in net.params:
        host = backend.to_numpy(param).astype(np.float64)
        grad = np.zeros_like(host)
        for idx in np.ndindex(host.shape):
            grad[idx] = _central_difference(net, param, host, idx, x, t, eps)
        grads.append(grad)
    return grads


def _central_difference(net, param, host, idx, x, t, eps) -> float:
    xp, backend = net.backend.xp, net.backend
    losses = []
    for delta in (eps, -eps):
        bumped = host.copy()
        bumped[idx] += delta
        _assign(param, backend.asarray(bumped), xp)
        losses.append(float(net.loss_and_grads(x, t)[0]))
    _assign(param, backend.asarray(host), xp)
    return (losses[0] - losses[1]) / (2 * eps)


def _assign(param, value, xp) -> None:
    """Overwrite a parameter in place (layers hold references to these arrays)."""
    param[...] = value


def gradient_check(net: Network, X: np.ndarray, T: np.ndarray, eps: float = 1e-6) -> float:
    """Worst relative error between backprop and central differences; ~1e-8 when right.

    Runs on a float64 copy of `net` on the same backend (the network itself is untouched):
    in float32 the difference quotient drowns in rounding and every check reads ~1. `T` is
    the loss's targets: one-hot rows (or regression values), or integer class labels.
    """
    net = net.to(net.backend.with_dtype("float64"))
    X, T = np.asarray(X, dtype=np.float64), _targets(net, np.asarray(T))
    backend = net.backend
    _, _, grads = net.loss_and_grads(backend.asarray(X), backend.asarray(T))
    numeric = numerical_gradients(net, X, T, eps)
    return max(relative_error(backend.to_numpy(g), n) for g, n in zip(grads, numeric))


def _targets(net: Network, T: np.ndarray) -> np.ndarray:
    """Float targets of the output's shape; integer labels become one-hot rows."""
    n_out = net.sizes[-1]
    if T.dtype.kind in "iu" and T.ndim == 1 and n_out > 1:
        if T.size and (T.min() < 0 or T.max() >= n_out):
            raise ModelError(f"class labels must be in 0..{n_out - 1} for this {n_out}-output network")
        T = np.eye(n_out)[T]
    T = np.asarray(T, dtype=np.float64).reshape(len(T), -1)
    if T.shape[1] != n_out:
        raise ModelError(f"targets have width {T.shape[1]} but the network outputs {n_out}")
    return T
