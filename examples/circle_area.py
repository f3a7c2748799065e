"""Learning the area of a circle: the course's first example, learnt two ways.

The course contrasts the old way, `area = 3.14 * radius * radius` written by hand, with
letting a machine find the relation in a table of (radius, area) pairs, 1 -> 3.14,
1.4 -> 6.15, 2 -> 12.56, 10 -> 314, 20 -> 1256:

    trained_model = learn(init_model, data)
    y = test(trained_model, x=100)        # the area of a circle of radius 100

This script does that with xpnet, twice.

(a) One neuron: area = theta * r^2 + b. The model is `Network.from_sizes([1, 1],
    activation='identity', loss='quadratic')` and its one input feature is r^2, so learning
    theta is learning pi. Asking it for radius 100 is therefore `test(model, 100**2)`.
    - The bias stays: the course's neuron has one, and the data have no offset, so gradient
      descent has nothing to gain from it and it ends near 0 (about 0.01, a third of a
      percent of the smallest area). It moves slowly because the r^2 input (up to 400)
      dwarfs the bias's constant input 1: the loss surface is a long narrow valley whose
      steep direction is theta, and theta converges in a few dozen steps.
    - The feature is not scaled (scale="none"), so theta means pi with no bookkeeping. The price is a small
      learning rate, and the course's own recipe finds it (lr="auto": start at 0.001, divide
      by 10 while J rises, multiply while it falls): 1e-3 and 1e-4 diverge, 1e-5 is chosen.

(b) A small MLP, 1-16-16-1 tanh, told nothing about squares.
    - Inputs: the radius mapped linearly onto [-1, 1], where tanh units are responsive.
    - Targets: log(area), standardised. The aim is every area within 1%, a *relative*
      error; the quadratic loss on log(area) is a loss on relative error (d log a = da / a).
      Fitted to raw areas, the loss is ruled by r = 20 (1257) and the same absolute error
      at r = 1 (3.14) is several hundred percent.
    - Adam, with the rate stepped down (0.01, 0.003, 0.001, 0.0003) each time J has had its
      run: the course's advice to shrink alpha once J stops falling.
    Inside its training range (radii 1 to 20) it matches pi r^2 within 1%. At radius 100 it
    knows nothing (its tanh units saturate): unlike (a) it has no idea of the shape of the law,
    only of the data it saw.

Run: `python examples/circle_area.py [--backend numpy|array_api_strict|torch|cupy]`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xpnet.backends import Backend, resolve_backend  # noqa: E402
from xpnet.model import Network  # noqa: E402
from xpnet.train import learn, test  # noqa: E402

COURSE_RADII = np.array([1.0, 1.4, 2.0, 10.0, 20.0])  # the course's table


@dataclass
class CircleConfig:
    backend: str | None = None  # None: $XPNET_BACKEND, else auto (cupy with a GPU, else numpy)
    device: str | None = None  # None: the backend's default device
    dtype: str | None = None  # None: float32
    seed: int = 0  # initial weights and shuffling
    theta_epochs: int = 200  # full-batch gradient descent steps for model (a)
    mlp_sizes: tuple = (1, 16, 16, 1)  # model (b)
    mlp_stages: tuple = ((0.01, 1000), (0.003, 1000), (0.001, 2000), (0.0003, 2000))  # (lr, epochs)


def circle_table(radii) -> tuple[np.ndarray, np.ndarray]:
    """(radius, area) pairs, the areas exact: pi r^2."""
    radii = np.asarray(radii, dtype=np.float64)
    return radii, np.pi * radii ** 2


def theta_radii() -> np.ndarray:
    """The course's table filled in: 1, 1.4, then every whole radius from 2 to 20."""
    return np.union1d(COURSE_RADII, np.arange(2.0, 21.0))


def mlp_radii() -> np.ndarray:
    """A denser table for the MLP, which must learn the curve's shape: every 0.25, plus 1.4."""
    return np.union1d(COURSE_RADII, np.linspace(1.0, 20.0, 77))


def learn_theta(backend: Backend, cfg: CircleConfig, log=None) -> tuple[Network, float, float]:
    """Model (a): area = theta * r^2 + b by gradient descent. Returns (model, theta, b)."""
    r, area = circle_table(theta_radii())
    model = Network.from_sizes([1, 1], backend, activation="identity", loss="quadratic", seed=cfg.seed)
    with np.errstate(over="ignore", invalid="ignore"):  # the recipe's too-large trial rates overflow
        learn(model, ((r ** 2)[:, None], area), epochs=cfg.theta_epochs, batch_size=None, lr="auto",
              seed=cfg.seed, scale="none", log=log)
    layer = model.layers[0]
    return model, float(backend.to_numpy(layer.W)[0, 0]), float(backend.to_numpy(layer.b)[0])


