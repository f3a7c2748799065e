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


def group_accuracies(y_true: np.ndarray, y_pred: np.ndarray, groups: list[dict],
                     confidence: np.ndarray | None = None) -> list[dict]:
    """Accuracy of each held-out group, given as {name, start, stop} rows of the test set, and
    its expected calibration error when the stated probabilities (`confidence`) are given.

    One overall figure hides what matters to a user: whether unseen handwriting or small
    pictures read as well as unseen fonts. Groups that do not fit the rows given are skipped."""
    rows = []
    for g in groups:
        if not 0 <= g["start"] < g["stop"] <= len(y_true):
            continue
        part = slice(g["start"], g["stop"])
        right = y_true[part] == y_pred[part]
        row = {"name": g["name"], "samples": int(g["stop"] - g["start"]), "accuracy": float(np.mean(right))}
        if confidence is not None:
            row["ece"] = expected_calibration_error(confidence[part], right)
        rows.append(row)
    return rows


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = 15) -> float:
    """How far the stated probability is from the share answered right: the gap in each of 15
    equal-width confidence bins, weighted by the bin's share of the samples (0 is perfect)."""
    return calibration_error_of(reliability(confidence, right, bins))


def calibration_error_of(bars: list[dict]) -> float:
    """The ECE read off a reliability diagram's bars (`reliability`): each bin's gap between
    stated probability and share right, weighted by its share of the samples."""
    n = sum(b["samples"] for b in bars)
    return float(sum(abs(b["confidence"] - b["accuracy"]) * b["samples"] for b in bars) / max(n, 1))


def reliability(confidence: np.ndarray, right: np.ndarray, bins: int = 15) -> list[dict]:
    """The reliability diagram's bars: for each of `bins` equal-width confidence bins that holds
    samples, its range, how many, their mean stated probability and the share answered right."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [{"low": float(edges[b]), "high": float(edges[b + 1]), "samples": int(np.sum(which == b)),
             "confidence": float(np.mean(confidence[which == b])), "accuracy": float(np.mean(right[which == b]))}
            for b in range(bins) if np.any(which == b)]


def group_lines(rows: list[dict]) -> list[str]:
    """One line per held-out group: its accuracy and size, and its calibration error if known."""
    width = max((len(r["name"]) for r in rows), default=0)
    return [f"  {r['name']:<{width}}  {100 * r['accuracy']:.2f}% on {r['samples']}"
            + (f"  ECE {r['ece']:.3f}" if "ece" in r else "") for r in rows]
