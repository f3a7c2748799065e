"""Finding the ink of one letter in a picture a person hands in: paper, desk, shadow, pencil, ruler.

A photo of a letter is rarely a clean letter on a flat background. The sheet lies on a darker
desk, a hand casts a shadow across it, the letter was drawn with a 1 px pencil line, sits on
an underline, or fills a 22x55 px canvas. The steps here turn any of those into ink in
[0, 1] (0 is background) with only the letter left in it:

0. a drawing or a scan whose edge is one plain level, at one end of the picture's range and
   the level of most of it, has that level as its background everywhere, and the letter is
   the other end (as before);
   a photo's edge is not plain, and goes through the steps below;
1. polarity: the letter is what differs most from the local background (a median over a
   third of the picture) in the middle of the picture, so neither a dark desk at the border
   nor a desk or shadow covering most of the picture flips it; if that finds no ink, the
   other way;
2. background: a grey-level closing (or opening) with a window wider than any stroke keeps
   everything large (paper, desk, shadows, uneven light) and drops the strokes; ink is what
   stands out of it, as a share of the paper's light, so a shadow or a desk is background
   wherever it is and a letter half in shadow reads alike on both sides; a sheet with the
   desk showing all round it keeps only the ink inside the sheet;
3. clean-up: specks far smaller than the letter, and a line ruled under or over it, are
   dropped as whole connected pieces, so a 1 px stroke is never filtered away.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from xpnet.train.data.dataset import DataError

MIN_CONTRAST = 12.0  # grey levels (of 255) between background and ink below which the image is blank
INK_THRESHOLD = 0.35  # share of the ink's peak that counts as part of the letter
MAX_SIDE = 512  # pictures are shrunk to this longer side first: a letter needs no more detail
SPECK_SHARE = 0.03  # a piece with under this share of the largest piece's ink is a speck
DESK_EDGE_SHARE = 0.05  # a sheet touching at most this share of the picture's edge lies on a desk
LINE_RATIO = 0.25  # a piece this flat (height / width) or flatter, wide and apart from the rest, is a rule


def ink_from_gray(gray: np.ndarray) -> np.ndarray:
    """Luminance (float32, 0-255) to ink in [0, 1], whatever the polarity, lighting or desk."""
    gray = at_most(gray.astype(np.float32), MAX_SIDE)
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo < MIN_CONTRAST:
        raise DataError("the picture is one flat colour, no letter found; give a picture of one letter")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if _plain(border, float(np.median(gray)), lo, hi):  # a drawing or a scan: one background all around
        level = float(np.median(border))
        ink = _scaled(level - gray if level > (lo + hi) / 2 else gray - level)
        if ink is None:
            raise DataError("no letter stands out from the background; give a picture with more contrast")
        return ink
    dark_ink = _ink_is_dark(gray)
    for dark in (dark_ink, not dark_ink):
        ink = _standing_out(gray, dark)
        if ink is not None:
            return ink
    raise DataError("no letter stands out from the background; give a picture with more contrast")


def _plain(border: np.ndarray, median: float, lo: float, hi: float) -> bool:
    """Whether the picture's edge is one level at one end of its range, the level of most of
    the picture: paper, or a screen's black.

    Then that level is the background everywhere, however wide the strokes; a photo's edge
    (a desk, a shadow, uneven light) is not plain and goes through the local estimate."""
    level, spread = float(np.median(border)), float(np.percentile(border, 90) - np.percentile(border, 10))
    near = 0.1 * (hi - lo)
    return spread <= near and min(level - lo, hi - level) <= near and abs(median - level) <= near


def sheet_on_a_desk(gray: np.ndarray) -> np.ndarray | None:
    """Where a light sheet lies on a darker desk that shows all round it: the sheet's inside,
    less a rim of 1% of the picture; None for any other picture.

    The top-hat takes the desk next to the sheet for dark ink, and the desk's strips along a
    rotated sheet's edges are pieces that need not reach the picture's edge, so they would
    frame as brackets around the letter. The sheet is the largest region lighter than Otsu's
    threshold; it lies on a desk when it touches the picture's edge almost nowhere (a tilted
    sheet's corner may; a shadow or uneven light leaves the sheet along the edge, and is the
    top-hat's to handle)."""
    light = gray > _otsu(gray)
    labels, n = ndimage.label(light)
    if n == 0:
        return None
    sheet = labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
    edge = np.concatenate([sheet[0], sheet[-1], sheet[:, 0], sheet[:, -1]])
    if edge.mean() > DESK_EDGE_SHARE or sheet.mean() < 0.2:
        return None
    inside = _filled(sheet)  # the letter's strokes are the sheet's too, even where they meet its edge
    return ndimage.binary_erosion(inside, iterations=max(1, round(0.01 * max(gray.shape)))).astype(np.float32)


