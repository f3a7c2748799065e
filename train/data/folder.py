"""A folder of images, one sub-folder per class: `DIR/A/*.png`, `DIR/B/*.jpg`, ...

The sorted sub-folder names are the classes. With `DIR/train/<class>/...` and
`DIR/test/<class>/...` the two sides are kept apart; otherwise there is no test split.
Every image goes through `preprocess_image`, the framing the letters generator uses, so a
folder of photographed letters can be trained on or tested against synthetic ones. Files
that are not readable images are skipped and counted in `info`; a folder with no readable
image at all is an error.
"""

import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from xpnet.train.data.dataset import DataError, DataSet
from xpnet.train.data.glyph import FRAME, load_image

SKIPPED_EXAMPLES = 5  # how many unreadable file names info keeps, to point the user at them


def load_folder(folder, progress: bool = True) -> DataSet:
    """Images from class sub-folders (or train/ and test/ holding class sub-folders)."""
    root = Path(folder).expanduser()
    if root.is_file():
        hint = f"; for an .npz archive use npz:{root}" if root.suffix == ".npz" else ""
        raise DataError(f"{root} is a file, not a folder; give a folder holding one sub-folder per class{hint}")
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist; give a folder holding one sub-folder per class")
    if (root / "train").is_dir():
        return _train_test(root, progress)
    classes = class_names(root)
    X, y, skipped = read_classes(root, classes, progress)
    return _dataset(root, classes, X, y, None, None, skipped)


def _train_test(root: Path, progress: bool) -> DataSet:
    """DIR/train and (optionally) DIR/test, with test's classes indexed by train's."""
    classes = class_names(root / "train")
    X, y, skipped = read_classes(root / "train", classes, progress)
    X_test = y_test = None
    if (root / "test").is_dir():
        unknown = sorted(set(class_names(root / "test")) - set(classes))
        if unknown:
            raise DataError(f"{root / 'test'} has classes {unknown} that {root / 'train'} lacks; "
                            "give both the same class folders")
        X_test, y_test, skipped_test = read_classes(root / "test", classes, progress)
        skipped += skipped_test
    return _dataset(root, classes, X, y, X_test, y_test, skipped)


def class_names(folder: Path) -> tuple[str, ...]:
    """Sorted names of the visible sub-folders: the classes."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"{folder} has no class sub-folders; put each class's images in its own "
                        f"folder, e.g. {folder / 'A' / 'img1.png'}")
    return tuple(names)


def read_classes(folder: Path, classes, progress: bool):
    """(X (N, 784) float32, y (N,) int64, skipped paths) for every image under folder/<class>/."""
    files = [(path, label) for label, name in enumerate(classes) for path in _image_files(folder / name)]
    if not files:
        raise DataError(f"{folder} has class folders but no files in them; add images")
    rows, labels, skipped = [], [], []
    for path, label in tqdm(files, desc=folder.name, unit="img", disable=not progress):
        try:
            rows.append(load_image(path).ravel())
            labels.append(label)
        except DataError:
            skipped.append(str(path))
    if not rows:
        raise DataError(f"none of the {len(files)} files under {folder} is a readable picture of a letter; "
                        "use PNG or JPEG images")
    return np.stack(rows).astype(np.float32), np.array(labels, np.int64), skipped


def _image_files(folder: Path) -> list[Path]:
    """Visible files in a class folder, sorted so the data set is the same on every run."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _dataset(root, classes, X, y, X_test, y_test, skipped) -> DataSet:
    """Wrap the arrays, warning once (and recording in info) about skipped files."""
    if skipped:
        warnings.warn(f"{root}: skipped {len(skipped)} unreadable or blank image file(s), "
                      f"e.g. {skipped[0]}", stacklevel=3)
    info = {"source": "folder", "dir": str(root), "skipped_files": len(skipped),
            "skipped_examples": skipped[:SKIPPED_EXAMPLES]}
    return DataSet(X, y, X_test, y_test, classes=tuple(classes), image_shape=(FRAME, FRAME), info=info)
