"""Where a training step's device time goes, op by op, on any backend (made for the GPU).

Every op a layer, the loss or the optimizer runs is asked for through the op table
(model/ops.py), so wrapping each entry of the table in a pair of timers profiles the real
step with nothing rebuilt: on a GPU the timers are CUDA events recorded on the stream around
each op (the device's own time, not the host's launch time), elsewhere host clocks after a
synchronize. What no op covers (the batch gather, the bias gradient's sum, the tally) is
`rest`; `products` (bench/train_step.py's products-only ceiling) is printed beside it.

    python bench/op_profile.py --backends cupy --batch-sizes 4096      # on a GPU
    python bench/op_profile.py --backends numpy --batch-sizes 64 --steps 20
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import BACKEND_CHOICES, OneLineParser, add_step_arguments, limit_threads, networks_from, positive_int, run_main  # noqa: E402,E501
from bench.contestants import POOL_BATCHES, Spec, products_contestant, sgd_network  # noqa: E402


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    add_step_arguments(p, batch_sizes="64,4096")
    p.add_argument("--backends", default="cupy", help=f"comma-separated, from {', '.join(BACKEND_CHOICES)} "
                                                      "(default: cupy)")
    p.add_argument("--steps", type=positive_int, default=200, help="timed steps per batch size (default 200)")
    a = p.parse_args(argv)
    unknown = [b for b in a.backends.split(",") if b not in BACKEND_CHOICES]
    if unknown:
        p.error(f"unknown backend(s) {', '.join(unknown)}: use {', '.join(BACKEND_CHOICES)}")
    return a


class Clock:
    """Timers for one backend: CUDA events on cupy and torch-cuda, host clocks elsewhere."""

    def __init__(self, backend):
        self.backend, self.pending = backend, []  # (op name, start, end), read once the steps are done
        self.event = _event_maker(backend)

    def mark(self):
        if self.event is None:
            self.backend.synchronize()
            return time.perf_counter()
        event = self.event()
        event.record()
        return event

    def seconds(self, start, end) -> float:
        if self.event is None:
            return end - start
        end.synchronize()
        return _elapsed_ms(start, end) / 1000

    def timed(self, name: str, fn):
        def run(*args):
            start = self.mark()
            out = fn(*args)
            self.pending.append((name, start, self.mark()))
            return out
        return run


def _event_maker(backend):
    if backend.name == "cupy":
        import cupy

        return cupy.cuda.Event
    if backend.name == "torch" and backend.device_name.startswith("cuda"):
        import torch

        return lambda: torch.cuda.Event(enable_timing=True)
    return None


def _elapsed_ms(start, end) -> float:
    if hasattr(start, "elapsed_time"):  # torch
        return start.elapsed_time(end)
    import cupy

    return cupy.cuda.get_elapsed_time(start, end)


def profile(backend, spec: Spec, steps: int) -> tuple[float, dict, float]:
    """(device seconds per step, {op: seconds per step}, products-only seconds per step)."""
    from xpnet.model.ops import OPS, op

    clock = Clock(backend)
    timed = dataclasses.replace(backend, kernels={name: clock.timed(name, op(backend, name)) for name in OPS})
    net, opt, batches = sgd_network(timed, spec)
    for i in range(5):  # warm-up: kernels compile, pools fill
        net.train_step(*batches[i % POOL_BATCHES], opt)
    clock.pending.clear()
    start = clock.mark()
    for i in range(steps):
        net.train_step(*batches[i % POOL_BATCHES], opt)
    step = clock.seconds(start, clock.mark()) / steps
    parts = defaultdict(float)
    for name, a, b in clock.pending:
        parts[name] += clock.seconds(a, b) / steps
    ceiling = products_contestant(_library(backend), backend.device_name, spec)
    ceiling.step()
    ceiling.sync()
    begin = time.perf_counter()
    for _ in range(steps):
        ceiling.step()
    ceiling.sync()
    return step, dict(parts), (time.perf_counter() - begin) / steps


def _library(backend) -> str:
    return {"cupy": "cupy", "torch": "torch"}.get(backend.name, "numpy")


def main(argv=None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    from xpnet.backends import BackendError, resolve_backend

    ran = 0
    for label in args.backends.split(","):
        try:
            backend = resolve_backend(*BACKEND_CHOICES[label], args.dtype)
        except BackendError as exc:
            print(f"skipping {label}: {exc}")
            continue
        for network in networks_from(args.network):
            for batch_size in args.batch_sizes:
                spec = Spec(args.layers, network, batch_size, args.dtype)
                step, parts, ceiling = profile(backend, spec, args.steps)
                ran += 1
                print(f"\n== {label}, {spec.describe()}, batch {batch_size}: step {step * 1e6:.0f} us, "
                      f"products alone {ceiling * 1e6:.0f} us ({ceiling / step:.0%} of the step)")
                for name, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
                    print(f"  {name:<24}{seconds * 1e6:>9.1f} us {seconds / step:>7.1%}")
                rest = step - sum(parts.values())
                print(f"  {'rest (not an op)':<24}{rest * 1e6:>9.1f} us {rest / step:>7.1%}")
    return 0 if ran else 1


if __name__ == "__main__":
    run_main(main)
