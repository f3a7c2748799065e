"""What `xpnet train`, `evaluate` and `predict` do, separated from argument parsing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model import INITS, ModelError, Network
from xpnet.model.checkpoint import CheckpointError
from xpnet.model.activations import check_activation
from xpnet.model.losses import check_loss
from xpnet.train.checkpoints import CHECKPOINT_NAME, load_checkpoint, load_for_resume, save_checkpoint
from xpnet.train.config import TrainConfig
from xpnet.train.data import DataError, DataSet, absolute_spec, load_data
from xpnet.train.files import OutputError, atomic_write_json, ensure_folder, remove_stale_temps
from xpnet.train.loop import evaluate, learn
from xpnet.train.metrics import confusion_matrix, summary_lines
from xpnet.train.optimizers import OPTIMIZERS, OptimizerError
from xpnet.train.targets import check_targets_fit_loss

Log = Callable[[str], None]


def build_network(config: TrainConfig, data: DataSet, backend) -> Network:
    """Input width from the data, hidden sizes from the config, one output per class.

    Float targets are regression: the output layer stays linear, since a value can be any
    number (a ReLU or sigmoid output would cap it, or stop learning below zero)."""
    regression = data.classes is None
    n_out = data.y_train.reshape(len(data.y_train), -1).shape[1] if regression else len(data.classes)
    sizes = [data.X_train.shape[1], *config.hidden, n_out]
    return Network.from_sizes(sizes, backend, activation=config.activation, loss=config.loss,
                              output="identity" if regression else None, init=config.init, seed=config.seed)


def check_config(config: TrainConfig) -> None:
    """Catch a misspelt name before minutes are spent making data."""
    check_activation(config.activation)
    check_loss(config.loss)
    if config.init not in INITS:
        raise ModelError(f"unknown init {config.init!r}: use one of {', '.join(INITS)}")
    if config.optimizer not in OPTIMIZERS:
        raise OptimizerError(f"unknown optimizer {config.optimizer!r}: use one of {', '.join(OPTIMIZERS)}")


def train_job(config: TrainConfig, log: Log, progress: bool = True, resume: bool = False) -> Path:
    """Load data, train, checkpoint every epoch, report; returns the run folder.

    With `resume`, `config.out` is an existing run: its checkpoint's weights, optimizer
    state, shuffling state and epoch count carry on where they stopped.
    """
    check_config(config)
    config = dataclasses.replace(config, data=absolute_spec(config.data))  # recorded so it loads from anywhere
    if not resume:
        check_new_run_folder(run_folder(config))
    backend = resolve_backend(config.backend, config.device, config.dtype, config.tf32)
    log(f"backend {backend}" + (f"  [{backend.note}]" if backend.note else ""))
    log_tf32(config, backend, log)
    data = load_data(config.data, seed=config.seed, n_train=config.train_samples, n_test=config.test_samples,
                     progress=progress)
    check_data_fits(config, data)
    warn_about_empty_classes(data, log)
    run_dir = ensure_folder(run_folder(config))
    remove_stale_temps(run_dir)
    net, state = resume_run(run_dir, backend, config, log) if resume else (build_network(config, data, backend), None)
    if resume:
        warn_if_capped_output(net, data, run_dir, log)
    log(network_line(config, net, data))
    held_out = (data.X_test, data.y_test) if data.X_test is not None else None
    if data.classes and not resume:
        log_baseline(net, held_out or (data.X_train, data.y_train), len(data.classes), log)
    meta = run_metadata(config, data)
    atomic_write_json(run_dir / "config.json", meta["config"])
    with telling_what_is_kept(run_dir):
        learn(net, (data.X_train, data.y_train), epochs=config.epochs, batch_size=config.batch_size,
              lr=config.lr, optimizer=config.optimizer, seed=config.seed, validation=held_out,
              patience=config.patience, log=log, on_epoch=epoch_saver(run_dir, meta), resume=state,
              cuda_graphs=config.cuda_graphs)
    finish_run(net, held_out, data, run_dir, log)
    return run_dir


def finish_run(net: Network, held_out, data: DataSet, run_dir: Path, log: Log) -> None:
    """After training: a classifier's report on the held-out set, the curves, the last line."""
    with telling_what_is_kept(run_dir, trained=True):
        if held_out is not None and data.classes:
            report_classification(net, held_out, data, run_dir, log)
        draw_curves(run_dir, net, log)
    log(f"saved {run_dir / CHECKPOINT_NAME}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with what of it is kept: the command line says this one line."""


@contextlib.contextmanager
def telling_what_is_kept(run_dir: Path | None, trained: bool = False):
    """Ctrl-C inside says whether `run_dir` holds a checkpoint to resume from (each epoch's
    is written whole or not at all), rather than promising one that no epoch wrote; once
    training is over (`trained`), that the report alone is missing."""
    try:
        yield
    except KeyboardInterrupt:
        if run_dir is None:  # a rank that writes nothing: rank 0 says it
            raise
        if trained:
            raise Interrupted(f"interrupted while writing the report; training had finished, and "
                              f"{run_dir / CHECKPOINT_NAME} holds the trained network") from None
        if (run_dir / CHECKPOINT_NAME).exists():
            raise Interrupted(f"interrupted; {run_dir / CHECKPOINT_NAME} holds the last finished epoch: "
                              f"continue it with --resume {run_dir}") from None
        raise Interrupted(f"interrupted before an epoch finished, so {run_dir} holds no checkpoint") from None


def warn_if_capped_output(net: Network, data: DataSet, run_dir: Path, log: Log) -> None:
    """Runs saved before regression got a linear output layer keep theirs: say what it costs."""
    if data.classes is None and net.activations[-1] != "identity":
        log(f"warning: {run_dir}'s output layer is {net.activations[-1]} (from an older xpnet), so its "
            "regression outputs are bounded; a new run gets a linear output layer")


def log_tf32(config: TrainConfig, backend, log: Log) -> None:
    """TF32 asked for (--tf32 or $XPNET_TF32) but not in effect: say why in one line."""
    asked = config.tf32 if config.tf32 is not None else os.environ.get("XPNET_TF32", "") == "1"
    if not asked or backend.tf32:
        return
    why = ("TF32 only speeds float32 products" if config.dtype != "float32"
           else f"{backend.name} on {backend.device_name} has no TF32")
    log(f"tf32: off ({why}; products run in full {config.dtype})")


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
    log(f"warning: {len(missing)} of {len(data.classes)} classes have no training sample{_listed(missing)}: "
        "the network gets an output for each but can never learn to predict it")
    if data.y_test is not None:
        tested = [str(data.classes[i]) for i in np.unique(data.y_test) if not seen[i]]
        if tested:
            log(f"warning: the held-out set has samples of classes training never shows{_listed(tested)}: "
                "those samples can only be classified wrong")


def check_new_run_folder(path: str | Path) -> None:
    """A new run must not write over a finished epoch of another: say so before any work."""
    path = Path(path)
    if (path / CHECKPOINT_NAME).exists():
        raise OutputError(f"{path} already holds a trained run ({CHECKPOINT_NAME}): continue it with "
                          f"--resume {path}, or give another --out")


def run_folder(config: TrainConfig) -> str:
    """--out, else runs/<data>-<time>."""
    return config.out or f"runs/{_slug(config.data)}-{time.strftime('%Y%m%d-%H%M%S')}"


def network_line(config: TrainConfig, net: Network, data: DataSet) -> str:
    return (f"network {' -> '.join(map(str, net.sizes))}  {config.activation}  {config.loss}  "
            f"{config.optimizer} lr {config.lr}  batch {config.batch_size}  {len(data.y_train)} training samples")


def run_metadata(config: TrainConfig, data: DataSet) -> dict:
    """What every checkpoint of the run records besides the weights."""
    return {"config": dataclasses.asdict(config), "classes": list(data.classes or []),
            "image_shape": list(data.image_shape or []), "seed": config.seed, "data": data.info}


def epoch_saver(run_dir: Path, meta: dict) -> Callable:
    """The on_epoch callback: the checkpoint and the history, rewritten after every epoch."""

    def checkpoint(model: Network, record: dict, training_state) -> None:
        # History first: killed between the two writes it is one epoch ahead, and resuming
        # trims it to the checkpoint's epochs; the other way round that epoch's record is lost.
        atomic_write_json(run_dir / "history.json", model.history)
        save_checkpoint(model, run_dir / CHECKPOINT_NAME,
                        {**meta, "epochs": record["epoch"], "accuracy": record.get("val_accuracy")}, training_state)

    return checkpoint


def resume_run(run_dir: Path, backend, config: TrainConfig, log: Log):
    """The run's network and training state, its history restored up to the saved epoch;
    checked to be this run's, with epochs left to train, before it says it resumes."""
    if (run_dir / "config.json").is_file() and not (run_dir / CHECKPOINT_NAME).exists():
        raise CheckpointError(f"{run_dir} has no checkpoint ({CHECKPOINT_NAME}): no epoch of it finished, so "
                              f"there is nothing to resume; start it anew with --out {run_dir}")
    net, _, state = load_for_resume(run_dir, backend)
    history_file = run_dir / "history.json"
    if history_file.is_file():
        net.history = json.loads(history_file.read_text())[:state.epoch]
    check_resumable(net, state, config, run_dir)
    log(f"resuming {run_dir} after epoch {state.epoch} (step {state.step}, lr {state.lr:g})")
    return net, state


def check_resumable(net: Network, state, config: TrainConfig, run_dir: Path) -> None:
    """The checkpoint must be this run's, and there must be epochs left to train."""
    if net.sizes[1:-1] != list(config.hidden) or net.loss != config.loss or state.optimizer_name != config.optimizer:
        raise CheckpointError(f"{run_dir / CHECKPOINT_NAME} holds a {' -> '.join(map(str, net.sizes))} {net.loss} "
                              f"network trained with {state.optimizer_name}, not this run's (--layers "
                              f"{','.join(map(str, config.hidden))}, {config.loss}, {config.optimizer}): "
                              "it is another run's checkpoint; restore this run's or start a new one")
    if state.epoch >= config.epochs:
        raise XpnetError(f"{run_dir} has already trained {state.epoch} epochs; give --epochs above "
                         f"{state.epoch} to train it longer")


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The config a run was started with, to resume it."""
    path = Path(run_dir) / "config.json"
    try:
        fields = json.loads(path.read_text())
        return TrainConfig(**fields)
    except OSError:
        raise XpnetError(f"{run_dir} is not a run folder (no readable config.json); give the folder "
                         "`xpnet train --out` wrote") from None
    except (json.JSONDecodeError, TypeError):
        raise XpnetError(f"{path} is damaged or from another xpnet version; cannot resume") from None


def log_baseline(net: Network, held_out, n_classes: int, log: Log) -> None:
    """The course's point: before learning, a network guesses, scoring about 1/26."""
    acc = evaluate(net, *held_out)["accuracy"]
    log(f"untrained network: accuracy {100 * acc:.1f}% (random guessing: 1/{n_classes} = {100 / n_classes:.1f}%)")


def report_classification(net: Network, held_out, data: DataSet, run_dir: Path, log: Log,
                          what: str = "held-out samples", score: str = "test accuracy") -> np.ndarray:
    X, y = held_out
    pred = net.predict(X)
    cm = confusion_matrix(np.asarray(y), pred, len(data.classes))
    log(f"{score} {100 * np.mean(pred == y):.2f}% on {len(y)} {what}")
    for line in summary_lines(cm, data.classes):
        log(line)
    atomic_write_json(run_dir / "confusion.json", {"classes": list(data.classes), "counts": cm.tolist()})
    from xpnet.train.report import write_pictures

    for path in write_pictures(run_dir, cm, data.classes, X, y, pred, data.image_shape):
        log(f"wrote {path}")
    return cm


def draw_curves(run_dir: Path, net: Network, log: Log) -> None:
    """curves.png for every run that trained, classifier or not, and a line saying so."""
    from xpnet.train.report import write_curves

    path = write_curves(run_dir, net.history)
    if path is not None:
        log(f"wrote {path}")


def evaluate_job(checkpoint: str, data_spec: str | None, backend_name, device, log: Log,
                 out: str | None = None) -> dict:
    """Score a checkpoint on a data set's held-out part (by default the data it trained on)."""
    backend = resolve_backend(backend_name, device)
    out_folder = ensure_folder(out) if out else None  # a bad --out is said before any work
    net, meta = load_checkpoint(checkpoint, backend)
    trained = meta.get("config") or {}
    data_spec = data_spec or trained.get("data") or "letters"
    same = trained.get("data") == data_spec  # then regenerate (or hit the cache of) the same set
    data = load_data(data_spec, seed=meta.get("seed", 0), n_train=trained.get("train_samples") if same else None,
                     n_test=trained.get("test_samples") if same else None)
    data = same_classes(net, meta, data, checkpoint, data_spec)
    held_out = data.X_test is not None
    X, y = (data.X_test, data.y_test) if held_out else (data.X_train, data.y_train)
    what = ("held-out samples" if held_out else f"samples of {data_spec} (no held-out part: "
            + ("the ones it trained on)" if same else "the run may have trained on them)"))
    result = evaluate(net, X, y)
    log(f"{checkpoint}: loss {result['loss']:.4f}" +
        (f"  accuracy {100 * result['accuracy']:.2f}%" if "accuracy" in result else "")
        + f"  on {len(y)} {what if not data.classes else 'samples'}")  # the report below says which
    if data.classes:
        folder = out_folder or Path(checkpoint if Path(checkpoint).is_dir() else Path(checkpoint).parent)
        report_classification(net, (X, y), data, folder, log, what, "test accuracy" if held_out else "accuracy")
    return result


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
    if not trained and net.loss == "quadratic" and net.activations[-1] == "identity":
        raise XpnetError(f"{checkpoint} is a regression model (it outputs values, not classes), but {data_spec} "
                         "holds class labels: evaluate it on data with float targets")
    if net.sizes[-1] != len(names) or (trained and trained != names):
        raise XpnetError(f"{checkpoint} tells {net.sizes[-1]} classes{_listed(trained)} apart, but {data_spec} "
                         f"has {len(names)}{_listed(names)}: evaluate it on data with its own classes")


def _listed(names: list) -> str:
    """' (a, b, c, d, e, ...)': the first few names, for a one-line message."""
    return f" ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})" if names else ""


def _slug(spec: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in spec.split(":")[0])
