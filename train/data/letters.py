"""Synthetic English letters: 26 classes (upper and lower case merged), set in fonts and written by hands.

`load_letters` is the entry point: it reads the set from the cache (`letters_cache`) or
generates it here, chunk by chunk, each chunk drawn by `letters_render` (one affine warp,
stroke weight, blur and noise per sample, framed as `glyph.frame_ink` frames a photo).

Train, validation and test come from disjoint font design families (see `fonts.split_fonts`
and `letters_groups`) and disjoint synthetic writers (`strokes`), so test accuracy measures
reading unseen typefaces and hands, and the validation set (half the test set's size, drawn
alike) calibrates the probabilities without touching the test set. The test set is made of
groups, each reported on its own (`TEST_GROUPS`). Each chunk is drawn from its own child of the
master seed, so the result depends on the seed alone, never on the number of worker
processes. The cache is keyed by every generation parameter.
"""

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict

import numpy as np
from tqdm import tqdm

from xpnet.train.data.dataset import DataSet
from xpnet.train.data.font_packages import package_versions
from xpnet.train.data.font_files import candidate_font_files
from xpnet.train.data.fonts import Font, find_fonts, split_fonts
from xpnet.train.data.glyph import FRAME
from xpnet.train.data.letters_cache import STALE_TEMP_S, cache_path, font_file_key, read_cache, write_cache
from xpnet.train.data.letters_groups import (TRAIN_HAND_SHARE, VALIDATION_SHARE, WRITERS_TEST, WRITERS_VALIDATION,
                                             families, group_ranges, held_out_recipes, recipe_params,
                                             split_validation_fonts, writers)
from xpnet.train.data.letters_render import Augment, Recipe, glyph_bank, render_chunk
from xpnet.train.data.strokes import SKELETONS
from xpnet.train.files import remove_stale_temps

VERSION = 5  # bump whenever the generator's output changes: stale caches are not reused, old runs not resumed
CLASSES = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
CHUNK = 1000  # samples per seeded chunk; fixed, so results do not depend on the worker count
WRITERS_TRAIN = 400  # synthetic writers to train on (the held-out sides' are in letters_groups)


def load_letters(*, seed: int = 0, cache_dir=None, fonts_dir=None, n_train: int = 120_000,
                 n_test: int = 10000, progress: bool = True, augment: Augment = Augment(),
                 workers: int | None = None, system_fonts: bool = False) -> DataSet:
    """The synthetic letters data set: generated once per parameter set, then read from cache.

    By default only the fonts xpnet installs are used (`system_fonts` adds the machine's).
    The cache is keyed on the font files found rather than the fonts that pass the checks,
    so a cache hit skips rendering and checking every font.
    """
    font_files = candidate_font_files(fonts_dir, system_fonts)
    path = cache_path(cache_dir, cache_key_params(seed, n_train, n_test, augment, font_files))
    for pattern in (".letters-*.npz.*.tmp", "letters-*.tmp"):  # atomic_write's temps; older writers' mkstemp ones
        remove_stale_temps(path.parent, pattern, min_age_s=STALE_TEMP_S)
    cached = read_cache(path)
    if cached is None:
        started = time.perf_counter()
        train_fonts, test_fonts = split_fonts(find_fonts(fonts_dir, system_fonts))
        train_fonts, val_fonts = split_validation_fonts(train_fonts)
        arrays = generate(train_fonts, test_fonts, seed, n_train, n_test, augment, progress, workers, val_fonts)
        info = dict(describe(seed, n_train, n_test, augment, train_fonts, test_fonts, val_fonts),
                    generation_seconds=round(time.perf_counter() - started, 2))
        write_cache(path, arrays, info)
        cached = arrays, dict(info, cache_hit=False)
    arrays, info = cached
    return _as_dataset(arrays, dict(info, cache_file=str(path)))


def _as_dataset(arrays: dict, info: dict) -> DataSet:
    """uint8 pixels to float32 in [0, 1] (bytes keep the cache 4x smaller); no test split if n_test is 0."""
    def pixels(a):
        return a.astype(np.float32) / np.float32(255)
    has_test, has_val = len(arrays["y_test"]) > 0, len(arrays.get("y_val", ())) > 0
    return DataSet(X_train=pixels(arrays["X_train"]), y_train=arrays["y_train"].astype(np.int64),
                   X_test=pixels(arrays["X_test"]) if has_test else None,
                   y_test=arrays["y_test"].astype(np.int64) if has_test else None,
                   classes=CLASSES, image_shape=(FRAME, FRAME), info=info,
                   X_val=pixels(arrays["X_val"]) if has_val else None,
                   y_val=arrays["y_val"].astype(np.int64) if has_val else None)


def cache_key_params(seed, n_train, n_test, augment, font_files) -> dict:
    """Everything the output depends on; the file sizes stand in for the fonts' versions."""
    return {"version": VERSION, "seed": int(seed), "n_train": int(n_train), "n_test": int(n_test),
            "augment": asdict(augment), "font_files": [[font_file_key(p), os.path.getsize(p)] for p in font_files],
            "font_packages": package_versions(), "recipe": recipe_params(WRITERS_TRAIN), "renderer": renderer()}


def renderer() -> dict:
    """The libraries that turn the recipe into pixels. FreeType (inside Pillow) rasterises the
    fonts and numpy draws the random numbers; another version of either may move a pixel, so
    the letters are the same on every machine with these versions, and a cache drawn under
    others is drawn again."""
    import PIL
    from PIL import features

    return {"numpy": np.__version__, "pillow": PIL.__version__, "freetype": features.version("freetype2")}


