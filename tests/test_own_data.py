"""Your own data, trained well by default: scaling that travels with the model, the learning
rate's default, and the command line on a regression set (regression answered in values,
validation splits and early stopping: test_own_data_regression.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

import xpnet
from xpnet.backends import XpnetError
from xpnet.model import Network
from xpnet.model.checkpoint import CheckpointError, from_bytes, to_bytes
from xpnet.model.scaling import Scaling
from xpnet.train import evaluate, learn, test
from xpnet.train.data import DataError
from xpnet.train.scaling import SCALERS, fit_scaling, scaled_pair
from assertions import assert_one_line_error, run_cli


def house_prices(n=1200, seed=0):
    """Areas 50-300 m^2, rooms 1-7, ages 0-100 years; prices 1e5-1e6, nearly linear (a linear fit
    reaches R^2 0.99): raw, the features and targets span five decades and SGD diverges."""
    rng = np.random.default_rng(seed)
    area, rooms, age = rng.uniform(50, 300, n), rng.integers(1, 8, n).astype(float), rng.uniform(0, 100, n)
    price = 3000 * area + 20000 * rooms - 1000 * age + 1e5 + rng.normal(0, 2e4, n)
    return np.c_[area, rooms, age].astype(np.float32), price.astype(np.float32)


# -- scaling --------------------------------------------------------------------------------

def test_default_scaling_standardises_features_and_targets_but_keeps_images():
    X, y = house_prices(200)
    s = fit_scaling(None, X, y, regression=True)
    assert (s.inputs, s.targets) == ("standard", "standard")
    np.testing.assert_allclose(s.x_shift, X.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(s.y_scale, [y.astype(np.float64).std()], rtol=1e-6)
    pixels = np.random.default_rng(0).uniform(0, 1, (50, 16))  # every value in [0, 1]: an image's
    kept = fit_scaling(None, pixels, np.arange(50) % 3, regression=False)
    assert kept.inputs == "none" and kept.x_shift is None and kept.y_shift is None
    asked = fit_scaling("standard", pixels, np.arange(50) % 3, regression=False)  # asked: applied anyway
    assert asked.inputs == "standard" and asked.x_shift.shape == (16,)
    minmax = fit_scaling("minmax", X, y, regression=True)
    np.testing.assert_allclose(minmax.x_shift, X.min(axis=0), rtol=1e-6)


def test_a_constant_feature_is_shifted_not_divided_by_zero():
    X = np.c_[np.full(10, 7.0), np.arange(10.0)]
    for name in ("standard", "minmax"):
        s = fit_scaling(name, X, np.arange(10) % 2, regression=False)
        assert s.x_scale[0] == 1.0 and np.isfinite(s.x_scale).all()


def eight_bit_images(n=200, side=8, top=255, seed=0):
    """Whole-number pictures in 0..top with a dark border, and one border pixel lit in a single
    training picture: the pixel per-pixel standardisation divides by a tiny spread."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, side, side))
    X[:, 2:-2, 2:-2] = rng.integers(0, top + 1, (n, side - 4, side - 4))
    X[0, 0, 0] = top
    return X.reshape(n, -1), np.arange(n) % 3


def test_eight_bit_images_are_standardised_as_one_not_pixel_by_pixel():
    X, y = eight_bit_images()
    s = fit_scaling(None, X, y, regression=False)
    assert s.inputs == "pixels" and s.x_shift.shape == s.x_scale.shape == (64,)
    np.testing.assert_allclose(s.x_shift, X.mean())
    np.testing.assert_allclose(s.x_scale, X.std())
    lit = np.zeros((1, 64))
    lit[0, 0] = 255  # a stroke on the border pixel of a new picture
    brightest = (X.max() - X.mean()) / X.std()  # the brightest training pixel, as the network sees it
    assert scaled_pair(SimpleNamespace(scaling=s), lit, y[:1])[0].max() == pytest.approx(brightest)
    standard = fit_scaling("standard", X, y, regression=False)
    assert (lit[0, 0] - standard.x_shift[0]) / standard.x_scale[0] > 4 * brightest  # what the pixel rule avoids
    assert fit_scaling(None, *eight_bit_images(top=16), regression=False).inputs == "pixels"  # digits: 0..16


