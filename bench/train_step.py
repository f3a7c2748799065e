"""Training-step speed: xpnet on each backend against PyTorch eager and the products-only ceiling.

For every network, backend and batch size this times these contestants on the same float
dtype and thread count, each in a process of its own, taking turns (bench/workers.py):
  products     only the step's matrix products on the backend's own library (the ceiling),
  xpnet        Network.train_step with SGD (update folded into the products) through the backend,
  xpnet graph  on a GPU, the training loop's --cuda-graphs step: one replay of a recorded
               step that also gathers its batch by index and adds to the epoch's totals,
  torch eager  the same network as an nn.Linear stack with torch.optim.SGD, same device,
and prints samples/s (best round, and the median), each one's ratio to the ceiling and to
PyTorch eager (the median of the ratios paired within each repetition), and the noise of
those ratios (interquartile range / median). A row whose noise is above --noisy-above says
NOISY instead of pretending to a clean number.

    python bench/train_step.py                                   # all usable backends
    python bench/train_step.py --backends numpy --network relu-ce --quick
    python bench/train_step.py --layers 784,32,10 --batch-sizes 32  # a tiny network
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import (  # noqa: E402  (needs the path above)
    BACKEND_CHOICES, DEFAULT_BACKENDS, OneLineParser, add_step_arguments, limit_threads, networks_from,
    non_negative_float, positive_int, run_main,
)
from bench.contestants import Spec, ceiling_library  # noqa: E402
from bench.timing import Timing, measure  # noqa: E402
from bench.workers import TOLERATED, Recipe, Worker, WorkerFailed, start  # noqa: E402
from bench.summaries import best_speed, environment_lines, median_speed, ratio, ratio_noise, thousands  # noqa: E402


@dataclass
class Config:
    backends: list  # names from BACKEND_CHOICES, in the order asked
    batch_sizes: list
    layers: tuple
    networks: list  # keys of NETWORKS
    dtype: str = "float32"
    threads: int = 1  # for numpy's BLAS and torch alike
    timing: Timing = dataclasses.field(default_factory=Timing)
    noisy_above: float = 0.10  # ratio noise above which a row's ratios are flagged untrustworthy
    reference: bool = False  # also time xpnet with the backend's kernels switched off
    unfolded: bool = False  # also time xpnet with SGD's update kept out of the products
    momentum: float = 0.0  # SGD's momentum, every contestant's
    weight_decay: float = 0.0  # L2's lambda, every contestant's
    tf32: bool = False  # float32 products in TF32 on a GPU, for every contestant alike

    def spec(self, network: str, batch_size: int) -> Spec:
        return Spec(self.layers, network, batch_size, self.dtype, self.momentum, self.weight_decay)


def parse_args(argv=None) -> Config:
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default=DEFAULT_BACKENDS,
                   help=f"comma-separated, from {', '.join(BACKEND_CHOICES)}; unusable ones are "
                        f"skipped with the reason (default: {DEFAULT_BACKENDS})")
    add_step_arguments(p, threads_help="CPU threads for numpy's BLAS and for torch alike (default: all cores)")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="interleaved repetitions per contestant (default: 21, or 5 with --quick)")
    p.add_argument("--quick", action="store_true", help="short warm-up and rounds: a smoke test, noisier numbers")
    p.add_argument("--wait-idle", type=non_negative_float, default=0.0, metavar="SECONDS",
                   help="on a shared machine, wait up to SECONDS before each round for the CPUs to be "
                        "90%% idle (Linux; default: 0, no waiting)")
    p.add_argument("--noisy-above", type=non_negative_float, default=0.10,
                   help="noise of the paired ratios (interquartile range / median) above which a row is "
                        "flagged NOISY (default: 0.10)")
    p.add_argument("--unfolded", action="store_true",
                   help="also time xpnet with SGD's update not folded into the products "
                        "(gradients, then the step), where the backend folds it")
    p.add_argument("--momentum", type=non_negative_float, default=0.0,
                   help="SGD's momentum for xpnet and PyTorch alike (default: 0, plain SGD)")
    p.add_argument("--weight-decay", type=non_negative_float, default=0.0,
                   help="L2 weight decay for xpnet and PyTorch alike (default: 0; the letters job's is 0.0001)")
    p.add_argument("--reference", action="store_true",
                   help="also time xpnet with the backend's fused kernels off (the plain xp ops)")
    p.add_argument("--tf32", action="store_true",
                   help="GPU float32 products in TF32 for every contestant (xpnet, the ceiling, PyTorch)")
    a = p.parse_args(argv)
    timing = (Timing.quick(a.repeats, a.wait_idle) if a.quick
              else Timing(repeats=a.repeats or 21, wait_idle_seconds=a.wait_idle))
    unknown = [b for b in a.backends.split(",") if b not in BACKEND_CHOICES]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}: use {', '.join(BACKEND_CHOICES)}")
    return Config(backends=a.backends.split(","), batch_sizes=a.batch_sizes,
                  layers=a.layers, networks=networks_from(a.network), dtype=a.dtype,
                  threads=a.threads, timing=timing, noisy_above=a.noisy_above, reference=a.reference,
                  unfolded=a.unfolded, tf32=a.tf32, momentum=a.momentum, weight_decay=a.weight_decay)


def main(argv=None) -> None:
    config = parse_args(argv)
    limit_threads(config.threads)  # before numpy or torch load their thread pools
    backends = usable_backends(config)
    if not backends:
        sys.exit(f"none of the backends asked for ({', '.join(config.backends)}) can run here")
    print("\n".join(environment_lines(config.threads)))
    for network in config.networks:
        print()
        tf32 = ", TF32 products" if config.tf32 else ""
        print(f"== {config.spec(network, 0).describe()}{tf32} ==")
        print(HEADER)
        for label, backend in backends:
            for batch_size in config.batch_sizes:
                workers, notes = start_workers(recipes(label, backend, config.spec(network, batch_size), config),
                                               config.timing)
                try:
                    measure(workers, config.timing)
                finally:
                    for w in workers:
                        w.close()
                print_rows(label, batch_size, workers, config.noisy_above)
                for note in notes + [f"{w.name}: {w.note}" for w in workers if w.note]:
                    print(f"{INDENT}{note}")


def usable_backends(config: Config) -> list:
    """(label, Backend) for each asked backend that runs here; the others are named with why."""
    from xpnet.backends import BackendError, resolve_backend

    found = []
    for label in config.backends:
        name, device = BACKEND_CHOICES[label]
        try:
            found.append((label, resolve_backend(name, device, config.dtype, tf32=config.tf32)))
        except BackendError as exc:
            print(f"skipping {label}: {exc}")
    return found


def recipes(label: str, backend, spec: Spec, config: Config) -> list[Recipe]:
    """products (when the library has a matmul with out=), xpnet, [graph, unfolded, plain-xp], torch eager."""
    def recipe(kind, name=None, **how):
        return Recipe(kind, name or kind, label, spec, config.threads, config.tf32, **how)

    made = [recipe("products")] if ceiling_library(backend) else []
    made.append(recipe("xpnet"))
    if backend.capture_fn is not None:  # a GPU: the loop's --cuda-graphs step too
        made.append(recipe("xpnet graph"))
    if config.unfolded and "matmul_add" in backend.kernels:
        made.append(recipe("xpnet", "xpnet unfolded", fold=False))
    if config.reference and backend.kernels:
        made.append(recipe("xpnet", "xpnet plain-xp", plain=True))
    return made + [recipe("torch eager")]


def start_workers(wanted: list[Recipe], timing: Timing) -> tuple[list[Worker], list[str]]:
    """One process per contestant, started one after another. Without a products ceiling or
    PyTorch on that device the row still runs, and says so; any other failure is a bug."""
    workers, notes = [], []
    if wanted[0].kind != "products":
        notes.append(f"no products ceiling for {wanted[0].backend}")
    for recipe in wanted:
        try:
            workers.append(start(recipe, timing))
        except WorkerFailed as exc:
            if recipe.kind != "torch eager" or exc.kind not in TOLERATED:
                for w in workers:
                    w.close()
                raise WorkerFailed(f"{recipe.name} on {recipe.backend}: {exc}", exc.kind) from None
            notes.append(f"no torch eager on {recipe.backend}: {str(exc).splitlines()[0]}")
    return workers, notes


LABEL = 17  # wide enough for array_api_strict
HEADER = (f"{'backend':<{LABEL}}{'batch':>6}  {'contestant':<16}{'samples/s':>10}{'median':>9}"
          f"{'x products':>12}{'x torch':>9}{'noise':>7}")
INDENT = " " * (LABEL + 8)


def print_rows(label: str, batch_size: int, contestants: list[Worker], noisy_above: float) -> None:
    by_name = {c.name: c for c in contestants}
    ceiling, eager = by_name.get("products"), by_name.get("torch eager")
    noisy = []
    for c in contestants:
        vs_ceiling = f"{ratio(c, ceiling):.2f}" if ceiling else "-"
        vs_eager = f"{ratio(c, eager):.2f}" if eager else "-"
        noise = max([ratio_noise(c, other) for other in (ceiling, eager) if other and other is not c], default=0.0)
        if noise > noisy_above:
            noisy.append(c.name)
        print(f"{label:<{LABEL}}{batch_size:>6}  {c.name:<16}{thousands(best_speed(c, batch_size)):>10}"
              f"{thousands(median_speed(c, batch_size)):>9} {vs_ceiling:>11}{vs_eager:>9}{noise:>6.0%}")
    if noisy:
        print(f"{INDENT}NOISY: ratio noise above {noisy_above:.0%} for {', '.join(noisy)}: "
              f"do not trust these ratios (rerun on a quieter machine or with more --repeats)")


if __name__ == "__main__":
    run_main(main)
