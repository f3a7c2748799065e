"""Calibrated probabilities: the temperature is fitted on validation data, travels with the
checkpoint, leaves every answer as it was, and makes a stated probability mean what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xpnet import learn
from xpnet.backends import resolve_backend
from xpnet.model import CheckpointError, Network
from xpnet.model import checkpoint
from xpnet.train.calibration import BOUNDS, UNSURE_BELOW, fit_temperature
from xpnet.train.metrics import expected_calibration_error, reliability
from xpnet.train.predict import format_result
from assertions import one_line, run_cli


def drawn_from(temperature: float, n: int = 20000, classes: int = 10, seed: int = 0):
    """(logits, labels) where each label is drawn from softmax(logits / temperature): a model
    whose logits are right up to that temperature."""
    rng = np.random.default_rng(seed)
    z = 3 * rng.standard_normal((n, classes))
    p = np.exp(z / temperature)
    p /= p.sum(axis=1, keepdims=True)
    labels = (rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1)
    return z, labels


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("truth", [0.5, 1.0, 2.5, 6.0])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_at(truth):
    z, labels = drawn_from(truth)
    assert fit_temperature(z, labels) == pytest.approx(truth, rel=0.06)


def test_calibrating_an_overconfident_model_brings_its_error_near_zero_and_keeps_its_answers():
    z, labels = drawn_from(3.0)
    before = softmax(z)
    after = softmax(z / fit_temperature(z, labels))
    np.testing.assert_array_equal(before.argmax(axis=1), after.argmax(axis=1))
    right = before.argmax(axis=1) == labels
    assert expected_calibration_error(before.max(axis=1), right) > 0.15
    assert expected_calibration_error(after.max(axis=1), right) < 0.02


def test_the_search_stops_at_its_bounds_for_data_no_temperature_fits():
    z, labels = drawn_from(1.0)
    assert fit_temperature(z, z.argmax(axis=1)) == pytest.approx(BOUNDS[0], rel=0.01)  # always right: sharpest
    assert fit_temperature(z, (z.argmin(axis=1))) == pytest.approx(BOUNDS[1], rel=0.01)  # always wrong: flattest


def test_reliability_bins_count_every_sample_and_agree_with_the_error():
    rng = np.random.default_rng(1)
    confidence, right = rng.uniform(0, 1, 3000), rng.random(3000) < 0.5
    bars = reliability(confidence, right)
    assert sum(b["samples"] for b in bars) == 3000 and len(bars) == 15
    assert all(b["low"] <= b["confidence"] < b["high"] for b in bars)
    # the error, worked by hand: one bin, stated 0.75, right half the time
    assert expected_calibration_error(np.full(100, 0.75), np.arange(100) < 50) == pytest.approx(0.25)
    # two bins, 0.9 right 9 in 10 (no gap) and 0.3 right 1 in 10 (gap 0.2), half the samples each
    confidence, right = np.repeat([0.9, 0.3], 10), np.r_[np.arange(10) < 9, np.arange(10) < 1]
    assert expected_calibration_error(confidence, right) == pytest.approx(0.1)


def test_predict_proba_divides_the_logits_by_the_temperature_on_every_backend(backend):
    net = Network.from_sizes([4, 6, 5], backend, seed=0)
    X = np.random.default_rng(2).standard_normal((7, 4))
    logits = backend.to_numpy(net.forward(backend.asarray(X)))
    net.temperature = 2.5
    np.testing.assert_allclose(net.predict_proba(X), softmax(logits / 2.5), rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), logits.argmax(axis=1))
    assert net.to(backend).temperature == 2.5


def test_the_temperature_travels_with_the_checkpoint(reference):
    net = Network.from_sizes([4, 6, 5], reference, seed=0)
    net.temperature = 1.75
    again, meta = checkpoint.from_bytes(checkpoint.to_bytes(net), reference)
    assert again.temperature == 1.75 and meta["temperature"] == 1.75


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_a_checkpoint_with_an_impossible_temperature_is_refused_in_one_line(reference, bad):
    net = Network.from_sizes([4, 6, 5], reference, seed=0)
    net.temperature = bad  # the digest is valid: only the value is wrong
    with pytest.raises(CheckpointError) as info:
        checkpoint.from_bytes(checkpoint.to_bytes(net), reference, source="ck.safetensors")
    assert "temperature" in one_line(info.value) and "ck.safetensors" in str(info.value)


def blobs(n, seed, noise=1.0):
    """Four overlapping classes in 6 features: a network trained on them is too sure of itself."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = np.eye(4, 6)[y] * 2 + noise * rng.standard_normal((n, 6))
    return X, y


def test_learn_fits_the_temperature_on_validation_data_and_lowers_its_error(reference):
    lines = []
    net = Network.from_sizes([6, 64, 4], reference, activation="relu", seed=0)
    X, y = blobs(300, 0)
    Xv, yv = blobs(3000, 1)
    learn(net, (X, y), epochs=100, lr=0.1, optimizer="momentum", validation=(Xv, yv), log=lines.append)
    assert net.temperature > 1.5  # trained long on few noisy samples: overconfident, so softened
    assert any(line.startswith("calibration: temperature") for line in lines)
    Xt, yt = blobs(3000, 2)
    proba = net.predict_proba(Xt)
    right = proba.argmax(axis=1) == yt
    raw = softmax(np.log(np.clip(proba, 1e-300, None)) * net.temperature)
    calibrated = expected_calibration_error(proba.max(axis=1), right)
    assert calibrated < 0.05 and calibrated < expected_calibration_error(raw.max(axis=1), right) / 2


