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
    """(code, why it is not run or None, the output the page shows or None) for every block of
    `language`; the output is a ```text block right after it."""
    for page in PAGES:
        text = page.read_text()
        fences = list(FENCE.finditer(text))
        for match, after in zip(fences, fences[1:] + [None]):
            if match.group(1) != language:
                continue
            line = text.count("\n", 0, match.start()) + 1
            before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            skip = NOT_RUN.search(before)
            shown = (after.group(2) if after and after.group(1) == "text" and not text[match.end():after.start()].strip()
                     else None)
            yield pytest.param(match.group(2), skip.group(1) if skip else None, shown,
                               id=f"{page.relative_to(ROOT)}:{line}")


SPEED = re.compile(r"^[\d.]+k$")  # "76.9k" before "samples/s": a machine's speed, not a result


def as_shown(shown: str, printed: str) -> str | None:
    """Why `printed` is not the output the page shows, or None. The number of BLAS threads
    changes the order of sums, so a number may differ by a point (or 3%) and a word of eight or
    more characters (a row of answers, a drawn line) by two characters; speeds are not compared."""
    want, got = shown.strip().splitlines(), printed.strip().splitlines()
    if len(want) != len(got):
        return f"{len(got)} lines printed, the page shows {len(want)}"
    for w_line, g_line in zip(want, got):
        w_words, g_words = w_line.split(), g_line.split()
        if len(w_words) != len(g_words) or not all(map(_near, w_words, g_words)):
            return f"printed {g_line!r}, the page shows {w_line!r}"
    return None


def _near(shown: str, printed: str) -> bool:
    if shown == printed or (SPEED.match(shown) and SPEED.match(printed)):
        return True
    a, b = (re.sub(r"[^\d.eE+-]", "", w).strip(".") for w in (shown, printed))
    try:
        x, y = float(a), float(b)
        return re.sub(r"[\d.eE+-]", "", shown) == re.sub(r"[\d.eE+-]", "", printed) and \
            abs(x - y) <= max(1.0 if "%" in shown else 0.0, 0.03 * max(abs(x), abs(y)))
    except ValueError:
        return len(shown) == len(printed) >= 8 and sum(c != d for c, d in zip(shown, printed)) <= 2


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
@pytest.mark.parametrize("code, not_run, shown", list(blocks("python")))
def test_every_python_block_runs_and_prints_what_the_page_shows(code, not_run, shown, tmp_path):
    if not_run:
        pytest.skip(f"the page says it is not run: {not_run}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / ".matplotlib")}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if shown is not None:
        assert as_shown(shown, done.stdout) is None, as_shown(shown, done.stdout)


@pytest.mark.parametrize("shown, printed, same", [
    ("accuracy 57.6% after 5", "accuracy 54.5% after 5", False),  # the README's once, gone stale
    ("accuracy 54.5% after 5", "accuracy 54.7% after 5", True),  # one BLAS thread against two
    ("read:  ZXTICWDHBSKG", "read:  ZXTICWQHBSKG", True),
    ("read:  ZXTICWDHBSKG", "read:  ZXTICWQHBSHA", False),
    ("lr auto: chose 1 (loss", "lr auto: chose 3 (loss", False),
    ("loss 3.0398  76.9k samples/s", "loss 3.0793  117.3k samples/s", True),
    ("{'loss': 1.6678, 'accuracy': 0.494}", "{'loss': 1.7440, 'accuracy': 0.455}", False),
    ("one line", "one line\nand another", False),
])
def test_a_page_s_output_is_compared_within_what_the_thread_count_moves(shown, printed, same):
    assert (as_shown(shown, printed) is None) == same


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
