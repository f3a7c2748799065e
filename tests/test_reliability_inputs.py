"""Bad input through the command line: one line on stderr, a non-zero exit, nothing half-written.

The loaders' own tests (test_data_*.py, test_checkpoint_format.py) hold each message; these
tests hold what the user meets at the command line, and that a refused input leaves no run
folder behind. Bad data and settings are here; evaluate and predict on what does not fit:
test_reliability_inputs_evaluate.py; a full disk: test_reliability_inputs_full_disk.py.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assertions import assert_one_line_error, run_cli
from toy_runs import toy, train_argv


# -- data ------------------------------------------------------------------------------

@pytest.mark.parametrize("override, needle", [
    (dict(y=np.zeros(59, np.int64)), "59 entries for 60 samples"),
    (dict(X=np.zeros((0, 6), np.float32), y=np.zeros(0, np.int64), X_test=None, y_test=None), "empty"),
    (dict(X=np.full((60, 6), np.nan, np.float32)), "NaN"),
    (dict(X_test=np.full((20, 6), np.inf, np.float32)), "infinite"),
    (dict(y=-np.ones(60, np.int64)), "negative label"),
    (dict(y=np.array(["a"] * 60)), "integer labels or float targets"),
], ids=["length-mismatch", "empty", "nan-inputs", "inf-test-inputs", "negative-labels", "string-labels"])
def test_bad_data_file_is_one_line_and_creates_no_run_folder(capsys, tmp_path, override, needle):
    data = toy(tmp_path, **override)
    code, _, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run"))
    assert_one_line_error(code, err, needle, "toy.npz")
    assert not (tmp_path / "run").exists()


def test_float_class_labels_are_not_silently_trained_as_one_output(capsys, tmp_path):
    """y = [0., 2., 1., ...] read as floats means regression; under cross-entropy a 1-output
    network's loss is 0 whatever it does, so training would "succeed" and learn nothing.
    Asked for cross-entropy: one line, before anything is written. Without --loss, float
    targets are regression (issue 16), said in the log, with a warning that whole-number
    targets might be classes."""
    data = toy(tmp_path)
    with np.load(data) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(data, **dict(arrays, y=arrays["y"].astype(np.float32), y_test=arrays["y_test"].astype(np.float32)))
    code, out, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run", "--loss", "cross_entropy"))
    assert_one_line_error(code, err, "float", "integer", "quadratic")
    assert not (tmp_path / "run").exists()
    # the default: regression under the quadratic loss, said, with the warning
    code, out, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "reg", "--activation", "tanh"))
    assert code == 0, err
    assert "regression (float targets): loss quadratic" in out and "-> 1  tanh  quadratic" in out
    assert "warning: every target" in out and "save them as integers" in out


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray, images_magic: int = 0x803) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", images_magic, *images.shape)
                                                     + images.astype(np.uint8).tobytes())
    (folder / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, len(labels))
                                                     + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("damage, needle", [
    ("magic", "bad magic number"),
    ("truncated", "truncated"),
    ("labels", "outside 0..9"),
])
def test_damaged_idx_files_through_the_cli_are_one_line(capsys, tmp_path, damage, needle):
    images, labels = np.zeros((5, 28, 28), np.uint8), np.arange(5)
    write_idx(tmp_path / "idx", images, labels if damage != "labels" else labels + 8,
              images_magic=0x801 if damage == "magic" else 0x803)
    if damage == "truncated":
        path = tmp_path / "idx" / "train-images-idx3-ubyte"
        path.write_bytes(path.read_bytes()[:-1])
    code, _, err = run_cli(capsys, *train_argv(f"idx:{tmp_path / 'idx'}", tmp_path / "run"))
    assert_one_line_error(code, err, needle, "idx1-ubyte" if damage == "labels" else "idx3-ubyte")
    assert not (tmp_path / "run").exists()


# -- settings: refused before anything is written ----------------------------------------

@pytest.mark.parametrize("argv, needle, usage", [
    (["--activation", "swish"], "unknown activation", False),
    (["--loss", "hinge"], "unknown loss", False),
    (["--optimizer", "lion"], "unknown optimizer", False),
    (["--init", "zeros"], "unknown init", False),
    (["--lr", "0"], "--lr", True),
    (["--lr", "-0"], "--lr", True),
    (["--lr", "nan"], "--lr", True),
    (["--lr", "inf"], "--lr", True),
    (["--lr", "1e999"], "--lr", True),
    (["--batch-size", "-3"], "--batch-size", True),
    (["--epochs", "0"], "--epochs", True),
    (["--patience", "0"], "--patience", True),
    (["--train-samples", "0"], "--train-samples", True),
    (["--layers", "8,0"], "--layers", True),
    (["--seed", "-1"], "seed", False),
    (["--dtype", "float16"], "--dtype", True),
], ids=lambda v: "-".join(v) if isinstance(v, list) else None)
def test_bad_settings_are_one_line_and_write_nothing(capsys, tmp_path, argv, needle, usage):
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run"), *argv)
    assert_one_line_error(code, err, needle)
    assert code == (2 if usage else 1)
    assert err.startswith("xpnet train: error:" if usage else "xpnet: error:")
    assert not (tmp_path / "run").exists()


def test_output_that_is_a_file_is_one_line(capsys, tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "taken"))
    assert_one_line_error(code, err, "taken", "--out")
    assert (tmp_path / "taken").read_text() == "a file, not a folder"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write into a read-only folder")
def test_read_only_output_folder_is_one_line(capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", locked / "run"))
        assert_one_line_error(code, err, "--out")
        code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", locked))
        assert_one_line_error(code, err, "not writable", "--out")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("name, content, expected", [
    ("data.csv", b"a,b\n1,2\n", "is not an .npz archive (nor a zip file at all)"),
    ("noise.npz", bytes(range(7, 107)), "is not an .npz archive (nor a zip file at all)"),
    ("pk.npz", b"PKxxxx garbage", "is not an .npz archive (nor a zip file at all)"),
    ("empty.npz", b"", "is empty"),
], ids=["csv", "random-bytes", "PK-but-no-zip", "empty"])
def test_a_file_that_is_no_npz_is_not_said_to_hold_python_objects(capsys, tmp_path, name, content, expected):
    """numpy reads a file with no zip or .npy header as a pickle, and refuses it as 'Python
    objects': a CSV given as npz: was told it held objects, which sends the user the wrong way."""
    path = tmp_path / name
    path.write_bytes(content)
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{path}", "--no-progress", "--out", str(tmp_path / "run"))
    assert code == 1 and expected in err and "Python objects" not in err, err


