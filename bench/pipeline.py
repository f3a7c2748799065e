"""Does the letters job's data pipeline starve training? Epoch time against bare steps.

A whole epoch of `run_epoch` (shuffled batch gathering, metrics kept on the device and
summed at the end, the one read) is timed against the same number of bare training steps
on batches already on the device in stored order (`Network.train_step` on contiguous
slices, nothing else). Not one batch over and over: the network learns that batch by heart
(its loss falls a hundredfold within a thousand steps), a different workload from an
epoch's. The two run back to back, in turns, in one process; the median of the paired
ratios says what the pipeline costs, and their spread whether the machine was quiet enough
to tell. The issue's target: an epoch within 5% of the bare steps.

    python bench/pipeline.py                   # the default job's network, letters cached
    python bench/pipeline.py --samples 20000 --repeats 9
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends import resolve_backend  # noqa: E402
from bench.common import Contestant, ratio, ratio_noise  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data import load_data  # noqa: E402
from train.jobs import build_network  # noqa: E402
from train.loop import DeviceData, run_epoch  # noqa: E402
from train.optimizers import make_optimizer  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="backend name (default: $XPNET_BACKEND, else auto)")
    p.add_argument("--samples", type=int, default=60000, help="training samples (default 60000, the default job's)")
    p.add_argument("--repeats", type=int, default=7, help="pairs of rounds, an epoch and its bare steps (default 7)")
    p.add_argument("--noisy-above", type=float, default=0.10,
                   help="noise of the paired ratios (interquartile range / median) above which the result "
                        "is flagged NOISY (default: 0.10)")
    return p.parse_args(argv)


def bare_steps(net, opt, data: DeviceData, batch_size: int) -> float:
    """Seconds for one training step per batch of `data`, on slices in stored order (no
    gathering, no bookkeeping), synchronised at the end."""
    start = time.perf_counter()
    for first in range(0, data.n, batch_size):
        x, t = data.rows(first, first + batch_size)
        net.train_step(x, t, opt)
    net.backend.synchronize()
    return time.perf_counter() - start


def main(argv=None) -> int:
    args = parse_args(argv)
    config = TrainConfig(backend=args.backend)
    backend = resolve_backend(config.backend, config.device, config.dtype)
    data = load_data("letters", n_train=args.samples, n_test=1000, progress=False)
    net = build_network(config, data, backend)
    opt = make_optimizer(config.optimizer, backend, net.params, config.lr)
    device_data = DeviceData.from_host(net, data.X_train, data.y_train)
    steps = math.ceil(device_data.n / config.batch_size)
    rng = np.random.default_rng(0)
    run_epoch(net, opt, device_data, config.batch_size, rng)  # warm-up
    epoch = Contestant("epoch", lambda: None)
    bare = Contestant("bare steps", lambda: None)
    for r in range(args.repeats):
        turns = [(epoch, lambda: run_epoch(net, opt, device_data, config.batch_size, rng)["seconds"]),
                 (bare, lambda: bare_steps(net, opt, device_data, config.batch_size))]
        for who, run in turns[r % 2:] + turns[:r % 2]:  # alternate which goes first
            who.times.append(run())
    cost, noise = ratio(bare, epoch), ratio_noise(bare, epoch)  # epoch time / bare time, per pair
    print(f"{backend}: {steps} steps of batch {config.batch_size}, network {net.sizes}")
    for who in (epoch, bare):
        print(f"{who.name:11s} median {statistics.median(who.times):.3f} s   "
              f"rounds {' '.join(f'{s:.3f}' for s in who.times)}")
    verdict = "within" if cost <= 1.05 else "OVER"
    print(f"epoch / bare steps = {cost:.3f} (median of {args.repeats} pairs, noise {100 * noise:.0f}%)  "
          f"{verdict} the 5% target")
    if noise > args.noisy_above:
        print(f"NOISY: paired ratios vary by {100 * noise:.0f}% (over {100 * args.noisy_above:.0f}%): "
              "do not trust this figure (rerun on a quieter machine or with more --repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
