"""Spec parsing, load_data's arguments, sample capping, and the npz source."""

import numpy as np
import pytest

from xpnet.train.data import SCHEMES, DataError, DataSet, load_data, parse_spec
from xpnet.train.data.spec import cap_samples


@pytest.mark.parametrize("spec, expected", [
    ("letters", ("letters", None)),
    ("idx:/data/mnist", ("idx", "/data/mnist")),
    ("emnist-letters:~/emnist", ("emnist-letters", "~/emnist")),
    ("folder:my pics", ("folder", "my pics")),
    ("npz:C:/data/circle.npz", ("npz", "C:/data/circle.npz")),  # only the first colon splits
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


def test_unknown_scheme_lists_every_valid_one():
    with pytest.raises(DataError) as e:
        load_data("mnist")
    message = str(e.value)
    assert "mnist" in message and "\n" not in message
    for usage in SCHEMES.values():
        assert usage in message


@pytest.mark.parametrize("spec, fragment", [("idx:", "needs a path"), ("npz: ", "needs a path")])
def test_malformed_specs(spec, fragment):
    with pytest.raises(DataError, match=fragment):
        parse_spec(spec)


@pytest.mark.parametrize("sizes", [dict(n_train=0), dict(n_test=-1), dict(n_train=2.5), dict(seed=-1),
                                   dict(seed=None), dict(seed="x"), dict(seed=True), dict(seed=float("nan")),
                                   dict(n_train="100"), dict(n_test=float("inf"))])
def test_bad_sizes_and_seed(sizes):
    """Refused in one line naming the argument, never int()'s TypeError or ValueError."""
    name = next(iter(sizes))
    with pytest.raises(DataError, match=f"^{name} must be a whole number"):
        load_data("letters", **sizes)


def test_whole_floats_and_numpy_integers_are_sizes_and_seeds():
    from xpnet.train.data.spec import _check_sizes
    _check_sizes(np.int64(10), 2.0, np.uint32(3))  # as a config file or an array may hand them over


def test_cap_samples_keeps_a_seeded_ordered_subset():
    X = np.arange(20, dtype=np.float32)[:, None]
    ds = DataSet(X, np.arange(20), X[:5], np.arange(5), classes=None, image_shape=None)
    a, b = cap_samples(ds, 8, 10, seed=1), cap_samples(ds, 8, 10, seed=1)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert len(a.y_train) == 8 and np.all(np.diff(a.y_train) > 0)
    assert a.X_test is ds.X_test and cap_samples(ds, 20, 5, seed=1) is ds
    assert not np.array_equal(cap_samples(ds, 8, 10, seed=2).y_train, a.y_train)


# --- npz ----------------------------------------------------------------------------------

def save(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_classification_with_test_split(tmp_path):
    rng = np.random.default_rng(0)
    spec = save(tmp_path, X=rng.random((30, 4)), y=np.arange(30) % 3,
                X_test=rng.random((6, 4)), y_test=np.arange(6) % 4)
    ds = load_data(spec)
    assert ds.X_train.dtype == np.float32 and ds.X_train.shape == (30, 4)
    assert ds.y_train.dtype == np.int64 and ds.classes == ("0", "1", "2", "3")
    assert ds.X_test.shape == (6, 4) and ds.image_shape is None


def test_npz_regression_with_one_dimensional_x(tmp_path):
    r = np.linspace(0.1, 1, 25)
    ds = load_data(save(tmp_path, X=r, y=np.pi * r**2))
    assert ds.X_train.shape == (25, 1) and ds.classes is None
    assert ds.y_train.dtype == np.float32 and ds.y_train.shape == (25,)
    assert ds.X_test is None and ds.info["task"] == "regression"


def test_npz_multi_target_regression_and_image_x(tmp_path):
    ds = load_data(save(tmp_path, X=np.zeros((4, 28, 28), np.uint8), y=np.ones((4, 2))))
    assert ds.X_train.shape == (4, 784) and ds.image_shape == (28, 28) and ds.y_train.shape == (4, 2)


def test_npz_own_class_names(tmp_path):
    names = np.array(["cat", "dog"])
    ds = load_data(save(tmp_path, X=np.zeros((3, 2)), y=np.array([0, 1, 1]), classes=names))
    assert ds.classes == ("cat", "dog")


@pytest.mark.parametrize("arrays, fragment", [
    (dict(X=np.zeros((3, 2))), "no array 'y'"),
    (dict(y=np.zeros(3)), "no array 'X'"),
    (dict(X=np.zeros((3, 2)), y=np.zeros(4)), "4 entries for 3 samples"),
    (dict(X=np.zeros((0, 2)), y=np.zeros(0)), "empty"),
    (dict(X=np.array([[1.0, np.nan]]), y=np.zeros(1)), "NaN"),
    (dict(X=np.zeros((1, 2)), y=np.array([np.inf])), "infinite"),
    (dict(X=np.zeros((1, 2)), y=np.zeros((1, 2, 2))), r"\(N,\) or \(N, k\)"),
    (dict(X=np.zeros((1, 2)), y=np.array(3.0)), "one target per sample"),
    (dict(X=np.zeros((2, 2)), y=np.array([0, -1])), "negative"),
    (dict(X=np.zeros((2, 2, 2, 2)), y=np.zeros(2)), "shape"),
    (dict(X=np.array([["a", "b"]]), y=np.zeros(1)), "not numbers"),
    (dict(X=np.zeros((2, 2)), y=np.zeros(2), X_test=np.zeros((1, 2))), "only one of"),
    (dict(X=np.zeros((2, 2)), y=np.zeros(2), X_test=np.zeros((1, 3)), y_test=np.zeros(1)), "3 features"),
    (dict(X=np.zeros((2, 2)), y=np.array([0, 1]), X_test=np.zeros((1, 2)), y_test=np.zeros(1)), "same kind"),
    (dict(X=np.zeros((2, 2)), y=np.array([0, 2]), classes=np.array(["a", "b"])), "classes"),
])
def test_npz_bad_contents(tmp_path, arrays, fragment):
    with pytest.raises(DataError, match=fragment) as e:
        load_data(save(tmp_path, **arrays))
    assert "\n" not in str(e.value)


def test_npz_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(f"npz:{tmp_path / 'missing.npz'}")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip file")
    with pytest.raises(DataError, match="garbage.npz"):
        load_data(f"npz:{garbage}")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="single .npy"):
        load_data(f"npz:{single}")
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="Python objects"):
        load_data(f"npz:{pickled}")


def test_letters_with_a_fonts_folder_adds_it_and_a_missing_one_is_one_line(monkeypatch, tmp_path):
    """`letters:DIR` adds a folder of fonts as `letters:system` adds the machine's: the path kept as
    written (folders have upper-case names), made absolute in a run's record."""
    from xpnet.train.data import letters
    from xpnet.train.data.spec import absolute_spec

    asked = {}
    monkeypatch.setattr(letters, "load_letters", lambda **kw: asked.update(kw))
    load_data(f"letters:{tmp_path}/My Fonts", n_train=10, n_test=10)
    assert (asked["fonts_dir"], asked["system_fonts"]) == (f"{tmp_path}/My Fonts", False)
    load_data("letters:System", n_train=10, n_test=10)
    assert (asked["fonts_dir"], asked["system_fonts"]) == (None, True)
    monkeypatch.chdir(tmp_path)
    assert absolute_spec("letters:fonts") == f"letters:{tmp_path / 'fonts'}"
    assert absolute_spec("letters:system") == "letters:system" and absolute_spec("letters") == "letters"
    monkeypatch.undo()
    with pytest.raises(DataError, match="^fonts folder .*missing.* does not exist; give a folder of .ttf/.otf files"):
        load_data(f"letters:{tmp_path}/missing", n_train=10, n_test=10)
