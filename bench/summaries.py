"""What a bench reports from the timed rounds: speeds, paired ratios and their noise, the machine.

Speeds are each contestant's best round (other tenants only ever slow a round down).
Ratios are paired: within one repetition the contestants ran back to back under the same
load, so each repetition gives one ratio, and the median of those is reported; their
interquartile range over the median (the ratio's `noise`) says whether the machine let the
comparison be made at all.
"""

from __future__ import annotations

import os
import statistics
import sys

from bench.contestants import Contestant


def spread(times: list[float]) -> float:
    """(max - min) / median of the per-repetition step times."""
    mid = statistics.median(times)
    return (max(times) - min(times)) / mid if mid else float("inf")


def best_speed(c: Contestant, batch_size: int) -> float:
    """Samples per second in the contestant's fastest round."""
    return batch_size / min(c.times)


def median_speed(c: Contestant, batch_size: int) -> float:
    return batch_size / statistics.median(c.times)


def paired_ratios(numerator: Contestant, denominator: Contestant) -> list[float]:
    """speed(numerator) / speed(denominator) in each repetition (they ran back to back)."""
    return [d / n for n, d in zip(numerator.times, denominator.times)]


def ratio(numerator: Contestant, denominator: Contestant) -> float:
    """The median of the paired per-repetition speed ratios."""
    return statistics.median(paired_ratios(numerator, denominator))


def ratio_noise(numerator: Contestant, denominator: Contestant) -> float:
    """Interquartile range / median of the paired ratios: 0 on a quiet machine."""
    ratios = paired_ratios(numerator, denominator)
    if len(ratios) < 4:
        return (max(ratios) - min(ratios)) / statistics.median(ratios)
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return (q3 - q1) / statistics.median(ratios)


def noisy_warning(noise: float, noisy_above: float) -> str:
    """The line under a paired ratio whose noise is above `noisy_above`."""
    return (f"NOISY: paired ratios vary by {100 * noise:.0f}% (over {100 * noisy_above:.0f}%): "
            "do not trust this figure (rerun on a quieter machine or with more --repeats)")


def thousands(samples_per_s: float) -> str:
    return f"{samples_per_s / 1000:.1f}k" if samples_per_s < 1e7 else f"{samples_per_s / 1e6:.0f}M"


def environment_lines(threads: int) -> list[str]:
    """Library versions, BLAS kernel and thread counts, and any environment that slows numpy."""
    import numpy as np

    lines = [f"python {sys.version.split()[0]}  numpy {np.__version__}  threads {threads}"]
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(f"  {pool['internal_api']} {pool.get('version', '')} kernel "
                         f"{pool.get('architecture', '?')}, {pool['num_threads']} threads")
    except ImportError:
        lines.append("  (threadpoolctl not installed: BLAS kernel not shown)")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            lines.append(f"  WARNING: {var}={os.environ[var]} is set and can slow numpy's BLAS")
    try:
        import torch

        gpu = f"cuda {torch.version.cuda} on {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "no cuda"
        lines.append(f"torch {torch.__version__}  threads {torch.get_num_threads()}  {gpu}")
    except ImportError:
        lines.append("torch not installed")
    try:
        import cupy

        lines.append(f"cupy {cupy.__version__}")
    except ImportError:
        pass
    return lines
