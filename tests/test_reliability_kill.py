"""A finished epoch survives SIGKILL at any moment, including mid-write of its checkpoint.

A real `python -m xpnet train` process is killed with SIGKILL (no handler can run)
again and again, resumed in the same run folder each time, so later kills land while the
previous checkpoint is being replaced. After every kill what is on disk must load, the
epoch count must never go back, and `history.json` must parse and cover every epoch the
checkpoint holds.

The atomic writer (train/files.py) writes `.model.safetensors.XXXX.tmp` in the run folder
and renames it over the checkpoint; a process killed mid-write leaves that temp file behind.
One such file may be there right after a kill; the next run must clear it, so they never
pile up, and none of them ever stands in the way of loading.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from xpnet.backends import resolve_backend
from xpnet.train.checkpoints import load_checkpoint, load_for_resume
import xpnet.train.files as files
from xpnet.train.files import atomic_write
from conftest import ctrl_c_as_in_a_terminal

KILLS = 24
WIDE = 4096  # hidden width: 256 -> 4096 -> 4 is 1M weights, an 8.5 MB checkpoint with momentum


def wide_npz(folder: Path) -> Path:
    """64 samples of 256 features, 4 classes: an epoch takes milliseconds, its checkpoint longer."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 256)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + 2 * (X[:, 1] > 0)
    path = folder / "wide.npz"
    np.savez(path, X=X, y=y)
    return path


def launch(argv: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "xpnet", *argv], stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Poll `condition` every millisecond until it holds; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(0.001)
    raise AssertionError("the training process made no progress in time")