def test_npz_and_folder_sources_given_the_other_kind_say_which_to_use(capsys, tmp_path):
    archive = tmp_path / "d.npz"
    np.savez(archive, X=np.zeros((4, 2)), y=np.arange(4) % 2)
    _, _, err = run_cli(capsys, "train", "--data", f"folder:{archive}", "--no-progress", "--out", str(tmp_path / "a"))
    assert "is a file, not a folder" in err and f"npz:{archive}" in err, err
    _, _, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path}", "--no-progress", "--out", str(tmp_path / "b"))
    assert "is a folder, not an .npz archive" in err and f"folder:{tmp_path}" in err, err


def test_cli_warnings_are_one_line(tmp_path):
    """A skipped image in a folder: data set is a warning, printed as one xpnet line, not
    Python's two (the warning's source file and line, then the code that raised it)."""
    for name in ("a", "b"):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            ink = np.zeros((28, 28), np.uint8)
            ink[5 + i:20, 8:20 - i] = 255
            Image.fromarray(ink).save(tmp_path / "imgs" / name / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not an image")
    argv = ["train", "--data", f"folder:{tmp_path / 'imgs'}", "--epochs", "1", "--no-progress",
            "--backend", "numpy", "--out", str(tmp_path / "run")]
    done = subprocess.run([sys.executable, "-m", "xpnet", *argv], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1], timeout=120)  # pytest would catch the warning itself
    err = done.stderr
    assert done.returncode == 0, err
    warned = [line for line in err.splitlines() if "skipped" in line]
    assert warned and warned[0].startswith("xpnet: warning: ") and "broken.png" in warned[0], err
    assert "UserWarning" not in err and ".py:" not in err, err


def test_a_negative_parity_seed_is_one_line(capsys):
    """numpy's generators refuse a negative seed with a traceback from deep inside them."""
    code, _, err = run_cli(capsys, "parity", "--seed", "-1")
    assert code == 2 and err.count("\n") == 1 and "--seed" in err and "-1" in err, err


def test_classes_training_never_shows_are_a_warning(capsys, tmp_path):
    """Labels 0 and 7 make an 8-output network; held-out labels the training set lacks can
    only be wrong. Legal, almost always a mistake: one warning each, and training goes on."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3)).astype(np.float32)
    y = np.where(X[:, 0] > 0, 7, 0)
    data = tmp_path / "gaps.npz"
    np.savez(data, X=X, y=y, X_test=X[:10], y_test=np.array([5, 6] * 5))
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                             "--no-progress", "--backend", "numpy", "--out", str(tmp_path / "run"))
    assert code == 0, err
    warned = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warned) == 2, out
    assert "6 of 8 classes have no training sample (1, 2, 3, 4, 5, ...)" in warned[0]
    assert "held-out set has samples of classes training never shows (5, 6)" in warned[1]
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    code, out, _ = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                           "--no-progress", "--backend", "numpy", "--out", str(tmp_path / "run3"))
    assert code == 0 and "warning:" not in out, out


def test_evaluate_with_an_unwritable_out_says_so_before_scoring(capsys, tmp_path):
    """It used to print the accuracy line, then fail on --out: the error alone, first."""
    data = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--epochs", "1", "--layers", "4",
                           "--no-progress", "--backend", "numpy", "--out", str(run))
    assert code == 0, err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = run_cli(capsys, "evaluate", str(run), "--out", str(blocker / "report"))
    assert code == 1 and out == "" and err.count("\n") == 1, (out, err)


def test_a_regression_run_folder_has_its_loss_curve_too(capsys, tmp_path):
    """The README promises pictures in every run folder; regression had none."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2)).astype(np.float32)
    data = tmp_path / "r.npz"
    np.savez(data, X=X, y=(X[:, 0] - X[:, 1]).astype(np.float32))
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{data}", "--loss", "quadratic", "--epochs", "2",
                             "--layers", "4", "--no-progress", "--backend", "numpy", "--out", str(run))
    assert code == 0, err
    assert (run / "curves.png").stat().st_size > 1000 and f"wrote {run / 'curves.png'}" in out
    assert not (run / "confusion.png").exists()
