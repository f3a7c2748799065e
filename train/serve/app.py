"""What `xpnet serve` holds while it runs: the network loaded once, the run's figures, the page.

Everything a request can reach is read here at start-up from fixed names (the run folder's
own files, the page's files shipped in the package); no request ever names a file.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from xpnet.backends import XpnetError
from xpnet.train.checkpoints import CHECKPOINT_NAME
from xpnet.train.files import is_regular
from xpnet.train.predict import Reader

MAX_BODY = 8 * 2**20  # bytes of one request body: a phone's photo as JPEG fits, a drawn letter is ~10 KB
MAX_PIXELS = 16_000_000  # a 12-megapixel photo reads; predict's 50 million would cost a server 1.2 GB each
LARGE = 1_000_000  # pictures over this many pixels (photos, not drawings) are framed one at a time
ASSETS = {  # what the page is made of, in train/serve/static/: URL path -> (file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/run.js": ("run.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
# the run folder's figures that the page's second tab draws, by the key GET /api/run gives each
RUN_FILES = {"history.json": "history", "confusion.json": "confusion", "groups.json": "groups"}


class RequestError(XpnetError):
    """A request the server refuses: an HTTP status and one line that says what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Body(io.BytesIO):
    """The request's bytes as a file: Pillow quotes a file object it cannot identify by its repr,
    which for a plain BytesIO is a memory address."""

    def __repr__(self) -> str:
        return "'the request body'"


class App:
    """The served state: a Reader over the checkpoint, and the locks that make it safe to share.

    The network runs under one lock: its layers keep the arrays of the last forward pass and the
    numpy kernels reuse work buffers, so two forwards at once would write into each other's, and
    one forward of a single picture takes well under a millisecond, so waiting for the lock costs
    nothing that shows. Framing (decoding and resampling the picture, the slow part) runs outside
    it, in parallel for drawings; a photo (over LARGE pixels, up to 400 MB and seconds to frame)
    waits for the one large slot, so a few uploads at once cannot exhaust the memory, and
    drawings are never queued behind them.
    """

    def __init__(self, run: str, backend_name=None, device=None):
        self.reader = Reader(run, backend_name, device)
        self.network_lock = threading.Lock()
        self.large_slot = threading.Lock()
        self.run = run_summary(run, self.reader)
        self.assets = {path: (_asset(name), kind) for path, (name, kind) in ASSETS.items()}

    def predict(self, body: bytes, top: int = 3) -> dict:
        """The fields of `xpnet predict --json` for the picture in `body`, plus `input`: the
        28x28 frame the network read, rows of values in [0, 1] (1 is ink)."""
        from xpnet.train.data.glyph import load_image

        if not body:
            raise RequestError(400, "the request body is empty: send the bytes of a PNG or JPEG picture")
        with self.large_slot if _pixels(body) > LARGE else contextlib.nullcontext():
            try:
                pixels = load_image(_Body(body), "in the request", MAX_PIXELS)
            except XpnetError as exc:
                raise RequestError(400, str(exc)) from None
        with self.network_lock:
            result = self.reader.read(pixels, top)
        return {"image": "request", **result, "input": np.round(pixels.astype(float), 3).tolist()}

    def check_top(self, text: str | None) -> int:
        """`?top=N`: how many classes to list, 1 up to the number the network has (default 3)."""
        n = len(self.reader.classes)
        if text is None:
            return min(3, n)
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= n:
            raise RequestError(400, f"top={text[:20]!r}: give a whole number from 1 to {n}")
        return int(text)


def _pixels(body: bytes) -> int:
    """The picture's size from its header alone (nothing decoded); 0 where Pillow cannot tell,
    and load_image then says why in its own words."""
    from PIL import Image

    try:
        with Image.open(_Body(body)) as img:
            return img.width * img.height
    except Exception:  # any damage: the same reading in load_image reports it
        return 0


def run_summary(run: str, reader: Reader) -> dict:
    """What GET /api/run answers: the run's config and history, its confusion matrix and the
    accuracy of each held-out group where the run folder holds them (`xpnet train` and
    `xpnet evaluate` write them)."""
    folder = _run_folder(Path(run))
    meta = reader.meta
    summary = {"run": str(run), "classes": list(reader.classes), "sizes": list(reader.net.sizes),
               "config": meta.get("config") or {}, "epochs": meta.get("epochs"),
               "accuracy": meta.get("accuracy"), "history": [], "confusion": None, "groups": []}
    for name, key in RUN_FILES.items():
        found = _read_json(folder / name) if folder else None
        if found is not None:
            summary[key] = found
    return summary


def _run_folder(path: Path) -> Path | None:
    """The run folder a RUN names: itself, or the folder of its model.safetensors."""
    if path.is_dir():
        return path
    return path.parent if path.name == CHECKPOINT_NAME else None


def _read_json(path: Path):
    """A run folder's JSON file, or None if it is absent or unreadable: the page then says the run
    has no such figures rather than the server refusing to start over a report."""
    try:
        if not path.exists():
            return None
        if not is_regular(path):  # a named pipe would hold the server's start forever
            raise OSError(f"{path.name} is not a regular file")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        import warnings

        warnings.warn(f"{path} cannot be read ({exc.__class__.__name__}: {exc}); the page shows the run without it")
        return None


def _asset(name: str) -> bytes:
    """One of the page's files, from the package itself (installed or not): no network needed."""
    return resources.files("xpnet.train.serve").joinpath("static", name).read_bytes()
