"""Framing one glyph into a 28x28 image the way MNIST and EMNIST do.

The network only ever sees letters framed one way: bright ink on a dark background, cropped
to the glyph, scaled so its longer side is 20 px (aspect ratio kept), and placed in a 28x28
frame so its centre of mass sits at the centre. The synthetic letters generator and
`xpnet predict` on a person's photo both go through `frame_ink`, so a picture of a letter
looks to the network like the letters it was trained on.
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from xpnet.train.data.dataset import DataError
from xpnet.train.data.picture import INK_THRESHOLD, at_most, ink_from_gray, letter_only, thickened

FRAME = 28  # side of the output image, as in MNIST / EMNIST
BOX = 20  # longer side of the glyph inside the frame, as in MNIST
MAX_CROP = 100  # larger crops are shrunk to this first: the 20 px result needs no more detail
MAX_PIXELS = 50_000_000  # a 48-megapixel photo reads (in 20 s and 1.2 GB); a bigger one would take more


def load_image(path, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file of any size and colour and frame it as a 28x28 float32 letter in [0, 1].

    `path` may also be a binary file object (`xpnet serve` hands it the request's bytes), which
    errors call `name`; `xpnet serve` also reads fewer pixels.
    """
    name = name or str(path)
    with _decoded(path if hasattr(path, "read") else Path(path), name, max_pixels) as img:
        try:
            return preprocess_image(img)
        except DataError as e:
            raise DataError(f"image {name}: {e}") from None


def _decoded(path, name: str, max_pixels: int) -> Image.Image:
    """The picture in `path`, fully read. A damaged file can make Pillow raise almost anything
    (OSError, TypeError, struct.error, EOFError...): each is the same one line. The size in the
    header is checked before any pixel is decoded, so a small file that would unpack to a huge
    picture (a decompression bomb) costs nothing."""
    img = None
    try:
        img = Image.open(path)
        width, height = img.size
        if width * height <= max_pixels:
            img.load()
            return img
    except Exception as e:
        if img is not None:
            img.close()
        reason = str(e).rstrip(". ")  # Pillow's own messages end in a full stop
        raise DataError(f"cannot read image {name}: {e.__class__.__name__}: {reason}; "
                        "give a PNG or JPEG picture of one letter") from None
    img.close()
    raise DataError(f"image {name}: {width}x{height} pixels is more than the {max_pixels / 1e6:g} million "
                    "xpnet reads; shrink the picture")


def preprocess_image(img: Image.Image) -> np.ndarray:
    """Frame a picture of one letter (any size, any colour, either polarity) as the network expects.

    Returns a (28, 28) float32 array in [0, 1], bright ink on dark, its strongest ink at 1 as in
    training. Raises DataError when the picture is one flat colour, since there is no letter in
    it to frame. `picture` finds the ink (paper on a desk, shadows, specks, rules, thin lines).
    """
    ink = letter_only(ink_from_gray(to_grayscale(img)))
    top, bottom, left, right = ink_bbox(ink)
    framed = frame_ink(thickened(ink[top:bottom, left:right]))
    return (framed / max(float(framed.max()), 1e-6)).astype(np.float32)


