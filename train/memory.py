"""Memory a run asks for, said before and when it runs out, in one line.

On Linux an allocation past the machine's memory is not refused: the process is killed (SIGKILL,
no message) when it touches the pages. So a step too big for the host is refused before the
first one is taken, and numpy's, CuPy's and PyTorch's out-of-memory errors become a line naming
the batch size to lower.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from xpnet.train.data.dataset import DataError
from xpnet.train.data.npz import memory_budget


class OutOfMemory(DataError):
    """A batch did not fit in memory; the message names the batch size to lower."""


@contextmanager
def out_of_memory_as_error(batch_size: int):
    """Turn numpy's MemoryError and CuPy's / PyTorch's out-of-memory errors into one line."""
    try:
        yield
    except MemoryError:
        raise OutOfMemory(f"out of host memory at batch size {batch_size}: "
                          f"try --batch-size {max(1, batch_size // 2)}") from None
    except Exception as exc:  # cupy.cuda.memory.OutOfMemoryError, torch.OutOfMemoryError
        if "OutOfMemory" not in type(exc).__name__:
            raise
        raise OutOfMemory(f"out of GPU memory at batch size {batch_size}: "
                          f"try --batch-size {max(1, batch_size // 2)} or a smaller network") from None


def check_step_fits(model, batch_size: int, ranks: int = 1) -> None:
    """Refuse a network and batch whose forward pass alone (every layer's input, windows and
    output, kept for backward) would hold more than half the machine's memory. Host backends
    only: a GPU's allocator refuses in time, and `out_of_memory_as_error` says so."""
    if model.backend.free_memory() is not None:  # device memory
        return
    rows = -(-batch_size // ranks)  # each rank holds its piece of the batch
    itemsize = np.dtype(model.backend.dtype_name).itemsize
    per_row = [layer.floats_per_row() for layer in model.layers]
    need, budget = sum(per_row) * rows * itemsize, memory_budget()
    if need > budget:
        biggest = model.layers[int(np.argmax(per_row))].word()
        fits = budget // (sum(per_row) * itemsize)
        raise OutOfMemory(f"a training step at batch size {batch_size} would hold {_size(need)}, {biggest} the most, "
                          f"past half this machine's memory ({_size(budget)}): "
                          + (f"try --batch-size {fits}" if fits >= 1 else f"make {biggest} smaller"))


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"
