"""Data-parallel training across processes and machines, on MPI.

`mpirun -n N xpnet train --distributed ...` starts N copies of one job (ranks). Every rank
holds a full copy of the network and draws the same seeded shuffle on the host; each
global minibatch is cut into N consecutive pieces, one per rank. A rank backpropagates its
piece, scales the gradient by its share of the batch (local rows / global rows), and the
ranks sum the gradients with MPI Allreduce, so each takes the step the single-process run
takes (equal in float64 up to the order of the sums). Loss, accuracy and a digest of the
weights are exchanged once per epoch, never per step. Rank 0 alone logs, evaluates and
writes the run folder.

Data: the first rank on each machine loads the data set once, writes the training inputs
to a memory-mapped .npy file and lets its copy go. Every rank maps that file and, each
epoch, copies to its device only the rows its pieces of the batches need (about 1/N of
the set). Labels (8 bytes a sample) are held whole by every rank; the held-out split by
rank 0 alone.

Failures end the job instead of hanging it: a rank that dies is taken down with the rest by
mpirun; a rank that raises prints its error and calls MPI Abort; every collective is
non-blocking and polled against a deadline, so a rank that stops answering is noticed by
the others, which Abort; ranks started with different settings stop before training and
say which setting differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.train.data import DataError, DataSet, load_data
from xpnet.train.loop import DeviceData, learn
from xpnet.train.files import remove_stale_temps
from xpnet.train.targets import check_data, is_classification, targets_for
from xpnet.version import __version__

DEFAULT_TIMEOUT = 300.0  # seconds a rank waits for the others before it ends the job
SPIN_SECONDS = 0.0005  # poll flat out this long (a balanced step's gradient sum takes less), then nap
NAP_SECONDS = 0.0001  # between polls, so a rank waiting for a late one leaves it the CPU
GRACE_SECONDS = 1.0  # a failing rank other than 0 waits this long, so an error every rank met is told once
FORWARD_SECONDS = 0.5  # between saying why and aborting: mpirun drops output still in flight when it kills
CHUNK_ROWS = 8192  # rows converted and hashed at a time when the inputs file is written
INPUTS_PREFIX = "xpnet-mpi-"  # + the writing process id: orphaned folders can be told apart
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # how MPICH and Open MPI tell a process its job's size
MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")  # ... and its rank in it
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class DistributedError(XpnetError):
    """MPI is missing, or the ranks of a job disagree."""


def launched_by_mpi() -> int:
    """How many ranks the MPI launcher started this process among (1 when not launched by one)."""
    return _told_by_launcher(MPI_SIZE_VARIABLES, 1)


def launched_rank() -> int:
    """This process's rank among those the MPI launcher started (0 when not launched by one)."""
    return _told_by_launcher(MPI_RANK_VARIABLES, 0)


def _told_by_launcher(names: tuple[str, ...], otherwise: int) -> int:
    """The number the first of `names` set in the environment holds (MPICH's or Open MPI's)."""
    for name in names:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return otherwise


def import_mpi():
    """mpi4py's MPI module, initialised; a one-line error when it cannot be had."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as exc:
        raise DistributedError(f"--distributed needs mpi4py and an MPI library ({exc}); "
                               "install them with: pip install 'xpnet[mpi]'") from None
    return MPI


def piece(rows: int, rank: int, size: int) -> tuple[int, int]:
    """Rank `rank`'s slice (start, stop) of `rows` rows cut into `size` near-equal consecutive pieces."""
    return rows * rank // size, rows * (rank + 1) // size


