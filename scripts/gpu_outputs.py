"""A run's network on host-made inputs, saved beside it: the contract a GPU checkpoint keeps.

scripts/gpu-check.sh trains a small run on cupy and writes, into the run folder, the
network's outputs on 64 inputs drawn from numpy's generator with seed 0 (outputs.npy).
tests/test_gpu_checkpoint.py loads that checkpoint on every backend here and checks the
outputs against the GPU's. It also saves the run's held-out samples as drawn on the GPU
machine (heldout.npz), so `xpnet evaluate RUN --data npz:RUN/heldout.npz` on another
machine scores the very samples the GPU scored, whatever fonts that machine has:
    python3 scripts/gpu_outputs.py RUN_DIR BACKEND DEVICE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from xpnet.backends import resolve_backend  # noqa: E402
from xpnet.train.config import TrainConfig  # noqa: E402
from xpnet.train.data.spec import load_data  # noqa: E402
from xpnet.train.checkpoints import load_checkpoint  # noqa: E402

N_INPUTS = 64


def host_inputs(width: int) -> np.ndarray:
    """The inputs both machines feed the network: pixel-like values in [0, 1)."""
    return np.random.default_rng(0).random((N_INPUTS, width))


def outputs(run: Path, backend_name: str, device: str) -> np.ndarray:
    backend = resolve_backend(backend_name, device, "float64")
    net, _ = load_checkpoint(run / "model.safetensors", backend)
    x = backend.asarray(host_inputs(net.sizes[0]))
    return backend.to_numpy(net.forward(x))


def save_heldout(run: Path) -> Path:
    """The run's held-out samples and labels, as an npz any machine can evaluate on."""
    config = TrainConfig(**{k: v for k, v in json.loads((run / "config.json").read_text()).items()
                            if k in TrainConfig.__dataclass_fields__})
    data = load_data(config.data, seed=config.seed, n_train=config.train_samples, n_test=config.test_samples,
                     progress=False, small_letters=config.small_letters)
    path = run / "heldout.npz"
    np.savez_compressed(path, X=data.X_test, y=data.y_test, classes=np.array(data.classes))
    return path


if __name__ == "__main__":
    run_dir = Path(sys.argv[1])
    np.save(run_dir / "outputs.npy", outputs(run_dir, sys.argv[2], sys.argv[3]))
    print(f"wrote {run_dir / 'outputs.npy'} and {save_heldout(run_dir)}")
