"""What the bench scripts share: the networks, the contestants, the interleaved timer, the table.

A contestant is one way of doing a training step on one batch size: xpnet through a
backend, PyTorch eager with the same network, or only the step's matrix products (the
ceiling no training step can beat on that library). Each is a `step` callable plus a `sync`
that waits for queued device work, so host clocks measure what the device did.

Timing is interleaved: after a warm-up, every contestant runs one round in turn, the order
rotating, and this repeats. On a shared machine the load changes from second to second;
interleaving makes every contestant see the same weather. Speeds are each contestant's best
round (other tenants only ever slow a round down). Ratios are paired: within one repetition
the contestants ran back to back under the same load, so each repetition gives one ratio,
and the median of those is reported; their interquartile range over the median (the
ratio's `noise`) says whether the machine let the comparison be made at all.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

# name on the command line -> (backend name, device) for backends.resolve_backend
BACKEND_CHOICES = {
    "numpy": ("numpy", "cpu"),
    "torch": ("torch", "cpu"),
    "cupy": ("cupy", "cuda"),
    "torch-cuda": ("torch", "cuda"),
    "array_api_strict": ("array_api_strict", "cpu"),
}
DEFAULT_BACKENDS = "numpy,torch,cupy,torch-cuda"

# --network name -> (hidden activation, output activation, loss)
NETWORKS = {
    "relu-ce": ("relu", "identity", "cross_entropy"),
    "sigmoid-quadratic": ("sigmoid", "sigmoid", "quadratic"),
}
LR = 0.01  # small enough that thousands of steps on random data never diverge
POOL_BATCHES = 8  # distinct batches cycled through, so no step reuses the last one's cache


def limit_threads(threads: int) -> None:
    """Pin every CPU math library to `threads` threads; call before numpy or torch load."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def numpy_backend(dtype: str, threads: int, plain: bool = False):
    """The numpy backend with BLAS limited to `threads`; `plain` turns its kernels off."""
    import dataclasses

    from xpnet.backends import resolve_backend

    limit_threads(threads)
    backend = resolve_backend("numpy", "cpu", dtype)
    return dataclasses.replace(backend, kernels={}) if plain else backend


def add_step_arguments(p, batch_sizes: str = "64,256,1024",
                       threads_help: str = "BLAS threads (default: all cores)") -> None:
    """The options every step benchmark takes: batch sizes, layers, network, dtype, threads."""
    p.add_argument("--batch-sizes", type=positive_ints, default=batch_sizes,
                   help=f"comma-separated (default: {batch_sizes})")
    p.add_argument("--layers", type=layer_sizes, default="784,512,256,10",
                   help="layer sizes, input first (default: 784,512,256,10)")
    p.add_argument("--network", default="both", choices=[*NETWORKS, "both"],
                   help="relu-ce: ReLU hidden, linear output, softmax cross-entropy; sigmoid-quadratic: "
                        "sigmoid hidden and output, quadratic loss (the course's); both (default)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="float dtype (default: float32)")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count(), help=threads_help)


# -- the command line: bad input is one line and exit 2 (usage) or 1 (found later), never a traceback
class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, as `xpnet`'s own (train/cli.py; not imported
    from there, as that loads numpy before a bench has set its thread count)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {text}")
    return value


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of whole numbers of 1 or more, like 64,256,1024."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} holds no numbers: give at least one")
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"each must be at least 1, got {text!r}")
    return values


def layer_sizes(text: str) -> tuple[int, ...]:
    """Layer sizes, input first, like 784,32,10: at least an input and an output."""
    try:
        sizes = positive_ints(text)
    except argparse.ArgumentTypeError:
        sizes = []
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"give two or more sizes of at least 1, input first, like 784,32,10; "
                                         f"got {text!r}")
    return tuple(sizes)


def run_main(main) -> None:
    """Run a bench's `main` and exit with what it returns. An XpnetError (bad input only found
    later: an unusable backend, bad data) ends it in one line; anything else is a bug and keeps
    its traceback."""
    try:
        code = main()
    except Exception as exc:
        from xpnet.backends import XpnetError  # only now: numpy must load after a bench sets its threads

        if not isinstance(exc, XpnetError):
            raise
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {one_line(str(exc))}")
    sys.exit(code)


