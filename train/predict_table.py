"""`xpnet predict RUN --input FILE`: answers for rows of a table (.csv or .npz), not images.

A tabular or regression model has no pictures to read: its inputs are rows of numbers. The
rows are given raw, as the training data were; the model applies its own scaling. A CSV is
matched to the run's feature columns by name where the run recorded them (a CSV run does), so
the file may keep its target column and columns in any order; else every column is a feature.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.train.checkpoints import load_checkpoint
from xpnet.train.data.csv_table import numeric_column, read_table
from xpnet.train.predict import answer_value, format_value


def predict_rows(checkpoint: str, path: str, backend_name=None, device=None):
    """Yields one result per row: {row, value} from a regression model, {row, class,
    probability} from a classifier."""
    net, meta = load_checkpoint(checkpoint, resolve_backend(backend_name, device))
    X = read_rows(Path(path), ((meta.get("data") or {}).get("features")), net.sizes[0])
    if net.is_regression:
        for i, row in enumerate(net.predict(X)):
            yield {"row": i, "value": answer_value(row)}
        return
    classes = meta.get("classes") or [str(i) for i in range(net.sizes[-1])]
    for i, proba in enumerate(net.predict_proba(X)):
        best = int(np.argmax(proba))
        yield {"row": i, "class": classes[best], "probability": float(proba[best])}


def read_rows(path: Path, features: list | None, width: int) -> np.ndarray:
    """The file's rows as a float array `width` wide, or one line saying why not."""
    if path.suffix.lower() == ".npz":
        from xpnet.train.data.npz import _features, _read_archive

        arrays = _read_archive(path)
        if "X" not in arrays and len(arrays) != 1:
            raise XpnetError(f"{path} has no array 'X' (it has {sorted(arrays)}): save the rows as X")
        X, _ = _features(arrays.get("X", next(iter(arrays.values()))), path, "X")
    elif path.suffix.lower() == ".csv":
        header, rows = read_table(path)
        missing = [name for name in features or () if name not in header]
        if missing:  # other columns of the right count would be a silent wrong answer
            raise XpnetError(f"{path} lacks the column(s) {', '.join(missing)} the model was trained on "
                             f"({', '.join(features)}): give a CSV with them")
        names = features or header
        X = np.stack([numeric_column(rows, header.index(name), name, path) for name in names], axis=1)
    else:
        raise XpnetError(f"--input {path}: give a .csv or .npz file of rows")
    if X.shape[1] != width:
        raise XpnetError(f"{path} has {X.shape[1]} feature column(s) but the model takes {width}"
                         + (f" ({', '.join(features)})" if features else ""))
    return X


def format_row(result: dict) -> str:
    if "value" in result:
        return f"row {result['row']}: {format_value(result['value'])}"
    return f"row {result['row']}: {result['class']} ({100 * result['probability']:.1f}%)"
