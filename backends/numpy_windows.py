"""numpy's faster versions of the window ops behind convolutions and pooling (model/windows.py).

The reference builds its windows from k * k slices stacked, and sends gradients back by
padding each of them to the image's size and adding them up: portable, but several passes
over memory per window offset. What makes numpy fast here is the length of the runs each
pass goes through, more than the number of passes: numpy calls its inner loop once per run,
so a pass over 14-pixel rows costs several times a pass over one long run, and a pass with
stride 2 (a pooling block's positions) about seven times a contiguous one. So:

- im2col: a strided view of every window (`sliding_window_view`), then a single copy into
  the product's layout.
- A convolution's input gradient (`col2im_matmul`, stride 1): the product W.T @ dz is
  computed for every pixel of the padded image as a window corner, a padded grid with dz
  at the real corners and zeros elsewhere; then each of the kh * kw window offsets is one
  shifted, contiguous run added into the image, across the whole batch at once.
- Max pooling: each block position is copied out once into a contiguous array; the maximum
  and the masks of which position won run over those copies, and backward writes dy times
  each mask straight into its strided slice of the image.
- Images keep the memory order they arrive in: a convolution's output is a (B, C, H, W)
  view of (C, B, H, W) memory, and pooling and padding hand back the same order, so the
  next product reads its operand without a transposing copy.

tests/test_kernels_parity.py and tests/test_conv.py hold them to the reference.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad2d(work, xp, x, pads):
    """Zeros around x, in x's own memory order."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    B, C, H, W = x.shape
    out = np.zeros_like(x, shape=(B, C, H + top + bottom, W + left + right))
    out[:, :, top:top + H, left:left + W] = x
    return out


def im2col(work, xp, x, kh: int, kw: int, stride: int):
    """(B, C, H, W) -> (C * kh * kw, B * Ho * Wo) in one copy, from a view of every window."""
    B, C = x.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (B, C, Ho, Wo, kh, kw)
    Ho, Wo = windows.shape[2:4]
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * kh * kw, B * Ho * Wo)


def col2im(work, xp, cols, shape, kh: int, kw: int, stride: int):
    """Each window offset's share of the gradient added into its strided slice of one image,
    kept in (C, B, H, W) memory, the order the columns come in."""
    B, C, H, W = shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = cols.reshape(C, kh, kw, B, Ho, Wo)
    image = np.zeros((C, B, H, W), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] += cols[:, i, j]
    return image.transpose(1, 0, 2, 3)


def col2im_matmul(work, xp, a, b, shape, kh: int, kw: int, stride: int, matmul):
    """col2im(a @ b) for a = W.T (C * kh * kw, F) and dz = b (F, B * Ho * Wo), on a padded grid.

    Every pixel of the padded image (B, H, W) is taken as a window corner, dz sitting at the
    real corners and zeros at the rest. In the flattened image, offset (i, j) of the window
    at corner q is pixel q + i * W + j, so column q of the product, row (c, i, j), belongs at
    pixel q + i * W + j of channel c: each offset is one contiguous slice added at a shift.
    The corners that are not real carry zeros, so what they add is nothing. A strided
    convolution takes the plain product and col2im.
    """
    if stride != 1:
        return col2im(work, xp, matmul(xp, a, b), shape, kh, kw, stride)
    B, C, H, W = shape
    F, Ho, Wo = b.shape[0], H - kh + 1, W - kw + 1
    L = B * H * W
    n = unaliased(L, b.dtype.itemsize)
    grid = work.zeros((F, n), b.dtype, ("col2im grid", B, H, W, kh, kw))  # zero except at real corners
    grid[:, :L].reshape(F, B, H, W)[:, :, :Ho, :Wo] = b.reshape(F, B, Ho, Wo)  # splits one axis: a view
    product = np.matmul(a, grid, out=work.empty((a.shape[0], n), b.dtype, "col2im product"))
    product = product.reshape(C, kh * kw, n)
    image = np.zeros((C, L + (kh - 1) * W + kw - 1), dtype=b.dtype)
    for k in range(kh * kw):
        shift = (k // kw) * W + k % kw
        image[:, shift:shift + L] += product[:, k, :L]
    return image[:, :L].reshape(C, B, H, W).transpose(1, 0, 2, 3)


def in_order_of(x, like):
    """x, or a copy of it in the memory order of `like`. A pass over arrays in two orders
    runs in short strided pieces: four times as long here as the copy that avoids it."""
    if np.array_equal(np.argsort(x.strides, kind="stable"), np.argsort(like.strides, kind="stable")):
        return x
    out = np.empty_like(like, dtype=x.dtype)
    out[...] = x
    return out


def unaliased(n: int, itemsize: int) -> int:
    """A row length of at least n elements whose rows do not start a multiple of 4 KiB apart.
    Such rows fall on the same cache sets; a product writing (144, 16384) float32 rows took
    1.5 times as long here as one writing (144, 16448)."""
    n = -(-n // 16) * 16
    while not 512 <= (n * itemsize) % 4096 <= 3584:
        n += 16
    return n


def unpool(work, xp, pieces, shape, k: int):
    """Each piece written straight into its strided slice of one zeroed image."""
    Ho, Wo = pieces[0].shape[2:]
    image = np.zeros(shape, dtype=pieces[0].dtype)
    for p, piece in enumerate(pieces):
        i, j = divmod(p, k)
        image[:, :, i:Ho * k:k, j:Wo * k:k] = piece
    return image


def maxpool(work, xp, x, k: int):
    """The reference's maximum and first-maximum masks, over contiguous copies of the block
    positions (in x's memory order): one strided pass each, then every pass contiguous."""
    Ho, Wo = x.shape[2] // k, x.shape[3] // k
    pieces = [x[:, :, i:Ho * k:k, j:Wo * k:k].copy(order="K") for i in range(k) for j in range(k)]
    y = np.maximum(pieces[0], pieces[1]) if len(pieces) > 1 else pieces[0].copy()
    for piece in pieces[2:]:
        np.maximum(y, piece, out=y)
    unplaced = np.ones_like(y, dtype=bool)
    winners = []
    for p, piece in enumerate(pieces):
        here = np.logical_and(np.equal(piece, y), unplaced)
        np.logical_xor(unplaced, here, out=unplaced)  # here lies inside unplaced: xor takes it out
        winners.append(here)
    return y, winners


def maxpool_grad(work, xp, dy, winners, shape, k: int):
    """dy times each position's mask, multiplied straight into its strided slice of one image
    in the masks' (x's) memory order; only the rows and columns no block covers are zeroed."""
    Ho, Wo = dy.shape[2:]
    dy = in_order_of(dy, winners[0])
    image = np.empty_like(winners[0], dtype=dy.dtype, shape=shape)
    image[:, :, Ho * k:] = 0
    image[:, :, :, Wo * k:] = 0
    for p, here in enumerate(winners):
        i, j = divmod(p, k)
        np.multiply(dy, here, out=image[:, :, i:Ho * k:k, j:Wo * k:k])
    return image
