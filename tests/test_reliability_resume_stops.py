"""A run that stops before its end: one whose loss blows up stops with one line naming the
epoch, the step, the rate and a smaller one to try, and a Ctrl-C says whether a checkpoint was
kept; what stays on disk is the last good epoch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.train.checkpoints import load_checkpoint, load_for_resume
from xpnet.train.answers import evaluate

from assertions import run_cli
from toy_runs import make_npz, saved, train_args


def run_subprocess(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The real command, so stderr is exactly what a user sees (warnings included)."""
    return subprocess.run([sys.executable, "-m", "xpnet", *argv], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def exploding_regression(folder: Path, out: Path, batch_size: int, epochs: int) -> list[str]:
    """h = w + b fitted to 0 from x = 1 with lr 5: every step multiplies the error by -9.

    The loss (error^2 / 2) grows 81-fold per step, stays finite for about 20 steps, then
    overflows float32: a rising, finite loss for several epochs, then a divergence.
    """
    path = folder / "ones.npz"
    np.savez(path, X=np.ones((32, 1), np.float32), y=np.zeros(32, np.float32))
    return ["train", "--data", f"npz:{path}", "--layers", "", "--activation", "identity", "--loss", "quadratic",
            "--optimizer", "sgd", "--lr", "5", "--batch-size", str(batch_size), "--epochs", str(epochs),
            "--out", str(out), "--no-progress", "--backend", "numpy"]


@pytest.mark.parametrize("batch_size", [32, 8], ids=["full-batch", "4-steps-per-epoch"])
def test_divergence_stops_in_one_line_and_keeps_the_last_good_epoch(tmp_path, batch_size):
    run = tmp_path / "run"
    proc = run_subprocess(exploding_regression(tmp_path, run, batch_size, epochs=1000), tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    match = re.fullmatch(r"xpnet: error: training diverged at epoch (\d+), step (\d+) \(step (\d+) of the epoch\): "
                         r"the loss became (infinite|NaN) with learning rate 5; try --lr 0\.5 .*", lines[0])
    assert match, lines[0]
    epoch, step, step_in_epoch = map(int, match.groups()[:3])
    assert step == (epoch - 1) * (32 // batch_size) + step_in_epoch
    assert "warning: the loss has risen" in proc.stdout  # it was said before it blew up

    numpy = resolve_backend("numpy")
    net, meta = load_checkpoint(run, numpy)
    assert meta["epochs"] == epoch - 1 >= 3
    assert all(np.isfinite(numpy.to_numpy(p)).all() for p in net.params)
    assert load_for_resume(run, numpy)[2].epoch == epoch - 1
    records = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in records] == list(range(1, epoch))
    assert all(np.isfinite(r["loss"]) for r in records)
    # (the kept weights are those after the last good epoch's steps; their own loss is what
    # the failing epoch measured first, so only a validation set could vet them earlier)


def test_a_rising_finite_loss_is_reported_as_a_warning(capsys, tmp_path):
    code, out, err = run_cli(capsys, *exploding_regression(tmp_path, tmp_path / "run", 32, epochs=6))
    assert code == 0, err
    warnings = [line for line in out.splitlines() if line.startswith("warning: the loss has risen")]
    assert warnings and all("learning rate 5" in w and "try --lr 0.5" in w for w in warnings)
    assert out.splitlines().index(warnings[0]) > out.splitlines().index(next(
        line for line in out.splitlines() if line.startswith("epoch 4/")))


def test_divergence_in_the_first_epoch_does_not_claim_a_checkpoint(tmp_path):
    """Nothing finished, nothing saved: the message must not say a checkpoint is kept."""
    data = make_npz(tmp_path)
    proc = run_subprocess(train_args(data, tmp_path / "run", "--epochs", "3", "--lr", "1e30",
                                     "--batch-size", "8"), tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "diverged at epoch 1" in lines[0] and "try --lr 1e+29" in lines[0]
    assert not (tmp_path / "run" / "model.safetensors").exists()
    assert "checkpoint is kept" not in lines[0] and "no checkpoint" in lines[0]


@pytest.mark.parametrize("epochs_done", [0, 2])
def test_ctrl_c_says_whether_a_checkpoint_was_kept(capsys, tmp_path, monkeypatch, epochs_done):
    """Ctrl-C in the first epoch used to promise 'the last finished epoch's checkpoint is
    kept' of a folder that held none."""
    from xpnet.train import jobs

    real_learn = jobs.learn

    def interrupted_learn(*args, **kwargs):
        if epochs_done:
            real_learn(*args, **{**kwargs, "epochs": epochs_done})
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "learn", interrupted_learn)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(make_npz(tmp_path), run, "--epochs", "5"))
    assert code == 130
    if epochs_done:
        assert err.strip() == (f"xpnet: interrupted; {run / 'model.safetensors'} holds the last finished epoch: "
                               f"continue it with --resume {run}")
        assert saved(run)[1]["epochs"] == epochs_done
    else:
        assert err.strip() == f"xpnet: interrupted before an epoch finished, so {run} holds no checkpoint"
        assert not (run / "model.safetensors").exists()


@pytest.mark.parametrize("where", ["load_data", "report_classification"])
def test_ctrl_c_before_training_or_in_the_report_says_what_it_stopped(capsys, tmp_path, monkeypatch, where):
    """Before the run folder exists (the letters being made) it is a plain 'interrupted'; in
    the report, training has finished and --resume would have nothing left to do."""
    from xpnet.train import context, jobs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(context if where == "load_data" else jobs, where, interrupted)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(make_npz(tmp_path), run, "--epochs", "2"))
    assert code == 130
    if where == "load_data":
        assert err == "xpnet: interrupted\n"
    else:
        assert err.strip() == (f"xpnet: interrupted while writing the report; training had finished, "
                               f"and {run / 'model.safetensors'} holds the trained network: xpnet report {run} "
                               "draws the report")
        assert saved(run)[1]["epochs"] == 2


def test_a_kept_checkpoint_never_computes_a_non_finite_loss(tmp_path):
    """lr 1e30 leaves finite but enormous weights after epoch 1 whose outputs overflow:
    that epoch is not a good one, so it must not be saved as one (nor its NaN logged as a score)."""
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    proc = run_subprocess(train_args(data, run, "--epochs", "3", "--lr", "1e30", "--batch-size", "120"), tmp_path)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "nan" not in proc.stdout.lower(), proc.stdout
    if (run / "model.safetensors").exists():
        numpy = resolve_backend("numpy")
        net, _ = load_checkpoint(run, numpy)
        ds = np.load(data)
        assert np.isfinite(evaluate(net, ds["X_test"], ds["y_test"])["loss"])
        for record in json.loads((run / "history.json").read_text()):
            assert all(np.isfinite(v) for v in record.values()), record
