"""Host-side summaries of predictions: confusion matrix, per-class accuracy, worst pairs."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = how many samples of class i were predicted as class j."""
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class with no samples)."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def most_confused(cm: np.ndarray, classes, top: int = 5) -> list[tuple[str, str, int]]:
    """The `top` (true, predicted, count) pairs of distinct classes, most frequent first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    pairs = []
    for flat in order:
        i, j = divmod(int(flat), cm.shape[0])
        if off[i, j] > 0:
            pairs.append((classes[i], classes[j], int(off[i, j])))
    return pairs


def summary_lines(cm: np.ndarray, classes) -> list[str]:
    """Per-class accuracy on one or two lines, then the most confused pairs."""
    acc = per_class_accuracy(cm)
    cells = [f"{c} {100 * a:.0f}%" for c, a in zip(classes, acc) if np.isfinite(a)]
    lines = ["per class: " + "  ".join(cells[:13])]
    if cells[13:]:
        lines.append("           " + "  ".join(cells[13:]))
    pairs = most_confused(cm, classes)
    if pairs:
        lines.append("most confused: " + ", ".join(f"{t}->{p} ({n})" for t, p, n in pairs))
    return lines


def listed(names: list) -> str:
    """' (a, b, c, d, e, ...)': the first few names, for a one-line message."""
    return f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""


def regression_metrics(pred, y) -> dict:
    """Mean squared and absolute error, their root, and R^2 (1 - the error's variance over the
    targets', 1 for a perfect fit, 0 for always answering the mean), over every output."""
    pred = np.asarray(pred, np.float64).reshape(len(pred), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    err = pred - y
    mse = float(np.mean(err ** 2))
    spread = float(np.mean((y - y.mean(axis=0)) ** 2))
    return {"mse": mse, "rmse": mse ** 0.5, "mae": float(np.mean(np.abs(err))),
            "r2": 1 - mse / spread if spread > 0 else float("nan")}


def regression_line(scores: dict) -> str:
    """`rmse 1.23e+04  mae 9.1e+03  r2 0.962`: regression's scores, in the targets' units."""
    return f"rmse {scores['rmse']:.4g}  mae {scores['mae']:.4g}  r2 {scores['r2']:.4f}"
