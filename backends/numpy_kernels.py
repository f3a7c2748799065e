"""Faster numpy versions of the model's named ops: in place, in fewer passes and calls.

The plain `xp` code of the op table (model/ops.py, model/updates.py) stays the reference, and tests/test_kernels_numpy.py
holds every kernel here to it. What makes a numpy training step approach the time of its
matrix products alone:

- In place, through `out=`: the bias and activation are written into the matmul's fresh
  output (the layer's own temporary), parameters are updated where they live, and large
  work arrays are reused from step to step instead of allocated (`Scratch`).
- One pass where numpy offers two: numpy has no axpy (y += a * x), so `p -= lr * g` costs
  a temporary and a second sweep over the weights, a sixth of a batch-64 step; numpy's
  own bundled OpenBLAS has axpy, and runs it on its threads (`Blas`, in numpy_blas.py).
- No pass at all where BLAS can fold it: SGD's W -= lr * dz.T @ x is one gemm with
  alpha = -lr and beta = 1, or 1 - lr * weight decay (`matmul_add`), and the bias's b -= lr * sum(dz) one gemv
  against a ones vector (`sum_add`), so the weight gradient is never written out.
- numpy's fast loops: np.maximum against a scalar takes a slow loop (a row of zeros takes
  the vectorised one), and a max along a short last axis is slow (down the columns of a
  transposed copy it is not).

Each kernel does the reference's arithmetic in the reference's order, so the results agree
bit for bit, except the BLAS updates and folds, which round once where the reference
rounds twice (and gemv sums in its own order). Small arrays take the plainest path: there, every extra Python
call costs more than the memory it would save.

Contracts (the callers' signatures, xp first):
  bias_act.<act>(xp, z, b) -> g(z + b); z is the layer's own temporary and is overwritten.
  act_grad.<act>(xp, y, dy) -> dJ/dz, a new array; y and dy are left untouched.
  loss.<name>(xp, h, targets) -> (loss, dJ/dh); h and targets are left untouched.
  sgd_update, momentum_update, adam_update: change p (and the optimizer state) in place, never g,
    and return them as the reference returns its new arrays: p, (p, v) or (p, m, v).
  matmul_add(xp, c, a, b, alpha, beta), sum_add(xp, c, a, alpha, beta): change c in place, return it.
"""

from __future__ import annotations

import threading
from functools import partial

import numpy as np

from xpnet.backends import numpy_windows
from xpnet.backends.numpy_blas import Blas


def numpy_kernels(use_blas: bool = True) -> dict:
    """Every override, keyed by the op name the model asks its backend for.

    `use_blas=False` keeps the updates on ufuncs even where numpy's OpenBLAS could do them
    (the tests run both paths).
    """
    work = Scratch(Blas.load() if use_blas else None)
    kernels = {
        "bias_act.identity": bias_identity, "bias_act.relu": bias_relu,
        "bias_act.sigmoid": bias_sigmoid, "bias_act.tanh": bias_tanh,
        "act_grad.relu": relu_grad, "act_grad.sigmoid": sigmoid_grad, "act_grad.tanh": tanh_grad,
        "loss.cross_entropy": cross_entropy, "loss.quadratic": quadratic,
        "sgd_update": sgd_update, "momentum_update": momentum_update, "adam_update": adam_update,
        "matmul_add": matmul_add, "sum_add": sum_add, "matmul": matmul,
        "pad2d": numpy_windows.pad2d, "im2col": numpy_windows.im2col, "col2im": numpy_windows.col2im,
        "col2im_matmul": numpy_windows.col2im_matmul,
        "unpool": numpy_windows.unpool, "maxpool": numpy_windows.maxpool,
        "maxpool_grad": numpy_windows.maxpool_grad,
    }
    # Each kernel takes the shared `work` first, then the caller's (xp, ...) arguments.
    return {name: partial(kernel, work) for name, kernel in kernels.items()}


