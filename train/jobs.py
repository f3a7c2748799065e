"""What `xpnet train` does, separated from argument parsing: one job, whatever runs it.

A single process and each rank of an MPI job run the same sequence (`train_job`); where they
differ is the run context's to say (train/context.py). The run folder's life is in
train/runs.py, `xpnet evaluate` and the report in train/evaluation.py.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model import Network
from xpnet.train.checkpoints import CHECKPOINT_NAME
from xpnet.train.build import build_network, check_config
from xpnet.train.config import TrainConfig, default_hidden, with_data_defaults
from xpnet.train.context import RunContext
from xpnet.train.data import DataError, DataSet, absolute_spec
from xpnet.train.evaluation import report_classification
from xpnet.train.prepare import split_validation
from xpnet.train.held_out import job_validation, scoring
from xpnet.train.files import atomic_write_json, ensure_folder, remove_stale_temps
from xpnet.train.answers import evaluate
from xpnet.train.loop import learn
from xpnet.train.metrics import listed, regression_line
from xpnet.train.optimizers import DEFAULT_LR
from xpnet.train.prepare import check_patience
from xpnet.train.run_lock import RunLock
from xpnet.train.runs import (check_new_run_folder, epoch_saver, is_run_folder, resume_run, run_folder, run_metadata,
                              telling_what_is_kept)
from xpnet.train.targets import check_targets_fit_loss
from xpnet.train.threads import check_threads, choose_threads

Log = Callable[[str], None]
WHOLE_LABELS = 1000  # float targets that are whole numbers, at most this many distinct ones, may be classes
BASELINE_ROWS = 10_000  # the untrained network's score on a run without a held-out split: rows spread over the set


def train_job(config: TrainConfig, log: Log, progress: bool = True, resume: bool = False,
              context: RunContext | None = None) -> Path | None:
    """Load data, train, checkpoint every epoch, report; returns the run folder.

    With `resume`, `config.out` is an existing run: its checkpoint's weights, optimizer
    state, shuffling state and epoch count carry on where they stopped. `context` is where
    the job runs (train/context.py): this process alone by default, or one rank of an MPI
    job, where every rank trains, rank 0 alone logs and writes, and None is returned elsewhere.
    Resuming then reads the run folder on every rank (it must be on a file system they share).
    The process that writes the run folder locks it (train/run_lock.py) until it returns.
    """
    with RunLock("resume" if resume else "train") as lock:
        return _train_job(config, log, progress, resume, context or RunContext(), lock)


def _train_job(config: TrainConfig, log: Log, progress: bool, resume: bool, context: RunContext,
               lock: RunLock) -> Path | None:
    rate_from_data = config.lr is None  # the letters' big batches settle it below; the log says so
    config = with_data_defaults(config)  # recorded in config.json, as a resume needs them
    check_config(config)
    if resume and not config.out:
        raise XpnetError("resuming needs the run folder: give it as config.out (the CLI's --resume RUN)")
    config = dataclasses.replace(config, data=absolute_spec(config.data))  # recorded so it loads from anywhere
    folder = Path(run_folder(config))  # named once: the default name holds the time
    if context.is_root and folder.is_dir() and is_run_folder(folder):  # a second process: refused before any work
        lock.take(folder)
    if context.is_root and not resume:
        check_new_run_folder(folder)
    backend = context.place(resolve_backend(config.backend, config.device, config.dtype, config.tf32), config.device)
    check_threads(config.threads if not resume else None, backend, context.size > 1)  # before any work
    log = log if context.is_root else _silent
    log(f"backend {backend}" + (f"  [{backend.note}]" if backend.note else ""))
    for line in (tf32_line(config, backend), context.describe(config.batch_size), context.threads_hint(backend)):
        if line:
            log(line)
    data = context.load_data(config, progress)
    config = settle_loss(config, data, log)
    if config.hidden is None:  # sized to the data; recorded, so a resume rebuilds the same network
        config = dataclasses.replace(config, hidden=default_hidden(len(data.y_train)))
    check_data_fits(config, data)
    if context.is_root:  # the held-out part is rank 0's alone
        check_patience(config.patience, True if config.val_fraction or data.X_test is not None
                       or data.X_val is not None else None)
    warn_about_empty_classes(data, log)
    built = None if resume else build_network(config, data, backend)  # refused before the folder is made
    run_dir = ensure_folder(folder) if context.is_root else None  # the run folder has one writer
    if run_dir is not None:
        lock.take(run_dir)
        if not resume:  # another process may have trained it since the check above
            check_new_run_folder(run_dir)
        remove_stale_temps(run_dir)  # safe: the lock says no live process is writing them
    net, state = (resume_run(Path(config.out), backend, config, log, data.info) if resume
                  else (built, None))
    if resume:
        warn_if_capped_output(net, data, Path(config.out), log)
    context.check_same_start(config, backend, net, data)
    asked = config.threads if backend.splits_batches or not resume else None  # a numpy run resumed elsewhere
    threads_note = None
    if asked is None and (config.threads or 1) > 1:
        threads_note = (f"threads: the run split each batch across {config.threads} threads; {backend.name} "
                        "takes it whole, which sums the same gradients in another order")
    # recorded, so a resume splits its batches alike; learn chooses the same and says so
    config = dataclasses.replace(config, threads=choose_threads(asked, net, config.batch_size, context.size > 1)[0])
    log(network_line(config, net, data, rate_from_data and config.lr is not None))
    if threads_note:
        log(threads_note)
    held_out = (data.X_test, data.y_test) if data.X_test is not None else None
    on_epoch = None
    if run_dir is not None:
        if data.classes and not resume:
            log_baseline(net, held_out or baseline_rows(data), len(data.classes), log)
        meta = run_metadata(config, data)
        atomic_write_json(run_dir / "config.json", meta["config"])
        on_epoch = scoring(epoch_saver(run_dir, meta), held_out, data.info.get("test_groups") or [])
    validation, calibrate = job_validation(config, data, held_out, log)
    with telling_what_is_kept(run_dir):
        learn(net, (data.X_train, data.y_train), epochs=config.epochs, batch_size=config.batch_size,
              lr=job_lr(config), optimizer=config.optimizer, seed=config.seed, scale=config.scale,
              validation=validation, validation_fraction=config.val_fraction, calibrate=calibrate,
              patience=config.patience, log=log, on_epoch=on_epoch, resume=state, context=context,
              cuda_graphs=config.cuda_graphs, schedule=config.schedule, warmup=config.warmup,
              weight_decay=config.weight_decay, shift=config.shift, threads=asked)
    if run_dir is not None:
        finish_run(net, held_out, data, run_dir, log, config)
    return run_dir


def baseline_rows(data: DataSet):
    """Training rows spread evenly over the set, for the untrained score where there is no
    held-out split: a file sorted by class does not bias it, and a large one is not read whole."""
    picked = np.unique(np.linspace(0, len(data.y_train) - 1, min(BASELINE_ROWS, len(data.y_train))).astype(np.int64))
    return data.X_train[picked], data.y_train[picked]


def _silent(line: str) -> None:
    """The log of a rank other than 0: rank 0 alone speaks for the job."""


def finish_run(net: Network, held_out, data: DataSet, run_dir: Path, log: Log, config: TrainConfig) -> None:
    """After training: a classifier's report on the held-out set (or, without one, the score on
    the --val-fraction rows, in the targets' own units), the curves, the last line."""
    advice = f"training finished and is saved: free space, then draw the report with xpnet report {run_dir}"
    with telling_what_is_kept(run_dir, trained=True):
        if held_out is not None and data.classes:
            report_classification(net, held_out, data, run_dir, log, advice=advice)
        elif held_out is not None:
            log(f"test {regression_line(evaluate(net, *held_out))} on {len(held_out[1])} held-out samples")
        elif config.val_fraction:
            _, held_back = split_validation(data.X_train, data.y_train, config.val_fraction, config.seed)
            result = evaluate(net, *held_back)
            score = regression_line(result) if net.is_regression else f"accuracy {100 * result['accuracy']:.2f}%"
            log(f"validation {score} on {len(held_back[1])} samples held back from training (no test set)")
        draw_curves(run_dir, net, log, advice)
    log(f"saved {run_dir / CHECKPOINT_NAME}")
    ask = "PICTURE.png" if data.image_shape else "--input ROWS.csv"
    log(f"next: xpnet predict {run_dir} {ask}, xpnet evaluate {run_dir}"
        + (f", or try it in a browser: xpnet serve {run_dir}" if data.image_shape else ""))


