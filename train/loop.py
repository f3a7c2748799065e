"""The course's API: `model = learn(model, data)` trains, `test(model, x)` answers.

Training is minibatch gradient descent: shuffle on the host from one seeded generator,
move the whole data set to the device once, and per step take a batch, backpropagate and
update. Each step's loss and predictions stay on the device and are summed and read once
per epoch (train/tally.py), so a GPU never waits on the host inside an epoch.
"""

from __future__ import annotations

import time
from contextlib import closing
from functools import partial
from typing import Callable

import numpy as np

from xpnet.model import Network
from xpnet.model.layer import eval_rows
from xpnet.train.augment import Shifts
from xpnet.train.calibration import calibrate as calibrate_temperature
from xpnet.train.context import RunContext
from xpnet.train.device_data import DeviceData
from xpnet.train.graphs import GraphedSteps, graph_blocker
from xpnet.train.learning_rate import PROBE_SIZE, find_learning_rate, probe_loss
from xpnet.train.memory import check_step_fits, out_of_memory_as_error
from xpnet.train.prepare import check_patience, data_scale_note, prepare_data, settle_lr, settle_task
from xpnet.train.optimizers import check_weight_decay
from xpnet.train.schedules import check_schedule, epoch_lr
from xpnet.train.state import TrainingState
from xpnet.train.watch import check_divergence, warn_if_exploding, warn_if_far_above, warn_if_unchanged
from xpnet.train.subnormals import flush_subnormals
from xpnet.train.threads import check_threads, choose_threads, keeps_to_one_thread
from xpnet.train.steps import EagerSteps
from xpnet.train.tally import count_correct
from xpnet.train.targets import DataError


