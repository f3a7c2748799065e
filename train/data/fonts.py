"""Finding fonts that draw real letters, grouping them by design, and splitting them train/test.

A letter classifier is only worth something if it reads fonts it never saw, so the test set
is drawn from whole design families that the training set never touches: splitting by image
would let "Times Bold 'a'" leak from training into the test set through "Times Italic 'a'".

Fonts come from matplotlib (always installed: DejaVu Sans, DejaVu Sans Mono, DejaVu Serif,
STIX, Computer Modern) and the font packages xpnet depends on (`font_packages`), so the default
corpus is the same on every machine; the system's fonts (fc-list or the usual font folders)
and a `fonts_dir` join only when asked. A font is kept only if it draws every letter A-Z, a-z as a distinct, non-blank
glyph that is not its missing-glyph box and that looks like the letter it is meant to be
(which rejects symbol and math-extension fonts such as cmsy10, cmex10, LastResort).
"""

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xpnet.train.data.dataset import DataError
from xpnet.train.data.font_files import candidate_font_files, font_files_in, matplotlib_font_files
from xpnet.train.data.font_packages import HELD_OUT as PACKAGES_HELD_OUT
from xpnet.train.data.font_packages import PRINT, is_weight_axis, package_fonts
from xpnet.train.data.glyph import frame_ink

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RENDER_SIZE = 96  # font size in px for the master renderings; letters are framed down from these
NOT_A_GLYPH = ("\ue000", "\U0010fffd")  # private-use code points: fonts draw their .notdef box here
MIN_DISTINCT = 44  # of the 52 letters, at least this many must render differently
MIN_RECOGNISED = 0.55  # share of letters the reference fonts' templates must recognise
REFERENCE_FONTS = ("DejaVuSans.ttf", "DejaVuSans-Oblique.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf")
HELD_OUT = ("DejaVu Serif",)  # design families always kept for the test set when present
TEST_FRACTION = 0.2  # share of design families held out for testing (at least one)

# Fonts that are metric clones of one design count as one family: a test on Liberation Serif
# after training on Times would not be a test on an unseen design.
DESIGN_GROUPS = {
    "Times/STIX": ("times", "stix", "nimbus roman", "tex gyre termes", "liberation serif",
                   "freeserif", "tinos", "termes"),
    "Helvetica/Arial": ("helvetica", "arial", "nimbus sans", "liberation sans", "tex gyre heros",
                        "freesans", "arimo", "heros"),
    "Courier": ("courier", "nimbus mono", "liberation mono", "tex gyre cursor", "freemono",
                "cousine", "cursor"),
    "Computer Modern": ("computer modern", "latin modern", "cmu ", "lmroman", "lmsans", "lmmono"),
    "DejaVu Sans Mono": ("dejavu sans mono", "bitstream vera sans mono"),
    "DejaVu Serif": ("dejavu serif", "dejavu math", "bitstream vera serif"),
    "DejaVu Sans": ("dejavu sans", "bitstream vera sans"),
}
COMPUTER_MODERN_FILE = re.compile(r"^cm[a-z]+\d+$")  # matplotlib's BaKoMa cmr10, cmss10, ...
STYLE_WORDS = re.compile(r"\b(condensed|semicondensed|narrow|extended|expanded|display|text|"
                         r"thin|extralight|ultralight|light|book|regular|medium|semibold|"
                         r"demibold|bold|extrabold|black|heavy|italic|oblique)\b", re.I)


@dataclass(frozen=True)
class Font:
    """One usable font file: where it is, what it calls itself, and which design it belongs to."""

    path: str
    name: str  # family and style as the font names itself, e.g. "DejaVu Sans Bold"
    family: str  # design family used for the train/test split, e.g. "DejaVu Sans"
    weight: int | None = None  # the weight set on a variable font; None draws the font as it is
    kind: str = PRINT  # printed or handwriting: which held-out group its test letters report to


