"""A checkpoint trained on a GPU loads on every backend and computes what it computed there.

tests/data/cupy-run was trained on cupy on an NVIDIA H200 by scripts/gpu-check.sh (a small
letters run: 784-32-26, 2 epochs, float32), and outputs.npy holds that network's outputs
there, in float64, on 64 inputs drawn on the host (scripts/gpu_outputs.py draws them the same
way). Every backend here must read the file and reproduce those outputs: the checkpoint's
layout, names and dtypes are the same whatever device wrote them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xpnet.train.checkpoints import load_checkpoint

GPU_RUN = Path(__file__).parent / "data" / "cupy-run"


def host_inputs(width: int) -> np.ndarray:
    return np.random.default_rng(0).random((64, width))  # as scripts/gpu_outputs.py


def test_the_fixture_was_trained_on_a_gpu():
    config = json.loads((GPU_RUN / "config.json").read_text())
    assert config["backend"] == "cupy" and config["dtype"] == "float32"


def test_a_cupy_checkpoint_gives_the_gpus_outputs_on_every_backend(backend):
    net, _ = load_checkpoint(GPU_RUN / "model.safetensors", backend)
    assert net.sizes == [784, 32, 26]
    ours = backend.to_numpy(net.forward(backend.asarray(host_inputs(net.sizes[0]))))
    gpus = np.load(GPU_RUN / "outputs.npy")
    np.testing.assert_allclose(ours, gpus, rtol=1e-10, atol=1e-12)
    assert (ours.argmax(axis=1) == gpus.argmax(axis=1)).all()  # the same letters read