@flush_subnormals()  # see train/subnormals.py: late steps as fast as early ones
def learn(model: Network, data, *, epochs: int = 10, batch_size: int | None = 64,
          lr: float | str | None = None, optimizer: str = "sgd", seed: int = 0, validation=None,
          schedule: str = "constant", warmup: int = 0, weight_decay: float = 0.0,
          validation_fraction: float | None = None, patience: int | None = None, scale: str | None = None,
          log: Callable[[str], None] | None = print,
          on_epoch: Callable[[Network, dict, TrainingState], None] | None = None,
          resume: TrainingState | None = None, context: RunContext | None = None,
          cuda_graphs: bool | None = None, calibrate: bool = True, shift: int = 0,
          threads: int | None = None) -> Network:
    """Train `model` on `data` = (X, y) by gradient descent; returns the trained model.

    batch_size=None is full-batch gradient descent; lr="auto" runs the course's recipe
    (start at 0.001, x10 while the loss falls, /10 when it rises or stalls) and logs the
    choice; lr=None takes the optimizer's default (train/optimizers.py DEFAULT_LR) and says so.
    `schedule` (constant, step, cosine) and `warmup` epochs set each epoch's rate from it
    (train/schedules.py); `weight_decay` is L2's lambda on every weight matrix.
    Float targets make it regression: the model answers values (train/prepare.py).
    `scale` (none, standard, minmax, pixels; None: none for inputs in [0, 1], pixels for
    8-bit images, else standard) is fitted on the training data by a model's first `learn`,
    kept on the model and applied by `predict`/`test`/`evaluate` (train/scaling.py). `validation` = (X_val, y_val), or
    `validation_fraction` of the training rows (stratified by class), adds validation
    loss/accuracy to the history; `patience` then stops early when the validation loss has
    not improved for that many epochs, restoring the best epoch's weights. A classifier with
    validation data then fits its softmax temperature on it (`calibrate`; train/calibration.py),
    so its stated probabilities mean what they say; False keeps them as trained.
    The history (one dict per epoch) is appended to `model.history`. `on_epoch` is called
    after every finished epoch (to checkpoint it), and with the last record again when
    early stopping restores the best weights or the temperature is fitted; `resume` continues a
    saved run exactly.
    `context` says where this runs (train/context.py): by default this process alone; a
    `xpnet.train.distributed.Distributed` makes it one rank of a data-parallel MPI job, training on
    its piece of every batch with the gradient summed over the ranks.
    `cuda_graphs` replays each full batch's step as one recorded CUDA graph where the
    backend can (cupy, torch on CUDA) and logs why not where it cannot; None (the default)
    does so on a backend that records graphs and says nothing elsewhere; False never does.
    `shift` moves each training picture up to that many whole pixels each way, drawn anew every
    epoch (train/augment.py): the network learns letters, not where their strokes fell.
    `threads` splits each batch across that many CPU threads, each backpropagating its piece
    (train/threads.py); 1 keeps numpy's BLAS to one thread too; None: every core, up to
    threads.MAX_AUTO, for a network with convolutions on numpy, else 1 with BLAS's own threads.
    On x86-64 Linux, subnormal floats count as zero on this thread while it runs, `log` and
    `on_epoch` included (train/subnormals.py).
    """
    _check_settings(epochs, batch_size, seed, patience, threads)
    check_schedule(schedule, warmup)
    if warmup >= epochs:
        _say(log, f"warning: --warmup {warmup} is not shorter than the run's {epochs} epochs, so the rate never "
                  "reaches the one asked for; give fewer warm-up epochs")
    check_weight_decay(weight_decay)
    shifts = Shifts.for_model(shift, model) if shift else None
    context = context or RunContext()
    check_threads(threads, model.backend, context.size > 1)  # before lr="auto"'s trials, not after
    settle_task(model, data[1], log)
    data, validation = prepare_data(model, data, validation, validation_fraction, scale, seed, log)
    if context.is_root:  # other ranks of an MPI job stop on rank 0's validation figures
        check_patience(patience, validation)
    train_set = context.shard(model, *data, what="training data")
    val_set = DeviceData.from_host(model, *validation, what="validation data") if validation else None
    batch_size = batch_size or train_set.n
    check_step_fits(model, batch_size, context.size)  # before lr="auto"'s trials take a step
    state = resume
    if state is None:
        lr = settle_lr(lr, optimizer, log)
        if lr == "auto":  # trials every process runs alike, on the whole set
            lr, report = find_learning_rate(model, context.whole(train_set), optimizer, batch_size, seed)
            _say(log, report)
        state = TrainingState.fresh(model, optimizer, lr, seed, weight_decay)
    train_set.shifts = shifts  # after lr="auto"'s trials, which every process runs on the pictures as they are
    one_thread = keeps_to_one_thread(threads, model.backend)  # asked for: BLAS keeps to one too
    threads, threads_note = choose_threads(threads, model, batch_size, context.size > 1)
    if threads_note:
        _say(log, threads_note)
    steps = make_steps(model, state.optimizer, train_set, batch_size, context, cuda_graphs, log, threads, one_thread)
    # where training starts from, for warn_if_far_above: rows spread over the set, as lr=auto's probe
    start_loss = probe_loss(model, *train_set.spread(PROBE_SIZE))
    first_weights = [model.backend.to_numpy(p) for p in model.params]  # to see the first epoch changed them
    with out_of_memory_as_error(batch_size), closing(steps):
        while state.epoch < epochs:
            state.optimizer.lr = epoch_lr(state.lr, schedule, warmup, state.epoch, epochs)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported below, in one line
                record = run_epoch(steps, state.rng)
                if val_set is not None:
                    record.update({f"val_{k}": v for k, v in evaluate_device(model, val_set).items()})
            record = context.share_validation(record)  # every process must stop early alike
            state.epoch += 1
            record["epoch"] = state.epoch
            if schedule != "constant" or warmup:
                record["lr"] = state.optimizer.lr
            data_note = partial(data_scale_note, model, *data)
            check_divergence(model, record, state, data_note)  # a non-finite validation loss too
            state.step += record.pop("steps")
            record.pop("finite_steps")
            model.history.append(record)
            _say(log, format_epoch(record, epochs))
            first_weights = warn_if_unchanged(model, first_weights, state.lr, log)
            if steps.failure:
                _say(log, f"CUDA graphs: recording failed, so every step runs unrecorded ({steps.failure})")
                steps.failure = None
            warn_if_exploding(model.history, state.lr, log, data_note, state.weight_decay)
            start_loss = warn_if_far_above(record["loss"], start_loss, state.lr, log, data_note, state.weight_decay)
            if patience is not None:
                state.track_validation(record["val_loss"], model)
            if on_epoch is not None:
                on_epoch(model, record, state)
            if patience is not None and state.epochs_since_best >= patience:
                _say(log, f"early stop: validation loss has not improved for {patience} epoch{'s' * (patience != 1)}")
                _restore_best(model, state, on_epoch, log)
                break
    if calibrate and val_set is not None and val_set.classification and model.loss == "cross_entropy" \
            and context.is_root:
        calibrate_temperature(model, val_set, log)
        if on_epoch is not None:  # the checkpoint keeps the temperature
            on_epoch(model, model.history[-1], state)
    return model