def test_cli_says_it_read_eight_bit_images_as_pixels(capsys, tmp_path):
    X, y = eight_bit_images()
    np.savez(tmp_path / "pictures.npz", X=X, y=y)
    code, out, err = run_cli(capsys, "train", "--data", str(tmp_path / "pictures.npz"), "--epochs", "1",
                             "--no-progress", "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert "scale: inputs standardised as pixels (one mean and std for all columns) (whole numbers 0-255" in out


@pytest.mark.parametrize("change", ["fractions", "negative", "above 255", "few columns"])
def test_data_not_like_eight_bit_images_is_standardised(change):
    X, y = eight_bit_images()
    X = {"fractions": X * 0.5, "negative": X - 1, "above 255": X * 2, "few columns": X[:, :63]}[change]
    assert fit_scaling(None, X, y, regression=False).inputs == "standard"


def test_an_unknown_scaler_is_one_line_naming_the_choices(numpy32):
    net = Network.from_sizes([3, 4, 1], numpy32, loss="quadratic")
    with pytest.raises(DataError) as info:
        learn(net, house_prices(50), epochs=1, scale="log", log=None)
    assert all(name in str(info.value) for name in SCALERS)


def test_raw_house_prices_train_by_default_and_answer_in_their_own_units(numpy32):
    """The issue's house-price npz diverged without scaling; with the default it fits, and
    test/predict/evaluate take raw areas and answer raw prices."""
    X, y = house_prices()
    net = Network.from_sizes([3, 32, 1], numpy32, activation="relu", loss="quadratic", init="he")
    lines = []
    learn(net, (X[:1000], y[:1000]), epochs=30, batch_size=32, lr=0.01, optimizer="momentum", log=lines.append)
    assert any(line.startswith("scale: inputs standardised") and "targets standardised" in line for line in lines)
    scores = evaluate(net, X[1000:], y[1000:])
    assert scores["r2"] > 0.95, scores
    assert set(scores) >= {"loss", "mse", "rmse", "mae", "r2"} and "accuracy" not in scores
    one = test(net, X[1000])
    assert type(one) is float and abs(one - y[1000]) < 0.2 * y[1000]
    np.testing.assert_allclose(test(net, X[1000:1005]), net.predict(X[1000:1005])[:, 0])


def test_scaling_survives_save_and_load_and_the_answers_are_the_same(numpy32, tmp_path):
    X, y = house_prices(300)
    net = Network.from_sizes([3, 8, 1], numpy32, activation="tanh", loss="quadratic")
    learn(net, (X, y), epochs=3, batch_size=32, lr=0.01, log=None)
    xpnet.save(net, tmp_path / "house.safetensors")
    back = xpnet.load(tmp_path / "house.safetensors", "numpy")
    assert back.scaling.inputs == "standard" and back.regression is True
    np.testing.assert_array_equal(back.predict(X[:20]), net.predict(X[:20]))
    assert back.predict(X[:20]).mean() > 1e5  # prices, not standard units


def test_a_checkpoint_from_before_scaling_loads_and_takes_its_inputs_as_they_come(numpy32):
    net = Network.from_sizes([3, 4, 1], numpy32, activation="tanh", output="identity", loss="quadratic")
    data = to_bytes(net)  # no scaling recorded: as every older checkpoint
    back, meta = from_bytes(data, numpy32)
    assert "scaling" not in meta and back.scaling == Scaling()
    X = np.arange(12.0).reshape(4, 3)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_a_scaling_of_the_wrong_width_is_refused_at_load(numpy32):
    net = Network.from_sizes([3, 4, 1], numpy32, activation="tanh", output="identity", loss="quadratic")
    net.scaling = Scaling("standard", "none", np.zeros(5), np.ones(5))
    with pytest.raises(CheckpointError, match="scaling.x_shift"):
        from_bytes(to_bytes(net), numpy32)


def test_a_trained_model_keeps_its_scaling_when_it_learns_again(numpy32):
    X, y = house_prices(200)
    net = Network.from_sizes([3, 4, 1], numpy32, activation="tanh", loss="quadratic")
    learn(net, (X, y), epochs=1, lr=0.01, log=None)
    first = net.scaling
    learn(net, (X * 2, y), epochs=1, lr=0.01, log=None)  # not refitted on other data
    assert net.scaling is first
    with pytest.raises(DataError, match="keeps it"):
        learn(net, (X, y), epochs=1, lr=0.01, scale="minmax", log=None)


# -- the learning rate's default -----------------------------------------------------------------

@pytest.mark.parametrize("optimizer,lr", [("adam", 0.001), ("momentum", 0.05), ("sgd", 0.1)])
def test_the_default_rate_is_the_optimizers_and_the_log_says_so(numpy32, optimizer, lr):
    net = Network.from_sizes([2, 4, 2], numpy32)
    lines = []
    learn(net, (np.zeros((8, 2)), np.arange(8) % 2), epochs=1, optimizer=optimizer, log=lines.append)
    assert lines[0] == f"lr {lr:g} ({optimizer}'s default; lr= or --lr to change it)"


# -- the command line ------------------------------------------------------------------------------

@pytest.fixture
def house_npz(tmp_path):
    X, y = house_prices()
    path = tmp_path / "house.npz"
    np.savez(path, X=X[:1000], y=y[:1000], X_test=X[1000:], y_test=y[1000:])
    return path


def test_cli_regression_trains_scaled_by_default_and_reports_r2(capsys, tmp_path, house_npz):
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{house_npz}", "--loss", "quadratic", "--layers", "32",
                             "--epochs", "15", "--out", str(run), "--no-progress", "--backend", "numpy")
    assert code == 0, err
    assert "momentum lr 0.05 (its default)" in out and "scale: inputs standardised" in out
    r2 = float(out.split("test rmse")[1].split(" r2 ")[1].split()[0])
    assert r2 > 0.95, out
    code, out, err = run_cli(capsys, "evaluate", str(run), "--backend", "numpy")
    assert code == 0 and " r2 " in out and "rmse" in out, err
    meta = json.loads((run / "config.json").read_text())
    assert meta["scale"] is None and meta["lr"] is None


def test_cli_patience_without_validation_data_is_one_line(capsys, tmp_path):
    X, y = house_prices(100)
    np.savez(tmp_path / "train_only.npz", X=X, y=y)
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path / 'train_only.npz'}", "--loss", "quadratic",
                           "--patience", "2", "--out", str(tmp_path / "run"), "--no-progress", "--backend", "numpy")
    assert_one_line_error(code, err, "--val-fraction")
    assert not (tmp_path / "run").exists()  # refused before any work


