"""What the `xpnet serve` tests serve and send: the small checkpoint in tests/data, a letter
drawn as the page's canvas sends it, and a decompression bomb."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "tests" / "data" / "cupy-run"  # 784 -> 32 -> 26, letters; config.json but no history.json


def letter_png(size=(200, 200), **save) -> bytes:
    """An L drawn in black on white, as the page's canvas sends it."""
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).line([(60, 30), (60, 170), (150, 170)], fill=0, width=18)
    buf = io.BytesIO()
    img.save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


def bomb(pixels: int) -> bytes:
    """A PNG of a few kB that would unpack to more than `pixels` pixels."""
    side = int(pixels ** 0.5) + 100
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()
