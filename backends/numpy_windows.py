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
    """(B, C, H, W) -> (B * Ho * Wo, C * kh * kw) in one copy, from a view of every window."""
    B, C = x.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # (B, C, Ho, Wo, kh, kw)
    Ho, Wo = windows.shape[2:4]
    return np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(B * Ho * Wo, C * kh * kw)


def col2im(work, xp, cols, shape, kh: int, kw: int, stride: int):
    """Each window offset's share of the gradient added into its strided slice of one image."""
    B, C, H, W = shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = cols.reshape(B, Ho, Wo, C, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (B, C, kh, kw, Ho, Wo), a view
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
    """The reference's arithmetic written into place: the maximum chain in one array, the
    winning position as a byte per block."""
    y = np.maximum(pieces[0], pieces[1]) if len(pieces) > 1 else pieces[0].copy()
    for piece in pieces[2:]:
        np.maximum(y, piece, out=y)
    winner = np.full(y.shape, len(pieces) - 1, dtype=np.int16)
    for p in range(len(pieces) - 2, -1, -1):
        winner[pieces[p] == y] = p  # later writes win: the first maximum, as the reference's
    return y, winner


def maxpool_grad(work, xp, dy, winner, shape, k: int):
    """Each position's share of dy written straight into its strided slice of one zeroed image."""
    Ho, Wo = dy.shape[2:]
    image = np.zeros(shape, dtype=dy.dtype)
    for p in range(k * k):
        i, j = divmod(p, k)
        image[:, :, i:Ho * k:k, j:Wo * k:k] = np.where(winner == p, dy, 0)
    return image