def to_grayscale(img: Image.Image) -> np.ndarray:
    """Luminance as float32 in [0, 255], with transparency flattened onto a contrasting background.

    A letter drawn on a transparent background has its shape in the alpha channel only, so
    it is composited over whichever of black or white its opaque pixels stand out against.
    """
    img = ImageOps.exif_transpose(img)
    if img.mode == "LAB":  # its first channel is lightness already
        return np.asarray(img.getchannel("L"), dtype=np.float32)
    if img.mode in ("La", "RGBa"):  # premultiplied alpha: Pillow converts these only to their plain forms
        img = img.convert("LA" if img.mode == "La" else "RGBA")
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float32)
        if not np.isfinite(a).all():
            raise DataError("the picture holds NaN or infinite values; save it as PNG or JPEG")
        return 255 * (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        return _flatten_alpha(img.convert("RGBA"))
    try:
        return np.asarray(img.convert("L"), dtype=np.float32)
    except ValueError:  # a mode Pillow cannot turn into grayscale
        raise DataError(f"pictures in mode {img.mode} cannot be read; save it as PNG or JPEG") from None


def _flatten_alpha(img: Image.Image) -> np.ndarray:
    """Composite an RGBA image over black or white, whichever contrasts with its opaque pixels."""
    alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255
    lum = np.asarray(img.convert("RGB").convert("L"), dtype=np.float32)
    if alpha.min() > 0.98:
        return lum
    opaque_mean = float((lum * alpha).sum() / max(alpha.sum(), 1e-6))
    background = 255.0 if opaque_mean < 128 else 0.0
    return lum * alpha + background * (1 - alpha)


def ink_bbox(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> tuple[int, int, int, int]:
    """(top, bottom, left, right), bottom/right exclusive, of the pixels that are clearly ink.

    Thresholding relative to the ink's range keeps faint noise from stretching the box; specks
    are `picture.letter_only`'s to remove, as whole pieces, so thin strokes survive.
    """
    mask = ink > threshold
    if not mask.any():
        raise DataError("no ink found in the picture; give a picture of one letter")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, col) of the ink's centre of mass, in continuous coordinates (pixel i spans [i, i+1))."""
    total = float(a.sum())
    if total <= 0:
        return a.shape[0] / 2, a.shape[1] / 2
    rows = (a.sum(axis=1) * (np.arange(a.shape[0]) + 0.5)).sum() / total
    cols = (a.sum(axis=0) * (np.arange(a.shape[1]) + 0.5)).sum() / total
    return float(rows), float(cols)


def frame_ink(crop: np.ndarray) -> np.ndarray:
    """Scale a cropped glyph so its longer side is 20 px and centre it by mass in a 28x28 frame.

    Scaling and sub-pixel placement are one anti-aliased resample (Pillow's resize of a
    source box), as in the generator's single affine warp. The offset is clamped so the
    20 px box stays inside the frame: a letter whose mass sits near an edge (an 'L', a 'j')
    is shifted less rather than cut off.
    """
    crop = at_most(crop.astype(np.float32), MAX_CROP, Image.Resampling.LANCZOS)
    h, w = crop.shape
    scale = BOX / max(h, w)  # crop pixels -> frame pixels
    cy, cx = centre_of_mass(crop)
    top = clamped_start(FRAME / 2 - scale * cy, scale * h)
    left = clamped_start(FRAME / 2 - scale * cx, scale * w)
    src, (x0, y0) = _zero_padded(crop, top / scale, left / scale, FRAME / scale, margin=4 / scale)
    box = (x0, y0, x0 + FRAME / scale, y0 + FRAME / scale)
    out = src.resize((FRAME, FRAME), Image.Resampling.LANCZOS, box=box)
    return np.clip(np.asarray(out), 0, 1).astype(np.float32)


def _zero_padded(crop, top, left, frame, margin) -> tuple[Image.Image, tuple[float, float]]:
    """The crop inside enough zeros to hold the whole frame plus the resampling margin.

    All lengths are in crop pixels: the frame of side `frame` starts at (top, left) relative
    to the crop. Returns the padded image and the frame's (x, y) origin in it. Lanczos reads
    3 output pixels beyond the box, hence the margin.
    """
    h, w = crop.shape
    m = int(np.ceil(margin))
    before_y, before_x = int(np.ceil(top)) + m, int(np.ceil(left)) + m
    after_y = max(int(np.ceil(frame - top - h)), 0) + m
    after_x = max(int(np.ceil(frame - left - w)), 0) + m
    padded = np.pad(crop, ((before_y, after_y), (before_x, after_x)))
    return Image.fromarray(padded, "F"), (before_x - left, before_y - top)


def clamped_start(start: float, length: float) -> float:
    """Keep [start, start + length) inside the frame, moving it as little as possible."""
    return min(max(start, 0.0), FRAME - length)