def temp_files(run: Path) -> set[str]:
    return {p.name for p in run.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")}


def logged_an_epoch(log: Path) -> bool:
    return any(line.startswith("epoch ") for line in log.read_text(errors="replace").splitlines())


def kill_when(rng: np.random.Generator, run: Path, before: set[str], proc: subprocess.Popen) -> None:
    """Wait for the moment to strike: a random one, or one when a write is under way."""
    moment = rng.choice(["random", "checkpoint-write", "any-write"])
    if moment == "random":  # somewhere in the next few epochs
        time.sleep(rng.uniform(0.0, 0.3))
        return
    prefix = ".model.safetensors." if moment == "checkpoint-write" else "."
    wait_for(lambda: any(name.startswith(prefix) for name in temp_files(run) - before), proc, timeout=5.0)


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_a_finished_epoch(tmp_path):
    data, run = wide_npz(tmp_path), tmp_path / "run"
    numpy = resolve_backend("numpy")
    rng = np.random.default_rng(20261128)
    common = ["--no-progress", "--backend", "numpy"]
    epochs_on_disk, mid_write_kills, started = 0, 0, time.monotonic()
    for kill in range(KILLS):
        log = tmp_path / f"log{kill}.txt"
        if kill == 0:
            argv = ["train", "--data", f"npz:{data}", "--epochs", "10000", "--layers", str(WIDE), "--out", str(run)]
        else:
            argv = ["train", "--resume", str(run), "--epochs", "100000"]
        before = temp_files(run) if run.exists() else set()
        proc = launch(argv + common, log, tmp_path)
        try:
            assert wait_for(lambda: logged_an_epoch(log) and (run / "model.safetensors").exists(), proc), \
                log.read_text()
            kill_when(rng, run, before, proc)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL, log.read_text()

        left = temp_files(run)
        mid_write_kills += bool(left)
        assert len(left) <= 1, f"kill {kill}: temp files pile up: {sorted(left)}"
        net, meta = load_checkpoint(run, numpy)  # whatever was mid-write, the checkpoint loads
        _, _, state = load_for_resume(run, numpy)
        assert meta["epochs"] == state.epoch >= epochs_on_disk, f"kill {kill}: a finished epoch was lost"
        assert all(np.isfinite(numpy.to_numpy(p)).all() for p in net.params)
        epochs_on_disk = state.epoch
        history_file = run / "history.json"
        history = json.loads(history_file.read_text()) if history_file.exists() else []
        assert [r["epoch"] for r in history[:epochs_on_disk]] == list(range(1, epochs_on_disk + 1)), \
            f"kill {kill}: history.json is behind the checkpoint ({len(history)} < {epochs_on_disk} epochs)"

    assert mid_write_kills >= 1, "no kill landed during a write, so atomicity was not exercised"
    final = launch(["train", "--resume", str(run), "--epochs", str(epochs_on_disk + 2)] + common,
                   tmp_path / "final.txt", tmp_path)
    assert final.wait(timeout=60) == 0, (tmp_path / "final.txt").read_text()
    assert not temp_files(run), "a run that finished must leave no temp files"
    assert load_checkpoint(run, numpy)[1]["epochs"] == epochs_on_disk + 2
    assert time.monotonic() - started < 90, "the kill test should take well under 90 s (about 25 s here)"


@pytest.mark.slow
def test_ctrl_c_mid_write_is_one_line_and_leaves_nothing_half_written(tmp_path):
    """SIGINT is Ctrl-C: xpnet stops with one line and exit 130, removes its temp file and
    keeps the last finished epoch's checkpoint."""
    data, run = wide_npz(tmp_path), tmp_path / "run"
    numpy = resolve_backend("numpy")
    rng = np.random.default_rng(7)
    epochs_on_disk = 0
    for attempt in range(4):
        argv = (["train", "--data", f"npz:{data}", "--epochs", "10000", "--layers", str(WIDE), "--out", str(run)]
                if attempt == 0 else ["train", "--resume", str(run), "--epochs", "100000"])
        log, err = tmp_path / f"out{attempt}.txt", tmp_path / f"err{attempt}.txt"
        before = temp_files(run) if run.exists() else set()
        with open(err, "wb") as stderr:
            proc = subprocess.Popen([sys.executable, "-m", "xpnet", *argv, "--no-progress", "--backend", "numpy"],
                                    stdout=open(log, "wb"), stderr=stderr, cwd=tmp_path,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"), preexec_fn=ctrl_c_as_in_a_terminal)
            try:
                assert wait_for(lambda: logged_an_epoch(log) and (run / "model.safetensors").exists(), proc)
                kill_when(rng, run, before, proc)
                proc.send_signal(signal.SIGINT)
                assert proc.wait(timeout=30) == 130, err.read_text()
            finally:
                proc.kill()
                proc.wait()
        lines = err.read_text().strip().splitlines()
        checkpoint = run / "model.safetensors"
        assert lines == [f"xpnet: interrupted; {checkpoint} holds the last finished epoch: "
                         f"continue it with --resume {run}"], lines
        assert not temp_files(run), "an interrupted write must remove its temp file"
        _, meta = load_checkpoint(run, numpy)
        assert meta["epochs"] >= max(epochs_on_disk, 1)
        epochs_on_disk = meta["epochs"]


def interrupted_at(n: int, call, module) -> bool:
    """Run `call`, raising KeyboardInterrupt (what Ctrl-C raises) at the n-th line or return
    executed in `module`'s own code. True if it was interrupted.

    Only the module's frames are interrupted: the standard library is not written to be
    interrupted between any two lines (tempfile can deadlock), and that is not xpnet's to fix.
    """
    count, source = 0, module.__file__

    def local(frame, event, arg):
        nonlocal count
        if event in ("line", "return"):
            count += 1
            if count == n:
                raise KeyboardInterrupt
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code.co_filename == source else None

    sys.settrace(tracer)
    try:
        call()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


def test_an_interrupt_at_any_line_of_a_save_leaves_the_old_or_the_new_file_and_no_temp(tmp_path):
    """Ctrl-C can land on any line of the atomic writer, including the ones just before and
    just after the temp file comes to exist. Wherever it lands, the target holds the old bytes
    or the new ones and no temp file is left behind. Deterministic: every line is tried."""
    target = tmp_path / "model.safetensors"
    old, new = b"old checkpoint " * 100, b"new checkpoint " * 200
    lines_tried = 0
    for n in range(1, 1000):
        target.write_bytes(old)
        if not interrupted_at(n, lambda: atomic_write(target, new), files):
            break
        lines_tried += 1
        assert target.read_bytes() in (old, new), f"interrupted at line {n}: a mixture was left"
        assert not temp_files(tmp_path), f"interrupted at line {n}: {sorted(temp_files(tmp_path))} left behind"
    else:
        raise AssertionError("atomic_write never finished")
    assert target.read_bytes() == new and lines_tried >= 5
