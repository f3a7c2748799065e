"""One process per run folder: an OS file lock, and which folders a new run may write into.

Two processes training one folder overwrite each other's checkpoints, and one's start-up
sweep of stale temp files deletes the other's live one. So the process that writes a run
folder (training it, `xpnet report`, `xpnet evaluate` drawing into it) holds an exclusive
`flock` on `.xpnet-run.lock` inside it for as long as it writes.
The kernel drops the lock when the process ends however it ends (SIGKILL included), so a
crash never leaves a stale lock to clear by hand; the file itself stays, empty but for the
last holder's PID, and marks the folder as xpnet's.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from xpnet.train.files import OutputError

LOCK_NAME = ".xpnet-run.lock"

# What each command that writes a run folder can do about it, when the lock file cannot be
# made (a read-only folder) and when another process holds it: a fix the user can apply with
# that command (`report` has no --out; `--resume` names its run, so another --out is no fix).
ADVICE = {
    "train": ("choose another --out", "wait for it to finish or stop it, or give another --out"),
    "resume": ("make the folder writable: a resumed run writes its checkpoint there",
               "wait for it to finish or stop it, then resume"),
    "evaluate": ("give --out a writable folder for the report",
                 "wait for it to finish, or give --out another folder for the report"),
    "report": ("make the folder writable (xpnet report writes into it), or draw the report elsewhere with "
               "xpnet evaluate RUN --out FOLDER", "wait for it to finish, then run xpnet report again"),
}


class RunBusy(OutputError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """The run folder's lock, taken once with `take` and released on leaving the `with`;
    `command` (a key of ADVICE) picks the fix its one-line refusals name."""

    def __init__(self, command: str = "train"):
        self.fd: int | None = None
        self.cannot_create, self.busy = ADVICE[command]

    def take(self, folder: Path) -> None:
        """Lock `folder` (it must exist), or say in one line which process holds it."""
        if self.fd is not None:
            return
        try:
            import fcntl
        except ImportError:  # Windows: no flock; refusing beats two writers unawares
            raise OutputError("writing a run folder needs POSIX file locks (fcntl), which this "
                              "system lacks; run xpnet on Linux or macOS") from None
        try:
            # never through a symlink: truncating it would empty whatever file it points at
            flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)  # a pipe must not block
            fd = os.open(folder / LOCK_NAME, flags, 0o666)
        except OSError as exc:
            raise OutputError(f"cannot create {folder / LOCK_NAME}: {exc.strerror or exc}; "
                              f"{self.cannot_create}") from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # a pipe, or a hard link to a file of someone's
            os.close(fd)
            raise OutputError(f"{folder / LOCK_NAME} is not xpnet's lock file (a named pipe, a device or a link "
                              "to another file); remove it, then run again")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunBusy(f"{folder} is being written by another xpnet process (PID {holder}: training it "
                          f"or drawing its report); {self.busy}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None

