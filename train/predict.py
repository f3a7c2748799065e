"""`xpnet predict`: read letters from pictures a person gives, with the same framing as training."""

from __future__ import annotations

import os

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.train.calibration import UNSURE_BELOW
from xpnet.train.checkpoints import load_checkpoint
from xpnet.train.data import DataError
from xpnet.train.files import is_regular


class Reader:
    """A checkpoint loaded once, reading framed 28x28 pictures: `xpnet predict` reads each of its
    files with one, and `xpnet serve` every request with the one it loaded at start-up."""

    def __init__(self, checkpoint: str, backend_name=None, device=None):
        self.net, self.meta = load_checkpoint(checkpoint, resolve_backend(backend_name, device))
        self.classes = self.meta.get("classes") or [str(i) for i in range(self.net.sizes[-1])]
        shape = self.net.input_shape
        if len(shape) == 3 and shape != (1, 28, 28):
            raise XpnetError(f"{checkpoint} reads {'x'.join(map(str, shape))} pictures, but image files are framed "
                             "as letters of 1x28x28 (grey, centred): give your pictures as rows of a .npz "
                             "or .csv to xpnet predict --input")
        if self.net.sizes[0] != 28 * 28:
            raise XpnetError(f"{checkpoint} takes {self.net.sizes[0]} inputs, not 28x28 pictures: give its "
                             "rows to xpnet predict --input (a .csv or .npz)")

    def read(self, pixels: np.ndarray, top: int = 3) -> dict:
        """{letter, probability, unsure, runners_up} for one framed picture, the `top` likeliest
        classes, `unsure` when the answer's (calibrated) probability is under UNSURE_BELOW, that
        is when the network more likely reads it wrong than right; {value} from a regression model."""
        if self.net.is_regression:
            return {"value": answer_value(self.net.predict(pixels.reshape(1, -1))[0])}
        proba = self.net.predict_proba(pixels.reshape(1, -1))[0]
        order = np.argsort(proba)[::-1][:top]
        return {"letter": self.classes[order[0]], "probability": float(proba[order[0]]),
                "unsure": bool(proba[order[0]] < UNSURE_BELOW),
                "runners_up": [[self.classes[i], float(proba[i])] for i in order[1:]]}


def predict_images(checkpoint: str, paths: list[str], backend_name=None, device=None, top: int = 3):
    """Yields one result dict per image: {image, letter, probability, unsure, runners_up} from a
    classifier, {image, value} from a regression model (a number, or a list for several
    outputs), or {image, error}."""
    from xpnet.train.data.glyph import load_image

    reader = Reader(checkpoint, backend_name, device)
    for path in paths:
        try:
            _check_regular(path)
            pixels = load_image(path)
        except XpnetError as exc:
            yield {"image": path, "error": str(exc)}
            continue
        yield {"image": path, **reader.read(pixels, top)}


def _check_regular(path: str) -> None:
    """Read only regular files: opening a named pipe blocks until someone writes to it, and
    a device may never end. A missing file is load_image's to name."""
    if os.path.exists(path) and not is_regular(path):
        raise DataError(f"{path} is not a regular file (a folder, a named pipe or a device): predict "
                        "reads image files only")


def answer_value(row):
    """A regression answer for JSON: a float for one output, a list of floats for several."""
    return float(row[0]) if len(row) == 1 else [float(v) for v in row]


def format_value(value) -> str:
    """A regression answer for people: 416285, or 1.5 -2 for several outputs."""
    return f"{value:.6g}" if isinstance(value, float) else " ".join(f"{v:.6g}" for v in value)


def format_result(result: dict) -> str:
    if "error" in result:
        return f"{result['image']}: error: {result['error']}"
    if "value" in result:
        return f"{result['image']}: {format_value(result['value'])}"
    others = ", ".join(f"{c} {100 * p:.1f}%" for c, p in result["runners_up"])
    unsure = ", unsure" if result.get("unsure") else ""
    return f"{result['image']}: {result['letter']} ({100 * result['probability']:.1f}%{unsure}; then {others})"
