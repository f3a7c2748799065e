"""The letters' corpus: only what pip installs, many design families, synthetic writers, held-out groups."""

import json
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from xpnet.train.data import fonts as F
from xpnet.train.data import load_data, parse_spec
from xpnet.train.data.font_packages import HAND, HELD_OUT, OPEN_LICENCES, PACKAGES, PRINT, VALIDATION, package_fonts
from xpnet.train.data.letters import VERSION, cache_key_params
from xpnet.train.data.letters_groups import TEST_GROUPS, split_validation_fonts, writers
from xpnet.train.data.letters_render import Augment
from xpnet.train.data.strokes import SKELETONS, Writer, draw_writers, write_letter
from xpnet.train.metrics import expected_calibration_error, group_accuracies, group_lines

MPL = Path(matplotlib.get_data_path()).resolve()


@pytest.fixture(scope="module")
def split():
    return F.split_fonts(F.find_fonts())


def test_every_packaged_family_is_open_licensed_and_draws_52_distinct_letters():
    fonts = package_fonts()
    assert {f.slug for f in fonts} == set(PACKAGES)
    first = {}
    for f in fonts:
        assert f.licence in OPEN_LICENCES and Path(f.path).is_file()
        first.setdefault(f.slug, f)
    for f in first.values():
        glyphs = F.render_letters(f.path, f.weight)
        assert glyphs is not None and all(g.max() >= 128 for g in glyphs), f.slug
        assert len({g.tobytes() + str(g.shape).encode() for g in glyphs}) >= F.MIN_DISTINCT, f.slug


def test_a_variable_font_is_drawn_at_each_weight():
    regular, bold = (f for f in package_fonts() if f.slug == "roboto" and "Italic" not in f.path)
    assert (regular.weight, bold.weight) == (400, 700)
    ink = [sum(float(g.sum()) / g.size for g in F.render_letters(f.path, f.weight)) for f in (regular, bold)]
    assert ink[1] > 1.2 * ink[0], "the bold instance must draw heavier strokes"


def test_the_default_corpus_is_only_what_pip_installs_and_holds_30_design_families(split):
    train, test = split
    for f in train + test:
        path = Path(f.path).resolve()
        assert path.is_relative_to(MPL) or any(p.startswith("fontpkg_") for p in path.parts), f.path
    assert len({f.family for f in train}) >= 30
    assert {f.kind for f in train} == {f.kind for f in test} == {PRINT, HAND}


def test_system_fonts_join_only_when_asked(monkeypatch, tmp_path):
    from xpnet.train.data import font_files

    fake = str(tmp_path / "Other.ttf")
    monkeypatch.setattr(font_files, "system_font_files", lambda: [fake])
    assert fake not in font_files.candidate_font_files()
    assert fake in font_files.candidate_font_files(system=True)
    assert parse_spec("letters:system") == ("letters", "system")


def test_a_fonts_folder_that_adds_no_font_is_refused_in_one_line(tmp_path):
    """A folder that adds nothing must not pass for one that did: the user would believe their
    fonts were in the letters."""
    from xpnet.train.data.dataset import DataError

    (tmp_path / "empty").mkdir()
    (tmp_path / "a.ttf").write_bytes(b"")
    (tmp_path / "copies").mkdir()
    (tmp_path / "copies" / "DejaVuSans.ttf").write_bytes((MPL / "fonts" / "ttf" / "DejaVuSans.ttf").read_bytes())
    cases = {"empty": "holds no .ttf/.otf/.ttc files", "a.ttf": "is a file", "copies": "no font in .* adds a design"}
    for folder, why in cases.items():
        with pytest.raises(DataError, match=why):
            load_data(f"letters:{tmp_path / folder}", cache_dir=tmp_path / "cache", n_train=100, n_test=100,
                      progress=False)


def test_held_out_families_are_never_trained_on(split):
    train, test = split
    assert not {f.family for f in train} & {f.family for f in test}
    held = {F.design_family(f.family) for f in package_fonts() if f.slug in HELD_OUT}
    assert held | {"DejaVu Serif"} == {f.family for f in test}


def test_the_validation_designs_and_writers_are_neither_trained_nor_tested_on(split):
    train, val = split_validation_fonts(split[0])
    families = [{f.family for f in side} for side in (train, val, split[1])]
    assert families[1] == {F.design_family(f.family) for f in package_fonts() if f.slug in VALIDATION}
    assert not families[0] & families[1] and not families[1] & families[2]
    assert {f.kind for f in val} == {PRINT, HAND}  # a printed and a handwriting group to validate on
    sides = {side: set(writers(0, side, 100)) for side in ("train", "test", "validation")}
    assert not sides["validation"] & (sides["train"] | sides["test"])


def test_writers_are_reproducible_and_the_test_writers_are_new():
    a, b = (draw_writers(np.random.SeedSequence([0, 2]), 50) for _ in range(2))
    assert a == b and all(isinstance(w, Writer) for w in a)
    test = draw_writers(np.random.SeedSequence([0, 3]), 50)
    assert not set(a) & set(test)
    assert {w.skeleton for w in a + test} == set(range(len(SKELETONS)))


@pytest.mark.parametrize("skeleton", range(len(SKELETONS)))
def test_every_skeleton_writes_all_52_letters(skeleton):
    writer = Writer(skeleton, slant=0.2, width=1.0, pen=0.06, pressure=0.3, wander=0.04, seed=7)
    images = [write_letter(writer, i, np.random.default_rng(i)) for i in range(52)]
    assert all(im.dtype == np.uint8 and im.max() == 255 and min(im.shape) >= 3 for im in images)
    again = write_letter(writer, 5, np.random.default_rng(5))
    np.testing.assert_array_equal(again, images[5])


