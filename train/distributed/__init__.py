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

from xpnet.train.distributed.launch import DEFAULT_TIMEOUT, DistributedError, import_mpi, launched_by_mpi, launched_rank
from xpnet.train.distributed.ranks import Distributed, run_distributed
from xpnet.train.distributed.sharded import INPUTS_PREFIX, ShardedData, piece, remove_orphaned_inputs, write_inputs_file

__all__ = ["DEFAULT_TIMEOUT", "Distributed", "DistributedError", "INPUTS_PREFIX", "ShardedData", "import_mpi",
           "launched_by_mpi", "launched_rank", "piece", "remove_orphaned_inputs", "run_distributed",
           "write_inputs_file"]
