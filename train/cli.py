"""The `xpnet` command: train (train/cli_train.py), evaluate, predict, serve (train/serve/), backends, parity.

Errors in what the user asked for print one line (`xpnet: error: ...`) and exit 1;
anything else is a bug in xpnet and keeps its traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import warnings

from xpnet.backends import XpnetError
from xpnet.train.arguments import EXIT_ERROR, OneLineParser, add_backend_flags, one_line, positive_int, seed
from xpnet.train.cli_train import add_train
from xpnet.train.serve.command import add_serve
from xpnet.train.files import WRITE_FAILURES
from xpnet.train.runs import caused_by_ctrl_c
from xpnet.version import __version__


def main(argv: list[str] | None = None) -> int:
    python_format, stdout_errors = warnings.formatwarning, None
    try:  # from the first line: a Ctrl-C while argparse compiles its patterns is one line too
        args = _parse(build_parser(), argv)
        warnings.formatwarning = _warning_line
        stdout_errors = _tolerant_stdout("backslashreplace")  # a file name that is not UTF-8 prints, escaped
        return args.handler(args)
    except XpnetError as exc:
        print(f"xpnet: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:  # train_job's Interrupted says what of the run is kept
        return _interrupted(str(exc))
    except MemoryError as exc:  # numpy's "Unable to allocate 570. TiB": a network or a batch too big to hold
        print(f"xpnet: error: out of memory ({one_line(str(exc)) or 'an allocation failed'}): use smaller "
              "--layers, --batch-size or data", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # `xpnet train | head`: the reader left; stop quietly, as Unix tools do
        _silence_stdout()
        return 141
    except OSError as exc:  # `> /dev/full`: files go through atomic_write, so this is stdout
        if exc.errno not in WRITE_FAILURES:
            return _interrupted_or_raise(exc)
        print(f"xpnet: error: cannot write the output: {exc.strerror}", file=sys.stderr)
        _silence_stdout()
        return EXIT_ERROR
    except Exception as exc:  # a C extension's own error for a Ctrl-C that landed while it loaded
        return _interrupted_or_raise(exc)
    finally:
        warnings.formatwarning = python_format  # main() may run inside a program of its own
        _tolerant_stdout(stdout_errors)


def _interrupted_or_raise(exc: BaseException) -> int:
    """A Ctrl-C in another error's clothes is a Ctrl-C; anything else is a bug, with its traceback."""
    if not caused_by_ctrl_c(exc):
        raise exc
    return _interrupted()


def _interrupted(what: str = "") -> int:
    """A Ctrl-C's one line (what of the run is kept, where the loop said so) and its exit status."""
    print(f"xpnet: {what or 'interrupted'}", file=sys.stderr)
    return 130


def _tolerant_stdout(errors: str | None) -> str | None:
    """Set stdout's encoding error handler (where it has one); returns the one it had."""
    old = getattr(sys.stdout, "errors", None)
    if errors and old and hasattr(sys.stdout, "reconfigure"):
        try:
            sys.stdout.reconfigure(errors=errors)
        except (OSError, ValueError):  # a closed or full stream: leave it be
            pass
    return old


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit adds no second error."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (captured, replaced): nothing to flush
        pass


def _warning_line(message, category, filename, lineno, line=None) -> str:
    """A warning is one line too, not Python's two with the source line that raised it."""
    return f"xpnet: warning: {one_line(str(message))}\n"


