"""The interleaved timer: every contestant runs in turn, round after round, under the same load.

After a warm-up (`calibrate`), every contestant runs one round in turn (`time_round`), the
order rotating, and this repeats. On a shared machine the load changes from second to
second; interleaving makes every contestant see the same weather. Each contestant's `times`
gets one seconds-per-step figure per repetition, which bench/summaries.py turns into speeds
and paired ratios. The step bench's contestants each take their turns in a process of their
own (bench/workers.py); `measure` only says whose turn it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from bench.contestants import Contestant


@dataclass
class Timing:
    repeats: int = 21
    round_seconds: float = 0.1  # one contestant's turn: short, so a pair sees the same load
    warmup_seconds: float = 0.5  # per contestant, before anything is recorded
    settle_seconds: float = 0.1  # idle before each round, untimed (see `measure`)
    wait_idle_seconds: float = 0.0  # at most this long before a round for other tenants to go quiet

    @classmethod
    def quick(cls, repeats: int | None = None, wait_idle_seconds: float = 0.0) -> "Timing":
        return cls(repeats=repeats or 5, round_seconds=0.05, warmup_seconds=0.2, settle_seconds=0.02,
                   wait_idle_seconds=wait_idle_seconds)


class Player(Protocol):
    """A contestant as the timer sees it: it times one round when asked (bench/workers.Worker)."""

    times: list

    def take_turn(self) -> float: ...


def measure(players: list[Player], timing: Timing) -> None:
    """Fill each player's `times` (seconds per step), interleaved round-robin.

    Each round starts after a short idle: OpenBLAS's and OpenMP's worker threads keep
    spinning for up to a tenth of a second after their last call, and without the pause the
    spinning threads of the previous contestant's process take the cores from the next one.
    """
    for r in range(timing.repeats):
        shift = r % len(players)  # rotate, so no contestant always runs right after another
        for p in players[shift:] + players[:shift]:
            time.sleep(timing.settle_seconds)
            wait_for_idle(timing.wait_idle_seconds)
            p.times.append(p.take_turn())


def wait_for_idle(limit_seconds: float, idle_needed: float = 0.9) -> None:
    """Wait (at most limit_seconds) until the machine's CPUs were `idle_needed` idle over a
    tenth of a second: on a shared machine, rounds then run in the gaps between other jobs.
    Linux only (/proc/stat); elsewhere it returns at once."""
    deadline = time.perf_counter() + limit_seconds
    while time.perf_counter() < deadline:
        before = _cpu_ticks()
        if before is None:
            return
        time.sleep(0.1)
        after = _cpu_ticks()
        busy, idle = after[0] - before[0], after[1] - before[1]
        if idle >= idle_needed * (busy + idle):
            return


def _cpu_ticks():
    """(busy, idle) jiffies of all CPUs since boot, or None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, idle


def calibrate(c: Contestant, timing: Timing) -> int:
    """Warm up for warmup_seconds; return how many steps fill one round."""
    c.step()
    c.sync()
    start, n = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < timing.warmup_seconds or n < 3:
        c.step()
        n += 1
        if n % 8 == 0 or elapsed > timing.warmup_seconds:
            c.sync()
    c.sync()
    per_step = (time.perf_counter() - start) / n
    return max(2, round(timing.round_seconds / per_step))


def time_round(c: Contestant, steps: int) -> float:
    c.sync()
    start = time.perf_counter()
    for _ in range(steps):
        c.step()
    c.sync()
    return (time.perf_counter() - start) / steps