# -- the machinery: reusable work arrays, and numpy's BLAS (numpy_blas.py) where it loaded ---------
class Scratch:
    """What the kernels share: numpy's BLAS (or None) and reusable work arrays.

    A work array is kept per (shape, dtype, slot, thread) and is only ever live inside one
    kernel call, so one backend's kernels can share them, even between training loops in
    different threads. Below MIN_SIZE elements a fresh temporary is cheaper than the lookup.
    """

    MAX_ARRAYS = 64  # a sweep over many network shapes must not hoard memory,
    MAX_BYTES = 1 << 29  # nor a few big convolutions (col2im's grid and product at batch 1024: 185 MB)
    MIN_SIZE = 1 << 14

    def __init__(self, blas: Blas | None = None):
        self.blas = blas
        self._arrays: dict = {}
        self._bytes = 0

    def like(self, array: np.ndarray, slot: int = 0) -> np.ndarray | None:
        """A work array of `array`'s shape and dtype (contents garbage); None for small ones,
        which numpy's `out=None` then allocates fresh."""
        if array.size < self.MIN_SIZE:
            return None
        key = (array.shape, array.dtype, slot, threading.get_ident())
        return self._get(key, lambda: np.empty(array.shape, array.dtype))

    def empty(self, shape: tuple, dtype, name: str) -> np.ndarray:
        """A work array of any size (contents garbage), for one kernel's `name`d use."""
        return self._get((shape, np.dtype(dtype), name, threading.get_ident()), lambda: np.empty(shape, dtype))

    def zeros(self, shape: tuple, dtype, name) -> np.ndarray:
        """A work array made of zeros, for a kernel that writes the same places of it on
        every call and needs the rest to stay zero; `name` must say what fixes those places."""
        return self._get((shape, np.dtype(dtype), name, threading.get_ident()), lambda: np.zeros(shape, dtype))

    def zeros_row(self, array: np.ndarray) -> np.ndarray:
        """Zeros the shape of one row of `array`. np.maximum(z, 0) takes a slow scalar loop;
        against a row of zeros it takes the vectorised one, nearly twice as fast."""
        shape = array.shape[-1:]
        return self._get((shape, array.dtype, "zeros"), lambda: np.zeros(shape, array.dtype))

    def ones(self, n: int, dtype) -> np.ndarray:
        """A vector of n ones: column sums as a product, for BLAS's gemv."""
        return self._get(((n,), np.dtype(dtype), "ones"), lambda: np.ones(n, dtype))

    def _get(self, key, make) -> np.ndarray:
        found = self._arrays.get(key)
        if found is None:
            found = make()
            if len(self._arrays) >= self.MAX_ARRAYS or self._bytes + found.nbytes > self.MAX_BYTES:
                self._arrays.clear()  # arrays in use stay alive with their callers
                self._bytes = 0
            self._arrays[key] = found
            self._bytes += found.nbytes
        return found


# -- forward: bias add and activation, in place in the matmul's output z (B, n_out) -------------
def bias_identity(work: Scratch, xp, z, b):
    return np.add(z, b, out=z)


def bias_relu(work: Scratch, xp, z, b):
    np.add(z, b, out=z)
    return np.maximum(z, work.zeros_row(z), out=z)


def bias_sigmoid(work: Scratch, xp, z, b):
    """0.5 + 0.5 * tanh(0.5 * (z + b)), the reference's overflow-free form, in place."""
    np.add(z, b, out=z)
    np.multiply(z, 0.5, out=z)
    np.tanh(z, out=z)
    np.multiply(z, 0.5, out=z)
    return np.add(z, 0.5, out=z)


def bias_tanh(work: Scratch, xp, z, b):
    np.add(z, b, out=z)
    return np.tanh(z, out=z)


# -- backward: the activation's derivative from its output y, into one new array ----------------
def relu_grad(work: Scratch, xp, y, dy):
    """dy where the unit fired, else 0: dy times a bool mask (np.where is far slower)."""
    return np.multiply(dy, np.greater(y, 0))


def sigmoid_grad(work: Scratch, xp, y, dy):
    """(dy * y) * (1 - y), in the reference's order, with 1 - y in a reused work array."""
    dz = np.multiply(dy, y)
    return np.multiply(dz, np.subtract(1, y, out=work.like(dz)), out=dz)


def tanh_grad(work: Scratch, xp, y, dy):
    """dy * (1 - y^2)."""
    dz = np.multiply(y, y)
    np.subtract(1, dz, out=dz)
    return np.multiply(dy, dz, out=dz)


