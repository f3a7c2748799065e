"""The synthetic letters: deterministic, split by font design, cached, and learnable."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from xpnet.train.data import DataError, DataSet, load_data
from xpnet.train.data import letters as L
from xpnet.train.data import letters_groups as G
from xpnet.train.data.font_files import candidate_font_files
from xpnet.train.data.fonts import Font, design_family, find_fonts, font_problem, split_fonts
from xpnet.train.data.glyph import centre_of_mass
from xpnet.train.data.letters_cache import cache_path
from xpnet.train.data.letters_render import Augment

MPL_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SMALL = dict(n_train=520, n_test=260, progress=False)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("letters-cache")


@pytest.fixture(scope="module")
def small(cache) -> DataSet:
    return load_data("letters", seed=0, cache_dir=cache, **SMALL)


@pytest.fixture(scope="module")
def fonts() -> list[Font]:
    return find_fonts()


def test_shapes_dtypes_and_ranges(small):
    assert small.X_train.shape == (520, 784) and small.X_test.shape == (260, 784)
    assert small.X_train.dtype == np.float32 and small.y_train.dtype == np.int64
    assert small.X_train.min() >= 0 and small.X_train.max() <= 1
    assert small.classes == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ") and small.image_shape == (28, 28)
    assert set(np.unique(small.y_train)) == set(range(26))
    assert small.y_test.min() >= 0 and small.y_test.max() <= 25


def test_info_is_json_and_records_the_fonts_of_each_side(small):
    info = json.loads(json.dumps(small.info))
    assert info["source"] == "letters" and info["seed"] == 0
    assert info["fonts_train"] and info["fonts_test"]
    assert not set(info["families_train"]) & set(info["families_test"])
    assert {f["family"] for f in info["fonts_test"]} == set(info["families_test"])


def test_samples_are_bright_letters_centred_on_a_dark_background(small):
    images = small.X_train.reshape(-1, 28, 28)
    centre = images[:, 4:24, 4:24].mean(axis=(1, 2))
    border = np.concatenate([images[:, 0], images[:, -1]], axis=1).mean(axis=1)
    assert (centre > border).mean() > 0.99
    com = np.array([centre_of_mass(np.clip(im - np.median(im), 0, None)) for im in images[:100]])
    assert np.abs(com.mean(axis=0) - 14).max() < 1


def test_same_seed_gives_identical_arrays_different_seed_differs(small, tmp_path):
    again = load_data("letters", seed=0, cache_dir=tmp_path / "fresh", **SMALL)
    assert again.info["cache_hit"] is False
    np.testing.assert_array_equal(again.X_train, small.X_train)
    np.testing.assert_array_equal(again.y_test, small.y_test)
    other = load_data("letters", seed=1, cache_dir=tmp_path / "fresh", **SMALL)
    assert not np.array_equal(other.X_train, small.X_train)


def test_result_does_not_depend_on_the_number_of_workers(fonts):
    train, test = split_fonts(fonts)
    one = L.generate(train, test, seed=5, n_train=1100, n_test=200, workers=1)
    two = L.generate(train, test, seed=5, n_train=1100, n_test=200, workers=2)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])


def test_cache_hit_is_identical_and_a_changed_parameter_misses(small, cache):
    hit = load_data("letters", seed=0, cache_dir=cache, **SMALL)
    assert hit.info["cache_hit"] is True and hit.info["cache_file"] == small.info["cache_file"]
    np.testing.assert_array_equal(hit.X_train, small.X_train)
    np.testing.assert_array_equal(hit.y_train, small.y_train)
    miss = load_data("letters", seed=0, cache_dir=cache, n_train=530, n_test=260, progress=False)
    assert miss.info["cache_hit"] is False and miss.info["cache_file"] != small.info["cache_file"]
    assert not list(Path(cache).glob("*.tmp")), "atomic write must not leave temp files"


def test_any_generation_parameter_changes_the_cache_key():
    files = candidate_font_files()
    base = L.cache_key_params(0, 100, 10, Augment(), files)
    changed = [L.cache_key_params(1, 100, 10, Augment(), files),
               L.cache_key_params(0, 101, 10, Augment(), files),
               L.cache_key_params(0, 100, 10, Augment(max_noise=0.1), files),
               L.cache_key_params(0, 100, 10, Augment(), files[:-1])]
    paths = {cache_path("/c", p) for p in [base] + changed}
    assert len(paths) == 5


def test_two_environments_with_one_matplotlib_share_the_cache(monkeypatch, tmp_path):
    """A venv for training and one for the tests hold the same matplotlib fonts at other paths:
    keyed by their place inside matplotlib, they share one cache; the user's own files do not."""
    import matplotlib
    source = Path(candidate_font_files()[0])
    keys = []
    for env in ("venv-a", "venv-b"):
        data = tmp_path / env / "mpl-data"
        (data / "fonts" / "ttf").mkdir(parents=True)
        (tmp_path / env / "mine").mkdir()
        copy, mine = data / "fonts" / "ttf" / source.name, tmp_path / env / "mine" / source.name
        copy.write_bytes(source.read_bytes())
        mine.write_bytes(source.read_bytes())
        monkeypatch.setattr(matplotlib, "get_data_path", lambda data=data: str(data))
        keys.append((cache_path("/c", L.cache_key_params(0, 100, 10, Augment(), [str(copy)])),
                     cache_path("/c", L.cache_key_params(0, 100, 10, Augment(), [str(copy), str(mine)]))))
    assert keys[0][0] == keys[1][0]  # matplotlib's fonts, each in its own environment: one key
    assert keys[0][1] != keys[1][1]  # the same file of the user's own, in two places: two keys


