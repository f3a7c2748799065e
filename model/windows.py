"""Sliding windows over images, the one idea behind convolution and pooling: plain xp.

A convolution multiplies every k x k window of its input by the same filters. `im2col` lays
each window out as one row of a matrix, so the whole convolution becomes one matrix product
(the layer's `matmul` op, BLAS or cuBLAS), and `col2im` sends the product's gradient back to
the pixels each window came from, summing where windows overlap. Images are (batch,
channels, height, width). Both are built from slicing, stacking and concatenating, which
every array API library has, and neither changes the array it is given; a backend may
replace them through the op table (model/ops.py) with something faster.
"""

from __future__ import annotations


def pad2d(xp, x, pads):
    """x (B, C, H, W) with zeros around: pads = (top, bottom, left, right)."""
    top, bottom, left, right = pads
    if top or bottom:
        x = xp.concat([_zeros(xp, x, 2, top), x, _zeros(xp, x, 2, bottom)], axis=2)
    if left or right:
        x = xp.concat([_zeros(xp, x, 3, left), x, _zeros(xp, x, 3, right)], axis=3)
    return x


def unpad2d(x, pads):
    """The inside of a padded (B, C, H, W): pad2d undone."""
    top, bottom, left, right = pads
    return x[:, :, top:x.shape[2] - bottom, left:x.shape[3] - right]


def im2col(xp, x, kh: int, kw: int, stride: int):
    """x (B, C, H, W) -> (C * kh * kw, B * Ho * Wo): one column per window, its rows in the
    filters' (channel, row, column) order, so W.reshape(F, -1) @ cols is the convolution.
    (Caffe's layout: each row is one shifted copy of a channel, which copies in long runs.)"""
    B, C, H, W = x.shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    pieces = [x[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride]
              for i in range(kh) for j in range(kw)]  # each (B, C, Ho, Wo): one offset of every window
    cols = xp.stack(pieces, axis=0)  # (kh * kw, B, C, Ho, Wo)
    cols = xp.permute_dims(cols, (2, 0, 1, 3, 4))  # (C, kh * kw, B, Ho, Wo)
    return xp.reshape(cols, (C * kh * kw, B * Ho * Wo))


def col2im(xp, cols, shape, kh: int, kw: int, stride: int):
    """The gradient of im2col: cols (C * kh * kw, B * Ho * Wo) back onto an image of `shape`
    (B, C, H, W), each pixel getting the sum over every window that held it."""
    B, C, H, W = shape
    Ho, Wo = (H - kh) // stride + 1, (W - kw) // stride + 1
    cols = xp.reshape(cols, (C, kh * kw, B, Ho, Wo))
    cols = xp.permute_dims(cols, (1, 2, 0, 3, 4))  # (kh * kw, B, C, Ho, Wo)
    span_h, span_w = stride * (Ho - 1) + 1, stride * (Wo - 1) + 1
    total = None
    for k in range(kh * kw):
        i, j = divmod(k, kw)
        piece = _spread(xp, _spread(xp, cols[k, ...], stride, 2), stride, 3)  # (B, C, span_h, span_w)
        piece = pad2d(xp, piece, (i, H - i - span_h, j, W - j - span_w))
        total = piece if total is None else total + piece
    return total


def _spread(xp, x, stride: int, axis: int):
    """x with stride - 1 zeros between its entries along `axis`: where a strided window's
    values sit in the image."""
    if stride == 1:
        return x
    n = x.shape[axis]
    gaps = xp.zeros_like(x)
    woven = xp.stack([x] + [gaps] * (stride - 1), axis=axis + 1)  # (..., n, stride, ...)
    shape = list(x.shape)
    shape[axis] = n * stride
    woven = xp.reshape(woven, tuple(shape))
    keep = [slice(None)] * x.ndim
    keep[axis] = slice(0, stride * (n - 1) + 1)
    return woven[tuple(keep)]


def _zeros(xp, x, axis: int, n: int):
    shape = list(x.shape)
    shape[axis] = n
    return xp.zeros(tuple(shape), dtype=x.dtype, device=x.device)


def unpool(xp, pieces, shape, k: int):
    """k * k arrays (B, C, Ho, Wo), one per position inside a k x k block, woven into one
    image of `shape` (B, C, H, W): piece i * k + j at row i, column j of every block, zeros in
    the rows and columns that fill no whole block. Pooling's gradient goes back this way."""
    B, C, H, W = shape
    Ho, Wo = pieces[0].shape[2:]
    grid = xp.reshape(xp.stack(pieces, axis=-1), (B, C, Ho, Wo, k, k))
    x = xp.reshape(xp.permute_dims(grid, (0, 1, 2, 4, 3, 5)), (B, C, Ho * k, Wo * k))
    if H > Ho * k:
        x = xp.concat([x, xp.zeros((B, C, H - Ho * k, Wo * k), dtype=x.dtype, device=x.device)], axis=2)
    if W > Wo * k:
        x = xp.concat([x, xp.zeros((B, C, H, W - Wo * k), dtype=x.dtype, device=x.device)], axis=3)
    return x


def col2im_matmul(xp, a, b, shape, kh: int, kw: int, stride: int, matmul):
    """col2im(a @ b): a convolution's input gradient from the filters a = W.T (C * kh * kw, F)
    and dz (F, B * Ho * Wo), the product by the layer's `matmul` op. One op, so that a backend
    may lay the product out where col2im is cheapest (numpy: on a padded grid, where col2im
    is kh * kw contiguous adds)."""
    return col2im(xp, matmul(xp, a, b), shape, kh, kw, stride)


def blocks(x, k: int):
    """The k * k strided views of x (B, C, H, W), one per position inside a k x k block: each
    (B, C, H // k, W // k), holding that position of every block."""
    Ho, Wo = x.shape[2] // k, x.shape[3] // k
    return [x[:, :, i:Ho * k:k, j:Wo * k:k] for i in range(k) for j in range(k)]


def maxpool(xp, x, k: int):
    """The largest value of each k x k block of x (B, C, H, W), and where it was: for each of
    the k * k positions inside a block, a mask of the blocks whose first maximum (in row-major
    order) sits there. The backward pass needs only the masks, not x."""
    pieces = blocks(x, k)
    y = pieces[0]
    for piece in pieces[1:]:
        y = xp.maximum(y, piece)
    unplaced = xp.ones(y.shape, dtype=xp.bool, device=y.device)  # blocks whose maximum is not yet placed
    winners = []
    for piece in pieces:
        here = unplaced & (piece == y)
        winners.append(here)
        unplaced = unplaced & ~here
    return y, winners


def maxpool_grad(xp, dy, winners, shape, k: int):
    """Each block's gradient to the position that held its maximum; the image of `shape`
    around them zero."""
    zero = xp.zeros_like(dy)
    return unpool(xp, [xp.where(here, dy, zero) for here in winners], shape, k)
