"""The contestants of a step benchmark: each one way of doing a training step on one batch size.

A contestant is xpnet through a backend, PyTorch eager with the same network, or only the
step's matrix products (the ceiling no training step can beat on that library). Each is a
`step` callable plus a `sync` that waits for queued device work, so host clocks measure
what the device did. numpy, torch and xpnet are imported inside the functions that build
contestants, never at module level (see bench/options.py for why).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

from bench.options import NETWORKS, limit_threads

LR = 0.01  # small enough that thousands of steps on random data never diverge
POOL_BATCHES = 8  # distinct batches cycled through, so no step reuses the last one's cache


def decayed_weights(model, weight_decay: float) -> list[dict]:
    """A torch model's parameter groups with L2 on the weights and not the biases, as xpnet decays."""
    return [{"params": [p for p in model.parameters() if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in model.parameters() if p.ndim == 1], "weight_decay": 0.0}]


def torch_sync(device) -> Callable[[], None]:
    """What waits for torch's work on `device` to finish: the CUDA stream's, or nothing on the CPU."""
    import torch

    return (lambda: torch.cuda.synchronize(device)) if str(device).startswith("cuda") else (lambda: None)


def numpy_backend(dtype: str, threads: int, plain: bool = False):
    """The numpy backend with BLAS limited to `threads`; `plain` turns its kernels off."""
    import dataclasses

    from xpnet.backends import resolve_backend

    limit_threads(threads)
    backend = resolve_backend("numpy", "cpu", dtype)
    return dataclasses.replace(backend, kernels={}) if plain else backend


@dataclass
class Contestant:
    """One way of doing the step: `step()` does one, `sync()` waits for the device, `note()`
    says what a reader of its figures should know (None: nothing)."""

    name: str
    step: Callable[[], None]
    sync: Callable[[], None] = lambda: None
    note: Callable[[], str | None] = lambda: None
    times: list = field(default_factory=list)  # seconds per step, one entry per repetition


@dataclass(frozen=True)
class Spec:
    """The network and batch a contestant trains: sizes, activations, loss, dtype."""

    layers: tuple
    network: str
    batch_size: int
    dtype: str
    momentum: float = 0.0  # SGD's, for xpnet and PyTorch alike
    weight_decay: float = 0.0  # L2's lambda, for xpnet and PyTorch alike

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
        sgd = "".join([f", momentum {self.momentum:g}" if self.momentum else "",
                       f", weight decay {self.weight_decay:g}" if self.weight_decay else ""])
        return f"{self.network}: {sizes}, {self.activation}/{self.output}, {self.loss}, {self.dtype}{sgd}"

    def sgd(self, backend, params, fold: bool | None = None):
        """xpnet's SGD with this spec's rate, momentum and weight decay."""
        from xpnet.train.optimizers import SGD

        return SGD(backend, params, LR, momentum=self.momentum, fold=fold, weight_decay=self.weight_decay)


def host_batches(spec: Spec, seed: int = 0):
    """Host inputs, one-hot targets and labels for POOL_BATCHES batches, from one seeded generator."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = POOL_BATCHES * spec.batch_size
    X = rng.standard_normal((n, spec.layers[0]))
    labels = rng.integers(0, spec.layers[-1], size=n)
    T = np.eye(spec.layers[-1])[labels]
    return X, T, labels


def sgd_network(backend, spec: Spec, fold: bool | None = None) -> tuple:
    """(network, SGD, POOL_BATCHES device batches) for `spec` on `backend`, from seed 0: what
    every bench that times xpnet's own step starts from. The data is moved to the device once."""
    from xpnet.model import Network

    net = Network.from_sizes(list(spec.layers), backend, activation=spec.activation,
                             output=spec.output, loss=spec.loss, seed=0)
    X, T, _ = host_batches(spec)
    x, t = backend.asarray(X), backend.asarray(T)
    B = spec.batch_size
    batches = [(x[i * B:(i + 1) * B, ...], t[i * B:(i + 1) * B, ...]) for i in range(POOL_BATCHES)]
    return net, spec.sgd(backend, net.params, fold), batches


def xpnet_contestant(backend, spec: Spec, name: str = "xpnet", fold: bool | None = None) -> Contestant:
    """xpnet's own training step, `Network.train_step` with SGD, through `backend`; `fold`
    forces SGD's update into (True) or out of (False) the products, None is the default."""
    net, opt, pool = sgd_network(backend, spec, fold)
    batches = itertools.cycle(pool)

    def step():
        xb, tb = next(batches)
        net.train_step(xb, tb, opt)

    return Contestant(name, step, backend.synchronize)


def xpnet_graph_contestant(backend, spec: Spec, name: str = "xpnet graph") -> Contestant:
    """xpnet's training loop on a GPU, with CUDA graphs (its default there): each step one replay of a recorded
    step that gathers its batch by index and adds to the epoch's totals (train/graphs.py).
    Its `note()` says why recording failed, if it did."""
    import numpy as np

    from xpnet.model import Network
    from xpnet.train.graphs import GraphedSteps
    from xpnet.train.device_data import DeviceData

    net = Network.from_sizes(list(spec.layers), backend, activation=spec.activation,
                             output=spec.output, loss=spec.loss, seed=0)
    X, T, _ = host_batches(spec)
    data = DeviceData(backend.asarray(X), backend.asarray(T), X.shape[0], spec.loss == "cross_entropy", backend)
    graphed = GraphedSteps(net, spec.sgd(backend, net.params), data, spec.batch_size)
    order = backend.asarray(np.arange(X.shape[0]))
    firsts = itertools.cycle(range(0, X.shape[0], spec.batch_size))

    def step():
        graphed.step(order, next(firsts))

    def note():
        return f"recording failed, so it ran unrecorded ({graphed.failure})" if graphed.failure else None

    return Contestant(name, step, backend.synchronize, note)


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
    opt = torch.optim.SGD(decayed_weights(model, spec.weight_decay), lr=LR, momentum=spec.momentum)
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

    return Contestant(name, step, torch_sync(device))


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

        return torch, torch_sync(device), lambda shape: torch.tensor(host(shape), device=device)
    raise ValueError(f"no products ceiling for library {library!r}")


def ceiling_library(backend) -> str | None:
    """Which library's matmul the backend's products run on (None: no ceiling measurable)."""
    return {"numpy": "numpy", "cupy": "cupy", "torch": "torch"}.get(backend.name)