def networks_from(choice: str) -> list[str]:
    return list(NETWORKS) if choice == "both" else [choice]


# -- contestants ------------------------------------------------------------------------------
@dataclass
class Contestant:
    """One way of doing the step: `step()` does one, `sync()` waits for the device."""

    name: str
    step: Callable[[], None]
    sync: Callable[[], None] = lambda: None
    times: list = field(default_factory=list)  # seconds per step, one entry per repetition


@dataclass(frozen=True)
class Spec:
    """The network and batch a contestant trains: sizes, activations, loss, dtype."""

    layers: tuple
    network: str
    batch_size: int
    dtype: str

    @property
    def activation(self) -> str:
        return NETWORKS[self.network][0]

    @property
    def output(self) -> str:
        return NETWORKS[self.network][1]

    @property
    def loss(self) -> str:
        return NETWORKS[self.network][2]

    def describe(self) -> str:
        sizes = "-".join(str(n) for n in self.layers)
        return f"{self.network}: {sizes}, {self.activation}/{self.output}, {self.loss}, {self.dtype}"


def host_batches(spec: Spec, seed: int = 0):
    """Host inputs, one-hot targets and labels for POOL_BATCHES batches, from one seeded generator."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = POOL_BATCHES * spec.batch_size
    X = rng.standard_normal((n, spec.layers[0]))
    labels = rng.integers(0, spec.layers[-1], size=n)
    T = np.eye(spec.layers[-1])[labels]
    return X, T, labels


def xpnet_contestant(backend, spec: Spec, name: str = "xpnet", fold: bool | None = None) -> Contestant:
    """xpnet's own training step, `Network.train_step` with SGD, through `backend`; `fold`
    forces SGD's update into (True) or out of (False) the products, None is the default."""
    from xpnet.model import Network
    from xpnet.train.optimizers import SGD

    net = Network.from_sizes(list(spec.layers), backend, activation=spec.activation,
                             output=spec.output, loss=spec.loss, seed=0)
    opt = SGD(backend, net.params, LR, fold=fold)
    X, T, _ = host_batches(spec)
    x, t = backend.asarray(X), backend.asarray(T)  # moved to the device once
    B = spec.batch_size
    batches = itertools.cycle([(x[i * B:(i + 1) * B, ...], t[i * B:(i + 1) * B, ...])
                               for i in range(POOL_BATCHES)])

    def step():
        xb, tb = next(batches)
        net.train_step(xb, tb, opt)

    return Contestant(name, step, backend.synchronize)


def xpnet_graph_contestant(backend, spec: Spec, name: str = "xpnet graph") -> Contestant:
    """xpnet's training loop on a GPU with --cuda-graphs: each step one replay of a recorded
    step that gathers its batch by index and adds to the epoch's totals (train/graphs.py).
    `failure` on the returned step says why recording failed, if it did."""
    import numpy as np

    from xpnet.model import Network
    from xpnet.train.graphs import GraphedSteps
    from xpnet.train.loop import DeviceData
    from xpnet.train.optimizers import SGD

    net = Network.from_sizes(list(spec.layers), backend, activation=spec.activation,
                             output=spec.output, loss=spec.loss, seed=0)
    X, T, _ = host_batches(spec)
    data = DeviceData(backend.asarray(X), backend.asarray(T), X.shape[0], spec.loss == "cross_entropy", backend)
    graphed = GraphedSteps(net, SGD(backend, net.params, LR), data, spec.batch_size)
    order = backend.asarray(np.arange(X.shape[0]))
    firsts = itertools.cycle(range(0, X.shape[0], spec.batch_size))

    def step():
        graphed.step(order, next(firsts))

    step.graphed = graphed
    return Contestant(name, step, backend.synchronize)


