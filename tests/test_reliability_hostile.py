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


def test_a_rate_that_rounds_every_update_to_nothing_is_a_warning(capsys, tmp_path):
    data = f"npz:{toy(tmp_path)}"
    code, out, err = run_cli(capsys, *train_argv(data, tmp_path / "tiny", "--lr", "1e-50"))
    assert code == 0, err
    warned = [line for line in out.splitlines() if "left every weight unchanged" in line]
    assert len(warned) == 1 and "1e-50" in warned[0], out
    code, out, err = run_cli(capsys, *train_argv(data, tmp_path / "healthy"))
    assert code == 0 and "unchanged" not in out, out


@pytest.mark.parametrize("X, scale", [
    (np.float32(1e30), "2e+30"),
    (np.int64(2 ** 61), "4.61e+18"),  # 2 * 2^61 = 2^62
], ids=["1e30", "int64-2^61"])
def test_divergence_on_huge_inputs_names_their_scale_not_the_rate(capsys, tmp_path, X, scale):
    rng = np.random.default_rng(0)
    base = rng.standard_normal((200, 4))
    y = (base[:, 0] > 0).astype(np.int64)
    path = tmp_path / "huge.npz"
    np.savez(path, X=np.clip(np.round(base), -2, 2).astype(X.dtype) * X, y=y)
    code, _, err = run_cli(capsys, *train_argv(f"npz:{path}", tmp_path / "run"))
    assert_one_line_error(code, err, "diverged", f"inputs reach {scale}", "scale them")
    assert "try --lr" not in err


def test_float64_inputs_beyond_float32_are_one_line_naming_their_scale(capsys, tmp_path):
    path = toy(tmp_path, X=np.full((60, 6), 1e300), y=np.arange(60) % 2, X_test=None, y_test=None)
    code, _, err = run_cli(capsys, *train_argv(f"npz:{path}", tmp_path / "run"))
    assert_one_line_error(code, err, "1e+300", "beyond float32's range")  # was also "contains infinite values"
    assert not (tmp_path / "run").exists()