class Distributed:
    """This process's place in an MPI job and the collectives training needs, each with a deadline.

    Passed to `learn(..., distributed=ctx)`; `Distributed.start()` joins the job mpirun started.
    """

    def __init__(self, MPI, comm, timeout: float = DEFAULT_TIMEOUT):
        self.MPI, self.comm, self.timeout = MPI, comm, float(timeout)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0
        self.node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)  # the ranks on this machine
        self.local_rank = self.node.Get_rank()
        leaders = np.array([int(self.local_rank == 0)], np.int64)
        self.allreduce_sum(leaders, "counting machines")
        self.machines = int(leaders[0])
        self.direct, self.transfer = True, "numpy buffers go to MPI directly"

    @classmethod
    def start(cls, timeout: float = DEFAULT_TIMEOUT) -> "Distributed":
        MPI = import_mpi()
        return cls(MPI, MPI.COMM_WORLD, timeout)

    def describe(self, batch_size: int | None = None) -> str:
        """One log line: ranks, machines, the MPI library, the batch split and how gradients travel."""
        library = " ".join(self.MPI.Get_library_version().split()[:3]).replace(" Version:", "").split(",")[0]
        parts = [f"distributed: {self.size} rank{'s' * (self.size != 1)} on {self.machines} "
                 f"machine{'s' * (self.machines != 1)} ({library})"]
        if batch_size and batch_size < self.size:
            parts.append(f"global batch {batch_size} is smaller than the {self.size} ranks, so "
                         f"{self.size - batch_size} of them idle every step")
        elif batch_size:
            parts.append(f"global batch {batch_size} = about {batch_size / self.size:g} per rank")
        parts.append(f"gradients: {self.transfer}; a rank silent for {self.timeout:g} s ends the job")
        return "; ".join(parts)

    def threads_hint(self, backend) -> str | None:
        """A warning when the ranks sharing this machine's cores would each start a math thread per core."""
        per_machine = self.node.Get_size()
        if backend.device_name != "cpu" or per_machine == 1 or any(os.environ.get(v) for v in THREAD_VARIABLES):
            return None
        threads = max(1, (os.cpu_count() or 1) // per_machine)
        return (f"hint: {per_machine} ranks share this machine's {os.cpu_count()} cores and each starts a math thread "
                f"per core; start the job as OMP_NUM_THREADS={threads} OPENBLAS_NUM_THREADS={threads} mpirun ...")

    # -- where this rank computes ----------------------------------------------------------
    def place(self, backend, device_asked: str | None):
        """The backend this rank computes on: with several GPUs on a machine, rank k of the
        machine takes GPU k mod count (unless a device index was given). Also settles how
        gradients reach MPI: numpy buffers directly, cupy buffers directly only through a
        CUDA-aware MPI, anything else through host memory."""
        device_asked = device_asked or os.environ.get("XPNET_DEVICE") or None
        if backend.device_name.startswith("cuda") and device_asked in (None, "cuda"):
            count = gpu_count(backend)
            if count > 1:
                backend = resolve_backend(backend.name, f"cuda:{self.local_rank % count}",
                                          backend.dtype_name, backend.tf32)
        self.direct, self.transfer = transfer_for(backend)
        return backend

    # -- collectives, each waited for with a deadline --------------------------------------
    def wait(self, request, what: str) -> None:
        """Poll a non-blocking request; a rank that waited `timeout` seconds ends the job."""
        start = time.monotonic()
        while not request.Test():
            waited = time.monotonic() - start
            if waited > self.timeout:
                self.abort(f"rank {self.rank} of {self.size} waited {self.timeout:g} s for the other ranks "
                           f"({what}): a rank is stuck or its machine is unreachable; ending the job "
                           "(raise --mpi-timeout if a step or the data loading is that slow)")
            if waited > SPIN_SECONDS:
                time.sleep(NAP_SECONDS)

    def abort(self, message: str, code: int = 1):
        """Say why on stderr and end every rank of the job (Ctrl-C, code 130, is no error)."""
        print(f"xpnet: {'' if code == 130 else 'error: '}{message}", file=sys.stderr, flush=True)
        time.sleep(FORWARD_SECONDS)
        self.comm.Abort(code)

    def allreduce_sum(self, buffer, what: str) -> None:
        """Sum `buffer` over every rank, in place (a numpy array, or a device array MPI can read)."""
        self.wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM), what)

    def broadcast(self, obj, what: str, comm=None):
        """Rank 0's `obj` (of `comm`, default every rank), pickled, on every rank of `comm`."""
        comm = comm or self.comm
        payload = pickle.dumps(obj) if comm.Get_rank() == 0 else b""
        size = np.array([len(payload)], np.int64)
        self.wait(comm.Ibcast(size, root=0), what)
        buffer = np.frombuffer(payload, np.uint8).copy() if comm.Get_rank() == 0 else np.empty(int(size[0]), np.uint8)
        self.wait(comm.Ibcast(buffer, root=0), what)
        return pickle.loads(buffer.tobytes())

    def allgather(self, obj, what: str) -> list:
        """Every rank's `obj`, in rank order, on every rank."""
        payload = np.frombuffer(pickle.dumps(obj), np.uint8)
        sizes = np.zeros(self.size, np.int64)
        self.wait(self.comm.Iallgather(np.array([payload.size], np.int64), sizes), what)
        gathered = np.empty(int(sizes.sum()), np.uint8)
        self.wait(self.comm.Iallgatherv(payload, [gathered, sizes.tolist()]), what)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [pickle.loads(gathered[a:b].tobytes()) for a, b in zip(bounds, bounds[1:])]

    def barrier(self, what: str, comm=None) -> None:
        self.wait((comm or self.comm).Ibarrier(), what)

    # -- what the training loop calls ------------------------------------------------------
    def shard(self, model, X, y, what: str = "training data") -> "ShardedData":
        """This rank's view of the training set (X may be a memory-mapped file)."""
        if isinstance(X, np.memmap):
            y = check_mapped(model, X, y, what)  # every value was checked finite when the file was written
        else:
            X, y = check_data(model, X, y, what)
        return ShardedData(X, y, len(X), is_classification(model, y), model, self.rank, self.size)

    def train_step(self, model, xb, tb, optimizer, global_rows: int):
        """One step on this rank's piece of a global batch; returns (loss, output).

        The optimizer steps with the gradient summed over every rank. One rank has nothing
        to sum, so it takes the single process's step (update fold included) bit for bit.
        """
        if self.size == 1:
            return model.train_step(xb, tb, optimizer)
        loss, out, grads = self.loss_and_grads(model, xb, tb, global_rows)
        optimizer.step(model.params, grads)
        return loss, out

    def loss_and_grads(self, model, xb, tb, global_rows: int):
        """This rank's piece of a global batch: its loss and output, and the gradient of the
        whole batch's loss (each rank's mean gradient weighted by its share, summed over ranks)."""
        xp = model.backend.xp
        local_rows = xb.shape[0]
        if local_rows:
            loss, out, grads = model.loss_and_grads(xb, tb)
        else:  # a last batch smaller than the number of ranks leaves this rank nothing
            loss = xp.zeros((), dtype=model.backend.dtype, device=model.backend.device)
            out = xp.zeros((0, model.sizes[-1]), dtype=model.backend.dtype, device=model.backend.device)
            grads = [xp.zeros_like(p) for p in model.params]
        return loss, out, self.sum_gradients(model.backend, grads, local_rows / global_rows)

    def sum_gradients(self, backend, grads: list, share: float) -> list:
        """sum over ranks of share * grad, as one flat buffer and one collective."""
        if self.size == 1:  # share is 1: nothing to add up
            return grads
        xp = backend.xp
        flat = xp.concat([xp.reshape(g, (-1,)) for g in grads])
        flat *= share
        if self.direct:
            backend.synchronize()  # MPI reads device memory outside the array library's stream
            self.allreduce_sum(flat, "summing gradients")
        else:
            host = backend.to_numpy(flat)
            self.allreduce_sum(host, "summing gradients")
            flat = backend.asarray(host)
        out, start = [], 0
        for g in grads:
            n = math.prod(g.shape)
            out.append(xp.reshape(flat[start:start + n], g.shape))
            start += n
        return out

    def epoch_totals(self, model, loss_sum, correct, finite_steps) -> tuple[float, float, float]:
        """The epoch's loss sum and correct count over every rank and the first step any rank
        found non-finite: the epoch's one collective, which also checks the ranks' weights agree."""
        mine = np.zeros(1, dtype=[("sums", "f8", 3), ("weights", "u1", 32)])
        mine["sums"] = [float(loss_sum), float(correct), float(finite_steps)]
        mine["weights"] = np.frombuffer(weights_digest(model), np.uint8)
        every = np.zeros(self.size, dtype=mine.dtype)
        self.wait(self.comm.Iallgather(mine.view(np.uint8), every.view(np.uint8)), "adding up the epoch's loss")
        if len({row.tobytes() for row in every["weights"]}) > 1:
            differs = [r for r in range(self.size) if every["weights"][r].tobytes() != every["weights"][0].tobytes()]
            raise DistributedError(f"the ranks' weights drifted apart (rank 0 and rank {differs[0]} differ): "
                                   "MPI returned different gradient sums to different ranks")
        sums = every["sums"]
        return float(sums[:, 0].sum()), float(sums[:, 1].sum()), float(sums[:, 2].min())

    def share_validation(self, record: dict) -> dict:
        """Rank 0's validation figures in every rank's record, so early stopping agrees."""
        keys = ("val_loss", "val_accuracy")
        values = np.array([[k in record, record.get(k, 0.0)] for k in keys], np.float64)
        self.wait(self.comm.Ibcast(values, root=0), "waiting for rank 0's validation")
        record.update({k: float(v) for k, (has, v) in zip(keys, values) if has})
        return record

    # -- data: one file a machine, each rank reading its rows --------------------------------
    def load_data(self, config, progress: bool = True) -> DataSet:
        """The data set as this rank needs it: training inputs memory-mapped from a file the
        first rank of each machine writes (then deletes, once every rank there has mapped it),
        labels in memory, the held-out split on rank 0 only."""
        held_out, manifest = None, None
        if self.local_rank == 0:
            remove_orphaned_inputs()
            data = load_data(config.data, seed=config.seed, n_train=config.train_samples,
                             n_test=config.test_samples, progress=progress and self.is_root)
            manifest = write_inputs_file(data, config.dtype)
            if self.is_root and data.X_test is not None:
                held_out = (data.X_test, data.y_test)
            del data
        manifest = self.broadcast(manifest, "waiting for this machine's first rank to load the data", self.node)
        folder = Path(manifest["folder"])
        try:
            X = np.load(folder / "X_train.npy", mmap_mode="r")
            y = np.load(folder / "y_train.npy")
            self.barrier("waiting for this machine's ranks to open the data", self.node)
        finally:  # also when a rank fails here; a killed job's folder goes at the next start
            if self.local_rank == 0:
                shutil.rmtree(folder, ignore_errors=True)  # the mappings keep the data readable
        return DataSet(X, y, *(held_out or (None, None)), classes=manifest["classes"],
                       image_shape=manifest["image_shape"], info=dict(manifest["info"], digest=manifest["digest"]))

    def check_same(self, facts: dict) -> None:
        """Stop before training when the ranks were started differently, naming what differs."""
        every = self.allgather(facts, "comparing the ranks' settings")
        problems = [f"{key} is {every[0].get(key)!r} on rank 0 but {other.get(key)!r} on rank {r}"
                    for r, other in enumerate(every) for key in sorted(set(every[0]) | set(other))
                    if other.get(key) != every[0].get(key)]
        if problems:
            raise DistributedError("the ranks do not agree (every rank must run the same command on the same "
                                   f"data and versions): {'; '.join(problems[:3])}"
                                   + (f"; and {len(problems) - 3} more" if len(problems) > 3 else ""))


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

    def order(self, rng: np.random.Generator, batch_size: int):
        if batch_size >= self.n:  # full batches: the same piece every epoch, no shuffle drawn
            if not self._full_batch:
                self._load(np.arange(*piece(self.n, self.rank, self.size)), [0, None])
                self._full_batch = True
            return None
        order = rng.permutation(self.n)
        pieces = [order[first:first + batch_size] for first in range(0, self.n, batch_size)]
        pieces = [p[slice(*piece(len(p), self.rank, self.size))] for p in pieces]
        self._load(np.concatenate(pieces), np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).tolist())
        return order

    def batch(self, order, first: int, batch_size: int):
        """Device arrays of this rank's piece of the global batch starting at `first`."""
        step = 0 if order is None else first // batch_size
        a, b = self._starts[step], self._starts[step + 1]
        X, T = self._local
        b = X.shape[0] if b is None else b
        return X[a:b, ...], T[a:b, ...]

    def labels_in(self, order):
        """The true classes of this rank's rows this epoch, in the order `batch` hands them out."""
        return self.net.backend.xp.argmax(self._local[1], axis=1)

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
        self._local, self._starts = (X, T), starts


