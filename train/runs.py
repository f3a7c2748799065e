"""A run folder's life: made fresh or resumed, written after every epoch, and what Ctrl-C leaves.

A run folder holds config.json (the settings it was started with), model.safetensors (the
last finished epoch's checkpoint, with the optimizer's state and the shuffling's) and
history.json; each is written whole or not at all (train/files.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

from xpnet.backends import XpnetError
from xpnet.model import Network
from xpnet.model.checkpoint import CheckpointError
from xpnet.model.layers import same_layers
from xpnet.train.checkpoints import CHECKPOINT_NAME, load_for_resume, save_checkpoint
from xpnet.train.config import BATCH, COUNTS, RESUMABLE, TrainConfig
from xpnet.train.data import DataError, DataSet, absolute_spec
from xpnet.train.data.spec import check_small_letters
from xpnet.train.files import OutputError, atomic_write_json, is_regular
from xpnet.train.optimizers import OptimizerError, check_weight_decay
from xpnet.train.run_lock import LOCK_NAME

Log = Callable[[str], None]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run, with what of it is kept: the command line says this one line."""


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether `exc` is a Ctrl-C, or was raised because of one: a C extension that is loading
    when the KeyboardInterrupt lands turns it into its own error (matplotlib's ft2font: an
    ImportError "initialization failed", the KeyboardInterrupt as its cause)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def telling_what_is_kept(run_dir: Path | None, trained: bool = False):
    """Ctrl-C inside says whether `run_dir` holds a checkpoint to resume from (each epoch's
    is written whole or not at all), rather than promising one that no epoch wrote; once
    training is over (`trained`), that the report alone is missing."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, Interrupted) or not caused_by_ctrl_c(exc):
            raise
        if run_dir is None:  # a rank that writes nothing: rank 0 says it
            raise
        if trained:
            raise Interrupted(f"interrupted while writing the report; training had finished, and "
                              f"{run_dir / CHECKPOINT_NAME} holds the trained network: xpnet report {run_dir} "
                              "draws the report") from None
        if (run_dir / CHECKPOINT_NAME).exists():
            raise Interrupted(f"interrupted; {run_dir / CHECKPOINT_NAME} holds the last finished epoch: "
                              f"continue it with --resume {run_dir}") from None
        raise Interrupted(f"interrupted before an epoch finished, so {run_dir} holds no checkpoint") from None


def check_new_run_folder(path: str | Path) -> None:
    """A new run must not write over a finished epoch of another, nor into a folder of
    someone else's files (it would replace their config.json): say so before any work."""
    path = Path(path)
    if (path / CHECKPOINT_NAME).exists():
        raise OutputError(f"{path} already holds a trained run ({CHECKPOINT_NAME}): continue it with "
                          f"--resume {path}, or give another --out")
    if not path.is_dir() or is_run_folder(path):
        return
    try:
        held = sorted(p.name for p in path.iterdir())
    except OSError as exc:
        raise OutputError(f"cannot read output folder {path}: {exc.strerror or exc}; choose another --out") from None
    if held:
        raise OutputError(f"{path} is not empty and is not an xpnet run folder (it holds {held[0]!r}"
                          f"{' and more' * (len(held) > 1)}): give a new or empty folder as --out")


def is_run_folder(path: Path) -> bool:
    """A folder xpnet made for a run: its lock file, or a config.json that reads as a run's
    settings (a run stopped before its first epoch has only that)."""
    if (path / LOCK_NAME).exists() or (path / CHECKPOINT_NAME).exists():
        return True
    try:
        read_run_config(path)
    except XpnetError:
        return False
    return True


def run_folder(config: TrainConfig) -> str:
    """--out, else runs/<data>-<time>."""
    return config.out or f"runs/{_slug(config.data)}-{time.strftime('%Y%m%d-%H%M%S')}"


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
        save_checkpoint(model, run_dir / CHECKPOINT_NAME,  # its own copy of the history, should history.json be lost
                        {**meta, "epochs": record["epoch"],
                         "accuracy": record.get("test_accuracy", record.get("val_accuracy")),
                         "history": model.history}, training_state)

    return checkpoint


