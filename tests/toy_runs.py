"""Small data sets, the argv of short `xpnet train` runs on them, and readers of what a run
saved: shared by the reliability tests and a few others.

`make_npz` and `train_args` make the runs the resume tests extend (at a constant rate);
`toy` and `train_argv` make the data the bad-input tests spoil; `start_training` a run long
enough to be caught mid-run; `images` the CNN tests' small pictures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from xpnet.model.checkpoint import read

from assertions import run_cli

TIMING_KEYS = {"seconds", "samples_per_s"}  # the only history entries allowed to differ between runs


def make_npz(folder: Path, name: str = "toy.npz", n: int = 120, features: int = 6, held_out: bool = True,
             random_test_labels: bool = False) -> Path:
    """Four classes of a few features; the held-out labels may be noise (to force early stopping)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n + 40, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] * X[:, 2] > 0)
    if random_test_labels:
        y[n:] = rng.integers(0, 4, 40)
    arrays = dict(X=X[:n], y=y[:n])
    if held_out:
        arrays.update(X_test=X[n:], y_test=y[n:])
    path = folder / name
    np.savez(path, **arrays)
    return path


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A small run; its rate constant, since these tests extend finished runs (3 epochs, then
    --resume --epochs 6) and a cosine schedule spans the run's total, which extending changes.
    An interrupted run resumed to its own total is the same under any schedule (test_schedules)."""
    return ["train", "--data", f"npz:{data}", "--layers", "16", "--batch-size", "16", "--out", str(out),
            "--no-progress", "--backend", "numpy", "--schedule", "constant", *extra]


def train_ok(capsys, *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


def saved(run: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a run's checkpoint, digest verified."""
    return read((run / "model.safetensors").read_bytes(), str(run))


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS}
            for r in json.loads((run / "history.json").read_text())]


def assert_same_run(a: Path, b: Path) -> None:
    """Two runs agree bit for bit: every tensor (weights and optimizer state), the training
    state (epoch, step, rate, counters, generator state, early-stopping bookkeeping), history."""
    (ta, ma), (tb, mb) = saved(a), saved(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name].dtype == tb[name].dtype and ta[name].shape == tb[name].shape, name
        assert ta[name].tobytes() == tb[name].tobytes(), f"{name} differs"
    for key in ("training_state", "epochs", "accuracy", "architecture"):
        assert ma[key] == mb[key], key
    assert history(a) == history(b)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def toy(folder: Path, name: str = "toy.npz", features: int = 6, **override) -> Path:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0)
    arrays = dict(X=X[:60], y=y[:60], X_test=X[60:], y_test=y[60:])
    arrays.update(override)
    path = folder / name
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def train_argv(data: str, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", data, "--epochs", "2", "--layers", "8", "--out", str(out), "--no-progress",
            "--backend", "numpy", *extra]


def start_training(data: Path, out: Path, *extra: str) -> subprocess.Popen:
    """A real `xpnet train` in its own process, long enough to be caught mid-run."""
    argv = train_args(data, out, "--epochs", "100000", *extra)
    return subprocess.Popen([sys.executable, "-m", "xpnet", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; fail if the run ends or the time is up first."""
    end = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def images(n=40, seed=0):
    """8x8 one-channel pictures of a bar, across (class 0, 1) or down (2, 3), left or right half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.uniform(0, 0.2, (n, 8, 8))
    for i, label in enumerate(y):
        where = 2 + 3 * (label % 2) + rng.integers(0, 2)
        if label < 2:
            X[i, where, 1:7] = 1.0
        else:
            X[i, 1:7, where] = 1.0
    return X.reshape(n, 64), y
