"""A CSV table of samples: `csv:FILE` (or a bare `FILE.csv`), one row per sample.

The first row names the columns. The target is the last column, or the one named after a `#`
(`csv:houses.csv#price`); every other column is a numeric feature. The target decides the
task, as an npz's dtype does:
- every target a number written without a decimal point or exponent (`3`, `-1`): class
  labels, the classes being the distinct values in numeric order (labels 1..26 are 26 classes);
- any target with one (`3.0`, `2.5e5`): float values, regression;
- any target that is not a number (`cat`, `dog`): class names, in sorted order.
A text cell among the features is refused in one line naming its row and column: encode
categories as numbers first. A CSV has no held-out part; `--val-fraction` holds some back.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from xpnet.train.data.dataset import DataError, DataSet
from xpnet.train.files import is_regular

INTEGER = re.compile(r"\s*[-+]?\d+\s*")


def split_target(arg: str) -> tuple[Path, str | None]:
    """`FILE#COLUMN` -> (FILE, COLUMN); no `#`: (FILE, None), the last column."""
    path, sep, column = arg.rpartition("#") if "#" in arg else (arg, "", "")
    return Path(path).expanduser(), (column.strip() or None) if sep else None


def load_csv(arg: str) -> DataSet:
    """Read and validate a CSV file (with `#COLUMN` naming the target) into a DataSet."""
    path, column = split_target(arg)
    header, rows = read_table(path)
    target = _target_index(header, column, path)
    features = [i for i in range(len(header)) if i != target]
    if not features:
        raise DataError(f"{path} has only the target column {header[target]!r}; give feature columns too")
    X = np.empty((len(rows), len(features)), np.float32)
    for j, i in enumerate(features):
        X[:, j] = numeric_column(rows, i, header[i], path)
    y, classes = _targets([row[target] for row in rows], header[target], path)
    return DataSet(X, y, None, None, classes=classes, image_shape=None,
                   info={"source": "csv", "file": str(path), "target": header[target],
                         "features": [header[i] for i in features],
                         "task": "regression" if classes is None else "classification"})


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a CSV file; for a folder of class folders use folder:{path}")
    if path.exists() and not is_regular(path):  # a named pipe would block forever, /dev/zero never end
        raise DataError(f"{path} is not a regular file (a named pipe or a device): xpnet reads CSV files only")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except FileNotFoundError:
        raise DataError(f"CSV file {path} does not exist; give the path of a .csv file") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror}); check its permissions") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} is not a readable UTF-8 CSV file ({e.__class__.__name__}); "
                        "save it as CSV (UTF-8)") from None
    if len(table) < 2:
        raise DataError(f"{path} needs a header row naming the columns and at least one row of samples")
    header = [name.strip() for name in table[0]]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:  # which one a #COLUMN or a feature's name means would be a guess
        raise DataError(f"{path} names more than one column {', '.join(map(repr, repeated))}: give each column "
                        "its own name")
    for n, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {n} has {len(row)} cells but the header names {len(header)} columns; "
                            "every row needs one cell per column")
    return header, table[1:]


def _target_index(header: list[str], column: str | None, path: Path) -> int:
    if column is None:
        return len(header) - 1
    if column not in header:
        raise DataError(f"{path} has no column {column!r} to predict; its columns are {', '.join(header)}")
    return header.index(column)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def numeric_column(rows, i: int, name: str, path: Path) -> np.ndarray:
    """Column i as float64, or one line naming the first cell that is not a finite number."""
    values = np.empty(len(rows))
    for n, row in enumerate(rows):
        try:
            values[n] = float(row[i])
        except ValueError:
            raise DataError(f"{path} line {n + 2}, column {name!r}: {row[i].strip()!r} is not a number; xpnet reads "
                            "numeric feature columns only (encode categories as numbers first)") from None
        if not np.isfinite(values[n]):
            raise DataError(f"{path} line {n + 2}, column {name!r} is {row[i].strip()}; clean the data first")
        if abs(values[n]) > FLOAT32_MAX:  # features are float32: 1e300 would become infinite
            raise DataError(f"{path} line {n + 2}, column {name!r} is {row[i].strip()}, beyond float32's range "
                            f"({FLOAT32_MAX:.3g}): scale the column (standardise it) first")
    return values


def _targets(cells: list[str], name: str, path: Path):
    """(y, classes): int64 labels and class names, or float32 values and None (regression)."""
    try:
        values = np.array([float(c) for c in cells])
    except ValueError:  # class names written as text
        names = sorted({c.strip() for c in cells})
        index = {c: k for k, c in enumerate(names)}
        return np.array([index[c.strip()] for c in cells], np.int64), tuple(names)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{path}: the target column {name!r} holds NaN or infinite values; clean the data first")
    if all(INTEGER.fullmatch(c) for c in cells):
        if np.max(np.abs(values)) >= 2.0 ** 63:  # int64 would wrap them into other classes
            raise DataError(f"{path}: the target column {name!r} holds whole numbers beyond 2^63; if they are "
                            "class names, write them as text")
        labels, y = np.unique(values.astype(np.int64), return_inverse=True)
        return y.astype(np.int64), tuple(str(v) for v in labels)
    return values.astype(np.float32), None
