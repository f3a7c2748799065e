"""What the `xpnet` commands share: a parser whose errors are one line, the argument types
that check a value where it is typed, and the --backend/--device pair.
"""

from __future__ import annotations

import argparse

from xpnet.backends import BACKENDS
from xpnet.model.activations import ModelError
from xpnet.model.layers import parse_layers

EXIT_ERROR = 1  # what the user asked for could not be done; argparse's own usage errors exit 2


def one_line(text: str) -> str:
    """A message stays one line whatever it quotes: a path or an argument may hold a newline."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (what was wrong, where to read more)."""

    # The positional list that also takes the words after a flag (`predict RUN --json a.png b.png`):
    # argparse stops filling a positional list at the first flag and leaves the rest unknown.
    positionals_after_flags: str | None = None

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

def add_backend_flags(p) -> None:
    p.add_argument("--backend", help=f"{one_of([*BACKENDS, 'auto'])} (default: $XPNET_BACKEND, else auto)")
    p.add_argument("--device", help="cpu, cuda or cuda:N; array_api_strict also takes device1, a pretend second "
                                    "device (default: $XPNET_DEVICE, else the backend's own)")


def whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def seed(text: str) -> int:
    """numpy's generators take seeds from 0 up."""
    return whole_number(text, 0)


def positive_float(text: str, what: str = "a positive number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def fraction(text: str) -> float:
    """A share strictly between 0 and 1, such as 0.1."""
    value = positive_float(text, "a number between 0 and 1")
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1 (e.g. 0.1), got {text}")
    return value


def share(text: str) -> float:
    """A share from 0 to 1, both included, such as 0.4."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1") from None
    if not 0 <= value <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1 (e.g. 0.4), got {text}")
    return value


def whole_number_from(least: int):
    """An argument type: a whole number of at least `least`."""
    return lambda text: whole_number(text, least)


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number, 0 or more, got {text}")
    return value


def learning_rate(text: str):
    return "auto" if text == "auto" else positive_float(text, "a positive number or 'auto'")


def sizes(text: str) -> list[int]:
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


def layer_words(text: str) -> list:
    """Hidden layers like 256,128 or conv32x3,pool2,128: sizes as numbers, the rest as words
    (model/layers.py reads them); an empty string means no hidden layer at all."""
    if not text.strip() or all(part.strip().isdigit() or not part.strip() for part in text.split(",")):
        return sizes(text)
    words = [int(w) if w.strip().isdigit() else w.strip().lower() for w in text.split(",")]
    try:
        parse_layers(words)
    except ModelError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None  # a size of 0 too: parse_layers checks them
    return words


def image_shape(text: str) -> list[int]:
    """One sample's shape for conv layers: channels x height x width, e.g. 1x28x28 or 3x32x32."""
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not an image shape like 1x28x28 (channels x height x width)")
    return [int(p) for p in parts]


def one_of(names) -> str:
    """'a, b or c': a table's names for a help text, so the help lists what the table holds."""
    names = [str(n) for n in names]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
