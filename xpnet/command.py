"""The `xpnet` command's entry point.

Loading numpy, scipy and the rest takes most of a second; a Ctrl-C that lands then would
print Python's traceback from somewhere inside an import. This module imports nothing heavy
(`import xpnet` loads its names on first use), so the command itself loads inside a `try`,
and that Ctrl-C is a quiet exit 130, as one during the work is (train/cli.py).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from xpnet.train.cli import main as run
    except KeyboardInterrupt:
        print("xpnet: interrupted", file=sys.stderr)
        return 130
    return run(argv)
