"""What the training loop watches for after each epoch, and says in one line: a loss that
blew up (an error, naming the epoch, the step and a cure), one far above where training
started or rising epoch after epoch, and an epoch that left every weight as it was."""

from __future__ import annotations

import math

import numpy as np

from xpnet.model import Network
from xpnet.train.targets import DataError


class DivergenceError(DataError):
    """Training produced a non-finite loss or weight; the message suggests a smaller rate."""


EXPLODING_EPOCHS = 3  # this many rising epochs in a row, ending above the first, is reported


def check_divergence(model: Network, record: dict, state, data_note=lambda: None) -> None:
    """Stop on a non-finite loss or parameter, naming the epoch, the step and a cure: the
    data's scale first where it is to blame (`data_note()`), else a smaller rate.

    Raised before the epoch is checkpointed, so the last good checkpoint stays on disk.
    """
    bad_loss = not math.isfinite(record["loss"])
    bad_val = not math.isfinite(record.get("val_loss", 0.0))
    if not bad_loss and not bad_val and all_finite(model):
        return
    where = f"epoch {record['epoch']}"
    if bad_loss:
        step = state.step + record["finite_steps"] + 1
        where += f", step {step} (step {record['finite_steps'] + 1} of the epoch)"
    what = ("the loss became " + ("NaN" if math.isnan(record["loss"]) else "infinite") if bad_loss
            else "the validation loss became non-finite" if bad_val else "a weight became non-finite")
    kept = (f"epoch {state.epoch - 1}'s checkpoint is kept" if state.epoch > 1
            else "no epoch finished, so no checkpoint was written")
    raise DivergenceError(f"training diverged at {where}: {what} with learning rate {state.lr:g}; "
                          f"{_cure(data_note, state.lr, weight_decay=state.weight_decay)} ({kept})")


def all_finite(model: Network) -> bool:
    xp = model.backend.xp
    return all(bool(xp.all(xp.isfinite(p))) for p in model.params)


FAR_ABOVE = 100  # an epoch's loss this many times the loss training started from is reported


def _cure(data_note, lr: float, blame: str = "", weight_decay: float = 0.0) -> str:
    """What to try after a blow-up or a loss that keeps rising: a weight decay too large for the
    rate first (each step then scales every weight by 1 - lr * lambda, below -1: ever wider
    swings), then the data where they are to blame (`data_note()`: huge values, unscaled), as no
    rate cures those; else a smaller rate."""
    if weight_decay * lr >= 1:
        return (f"weight decay {weight_decay:g} at rate {lr:g} scales every weight by {1 - weight_decay * lr:.3g} "
                f"a step; give a --weight-decay below {1 / lr:g}")
    note = data_note()
    return f"{note}; if the data are right, try --lr {lr / 10:g}" if note else f"{blame}try --lr {lr / 10:g}"


def warn_if_far_above(loss: float, start_loss: float | None, lr: float, log, data_note,
                      weight_decay: float = 0.0) -> float | None:
    """Report, once, an epoch whose (finite) loss is FAR_ABOVE times where training started:
    the weights are being thrown about, though nothing has overflowed yet. Returns the start
    loss to compare with next time, or None once it has been said."""
    if start_loss is None or not (math.isfinite(loss) and loss > FAR_ABOVE * max(start_loss, 1e-12)):
        return start_loss
    _say(log, f"warning: the loss ({loss:.4g}) is over {FAR_ABOVE} times what training started from "
              f"({start_loss:.4g}); {_cure(data_note, lr, f'learning rate {lr:g} is probably too high: ', weight_decay)}")
    return None


def warn_if_unchanged(model: Network, before, lr: float, log) -> None:
    """An epoch that left every weight as it was trains nothing while looking like training
    (--lr 1e-50 underflows to zero in float32): say so once, after the first epoch."""
    if before is not None and all(np.array_equal(b, model.backend.to_numpy(p)) for b, p in zip(before, model.params)):
        _say(log, f"warning: an epoch of updates left every weight unchanged: learning rate {lr:g} is too small "
                  f"for {model.backend.dtype_name} weights (each step rounds to nothing); try a larger --lr")


def warn_if_exploding(history: list, lr: float, log, data_note, weight_decay: float = 0.0) -> None:
    """Report a loss that keeps rising though still finite: the rate is likely too high."""
    if len(history) <= EXPLODING_EPOCHS:
        return
    recent = [r["loss"] for r in history[-EXPLODING_EPOCHS - 1:]]
    if all(b > a for a, b in zip(recent, recent[1:])) and recent[-1] > history[0]["loss"]:
        _say(log, f"warning: the loss has risen for {EXPLODING_EPOCHS} epochs ({recent[0]:.4g} -> "
                  f"{recent[-1]:.4g}); {_cure(data_note, lr, f'learning rate {lr:g} is probably too high: ', weight_decay)}")


def _say(log, line: str) -> None:
    if log is not None:
        log(line)
