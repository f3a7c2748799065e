"""Each contestant of the step bench in a process of its own, taking turns with the others.

In one process, the threads of the library that ran last (numpy's OpenBLAS, PyTorch's
OpenMP) go on spinning after their call and take the cores from the next library's, and two
thread pools share one process's scheduling: a comparison made that way flatters whichever
contestant's threads are the better neighbours. So every contestant is built, warmed up and
timed in a spawned process of its own (a fresh interpreter that loads only what its recipe
needs), and the parent only says whose turn it is. A turn is one timed round, measured inside
the worker, so starting a process or passing a message is never part of a figure.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
from dataclasses import dataclass, field

from bench.contestants import (
    Spec, ceiling_library, products_contestant, torch_eager_contestant, xpnet_contestant, xpnet_graph_contestant,
)
from bench.options import BACKEND_CHOICES, limit_threads
from bench.timing import Timing, calibrate, time_round

BUILDERS = {  # a recipe's kind -> how its worker builds the contestant from the resolved backend
    "products": lambda backend, r: products_contestant(ceiling_library(backend), backend.device_name, r.spec),
    "xpnet": lambda backend, r: xpnet_contestant(backend, r.spec, r.name, r.fold),
    "xpnet graph": lambda backend, r: xpnet_graph_contestant(backend, r.spec, r.name),
    "torch eager": lambda backend, r: torch_eager_contestant(r.spec, backend.device_name, r.name),
}


@dataclass(frozen=True)
class Recipe:
    """What one worker builds. Plain values only: it is pickled into the spawned process."""

    kind: str  # a key of BUILDERS
    name: str  # the contestant's name in the table
    backend: str  # a BACKEND_CHOICES label; every worker resolves it, so process-wide switches match
    spec: Spec
    threads: int  # numpy's BLAS and torch alike
    tf32: bool = False
    fold: bool | None = None  # SGD's update in (True) or out of (False) the products; None: the default
    plain: bool = False  # the backend's fused kernels off (the plain xp ops)


START_LIMIT_S = 600.0  # building and warming up a contestant: imports, a CUDA context, cuDNN's first calls
TURN_LIMIT_S = 120.0  # one timed round (about a tenth of a second) and its reply; beyond it a worker is stuck
TOLERATED = ("ImportError", "ModuleNotFoundError", "RuntimeError", "AssertionError")  # no PyTorch on that device


class WorkerFailed(Exception):
    """A worker could not build or run its contestant, or stopped answering. `kind` is its
    exception's class name ("" where it gave none); the message ends with its traceback."""

    def __init__(self, message: str, kind: str = ""):
        super().__init__(message)
        self.kind = kind


@dataclass
class Worker:
    """The parent's handle on one contestant's process: `take_turn()` times one round there."""

    name: str
    pid: int  # the worker's process, so a test can see that no two contestants share one
    libraries: tuple  # the array libraries loaded in the worker's process
    note: str | None  # what the worker wants said under the table (a graph that failed to record)
    times: list = field(default_factory=list)  # seconds per step, one per turn
    _conn: object = None
    _process: object = None

    def take_turn(self) -> float:
        try:
            self._conn.send("turn")
            return _answer(self._conn, self.name, TURN_LIMIT_S)
        except (OSError, WorkerFailed) as exc:
            self.close()
            raise exc if isinstance(exc, WorkerFailed) else WorkerFailed(f"the {self.name} process is gone") from None

    def close(self) -> None:
        """Ask the worker to stop; kill it if it will not; either way wait for it and close the pipe."""
        try:
            if self._process.is_alive():
                self._conn.send("stop")
                self._process.join(timeout=30)
        except OSError:
            pass
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=30)
        self._conn.close()


def start(recipe: Recipe, timing: Timing) -> Worker:
    """Spawn the worker, and wait until it has built its contestant and warmed it up, so no two
    warm-ups overlap. Raises WorkerFailed with the worker's error if it could not."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(theirs, recipe, timing), daemon=True)
    # Started with SIGINT ignored, the new interpreter keeps ignoring it (Python installs its
    # KeyboardInterrupt handler only over the default), so a Ctrl-C while it still loads the
    # bench's modules, before _serve, cannot print a traceback of its own.
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, interrupt)
    theirs.close()
    try:
        pid, libraries, note = _answer(ours, recipe.name, START_LIMIT_S)
    except WorkerFailed:
        process.kill()
        process.join(timeout=30)
        ours.close()
        raise
    return Worker(recipe.name, pid, libraries, note, _conn=ours, _process=process)


def _answer(conn, name: str, limit_s: float):
    """The worker's reply, or WorkerFailed: its error, its silence past `limit_s`, or its end."""
    try:
        if not conn.poll(limit_s):
            raise WorkerFailed(f"the {name} process gave no answer in {limit_s:.0f} s")
        ok, value = conn.recv()
    except (EOFError, OSError):
        raise WorkerFailed(f"the {name} process ended without a word") from None
    if not ok:
        kind, line, trace = value
        raise WorkerFailed(f"{line}\n(the {name} process's traceback:)\n{trace}", kind)
    return value


def _serve(conn, recipe: Recipe, timing: Timing) -> None:
    """The worker's whole life: build, warm up, say ready, then one timed round per "turn".
    A Ctrl-C is the parent's to handle: it stops the bench, and the worker ends quietly when
    the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        limit_threads(recipe.threads)  # before numpy or torch load
        contestant = _build(recipe)
        steps = calibrate(contestant, timing)
        loaded = tuple(lib for lib in ("numpy", "torch", "cupy") if lib in sys.modules)
        ready = (True, (os.getpid(), loaded, contestant.note()))
    except Exception as exc:  # the parent decides what a failure means
        ready = (False, _failure(exc))
    if not _say(conn, ready) or not ready[0]:
        return
    while _next_order(conn) == "turn":
        try:
            reply = (True, time_round(contestant, steps))
        except Exception as exc:
            reply = (False, _failure(exc))
        if not _say(conn, reply) or not reply[0]:
            return


def _failure(exc: Exception) -> tuple:
    """(class name, first line, traceback) of an exception, as plain strings for the pipe."""
    said = str(exc).strip()
    return type(exc).__name__, said.splitlines()[0] if said else type(exc).__name__, traceback.format_exc()


def _say(conn, message) -> bool:
    """Send to the parent; False if it is gone."""
    try:
        conn.send(message)
        return True
    except OSError:  # BrokenPipeError among them
        return False


def _next_order(conn) -> str:
    """The parent's next word; a parent gone (its end of the pipe closed) means stop."""
    try:
        return conn.recv()
    except (EOFError, OSError):
        return "stop"


def _build(recipe: Recipe):
    """The recipe's contestant, on its backend resolved in this process (so the process-wide
    switches, threads and TF32, are this worker's own)."""
    import dataclasses

    from xpnet.backends import resolve_backend

    name, device = BACKEND_CHOICES[recipe.backend]
    backend = resolve_backend(name, device, recipe.spec.dtype, tf32=recipe.tf32)
    if recipe.kind == "torch eager" or name == "torch":
        _set_torch(recipe.threads, recipe.tf32)
    if recipe.plain:
        backend = dataclasses.replace(backend, kernels={})
    return BUILDERS[recipe.kind](backend, recipe)


def _set_torch(threads: int, tf32: bool) -> None:
    """PyTorch's thread count, and TF32 for its own products: both process-wide switches."""
    import torch

    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = tf32
