"""MNIST-family IDX files (MNIST, Fashion-MNIST, EMNIST letters), raw or gzipped.

An IDX file is a 4-byte magic number (two zero bytes, a type byte 0x08 for unsigned bytes,
the number of dimensions), one big-endian uint32 per dimension, then the bytes. Downloads
get truncated and headers get corrupted, so every size is checked against the file before
anything is allocated, and the body must be exactly as long as the header says.
"""

import gzip
import zlib
from pathlib import Path

import numpy as np

from xpnet.train.data.dataset import DataError, DataSet

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: (N, rows, cols)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: (N,)
MAX_GZIP_RATIO = 1100  # deflate cannot expand more than ~1032x; a header asking for more is corrupt
MAX_SIDE = 4096  # image rows/cols beyond this are a corrupt header, not an image
MNIST_CLASSES = tuple(str(d) for d in range(10))  # labels 0..9 (also KMNIST's)
# Fashion-MNIST has MNIST's file names and labels 0..9; only its class names differ.
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
EMNIST_LETTER_CLASSES = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # EMNIST stores these as 1..26


def load_idx_dir(folder, fashion: bool = False) -> DataSet:
    """MNIST-style files in a folder: train-images-idx3-ubyte[.gz] and friends, labels 0..9;
    `fashion` names the classes as Fashion-MNIST's (its files are named like MNIST's)."""
    scheme = "fashion-mnist" if fashion else "idx"
    folder = _existing_dir(folder, scheme)
    what = "Fashion-MNIST" if fashion else "MNIST or Fashion-MNIST"
    train = _split(folder, "train", "train", what, required=True)
    test = _split(folder, "t10k", "test", what, required=False)
    return _dataset(train, test, FASHION_CLASSES if fashion else MNIST_CLASSES, label_offset=0,
                    transpose=False, info={"source": scheme, "dir": str(folder)})


def load_emnist_letters_dir(folder) -> DataSet:
    """EMNIST letters: images stored transposed, labels 1..26 (A..Z, either case) shifted to 0..25."""
    folder = _existing_dir(folder, "emnist-letters")
    train = _split(folder, "emnist-letters-train", "train", "EMNIST letters", required=True)
    test = _split(folder, "emnist-letters-test", "test", "EMNIST letters", required=False)
    return _dataset(train, test, EMNIST_LETTER_CLASSES, label_offset=1, transpose=True,
                    info={"source": "emnist-letters", "dir": str(folder)})


def _existing_dir(folder, scheme) -> Path:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{scheme}: folder {folder} does not exist; give the folder holding the IDX files")
    return folder


def _split(folder: Path, prefix: str, side: str, what: str, required: bool):
    """(images path, labels path) for one side, None if both are absent and the side is optional."""
    images = find_idx_file(folder, f"{prefix}-images", "idx3-ubyte")
    labels = find_idx_file(folder, f"{prefix}-labels", "idx1-ubyte")
    if images is None and labels is None and not required:
        return None
    for found, name in ((images, f"{prefix}-images-idx3-ubyte"), (labels, f"{prefix}-labels-idx1-ubyte")):
        if found is None:
            raise DataError(f"no {name}[.gz] in {folder}; put the {what} {side} files there")
    return images, labels


