"""Shifted training pictures (train/augment.py): each move is the picture moved, on every
backend as on numpy; the draws are the run's; the loop, the recorded steps, a resume and the
command line all shift alike."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from xpnet.model import Network
from xpnet.train.augment import MAX_SHIFT, Shifts, source_table
from xpnet.train.config import PRESETS
from xpnet.train.data import DataError
from xpnet.train.loop import learn
from assertions import assert_one_line_error, run_cli
from graph_stand_ins import counting_runs
from toy_runs import assert_same_run, saved, train_ok


def moved_by_hand(picture: np.ndarray, down: int, right: int) -> np.ndarray:
    """(C, H, W) moved `down` rows and `right` columns, the edges repeated: pad, then cut."""
    k = max(abs(down), abs(right))
    padded = np.pad(picture, ((0, 0), (k, k), (k, k)), mode="edge")
    _, height, width = picture.shape
    return padded[:, k - down:k - down + height, k - right:k - right + width]


def pictures_net(backend, image=(2, 5, 6)) -> Network:
    return Network.from_layers(["conv2x3", 4], image, 3, backend, seed=0)


def test_every_move_is_the_picture_moved_with_its_edges_repeated(backend, reference):
    image, pixels = (2, 5, 6), 2
    rng = np.random.default_rng(0)
    moves = np.arange((2 * pixels + 1) ** 2)  # every move once
    x = rng.standard_normal((len(moves), int(np.prod(image))))
    shifts = Shifts.for_model(pixels, pictures_net(backend, image))
    got = shifts.apply(backend.asarray(x), backend.asarray(moves))
    assert type(got) is type(backend.asarray(x)) and got.dtype == backend.asarray(x).dtype
    assert tuple(got.shape) == x.shape and str(got.device) == str(backend.asarray(x).device)
    steps = range(-pixels, pixels + 1)
    want = [moved_by_hand(row.reshape(image), down, right).ravel()
            for row, (down, right) in zip(x, [(d, r) for d in steps for r in steps])]
    np.testing.assert_array_equal(backend.to_numpy(got), np.array(want))  # a gather: exact
    assert (source_table(pixels, image)[(2 * pixels + 1) ** 2 // 2] == np.arange(x.shape[1])).all()  # (0, 0) stays


def test_each_epoch_draws_every_move_evenly_from_the_runs_generator(reference):
    shifts = Shifts.for_model(1, Network.from_sizes([16, 4, 3], reference))
    first = shifts.draw(np.random.default_rng(5), 90_000)
    np.testing.assert_array_equal(first, shifts.draw(np.random.default_rng(5), 90_000))  # the seed decides
    counts = np.bincount(first, minlength=10)
    assert counts[9] == 0 and np.all(np.abs(counts[:9] / 10_000 - 1) < 0.05)  # the 9 moves of 1 pixel, evenly


@pytest.mark.parametrize("pixels, says", [
    (-1, "out of range"), (MAX_SHIFT + 1, "out of range"), (4, "out of range for 4x4"), (1.5, "whole number"),
    (True, "whole number")])
def test_a_shift_that_cannot_move_these_pictures_is_one_line(reference, pixels, says):
    with pytest.raises(DataError, match=says):
        Shifts.for_model(pixels, Network.from_sizes([16, 4, 3], reference))


def test_samples_that_are_not_square_pictures_are_not_shifted_but_told_why(reference):
    with pytest.raises(DataError, match="not a square picture, and a dense first layer takes no other shape"):
        Shifts.for_model(1, Network.from_sizes([12, 4, 3], reference))


def squares(n=203, seed=0):
    """4x4 pictures of three classes: a bright row, a bright column, or neither."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = 0.3 * rng.random((n, 4, 4))
    X[y == 0, 1, :] += 1
    X[y == 1, :, 2] += 1
    return X.reshape(n, 16), y


def trained(backend, shift: int, **kw) -> Network:
    net = Network.from_sizes([16, 8, 3], backend, seed=1)
    return learn(net, squares(), epochs=3, batch_size=32, lr=0.1, optimizer="momentum", seed=3, log=None,
                 shift=shift, **kw)


