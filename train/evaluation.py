"""`xpnet evaluate`, and the classifier's report that a finished run writes too."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model import Network
from xpnet.train.checkpoints import CHECKPOINT_NAME, load_checkpoint
from xpnet.train.data import DataError, DataSet, load_data
from xpnet.train.files import OUT_ADVICE, atomic_write_json, ensure_folder, remove_stale_temps
from xpnet.train.answers import evaluate
from xpnet.train.prepare import split_validation
from xpnet.train.metrics import (confusion_matrix, expected_calibration_error, group_accuracies, group_lines, listed,
                                 regression_line, summary_lines)

Log = Callable[[str], None]
STALE_S = 600.0  # a temp file untouched this long in a folder no lock guards is a killed writer's


def report_classification(net: Network, held_out, data: DataSet, run_dir: Path, log: Log,
                          what: str = "held-out samples", score: str = "test accuracy",
                          advice: str = OUT_ADVICE) -> np.ndarray:
    """Scores, then confusion.json, groups.json and the pictures in `run_dir`; `advice` ends the
    line a failed write says (the fix the calling command offers)."""
    X, y = held_out
    y = np.asarray(y)
    proba = net.predict_proba(X)
    pred, confidence = np.argmax(proba, axis=1), proba.max(axis=1, initial=0.0)
    cm = confusion_matrix(y, pred, len(data.classes))
    log(f"{score} {100 * np.mean(pred == y):.2f}% on {len(y)} {what}")
    groups = group_accuracies(y, pred, data.info.get("test_groups") or [], confidence)
    if groups:
        log("by held-out group (ECE: expected calibration error of the stated probability, 15 bins):")
        for line in group_lines(groups):
            log(line)
        atomic_write_json(run_dir / "groups.json", groups, advice)
    for line in summary_lines(cm, data.classes):
        log(line)
    atomic_write_json(run_dir / "confusion.json", {"classes": list(data.classes), "counts": cm.tolist()}, advice)
    from xpnet.train.report import write_pictures, write_reliability

    for path in write_pictures(run_dir, cm, data.classes, X, y, pred, data.image_shape, advice):
        log(f"wrote {path}")
    log(calibration_line(net, confidence, pred == y))
    log(f"wrote {write_reliability(run_dir, confidence, pred == y, net.temperature, groups, advice)}")
    return cm


def calibration_line(net: Network, confidence: np.ndarray, right: np.ndarray) -> str:
    """How well the stated probabilities match the share answered right, and what set them."""
    how = (f"temperature {net.temperature:.3f}, fitted on validation data" if net.temperature != 1.0
           else "no temperature fitted")
    return (f"calibration: ECE {expected_calibration_error(confidence, right):.3f} (mean stated probability "
            f"{100 * np.mean(confidence):.1f}%, share right {100 * np.mean(right):.1f}%; {how})")


def evaluate_job(checkpoint: str, data_spec: str | None, backend_name, device, log: Log,
                 out: str | None = None, progress: bool = True) -> dict:
    """Score a checkpoint on a data set's held-out part (by default the data it trained on).

    A classifier's report is written into --out, else the checkpoint's folder; a run folder
    is locked for it (train/run_lock.py), so never while another process trains it or draws
    its report. A folder that is not a run gets no lock file: one would mark it as a run that
    `xpnet train --out` may write into. Should it become one while the data loads (a training
    started into it), the lock is taken before drawing, so that training refuses or is refused."""
    from xpnet.train.run_lock import RunLock
    from xpnet.train.runs import is_run_folder

    backend = resolve_backend(backend_name, device)
    out_folder = ensure_folder(out) if out else None  # a bad --out is said before any work
    net, meta = load_checkpoint(checkpoint, backend)
    folder = out_folder or Path(checkpoint if Path(checkpoint).is_dir() else Path(checkpoint).parent)
    with RunLock("evaluate") as lock:
        if not net.is_regression and is_run_folder(folder):  # a regression's score writes nothing
            lock.take(folder)  # before the data is loaded: a refusal costs no work
            remove_stale_temps(folder)  # a killed writer's: the lock says none is live
        elif not net.is_regression:  # unlocked, another evaluate may be writing: only an old one's
            remove_stale_temps(folder, min_age_s=STALE_S)
        return score_job(net, meta, checkpoint, data_spec, folder, log,
                         claim=lambda: lock.take(folder) if is_run_folder(folder) else None, progress=progress)


def score_job(net: Network, meta: dict, checkpoint: str, data_spec: str | None, folder: Path, log: Log,
              advice: str = OUT_ADVICE, claim: Callable[[], None] = lambda: None, moved: bool = False,
              progress: bool = True) -> dict:
    """evaluate_job's work, once the checkpoint is loaded and `folder` is the caller's to write
    (`claim` is called just before drawing into it). `moved`: `data_spec` is the run's own data,
    now elsewhere (report's --data), so the run's sample counts apply to it as they did."""
    trained = meta.get("config") or {}
    recorded = data_spec is None
    data_spec = data_spec or trained.get("data") or "letters"
    same = moved or trained.get("data") == data_spec  # then regenerate (or hit the cache of) the same set
    try:
        data = load_data(data_spec, seed=meta.get("seed", 0), n_train=trained.get("train_samples") if same else None,
                         n_test=trained.get("test_samples") if same else None,
                         small_letters=trained.get("small_letters") if same else None, progress=progress)
    except DataError as exc:  # the run's own files moved or changed: the fix is --data, not the loader's
        if not recorded or data_spec.startswith("letters"):
            raise
        raise DataError(f"{checkpoint} was trained on {data_spec}, which does not load now ({exc}); "
                        "give --data where that data is now") from None
    data = same_classes(net, meta, data, checkpoint, data_spec)
    held_out = data.X_test is not None
    X, y, what = scored_rows(data, trained, same, meta.get("seed", 0), data_spec)
    result = evaluate(net, X, y)
    log(f"{checkpoint}: loss {result['loss']:.4f}" +
        (f"  accuracy {100 * result['accuracy']:.2f}%" if "accuracy" in result else "")
        + (f"  mse {result['mse']:.4g}  {regression_line(result)}" if "mse" in result else "")
        + f"  on {len(y)} {what if not data.classes else 'samples'}")  # the report below says which
    if data.classes:
        claim()
        report_classification(net, (X, y), data, folder, log, what, "test accuracy" if held_out else "accuracy",
                              advice)
    return result


def scored_rows(data, trained: dict, same: bool, seed: int, data_spec: str) -> tuple:
    """(X, y, what they are) to score: the held-out set; without one, the run's own
    --val-fraction rows (the same seeded split, never trained on); else every row, said so."""
    if data.X_test is not None:
        return data.X_test, data.y_test, "held-out samples"
    if same and trained.get("val_fraction"):
        _, (X, y) = split_validation(data.X_train, data.y_train, trained["val_fraction"], seed)
        return X, y, "validation samples (held back from training by --val-fraction)"
    return data.X_train, data.y_train, (f"samples of {data_spec} (no held-out part: "
                                        + ("the ones it trained on)" if same else "the run may have trained on them)"))


def report_job(run: str, backend_name, device, log: Log, data_spec: str | None = None, progress: bool = True) -> None:
    """Redraw a finished run's report (a full disk, or Ctrl-C, may have cost it): the scores and
    pictures `evaluate` writes into the run folder, and the learning curves from its history."""
    from xpnet.train.report import write_curves
    from xpnet.train.run_lock import RunLock

    run_dir = Path(run)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise XpnetError(f"{run} is not a trained run folder (no {CHECKPOINT_NAME}); give a folder "
                         "`xpnet train --out` wrote")
    advice = f"free space or make {run_dir} writable, then run xpnet report again"
    with RunLock("report") as lock:
        lock.take(run_dir)  # not while a process trains it
        remove_stale_temps(run_dir)  # a killed report's or trainer's: the lock says none is live
        net, meta = load_checkpoint(str(run_dir), resolve_backend(backend_name, device))
        score_job(net, meta, str(run_dir), data_spec, run_dir, log, advice, moved=data_spec is not None,
                  progress=progress)
        history = meta.get("history")
        path = write_curves(run_dir, history, advice) if isinstance(history, list) else None
        log(f"wrote {path}" if path else f"{run_dir}'s checkpoint keeps no history (an older xpnet): no curves")


def same_classes(net: Network, meta: dict, data: DataSet, checkpoint: str, data_spec: str) -> DataSet:
    """`data` with its labels in the run's class order; one line where its classes are others.

    A classifier scored on other classes would count nonsense. The same classes in another
    order (a folder listed differently) are relabelled by name."""
    if not data.classes:
        return data
    trained = [str(c) for c in meta.get("classes") or []]
    names = [str(c) for c in data.classes]
    if trained and trained != names and sorted(trained) == sorted(names):
        index = np.array([trained.index(c) for c in names])  # the data's class i is the run's index[i]
        return dataclasses.replace(data, y_train=index[data.y_train], classes=tuple(trained),
                                   y_test=None if data.y_test is None else index[data.y_test])
    _check_same_classes(net, trained, names, checkpoint, data_spec)
    return data


def _check_same_classes(net: Network, trained: list, names: list, checkpoint: str, data_spec: str) -> None:
    if not trained and net.is_regression:
        raise XpnetError(f"{checkpoint} is a regression model (it outputs values, not classes), but {data_spec} "
                         "holds class labels: evaluate it on data with float targets")
    if net.sizes[-1] != len(names) or (trained and trained != names):
        raise XpnetError(f"{checkpoint} tells {net.sizes[-1]} classes{listed(trained)} apart, but {data_spec} "
                         f"has {len(names)}{listed(names)}: evaluate it on data with its own classes")
