"""A convolutional layer: the same small filters slid over every position of an image.

A multilayer perceptron sees a letter moved two pixels as a new pattern; a filter that
detects a stroke detects it wherever it is, with k * k * channels weights instead of one
per pixel pair. Each of the F filters (C, kh, kw) is multiplied with every window of the
input, plus its bias, then the activation: y = g(conv(x, W) + b). Written as im2col (each
window a row, model/windows.py) times the filters: one matrix product, so the layer reuses
Dense's ops (`matmul`, `bias_act.*`, `act_grad.*`) and their fused kernels. Images are
(batch, channels, height, width), W is (F, C, kh, kw), PyTorch's Conv2d layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xpnet.backends import Backend
from xpnet.model.activations import ModelError, check_activation
from xpnet.model.layer import Weighted
from xpnet.model.ops import op
from xpnet.model.windows import unpad2d

PADDINGS = ("same", "valid")  # same: the output keeps ceil(H / stride) rows; valid: windows inside only


@dataclass
class Conv2D(Weighted):
    """F filters of size kh x kw over a (C, H, W) input, moved `stride` pixels at a time."""

    W: Any
    b: Any
    activation: str
    backend: Backend
    in_shape: tuple
    stride: int = 1
    padding: str = "same"

    def __post_init__(self):
        check_activation(self.activation)
        if self.padding not in PADDINGS:
            raise ModelError(f"{self.word()}: padding must be one of {', '.join(PADDINGS)}, got {self.padding!r}")
        F, C, kh, kw = self.W.shape
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ModelError(f"{self.word()}: the stride must be a whole number of 1 or more, got {self.stride!r}")
        if len(self.in_shape) != 3 or self.in_shape[0] != C:
            raise ModelError(f"{self.word()}: takes images of {C} channel(s), got input of shape {self.in_shape}")
        if kh > self.in_shape[1] or kw > self.in_shape[2]:  # with 'same', most of each window would be padding
            raise ModelError(f"{self.word()}: a {kh}x{kw} kernel is larger than its {self.in_shape[1]}x"
                             f"{self.in_shape[2]} input: use a smaller kernel, or fewer pools before it"
                             + _channels_last_hint(self.in_shape))
        self.pads = same_pads(self.in_shape[1:], (kh, kw), self.stride) if self.padding == "same" else (0, 0, 0, 0)
        H, W = self.in_shape[1] + self.pads[0] + self.pads[1], self.in_shape[2] + self.pads[2] + self.pads[3]
        self._out = (F, (H - kh) // self.stride + 1, (W - kw) // self.stride + 1)
        self._xp = self.backend.xp
        self._bias_act = op(self.backend, f"bias_act.{self.activation}")
        self._act_grad = op(self.backend, f"act_grad.{self.activation}")
        self._matmul = op(self.backend, "matmul")
        self._im2col, self._col2im_matmul = op(self.backend, "im2col"), op(self.backend, "col2im_matmul")
        self._pad = op(self.backend, "pad2d")

    @property
    def out_shape(self) -> tuple:
        return self._out

    def floats_per_row(self) -> int:
        """Its input, the input padded, the windows (C * kh * kw per output pixel), and the
        output before and after the activation."""
        _, C, kh, kw = self.W.shape
        top, bottom, left, right = self.pads
        padded = C * (self.in_shape[1] + top + bottom) * (self.in_shape[2] + left + right)
        windows = C * kh * kw * self._out[1] * self._out[2]
        return self.n_in + padded + windows + 2 * self.n_out

    def describe(self) -> dict:
        F, _, kh, kw = self.W.shape
        return {"kind": "conv", "filters": F, "kernel": [kh, kw], "stride": self.stride,
                "padding": self.padding, "activation": self.activation}

    def word(self) -> str:
        F, _, kh, kw = self.W.shape
        return conv_word(F, (kh, kw), self.stride, self.padding)

    def forward(self, x, training: bool = False):
        """x (B, C, H, W) -> y (B, F, Ho, Wo); the cache keeps the windows and the output."""
        xp = self._xp
        F, _, kh, kw = self.W.shape
        B = x.shape[0]
        cols = self._im2col(xp, self._pad(xp, x, self.pads), kh, kw, self.stride)  # (C*kh*kw, B*Ho*Wo)
        z = self._matmul(xp, xp.reshape(self.W, (F, -1)), cols)  # (F, B*Ho*Wo)
        y = self._bias_act(xp, z.T, self.b)  # (B*Ho*Wo, F): the bias runs along the last axis
        _, Ho, Wo = self._out
        return xp.permute_dims(xp.reshape(y.T, (F, B, Ho, Wo)), (1, 0, 2, 3)), (cols, y, B)

    def backward(self, dy, cache, need_dx: bool = True):
        """dz = g'(z) * dy per window and filter; dW = dz @ windows.T; db = sum of dz;
        dx = col2im(W.T @ dz): each pixel gathers the gradient of every window it was in."""
        xp = self._xp
        cols, y, B = cache
        F, C, kh, kw = self.W.shape
        dy = xp.reshape(xp.permute_dims(dy, (1, 0, 2, 3)), (F, -1))  # (F, B*Ho*Wo)
        dz = self._act_grad(xp, y, dy.T).T  # (F, B*Ho*Wo)
        dW = xp.reshape(self._matmul(xp, dz, cols.T), self.W.shape)
        dx = None
        if need_dx:
            top, bottom, left, right = self.pads
            padded = (B, C, self.in_shape[1] + top + bottom, self.in_shape[2] + left + right)
            dx = self._col2im_matmul(xp, xp.reshape(self.W, (F, -1)).T, dz, padded, kh, kw, self.stride,
                                     self._matmul)  # col2im of (C*kh*kw, B*Ho*Wo)
            dx = unpad2d(dx, self.pads)
        return dx, [dW, xp.sum(dz, axis=1)]


def _channels_last_hint(shape: tuple) -> str:
    """Where a shape looks like Pillow's (height, width, channels), say the order xpnet reads."""
    if len(shape) == 3 and shape[2] <= 4 < shape[0]:
        return f" (images are channels x height x width: {(shape[2], *shape[:2])}, not {tuple(shape)})"
    return ""


def conv_word(filters, kernel, stride=1, padding="same") -> str:
    """conv32x3, conv32x5s2, conv32x3valid: a convolution as `--layers` writes it (a checkpoint's
    kernel of 3 by 5 as conv32x3x5)."""
    kh, kw = kernel
    return (f"conv{filters}x{kh}" + (f"x{kw}" if kw != kh else "") + (f"s{stride}" if stride != 1 else "")
            + ("valid" if padding == "valid" else ""))


def same_pads(size: tuple, kernel: tuple, stride: int) -> tuple:
    """(top, bottom, left, right) zeros so the output has ceil(size / stride) rows and columns,
    the odd one at the bottom and right (TensorFlow's "same"; PyTorch's for stride 1)."""
    pads = []
    for n, k in zip(size, kernel):
        total = max((-(-n // stride) - 1) * stride + k - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)
