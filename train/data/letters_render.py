"""One synthetic letter drawn from a font's master glyph: the warp, stroke weight, blur and noise.

`letters.py` decides how many samples each chunk holds and runs the chunks; this module
draws them. Each of the 52 letters of a font is rendered once at high resolution into a
`Glyph`; a sample is then one affine warp of that master (rotation, slant, scale, stretch,
shift) onto a 56x56 canvas, a stroke-weight filter, a 2x box downsample to 28x28, a blur,
and a contrast change with additive noise. That keeps the framing of `glyph.frame_ink`
(the framing `xpnet predict` applies to a photo: longer side 20 px, centre of mass at the
centre, bright ink on dark) while costing well under a millisecond a sample. A letter by a
synthetic writer (`strokes`) is drawn afresh each time and goes through the same steps; a
share of all samples is drawn small and scaled back up, as a small picture is framed. The
page and camera effects (an elastic bend, uneven light, a ruled line's remnant, JPEG) are in
`letters_effects`.
"""

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

from xpnet.train.data.fonts import render_letters
from xpnet.train.data.glyph import BOX, FRAME, centre_of_mass, clamped_start, ink_bbox
from xpnet.train.data.letters_effects import draw_effects, elastic_mesh, jpeg, light_and_lines
from xpnet.train.data.strokes import Writer, write_letter

SUPER = 2  # samples are warped at 2x resolution, then box-downsampled: cheap anti-aliasing
WORK_BOX = 48  # longer side, in px, of the stored master glyphs (a bit above SUPER * BOX)


@dataclass(frozen=True)
class Augment:
    """How much each sample varies from its font's master glyph; all ranges are uniform.

    The ranges keep letters readable: an 'n' rotated 12 degrees is still an 'n', while an
    unlimited rotation would turn it into a 'u'.
    """

    max_rotation_deg: float = 12.0  # tilt either way
    max_shear: float = 0.2  # slant: x moves by up to 0.2 * height
    min_scale: float = 0.85  # glyph size relative to the 20 px box
    max_scale: float = 1.05
    max_stretch: float = 0.5  # width times up to 1.5 or divided by it (log-uniform): narrow to wide letters
    max_shift_px: float = 2.0  # offset of the centre of mass in each direction, in 28x28 pixels
    thin_prob: float = 0.2  # strokes thinned by about 1 px
    thick_prob: float = 0.25  # strokes thickened by about 1 px
    bold_prob: float = 0.1  # strokes thickened by about 2 px
    max_blur: float = 0.8  # Gaussian blur radius in 28x28 pixels
    min_peak: float = 0.6  # brightest ink level (the ink's contrast)
    max_background: float = 0.1  # background level
    max_noise: float = 0.06  # standard deviation of the additive Gaussian noise
    lowres_prob: float = 0.25  # drawn small, then scaled up, as a letter 7-13 px tall in a picture is
    min_lowres_px: float = 7.0
    max_lowres_px: float = 13.0
    elastic_prob: float = 0.3  # bent by a smooth random displacement field (letters_effects)
    max_elastic_px: float = 1.5  # its typical displacement, in 28x28 pixels
    shadow_prob: float = 0.2  # a soft or sharp-edged shadow across the sample
    max_shadow: float = 0.5  # the light taken away in the shadow
    line_prob: float = 0.1  # a faint ruled line's remnant under or through the letter
    min_line: float = 0.2  # its brightness relative to the ink
    max_line: float = 0.6
    jpeg_prob: float = 0.2  # sent through a JPEG round trip
    min_jpeg_quality: int = 30  # its quality, up to 95


@dataclass(frozen=True)
class Recipe:
    """Where a chunk's letters come from: font families (each equally often) and writers."""

    groups: list = field(default_factory=list)  # font indices into the bank, grouped by design family
    writers: tuple[Writer, ...] = ()  # synthetic writers; each sample picks one uniformly
    hand_share: float = 0.0  # share of samples written by the writers rather than set in a font


@dataclass(frozen=True)
class Glyph:
    """A master glyph ready to warp: its image and where its box and centre of mass are."""

    image: Image.Image  # "L", bright ink on black, longer ink side ~ WORK_BOX px
    com: tuple[float, float]  # (x, y) centre of mass in continuous pixel coordinates
    box: tuple[float, float, float, float]  # (left, top, right, bottom) of the ink box


def glyph_bank(fonts) -> list[tuple[Glyph, ...]]:
    """bank[font][letter]: the 52 master glyphs of every font, rendered once and reused."""
    return [_master_glyphs(f.path, f.weight) for f in fonts]


