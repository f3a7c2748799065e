"""Does the letters job's data pipeline starve training? Epoch time against bare steps.

A whole epoch of `run_epoch` (shuffled batch gathering, metrics accumulated on the device,
the one read at the end) is timed against the same number of bare training steps on one
batch already on the device (`Network.train_step`, nothing else). The two
alternate, repeated, in one process; the ratio of the best rounds says what the pipeline
costs. The issue's target: an epoch within 5% of the bare steps.

    python bench/pipeline.py                   # the default job's network, letters cached
    python bench/pipeline.py --samples 20000 --repeats 5
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends import resolve_backend  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data import load_data  # noqa: E402
from train.jobs import build_network  # noqa: E402
from train.loop import DeviceData, run_epoch  # noqa: E402
from train.optimizers import make_optimizer  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default=None, help="backend name (default: $XPNET_BACKEND, else auto)")
    p.add_argument("--samples", type=int, default=60000, help="training samples (default 60000, the default job's)")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds of each (default 3)")
    return p.parse_args(argv)


def bare_steps(net, opt, x, t, steps: int) -> float:
    """Seconds for `steps` training steps on one resident batch, synchronised at the end."""
    start = time.perf_counter()
    for _ in range(steps):
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
    x, t = device_data.rows(0, config.batch_size)
    steps = math.ceil(device_data.n / config.batch_size)
    rng = np.random.default_rng(0)
    run_epoch(net, opt, device_data, config.batch_size, rng)  # warm-up
    epochs, bares = [], []
    for _ in range(args.repeats):
        epochs.append(run_epoch(net, opt, device_data, config.batch_size, rng)["seconds"])
        bares.append(bare_steps(net, opt, x, t, steps))
    ratio = min(epochs) / min(bares)
    print(f"{backend}: {steps} steps of batch {config.batch_size}, network {net.sizes}")
    print(f"epoch (run_epoch)      best {min(epochs):.3f} s   rounds {' '.join(f'{s:.3f}' for s in epochs)}")
    print(f"bare steps, same count best {min(bares):.3f} s   rounds {' '.join(f'{s:.3f}' for s in bares)}")
    print(f"epoch / bare steps = {ratio:.3f}  ({'within' if ratio <= 1.05 else 'OVER'} the 5% target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
