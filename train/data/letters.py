"""Synthetic English letters: 26 classes (upper and lower case merged), set in fonts and written by hands.

`load_letters` is the entry point: it reads the set from the cache (`letters_cache`) or
generates it here, chunk by chunk, each chunk drawn by `letters_render` (one affine warp,
stroke weight, blur and noise per sample, framed as `glyph.frame_ink` frames a photo).

Train and test come from disjoint font design families (see `fonts.split_fonts`) and disjoint
synthetic writers (`strokes`), so test accuracy measures reading unseen typefaces and hands.
The test set is made of groups, each reported on its own (`TEST_GROUPS`). Each chunk is drawn from its own child of the
master seed, so the result depends on the seed alone, never on the number of worker
processes. The cache is keyed by every generation parameter.
"""

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace

import numpy as np
from tqdm import tqdm

from xpnet.train.data.dataset import DataSet
from xpnet.train.data.font_packages import HAND, PRINT, package_versions
from xpnet.train.data.fonts import Font, candidate_font_files, find_fonts, split_fonts
from xpnet.train.data.glyph import FRAME
from xpnet.train.data.letters_cache import STALE_TEMP_S, cache_path, read_cache, write_cache
from xpnet.train.data.letters_render import Augment, Recipe, glyph_bank, render_chunk
from xpnet.train.data.strokes import SKELETONS, draw_writers
from xpnet.train.files import remove_stale_temps

VERSION = 3  # bump whenever the generator's output changes, so stale caches are not reused
CLASSES = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
CHUNK = 1000  # samples per seeded chunk; fixed, so results do not depend on the worker count
WRITERS_TRAIN, WRITERS_TEST = 400, 100  # synthetic writers on each side, drawn from different seeds
HAND_SHARE = 0.25  # share of training letters written by the synthetic writers; the rest set in fonts
TEST_GROUPS = (  # (name, share of the test set): each held-out group is reported on its own
    ("printed, unseen font families", 0.4),
    ("handwriting fonts, unseen families", 0.2),
    ("handwriting, unseen writers", 0.2),
    ("low resolution, 7-12 px tall", 0.2),
)


def load_letters(*, seed: int = 0, cache_dir=None, fonts_dir=None, n_train: int = 60000,
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
            "augment": asdict(augment), "font_files": [[p, os.path.getsize(p)] for p in font_files],
            "font_packages": package_versions()}


def describe(seed, n_train, n_test, augment, train_fonts, test_fonts) -> dict:
    """The JSON-ready `info` of a generated set: its parameters and the fonts on each side."""
    return {
        "source": "letters", "version": VERSION, "seed": int(seed),
        "n_train": int(n_train), "n_test": int(n_test), "augment": asdict(augment),
        "fonts_train": [_font_record(f) for f in train_fonts],
        "fonts_test": [_font_record(f) for f in test_fonts],
        "families_train": sorted({f.family for f in train_fonts}),
        "families_test": sorted({f.family for f in test_fonts}),
        "writers": {"train": WRITERS_TRAIN, "test": WRITERS_TEST, "skeletons": list(SKELETONS)},
        "test_groups": _group_ranges(test_fonts, n_test),
    }


def _font_record(font: Font) -> dict:
    """A font as recorded in info."""
    return {"name": font.name, "family": font.family, "kind": font.kind, "path": font.path}


def _group_ranges(test_fonts, n_test) -> list[dict]:
    """Where each held-out group sits in the test set: [start, stop) rows, in TEST_GROUPS order."""
    sizes = _group_sizes(test_fonts, n_test)
    stops = np.cumsum(sizes)
    return [{"name": name, "start": int(stop - n), "stop": int(stop)}
            for (name, _), n, stop in zip(TEST_GROUPS, sizes, stops) if n > 0]


def _group_sizes(test_fonts, n_test) -> list[int]:
    """Rows per group: their shares of n_test, a group with nothing to draw from getting none."""
    shares = np.array([share if _has_sources(i, test_fonts) else 0.0 for i, (_, share) in enumerate(TEST_GROUPS)])
    sizes = np.floor(n_test * shares / shares.sum()).astype(int)
    sizes[int(np.argmax(shares))] += n_test - sizes.sum()
    return [int(n) for n in sizes]