def _parse(parser: argparse.ArgumentParser, argv) -> argparse.Namespace:
    """The arguments, with a flag the command does not take named by that command's parser
    (`xpnet train: error: ... (see xpnet train --help)`) and the flag it likely meant."""
    argv = sys.argv[1:] if argv is None else list(argv)
    named = next((word for word in argv if not word.startswith("-")), None)
    if named is not None and named not in parser.commands:
        guess = difflib.get_close_matches(named, parser.commands, n=1)
        parser.error(f"unknown command {named!r}: use one of {', '.join(parser.commands)}"
                     + (f" (did you mean {guess[0]}?)" if guess else ""))
    args, unknown = parser.parse_known_args(argv)
    command = parser.commands[args.command]
    listed = command.positionals_after_flags
    if listed and unknown and not any(word.startswith("-") for word in unknown):
        setattr(args, listed, [*getattr(args, listed), *unknown])
        unknown = []
    if unknown:
        flags = [flag for action in command._actions for flag in action.option_strings]  # argparse lists no other way
        guess = difflib.get_close_matches(unknown[0].split("=")[0], flags, n=1)
        command.error(f"unrecognized arguments: {' '.join(unknown)}"
                      + (f" (did you mean {guess[0]}?)" if guess and unknown[0].startswith("-") else ""))
    return args


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="xpnet", description="A deep neural network from first principles.")
    parser.add_argument("--version", action="version", version=f"xpnet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    add_serve(sub)
    p = sub.add_parser("report", help="redraw a finished run's report: scores, confusion matrix, pictures, curves")
    p.add_argument("run", help="a run folder")
    p.add_argument("--data", help="where the data the run trained on is now, if it moved (default: where it was)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars while the data loads")
    add_backend_flags(p)
    p.set_defaults(handler=cmd_report)
    p = sub.add_parser("backends", help="list array backends: version, usable or why not, device")
    p.set_defaults(handler=cmd_backends)
    p = sub.add_parser("parity", help="check every usable backend against numpy float64")
    p.add_argument("--steps", type=positive_int, default=50, help="SGD steps before comparing weights (default 50)")
    p.add_argument("--seed", type=seed, default=0, help="seed for data and weights (default 0)")
    p.set_defaults(handler=cmd_parity)
    parser.commands = dict(sub.choices)  # each command's own parser, for `_parse`'s errors
    return parser


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, per-class figures and confusion matrix of a checkpoint "
                                        "(MSE, RMSE, MAE and R2 for regression)")
    p.add_argument("checkpoint", help="a run folder or a .safetensors checkpoint")
    p.add_argument("--data", help="data to evaluate on (default: the data the run trained on, its held-out "
                                  "part; letters for a bare checkpoint)")
    p.add_argument("--out", help="folder for the confusion matrix (default: the checkpoint's folder)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars while the data loads")
    add_backend_flags(p)
    p.set_defaults(handler=cmd_evaluate)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="read the letter in each image, or answer each row of a table",
                       description="Each answer comes with its calibrated probability and the runners-up; an "
                                   "answer under 50% is marked unsure (more likely wrong than right). A picture "
                                   "holding no letter still gets one, often above 50%: the probability says how "
                                   "sure the reading is, not whether the picture is a letter. Each picture is "
                                   "read on its own: one that cannot be read gets a line saying why, the others "
                                   "are still read, and the exit status is then 1.")
    p.add_argument("checkpoint", help="a run folder or a .safetensors checkpoint")
    p.add_argument("images", nargs="*", help="image files of any size and colour, each framed as a 1x28x28 letter "
                                             "(for a model trained on the letters, or other 28x28 pictures)")
    p.add_argument("--input", metavar="FILE", help="a .csv or .npz of raw input rows, for a tabular or regression "
                                                   "model: one answer per row")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    add_backend_flags(p)
    p.positionals_after_flags = "images"
    p.set_defaults(handler=cmd_predict)


def cmd_evaluate(args) -> int:
    from xpnet.train.evaluation import evaluate_job

    evaluate_job(args.checkpoint, args.data, args.backend, args.device, print, args.out, not args.no_progress)
    return 0


def cmd_predict(args) -> int:
    from xpnet.train.predict import format_result, predict_images

    if args.input is not None or not args.images:
        return _predict_rows(args)
    failures = 0
    for result in predict_images(args.checkpoint, args.images, args.backend, args.device):
        failures += "error" in result
        line = json.dumps(result) if args.json else format_result(result)
        print(line, file=sys.stderr if "error" in result and not args.json else sys.stdout)
    return EXIT_ERROR if failures else 0


def cmd_report(args) -> int:
    from xpnet.train.evaluation import report_job

    report_job(args.run, args.backend, args.device, print, args.data, not args.no_progress)
    return 0


def _predict_rows(args) -> int:
    from xpnet.train.predict_table import format_row, predict_rows

    if args.input is None or args.images:
        raise XpnetError("give images or --input FILE (a .csv or .npz of rows), not both and not neither")
    for result in predict_rows(args.checkpoint, args.input, args.backend, args.device):
        print(json.dumps(result) if args.json else format_row(result))
    return 0


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
