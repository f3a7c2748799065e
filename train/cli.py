"""The `xpnet` command: train, evaluate, predict, backends, parity.

Errors in what the user asked for print one line (`xpnet: error: ...`) and exit 1;
anything else is a bug in xpnet and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings

from xpnet.backends import BACKENDS, XpnetError
from xpnet.backends.base import FLOAT_DTYPES
from xpnet.model.activations import ACTIVATIONS
from xpnet.model.init import INITS
from xpnet.model.losses import LOSSES
from xpnet.train.data.spec import SCHEMES
from xpnet.train.optimizers import OPTIMIZERS
from xpnet.version import __version__
from xpnet.train.config import PRESETS, TrainConfig

EXIT_ERROR = 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    python_format, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        return args.handler(args)
    except XpnetError as exc:
        print(f"xpnet: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # train_job's Interrupted says what of the run is kept
        print(f"xpnet: {str(exc) or 'interrupted'}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `xpnet train | head`: the reader left; stop quietly, as Unix tools do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):  # stdout is not a file (captured, replaced): nothing to flush
            pass
        return 141
    finally:
        warnings.formatwarning = python_format  # main() may run inside a program of its own


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning is one line too, not Python's two with the source line that raised it."""
    return f"xpnet: warning: {one_line(str(message))}\n"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong, where to read more)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: str) -> str:
    """A message stays one line whatever it quotes: a path or an argument may hold a newline."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="xpnet", description="A deep neural network from first principles.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    p = sub.add_parser("backends", help="list array backends: version, usable or why not, device")
    p.set_defaults(handler=cmd_backends)
    p = sub.add_parser("parity", help="check every usable backend against numpy float64")
    p.add_argument("--steps", type=_positive_int, default=50, help="SGD steps before comparing weights (default 50)")
    p.add_argument("--seed", type=_seed, default=0, help="seed for data and weights (default 0)")
    p.set_defaults(handler=cmd_parity)
    return parser


def _add_backend_flags(p) -> None:
    p.add_argument("--backend", help=f"{one_of([*BACKENDS, 'auto'])} (default: $XPNET_BACKEND, else auto)")
    p.add_argument("--device", help="cpu, cuda or cuda:N; array_api_strict also takes device1, a pretend second "
                                    "device (default: $XPNET_DEVICE, else the backend's own)")


def _add_train(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a network (default: letters, on the auto backend)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="default (relu, cross-entropy, momentum) or course (sigmoid, quadratic, plain SGD)")
    p.add_argument("--data", help=f"{one_of(SCHEMES.values())} (default {d.data})")
    p.add_argument("--train-samples", type=_positive_int,
                   help="training samples to generate (letters) or keep (files) (default 60000 / all)")
    p.add_argument("--test-samples", type=_positive_int,
                   help="held-out samples to generate or keep (default 10000 / all)")
    _add_backend_flags(p)
    p.add_argument("--dtype", choices=FLOAT_DTYPES, help=f"float dtype (default {d.dtype})")
    p.add_argument("--tf32", action="store_true", default=None,
                   help="let a GPU compute float32 matrix products in TF32: faster, ~3 digits (default off)")
    p.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="on a GPU, record one training step as a CUDA graph and replay it for every full "
                        "batch: one launch instead of ~40 (default: on for cupy and torch on CUDA)")
    p.add_argument("--seed", type=int, help=f"seed for weights, shuffling and data (default {d.seed})")
    p.add_argument("--epochs", type=_positive_int, help=f"passes over the training set (default {d.epochs})")
    p.add_argument("--batch-size", type=_positive_int, help=f"samples per step (default {d.batch_size})")
    p.add_argument("--lr", type=_learning_rate, help=f"learning rate, or 'auto' for the course's recipe (default {d.lr})")
    p.add_argument("--layers", type=_sizes, dest="hidden", help="hidden layer sizes, e.g. 256,128 (default 256,128)")
    p.add_argument("--activation", help=f"{one_of(ACTIVATIONS)} (default {d.activation})")
    p.add_argument("--loss", help=f"{one_of(LOSSES)} (default {d.loss})")
    p.add_argument("--optimizer", help=f"{one_of(OPTIMIZERS)} (default {d.optimizer})")
    p.add_argument("--init", help=f"{one_of(INITS)} (default {d.init})")
    p.add_argument("--patience", type=_positive_int, help="early stop after this many epochs without val improvement")
    p.add_argument("--out", help="run folder (default runs/<data>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue a run folder from its last finished epoch "
                   "(with --epochs to train longer; other settings come from the run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--distributed", action="store_true",
                   help="one rank of a data-parallel MPI job: start with mpirun -n N xpnet train --distributed "
                        "(needs pip install 'xpnet[mpi]')")
    p.add_argument("--mpi-timeout", type=_positive_float, metavar="SECONDS",
                   help="with --distributed: end the job when a rank has waited this long for the others "
                        "(default 300)")
    p.set_defaults(handler=cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, per-class figures and confusion matrix of a checkpoint")
    p.add_argument("checkpoint", help="a run folder or a .safetensors checkpoint")
    p.add_argument("--data", help="data to evaluate on (default: the data the run trained on, its held-out "
                                  "part; letters for a bare checkpoint)")
    p.add_argument("--out", help="folder for the confusion matrix (default: the checkpoint's folder)")
    _add_backend_flags(p)
    p.set_defaults(handler=cmd_evaluate)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="read the letter in each image")
    p.add_argument("checkpoint", help="a run folder or a .safetensors checkpoint")
    p.add_argument("images", nargs="+", help="image files of any size and colour")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    _add_backend_flags(p)
    p.set_defaults(handler=cmd_predict)


# Settings a resumed run may change: how long, where, and how it reports. The rest would
# make it a different run.
RESUMABLE = {"epochs", "patience", "backend", "device", "tf32", "cuda_graphs"}


def config_from_args(args) -> TrainConfig:
    """Preset first, then every flag the user gave on top of it (or the run's, to resume)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if args.resume:
        from xpnet.train.runs import read_run_config

        changed = sorted(set(given) - RESUMABLE)
        if changed or args.preset != "default":
            flags = ", ".join("--" + name.replace("_", "-") for name in changed) or "--preset"
            raise XpnetError(f"{flags} cannot change when resuming; resume takes the run's own settings "
                             f"(only --epochs, --patience, --backend, --device, --tf32 and --cuda-graphs may be given)")
        return dataclasses.replace(read_run_config(args.resume), **given, out=args.resume)
    config = dataclasses.replace(TrainConfig(), **PRESETS[args.preset])
    return dataclasses.replace(config, **given)


def cmd_train(args) -> int:
    from tqdm import tqdm

    from xpnet.train.jobs import train_job

    config = config_from_args(args)
    if args.distributed:
        return train_distributed(config, args)
    if args.mpi_timeout is not None:
        raise XpnetError("--mpi-timeout applies to --distributed runs only: add --distributed (under mpirun) "
                         "or leave it out")
    from xpnet.train.distributed import launched_by_mpi, launched_rank

    if launched_by_mpi() > 1:  # N copies of a single-process run would overwrite each other's files
        if launched_rank() != 0:
            return EXIT_ERROR  # rank 0 says why, once
        raise XpnetError(f"started by an MPI launcher as one of {launched_by_mpi()} processes without "
                         "--distributed: add --distributed to train data-parallel")
    with tqdm(total=config.epochs, desc="epochs", disable=args.no_progress or not sys.stderr.isatty(),
              leave=False) as bar:
        def log(line: str) -> None:
            bar.write(line)
            if line.startswith("epoch "):
                bar.update(1)

        train_job(config, log, progress=not args.no_progress, resume=bool(args.resume))
    return 0


def train_distributed(config, args) -> int:
    """`xpnet train --distributed`: every rank runs this; rank 0 prints (no progress bar under MPI)."""
    from xpnet.train.distributed import DEFAULT_TIMEOUT, run_distributed
    from xpnet.train.jobs import train_job

    def log(line: str) -> None:
        print(line, flush=True)  # under mpirun stdout is a pipe: flush, or lines come in clumps

    progress = not args.no_progress and sys.stderr.isatty()
    return run_distributed(lambda ctx: train_job(config, log, progress, resume=bool(args.resume), context=ctx),
                           timeout=args.mpi_timeout or DEFAULT_TIMEOUT)


def cmd_evaluate(args) -> int:
    from xpnet.train.evaluation import evaluate_job

    evaluate_job(args.checkpoint, args.data, args.backend, args.device, print, args.out)
    return 0


def cmd_predict(args) -> int:
    from xpnet.train.predict import format_result, predict_images

    failures = 0
    for result in predict_images(args.checkpoint, args.images, args.backend, args.device):
        failures += "error" in result
        line = json.dumps(result) if args.json else format_result(result)
        print(line, file=sys.stderr if "error" in result and not args.json else sys.stdout)
    return EXIT_ERROR if failures else 0


def cmd_backends(args) -> int:
    from xpnet.backends import describe_all

    rows = describe_all()
    print(f"{'backend':<17} {'version':<16} {'usable':<7} {'device':<8} why not")
    for r in rows:
        print(f"{r['backend']:<17} {r['version']:<16} {r['usable']:<7} {r['device']:<8} {r['why']}")
    return 0


def cmd_parity(args) -> int:
    from xpnet.train.parity import format_table, run_parity

    rows, skipped = run_parity(steps=args.steps, seed=args.seed)
    print(format_table(rows, skipped, args.steps))
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    return EXIT_ERROR if failed or not rows else 0


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _seed(text: str) -> int:
    """numpy's generators take seeds from 0 up."""
    return _whole_number(text, 0)


def _positive_float(text: str, what: str = "a positive number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def _learning_rate(text: str):
    return "auto" if text == "auto" else _positive_float(text, "a positive number or 'auto'")


def _sizes(text: str) -> list[int]:
    """Hidden sizes like 256,128; an empty string means no hidden layer at all."""
    if not text.strip():
        return []
    try:
        sizes = [int(s) for s in text.split(",")]  # an empty part (256,,128) is a typo, not a size
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sizes like 256,128") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text}")
    return sizes


def one_of(names) -> str:
    """'a, b or c': a table's names for a help text, so the help lists what the table holds."""
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