def test_a_pencil_writes_one_pixel_lines():
    writer = Writer(0, slant=0.0, width=1.0, pen=0.1, pressure=0.5, wander=0.02, seed=1)
    thin = write_letter(writer, 8, np.random.default_rng(0), canvas=150, pen_px=1.0)  # "I"
    assert thin.shape[0] >= 140 and (thin > 0).sum() < 3 * thin.shape[0]


def test_test_groups_partition_the_held_out_set_and_are_reported(tmp_path):
    data = load_data("letters", seed=0, cache_dir=tmp_path, n_train=300, n_test=200, progress=False)
    groups = json.loads(json.dumps(data.info["test_groups"]))
    assert [g["name"] for g in groups] == [name for name, _ in TEST_GROUPS]
    assert groups[0]["start"] == 0 and groups[-1]["stop"] == 200
    assert all(a["stop"] == b["start"] for a, b in zip(groups, groups[1:]))
    rows = group_accuracies(data.y_test, data.y_test, groups)
    assert [r["accuracy"] for r in rows] == [1.0] * len(groups)
    assert all(name in line for (name, _), line in zip(TEST_GROUPS, group_lines(rows)))
    assert len(data.y_val) == data.info["n_validation"] == 100  # half the test set, drawn alike
    assert data.info["families_validation"] and not set(data.info["families_validation"]) & (
        set(data.info["families_train"]) | set(data.info["families_test"]))


def test_the_low_resolution_group_is_drawn_small_and_the_other_groups_sharp():
    """A held-out group is what it says: the small letters drawn 7-12 px tall and scaled back
    up (every one of them), the other groups never; and drawing small loses the detail a
    letter that size cannot hold."""
    from types import SimpleNamespace

    from xpnet.train.data.letters_groups import held_out_recipes
    from xpnet.train.data.letters_render import _small, draw_augment

    side = [SimpleNamespace(kind=PRINT, family="P"), SimpleNamespace(kind=HAND, family="H")]
    recipes = held_out_recipes(side, 0, writers(0, "test", 3), 100, Augment())
    assert [name for name, _ in TEST_GROUPS][-1].startswith("low resolution")
    assert [a.lowres_prob for _, a, _ in recipes] == [0.0, 0.0, 0.0, 1.0]
    heights = draw_augment(np.random.default_rng(0), recipes[-1][1], 500)["lowres"]
    assert heights.min() >= 7.0 and heights.max() <= 12.0
    assert not draw_augment(np.random.default_rng(0), recipes[0][1], 500)["lowres"].any()

    sharp = np.zeros((28, 28), np.uint8)
    sharp[4:24, 6:8] = sharp[4:6, 6:20] = sharp[13:15, 6:18] = 255  # an F with 2 px strokes
    small = _small(sharp, 8.0)
    assert np.abs(small.astype(float) - sharp).mean() > 10, "drawing 8 px tall must blur a 2 px stroke"
    assert (small > 0).sum() > 1.3 * (sharp > 0).sum(), "and spread its ink"


def test_the_cache_key_names_this_generator_and_the_font_packages():
    import PIL

    params = cache_key_params(0, 10, 10, Augment(), [])
    assert params["version"] == VERSION >= 2
    assert set(params["font_packages"]) == set(PACKAGES)
    assert params["renderer"]["pillow"] == PIL.__version__ and params["renderer"]["numpy"] == np.__version__


# A small draw's digest, recorded with the renderer below; a change to the generator's pixels
# must bump VERSION (so old caches and runs are not taken for the new letters) and record anew.
PINNED_DRAW = {"version": 5, "renderer": {"numpy": "2.4.6", "pillow": "13.0.0", "freetype": "2.14.3"},
               "sha256": "abb99dc7e7628f6ae940db578cc9c3501c471da8963829ff105b66066aa49017"}


def test_the_same_version_and_seed_draw_the_same_letters_as_when_pinned(tmp_path):
    import hashlib

    from xpnet.train.data.letters import renderer

    if renderer() != PINNED_DRAW["renderer"]:
        pytest.skip(f"the digest was recorded with {PINNED_DRAW['renderer']}; this machine renders with {renderer()}")
    data = load_data("letters", seed=0, cache_dir=tmp_path, n_train=300, n_test=200, progress=False)
    digest = hashlib.sha256()
    for a in (data.X_train, data.y_train, data.X_test, data.y_test, data.X_val, data.y_val):
        a = np.ascontiguousarray(a)
        digest.update(str((a.dtype, a.shape)).encode())
        digest.update(a.tobytes())
    assert (VERSION, digest.hexdigest()) == (PINNED_DRAW["version"], PINNED_DRAW["sha256"]), \
        ("the letters' pixels changed (the generator, a pinned font package or the recipe): bump VERSION in "
         "train/data/letters.py, so old caches and runs are not taken for the new letters, and record the digest")


def test_expected_calibration_error_is_zero_when_stated_probabilities_hold_and_large_when_overconfident():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.3, 1.0, 200_000)
    honest = rng.random(confidence.size) < confidence  # right exactly as often as stated
    assert expected_calibration_error(confidence, honest) < 0.01
    overconfident = rng.random(confidence.size) < 0.5
    assert expected_calibration_error(np.full(confidence.size, 0.99), overconfident) == pytest.approx(0.49, abs=0.01)
    rows = group_accuracies(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), [{"name": "g", "start": 0, "stop": 4}],
                            np.array([0.9, 0.8, 0.7, 0.6]))
    assert rows[0]["accuracy"] == 0.75 and 0 <= rows[0]["ece"] <= 1 and "ECE" in group_lines(rows)[0]