def find_idx_file(folder: Path, stem: str, kind: str) -> Path | None:
    """The file named stem-kind or stem.kind (both spellings circulate), raw or .gz."""
    for name in (f"{stem}-{kind}", f"{stem}.{kind}"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _dataset(train, test, classes, label_offset, transpose, info) -> DataSet:
    """Read both sides and wrap them; test may be None."""
    X_train, y_train, shape = read_pair(*train, classes, label_offset, transpose)
    X_test = y_test = None
    if test is not None:
        X_test, y_test, test_shape = read_pair(*test, classes, label_offset, transpose)
        if test_shape != shape:
            raise DataError(f"{test[0]} holds {test_shape} images but the train images are {shape}; "
                            "use train and test files from the same data set")
    files = {"train": [str(p) for p in train], "test": [str(p) for p in test] if test else None}
    return DataSet(X_train, y_train, X_test, y_test, classes=classes, image_shape=shape,
                   info=dict(info, files=files))


def read_pair(images_path, labels_path, classes, label_offset=0, transpose=False):
    """(X float32 (N, rows*cols) in [0, 1], y int64 (N,), (rows, cols)) from an images/labels pair."""
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; use the matching pair of files")
    y = labels.astype(np.int64) - label_offset
    _check_labels(y, labels_path, len(classes), label_offset)
    if transpose:
        images = images.transpose(0, 2, 1)
    n, rows, cols = images.shape
    X = images.reshape(n, rows * cols).astype(np.float32) / np.float32(255)
    return X, y, (rows, cols)


def _check_labels(y, path, n_classes, offset) -> None:
    """Every label must name one of the data set's classes."""
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        first = int(y[bad][0]) + offset
        raise DataError(f"{path}: label {first} is outside {offset}..{n_classes - 1 + offset}; "
                        "is this the right labels file for this data set?")


def read_idx(path, magic: int) -> np.ndarray:
    """An IDX file as a uint8 array, after checking magic, dimensions and exact length."""
    path = Path(path)
    try:
        if _is_gzip(path):
            with gzip.open(path, "rb") as f:
                return _read_body(f, path, magic, path.stat().st_size, compressed=True)
        with open(path, "rb") as f:
            return _read_body(f, path, magic, path.stat().st_size, compressed=False)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path} is a damaged gzip file ({e}); download it again") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}; "
                        "check the file and its permissions") from None


def _is_gzip(path: Path) -> bool:
    """Gzip is recognised by its two magic bytes, whatever the file is called."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_body(f, path, magic, file_size, compressed) -> np.ndarray:
    """Read header then body, refusing a header the file cannot back up."""
    dims = _read_header(f, path, magic)
    header_len = 4 + 4 * len(dims)
    expected = int(np.prod(dims, dtype=object))
    if compressed and expected > MAX_GZIP_RATIO * file_size + 4096:
        raise DataError(f"{path}: header promises {expected} bytes, more than a {file_size}-byte gzip "
                        "file can hold; the file is corrupt or truncated, download it again")
    if not compressed and expected != file_size - header_len:
        raise DataError(_length_message(path, expected, file_size - header_len))
    body = _read_at_most(f, expected + 1)  # one extra byte reveals trailing data
    if len(body) != expected:
        raise DataError(_length_message(path, expected, len(body) if len(body) < expected else None))
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_at_most(f, n: int, piece: int = 1 << 24) -> bytes:
    """Read up to n bytes in 16 MiB pieces, so memory follows the data actually there, not the header."""
    pieces = []
    while n > 0:
        data = f.read(min(piece, n))
        if not data:
            break
        pieces.append(data)
        n -= len(data)
    return b"".join(pieces)


def _read_header(f, path, magic) -> tuple[int, ...]:
    """The dimensions, after checking the magic number and that each dimension is sane."""
    head = f.read(4)
    if len(head) < 4:
        raise DataError(f"{path} is too short to be an IDX file ({len(head)} bytes); download it again")
    found = int.from_bytes(head, "big")
    if found != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path}: bad magic number 0x{found:08x}, expected 0x{magic:08x} for an IDX {kind} "
                        "file; is this the right file, and not an HTML error page?")
    raw = f.read(4 * head[3])
    if len(raw) < 4 * head[3]:
        raise DataError(f"{path}: header is truncated; download the file again")
    dims = tuple(int.from_bytes(raw[i:i + 4], "big") for i in range(0, len(raw), 4))
    if dims[0] == 0 or any(d == 0 or d > MAX_SIDE for d in dims[1:]):
        raise DataError(f"{path}: header gives impossible dimensions {dims}; the file is corrupt")
    return dims


def _length_message(path, expected, actual) -> str:
    """Truncated or overlong body, in words."""
    if actual is None or actual > expected:
        return (f"{path}: has data beyond the {expected} bytes its header describes; "
                "the file is corrupt, download it again")
    return f"{path} is truncated: header promises {expected} bytes of data, found {actual}; download it again"
