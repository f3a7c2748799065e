"""Learning-rate schedules, warm-up and L2 weight decay: the formulas, every backend against
numpy float64, the command line, and a resumed run that ends bitwise where an unbroken one does."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpnet
from xpnet.model import Network
from xpnet.train.checkpoints import load_for_resume, save_checkpoint
from xpnet.train.optimizers import OptimizerError, make_optimizer
from xpnet.train.schedules import ScheduleError, epoch_lr
from assertions import assert_one_line_error, one_line, run_cli


def test_each_schedule_gives_the_rate_it_promises():
    assert [epoch_lr(0.1, "constant", 0, e, 5) for e in range(5)] == [0.1] * 5
    assert [round(epoch_lr(1.0, "step", 0, e, 9), 12) for e in range(9)] == [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    cosine = [epoch_lr(1.0, "cosine", 0, e, 4) for e in range(4)]
    assert cosine == pytest.approx([1.0, 0.5 + 0.5 * math.cos(math.pi / 4), 0.5, 0.5 - 0.5 * math.cos(math.pi / 4)])
    warm = [epoch_lr(0.3, "constant", 2, e, 5) for e in range(5)]
    assert warm == pytest.approx([0.1, 0.2, 0.3, 0.3, 0.3])  # climbing over the first two epochs


@pytest.mark.parametrize("kwargs,error,needle", [
    ({"schedule": "linear"}, ScheduleError, "'linear'"), ({"warmup": -1}, ScheduleError, "warm-up"),
    ({"warmup": 1.5}, ScheduleError, "warm-up"), ({"weight_decay": -0.1}, OptimizerError, "weight decay"),
    ({"weight_decay": math.nan}, OptimizerError, "weight decay"),
])
def test_bad_settings_are_one_line_before_any_step(reference, kwargs, error, needle):
    net = Network.from_sizes([2, 3, 2], reference, seed=0)
    with pytest.raises(error) as info:
        xpnet.learn(net, (np.zeros((4, 2)), np.array([0, 1, 0, 1])), epochs=1, log=None, **kwargs)
    assert needle in one_line(info.value)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_weight_decay_adds_lambda_w_to_each_weights_gradient_only(backend, name):
    """With a zero loss gradient, one step of each rule from L2 alone: W moves, the bias does not."""
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((3, 2)), rng.standard_normal(3)
    params = [backend.asarray(W), backend.asarray(b)]
    opt = make_optimizer(name, backend, params, 0.1, weight_decay=0.5)
    zero = [backend.asarray(np.zeros_like(W)), backend.asarray(np.zeros_like(b))]
    new_W, new_b = (backend.to_numpy(p) for p in opt.step(params, zero))
    if name == "adam":  # a first Adam step is lr * sign(g): here g = 0.5 W
        np.testing.assert_allclose(new_W, W - 0.1 * np.sign(W), atol=1e-7)  # eps: 1e-8 of g
    else:  # SGD and momentum's first step: W - lr * lambda * W
        np.testing.assert_allclose(new_W, W * (1 - 0.1 * 0.5), rtol=1e-12)
    np.testing.assert_array_equal(new_b, b)


def trained(backend, **kwargs):
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((96, 5)), rng.integers(0, 3, 96)
    net = Network.from_sizes([5, 8, 3], backend, activation="tanh", seed=2)
    lines = []
    xpnet.learn(net, (X, y), epochs=4, batch_size=16, lr=0.2, optimizer="momentum", log=lines.append,
                scale="none", **kwargs)
    return net, lines


def test_a_scheduled_decayed_run_is_the_same_on_every_backend(backend, reference):
    settings = dict(schedule="cosine", warmup=1, weight_decay=0.01)
    ours, lines = trained(backend, **settings)
    theirs, _ = trained(reference, **settings)
    for a, b in zip(ours.params, theirs.params):
        np.testing.assert_allclose(backend.to_numpy(a), reference.to_numpy(b), rtol=1e-10, atol=1e-12)
    rates = [float(line.split("  lr ")[1].split()[0]) for line in lines if line.startswith("epoch ")]
    assert rates == pytest.approx([epoch_lr(0.2, "cosine", 1, e, 4) for e in range(4)], rel=1e-2)
    plain, _ = trained(reference)
    assert not np.allclose(reference.to_numpy(plain.params[0]), reference.to_numpy(theirs.params[0]))


class Stop(Exception):
    """An interruption after an epoch's checkpoint was written."""


def test_an_interrupted_scheduled_run_resumes_bitwise(tmp_path, reference):
    """A schedule spans the epochs asked for: a run stopped after epoch 2 of 5 and resumed to 5
    ends exactly where an unbroken one does, weight decay, momentum and the rates included."""
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((90, 5)), rng.integers(0, 3, 90)
    settings = dict(batch_size=16, lr=0.1, optimizer="momentum", seed=7, log=None, epochs=5, scale="none",
                    schedule="cosine", warmup=2, weight_decay=0.01)
    whole = xpnet.learn(Network.from_sizes([5, 8, 3], reference, seed=2), (X, y), **settings)

    def save_then_stop(model, record, state):
        save_checkpoint(model, tmp_path / "m.safetensors", {"epochs": record["epoch"]}, state)
        if record["epoch"] == 2:
            raise Stop

    with pytest.raises(Stop):
        xpnet.learn(Network.from_sizes([5, 8, 3], reference, seed=2), (X, y), on_epoch=save_then_stop, **settings)
    net, _, state = load_for_resume(tmp_path / "m.safetensors", reference)
    assert state.weight_decay == 0.01
    resumed = xpnet.learn(net, (X, y), resume=state, **settings)
    for a, b in zip(whole.params, resumed.params):
        assert a.tobytes() == b.tobytes()
    assert [r["lr"] for r in whole.history[2:]] == [r["lr"] for r in resumed.history]


