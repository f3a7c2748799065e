"""Gradient descent and its two common refinements.

The course's rule is theta <- theta - alpha * dJ/dtheta, with alpha the learning rate.
Momentum lets steps build up speed along directions that keep agreeing; Adam scales each
parameter's step by running estimates of its gradient's size. Each optimizer keeps its
state as device arrays and exposes it to numpy for checkpoints.

A step returns the new parameters, and the caller keeps them (`Network.train_step`). The
reference rules (model/updates.py) make new arrays, so any array API library works, those
whose arrays cannot change among them; a backend's fused kernels (numpy's BLAS, CuPy's
elementwise kernels, PyTorch's in-place methods) write into the old ones in one pass and
return those. A recorded CUDA graph replays its kernels on the addresses it recorded, so
once the steps are to be recorded (`hold_on_device`) every array must stay where it is: a
new array is then copied into the old one (`_keep`), which the fused kernels make a no-op.
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

    `step(params, grads)` returns the new parameters. An optimizer that `folds` takes each
    layer's step during backpropagation instead, in `update_layer`, straight from the
    product that would have been the gradient, and returns the layer's new W and b.
    `state()` and `counters()` are what a checkpoint keeps to resume exactly;
    `hold_on_device()` is called before the steps are recorded as a CUDA graph, which
    freezes every Python number it is given and every array's address.
    """

    folds = False
    lr_dtype: str | None = None  # the learning rate's dtype once held on the device (None: the backend's)

    def __init__(self, backend: Backend, lr: float, weight_decay: float = 0.0):
        self.backend = backend
        self.weight_decay = weight_decay  # L2: lambda, so J gains lambda / 2 * |W|^2 for every weight matrix
        self._lr_on_device = None  # the rate as a device scalar, once held there
        self._fixed = False  # whether every array must stay at its address (a recorded graph)
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

    def step(self, params: list, grads: list) -> list:
        """The parameters after one step down their gradients."""
        raise NotImplementedError

    def update_layer(self, index: int, W, b, dz, x) -> tuple:
        raise NotImplementedError(f"{type(self).__name__} does not fold its update into the products")

    def state_lists(self) -> dict:
        """The optimizer's per-parameter state: a list of device arrays (one per parameter) by name."""
        return {}

    def state(self) -> dict:
        """Device arrays that, with `counters()`, let training resume exactly."""
        return {f"{name}.{i}": a for name, arrays in self.state_lists().items() for i, a in enumerate(arrays)}

    def counters(self) -> dict:
        return {}

    def load_state(self, host: dict, counters: dict) -> None:
        """Take the state arrays from host copies (a checkpoint's)."""
        for name, arrays in self.state_lists().items():
            for i, array in enumerate(arrays):
                key = f"{name}.{i}"
                if key not in host or tuple(host[key].shape) != tuple(array.shape):
                    raise OptimizerError(f"the checkpoint's optimizer state has no matching {key!r}: "
                                         "was it saved with another optimizer or network?")
                arrays[i] = self._keep(array, self.backend.asarray(host[key]))  # the backend's float dtype, as the state's

    def _decayed(self, params: list, grads: list) -> list:
        """Each weight's gradient with L2 weight decay's lambda * W added (biases are not
        decayed: they shift a neuron, they do not make it depend on any input more)."""
        if not self.weight_decay:
            return grads
        return [g + self.weight_decay * p if p.ndim > 1 else g for p, g in zip(params, grads)]

    def _keep(self, old, new):
        """The array to keep as a parameter's (or its state's) new value: `new`, or, once every
        array must stay where it is, `old` with new's values written in."""
        if new is old or not self._fixed:
            return new
        old[...] = new
        return old

    def hold_on_device(self) -> None:
        """Keep the numbers that change between steps, the rate among them, on the device from
        now on: a recorded CUDA graph (train/graphs.py) freezes every Python number it was
        given, and reads a device scalar's current value on every replay."""
        self._fixed = True
        if self._lr_on_device is None:
            self._lr_on_device = self.backend.asarray(np.asarray(float(self._lr)), self.lr_dtype)


