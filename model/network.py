"""A feed-forward network: Dense layers chained, plus the loss that judges the output."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from xpnet.backends import Backend
from xpnet.model.activations import ModelError, check_activation, softmax_forward
from xpnet.model.dense import Dense
from xpnet.model.init import init_weights
from xpnet.model.losses import check_loss
from xpnet.model.ops import op
from xpnet.model.scaling import Scaling


class Network:
    """Layers that each compute y = g(x @ W.T + b), trained by backpropagation.

    With the cross-entropy loss the last layer stays linear (its outputs are logits) and
    softmax is applied inside the fused loss and by `predict_proba`. The network owns its
    backend: every parameter lives there, and `to(other)` copies it somewhere else.
    `scaling` is how training scaled its inputs and regression targets (model/scaling.py):
    `predict`, `predict_proba` and `test` take raw inputs and apply it; `forward` does not.
    """

    def __init__(self, layers: Sequence[Dense], loss: str = "cross_entropy"):
        if not layers:
            raise ModelError("a network needs at least one layer")
        backends = {id(layer.backend) for layer in layers}
        if len(backends) != 1:
            raise ModelError("all layers of a network must share one backend")
        for prev, nxt in zip(layers, layers[1:]):
            if prev.n_out != nxt.n_in:
                raise ModelError(f"layer sizes do not chain: {prev.n_out} outputs feed {nxt.n_in} inputs")
        self.layers = list(layers)
        self.loss = check_loss(loss)
        self.backend = layers[0].backend
        self.history: list[dict] = []  # one entry per training epoch, filled by train.learn
        self.classes: tuple[str, ...] | None = None  # what each output means, kept by save/load
        self.scaling: Scaling | None = None  # set by the first `learn` (None: inputs taken as they come)
        self.regression: bool | None = None  # set by `learn` from the targets (None: not trained yet)
        self.output_auto = False  # from_sizes chose the output layer: `learn` may make it linear for values
        self.loss_auto = False  # from_sizes chose the loss (none given): `learn` may make it quadratic for values
        self._loss_fn = op(self.backend, f"loss.{self.loss}")

    @classmethod
    def from_sizes(cls, sizes: Sequence[int], backend: Backend, *, activation: str = "sigmoid",
                   output: str | None = None, loss: str | None = None, init: str = "normal",
                   seed: int | np.random.Generator = 0) -> "Network":
        """A network from layer sizes, e.g. [784, 128, 64, 26].

        Hidden layers use `activation` (sigmoid by default, as the course teaches). `loss`
        None is cross-entropy, made quadratic by `learn` if it sees float targets (values;
        said in its log). The output activation defaults to identity for cross-entropy
        (logits) and, for the quadratic loss, to the hidden activation (the course's all-sigmoid classifier) until
        `learn` sees float targets: values need a linear output, so it becomes identity then
        (and says so). An output given here is kept, and `learn` refuses to fit values with
        a capped one. Weights come from `seed` through `init`.
        """
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ModelError(f"layer sizes must be at least two positive integers, got {sizes}")
        check_activation(activation)
        loss_auto, loss = loss is None, check_loss(loss or "cross_entropy")
        auto = output is None and loss == "quadratic" and activation != "identity"
        if output is None:
            output = "identity" if loss == "cross_entropy" else activation
        if loss == "cross_entropy" and output != "identity":
            raise ModelError("cross_entropy applies softmax itself: the output activation must be identity")
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        acts = [activation] * (len(sizes) - 2) + [output]
        layers = []
        for n_in, n_out, act in zip(sizes, sizes[1:], acts):
            W = init_weights(init, rng, n_in, n_out)
            layers.append(Dense(backend.asarray(W), backend.asarray(np.zeros(n_out)), act, backend))
        net = cls(layers, loss)
        net.output_auto, net.loss_auto = auto, loss_auto
        return net

    def use_quadratic_loss(self) -> None:
        """The quadratic loss, for a network whose loss from_sizes chose, given values to fit."""
        self.loss, self.loss_auto = "quadratic", False
        self._loss_fn = op(self.backend, "loss.quadratic")

    def with_linear_output(self) -> None:
        """Make the output layer identity, keeping its weights: for regression targets."""
        last = self.layers[-1]
        self.layers[-1] = Dense(last.W, last.b, "identity", self.backend)
        self.output_auto = False

    @property
    def is_regression(self) -> bool:
        """Whether this network answers values (regression) rather than classes: as `learn`
        or the checkpoint said, else guessed from its make (the quadratic loss with a linear
        output, or with a single output, which no argmax could make a class of)."""
        if self.regression is not None:
            return self.regression
        return self.loss == "quadratic" and (self.activations[-1] == "identity" or self.sizes[-1] == 1)

    # -- description -------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def activations(self) -> list[str]:
        return [layer.activation for layer in self.layers]

    @property
    def params(self) -> list:
        return [p for layer in self.layers for p in layer.params]

    def architecture(self) -> dict:
        """What it takes to rebuild this network: sizes, activations, loss."""
        return {"sizes": self.sizes, "activations": self.activations, "loss": self.loss}

    def __repr__(self) -> str:
        arch = " -> ".join(str(s) for s in self.sizes)
        return f"Network({arch}, {'/'.join(self.activations)}, loss={self.loss}, on {self.backend})"

    # -- computation ---------------------------------------------------------------------
    def forward(self, x):
        """The network's raw output for a device batch x (logits under cross-entropy)."""
        for layer in self.layers:
            x, _ = layer.forward(x)
        return x

    def loss_and_grads(self, x, targets):
        """Forward, loss and backpropagation on one device batch.

        Returns (loss as a 0-d device array, output, gradients in `params` order). The loss
        stays on the device so a training loop can sum it without waiting for the GPU.
        """
        out, caches = self._forward_with_caches(x)
        loss, dout = self._loss_fn(self.backend.xp, out, targets)
        return loss, out, self.backward(dout, caches)

    def train_step(self, x, targets, optimizer):
        """One step of gradient descent on a device batch; returns (loss, output), on the device.

        The same step as `optimizer.step(params, loss_and_grads(...)[2])`. An optimizer that
        `folds` (SGD, with or without momentum, on numpy) takes each layer's step during
        backpropagation, straight from the product that would have been its gradient, so no
        weight-sized gradient is ever written and read back; the others get the gradients.
        `optimizer` is an `xpnet.train.optimizers.Optimizer` (its interface: `folds`, `step`,
        `update_layer`; the model never imports the training side).
        """
        out, caches = self._forward_with_caches(x)
        loss, dout = self._loss_fn(self.backend.xp, out, targets)
        if optimizer.folds:
            self.backward(dout, caches, optimizer.update_layer)
        else:
            optimizer.step(self.params, self.backward(dout, caches))
        return loss, out

    def loss_of(self, out, targets):
        """The loss of a device output against device targets, as a 0-d device array."""
        return self._loss_fn(self.backend.xp, out, targets)[0]

    def backward(self, dout, caches, update_layer=None) -> list:
        """Chain rule from the last layer to the first: each layer turns dJ/dy into dJ/dx.

        Returns the gradients in `params` order; with `update_layer(i, W, b, dz, x)`, layer i
        is updated in place as the chain passes it, and nothing is returned.
        """
        grads = []
        for i in range(len(self.layers) - 1, -1, -1):
            update = None if update_layer is None else partial(update_layer, i)
            dout, layer_grads = self.layers[i].backward(dout, caches[i], need_dx=i > 0, update=update)
            grads[:0] = layer_grads
        return grads

    def _forward_with_caches(self, x):
        """The output, and what each layer's backward needs."""
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x)
            caches.append(cache)
        return x, caches

    def probabilities(self, out):
        """Class probabilities from the raw output, on the device."""
        xp = self.backend.xp
        if self.loss == "cross_entropy":
            return softmax_forward(xp, out)
        clipped = xp.clip(out, 0.0, None) if self.activations[-1] not in ("sigmoid", "softmax") else out
        total = xp.sum(clipped, axis=-1, keepdims=True)  # (B, 1)
        empty = total <= 0  # no positive output: nothing to prefer, so uniform
        uniform = xp.full_like(clipped, 1.0 / clipped.shape[-1])
        return xp.where(empty, uniform, clipped / xp.where(empty, xp.ones_like(total), total))

    # -- host-facing helpers -----------------------------------------------------------------
    def predict_proba(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Host probabilities (n, classes) for raw host inputs X, computed in device batches."""
        return self._map_batches(X, batch_size, lambda out: self.probabilities(out))

    def predict(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """For raw host inputs X: class indices (n,) from a classifier, values (n, outputs)
        in the targets' own units from a regression network."""
        if self.is_regression:
            unscale = self.scaling.unscale_outputs if self.scaling else (lambda backend, out: out)
            return self._map_batches(X, batch_size, lambda out: unscale(self.backend, out))
        return np.argmax(self.predict_proba(X, batch_size), axis=1)

    def _map_batches(self, X, batch_size, fn) -> np.ndarray:
        X = self.check_inputs(X)
        dtype = self.backend.dtype_name  # int or bool inputs compute in the network's float
        scale = self.scaling.scale_inputs if self.scaling else (lambda backend, x: x)
        parts = [self.backend.to_numpy(fn(self.forward(scale(self.backend,
                                                             self.backend.asarray(X[i:i + batch_size], dtype)))))
                 for i in range(0, X.shape[0], batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.sizes[-1]))

    def check_inputs(self, X) -> np.ndarray:
        """Host inputs as a 2-D array of the width this network takes, or a one-line error."""
        return check_inputs(X, self.sizes[0], empty_ok=True)  # no samples, no answers

    def to(self, backend: Backend) -> "Network":
        """A copy of this network on another backend (or dtype): one call, same numbers."""
        layers = [Dense(backend.asarray(self.backend.to_numpy(layer.W)),
                        backend.asarray(self.backend.to_numpy(layer.b)), layer.activation, backend)
                  for layer in self.layers]
        copied = Network(layers, self.loss)
        copied.classes, copied.scaling, copied.regression = self.classes, self.scaling, self.regression
        copied.output_auto, copied.loss_auto = self.output_auto, self.loss_auto
        return copied

    def copy(self) -> "Network":
        return self.to(self.backend)


def check_inputs(X, width: int, what: str = "inputs", error: type = ModelError, read: bool = True,
                 empty_ok: bool = False) -> np.ndarray:
    """Host inputs as a 2-D array of numbers `width` wide, every value finite; else `error`,
    in one line. The one check of inputs, for predicting (ModelError) and for training data
    (the caller's DataError); `read=False` leaves the values of a memory-mapped file unread,
    when they were checked as it was written. A 1-D X is a column for a one-input network."""
    X = np.asarray(X)
    if X.ndim == 1 and width == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise error(f"{what}: X must be 2-D (samples x features), (n, {width}) here, got shape {X.shape}")
    if X.shape[0] == 0 and not empty_ok:
        raise error(f"{what} is empty: give at least one sample")
    if X.shape[1] != width:
        raise error(f"{what}: samples have {X.shape[1]} features but the network takes {width} "
                    f"(X has shape {X.shape}; it must be (n, {width}))")
    if X.dtype.kind not in "fiub" or (read and X.dtype.kind == "f" and not np.all(np.isfinite(X))):
        raise error(f"{what}: X must be finite numbers (found NaN or inf, or non-numbers); clean the inputs")
    return X
