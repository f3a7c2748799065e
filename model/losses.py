"""Losses J(theta): how wrong the network is on a batch, and dJ/d(output) for backprop.

Both average over the samples in the batch, so the learning rate does not have to change
with the batch size. `targets` are floats: one-hot rows for classification (made once on
the host) or the regression values themselves.
"""

from __future__ import annotations

from xpnet.backends.errors import choose
from xpnet.model.activations import ModelError


def quadratic(xp, h, targets):
    """The course's quadratic loss, J = mean over samples of sum((h - y)^2) / 2.

    Returns (loss, dJ/dh). The 1/2 cancels the 2 of the derivative: dJ/dh = (h - y) / n.
    """
    diff = h - targets
    n = h.shape[0]
    return xp.sum(diff * diff) / (2 * n), diff / n


def softmax_cross_entropy(xp, logits, targets):
    """Cross-entropy of softmax(logits) against targets, fused for stability and speed.

    log softmax is computed as z - max - log(sum(exp(z - max))), so no exp overflows and no
    log sees zero. The gradient of the fused pair is simply (softmax - targets) / n, which
    avoids ever forming softmax's Jacobian. Returns (loss, dJ/dlogits).
    """
    n = logits.shape[0]
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    exp = xp.exp(shifted)
    total = xp.sum(exp, axis=-1, keepdims=True)
    log_probs = shifted - xp.log(total)
    loss = -xp.sum(targets * log_probs) / n
    return loss, (exp / total - targets) / n


LOSSES = {"quadratic": quadratic, "cross_entropy": softmax_cross_entropy}


def check_loss(name: str) -> str:
    return choose(name, LOSSES, "loss", ModelError)
