"""A full disk while saving: the old file kept, no temp file left, one line naming the fix,
and a run that resumes after it as if nothing happened.

A full disk is simulated by making the atomic writer's write (or fsync, or rename) fail with
ENOSPC half-way (tests/full_disk.py).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from xpnet.backends import resolve_backend
from xpnet.model import Network
from xpnet.train.checkpoints import load_checkpoint, save
from xpnet.train.files import OutputError, atomic_write

from full_disk import FullDisk
from assertions import assert_one_line_error, run_cli
from toy_runs import toy, train_argv


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.tmp"))


@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, stage):
    target = tmp_path / "model.safetensors"
    atomic_write(target, b"old checkpoint")
    disk = FullDisk(monkeypatch, tmp_path, "model.safetensors", stage=stage)
    with pytest.raises(OutputError) as info:
        atomic_write(target, b"new checkpoint, longer than the old one" * 1000)
    message = str(info.value)
    assert "\n" not in message and str(target) in message and "choose another --out" in message
    assert os.strerror(errno.ENOSPC if stage != "replace" else errno.EIO) in message
    assert disk.partial and disk.partial[0][1] > 0  # something half-written existed...
    assert not os.path.exists(disk.partial[0][0])  # ...and is gone
    assert target.read_bytes() == b"old checkpoint"
    assert temp_files(tmp_path) == []


def test_the_api_save_on_a_full_disk_advises_a_path_not_a_flag(tmp_path, monkeypatch):
    """`xpnet.save` is given a path: its failure must not send the caller to a CLI flag."""
    model = Network.from_sizes([3, 4, 2], resolve_backend("numpy"), seed=0)
    FullDisk(monkeypatch, tmp_path, "model.safetensors")
    with pytest.raises(OutputError) as info:
        save(model, tmp_path / "model.safetensors")
    message = str(info.value)
    assert "\n" not in message and "another path" in message and "--out" not in message
    assert temp_files(tmp_path) == []


def test_full_disk_while_training_keeps_the_last_checkpoint_and_resumes_after(capsys, tmp_path, monkeypatch):
    data = f"npz:{toy(tmp_path)}"
    run = tmp_path / "run"
    disk = FullDisk(monkeypatch, run, "model.safetensors", after=2)  # epochs 1 and 2 save, epoch 3 hits the full disk
    code, out, err = run_cli(capsys, *train_argv(data, run, "--epochs", "5"))
    assert_one_line_error(code, err, "model.safetensors", "No space left on device", "free space")
    assert disk.partial and disk.partial[0][1] > 0
    assert temp_files(run) == []
    assert "epoch 3/5" in out and "epoch 4/5" not in out  # it stopped at the failed save
    numpy = resolve_backend("numpy")
    net, meta = load_checkpoint(run, numpy)
    assert meta["epochs"] == 2
    assert [r["epoch"] for r in json.loads((run / "history.json").read_text())][:2] == [1, 2]
    monkeypatch.undo()  # space freed: the run carries on and ends as if nothing happened
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--no-progress")
    assert code == 0, err
    code, _, err = run_cli(capsys, *train_argv(data, tmp_path / "whole", "--epochs", "5"))
    assert code == 0, err
    a, b = load_checkpoint(run, numpy)[0], load_checkpoint(tmp_path / "whole", numpy)[0]
    for p, q in zip(a.params, b.params):
        assert p.tobytes() == q.tobytes()
    assert [r["loss"] for r in json.loads((run / "history.json").read_text())] == \
        [r["loss"] for r in json.loads((tmp_path / "whole" / "history.json").read_text())]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_files_xpnet_writes_are_readable_like_any_other(tmp_path):
    """mkstemp makes 0600 files; a checkpoint renamed from one must still get the usual
    permissions (what the umask allows), or a shared run folder is unreadable to others."""
    umask = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "model.safetensors", b"x")
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644
