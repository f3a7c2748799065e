"""`xpnet train`: its flags, the settings they make, and the single-process and MPI runs."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from xpnet.backends import XpnetError
from xpnet.backends.base import FLOAT_DTYPES
from xpnet.model.activations import ACTIVATIONS
from xpnet.model.init import INITS
from xpnet.model.losses import LOSSES
from xpnet.model.layers import WORDS
from xpnet.train.arguments import (EXIT_ERROR, add_backend_flags, fraction, image_shape, layer_words, learning_rate,
                                   non_negative_float, one_of, positive_float, positive_int, share,
                                   whole_number_from)
from xpnet.train.config import (BATCH, EPOCHS, LETTERS_BATCH, LETTERS_EPOCHS, LETTERS_LR, LETTERS_ONLY, PRESETS,
                                RESUMABLE, SHIFTED_EPOCHS, WIDE_FROM, TrainConfig, is_letters, with_data_defaults)
from xpnet.train.data.spec import SCHEMES
from xpnet.train.files import WRITE_FAILURES
from xpnet.train.threads import MAX_AUTO
from xpnet.train.optimizers import DEFAULT_LR, OPTIMIZERS
from xpnet.train.schedules import SCHEDULES
from xpnet.train.scaling import DEFAULT as SCALE_DEFAULT, SCALERS


def preset_settings(name: str) -> str:
    """What the presets that set `name` set it to, for --help: "cnn's 15, course's 15"."""
    return ", ".join(f"{preset}'s {settings[name]:g}" for preset, settings in sorted(PRESETS.items())
                     if name in settings)


def add_train(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a network (default: letters, on the auto backend)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="default (relu, cross-entropy, momentum), course (sigmoid, quadratic, plain SGD) or "
                        "cnn (conv16x3,pool2,conv32x3,pool2,conv64x3,pool2,dropout0.25,512 with Adam)")
    p.add_argument("--data", help=f"{one_of(SCHEMES.values())} (default {d.data})")
    p.add_argument("--train-samples", type=positive_int,
                   help="training samples to generate (letters) or keep (files) (default 120000 / all)")
    p.add_argument("--test-samples", type=positive_int,
                   help="held-out samples to generate or keep (default 10000 / all)")
    add_backend_flags(p)
    p.add_argument("--dtype", choices=FLOAT_DTYPES, help=f"float dtype (default {d.dtype})")
    p.add_argument("--tf32", action="store_true", default=None,
                   help="let a GPU compute float32 matrix products in TF32: faster, ~3 digits (default off)")
    p.add_argument("--cuda-graphs", action=argparse.BooleanOptionalAction, default=None,
                   help="on a GPU, record one training step as a CUDA graph and replay it for every full "
                        "batch: one launch instead of ~40 (default: on for cupy and torch on CUDA)")
    p.add_argument("--threads", type=positive_int,
                   help="CPU threads each batch is split across, each backpropagating its piece with one BLAS "
                        "thread; 1 keeps training to one thread, BLAS's too (numpy backend; default: every core, "
                        f"up to {MAX_AUTO}, for a network with conv layers, else 1 with BLAS's own threads)")
    p.add_argument("--seed", type=int, help=f"seed for weights, shuffling and data (default {d.seed})")
    p.add_argument("--epochs", type=positive_int, help="passes over the training set (default: "
                   f"{preset_settings('epochs')}; else {LETTERS_EPOCHS} where the letters take their default batch "
                   f"of {LETTERS_BATCH}, "
                   f"{SHIFTED_EPOCHS} where pictures are shifted, else {EPOCHS})")
    p.add_argument("--batch-size", type=positive_int, help="samples per step (default: "
                   f"{preset_settings('batch_size')}; else {LETTERS_BATCH} for "
                   f"{WIDE_FROM:,} letters or more, a dense network and momentum, else {BATCH})")
    p.add_argument("--lr", type=learning_rate, help="learning rate, or 'auto' for the course's recipe (default: "
                   f"{preset_settings('lr')}; else {LETTERS_LR:g} where the letters take their default batch of "
                   f"{LETTERS_BATCH}, else the "
                   f"optimizer's, {', '.join(f'{k} {v:g}' for k, v in DEFAULT_LR.items())})")
    p.add_argument("--scale", help=f"input (and regression target) scaling, kept in the model: {one_of(SCALERS)} "
                                   f"(default: {SCALE_DEFAULT})")
    p.add_argument("--layers", type=layer_words, dest="hidden",
                   help="hidden layers: sizes, e.g. 512,256 (the default from 20,000 training samples; 256,128 "
                        "below), or convolutions, e.g. conv32x3,pool2,128 "
                        f"({'; '.join(w for w, _ in WORDS.values())})")
    p.add_argument("--image", type=image_shape, help="one sample as channels x height x width for conv layers, "
                                                     "e.g. 3x32x32 (default: a square one-channel image)")
    p.add_argument("--activation", help=f"{one_of(ACTIVATIONS)} (default {d.activation})")
    p.add_argument("--loss", help=f"{one_of(LOSSES)} (default: cross_entropy for class labels, quadratic for "
                                  "float targets, which are regression values)")
    p.add_argument("--optimizer", help=f"{one_of(OPTIMIZERS)} (default {d.optimizer})")
    p.add_argument("--init", help=f"{one_of(INITS)} (default {d.init})")
    p.add_argument("--schedule", help=f"the rate per epoch: {one_of(SCHEDULES)} (default {d.schedule})")
    p.add_argument("--warmup", type=whole_number_from(0), metavar="EPOCHS",
                   help="epochs climbing linearly to the rate first (default 0)")
    p.add_argument("--weight-decay", type=non_negative_float, metavar="LAMBDA",
                   help="L2 weight decay: lambda * W added to each weight's gradient (default 0.0001 for letters "
                        "and with --preset cnn, 0 with --preset course, else 0)")
    p.add_argument("--shift", type=whole_number_from(0), metavar="PIXELS",
                   help="move each training picture up to this many whole pixels each way, drawn anew every "
                        "epoch (default 2 for letters, else 0)")
    p.add_argument("--small-letters", type=share, metavar="SHARE",
                   help="letters only: the share of the training letters drawn 7 to 13 pixels tall and scaled "
                        f"up, as in a photo or on a small canvas (default {preset_settings('small_letters')}, "
                        "else 0.25; the held-out letters are the same whatever it is)")
    p.add_argument("--val-fraction", type=fraction, metavar="F",
                   help="hold back this share of the training data (stratified by class) to validate on; "
                        "default: validate on the held-out part, if the data have one")
    p.add_argument("--patience", type=positive_int,
                   help="early stop after this many epochs without validation improvement, keeping the best "
                        "epoch's weights (needs validation data: a held-out part or --val-fraction)")
    p.add_argument("--out", help="run folder (default runs/<data>-<time>)")
    p.add_argument("--resume", metavar="RUN", help="continue a run folder from its last finished epoch "
                   "(with --epochs to train longer; other settings come from the run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--distributed", action="store_true",
                   help="one rank of a data-parallel MPI job: start with mpirun -n N xpnet train --distributed "
                        "(needs pip install 'xpnet[mpi]')")
    p.add_argument("--mpi-timeout", type=positive_float, metavar="SECONDS",
                   help="with --distributed: end the job when a rank has waited this long for the others "
                        "(default 300)")
    p.set_defaults(handler=cmd_train)


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
                             f"(only --epochs, --patience, --backend, --device, --tf32, --cuda-graphs and --threads may be given)")
        return dataclasses.replace(read_run_config(args.resume), **given, out=args.resume)
    preset = PRESETS[args.preset]
    if not is_letters(given.get("data", TrainConfig.data)):  # the preset's letters-only settings do not apply
        preset = {name: value for name, value in preset.items() if name not in LETTERS_ONLY}
    config = dataclasses.replace(TrainConfig(), **preset)
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
    lost = []  # why stdout could not be written, if it could not: the run goes on regardless
    epochs = with_data_defaults(config).epochs
    with tqdm(total=epochs, desc="epochs", disable=args.no_progress or not sys.stderr.isatty(), leave=False) as bar:
        def log(line: str) -> None:
            if line.startswith("epoch "):
                bar.update(1)
            try:
                if not lost:
                    bar.write(line)
            except OSError as exc:
                if exc.errno not in WRITE_FAILURES:
                    raise
                lost.append(exc.strerror)

        run = train_job(config, log, progress=not args.no_progress, resume=bool(args.resume))
    if lost:
        raise XpnetError(f"cannot write the log to standard output ({lost[0]}), so it stops short; "
                         f"training went on to the end: {run} holds the run")
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
