"""A test set of letters drawn the way people hand them in, and a model's accuracy on each kind.

    python scripts/people_letters.py make OUT [--per-letter 8] [--seed 0]
    python scripts/people_letters.py score RUN OUT

`make` writes OUT/<kind>/<LETTER>/<n>.png: pictures of letters as a person photographs,
scans or draws them (see KINDS), from the font families and synthetic writers the letters
generator holds out, so no picture's design or hand was trained on. The same seed gives the
same pictures on every machine. `score` reads each kind as `xpnet predict` would (the same
framing) and prints the accuracy per kind, with the calibration of the stated probabilities.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from xpnet.train.data.font_packages import is_weight_axis
from xpnet.train.data.fonts import LETTERS, find_fonts, render_glyph, split_fonts
from xpnet.train.data.letters_groups import WRITERS_TEST
from xpnet.train.data.strokes import draw_writers, write_letter

KINDS = {  # kind -> what a person did
    "printed": "a printed letter in an unseen font, photographed flat",
    "handwriting": "a letter written by hand (unseen writers and handwriting fonts)",
    "course-canvas": "a letter 9-12 px tall in a 22x55 px canvas, as in the course",
    "pencil": "a letter drawn with a 1 px pencil line on a large canvas",
    "wide": "a letter drawn wide (1.3-2 times its usual width) in a box up to 300x200",
    "desk": "a sheet of paper photographed on a darker desk",
    "shadow": "a strong shadow across part of the sheet",
    "underline": "a letter written on an underline or a ruled line",
}


def sources(seed: int):
    """The held-out fonts (printed and handwriting) and writers: nothing here was trained on."""
    _, test_fonts = split_fonts(find_fonts())
    writers = draw_writers(np.random.SeedSequence([int(seed), 3]), WRITERS_TEST)
    return test_fonts, writers


def glyph(kind, letter, rng, fonts, writers) -> np.ndarray:
    """A letter's ink in [0, 1], cropped: set in a held-out font or written by a held-out writer."""
    hand = kind == "handwriting" and rng.random() < 0.6 or kind in ("pencil", "wide") and rng.random() < 0.5
    if kind != "printed" and (hand or kind == "pencil"):
        writer = writers[rng.integers(len(writers))]
        pen = 1.0 if kind == "pencil" else None
        return write_letter(writer, letter, rng, canvas=int(rng.integers(120, 220)), pen_px=pen) / 255.0
    pool = [f for f in fonts if (f.kind == "handwriting") == (kind == "handwriting")] or fonts
    font = pool[rng.integers(len(pool))]
    face = ImageFont.truetype(font.path, 96)
    if font.weight is not None:
        face.set_variation_by_axes([font.weight if is_weight_axis(a) else a["default"]
                                    for a in face.get_variation_axes()])
    return render_glyph(face, LETTERS[letter]) / 255.0


