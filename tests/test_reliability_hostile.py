"""Hostile files and numbers, round two (issue 17): no silent wrong answer, no hang, no traceback.

- A checkpoint whose weights are NaN or infinite (with a valid digest) is refused at load.
- Training that changes nothing (a rate that underflows) or diverges on huge inputs says why.
- predict reads only regular files; a damaged letters cache is regenerated.
- npz bombs and hostile labels are refused before anything is allocated.

Letter generation (Ctrl-C, a killed parent, an absurd count): test_reliability_hostile_letters.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xpnet.model.checkpoint import _digest, read

from assertions import assert_one_line_error, run_cli
from toy_runs import toy, train_argv


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
    code, _, err = run_cli(capsys, *train_argv(f"npz:{path}", tmp_path / "run"), "--scale", "none")
    assert_one_line_error(code, err, "diverged", f"inputs reach {scale}", "scale them")
    assert "try --lr" not in err or err.index("scale them") < err.index("try --lr")  # the data first


def test_float64_inputs_beyond_float32_are_one_line_naming_their_scale(capsys, tmp_path):
    path = toy(tmp_path, X=np.full((60, 6), 1e300), y=np.arange(60) % 2, X_test=None, y_test=None)
    code, _, err = run_cli(capsys, *train_argv(f"npz:{path}", tmp_path / "run"))
    assert_one_line_error(code, err, "1e+300", "beyond float32's range")  # was also "contains infinite values"
    assert not (tmp_path / "run").exists()


# -- predict on what is not a file; output that cannot be written ---------------------------

def letters_model(tmp_path) -> Path:
    from xpnet.backends import resolve_backend
    from xpnet.model import Network
    from xpnet.train.checkpoints import save_checkpoint

    return save_checkpoint(Network.from_sizes([784, 26], resolve_backend("numpy"), seed=1),
                           tmp_path / "m.safetensors", {"classes": [chr(ord("A") + i) for i in range(26)]})


def letter_picture(path: Path) -> Path:
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 12:16] = 255  # an I
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_predict_reads_only_regular_files_and_never_blocks_on_a_pipe(tmp_path):
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    good = letter_picture(tmp_path / "i.png")
    proc = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(letters_model(tmp_path)), str(fifo),
                           str(tmp_path), str(good), "--backend", "numpy"],
                          capture_output=True, text=True, timeout=60)  # blocked forever before
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"{good}: "), proc.stdout  # the good picture is still read
    errors = proc.stderr.splitlines()
    assert len(errors) == 2 and all("not a regular file" in line for line in errors), proc.stderr


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")


def to_dev_full(argv: list, cwd: Path | None = None) -> subprocess.CompletedProcess:
    with open("/dev/full", "w") as full:
        return subprocess.run([sys.executable, "-m", "xpnet", *argv], stdout=full, stderr=subprocess.PIPE,
                              cwd=cwd, timeout=120)


@needs_dev_full
def test_output_to_a_full_device_is_one_line_and_training_loses_nothing(tmp_path):
    proc = to_dev_full(["predict", str(letters_model(tmp_path)), str(letter_picture(tmp_path / "i.png")), "--json",
                        "--backend", "numpy"])
    err = proc.stderr.decode()
    assert proc.returncode == 1, err
    assert err.splitlines() == ["xpnet: error: cannot write the output: No space left on device"], err
    run = tmp_path / "run"
    proc = to_dev_full(train_argv(f"npz:{toy(tmp_path)}", run))
    err = proc.stderr.decode()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and "training went on to the end" in err, err
    assert read((run / "model.safetensors").read_bytes())[1]["epochs"] == 2  # whole, digest checked
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())] == [1, 2]
    assert (run / "curves.png").exists() and (run / "confusion.png").exists()


def test_a_run_folder_name_that_is_not_utf8_still_gets_its_report(tmp_path):
    run = os.fsencode(tmp_path) + b"/run-\xff"
    argv = [os.fsencode(a) for a in train_argv(f"npz:{toy(tmp_path)}", Path("X"))]
    argv[argv.index(b"X")] = run
    proc = subprocess.run([sys.executable, "-m", "xpnet", *argv], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert b"Traceback" not in proc.stderr
    assert os.path.exists(run + b"/curves.png") and os.path.exists(run + b"/confusion.png")
    assert b"run-\\udcff/model.safetensors" in proc.stdout  # the name, escaped (Python's view of byte 0xff)
    picture = os.fsencode(tmp_path) + b"/i-\xff.png"
    letter_picture(Path(os.fsdecode(picture)))
    proc = subprocess.run([sys.executable, "-m", "xpnet", "predict", str(letters_model(tmp_path)), picture,
                           "--backend", "numpy"], capture_output=True, timeout=60)
    assert proc.returncode == 0 and b"i-\\udcff.png: " in proc.stdout, proc.stderr  # was UnicodeEncodeError


# -- damaged letters cache: one line, regenerated ------------------------------------------

@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "zero-bytes"])
def test_a_damaged_letters_cache_is_one_warning_and_regenerated(tmp_path, damage):
    from xpnet.train.data import load_data

    small = dict(n_train=60, n_test=30, progress=False, cache_dir=tmp_path)
    first = load_data("letters", **small)
    path = Path(first.info["cache_file"])
    data = path.read_bytes()
    middle = len(data) // 2  # inside X_train's bytes: only the zip member's CRC-32 can tell
    path.write_bytes({"flipped-byte": data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1:],
                      "truncated": data[:middle], "zero-bytes": b""}[damage])
    with pytest.warns(UserWarning) as caught:
        again = load_data("letters", **small)  # was BadZipFile / EOFError, every run after
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "is damaged" in messages[0] and "regenerating" in messages[0], messages
    assert "\n" not in messages[0]
    assert again.info["cache_hit"] is False
    np.testing.assert_array_equal(again.X_train, first.X_train)
    assert load_data("letters", **small).info["cache_hit"] is True  # and rewritten whole


# -- npz memory bombs and hostile labels: checked before anything is allocated ---------------

def npz_with_member(path: Path, name: str, header_shape: tuple, body: bytes, **arrays) -> Path:
    """An .npz whose `name` member's .npy header declares `header_shape` over `body`."""
    import io
    import zipfile

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": "<f4", "fortran_order": False, "shape": header_shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{name}.npy", head.getvalue() + body)
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, value)
            z.writestr(f"{key}.npy", buf.getvalue())
    return path


