"""The convolutional network's training step: xpnet against PyTorch eager, on the CPU or a GPU.

Both train the `--preset cnn` network (1x28x28 -> conv16x3 -> maxpool2 -> conv32x3 ->
maxpool2 -> conv64x3 -> maxpool2 -> dropout -> 512 -> 26, ReLU, softmax cross-entropy,
Adam with L2 on the weights) on the same host-made batches, in float32 with the same number of threads, each its
own way: PyTorch's threads share each operation, xpnet's split the batch (`xpnet train
--threads N`, train/threads.py), with one BLAS thread each. Each contestant runs in a process of its
own (numpy's BLAS threads spin after a call and would slow torch's in the same process), the two taking
turns, round after round, so both see the same load; the ratio is the median of the ratios
paired within each round, and its noise (interquartile range / median) is printed beside it.
Each turn is timed twice, by the wall clock and by the process's CPU time: on a machine that
other jobs load, the CPU-time ratio is the steadier one (waiting for a core does not count).
On a GPU (`--device cuda`) xpnet runs on cupy, eager (no CUDA graph), and PyTorch on CUDA; each
turn ends by waiting for the device, and only the wall clock counts (the host's CPU time
there is mostly launching kernels, not the work).

    python bench/cnn_step.py                       # batch 64 and 256, all cores
    python bench/cnn_step.py --batch-sizes 64 --threads 1 --rounds 5
    python bench/cnn_step.py --device cuda         # cupy against torch on CUDA
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import (OneLineParser, limit_threads, non_negative_float, positive_float, positive_int,  # noqa: E402
                           positive_ints, run_main)
from bench.contestants import decayed_weights, torch_sync  # noqa: E402

LAYERS = ["conv16x3", "pool2", "conv32x3", "pool2", "conv64x3", "pool2", "dropout0.25", 512]  # --preset cnn's
CLASSES, SIDE, LR, WEIGHT_DECAY = 26, 28, 2e-3, 1e-4  # (a test holds these to the preset)
CONTESTANTS = ("xpnet", "torch")
BACKENDS = {"cpu": "numpy", "cuda": "cupy"}  # the device -> xpnet's backend on it


def batches(batch_size: int, count: int = 8):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.random((count * batch_size, SIDE * SIDE), dtype=np.float32)
    labels = rng.integers(0, CLASSES, count * batch_size)
    return X, labels


def xpnet_step(batch_size: int, threads: int, device: str = "cpu"):
    """xpnet's step as `xpnet train` takes it, and the wait for its device: on more than one CPU
    thread, the batch split across them (train/threads.py), BLAS keeping to one thread each."""
    import itertools

    import numpy as np

    from xpnet import resolve_backend
    from xpnet.model import Network
    from xpnet.train.optimizers import make_optimizer
    from xpnet.train.threads import ThreadedStep

    backend = resolve_backend(BACKENDS[device], device, "float32")
    net = Network.from_layers(LAYERS, (1, SIDE, SIDE), CLASSES, backend, seed=0)
    opt = make_optimizer("adam", backend, net.params, LR, WEIGHT_DECAY)
    X, labels = batches(batch_size)
    T = np.eye(CLASSES, dtype=np.float32)[labels]
    pool = itertools.cycle([(backend.asarray(X[i:i + batch_size]), backend.asarray(T[i:i + batch_size]))
                            for i in range(0, len(X), batch_size)])
    if threads == 1 or device != "cpu":
        return (lambda: net.train_step(*next(pool), opt)), backend.synchronize
    split = ThreadedStep(net, threads)
    split.limit_blas()  # from here on, for this worker process's life
    return (lambda: split(net, *next(pool), opt, batch_size)), backend.synchronize


def torch_model(layers=LAYERS):
    """PyTorch's copy of the network xpnet builds from the same words: each of xpnet's layers,
    by its description and input shape, becomes PyTorch's module (so nothing parses the words
    twice). 3x3-style convolutions keep their size (`same`, stride 1) or pad nothing (`valid`)."""
    from torch import nn

    from xpnet import resolve_backend
    from xpnet.model import Network

    net = Network.from_layers(layers, (1, SIDE, SIDE), CLASSES, resolve_backend("numpy"), seed=0)
    modules = []
    for layer in net.layers:
        d, channels = layer.describe(), layer.in_shape[0]
        if d["kind"] == "conv":
            if d["padding"] == "same" and d["stride"] != 1:
                raise ValueError(f"{d}: PyTorch pads a strided `same` convolution otherwise; not benched")
            padding = [k // 2 for k in d["kernel"]] if d["padding"] == "same" else 0
            modules.append(nn.Conv2d(channels, d["filters"], d["kernel"], d["stride"], padding=padding))
        elif d["kind"] in ("maxpool", "avgpool"):
            modules.append((nn.MaxPool2d if d["kind"] == "maxpool" else nn.AvgPool2d)(d["size"]))
        elif d["kind"] == "dropout":
            modules.append(nn.Dropout(d["rate"]))
        elif d["kind"] == "flatten":
            modules.append(nn.Flatten())
        else:
            modules.append(nn.Linear(channels, d["units"]))
        if d.get("activation") == "relu":
            modules.append(nn.ReLU())
        elif d.get("activation") not in (None, "identity"):
            raise ValueError(f"{d}: only ReLU networks are benched")
    return nn.Sequential(*modules)


def torch_step(batch_size: int, threads: int, device: str = "cpu"):
    import itertools

    import torch
    from torch import nn

    model = torch_model().to(device)
    opt = torch.optim.Adam(decayed_weights(model, WEIGHT_DECAY), lr=LR)
    X, labels = batches(batch_size)
    x, y = torch.tensor(X, device=device).reshape(-1, 1, SIDE, SIDE), torch.tensor(labels, device=device)
    pool = itertools.cycle([(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(X), batch_size)])

    def step():
        xb, yb = next(pool)
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, torch_sync(device)


def worker(name: str, batch_size: int, threads: int, seconds: float, device: str) -> None:
    """One round in this process: warm up, then steps for about `seconds` and the wait for the
    device to finish them; prints samples per second of wall time and per second of this
    process's CPU time (all its threads)."""
    step, sync = {"xpnet": xpnet_step, "torch": torch_step}[name](batch_size, threads, device)
    for _ in range(3):
        step()
    sync()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    sync()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(json.dumps({"wall": steps * batch_size / wall, "cpu": steps * batch_size / cpu}))


