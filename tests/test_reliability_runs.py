"""The run folder, round two (issue 17): no work lost to a second process or a stranger's folder,
and a resumed run that is exactly the run its checkpoint recorded.

- A run folder is locked while a process trains it; a second one is refused in one line naming
  the holder's PID, and the lock dies with its holder (SIGKILL included).
- `--out` naming a non-empty folder that is not a run is refused; only xpnet's own temp files
  are ever deleted.
- config.json edited behind a run's back, history.json deleted or damaged: refused or rebuilt,
  never a silently different run.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from xpnet.train.run_lock import LOCK_NAME, RunLock

from assertions import assert_one_line_error, run_cli
from toy_runs import files_of, history, make_npz, start_training, train_args, train_ok, wait_for


def test_a_second_process_on_a_training_run_folder_is_refused_naming_the_holder(capsys, tmp_path):
    data = make_npz(tmp_path, n=4000)
    run = tmp_path / "run"
    first = start_training(data, run)
    try:
        wait_for(lambda: (run / "model.safetensors").exists(), first)
        assert (run / LOCK_NAME).read_text().strip() == str(first.pid)
        for argv in (train_args(data, run, "--epochs", "3"),
                     ["train", "--resume", str(run), "--epochs", "200000", "--no-progress"]):
            code, _, err = run_cli(capsys, *argv)
            assert_one_line_error(code, err, "being written by another xpnet process", f"PID {first.pid}")
        assert first.poll() is None, "the first run must live on"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the kernel dropped the dead holder's lock: resuming works at once, no stale lock to clear
    train_ok(capsys, "train", "--resume", str(run), "--epochs", str(len(history(run)) + 1), "--no-progress")


def test_the_lock_is_released_on_every_exit_and_held_only_while_training(capsys, tmp_path):
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    train_ok(capsys, *train_args(data, run, "--epochs", "1"))
    with RunLock() as lock:  # free after a finished run
        lock.take(run)
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "1", "--no-progress")
    assert code == 1  # a refusal after the lock was taken...
    with RunLock() as lock:  # ...releases it too
        lock.take(run)
        code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "2", "--no-progress")
        assert_one_line_error(code, err, f"PID {os.getpid()}")


def test_a_non_empty_folder_that_is_not_a_run_is_refused_and_untouched(capsys, tmp_path):
    data = make_npz(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    (mine / ".draft.tmp").write_text("my notes")
    before = files_of(mine)
    code, _, err = run_cli(capsys, *train_args(data, mine, "--epochs", "1"))
    assert_one_line_error(code, err, "not empty and is not an xpnet run folder")
    assert files_of(mine) == before


def test_only_temp_files_xpnet_named_are_swept(capsys, tmp_path):
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    train_ok(capsys, *train_args(data, run, "--epochs", "1"))
    theirs = run / ".notes.tmp"
    theirs.write_text("a user's file")
    ours = run / ".model.safetensors.12345.0badcafe.xpnet.tmp"  # what a killed xpnet leaves
    ours.write_bytes(b"half a checkpoint")
    train_ok(capsys, "train", "--resume", str(run), "--epochs", "2", "--no-progress")
    assert theirs.read_text() == "a user's file" and not ours.exists()


def test_an_empty_folder_and_an_unfinished_run_are_still_fine_outputs(capsys, tmp_path):
    data = make_npz(tmp_path)
    (tmp_path / "empty").mkdir()
    train_ok(capsys, *train_args(data, tmp_path / "empty", "--epochs", "1"))
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text((tmp_path / "empty" / "config.json").read_text())
    train_ok(capsys, *train_args(data, unfinished, "--epochs", "1"))


# -- a resumed run is the run its checkpoint recorded -------------------------------------

@pytest.fixture
def two_epochs(capsys, tmp_path):
    data = make_npz(tmp_path)
    train_ok(capsys, *train_args(data, tmp_path / "run", "--epochs", "2"))
    return tmp_path / "run"


def edit_config(run: Path, **changes) -> None:
    path = run / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.mark.parametrize("field, value", [("batch_size", 32), ("seed", 7), ("train_samples", 50),
                                          ("dtype", "float64"), ("activation", "tanh")])
def test_an_edited_config_json_is_refused_naming_the_field(capsys, two_epochs, field, value):
    edit_config(two_epochs, **{field: value})
    before = files_of(two_epochs)
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, f"{field} = {value!r}", "config.json was edited")
    assert files_of(two_epochs) == before


@pytest.mark.parametrize("damage", ["deleted", "garbage", "{}", '["a"]', "not utf-8", "truncated"])
def test_a_lost_or_damaged_history_is_rebuilt_from_the_checkpoint(capsys, tmp_path, two_epochs, damage):
    whole = tmp_path / "whole"
    train_ok(capsys, *train_args(tmp_path / "toy.npz", whole, "--epochs", "3"))
    path = two_epochs / "history.json"
    if damage == "deleted":
        path.unlink()
    else:
        path.write_bytes({"garbage": b"\x00{[nonsense", "not utf-8": b'[{"epoch": 1, "x": "\xff"}]',
                          "truncated": path.read_bytes()[:40]}.get(damage) or damage.encode())
    out = train_ok(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert "rebuilt from the checkpoint" in out
    assert history(two_epochs) == history(whole)


def test_a_damaged_history_of_an_older_run_is_one_line(capsys, two_epochs):
    """A checkpoint from before it kept its own copy of the history: refuse, never restart it."""
    import xpnet.train.runs as runs

    (two_epochs / "history.json").write_text("{}")
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert code == 0  # this run's checkpoint has its copy...
    with pytest.raises(runs.CheckpointError, match="holds no copy"):  # ...an older one has not
        runs.restored_history(two_epochs, None, 5, print)


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8", b"[]", b'"x"', b'{"patience": -1}',
                                     b'{"epochs": 0}', b'{"batch_size": "64"}', b'{"nonsense": 1}'])
def test_a_damaged_config_json_is_one_line(capsys, two_epochs, content):
    (two_epochs / "config.json").write_bytes(content)
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, "config.json")


@pytest.mark.parametrize("seed", [None, "x", {}, -1, 2.5])
def test_a_seed_in_config_json_that_is_no_seed_is_one_line(capsys, two_epochs, seed):
    """Found by the attack: `"seed": null` gave int()'s TypeError traceback from the data loader."""
    edit_config(two_epochs, seed=seed)
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, "config.json gives seed", "whole number >= 0")


