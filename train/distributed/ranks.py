"""This rank's place in the MPI job: the collectives training needs, each with a deadline,
and the run context (train/context.py) that makes `learn` and the job data-parallel."""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from xpnet.backends import XpnetError, resolve_backend
from xpnet.model.layer import drawing_from_row
from xpnet.train.context import RunContext
from xpnet.train.data import DataSet
from xpnet.train.distributed.launch import DEFAULT_TIMEOUT, DistributedError, import_mpi
from xpnet.train.distributed.sharded import ShardedData, piece, remove_orphaned_inputs, write_inputs_file
from xpnet.train.distributed.transfer import transfer_for, weights_digest
from xpnet.train.steps import EpochTotals
from xpnet.train.targets import check_data, is_classification
from xpnet.version import __version__

SPIN_SECONDS = 0.0005  # poll flat out this long (a balanced step's gradient sum takes less), then nap
NAP_SECONDS = 0.0001  # between polls, so a rank waiting for a late one leaves it the CPU
GRACE_SECONDS = 1.0  # a failing rank other than 0 waits this long, so an error every rank met is told once
FORWARD_SECONDS = 0.5  # between saying why and aborting: mpirun drops output still in flight when it kills
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class Distributed(RunContext):
    """This process's place in an MPI job and the collectives training needs, each with a deadline.

    The run context of one rank: passed to `train_job` and `learn(..., context=ctx)`;
    `Distributed.start()` joins the job mpirun started.
    """

    graphs_blocker = "a distributed step sums gradients through MPI between its kernels"

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
            count = backend.device_count()
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
        # a memory-mapped X's values were checked finite when the file was written: not read here
        X, y = check_data(model, X, y, what, read_inputs=not isinstance(X, np.memmap))
        return ShardedData(X, y, len(X), is_classification(model, y), model, self.rank, self.size)

    def train_step(self, model, xb, tb, optimizer, global_rows: int):
        """One step on this rank's piece of a global batch; returns (loss, output).

        The optimizer steps with the gradient summed over every rank. One rank has nothing
        to sum, so it takes the single process's step (update fold included) bit for bit.
        """
        if self.size == 1:
            return model.train_step(xb, tb, optimizer)
        loss, out, grads = self.loss_and_grads(model, xb, tb, global_rows)
        model.params = optimizer.step(model.params, grads)
        model.advance()  # as Network.train_step does: dropout's next step draws its next mask
        return loss, out

    def loss_and_grads(self, model, xb, tb, global_rows: int):
        """This rank's piece of a global batch: its loss and output, and the gradient of the
        whole batch's loss (each rank's mean gradient weighted by its share, summed over ranks)."""
        xp = model.backend.xp
        local_rows = xb.shape[0]
        if local_rows:
            with drawing_from_row(model.layers, piece(global_rows, self.rank, self.size)[0]):
                loss, out, grads = model.loss_and_grads(xb, tb)  # dropout: this rank's rows of one process's masks
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

    def epoch_totals(self, model, totals: EpochTotals) -> EpochTotals:
        """The epoch's loss sum and correct count over every rank and the first step any rank
        found non-finite: the epoch's one collective, which also checks the ranks' weights agree."""
        mine = np.zeros(1, dtype=[("sums", "f8", 3), ("weights", "u1", 32)])
        mine["sums"] = [float(totals.loss_sum), float(totals.correct), float(totals.finite_steps)]
        mine["weights"] = np.frombuffer(weights_digest(model), np.uint8)
        every = np.zeros(self.size, dtype=mine.dtype)
        self.wait(self.comm.Iallgather(mine.view(np.uint8), every.view(np.uint8)), "adding up the epoch's loss")
        if len({row.tobytes() for row in every["weights"]}) > 1:
            differs = [r for r in range(self.size) if every["weights"][r].tobytes() != every["weights"][0].tobytes()]
            raise DistributedError(f"the ranks' weights drifted apart (rank 0 and rank {differs[0]} differ): "
                                   "MPI returned different gradient sums to different ranks")
        sums = every["sums"]
        return EpochTotals(float(sums[:, 0].sum()), float(sums[:, 1].sum()), float(sums[:, 2].min()), totals.steps)

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
            data = super().load_data(config, progress and self.is_root)
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

    def check_same_start(self, config, backend, net, data) -> None:
        """Stop before training when the ranks were started differently: settings, versions,
        data or initial weights."""
        facts = {("--layers" if k == "hidden" else "--" + k.replace("_", "-")): v
                 for k, v in dataclasses.asdict(config).items() if k not in ("out", "device")}
        facts.update({"backend": backend.name, "numpy version": np.__version__, "xpnet version": __version__,
                      "training data": data.info.get("digest"), "initial weights": weights_digest(net).hex()[:16]})
        self.check_same(facts)

    def whole(self, train_set):
        return train_set.whole()


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
            ctx.abort(f"{where}{str(exc) or 'interrupted'}", 130)  # train_job's Interrupted says what is kept
        if not isinstance(exc, XpnetError):  # a bug in xpnet: keep its traceback
            traceback.print_exc()
        ctx.abort(f"{where}{exc}")
    return 0