def test_the_command_line_takes_them_and_resumes_them(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    args = ["train", "--data", str(tmp_path / "d.npz"), "--layers", "8", "--warmup", "3", "--schedule", "constant",
            "--weight-decay", "0.001", "--no-progress", "--backend", "numpy"]  # constant: the run is extended
    code, text, err = run_cli(capsys, *args, "--epochs", "2", "--out", str(tmp_path / "a"))
    assert code == 0 and "lr 0.0125" in text, err  # the warm-up's first epoch: 0.05 / 4
    assert run_cli(capsys, "train", "--resume", str(tmp_path / "a"), "--epochs", "5", "--no-progress")[0] == 0
    assert run_cli(capsys, *args, "--epochs", "5", "--out", str(tmp_path / "b"))[0] == 0
    for p, q in zip(*(xpnet.load(tmp_path / run, "numpy").params for run in "ab")):
        np.testing.assert_array_equal(p, q)
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path / "a"), "--weight-decay", "0.1")
    assert_one_line_error(code, err, "--weight-decay", "resum")
    code, _, err = run_cli(capsys, "train", "--schedule", "linear", "--out", str(tmp_path / "c"))
    assert_one_line_error(code, err, "'linear'", "cosine")
    code, _, err = run_cli(capsys, "train", "--weight-decay", "-1")
    assert code == 2 and "--weight-decay" in err


@pytest.mark.parametrize("preset, data, decay", [
    ("default", "letters", 0.0001),  # the letters' networks decay a little (docs/letters.md)
    ("default", "letters:system", 0.0001),
    ("default", " Letters", 0.0001),  # as the loader reads the spec
    ("own conv layers", "letters", 0.0001),  # any letters network but the presets' below
    ("default", "npz:x.npz", 0.0),  # other data as it comes
    ("course", "letters", 0.0),  # the course's plain gradient descent
    ("cnn", "letters", 0.0001),  # as the letters take it (docs/cnn.md#weight-decay)
])
def test_the_data_and_the_preset_decide_the_weight_decay_where_none_was_given(preset, data, decay):
    import dataclasses

    from xpnet.train.config import PRESETS, TrainConfig, with_data_defaults

    layers = {"hidden": ["conv4x3", "pool2", 16]} if preset == "own conv layers" else PRESETS[preset]
    config = dataclasses.replace(TrainConfig(data=data), **layers)
    assert with_data_defaults(config).weight_decay == decay
    assert with_data_defaults(dataclasses.replace(config, weight_decay=0.5)).weight_decay == 0.5


LETTERS_RUN = ["--train-samples", "520", "--test-samples", "260", "--layers", "8", "--schedule", "constant",
               "--no-progress", "--backend", "numpy"]


@pytest.fixture
def letters_run(capsys, tmp_path, monkeypatch):
    """A one-epoch letters run trained without weight decay, as every run was before the
    letters' default decayed (a few hundred letters: seconds)."""
    monkeypatch.setenv("XPNET_CACHE", str(tmp_path / "cache"))
    code, _, err = run_cli(capsys, "train", *LETTERS_RUN, "--weight-decay", "0", "--epochs", "1",
                           "--out", str(tmp_path / "run"))
    assert code == 0, err
    return tmp_path / "run"


def _edit_weight_decay(run, **value):
    import json

    config = json.loads((run / "config.json").read_text())
    assert config.pop("weight_decay") == 0.0
    (run / "config.json").write_text(json.dumps({**config, **value}))


def test_a_letters_run_from_before_weight_decay_resumes_without_it(capsys, letters_run):
    """Its config.json names no weight decay: it trained with none, and carries on so, though
    new letters runs now decay."""
    from toy_runs import saved

    _edit_weight_decay(letters_run)
    code, out, err = run_cli(capsys, "train", "--resume", str(letters_run), "--epochs", "2", "--no-progress")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("network "))
    assert "weight decay" not in line, line
    assert saved(letters_run)[1]["training_state"]["weight_decay"] == 0.0


@pytest.mark.parametrize("value", [None, "x", -0.1, True, math.nan, math.inf, 10 ** 400])
def test_a_config_json_weight_decay_that_is_no_number_is_one_line_on_resume(capsys, letters_run, value):
    _edit_weight_decay(letters_run, weight_decay=value)
    code, _, err = run_cli(capsys, "train", "--resume", str(letters_run), "--epochs", "2", "--no-progress")
    assert_one_line_error(code, err, "config.json gives weight_decay")


def test_a_letters_run_decays_by_default_and_its_log_says_so(capsys, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("XPNET_CACHE", str(tmp_path / "cache"))
    code, out, err = run_cli(capsys, "train", *LETTERS_RUN, "--epochs", "1", "--out", str(tmp_path / "run"))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("network "))
    assert "  weight decay 0.0001  shifted up to 2 px  520 training samples" in line, line
    assert json.loads((tmp_path / "run" / "config.json").read_text())["weight_decay"] == 0.0001
    from toy_runs import saved

    assert saved(tmp_path / "run")[1]["training_state"]["weight_decay"] == 0.0001  # what training used
