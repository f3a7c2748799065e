"""The `xpnet` command as a user meets it: every bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from assertions import assert_one_line_error, run_cli
from xpnet.train.cli import main


@pytest.fixture
def toy_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] * X[:, 2] > 0)
    path = tmp_path / "toy.npz"
    np.savez(path, X=X[:500], y=y[:500], X_test=X[500:], y_test=y[500:])
    return path


def train_toy(capsys, toy_npz, tmp_path, *extra, name="run"):
    out_dir = tmp_path / name
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{toy_npz}", "--epochs", "3", "--layers", "16",
                             "--out", str(out_dir), "--no-progress", "--backend", "numpy", *extra)
    return code, out, err, out_dir


@pytest.mark.parametrize("argv, needles", [
    (["--backend", "nosuch"], ["unknown backend 'nosuch'", "numpy"]),
    (["--backend", "cupy"], ["cupy"]),
    (["--backend", "numpy", "--device", "cuda"], ["CPU only"]),
    (["--activation", "swish"], ["unknown activation 'swish'", "sigmoid"]),
    (["--loss", "hinge"], ["unknown loss 'hinge'"]),
    (["--optimizer", "lion"], ["unknown optimizer 'lion'"]),
    (["--init", "zeros"], ["unknown init 'zeros'"]),
    (["--lr", "-1"], ["--lr"]),
    (["--lr", "fast"], ["--lr"]),
    (["--batch-size", "0"], ["--batch-size"]),
    (["--epochs", "x"], ["--epochs"]),
    (["--layers", "12,a"], ["--layers"]),
    (["--layers", "256,,128"], ["--layers", "256,,128"]),
    (["--layers", ","], ["--layers"]),
    (["--data", "npz:/no/such/file.npz"], ["/no/such/file.npz"]),
    (["--data", "ftp:thing"], ["ftp"]),
])
def test_train_bad_input_is_one_line(capsys, tmp_path, argv, needles):
    if argv[:2] == ["--backend", "cupy"]:
        pytest.importorskip("array_api_compat")
        try:
            import cupy  # noqa: F401
            pytest.skip("cupy is installed here; its error path is tested where it is missing")
        except ImportError:
            pass
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "r"), "--no-progress", *argv)
    assert_one_line_error(code, err, *needles)


@pytest.mark.parametrize("argv, needles", [
    (["train", "--epocs", "3"], ["xpnet train: error:", "--epocs", "did you mean --epochs?", "xpnet train --help"]),
    (["evaluate", "run", "--bakend", "numpy"], ["xpnet evaluate: error:", "did you mean --backend?"]),
    (["trian"], ["unknown command 'trian'", "did you mean train?"]),
    (["report", "run", "stray"], ["xpnet report: error:", "unrecognized arguments: stray"]),
])
def test_a_mistyped_flag_or_command_is_named_by_its_command_with_a_guess(capsys, argv, needles):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(code, err, *needles)


def test_train_writes_checkpoint_history_and_logs_epochs(capsys, toy_npz, tmp_path):
    code, out, err, run_dir = train_toy(capsys, toy_npz, tmp_path)
    assert code == 0, err
    assert (run_dir / "model.safetensors").is_file()
    history = json.loads((run_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert "untrained network: accuracy" in out and "1/4" in out
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == 3
    assert "samples/s" in out and "test accuracy" in out
    assert out.splitlines()[-1] == f"next: xpnet predict {run_dir} --input ROWS.csv, xpnet evaluate {run_dir}"


def test_cuda_graphs_on_a_cpu_backend_say_why_they_are_off_and_train_the_same(capsys, toy_npz, tmp_path):
    code, out, err, run_dir = train_toy(capsys, toy_npz, tmp_path, "--cuda-graphs")
    assert code == 0, err
    assert "CUDA graphs: off (numpy on cpu has no CUDA graphs)" in out.splitlines()
    assert json.loads((run_dir / "config.json").read_text())["cuda_graphs"] is True
    graphs_history = json.loads((run_dir / "history.json").read_text())
    code, out, err, run_dir = train_toy(capsys, toy_npz, tmp_path, name="plain")
    assert code == 0 and "CUDA graphs" not in out
    plain_history = json.loads((run_dir / "history.json").read_text())
    assert [r["loss"] for r in graphs_history] == [r["loss"] for r in plain_history]


def test_tf32_where_it_cannot_apply_says_it_is_off_and_why(capsys, toy_npz, tmp_path):
    code, out, err, _ = train_toy(capsys, toy_npz, tmp_path, "--tf32")
    assert code == 0, err
    assert "tf32: off (numpy on cpu has no TF32; products run in full float32)" in out.splitlines()
    code, out, err, _ = train_toy(capsys, toy_npz, tmp_path, "--tf32", "--dtype", "float64", name="double")
    assert code == 0, err
    assert "tf32: off (TF32 only speeds float32 products; products run in full float64)" in out.splitlines()


def test_regression_from_the_command_line_gets_a_linear_output_and_learns(capsys, tmp_path):
    """Float targets: a ReLU (the default) on the output would stop learning below zero."""
    from xpnet.backends import resolve_backend
    from xpnet.train.checkpoints import load_checkpoint

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3)).astype(np.float32)
    y = (X @ np.array([1.5, -2.0, 0.5]) - 1.0).astype(np.float32)  # half the targets below zero
    np.savez(tmp_path / "reg.npz", X=X[:300], y=y[:300], X_test=X[300:], y_test=y[300:])
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path / 'reg.npz'}", "--loss", "quadratic",
                             "--layers", "16", "--epochs", "8", "--lr", "0.05", "--schedule", "constant",
                             "--out", str(tmp_path / "run"),
                             "--no-progress", "--backend", "numpy")
    assert code == 0, err
    net, _ = load_checkpoint(tmp_path / "run", resolve_backend("numpy"))
    assert net.activations == ["relu", "identity"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]


def test_unwritable_output_folder_is_one_line(capsys, toy_npz, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{toy_npz}", "--out", str(blocker / "run"),
                           "--no-progress", "--backend", "numpy")
    assert_one_line_error(code, err, "--out")


def test_evaluate_reads_a_run_folder(capsys, toy_npz, tmp_path):
    code, _, err, run_dir = train_toy(capsys, toy_npz, tmp_path)
    assert code == 0, err
    code, out, err = run_cli(capsys, "evaluate", str(run_dir), "--data", f"npz:{toy_npz}", "--backend", "numpy")
    assert code == 0, err
    assert "accuracy" in out
    assert (run_dir / "confusion.json").is_file()


@pytest.mark.parametrize("content", [b"", b"junk" * 10, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}....."])
def test_evaluate_bad_checkpoint_is_one_line(capsys, tmp_path, toy_npz, content):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    code, _, err = run_cli(capsys, "evaluate", str(bad), "--data", f"npz:{toy_npz}", "--backend", "numpy")
    assert_one_line_error(code, err, "bad.safetensors")


def test_evaluate_missing_checkpoint_is_one_line(capsys, tmp_path, toy_npz):
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "nope.safetensors"), "--data", f"npz:{toy_npz}")
    assert_one_line_error(code, err, "nope.safetensors")


def test_backends_table_lists_every_backend(capsys):
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    for name in ("numpy", "cupy", "torch", "array_api_strict"):
        assert any(line.startswith(name) for line in out.splitlines()), name
    assert "numpy" in out and "yes" in out


def test_parity_command_passes_and_prints_the_table(capsys):
    code, out, _ = run_cli(capsys, "parity", "--steps", "5")
    assert code == 0, out
    assert "numpy             cpu     float64" in out
    assert "array_api_strict" in out
    assert " FAIL" not in out
    assert out.strip().splitlines()[-1].endswith("0 failed")


def test_console_script_runs_without_traceback(tmp_path):
    """The installed entry point, as a subprocess: usage error is one line, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "xpnet", "train", "--lr", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_help_lists_what_the_tables_hold(capsys):
    """The choices in `xpnet train --help` come from the tables that define them, so a new
    activation, loss, init, optimizer, backend or data source shows there without an edit."""
    from xpnet.backends import BACKENDS
    from xpnet.model.activations import ACTIVATIONS
    from xpnet.model.init import INITS
    from xpnet.model.losses import LOSSES
    from xpnet.train.data.spec import SCHEMES
    from xpnet.train.optimizers import OPTIMIZERS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.replace("-\n", "-").split()).replace("- ", "-")
    for table in (ACTIVATIONS, LOSSES, INITS, OPTIMIZERS, BACKENDS, SCHEMES.values()):
        for name in table:
            assert name in text, name
    from xpnet.train.config import PRESETS
    for preset, settings in PRESETS.items():  # a preset's own epochs, batch and rate are the defaults it gives
        for name in ("epochs", "batch_size", "lr"):
            if name in settings:
                assert f"{preset}'s {settings[name]:g}" in text, (preset, name)