@dataclass
class CircleMLP:
    """Model (b) with the scalings it was trained under, so callers speak radii and areas."""

    model: Network
    r_mid: float
    r_half: float
    log_mean: float
    log_std: float

    def features(self, radii) -> np.ndarray:
        return ((np.asarray(radii, dtype=np.float64) - self.r_mid) / self.r_half)[:, None]

    def targets(self, areas) -> np.ndarray:
        return (np.log(areas) - self.log_mean) / self.log_std

    def area(self, radii) -> np.ndarray:
        radii = np.atleast_1d(radii)
        return np.exp(self.model.predict(self.features(radii))[:, 0] * self.log_std + self.log_mean)


def learn_mlp(backend: Backend, cfg: CircleConfig, log=None) -> CircleMLP:
    """Model (b): a tanh MLP on scaled radius -> standardised log(area)."""
    r, area = circle_table(mlp_radii())
    net = Network.from_sizes(list(cfg.mlp_sizes), backend, activation="tanh", output="identity",
                             loss="quadratic", init="xavier", seed=cfg.seed)
    mlp = CircleMLP(net, r_mid=(r.max() + r.min()) / 2, r_half=(r.max() - r.min()) / 2,
                    log_mean=float(np.log(area).mean()), log_std=float(np.log(area).std()))
    for lr, epochs in cfg.mlp_stages:
        learn(net, (mlp.features(r), mlp.targets(area)), epochs=epochs, batch_size=None, lr=lr,
              optimizer="adam", seed=cfg.seed, scale="none", log=log)  # scaled by hand, above
    return mlp


def worst_relative_error(mlp: CircleMLP, radii) -> float:
    _, area = circle_table(radii)
    return float(np.max(np.abs(mlp.area(radii) - area) / area))


def parse_args(argv=None) -> CircleConfig:
    parser = argparse.ArgumentParser(description="Learn the area of a circle from (radius, area) pairs.")
    parser.add_argument("--backend", help="numpy, array_api_strict, torch or cupy (default: $XPNET_BACKEND, else auto)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the backend's own)")
    parser.add_argument("--dtype", choices=["float32", "float64"], help="float dtype (default: float32)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the initial weights and shuffling")
    args = parser.parse_args(argv)
    return CircleConfig(backend=args.backend, device=args.device, dtype=args.dtype, seed=args.seed)


def main(argv=None) -> dict:
    cfg = parse_args(argv)
    backend = resolve_backend(cfg.backend, cfg.device, cfg.dtype)
    print(f"backend: {backend}" + (f"  [{backend.note}]" if backend.note else ""))

    lines = []
    model, theta, bias = learn_theta(backend, cfg, log=lines.append)
    area_100 = test(model, 100 ** 2)
    print(f"(a) area = theta * r^2 + b, learnt from {len(theta_radii())} (radius, area) pairs")
    print(f"    {lines[0]}")
    print(f"    theta = {theta:.5f}   (pi = {np.pi:.5f})   b = {bias:.4f}")
    print(f"    test(model, 100**2) = {area_100:.1f}   area of radius 100; pi * 100^2 = {np.pi * 1e4:.1f}")

    mlp = learn_mlp(backend, cfg)
    grid = np.linspace(1.0, 20.0, 191)
    worst = worst_relative_error(mlp, grid)
    sizes = "-".join(str(s) for s in cfg.mlp_sizes)
    print(f"(b) MLP {sizes} tanh on log(area), {len(mlp_radii())} pairs, {len(mlp.model.history)} Adam steps")
    print(f"    worst error on radii 1..20: {100 * worst:.2f}%   (radius 10: {mlp.area(10.0)[0]:.2f}, "
          f"pi * 10^2 = {np.pi * 100:.2f})")
    print(f"    radius 100, outside what it saw: {mlp.area(100.0)[0]:.1f} (the one-neuron model knows the law)")
    return {"backend": backend, "model": model, "theta": theta, "bias": bias, "area_100": area_100,
            "mlp": mlp, "mlp_worst_error": worst}


if __name__ == "__main__":
    main()
