"""The `xpnet` command's entry point.

Loading numpy, scipy and the rest takes most of a second; a Ctrl-C that lands then would
print Python's traceback from somewhere inside an import. This module imports nothing heavy
(`import xpnet` loads its names on first use), so the command itself loads inside a `try`,
and that Ctrl-C is a quiet exit 130, as one during the work is (train/cli.py).
"""

from __future__ import annotations

import _thread
import signal
import sys
import threading

RESEND_AFTER_S = 0.01  # a lost Ctrl-C is sent again this much later: after the hook, in the command's code


def main(argv: list[str] | None = None) -> int:
    seen: list[int] = []
    previous = _note_ctrl_c(seen)
    try:
        from xpnet.train.cli import main as run
    except KeyboardInterrupt:
        return _interrupted()
    except Exception:
        # numpy's C extension turns a Ctrl-C inside its own imports into an ImportError
        # ("PyCapsule_Import could not import module datetime"): a Ctrl-C all the same
        if not seen:
            raise
        return _interrupted()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    resends: list[threading.Timer] = []
    unraisable_hook, sys.unraisablehook = sys.unraisablehook, _ctrl_c_again(sys.unraisablehook, resends)
    try:
        return run(argv)
    except KeyboardInterrupt:  # the command reports its own; this is one that lands on its way out
        return _interrupted()
    finally:
        sys.unraisablehook = unraisable_hook
        for resend in resends:  # the command is over: sent now, the Ctrl-C would land outside it
            resend.cancel()


def _note_ctrl_c(seen: list[int]):
    """While the command loads, Ctrl-C is Python's KeyboardInterrupt that also leaves a note in
    `seen`, which survives an extension module that swallows the exception; returns the handler
    to put back (None where nothing was changed: a SIGINT ignored, or not the main thread)."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        return None

    def note(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, note)
    except ValueError:  # not the main thread: signals are not ours to handle
        return None
    return previous


def _ctrl_c_again(fallback, resends: list):
    """Python cannot raise out of a weakref callback or a `__del__`: a Ctrl-C that lands in one,
    while the garbage collector runs it, is printed as "Exception ignored" and lost, and the
    command runs on. This hook sends the Ctrl-C again instead, so that it lands a moment later
    in the command's own code, which stops as a Ctrl-C should. A command that ends before then
    has finished its work; `main` cancels what is still to be sent (`resends`)."""
    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):  # sent from outside, once this hook has returned
            resend = threading.Timer(RESEND_AFTER_S, _thread.interrupt_main)
            resend.daemon = True  # a command that ends first is not kept waiting for it
            resends.append(resend)
            resend.start()
        else:
            fallback(unraisable)
    return hook


def _interrupted() -> int:
    print("xpnet: interrupted", file=sys.stderr)
    return 130