def warn_if_capped_output(net: Network, data: DataSet, run_dir: Path, log: Log) -> None:
    """Runs saved before regression got a linear output layer keep theirs: say what it costs."""
    if data.classes is None and net.activations[-1] != "identity":
        log(f"warning: {run_dir}'s output layer is {net.activations[-1]} (from an older xpnet), so its "
            "regression outputs are bounded; a new run gets a linear output layer")


def tf32_line(config: TrainConfig, backend) -> str | None:
    """TF32 asked for (--tf32 or $XPNET_TF32) but not in effect: why, in one line."""
    asked = config.tf32 if config.tf32 is not None else os.environ.get("XPNET_TF32", "") == "1"
    if not asked or backend.tf32:
        return None
    why = ("TF32 only speeds float32 products" if config.dtype != "float32"
           else f"{backend.name} on {backend.device_name} has no TF32")
    return f"tf32: off ({why}; products run in full {config.dtype})"


def settle_loss(config: TrainConfig, data: DataSet, log: Log) -> TrainConfig:
    """No --loss: cross-entropy for class labels; float targets are values, so regression with
    the quadratic loss (and a linear output, build_network), said in one line, with a warning
    where the values are all whole numbers and might have been meant as classes."""
    if config.loss is not None:
        return config
    if data.classes is not None:
        return dataclasses.replace(config, loss="cross_entropy")
    log("regression (float targets): loss quadratic, output layer identity (linear); the network answers values")
    whole = np.all(np.mod(data.y_train, 1) == 0) and len(np.unique(data.y_train)) <= WHOLE_LABELS
    if whole:
        log(f"warning: every target of {config.data} is a whole number: if they are classes, save them as "
            "integers (an npz's y as int), which train a classifier")
    return dataclasses.replace(config, loss="quadratic")