@lru_cache(maxsize=512)
def _master_glyphs(path: str, weight: int | None = None) -> tuple[Glyph, ...]:
    """One font's 52 master glyphs, cached: building them costs more than a thousand samples."""
    return tuple(master_glyph(raw) for raw in render_letters(path, weight))


def master_glyph(raw: np.ndarray) -> Glyph:
    """Shrink a high-resolution rendering so its longer ink side is WORK_BOX px, with a margin."""
    pad = 3
    ink = np.pad(raw.astype(np.float32) / 255, pad)
    top, bottom, left, right = ink_bbox(ink)
    scale = WORK_BOX / max(bottom - top, right - left)
    size = (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale)))
    small = Image.fromarray(ink, "F").resize(size, Image.Resampling.LANCZOS)
    small = np.clip(np.asarray(small), 0, 1)
    cy, cx = centre_of_mass(small)
    image = Image.fromarray(np.round(small * 255).astype(np.uint8), "L")
    return Glyph(image=image, com=(cx, cy), box=(left * scale, top * scale, right * scale, bottom * scale))


def render_chunk(bank, seed_seq, size, recipe: Recipe, augment=Augment()) -> tuple[np.ndarray, np.ndarray]:
    """`size` samples from one seed: (X uint8 (size, 784), y int64 (size,))."""
    rng = np.random.default_rng(seed_seq)
    labels = rng.integers(0, 26, size)
    letters = labels + 26 * rng.integers(0, 2, size)  # index into LETTERS: upper or lower case
    written = rng.random(size) < (recipe.hand_share if recipe.writers else 0.0)
    if not recipe.groups:
        written[:] = True
    fonts = _draw_fonts(rng, recipe.groups, size) if recipe.groups else np.zeros(size, np.int64)
    hands = rng.integers(0, max(len(recipe.writers), 1), size)
    draws = draw_augment(rng, augment, size)
    glyphs = (master_glyph(write_letter(recipe.writers[h], c, rng)) if w else bank[f][c]
              for w, h, f, c in zip(written, hands, fonts, letters))
    images = np.stack([_small(warp_glyph(g, **_row(draws, i), elastic=draws["elastic"][i]), draws["lowres"][i])
                       for i, g in enumerate(glyphs)])
    X = finish(images, draws, rng)
    return X.reshape(size, FRAME * FRAME), labels.astype(np.int64)


def _small(image: np.ndarray, height: float) -> np.ndarray:
    """The letter as a picture `height` px tall shows it: shrunk, then scaled back up as framing does."""
    if height <= 0:
        return image
    side = max(2, round(FRAME * height / BOX))
    img = Image.fromarray(image).resize((side, side), Image.Resampling.BOX)
    return np.asarray(img.resize((FRAME, FRAME), Image.Resampling.LANCZOS))


def _draw_fonts(rng, groups, size) -> np.ndarray:
    """A font per sample: a family uniformly, then one of that family's fonts uniformly."""
    family = rng.integers(0, len(groups), size)
    pick = rng.random(size)
    return np.array([groups[g][int(p * len(groups[g]))] for g, p in zip(family, pick)], dtype=np.int64)


def draw_augment(rng, a: Augment, size) -> dict:
    """Every per-sample random parameter, drawn up front as arrays (one vectorised draw each)."""
    u = lambda lo, hi: rng.uniform(lo, hi, size)  # noqa: E731
    weight = rng.choice([-1, 0, 1, 2], size, p=[a.thin_prob, 1 - a.thin_prob - a.thick_prob - a.bold_prob,
                                                a.thick_prob, a.bold_prob])
    stretch = np.log1p(a.max_stretch)
    lowres = np.where(rng.random(size) < a.lowres_prob, u(a.min_lowres_px, a.max_lowres_px), 0.0)
    return {
        "angle": np.deg2rad(u(-a.max_rotation_deg, a.max_rotation_deg)),
        "shear": u(-a.max_shear, a.max_shear),
        "scale": u(a.min_scale, a.max_scale),
        "stretch": np.exp(u(-stretch, stretch)), "lowres": lowres,
        "dx": u(-a.max_shift_px, a.max_shift_px), "dy": u(-a.max_shift_px, a.max_shift_px),
        "weight": weight, "blur": u(0, a.max_blur),
        "peak": u(a.min_peak, 1.0), "background": u(0, a.max_background), "noise": u(0, a.max_noise),
        **draw_effects(rng, a, size),
    }