def hostile_npz(tmp_path: Path, case: str) -> Path:
    path, y = tmp_path / f"{case}.npz", np.arange(40) % 2
    X = np.zeros((40, 4), np.float32)
    if case == "header-claims-1e11-rows":
        return npz_with_member(path, "X", (10 ** 11, 4), b"\0" * 2000, y=y)
    if case == "deflate-bomb":  # 64 MB of zeros in a 65 KB file; the budget below is 32 MB
        return npz_with_member(path, "X", (4_000_000, 4), bytes(64_000_000), y=np.arange(4_000_000) % 2)
    if case == "label-10^6":
        np.savez(path, X=np.zeros((200_000, 1), np.float32), y=np.arange(200_000) % 2 * 10 ** 6)
    elif case == "uint64-2^64-1":
        np.savez(path, X=X, y=np.where(y == 1, np.uint64(2 ** 64 - 1), np.uint64(0)))
    elif case == "classes-not-utf8":
        np.savez(path, X=X, y=y, classes=np.array([b"a\xff", b"b"]))
    else:  # duplicate class names
        np.savez(path, X=X, y=y, classes=np.array(["cat", "cat"]))
    return path


@pytest.mark.parametrize("case, needle", [
    ("header-claims-1e11-rows", "declares (100000000000, 4)"),
    ("deflate-bomb", "over xpnet's budget"),
    ("label-10^6", "label 1000000"),
    ("uint64-2^64-1", "label 18446744073709551615"),
    ("classes-not-utf8", "not UTF-8"),
    ("duplicate-classes", "'cat' more than once"),
])
def test_npz_bombs_and_hostile_labels_are_one_line_before_allocating(capsys, tmp_path, monkeypatch, case, needle):
    import xpnet.train.data.npz as npz

    monkeypatch.setattr(npz, "memory_budget", lambda: 32 << 20)  # so the bomb need not be 7 GB here
    path = hostile_npz(tmp_path, case)
    started = time.monotonic()
    code, _, err = run_cli(capsys, *train_argv(f"npz:{path}", tmp_path / "run"))
    assert_one_line_error(code, err, needle)
    assert time.monotonic() - started < 10 and not (tmp_path / "run").exists()
