"""Whether mpirun started this process, and mpi4py, imported only when a job asks for it.

Reading the launcher's environment needs no MPI at all, so `xpnet train` run by mpirun
without --distributed can say so before anything else.
"""

from __future__ import annotations

import os

from xpnet.backends import XpnetError

DEFAULT_TIMEOUT = 300.0  # seconds a rank waits for the others before it ends the job
MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")  # how MPICH and Open MPI tell a process its job's size
MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK")  # ... and its rank in it


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