@pytest.mark.parametrize("flags,needle", [(["--scale", "log"], "standard"),
                                          (["--val-fraction", "1.5"], "between 0 and 1")])
def test_cli_bad_scale_or_fraction_is_one_line(capsys, tmp_path, house_npz, flags, needle):
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{house_npz}", "--loss", "quadratic", *flags,
                           "--out", str(tmp_path / "run"), "--no-progress", "--backend", "numpy")
    assert code != 0 and needle in err and "Traceback" not in err


def test_cli_val_fraction_validates_on_training_rows_and_keeps_the_test_set(capsys, tmp_path, house_npz):
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{house_npz}", "--loss", "quadratic", "--layers", "8",
                             "--epochs", "2", "--val-fraction", "0.2", "--out", str(tmp_path / "run"),
                             "--no-progress", "--backend", "numpy")
    assert code == 0, err
    assert "validation: 200 of the 1000 training samples held back (20%)" in out
    assert "on 200 held-out samples" in out  # the test set's report


def test_bad_settings_are_xpnet_errors(numpy32):
    with pytest.raises(XpnetError):
        learn(Network.from_sizes([2, 4, 2], numpy32), (np.zeros((4, 2)), np.arange(4) % 2), lr=None,
              optimizer="lbfgs", log=None)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_lr_auto_on_a_regression_set_picks_a_rate_that_fits(numpy32, optimizer):
    """The issue's house prices: raw, lr auto went down to 1e-6 and ended at loss 8.5e10;
    scaled by default, the recipe's rate fits them."""
    X, y = house_prices()
    net = Network.from_sizes([3, 32, 1], numpy32, activation="relu", init="he")
    lines = []
    learn(net, (X[:1000], y[:1000]), epochs=20, batch_size=32, lr="auto", optimizer=optimizer, log=lines.append)
    assert any(line.startswith("lr auto: chose") for line in lines)
    assert evaluate(net, X[1000:], y[1000:])["r2"] > 0.9, lines


def test_divergence_on_unscaled_data_names_the_data_before_the_rate(numpy32):
    """The issue's case: every divergence message suggested lr/10 again, even where the data's
    scale was to blame; it names the values and the cure first now."""
    X, y = house_prices(200)
    net = Network.from_sizes([3, 1], numpy32, activation="identity", loss="quadratic")
    with pytest.raises(XpnetError) as info:
        learn(net, (X, y), epochs=20, batch_size=None, lr=0.05, scale="none", log=None)
    message = str(info.value)
    assert "training diverged" in message and "--scale standard" in message
    assert "the training targets reach 1.11e+06" in message and message.index("--scale") < message.index("try --lr")


def test_divergence_on_well_scaled_data_still_suggests_a_smaller_rate(numpy32):
    X = np.random.default_rng(0).standard_normal((64, 2))
    net = Network.from_sizes([2, 1], numpy32, activation="identity", loss="quadratic")
    with pytest.raises(XpnetError) as info:
        learn(net, (X, X[:, 0] + 1.0), epochs=200, batch_size=None, lr=50.0, log=None)
    assert "try --lr 5" in str(info.value) and "--scale" not in str(info.value)


def test_whole_number_float_targets_are_trained_as_values_with_a_warning_that_says_how_to_mean_classes(
        capsys, tmp_path):
    X = np.random.default_rng(0).standard_normal((200, 3))
    np.savez(tmp_path / "counts.npz", X=X, y=np.floor(3 * X[:, 0] ** 2))  # whole numbers, stored as floats
    code, out, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path / 'counts.npz'}", "--layers", "8",
                             "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress", "--backend", "numpy")
    assert code == 0, err
    assert "loss quadratic" in out and "is a whole number: if they are classes, save them as integers" in out
    code, _, err = run_cli(capsys, "train", "--data", f"npz:{tmp_path / 'counts.npz'}", "--loss", "cross_entropy",
                           "--out", str(tmp_path / "ce"), "--no-progress", "--backend", "numpy")
    assert_one_line_error(code, err, "needs integer class labels")
