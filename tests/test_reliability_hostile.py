"""Hostile files and numbers, round two (issue 17): no silent wrong answer, no hang, no traceback.

- A checkpoint whose weights are NaN or infinite (with a valid digest) is refused at load.
- Training that changes nothing (a rate that underflows) or diverges on huge inputs says why.
- Letter generation stops within about a second of Ctrl-C, its workers die with their parent,
  and a sample count beyond the documented ceiling is refused before any work.
- predict reads only regular files; a damaged letters cache is regenerated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xpnet.model.checkpoint import _digest

from test_cli import assert_one_line_error, run_cli
from test_reliability_inputs import toy, train_argv


def poison(path: Path, value: float) -> None:
    """Put `value` in the first weight and re-sign the file, as a bug or an attacker could."""
    from safetensors import safe_open
    from safetensors.numpy import load, save

    tensors = load(path.read_bytes())
    with safe_open(str(path), "np") as f:
        header = f.metadata()
    tensors["layers.0.W"][0, 0] = value
    header["digest"] = _digest(tensors, header)
    path.write_bytes(save(tensors, metadata=header))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_a_checkpoint_with_non_finite_weights_is_refused_at_load(capsys, tmp_path, value):
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run"))
    assert code == 0, err
    poison(tmp_path / "run" / "model.safetensors", value)
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert_one_line_error(code, err, "NaN or infinite weights")
    code, out, err = run_cli(capsys, "train", "--resume", str(tmp_path / "run"), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, "NaN or infinite weights")
    import xpnet

    with pytest.raises(xpnet.XpnetError, match="NaN or infinite"):
        xpnet.load(tmp_path / "run")


def test_predict_json_never_emits_nan_from_a_poisoned_image_model(capsys, tmp_path):
    from xpnet.backends import resolve_backend
    from xpnet.model import Network
    from xpnet.train.checkpoints import save_checkpoint

    ckpt = save_checkpoint(Network.from_sizes([784, 26], resolve_backend("numpy")), tmp_path / "m.safetensors",
                           {"classes": [chr(ord("A") + i) for i in range(26)]})
    poison(ckpt, np.nan)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    code, out, err = run_cli(capsys, "predict", str(ckpt), str(img), "--json", "--backend", "numpy")
    assert_one_line_error(code, err, "NaN or infinite weights")
    for line in out.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
