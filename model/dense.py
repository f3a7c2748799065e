"""A layer of neurons: weights W, bias b and an activation g, y = g(x @ W.T + b).

This is the course's picture of a layer: every neuron takes the weighted sum of all the
previous layer's values plus its own bias, then passes it through a non-linearity.
Batch-first: x is (batch, n_in), W is (n_out, n_in), b is (n_out,), y is (batch, n_out).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpnet.backends import Backend
from xpnet.model.activations import check_activation
from xpnet.model.layer import Weighted
from xpnet.model.ops import op


@dataclass
class Dense(Weighted):
    """One fully connected layer; `W` and `b` are arrays on `backend`."""

    W: Any
    b: Any
    activation: str
    backend: Backend

    def __post_init__(self):
        check_activation(self.activation)
        self._xp = self.backend.xp
        # Named ops a backend may replace with a fused kernel (same signature, xp first).
        self._bias_act = op(self.backend, f"bias_act.{self.activation}")
        self._act_grad = op(self.backend, f"act_grad.{self.activation}")
        self._matmul = op(self.backend, "matmul")

    @property
    def in_shape(self) -> tuple:
        return (self.W.shape[1],)

    @property
    def out_shape(self) -> tuple:
        return (self.W.shape[0],)

    def describe(self) -> dict:
        return {"kind": "dense", "units": self.n_out, "activation": self.activation}

    def word(self) -> str:
        return str(self.n_out)

    def forward(self, x, training: bool = False):
        """Returns y and what backward needs (the input and the output)."""
        z = self._matmul(self._xp, x, self.W.T)  # (B, n_out)
        y = self._bias_act(self._xp, z, self.b)
        return y, (x, y)

    def backward(self, dy, cache, need_dx: bool = True, update=None):
        """Backpropagation through the layer: from dJ/dy to dJ/dx, dJ/dW, dJ/db.

        dz = g'(z) * dy; dW = dz.T @ x; db = sum of dz over the batch; dx = dz @ W.
        Returns dx and [dW, db]. The first layer skips dx (nobody needs the gradient of the
        data). With `update(W, b, dz, x) -> (W, b)`, an optimizer's step, the layer hands over
        dz and x instead of forming dW and db, keeps the new W and b it gets back, and returns
        no gradients: plain SGD then runs W - lr * dz.T @ x as one multiply-add product. dx
        is taken first, from the W the forward pass used.
        """
        x, y = cache
        xp = self._xp
        dz = self._act_grad(xp, y, dy)  # (B, n_out)
        dx = self._matmul(xp, dz, self.W) if need_dx else None  # (B, n_in), before any update moves W
        if update is not None:
            self.W, self.b = update(self.W, self.b, dz, x)
            return dx, []
        return dx, [self._matmul(xp, dz.T, x), xp.sum(dz, axis=0)]  # (n_out, n_in), (n_out,)
