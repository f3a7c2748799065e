"""Do late training steps slow down on a CPU? A trained network's step against a fresh one's.

Trains the default letters network (numpy, float32) for --epochs on --samples letters,
outside `learn`, so nothing flushes subnormal floats; by then some of its numbers have
shrunk below float32's smallest normal (the softmax gradient of classes it is sure are
wrong, the momentum of weights fed by always-dark pixels). Then 100-step rounds of the
trained network and of a fresh one on the same batches run in turns, first as they are,
then inside `train.subnormals.flush_subnormals()` (what `learn` does). Prints the median
of the paired ratios and how many subnormals the trained network's momentum holds.

    python bench/subnormals.py
    python bench/subnormals.py --samples 20000 --epochs 60 --repeats 21
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from xpnet.backends import resolve_backend  # noqa: E402
from bench.options import OneLineParser, non_negative_float, positive_int, run_main  # noqa: E402
from bench.contestants import Contestant  # noqa: E402
from bench.summaries import noisy_warning, ratio, ratio_noise  # noqa: E402
from xpnet.train.config import BATCH, TrainConfig, default_hidden  # noqa: E402
from xpnet.train.data import load_data  # noqa: E402
from xpnet.train.build import build_network  # noqa: E402
from xpnet.train.jobs import job_lr  # noqa: E402
from xpnet.train.device_data import DeviceData
from xpnet.train.loop import run_epoch  # noqa: E402
from xpnet.train.steps import EagerSteps  # noqa: E402
from xpnet.train.optimizers import make_optimizer  # noqa: E402
from xpnet.train.subnormals import available, flush_subnormals  # noqa: E402

STEPS = 100  # steps a round


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=positive_int, default=20000,
                   help="training letters, at least 100 batches' worth (default 20000)")
    p.add_argument("--epochs", type=positive_int, default=40, help="epochs to train before timing (default 40)")
    p.add_argument("--repeats", type=positive_int, default=15, help="rounds of each network (default 15)")
    p.add_argument("--noisy-above", type=non_negative_float, default=0.10,
                   help="noise of the paired ratios (interquartile range / median) above which a ratio is "
                        "flagged NOISY (default: 0.10)")
    args = p.parse_args(argv)
    batch_size = BATCH
    if args.samples < STEPS * batch_size:
        p.error(f"argument --samples: must be at least {STEPS * batch_size}, got {args.samples}: "
                f"a round is {STEPS} batches of {batch_size}")
    return args


def subnormal_count(arrays) -> int:
    tiny = np.finfo(np.float32).tiny
    return sum(int(np.sum((a != 0) & (np.abs(a) < tiny))) for a in arrays)


def paired_ratio(trained, fresh, data, batch_size: int, repeats: int) -> tuple[float, float]:
    """The paired median of (trained step time / fresh step time), and its noise (bench.summaries'
    `ratio`, `ratio_noise`). Each round starts from the network's state before the first, so
    rounds stay alike."""
    def round_of(net, opt, saved):
        for array, value in zip(net.params + opt.velocity, saved):
            array[...] = value
        start = time.perf_counter()
        for i in range(STEPS):
            x, t = data.rows(i * batch_size, (i + 1) * batch_size)
            net.train_step(x, t, opt)
        return (time.perf_counter() - start) / STEPS

    timed = [Contestant(name, lambda: None) for name in ("trained", "fresh")]
    states = [[a.copy() for a in net.params + opt.velocity] for net, opt in (trained, fresh)]
    for _ in range(repeats):
        for who, (net, opt), saved in zip(timed, (trained, fresh), states):
            who.times.append(round_of(net, opt, saved))
    return ratio(timed[1], timed[0]), ratio_noise(timed[1], timed[0])  # trained time / fresh time


def main(argv=None) -> int:
    args = parse_args(argv)
    # The default dense network at the batch its figures were measured at (the letters' own
    # default batch is larger; train/config.py).
    config = TrainConfig(hidden=default_hidden(args.samples), batch_size=BATCH)
    backend = resolve_backend("numpy", "cpu", "float32")
    data = load_data("letters", n_train=args.samples, n_test=100, progress=False)
    nets = []
    for _ in range(2):  # the same seed: the trained one and a fresh one, from the same start
        net = build_network(config, data, backend)
        nets.append((net, make_optimizer(config.optimizer, backend, net.params, job_lr(config))))
    device_data = DeviceData.from_host(nets[0][0], data.X_train, data.y_train)
    rng = np.random.default_rng(0)
    for _ in range(args.epochs):
        record = run_epoch(EagerSteps(*nets[0], device_data, config.batch_size), rng)
    print(f"trained {args.epochs} epochs on {args.samples} letters: loss {record['loss']:.2e}, "
          f"{subnormal_count(nets[0][1].velocity)} subnormal momentum terms")
    median, noise = paired_ratio(nets[0], nets[1], device_data, config.batch_size, args.repeats)
    print(f"trained / fresh step time, as is:            {median:.3f} (noise {100 * noise:.0f}%)")
    if noise > args.noisy_above:
        print(noisy_warning(noise, args.noisy_above))
    if not available():
        print("flush_subnormals does nothing on this machine (x86-64 Linux only)")
        return 0
    with flush_subnormals():
        median, noise = paired_ratio(nets[0], nets[1], device_data, config.batch_size, args.repeats)
    print(f"trained / fresh step time, subnormals flushed: {median:.3f} (noise {100 * noise:.0f}%)")
    if noise > args.noisy_above:
        print(noisy_warning(noise, args.noisy_above))
    return 0


if __name__ == "__main__":
    run_main(main)