class SGD(Optimizer):
    """Plain gradient descent, optionally with (heavy-ball) momentum: v = mu * v - lr * g, W += v.

    The rate is inside the velocity (Sutskever et al.'s form, the course's). PyTorch keeps it
    out (buf = mu * buf + g, W -= lr * buf): the same steps at a constant rate, but while a
    schedule changes the rate, PyTorch's past steps are rescaled at once and these fade out
    at the rates they were taken with."""

    def __init__(self, backend: Backend, params: list, lr: float, momentum: float = 0.0,
                 fold: bool | None = None, weight_decay: float = 0.0):
        super().__init__(backend, lr, weight_decay)
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

    def step(self, params: list, grads: list) -> list:
        xp, lr, grads = self.backend.xp, self.rate(), self._decayed(params, grads)
        if not self.momentum:
            return [self._keep(p, self._update(xp, p, g, lr)) for p, g in zip(params, grads)]
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            p_new, v_new = self._momentum_update(xp, p, g, self.velocity[i], lr, self.momentum)
            self.velocity[i] = self._keep(self.velocity[i], v_new)
            new.append(self._keep(p, p_new))
        return new

    def update_layer(self, index: int, W, b, dz, x) -> tuple:
        """The step for dense layer `index` (parameters W, b) from its dz and its input x.

        Its gradients are dW = dz.T @ x (plus weight decay's lambda * W) and db = the column
        sums of dz. Rather than write dW out and then subtract lr times it, the product
        accumulates straight into W (or the velocity): BLAS's gemm computes alpha * (a @ b) +
        beta * c in one call. Plain SGD takes the decay in gemm's beta, as W - lr * (dW +
        lambda * W) = (1 - lr * lambda) * W - lr * dW; momentum takes it in one more pass
        over the velocity. The same step as `step`, without a weight-sized gradient written
        and read back. Returns the layer's new (W, b).
        """
        xp, lr, decay = self.backend.xp, self.lr, self.weight_decay  # only numpy folds, and it records no graphs
        if not self.momentum:
            return (self._keep(W, self._matmul_add(xp, W, dz.T, x, -lr, 1.0 - lr * decay)),
                    self._keep(b, self._sum_add(xp, b, dz, -lr, 1.0)))
        i_W, i_b = 2 * index, 2 * index + 1
        v = self.velocity  # v = momentum * v - lr * g, then p -= -1 * v, i.e. p += v, through one kernel
        v[i_W] = self._keep(v[i_W], self._matmul_add(xp, v[i_W], dz.T, x, -lr, self.momentum))
        if decay:
            v[i_W] = self._keep(v[i_W], self._update(xp, v[i_W], W, lr * decay))  # v -= lr * lambda * W
        v[i_b] = self._keep(v[i_b], self._sum_add(xp, v[i_b], dz, -lr, self.momentum))
        return self._keep(W, self._update(xp, W, v[i_W], -1.0)), self._keep(b, self._update(xp, b, v[i_b], -1.0))

    def state_lists(self) -> dict:
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected first and second moment estimates."""

    lr_dtype = "float64"  # its step size is worked out in float64 from the step count, then cast

    def __init__(self, backend: Backend, params: list, lr: float, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(backend, lr, weight_decay)
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

    def step(self, params: list, grads: list) -> list:
        step_size, eps_hat = self._step_sizes()
        grads = self._decayed(params, grads)
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            p_new, m_new, v_new = self._update(self.backend.xp, p, g, self.m[i], self.v[i],
                                               step_size, self.beta1, self.beta2, eps_hat)
            self.m[i], self.v[i] = self._keep(self.m[i], m_new), self._keep(self.v[i], v_new)
            new.append(self._keep(p, p_new))
        return new

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

    def state_lists(self) -> dict:
        return {"m": self.m, "v": self.v}

    def counters(self) -> dict:
        return {"t": self.t}

    def load_state(self, host: dict, counters: dict) -> None:
        super().load_state(host, counters)
        self.t = counters["t"]


# Each optimizer by the name the CLI and `learn(optimizer=...)` take.
OPTIMIZERS = {
    "sgd": lambda backend, params, lr, wd: SGD(backend, params, lr, weight_decay=wd),  # theta -= alpha * dJ/dtheta
    "momentum": lambda backend, params, lr, wd: SGD(backend, params, lr, momentum=0.9, weight_decay=wd),
    "adam": lambda backend, params, lr, wd: Adam(backend, params, lr, weight_decay=wd),
}
# The rate each uses when none is given (said in the log): Adam divides each step by a running
# measure of the gradient's size, so its usual rate is far below SGD's.
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.001}


def check_optimizer(name: str) -> str:
    return choose(name, OPTIMIZERS, "optimizer", OptimizerError)


def make_optimizer(name: str, backend: Backend, params: list, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """An optimizer by name: sgd, momentum (0.9), or adam; `weight_decay` is L2's lambda."""
    check_optimizer(name)
    if isinstance(lr, bool) or not (isinstance(lr, numbers.Real) and lr > 0 and math.isfinite(lr)):
        raise OptimizerError(f"learning rate must be a positive number, got {lr!r}")
    check_weight_decay(weight_decay)
    # floats: an np.float32 rate must not meet float64 arrays
    return OPTIMIZERS[name](backend, params, float(lr), float(weight_decay))


def check_weight_decay(weight_decay) -> float:
    try:  # float() of a whole number past float's range raises rather than giving inf
        good = (not isinstance(weight_decay, bool) and isinstance(weight_decay, numbers.Real)
                and 0 <= float(weight_decay) < math.inf)
    except OverflowError:
        good = False
    if not good:
        raise OptimizerError(f"weight decay must be a number, 0 or more, got {weight_decay!r}")
    return weight_decay
