"""Every code block in the README and the docs runs, so the docs cannot drift from the code.

Each ```python block runs as its own script in a fresh process, from an empty folder (a block
the page marks `<!-- not run: why -->` on the line before it is skipped, saying why). Each
`xpnet ...` command in a ```bash or ```text block is parsed by the real command line, so a
renamed flag or subcommand fails here; running them all would take the suite many minutes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xpnet.train.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")
INLINE = re.compile(r"`((?:[A-Z_]+=\S+ )*(?:mpirun[^`]*? )?xpnet [^`]+)`")


def blocks(language: str):
    """(page, line, code, why it is not run or None) for every block of `language`."""
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1) != language:
                continue
            line = text.count("\n", 0, match.start()) + 1
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = NOT_RUN.search(before)
            yield pytest.param(match.group(2), skip.group(1) if skip else None,
                               id=f"{page.relative_to(ROOT)}:{line}")


def xpnet_commands():
    """Every `xpnet ...` command the pages show: in shell and output blocks, and in inline code
    (a usage pattern with [optional] parts or ... is a pattern, not a command, and is left out)."""
    for page in PAGES:
        text = page.read_text()
        shown = []
        for match in FENCE.finditer(text):
            if match.group(1) in ("bash", "text"):
                code = match.group(2).replace("\\\n", " ")  # a command continued over lines is one
                shown += [line.split("#")[0] for line in code.splitlines()]
        shown += INLINE.findall(FENCE.sub("", text))
        for line in shown:
            for command in line.split("&&"):
                if "xpnet" not in command:  # output, such as a log line with an apostrophe
                    continue
                words = shlex.split(command.strip().removeprefix("$ "))
                if "xpnet" in words and "[" not in command and "..." not in command:
                    yield pytest.param(words[words.index("xpnet") + 1:],
                                       id=f"{page.relative_to(ROOT)}: {command.strip()[:60]}")


@pytest.mark.slow
@pytest.mark.parametrize("code, not_run", list(blocks("python")))
def test_every_python_block_runs(code, not_run, tmp_path):
    if not_run:
        pytest.skip(f"the page says it is not run: {not_run}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / ".matplotlib")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("argv", list(xpnet_commands()))
def test_every_xpnet_command_shown_is_one_the_command_line_takes(argv, capsys):
    """An unknown flag or subcommand exits with the usage error; `--help` exits cleanly; a
    bare `xpnet evaluate` in a sentence names the command and needs none of its arguments."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as stop:
        error = capsys.readouterr().err
        named_only = len(argv) == 1 and "arguments are required" in error
        assert stop.code == 0 or named_only, error


def test_the_docs_show_code_at_all():
    """Guards the two tests above against a pattern that quietly matches nothing."""
    assert len(list(blocks("python"))) >= 3 and len(list(xpnet_commands())) >= 10


def test_skips_are_summarised_by_reason_not_listed_one_per_test():
    """The CPU backends always skip the recorded-graph tests: seven cases, one reason line."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_graphs.py", "-k", "numpy-cpu and on_a_gpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "skipped, by reason" in done.stdout, done.stdout[-2000:]
    assert re.search(r"^\s+\d+  numpy \(cpu, float64\) records no CUDA graphs", done.stdout, re.M), done.stdout
    assert "SKIPPED [" not in done.stdout