def resume_run(run_dir: Path, backend, config: TrainConfig, log: Log, data_info: dict | None = None):
    """The run's network and training state, its history restored up to the saved epoch;
    checked to be this run's, with epochs left to train, on the data it started on
    (`data_info`, the loaded data's), before it says it resumes."""
    if (run_dir / "config.json").is_file() and not (run_dir / CHECKPOINT_NAME).exists():
        raise CheckpointError(f"{run_dir} has no checkpoint ({CHECKPOINT_NAME}): no epoch of it finished, so "
                              f"there is nothing to resume; start it anew with --out {run_dir}")
    net, meta, state = load_for_resume(run_dir, backend)
    check_resumable(net, state, config, run_dir)
    check_same_settings(config, meta.get("config"), run_dir)
    check_same_letters(meta.get("data"), data_info, run_dir, log)
    net.history = restored_history(run_dir, meta.get("history"), state.epoch, log)
    log(f"resuming {run_dir} after epoch {state.epoch} (step {state.step}, lr {state.lr:g})")
    return net, state


def check_same_settings(config: TrainConfig, recorded, run_dir: Path) -> None:
    """The checkpoint's own record of the run's settings is the authority: a config.json
    edited since (a batch size, a seed, a dtype) would silently make a different run."""
    if not isinstance(recorded, dict):  # a checkpoint from before settings were recorded
        return
    recorded = dict(recorded)
    with contextlib.suppress(XpnetError, TypeError, KeyError):  # runs saved before data paths were made absolute
        recorded["data"] = absolute_spec(recorded["data"])
    for name, value in dataclasses.asdict(config).items():
        if name not in RESUMABLE and name != "out" and name in recorded and recorded[name] != value:
            raise CheckpointError(f"{run_dir / 'config.json'} says {name} = {value!r}, but {run_dir / CHECKPOINT_NAME} "
                                  f"was trained with {name} = {recorded[name]!r}: config.json was edited or "
                                  "replaced; put it back (a resumed run keeps its own settings), or start a new run")


def check_same_letters(trained, now, run_dir: Path, log: Log = print) -> None:
    """Generated letters are the same for a seed only within one generator version and recipe:
    a run resumed by an xpnet that draws them otherwise would go on training on other letters.
    Another numpy, Pillow or FreeType may move a pixel here and there: that is said, not refused."""
    if not (isinstance(trained, dict) and isinstance(now, dict)) or trained.get("source") != "letters":
        return
    if (trained.get("version"), trained.get("recipe")) != (now.get("version"), now.get("recipe")):
        raise CheckpointError(f"{run_dir} trained on letters this xpnet no longer draws (generator version "
                              f"{trained.get('version')}, now {now.get('version')}): finish it with the xpnet "
                              "that started it, or start a new run")
    was, is_now = trained.get("renderer"), now.get("renderer")
    if was and is_now and was != is_now:
        changed = ", ".join(f"{k} {was.get(k)} -> {is_now.get(k)}" for k in sorted(is_now) if was.get(k) != is_now.get(k))
        log(f"note: the letters are drawn by other libraries than when {run_dir} began ({changed}); "
            "a pixel here and there may differ")


