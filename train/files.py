"""Writing files so that a crash or a full disk never leaves a half-written one behind.

Every file xpnet writes goes to a temporary file in the same folder, is flushed to the
disk, then renamed over the target: a rename within one file system is atomic, so a
reader sees either the old file or the new one, never a mixture.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
import time
from pathlib import Path
from typing import BinaryIO, Callable

from xpnet.backends import XpnetError


# A write to a stream that failed for want of room or a working device (stdout on /dev/full):
# the user's environment, not a bug, so one line rather than a traceback.
WRITE_FAILURES = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
TEMP_SUFFIX = ".xpnet.tmp"  # every temp file atomic_write makes: `.NAME.PID.HEX.xpnet.tmp`
OUT_ADVICE = "free space or choose another --out"  # what a failed write says, where the command has --out


class OutputError(XpnetError):
    """A file or folder could not be written; nothing half-written was left."""


def atomic_write(path: str | Path, data: bytes | Callable[[BinaryIO], None],
                 advice: str = OUT_ADVICE) -> Path:
    """Write `data` to `path` atomically; raises OutputError (one line, ending in `advice`) on failure.

    `data` is the bytes, or a function that writes them to the file it is given (so a large
    file need not be built in memory first).
    """
    path = Path(path)
    # Named before it exists, so an interruption at any point (Ctrl-C included) can remove it.
    # Ends in TEMP_SUFFIX so that a sweep removes only temp files xpnet itself named.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
    try:
        # 0o666 less the umask, as any new file gets (mkstemp's 0600 hid checkpoints from others)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        if path.is_dir():  # a file cannot replace a folder: no free space or other --out fixes that
            raise OutputError(f"cannot write {path}: a folder is in its place; move or remove it, then run "
                              "the command again") from None
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; {advice}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    _sync_folder(path.parent)
    return path


def atomic_write_json(path: str | Path, obj, advice: str = OUT_ADVICE) -> Path:
    return atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode(), advice)


def ensure_folder(path: str | Path) -> Path:
    """Create an output folder, or say in one line why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {path}: {exc.strerror or exc}; choose another --out") from None
    if not os.access(path, os.W_OK):
        raise OutputError(f"output folder {path} is not writable; choose another --out")
    return path


def remove_stale_temps(folder: str | Path, pattern: str = f".*{TEMP_SUFFIX}", min_age_s: float = 0.0) -> list[Path]:
    """Delete the temp files (`.NAME.*.xpnet.tmp`) a killed xpnet left in `folder`; returns those removed.
    Only names xpnet makes: a user's own `.notes.tmp` in the folder is never touched.

    A run folder has one writer, so a temp file found when a run starts is from a process
    that died mid-write; without this every crash would leave one more behind. In a shared
    folder (the letters cache) another process may be writing right now, so there only
    temps untouched for `min_age_s` seconds go.
    """
    stale, now = [], time.time()
    for tmp in sorted(Path(folder).glob(pattern)):
        try:
            if now - tmp.stat().st_mtime < min_age_s:
                continue
        except OSError:  # gone meanwhile
            continue
        if _remove_quietly(str(tmp)):
            stale.append(tmp)
    return stale


def _remove_quietly(tmp: str) -> bool:
    try:
        os.unlink(tmp)
    except OSError:
        return False
    return True


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_regular(path) -> bool:
    """Whether `path` is a regular file (through symlinks): a named pipe would block a read
    forever and a device (/dev/zero) never end, so xpnet reads only regular files."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