def find_fonts(fonts_dir: str | Path | None = None, system: bool = False) -> list[Font]:
    """Every usable font, in a deterministic order: matplotlib's, the packages', the system's, fonts_dir's."""
    found = usable_fonts(candidate_font_files(fonts_dir, system))  # matplotlib's first, each name once
    if fonts_dir is not None:
        yours = set(font_files_in(fonts_dir))
        if not any(f.path in yours for f in found):
            raise DataError(f"no font in {fonts_dir} adds a design: each draws too few distinct letters, or "
                            "has a name xpnet's own fonts already have; give other fonts")
    n_mpl = len(usable_fonts(matplotlib_font_files()))
    return found[:n_mpl] + packaged_fonts() + found[n_mpl:]


def packaged_fonts() -> list[Font]:
    """The font packages' fonts (font_packages.PACKAGES). They are checked by the test suite,
    not here: the list is fixed, and checking 130 fonts would cost every first run seconds."""
    return [Font(path=f.path, name=f"{f.family} {f.weight or Path(f.path).stem}", weight=f.weight,
                 family=design_family(f.family), kind=f.kind) for f in package_fonts()]


def usable_fonts(paths) -> list[Font]:
    """The fonts among `paths` that draw all 52 letters properly.

    A font that names itself like an earlier one (the same DejaVu Sans shipped by both
    matplotlib and the system) is kept once.
    """
    return list(_usable_fonts(tuple(paths)))


@lru_cache(maxsize=16)
def _usable_fonts(paths: tuple[str, ...]) -> tuple[Font, ...]:
    """Open, deduplicate and check each font; cached because checking renders every letter."""
    fonts, seen = [], set()
    for path in paths:
        name = font_name(path)
        if name is None or name in seen:
            continue
        seen.add(name)
        if font_problem(path) is None:
            fonts.append(Font(path=path, name=name, family=design_family(name, path)))
    return tuple(fonts)


def font_name(path: str) -> str | None:
    """The font's own "Family Style" name, or None when Pillow cannot open it."""
    try:
        family, style = ImageFont.truetype(path, 12).getname()
    except (OSError, ValueError):
        return None
    return f"{family} {style}".strip() if style else str(family)


def design_family(name: str, path: str = "") -> str:
    """The design a font belongs to, so that clones and weights of one design split together."""
    lowered = name.lower()
    if COMPUTER_MODERN_FILE.match(Path(path).stem.lower()) or COMPUTER_MODERN_FILE.match(lowered.split()[0]):
        return "Computer Modern"
    for family, prefixes in DESIGN_GROUPS.items():
        if any(lowered.startswith(p) or f" {p}" in f" {lowered}" for p in prefixes):
            return family
    base = STYLE_WORDS.sub(" ", name)
    return " ".join(base.split()) or name


@lru_cache(maxsize=1024)
def font_problem(path: str) -> str | None:
    """Why a font cannot be used for letters, or None if it draws all 52 letters properly."""
    glyphs = render_letters(path)
    if glyphs is None:
        return "cannot be rendered"
    blank = [ch for ch, g in zip(LETTERS, glyphs) if g.max() < 128]
    if blank:
        return f"draws no ink for {''.join(blank)}"
    if any(_same_shape(g, box) for box in _notdef_boxes(path) for g in glyphs):
        return "draws its missing-glyph box for some letters"
    if len({g.tobytes() + str(g.shape).encode() for g in glyphs}) < MIN_DISTINCT:
        return "draws the same shape for different letters"
    if recognised_share(glyphs) < MIN_RECOGNISED:
        return "its letters do not look like Latin letters (a symbol or math font?)"
    return None


@lru_cache(maxsize=512)
def render_letters(path: str, weight: int | None = None) -> tuple[np.ndarray, ...] | None:
    """The 52 letters rendered at RENDER_SIZE as uint8 ink arrays cropped to their ink, or None.

    `weight` sets a variable font's weight axis (clamped to its range), the others at their defaults."""
    try:
        font = ImageFont.truetype(path, RENDER_SIZE)
        if weight is not None:
            font.set_variation_by_axes([min(max(weight, a["minimum"]), a["maximum"]) if is_weight_axis(a)
                                        else a["default"] for a in font.get_variation_axes()])
        return tuple(render_glyph(font, ch) for ch in LETTERS)
    except (OSError, ValueError):
        return None