def check_data_fits(config: TrainConfig, data: DataSet) -> None:
    """Targets that suit the loss, and at least two classes: before a network or a folder is made."""
    check_targets_fit_loss(config.loss, data.y_train, config.data)
    if data.classes is not None and len(data.classes) < 2:
        raise DataError(f"{config.data} holds a single class ({', '.join(map(str, data.classes))}): a "
                        "classifier needs at least two")


def warn_about_empty_classes(data: DataSet, log: Log) -> None:
    """Classes the training set never shows (a gap in the labels, an empty class folder, held-out
    labels the training set lacks) are legal but almost always a mistake: say so, once."""
    if data.classes is None:
        return
    seen = np.bincount(data.y_train, minlength=len(data.classes)) > 0
    missing = [str(data.classes[i]) for i in np.flatnonzero(~seen)]
    if not missing:
        return
    log(f"warning: {len(missing)} of {len(data.classes)} classes have no training sample{listed(missing)}: "
        "the network gets an output for each but can never learn to predict it")
    if data.y_test is not None:
        tested = [str(data.classes[i]) for i in np.unique(data.y_test) if not seen[i]]
        if tested:
            log(f"warning: the held-out set has samples of classes training never shows{listed(tested)}: "
                "those samples can only be classified wrong")


def network_line(config: TrainConfig, net: Network, data: DataSet, rate_from_data: bool = False) -> str:
    """The run in one line, naming the defaults the data chose (a rate, a decay, a shift) where they apply."""
    extras = (f"  weight decay {config.weight_decay:g}" if config.weight_decay else "") + (
        f"  shifted up to {config.shift} px" if config.shift else "") + (
        f"  {config.small_letters:.0%} drawn small" if config.small_letters is not None else "")
    whose = " (its default)" if config.lr is None else (
        f" (the letters' default at batch {config.batch_size})" if rate_from_data else "")
    return (f"network {net.summary}  {config.activation}  {config.loss}  "
            f"{config.optimizer} lr {job_lr(config)}{whose}  batch {config.batch_size}{extras}  "
            f"{len(data.y_train)} training samples")


def job_lr(config: TrainConfig):
    """The rate asked for, else the optimizer's default."""
    return DEFAULT_LR[config.optimizer] if config.lr is None else config.lr


def log_baseline(net: Network, held_out, n_classes: int, log: Log) -> None:
    """The course's point: before learning, a network guesses, scoring about 1/26."""
    acc = evaluate(net, *held_out)["accuracy"]
    log(f"untrained network: accuracy {100 * acc:.1f}% (random guessing: 1/{n_classes} = {100 / n_classes:.1f}%)")


def draw_curves(run_dir: Path, net: Network, log: Log, advice: str) -> None:
    """curves.png for every run that trained, classifier or not, and a line saying so."""
    from xpnet.train.report import write_curves

    path = write_curves(run_dir, net.history, advice)
    if path is not None:
        log(f"wrote {path}")
