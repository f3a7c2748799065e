"""A numpy .npz archive of samples: `X` (samples x features) and `y`, optionally `X_test`, `y_test`.

Integer `y` means classification, with classes "0".."max" (or the archive's own `classes`
strings); float `y` means regression (one target per row, or k targets as (N, k)), which is
how the circle-area example ships its data. Features are used as given, not rescaled: a
1-D `X` (one feature, e.g. a radius) becomes a column, and a 3-D `X` of (N, rows, cols)
images is flattened and records its `image_shape`. The archive is opened with
allow_pickle=False, so a file from elsewhere cannot run code.
"""

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from xpnet.train.data.dataset import DataError, DataSet


def load_npz(path) -> DataSet:
    """Read and validate an .npz archive into a DataSet."""
    path = Path(path).expanduser()
    arrays = _read_archive(path)
    for key in ("X", "y"):
        if key not in arrays:
            raise DataError(f"{path} has no array {key!r} (it has {sorted(arrays)}); save it with "
                            "np.savez(file, X=samples, y=labels)")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{path} has only one of X_test and y_test; save both or neither")
    X, image_shape = _features(arrays["X"], path, "X")
    y = _targets(arrays["y"], len(X), path, "y")
    X_test = y_test = None
    if "X_test" in arrays:
        X_test, _ = _features(arrays["X_test"], path, "X_test")
        y_test = _targets(arrays["y_test"], len(X_test), path, "y_test")
        _check_test_matches(X, y, X_test, y_test, path)
    classes = _classes(arrays, y, y_test, path)
    if image_shape is None and "image_shape" in arrays:
        image_shape = _image_shape(arrays["image_shape"], X.shape[1], path)
    return DataSet(X, y, X_test, y_test, classes=classes, image_shape=image_shape,
                   info={"source": "npz", "file": str(path), "task": "regression" if classes is None
                         else "classification"})


def _read_archive(path: Path) -> dict:
    """Every array in the archive, or a DataError saying why the file is not a usable .npz."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an .npz archive; for a folder of class folders use folder:{path}")
    if not path.is_file():
        raise DataError(f"npz file {path} does not exist; give the path of an .npz archive")
    _check_starts_like_npz(path)
    _check_declared_sizes(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path} is a single .npy array, not an .npz archive; "
                            "save with np.savez(file, X=samples, y=labels)")
        with archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(f"{path} holds Python objects, which xpnet does not load for safety; "
                            "save plain numeric arrays") from None
        raise DataError(f"{path} is not a valid .npz file ({e}); save it with np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path} is not a readable .npz file ({e.__class__.__name__}); "
                        "save it with np.savez") from None


def memory_budget() -> int:
    """The most bytes a data file may ask xpnet to hold: half the machine's memory (8 GiB where
    it cannot be read), so a hostile or mistaken file is refused instead of exhausting it."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return 8 << 30


def _check_declared_sizes(path: Path) -> None:
    """Each array's size as its .npy header declares it, checked before numpy allocates it:
    no bigger than the bytes the zip holds for it (a 2 KB file claiming 1e11 rows), and all of
    them within the memory budget (a 3.5 MB deflate bomb that inflates to 7.4 GB)."""
    if not zipfile.is_zipfile(path):
        return  # a lone .npy or a damaged zip: np.load's refusal says which
    total, budget = 0, memory_budget()
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        raise ValueError(f"npy format version {version}")
                    shape, _, dtype = read(f)
                    header = f.tell()
                size = math.prod(shape) * dtype.itemsize
                if size > member.file_size - header:
                    raise DataError(f"{path}: {member.filename[:-4]} declares {shape} {dtype} ({size:,} bytes) "
                                    f"but the archive holds {member.file_size - header:,} bytes of it: damaged")
                total += size
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path} is not a readable .npz file ({e}); save it with np.savez") from None
    if total > budget:
        raise DataError(f"{path} would take {total / 2**30:.1f} GiB in memory, over xpnet's budget of "
                        f"{budget / 2**30:.1f} GiB (half this machine's memory): use a smaller file")


