"""The letters' held-out sides: the test set's groups, and a validation set drawn like it.

Both are made of groups (TEST_GROUPS), each with its own sources: printed letters in font
families training never saw, handwriting-style fonts likewise, letters by synthetic writers
training never saw, and letters drawn small and scaled up. The test set's sources are the
held-out families and writers (fonts.split_fonts); the validation set's are others again:
the font packages' VALIDATION families and writers from their own seed. So the temperature
that calibrates the probabilities (train/calibration.py) is fitted on designs and hands as
new to the network as the test set's, without touching the test set.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xpnet.train.data.font_packages import HAND, PRINT, VALIDATION, package_fonts
from xpnet.train.data.fonts import design_family
from xpnet.train.data.letters_render import Recipe
from xpnet.train.data.strokes import draw_writers

TEST_GROUPS = (  # (name, share of the test set): each held-out group is reported on its own
    ("printed, unseen font families", 0.4),
    ("handwriting fonts, unseen families", 0.2),
    ("handwriting, unseen writers", 0.2),
    ("low resolution, 7-12 px tall", 0.2),
)
HAND_SHARE = 0.25  # share of the held-out low-resolution letters written by synthetic writers; the rest set in fonts
# Share of the training letters written by the synthetic writers. 0.4 rather than 0.25 read the
# unseen writers 1.6-2.9 points better on four seeds, the small letters about as well, and the
# handwriting fonts (designs, not hands) up to a point worse (docs/letters.md).
TRAIN_HAND_SHARE = 0.4
WRITERS_TEST, WRITERS_VALIDATION = 100, 100  # writers on each held-out side, each side from its own seed
VALIDATION_SHARE = 0.5  # validation samples per test sample
WRITER_SEEDS = {"train": 2, "test": 3, "validation": 4}  # the writers' seed sequence: [seed, this]


def recipe_params(writers_train: int) -> dict:
    """The recipe's numbers above, for the letters cache key: a cache drawn under other shares
    or writer counts is other data, even where the generator's VERSION was not bumped."""
    return {"groups": [list(g) for g in TEST_GROUPS], "hand_share": [TRAIN_HAND_SHARE, HAND_SHARE],
            "validation_share": VALIDATION_SHARE,
            "writers": [writers_train, WRITERS_TEST, WRITERS_VALIDATION], "writer_seeds": WRITER_SEEDS}


def split_validation_fonts(train_fonts) -> tuple[list, list]:
    """(fonts to train on, fonts to validate on): the VALIDATION families leave training."""
    held = {design_family(f.family) for f in package_fonts() if f.slug in VALIDATION}
    return ([f for f in train_fonts if f.family not in held], [f for f in train_fonts if f.family in held])


def writers(seed: int, side: str, count: int):
    """The synthetic writers of one side (train, test or validation), from that side's seed."""
    return draw_writers(np.random.SeedSequence([int(seed), WRITER_SEEDS[side]]), count)


def group_sizes(side_fonts, n: int) -> list[int]:
    """Rows per group: their shares of n, a group with nothing to draw from getting none."""
    kinds = {f.kind for f in side_fonts}
    has = {0: PRINT in kinds, 1: HAND in kinds}
    shares = np.array([share if has.get(i, True) else 0.0 for i, (_, share) in enumerate(TEST_GROUPS)])
    sizes = np.floor(n * shares / shares.sum()).astype(int)
    sizes[int(np.argmax(shares))] += n - sizes.sum()
    return [int(k) for k in sizes]


def group_ranges(side_fonts, n: int) -> list[dict]:
    """Where each group sits in a held-out side: [start, stop) rows, in TEST_GROUPS order."""
    sizes = group_sizes(side_fonts, n)
    stops = np.cumsum(sizes)
    return [{"name": name, "start": int(stop - k), "stop": int(stop)}
            for (name, _), k, stop in zip(TEST_GROUPS, sizes, stops) if k > 0]


def held_out_recipes(side_fonts, offset: int, side_writers, n: int, augment) -> list[tuple]:
    """(recipe, augment, size) of each group of a held-out side, its fonts indexed from `offset`
    in the glyph bank."""
    ids = {kind: [offset + i for i, f in enumerate(side_fonts) if f.kind == kind] for kind in (PRINT, HAND)}
    everyone = [offset + i for i in range(len(side_fonts))]
    fonts = [None] * offset + list(side_fonts)
    sharp, small = replace(augment, lowres_prob=0.0), replace(augment, lowres_prob=1.0, max_lowres_px=12.0)
    recipes = [(Recipe(families(ids[PRINT], fonts)), sharp), (Recipe(families(ids[HAND], fonts)), sharp),
               (Recipe([], side_writers, 1.0), sharp),
               (Recipe(families(everyone, fonts), side_writers, HAND_SHARE), small)]
    return [(r, a, size) for (r, a), size in zip(recipes, group_sizes(side_fonts, n))]


def families(font_ids, fonts) -> list[list[int]]:
    """Font indices grouped by design family, so each family is drawn equally often."""
    by_family = {}
    for i in font_ids:
        by_family.setdefault(fonts[i].family, []).append(i)
    return [by_family[name] for name in sorted(by_family)]