@pytest.mark.parametrize("module, name, value", [(L, "WRITERS_TRAIN", 401), (G, "HAND_SHARE", 0.3),
                                                 (G, "TRAIN_HAND_SHARE", 0.3), (G, "VALIDATION_SHARE", 0.4),
                                                 (G, "WRITERS_TEST", 99)])
def test_the_recipe_shares_and_writer_counts_change_the_cache_key(monkeypatch, module, name, value):
    files = candidate_font_files()
    base = cache_path("/c", L.cache_key_params(0, 100, 10, Augment(), files))
    monkeypatch.setattr(module, name, value)
    assert cache_path("/c", L.cache_key_params(0, 100, 10, Augment(), files)) != base


def test_damaged_cache_file_is_regenerated(small, tmp_path):
    first = load_data("letters", seed=0, cache_dir=tmp_path, **SMALL)
    Path(first.info["cache_file"]).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="is damaged"):
        again = load_data("letters", seed=0, cache_dir=tmp_path, **SMALL)
    assert again.info["cache_hit"] is False
    np.testing.assert_array_equal(again.X_train, small.X_train)


def test_unwritable_cache_warns_and_still_returns_the_data(tmp_path, small):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not cache"):
        ds = load_data("letters", seed=0, cache_dir=blocker / "cache", **SMALL)
    np.testing.assert_array_equal(ds.X_train, small.X_train)


def test_a_killed_writers_old_temp_is_swept_and_a_fresh_one_is_left_to_its_writer(small, tmp_path):
    tmp_path.joinpath("notes.txt").write_text("not ours")
    old, fresh = tmp_path / ".letters-x.npz.123.ab.tmp", tmp_path / ".letters-y.npz.456.cd.tmp"
    legacy = tmp_path / "letters-zq3k9.tmp"  # how writers before atomic_write named theirs
    for temp in (old, fresh, legacy):
        temp.write_bytes(b"half a cache")
    hour_ago = time.time() - 3600
    for temp in (old, legacy):
        os.utime(temp, (hour_ago, hour_ago))
    load_data("letters", seed=0, cache_dir=tmp_path, **SMALL)
    assert not old.exists() and not legacy.exists()
    assert fresh.exists()  # another process may be writing it right now
    assert tmp_path.joinpath("notes.txt").exists()


