"""Gradient descent and its two common refinements, updating parameters in place.

The course's rule is theta <- theta - alpha * dJ/dtheta, with alpha the learning rate.
Momentum lets steps build up speed along directions that keep agreeing; Adam scales each
parameter's step by running estimates of its gradient's size. Each optimizer keeps its
state as device arrays and exposes it to numpy for checkpoints.

Updates are written in place, not returned as new arrays: a CUDA graph replays its kernels
on the addresses it recorded, so every parameter must stay where it is, and the fused
kernels (numpy's BLAS axpy, CuPy's elementwise kernels) update in place in one pass. A
backend of immutable arrays (JAX) would need a second, functional path beside this one.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from xpnet.backends import Backend, XpnetError
from xpnet.backends.errors import choose
from xpnet.model.ops import op, overrides


class OptimizerError(XpnetError):
    """An optimizer that was asked for does not exist or got a bad setting."""


class Optimizer:
    """What the training loop and `Network.train_step` ask of every optimizer.

    `step(params, grads)` updates the parameters in place. An optimizer that `folds` takes
    each layer's step during backpropagation instead, in `update_layer`, straight from the
    product that would have been the gradient. `state()` and `counters()` are what a
    checkpoint keeps to resume exactly; `hold_on_device()` is called before the steps are
    recorded as a CUDA graph, which freezes every Python number it is given.
    """

    folds = False
    lr_dtype: str | None = None  # the learning rate's dtype once held on the device (None: the backend's)

    def __init__(self, backend: Backend, lr: float):
        self.backend = backend
        self._lr_on_device = None  # the rate as a device scalar, once held there
        self.lr = lr

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        """A new rate reaches a recorded step through the device scalar, without a new recording."""
        self._lr = value
        if self._lr_on_device is not None:
            self._lr_on_device[...] = value

    def rate(self):
        """The learning rate as the update kernels take it: a Python float, or the device
        scalar once `hold_on_device` has put it there."""
        return self._lr if self._lr_on_device is None else self._lr_on_device

    def step(self, params: list, grads: list) -> None:
        raise NotImplementedError

    def update_layer(self, index: int, W, b, dz, x) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not fold its update into the products")

    def state(self) -> dict:
        """Device arrays that, with `counters()`, let training resume exactly."""
        return {}

    def counters(self) -> dict:
        return {}

    def load_state(self, host: dict, counters: dict) -> None:
        _load_arrays(self, host)

    def hold_on_device(self) -> None:
        """Keep the numbers that change between steps, the rate among them, on the device from
        now on: a recorded CUDA graph (train/graphs.py) freezes every Python number it was
        given, and reads a device scalar's current value on every replay."""
        if self._lr_on_device is None:
            self._lr_on_device = self.backend.asarray(np.asarray(float(self._lr)), self.lr_dtype)


