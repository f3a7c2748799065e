"""Does the letters job's data pipeline starve training? Epoch time against bare steps.

A whole epoch of `run_epoch` (shuffled batch gathering, metrics kept on the device and
summed at the end, the one read) is timed against the same number of bare training steps
on batches already on the device in stored order (`Network.train_step` on contiguous
slices, nothing else). Not one batch over and over: the network learns that batch by heart
(its loss falls a hundredfold within a thousand steps), a different workload from an
epoch's. Between the two, the same steps on gathered shuffled batches split the cost into
gathering and the epoch's bookkeeping. The three run back to back, in turns, in one
process; the median of the paired ratios says what the pipeline costs, and their spread
whether the machine was quiet enough to tell. The issue's target: an epoch within 5% of
the bare steps.

    python bench/pipeline.py                   # the default job's network, letters cached
    python bench/pipeline.py --samples 20000 --repeats 9
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xpnet.backends import resolve_backend  # noqa: E402
from bench.options import OneLineParser, non_negative_float, positive_int, run_main  # noqa: E402
from bench.contestants import Contestant  # noqa: E402
from bench.summaries import noisy_warning, ratio, ratio_noise  # noqa: E402
from xpnet.train.config import TrainConfig, default_hidden, with_data_defaults  # noqa: E402
from xpnet.train.data import load_data  # noqa: E402
from xpnet.train.data.spec import LETTERS_TRAIN  # noqa: E402
from xpnet.train.build import build_network  # noqa: E402
from xpnet.train.jobs import job_lr  # noqa: E402
from xpnet.train.device_data import DeviceData
from xpnet.train.loop import run_epoch  # noqa: E402
from xpnet.train.steps import EagerSteps  # noqa: E402
from xpnet.train.optimizers import make_optimizer  # noqa: E402


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="backend name (default: $XPNET_BACKEND, else auto)")
    p.add_argument("--samples", type=positive_int, default=LETTERS_TRAIN,
                   help=f"training samples (default {LETTERS_TRAIN:,}, the default job's)")
    p.add_argument("--repeats", type=positive_int, default=7, help="rounds of each of the three (default 7)")
    p.add_argument("--noisy-above", type=non_negative_float, default=0.10,
                   help="noise of the paired ratios (interquartile range / median) above which the result "
                        "is flagged NOISY (default: 0.10)")
    return p.parse_args(argv)


def bare_steps(net, opt, data: DeviceData, batch_size: int, rng) -> float:
    """Seconds for one training step per batch of `data`, on slices in stored order (no
    gathering, no bookkeeping), synchronised at the end."""
    start = time.perf_counter()
    for first in range(0, data.n, batch_size):
        x, t = data.rows(first, first + batch_size)
        net.train_step(x, t, opt)
    net.backend.synchronize()
    return time.perf_counter() - start


def gathered_steps(net, opt, data: DeviceData, batch_size: int, rng) -> float:
    """The same steps on shuffled batches gathered as an epoch gathers them, no bookkeeping."""
    start = time.perf_counter()
    order = data.order(rng, batch_size)
    for first in range(0, data.n, batch_size):
        x, t = data.batch(order, first, batch_size)
        net.train_step(x, t, opt)
    net.backend.synchronize()
    return time.perf_counter() - start


def whole_epoch(net, opt, data: DeviceData, batch_size: int, rng) -> float:
    return run_epoch(EagerSteps(net, opt, data, batch_size), rng)["seconds"]


def main(argv=None) -> int:
    args = parse_args(argv)
    # The default job's settings for this many letters, as `xpnet train` settles them (its batch
    # size and rate depend on the data), and its network for them.
    config = with_data_defaults(TrainConfig(backend=args.backend, train_samples=args.samples,
                                            hidden=default_hidden(args.samples)))
    backend = resolve_backend(config.backend, config.device, config.dtype)
    # At the default job's size, its held-out size too, so the cache `xpnet train` made is used.
    n_test = None if args.samples == LETTERS_TRAIN else 1000
    data = load_data("letters", n_train=args.samples, n_test=n_test, progress=False)
    net = build_network(config, data, backend)
    opt = make_optimizer(config.optimizer, backend, net.params, job_lr(config))
    device_data = DeviceData.from_host(net, data.X_train, data.y_train)
    rng = np.random.default_rng(0)
    steps = math.ceil(device_data.n / config.batch_size)
    runs = {"bare steps": bare_steps, "gathered steps": gathered_steps, "epoch": whole_epoch}
    runs["epoch"](net, opt, device_data, config.batch_size, rng)  # warm-up
    timed = {name: Contestant(name, lambda: None) for name in runs}
    for r in range(args.repeats):
        names = list(runs)
        for name in names[r % 3:] + names[:r % 3]:  # rotate which goes first
            seconds = runs[name](net, opt, device_data, config.batch_size, rng)
            timed[name].times.append(seconds / steps)  # a Contestant's times are per step

    print(f"{backend}: {steps} steps of batch {config.batch_size}, network {net.sizes}")
    for who in timed.values():
        print(f"{who.name:15s} median {statistics.median(who.times) * steps:.3f} s   "
              f"rounds {' '.join(f'{s * steps:.3f}' for s in who.times)}")
    report(timed["epoch"], timed["gathered steps"], timed["bare steps"], args)
    return 0


def report(epoch: Contestant, gathered: Contestant, bare: Contestant, args) -> None:
    """The target's ratio, its two parts (gathering, then the epoch's bookkeeping), the noise."""
    cost, noise = ratio(bare, epoch), ratio_noise(bare, epoch)  # epoch time / bare time, per round
    print(f"gathered / bare steps = {ratio(bare, gathered):.3f}  (shuffled batches gathered)")
    print(f"epoch / gathered steps = {ratio(gathered, epoch):.3f}  (the epoch's loss and accuracy bookkeeping)")
    noisy = noise > args.noisy_above
    verdict = f"{'within' if cost <= 1.05 else 'OVER'} the 5% target"
    if noisy:
        verdict = f"reads {verdict}, but too noisy to tell"
    print(f"epoch / bare steps = {cost:.3f} (median of {args.repeats} rounds, noise {100 * noise:.0f}%)  {verdict}")
    if noisy:
        print(noisy_warning(noise, args.noisy_above))


if __name__ == "__main__":
    run_main(main)
