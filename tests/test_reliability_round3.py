"""Faults a third attack found (after issue 17's round two), each held here: hostile files that
would block or never end, a planted lock file, a CNN checkpoint with NaN weights, header
numbers in other scripts' digits, a network too big to allocate, a warm-up longer than the run."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import xpnet
from xpnet.model import Network
from xpnet.model.checkpoint import CheckpointError
from xpnet.model.activations import ModelError
from xpnet.model.layers import layer_from
from xpnet.train.data import DataError, load_data
from xpnet.train.files import OutputError
from xpnet.train.run_lock import RunLock
from xpnet.train.runs import restored_history
from xpnet.train.serve.handler import _number
from assertions import assert_one_line_error, one_line, run_cli


def finishes(fn, seconds: float = 10.0):
    """fn's outcome (a value, or the exception it raised), failing the test if it blocks."""
    outcome = {}

    def call():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001  (handed back to the test to judge)
            outcome["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked for {seconds} s"
    return outcome


def test_a_cnn_checkpoint_with_nan_weights_is_refused_at_load(reference, tmp_path):
    net = Network.from_layers(["conv2x3", "pool2", 4], (1, 6, 6), 3, reference, seed=0)
    net.layers[0].W[0, 0, 0, 0] = np.nan
    path = xpnet.save(net, tmp_path / "cnn")
    with pytest.raises(CheckpointError) as info:
        xpnet.load(path, "numpy")
    assert "layer 0" in one_line(info.value) and "NaN" in str(info.value)


def test_a_named_pipe_as_checkpoint_csv_or_history_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "model.safetensors")
    outcome = finishes(lambda: xpnet.load(tmp_path, "numpy"))
    assert isinstance(outcome.get("error"), CheckpointError) and "regular file" in str(outcome["error"])
    os.mkfifo(tmp_path / "fifo.csv")
    outcome = finishes(lambda: load_data(f"csv:{tmp_path / 'fifo.csv'}"))
    assert isinstance(outcome.get("error"), DataError) and "regular file" in str(outcome["error"])
    os.symlink("/dev/zero", tmp_path / "zero.csv")
    outcome = finishes(lambda: load_data(f"csv:{tmp_path / 'zero.csv'}"))
    assert isinstance(outcome.get("error"), DataError)
    os.mkfifo(tmp_path / "history.json")
    kept = [{"epoch": 1, "loss": 1.0}]
    assert finishes(lambda: restored_history(tmp_path, kept, 1, lambda line: None))["value"] == kept


def test_a_planted_lock_file_harms_nothing(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("precious data")
    run = tmp_path / "run"
    run.mkdir()
    os.link(precious, run / ".xpnet-run.lock")  # a hard link: O_NOFOLLOW does not see it
    with pytest.raises(OutputError) as info:
        RunLock().take(run)
    assert "lock" in one_line(info.value) and precious.read_text() == "precious data"
    os.unlink(run / ".xpnet-run.lock")
    os.mkfifo(run / ".xpnet-run.lock")
    outcome = finishes(lambda: RunLock().take(run))
    assert isinstance(outcome.get("error"), OutputError)


def test_header_numbers_are_ascii_digits_only():
    assert _number("12") and _number(" 7 ")
    assert not any(_number(text) for text in ("²", "３", "1½", "-5", "", None))


def test_a_dropout_description_with_a_negative_seed_or_count_is_refused(reference):
    for desc in ({"kind": "dropout", "rate": 0.5, "seed": -1}, {"kind": "dropout", "rate": 0.5, "seed": 1, "steps": -5}):
        with pytest.raises(ModelError) as info:
            layer_from(desc, (4,), reference)
        assert "dropout" in one_line(info.value)


def test_a_network_too_big_to_allocate_is_one_line(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((20, 4)), y=np.arange(20) % 2)
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "d.npz"), "--layers", "99999999999",
                           "--out", str(tmp_path / "run"), "--no-progress")
    assert_one_line_error(code, err, "out of memory", "--layers")


def test_a_warm_up_as_long_as_the_run_is_a_warning(reference):
    lines = []
    net = Network.from_sizes([2, 3, 2], reference, seed=0)
    xpnet.learn(net, (np.random.default_rng(0).random((8, 2)), np.arange(8) % 2), epochs=2, warmup=5,
                log=lines.append)
    assert any(line.startswith("warning: --warmup 5") for line in lines), lines