class SGD(Optimizer):
    """Plain gradient descent, optionally with (heavy-ball) momentum."""

    def __init__(self, backend: Backend, params: list, lr: float, momentum: float = 0.0,
                 fold: bool | None = None):
        super().__init__(backend, lr)
        self.momentum = momentum
        # Whether Network.train_step folds the update into the products (`update_layer`).
        # By default, where the backend does a product and an add in one call (numpy's BLAS
        # gemm): there it saves a pass over every weight. On a GPU the fused update kernels
        # already make the step one pass, and folding would only add a launch.
        self.folds = overrides(backend, "matmul_add") if fold is None else fold
        xp = backend.xp
        self.velocity = [xp.zeros_like(p) for p in params] if momentum else []
        self._update = op(backend, "sgd_update")
        self._momentum_update = op(backend, "momentum_update")
        self._matmul_add = op(backend, "matmul_add")
        self._sum_add = op(backend, "sum_add")

    def step(self, params: list, grads: list) -> None:
        if self.momentum:
            for p, g, v in zip(params, grads, self.velocity):
                self._momentum_update(self.backend.xp, p, g, v, self.rate(), self.momentum)
        else:
            for p, g in zip(params, grads):
                self._update(self.backend.xp, p, g, self.rate())

    def update_layer(self, index: int, W, b, dz, x) -> None:
        """The step for dense layer `index` (parameters W, b) from its dz and its input x.

        Its gradients are dW = dz.T @ x and db = the column sums of dz. Rather than write
        them out and then subtract lr times them, the product accumulates straight into W
        (or the velocity): BLAS's gemm computes alpha * (a @ b) + beta * c in one call. The
        same step as `step`, without a weight-sized array written and read back.
        """
        xp, lr = self.backend.xp, self.lr  # only numpy folds, and it records no graphs: a host number
        if not self.momentum:
            self._matmul_add(xp, W, dz.T, x, -lr, 1.0)
            self._sum_add(xp, b, dz, -lr, 1.0)
            return
        v_W, v_b = self.velocity[2 * index], self.velocity[2 * index + 1]
        self._matmul_add(xp, v_W, dz.T, x, -lr, self.momentum)  # v = momentum * v - lr * g
        self._sum_add(xp, v_b, dz, -lr, self.momentum)
        self._update(xp, W, v_W, -1.0)  # p -= -1 * v, i.e. p += v, through the same kernel
        self._update(xp, b, v_b, -1.0)

    def state(self) -> dict:
        return {f"velocity.{i}": v for i, v in enumerate(self.velocity)}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected first and second moment estimates."""

    lr_dtype = "float64"  # its step size is worked out in float64 from the step count, then cast

    def __init__(self, backend: Backend, params: list, lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(backend, lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        xp = backend.xp
        self.m = [xp.zeros_like(p) for p in params]
        self.v = [xp.zeros_like(p) for p in params]
        self._t_on_device = None  # the step count as a device scalar, once counting there
        self.t = 0
        self._update = op(backend, "adam_update")

    def hold_on_device(self) -> None:
        """The rate, and the step count and the step size made from it, on the device from now on.

        A step size computed on the host would stay the first step's forever in a recorded
        graph; computed on the device from a device counter, each replay advances it. It
        costs a few scalar kernels a step, which is why ordinary training counts on the host.
        """
        super().hold_on_device()
        if self._t_on_device is None:
            self._t_on_device = self.backend.asarray(np.asarray(float(self._t)), "float64")

    @property
    def t(self) -> int:
        """Steps taken so far (read back from the device, once, where it counts there)."""
        return self._t if self._t_on_device is None else int(self.backend.to_numpy(self._t_on_device))

    @t.setter
    def t(self, steps: int) -> None:
        self._t = int(steps)
        if self._t_on_device is not None:
            self._t_on_device[...] = float(steps)

    def step(self, params: list, grads: list) -> None:
        step_size, eps_hat = self._step_sizes()
        for p, g, m, v in zip(params, grads, self.m, self.v):
            self._update(self.backend.xp, p, g, m, v, step_size, self.beta1, self.beta2, eps_hat)

    def _step_sizes(self):
        """This step's size and epsilon, with the bias correction folded in, so the update
        kernel stays one fused pass: Python floats, or device scalars when counting there."""
        if self._t_on_device is None:
            self._t += 1
            return self._corrected(self._t, math.sqrt)
        xp = self.backend.xp
        self._t_on_device += 1
        step_size, eps_hat = self._corrected(self._t_on_device, xp.sqrt)
        return xp.astype(step_size, self.m[0].dtype), xp.astype(eps_hat, self.m[0].dtype)

    def _corrected(self, t, sqrt):
        """(lr, eps) with Adam's bias correction for step t, a number or a device scalar."""
        correction = sqrt(1 - self.beta2 ** t)
        return self.rate() * correction / (1 - self.beta1 ** t), self.eps * correction

    def state(self) -> dict:
        out = {f"m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"v.{i}": v for i, v in enumerate(self.v)})
        return out

    def counters(self) -> dict:
        return {"t": self.t}

    def load_state(self, host: dict, counters: dict) -> None:
        _load_arrays(self, host)
        self.t = counters["t"]


def _load_arrays(optimizer, host: dict) -> None:
    """Overwrite the optimizer's state arrays in place from host copies (a checkpoint's)."""
    for name, array in optimizer.state().items():
        if name not in host or tuple(host[name].shape) != tuple(array.shape):
            raise OptimizerError(f"the checkpoint's optimizer state has no matching {name!r}: "
                                 "was it saved with another optimizer or network?")
        array[...] = optimizer.backend.asarray(host[name])


# Each optimizer by the name the CLI and `learn(optimizer=...)` take.
OPTIMIZERS = {
    "sgd": lambda backend, params, lr: SGD(backend, params, lr),  # the course's theta -= alpha * dJ/dtheta
    "momentum": lambda backend, params, lr: SGD(backend, params, lr, momentum=0.9),
    "adam": lambda backend, params, lr: Adam(backend, params, lr),
}
# The rate each uses when none is given (said in the log): Adam divides each step by a running
# measure of the gradient's size, so its usual rate is far below SGD's.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.001}


def check_optimizer(name: str) -> str:
    return choose(name, OPTIMIZERS, "optimizer", OptimizerError)


def make_optimizer(name: str, backend: Backend, params: list, lr: float) -> Optimizer:
    """An optimizer by name: sgd, momentum (0.9), or adam."""
    check_optimizer(name)
    if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and lr > 0 and math.isfinite(lr)):
        raise OptimizerError(f"learning rate must be a positive number, got {lr!r}")
    return OPTIMIZERS[name](backend, params, float(lr))  # float: an np.float32 rate must not meet float64 arrays