def _filled(mask: np.ndarray) -> np.ndarray:
    """A mask with every row's and every column's gaps filled: within the convex hull of a
    sheet, and covering a letter that cuts into the sheet from its edge (a hole-fill would not)."""
    def spans(m):
        any_ = m.any(axis=1)
        first, last = np.argmax(m, axis=1), m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)
        cols = np.arange(m.shape[1])
        return any_[:, None] & (cols >= first[:, None]) & (cols <= last[:, None])
    return spans(mask) | spans(mask.T).T


def _otsu(gray: np.ndarray) -> float:
    """Otsu's threshold: the grey level that best splits the picture into two classes."""
    counts, edges = np.histogram(gray, bins=256, range=(0, 256))
    p = counts / max(counts.sum(), 1)
    levels = (edges[:-1] + edges[1:]) / 2
    w = np.cumsum(p)
    mu = np.cumsum(p * levels)
    between = (mu[-1] * w - mu) ** 2 / np.maximum(w * (1 - w), 1e-12)
    return float(levels[int(np.argmax(between))])


def _ink_is_dark(gray: np.ndarray) -> bool:
    """Whether the letter is darker than its surroundings.

    The background is estimated by a median over a third of the picture (the paper, or the
    desk or the shadow where those cover the window, whatever the polarity), on a 96 px copy.
    The letter is what differs most from it in the middle of the picture, where people put
    it; a sheet's edge on a desk lies mostly outside that, and a shadow's edge differs both
    ways about equally, so the sign of the strong differences there is the letter's."""
    small = at_most(gray, 96)
    window = max(3, min(small.shape) // 3) | 1
    diff = small - ndimage.median_filter(small, size=window, mode="nearest")
    h, w = diff.shape
    diff = diff[int(0.2 * h):int(0.8 * h) + 1, int(0.2 * w):int(0.8 * w) + 1]
    strong = 0.25 * float(np.abs(diff).max())
    return float(diff[diff < -strong].sum() + diff[diff > strong].sum()) < 0


def _standing_out(gray: np.ndarray, dark: bool) -> np.ndarray | None:
    """What stands out of its surroundings (a top-hat), scaled so the letter's strokes are 1.

    Dark ink is measured as the share of the paper's light it takes away, so a letter half in
    shadow reads the same on both sides: the shadow dims paper and ink alike. Bright ink (chalk,
    a screen) is measured as the light it adds."""
    window = (max(3, min(gray.shape) // 3) | 1,) * 2
    if dark:
        paper = ndimage.grey_closing(gray, size=window, mode="nearest")
        lifted = 255 * (paper - gray) / np.maximum(paper, 1.0)
        inside = sheet_on_a_desk(gray)
        if inside is not None:
            lifted = lifted * inside
    else:
        lifted = gray - ndimage.grey_opening(gray, size=window, mode="nearest")
    return _scaled(lifted)


def _scaled(lifted: np.ndarray) -> np.ndarray | None:
    """Ink scaled so the letter's strokes are 1 (most of its strong pixels), or None if too faint."""
    if float(lifted.max()) < MIN_CONTRAST:
        return None
    strong = lifted[lifted > 0.5 * float(lifted.max())]
    return np.clip(lifted / float(np.percentile(strong, 90)), 0, 1).astype(np.float32)


def letter_only(ink: np.ndarray) -> np.ndarray:
    """The ink with specks and ruled lines removed: whole connected pieces, never thin strokes."""
    mask = ink > INK_THRESHOLD
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n == 0:
        raise DataError("no ink found in the picture; give a picture of one letter")
    index = np.arange(1, n + 1)
    mass = ndimage.sum_labels(ink, labels, index)
    keep = mass >= SPECK_SHARE * mass.max()
    hugging = _hugging_the_edge(labels, n)
    if (keep & ~hugging).any():  # a desk, a shadow's edge, the sheet's rim: the letter is inside
        keep &= ~hugging
        keep &= mass >= SPECK_SHARE * mass[keep].max()
    boxes = ndimage.find_objects(labels)
    for i in np.flatnonzero(keep):
        if _is_rule(boxes[i], [boxes[j] for j in np.flatnonzero(keep) if j != i]):
            keep[i] = False
    if not keep.any():
        keep[np.argmax(mass)] = True
    kept = np.where(np.isin(labels, index[keep]), ink, 0)
    strong = kept[kept > 0.5 * float(kept.max())]
    return np.clip(kept / max(float(np.percentile(strong, 90)), 1e-6), 0, 1).astype(np.float32)


def _hugging_the_edge(labels: np.ndarray, n: int) -> np.ndarray:
    """Which pieces run along the picture's edge for a quarter of a side or more.

    A letter meets the edge, if at all, where a stroke ends; a desk, a shadow or the sheet's
    rim lies along it."""
    h, w = labels.shape
    contact = np.zeros(n + 1)
    for edge, side in ((labels[0], w), (labels[-1], w), (labels[:, 0], h), (labels[:, -1], h)):
        counts = np.bincount(edge, minlength=n + 1) / side
        contact = np.maximum(contact, counts)
    return contact[1:] >= 0.25


def _is_rule(box, others) -> bool:
    """A flat, wide piece wholly above or below the rest of the ink: an underline or a ruled line."""
    if not others:
        return False
    height, width = box[0].stop - box[0].start, box[1].stop - box[1].start
    top, bottom = min(b[0].start for b in others), max(b[0].stop for b in others)
    left, right = min(b[1].start for b in others), max(b[1].stop for b in others)
    apart = box[0].start >= bottom - 1 or box[0].stop <= top + 1
    return height <= LINE_RATIO * width and width >= 0.6 * (right - left) and apart


def thickened(crop: np.ndarray, min_framed_width: float = 1.5, box: int = 20) -> np.ndarray:
    """Widen strokes that framing would shrink below `min_framed_width` px (a pencil line on a big
    canvas), since the training letters never have hairlines; strokes already wide enough pass."""
    mask = crop > INK_THRESHOLD
    area = int(mask.sum())
    edge = int((mask & ~ndimage.binary_erosion(mask)).sum())
    width = 2 * area / max(edge, 1)  # about the stroke width in pixels (2 for a 1 px line)
    wanted = min_framed_width * max(crop.shape) / box
    radius = int(np.ceil((wanted - width) / 2))
    if radius <= 0:
        return crop
    return ndimage.grey_dilation(crop, size=(2 * radius + 1, 2 * radius + 1))


def at_most(a: np.ndarray, side: int, resample=Image.Resampling.BOX) -> np.ndarray:
    """Shrink (area-averaged by default) an image whose longer side exceeds `side`, to bound the cost."""
    h, w = a.shape
    if max(h, w) <= side:
        return a
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize(size, resample), dtype=np.float32)
