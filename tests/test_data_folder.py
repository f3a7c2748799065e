"""Folder-of-images loading on small PNG/JPEG files written here."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from xpnet.train.data import DataError, load_data, preprocess_image
from xpnet.train.data.folder import load_folder

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def letter_image(ch, size=(60, 80), ink=(0, 0, 0), paper=(255, 255, 255)):
    img = Image.new("RGB", size, paper)
    ImageDraw.Draw(img).text((8, 4), ch, fill=ink, font=ImageFont.truetype(DEJAVU, 56))
    return img


def make_folder(root: Path, classes="ABC", per_class=2):
    """root/<class>/<i>.png, sizes and colours varying, so preprocessing has work to do."""
    for ch in classes:
        (root / ch).mkdir(parents=True)
        for i in range(per_class):
            size, ink, paper = (60 + 7 * i, 80 + 3 * i), (30 * i, 0, 90), (250, 250, 200 + i)
            img = letter_image(ch, size=size, ink=ink, paper=paper)
            img.save(root / ch / (f"{i}.png" if i % 2 == 0 else f"{i}.jpg"))


def test_class_folders_become_labelled_framed_images(tmp_path):
    make_folder(tmp_path)
    (tmp_path / ".hidden").mkdir()
    ds = load_data(f"folder:{tmp_path}", progress=False)
    assert ds.classes == ("A", "B", "C") and ds.image_shape == (28, 28)
    assert ds.X_train.shape == (6, 784) and ds.X_train.dtype == np.float32
    np.testing.assert_array_equal(ds.y_train, [0, 0, 1, 1, 2, 2])
    expected = preprocess_image(Image.open(tmp_path / "B" / "0.png"))
    np.testing.assert_allclose(ds.X_train[2], expected.ravel())
    assert ds.X_test is None and ds.info["skipped_files"] == 0


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "A" / "notes.txt").write_text("not an image")
    Image.new("L", (30, 30), 255).save(tmp_path / "C" / "blank.png")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = load_folder(tmp_path, progress=False)
    assert ds.X_train.shape == (6, 784) and ds.info["skipped_files"] == 2
    assert any("notes.txt" in name for name in ds.info["skipped_examples"])


def test_train_and_test_subfolders(tmp_path):
    make_folder(tmp_path / "train", classes="ABC")
    make_folder(tmp_path / "test", classes="AC", per_class=1)
    ds = load_folder(tmp_path, progress=False)
    assert ds.classes == ("A", "B", "C")
    np.testing.assert_array_equal(ds.y_test, [0, 2])


def test_test_class_missing_from_train_is_an_error(tmp_path):
    make_folder(tmp_path / "train", classes="AB")
    make_folder(tmp_path / "test", classes="AZ", per_class=1)
    with pytest.raises(DataError, match="'Z'"):
        load_folder(tmp_path, progress=False)


def test_empty_or_useless_folders_are_errors(tmp_path):
    with pytest.raises(DataError, match="no class sub-folders"):
        load_folder(tmp_path, progress=False)
    (tmp_path / "A").mkdir()
    with pytest.raises(DataError, match="no files"):
        load_folder(tmp_path, progress=False)
    (tmp_path / "A" / "x.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 1 files"):
        load_folder(tmp_path, progress=False)
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "missing", progress=False)


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_evaluate_and_report_load_a_folder_without_progress_bars_when_told(capsys, tmp_path, command):
    from assertions import run_cli

    make_folder(tmp_path / "data" / "train", classes="AB", per_class=4)
    make_folder(tmp_path / "data" / "test", classes="AB", per_class=2)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--data", f"folder:{tmp_path / 'data'}", "--epochs", "1",
                           "--out", str(run), "--no-progress")
    assert code == 0 and "img/s" not in err, err  # training's own --no-progress
    code, _, err = run_cli(capsys, command, str(run), "--backend", "numpy")
    assert code == 0 and "img/s" in err  # the bar folder loading draws
    code, out, err = run_cli(capsys, command, str(run), "--backend", "numpy", "--no-progress")
    assert code == 0 and "accuracy" in out and err == "", err