def check_mapped(net, X: np.ndarray, y: np.ndarray, what: str) -> np.ndarray:
    """check_data's checks for a memory-mapped X without reading it: shapes, labels, targets."""
    if len(X) != len(y):
        raise DataError(f"{what}: X has {len(X)} samples but y has {len(y)}; they must match")
    check_data(net, X[:1], y[:1], what)  # dimensions, width, dtypes
    if y.dtype.kind in "iu" and (y.min() < 0 or y.max() >= net.sizes[-1]):
        raise DataError(f"{what}: labels must be in 0..{net.sizes[-1] - 1} for this {net.sizes[-1]}-output "
                        f"network, found {y.min()}..{y.max()}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise DataError(f"{what}: targets contain NaN or inf; clean them")
        return y.reshape(len(y), -1)
    return y


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


def weights_digest(model) -> bytes:
    """sha256 of every parameter's bytes: equal on every rank while the ranks agree."""
    digest = hashlib.sha256()
    for p in model.params:
        digest.update(np.ascontiguousarray(model.backend.to_numpy(p)).tobytes())
    return digest.digest()


def gpu_count(backend) -> int:
    if backend.name == "cupy":
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    if backend.name == "torch":
        import torch

        return torch.cuda.device_count()
    return 1


def transfer_for(backend) -> tuple[bool, str]:
    """(whether MPI reads the backend's arrays directly, how the gradients travel, in words)."""
    if backend.name == "numpy":
        return True, "numpy buffers go to MPI directly"
    if backend.name == "cupy":
        aware = mpi_cuda_support()
        if aware:
            return True, "cupy buffers go to MPI directly (the MPI library reports CUDA support)"
        why = "does not report CUDA support" if aware is False else "cannot say whether it supports CUDA"
        return False, f"cupy buffers are staged through host memory (the MPI library {why})"
    return False, f"{backend.name} buffers are staged through host memory (MPI takes numpy and CUDA buffers)"


def mpi_cuda_support() -> bool | None:
    """Whether the loaded MPI library says it can read CUDA device memory
    (MPIX_Query_cuda_support, in MPICH and Open MPI); None when it cannot say."""
    import ctypes

    for path in loaded_libmpi():
        try:
            query = ctypes.CDLL(path).MPIX_Query_cuda_support
        except (OSError, AttributeError):
            continue
        query.restype = ctypes.c_int
        return bool(query())
    return None


def loaded_libmpi() -> list[str]:
    """Paths of the libmpi shared libraries this process has loaded (Linux; else none)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    return sorted({line.split()[-1] for line in maps.splitlines()
                   if "/" in line and Path(line.split()[-1]).name.startswith("libmpi.so")})


# -- the job ------------------------------------------------------------------------------

def run_facts(config, backend, net, data) -> dict:
    """What every rank must agree on: the command's settings, versions, data and weights."""
    facts = {("--layers" if k == "hidden" else "--" + k.replace("_", "-")): v
             for k, v in dataclasses.asdict(config).items() if k not in ("out", "device")}
    facts.update({"backend": backend.name, "numpy version": np.__version__,
                  "xpnet version": __version__,
                  "training data": data.info.get("digest"), "initial weights": weights_digest(net).hex()[:16]})
    return facts


def train_job_distributed(config, log, ctx: Distributed, progress: bool = True, resume: bool = False):
    """`train_job` as one rank of an MPI job: every rank trains, rank 0 alone writes and reports.

    Resuming reads the run folder on every rank (it must be on a file system they share).
    Returns the run folder on rank 0, None elsewhere.
    """
    from xpnet.train import jobs

    jobs.check_config(config)
    config = dataclasses.replace(config, data=jobs.absolute_spec(config.data))
    if ctx.is_root and not resume:  # refused before any rank makes data
        jobs.check_new_run_folder(jobs.run_folder(config))
    backend = ctx.place(resolve_backend(config.backend, config.device, config.dtype, config.tf32), config.device)
    log = log if ctx.is_root else (lambda line: None)
    log(f"backend {backend}" + (f"  [{backend.note}]" if backend.note else ""))
    log(ctx.describe(config.batch_size))
    hint = ctx.threads_hint(backend)
    if hint:
        log(hint)
    data = ctx.load_data(config, progress)
    jobs.check_data_fits(config, data)
    jobs.warn_about_empty_classes(data, log)
    run_dir = None
    if ctx.is_root:  # the run folder has one writer
        run_dir = jobs.ensure_folder(jobs.run_folder(config))
        remove_stale_temps(run_dir)
    if resume:
        net, state = jobs.resume_run(Path(config.out), backend, config, log)
    else:
        net, state = jobs.build_network(config, data, backend), None
    ctx.check_same(run_facts(config, backend, net, data))
    log(jobs.network_line(config, net, data))
    held_out = (data.X_test, data.y_test) if data.X_test is not None else None
    on_epoch = None
    if ctx.is_root:
        if data.classes and not resume:  # no held-out split: a slice of the file, never all of it
            probe = held_out or (data.X_train[:10_000], data.y_train[:10_000])
            jobs.log_baseline(net, probe, len(data.classes), log)
        meta = jobs.run_metadata(config, data)
        jobs.atomic_write_json(run_dir / "config.json", meta["config"])
        on_epoch = jobs.epoch_saver(run_dir, meta)
    with jobs.telling_what_is_kept(run_dir):
        learn(net, (data.X_train, data.y_train), epochs=config.epochs, batch_size=config.batch_size,
              lr=config.lr, optimizer=config.optimizer, seed=config.seed, validation=held_out,
              patience=config.patience, log=log, on_epoch=on_epoch, resume=state, distributed=ctx,
              cuda_graphs=config.cuda_graphs)
    if ctx.is_root:
        jobs.finish_run(net, held_out, data, run_dir, log)
    return run_dir


def run_distributed(job, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Run `job(ctx)` as one rank; any failure on any rank ends the whole job, said once.

    A job of one rank (`xpnet train --distributed` without mpirun) fails as a plain run does.

    A rank other than 0 waits a moment before it reports: an error every rank met (a bad
    setting, a diverged loss) is then told by rank 0, whose Abort ends the others first.
    """
    ctx = Distributed.start(timeout)
    try:
        job(ctx)
    except (Exception, KeyboardInterrupt) as exc:
        if ctx.size == 1:  # no other rank to stop: fail like a single-process run
            raise
        if not ctx.is_root:
            time.sleep(GRACE_SECONDS)
        where = "" if ctx.is_root else f"rank {ctx.rank} of {ctx.size}: "
        if isinstance(exc, KeyboardInterrupt):
            ctx.abort(f"{where}{str(exc) or 'interrupted'}", 130)  # train_job_distributed's Interrupted says what is kept
        if not isinstance(exc, XpnetError):  # a bug in xpnet: keep its traceback
            traceback.print_exc()
        ctx.abort(f"{where}{exc}")
    return 0