def picture(kind, letter, rng, fonts, writers) -> Image.Image:
    """One picture of one letter, as a person of this kind hands it in."""
    ink = glyph(kind, letter, rng, fonts, writers)
    if kind == "course-canvas":
        size, height = ((55, 22) if rng.random() < 0.5 else (22, 55)), int(rng.integers(9, 13))
    elif kind == "wide":
        size, height = (int(rng.integers(320, 420)), int(rng.integers(230, 300))), 200
    else:
        size = (int(rng.integers(150, 400)), int(rng.integers(150, 400)))
        height = int(min(size) * rng.uniform(0.4, 0.7))
    h, w = ink.shape
    width = max(1, round(w * height / h))
    if kind == "wide":  # drawn 1.3-2 times as wide as the letter usually is, up to the 300 px box
        width = min(300, round(width * rng.uniform(1.3, 2.0)))
    if kind == "pencil":
        glyph_img = Image.fromarray((ink * 255).astype(np.uint8))  # drawn at its size: keep the 1 px line
    else:
        glyph_img = Image.fromarray((ink * 255).astype(np.uint8)).resize((width, height), Image.Resampling.LANCZOS)
    if glyph_img.size[0] > size[0] or glyph_img.size[1] > size[1]:  # a person hands in the whole letter:
        size = (max(size[0], glyph_img.size[0] + 8), max(size[1], glyph_img.size[1] + 8))  # the canvas grows
    paper = rng.uniform(215, 255, 3)
    pen = rng.uniform(0, 90, 3) if kind != "pencil" else np.full(3, rng.uniform(90, 150))
    canvas = np.zeros((size[1], size[0]), np.float32)
    gw, gh = glyph_img.size
    x0 = int(rng.integers(0, max(1, size[0] - gw + 1))) if size[0] > gw else 0
    y0 = int(rng.integers(0, max(1, size[1] - gh - 2 + 1))) if size[1] > gh + 2 else 0
    crop = np.asarray(glyph_img, np.float32)[:size[1], :size[0]] / 255
    canvas[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop[:size[1] - y0, :size[0] - x0]
    if kind == "underline":
        canvas = _underline(canvas, y0 + crop.shape[0], rng)
    rgb = paper[None, None] * (1 - canvas[..., None]) + pen[None, None] * canvas[..., None]
    rgb = _lighting(kind, rgb, rng)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return _camera(kind, img, rng)


def _underline(canvas, below, rng) -> np.ndarray:
    """A ruled line a few px under the letter (or a notebook rule above it too)."""
    img = Image.fromarray((canvas * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    y = min(below + int(rng.integers(2, 8)), canvas.shape[0] - 2)
    draw.line([(0, y), (canvas.shape[1], y + int(rng.integers(-3, 4)))], fill=int(rng.integers(120, 256)),
              width=int(rng.integers(1, 4)))
    return np.asarray(img, np.float32) / 255


def _lighting(kind, rgb, rng) -> np.ndarray:
    """Uneven light; a strong shadow; or the sheet on a darker desk."""
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 - 0.15 * rng.random() * (xx if rng.random() < 0.5 else yy)
    if kind == "shadow":  # a soft-edged shadow over one side, down to 40-60% of the light
        edge = rng.uniform(0.2, 0.6) + 0.3 * (yy - 0.5) * rng.uniform(-1, 1)
        light = light * (1 - rng.uniform(0.4, 0.6) / (1 + np.exp(-(edge - xx) * 40)))
    rgb = rgb * light[..., None]
    if kind == "desk":  # the sheet lies on a darker desk that shows on every side, 2-25% of its size
        left, right = (rng.uniform(0.02, 0.25, 2) * w).astype(int)
        top, bottom = (rng.uniform(0.02, 0.25, 2) * h).astype(int)
        H, W = h + top + bottom, w + left + right
        desk = rng.uniform(40, 140, 3) * (1 + 0.1 * rng.standard_normal((H, W, 1)))
        desk[top:top + h, left:left + w] = rgb
        rgb = desk
    return rgb


def _camera(kind, img, rng) -> Image.Image:
    """A phone camera: a slight tilt, blur, noise and JPEG; the course canvas and pencil stay exact."""
    if kind in ("course-canvas", "pencil"):
        return img
    if kind in ("desk", "shadow", "printed", "handwriting"):
        fill = tuple(int(c) for c in np.asarray(img)[0, 0])
        img = img.rotate(float(rng.uniform(-5, 5)), resample=Image.Resampling.BILINEAR, fillcolor=fill)
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.2))))
    a = np.asarray(img, np.float32) + rng.normal(0, rng.uniform(0, 6), (img.size[1], img.size[0], 1))
    buf = io.BytesIO()
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(60, 95)))
    return Image.open(io.BytesIO(buf.getvalue()))


def make(out: Path, per_letter: int, seed: int) -> None:
    fonts, writers = sources(seed)
    for k, kind in enumerate(KINDS):
        rng = np.random.default_rng([seed, k])
        for label in range(26):
            folder = out / kind / LETTERS[label]
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(per_letter):
                letter = label + 26 * int(rng.integers(2))
                picture(kind, letter, rng, fonts, writers).save(folder / f"{n}.png")
        print(f"{kind:14s} {26 * per_letter} pictures: {KINDS[kind]}")


def score(run: str, out: Path) -> None:
    """Each kind's accuracy, the calibration error of the stated probability, the share of
    answers `predict` would call unsure, and the accuracy of the rest."""
    from xpnet.backends import resolve_backend
    from xpnet.train.calibration import UNSURE_BELOW
    from xpnet.train.checkpoints import load_checkpoint
    from xpnet.train.data.folder import load_folder
    from xpnet.train.metrics import expected_calibration_error

    net, meta = load_checkpoint(run, resolve_backend("numpy"))
    every = {"right": [], "confidence": []}
    for kind in KINDS:
        data = load_folder(out / kind, progress=False)
        proba = net.predict_proba(data.X_train)
        truth = np.array([list(meta["classes"]).index(data.classes[i]) for i in data.y_train])
        right, confidence = proba.argmax(axis=1) == truth, proba.max(axis=1)
        every["right"].append(right)
        every["confidence"].append(confidence)
        print(_score_line(kind, right, confidence, expected_calibration_error, UNSURE_BELOW))
    right, confidence = (np.concatenate(every[k]) for k in ("right", "confidence"))
    print(_score_line("all", right, confidence, expected_calibration_error, UNSURE_BELOW))


def _score_line(kind, right, confidence, ece, unsure_below) -> str:
    sure = confidence >= unsure_below
    return (f"{kind:14s} {np.mean(right):.3f}  ({len(right)} pictures)  ECE {ece(confidence, right):.3f}  "
            f"unsure {np.mean(~sure):.1%}, right when sure {np.mean(right[sure]) if sure.any() else float('nan'):.3f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="draw the pictures")
    m.add_argument("out", type=Path)
    m.add_argument("--per-letter", type=int, default=8, help="pictures of each letter in each kind")
    m.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("score", help="a model's accuracy on each kind")
    s.add_argument("run")
    s.add_argument("out", type=Path)
    args = p.parse_args(argv)
    make(args.out, args.per_letter, args.seed) if args.command == "make" else score(args.run, args.out)


if __name__ == "__main__":
    sys.exit(main())