def _restore_best(model: Network, state: TrainingState, on_epoch, log) -> None:
    """Early stopping keeps the best epoch's weights, not the last one's (saved again, so the
    checkpoint holds them too). A run that trains all its epochs keeps its last, so that it
    can be resumed exactly."""
    if state.restore_best(model):
        _say(log, f"restored epoch {state.best_epoch}'s weights, the best on validation (val_loss "
                  f"{state.best_val_loss:.4g})" + (", and saved them" if on_epoch is not None else ""))
        if on_epoch is not None:
            on_epoch(model, model.history[-1], state)


def make_steps(model, opt, data, batch_size: int, context, cuda_graphs: bool | None, log, threads: int = 1,
               one_thread: bool = False):
    """How this run trains its batches: recorded as a CUDA graph where it can and is not told
    otherwise (saying so, or why not where graphs were asked for or the backend could record
    them), else eagerly, on `threads` CPU threads (more than one only on numpy, which records no graphs)."""
    why = "switched off" if cuda_graphs is False else graph_blocker(model, data, batch_size, context)
    if why is None:
        _say(log, f"CUDA graphs: on (each full batch of {batch_size} is one replay of a recorded step)")
        return GraphedSteps(model, opt, data, batch_size, context)
    if cuda_graphs or (cuda_graphs is None and model.backend.capture_fn is not None):
        _say(log, f"CUDA graphs: off ({why})")
    return EagerSteps(model, opt, data, batch_size, context, threads, one_thread)


def run_epoch(steps, rng: np.random.Generator) -> dict:
    """One pass over the data in shuffled minibatches; reads the device once, at the end.

    `steps` (EagerSteps, or GraphedSteps on a GPU) holds the model, the optimizer, the data
    and the run context, which sums the totals over every process of a distributed run."""
    data = steps.data
    start = time.perf_counter()
    totals = steps.context.epoch_totals(steps.model, steps.run_epoch(data.order(rng, steps.batch_size)))
    loss_value = float(totals.loss_sum) / data.n  # the one synchronisation of the epoch
    seconds = time.perf_counter() - start
    record = {"loss": loss_value, "seconds": seconds, "samples_per_s": data.n / seconds,
              "steps": totals.steps, "finite_steps": int(float(totals.finite_steps))}
    if data.classification:
        record["accuracy"] = float(totals.correct) / data.n
    return record


def evaluate_device(model: Network, data: DeviceData, batch_size: int | None = None) -> dict:
    """Mean loss (and accuracy, for classes) over a device data set, without training, in
    chunks of `batch_size` rows (None: as many as model/layer.py's `eval_rows` gives)."""
    xp, batch_size = model.backend.xp, batch_size or eval_rows(model.layers, model.backend)
    loss_sum, correct = 0.0, 0.0
    for first in range(0, data.n, batch_size):
        xb, tb = data.rows(first, first + batch_size)
        out = model.forward(xb)
        loss_sum += float(model.loss_of(out, tb)) * xb.shape[0]
        if data.classification:
            correct += float(count_correct(xp, out, tb))
    result = {"loss": loss_sum / data.n}
    if data.classification:
        result["accuracy"] = correct / data.n
    return result


def format_epoch(record: dict, epochs: int) -> str:
    """One log line: `epoch 3/10  loss 0.4132  acc 91.2%  val_loss ...  12.1k samples/s`."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"loss {record['loss']:.4f}"]
    if "accuracy" in record:
        parts.append(f"acc {100 * record['accuracy']:.1f}%")
    if "val_loss" in record:
        parts.append(f"val_loss {record['val_loss']:.4f}")
    if "val_accuracy" in record:
        parts.append(f"val_acc {100 * record['val_accuracy']:.1f}%")
    if "lr" in record:  # a scheduled rate
        parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['samples_per_s'] / 1000:.1f}k samples/s")
    return "  ".join(parts)


def _check_settings(epochs, batch_size, seed=0, patience=None, threads=None) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise DataError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a whole number, 0 or more, got {seed!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise DataError(f"patience must be a positive integer (epochs without improvement), got {patience!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise DataError(f"batch size must be a positive integer, got {batch_size!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise DataError(f"threads must be a positive integer (or None to choose), got {threads!r}")


def _say(log, line: str) -> None:
    if log is not None:
        log(line)
