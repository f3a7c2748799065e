"""Resuming with a changed setting, or a folder that holds no resumable run, is one line, and
so is a new run into a trained one's folder; nothing is touched."""

from __future__ import annotations

import pytest

from xpnet.backends import resolve_backend
from xpnet.train.checkpoints import load_checkpoint, save_checkpoint

from assertions import assert_one_line_error, run_cli
from toy_runs import files_of, make_npz, train_args, train_ok


@pytest.fixture
def finished_run(capsys, tmp_path):
    data = make_npz(tmp_path)
    train_ok(capsys, *train_args(data, tmp_path / "run", "--epochs", "2"))
    return tmp_path / "run"


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
