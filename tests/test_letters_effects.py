"""The letters' camera-and-page effects: elastic bends, uneven light, ruled lines, JPEG."""

from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageFilter

from xpnet.train.data.letters_effects import MESH, draw_effects, jpeg, light_and_lines
from xpnet.train.data.letters_render import (IDENTITY, Augment, Recipe, _master_glyphs, _rank_filter, draw_augment,
                                             finish, render_chunk, warp_glyph)

DEJAVU = str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
EFFECTS = ("elastic", "shadow", "line", "jpeg")
OFF = Augment(**{f"{k}_prob": 0.0 for k in EFFECTS})
QUIET = replace(OFF, max_noise=0.0, max_background=0.0, min_peak=1.0, lowres_prob=0.0)  # effects stand out


@pytest.fixture(scope="module")
def bank():
    return [_master_glyphs(DEJAVU)]


def chunk(bank, augment, seed=3, size=200):
    X, y = render_chunk(bank, np.random.SeedSequence(seed), size, Recipe([[0]]), augment)
    return X.reshape(size, 28, 28).astype(np.float32) / 255, y


def test_every_effect_on_is_the_same_for_a_seed_and_differs_for_another(bank):
    on = Augment(**{f"{k}_prob": 1.0 for k in EFFECTS})
    a, b, c = chunk(bank, on), chunk(bank, on), chunk(bank, on, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_an_effect_with_probability_zero_changes_nothing():
    """With every probability 0 the draws switch each effect off and finish is the plain
    contrast-and-noise formula, pixel for pixel."""
    rng = np.random.default_rng(0)
    draws = draw_augment(rng, OFF, 50)
    assert not draws["elastic"].any() and not draws["shadow"].any()
    assert not draws["line"].any() and not draws["jpeg"].any()
    images = rng.integers(0, 256, (50, 28, 28)).astype(np.uint8)
    got = finish(images, draws, np.random.default_rng(1))
    peak, bg, sigma = (draws[k].astype(np.float32)[:, None, None] for k in ("peak", "background", "noise"))
    x = bg + (peak - bg) * (images / np.float32(255)) + sigma * np.random.default_rng(1).standard_normal(
        images.shape, dtype=np.float32)
    np.testing.assert_array_equal(got, np.round(np.clip(x, 0, 1) * 255).astype(np.uint8))


def test_draws_follow_each_probability(bank):
    draws = draw_effects(np.random.default_rng(0), replace(OFF, shadow_prob=0.5, jpeg_prob=0.25), 4000)
    assert abs((draws["shadow"] > 0).mean() - 0.5) < 0.03 and abs((draws["jpeg"] > 0).mean() - 0.25) < 0.03
    assert ((draws["jpeg"] == 0) | ((draws["jpeg"] >= 30) & (draws["jpeg"] <= 95))).all()


def test_elastic_bends_the_letter_but_keeps_it(bank):
    plain, y = chunk(bank, QUIET)
    bent, y2 = chunk(bank, replace(QUIET, elastic_prob=1.0))
    assert (y == y2).all()
    changed = np.abs(bent - plain).max(axis=(1, 2)) > 0.1
    assert changed.mean() > 0.8  # the displacement's strength is drawn from 0 up, so a few barely move
    corr = [np.corrcoef(p.ravel(), b.ravel())[0, 1] for p, b in zip(plain, bent)]
    assert np.median(corr) > 0.6  # bent, not replaced by something else


def test_a_shadow_darkens_one_side_and_shows_in_the_background(bank):
    plain, _ = chunk(bank, QUIET)
    shaded, _ = chunk(bank, replace(QUIET, shadow_prob=1.0, max_shadow=0.5))
    ink = plain > 0.5
    dimmer = [(shaded[i][ink[i]] < plain[i][ink[i]] - 0.05).mean() for i in range(len(plain))]
    assert np.mean(np.array(dimmer) > 0.05) > 0.3  # many letters lose light on part of their ink
    background = np.where(ink, 0, shaded - plain).max(axis=(1, 2))
    assert np.mean(background > 0.02) > 0.3


def test_light_is_a_smooth_gradient_between_full_and_shadowed():
    d = {"shadow": np.array([0.5]), "shadow_angle": np.array([0.0]), "shadow_edge": np.array([0.0]),
         "shadow_soft": np.array([1.0]), "line": np.zeros(1), "line_angle": np.zeros(1),
         "line_y": np.array([25.0]), "line_width": np.ones(1), "line_x": np.array([[0.0, 28.0]])}
    _, light = light_and_lines(np.zeros((1, 28, 28), np.float32), d)
    row = light[0, 14]
    assert row[0] > 0.95 and row[-1] < 0.55  # lit on the left, in shadow on the right
    assert (np.diff(row) <= 1e-6).all() and np.abs(np.diff(row)).max() < 0.1  # smooth, no step


def test_a_ruled_line_is_a_faint_horizontal_band(bank):
    plain, _ = chunk(bank, QUIET)
    lined, _ = chunk(bank, replace(QUIET, line_prob=1.0, min_line=0.3, max_line=0.3))
    added = np.clip(lined - plain, 0, None)
    rows = added.sum(axis=2)  # (N, 28): where the line adds light
    assert np.mean(rows.sum(axis=1) > 0.3 * 6) > 0.9  # a line at least 6 px long beside the ink, nearly always
    band = np.sort(rows, axis=1)[:, -4:].sum(axis=1) / np.maximum(rows.sum(axis=1), 1e-6)
    assert np.median(band) > 0.9  # in a band of a few rows (it tilts up to 4 degrees), not a wash
    assert added.max() <= 0.3 + 1 / 255  # faint: never brighter than its level


def test_jpeg_adds_artefacts_at_low_quality_and_fewer_at_high():
    X = np.zeros((4, 28, 28), np.uint8)
    X[:, 6:22, 12:16] = 220  # a bar with sharp edges: ringing shows around it
    noisy = jpeg(X, np.array([10, 10, 95, 0]))
    err = np.abs(noisy.astype(int) - X).mean(axis=(1, 2))
    assert err[0] > err[2] > 0 and err[3] == 0
    assert (noisy[0] == noisy[1]).all()  # the codec itself is deterministic


def test_an_elastic_mesh_that_moves_nothing_is_the_affine_warp(bank):
    """The mesh's quads are the affine warp's own corners in PIL's order: a field too small to
    move anything draws the sample the affine transform draws, so only the field bends it."""
    warp = dict(IDENTITY, angle=0.2, shear=0.1, scale=0.9, stretch=1.3, dx=1.0)
    tiny = np.zeros((2, MESH + 1, MESH + 1))
    tiny[0, 0, 0] = 1e-9  # not zero, so the mesh path is taken
    for glyph in bank[0][:10]:
        plain, meshed = warp_glyph(glyph, **warp), warp_glyph(glyph, **warp, elastic=tiny)
        assert np.abs(plain.astype(int) - meshed).max() <= 2


@pytest.mark.parametrize("size, pick, pil", [(3, np.maximum, ImageFilter.MaxFilter),
                                             (5, np.maximum, ImageFilter.MaxFilter),
                                             (3, np.minimum, ImageFilter.MinFilter)])
def test_stroke_weight_filters_give_pils_pixels(size, pick, pil):
    """The generator's own max/min filter must draw exactly what PIL's rank filter drew, edges
    included, or the letters would change under the same version and seed."""
    rng = np.random.default_rng(0)
    for shape in ((56, 56), (7, 13)):
        image = (rng.random(shape) * 255).astype(np.uint8)
        np.testing.assert_array_equal(_rank_filter(image, size, pick),
                                      np.asarray(Image.fromarray(image).filter(pil(size))))
