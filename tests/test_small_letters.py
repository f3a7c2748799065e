"""The share of the letters' training pictures drawn small (`--small-letters`, `small_letters=`).

It changes the training side only: the held-out groups are the same letters whatever the
share, so runs with different shares are scored on the same test. `--preset cnn` draws 40%
small; other data has no such pictures, so the preset leaves the setting out there and a
share given for it is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from xpnet.train.data import DataError, load_data
from assertions import assert_one_line_error, run_cli
from toy_runs import train_ok

SMALL = ["--train-samples", "300", "--test-samples", "100", "--layers", "16", "--epochs", "1",
         "--batch-size", "50", "--backend", "numpy", "--no-progress"]


def test_the_share_changes_the_training_letters_and_leaves_the_held_out_ones(tmp_path):
    none, every = (load_data("letters", n_train=300, n_test=100, cache_dir=tmp_path, progress=False,
                             small_letters=share) for share in (0.0, 1.0))
    np.testing.assert_array_equal(none.X_test, every.X_test)
    np.testing.assert_array_equal(none.y_train, every.y_train)  # the same letters, drawn at another size
    assert not np.array_equal(none.X_train, every.X_train)
    default = load_data("letters", n_train=300, n_test=100, cache_dir=tmp_path, progress=False)
    quarter = load_data("letters", n_train=300, n_test=100, cache_dir=tmp_path, progress=False, small_letters=0.25)
    assert default.info["cache_file"] == quarter.info["cache_file"]  # None is the generator's own 0.25


@pytest.mark.parametrize("share, says", [(-0.1, "from 0 to 1"), (1.5, "from 0 to 1"), (float("nan"), "from 0 to 1"),
                                         (True, "from 0 to 1"), ("0.4", "from 0 to 1")])
def test_a_share_that_is_not_one_is_refused(share, says):
    with pytest.raises(DataError, match=says):
        load_data("letters", n_train=10, n_test=10, small_letters=share)


def test_other_data_has_no_small_letters_to_draw(tmp_path):
    data = tmp_path / "toy.npz"
    np.savez(data, X=np.zeros((20, 4), np.float32), y=np.arange(20) % 2)
    with pytest.raises(DataError, match="built-in letters only"):
        load_data(f"npz:{data}", small_letters=0.4)


@pytest.mark.parametrize("argv, says", [
    (["--small-letters", "1.5"], "--small-letters"),
    (["--small-letters", "x"], "--small-letters"),
    (["--small-letters", "0.4", "--data", "npz:{toy}"], "built-in letters only"),
])
def test_a_share_the_run_cannot_use_is_one_line(capsys, tmp_path, argv, says):
    toy = tmp_path / "toy.npz"
    np.savez(toy, X=np.zeros((20, 4), np.float32), y=np.arange(20) % 2)
    code, _, err = run_cli(capsys, "train", "--no-progress", "--out", str(tmp_path / "run"),
                           *[a.format(toy=toy) for a in argv])
    assert_one_line_error(code, err, says)
    assert not (tmp_path / "run").exists()


def test_the_cnn_preset_draws_more_small_letters_and_leaves_the_setting_out_for_other_data(capsys, tmp_path):
    from xpnet.train.cli import build_parser
    from xpnet.train.cli_train import config_from_args

    parse = build_parser().parse_args
    assert config_from_args(parse(["train", "--preset", "cnn"])).small_letters == 0.4
    assert config_from_args(parse(["train", "--preset", "cnn", "--small-letters", "0"])).small_letters == 0
    assert config_from_args(parse(["train"])).small_letters is None
    toy = tmp_path / "toy.npz"
    rng = np.random.default_rng(0)
    np.savez(toy, X=rng.random((64, 64), dtype=np.float32), y=np.arange(64) % 2)
    assert config_from_args(parse(["train", "--preset", "cnn", "--data", f"npz:{toy}"])).small_letters is None
    train_ok(capsys, "train", "--preset", "cnn", "--data", f"npz:{toy}", "--layers", "conv2x3,pool2,4", "--epochs",
             "1", "--no-progress", "--out", str(tmp_path / "run"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["small_letters"] is None


def test_a_run_records_its_share_resumes_and_is_evaluated_on_the_same_letters(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XPNET_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    text = train_ok(capsys, "train", *SMALL, "--small-letters", "0.5", "--out", str(run))
    assert "50% drawn small" in text
    assert json.loads((run / "config.json").read_text())["small_letters"] == 0.5
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "2", "--small-letters", "0.3",
                           "--no-progress")
    assert_one_line_error(code, err, "--small-letters cannot change when resuming")
    train_ok(capsys, "train", "--resume", str(run), "--epochs", "2", "--no-progress")
    assert len(json.loads((run / "history.json").read_text())) == 2
    caches = sorted((tmp_path / "cache").glob("letters-*.npz"))
    code, _, err = run_cli(capsys, "evaluate", str(run))
    assert code == 0, err
    assert sorted((tmp_path / "cache").glob("letters-*.npz")) == caches  # the run's letters, not a default draw


@pytest.mark.parametrize("value", ["x", -1, 2, True])
def test_a_config_json_share_that_is_none_is_one_line_on_resume(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("XPNET_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    train_ok(capsys, "train", *SMALL, "--out", str(run))
    config = json.loads((run / "config.json").read_text())
    assert config["small_letters"] is None  # the generator's own share
    (run / "config.json").write_text(json.dumps(dict(config, small_letters=value)))
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--epochs", "2", "--no-progress")
    assert_one_line_error(code, err, "config.json gives small_letters")


def test_a_config_json_from_before_the_setting_resumes_on_the_generators_share(tmp_path):
    from xpnet.train.runs import read_run_config

    (tmp_path / "config.json").write_text(json.dumps({"data": "letters", "seed": 0, "shift": 2}))
    assert read_run_config(tmp_path).small_letters is None