def render_glyph(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray:
    """One character as bright ink on black, cropped to its ink (a 1x1 zero array if blank)."""
    left, top, right, bottom = font.getbbox(ch)
    pad = 4
    img = Image.new("L", (max(right - left, 1) + 2 * pad, max(bottom - top, 1) + 2 * pad), 0)
    ImageDraw.Draw(img).text((pad - left, pad - top), ch, fill=255, font=font)
    box = img.getbbox()
    if box is None:
        return np.zeros((1, 1), np.uint8)
    return np.asarray(img.crop(box))


def _notdef_boxes(path: str) -> list[np.ndarray]:
    """What the font draws for code points it surely lacks: its .notdef box (blank ones dropped)."""
    font = ImageFont.truetype(path, RENDER_SIZE)
    boxes = [render_glyph(font, ch) for ch in NOT_A_GLYPH]
    return [b for b in boxes if b.max() >= 128]


def _same_shape(a: np.ndarray, b: np.ndarray) -> bool:
    """Two renderings are the same glyph if they have the same size and nearly the same pixels."""
    return a.shape == b.shape and float(np.abs(a.astype(np.int16) - b).mean()) < 8


def recognised_share(glyphs) -> float:
    """Share of a font's 52 letters that the nearest reference-font letter names correctly.

    The references are sans and serif, upright and italic fonts that matplotlib always
    ships. Text fonts score 0.75 to 1; a symbol font, which maps letters to arrows and
    brackets, scores under 0.4.
    """
    templates = _reference_templates()
    framed = np.stack([_framed_unit(g) for g in glyphs])
    nearest = np.argmax(framed @ templates.T, axis=1)  # template index; its letter is index % 26
    return float(np.mean(nearest % 26 == np.arange(52) % 26))


@lru_cache(maxsize=1)
def _reference_templates() -> np.ndarray:
    """Upright and slanted letters from two designs matplotlib always ships, as unit vectors."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    glyphs = [g for name in REFERENCE_FONTS for g in render_letters(str(folder / name))]
    return np.stack([_framed_unit(g) for g in glyphs])


def _framed_unit(glyph: np.ndarray) -> np.ndarray:
    """A glyph framed like the training data, flattened and centred/scaled to a unit vector."""
    v = frame_ink(glyph.astype(np.float32) / 255).ravel()
    v = v - v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-9)


def split_fonts(fonts: list[Font], test_fraction: float = TEST_FRACTION) -> tuple[list[Font], list[Font]]:
    """Split fonts into (train, test) by whole design family; no family is on both sides.

    The choice is fixed, not drawn from the seed, so every run tests on the same fonts:
    DejaVu Serif and the font packages' HELD_OUT families are held out when present (each has
    neighbours in style that stay in training, so the test is fair), then further families in
    the order of a hash of their names until `test_fraction` of the families are held out
    where none of those is present. Training always keeps at least one family.
    """
    families = sorted({f.family for f in fonts})
    if len(families) < 2:
        raise DataError(f"need fonts from at least 2 design families to hold one out, found {families}; "
                        "install more fonts or pass a fonts folder")
    test = _held_out_families(families, test_fraction)
    return [f for f in fonts if f.family not in test], [f for f in fonts if f.family in test]


def _held_out_families(families: list[str], test_fraction: float) -> set[str]:
    """The preferred held-out families present; where none is, a share of them by name hash."""
    preferred = [f for f in HELD_OUT + _packaged_held_out() if f in families]
    n_test = min(len(preferred) or max(1, round(test_fraction * len(families))), len(families) - 1)
    by_hash = sorted(families, key=lambda name: hashlib.sha256(name.encode()).hexdigest())
    ordered = preferred + [f for f in by_hash if f not in preferred]
    return set(ordered[:n_test])


def _packaged_held_out() -> tuple[str, ...]:
    """The design families of the font packages held out for testing."""
    return tuple(dict.fromkeys(design_family(f.family) for f in package_fonts() if f.slug in PACKAGES_HELD_OUT))
