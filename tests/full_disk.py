"""A disk that fills up under the atomic writer (train/files.py), for the tests of what a full
disk costs a run, a report or a save."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import xpnet.train.files as files


class FullDisk:
    """From the `after`+1-th save of `folder/name` on, the atomic writer fails at `stage`:
    `write` puts half the bytes in the temp file and raises ENOSPC, as a disk filling up
    does; `fsync` raises ENOSPC after the write; `replace` raises EIO at the rename.

    It hooks `os.fdopen`, `os.fsync` and `os.replace` as train/files.py calls them, and
    recognises the writer's temp file (`.NAME.*.tmp` next to the target) by its inode.
    """

    def __init__(self, monkeypatch, folder: Path, name: str, after: int = 0, stage: str = "write"):
        self.folder, self.name, self.after, self.stage = Path(folder), name, after, stage
        self.saves, self.doomed, self.partial = 0, {}, []
        real_fdopen, real_fsync, real_replace = os.fdopen, os.fsync, os.replace
        disk = self

        class HalfWriter:
            def __init__(self, f, tmp):
                self.f, self.tmp = f, tmp

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

            def write(self, data):
                self.f.write(data[:len(data) // 2])
                self.f.flush()
                disk.partial.append((self.tmp, os.path.getsize(self.tmp)))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, attr):
                return getattr(self.f, attr)

        def fdopen(fd, *args, **kwargs):
            f = real_fdopen(fd, *args, **kwargs)
            tmp = self._temp_of(fd)
            if tmp is None:
                return f
            self.saves += 1
            if self.saves <= self.after:
                return f
            self.doomed[fd] = tmp
            return HalfWriter(f, tmp) if self.stage == "write" else f

        def fsync(fd):
            if fd in self.doomed and self.stage == "fsync":
                self.partial.append((self.doomed[fd], os.path.getsize(self.doomed[fd])))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        def replace(src, dst):
            if str(src) in map(str, self.doomed.values()) and self.stage == "replace":
                self.partial.append((str(src), os.path.getsize(src)))
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_replace(src, dst)

        monkeypatch.setattr(files.os, "fdopen", fdopen)
        monkeypatch.setattr(files.os, "fsync", fsync)
        monkeypatch.setattr(files.os, "replace", replace)

    def _temp_of(self, fd: int) -> str | None:
        """The writer's temp file for our target that `fd` is open on, if it is one."""
        try:
            inode = os.fstat(fd).st_ino
        except OSError:
            return None
        for tmp in self.folder.glob(f".{self.name}.*.tmp"):
            if tmp.stat().st_ino == inode:
                return str(tmp)
        return None
