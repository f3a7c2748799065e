"""Memory of xpnet's training step: no growth over many steps, and the peak of one step.

Runs --steps training steps (`Network.train_step` with SGD) on the numpy backend and
samples, every tenth of the run, the process's resident memory (RSS) and the bytes
tracemalloc sees allocated (numpy reports its buffers to tracemalloc). After the first
tenth, which holds the one-time allocations (work arrays, allocator pools), neither may
keep climbing: the script prints GROWTH and exits non-zero if the traced memory grows by
more than --tolerance. It also prints the peak traced memory inside a single step, above
what the network and data already hold.

    python bench/memory.py
    python bench/memory.py --network sigmoid-quadratic --batch-sizes 1024 --steps 2000
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import (  # noqa: E402  (needs the path above)
    OneLineParser, add_step_arguments, networks_from, non_negative_float, positive_int, run_main,
)
from bench.contestants import Spec, numpy_backend, xpnet_contestant  # noqa: E402

MIB = 1 << 20


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    add_step_arguments(p, batch_sizes="64,1024")
    p.add_argument("--steps", type=positive_int, default=1000, help="training steps per run (default: 1000)")
    p.add_argument("--tolerance", type=non_negative_float, default=0.5,
                   help="MiB of traced growth after the first tenth that counts as a leak (default: 0.5)")
    p.add_argument("--plain", action="store_true", help="the plain xp ops (numpy kernels off)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    backend = numpy_backend(args.dtype, args.threads, plain=args.plain)
    print(f"numpy backend, {'plain xp' if args.plain else 'numpy_kernels'}, {args.steps} steps per run")
    print(f"{'network':<18}{'batch':>6}{'rss start':>11}{'rss end':>9}{'traced start':>14}"
          f"{'traced end':>12}{'growth':>9}{'step peak':>11}  verdict")
    leaks = 0
    for network in networks_from(args.network):
        for batch_size in args.batch_sizes:
            spec = Spec(args.layers, network, batch_size, args.dtype)
            leaks += report(network, batch_size, *run(backend, spec, args.steps), args.tolerance)
    return 1 if leaks else 0


def run(backend, spec: Spec, steps: int):
    """(RSS samples, traced-bytes samples, peak traced bytes of one step above its start)."""
    tracemalloc.start()
    step = xpnet_contestant(backend, spec).step
    step()
    rss, traced = [], []
    every = max(1, steps // 10)
    for i in range(steps):
        step()
        if (i + 1) % every == 0:
            rss.append(_rss_bytes())
            traced.append(tracemalloc.get_traced_memory()[0])
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    step()
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    return rss, traced, peak


def report(network: str, batch_size: int, rss: list, traced: list, peak: int, tolerance: float) -> int:
    growth = (max(traced[1:]) - traced[0]) / MIB if len(traced) > 1 else 0.0
    leak = growth > tolerance
    print(f"{network:<18}{batch_size:>6}{rss[0] / MIB:>10.1f}M{rss[-1] / MIB:>8.1f}M{traced[0] / MIB:>13.2f}M"
          f"{traced[-1] / MIB:>11.2f}M{growth:>8.2f}M{peak / MIB:>10.2f}M  {'GROWTH' if leak else 'flat'}")
    return int(leak)


def _rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak from resource)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    run_main(main)
