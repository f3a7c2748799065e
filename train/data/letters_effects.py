"""What a camera, a page and a hand add to a letter: a bent shape, uneven light, a ruled line, JPEG.

`letters_render` draws each sample's letter; these effects make it look the way a picture a
person hands in looks once `xpnet predict` has framed it (`picture.py` removes most of the
paper and the shadows, not all of it):

- **elastic distortion**: a smooth random displacement of the 2x canvas, as a hand or a
  crumpled page bends a letter where an affine warp cannot (a stroke bowed, a bowl pinched);
- **uneven light**: a soft or sharp-edged brightness gradient across the sample: ink in a
  shadow is fainter, and the background that framing could not flatten shows through;
- **a ruled line's remnant**: a faint line under or through the letter, as an underline or a
  notebook rule cut off by the crop leaves it;
- **JPEG**: a round trip through the codec at a random quality, its blocks and ringing.

Every parameter is drawn for the whole chunk at once (`draw_effects`) from the chunk's
generator, so the letters depend on the seed alone; light and lines are applied to the
whole chunk as arrays, the mesh and the codec once per sample.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

MESH = 4  # cells along each side of the elastic mesh: a piecewise-bilinear warp, smooth at this size
COARSE = 3  # random displacements along each side, interpolated to the mesh: the field's smoothness


def draw_effects(rng, a, size) -> dict:
    """Each sample's elastic field, light, line and JPEG quality (zero or 0 where an effect is off)."""
    u = lambda lo, hi: rng.uniform(lo, hi, size)  # noqa: E731
    probs = {"elastic": a.elastic_prob, "shadow": a.shadow_prob, "line": a.line_prob, "jpeg": a.jpeg_prob}
    on = {k: rng.random(size) < p for k, p in probs.items()}
    coarse = rng.standard_normal((size, 2, COARSE, COARSE)) * u(0, a.max_elastic_px)[:, None, None, None]
    return {
        "elastic": np.where(on["elastic"][:, None, None, None], _upsample(coarse), 0.0),
        "shadow": np.where(on["shadow"], u(0, a.max_shadow), 0.0), "shadow_angle": u(0, 2 * np.pi),
        "shadow_edge": u(-0.6, 0.6), "shadow_soft": np.exp(u(np.log(0.05), np.log(3.0))),
        "line": np.where(on["line"], u(a.min_line, a.max_line), 0.0), "line_angle": np.deg2rad(u(-4, 4)),
        "line_y": np.where(rng.random(size) < 0.7, u(22.5, 27.5), u(6, 22)),  # 70% under the letter, else through
        "line_width": u(0.6, 1.6),
        "line_x": np.stack([u(-2, 10), u(18, 30)], axis=1),
        "jpeg": np.where(on["jpeg"], rng.integers(a.min_jpeg_quality, 96, size), 0),
    }


def _upsample(coarse: np.ndarray) -> np.ndarray:
    """(N, 2, COARSE, COARSE) random values to (N, 2, MESH+1, MESH+1) mesh nodes, smoothly (cosine-eased)."""
    t = np.linspace(0, COARSE - 1, MESH + 1)
    i = np.minimum(t.astype(int), COARSE - 2)
    f = (1 - np.cos(np.pi * (t - i))) / 2
    W = np.zeros((MESH + 1, COARSE))
    W[np.arange(MESH + 1), i], W[np.arange(MESH + 1), i + 1] = 1 - f, f
    return np.einsum("ij,nkjl,ml->nkim", W, coarse, W)


def elastic_mesh(field: np.ndarray, inverse, side: int) -> list:
    """PIL MESH data: each output cell of a `side`-px canvas and the source quad it samples.

    `field` (2, MESH+1, MESH+1) moves each mesh node, in canvas px; `inverse` maps canvas
    points (2, K) to source points, the sample's affine warp, so one transform does both.
    """
    edges = np.linspace(0, side, MESH + 1)
    gx, gy = np.meshgrid(edges, edges)
    src = inverse(np.stack([(gx + field[0]).ravel(), (gy + field[1]).ravel()])).T.reshape(MESH + 1, MESH + 1, 2)
    quads = np.concatenate([src[:-1, :-1], src[1:, :-1], src[1:, 1:], src[:-1, 1:]], axis=2)  # UL, LL, LR, UR
    e = [int(v) for v in edges]
    return [((e[c], e[r], e[c + 1], e[r + 1]), tuple(quad))  # one list of Python floats, not 128 conversions
            for r, row in enumerate(quads.tolist()) for c, quad in enumerate(row)]


def light_and_lines(x: np.ndarray, d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Ink (N, H, W) in [0, 1] with each sample's ruled line added, and the light falling on it.

    Returns (ink, light): light is 1 where the page is fully lit and 1 - shadow in the shadow;
    the caller dims the ink by it and lets a little of the shadow show as background.
    """
    n, h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    col = lambda k: d[k].astype(np.float32)[:, None, None]  # noqa: E731
    across = (np.cos(col("shadow_angle")) * (xx - w / 2) + np.sin(col("shadow_angle")) * (yy - h / 2)) / w
    light = 1 - col("shadow") * (0.5 + 0.5 * np.tanh((across - col("shadow_edge")) / (0.2 * col("shadow_soft"))))
    angle = col("line_angle")
    dist = np.abs((yy - col("line_y")) * np.cos(angle) - (xx - w / 2) * np.sin(angle))
    along = (xx >= d["line_x"][:, 0, None, None]) & (xx <= d["line_x"][:, 1, None, None])
    line = col("line") * np.clip(col("line_width") / 2 + 0.5 - dist, 0, 1) * along
    return np.maximum(x, line), light


def jpeg(X: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 images, those with a quality above 0 sent through a JPEG round trip."""
    out = X.copy()
    for i in np.flatnonzero(quality):
        buf = io.BytesIO()
        Image.fromarray(X[i]).save(buf, "JPEG", quality=int(quality[i]))
        out[i] = np.asarray(Image.open(buf))
    return out
