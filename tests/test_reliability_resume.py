"""Resuming and repeating a run: the numbers on disk are the numbers computed.

- `xpnet train --resume RUN` (and `learn(..., resume=state)`) carries on from the last
  checkpoint and, on numpy, ends bitwise identical to a run never interrupted: weights,
  optimizer state tensors and counters, shuffling state, and the history's losses.
- The same seed on the same backend gives the same bits, run after run.

Refused resumes: test_reliability_resume_refusals.py; a run that diverges or is stopped:
test_reliability_resume_stops.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xpnet.backends import BackendError, resolve_backend
from xpnet.model import Network
from xpnet.train import learn
from xpnet.train.checkpoints import load_checkpoint, load_for_resume, save_checkpoint

from assertions import run_cli
from toy_runs import assert_same_run, history, make_npz, saved, train_args, train_ok


# -- resume: bitwise identical to never stopping ---------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("validation", [False, True], ids=["no-validation", "validation-patience"])
def test_resume_ends_bitwise_identical_to_an_uninterrupted_run(capsys, tmp_path, optimizer, validation):
    data = make_npz(tmp_path, held_out=validation)
    extra = ["--optimizer", optimizer, "--lr", "0.01" if optimizer == "adam" else "0.1"]
    extra += ["--patience", "3"] if validation else []
    train_ok(capsys, *train_args(data, tmp_path / "whole", "--epochs", "6", *extra))
    train_ok(capsys, *train_args(data, tmp_path / "split", "--epochs", "3", *extra))
    out = train_ok(capsys, "train", "--resume", str(tmp_path / "split"), "--epochs", "6", "--no-progress")
    assert "resuming" in out and "after epoch 3" in out
    # a healthy run must not cry wolf (patience on a held-out set is rightly warned about)
    assert not [line for line in out.splitlines() if "warning" in line and "--patience stops on the held-out" not in line]
    assert_same_run(tmp_path / "whole", tmp_path / "split")
    tensors, meta = saved(tmp_path / "split")
    state = meta["training_state"]
    assert state["epoch"] == 6 and state["step"] == 6 * 8  # 120 samples in batches of 16
    if optimizer != "sgd":  # the optimizer's arrays travelled, so the comparison above covered them
        assert any(name.startswith("optimizer.") for name in tensors)
    if optimizer == "adam":
        assert state["counters"] == {"t": 48}
    assert [r["epoch"] for r in history(tmp_path / "split")] == [1, 2, 3, 4, 5, 6]


def test_lr_auto_run_resumes_with_the_rate_it_chose(capsys, tmp_path):
    data = make_npz(tmp_path)
    train_ok(capsys, *train_args(data, tmp_path / "whole", "--epochs", "4", "--lr", "auto"))
    train_ok(capsys, *train_args(data, tmp_path / "split", "--epochs", "2", "--lr", "auto"))
    out = train_ok(capsys, "train", "--resume", str(tmp_path / "split"), "--epochs", "4", "--no-progress")
    assert "lr auto:" not in out  # no new search: the chosen rate is part of the saved state
    assert_same_run(tmp_path / "whole", tmp_path / "split")


def test_early_stopping_counts_carry_across_a_resume(capsys, tmp_path):
    """Split after the best epoch, so the count of epochs without improvement must travel."""
    data = make_npz(tmp_path, random_test_labels=True)
    extra = ["--patience", "2", "--optimizer", "sgd", "--lr", "0.05", "--epochs", "60"]
    out = train_ok(capsys, *train_args(data, tmp_path / "whole", *extra))
    assert "early stop" in out
    val = [r["val_loss"] for r in history(tmp_path / "whole")]
    best, stopped = int(np.argmin(val)) + 1, len(val)
    assert stopped == best + 2 < 60, val  # the premise: it stopped early, two epochs after its best
    train_ok(capsys, *train_args(data, tmp_path / "split", *extra[:-1], str(best + 1)))
    out = train_ok(capsys, "train", "--resume", str(tmp_path / "split"), "--epochs", "60", "--no-progress")
    assert "early stop" in out
    assert_same_run(tmp_path / "whole", tmp_path / "split")


def test_python_api_resume_from_a_saved_state_is_bitwise_identical(tmp_path):
    numpy = resolve_backend("numpy")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((90, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    settings = dict(batch_size=16, lr=0.01, optimizer="adam", seed=7, validation=(X[:30], y[:30]), log=None)
    final = {}
    whole = learn(Network.from_sizes([5, 12, 2], numpy, seed=2), (X, y), epochs=5,
                  on_epoch=lambda model, record, state: final.update(state=state), **settings)

    def save(model, record, state):
        save_checkpoint(model, tmp_path / "m.safetensors", {"epochs": record["epoch"]}, state)

    learn(Network.from_sizes([5, 12, 2], numpy, seed=2), (X, y), epochs=2, on_epoch=save, **settings)
    net, _, state = load_for_resume(tmp_path / "m.safetensors", numpy)
    assert state.epoch == 2 and state.step == 2 * 6 and state.optimizer.t == 2 * 6
    resumed = learn(net, (X, y), epochs=5, resume=state, **settings)
    for a, b in zip(whole.params, resumed.params):
        assert a.tobytes() == b.tobytes()
    expected, got = final["state"].optimizer.state(), state.optimizer.state()
    assert sorted(expected) == sorted(got) and expected
    for key in expected:
        assert expected[key].tobytes() == got[key].tobytes(), key
    assert (state.epoch, state.step, state.optimizer.t) == (5, 30, 30)
    assert state.rng.bit_generator.state == final["state"].rng.bit_generator.state
    assert [r["loss"] for r in whole.history[2:]] == [r["loss"] for r in resumed.history]
    assert [r["val_loss"] for r in whole.history[2:]] == [r["val_loss"] for r in resumed.history]


@pytest.mark.slow
def test_resume_after_sigkill_mid_run_is_bitwise_identical(capsys, tmp_path):
    data = make_npz(tmp_path)
    epochs = "80"
    argv = train_args(data, tmp_path / "killed", "--epochs", epochs, "--optimizer", "adam", "--lr", "0.001")
    proc = subprocess.Popen([sys.executable, "-m", "xpnet", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "killed" / "history.json").exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(np.random.default_rng(5).uniform(0.0, 0.2))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = load_checkpoint(tmp_path / "killed", resolve_backend("numpy"))[1]["epochs"]
    assert 1 <= done < int(epochs), "the kill must land mid-run"
    train_ok(capsys, "train", "--resume", str(tmp_path / "killed"), "--no-progress")
    train_ok(capsys, *train_args(data, tmp_path / "whole", "--epochs", epochs, "--optimizer", "adam",
                                 "--lr", "0.001"))
    assert_same_run(tmp_path / "whole", tmp_path / "killed")


class Crash(BaseException):
    """Stands in for SIGKILL in-process: nothing catches it, nothing after it runs."""


def test_a_crash_between_the_history_and_checkpoint_writes_loses_no_epoch_record(capsys, tmp_path, monkeypatch):
    """Each epoch writes two files; a crash between them must not cost the resumed run a record."""
    import xpnet.train.runs as runs  # where each epoch's two writes happen (epoch_saver)

    data = make_npz(tmp_path)
    wrote = []

    def second_write_of_epoch_3_crashes(epoch: int):
        if epoch == 3 and wrote.count(3) == 1:
            raise Crash()
        wrote.append(epoch)

    real_save, real_json = runs.save_checkpoint, runs.atomic_write_json

    def save_checkpoint(net, path, metadata=None, state=None):
        second_write_of_epoch_3_crashes(metadata["epochs"])
        return real_save(net, path, metadata, state)

    def atomic_write_json(path, obj):
        if Path(path).name == "history.json":
            second_write_of_epoch_3_crashes(len(obj))
        return real_json(path, obj)

    monkeypatch.setattr(runs, "save_checkpoint", save_checkpoint)
    monkeypatch.setattr(runs, "atomic_write_json", atomic_write_json)
    with pytest.raises(Crash):
        run_cli(capsys, *train_args(data, tmp_path / "split", "--epochs", "5"))
    monkeypatch.undo()
    train_ok(capsys, "train", "--resume", str(tmp_path / "split"), "--no-progress")
    train_ok(capsys, *train_args(data, tmp_path / "whole", "--epochs", "5"))
    assert [r["epoch"] for r in history(tmp_path / "split")] == [1, 2, 3, 4, 5]
    assert_same_run(tmp_path / "whole", tmp_path / "split")


# -- determinism: same seed, same backend, same bits -------------------------------------

@pytest.mark.parametrize("name", ["numpy", "array_api_strict", "torch"])
def test_same_seed_gives_bitwise_identical_runs(capsys, tmp_path, name):
    try:
        resolve_backend(name, "cpu")
    except BackendError as exc:
        pytest.skip(f"{name} unavailable here: {exc}")
    data = make_npz(tmp_path, n=96)
    for run in ("first", "second"):
        train_ok(capsys, "train", "--data", f"npz:{data}", "--layers", "16,8", "--batch-size", "16", "--epochs", "3",
                 "--optimizer", "adam", "--lr", "0.01", "--seed", "11", "--out", str(tmp_path / run),
                 "--no-progress", "--backend", name, "--device", "cpu")
    assert saved(tmp_path / "first")[1]["backend"] == name
    assert_same_run(tmp_path / "first", tmp_path / "second")