def test_a_shifted_run_is_the_same_twice_and_differs_from_an_unshifted_one(reference):
    once, again, plain = trained(reference, 1), trained(reference, 1), trained(reference, 0)
    for a, b, c in zip(once.params, again.params, plain.params):
        np.testing.assert_array_equal(reference.to_numpy(a), reference.to_numpy(b))
    assert any(not np.array_equal(reference.to_numpy(a), reference.to_numpy(c)) for a, c in zip(once.params, plain.params))
    assert once.history[-1]["accuracy"] > 0.6


def test_recorded_steps_shift_each_batch_as_ordinary_steps_do(backend):
    runs = []
    graphing = dataclasses.replace(backend, capture_fn=counting_runs(runs))
    ours, plain = trained(graphing, 1, cuda_graphs=True), trained(backend, 1, cuda_graphs=False)
    assert len(runs) == 3 * (203 // 32)
    for a, b in zip(ours.params, plain.params):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_shifted_training_and_a_streamed_set_give_the_same_weights(reference, monkeypatch):
    """A set too large for the device is batched from the host: its moves come along."""
    plain = trained(reference, 1)
    monkeypatch.setattr(type(reference), "free_memory", lambda self: 1)  # nothing fits: streamed
    streamed = trained(reference, 1)
    for a, b in zip(plain.params, streamed.params):
        np.testing.assert_array_equal(reference.to_numpy(a), reference.to_numpy(b))


def square_npz(folder, n=120):
    X, y = squares(n + 40, seed=2)
    path = folder / "squares.npz"
    np.savez(path, X=X[:n].astype(np.float32), y=y[:n], X_test=X[n:].astype(np.float32), y_test=y[n:])
    return path


def run_args(data, out, *extra):
    return ["train", "--data", f"npz:{data}", "--layers", "16", "--batch-size", "16", "--out", str(out),
            "--no-progress", "--backend", "numpy", "--schedule", "constant", *extra]


def test_a_shifted_run_resumed_ends_bitwise_where_an_unbroken_one_does(capsys, tmp_path):
    data = square_npz(tmp_path)
    train_ok(capsys, *run_args(data, tmp_path / "whole", "--epochs", "4", "--shift", "1"))
    train_ok(capsys, *run_args(data, tmp_path / "split", "--epochs", "2", "--shift", "1"))
    train_ok(capsys, "train", "--resume", str(tmp_path / "split"), "--epochs", "4", "--no-progress")
    assert_same_run(tmp_path / "whole", tmp_path / "split")
    assert saved(tmp_path / "split")[1]["config"]["shift"] == 1


def test_other_data_is_not_shifted_unless_asked_and_the_choice_is_recorded(capsys, tmp_path):
    data = square_npz(tmp_path)
    train_ok(capsys, *run_args(data, tmp_path / "plain", "--epochs", "1"))
    assert json.loads((tmp_path / "plain" / "config.json").read_text())["shift"] == 0


def test_a_run_from_before_shifts_resumes_unshifted(capsys, tmp_path):
    """Its config.json and checkpoint name no shift: it trained without, and carries on so."""
    data = square_npz(tmp_path)
    train_ok(capsys, *run_args(data, tmp_path / "whole", "--epochs", "3"))
    train_ok(capsys, *run_args(data, tmp_path / "old", "--epochs", "2"))
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["shift"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    train_ok(capsys, "train", "--resume", str(tmp_path / "old"), "--epochs", "3", "--no-progress")
    assert_same_run(tmp_path / "whole", tmp_path / "old")


@pytest.mark.parametrize("argv, says", [
    (["--shift", str(MAX_SHIFT + 1)], "--shift 9 is out of range"),
    (["--shift", "-1"], "--shift"),
    (["--layers", "16", "--shift", "1", "--data", "npz:{toy}"], "not a square picture"),
    (["--layers", "16", "--image", "1x3x4", "--shift", "1", "--data", "npz:{toy}"], "a dense first layer"),
])
def test_a_shift_the_run_cannot_use_is_one_line(capsys, tmp_path, argv, says):
    toy = tmp_path / "toy.npz"
    np.savez(toy, X=np.zeros((20, 12), np.float32), y=np.arange(20) % 2)
    argv = [a.format(toy=toy) for a in argv]
    code, _, err = run_cli(capsys, "train", "--no-progress", "--out", str(tmp_path / "run"), *argv)
    assert_one_line_error(code, err, says)


@pytest.mark.parametrize("value", ["x", -1, 1.5, None])
def test_a_config_json_shift_that_is_no_whole_number_is_one_line_on_resume(capsys, tmp_path, value):
    data = square_npz(tmp_path)
    train_ok(capsys, *run_args(data, tmp_path / "run", "--epochs", "1"))
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps(dict(config, shift=value)))
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path / "run"), "--epochs", "2", "--no-progress")
    assert_one_line_error(code, err, "config.json gives shift")