def torch_eager_contestant(spec: Spec, device: str, name: str = "torch eager") -> Contestant:
    """The same network written the usual PyTorch way: nn.Linear stack, loss, optim.SGD."""
    import torch
    import torch.nn.functional as F

    dtype = getattr(torch, spec.dtype)
    acts = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "identity": torch.nn.Identity}
    layers = []
    for i, (n_in, n_out) in enumerate(zip(spec.layers, spec.layers[1:])):
        last = i == len(spec.layers) - 2
        layers += [torch.nn.Linear(n_in, n_out), acts[spec.output if last else spec.activation]()]
    model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    X, T, labels = host_batches(spec)
    x = torch.tensor(X, dtype=dtype, device=device)
    t = torch.tensor(T, dtype=dtype, device=device)
    y = torch.tensor(labels, device=device)
    B = spec.batch_size
    batches = itertools.cycle([(x[i * B:(i + 1) * B], t[i * B:(i + 1) * B], y[i * B:(i + 1) * B])
                               for i in range(POOL_BATCHES)])

    def step():
        xb, tb, yb = next(batches)
        out = model(xb)
        if spec.loss == "cross_entropy":
            loss = F.cross_entropy(out, yb)
        else:
            loss = 0.5 * F.mse_loss(out, tb, reduction="sum") / B
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = (lambda: torch.cuda.synchronize(device)) if str(device).startswith("cuda") else (lambda: None)
    return Contestant(name, step, sync)


def products_contestant(library: str, device: str, spec: Spec, name: str = "products") -> Contestant:
    """Only the step's matrix products, into preallocated outputs: forward x @ W.T per layer,
    dW = dz.T @ x per layer, dx = dz @ W for every layer but the first."""
    lib, sync, make = _array_library(library, device, spec.dtype)
    B, sizes = spec.batch_size, spec.layers
    W = [make((n_out, n_in)) for n_in, n_out in zip(sizes, sizes[1:])]
    x = [make((B, n_in)) for n_in in sizes[:-1]]  # each layer's input
    z = [make((B, n_out)) for n_out in sizes[1:]]  # each layer's output, doubling as its dz
    dW = [make(w.shape) for w in W]
    dx = [make(h.shape) for h in x]

    def step():
        for i in range(len(W)):
            lib.matmul(x[i], W[i].T, out=z[i])
        for i in range(len(W) - 1, -1, -1):
            lib.matmul(z[i].T, x[i], out=dW[i])
            if i:
                lib.matmul(z[i], W[i], out=dx[i])

    return Contestant(name, step, sync)


def _array_library(library: str, device: str, dtype: str):
    """(module with matmul(out=), sync, make(shape) -> random array) for numpy, cupy or torch."""
    import numpy as np

    rng = np.random.default_rng(1)

    def host(shape):
        return rng.standard_normal(shape).astype(dtype)

    if library == "numpy":
        return np, (lambda: None), host
    if library == "cupy":
        import cupy as cp

        dev = cp.cuda.Device(int(device.split(":")[1]) if ":" in device else 0)
        return cp, dev.synchronize, lambda shape: cp.asarray(host(shape))
    if library == "torch":
        import torch

        sync = (lambda: torch.cuda.synchronize(device)) if device.startswith("cuda") else (lambda: None)
        return torch, sync, lambda shape: torch.tensor(host(shape), device=device)
    raise ValueError(f"no products ceiling for library {library!r}")


def ceiling_library(backend) -> str | None:
    """Which library's matmul the backend's products run on (None: no ceiling measurable)."""
    return {"numpy": "numpy", "cupy": "cupy", "torch": "torch"}.get(backend.name)


# -- the interleaved timer ----------------------------------------------------------------------
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


def measure(contestants: list[Contestant], timing: Timing) -> None:
    """Fill each contestant's `times` (seconds per step), interleaved round-robin.

    Each round starts after a short idle: OpenBLAS's and OpenMP's worker threads keep
    spin for up to a tenth of a second after their last call, and without the pause the spinning
    threads of the previous contestant's library steal the cores from the next one.
    """
    steps = {c.name: _calibrate(c, timing) for c in contestants}
    for r in range(timing.repeats):
        shift = r % len(contestants)  # rotate, so no contestant always runs right after another
        for c in contestants[shift:] + contestants[:shift]:
            time.sleep(timing.settle_seconds)
            wait_for_idle(timing.wait_idle_seconds)
            c.times.append(_round(c, steps[c.name]))


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


def _calibrate(c: Contestant, timing: Timing) -> int:
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


def _round(c: Contestant, steps: int) -> float:
    c.sync()
    start = time.perf_counter()
    for _ in range(steps):
        c.step()
    c.sync()
    return (time.perf_counter() - start) / steps


# -- summaries ------------------------------------------------------------------------------------
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
