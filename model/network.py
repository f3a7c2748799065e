"""A feed-forward network: layers chained, plus the loss that judges the output."""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from xpnet.backends import Backend
from xpnet.model.activations import ModelError, check_activation, softmax_forward
from xpnet.model.dense import Dense
from xpnet.model.init import init_weights, seeded_rng
from xpnet.model.layer import Layer, eval_rows
from xpnet.model.inputs import check_inputs
from xpnet.model.layers import build_layers, describe_layers, layer_from
from xpnet.model.losses import check_loss
from xpnet.model.ops import op
from xpnet.model.scaling import Scaling


class Network:
    """Layers (dense: y = g(x @ W.T + b); convolutions, pooling...) trained by backpropagation.

    With the cross-entropy loss the last layer stays linear (its outputs are logits) and
    softmax is applied inside the fused loss and by `predict_proba`. The network owns its
    backend: every parameter lives there, and `to(other)` copies it somewhere else. Samples
    arrive as rows; a network whose first layer takes images reshapes each row into
    `input_shape` (channels, height, width) first. `scaling` is how training scaled its
    inputs and regression targets (model/scaling.py): `predict`, `predict_proba` and `test`
    take raw inputs and apply it; `forward` does not.
    """

    def __init__(self, layers: Sequence[Layer], loss: str = "cross_entropy"):
        if not layers:
            raise ModelError("a network needs at least one layer")
        backends = {id(layer.backend) for layer in layers}
        if len(backends) != 1:
            raise ModelError("all layers of a network must share one backend")
        for prev, nxt in zip(layers, layers[1:]):
            if prev.out_shape != nxt.in_shape:
                raise ModelError(f"layer sizes do not chain: {_shape(prev.out_shape)} outputs feed "
                                 f"{_shape(nxt.in_shape)} inputs")
        if len(layers[-1].out_shape) != 1:
            raise ModelError(f"the last layer must give rows, not {_shape(layers[-1].out_shape)}: end with a dense layer")
        self.layers = list(layers)
        self.input_shape = tuple(layers[0].in_shape)
        self._all_dense = all(type(layer) is Dense for layer in layers)  # what an optimizer's fold takes
        self.loss = check_loss(loss)
        self.backend = layers[0].backend
        self.history: list[dict] = []  # one entry per training epoch, filled by train.learn
        self.classes: tuple[str, ...] | None = None  # what each output means, kept by save/load
        self.scaling: Scaling | None = None  # set by the first `learn` (None: inputs taken as they come)
        self.regression: bool | None = None  # set by `learn` from the targets (None: not trained yet)
        self.output_auto = False  # from_sizes chose the output layer: `learn` may make it linear for values
        self.loss_auto = False  # from_sizes chose the loss (none given): `learn` may make it quadratic for values
        self.temperature = 1.0  # softmax's divisor of the logits, fitted on validation data (train/calibration.py)
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
        rng = seeded_rng(seed)
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

    @classmethod
    def from_layers(cls, words: Sequence, input_shape: Sequence[int], n_out: int, backend: Backend, *,
                    activation: str = "relu", output: str | None = None, loss: str = "cross_entropy",
                    init: str = "he", seed: int | np.random.Generator = 0) -> "Network":
        """A network from a description such as ["conv32x3", "pool2", 256] (model/layers.py)
        taking samples of `input_shape`, e.g. (1, 28, 28), with `n_out` outputs."""
        check_activation(activation)
        output = output or ("identity" if check_loss(loss) == "cross_entropy" else activation)
        rng = seeded_rng(seed)
        return cls(build_layers(words, input_shape, n_out, backend, activation=activation, output=output,
                                init=init, rng=rng), loss)

    # -- description -------------------------------------------------------------------
    @property
    def sizes(self) -> list[int]:
        """The width of a sample as it enters, then after each layer: [784, 256, 26]."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def activations(self) -> list[str]:
        """The activation of each layer that has one (dense and conv layers)."""
        return [layer.activation for layer in self.layers if layer.activation]

    @property
    def params(self) -> list:
        return [p for layer in self.layers for p in layer.params]

    @params.setter
    def params(self, values: list) -> None:
        """Keep new parameters (an optimizer's step returns them), in `params` order."""
        values = list(values)
        if len(values) != len(self.params):
            raise ModelError(f"the network has {len(self.params)} parameter arrays, got {len(values)}")
        for layer in self.layers:
            count = len(layer.params)
            layer.params, values = values[:count], values[count:]

    def architecture(self) -> dict:
        """What it takes to rebuild this network: sizes, activations and loss for dense layers
        alone (the format every xpnet reads), else the input shape and each layer's description."""
        if self._all_dense:
            return {"sizes": self.sizes, "activations": self.activations, "loss": self.loss}
        return {"input": list(self.input_shape), "layers": [layer.describe() for layer in self.layers],
                "loss": self.loss, "sizes": self.sizes}

    @property
    def summary(self) -> str:
        """784 -> 256 -> 26, or 1x28x28 -> conv32x3 -> maxpool2 -> flatten -> 26: the layers in a line."""
        if self._all_dense:
            return " -> ".join(str(s) for s in self.sizes)
        return f"{_shape(self.input_shape)} -> {describe_layers(self.layers)}"

    def __repr__(self) -> str:
        return f"Network({self.summary}, {'/'.join(self.activations)}, loss={self.loss}, on {self.backend})"

    # -- computation ---------------------------------------------------------------------
    def forward(self, x):
        """The network's raw output for a device batch x (logits under cross-entropy)."""
        x = self._shaped(x)
        for layer in self.layers:
            x, _ = layer.forward(x)
        return x

    def _shaped(self, x):
        """Rows (B, features) as the first layer takes them: (B, channels, height, width) for images."""
        if len(self.input_shape) == 1:
            return x
        return self.backend.xp.reshape(x, (x.shape[0], *self.input_shape))

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

        The same step as `params = optimizer.step(params, loss_and_grads(...)[2])`. An optimizer that
        `folds` (SGD, with or without momentum, on numpy) takes each layer's step during
        backpropagation, straight from the product that would have been its gradient, so no
        weight-sized gradient is ever written and read back; the others get the gradients.
        `optimizer` is an `xpnet.train.optimizers.Optimizer` (its interface: `folds`, `step`,
        `update_layer`; the model never imports the training side).
        """
        out, caches = self._forward_with_caches(x)
        loss, dout = self._loss_fn(self.backend.xp, out, targets)
        if optimizer.folds and self._all_dense:
            self.backward(dout, caches, optimizer.update_layer)
        else:
            self.params = optimizer.step(self.params, self.backward(dout, caches))
        self.advance()
        return loss, out

    def advance(self) -> None:
        """After a training step: layers that draw randomness (Dropout) move to their next draw."""
        for layer in self.layers:
            layer.advance()

    def loss_of(self, out, targets):
        """The loss of a device output against device targets, as a 0-d device array."""
        return self._loss_fn(self.backend.xp, out, targets)[0]

    def backward(self, dout, caches, update_layer=None) -> list:
        """Chain rule from the last layer to the first: each layer turns dJ/dy into dJ/dx.

        Returns the gradients in `params` order; with `update_layer(i, W, b, dz, x) -> (W, b)`,
        layer i takes its new parameters as the chain passes it, and nothing is returned.
        """
        grads = []
        for i in range(len(self.layers) - 1, -1, -1):
            if update_layer is None:
                dout, layer_grads = self.layers[i].backward(dout, caches[i], need_dx=i > 0)
            else:  # dense layers only (see train_step)
                dout, layer_grads = self.layers[i].backward(dout, caches[i], need_dx=i > 0,
                                                            update=partial(update_layer, i))
            grads[:0] = layer_grads
        return grads

    def _forward_with_caches(self, x):
        """The output, and what each layer's backward needs, as in training (Dropout on)."""
        x = self._shaped(x)
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, training=True)
            caches.append(cache)
        return x, caches

    def probabilities(self, out):
        """Class probabilities from the raw output, on the device: softmax of the logits over
        the temperature under cross-entropy, so a stated 90% is right about 9 times in 10."""
        xp = self.backend.xp
        if self.loss == "cross_entropy":
            return softmax_forward(xp, out if self.temperature == 1.0 else out / self.temperature)
        clipped = xp.clip(out, 0.0, None) if self.activations[-1] not in ("sigmoid", "softmax") else out
        total = xp.sum(clipped, axis=-1, keepdims=True)  # (B, 1)
        empty = total <= 0  # no positive output: nothing to prefer, so uniform
        uniform = xp.full_like(clipped, 1.0 / clipped.shape[-1])
        return xp.where(empty, uniform, clipped / xp.where(empty, xp.ones_like(total), total))

    # -- host-facing helpers -----------------------------------------------------------------
    def predict_proba(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Host probabilities (n, classes) for raw host inputs X, in device batches (None: `eval_rows`)."""
        return self._map_batches(X, batch_size, lambda out: self.probabilities(out))

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """For raw host inputs X: class indices (n,) from a classifier, values (n, outputs)
        in the targets' own units from a regression network."""
        if self.is_regression:
            unscale = self.scaling.unscale_outputs if self.scaling else (lambda backend, out: out)
            return self._map_batches(X, batch_size, lambda out: unscale(self.backend, out))
        return np.argmax(self.predict_proba(X, batch_size), axis=1)

    def _map_batches(self, X, batch_size, fn) -> np.ndarray:
        X, batch_size = self.check_inputs(X), batch_size or eval_rows(self.layers, self.backend)
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
        layers = [layer_from(layer.describe(), layer.in_shape, backend,
                             [self.backend.to_numpy(p) for p in layer.params])
                  for layer in self.layers]
        copied = Network(layers, self.loss)
        copied.classes, copied.scaling, copied.regression = self.classes, self.scaling, self.regression
        copied.output_auto, copied.loss_auto, copied.temperature = self.output_auto, self.loss_auto, self.temperature
        return copied

    def copy(self) -> "Network":
        return self.to(self.backend)


def _shape(shape) -> str:
    return "x".join(map(str, shape))
