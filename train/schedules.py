"""Learning-rate schedules: the rate for each epoch, from the base rate the run was given.

A rate that suits the start (large steps toward the valley) is too large at the end (it
bounces around the bottom); lowering it late lets the last epochs settle. Warm-up does the
opposite at the start: a few epochs climbing to the base rate keep the first, largest
gradients of a fresh network (and Adam's first, noisiest moment estimates) from throwing
the weights about. The rate changes between epochs only, so a recorded CUDA graph picks it
up through the optimizer's device scalar, and a resumed run computes the same rates from
its epoch count.
"""

from __future__ import annotations

import math

from xpnet.backends.errors import XpnetError, choose


class ScheduleError(XpnetError):
    """A schedule that does not exist or a warm-up that cannot be."""


# name -> the factor on the base rate for epoch e (0-based) of `epochs`
SCHEDULES = {
    "constant": lambda e, epochs: 1.0,  # the course's fixed alpha
    "step": lambda e, epochs: 0.1 ** (e // max(1, math.ceil(epochs / 3))),  # /10 after each third
    "cosine": lambda e, epochs: 0.5 * (1 + math.cos(math.pi * e / epochs)),  # smoothly from 1 toward 0
}


def check_schedule(name: str, warmup: int = 0) -> str:
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ScheduleError(f"warm-up must be a whole number of epochs, 0 or more, got {warmup!r}")
    return choose(name, SCHEDULES, "schedule", ScheduleError)


def epoch_lr(base: float, schedule: str, warmup: int, epoch: int, epochs: int) -> float:
    """The rate for 0-based `epoch` of `epochs`: the schedule's, climbing linearly from
    base / warmup to the base rate over the first `warmup` epochs."""
    factor = SCHEDULES[schedule](epoch, epochs)
    if epoch < warmup:
        factor *= (epoch + 1) / (warmup + 1)
    return base * factor