def one_round(name: str, batch_size: int, threads: int, seconds: float, device: str) -> dict:
    command = [sys.executable, __file__, "--worker", name, "--batch-sizes", str(batch_size),
               "--threads", str(threads), "--seconds", str(seconds), "--device", device]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired(speeds: dict, clock: str) -> tuple:
    """The median of the rounds' xpnet/torch ratios by one clock, and its noise (IQR / median)."""
    ratios = sorted(x[clock] / t[clock] for x, t in zip(speeds["xpnet"], speeds["torch"]))
    median = statistics.median(ratios)
    if len(ratios) == 1:
        return median, None  # one round measures no spread
    q = statistics.quantiles(ratios, n=4)
    return median, (q[2] - q[0]) / median


def main() -> int:
    p = OneLineParser(prog="cnn_step.py", description=__doc__.split("\n")[0])
    p.add_argument("--batch-sizes", type=positive_ints, default="64,256", help="comma-separated (default: 64,256)")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count(),
                   help="threads each contestant uses: torch's own, xpnet's split batch (default: all cores)")
    p.add_argument("--rounds", type=positive_int, default=7, help="turns each contestant takes (default: 7)")
    p.add_argument("--seconds", type=positive_float, default=2.0, help="timed seconds per turn (default: 2)")
    p.add_argument("--noisy-above", type=non_negative_float, default=0.10,
                   help="flag a row NOISY when its ratio's noise is above this (default: 0.10)")
    p.add_argument("--device", choices=tuple(BACKENDS), default="cpu",
                   help="cpu: xpnet on numpy against torch on the CPU; cuda: xpnet on cupy against torch on "
                        "CUDA (default: cpu)")
    p.add_argument("--worker", choices=CONTESTANTS, help=argparse_hidden())
    args = p.parse_args()
    limit_threads(args.threads)
    if args.worker:
        if args.worker == "torch":
            import torch

            torch.set_num_threads(args.threads)
        worker(args.worker, args.batch_sizes[0], args.threads, args.seconds, args.device)
        return 0
    check_device(args.device)
    on = f"{args.threads} thread(s)" if args.device == "cpu" else "cupy against torch on CUDA, eager"
    print(f"CNN step {' -> '.join(map(str, ['1x28x28', *LAYERS, CLASSES]))}, Adam, float32, {on}, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s, each in its own process")
    clocks = ("wall", "cpu") if args.device == "cpu" else ("wall",)
    print("samples/s by " + " and by ".join({"wall": "the wall clock", "cpu": "CPU time"}[c] for c in clocks))
    print(f"{'batch':>6} {'clock':>6} {'xpnet/s':>10} {'torch/s':>10} {'xpnet/torch':>12} {'noise':>7}")
    for batch_size in args.batch_sizes:
        speeds = {name: [] for name in CONTESTANTS}
        for r in range(args.rounds):
            for name in (CONTESTANTS if r % 2 == 0 else CONTESTANTS[::-1]):
                speeds[name].append(one_round(name, batch_size, args.threads, args.seconds, args.device))
        for clock in clocks:
            median, noise = paired(speeds, clock)
            xs, ts = (statistics.median([s[clock] for s in speeds[n]]) for n in CONTESTANTS)
            spread = "n/a" if noise is None else f"{noise:.0%}"
            print(f"{batch_size:>6} {clock:>6} {xs:>10.0f} {ts:>10.0f} {median:>11.2f}x {spread:>7}"
                  + ("  NOISY: rerun on a quieter machine" if noise is not None and noise > args.noisy_above else "")
                  + ("  (one round: give --rounds 3 or more to see the noise)" if noise is None else ""))
    return 0


def check_device(device: str) -> None:
    """Both contestants' backends, asked for here so that one that cannot run ends the bench in
    one line (an XpnetError) before any worker starts, rather than as a worker's traceback."""
    from xpnet import resolve_backend

    resolve_backend(BACKENDS[device], device, "float32")
    resolve_backend("torch", device, "float32")


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    run_main(main)
