"""Synthetic handwriting: single-stroke letter skeletons drawn by simulated writers with a pen.

Fonts, even handwriting fonts, are one drawing of each letter. People differ from each other
(slant, width, pen, how loosely they follow the model letter) and from one letter to the
next. A `Writer` holds one person's style, constant over everything they write: a skeleton
design from the Hershey stroke fonts (the `Hershey-Fonts` package), a slant, a width, a pen
width and pressure, and how far their letters wander from the skeleton. Each letter they write
bends the skeleton by their own smooth displacement of it, plus a little more each time, with
overshoots and gaps where strokes start and end. Writers for training and for the held-out
test are drawn from different seeds, so no test writer was ever trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from xpnet.train.data.fonts import LETTERS

SKELETONS = ("futural", "rowmans", "scripts", "timesi", "scriptc", "futuram")  # Hershey designs: sans,
# roman, script, italic, joined script, and a double-line sans
CANVAS = 64  # px of the longer side of a drawn letter, before the generator shrinks it
STEP = 1.5  # skeleton units between points after resampling, so bends follow the strokes
PIECE = 5  # points drawn as one polyline of one width


@dataclass(frozen=True)
class Writer:
    """One simulated person's hand: held constant over every letter they write."""

    skeleton: int  # index into SKELETONS
    slant: float  # x moves by slant * height (right-leaning handwriting is positive)
    width: float  # horizontal stretch of every letter
    pen: float  # pen width as a share of the letter's height
    pressure: float  # how much the pen width swells and thins along a stroke (0: not at all)
    wander: float  # how far this writer's letters stray from the skeleton, as a share of height
    seed: int  # this writer's own way of bending each letter


def draw_writers(seed_seq: np.random.SeedSequence, n: int) -> tuple[Writer, ...]:
    """`n` writers from one seed: a training set's writers and a test set's come from different seeds."""
    rng = np.random.default_rng(seed_seq)
    return tuple(Writer(skeleton=int(rng.integers(len(SKELETONS))), slant=float(rng.uniform(-0.15, 0.4)),
                        width=float(np.exp(rng.uniform(-0.3, 0.3))), pen=float(rng.uniform(0.025, 0.12)),
                        pressure=float(rng.uniform(0, 0.6)), wander=float(rng.uniform(0.01, 0.06)),
                        seed=int(rng.integers(2**31))) for _ in range(n))


@lru_cache(maxsize=len(SKELETONS))
def skeleton_strokes(index: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """For each of the 52 letters, its strokes as (k, 2) float arrays of (x, y), y pointing down."""
    from HersheyFonts import HersheyFonts

    font = HersheyFonts()
    font.load_default_font(SKELETONS[index])
    return tuple(tuple(_resampled(np.array(s, dtype=np.float64)) for s in font.strokes_for_text(ch) if len(s) > 1)
                 for ch in LETTERS)


def _resampled(points: np.ndarray) -> np.ndarray:
    """Points every STEP units along a polyline, keeping its corners."""
    out = [points[0]]
    for a, b in zip(points[:-1], points[1:]):
        n = max(1, int(np.ceil(np.hypot(*(b - a)) / STEP)))
        out += [a + (b - a) * t for t in np.arange(1, n + 1) / n]
    return np.array(out)


def write_letter(writer: Writer, letter: int, rng: np.random.Generator, canvas: int = CANVAS,
                 pen_px: float | None = None) -> np.ndarray:
    """One letter (index into LETTERS) in this writer's hand: uint8 ink on black, cropped to its ink.

    `canvas` is the drawing's longer side in px; `pen_px` replaces the writer's pen (a 1 px pencil)."""
    strokes = skeleton_strokes(writer.skeleton)[letter]
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    height = max(hi[1] - lo[1], 1.0)
    own = np.random.default_rng([writer.seed, letter])  # the same bends every time this writer writes it
    fields = [_smooth_field(own, writer.wander * height, height), _smooth_field(rng, 0.3 * writer.wander * height, height)]
    shear = np.array([[writer.width, -writer.slant], [0.0, 1.0]])
    moves = np.split(sum(f(pts) for f in fields), np.cumsum([len(s) for s in strokes])[:-1])  # every point at once
    bent = [_ends(rng, s + move, height) @ shear.T for s, move in zip(strokes, moves)]
    return _ink(bent, writer, height, rng, canvas, pen_px)


def _smooth_field(rng, amplitude, height):
    """A random smooth displacement of the plane: two low-frequency waves in each direction."""
    k = rng.normal(0, 2.2 / height, (2, 2, 2))  # (axis, wave, direction)
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    amp = rng.normal(0, amplitude / 2, (2, 2))
    return lambda p: np.stack([(amp[a] * np.sin(p @ k[a].T + phase[a])).sum(axis=1) for a in range(2)], axis=1)


def _ends(rng, stroke: np.ndarray, height: float) -> np.ndarray:
    """Overshoot or fall short at a stroke's two ends, as a quick pen does."""
    for end in (0, -1):
        if len(stroke) < 3:
            break
        d = stroke[end] - stroke[1 if end == 0 else -2]
        change = rng.uniform(-0.04, 0.06) * height
        n = np.hypot(*d)
        if n > 1e-9 and change > 0:
            extra = stroke[end] + d / n * change
            stroke = np.vstack([extra, stroke]) if end == 0 else np.vstack([stroke, extra])
        elif change < 0 and len(stroke) > 4:
            stroke = stroke[1:] if end == 0 else stroke[:-1]
    return stroke


def _ink(strokes, writer: Writer, height: float, rng, canvas: int, pen_px: float | None) -> np.ndarray:
    """Draw the strokes with a round pen whose width follows the writer's pressure."""
    pts = np.concatenate(strokes)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    scale = canvas / max(*(hi - lo), 1.0)
    pen = writer.pen * height * rng.uniform(0.85, 1.15) if pen_px is None else pen_px / scale
    margin = pen * scale + 2
    size = (int(np.ceil((hi[0] - lo[0]) * scale + 2 * margin)), int(np.ceil((hi[1] - lo[1]) * scale + 2 * margin)))
    img = Image.new("L", size, 0)
    draw = ImageDraw.Draw(img)
    for s in strokes:
        xy = (s - lo) * scale + margin
        swell = 1 + writer.pressure * np.sin(np.linspace(0, np.pi * rng.uniform(1, 3), len(xy)) + rng.uniform(0, 6.3))
        widths = np.maximum(pen * scale * (swell if pen_px is None else np.ones_like(swell)), 1.0)
        points, widths = [tuple(p) for p in xy.tolist()], widths.tolist()  # Python floats: PIL's calls are cheaper
        for start in range(0, len(points) - 1, PIECE):  # one width per piece: few calls, still a swelling line
            draw.line(points[start:start + PIECE + 1], fill=255, width=int(round(widths[start])), joint="curve")
        for i in [*range(0, len(points), PIECE), -1]:  # round caps and joins between pieces, and the end
            (x, y), r = points[i], widths[i] / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    box = img.getbbox()
    return np.asarray(img.crop(box)) if box else np.zeros((1, 1), np.uint8)