def _has_sources(group: int, test_fonts) -> bool:
    kinds = {f.kind for f in test_fonts}
    return {0: PRINT in kinds, 1: HAND in kinds}.get(group, True)


# --- generation -------------------------------------------------------------------------

def generate(train_fonts, test_fonts, seed, n_train, n_test, augment=Augment(), progress=False,
             workers=None) -> dict:
    """Both splits as uint8 arrays: X (N, 784) and y (N,), train and test from their own fonts and writers."""
    fonts = list(train_fonts) + list(test_fonts)
    n = len(train_fonts)
    train = Recipe(_families(range(n), fonts), draw_writers(np.random.SeedSequence([int(seed), 2]), WRITERS_TRAIN),
                   HAND_SHARE)
    train_jobs = _chunk_jobs([seed, 0], n_train, train, augment)
    test_jobs = [job for g, (recipe, a, size) in enumerate(_test_recipes(test_fonts, n, seed, n_test, augment))
                 for job in _chunk_jobs([seed, 1, g], size, recipe, a)]
    bar = tqdm(total=n_train + n_test, desc="letters", unit="img", disable=not progress)
    results = _run_jobs(glyph_bank(fonts), train_jobs + test_jobs, bar, workers)
    bar.close()
    return {**_stack(results[:len(train_jobs)], "train"), **_stack(results[len(train_jobs):], "test")}


def _test_recipes(test_fonts, offset, seed, n_test, augment) -> list[tuple]:
    """(recipe, augment, size) of each group in TEST_GROUPS, its fonts indexed after the training fonts."""
    ids = {kind: [offset + i for i, f in enumerate(test_fonts) if f.kind == kind] for kind in (PRINT, HAND)}
    everyone = [offset + i for i in range(len(test_fonts))]
    fonts = [None] * offset + list(test_fonts)
    writers = draw_writers(np.random.SeedSequence([int(seed), 3]), WRITERS_TEST)
    sharp, small = replace(augment, lowres_prob=0.0), replace(augment, lowres_prob=1.0, max_lowres_px=12.0)
    recipes = [(Recipe(_families(ids[PRINT], fonts)), sharp), (Recipe(_families(ids[HAND], fonts)), sharp),
               (Recipe([], writers, 1.0), sharp), (Recipe(_families(everyone, fonts), writers, HAND_SHARE), small)]
    return [(r, a, size) for (r, a), size in zip(recipes, _group_sizes(test_fonts, n_test))]


def _chunk_jobs(seed, n, recipe, augment) -> list[tuple]:
    """(seed sequence, size, recipe, augment) per chunk; chunk i's seed depends only on (seed, i)."""
    sizes = [min(CHUNK, n - start) for start in range(0, n, CHUNK)]
    seeds = np.random.SeedSequence([int(x) for x in seed]).spawn(len(sizes))
    return [(s, size, recipe, augment) for s, size in zip(seeds, sizes)]


def _families(font_ids, fonts) -> list[list[int]]:
    """Font indices grouped by design family, so each family is drawn equally often."""
    by_family = {}
    for i in font_ids:
        by_family.setdefault(fonts[i].family, []).append(i)
    return [by_family[name] for name in sorted(by_family)]


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
    """Drop the queued chunks and kill the workers now, rather than wait for their chunks."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public way before 3.14
    for process in processes:
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _worker_chunk(seed_seq, size, recipe, augment):
    return render_chunk(_WORKER_BANK, seed_seq, size, recipe, augment)


def _stack(results, side) -> dict:
    """Concatenate chunk results into one split's arrays (empty arrays for an empty split)."""
    X = np.concatenate([r[0] for r in results]) if results else np.zeros((0, FRAME * FRAME), np.uint8)
    y = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    return {f"X_{side}": X, f"y_{side}": y}
