"""IDX loading on small files written here: good files load exactly, every kind of bad file is one line."""

import gzip
import struct

import numpy as np
import pytest

from xpnet.train.data import DataError, load_data
from xpnet.train.data.idx import IMAGES_MAGIC, LABELS_MAGIC, load_emnist_letters_dir, load_idx_dir, read_idx


def idx_bytes(array: np.ndarray, magic: int | None = None, dims=None) -> bytes:
    """An IDX file's bytes: magic, big-endian dimensions, then the uint8 body."""
    dims = array.shape if dims is None else dims
    magic = (0x0800 | len(dims)) if magic is None else magic
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + array.astype(np.uint8).tobytes()


def write(path, data: bytes, gz=False):
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def mnist_dir(folder, n_train=6, n_test=4, gz=False, sep="-", prefix="", label_offset=0):
    """A tiny MNIST-layout folder; returns the arrays it wrote, in file orientation."""
    rng = np.random.default_rng(0)
    arrays = {}
    for side, n in (("train", n_train), ("t10k" if not prefix else "test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10 + label_offset).astype(np.uint8)
        write(folder / f"{prefix}{side}-images{sep}idx3-ubyte", idx_bytes(images), gz)
        write(folder / f"{prefix}{side}-labels{sep}idx1-ubyte", idx_bytes(labels), gz)
        arrays[side] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_files_load_exactly(tmp_path, gz):
    arrays = mnist_dir(tmp_path, gz=gz)
    ds = load_idx_dir(tmp_path)
    images, labels = arrays["train"]
    np.testing.assert_array_equal(ds.X_train, images.reshape(6, 784) / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, labels)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.X_test.shape == (4, 784) and ds.classes == tuple("0123456789") and ds.image_shape == (28, 28)


def test_fashion_mnist_is_mnist_files_with_its_class_names(tmp_path):
    mnist_dir(tmp_path)
    ds = load_data(f"fashion-mnist:{tmp_path}")
    np.testing.assert_array_equal(ds.X_train, load_idx_dir(tmp_path).X_train)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    assert ds.info["source"] == "fashion-mnist"


def test_dotted_file_names_and_missing_test_split(tmp_path):
    mnist_dir(tmp_path, sep=".")
    for f in tmp_path.glob("t10k*"):
        f.unlink()
    ds = load_idx_dir(tmp_path)
    assert ds.X_train.shape == (6, 784) and ds.X_test is None and ds.y_test is None


def test_emnist_letters_are_transposed_and_labels_shifted(tmp_path):
    arrays = mnist_dir(tmp_path, prefix="emnist-letters-", label_offset=1)
    ds = load_emnist_letters_dir(tmp_path)
    images, labels = arrays["train"]
    np.testing.assert_array_equal(ds.X_train.reshape(-1, 28, 28), images.transpose(0, 2, 1) / np.float32(255))
    np.testing.assert_array_equal(ds.y_train, labels.astype(np.int64) - 1)
    assert ds.classes[0] == "A" and len(ds.classes) == 26 and ds.info["source"] == "emnist-letters"


def test_load_data_caps_samples_with_a_seeded_subset(tmp_path):
    mnist_dir(tmp_path, n_train=50)
    a = load_data(f"idx:{tmp_path}", n_train=10, n_test=2, seed=3)
    b = load_data(f"idx:{tmp_path}", n_train=10, n_test=2, seed=3)
    assert a.X_train.shape == (10, 784) and a.X_test.shape == (2, 784)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.info["n_train_available"] == 50


def one_line_error(call, *fragments):
    """Run call, expect a DataError whose single-line message holds every fragment."""
    with pytest.raises(DataError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_bad_magic(tmp_path):
    path = write(tmp_path / "x", idx_bytes(np.zeros((2, 28, 28)), magic=0x00000801))
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), "magic", str(path))
    html = write(tmp_path / "page", b"<html>404 not found</html>")
    one_line_error(lambda: read_idx(html, LABELS_MAGIC), "magic")


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_body(tmp_path, gz):
    data = idx_bytes(np.zeros((3, 28, 28)))
    path = write(tmp_path / "imgs", data[:-100], gz)
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), "truncated", str(path))


@pytest.mark.parametrize("gz", [False, True])
def test_trailing_bytes(tmp_path, gz):
    path = write(tmp_path / "labels", idx_bytes(np.arange(5)) + b"extra", gz)
    one_line_error(lambda: read_idx(path, LABELS_MAGIC), "beyond", str(path))


def test_short_header(tmp_path):
    path = write(tmp_path / "tiny", b"\x00\x00")
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), "too short")
    path = write(tmp_path / "half", struct.pack(">II", IMAGES_MAGIC, 5))
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), "header is truncated")


@pytest.mark.parametrize("gz", [False, True])
def test_absurd_header_is_refused_before_allocating(tmp_path, gz):
    path = write(tmp_path / "huge", idx_bytes(np.zeros((1, 28, 28)), dims=(2**31, 28, 28)), gz)
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), str(path))
    path = write(tmp_path / "wide", idx_bytes(np.zeros((1, 2, 2)), dims=(1, 0, 2)), gz)
    one_line_error(lambda: read_idx(path, IMAGES_MAGIC), "impossible dimensions")


def test_damaged_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8) % 10))
    path = tmp_path / "labels.gz"
    path.write_bytes(packed[: len(packed) // 2])
    one_line_error(lambda: read_idx(path, LABELS_MAGIC), str(path))


def test_image_and_label_counts_must_match(tmp_path):
    mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.arange(5) % 10))
    one_line_error(lambda: load_idx_dir(tmp_path), "6 images", "5 labels")


def test_labels_out_of_range(tmp_path):
    mnist_dir(tmp_path)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.array([0, 1, 2, 3, 4, 10])))
    one_line_error(lambda: load_idx_dir(tmp_path), "label 10", "0..9")
    emnist = tmp_path / "emnist"
    emnist.mkdir()
    mnist_dir(emnist, prefix="emnist-letters-", label_offset=0)  # label 0 is not a letter
    one_line_error(lambda: load_emnist_letters_dir(emnist), "label 0", "1..26")


def test_missing_files_and_folder(tmp_path):
    one_line_error(lambda: load_idx_dir(tmp_path), "train-images-idx3-ubyte")
    one_line_error(lambda: load_idx_dir(tmp_path / "nope"), "does not exist")
    mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    one_line_error(lambda: load_idx_dir(tmp_path), "t10k-labels-idx1-ubyte")