def test_sigkill_while_writing_the_cache_leaves_the_old_file_or_a_whole_new_one(small, tmp_path):
    """A real process rewrites a 30 MB cache in a loop, saying when each write to disk begins;
    it is killed a few milliseconds into its second write, four times: the file on disk must
    always load whole."""
    path = tmp_path / "letters-kill.npz"
    script = ("import numpy as np; from pathlib import Path; import xpnet.train.data.letters_cache as C\n"
              "real = C.atomic_write\n"
              "def announced(*args, **kwargs):\n"
              "    print('writing', flush=True)\n"
              "    return real(*args, **kwargs)\n"
              "C.atomic_write = announced\n"
              "X = np.arange(30_000_000, dtype=np.uint32).astype(np.uint8)\n"
              f"while True: C.write_cache(Path({str(path)!r}), {{'X_train': X}}, {{}})\n")
    rng = np.random.default_rng(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == proc.stdout.readline() == "writing\n"  # the first write is done
        time.sleep(rng.uniform(0.0, 0.03))  # a write to disk and its fsync take ~70 ms here
        proc.kill()
        proc.wait()
        proc.stdout.close()
        with np.load(path) as f:  # a torn file would fail to load or come back short
            assert f["X_train"].shape == (30_000_000,) and f["X_train"][-1] == (30_000_000 - 1) % 256
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert 1 <= len(temps) <= 4  # killed mid-write, each kill leaves at most one; old ones are swept (above)


def test_cache_dir_defaults_to_xpnet_cache_env(monkeypatch, tmp_path):
    monkeypatch.setenv("XPNET_CACHE", str(tmp_path))
    ds = load_data("letters", seed=0, n_train=30, n_test=0, progress=False)
    assert Path(ds.info["cache_file"]).parent == tmp_path
    assert ds.X_test is None and ds.y_test is None


def test_missing_fonts_dir_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="fonts folder"):
        load_data("letters", fonts_dir=str(tmp_path / "nope"), cache_dir=tmp_path, **SMALL)


def test_a_font_known_by_name_is_kept_once(tmp_path):
    from xpnet.train.data.fonts import usable_fonts

    shutil.copy(MPL_FONTS / "cmss10.ttf", tmp_path / "extra.ttf")
    known = candidate_font_files()
    assert [f.name for f in usable_fonts(known + [str(tmp_path / "extra.ttf")])] == [f.name for f in usable_fonts(known)]
    with pytest.raises(DataError, match="adds a design"):  # a folder of nothing but copies adds nothing
        find_fonts(tmp_path)


def test_no_design_family_is_on_both_sides_of_the_split(fonts):
    train, test = split_fonts(fonts)
    assert train and test
    assert not {f.family for f in train} & {f.family for f in test}
    assert "DejaVu Serif" in {f.family for f in test}
    assert {"DejaVu Sans", "DejaVu Sans Mono", "Times/STIX", "Computer Modern"} <= {f.family for f in train}


def test_split_of_many_families_holds_out_a_fifth_deterministically():
    fonts = [Font(f"/f/{i}-{style}.ttf", f"Fam{i} {style}", f"Fam{i}")
             for i in range(10) for style in ("Regular", "Bold")]
    train, test = split_fonts(fonts)
    assert len({f.family for f in test}) == 2 and len({f.family for f in train}) == 8
    assert not {f.family for f in train} & {f.family for f in test}
    assert split_fonts(list(reversed(fonts)))[1] == list(reversed(test))


def test_metric_clones_share_a_design_family():
    times = design_family("STIXGeneral")
    assert design_family("Liberation Serif Bold") == design_family("TeX Gyre Termes") == times
    assert design_family("Arial Narrow") == design_family("Nimbus Sans L") == design_family("Helvetica")
    assert design_family("Courier New") == design_family("Liberation Mono")
    assert design_family("cmr10 Regular", "/x/cmr10.ttf") == "Computer Modern"
    assert design_family("DejaVu Sans Mono Bold") != design_family("DejaVu Sans Bold")
    assert design_family("Noto Sans Condensed Bold") == "Noto Sans"


@pytest.mark.parametrize("name, reason", [
    ("LastResortHE-Regular.ttf", "same shape"),  # a placeholder box for every letter
    ("STIXSizOneSymReg.ttf", "no ink"),  # big delimiters only
    ("cmsy10.ttf", "symbol"),  # math symbols where letters should be
    ("cmex10.ttf", "symbol"),
])
def test_fonts_that_do_not_draw_letters_are_rejected(name, reason):
    assert reason in font_problem(str(MPL_FONTS / name))


def test_a_text_font_passes():
    assert font_problem(str(MPL_FONTS / "DejaVuSans.ttf")) is None


def test_letters_are_learnable_on_unseen_font_families(small):
    """Nearest class mean, trained on some families, must read a held-out family well above chance."""
    means = np.stack([small.X_train[small.y_train == k].mean(axis=0) for k in range(26)])
    distances = ((small.X_test[:, None, :] - means[None]) ** 2).sum(axis=-1)
    accuracy = (distances.argmin(axis=1) == small.y_test).mean()
    assert accuracy > 0.25, f"held-out accuracy {accuracy:.2f} (chance is 0.04)"