def _check_starts_like_npz(path: Path) -> None:
    """An .npz is a zip archive (a lone array, .npy). Anything else, numpy would try to read as a
    pickle and refuse with a message about Python objects, which a CSV or an image does not hold."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror}); check its permissions") from None
    if not head:
        raise DataError(f"{path} is empty; save X and y with np.savez(file, X=samples, y=labels)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):  # numpy's own tests
        raise DataError(f"{path} is not an .npz archive (nor a zip file at all); "
                        "save X and y with np.savez(file, X=samples, y=labels)")


def _features(X: np.ndarray, path, key) -> tuple[np.ndarray, tuple[int, int] | None]:
    """X as float32 (N, D): a column for 1-D input, flattened rows for (N, rows, cols) images."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} has dtype {X.dtype}, not numbers; save numeric features")
    image_shape = None
    if X.ndim == 1:
        X = X[:, None]
    elif X.ndim == 3:
        image_shape = (int(X.shape[1]), int(X.shape[2]))
        X = X.reshape(len(X), -1)
    elif X.ndim == 4:  # pictures in colour: the shape belongs to the network, given as --image
        last = X.shape[3] <= 4 < X.shape[1]  # (n, rows, cols, channels), as Pillow and most files hold them
        channels, rows, cols = (X.shape[3], *X.shape[1:3]) if last else X.shape[1:]
        flat = f"{key}.transpose(0, 3, 1, 2).reshape(len({key}), -1)" if last else f"{key}.reshape(len({key}), -1)"
        raise DataError(f"{path}: {key} has shape {X.shape}; store it flat, channels first, {flat}, and give "
                        f"--image {channels}x{rows}x{cols}")
    elif X.ndim != 2:
        raise DataError(f"{path}: {key} has shape {X.shape}; give (samples, features)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{path}: {key} is empty (shape {X.shape}); give at least one sample")
    if not np.isfinite(X).all():
        raise DataError(f"{path}: {key} contains NaN or infinite values; clean the data first")
    big, top = (float(np.abs(X).max()) if X.dtype.kind == "f" else 0.0), float(np.finfo(np.float32).max)
    if big > top:  # float64 1e300 would become inf in float32
        raise DataError(f"{path}: {key} holds values up to {big:.3g} in absolute value, beyond float32's "
                        f"range ({top:.3g}): scale them (standardise each feature) first")
    return X.astype(np.float32), image_shape


def _targets(y: np.ndarray, n: int, path, key) -> np.ndarray:
    """Integer labels as int64 (N,), float targets as float32 (N,) or (N, k)."""
    if y.ndim == 0 or len(y) != n:
        raise DataError(f"{path}: {key} has {y.shape[0] if y.ndim else 0} entries for {n} samples; "
                        "give one target per sample")
    if y.dtype.kind in "biu":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"{path}: integer {key} has shape {y.shape}; class labels must be one per sample")
        if y.min() < 0:
            raise DataError(f"{path}: {key} has negative label {int(y.min())}; labels must be 0, 1, 2, ...")
        top = int(y.max())  # a Python int: a uint64 2**64-1 must not wrap to -1
        if (top + 1) * n * 8 > memory_budget():  # the one-hot targets, float64 rows of top + 1 classes
            raise DataError(f"{path}: {key} has label {top}, so {top + 1:,} classes whose targets for {n:,} "
                            "samples would exceed xpnet's memory budget; number the classes 0, 1, 2, ...")
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if y.ndim > 2:
            raise DataError(f"{path}: float {key} has shape {y.shape}; give (N,) or (N, k) targets")
        if not np.isfinite(y).all():
            raise DataError(f"{path}: {key} contains NaN or infinite values; clean the data first")
        return y.astype(np.float32)
    raise DataError(f"{path}: {key} has dtype {y.dtype}; give integer labels or float targets")


def _check_test_matches(X, y, X_test, y_test, path) -> None:
    """Test rows need train's features and the same kind of target."""
    if X_test.shape[1] != X.shape[1]:
        raise DataError(f"{path}: X_test has {X_test.shape[1]} features but X has {X.shape[1]}; "
                        "give both the same columns")
    if (y.dtype.kind == "f") != (y_test.dtype.kind == "f") or y.shape[1:] != y_test.shape[1:]:
        raise DataError(f"{path}: y_test ({y_test.dtype}, {y_test.shape}) does not match y "
                        f"({y.dtype}, {y.shape}); use the same kind of target for both")


def _classes(arrays, y, y_test, path) -> tuple[str, ...] | None:
    """Class names for integer labels ("0".."max", or the archive's `classes`); None for regression."""
    if y.dtype.kind == "f":
        return None
    top = int(max(y.max(), y_test.max() if y_test is not None else 0))
    if "classes" not in arrays:
        return tuple(str(i) for i in range(top + 1))
    names = arrays["classes"]
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) <= top:
        raise DataError(f"{path}: 'classes' must be a 1-D array of {top + 1} or more names, "
                        f"one per label; got {names.dtype} {names.shape}")
    try:
        names = tuple(str(n) for n in names.astype(str))
    except UnicodeDecodeError:
        raise DataError(f"{path}: 'classes' holds names that are not UTF-8 text; save them as str") from None
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path}: 'classes' names {', '.join(map(repr, twice[:3]))} more than once; "
                        "give each class its own name")
    return names


def _image_shape(shape: np.ndarray, n_features: int, path) -> tuple[int, int]:
    """The archive's own (rows, cols), which must multiply to the number of features."""
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or int(np.prod(shape)) != n_features:
        raise DataError(f"{path}: image_shape {shape.tolist()} does not give {n_features} pixels; "
                        "store (rows, cols) or leave it out")
    return int(shape[0]), int(shape[1])
