"""Where a numpy training step's time goes: products, bias + activation, loss, backward, update.

The step is rebuilt from the same named ops the model uses (`model.ops.op(backend,
name)`, so the numpy kernels when they exist), with a clock around each part, and is
interleaved with the real `Network.train_step` with SGD. As there, each layer's update is
folded into its weight-gradient product: `dW+update` is W -= lr * dz.T @ x as one call,
`db+update` the same for the bias. `products` is the forward products and dx = dz @ W.
Each part is printed as a fraction of the real step; `rest` is what the parts do not
account for (Python calls, dispatch, the wrappers), and `ceiling` is the products-only time
of bench/train_step.py (which includes the dW products) as a fraction of the same step:
the best the step could ever do.

    python bench/profile_step.py
    python bench/profile_step.py --network sigmoid-quadratic --batch-sizes 64 --plain
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from bench.options import (  # noqa: E402  (needs the path above)
    OneLineParser, add_step_arguments, networks_from, positive_int, run_main,
)
from bench.contestants import LR, POOL_BATCHES, Spec, numpy_backend, products_contestant, sgd_network  # noqa: E402
from bench.timing import Timing  # noqa: E402
from bench.summaries import environment_lines  # noqa: E402

PARTS = ["products", "bias+act", "loss", "act grad", "dW+update", "db+update"]


def parse_args(argv=None):
    p = OneLineParser(description=__doc__.split("\n\n")[0])
    add_step_arguments(p)
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="interleaved repetitions (default: 9, or 5 with --quick)")
    p.add_argument("--quick", action="store_true", help="short rounds: a smoke test, noisier numbers")
    p.add_argument("--plain", action="store_true", help="profile the plain xp ops (numpy kernels off)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    backend = numpy_backend(args.dtype, args.threads, plain=args.plain)
    timing = Timing.quick(args.repeats) if args.quick else Timing(repeats=args.repeats or 9)
    print("\n".join(environment_lines(args.threads)[:-1]))
    print(f"kernels: {'off (plain xp)' if args.plain else 'numpy_kernels'}; best of {timing.repeats} rounds")
    for network in networks_from(args.network):
        print(f"\n== {Spec(args.layers, network, 0, args.dtype).describe()} ==")
        print(f"{'batch':>6}{'step us':>9}" + "".join(f"{p:>10}" for p in PARTS) + f"{'rest':>8}{'ceiling':>9}")
        for batch_size in args.batch_sizes:
            spec = Spec(args.layers, network, batch_size, args.dtype)
            step, parts, ceiling = profile(backend, spec, timing)
            shares = [parts[p] / step for p in PARTS]
            print(f"{batch_size:>6}{step * 1e6:>9.0f}" + "".join(f"{s:>10.1%}" for s in shares)
                  + f"{1 - sum(shares):>8.1%}{ceiling / step:>9.1%}")


def profile(backend, spec: Spec, timing: Timing):
    """(real step seconds, {part: seconds per step}, products-only seconds), each the best round."""
    net, opt, batches = sgd_network(backend, spec)
    ops = StepOps(backend, net)
    ceiling = products_contestant("numpy", "cpu", spec)
    steps = max(2, round(timing.round_seconds / _seconds(lambda: _real_step(net, opt, *batches[0]))))
    best_step, best_ceiling, best_parts = float("inf"), float("inf"), {}
    for _ in range(timing.repeats):
        start = time.perf_counter()
        for i in range(steps):
            _real_step(net, opt, *batches[i % POOL_BATCHES])
        best_step = min(best_step, (time.perf_counter() - start) / steps)
        parts = defaultdict(float)
        for i in range(steps):
            ops.step(*batches[i % POOL_BATCHES], parts)
        for name in PARTS:
            best_parts[name] = min(best_parts.get(name, float("inf")), parts[name] / steps)
        start = time.perf_counter()
        for _ in range(steps):
            ceiling.step()
        best_ceiling = min(best_ceiling, (time.perf_counter() - start) / steps)
    return best_step, best_parts, best_ceiling


def _real_step(net, opt, xb, tb):
    net.train_step(xb, tb, opt)


def _seconds(fn, n: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


class StepOps:
    """The training step of model/dense.py, model/network.py and SGD, one clock per part.

    It asks the backend for the same named ops the model does, so it profiles whatever
    kernels the backend carries; its parameters are copies, so the real network is untouched.
    """

    def __init__(self, backend, net):
        from xpnet.model.ops import op

        self.xp = backend.xp
        self.W = [self.xp.asarray(layer.W, copy=True) for layer in net.layers]
        self.b = [self.xp.asarray(layer.b, copy=True) for layer in net.layers]
        self.bias_act = [op(backend, f"bias_act.{layer.activation}") for layer in net.layers]
        self.act_grad = [op(backend, f"act_grad.{layer.activation}") for layer in net.layers]
        self.loss = op(backend, f"loss.{net.loss}")
        self.matmul_add = op(backend, "matmul_add")
        self.sum_add = op(backend, "sum_add")

    def step(self, x, targets, parts) -> None:
        xp, clock = self.xp, time.perf_counter
        inputs, outputs = [], []
        for W, b, bias_act in zip(self.W, self.b, self.bias_act):
            t0 = clock()
            z = xp.matmul(x, W.T)
            t1 = clock()
            y = bias_act(xp, z, b)
            t2 = clock()
            parts["products"] += t1 - t0
            parts["bias+act"] += t2 - t1
            inputs.append(x)
            outputs.append(y)
            x = y
        t0 = clock()
        _, dy = self.loss(xp, x, targets)
        parts["loss"] += clock() - t0
        for i in range(len(self.W) - 1, -1, -1):
            t0 = clock()
            dz = self.act_grad[i](xp, outputs[i], dy)
            t1 = clock()
            dy = xp.matmul(dz, self.W[i]) if i else None
            t2 = clock()
            self.W[i] = self.matmul_add(xp, self.W[i], dz.T, inputs[i], -LR, 1.0)
            t3 = clock()
            self.b[i] = self.sum_add(xp, self.b[i], dz, -LR, 1.0)
            t4 = clock()
            parts["act grad"] += t1 - t0
            parts["products"] += t2 - t1
            parts["dW+update"] += t3 - t2
            parts["db+update"] += t4 - t3


if __name__ == "__main__":
    run_main(main)