# -- losses on the (B, n_out) output: small arrays, so the win is fewer and faster calls ---------
def cross_entropy(work: Scratch, xp, logits, targets):
    """Softmax cross-entropy as the reference computes it, reusing its two temporaries.

    The row max is taken down the columns of a transposed copy: numpy's max along a short
    last axis (10 classes) is several times slower, and a max is exact in any order. The
    row sums stay along the rows, so every rounding matches the reference's.
    """
    n = logits.shape[0]
    row_max = np.maximum.reduce(np.ascontiguousarray(logits.T), axis=0)  # (B,)
    shifted = np.subtract(logits, row_max[:, None])
    exp = np.exp(shifted)
    total = np.add.reduce(exp, axis=-1, keepdims=True)  # (B, 1)
    log_probs = np.subtract(shifted, np.log(total), out=shifted)
    loss = -np.add.reduce(np.multiply(targets, log_probs, out=log_probs), axis=None) / n
    dh = np.divide(exp, total, out=exp)
    np.subtract(dh, targets, out=dh)
    return loss, np.divide(dh, n, out=dh)


def quadratic(work: Scratch, xp, h, targets):
    """sum((h - y)^2) / 2n and its gradient (h - y) / n, from one temporary."""
    n = h.shape[0]
    diff = np.subtract(h, targets)
    loss = np.add.reduce(np.square(diff), axis=None) / (2 * n)
    return loss, np.divide(diff, n, out=diff)


# -- parameter updates, in place ------------------------------------------------------------------
def sgd_update(work: Scratch, xp, p, g, lr):
    """p -= lr * g: one BLAS axpy pass where it fits, else two ufunc passes."""
    if work.blas and work.blas.fits(p, g):
        work.blas.axpy(-lr, g, p)
        return p
    return np.subtract(p, np.multiply(g, lr, out=work.like(g)), out=p)


def momentum_update(work: Scratch, xp, p, g, v, lr, momentum):
    """v = momentum * v - lr * g; p += v."""
    blas = work.blas
    if blas and blas.fits(v, g) and blas.fits(p, v):
        blas.axpby(-lr, g, momentum, v)
        blas.axpy(1.0, v, p)
        return p, v
    np.multiply(v, momentum, out=v)
    np.subtract(v, np.multiply(g, lr, out=work.like(g)), out=v)
    return np.add(p, v, out=p), v


def adam_update(work: Scratch, xp, p, g, m, v, step_size, beta1, beta2, eps_hat):
    """m, v = running means of g and g^2; p -= step_size * m / (sqrt(v) + eps_hat)."""
    tmp = np.multiply(g, 1 - beta1, out=work.like(g, 0))
    np.multiply(m, beta1, out=m)
    np.add(m, tmp, out=m)
    np.multiply(v, beta2, out=v)
    np.multiply(g, g, out=tmp)
    np.add(v, np.multiply(tmp, 1 - beta2, out=tmp), out=v)
    denom = np.sqrt(v, out=work.like(g, 1))
    np.add(denom, eps_hat, out=denom)
    np.multiply(m, step_size, out=tmp)
    return np.subtract(p, np.divide(tmp, denom, out=tmp), out=p), m, v


def matmul(work: Scratch, xp, a, b):
    """numpy's own matmul: the array API wrapper's checks cost 1-2 us a call, a tenth of a
    tiny network's products."""
    return np.matmul(a, b)


# -- an update folded into the gradient's product (see SGD.update_layer) ---------------------------
def matmul_add(work: Scratch, xp, c, a, b, alpha, beta):
    """c = alpha * (a @ b) + beta * c as one BLAS gemm: the product's result goes straight
    into c, with no (n_out, n_in) gradient written and read back. For a small c, or where
    BLAS cannot take the operands, the reference's ufuncs."""
    if work.blas and c.size >= Blas.MIN_FOLD and work.blas.matmul_add(c, a, b, alpha, beta):
        return c
    if beta != 1.0:
        np.multiply(c, beta, out=c)
    product = np.matmul(a, b)
    return np.add(c, np.multiply(product, alpha, out=product), out=c)


def sum_add(work: Scratch, xp, c, a, alpha, beta):
    """c = alpha * (column sums of a) + beta * c as one BLAS gemv against a ones vector
    (multi-threaded, one pass); for a small a, numpy's sum."""
    blas = work.blas
    if blas and a.size >= Blas.MIN_SUM and blas.sum_add(c, a, work.ones(a.shape[0], a.dtype), alpha, beta):
        return c
    if beta != 1.0:
        np.multiply(c, beta, out=c)
    column_sums = np.add.reduce(a, axis=0)  # np.sum's own wrapper costs more than the sum here
    return np.add(c, np.multiply(column_sums, alpha, out=column_sums), out=c)
