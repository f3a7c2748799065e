"""`xpnet parity`: does every backend on this machine give the numpy float64 answers?

The same seed, host-made data and network are run on each usable backend in each dtype;
outputs, gradients, weights after N training steps and the final loss are compared with
numpy in float64. A difference is measured relative to the reference tensor's largest
entry, max|a - ref| / max|ref|, so tiny entries do not blow it up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xpnet.backends import PLACES, BackendError, resolve_backend
from xpnet.model import Network
from xpnet.train.device_data import DeviceData
from xpnet.train.steps import run_steps

# Worst relative difference allowed per dtype, for every quantity: float64 agrees to ~16
# digits up to summation order; float32 carries ~7, and 50 steps of SGD leave room to spare.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}


# Each network parity trains: how to build it, and the width of its samples. The CNN holds
# every layer kind with weights or windows: a convolution with padding, one with stride 2, pooling.
NETWORKS = {
    "dense": (lambda backend, seed: Network.from_sizes([20, 32, 16, 4], backend, activation="sigmoid", seed=seed), 20),
    "cnn": (lambda backend, seed: Network.from_layers(["conv4x3", "pool2", "conv6x3s2", 8], (1, 8, 8), 4, backend,
                                                      activation="tanh", seed=seed), 64),
}


@dataclass
class ParityRow:
    network: str
    backend: str
    device: str
    dtype: str
    outputs: float
    gradients: float
    weights: float
    loss: float

    @property
    def passed(self) -> bool:
        return max(self.outputs, self.gradients, self.weights, self.loss) <= TOLERANCE[self.dtype]


def problem(seed: int = 0, n: int = 256, width: int = 20):
    """A small nonlinear 4-class problem, made on the host."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, width))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64) + 2 * (X[:, 2] + X[:, 3] > 0)
    return X, y


def snapshot(backend, X, y, seed: int, steps: int, batch_size: int = 32, lr: float = 0.2,
             network: str = "dense") -> dict:
    """Everything parity compares, as host float64 arrays, for one backend."""
    net = NETWORKS[network][0](backend, seed)
    data = DeviceData.from_host(net, X, y)
    X_dev, T_dev = data.rows(0, data.n)
    out = net.forward(X_dev)
    _, _, grads = net.loss_and_grads(X_dev, T_dev)
    run_steps(net, data, "sgd", lr, batch_size, steps, np.random.default_rng(seed))
    loss = net.loss_of(net.forward(X_dev), T_dev)
    host = backend.to_numpy
    return {"outputs": [host(out)], "gradients": [host(g) for g in grads],
            "weights": [host(p) for p in net.params], "loss": [np.asarray(float(loss))]}


def worst_difference(got: list, want: list) -> float:
    worst = 0.0
    for a, r in zip(got, want):
        scale = max(float(np.max(np.abs(r))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - r))) / scale)
    return worst if np.isfinite(worst) else float("inf")


def run_parity(steps: int = 50, seed: int = 0, cases=PLACES, dtypes=("float64", "float32")):
    """(rows for usable backends, [(case, reason)] for those skipped)."""
    rows, skipped = [], []
    for network, (_, width) in NETWORKS.items():
        X, y = problem(seed, width=width)
        ref = snapshot(resolve_backend("numpy", "cpu", "float64"), X, y, seed, steps, network=network)
        for name, device in cases:
            for dtype in dtypes:
                try:
                    backend = resolve_backend(name, device, dtype)
                except BackendError as exc:
                    if dtype == dtypes[0] and network == "dense":
                        skipped.append((f"{name} ({device})", str(exc)))
                    continue
                got = snapshot(backend, X, y, seed, steps, network=network)
                rows.append(ParityRow(network, name, backend.device_name, dtype,
                                      *(worst_difference(got[k], ref[k]) for k in ("outputs", "gradients", "weights", "loss"))))
    return rows, skipped


def format_table(rows: list[ParityRow], skipped: list, steps: int) -> str:
    head = (f"{'network':<8} {'backend':<17} {'device':<7} {'dtype':<8} {'outputs':>9} {'grads':>9} {f'w@{steps}':>9} "
            f"{'loss':>9}  {'tolerance':>9}  result")
    lines = ["worst relative difference from numpy float64 (max|a-ref| / max|ref|)", head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.network:<8} {r.backend:<17} {r.device:<7} {r.dtype:<8} {r.outputs:9.1e} {r.gradients:9.1e} "
                     f"{r.weights:9.1e} {r.loss:9.1e}  {TOLERANCE[r.dtype]:9.0e}  {'ok' if r.passed else 'FAIL'}")
    lines += [f"skipped {case}: {why}" for case, why in skipped]
    return "\n".join(lines)
