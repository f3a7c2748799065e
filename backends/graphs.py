"""Recording a function's GPU work once as a CUDA graph, and replaying it (Backend.capture).

Each library records differently, and each has one rule that matters here: the memory the
recorded kernels use must belong to the recording for as long as it is replayed, or a later
array would be handed the same addresses and the replay would write over it. PyTorch gives
every graph a private memory pool itself; CuPy does not, so its recording allocates from a
pool of its own that nothing else ever draws from.

Both run the function once for real first, on a side stream (CuPy records on that same
stream; PyTorch on a capture stream of its own): kernels compile and libraries set up their
handles there, outside the recording.
"""

from __future__ import annotations

from typing import Any, Callable

from xpnet.backends.base import GraphUnavailable


def torch_capture(device) -> Callable[[Callable[[], Any]], Callable[[], None]]:
    """Backend.capture for torch on a CUDA device, through torch.cuda.graphs."""
    import torch

    def capture(fn):
        with torch.cuda.device(device):
            home = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(home)
            with torch.cuda.stream(side):
                fn()  # the real run: the one PyTorch asks for before recording
            home.wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    fn()
            except RuntimeError as exc:
                # A failed recording can leave PyTorch on its capture stream (torch.cuda.graph's
                # exit ends the capture before it restores the stream, and that end can raise).
                torch.cuda.set_stream(home)
                torch.cuda.synchronize()
                if "OutOfMemory" in type(exc).__name__:
                    raise
                raise GraphUnavailable(f"PyTorch could not record the step: {_first_line(exc)}") from None
        return graph.replay

    return capture


def cupy_capture(device) -> Callable[[Callable[[], Any]], Callable[[], None]]:
    """Backend.capture for cupy: recorded on a side stream, from a memory pool of its own."""
    import cupy as cp

    def capture(fn):
        with device:  # a stream belongs to the device current when it is made
            pool, stream = cp.cuda.MemoryPool(), cp.cuda.Stream(non_blocking=True)
            device.synchronize()  # what the host queued for this step (its batch) has landed
            with cp.cuda.using_allocator(pool.malloc), stream:
                fn()  # the real run: kernels compile, and `pool` gets blocks of the step's sizes
                stream.synchronize()
                graph = _record(stream, fn)
            stream.synchronize()
        return CupyRecording(graph, pool, stream)

    return capture


def _record(stream, fn):
    """fn's kernels on `stream`, recorded, not run; GraphUnavailable if CuPy refuses one,
    or if CUDA refuses to end or instantiate the recording."""
    stream.begin_capture()
    try:
        fn()
    except Exception as exc:  # NotImplementedError (a library CuPy will not record), RuntimeError
        try:
            stream.end_capture()
        except Exception:  # the failed call may have invalidated the recording; it is discarded anyway
            pass
        raise _unavailable(exc) from None
    try:
        return stream.end_capture()
    except Exception as exc:  # CUDARuntimeError: an invalidated recording, or one CUDA cannot instantiate
        raise _unavailable(exc) from None


def _unavailable(exc: Exception) -> Exception:
    """Why the step cannot be replayed, or the error itself when it is out of memory: a step
    that needs less memory is the fix there, not a fallback to unrecorded steps."""
    if "OutOfMemory" in type(exc).__name__:
        return exc
    return GraphUnavailable(f"CuPy could not record the step: {_first_line(exc)}")


class CupyRecording:
    """A recorded graph and the pool and stream its memory belongs to, kept alive together."""

    def __init__(self, graph, pool, stream):
        self.graph, self.pool, self.stream = graph, pool, stream

    def __call__(self) -> None:
        self.graph.launch()  # on the current stream, after the work queued before it


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