def test_a_request_that_fails_outside_its_handling_is_one_line_and_a_client_that_left_is_none(reference):
    from xpnet.train.serve.handler import Server

    lines = []
    server = Server.__new__(Server)  # only handle_error and its log are used
    server.stopping, server.log = False, lines.append
    for error in (ConnectionResetError(104, "Connection reset by peer"), TimeoutError("timed out")):
        try:
            raise error
        except OSError:
            server.handle_error(None, ("127.0.0.1", 1))
    assert lines == []
    try:
        raise ValueError("bad\\nthing")
    except ValueError:
        server.handle_error(None, ("127.0.0.1", 1))
    assert len(lines) == 1 and lines[0].startswith("xpnet: warning: a request from 127.0.0.1 failed: ValueError")


@pytest.mark.parametrize("kwargs,needle", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"), ({"patience": 0}, "patience"),
                                           ({"patience": 1.5}, "patience")])
def test_learn_refuses_what_the_command_line_refuses(reference, kwargs, needle):
    net = Network.from_sizes([2, 3, 2], reference, seed=0)
    X, y = np.random.default_rng(0).random((8, 2)), np.arange(8) % 2
    with pytest.raises(DataError) as info:
        xpnet.learn(net, (X, y), epochs=1, validation=(X, y), log=None, **kwargs)
    assert needle in one_line(info.value)


@pytest.mark.parametrize("args,kwargs,needle", [(((0,), 3), {}, "input shape"), (((4,), 2.5), {}, "outputs"),
                                                (((4,), 3), {"seed": -1}, "seed")])
def test_a_network_from_words_refuses_bad_shapes_seeds_and_backend_names(reference, args, kwargs, needle):
    with pytest.raises(ModelError) as info:
        Network.from_layers([16], *args, reference, **kwargs)
    assert needle in one_line(info.value)
    with pytest.raises(ModelError) as info:
        Network.from_layers([16], (4,), 3, "numpy")
    assert "resolve_backend('numpy')" in one_line(info.value)


def test_csv_names_each_column_once_and_labels_fit_int64(tmp_path):
    (tmp_path / "dup.csv").write_text("a,label,label\n1,0,cat\n2,1,dog\n")
    with pytest.raises(DataError) as info:
        load_data(f"csv:{tmp_path / 'dup.csv'}")
    assert "'label'" in one_line(info.value)
    (tmp_path / "big.csv").write_text("a,label\n1,99999999999999999999999\n2,0\n3,1\n")
    with pytest.raises(DataError) as info:
        load_data(f"csv:{tmp_path / 'big.csv'}")
    assert "2^63" in one_line(info.value)


def test_save_refuses_two_classes_of_one_name(reference, tmp_path):
    with pytest.raises(CheckpointError) as info:
        xpnet.save(Network.from_sizes([2, 3], reference, seed=0), tmp_path / "m", classes=["a", "a", "b"])
    assert "differ" in one_line(info.value)


def test_csv_values_beyond_float32_are_one_line_naming_the_cell(tmp_path):
    (tmp_path / "huge.csv").write_text("a,label\n1e300,1\n2e300,0\n3e300,1\n")
    with pytest.raises(DataError) as info:
        load_data(f"csv:{tmp_path / 'huge.csv'}")
    assert "line 2" in one_line(info.value) and "float32" in str(info.value)


def test_a_weight_decay_too_large_for_the_rate_is_named_when_training_diverges(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.random((640, 4)), y=np.arange(640) % 2)
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "d.npz"), "--layers", "8", "--weight-decay",
                           "1e10", "--epochs", "2", "--out", str(tmp_path / "run"), "--no-progress")
    assert_one_line_error(code, err, "diverged", "weight decay 1e+10", "--weight-decay below")
    from xpnet.train.watch import DivergenceError

    net = Network.from_sizes([4, 8, 2], xpnet.resolve_backend("numpy"), seed=0)
    with pytest.raises(DivergenceError) as info:  # the same advice from the API, with plain SGD
        xpnet.learn(net, (rng.random((640, 4)), np.arange(640) % 2), epochs=3, lr=0.05, weight_decay=1e10,
                    log=None)
    assert "--weight-decay below 20" in one_line(info.value)
