"""Synthetic English letters: 26 classes (upper and lower case merged) rendered from real fonts.

Each of the 52 letters of every usable font is rendered once at high resolution; a sample
is then one affine warp of that master (rotation, slant, scale, stretch, shift) onto a 56x56
canvas, a stroke-weight filter, a 2x box downsample to 28x28, a blur, and a contrast change
with additive noise. That keeps the framing of `glyph.frame_ink` (the framing `xpnet predict`
applies to a photo: longer side 20 px, centre of mass at the centre, bright ink on dark)
while costing well under a millisecond a sample.

Train and test come from disjoint font design families (see `fonts.split_fonts`), so test
accuracy measures reading unseen typefaces. Samples are drawn chunk by chunk, each chunk
from its own child of the master seed, so the result depends on the seed alone, never on
the number of worker processes. Results are cached on disk as .npz keyed by every
generation parameter.
"""

import hashlib
import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from tqdm import tqdm

from xpnet.train.data.dataset import DataSet
from xpnet.train.files import OutputError, atomic_write, remove_stale_temps
from xpnet.train.data.fonts import Font, candidate_font_files, render_letters, split_fonts, usable_fonts
from xpnet.train.data.glyph import BOX, FRAME, centre_of_mass, clamped_start, ink_bbox

STALE_TEMP_S = 600  # a cache write takes seconds: a temp untouched this long is a killed writer's
VERSION = 1  # bump whenever the generator's output changes, so stale caches are not reused
CLASSES = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
SUPER = 2  # samples are warped at 2x resolution, then box-downsampled: cheap anti-aliasing
WORK_BOX = 48  # longer side, in px, of the stored master glyphs (a bit above SUPER * BOX)
CHUNK = 1000  # samples per seeded chunk; fixed, so results do not depend on the worker count


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
    max_stretch: float = 0.1  # width changes by up to +-10%, as between condensed and wide fonts
    max_shift_px: float = 2.0  # offset of the centre of mass in each direction, in 28x28 pixels
    thin_prob: float = 0.2  # strokes thinned by about 1 px
    thick_prob: float = 0.25  # strokes thickened by about 1 px
    bold_prob: float = 0.1  # strokes thickened by about 2 px
    max_blur: float = 0.8  # Gaussian blur radius in 28x28 pixels
    min_peak: float = 0.6  # brightest ink level (the ink's contrast)
    max_background: float = 0.1  # background level
    max_noise: float = 0.06  # standard deviation of the additive Gaussian noise


@dataclass(frozen=True)
class Glyph:
    """A master glyph ready to warp: its image and where its box and centre of mass are."""

    image: Image.Image  # "L", bright ink on black, longer ink side ~ WORK_BOX px
    com: tuple[float, float]  # (x, y) centre of mass in continuous pixel coordinates
    box: tuple[float, float, float, float]  # (left, top, right, bottom) of the ink box


def load_letters(*, seed: int = 0, cache_dir=None, fonts_dir=None, n_train: int = 60000,
                 n_test: int = 10000, progress: bool = True, augment: Augment = Augment(),
                 workers: int | None = None) -> DataSet:
    """The synthetic letters data set: generated once per parameter set, then read from cache.

    The cache is keyed on the font files found rather than the fonts that pass the checks,
    so a cache hit skips rendering and checking every font.
    """
    font_files = candidate_font_files(fonts_dir)
    path = cache_path(cache_dir, cache_key_params(seed, n_train, n_test, augment, font_files))
    for pattern in (".letters-*.npz.*.tmp", "letters-*.tmp"):  # atomic_write's temps; older writers' mkstemp ones
        remove_stale_temps(path.parent, pattern, min_age_s=STALE_TEMP_S)
    cached = read_cache(path)
    if cached is None:
        started = time.perf_counter()
        train_fonts, test_fonts = split_fonts(usable_fonts(font_files))
        arrays = generate(train_fonts, test_fonts, seed, n_train, n_test, augment, progress, workers)
        info = dict(describe(seed, n_train, n_test, augment, train_fonts, test_fonts),
                    generation_seconds=round(time.perf_counter() - started, 2))
        write_cache(path, arrays, info)
        cached = arrays, dict(info, cache_hit=False)
    arrays, info = cached
    return _as_dataset(arrays, dict(info, cache_file=str(path)))


def _as_dataset(arrays: dict, info: dict) -> DataSet:
    """uint8 pixels to float32 in [0, 1] (bytes keep the cache 4x smaller); no test split if n_test is 0."""
    def pixels(a):
        return a.astype(np.float32) / np.float32(255)
    has_test = len(arrays["y_test"]) > 0
    return DataSet(X_train=pixels(arrays["X_train"]), y_train=arrays["y_train"].astype(np.int64),
                   X_test=pixels(arrays["X_test"]) if has_test else None,
                   y_test=arrays["y_test"].astype(np.int64) if has_test else None,
                   classes=CLASSES, image_shape=(FRAME, FRAME), info=info)