def test_a_folder_where_history_json_goes_names_the_folder_not_free_space(capsys, two_epochs):
    """Found by the attack: `--resume` said "free space or choose another --out" (a resumed run
    has no --out, and space was never short) when history.json had become a folder."""
    (two_epochs / "history.json").unlink()
    (two_epochs / "history.json").mkdir()
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, "history.json: a folder is in its place; move or remove it")
    assert "--out" not in err
    (two_epochs / "history.json").rmdir()
    train_ok(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert len(history(two_epochs)) == 3


def test_a_report_lost_to_a_full_disk_is_redrawn_by_xpnet_report(capsys, tmp_path, monkeypatch):
    import xpnet.train.report as report
    from xpnet.train.files import OutputError

    def full_disk(path, fig, advice):
        raise OutputError(f"cannot write {path}: No space left on device; free space or choose another --out")

    data = make_npz(tmp_path)
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(report, "_save", full_disk)
        code, _, err = run_cli(capsys, *train_args(data, run, "--epochs", "2"))
    assert_one_line_error(code, err, "No space left")
    assert not (run / "curves.png").exists() and not (run / "confusion.png").exists()
    out = train_ok(capsys, "report", str(run), "--backend", "numpy")
    assert "test accuracy" in out
    assert (run / "curves.png").stat().st_size > 0 and (run / "confusion.png").stat().st_size > 0
    assert json.loads((run / "confusion.json").read_text())["classes"] == ["0", "1", "2", "3"]
    code, _, err = run_cli(capsys, "report", str(tmp_path))
    assert_one_line_error(code, err, "not a trained run folder")


def test_a_letters_run_is_not_resumed_on_letters_drawn_otherwise(capsys, tmp_path, monkeypatch):
    """A newer generator (or recipe) draws other letters for the same seed: the run would go on
    training on data it never started on, so the resume is refused in one line."""
    import xpnet.train.data.letters as letters

    monkeypatch.setenv("XPNET_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    small = ["--data", "letters", "--train-samples", "300", "--test-samples", "100", "--layers", "8",
             "--backend", "numpy", "--no-progress", "--out", str(run)]
    train_ok(capsys, "train", *small, "--epochs", "1")
    train_ok(capsys, "train", "--resume", str(run), "--epochs", "2", "--no-progress")  # the same letters: fine
    drawn_by = letters.renderer()
    monkeypatch.setattr(letters, "renderer", lambda: {**drawn_by, "pillow": "0.0"})  # another Pillow: said, not refused
    out = train_ok(capsys, "train", "--resume", str(run), "--epochs", "3", "--no-progress")
    assert f"pillow {drawn_by['pillow']} -> 0.0" in out, out
    monkeypatch.setattr(letters, "VERSION", letters.VERSION + 1)
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "4", "--no-progress")
    assert_one_line_error(code, err, "letters this xpnet no longer draws", "start a new run")


