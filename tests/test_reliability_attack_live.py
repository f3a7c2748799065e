"""Issue 17's last items beside a live training, or on a run that lost a piece: `xpnet
evaluate` and `report` refuse a folder another process trains, and each refusal names a fix
that command offers (`report` has no --out)."""

from __future__ import annotations

from xpnet.train.run_lock import LOCK_NAME

from full_disk import FullDisk
from assertions import assert_one_line_error, run_cli
from toy_runs import start_training, wait_for
from toy_runs import make_npz, train_args, train_ok


def drawn(run) -> dict:
    return {name: (run / name).stat().st_mtime_ns for name in ("confusion.json", "confusion.png")}


def test_evaluate_and_report_are_refused_while_another_process_trains_the_folder(capsys, tmp_path):
    """Two processes on one folder: a live `xpnet train`, then `evaluate` and `report` of its
    folder. Before the fix `evaluate` took no lock: it wrote confusion.* into the live run, and
    the trainer's start-up sweep could delete its temp file mid-write."""
    data = make_npz(tmp_path, n=4000)
    run = tmp_path / "run"
    trainer = start_training(data, run)
    try:
        wait_for(lambda: (run / "model.safetensors").exists(), trainer)
        code, _, err = run_cli(capsys, "evaluate", str(run), "--backend", "numpy")
        assert_one_line_error(code, err, "being written by another xpnet process", f"PID {trainer.pid}",
                              "give --out another folder")
        code, _, err = run_cli(capsys, "report", str(run), "--backend", "numpy")
        assert_one_line_error(code, err, f"PID {trainer.pid}", "run xpnet report again")
        assert "--out" not in err  # report has none
        assert not (run / "confusion.json").exists(), "nothing drawn into the live run"
        other = tmp_path / "elsewhere"  # the fix evaluate's line names works while training goes on
        out = train_ok(capsys, "evaluate", str(run), "--out", str(other), "--backend", "numpy")
        assert "accuracy" in out and (other / "confusion.json").is_file()
        assert not (other / LOCK_NAME).exists(), "a folder that is not a run gets no lock file"
        assert trainer.poll() is None, "the trainer lives on"
    finally:
        trainer.kill()
        trainer.wait()


def test_a_regression_run_is_evaluated_while_it_trains_since_nothing_is_drawn(capsys, tmp_path):
    """A regression's evaluate writes no file, so it takes no lock and is not refused."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 3)).astype(np.float32)
    data = tmp_path / "reg.npz"
    np.savez(data, X=X[:3000], y=X[:3000, 0] * 2.0, X_test=X[3000:], y_test=X[3000:, 0] * 2.0)
    run = tmp_path / "run"
    trainer = start_training(data, run)
    try:
        wait_for(lambda: (run / "model.safetensors").exists(), trainer)
        out = train_ok(capsys, "evaluate", str(run), "--backend", "numpy")
        assert "mse" in out
    finally:
        trainer.kill()
        trainer.wait()


def test_a_report_lost_after_training_names_xpnet_report(capsys, tmp_path, monkeypatch):
    """Training finished and was saved; its pictures failed: the fix is to redraw them, not to
    train again into another --out."""
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    FullDisk(monkeypatch, run, "confusion.json")
    code, _, err = run_cli(capsys, *train_args(data, run, "--epochs", "2"))
    assert_one_line_error(code, err, "No space left", f"xpnet report {run}")
    assert "--out" not in err
    monkeypatch.undo()
    train_ok(capsys, "report", str(run), "--backend", "numpy")
    assert all(drawn(run).values())


def test_a_run_whose_data_moved_names_data_for_evaluate_and_report(capsys, tmp_path):
    """Before: the loader's "give the path of an .npz archive", which `report` could not take.
    Now the line says the run's recorded data does not load and names --data, which both take."""
    data = make_npz(tmp_path)
    run = tmp_path / "run"
    train_ok(capsys, *train_args(data, run, "--epochs", "1"))
    moved = data.rename(tmp_path / "moved.npz")
    for command in ("evaluate", "report"):
        code, _, err = run_cli(capsys, command, str(run), "--backend", "numpy")
        assert_one_line_error(code, err, f"was trained on npz:{data}", "does not load now", "give --data")
        out = train_ok(capsys, command, str(run), "--data", f"npz:{moved}", "--backend", "numpy")
        assert "test accuracy" in out


def test_a_checkpoint_that_is_not_there_names_what_to_give(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "nothere"), "--backend", "numpy")
    assert_one_line_error(code, err, "No such file", "give a run folder or a .safetensors checkpoint")
