"""What many test modules assert: an array is on its backend, a user's error is one line,
and the command line's answer to argv (run in this process, so fixtures and monkeypatches
reach it). Test modules import these from here rather than from one another."""

from __future__ import annotations

import array_api_compat

from xpnet.backends import Backend
from xpnet.train.cli import main


def assert_on(backend: Backend, array, shape: tuple | None = None, dtype: str | None = None) -> None:
    """`array` is a `backend` array: its namespace, device, dtype (and shape when given)."""
    assert array_api_compat.array_namespace(array) is backend.xp, f"{type(array)} is not a {backend.name} array"
    assert array_api_compat.device(array) == backend.device, (
        f"array on {array_api_compat.device(array)!r}, backend on {backend.device!r}")
    assert array.dtype == getattr(backend.xp, dtype or backend.dtype_name)
    if shape is not None:
        assert tuple(array.shape) == tuple(shape)


def one_line(exc: BaseException) -> str:
    """The message of an error a user sees; it must be a single line."""
    text = str(exc)
    assert text and "\n" not in text, f"not a one-line message: {text!r}"
    return text


def run_cli(capsys, *argv):
    """(exit code, stdout, stderr) of `xpnet argv...` run in this process."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits for usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    """A refusal as a user sees it: a non-zero exit and one line naming xpnet, no traceback."""
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("xpnet") and "error" in lines[0]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
