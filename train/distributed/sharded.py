"""The training set on the ranks: one file a machine, each rank reading only its rows.

The first rank on each machine writes the training inputs to a memory-mapped .npy file in
a temporary folder (then deletes it, once every rank there has mapped it); each epoch a rank
copies to its device only the rows its pieces of the global batches need.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xpnet.train.context import piece
from xpnet.train.data import DataError, DataSet
from xpnet.train.device_data import DeviceData
from xpnet.train.targets import targets_for

CHUNK_ROWS = 8192  # rows converted and hashed at a time when the inputs file is written
INPUTS_PREFIX = "xpnet-mpi-"  # + the writing process id: orphaned folders can be told apart


@dataclass
class ShardedData:
    """The training set as one rank sees it: the whole set's size and shuffle, this rank's rows.

    `order` draws the permutation every rank (and a single-process run) draws, cuts every
    global batch into `size` consecutive pieces and copies this rank's pieces, in step order,
    to the device in one transfer an epoch; `batch` then hands out contiguous slices of it.
    """

    X: np.ndarray  # (N, D) inputs, usually memory-mapped; only this rank's rows are read
    y: np.ndarray  # (N,) labels or (N, k) targets, in memory
    n: int
    classification: bool
    net: object
    rank: int
    size: int
    _local: tuple | None = None  # (inputs, targets) of this rank's rows this epoch, on the device
    _starts: list | None = None  # where each step's piece starts in _local
    _full_batch: bool = False
    _rows: np.ndarray | None = None  # which rows of the set _local holds
    _moves: object = None  # this epoch's moves of those rows, on the device, where shifting
    shifts: object = None  # a train/augment.py Shifts that moves each picture every epoch, or None
    streamed = False  # its batches are on the device: each epoch's rows go over in one copy

    def order(self, rng: np.random.Generator, batch_size: int):
        if batch_size >= self.n:  # full batches: the same piece every epoch, no shuffle drawn
            if not self._full_batch:
                self._load(np.arange(*piece(self.n, self.rank, self.size)), [0, None])
                self._full_batch = True
            self._draw_moves(rng)
            return None
        order = rng.permutation(self.n)
        pieces = [order[first:first + batch_size] for first in range(0, self.n, batch_size)]
        pieces = [p[slice(*piece(len(p), self.rank, self.size))] for p in pieces]
        self._load(np.concatenate(pieces), np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).tolist())
        self._draw_moves(rng)
        return order

    def _draw_moves(self, rng: np.random.Generator) -> None:
        """Where shifting: the moves a single process draws for the whole set, this rank's rows' to the device."""
        if self.shifts is not None:
            self._moves = self.net.backend.asarray(self.shifts.draw(rng, self.n)[self._rows])

    def batch(self, order, first: int, batch_size: int):
        """Device arrays of this rank's piece of the global batch starting at `first`."""
        step = 0 if order is None else first // batch_size
        a, b = self._starts[step], self._starts[step + 1]
        X, T = self._local
        b = X.shape[0] if b is None else b
        if self.shifts is None:
            return X[a:b, ...], T[a:b, ...]
        return self.shifts.apply(X[a:b, ...], self._moves[a:b, ...]), T[a:b, ...]

    def labels_in(self, order):
        """The true classes of this rank's rows this epoch, in the order `batch` hands them out."""
        return self.net.backend.xp.argmax(self._local[1], axis=1)

    def spread(self, rows: int):
        """Device arrays of up to `rows` samples spread evenly over the whole set, read from the
        file: the same probe on every rank, as a single process's `DeviceData.spread`."""
        picked = np.unique(np.linspace(0, self.n - 1, min(rows, self.n)).astype(np.int64))
        backend = self.net.backend
        return (backend.asarray(self.X[picked], dtype=backend.dtype_name),
                backend.asarray(targets_for(self.net, self.y[picked]), dtype=backend.dtype_name))

    def whole(self) -> DeviceData:
        """The whole set, streamed from the file a batch at a time (for lr="auto", whose few
        trial steps every rank runs alike, so every rank picks the same rate)."""
        backend = self.net.backend
        T = np.asarray(targets_for(self.net, self.y), dtype=backend.dtype_name)
        return DeviceData(self.X, T, self.n, self.classification, backend, streamed=True)

    def _load(self, rows: np.ndarray, starts: list) -> None:
        backend = self.net.backend
        X = backend.asarray(self.X[rows], dtype=backend.dtype_name)
        T = backend.asarray(targets_for(self.net, self.y[rows]), dtype=backend.dtype_name)
        self._local, self._starts, self._rows = (X, T), starts, rows


def write_inputs_file(data: DataSet, dtype: str) -> dict:
    """Write the training inputs (in the compute dtype) and labels to a fresh temporary folder,
    a chunk at a time, checking every value is finite and hashing what was written."""
    folder = Path(tempfile.mkdtemp(prefix=f"{INPUTS_PREFIX}{os.getpid()}-"))
    try:
        return _write_inputs(folder, data, dtype)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _write_inputs(folder: Path, data: DataSet, dtype: str) -> dict:
    X = data.X_train
    out = np.lib.format.open_memmap(folder / "X_train.npy", mode="w+", dtype=dtype, shape=X.shape)
    digest = hashlib.sha256()
    for first in range(0, len(X), CHUNK_ROWS):
        chunk = np.asarray(X[first:first + CHUNK_ROWS], dtype=dtype)
        if not np.all(np.isfinite(chunk)):
            raise DataError("training data: X must be finite numbers (found NaN, inf or non-numbers); "
                            "clean the inputs")
        out[first:first + len(chunk)] = chunk
        digest.update(chunk.tobytes())
    out.flush()
    del out
    np.save(folder / "y_train.npy", data.y_train)
    digest.update(np.ascontiguousarray(data.y_train).tobytes())
    return {"folder": str(folder), "digest": digest.hexdigest()[:16], "classes": data.classes,
            "image_shape": data.image_shape, "info": data.info}


def remove_orphaned_inputs(tmp: str | Path | None = None, min_age_s: float = 3600.0) -> list[Path]:
    """Remove input folders that killed jobs left behind; returns what was removed.

    A job's first rank on a machine deletes its folder once every rank there has mapped it,
    but a job killed before that (mpirun ending it after another rank aborted) cannot. The
    writer's process id is in the folder's name; a folder whose writer is gone, and that is
    over an hour old (a writer in another container's process ids may look gone), is orphaned.
    """
    removed, now = [], time.time()
    for folder in Path(tmp or tempfile.gettempdir()).glob(f"{INPUTS_PREFIX}*-*"):
        pid = folder.name[len(INPUTS_PREFIX):].split("-")[0]
        try:
            old = now - folder.stat().st_mtime >= min_age_s
        except OSError:  # removed meanwhile
            continue
        if old and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours to judge
        return True
    return True


