"""The letters' typefaces that `pip install xpnet` brings: Google Fonts families packaged on PyPI.

Each `fontpkg-<slug>` package (pinned in pyproject.toml, so every machine renders the same
corpus) holds a family's font files and a `metadata.json` with its licence (SIL OFL 1.1 or
Apache 2.0). The table below is the whole list, so fonts a user happens to have installed
through other packages never change the data. Each family gives up to three fonts: regular,
bold and italic, taken from a variable font's weight axis or from the static files.

Held-out families (`HELD_OUT`) are never trained on: they are the test set's unseen printed
designs and unseen handwriting-style designs. `VALIDATION` families are neither trained nor
tested on: the validation set's.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from xpnet.train.data.dataset import DataError

PRINT, HAND = "printed", "handwriting"
PACKAGES = {  # slug -> kind; the families of every style people meet: sans, serif, mono, display, hand
    # sans serif
    "roboto": PRINT, "open-sans": PRINT, "source-sans-3": PRINT, "work-sans": PRINT, "nunito": PRINT,
    "raleway": PRINT, "oswald": PRINT, "archivo-narrow": PRINT, "josefin-sans": PRINT, "quicksand": PRINT,
    "varela-round": PRINT, "atkinson-hyperlegible": PRINT, "lexend": PRINT, "dosis": PRINT, "teko": PRINT,
    "exo-2": PRINT, "cabin": PRINT, "karla": PRINT, "manrope": PRINT, "mulish": PRINT, "rubik": PRINT,
    "space-grotesk": PRINT, "fredoka": PRINT,
    # serif and slab
    "lora": PRINT, "arvo": PRINT, "bitter": PRINT, "bodoni-moda": PRINT, "crimson-text": PRINT,
    "domine": PRINT, "eb-garamond": PRINT, "libre-baskerville": PRINT, "playfair-display": PRINT,
    "pt-serif": PRINT, "roboto-slab": PRINT, "vollkorn": PRINT,
    # monospace
    "jetbrains-mono": PRINT, "roboto-mono": PRINT, "source-code-pro": PRINT, "space-mono": PRINT,
    "inconsolata": PRINT,
    # display
    "abril-fatface": PRINT, "alfa-slab-one": PRINT, "anton": PRINT, "lobster": PRINT, "righteous": PRINT,
    "comfortaa": PRINT,
    # handwriting and script
    "caveat": HAND, "dancing-script": HAND, "delius": HAND, "great-vibes": HAND, "indie-flower": HAND,
    "kalam": HAND, "pacifico": HAND, "permanent-marker": HAND, "satisfy": HAND, "shadows-into-light": HAND,
    "yellowtail": HAND, "zeyada": HAND,
    # the validation set's (VALIDATION below): a condensed and a geometric sans, a serif, a mono,
    # a display face and a script
    "abel": PRINT, "questrial": PRINT, "cardo": PRINT, "dm-mono": PRINT, "acme": PRINT, "oleo-script": HAND,
}
# Never trained on: a spread of everyday sans, serif and mono designs, a display face, and
# three handwriting styles (a marker print, a round print, a joined script).
HELD_OUT = ("open-sans", "work-sans", "karla", "pt-serif", "crimson-text", "bitter", "inconsolata",
            "righteous", "indie-flower", "kalam", "satisfy")
# Never trained on nor tested on: the validation set's designs, on which the temperature that
# calibrates the probabilities is fitted (train/data/letters_groups.py).
VALIDATION = ("abel", "questrial", "cardo", "dm-mono", "acme", "oleo-script")
OPEN_LICENCES = ("OFL-1.1", "Apache-2.0")
WEIGHTS = (400, 700)  # a variable font's instances: regular and bold
STATIC_STYLES = ("regular", "bold", "italic")  # the static files kept, by the words in their names


@dataclass(frozen=True)
class PackageFont:
    """One font of a packaged family: its file, the weight to set on a variable font, and its family."""

    path: str
    weight: int | None  # None: a static font, drawn as it is
    slug: str
    family: str
    kind: str  # PRINT or HAND
    licence: str


def package_fonts() -> list[PackageFont]:
    """Every font of every family in PACKAGES, in the table's order (never the file system's)."""
    return [font for slug in PACKAGES for font in _family_fonts(slug)]


def package_versions() -> dict[str, str]:
    """The installed version of each font package: part of the letters' cache key."""
    return {slug: _version(slug) for slug in PACKAGES}


def _version(slug: str) -> str:
    try:
        return version(f"fontpkg-{slug}")
    except PackageNotFoundError:
        raise DataError(f"the font package fontpkg-{slug} is missing; reinstall xpnet "
                        "(pip install xpnet) to bring the letters' fonts") from None


@lru_cache(maxsize=None)
def _family_fonts(slug: str) -> tuple[PackageFont, ...]:
    """A family's regular, bold and italic fonts, read from its package's metadata.json."""
    _version(slug)
    module = importlib.import_module(f"fontpkg_{slug.replace('-', '_')}")
    meta = json.loads((module.ROOT / "metadata.json").read_text(encoding="utf-8"))
    if meta["license"] not in OPEN_LICENCES:
        raise DataError(f"fontpkg-{slug} is licensed {meta['license']}, not an open font licence")
    make = lambda f, w: PackageFont(str(module.ROOT / f["path"]), w, slug, meta["family"],  # noqa: E731
                                    PACKAGES[slug], meta["license"])
    fonts = []
    for f in meta["files"]:
        if f.get("variable"):
            weights = WEIGHTS if f["style"] == "normal" else WEIGHTS[:1]
            fonts += [make(f, w) for w in weights]
        elif _static_style(f) in STATIC_STYLES:
            fonts.append(make(f, None))
    return tuple(fonts or [make(meta["files"][0], None)])


def _static_style(f: dict) -> str:
    """'regular', 'bold', 'italic' or other, from a static file's weight, style and name."""
    name = f["path"].rsplit("/", 1)[-1].lower()
    italic = f["style"] == "italic" or "italic" in name
    weight = f.get("weight") or (700 if "-bold." in name else 400 if "-regular." in name else 0)
    if italic:
        return "italic" if weight == 400 or "-italic." in name else "other"
    return {400: "regular", 700: "bold"}.get(weight, "other")


def is_weight_axis(axis: dict) -> bool:
    """Whether a variable font's axis (as Pillow lists it) is its weight."""
    name = axis["name"].decode("ascii", "replace") if isinstance(axis["name"], bytes) else str(axis["name"])
    return name.strip().lower() in ("weight", "wght")
