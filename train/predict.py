"""`xpnet predict`: read letters from pictures a person gives, with the same framing as training."""

from __future__ import annotations

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.train.checkpoints import load_checkpoint


def predict_images(checkpoint: str, paths: list[str], backend_name=None, device=None, top: int = 3):
    """Yields one result dict per image: {image, letter, probability, runners_up} from a
    classifier, {image, value} from a regression model (a number, or a list for several
    outputs), or {image, error}."""
    from xpnet.train.data.glyph import load_image

    net, meta = load_checkpoint(checkpoint, resolve_backend(backend_name, device))
    classes = meta.get("classes") or [str(i) for i in range(net.sizes[-1])]
    if net.sizes[0] != 28 * 28:
        raise XpnetError(f"{checkpoint} takes {net.sizes[0]} inputs, not 28x28 images; predict needs an image model")
    for path in paths:
        try:
            pixels = load_image(path).reshape(1, -1)
        except XpnetError as exc:
            yield {"image": path, "error": str(exc)}
            continue
        if net.is_regression:
            yield {"image": path, "value": answer_value(net.predict(pixels)[0])}
            continue
        proba = net.predict_proba(pixels)[0]
        order = np.argsort(proba)[::-1][:top]
        yield {"image": path, "letter": classes[order[0]], "probability": float(proba[order[0]]),
               "runners_up": [[classes[i], float(proba[i])] for i in order[1:]]}


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
    return f"{result['image']}: {result['letter']} ({100 * result['probability']:.1f}%; then {others})"
