"""The course's learning-rate recipe, automated.

"Start alpha small, e.g. 0.001, and watch J after each update. If J grew, divide alpha by
10 until J falls; if J fell, multiply alpha by 10 to learn faster. Settle on the rate that
still makes J fall without being needlessly small." Each trial trains a copy of the model
for TRIAL_STEPS steps from the same start and measures J on a fixed probe batch.

Going up, each rate must do better than the one before it: x10 while J ends lower (by at
least STALL) than at the last rate; when it rises or stalls, the recipe steps back /10 to
that last rate, and tries once the rate 3 times it, between the two: a factor of 10 is a
coarse step, and the course's own rate for its network (3) lies between 1 and 10. That rate
is kept when it does as well (J within TIE) or better, since the recipe settles on a rate
"without being needlessly small": in 100 steps the course preset's 1 and 3 end within 0.2%
of each other, and over its 15 epochs 3 reads 3 points more of the letters. Going down (the first rate already made J grow), the first rate that makes J
fall is kept.

What "falls" means matters twice over:
- A trial must be long enough to tell rates apart: a sigmoid network on the letters sits on
  a plateau near log(26) for its first few dozen steps at any rate (after 20 steps lr 10 looked
  nearly as good as 1, and only 1 went on to learn); after TRIAL_STEPS = 100, 1 has broken
  through and 10 has not.
- A flat, saturated loss is not falling. The course preset (26 sigmoid outputs, quadratic
  loss) at rates of 10 and up pushes every output to 0 within a few dozen steps: J drops from
  about 3.2 to 0.5 ("no letter at all"), as far as a good rate gets in 100 steps, and then
  stays there, since saturated sigmoids pass no gradient. Compared with the start, such a rate
  "fell", and the old search chose lr 1000 and ended at chance. So J is also measured half-way
  through each trial, and a trial whose J no longer moves over its second half (by less than
  FLAT of its value) has stalled, unless it has already reached CONVERGED of where it began.
"""

from __future__ import annotations

import math

import numpy as np

from xpnet.backends import XpnetError
from xpnet.model.layer import eval_rows
from xpnet.train.steps import run_steps

START = 1e-3
TRIAL_STEPS = 100
PROBE_SIZE = 2048
LOWEST, HIGHEST = 1e-7, 1e3
BETWEEN = 3  # after x10 went too far: the rate 3 times the last good one, about half a decade up
TIE = 1e-2  # ...which is kept when its J ends within 1% of the last good rate's, or lower
STALL = 1e-3  # going up, a rate must end at least 0.1% below the last rate's J to count as better
FLAT = 1e-5  # a trial whose J moved less than 0.001% over its second half has stalled (saturated)...
CONVERGED = 1e-3  # ...unless J is already below 0.1% of where it started: that is the bottom, not a plateau


def find_learning_rate(model, data, optimizer: str, batch_size: int, seed: int) -> tuple[float, str]:
    """Returns (chosen lr, a one-line report of the trials)."""
    probe_x, probe_t = data.spread(PROBE_SIZE)
    base = probe_loss(model, probe_x, probe_t)
    trials = []

    def trial(lr: float) -> tuple[float, float]:
        mid, end = _trial(model, data, optimizer, lr, batch_size, seed, probe_x, probe_t)
        trials.append(f"{lr:g}->{end:.4g}" + ("(flat)" if _flat(mid, end, base) else ""))
        return mid, end

    lr = START
    mid, end = trial(lr)
    if falls(base, mid, end, base):
        chosen, reached = lr, end
        while lr * 10 <= HIGHEST * (1 + 1e-9):
            lr *= 10
            mid, end = trial(lr)
            if not falls(reached * (1 - STALL), mid, end, base):
                mid, end = trial(chosen * BETWEEN)  # back, then half a decade up: the step x10 skipped
                if falls(reached * (1 + TIE), mid, end, base):  # as good is enough: not "needlessly small"
                    chosen = chosen * BETWEEN
                break
            chosen, reached = lr, end
    else:
        chosen = None
        while chosen is None and lr / 10 >= LOWEST * (1 - 1e-9):
            lr /= 10
            mid, end = trial(lr)
            chosen = lr if falls(base, mid, end, base) else None
    if chosen is None:
        raise XpnetError("lr=auto: no learning rate from 1e-7 up made the loss fall; check the data")
    return chosen, (f"lr auto: chose {chosen:g} (loss {base:.4g} at the start; after {TRIAL_STEPS} steps, "
                    f"rate->loss: {' '.join(trials)})")


def falls(below: float, mid: float, end: float, base: float) -> bool:
    """J ended under `below` and was still falling at the end of the trial (not flat)."""
    return math.isfinite(end) and end < below and not _flat(mid, end, base)


def _flat(mid: float, end: float, base: float) -> bool:
    """J did not move over the trial's second half, short of the bottom: a saturated network."""
    if not (math.isfinite(mid) and math.isfinite(end)) or end <= CONVERGED * base:
        return False
    return abs(mid - end) < FLAT * abs(end)


def _trial(model, data, optimizer, lr, batch_size, seed, probe_x, probe_t) -> tuple[float, float]:
    """J on the probe after TRIAL_STEPS // 2 and after TRIAL_STEPS steps at `lr`, from the model's start."""
    trial_model = model.copy()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a rate too big diverges: the report says so
        [mid] = run_steps(trial_model, data, optimizer, lr, batch_size, TRIAL_STEPS, np.random.default_rng(seed),
                          measure=lambda: probe_loss(trial_model, probe_x, probe_t), at=(TRIAL_STEPS // 2,))
        return mid, probe_loss(trial_model, probe_x, probe_t)


def probe_loss(model, x, t) -> float:
    """The mean loss over the probe's rows, in the chunks an evaluation pass holds at once
    (model/layer.py's `eval_rows`: one chunk for a dense network, a few hundred rows for a conv one)."""
    n, rows = x.shape[0], eval_rows(model.layers, model.backend)
    total = 0.0
    for first in range(0, n, rows):
        last = min(first + rows, n)
        total += float(model.loss_of(model.forward(x[first:last, ...]), t[first:last, ...])) * (last - first)
    return total / n