def cache_key_params(seed, n_train, n_test, augment, font_files) -> dict:
    """Everything the output depends on; the file sizes stand in for the fonts' versions."""
    return {"version": VERSION, "seed": int(seed), "n_train": int(n_train), "n_test": int(n_test),
            "augment": asdict(augment), "font_files": [[p, os.path.getsize(p)] for p in font_files]}


def describe(seed, n_train, n_test, augment, train_fonts, test_fonts) -> dict:
    """The JSON-ready `info` of a generated set: its parameters and the fonts on each side."""
    return {
        "source": "letters", "version": VERSION, "seed": int(seed),
        "n_train": int(n_train), "n_test": int(n_test), "augment": asdict(augment),
        "fonts_train": [_font_record(f) for f in train_fonts],
        "fonts_test": [_font_record(f) for f in test_fonts],
        "families_train": sorted({f.family for f in train_fonts}),
        "families_test": sorted({f.family for f in test_fonts}),
    }


def _font_record(font: Font) -> dict:
    """A font as recorded in info."""
    return {"name": font.name, "family": font.family, "path": font.path}


# --- generation -------------------------------------------------------------------------

def generate(train_fonts, test_fonts, seed, n_train, n_test, augment=Augment(), progress=False,
             workers=None) -> dict:
    """Both splits as uint8 arrays: X (N, 784) and y (N,), train and test from their own fonts."""
    fonts = list(train_fonts) + list(test_fonts)
    train_jobs = _chunk_jobs(seed, 0, n_train, range(len(train_fonts)), fonts)
    test_jobs = _chunk_jobs(seed, 1, n_test, range(len(train_fonts), len(fonts)), fonts)
    bar = tqdm(total=n_train + n_test, desc="letters", unit="img", disable=not progress)
    results = _run_jobs(glyph_bank(fonts), train_jobs + test_jobs, augment, bar, workers)
    bar.close()
    return {**_stack(results[:len(train_jobs)], "train"), **_stack(results[len(train_jobs):], "test")}


def _chunk_jobs(seed, side, n, font_ids, fonts) -> list[tuple]:
    """(seed sequence, size, font groups) per chunk; chunk i's seed depends only on (seed, side, i)."""
    sizes = [min(CHUNK, n - start) for start in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence([int(seed), side]).spawn(len(sizes))
    groups = _families(font_ids, fonts)
    return [(s, size, groups) for s, size in zip(seeds, sizes)]


def _families(font_ids, fonts) -> list[list[int]]:
    """Font indices grouped by design family, so each family is drawn equally often."""
    by_family = {}
    for i in font_ids:
        by_family.setdefault(fonts[i].family, []).append(i)
    return [by_family[name] for name in sorted(by_family)]


def _run_jobs(bank, jobs, augment, bar, workers) -> list:
    """Run chunks in order, in worker processes when more than one CPU is worth using.

    Where processes cannot be started (a sandbox without semaphores), it falls back to
    running them here; the chunks' seeds make the result the same either way.
    """
    workers = _worker_count(workers, len(jobs))
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, initializer=_set_worker_bank, initargs=(bank,)) as pool:
                futures = [pool.submit(_worker_chunk, *job, augment) for job in jobs]
                return [_tick(bar, f.result()) for f in futures]
        except (OSError, BrokenProcessPool):
            bar.reset()
    return [_tick(bar, render_chunk(bank, *job, augment)) for job in jobs]


def _worker_count(workers, n_jobs) -> int:
    """Requested workers, else one per CPU (capped at 8); one for small jobs, where startup dominates."""
    if workers is None:
        workers = min(os.cpu_count() or 1, 8) if n_jobs >= 8 else 1
    return max(1, min(int(workers), n_jobs))


def _tick(bar, result):
    """Advance the progress bar by one finished chunk and pass the chunk through."""
    bar.update(len(result[1]))
    return result


_WORKER_BANK = None  # each worker process's copy of the glyph bank, set once by its initializer


def _set_worker_bank(bank):
    global _WORKER_BANK
    _WORKER_BANK = bank


def _worker_chunk(seed_seq, size, groups, augment):
    return render_chunk(_WORKER_BANK, seed_seq, size, groups, augment)


def _stack(results, side) -> dict:
    """Concatenate chunk results into one split's arrays (empty arrays for an empty split)."""
    X = np.concatenate([r[0] for r in results]) if results else np.zeros((0, FRAME * FRAME), np.uint8)
    y = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    return {f"X_{side}": X, f"y_{side}": y}


def glyph_bank(fonts) -> list[tuple[Glyph, ...]]:
    """bank[font][letter]: the 52 master glyphs of every font, rendered once and reused."""
    return [_master_glyphs(f.path) for f in fonts]


@lru_cache(maxsize=512)
def _master_glyphs(path: str) -> tuple[Glyph, ...]:
    """One font's 52 master glyphs, cached: building them costs more than a thousand samples."""
    return tuple(master_glyph(raw) for raw in render_letters(path))


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