@pytest.mark.parametrize("given, shift, epochs, batch, lr", [
    (dict(), 2, 24, 256, 0.2),  # the letters: shifted, batches of 256 at 0.2 for 24 passes
    (dict(data="letters:system"), 2, 24, 256, 0.2),
    (dict(data=" Letters"), 2, 24, 256, 0.2),  # as the loader reads the spec
    (dict(shift=0), 0, 24, 256, 0.2),
    (dict(epochs=5), 2, 5, 256, 0.2),
    (dict(lr=0.1), 2, 24, 256, 0.1),
    (dict(batch_size=64), 2, 16, 64, None),  # a batch given: the optimizer's rate, 16 shifted passes
    (dict(train_samples=6000), 2, 16, 64, None),  # a quick run: batches of 256 would be too few steps
    (dict(train_samples=20_000), 2, 24, 256, 0.2),
    (dict(optimizer="adam"), 2, 16, 64, None),  # the big batches' rate is momentum's
    (dict(batch_size=256), 2, 16, 256, None),  # given, so a run's config.json keeps meaning what it did
    (dict(hidden=["conv8x3", "pool2", 16]), 2, 16, 64, None),  # conv layers: big batches unmeasured
    (dict(PRESETS["cnn"], optimizer="momentum"), 2, 15, 64, 0.002),
    (dict(PRESETS["cnn"]), 2, 15, 64, 0.002),
    (dict(PRESETS["course"]), 2, 15, 16, 3.0),
    (dict(data="npz:x.npz"), 0, 12, 64, None),  # other data as it comes
    (dict(data="npz:x.npz", shift=1), 1, 16, 64, None),
    (dict(data="npz:x.npz", batch_size=32), 0, 12, 32, None),
])
def test_the_data_decides_the_shift_epochs_and_batches_where_none_were_given(given, shift, epochs, batch, lr):
    from xpnet.train.config import TrainConfig, with_data_defaults

    settled = with_data_defaults(TrainConfig(**given))
    assert (settled.shift, settled.epochs, settled.batch_size, settled.lr) == (shift, epochs, batch, lr)


def test_a_config_json_without_a_batch_size_resumes_at_64(tmp_path):
    """Every run's config.json has named its batch size; one that does not (an edit) means the
    64 every run had before the letters' default became 256, not today's default."""
    from xpnet.train.config import TrainConfig, with_data_defaults
    from xpnet.train.runs import read_run_config

    written = dataclasses.asdict(with_data_defaults(TrainConfig(batch_size=64, out=str(tmp_path))))
    del written["batch_size"]
    (tmp_path / "config.json").write_text(json.dumps(written))
    assert with_data_defaults(read_run_config(tmp_path)).batch_size == 64


def test_the_network_line_says_when_the_letters_chose_the_rate():
    """0.2 is not momentum's own default: a user reading the log should see where it came from."""
    from types import SimpleNamespace

    from xpnet.train.config import TrainConfig, with_data_defaults
    from xpnet.train.jobs import network_line

    net, data = SimpleNamespace(summary="784 -> 26"), SimpleNamespace(y_train=np.zeros(120_000))
    chosen = network_line(with_data_defaults(TrainConfig()), net, data, rate_from_data=True)
    given = network_line(with_data_defaults(TrainConfig(lr=0.2)), net, data)
    other = network_line(with_data_defaults(TrainConfig(batch_size=64)), net, data)
    assert "momentum lr 0.2 (the letters' default at batch 256)  batch 256" in chosen
    assert "momentum lr 0.2  batch 256" in given
    assert "momentum lr 0.05 (its default)  batch 64" in other