def describe(seed, n_train, n_test, augment, train_fonts, test_fonts, val_fonts=()) -> dict:
    """The JSON-ready `info` of a generated set: its parameters and the fonts on each side."""
    return {
        "source": "letters", "version": VERSION, "seed": int(seed),
        "n_train": int(n_train), "n_test": int(n_test), "augment": asdict(augment),
        "fonts_train": [_font_record(f) for f in train_fonts],
        "fonts_test": [_font_record(f) for f in test_fonts],
        "families_train": sorted({f.family for f in train_fonts}),
        "families_test": sorted({f.family for f in test_fonts}),
        "families_validation": sorted({f.family for f in val_fonts}),
        "writers": {"train": WRITERS_TRAIN, "test": WRITERS_TEST, "validation": WRITERS_VALIDATION,
                    "skeletons": list(SKELETONS)},
        "test_groups": group_ranges(test_fonts, n_test),
        "recipe": recipe_params(WRITERS_TRAIN),
        "renderer": renderer(),
        "n_validation": _validation_size(n_test),
    }


def _font_record(font: Font) -> dict:
    """A font as recorded in info."""
    return {"name": font.name, "family": font.family, "kind": font.kind, "path": font.path}


def _validation_size(n_test: int) -> int:
    return int(n_test * VALIDATION_SHARE)


# --- generation -------------------------------------------------------------------------

def generate(train_fonts, test_fonts, seed, n_train, n_test, augment=Augment(), progress=False,
             workers=None, val_fonts=()) -> dict:
    """Every split as uint8 arrays: X (N, 784) and y (N,), train, validation and test each from
    its own fonts and writers."""
    fonts = list(train_fonts) + list(val_fonts) + list(test_fonts)
    n, n_val = len(train_fonts), _validation_size(n_test)
    train = Recipe(families(range(n), fonts), writers(seed, "train", WRITERS_TRAIN), TRAIN_HAND_SHARE)
    jobs = {"train": _chunk_jobs([seed, 0], n_train, train, augment),
            "test": _held_out_jobs(test_fonts, n + len(val_fonts), writers(seed, "test", WRITERS_TEST),
                                   [seed, 1], n_test, augment),
            "val": _held_out_jobs(val_fonts, n, writers(seed, "validation", WRITERS_VALIDATION),
                                  [seed, 5], n_val, augment)}
    bar = tqdm(total=n_train + n_test + n_val, desc="letters", unit="img", disable=not progress)
    results = iter(_run_jobs(glyph_bank(fonts), [job for side in jobs.values() for job in side], bar, workers))
    bar.close()
    return {k: v for side, side_jobs in jobs.items() for k, v in _stack([next(results) for _ in side_jobs], side).items()}


def _held_out_jobs(side_fonts, offset, side_writers, seed, n, augment) -> list[tuple]:
    """The chunks of a held-out side, group by group; group g's chunks seeded from seed + [g]."""
    return [job for g, (recipe, a, size) in enumerate(held_out_recipes(side_fonts, offset, side_writers, n, augment))
            for job in _chunk_jobs([*seed, g], size, recipe, a)]


def _chunk_jobs(seed, n, recipe, augment) -> list[tuple]:
    """(seed sequence, size, recipe, augment) per chunk; chunk i's seed depends only on (seed, i)."""
    sizes = [min(CHUNK, n - start) for start in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence([int(x) for x in seed]).spawn(len(sizes))
    return [(s, size, recipe, augment) for s, size in zip(seeds, sizes)]


def _run_jobs(bank, jobs, bar, workers) -> list:
    """Run chunks in order, in worker processes when more than one CPU is worth using.

    Where processes cannot be started (a sandbox without semaphores), it falls back to
    running them here; the chunks' seeds make the result the same either way.
    """
    workers = _worker_count(workers, len(jobs))
    if workers > 1:
        try:
            with ProcessPoolExecutor(workers, initializer=_set_worker_bank, initargs=(bank, os.getpid())) as pool:
                futures = [pool.submit(_worker_chunk, *job) for job in jobs]
                try:
                    return [_tick(bar, f.result()) for f in futures]
                except BaseException:  # Ctrl-C above all: leaving the `with` would wait for every chunk
                    _stop_workers(pool)
                    raise
        except (OSError, BrokenProcessPool):
            bar.reset()
    return [_tick(bar, render_chunk(bank, *job)) for job in jobs]


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


def _set_worker_bank(bank, parent: int):
    """A worker's start: its bank; Ctrl-C is its parent's to handle; it dies with its parent."""
    global _WORKER_BANK
    _WORKER_BANK = bank
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker waits on a pipe its siblings also hold open, so a parent killed outright
    (SIGKILL) would leave it waiting forever: check twice a second that the parent lives."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Drop the queued chunks and kill the workers now, rather than wait for their chunks.

    A worker killed while it sends its chunk leaves half a message in the result pipe; the
    pool's manager thread would wait for the rest for ever, and Python's exit waits for that
    thread (`xpnet: interrupted`, then a hang). This process holds the pipe's last write end:
    closing it too gives the manager end-of-file, so it marks the pool broken and ends."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    for process in processes:
        process.kill()
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)  # the workers' end
    if writer is not None:
        writer.close()
    pool.shutdown(wait=False, cancel_futures=True)


def _worker_chunk(seed_seq, size, recipe, augment):
    return render_chunk(_WORKER_BANK, seed_seq, size, recipe, augment)


def _stack(results, side) -> dict:
    """Concatenate chunk results into one split's arrays (empty arrays for an empty split)."""
    X = np.concatenate([r[0] for r in results]) if results else np.zeros((0, FRAME * FRAME), np.uint8)
    y = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    return {f"X_{side}": X, f"y_{side}": y}
