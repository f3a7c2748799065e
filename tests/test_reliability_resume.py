"""Resuming, diverging and repeating a run: the numbers on disk are the numbers computed.

- `xpnet train --resume RUN` (and `learn(..., resume=state)`) carries on from the last
  checkpoint and, on numpy, ends bitwise identical to a run never interrupted: weights,
  optimizer state tensors and counters, shuffling state, and the history's losses.
- Resuming with a changed setting, or a folder that holds no resumable run, is one line.
- A run whose loss blows up stops with one line naming the epoch, the step, the rate and a
  smaller one to try; what stays on disk is the last good epoch.
- The same seed on the same backend gives the same bits, run after run.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xpnet.backends import BackendError, resolve_backend
from xpnet.model import Network
from xpnet.model.checkpoint import read
from xpnet.train import learn
from xpnet.train.checkpoints import load_checkpoint, load_for_resume, save_checkpoint
from xpnet.train.answers import evaluate

from test_cli import assert_one_line_error, run_cli

TIMING_KEYS = {"seconds", "samples_per_s"}  # the only history entries allowed to differ between runs


# -- helpers ---------------------------------------------------------------------------

def make_npz(folder: Path, name: str = "toy.npz", n: int = 120, features: int = 6, held_out: bool = True,
             random_test_labels: bool = False) -> Path:
    """Four classes of a few features; the held-out labels may be noise (to force early stopping)."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((n + 40, features)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] * X[:, 2] > 0)
    if random_test_labels:
        y[n:] = rng.integers(0, 4, 40)
    arrays = dict(X=X[:n], y=y[:n])
    if held_out:
        arrays.update(X_test=X[n:], y_test=y[n:])
    path = folder / name
    np.savez(path, **arrays)
    return path


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    """A small run; its rate constant, since these tests extend finished runs (3 epochs, then
    --resume --epochs 6) and a cosine schedule spans the run's total, which extending changes.
    An interrupted run resumed to its own total is the same under any schedule (test_schedules)."""
    return ["train", "--data", f"npz:{data}", "--layers", "16", "--batch-size", "16", "--out", str(out),
            "--no-progress", "--backend", "numpy", "--schedule", "constant", *extra]


def train_ok(capsys, *argv: str) -> str:
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    return out


def saved(run: Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a run's checkpoint, digest verified."""
    return read((run / "model.safetensors").read_bytes(), str(run))


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS}
            for r in json.loads((run / "history.json").read_text())]


def assert_same_run(a: Path, b: Path) -> None:
    """Two runs agree bit for bit: every tensor (weights and optimizer state), the training
    state (epoch, step, rate, counters, generator state, early-stopping bookkeeping), history."""
    (ta, ma), (tb, mb) = saved(a), saved(b)
    assert sorted(ta) == sorted(tb)
    for name in ta:
        assert ta[name].dtype == tb[name].dtype and ta[name].shape == tb[name].shape, name
        assert ta[name].tobytes() == tb[name].tobytes(), f"{name} differs"
    for key in ("training_state", "epochs", "accuracy", "architecture"):
        assert ma[key] == mb[key], key
    assert history(a) == history(b)


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


# -- resume refusals: one line, nothing touched -----------------------------------------

@pytest.fixture
def finished_run(capsys, tmp_path):
    data = make_npz(tmp_path)
    train_ok(capsys, *train_args(data, tmp_path / "run", "--epochs", "2"))
    return tmp_path / "run"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("argv, flag", [
    (["--lr", "0.5"], "--lr"),
    (["--layers", "8"], "--hidden"),
    (["--optimizer", "adam"], "--optimizer"),
    (["--batch-size", "4"], "--batch-size"),
    (["--seed", "3"], "--seed"),
    (["--data", "letters"], "--data"),
    (["--preset", "course"], "--preset"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_resume_refuses_a_changed_setting_in_one_line(capsys, finished_run, argv, flag):
    before = files_of(finished_run)
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "4", "--no-progress", *argv)
    assert_one_line_error(code, err, flag, "cannot change when resuming")
    assert files_of(finished_run) == before


def test_resume_of_a_folder_that_is_not_a_run_is_one_line(capsys, tmp_path):
    (tmp_path / "empty").mkdir()
    for target in (tmp_path / "empty", tmp_path / "missing"):
        code, _, err = run_cli(capsys, "train", "--resume", str(target), "--no-progress")
        assert_one_line_error(code, err, str(target), "not a run folder")
    assert not (tmp_path / "missing").exists()


def test_resume_of_a_run_without_a_checkpoint_is_one_line(capsys, finished_run):
    (finished_run / "model.safetensors").unlink()
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "model.safetensors")


def test_resume_of_a_truncated_checkpoint_is_one_line(capsys, finished_run):
    path = finished_run / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    before = files_of(finished_run)
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "model.safetensors")
    assert files_of(finished_run) == before


def test_resume_of_a_checkpoint_without_training_state_is_one_line(capsys, finished_run):
    net, meta = load_checkpoint(finished_run, resolve_backend("numpy"))
    save_checkpoint(net, finished_run / "model.safetensors", {"epochs": meta["epochs"]})  # no state
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "no training state")


def test_resume_refuses_another_runs_checkpoint(capsys, tmp_path, finished_run):
    """A checkpoint of another architecture dropped into the run folder is not this run."""
    data = make_npz(tmp_path, name="other.npz")
    train_ok(capsys, *train_args(data, tmp_path / "other", "--epochs", "2", "--layers", "32,8"))
    (finished_run / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    before = files_of(finished_run)
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "model.safetensors")
    assert files_of(finished_run) == before


def test_resume_with_fewer_epochs_than_done_says_so(capsys, finished_run):
    """Asking for 1 epoch of a 2-epoch run trains nothing; it must say so, not 'saved'."""
    before = files_of(finished_run)
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--epochs", "1", "--no-progress")
    assert_one_line_error(code, err, "2")
    assert files_of(finished_run) == before


# -- divergence: one line, the last good epoch kept ------------------------------------

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


def test_a_new_run_never_writes_over_a_trained_one(capsys, finished_run):
    before = files_of(finished_run)
    code, _, err = run_cli(capsys, "train", "--out", str(finished_run), "--epochs", "1", "--no-progress",
                           "--data", "npz:/no/such/data.npz")  # refused before the data is read
    assert_one_line_error(code, err, "already holds a trained run", "--resume")
    assert files_of(finished_run) == before


def test_resuming_a_finished_run_says_only_why_it_cannot(capsys, finished_run):
    """It used to log 'resuming RUN after epoch N' and then refuse: one line, the refusal."""
    code, out, err = run_cli(capsys, "train", "--resume", str(finished_run), "--no-progress")
    assert code == 1 and "already trained" in err and "resuming" not in out, (out, err)
    assert "xpnet report" not in err  # its report is whole


def test_resuming_a_finished_run_whose_report_was_killed_says_how_to_draw_it(capsys, finished_run):
    """Found by the attack: after a SIGKILL while the report was drawn, --resume said only
    'give --epochs above N', though the run needed `xpnet report`, not more epochs."""
    (finished_run / "curves.png").unlink()  # drawn last: what a report killed midway lacks
    code, _, err = run_cli(capsys, "train", "--resume", str(finished_run), "--no-progress")
    assert_one_line_error(code, err, "already trained", f"xpnet report {finished_run} draws it")
