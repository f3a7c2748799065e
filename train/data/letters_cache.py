"""The letters' cache on disk: one .npz per set of generation parameters, written atomically.

Generating a set costs far more than reading it back. The file name is a hash of every
parameter the output depends on, so a change to any of them misses the cache instead of
reusing stale letters, and a file that cannot be read is regenerated rather than trusted.
"""

import hashlib
import json
import os
import warnings
import zipfile
import zlib
from pathlib import Path

import matplotlib
import numpy as np

from xpnet.train.files import OutputError, atomic_write

STALE_TEMP_S = 600  # a cache write takes seconds: a temp untouched this long is a killed writer's


def font_file_key(path: str) -> str:
    """A font file as the cache key names it: matplotlib's own by their place inside
    matplotlib, so two environments (a venv for training, one for the tests) share one cache;
    any other file by its full path, which is where the machine keeps it."""
    ours = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    relative = Path(path).relative_to(ours) if Path(path).is_relative_to(ours) else None
    return f"matplotlib:{relative.as_posix()}" if relative is not None else str(path)


def default_cache_dir() -> Path:
    """$XPNET_CACHE, else ~/.cache/xpnet."""
    return Path(os.environ.get("XPNET_CACHE") or Path.home() / ".cache" / "xpnet")


def cache_path(cache_dir, params: dict) -> Path:
    """The cache file for these parameters: a hash of all of them, so any change misses."""
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:24]
    return Path(cache_dir or default_cache_dir()).expanduser() / f"letters-{key}.npz"


def read_cache(path: Path) -> tuple[dict, dict] | None:
    """(arrays, info) from a cache file, or None when it is missing or unreadable (then regenerate)."""
    if not path.is_file():
        return None
    try:  # each array's CRC-32 is checked as it is read: a flipped byte fails here, not later
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # closed even when np.load fails
            arrays = {k: f[k] for k in ("X_train", "y_train", "X_test", "y_test", "X_val", "y_val")}
            info = json.loads(str(f["info"]))
        if not isinstance(info, dict):
            raise ValueError("its info is not an object")
    except (OSError, ValueError, KeyError, EOFError, RecursionError, zipfile.BadZipFile, zlib.error) as exc:
        warnings.warn(f"the letters cache {path} is damaged ({type(exc).__name__}); regenerating it",
                      stacklevel=3)
        return None
    return arrays, dict(info, cache_hit=True)


def write_cache(path: Path, arrays: dict, info: dict) -> None:
    """Write atomically (train.files.atomic_write: a temp file, fsync, rename): never half a file.

    A cache that cannot be written costs the next run a regeneration, not this run its
    data, so it is a warning rather than an error.
    """
    stored_info = np.array(json.dumps(dict(info, cache_hit=False)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: np.savez(f, **arrays, info=stored_info),
                     advice="set XPNET_CACHE or cache_dir to a writable folder")
    except (OSError, OutputError) as e:
        reason = e if isinstance(e, OutputError) else f"cannot create {path.parent}: {e.strerror or e}"
        warnings.warn(f"could not cache the letters: {reason}", stacklevel=3)