WARP_KEYS = ("angle", "shear", "scale", "stretch", "dx", "dy", "weight", "blur")


def _row(draws, i) -> dict:
    """The warp parameters of sample i as plain floats."""
    return {k: float(draws[k][i]) for k in WARP_KEYS}


IDENTITY = dict(angle=0.0, shear=0.0, scale=1.0, stretch=1.0, dx=0.0, dy=0.0, weight=0, blur=0.0)


def warp_glyph(g: Glyph, angle, shear, scale, stretch, dx, dy, weight, blur, elastic=None) -> np.ndarray:
    """One 28x28 uint8 sample: the glyph framed as `frame_ink` does, then warped, weighted, blurred.

    With IDENTITY parameters this reproduces `frame_ink`'s framing (up to resampling), which
    is what ties the training data to what `xpnet predict` feeds the network. `elastic`
    ((2, MESH+1, MESH+1), 28x28 px) bends the canvas too, in the same transform.
    """
    k = SUPER * BOX / WORK_BOX  # master px -> canvas px, so the longer side spans the 20 px box
    M = k * scale * _rotation(angle) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([stretch, 1.0])
    centre = _framed_centre(g, k) + SUPER * np.array([dx, dy])
    Minv = np.linalg.inv(M)
    offset = np.array(g.com) - Minv @ centre
    side = SUPER * FRAME
    data = (Minv[0, 0], Minv[0, 1], offset[0], Minv[1, 0], Minv[1, 1], offset[1])
    if elastic is not None and np.any(elastic):
        mesh = elastic_mesh(SUPER * elastic, lambda p: Minv @ p + offset[:, None], side)
        img = g.image.transform((side, side), Image.Transform.MESH, mesh, resample=Image.Resampling.BILINEAR)
    else:
        img = g.image.transform((side, side), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR)
    img = _stroke_weight(img, int(weight)).reduce(SUPER)
    if blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(img)


def _rotation(angle) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def _framed_centre(g: Glyph, k) -> np.ndarray:
    """Canvas point for the centre of mass: the middle, moved just enough to keep the box inside.

    The same rule as `glyph.frame_ink`, so letters whose mass sits near an edge frame alike.
    """
    centre = []
    for com, lo, hi in ((g.com[0], g.box[0], g.box[2]), (g.com[1], g.box[1], g.box[3])):
        start = SUPER * clamped_start((FRAME / 2 - k * (com - lo) / SUPER), k * (hi - lo) / SUPER)
        centre.append(start + k * (com - lo))
    return np.array(centre)


def _stroke_weight(img: Image.Image, weight: int) -> Image.Image:
    """Thin (-1) or thicken (+1, +2) strokes with a min/max filter on the 2x canvas.

    Thinning is skipped when it would erase more than half the ink: hairline fonts would
    otherwise lose whole strokes and stop being letters.
    """
    if weight == 0:
        return img
    if weight > 0:
        return Image.fromarray(_rank_filter(np.asarray(img), 2 * weight + 1, np.maximum))
    thin = _rank_filter(np.asarray(img), 3, np.minimum)
    kept = np.asarray(thin, dtype=np.float32).sum() / max(float(np.asarray(img, dtype=np.float32).sum()), 1.0)
    return Image.fromarray(thin) if kept > 0.5 else img


def _rank_filter(a: np.ndarray, size: int, pick) -> np.ndarray:
    """PIL's MaxFilter / MinFilter (`pick` np.maximum / np.minimum) over size x size, edges
    repeated as PIL repeats them: the same pixels, as a square window's extreme is the extreme of
    its rows' extremes, in under half of PIL's sorting's time at 3x3 and a tenth at 5x5."""
    m, (h, w) = size // 2, a.shape
    padded = np.pad(a, m, mode="edge")
    rows = pick.reduce([padded[i:i + h] for i in range(size)])
    return pick.reduce([rows[:, j:j + w] for j in range(size)])


SHADOW_SHOWS = 0.25  # share of a shadow's darkness left in the background once framing has flattened it


def finish(images: np.ndarray, draws: dict, rng) -> np.ndarray:
    """Lines, light, contrast, background and noise for a whole chunk at once; uint8, some through JPEG."""
    x, light = light_and_lines(images.astype(np.float32) / 255, draws)
    peak, bg, sigma = (draws[k].astype(np.float32)[:, None, None] for k in ("peak", "background", "noise"))
    bg = bg + SHADOW_SHOWS * (1 - light)
    x = bg + (peak - bg) * light * x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    return jpeg(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), draws["jpeg"])