def restored_history(run_dir: Path, kept, epochs: int, log: Log) -> list:
    """The history up to the checkpoint's epoch: the checkpoint's own copy where it has one
    (history.json may be one epoch ahead, deleted or damaged), else history.json's; never an
    empty one that would silently restart the record."""
    path = run_dir / "history.json"
    try:
        if not is_regular(path):  # missing, or a named pipe that would block the read forever
            raise FileNotFoundError(path)
        on_disk = json.loads(path.read_bytes().decode())
        usable = isinstance(on_disk, list) and len(on_disk) >= epochs and all(isinstance(r, dict) for r in on_disk)
    except (OSError, ValueError, RecursionError):  # missing, not UTF-8, not JSON, nested past Python's stack
        usable = False
    if isinstance(kept, list) and len(kept) == epochs:
        if not usable:
            log(f"warning: {path} was missing or damaged; rebuilt from the checkpoint's copy")
        return list(kept)
    if usable:
        return on_disk[:epochs]
    raise CheckpointError(f"{path} is missing or damaged, and {run_dir / CHECKPOINT_NAME} (from an older "
                          "xpnet) holds no copy of it: restore it from a backup, or start the run anew")


def check_resumable(net: Network, state, config: TrainConfig, run_dir: Path) -> None:
    """The checkpoint must be this run's, and there must be epochs left to train."""
    if (not same_layers(net.layers, config.hidden) or net.loss != config.loss
            or state.optimizer_name != config.optimizer):
        raise CheckpointError(f"{run_dir / CHECKPOINT_NAME} holds a {net.summary} {net.loss} "
                              f"network trained with {state.optimizer_name}, not this run's (--layers "
                              f"{','.join(map(str, config.hidden))}, {config.loss}, {config.optimizer}): "
                              "it is another run's checkpoint; restore this run's or start a new one")
    if state.epoch >= config.epochs:
        unreported = "" if (run_dir / "curves.png").is_file() else (  # the report's last picture
            f"; its report was never finished (stopped while it was drawn): xpnet report {run_dir} draws it")
        raise XpnetError(f"{run_dir} has already trained {state.epoch} epochs; give --epochs above "
                         f"{state.epoch} to train it longer{unreported}")


# What a run's config.json means where it names no value, having been written before the
# setting's default came to depend on the data: no shift and no decay then, for any data, and
# batches of 64 (config.json has always named its batch size, so this only guards a hand edit).
BEFORE_DEFAULTS = {"shift": 0, "weight_decay": 0.0, "batch_size": BATCH}


def read_run_config(run_dir: str | Path) -> TrainConfig:
    """The config a run was started with, to resume it."""
    path = Path(run_dir) / "config.json"
    try:
        if not path.is_file():  # a named pipe would block the read forever
            raise FileNotFoundError(path)
        config = TrainConfig(**{**BEFORE_DEFAULTS, **json.loads(path.read_bytes().decode())})
    except OSError:
        raise XpnetError(f"{run_dir} is not a run folder (no readable config.json); give the folder "
                         "`xpnet train --out` wrote") from None
    except (ValueError, TypeError, RecursionError):  # not UTF-8, not JSON (or nested too deep), not TrainConfig's
        raise XpnetError(f"{path} is damaged or from another xpnet version; cannot resume") from None
    for name in COUNTS:
        value = getattr(config, name)
        if value is not None and (type(value) is not int or value < 1):
            raise XpnetError(f"{path} gives {name} = {value!r}: it must be a positive integer; correct it")
    for name in ("seed", "shift"):  # None or "x" would reach the data's loader or the training loop
        value = getattr(config, name)
        if type(value) is not int or value < 0:
            raise XpnetError(f"{path} gives {name} = {value!r}: it must be a whole number >= 0; correct it")
    try:
        check_small_letters(config.small_letters)
    except DataError:
        raise XpnetError(f"{path} gives small_letters = {config.small_letters!r:.40}: it must be a share from 0 "
                         "to 1, or null; correct it") from None
    try:  # None would become the data's default, which the run may not have had
        check_weight_decay(config.weight_decay)
    except OptimizerError:
        raise XpnetError(f"{path} gives weight_decay = {config.weight_decay!r:.40}: it must be a number >= 0; "
                         "correct it") from None
    return config


def _slug(spec: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in spec.split(":")[0])
