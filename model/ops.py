"""The op table: every op a backend may replace with a faster kernel, by name, with its reference.

A backend's `kernels` (a fused CuPy kernel, an in-place numpy path, cuBLAS called directly)
are keyed by these names, and the model and the optimizers ask for an op through `op`. Both
sides are checked against this one table, so a misspelt name is an error, never a silent
fall back to the slower reference; the parity tests hold every override to its reference.
"""

from __future__ import annotations

from xpnet.backends.errors import choose
from xpnet.model.activations import ACTIVATIONS, ModelError
from xpnet.model.losses import LOSSES
from xpnet.model.updates import adam_update, matmul_add, momentum_update, sgd_update, sum_add
from xpnet.model.windows import col2im, col2im_matmul, im2col, maxpool, maxpool_grad, pad2d, unpool


def matmul(xp, a, b):
    """The reference product; a backend may override it (cupy: cuBLAS called directly)."""
    return xp.matmul(a, b)


def _bias_then(forward):
    return lambda xp, z, b: forward(xp, z + b)


OPS = {
    "matmul": matmul,  # (xp, a, b) -> a @ b
    # (xp, z, b) -> g(z + b), a layer's bias and activation after its product
    **{f"bias_act.{name}": _bias_then(forward) for name, (forward, _) in ACTIVATIONS.items()},
    # (xp, y, dy) -> dz = g'(z) * dy, from the activation's output y
    **{f"act_grad.{name}": backward for name, (_, backward) in ACTIVATIONS.items()},
    # (xp, output, targets) -> (loss, dJ/doutput)
    **{f"loss.{name}": loss for name, loss in LOSSES.items()},
    # (xp, parameter, gradient, state..., scalars...) -> the new parameter (and state); a fused
    # kernel may write into the arrays it was given and return them (model/updates.py)
    "sgd_update": sgd_update, "momentum_update": momentum_update, "adam_update": adam_update,
    "matmul_add": matmul_add, "sum_add": sum_add,
    # a convolution's windows (model/windows.py): (xp, x, pads) -> x padded with zeros;
    # (xp, x, kh, kw, stride) -> one row per window; (xp, cols, shape, kh, kw, stride) -> its gradient;
    # (xp, a, b, shape, kh, kw, stride, matmul) -> col2im(a @ b), the product by the given matmul op
    "pad2d": pad2d, "im2col": im2col, "col2im": col2im, "col2im_matmul": col2im_matmul,
    # (xp, pieces, shape, k) -> an image woven from its k * k block positions: pooling's gradient
    # (xp, x, k) -> (each k x k block's largest, the k * k masks of where it was);
    # (xp, dy, masks, shape, k) -> the gradient for x
    "unpool": unpool, "maxpool": maxpool, "maxpool_grad": maxpool_grad,
}


def op(backend, name: str):
    """The backend's kernel for op `name` where it has one, else the reference."""
    return backend.kernels.get(_checked(backend, name), OPS[name])


def overrides(backend, name: str) -> bool:
    """Whether the backend has its own kernel for op `name`."""
    return _checked(backend, name) in backend.kernels


def _checked(backend, name: str) -> str:
    unknown = sorted(set(backend.kernels) - set(OPS))
    if unknown:
        raise ModelError(f"{backend.name} has kernels for ops that do not exist ({', '.join(unknown)}): "
                         "each must be named after an op in model/ops.py")
    return choose(name, OPS, "op", ModelError)
