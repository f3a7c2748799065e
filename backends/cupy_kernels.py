"""Fused CuPy kernels for the elementwise chains of a training step.

On a GPU, each `xp` operation is a kernel launch that reads and writes the whole array:
`sigmoid(z + b)` written plainly is four passes over memory and four launches. One
`ElementwiseKernel` does it in one. Each kernel here has the same signature and meaning as
the plain `xp` reference it replaces (model/activations.py, model/updates.py: an update
writes into p and its state and returns them), and
tests/test_kernels_parity.py holds the two equal on a GPU.
"""

from __future__ import annotations

import functools

# Forward: y = g(z + b), written into z (a fresh temporary the layer owns).
_ACT_FORWARD = {
    "sigmoid": "T s = z + b; y = (T)0.5 + (T)0.5 * tanh((T)0.5 * s)",
    "tanh": "y = tanh(z + b)",
    "relu": "T s = z + b; y = s > (T)0 ? s : (T)0",
    "identity": "y = z + b",
}
# Backward: dz = g'(z) * dy, from the activation's output y.
_ACT_BACKWARD = {
    "sigmoid": "dz = dy * y * ((T)1 - y)",
    "tanh": "dz = dy * ((T)1 - y * y)",
    "relu": "dz = y > (T)0 ? dy : (T)0",
}


@functools.lru_cache(maxsize=None)
def cupy_kernels() -> dict:
    """Named overrides for the cupy backend, compiled lazily by CuPy on first use."""
    import cupy as cp

    kernels = {}
    for name, body in _ACT_FORWARD.items():
        k = cp.ElementwiseKernel("T z, T b", "T y", body, f"xpnet_bias_{name}")
        kernels[f"bias_act.{name}"] = _bias_act(k)
    for name, body in _ACT_BACKWARD.items():
        k = cp.ElementwiseKernel("T y, T dy", "T dz", body, f"xpnet_grad_{name}")
        kernels[f"act_grad.{name}"] = _act_grad(k)
    kernels["sgd_update"] = _sgd(cp.ElementwiseKernel("T g, T lr", "T p", "p -= lr * g", "xpnet_sgd"))
    kernels["momentum_update"] = _momentum(cp.ElementwiseKernel(
        "T g, T lr, T mu", "T p, T v", "v = mu * v - lr * g; p += v", "xpnet_momentum"))
    kernels["adam_update"] = _adam(cp.ElementwiseKernel(
        "T g, T step, T b1, T b2, T eps", "T p, T m, T v",
        "m = b1 * m + ((T)1 - b1) * g; v = b2 * v + ((T)1 - b2) * g * g; p -= step * m / (sqrt(v) + eps)",
        "xpnet_adam"))
    return kernels


def _bias_act(kernel):
    def bias_act(xp, z, b):
        return kernel(z, b, z)

    return bias_act


def _act_grad(kernel):
    def act_grad(xp, y, dy):
        return kernel(y, dy)

    return act_grad


def _sgd(kernel):
    def sgd_update(xp, p, g, lr):
        kernel(g, _scalar(lr, p.dtype.type), p)
        return p

    return sgd_update


def _momentum(kernel):
    def momentum_update(xp, p, g, v, lr, momentum):
        kernel(g, _scalar(lr, p.dtype.type), p.dtype.type(momentum), p, v)
        return p, v

    return momentum_update


def _adam(kernel):
    def adam_update(xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
        t = p.dtype.type
        kernel(g, _scalar(step_size, t), t(beta1), t(beta2), _scalar(eps_hat, t), p, m, v)
        return p, m, v

    return adam_update


def _scalar(value, dtype):
    """A Python number as the kernel's type; a 0-d device array (a rate or step size held on
    the device, for a CUDA graph) as it is: turning it into a number would read the GPU."""
    return dtype(value) if isinstance(value, (int, float)) else value
