"""The bench scripts' command line: the tables of choices, the shared step options, one-line errors.

Nothing here imports numpy, torch or xpnet at module level, and nothing may: a bench parses
its arguments first and sets its thread count (`limit_threads`) from them, and only then may
numpy or torch load, because their math libraries read the thread count once, when they load.
"""

from __future__ import annotations

import argparse
import os
import sys

# name on the command line -> (backend name, device) for backends.resolve_backend
BACKEND_CHOICES = {
    "numpy": ("numpy", "cpu"),
    "torch": ("torch", "cpu"),
    "cupy": ("cupy", "cuda"),
    "torch-cuda": ("torch", "cuda"),
    "array_api_strict": ("array_api_strict", "cpu"),
}
DEFAULT_BACKENDS = "numpy,torch,cupy,torch-cuda"

# --network name -> (hidden activation, output activation, loss)
NETWORKS = {
    "relu-ce": ("relu", "identity", "cross_entropy"),
    "sigmoid-quadratic": ("sigmoid", "sigmoid", "quadratic"),
}


def limit_threads(threads: int) -> None:
    """Pin every CPU math library to `threads` threads; call before numpy or torch load."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def add_step_arguments(p, batch_sizes: str = "64,256,1024",
                       threads_help: str = "BLAS threads (default: all cores)") -> None:
    """The options every step benchmark takes: batch sizes, layers, network, dtype, threads."""
    p.add_argument("--batch-sizes", type=positive_ints, default=batch_sizes,
                   help=f"comma-separated (default: {batch_sizes})")
    p.add_argument("--layers", type=layer_sizes, default="784,512,256,10",
                   help="layer sizes, input first (default: 784,512,256,10)")
    p.add_argument("--network", default="both", choices=[*NETWORKS, "both"],
                   help="relu-ce: ReLU hidden, linear output, softmax cross-entropy; sigmoid-quadratic: "
                        "sigmoid hidden and output, quadratic loss (the course's); both (default)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="float dtype (default: float32)")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count(), help=threads_help)


# -- bad input is one line and exit 2 (usage) or 1 (found later), never a traceback
class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, as `xpnet`'s own (train/cli.py; not imported
    from there, as that loads numpy before a bench has set its thread count)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be above 0, got 0")
    return value


def positive_ints(text: str) -> list[int]:
    """A comma-separated list of whole numbers of 1 or more, like 64,256,1024."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} holds no numbers: give at least one")
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"each must be at least 1, got {text!r}")
    return values


def layer_sizes(text: str) -> tuple[int, ...]:
    """Layer sizes, input first, like 784,32,10: at least an input and an output."""
    try:
        sizes = positive_ints(text)
    except argparse.ArgumentTypeError:
        sizes = []
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"give two or more sizes of at least 1, input first, like 784,32,10; "
                                         f"got {text!r}")
    return tuple(sizes)


def run_main(main) -> None:
    """Run a bench's `main` and exit with what it returns. An XpnetError (bad input only found
    later: an unusable backend, bad data) and a Ctrl-C end it in one line; anything else is a
    bug and keeps its traceback."""
    try:
        code = main()
    except KeyboardInterrupt:  # a Ctrl-C: what was measured so far is printed already
        print(f"{os.path.basename(sys.argv[0])}: interrupted", file=sys.stderr)
        sys.exit(130)  # as a shell reports a Ctrl-C, and as the xpnet command does
    except Exception as exc:
        from xpnet.backends import XpnetError  # only now: numpy must load after a bench sets its threads

        if not isinstance(exc, XpnetError):
            raise
        sys.exit(f"{os.path.basename(sys.argv[0])}: error: {one_line(str(exc))}")
    sys.exit(code)


def networks_from(choice: str) -> list[str]:
    return list(NETWORKS) if choice == "both" else [choice]
