"""Evaluate and predict on data or a checkpoint that does not fit the model: one line on
stderr, a non-zero exit, the run folder untouched; and a reader that leaves early gets no
traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train.checkpoints import save_checkpoint

from assertions import assert_one_line_error, run_cli
from toy_runs import toy, train_argv


@pytest.fixture
def run(capsys, tmp_path):
    """A finished two-epoch run on 6-feature, 4-class data."""
    code, _, err = run_cli(capsys, *train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run"))
    assert code == 0, err
    return tmp_path / "run"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- evaluate and predict: a checkpoint that does not fit --------------------------------

def test_evaluate_on_data_of_another_width_is_one_line(capsys, tmp_path, run):
    before = snapshot(run)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{toy(tmp_path, 'w4.npz', features=4)}",
                           "--backend", "numpy")
    assert_one_line_error(code, err, "4 features", "takes 6")
    assert snapshot(run) == before  # no confusion matrix of a model that was never run


def test_evaluate_on_labels_beyond_the_model_classes_is_one_line(capsys, tmp_path, run):
    data = toy(tmp_path, "nine.npz", y_test=np.arange(20) % 9)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{data}", "--backend", "numpy")
    assert_one_line_error(code, err, "tells 4 classes", "has 9")


def test_a_single_class_is_one_line(capsys, tmp_path):
    """One class: a one-output softmax is always right and its loss always 0; nothing to learn.
    Said of the training data, before a network or a run folder is made."""
    data = toy(tmp_path, "one.npz", y=np.zeros(60, np.int64), y_test=np.zeros(20, np.int64))
    code, _, err = run_cli(capsys, *train_argv(f"npz:{data}", tmp_path / "run"))
    assert_one_line_error(code, err, "holds a single class (0)", "at least two")
    assert not (tmp_path / "run").exists()


def test_evaluate_on_fewer_classes_than_the_model_is_one_line(capsys, tmp_path, run):
    """Labels 0..1 fit inside a 4-class model's range, so only the class count tells."""
    data = toy(tmp_path, "two.npz", y_test=np.arange(20) % 2, y=np.arange(60) % 2)
    code, _, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{data}", "--backend", "numpy")
    assert_one_line_error(code, err, "tells 4 classes", "has 2")


def test_evaluate_takes_the_runs_own_data_and_says_when_it_has_no_held_out_part(capsys, tmp_path, run):
    code, out, err = run_cli(capsys, "evaluate", str(run), "--backend", "numpy")
    assert code == 0, err
    assert "on 20 held-out samples" in out  # the run's npz, not the default letters
    whole = toy(tmp_path, "whole.npz", X_test=None, y_test=None)
    code, out, err = run_cli(capsys, "evaluate", str(run), "--data", f"npz:{whole}", "--backend", "numpy")
    assert code == 0, err
    assert "held-out samples" not in out and "60 samples of" in out
    assert "(no held-out part: the run may have trained on them)" in out


def test_the_same_classes_in_another_order_are_relabelled_by_name(capsys, tmp_path):
    named = toy(tmp_path, "named.npz", classes=np.array(["a", "b", "c", "d"]))
    code, _, err = run_cli(capsys, *train_argv(f"npz:{named}", tmp_path / "run"))
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert code == 0, err
    as_trained = out.splitlines()[0].split("accuracy")[1]
    arrays = dict(np.load(named))
    swap = np.array([1, 0, 2, 3])  # a <-> b: the same names, listed in another order
    arrays.update(classes=np.array(["b", "a", "c", "d"]), y=swap[arrays["y"]], y_test=swap[arrays["y_test"]])
    np.savez(tmp_path / "permuted.npz", **arrays)
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--data", f"npz:{tmp_path / 'permuted.npz'}",
                             "--backend", "numpy")
    assert code == 0, err
    assert out.splitlines()[0].split("accuracy")[1] == as_trained


def test_a_regression_run_on_class_labels_is_one_line(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 6)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", X=X[:60], y=X[:60, 0], X_test=X[60:], y_test=X[60:, 0])
    code, _, err = run_cli(capsys, *train_argv(f"npz:{tmp_path / 'reg.npz'}", tmp_path / "run", "--loss", "quadratic"))
    assert code == 0, err
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--data", f"npz:{toy(tmp_path)}",
                           "--backend", "numpy")
    assert_one_line_error(code, err, "is a regression model")


def test_a_run_evaluates_from_another_folder(capsys, tmp_path, monkeypatch):
    """The run records its data's absolute path, so a relative --data still loads from elsewhere."""
    monkeypatch.chdir(tmp_path)
    toy(tmp_path, "here.npz")
    code, _, err = run_cli(capsys, *train_argv("npz:here.npz", tmp_path / "run"))
    assert code == 0, err
    monkeypatch.chdir("/")
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert code == 0, err
    assert "on 20 held-out samples" in out


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`xpnet train ... | head -1`: the pipe closes under a running job."""
    import subprocess
    import sys

    argv = train_argv(f"npz:{toy(tmp_path)}", tmp_path / "run", "--epochs", "50")
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def tampered(data: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new) and data.count(old) == 1
    return data.replace(old, new)


@pytest.mark.parametrize("damage, needle", [
    ("truncated", "damaged"),
    ("header-value", "integrity check"),
    ("header-json", "not JSON"),
    ("tensor-bytes", "integrity check"),
])
def test_damaged_checkpoint_is_one_line_for_evaluate_and_predict(capsys, tmp_path, run, damage, needle):
    data = (run / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    if damage == "truncated":
        data = data[:header_end + 10]
    elif damage == "header-value":  # a plausible edit: claim more epochs, same length
        data = tampered(data, b'"epochs":"2"', b'"epochs":"9"')
    elif damage == "header-json":
        data = data[:8] + b"x" + data[9:]
    else:
        data = data[:-4] + bytes(b ^ 0xFF for b in data[-4:])
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data)
    code, _, err = run_cli(capsys, "evaluate", str(bad), "--data", f"npz:{toy(tmp_path)}", "--backend", "numpy")
    assert_one_line_error(code, err, "bad.safetensors", needle)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    code, out, err = run_cli(capsys, "predict", str(bad), str(img), "--backend", "numpy")
    assert_one_line_error(code, err, "bad.safetensors", needle)
    assert out == ""
    assert not (tmp_path / "confusion.json").exists()


def test_predict_names_the_file_that_is_not_an_image_and_reads_the_rest(capsys, tmp_path):
    numpy = resolve_backend("numpy")
    save_checkpoint(Network.from_sizes([784, 26], numpy), tmp_path / "m.safetensors",
                    {"classes": [chr(ord("A") + i) for i in range(26)]})
    good, bad, missing = tmp_path / "good.png", tmp_path / "notes.png", tmp_path / "missing.png"
    picture = np.zeros((40, 30), np.uint8)
    picture[8:32, 12:18] = 255
    Image.fromarray(picture).save(good)
    bad.write_text("not an image at all\n")
    code, out, err = run_cli(capsys, "predict", str(tmp_path / "m.safetensors"), str(bad), str(good), str(missing),
                             "--backend", "numpy")
    assert code != 0
    assert len(out.splitlines()) == 1 and out.startswith(f"{good}: ")
    errors = err.splitlines()
    assert len(errors) == 2 and "Traceback" not in err
    assert errors[0].startswith(f"{bad}: error: cannot read image") and "PNG or JPEG" in errors[0]
    assert errors[1].startswith(f"{missing}: error: cannot read image")
