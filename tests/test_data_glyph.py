"""preprocess_image must frame a person's picture the way the letters generator frames its samples."""

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from xpnet.train.data import DataError, load_image, preprocess_image
from xpnet.train.data.fonts import RENDER_SIZE, render_glyph
from xpnet.train.data.glyph import BOX, FRAME, centre_of_mass, frame_ink
from xpnet.train.data.letters_render import IDENTITY, master_glyph, warp_glyph

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")


def photo(ch="K", size=(173, 211), ink=(20, 30, 90), paper=(250, 240, 200), font_px=140):
    """A dark letter on light coloured paper, off-centre, at an odd size: a stand-in for a photo."""
    img = Image.new("RGB", size, paper)
    ImageDraw.Draw(img).text((25, 20), ch, fill=ink, font=ImageFont.truetype(DEJAVU, font_px))
    return img


def generator_framing(ch="K") -> np.ndarray:
    """The same glyph as the letters generator frames it with no augmentation, in [0, 1]."""
    raw = render_glyph(ImageFont.truetype(DEJAVU, RENDER_SIZE), ch)
    return warp_glyph(master_glyph(raw), **IDENTITY).astype(np.float32) / 255


def correlation(a, b) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_photo_is_framed_bright_on_dark_centred_and_20px():
    x = preprocess_image(photo())
    assert x.shape == (FRAME, FRAME) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.9
    assert x[0].max() < 0.05 and x[:, 0].max() < 0.05, "background must be dark"
    cy, cx = centre_of_mass(x)
    assert abs(cy - FRAME / 2) <= 1 and abs(cx - FRAME / 2) <= 1
    rows, cols = np.flatnonzero(x.max(1) > 0.3), np.flatnonzero(x.max(0) > 0.3)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (BOX - 1, BOX, BOX + 1)


@pytest.mark.parametrize("ch", ["K", "g", "W", "i"])
def test_photo_matches_the_generator_framing_of_the_same_glyph(ch):
    x = preprocess_image(photo(ch))
    assert correlation(x, generator_framing(ch)) > 0.98
    assert np.abs(x - generator_framing(ch)).mean() < 0.03


def test_generator_identity_warp_reproduces_frame_ink():
    """The generator's fast path (affine at 2x, box downsample) and frame_ink agree on one glyph."""
    raw = render_glyph(ImageFont.truetype(DEJAVU, RENDER_SIZE), "R")
    reference = frame_ink(raw.astype(np.float32) / 255)
    assert correlation(generator_framing("R"), reference) > 0.99


def test_polarity_does_not_matter():
    dark_on_light = preprocess_image(photo(ink=(0, 0, 0), paper=(255, 255, 255)))
    light_on_dark = preprocess_image(photo(ink=(255, 255, 255), paper=(0, 0, 0)))
    np.testing.assert_allclose(dark_on_light, light_on_dark, atol=0.02)


def test_a_few_noise_specks_do_not_move_the_crop():
    clean = photo()
    noisy = clean.copy()
    for xy in [(2, 2), (170, 5), (3, 200), (160, 205), (90, 3)]:
        noisy.putpixel(xy, (0, 0, 0))
    np.testing.assert_allclose(preprocess_image(noisy), preprocess_image(clean), atol=0.05)


def test_transparent_background_uses_the_alpha_shape():
    img = Image.new("RGBA", (120, 150), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((10, 5), "K", fill=(0, 0, 0, 255), font=ImageFont.truetype(DEJAVU, 120))
    assert correlation(preprocess_image(img), generator_framing("K")) > 0.9


def test_sixteen_bit_grayscale_is_accepted():
    gray = np.asarray(photo().convert("L"), dtype=np.uint16) * 257
    x = preprocess_image(Image.fromarray(gray))
    assert correlation(x, generator_framing("K")) > 0.9


def test_blank_picture_is_a_data_error():
    with pytest.raises(DataError, match="flat colour"):
        preprocess_image(Image.new("RGB", (50, 40), (200, 10, 10)))


def test_load_image_reads_a_file(tmp_path):
    path = tmp_path / "k.jpg"
    photo().save(path)
    assert correlation(load_image(path), generator_framing("K")) > 0.9


def test_load_image_names_the_unreadable_file_in_one_line(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(DataError) as e:
        load_image(path)
    assert "notes.png" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(DataError, match="missing.png"):
        load_image(tmp_path / "missing.png")