def test_learn_without_validation_or_told_not_to_keeps_temperature_one(reference):
    X, y = blobs(400, 0)
    for kwargs in ({}, {"validation": blobs(200, 1), "calibrate": False}):
        net = Network.from_sizes([6, 8, 4], reference, seed=0)
        learn(net, (X, y), epochs=2, log=None, **kwargs)
        assert net.temperature == 1.0


def test_a_validation_set_answered_all_right_keeps_temperature_one_and_says_why(reference):
    """Every answer right: the loss only falls as T does, so a fit would end at BOUNDS[0] and
    make every later answer 20 times surer for no gain."""
    lines = []
    net = Network.from_sizes([6, 16, 4], reference, activation="relu", seed=0)
    X, y = blobs(400, 0, noise=0.05)
    learn(net, (X, y), epochs=30, lr=0.1, optimizer="momentum", validation=blobs(100, 1, noise=0.05),
          log=lines.append)
    assert net.temperature == 1.0
    assert any(line.startswith("calibration: temperature kept at 1: every one of the 100 validation samples")
               for line in lines), lines


@pytest.fixture
def blob_files(tmp_path):
    X, y = blobs(600, 0)
    Xt, yt = blobs(300, 1)
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=y, X_test=Xt, y_test=yt)
    return path


def test_a_run_with_only_a_test_set_says_its_probabilities_are_not_calibrated(capsys, tmp_path, blob_files):
    code, out, err = run_cli(capsys, "train", "--data", str(blob_files), "--epochs", "2", "--out",
                             str(tmp_path / "run"), "--no-progress")
    assert code == 0, err
    assert "probabilities: not calibrated (no validation data; --val-fraction" in out
    assert "no temperature fitted" in out
    saved = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert saved["temperature"] == 1.0


def test_a_run_with_a_validation_fraction_is_calibrated_and_reports_it(capsys, tmp_path, blob_files):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", str(blob_files), "--epochs", "30", "--val-fraction",
                             "0.25", "--out", str(run), "--no-progress")
    assert code == 0, err
    saved = json.loads((run / "calibration.json").read_text())
    assert saved["temperature"] != 1.0 and f"temperature {saved['temperature']:.3f}" in out
    assert f"ECE {saved['ece']:.3f}" in out and (run / "reliability.png").stat().st_size > 1000
    assert sum(b["samples"] for b in saved["bins"]) == 300
    loaded, meta = checkpoint.from_bytes((run / "model.safetensors").read_bytes(),
                                         resolve_backend("numpy", "cpu", "float64"))
    assert loaded.temperature == saved["temperature"]
    history = json.loads((run / "history.json").read_text())
    assert all("test_accuracy" in r for r in history)  # watched each epoch, chosen on never
    assert f"test accuracy {100 * history[-1]['test_accuracy']:.2f}%" in out
    assert meta["accuracy"] == history[-1]["test_accuracy"]


def test_predict_calls_an_answer_under_one_half_unsure():
    sure = {"image": "a.png", "letter": "A", "probability": 0.9, "unsure": False, "runners_up": [["H", 0.05]]}
    assert format_result(sure) == "a.png: A (90.0%; then H 5.0%)"
    unsure = dict(sure, probability=0.4, unsure=True)
    assert format_result(unsure) == "a.png: A (40.0%, unsure; then H 5.0%)"
    assert UNSURE_BELOW == 0.5


def test_predict_help_states_the_unsure_threshold_it_uses(capsys):
    code, out, _ = run_cli(capsys, "predict", "--help")
    assert code == 0
    assert f"under {UNSURE_BELOW:.0%} is marked unsure" in " ".join(out.split())


def test_patience_on_the_held_out_set_is_warned_about_and_not_with_a_validation_fraction(capsys, tmp_path,
                                                                                         blob_files):
    warning = "warning: --patience stops on the held-out set"
    code, out, err = run_cli(capsys, "train", "--data", str(blob_files), "--epochs", "3", "--patience", "2",
                             "--out", str(tmp_path / "a"), "--no-progress")
    assert code == 0 and warning in out, err
    code, out, err = run_cli(capsys, "train", "--data", str(blob_files), "--epochs", "3", "--patience", "2",
                             "--val-fraction", "0.2", "--out", str(tmp_path / "b"), "--no-progress")
    assert code == 0 and warning not in out, err


@pytest.mark.parametrize("temperature, unsure", [(1e-3, False), (1e3, True)])
def test_predict_and_serve_read_with_the_saved_temperature(tmp_path, temperature, unsure):
    """A sharp temperature makes any answer sure, a flat one leaves every letter near 1/26."""
    from xpnet.train.checkpoints import save_checkpoint
    from xpnet.train.predict import Reader

    net = Network.from_sizes([784, 26], resolve_backend("numpy"), seed=1)
    net.temperature = temperature
    path = save_checkpoint(net, tmp_path / "m.safetensors", {"classes": [chr(ord("A") + i) for i in range(26)]})
    pixels = np.zeros((28, 28), np.float32)
    pixels[6:22, 12:16] = 1.0
    answer = Reader(str(path)).read(pixels)
    assert answer["unsure"] is unsure
    assert (answer["probability"] > 0.99) if not unsure else (answer["probability"] < 0.05)
