"""Pictures of a run: learning curves, the confusion matrix, and test images with verdicts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from xpnet.train.files import OUT_ADVICE, atomic_write


def write_curves(run_dir: Path, history, advice: str = OUT_ADVICE) -> Path | None:
    """Loss (and accuracy, for classes) per epoch: every run's, regression's too. `advice`
    ends the line a failed write says: the fix the command that draws it offers."""
    _headless()
    return _save(run_dir / "curves.png", _curves(history), advice) if history else None


def write_pictures(run_dir: Path, cm, classes, X, y, pred, image_shape, advice: str = OUT_ADVICE) -> list[Path]:
    """A classifier's: the confusion matrix, and held-out images with their verdicts."""
    _headless()
    written = [_save(run_dir / "confusion.png", _confusion(cm, classes), advice)]
    if image_shape:
        written.append(_save(run_dir / "samples.png", _samples(X, y, pred, classes, image_shape), advice))
    return written


def write_reliability(run_dir: Path, confidence, right, temperature: float, groups,
                      advice: str = OUT_ADVICE) -> Path:
    """reliability.png, the reliability diagram: for each band of stated probability, the share
    answered right (on the diagonal when they agree), and calibration.json with its numbers."""
    from xpnet.train.files import atomic_write_json
    from xpnet.train.metrics import calibration_error_of, reliability

    bars = reliability(confidence, right)
    atomic_write_json(run_dir / "calibration.json", {
        "temperature": temperature, "ece": calibration_error_of(bars), "bins": bars,
        "groups": {g["name"]: g["ece"] for g in groups if "ece" in g}}, advice)
    _headless()
    return _save(run_dir / "reliability.png", _reliability(bars, temperature), advice)


def _reliability(bars, temperature: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", label="calibrated")
    ax.bar([b["low"] for b in bars], [b["accuracy"] for b in bars], width=[b["high"] - b["low"] for b in bars],
           align="edge", edgecolor="black", alpha=0.7, label="share answered right")
    ax.plot([b["confidence"] for b in bars], [b["accuracy"] for b in bars], "o", color="black", markersize=3,
            label="mean stated probability")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="stated probability of the answer", ylabel="share answered right",
           title=f"reliability (temperature {temperature:.3g})")
    ax.legend(loc="upper left")
    return fig


def _headless() -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen needed


def _save(path: Path, fig, advice: str) -> Path:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, buf.getvalue(), advice)


def _curves(history):
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    classes = "accuracy" in history[0]  # regression has a loss only
    fig, axes = plt.subplots(1, 2 if classes else 1, figsize=(10 if classes else 5, 4), squeeze=False)
    ax_loss = axes[0, 0]
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        if key in history[0]:
            ax_loss.plot(epochs, [r[key] for r in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss J")
    if spans_decades([r[k] for r in history for k in ("loss", "val_loss") if k in r]):
        ax_loss.set_yscale("log")  # a loss falling 100-fold looks flat after epoch 2 on a linear axis
        ax_loss.set_title("loss J (log scale)")
    if classes:
        ax_acc = axes[0, 1]
        for key, label in (("accuracy", "train"), ("val_accuracy", "validation"), ("test_accuracy", "test")):
            if key in history[0]:
                ax_acc.plot(epochs, [100 * r[key] for r in history], marker="o", label=label)
        ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def spans_decades(losses, ratio: float = 10.0) -> bool:
    """Whether positive, finite losses span at least `ratio` from least to most: then a log
    axis shows the late epochs too."""
    values = [v for v in losses if v > 0 and np.isfinite(v)]
    return len(values) == len(losses) > 1 and max(values) >= ratio * min(values)


def _confusion(cm, classes):
    import matplotlib.pyplot as plt

    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 7))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes)
    ax.set_yticks(ticks, classes)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return fig


def _samples(X, y, pred, classes, image_shape, n: int = 48):
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), size=min(n, len(y)), replace=False)
    cols = 8
    rows = (len(idx) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.2, rows * 1.4))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, i in zip(np.ravel(axes), idx):
        ax.imshow(X[i].reshape(image_shape), cmap="gray", vmin=0, vmax=1)
        wrong = pred[i] != y[i]
        ax.set_title(f"{classes[pred[i]]}" + (f" ({classes[y[i]]})" if wrong else ""),
                     color="red" if wrong else "black", fontsize=9)
    fig.suptitle("held-out samples: prediction (truth, in red when wrong)")
    return fig