def render_chunk(bank, seed_seq, size, groups, augment=Augment()) -> tuple[np.ndarray, np.ndarray]:
    """`size` samples from one seed: (X uint8 (size, 784), y int64 (size,))."""
    rng = np.random.default_rng(seed_seq)
    labels = rng.integers(0, 26, size)
    letters = labels + 26 * rng.integers(0, 2, size)  # index into LETTERS: upper or lower case
    fonts = _draw_fonts(rng, groups, size)
    draws = draw_augment(rng, augment, size)
    glyphs = (bank[f][c] for f, c in zip(fonts, letters))
    images = np.stack([warp_glyph(g, **_row(draws, i)) for i, g in enumerate(glyphs)])
    X = finish(images, draws, rng)
    return X.reshape(size, FRAME * FRAME), labels.astype(np.int64)


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
    return {
        "angle": np.deg2rad(u(-a.max_rotation_deg, a.max_rotation_deg)),
        "shear": u(-a.max_shear, a.max_shear),
        "scale": u(a.min_scale, a.max_scale),
        "stretch": 1 + u(-a.max_stretch, a.max_stretch),
        "dx": u(-a.max_shift_px, a.max_shift_px), "dy": u(-a.max_shift_px, a.max_shift_px),
        "weight": weight, "blur": u(0, a.max_blur),
        "peak": u(a.min_peak, 1.0), "background": u(0, a.max_background), "noise": u(0, a.max_noise),
    }


WARP_KEYS = ("angle", "shear", "scale", "stretch", "dx", "dy", "weight", "blur")


def _row(draws, i) -> dict:
    """The warp parameters of sample i as plain floats."""
    return {k: float(draws[k][i]) for k in WARP_KEYS}


IDENTITY = dict(angle=0.0, shear=0.0, scale=1.0, stretch=1.0, dx=0.0, dy=0.0, weight=0, blur=0.0)


def warp_glyph(g: Glyph, angle, shear, scale, stretch, dx, dy, weight, blur) -> np.ndarray:
    """One 28x28 uint8 sample: the glyph framed as `frame_ink` does, then warped, weighted, blurred.

    With IDENTITY parameters this reproduces `frame_ink`'s framing (up to resampling), which
    is what ties the training data to what `xpnet predict` feeds the network.
    """
    k = SUPER * BOX / WORK_BOX  # master px -> canvas px, so the longer side spans the 20 px box
    M = k * scale * _rotation(angle) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([stretch, 1.0])
    centre = _framed_centre(g, k) + SUPER * np.array([dx, dy])
    Minv = np.linalg.inv(M)
    offset = np.array(g.com) - Minv @ centre
    side = SUPER * FRAME
    data = (Minv[0, 0], Minv[0, 1], offset[0], Minv[1, 0], Minv[1, 1], offset[1])
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
        return img.filter(ImageFilter.MaxFilter(2 * weight + 1))
    thin = img.filter(ImageFilter.MinFilter(3))
    kept = np.asarray(thin, dtype=np.float32).sum() / max(float(np.asarray(img, dtype=np.float32).sum()), 1.0)
    return thin if kept > 0.5 else img


def finish(images: np.ndarray, draws: dict, rng) -> np.ndarray:
    """Contrast, background and noise for a whole chunk at once, quantised to uint8."""
    x = images.astype(np.float32) / 255
    peak, bg, sigma = (draws[k].astype(np.float32)[:, None, None] for k in ("peak", "background", "noise"))
    x = bg + (peak - bg) * x + sigma * rng.standard_normal(x.shape, dtype=np.float32)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


# --- cache ------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """$XPNET_CACHE, else ~/.cache/xpnet."""
    return Path(os.environ.get("XPNET_CACHE") or Path.home() / ".cache" / "xpnet")


def cache_path(cache_dir, params: dict) -> Path:
    """The cache file for these parameters: a hash of all of them, so any change misses."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir or default_cache_dir()).expanduser() / f"letters-{key}.npz"


def read_cache(path: Path) -> tuple[dict, dict] | None:
    """(arrays, info) from a cache file, or None when it is missing or unreadable (then regenerate)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("X_train", "y_train", "X_test", "y_test")}
            info = json.loads(str(f["info"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None
    return arrays, dict(info, cache_hit=True)


def write_cache(path: Path, arrays: dict, info: dict) -> None:
    """Write atomically (train.files.atomic_write: a temp file, fsync, rename): never half a file.

    A cache that cannot be written costs the next run a regeneration, not this run its
    data, so it is a warning rather than an error.
    """
    stored_info = np.array(json.dumps(dict(info, cache_hit=False)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **arrays, info=stored_info),
                     advice="set XPNET_CACHE or cache_dir to a writable folder")
    except (OSError, OutputError) as e:
        reason = e if isinstance(e, OutputError) else f"cannot create {path.parent}: {e.strerror or e}"
        warnings.warn(f"could not cache the letters: {reason}", stacklevel=3)
