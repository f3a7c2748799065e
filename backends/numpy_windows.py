"""numpy's faster versions of the window ops behind convolutions (model/windows.py).

The reference builds its windows from k * k slices stacked, and sends gradients back by
padding each of them to the image's size and adding them up: portable, but several passes
over memory per window offset. numpy can do each in one: a strided view lays out every
window without copying (`sliding_window_view`), so im2col is a single copy into the
product's layout, and col2im adds each window offset's slice of the gradient straight
into one zeroed image. tests/test_kernels_numpy.py holds them to the reference.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def pad2d(work, xp, x, pads):
    top, bottom, left, right = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def im2col(work, xp, x, kh: int, kw: int, stride: int):
    """(B, C, H, W) -> (C * kh * kw, B * Ho * Wo) in one copy, from a view of every window."""
    B, C = x.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (B, C, Ho, Wo, kh, kw)
    Ho, Wo = windows.shape[2:4]
    return np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3)).reshape(C * kh * kw, B * Ho * Wo)


def col2im(work, xp, cols, shape, kh: int, kw: int, stride: int):
    """Each window offset's share of the gradient added into its strided slice of one image."""
    B, C, H, W = shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = cols.reshape(C, kh, kw, B, Ho, Wo).transpose(3, 0, 1, 2, 4, 5)  # (B, C, kh, kw, Ho, Wo), a view
    image = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            image[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] += cols[:, :, i, j]
    return image


def unpool(work, xp, pieces, shape, k: int):
    """Each piece written straight into its strided slice of one zeroed image."""
    Ho, Wo = pieces[0].shape[2:]
    image = np.zeros(shape, dtype=pieces[0].dtype)
    for p, piece in enumerate(pieces):
        i, j = divmod(p, k)
        image[:, :, i:Ho * k:k, j:Wo * k:k] = piece
    return image


def maxpool(work, xp, pieces):
    """The maximum chain written into one array."""
    y = np.maximum(pieces[0], pieces[1]) if len(pieces) > 1 else pieces[0].copy()
    for piece in pieces[2:]:
        np.maximum(y, piece, out=y)
    return y


def maxpool_grad(work, xp, dy, pieces, y, shape, k: int):
    """The reference's first-maximum rule with every mask written into place, and each
    position's share, dy times whether it won, multiplied straight into its strided slice of
    one zeroed image (a product into place is about four times np.where's speed here)."""
    Ho, Wo = dy.shape[2:]
    image = np.zeros(shape, dtype=dy.dtype)
    unplaced, here = np.ones(dy.shape, dtype=bool), np.empty(dy.shape, dtype=bool)
    for p, piece in enumerate(pieces):
        i, j = divmod(p, k)
        np.logical_and(np.equal(piece, y, out=here), unplaced, out=here)
        np.logical_and(unplaced, np.logical_not(here), out=unplaced)
        np.multiply(dy, here, out=image[:, :, i:Ho * k:k, j:Wo * k:k])
    return image
