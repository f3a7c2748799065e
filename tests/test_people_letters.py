"""scripts/people_letters.py, the team's set of pictures as people hand them in: each picture
holds the whole letter, since a letter cut off by its canvas is not what a person hands in."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "people_letters.py"


@pytest.fixture(scope="module")
def people():
    spec = importlib.util.spec_from_file_location("people_letters", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def frame(height: int, width: int) -> np.ndarray:
    """A letter-sized picture whose ink is its four edges: cut anywhere, a side goes missing."""
    ink = np.zeros((height, width))
    ink[:, [0, 1, -2, -1]] = ink[[0, 1, -2, -1], :] = 1.0
    return ink


def both_sides(dark: np.ndarray) -> bool:
    """Whether the ink's leftmost and rightmost columns are each a whole upright side."""
    rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
    full = dark[rows[0]:rows[-1] + 1].mean(axis=0) > 0.8
    return bool(full[cols[0]] and full[cols[-1]])


def test_a_pencil_letter_larger_than_its_canvas_is_handed_in_whole(people, monkeypatch):
    """A 1 px pencil letter is drawn at its own size (up to 220 px) on a canvas of 150-400 px
    a side: where the canvas is the smaller, it grows rather than cut the letter."""
    ink = frame(390, 60)
    monkeypatch.setattr(people, "glyph", lambda *args: ink)
    for seed in range(6):
        img = np.asarray(people.picture("pencil", 0, np.random.default_rng(seed), [], []).convert("L"), np.float32)
        dark = img < img.max() - 40
        rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
        assert (rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) == ink.shape, (seed, img.shape)


def test_a_letter_wider_than_its_canvas_is_handed_in_whole(people, monkeypatch):
    """Set in its canvas at 40-70% of the canvas's height, a wide letter can be wider than it."""
    monkeypatch.setattr(people, "glyph", lambda *args: frame(60, 390))
    monkeypatch.setattr(people, "_underline", lambda canvas, below, rng: canvas)  # the rule runs edge to edge
    for seed in range(6):
        img = np.asarray(people.picture("underline", 0, np.random.default_rng(seed), [], []).convert("L"), np.float32)
        assert both_sides(img < img.max() - 60), seed
