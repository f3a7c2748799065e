"""The headline job end to end, small: train on generated letters, then read pictures.

One short training run (a few thousand samples) is shared by the tests of this module; it
must beat a stated accuracy on the held-out font family, write the run folder, and let
`xpnet predict` read letters drawn by a person's means: a font never seen in training,
odd image sizes, coloured ink on coloured paper.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from xpnet.train.cli import main
from xpnet.train.config import TrainConfig
from xpnet.train.jobs import train_job

HELD_OUT_FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSerif.ttf"
MIN_HELD_OUT_ACCURACY = 0.45  # measured 0.58 on the four held-out groups (handwriting, small); chance is 1/26


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("letters")
    mp = pytest.MonkeyPatch()
    mp.setenv("XPNET_CACHE", str(root / "cache"))
    lines: list[str] = []
    config = TrainConfig(backend="numpy", train_samples=6000, test_samples=1000, epochs=5, hidden=[128],
                         out=str(root / "run"))
    try:
        run_dir = train_job(config, lines.append, progress=False)
    finally:
        mp.undo()
    return run_dir, lines


def test_short_training_beats_the_stated_accuracy_on_unseen_fonts(trained_run):
    run_dir, lines = trained_run
    final = [line for line in lines if line.startswith("test accuracy")]
    assert final, lines
    accuracy = float(final[0].split()[2].rstrip("%")) / 100
    assert accuracy >= MIN_HELD_OUT_ACCURACY
    baseline = [line for line in lines if line.startswith("untrained network")]
    assert baseline and "1/26" in baseline[0]
    assert any(line.startswith("per class: A ") for line in lines)
    assert any(line.startswith("most confused:") for line in lines)


def test_run_folder_holds_checkpoint_history_and_pictures(trained_run):
    run_dir, lines = trained_run
    assert lines[-1] == (f"next: xpnet predict {run_dir} PICTURE.png, xpnet evaluate {run_dir}, "
                         f"or try it in a browser: xpnet serve {run_dir}")
    for name in ("model.safetensors", "history.json", "config.json", "confusion.json", "groups.json",
                 "curves.png", "confusion.png", "samples.png"):
        assert (run_dir / name).is_file(), name
    groups = json.loads((run_dir / "groups.json").read_text())
    assert [g["samples"] for g in groups] == [400, 200, 200, 200]
    assert all(0 <= g["accuracy"] <= 1 and 0 <= g["ece"] <= 1 for g in groups)
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 5 and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history[0])
    # the test set is watched every epoch, group by group; the last epoch's is what the report says
    assert all(set(r["test_groups"]) == {g["name"] for g in groups} for r in history)
    assert history[-1]["test_groups"] == {g["name"]: g["accuracy"] for g in groups}
    calibration = json.loads((run_dir / "calibration.json").read_text())
    assert calibration["temperature"] != 1.0 and calibration["groups"] == {g["name"]: g["ece"] for g in groups}
    for picture in ("curves.png", "confusion.png", "samples.png", "reliability.png"):
        with Image.open(run_dir / picture) as img:
            assert img.size[0] > 300 and img.size[1] > 200


def _draw(letter: str, path: Path, size, ink, paper) -> None:
    """A letter as a person might give it: any size, coloured ink on coloured paper."""
    img = Image.new("RGB", size, paper)
    font = ImageFont.truetype(str(HELD_OUT_FONT), int(min(size) * 0.7))
    draw = ImageDraw.Draw(img)
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font)
    draw.text(((size[0] - (right - left)) / 2 - left, (size[1] - (bottom - top)) / 2 - top), letter,
              font=font, fill=ink)
    img.save(path)


PICTURES = [  # (letter, size, ink, paper)
    ("A", (53, 71), (20, 20, 120), (250, 240, 200)),
    ("g", (120, 90), (0, 0, 0), (255, 255, 255)),
    ("R", (64, 64), (200, 30, 30), (245, 245, 245)),
    ("x", (37, 41), (10, 80, 10), (230, 255, 230)),
    ("M", (200, 150), (255, 255, 255), (0, 0, 0)),  # bright ink on dark, as in training
    ("e", (90, 130), (60, 60, 60), (210, 210, 210)),
    ("K", (45, 100), (0, 0, 90), (255, 255, 255)),
    ("W", (150, 80), (0, 0, 0), (255, 250, 240)),
]


def test_predict_reads_letters_from_unseen_font_pictures(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    paths = []
    for i, (letter, size, ink, paper) in enumerate(PICTURES):
        paths.append(tmp_path / f"{i}-{letter}.png")
        _draw(letter, paths[-1], size, ink, paper)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not an image")
    code = main(["predict", str(run_dir), *map(str, paths[:4]), "--json", str(broken), *map(str, paths[4:]),
                 "--backend", "numpy"])  # pictures after a flag are pictures too
    out = capsys.readouterr().out
    results = [json.loads(line) for line in out.splitlines()]
    assert code != 0  # one image could not be read...
    assert len(results) == len(PICTURES) + 1  # ...and every other image was still read
    errors = [r for r in results if "error" in r]
    assert len(errors) == 1 and errors[0]["image"] == str(broken) and "\n" not in errors[0]["error"]
    read = [r for r in results if "error" not in r]
    hits = sum(r["letter"] == letter.upper() for r, (letter, *_) in zip(read, PICTURES))
    assert hits >= 6, read
    for r in read:
        assert 0 < r["probability"] <= 1 and len(r["runners_up"]) == 2
        assert r["probability"] >= max(p for _, p in r["runners_up"])


def test_predict_text_output_names_letter_and_runners_up(trained_run, tmp_path, capsys):
    run_dir, _ = trained_run
    path = tmp_path / "o.png"
    _draw("O", path, (80, 80), (0, 0, 0), (255, 255, 255))
    assert main(["predict", str(run_dir), str(path), "--backend", "numpy"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{path}: O (") and "then" in line


def test_predict_refuses_a_model_that_does_not_take_images(tmp_path, capsys):
    from xpnet.backends import resolve_backend
    from xpnet.model import Network
    from xpnet.train.checkpoints import save_checkpoint

    net = Network.from_sizes([3, 4, 2], resolve_backend("numpy"))
    save_checkpoint(net, tmp_path / "m.safetensors")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(img)
    assert main(["predict", str(tmp_path / "m.safetensors"), str(img)]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "takes 3 inputs, not 28x28 pictures" in err and "--input" in err
    photos = Network.from_layers(["conv4x3", 8], (3, 32, 32), 2, resolve_backend("numpy"))
    save_checkpoint(photos, tmp_path / "photos.safetensors")
    assert main(["predict", str(tmp_path / "photos.safetensors"), str(img)]) != 0
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "reads 3x32x32 pictures, but image files are framed" in err


def test_lr_auto_does_not_choose_a_rate_that_stalls_on_the_letters(trained_run, monkeypatch):
    """The README's API snippet (sigmoid 784-128-64-26, lr="auto") on a few thousand letters:
    with 20-step trials lr 10 looked as good as 1 (3.299 against 3.282 here) and then stayed
    at chance; 100-step trials see 1 break through the plateau (2.89) and 10 not (3.31)."""
    from xpnet.backends import resolve_backend
    from xpnet.model import Network
    from xpnet.train.data import load_data
    from xpnet.train.learning_rate import find_learning_rate
    from xpnet.train.device_data import DeviceData

    run_dir, _ = trained_run
    monkeypatch.setenv("XPNET_CACHE", str(run_dir.parent / "cache"))  # the letters the module's run made
    data = load_data("letters", n_train=6000, n_test=1000, progress=False)
    model = Network.from_sizes([784, 128, 64, 26], resolve_backend("numpy"))
    chosen, report = find_learning_rate(model, DeviceData.from_host(model, data.X_train, data.y_train), "sgd", 64, 0)
    assert chosen in (1.0, 3.0) and "3->" in report and "(flat)" not in report.split("3->")[-1], report
    # measured here: 1 -> 3.181, 10 -> 3.305 (stalled), then 3 -> 3.038, still falling: 3


# lr="auto" on the letters, measured here (6,000 letters): the course preset's network climbs
# 0.001 -> 2.96, 0.01 -> 0.92, 0.1 -> 0.487, 1 -> 0.481, and 10 pushes every output to 0 (J 0.499,
# higher): back to 1, then 3 -> 0.482, as good: 3, the course's own rate. The old search, comparing with the start alone, took the flat 0.5 of 1000 for a fall.
# Adam: 0.001 -> 1.24, 0.01 -> 1.07, 0.1 -> 3.26: 0.01 (3 epochs: 74.1% held out; 0.001: 70.9%).
# Momentum: 0.01 -> 1.68, 0.1 -> 1.10, 1 -> 3.30: 0.1 (3 epochs: 70.0%; its default 0.05: 72.7%).
AUTO_CASES = {
    "course": (dict(activation="sigmoid", loss="quadratic", init="normal"), [784, 128, 64, 26], "sgd", 16, {3.0}),
    "adam-relu": (dict(activation="relu", init="he"), [784, 256, 128, 26], "adam", 64, {0.001, 0.01}),
    "momentum-relu": (dict(activation="relu", init="he"), [784, 256, 128, 26], "momentum", 64, {0.01, 0.1}),
}


@pytest.mark.parametrize("case", sorted(AUTO_CASES))
def test_lr_auto_on_the_letters_chooses_a_rate_that_learns(trained_run, monkeypatch, case):
    from xpnet.backends import resolve_backend
    from xpnet.model import Network
    from xpnet.train.data import load_data
    from xpnet.train.device_data import DeviceData
    from xpnet.train.learning_rate import find_learning_rate

    settings, sizes, optimizer, batch_size, good = AUTO_CASES[case]
    run_dir, _ = trained_run
    monkeypatch.setenv("XPNET_CACHE", str(run_dir.parent / "cache"))
    data = load_data("letters", n_train=6000, n_test=1000, progress=False)
    model = Network.from_sizes(sizes, resolve_backend("numpy"), **settings)
    chosen, report = find_learning_rate(model, DeviceData.from_host(model, data.X_train, data.y_train), optimizer,
                                        batch_size, 0)
    assert chosen in good, report


def test_the_untrained_score_without_a_held_out_split_reads_rows_spread_over_the_set():
    """A folder of images is listed class by class: the first rows would all be one class."""
    from xpnet.train.data import DataSet
    from xpnet.train.jobs import BASELINE_ROWS, baseline_rows

    y = np.repeat(np.arange(4), 3 * BASELINE_ROWS // 4)  # sorted by class
    data = DataSet(np.zeros((len(y), 2), np.float32), y, None, None, classes=("a", "b", "c", "d"), image_shape=None)
    _, labels = baseline_rows(data)
    assert len(labels) == BASELINE_ROWS and np.bincount(labels).min() > BASELINE_ROWS // 5  # about a quarter each


def test_resuming_through_the_api_without_a_run_folder_is_one_line(tmp_path):
    from xpnet.backends import XpnetError
    from xpnet.train.config import TrainConfig

    with pytest.raises(XpnetError, match="resuming needs the run folder"):
        train_job(TrainConfig(), print, resume=True)