def test_a_report_on_moved_data_scores_the_samples_the_run_kept(capsys, tmp_path):
    """report --data names where the run's own data is now: the run's --test-samples still
    apply, so the redrawn report scores what the run scored, not the whole file."""
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    first = train_ok(capsys, *train_args(data, run, "--epochs", "1", "--test-samples", "25"))
    moved = data.rename(tmp_path / "moved.npz")
    out = train_ok(capsys, "report", str(run), "--backend", "numpy", "--data", str(moved))
    assert "on 25 held-out samples" in first and "on 25 held-out samples" in out, out


def test_an_mpi_job_takes_the_lock_on_rank_0_and_is_refused_while_another_holds_it(capsys, tmp_path):
    from mpi_jobs import launch, mpi_missing

    if mpi_missing():
        pytest.skip(mpi_missing())
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    train_ok(capsys, *train_args(data, run, "--epochs", "1"))
    resume = ["train", "--resume", str(run), "--epochs", "2", "--no-progress", "--distributed"]
    with RunLock() as lock:
        lock.take(run)
        code, out, err, seconds = launch(2, resume, tmp_path)
    assert code != 0 and f"PID {os.getpid()}" in err and "Traceback" not in err, (out, err)
    assert [line for line in err.splitlines() if "being written" in line] == [err.splitlines()[0]], err
    code, out, err, _ = launch(2, resume, tmp_path)  # released: the job runs, rank 0 locking
    assert code == 0 and "epoch 2/2" in out, err


def test_a_planted_lock_symlink_or_config_pipe_harms_nothing_and_blocks_nothing(capsys, tmp_path, two_epochs):
    victim = tmp_path / "precious.txt"
    victim.write_text("not to be emptied")
    (two_epochs / LOCK_NAME).unlink()
    (two_epochs / LOCK_NAME).symlink_to(victim)
    code, _, err = run_cli(capsys, "train", "--resume", str(two_epochs), "--epochs", "3", "--no-progress")
    assert_one_line_error(code, err, LOCK_NAME)
    assert victim.read_text() == "not to be emptied"
    if hasattr(os, "mkfifo"):
        folder = tmp_path / "piped"
        folder.mkdir()
        os.mkfifo(folder / "config.json")
        code, _, err = run_cli(capsys, *train_args(tmp_path / "toy.npz", folder, "--epochs", "1"))
        assert_one_line_error(code, err, "not an xpnet run folder")
        code, _, err = run_cli(capsys, "train", "--resume", str(folder), "--no-progress")
        assert_one_line_error(code, err, "not a run folder")


def test_a_run_recorded_with_a_relative_data_path_still_resumes(capsys, tmp_path, monkeypatch):
    """Runs saved before data paths were recorded absolute: the record and config.json agree."""
    from xpnet.train import runs

    monkeypatch.chdir(tmp_path)
    make_npz(tmp_path)
    train_ok(capsys, *train_args(Path("toy.npz"), Path("run"), "--epochs", "1"))
    config = runs.read_run_config("run")
    recorded = {**json.loads((tmp_path / "run" / "config.json").read_text()), "data": "npz:toy.npz"}
    runs.check_same_settings(config, recorded, Path("run"))  # no error: the same file
    with pytest.raises(runs.CheckpointError, match="data"):
        runs.check_same_settings(config, {**recorded, "data": "npz:other.npz"}, Path("run"))
