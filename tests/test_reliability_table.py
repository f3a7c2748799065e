"""RELIABILITY.md's fault tables name the tests that hold each row: every test named exists,
so the table cannot promise a check that was renamed or never written."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "RELIABILITY.md").read_text(encoding="utf-8")
# `K` = `tests/test_reliability_kill.py`, ...; `tests/test_reliability_round3.py` (`R3`); the
# serve section names its file in prose
CODES = {**dict(re.findall(r"`([A-Z][A-Z0-9]*)` = `(tests/\w+\.py)`", TEXT)),
         **{code: path for path, code in re.findall(r"`(tests/\w+\.py)` \(`([A-Z][A-Z0-9]*)`\)", TEXT)},
         "V": "tests/test_serve.py"}
REFERENCE = re.compile(r"(tests/[\w/]+\.py|\b[A-Z][A-Z0-9]*|\btest_\w+)?`?::(test_\w+\*?)")


def named_tests() -> list[tuple[str, str, str]]:
    """(file, test name, row) for every `FILE::test` in the tables' last column; a bare `::test`
    is in the file the cell named before it."""
    found = []
    for row in (line for line in TEXT.splitlines() if line.startswith("|")):
        where = None
        for prefix, name in REFERENCE.findall(row.rstrip(" |").rsplit("|", 1)[-1]):
            if prefix:
                where = CODES.get(prefix) or (prefix if prefix.startswith("tests/") else f"tests/{prefix}.py")
            found.append((where, name, row[:80]))
    return found


def test_every_test_the_fault_tables_name_exists():
    named = named_tests()
    missing = []
    for where, name, row in named:
        source = (REPO / where).read_text(encoding="utf-8") if where and (REPO / where).is_file() else ""
        pattern = rf"def {name[:-1]}\w*\(" if name.endswith("*") else rf"def {name}\("
        if not re.search(pattern, source):
            missing.append(f"{where}::{name} (row {row!r})")
    assert not missing, "\n".join(missing)
    assert len(named) > 150  # the tables were read, not skipped by a parsing slip
