"""The course's learning-rate recipe, automated.

"Start alpha small, e.g. 0.001, and watch J after each update. If J grew, divide alpha by
10 until J falls; if J fell, multiply alpha by 10 to learn faster. Settle on the rate that
still makes J fall without being needlessly small." Each trial trains a copy of the model
for a few steps from the same start and compares the loss on a fixed probe batch.

A trial must be long enough to tell rates apart: a sigmoid network on the letters sits on
a plateau near log(26) for its first few dozen steps at any rate, and after 20 steps lr 10
(3.418 -> 3.337) looked nearly as good as lr 1 (3.270) on 60,000 letters, and on 5,000 fell
far enough (0.131 of the best rate's 0.162) to be chosen; only 1 went on to learn. After TRIAL_STEPS = 100, 1 has broken through (2.91) and 10 has not
(3.32). Of the rates that made J fall, the largest is kept only if it made J fall about as
far as the best of them did (GOOD_ENOUGH of the best drop), for the same reason: a rate at
the edge of diverging can still nudge J down and then stall for good.
"""

from __future__ import annotations

import math

import numpy as np

from xpnet.backends import XpnetError
from xpnet.train.steps import run_steps

START = 1e-3
TRIAL_STEPS = 100
PROBE_SIZE = 2048
LOWEST, HIGHEST = 1e-7, 1e3
GOOD_ENOUGH = 2 / 3  # share of the best trial's drop in J that the chosen rate must reach


def find_learning_rate(model, data, optimizer: str, batch_size: int, seed: int) -> tuple[float, str]:
    """Returns (chosen lr, a one-line report of the trials)."""
    probe_x, probe_t = data.spread(PROBE_SIZE)
    base = probe_loss(model, probe_x, probe_t)
    lr, drops, going_down, trials = START, {}, False, []
    while LOWEST <= lr <= HIGHEST:
        after = _trial(model, data, optimizer, lr, batch_size, seed, probe_x, probe_t)
        fell = math.isfinite(after) and after < base
        trials.append(f"{lr:g}->{after:.4g}")
        if fell:
            drops[lr] = base - after
            if going_down:
                break
            lr *= 10
        elif drops:
            break
        else:
            lr, going_down = lr / 10, True
    if not drops:
        raise XpnetError("lr=auto: no learning rate from 1e-7 up made the loss fall; check the data")
    best = max(drops.values())
    chosen = max(rate for rate, drop in drops.items() if drop >= GOOD_ENOUGH * best)
    return chosen, (f"lr auto: chose {chosen:g} (loss {base:.4g} at the start; after {TRIAL_STEPS} steps, "
                    f"rate->loss: {' '.join(trials)})")


def _trial(model, data, optimizer, lr, batch_size, seed, probe_x, probe_t) -> float:
    trial_model = model.copy()
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a rate too big diverges: the report says so
        run_steps(trial_model, data, optimizer, lr, batch_size, TRIAL_STEPS, np.random.default_rng(seed))
        return probe_loss(trial_model, probe_x, probe_t)


def probe_loss(model, x, t) -> float:
    return float(model.loss_of(model.forward(x), t))
