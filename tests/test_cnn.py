"""Convolutional networks end to end: built from words, saved and loaded on every backend and
in PyTorch, trained by `xpnet train` (--preset cnn, --layers, --image), resumed exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

import xpnet
from xpnet.model import Network
from xpnet.model.layers import same_layers
from xpnet.train.learning_rate import probe_loss
from xpnet.train.optimizers import make_optimizer
from assertions import assert_on, assert_one_line_error, run_cli
from toy_runs import images

WORDS = ["conv4x3", "pool2", "conv6x3s2", "dropout0.25", 8]


def small_cnn(backend, seed=0):
    return Network.from_layers(WORDS, (1, 8, 8), 4, backend, activation="relu", seed=seed)


def test_a_cnn_describes_itself_and_matches_its_words(reference):
    net = small_cnn(reference)
    assert net.summary == "1x8x8 -> conv4x3 -> maxpool2 -> conv6x3s2 -> dropout0.25 -> flatten -> 8 -> 4"
    assert net.sizes == [64, 256, 64, 24, 24, 24, 8, 4]
    assert same_layers(net.layers, WORDS) and not same_layers(net.layers, ["conv4x3", "pool2", 8])
    arch = json.loads(json.dumps(net.architecture()))  # what a checkpoint stores survives JSON
    assert arch["input"] == [1, 8, 8] and [d["kind"] for d in arch["layers"]][:3] == ["conv", "maxpool", "conv"]


@pytest.mark.parametrize("layer, key, value, named", [
    (0, "stride", 2.7, "conv4x3s2.7: its stride"), (1, "size", 2.9, "maxpool2.9: its size"),
    (3, "seed", 5.5, "dropout0.25: its seed"), (2, "filters", "6", "conv6x3s2: its filters"),
    (0, "kernel", [3, 2.5], "conv4x3x2.5: its kernel"),
])
def test_a_checkpoint_whose_layer_settings_are_not_whole_numbers_is_refused(reference, layer, key, value, named):
    """Rounded down, a hand-edited 2.7 would load another network than the one it describes."""
    from xpnet.model import checkpoint

    net = small_cnn(reference)
    arch = json.loads(json.dumps(net.architecture()))
    arch["layers"][layer][key] = value
    with pytest.raises(checkpoint.CheckpointError, match=f"describes a network xpnet cannot build: {named} must be "
                       "a whole number"):
        checkpoint.build(checkpoint.tensor_dict(net), arch, reference, "ck.safetensors")


def test_a_saved_cnn_loads_on_every_backend_and_predicts_the_same(backend, reference, tmp_path):
    net = small_cnn(reference)
    X, y = images()
    opt = make_optimizer("adam", reference, net.params, 0.01)
    for _ in range(3):  # trained a little, so the dropout layer's draw count moves too
        net.train_step(reference.asarray(X), reference.asarray(np.eye(4)[y]), opt)
    path = xpnet.save(net, tmp_path / "cnn", classes=["a", "b", "c", "d"])
    loaded = xpnet.load(path, backend, dtype="float64")
    assert loaded.classes == ("a", "b", "c", "d") and loaded.summary == net.summary
    for p in loaded.params:
        assert_on(backend, p)
    assert loaded.layers[3].steps == 3
    np.testing.assert_allclose(loaded.predict_proba(X), net.predict_proba(X), rtol=1e-12, atol=1e-14)


def test_a_cnn_checkpoint_is_pytorchs_layout(reference, tmp_path):
    """The documented recipe: each layers.{i}.W / .b straight into the same torch.nn layers."""
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install 'xpnet[torch]'")
    from safetensors.numpy import load_file

    net = small_cnn(reference, seed=3)
    tensors = load_file(xpnet.save(net, tmp_path / "cnn"))
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, stride=2, padding=(0, 1, 0, 1)[0:2]), nn.ReLU(),
                          nn.Dropout(0.25), nn.Flatten(), nn.Linear(24, 8), nn.ReLU(), nn.Linear(8, 4)).double()
    # conv6x3s2 "same" on 4x4 pads one row and column at the bottom and right: pad by hand
    model[3].padding = (0, 0)
    pads = nn.ZeroPad2d((0, 1, 0, 1))
    torch_layers = {0: model[0], 2: model[3], 5: model[7], 6: model[9]}
    with torch.no_grad():
        for i, layer in torch_layers.items():
            layer.weight.copy_(torch.from_numpy(tensors[f"layers.{i}.W"]))
            layer.bias.copy_(torch.from_numpy(tensors[f"layers.{i}.b"]))
        model.eval()
        X = images(seed=4)[0]
        h = model[:3](torch.from_numpy(X).reshape(-1, 1, 8, 8))
        out = model[3:](pads(h))
    np.testing.assert_allclose(out.numpy(), reference.to_numpy(net.forward(reference.asarray(X))), rtol=1e-10)


@pytest.mark.parametrize("size, word", [(28, "conv2x5s2"), (8, "conv2x4"), (9, "conv2x3s2"), (7, "conv2x2s3")])
def test_same_padding_in_pytorch_is_the_documented_zero_pad(reference, size, word):
    """docs/cnn.md's rule: same_pads' zeros, top and left the smaller half, before an unpadded torch conv."""
    torch = pytest.importorskip("torch", reason="torch is not installed: pip install 'xpnet[torch]'")
    from xpnet.model.conv import same_pads

    net = xpnet.Network.from_layers([word], (1, size, size), 3, reference, seed=1)
    conv = net.layers[0]
    F, C, k, _ = conv.W.shape
    top, bottom, left, right = same_pads((size, size), (k, k), conv.stride)
    model = torch.nn.Sequential(torch.nn.ZeroPad2d((left, right, top, bottom)),
                                torch.nn.Conv2d(C, F, k, stride=conv.stride)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(reference.to_numpy(conv.W)))
        model[1].bias.copy_(torch.from_numpy(reference.to_numpy(conv.b)))
        X = np.random.default_rng(0).standard_normal((2, size * size))
        out = model(torch.from_numpy(X).reshape(2, 1, size, size)).relu()
    expected = conv.forward(reference.asarray(X.reshape(2, 1, size, size)))[0]
    np.testing.assert_allclose(out.numpy(), reference.to_numpy(expected), rtol=1e-10, atol=1e-12)


@pytest.fixture
def bars_npz(tmp_path):
    X, y = images(600)
    path = tmp_path / "bars.npz"
    np.savez(path, X=X[:480], y=y[:480], X_test=X[480:], y_test=y[480:])
    return path


def test_xpnet_train_takes_conv_layers_and_resumes_them_exactly(capsys, bars_npz, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", f"npz:{bars_npz}", "--layers", "conv4x3,pool2,dropout0.2,16", "--optimizer", "adam",
            "--lr", "0.01", "--batch-size", "32", "--no-progress", "--backend", "numpy",
            "--schedule", "constant"]  # the run is extended from 2 epochs to 4: the same run only at a constant rate
    code, text, err = run_cli(capsys, *args, "--epochs", "2", "--out", str(out))
    assert code == 0, err
    assert "network 1x8x8 -> conv4x3 -> maxpool2 -> dropout0.2 -> flatten -> 16 -> 4" in text
    code, text, err = run_cli(capsys, "train", "--resume", str(out), "--epochs", "4", "--no-progress")
    assert code == 0, err
    whole = tmp_path / "whole"
    code, text_whole, err = run_cli(capsys, *args, "--epochs", "4", "--out", str(whole))
    assert code == 0, err
    resumed, straight = (xpnet.load(p, "numpy") for p in (out, whole))
    for a, b in zip(resumed.params, straight.params):
        np.testing.assert_array_equal(a, b)  # the same masks drawn after the resume
    accuracy = json.loads((whole / "history.json").read_text())[-1]["val_accuracy"]
    assert accuracy > 0.9, accuracy  # bars are easy; chance is 0.25


def wide_npz(tmp_path) -> str:
    """50 samples of 30 features: no square picture, but 3x2x5 or 1x5x6 would hold one."""
    rng = np.random.default_rng(0)
    path = tmp_path / "wide.npz"
    np.savez(path, X=rng.random((50, 30)), y=rng.integers(0, 2, 50))
    return f"npz:{path}"


def test_a_conv_network_needs_images_it_can_shape(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "--data", wide_npz(tmp_path), "--layers", "conv4x3,8", "--epochs", "1",
                           "--out", str(tmp_path / "r1"), "--no-progress")
    assert_one_line_error(code, err, "conv4x3 takes pictures, but samples of 30 features", "--image CxHxW")


@pytest.mark.parametrize("layers", ["conv4x3,8", "8"])  # a dense network reads the pixels flat, but a
def test_an_image_shape_must_hold_the_samples(capsys, tmp_path, layers):  # misfit shape is still a mistake
    data = wide_npz(tmp_path)
    code, _, err = run_cli(capsys, "train", "--data", data, "--layers", layers, "--image", "1x5x5",
                           "--epochs", "1", "--out", str(tmp_path / "r2"), "--no-progress")
    assert_one_line_error(code, err, "1x5x5", "30 features")
    code, _, err = run_cli(capsys, "train", "--data", data, "--layers", layers, "--image", "2x3x5",
                           "--epochs", "1", "--out", str(tmp_path / "r3"), "--no-progress")
    assert code == 0, err


def test_an_image_shape_that_scrambles_the_datas_own_pictures_is_refused(capsys, tmp_path):
    """Pictures saved as (n, 6, 5) hold 30 values as 2x3x5 does, but read so they are scrambled."""
    path = tmp_path / "pictures.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.random((40, 6, 5)), y=rng.integers(0, 2, 40))
    code, _, err = run_cli(capsys, "train", "--data", str(path), "--layers", "conv4x3,8", "--image", "2x3x5",
                           "--epochs", "1", "--out", str(tmp_path / "r1"), "--no-progress")
    assert_one_line_error(code, err, "--image 2x3x5 does not fit the data's pictures, which are 1x6x5")
    assert not (tmp_path / "r1").exists()  # refused before the run folder was made


@pytest.mark.parametrize("shape,flat", [((40, 3, 6, 5), "X.reshape(len(X), -1)"),
                                        ((40, 6, 5, 3), "X.transpose(0, 3, 1, 2).reshape(len(X), -1)")])
def test_colour_pictures_in_an_npz_are_told_how_to_go_in_and_then_train(capsys, tmp_path, shape, flat):
    rng = np.random.default_rng(0)
    X, y = rng.random(shape), rng.integers(0, 2, 40)
    np.savez(tmp_path / "colour.npz", X=X, y=y)
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "colour.npz"), "--layers", "conv4x3,8",
                           "--out", str(tmp_path / "r1"), "--no-progress")
    assert_one_line_error(code, err, f"store it flat, channels first, {flat}, and give --image 3x6x5")
    np.savez(tmp_path / "flat.npz", X=eval(flat), y=y)  # the line's own advice, followed
    code, _, err = run_cli(capsys, "train", "--data", str(tmp_path / "flat.npz"), "--layers", "conv4x3,8",
                           "--image", "3x6x5", "--epochs", "1", "--out", str(tmp_path / "r2"), "--no-progress")
    assert code == 0, err


@pytest.mark.parametrize("layers,named", [("conv0x3,8", "conv0x3"), ("conv4x3,pooling2", "pooling2"),
                                          ("conv4x3,dropout2", "dropout2")])
def test_bad_layer_words_are_refused_before_any_work(capsys, layers, named):
    code, _, err = run_cli(capsys, "train", "--layers", layers)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args,needles", [
    (["--layers", "conv4x99,8"], ["conv4x99", "99x99 kernel is larger than its 28x28 input"]),
    (["--layers", "conv4x3,pool2,pool2,pool2,pool8,8"], ["maxpool8"]),
    (["--layers", "conv4x3,8", "--image", "3x32x32"], ["3x32x32 holds 3072 values", "784 features"]),
    (["--layers", "conv4x3,8", "--image", "1x14x56"], ["--image 1x14x56 does not fit", "which are 1x28x28"]),
    (["--image", "1x56x14"], ["--image 1x56x14 does not fit"]),  # a dense network's shifted pictures too
])
def test_a_network_the_letters_cannot_take_is_refused_before_they_are_drawn(capsys, monkeypatch, tmp_path, args,
                                                                            needles):
    from xpnet.train.data import letters

    monkeypatch.setattr(letters, "load_letters", lambda **_: pytest.fail("the letters were drawn first"))
    code, _, err = run_cli(capsys, "train", *args, "--out", str(tmp_path / "run"), "--no-progress")
    assert_one_line_error(code, err, *needles)


@pytest.mark.parametrize("hidden,image", [(None, [1, 28, 28]), (["conv4x3", "pool2", 8], [1, 28, 28]), ([8], None)])
def test_what_the_letters_can_take_passes_the_early_check(hidden, image):
    from xpnet.train.build import check_config
    from xpnet.train.config import TrainConfig, with_data_defaults

    check_config(with_data_defaults(TrainConfig(hidden=hidden, image=image)))


def test_evaluation_takes_a_conv_networks_rows_in_chunks_its_memory_allows():
    """A forward pass only to evaluate holds the busiest layer's windows for every row at once:
    a conv network takes fewer rows per pass than a dense one, and the answers do not depend on
    how many (the preset's validation pass took 3-4 s in chunks of 4096, 0.6 s in 700s)."""
    from xpnet.model.layer import EVAL_BYTES, MAX_EVAL_ROWS, eval_rows

    backend = xpnet.resolve_backend("numpy", dtype="float32")
    dense = xpnet.Network.from_layers([64, 32], (1, 8, 8), 4, backend)
    assert eval_rows(dense.layers, backend) == MAX_EVAL_ROWS
    preset = xpnet.Network.from_layers(["conv16x3", "pool2", "conv32x3", "pool2", 64], (1, 28, 28), 26, backend)
    conv = preset.layers[2]  # 16 channels of 14x14 in (16x16 padded), 16 * 9 * 196 windows, 32 out twice
    assert conv.floats_per_row() == 16 * 196 + 16 * 16 * 16 + 16 * 9 * 196 + 2 * 32 * 196
    assert eval_rows(preset.layers, backend) == EVAL_BYTES // (4 * conv.floats_per_row()) < MAX_EVAL_ROWS
    assert eval_rows(preset.layers, backend.with_dtype("float64")) == EVAL_BYTES // (8 * conv.floats_per_row())


@pytest.mark.parametrize("rows", [7, 50])
def test_evaluation_in_chunks_answers_as_in_one_pass_on_every_backend(backend, monkeypatch, rows):
    """However few rows a pass takes (here 7 of 50, as a small memory budget would allow), the
    probabilities and scores are those of one pass, on every backend."""
    from xpnet.model import layer as layer_module

    X, y = images(50)
    net = xpnet.Network.from_layers(["conv4x3", "pool2", 8], (1, 8, 8), 4, backend)
    whole = net.predict_proba(X, batch_size=50)
    monkeypatch.setattr(layer_module, "EVAL_BYTES", rows * 8 * net.layers[0].floats_per_row())  # `rows` a pass
    seen = []
    forward = net.forward
    monkeypatch.setattr(net, "forward", lambda x: seen.append(x.shape[0]) or forward(x))
    np.testing.assert_allclose(net.predict_proba(X), whole, rtol=1e-12)
    assert seen == [rows] * (50 // rows) + [50 % rows] * (50 % rows > 0)
    seen.clear()
    assert xpnet.evaluate(net, X, y)["accuracy"] == np.mean(whole.argmax(1) == y)
    assert max(seen) == rows
    seen.clear()  # the loss training starts from (and lr="auto" compares rates by), as one pass has it
    x, t = backend.asarray(X), backend.asarray(np.eye(4)[y])
    one_pass = float(net.loss_of(forward(x), t))
    assert probe_loss(net, x, t) == pytest.approx(one_pass, rel=1e-12) and max(seen) == rows
